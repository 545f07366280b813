#!/usr/bin/env bash
# build-web.sh -- bundles the web console (clients/web) into dist/web with
# esbuild (from node_modules, pinned in package.json): one script, one
# stylesheet, the page. vmmd serves dist/web under /ui/. Nothing in the
# bundle is fetched from elsewhere at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=dist/web
rm -rf "$OUT.new"
mkdir -p "$OUT.new"
node_modules/.bin/tsc -p clients/web/tsconfig.json --noEmit
node_modules/.bin/esbuild clients/web/src/main.ts --bundle --format=esm --target=es2022 \
  --minify --sourcemap=linked --legal-comments=none --log-level=warning --outfile="$OUT.new/app.js"
cp clients/web/index.html clients/web/style.css clients/web/favicon.svg "$OUT.new/"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
echo "build-web: $OUT ($(du -sk "$OUT" | cut -f1) KiB)"

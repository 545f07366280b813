#!/usr/bin/env bash
# lint.sh -- buf lint (STANDARD) + buf breaking against the last commit that
# has proto/ + TypeScript type check (daemon, tests, web console; the strict
# options are in tsconfig.json) + ESLint with warnings as errors
# (eslint.config.js) + the layering check of the daemon's floors
# (docs/architecture.md) + a doc comment on every export (check-docs.mjs)
# + shellcheck of every script. test/README.md says what each step checks.
set -euo pipefail
cd "$(dirname "$0")/.."
node_modules/.bin/buf lint
if git rev-parse -q --verify HEAD~1 >/dev/null && git cat-file -e HEAD~1:proto 2>/dev/null; then
  node_modules/.bin/buf breaking --against ".git#ref=HEAD~1,subdir=proto" proto || {
    echo "lint: buf breaking found wire-incompatible changes against HEAD~1" >&2; exit 1; }
fi
npx --no-install tsc -p tsconfig.json --noEmit
npx --no-install tsc -p tsconfig.test.json --noEmit
npx --no-install tsc -p clients/web/tsconfig.json --noEmit
npx --no-install eslint --max-warnings 0 .
node scripts/check-layers.mjs
node scripts/check-docs.mjs
if command -v shellcheck >/dev/null; then
  git ls-files '*.sh' .ci/run clients/dnsmasq-hook/vmm-dhcp-hook | xargs shellcheck -x -S warning
else
  echo "lint: shellcheck not installed (scripts/test.sh installs it)" >&2
  exit 1
fi
echo "lint: ok"

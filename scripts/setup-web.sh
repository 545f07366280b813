#!/usr/bin/env bash
# setup-web.sh -- what the metrics and web console tests need besides the
# daemon (test/e2e/metrics.test.ts, test/e2e/web.test.ts):
#
#   * Prometheus and promtool (Debian's prometheus package); the tests start
#     their own Prometheus inside the private namespace
#   * Chromium (Debian's chromium package), driven by playwright-core from
#     node_modules with executablePath /usr/bin/chromium; a font for
#     readable screenshots
#
# Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

# The prometheus package ships a service. Keep the package manager from
# starting it on this host while installing (the tests run their own, in
# a namespace); an existing policy-rc.d is left as it is.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ "$(id -u)" = 0 ] && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
ensure_packages prometheus chromium fonts-dejavu-core

for prog in /usr/bin/prometheus /usr/bin/promtool /usr/bin/chromium; do
  [ -x "$prog" ] || { echo "setup-web: $prog missing after install" >&2; exit 1; }
done
[ -f node_modules/playwright-core/package.json ] || { echo "setup-web: node_modules/playwright-core missing (scripts/setup.sh installs it)" >&2; exit 1; }
echo "setup-web: ok ($(/usr/bin/prometheus --version 2>&1 | head -1); $(/usr/bin/chromium --version 2>/dev/null))"

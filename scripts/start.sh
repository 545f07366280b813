#!/usr/bin/env bash
# start.sh -- sets up this machine (scripts/setup.sh) and runs vmmd in the
# foreground on the embedded default configuration: state in ./.vmm, API on
# the unix socket ./.vmm/vmmd.sock (mode 0600), user-mode networking,
# forwarding off. Extra arguments go to vmmd (e.g. --config vmm.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/server/main.js "$@"

#!/usr/bin/env bash
# start.sh -- sets up this machine (scripts/setup.sh), puts `vmm-cli` on the
# PATH (a small wrapper in ${VMM_BIN_DIR:-/usr/local/bin}), and runs vmmd in
# the foreground on the embedded default configuration: state in ./.vmm, API
# on the unix socket ./.vmm/vmmd.sock (mode 0600), user-mode networking,
# forwarding off, images in ./.vmm/images. Extra arguments go to vmmd
# (e.g. --config vmm.toml). Quick when nothing changed; leaves `git status`
# clean.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bin=${VMM_BIN_DIR:-/usr/local/bin}
wrapper="#!/bin/sh
# vmm-cli of the checkout in $PWD (installed by scripts/start.sh)
exec node $PWD/dist/clients/cli/main.js \"\$@\""
if [ "$(cat "$bin/vmm-cli" 2>/dev/null)" != "$wrapper" ]; then
  mkdir -p "$bin"
  printf '%s\n' "$wrapper" > "$bin/vmm-cli.tmp"
  chmod 0755 "$bin/vmm-cli.tmp"
  mv "$bin/vmm-cli.tmp" "$bin/vmm-cli"
  echo "start: installed $bin/vmm-cli"
fi
exec node dist/server/main.js "$@"

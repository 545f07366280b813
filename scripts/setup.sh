#!/usr/bin/env bash
# setup.sh -- everything vmmd needs to run on a fresh Debian 12 machine:
# runtime packages (QEMU, passt, dnsmasq, iproute2, nftables, conntrack), npm
# dependencies (exactly as locked), the native addon and the TypeScript build.
# Idempotent. Used by scripts/start.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

ensure_packages qemu-system-x86 qemu-utils genisoimage passt dnsmasq-base iproute2 nftables conntrack python3 make g++

# `npm install` against the committed lock rather than `npm ci`: the registry
# reachable here lacks the other platforms' optional packages (rollup's
# android/darwin/win32 builds), so the lock cannot list them and `npm ci`
# rejects it as out of sync. Versions still come from the lock.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install (from package-lock.json)"
  npm install --no-audit --no-fund --loglevel=error
fi
bash scripts/build-native.sh
echo "setup: tsc"
npx --no-install tsc -p tsconfig.json

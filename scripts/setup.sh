#!/usr/bin/env bash
# setup.sh -- everything vmmd needs to run on a fresh Debian 12 machine:
# runtime packages (QEMU, passt, dnsmasq, iproute2, nftables), npm
# dependencies (exactly as locked), the native addon and the TypeScript build.
# Idempotent. Used by scripts/start.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

ensure_packages qemu-system-x86 qemu-utils passt dnsmasq-base iproute2 nftables python3 make g++

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/build-native.sh
echo "setup: tsc"
npx --no-install tsc -p tsconfig.json

#!/usr/bin/env bash
# setup.sh -- everything vmmd needs to run on a fresh Debian 12 machine:
# runtime packages (QEMU, passt, dnsmasq, iproute2, nftables), npm
# dependencies (exactly as locked), the native addon and the TypeScript build.
# Idempotent. Used by scripts/start.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

ensure_packages qemu-system-x86 qemu-utils genisoimage passt dnsmasq-base iproute2 nftables python3 make g++

# `npm install` against the committed lock rather than `npm ci`: the registry
# reachable here lacks the other platforms' optional packages (rollup's
# android/darwin/win32 builds), so the lock cannot list them and `npm ci`
# rejects it as out of sync. Versions still come from the lock.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install (from package-lock.json)"
  npm install --no-audit --no-fund --loglevel=error
fi
# The unprivileged user QEMU drops to (vmm.toml qemu.user): a guest that
# escapes QEMU gets this user, not root.
if ! getent passwd vmm-qemu >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: user vmm-qemu is missing; run as root to create it" >&2
    exit 1
  fi
  echo "setup: useradd vmm-qemu"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmm-qemu
fi
bash scripts/build-native.sh
echo "setup: tsc"
npx --no-install tsc -p tsconfig.json

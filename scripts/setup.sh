#!/usr/bin/env bash
# setup.sh -- everything vmmd needs to run on a fresh Debian 12 machine:
# runtime packages (QEMU, qemu-img, genisoimage, passt, dnsmasq, iproute2,
# nftables, conntrack), npm dependencies (exactly as locked), the native addon, the
# TypeScript build and the web console's bundle (dist/web). Idempotent, and
# quick when nothing changed: each step is skipped when its output is newer
# than its inputs. Never modifies tracked files (git status stays clean). Used by scripts/start.sh and scripts/test.sh.
#
# Prerequisites it cannot install: Node.js 20 or newer with npm (Debian 12's
# own nodejs is 18), root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none)); Debian 12's nodejs is 18, install Node 20 from nodejs.org or NodeSource" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "setup: npm is required (it comes with Node.js)" >&2; exit 1; }

ensure_packages qemu-system-x86 qemu-utils genisoimage passt dnsmasq-base iproute2 nftables conntrack python3 make g++

# `npm install` against the committed lock rather than `npm ci`: the registry
# reachable here lacks the other platforms' optional packages (rollup's
# android/darwin/win32 builds), so the lock cannot list them and `npm ci`
# rejects it as out of sync. Versions still come from the lock; --no-save
# keeps npm from rewriting package.json or package-lock.json.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install (from package-lock.json)"
  npm install --no-save --no-audit --no-fund --loglevel=error
fi

# newer_than STAMP PATH...: true when any file under PATH is newer than STAMP (or STAMP is missing).
newer_than() {
  local stamp=$1
  shift
  [ ! -e "$stamp" ] && return 0
  [ -n "$(find "$@" -newer "$stamp" -type f -print -quit 2>/dev/null)" ]
}

# One node-gyp build makes the addon and both executables: rebuild when any
# of their sources changed or one of them is missing.
if newer_than native/build/Release/vmm_native.node native/src native/relayd native/dhcp-hook native/binding.gyp node_modules/.package-lock.json ||
  [ ! -x native/build/Release/vmm-relayd ] || [ ! -x native/build/Release/vmm-dhcp-hook ]; then
  bash scripts/build-native.sh
else
  echo "setup: native addon up to date"
fi
if newer_than dist/.build-stamp server clients gen/ts bench native/*.ts tsconfig.json package.json node_modules/.package-lock.json; then
  echo "setup: tsc"
  npx --no-install tsc -p tsconfig.json
  touch dist/.build-stamp
else
  echo "setup: TypeScript build up to date"
fi
if newer_than dist/web/index.html clients/web clients/cli/format.ts gen/ts node_modules/.package-lock.json; then
  bash scripts/build-web.sh
else
  echo "setup: web console up to date"
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

#!/usr/bin/env bash
# Builds native/ (node-addon-api) offline: node-gyp gets --nodedir pointing at
# headers already on the machine, so it never tries to download them.
set -euo pipefail
cd "$(dirname "$0")/.."
nodedir=""
for d in "${NODE_GYP_NODEDIR:-}" "$(dirname "$(dirname "$(command -v node)")")" /usr /usr/local; do
  [ -n "$d" ] && [ -f "$d/include/node/node_api.h" ] && { nodedir=$d; break; }
done
if [ -z "$nodedir" ]; then
  echo "build-native: no Node headers found (looked for include/node/node_api.h under \$NODE_GYP_NODEDIR, the node prefix, /usr, /usr/local)" >&2
  exit 1
fi
# flock: several builds (tests, helpers) may race on native/build.
exec 9>"${TMPDIR:-/tmp}/vmm-native-build.lock"
flock 9
cd native
../node_modules/.bin/node-gyp rebuild --loglevel=warn --nodedir="$nodedir" -j 2 >/dev/null
echo "build-native: native/build/Release/vmm_native.node, vmm-relayd and vmm-dhcp-hook (headers from $nodedir)"

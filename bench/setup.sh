#!/usr/bin/env bash
# Installs the benchmark peers from Debian 12 packages and builds the minimal
# guest kernel of bench:start (test/guest/build-kernel.sh). Nothing is started as a
# system service: bench/main.ts starts every peer itself, in the foreground,
# from a config file in a temp dir, and kills it by PID.
#
#   sudo bash bench/setup.sh
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "bench/setup.sh: must run as root (apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101: forbid dpkg from starting the services the packages ship.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -q
apt-get install -y -q --no-install-recommends iperf3 wrk socat haproxy rinetd nginx-light libnginx-mod-stream gcc libc6-dev
# Packages may have started daemons anyway on hosts without policy-rc.d support.
for svc in haproxy rinetd nginx iperf3; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
for b in iperf3 wrk socat haproxy rinetd nginx gcc; do
  command -v "$b" >/dev/null || { echo "bench/setup.sh: $b missing after install" >&2; exit 1; }
done
echo "bench/setup.sh: peers installed"
# bench:start boots a minimal guest kernel beside Debian's: built once from
# Debian's linux-source (~6 min on 2 cores), skipped when up to date.
bash "$(dirname "$0")/../test/guest/build-kernel.sh"

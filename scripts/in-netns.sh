#!/usr/bin/env bash
# Runs a command inside a private network + mount namespace with only `lo`
# up and no route out: every bridge, TAP, macvtap, dnsmasq, nftables rule and
# guest a test creates lives and dies there, and nothing can reach beyond
# 127.0.0.0/8 and the namespace's own interfaces. /etc/qemu gets a
# private tmpfs mount so tests may write bridge.conf without touching the
# host's. Named namespaces (`ip netns add`) live under a private tmpfs on
# /run/netns, so their names never meet another run's or the host's. When
# the command exits the namespace (and anything left in it) is gone.
#
#   scripts/in-netns.sh npx vitest run test/e2e
set -euo pipefail
if [ "${VMM_IN_NETNS:-}" != 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "in-netns: must run as root (creates network namespaces)" >&2
    exit 1
  fi
  export VMM_IN_NETNS=1
  exec unshare --net --mount --propagation private -- "$0" "$@"
fi
ip link set lo up
mkdir -p /etc/qemu
mount -t tmpfs -o mode=0755 vmm-etc-qemu /etc/qemu
mkdir -p /run/netns
mount -t tmpfs -o mode=0755 vmm-run-netns /run/netns
# sysfs shows the namespace of whoever mounted it: remount it so
# /sys/class/net lists this namespace's interfaces (private mount, the
# host's /sys is untouched).
mount -t sysfs vmm-netns-sysfs /sys
if [ -n "$(ip route show default 2>/dev/null)" ]; then
  echo "in-netns: a default route exists inside the private namespace; refusing" >&2
  exit 1
fi
# Run the command, then end every process still in this network namespace
# (a guest, dnsmasq or relay a failed test left behind), by PID: they would
# otherwise keep the namespace alive after we exit.
set +e
"$@"
status=$?
self_ns=$(readlink /proc/self/ns/net)
# Sets $pids (no command substitution: a subshell would list itself).
leftovers() {
  pids=""
  names=""
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" = $$ ] && continue
    [ "$(readlink "$d/ns/net" 2>/dev/null)" = "$self_ns" ] || continue
    read -r _ _ state _ < "$d/stat" 2>/dev/null || continue
    [ "$state" = Z ] && continue
    pids="$pids $pid"
    names="$names $pid:$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null | cut -c1-60)"
  done
}
leftovers
if [ -n "$pids" ]; then
  echo "in-netns: ending processes left in the namespace:$names" >&2
  kill -TERM $pids 2>/dev/null
  sleep 1
  leftovers
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
fi
exit $status

#!/usr/bin/env bash
# setup-bridge.sh -- host bridge for vmm's bridge/tap networking modes.
#
#   setup-bridge.sh [--dry-run] check|setup|destroy [options]
#
# setup   creates the bridge with its address (and a MAC of its own), allows it in
#         /etc/qemu/bridge.conf (qemu-bridge-helper), writes a dnsmasq config
#         that serves DHCP on the bridge only and reports leases to vmmd
#         through the project's hook (compiled when built), starts that dnsmasq,
#         enables IPv4 forwarding and installs nftables rules (one table per
#         bridge: DHCP/DNS input, forwarding, masquerade to the uplink).
# check   reports each of those pieces as ok/missing; exit 1 if any is missing.
# destroy removes all of it again (dnsmasq, rules, ACL line, configs, bridge).
# --dry-run prints every command and file instead of running/writing it.
#
# Options (defaults in brackets):
#   --bridge NAME            [vmmbr0]
#   --cidr ADDR/LEN          bridge address [10.20.0.1/24]
#   --dhcp-range FIRST,LAST  [.50 to .200 of the subnet]
#   --uplink DEV             masquerade out of DEV [the default route's device;
#                            none: no masquerade rule]
#   --socket PATH            vmmd's unix socket for the hook [/var/lib/vmm/vmmd.sock]
#   --lease-token-file PATH  lease-only token for the hook [none]
#   --conf-dir DIR           dnsmasq config, hook config [/etc/vmm]
#   --run-dir DIR            dnsmasq pid, lease and log files [/var/lib/vmm/bridge-NAME]
#   --bridge-conf PATH       qemu-bridge-helper ACL [/etc/qemu/bridge.conf]
#
# Every name is checked before use: it lands in nftables rules, dnsmasq
# config lines and `ip` arguments, where a space or newline would inject.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

DRY=0; ACTION=""; BR=vmmbr0; CIDR=10.20.0.1/24; RANGE=""; UPLINK=""; UPLINK_SET=0
SOCKET=/var/lib/vmm/vmmd.sock; TOKEN_FILE=""; CONF_DIR=/etc/vmm; RUN_DIR=""; BRIDGE_CONF=/etc/qemu/bridge.conf
# The compiled hook when it is built (one process start per lease instead
# of two); the script otherwise. Both read the same settings file.
HOOK=$ROOT/clients/dnsmasq-hook/vmm-dhcp-hook
if [ -x "$ROOT/native/build/Release/vmm-dhcp-hook" ]; then HOOK=$ROOT/native/build/Release/vmm-dhcp-hook; fi

die() { echo "setup-bridge: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    check|setup|destroy) ACTION=$1 ;;
    --bridge) BR=${2:?}; shift ;;
    --cidr) CIDR=${2:?}; shift ;;
    --dhcp-range) RANGE=${2:?}; shift ;;
    --uplink) UPLINK=${2?}; UPLINK_SET=1; shift ;;
    --socket) SOCKET=${2:?}; shift ;;
    --lease-token-file) TOKEN_FILE=${2:?}; shift ;;
    --conf-dir) CONF_DIR=${2:?}; shift ;;
    --run-dir) RUN_DIR=${2:?}; shift ;;
    --bridge-conf) BRIDGE_CONF=${2:?}; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
[ -n "$ACTION" ] || die "usage: setup-bridge.sh [--dry-run] check|setup|destroy [options]"

[[ $BR =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "--bridge '$BR' is not a valid interface name"
[[ $CIDR =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]] || die "--cidr '$CIDR' is not ADDR/LEN"
o1=${BASH_REMATCH[1]}; o2=${BASH_REMATCH[2]}; o3=${BASH_REMATCH[3]}; o4=${BASH_REMATCH[4]}; LEN=${BASH_REMATCH[5]}
for o in "$o1" "$o2" "$o3" "$o4"; do [ "$o" -le 255 ] || die "--cidr '$CIDR' has an octet over 255"; done
[ "$LEN" -ge 8 ] && [ "$LEN" -le 30 ] || die "--cidr prefix must be between 8 and 30"
ADDR=$o1.$o2.$o3.$o4
ip2int() { local IFS=.; set -- $1; echo $(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 )); }
int2ip() { echo "$(( ($1 >> 24) & 255 )).$(( ($1 >> 16) & 255 )).$(( ($1 >> 8) & 255 )).$(( $1 & 255 ))"; }
MASK=$(( (0xffffffff << (32 - LEN)) & 0xffffffff ))
NET=$(( $(ip2int "$ADDR") & MASK ))
SUBNET=$(int2ip "$NET")/$LEN
if [ -z "$RANGE" ]; then
  [ "$LEN" -le 24 ] || die "--dhcp-range is required for prefixes longer than /24"
  RANGE="$(int2ip $((NET + 50))),$(int2ip $((NET + 200)))"
fi
[[ $RANGE =~ ^[0-9.]+,[0-9.]+$ ]] || die "--dhcp-range '$RANGE' is not FIRST,LAST"
if [ "$UPLINK_SET" = 0 ]; then UPLINK=$(ip route show default 2>/dev/null | awk '/default/{for(i=1;i<NF;i++) if($i=="dev"){print $(i+1); exit}}'); fi
[ -z "$UPLINK" ] || [[ $UPLINK =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "--uplink '$UPLINK' is not a valid interface name"
for p in "$SOCKET" "$CONF_DIR" "$BRIDGE_CONF" ${TOKEN_FILE:+"$TOKEN_FILE"} ${RUN_DIR:+"$RUN_DIR"}; do
  [[ $p =~ ^/[A-Za-z0-9_./-]*$ ]] || die "path '$p' must be absolute, of A-Z a-z 0-9 _ . - /"
done
RUN_DIR=${RUN_DIR:-/var/lib/vmm/bridge-$BR}
TABLE=vmm_${BR//[.-]/_}
DNSMASQ_CONF=$CONF_DIR/dnsmasq-$BR.conf
HOOK_CONF=$CONF_DIR/dhcp-hook.conf
PIDFILE=$RUN_DIR/dnsmasq.pid

run() {
  if [ "$DRY" = 1 ]; then echo "+ $*"; else "$@"; fi
}
# write FILE MODE < content
write() {
  local content; content=$(cat)
  if [ "$DRY" = 1 ]; then printf '+ write %s (mode %s):\n%s\n' "$1" "$2" "$content" | sed '2,$s/^/|   /'; return; fi
  mkdir -p "$(dirname "$1")"
  local tmp; tmp=$(mktemp "$1.XXXXXX")
  printf '%s\n' "$content" > "$tmp"; chmod "$2" "$tmp"; mv -f "$tmp" "$1"
}

nft_rules() {
  cat <<NFT
table inet $TABLE {
  # DHCP and DNS from guests on the bridge to this host.
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "$BR" udp dport { 67, 53 } accept
    iifname "$BR" tcp dport 53 accept
  }
  # Guests may go out; replies may come back; connections a DNAT rule sent
  # to a guest (vmmd's nat port forwards) may come in; nothing else is
  # routed to them.
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "$BR" accept
    oifname "$BR" ct state established,related accept
    oifname "$BR" ct status dnat accept
    oifname "$BR" drop
  }
}
NFT
  if [ -n "$UPLINK" ]; then
    cat <<NFT
table ip ${TABLE}_nat {
  # Guests' traffic leaves with the uplink's address.
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr $SUBNET oifname "$UPLINK" masquerade
  }
}
NFT
  fi
}

# The dnsmasq config comes from the project's one generator (the same the
# daemon uses for vmnet networks and the tests use): it needs the built
# checkout (npm run build).
GEN=$ROOT/dist/server/net/dnsmasq-config-cli.js
dnsmasq_conf() {
  [ -f "$GEN" ] || die "$GEN is missing: build the checkout first (npm run build)"
  command -v node >/dev/null || die "node is not on PATH (needed for the dnsmasq config generator)"
  node "$GEN" --writer "setup-bridge.sh for bridge $BR" --interface "$BR" \
    --range-start "${RANGE%,*}" --range-end "${RANGE#*,}" --netmask "$(int2ip "$MASK")" \
    --router "$ADDR" --script "$HOOK" \
    --lease-file "$RUN_DIR/dnsmasq.leases" --pid-file "$PIDFILE" --log-file "$RUN_DIR/dnsmasq.log"
}

hook_conf() {
  echo "VMM_SOCKET=$SOCKET"
  [ -z "$TOKEN_FILE" ] || echo "VMM_LEASE_TOKEN_FILE=$TOKEN_FILE"
  echo "VMM_HOOK_LOG=$RUN_DIR/dhcp-hook.log"
}

dnsmasq_running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# The bridge's own MAC (server/host/iproute.ts bridgeMac: locally
# administered, from the name). Without one a bridge takes the lowest MAC of
# its ports and changes it whenever a TAP comes or goes, and guests that
# cached the old one answer into the void until their ARP entry expires.
bridge_mac() { printf 'vmm-bridge:%s' "$1" | sha256sum | sed -E 's/^(..)(..)(..)(..)(..).*/02:\1:\2:\3:\4:\5/'; }

do_setup() {
  if ! ip link show "$BR" >/dev/null 2>&1; then
    run ip link add "$BR" address "$(bridge_mac "$BR")" type bridge
  elif [ "$(cat "/sys/class/net/$BR/addr_assign_type" 2>/dev/null)" != 3 ]; then
    # An older bridge whose MAC follows its ports: give it its own.
    run ip link set dev "$BR" address "$(bridge_mac "$BR")"
  fi
  if ! ip -4 addr show dev "$BR" 2>/dev/null | grep -q "inet $CIDR"; then
    run ip addr add "$CIDR" dev "$BR"
  fi
  run ip link set "$BR" up
  if ! grep -qx "allow $BR" "$BRIDGE_CONF" 2>/dev/null; then
    if [ "$DRY" = 1 ]; then echo "+ append 'allow $BR' to $BRIDGE_CONF"; else mkdir -p "$(dirname "$BRIDGE_CONF")"; echo "allow $BR" >> "$BRIDGE_CONF"; fi
  fi
  run mkdir -p "$RUN_DIR"
  conf=$(dnsmasq_conf) || exit 2
  printf '%s\n' "$conf" | write "$DNSMASQ_CONF" 0644
  hook_conf | write "$HOOK_CONF" 0644
  if ! dnsmasq_running; then
    # VMM_HOOK_CONF tells the hook where its settings are.
    run env VMM_HOOK_CONF="$HOOK_CONF" dnsmasq --conf-file="$DNSMASQ_CONF"
  fi
  run sysctl -q -w net.ipv4.ip_forward=1
  if nft list table inet "$TABLE" >/dev/null 2>&1; then run nft delete table inet "$TABLE"; fi
  if nft list table ip "${TABLE}_nat" >/dev/null 2>&1; then run nft delete table ip "${TABLE}_nat"; fi
  if [ "$DRY" = 1 ]; then echo "+ nft -f - <<EOF"; nft_rules | sed 's/^/|   /'; echo "+ EOF"; else nft_rules | nft -f -; fi
  [ "$DRY" = 1 ] || echo "setup-bridge: $BR ($CIDR) ready; DHCP $RANGE; uplink ${UPLINK:-none}"
}

do_check() {
  local bad=0
  ok() { echo "ok       $*"; }
  missing() { echo "missing  $*"; bad=1; }
  if ip link show "$BR" >/dev/null 2>&1; then ok "bridge $BR"; else missing "bridge $BR"; fi
  if ip -4 addr show dev "$BR" 2>/dev/null | grep -q "inet $CIDR"; then ok "address $CIDR on $BR"; else missing "address $CIDR on $BR"; fi
  if ip link show "$BR" 2>/dev/null | grep -q "state UP\|,UP"; then ok "$BR is up"; else missing "$BR is up"; fi
  if [ "$(cat "/sys/class/net/$BR/addr_assign_type" 2>/dev/null)" = 3 ]; then ok "$BR has a MAC of its own"; else missing "$BR has a MAC of its own (not its ports')"; fi
  if grep -qx "allow $BR" "$BRIDGE_CONF" 2>/dev/null; then ok "allow $BR in $BRIDGE_CONF"; else missing "allow $BR in $BRIDGE_CONF"; fi
  if [ -f "$DNSMASQ_CONF" ]; then ok "dnsmasq config $DNSMASQ_CONF"; else missing "dnsmasq config $DNSMASQ_CONF"; fi
  if dnsmasq_running; then ok "dnsmasq running (pid $(cat "$PIDFILE"))"; else missing "dnsmasq running (pid file $PIDFILE)"; fi
  if [ -x "$HOOK" ]; then ok "hook $HOOK"; else missing "hook $HOOK (executable)"; fi
  if [ "$(sysctl -n net.ipv4.ip_forward 2>/dev/null)" = 1 ]; then ok "net.ipv4.ip_forward=1"; else missing "net.ipv4.ip_forward=1"; fi
  if nft list table inet "$TABLE" >/dev/null 2>&1; then ok "nftables table inet $TABLE"; else missing "nftables table inet $TABLE"; fi
  if [ -n "$UPLINK" ]; then
    if nft list table ip "${TABLE}_nat" >/dev/null 2>&1; then ok "masquerade $SUBNET via $UPLINK"; else missing "masquerade $SUBNET via $UPLINK (table ip ${TABLE}_nat)"; fi
  fi
  return $bad
}

do_destroy() {
  if dnsmasq_running; then run kill "$(cat "$PIDFILE")"; fi
  if nft list table inet "$TABLE" >/dev/null 2>&1; then run nft delete table inet "$TABLE"; fi
  if nft list table ip "${TABLE}_nat" >/dev/null 2>&1; then run nft delete table ip "${TABLE}_nat"; fi
  if grep -qx "allow $BR" "$BRIDGE_CONF" 2>/dev/null; then
    if [ "$DRY" = 1 ]; then echo "+ remove 'allow $BR' from $BRIDGE_CONF"; else
      grep -vx "allow $BR" "$BRIDGE_CONF" > "$BRIDGE_CONF.tmp" || true; mv -f "$BRIDGE_CONF.tmp" "$BRIDGE_CONF"; fi
  fi
  run rm -f "$DNSMASQ_CONF"
  if ip link show "$BR" >/dev/null 2>&1; then run ip link del "$BR"; fi
  [ "$DRY" = 1 ] || echo "setup-bridge: $BR removed (leases kept in $RUN_DIR; $HOOK_CONF kept for other bridges)"
}

if [ "$(id -u)" != 0 ] && [ "$DRY" = 0 ] && [ "$ACTION" != check ]; then die "$ACTION needs root (or use --dry-run)"; fi
case "$ACTION" in
  setup) do_setup ;;
  check) do_check ;;
  destroy) do_destroy ;;
esac

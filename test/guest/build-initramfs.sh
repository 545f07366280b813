#!/usr/bin/env bash
# build-initramfs.sh -- builds the e2e test guest's initramfs: busybox-static
# plus the kernel modules it needs, and an /init that brings the network up,
# serves HTTP and TCP echo, and powers off on an ACPI power-button press.
#
#   KDIR=.tools/guest/kernel OUT=.tools/guest/initramfs.cpio.gz test/guest/build-initramfs.sh
#
# Inputs : KDIR  a Debian cloud kernel unpacked with `dpkg -x`
#          BUSYBOX  busybox-static (default /bin/busybox)
# Output : OUT, a gzip'ed newc cpio (~1.2 MB)
#          ROOTFS_OUT (optional): the same tree as an ext4 disk image
#          (mkfs.ext4 -d, 64 MiB, label vmmroot) that vmm.root= boots from
#
# What /init does (see the heredoc below):
#   1. mounts proc/sys/devtmpfs, installs the busybox applets
#   2. insmods the modules in dependency order (lib/modules/load-order)
#   3. brings up lo and every ethN; eth0 gets DHCP (udhcpc -s our script,
#      sending the hostname) or, with vmm.dhcp=0, vmm.ip=<cidr> vmm.gw=<ip>;
#      every further ethN gets DHCP in the background (address only: the
#      default route and the reported IP stay eth0's)
#   4. httpd on :8080 (page: hostname, IP, MAC; /cgi-bin/peer: the client's
#      address as the guest sees it), TCP echo on :8081
#   5. prints "VMM-GUEST-READY ip=<ip> mac=<mac>" on the console (ttyS0)
#   6. waits for a key event on the ACPI "Power Button" input device (QMP
#      system_powerdown), prints "VMM-GUEST-POWEROFF" and runs poweroff -f
#   7. vmm.root=DEV: after loading the modules, mounts DEV (the ext4 image
#      of ROOTFS_OUT) and switch_roots into it; the same /init then runs from
#      the disk, counts its boots in /var/boot-count and prints
#      "VMM-ROOTFS boot=N"
#   8. a cidata seed drive (ISO 9660) on any /dev/vdX is mounted at
#      /mnt/seed and its files printed base64-encoded between
#      "VMM-SEED-BEGIN NAME" and "VMM-SEED-END NAME"
#   9. vmm.shell=1: an interactive shell on the console (ttyS0)
# Kernel command line knobs: vmm.hostname=NAME vmm.dhcp=0 vmm.ip=CIDR vmm.gw=IP
#   vmm.root=DEV vmm.shell=1 vmm.trace=1 (boot steps with their uptime)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KDIR=${KDIR:-$HERE/../../.tools/guest/kernel}
OUT=${OUT:-$HERE/../../.tools/guest/initramfs.cpio.gz}
BUSYBOX=${BUSYBOX:-/bin/busybox}
for tool in modinfo cpio gzip xz zstd mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "build-initramfs: $tool missing (run scripts/setup-guest.sh)" >&2; exit 1; }
done
[ -x "$BUSYBOX" ] || { echo "build-initramfs: $BUSYBOX missing (install busybox-static: scripts/setup-guest.sh)" >&2; exit 1; }
[ -d "$KDIR/lib/modules" ] || { echo "build-initramfs: no kernel in $KDIR (run scripts/setup-guest.sh)" >&2; exit 1; }
KVER=$(ls "$KDIR/lib/modules" | head -1)
MODROOT=$KDIR/lib/modules/$KVER
MODDIR=$MODROOT/kernel

mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d "$(dirname "$OUT")/initramfs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"/{bin,sbin,proc,sys,dev,tmp,etc/udhcpc,www,lib/modules}
cp "$BUSYBOX" "$WORK/bin/busybox"

# Modules, resolved with `modinfo -F depends` in post-order so each loads
# after what it needs (virtio_ring before virtio, ...). A dpkg -x'd kernel
# has no modules.dep and busybox insmod loads exactly one file. Modules
# built into this kernel (modules.builtin) are skipped.
#   virtio_pci virtio_net virtio_blk: devices QEMU gives the guest
#   button: ACPI power button (turns system_powerdown into a key event)
#   evdev:  /dev/input/eventN, which /init watches for that key event
#   isofs:  the cloud-init seed drive (ISO 9660, label cidata)
WANT=${WANT:-"virtio_pci virtio_net virtio_blk button evdev isofs"}
declare -A SEEN=()
ORDER=()
is_builtin() {
  local n=$1 alt
  alt=$(echo "$n" | tr _ -)
  grep -qE "/($n|$alt)\.ko\$" "$MODROOT/modules.builtin" 2>/dev/null
}
modpath() {
  local alt
  alt=$(echo "$1" | tr _ -)
  find "$MODDIR" \( -name "$1.ko" -o -name "$1.ko.*" -o -name "$alt.ko" -o -name "$alt.ko.*" \) | head -1
}
resolve() {
  local name=$1 f dep
  if [ -n "${SEEN[$name]:-}" ]; then return 0; fi
  SEEN[$name]=1
  if is_builtin "$name"; then echo "module $name: built in"; return 0; fi
  f=$(modpath "$name")
  if [ -z "$f" ]; then echo "build-initramfs: module $name neither built in nor found under $MODDIR" >&2; exit 1; fi
  for dep in $(modinfo -F depends "$f" | tr , ' '); do resolve "$dep"; done
  ORDER+=("$f")
}
for m in $WANT; do resolve "$m"; done
: > "$WORK/lib/modules/load-order"
for f in "${ORDER[@]}"; do
  b=$(basename "$f"); b=${b%.xz}; b=${b%.zst}
  # busybox insmod cannot read compressed modules.
  case "$f" in
    *.xz) xz -dc "$f" > "$WORK/lib/modules/$b" ;;
    *.zst) zstd -qdc "$f" > "$WORK/lib/modules/$b" ;;
    *) cp "$f" "$WORK/lib/modules/$b" ;;
  esac
  echo "$b" >> "$WORK/lib/modules/load-order"
done
echo "module load order: $(tr '\n' ' ' < "$WORK/lib/modules/load-order")"

# GET /cgi-bin/peer on :8080 answers with the address the guest sees its
# client at ("peer <addr> <port>"): nat forwards keep it, relays do not.
mkdir -p "$WORK/www/cgi-bin"
cat > "$WORK/www/cgi-bin/peer" <<'S'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\npeer %s %s\n' "$REMOTE_ADDR" "$REMOTE_PORT"
S
chmod +x "$WORK/www/cgi-bin/peer"

# udhcpc event script: applies the lease and records the address for /init.
cat > "$WORK/etc/udhcpc/default.script" <<'S'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    # One netlink change: the address appears with its prefix at once.
    # `ifconfig IF IP netmask M` sets the address with its class mask (/8
    # for 10.x), then deletes and re-adds it with M; the guest answers ARP
    # in between, and a SYN that arrives during the re-add is dropped (the
    # client waits out TCP's 1 s retransmit), as bench/start.ts caught.
    ip addr replace "$ip/${mask:-24}" broadcast + dev "$interface"
    ip link set "$interface" up
    # Further NICs only get their address.
    [ "$interface" = eth0 ] || exit 0
    if [ -n "$router" ]; then
      ip route del default 2>/dev/null
      for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    fi
    # The DNS server for probes by name (no /etc/resolv.conf: it sends the
    # static busybox's libc resolver down a path that crashes).
    [ -n "$dns" ] && echo "${dns%% *}" > /tmp/dns
    echo "$ip" > /tmp/lease-ip.new && mv /tmp/lease-ip.new /tmp/lease-ip ;;
esac
exit 0
S
chmod +x "$WORK/etc/udhcpc/default.script"

# The power-button watcher: reads struct input_event records (24 bytes on
# x86_64: timeval, u16 type, u16 code, s32 value) from the button's evdev
# node and powers off on EV_KEY(1) KEY_POWER(116) press(1). Anything else
# (a failed read, a release, a SYN) keeps it waiting.
cat > "$WORK/bin/powerbutton" <<'S'
#!/bin/sh
dev=$1
while :; do
  ev=$(dd if="$dev" bs=24 count=1 2>/dev/null | od -An -tu2 -j16 -N6 2>/dev/null)
  if [ -z "$ev" ]; then sleep 1; continue; fi  # not there yet / failed read
  set -- $ev
  [ "$1" = 1 ] && [ "$2" = 116 ] && [ "$3" = 1 ] && break
done
echo "VMM-GUEST-POWEROFF"
sync
poweroff -f
S
chmod +x "$WORK/bin/powerbutton"

cat > "$WORK/init" <<'S'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
HN=vmm-guest DHCP=1 SIP= SGW= PROBE= TRIES=60 TRACE=0
for a in $(cat /proc/cmdline); do
  case "$a" in
    vmm.trace=*) TRACE=${a#vmm.trace=} ;;
    vmm.hostname=*) HN=${a#vmm.hostname=} ;;
    vmm.dhcp=*) DHCP=${a#vmm.dhcp=} ;;
    vmm.ip=*) SIP=${a#vmm.ip=} ;;
    vmm.gw=*) SGW=${a#vmm.gw=} ;;
    vmm.probe=*) PROBE=${a#vmm.probe=} ;;
    vmm.probe_tries=*) TRIES=${a#vmm.probe_tries=} ;;
  esac
done
# vmm.trace=1: "VMM-T <seconds since boot> <step>" on the console at each
# step, for the boot benchmark (bench/start.ts).
t() { [ "$TRACE" = 1 ] && echo "VMM-T $(cut -d' ' -f1 /proc/uptime) $1"; }
t init
hostname "$HN"
for m in $(cat /lib/modules/load-order); do insmod "/lib/modules/$m" 2>/dev/null || [ -e /etc/vmm-rootfs ] || echo "vmm-init: insmod $m failed"; done
ROOT= SHELL_ON=0
for a in $(cat /proc/cmdline); do
  case "$a" in
    vmm.root=*) ROOT=${a#vmm.root=} ;;
    vmm.shell=*) SHELL_ON=${a#vmm.shell=} ;;
  esac
done
# vmm.root=DEV: continue from the disk (which carries this same /init and
# the marker /etc/vmm-rootfs).
if [ -n "$ROOT" ] && [ ! -e /etc/vmm-rootfs ]; then
  for i in $(seq 1 50); do [ -b "$ROOT" ] && break; sleep 0.1; done
  mkdir -p /newroot
  if mount -t ext4 "$ROOT" /newroot; then
    umount /sys /proc
    exec switch_root /newroot /init
  fi
  echo "vmm-init: cannot mount $ROOT; staying in the initramfs"
fi
if [ -e /etc/vmm-rootfs ]; then
  mount -o remount,rw / 2>/dev/null
  N=$(( $(cat /var/boot-count 2>/dev/null || echo 0) + 1 ))
  mkdir -p /var && echo "$N" > /var/boot-count && sync
  echo "VMM-ROOTFS boot=$N"
fi
# A cidata seed drive: print its files for the host to compare.
mkdir -p /mnt/seed
for d in /dev/vd?; do
  [ -b "$d" ] || continue
  mount -t iso9660 -o ro "$d" /mnt/seed 2>/dev/null || continue
  if [ -e /mnt/seed/meta-data ]; then
    for f in meta-data user-data network-config; do
      [ -e "/mnt/seed/$f" ] || continue
      echo "VMM-SEED-BEGIN $f"
      base64 "/mnt/seed/$f"
      echo "VMM-SEED-END $f"
    done
    break
  fi
  umount /mnt/seed
done

t modules
# Power button: watch every input device the ACPI button driver registered.
for i in 1 2 3 4 5 6 7 8 9 10; do ls /sys/class/input/ 2>/dev/null | grep -q event && break; sleep 0.1; done
PB=0
for d in /sys/class/input/event*; do
  [ -e "$d/device/name" ] || continue
  case "$(cat "$d/device/name")" in
    "Power Button") powerbutton "/dev/input/$(basename "$d")" & PB=$((PB + 1)) ;;
  esac
done
[ "$PB" -gt 0 ] || echo "vmm-init: no ACPI power button input device; system_powerdown will not work"

t input
ip link set lo up
for i in $(seq 1 20); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
t nic
for d in /sys/class/net/eth*; do [ -e "$d" ] && ip link set "$(basename "$d")" up; done
MAC=$(cat /sys/class/net/eth0/address 2>/dev/null || echo none)
if [ "$DHCP" = 0 ]; then
  if [ -n "$SIP" ]; then
    ip addr add "$SIP" dev eth0
    [ -n "$SGW" ] && ip route add default via "$SGW" dev eth0
    echo "${SIP%/*}" > /tmp/lease-ip
  fi
else
  # -b: keep trying in the background; -x hostname: DHCP option 12.
  t dhcp
  udhcpc -s /etc/udhcpc/default.script -i eth0 -x hostname:"$HN" -t 20 -T 1 -b -p /tmp/udhcpc.pid
  for i in $(seq 1 300); do [ -s /tmp/lease-ip ] && break; sleep 0.1; done
  t lease
fi
for d in /sys/class/net/eth*; do
  n=$(basename "$d")
  [ "$n" = eth0 ] || [ ! -e "$d" ] || udhcpc -s /etc/udhcpc/default.script -i "$n" -x hostname:"$HN" -t 20 -T 1 -b -p "/tmp/udhcpc-$n.pid" >/dev/null 2>&1
done
IP=$(cat /tmp/lease-ip 2>/dev/null || echo none)
echo "hello from $HN ip=$IP mac=$MAC" > /www/index.html
httpd -p 8080 -h /www
nc -ll -p 8081 -e cat &
# READY only once both listen: nc starts in the background, and a client
# that connects first gets a reset (which passt passes on to the host side).
for i in $(seq 1 50); do
  grep -qE ':1F90 [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null &&
    grep -qE ':1F91 [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null && break
  sleep 0.1
done
t ready
echo "VMM-GUEST-READY ip=$IP mac=$MAC hostname=$HN"
# vmm.probe=HOST:PORT,...: fetch http://HOST:PORT/ from inside the guest
# (guest-to-guest and guest-to-outside reachability), at most TRIES times a
# target, one line per target on the console.
if [ -n "$PROBE" ]; then
  (
    for t in $(echo "$PROBE" | tr , ' '); do
      r=fail
      host=${t%:*} port=${t##*:}
      for i in $(seq 1 "$TRIES"); do
        # Names are resolved with busybox's own DNS client: the static
        # busybox's libc resolver (NSS) crashes without its shared modules.
        addr=$host
        case "$host" in
          *[!0-9.]*) addr=$(nslookup "$host" "$(cat /tmp/dns 2>/dev/null)" 2>/dev/null | awk '/^Name:/{n=1} n && /^Address/{a=$NF} END{print a}') ;;
        esac
        # nc, not wget: this static busybox's wget segfaults here.
        if [ -n "$addr" ] && printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 "$addr" "$port" > /tmp/probe.out 2>/dev/null &&
          grep -q '^HTTP/1.. 200' /tmp/probe.out; then r=ok; break; fi
        sleep 1
      done
      echo "VMM-PROBE $r $t $(tail -n 1 /tmp/probe.out 2>/dev/null | head -c 80 | tr -d '\r\n')"
      rm -f /tmp/probe.out
    done
    echo "VMM-PROBE-DONE"
  ) &
fi
# vmm.shell=1: a shell on the console, with it as the controlling tty.
if [ "$SHELL_ON" = 1 ]; then
  (while true; do setsid cttyhack sh -i; sleep 1; done) &
fi
# PID 1 must not exit (that panics the kernel); the watcher powers off.
while true; do sleep 3600; done
S
chmod +x "$WORK/init"

(cd "$WORK" && find . | cpio -o -H newc --quiet | gzip -9) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "build-initramfs: $OUT ($(stat -c %s "$OUT") bytes, modules from $KVER)"
if [ -n "${ROOTFS_OUT:-}" ]; then
  # The same tree as a root file system, built by mke2fs from the directory
  # (no loop mounts, no hand-written file system).
  mkdir -p "$WORK/var" "$WORK/newroot"
  : > "$WORK/etc/vmm-rootfs"
  rm -f "$ROOTFS_OUT.tmp"
  mkfs.ext4 -q -F -L vmmroot -d "$WORK" "$ROOTFS_OUT.tmp" 64M
  mv "$ROOTFS_OUT.tmp" "$ROOTFS_OUT"
  echo "build-initramfs: $ROOTFS_OUT (ext4 root file system)"
fi

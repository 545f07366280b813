#!/usr/bin/env bash
# setup-guest.sh -- prepares a fresh Debian 12 machine for the e2e tests: the
# host tools (QEMU, dnsmasq, passt, ...) and the tiny test guest (a Debian
# cloud kernel unpacked with `dpkg -x`, never installed as the host kernel,
# plus a busybox-static initramfs built by test/guest/build-initramfs.sh).
#
# Idempotent; run as root. Every step is skipped when its result is already
# there (packages installed, kernel stamp matching, initramfs newer than its
# inputs). Prints where the kernel and the initramfs are:
#
#   guest kernel: /.../.tools/guest/kernel/boot/vmlinuz-6.1.0-NN-cloud-amd64
#   guest initrd: /.../.tools/guest/initramfs.cpio.gz
#   guest rootfs: /.../.tools/guest/rootfs.raw (ext4, booted with vmm.root=/dev/vda)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
GUEST=$ROOT/.tools/guest
mkdir -p "$GUEST"

if [ "$(id -u)" != 0 ]; then
  echo "setup-guest: must run as root (apt-get install)" >&2
  exit 1
fi

# dnsmasq-base is the binary only: the "dnsmasq" package would also install
# and start a system-wide service listening on every interface.
PKGS=(qemu-system-x86 qemu-utils busybox-static dnsmasq-base passt iproute2
      nftables cpio kmod xz-utils zstd curl e2fsprogs genisoimage
      python3-yaml python3-jsonschema python3-jinja2 python3-configobj
      python3-jsonpatch python3-netifaces python3-requests)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-guest: installing ${missing[*]}"
  apt-get update -qq
  updated=1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup-guest: packages already installed"
fi

# Guest kernel: the newest package the cloud metapackage depends on.
resolve_kpkg() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}
KPKG=$(resolve_kpkg || true)
if [ -z "$KPKG" ] && [ "$updated" = 0 ]; then
  apt-get update -qq
  KPKG=$(resolve_kpkg || true)
fi
if [ -z "$KPKG" ]; then
  echo "setup-guest: cannot resolve the dependency of linux-image-cloud-amd64 (apt-cache depends)" >&2
  exit 1
fi
KDIR=$GUEST/kernel
if [ "$(cat "$KDIR/.stamp" 2>/dev/null || true)" = "$KPKG" ]; then
  echo "setup-guest: kernel $KPKG already unpacked"
else
  echo "setup-guest: downloading $KPKG"
  dl=$(mktemp -d "$GUEST/dl.XXXXXX")
  # apt-get download writes into the current directory; as root it warns
  # that the _apt sandbox user cannot access it, which is harmless.
  (cd "$dl" && chmod 755 . && apt-get download -q "$KPKG")
  rm -rf "$KDIR.new"
  dpkg -x "$dl"/linux-image-*.deb "$KDIR.new"
  rm -rf "$dl" "$KDIR"
  mv "$KDIR.new" "$KDIR"
  echo "$KPKG" > "$KDIR/.stamp"
fi

INITRD=$GUEST/initramfs.cpio.gz
ROOTFS=$GUEST/rootfs.raw
BUILDER=$ROOT/test/guest/build-initramfs.sh
if [ -f "$INITRD" ] && [ -f "$ROOTFS" ] && [ "$INITRD" -nt "$BUILDER" ] && [ "$INITRD" -nt "$KDIR/.stamp" ] && [ "$INITRD" -nt /bin/busybox ]; then
  echo "setup-guest: initramfs and rootfs up to date"
else
  KDIR=$KDIR OUT=$INITRD ROOTFS_OUT=$ROOTFS bash "$BUILDER"
fi

# cloud-init, to validate the user-data a guest read from its seed drive
# (`cloud-init schema`). Unpacked with `dpkg -x` like the kernel, never
# installed: the package would enable cloud-init's services on this host.
# Its Python dependencies are the Debian packages above.
CIDIR=$ROOT/.tools/cloud-init
CIPKG=$(apt-cache policy cloud-init 2>/dev/null | awk '/Candidate:/{print $2}')
if [ -z "$CIPKG" ] || [ "$CIPKG" = "(none)" ]; then
  echo "setup-guest: Debian has no cloud-init candidate (apt-cache policy cloud-init)" >&2
  exit 1
fi
if [ "$(cat "$CIDIR/.stamp" 2>/dev/null || true)" = "$CIPKG" ]; then
  echo "setup-guest: cloud-init $CIPKG already unpacked"
else
  dl=$(mktemp -d "$ROOT/.tools/dl.XXXXXX")
  (cd "$dl" && chmod 755 . && apt-get download -q "cloud-init=$CIPKG")
  rm -rf "$CIDIR.new"
  dpkg -x "$dl"/cloud-init_*.deb "$CIDIR.new"
  rm -rf "$dl" "$CIDIR"
  mv "$CIDIR.new" "$CIDIR"
  echo "$CIPKG" > "$CIDIR/.stamp"
fi

KERNEL=$(ls "$KDIR"/boot/vmlinuz-* | head -1)
echo "guest kernel: $KERNEL"
echo "guest initrd: $INITRD"
echo "guest rootfs: $ROOTFS"

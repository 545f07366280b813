#!/usr/bin/env bash
# build-kernel.sh -- builds the minimal test-guest kernel that bench/start.ts
# boots beside Debian's cloud kernel: Debian's linux-source-6.1, `make
# tinyconfig` plus test/guest/kernel.config, everything built in (no
# modules), and the same busybox initramfs (test/guest/build-initramfs.sh,
# which finds every module it wants in modules.builtin and packs none).
#
#   sudo bash test/guest/build-kernel.sh        (~6 min on 2 cores, once)
#
# Output (OUT, default .tools/guest-min), laid out like .tools/guest so the
# same readers work:
#   OUT/kernel/boot/vmlinuz-<release>
#   OUT/kernel/lib/modules/<release>/modules.builtin
#   OUT/initramfs.cpio.gz
#   OUT/initramfs.cpio      the same, uncompressed: the kernel unpacks a
#                           gzip'ed initramfs on the guest's only vCPU while
#                           its initcalls run (/init 0.1-0.3 s later under
#                           TCG here)
# The source tree stays in SRC (default /var/cache/vmm/kernel-src). Skipped
# when OUT/.stamp matches the source package and the config fragment.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$ROOT/.tools/guest-min}
SRC=${SRC:-/var/cache/vmm/kernel-src}
FRAGMENT=$HERE/kernel.config
PKG=linux-source-6.1

if [ "$(id -u)" != 0 ]; then
  echo "build-kernel: must run as root (apt-get install)" >&2
  exit 1
fi
need=(bc bison flex libelf-dev libssl-dev lz4 make gcc xz-utils zstd busybox-static cpio kmod e2fsprogs)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-kernel: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

candidate() { apt-cache policy "$PKG" | awk '/Candidate:/ && $2 != "(none)" {print $2}'; }
version=$(candidate)
if [ -z "$version" ]; then
  apt-get update -qq
  version=$(candidate)
fi
if [ -z "$version" ]; then
  echo "build-kernel: no candidate for $PKG (apt-cache policy)" >&2
  exit 1
fi
# One build at a time: a second run waits, then finds the stamp current.
mkdir -p "$SRC"
exec 9>"$SRC/.lock"
flock 9
# Downloads a run killed midway left behind.
rm -rf "$SRC"/dl.*

stamp="$PKG $version $(sha256sum "$FRAGMENT" | cut -d' ' -f1) $(sha256sum "$HERE/build-initramfs.sh" | cut -d' ' -f1)"
if [ "$(cat "$OUT/.stamp" 2>/dev/null || true)" = "$stamp" ]; then
  echo "build-kernel: $OUT is up to date ($PKG $version)"
  exit 0
fi

tree=$SRC/$PKG-$version
if [ ! -f "$tree/Makefile" ]; then
  dl=$(mktemp -d "$SRC/dl.XXXXXX")
  trap 'rm -rf "$dl"' EXIT
  echo "build-kernel: downloading $PKG $version"
  # apt-get download writes into the current directory; the _apt sandbox
  # user must be able to enter it.
  chmod 755 "$dl"
  (cd "$dl" && apt-get download -q "$PKG=$version")
  dpkg -x "$dl"/"$PKG"_*.deb "$dl/x"
  rm -rf "$tree.new"
  mkdir -p "$tree.new"
  tar -xJf "$dl"/x/usr/src/"$PKG".tar.xz -C "$tree.new" --strip-components=1
  mv "$tree.new" "$tree"
  rm -rf "$dl"
  trap - EXIT
fi

echo "build-kernel: configuring ($tree)"
make -C "$tree" -s tinyconfig >/dev/null
# (merge_config.sh warns on stderr about every choice the fragment
# overrides; the check below is what matters.)
"$tree"/scripts/kconfig/merge_config.sh -m -O "$tree" "$tree/.config" "$FRAGMENT" >/dev/null 2>&1
make -C "$tree" -s olddefconfig >/dev/null
# Every option the fragment asks for must have survived olddefconfig (a
# dependency it lacks silently drops it).
bad=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) grep -qx "$line" "$tree/.config" || { echo "build-kernel: $line did not survive olddefconfig" >&2; bad=1; } ;;
    "# CONFIG_"*" is not set")
      opt=${line#\# }; opt=${opt%% *}
      ! grep -q "^$opt=" "$tree/.config" || { echo "build-kernel: $opt is still set" >&2; bad=1; } ;;
  esac
done < "$FRAGMENT"
[ "$bad" = 0 ] || exit 1

echo "build-kernel: building bzImage (make -j$(nproc))"
make -C "$tree" -s -j"$(nproc)" bzImage >/dev/null
release=$(make -C "$tree" -s kernelrelease)

new=$OUT.new
rm -rf "$new"
mkdir -p "$new/kernel/boot" "$new/kernel/lib/modules/$release/kernel"
cp "$tree/arch/x86/boot/bzImage" "$new/kernel/boot/vmlinuz-$release"
cp "$tree/modules.builtin" "$new/kernel/lib/modules/$release/"
KDIR=$new/kernel OUT=$new/initramfs.cpio.gz bash "$HERE/build-initramfs.sh"
gzip -dc "$new/initramfs.cpio.gz" > "$new/initramfs.cpio"
echo "$stamp" > "$new/.stamp"
rm -rf "$OUT"
mv "$new" "$OUT"
echo "build-kernel: $OUT/kernel/boot/vmlinuz-$release and $OUT/initramfs.cpio (and .gz)"

// Where scripts/setup-guest.sh puts the e2e test guest (.tools/guest/).
// The getters throw when the files are missing, so a test fails loudly with
// the command that fixes it instead of skipping.
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** .tools/guest under the checkout (override: VMM_GUEST_DIR). */
export function guestDir(): string {
  return process.env.VMM_GUEST_DIR ?? join(root, ".tools", "guest");
}

function missing(what: string, path: string): Error {
  return new Error(`test guest ${what} missing at ${path}: run \`sudo scripts/setup-guest.sh\` first`);
}

/** Path of the guest kernel (vmlinuz unpacked from the Debian cloud kernel .deb). */
export function guestKernel(): string {
  const boot = join(guestDir(), "kernel", "boot");
  const names = existsSync(boot) ? readdirSync(boot).filter((n) => n.startsWith("vmlinuz-")).sort() : [];
  if (names.length === 0) throw missing("kernel", join(boot, "vmlinuz-*"));
  return join(boot, names[names.length - 1]!);
}

/** Path of the ext4 root file system image built with the initramfs (boot with vmm.root=/dev/vda). */
export function guestRootfs(): string {
  const p = join(guestDir(), "rootfs.raw");
  if (!existsSync(p)) throw missing("root file system image", p);
  return p;
}

/** Path of the busybox initramfs built by test/guest/build-initramfs.sh. */
export function guestInitrd(): string {
  const p = join(guestDir(), "initramfs.cpio.gz");
  if (!existsSync(p)) throw missing("initramfs", p);
  return p;
}

// A VM's disks and boot files, resolved from its spec and the images
// directory, and the overlays created for them.
//
// Bus order: the image's overlay (<vm dir>/image.qcow2), then `disk` (a path
// the operator gave, attached as it is), then each extra disk
// (<vm dir>/disk-N.qcow2). Overlays are created once, at the first start,
// with `qemu-img create -b BASE`: QEMU opens the base read-only, so it stays
// byte-identical, and removing the VM (its directory) removes the overlays
// but never a base. An overlay is written to a temporary name and renamed
// into place, so a crash mid-way leaves no half-made disk that later looks
// valid.
import { closeSync, existsSync, openSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { runProgram } from "../host/exec.js";
import { VmmError } from "../errors.js";
import type { ImageCatalog, DiskFormat, ImageEntry } from "./catalog.js";
import type { ExtraDisk } from "./spec.js";

/**
 * Kernel command line when neither the VM nor its image gives one: the serial console, which the
 * console features read.
 */
export const DEFAULT_CMDLINE = "console=ttyS0";

/** One disk as QEMU will open it. */
export interface PlannedDisk {
  path: string;
  format: DiskFormat;
  /** Image backing it (overlays only). */
  image?: string;
  /** Base disk of an overlay. */
  backing?: { path: string; format: DiskFormat };
  /** Requested virtual size in MiB (0: the base disk's). */
  sizeMib: number;
  /** The daemon creates this file when it is missing (overlays and blank disks). */
  managed: boolean;
  /** Field of the spec it came from, for messages. */
  field: string;
}

/** What a VM boots: kernel (none: firmware boots the first disk), initrd, cmdline, disks. */
export interface BootPlan {
  kernel: string;
  initrd: string;
  cmdline: string;
  disks: PlannedDisk[];
}

/** The parts of a VM spec the plan reads. */
export interface BootInput {
  kernel: string;
  initrd: string;
  cmdline: string;
  disk: string;
  image?: string;
  imageSizeMib?: number;
  disks?: ExtraDisk[];
}

/** Format of an operator-given disk path, from its name. */
export function diskFormatOf(path: string): DiskFormat {
  return path.endsWith(".qcow2") ? "qcow2" : "raw";
}

/**
 * Resolves kernel, initrd, cmdline and disks. Pure apart from `image()`,
 * which looks an image up (throwing not_found / precondition). The VM's own
 * kernel, initrd and cmdline win over the image's.
 */
export function planBoot(s: BootInput, vmDir: string, image: (name: string, field: string) => ImageEntry): BootPlan {
  const disks: PlannedDisk[] = [];
  let img: ImageEntry | undefined;
  if (s.image !== undefined && s.image !== "") {
    img = image(s.image, "config.image");
    if (img.disk) {
      disks.push({ path: join(vmDir, "image.qcow2"), format: "qcow2", image: img.name, backing: { path: img.disk.path, format: img.disk.format }, sizeMib: s.imageSizeMib ?? 0, managed: true, field: "config.image" });
    }
  }
  if (s.disk !== "") disks.push({ path: s.disk, format: diskFormatOf(s.disk), sizeMib: 0, managed: false, field: "config.disk" });
  (s.disks ?? []).forEach((d, i) => {
    const field = `config.disks[${i}]`;
    const path = join(vmDir, `disk-${i}.qcow2`);
    if (d.image === "") {
      disks.push({ path, format: "qcow2", sizeMib: d.sizeMib, managed: true, field });
      return;
    }
    const e = image(d.image, `${field}.image`);
    if (!e.disk) throw new VmmError("precondition", `${field}.image: image "${e.name}" has no disk (disk.qcow2 or disk.raw)`);
    disks.push({ path, format: "qcow2", image: e.name, backing: { path: e.disk.path, format: e.disk.format }, sizeMib: d.sizeMib, managed: true, field });
  });
  return {
    kernel: s.kernel !== "" ? s.kernel : (img?.kernel ?? ""),
    initrd: s.initrd !== "" ? s.initrd : s.kernel === "" ? (img?.initrd ?? "") : "",
    cmdline: s.cmdline !== "" ? s.cmdline : (img?.cmdline ?? DEFAULT_CMDLINE),
    disks,
  };
}

/** `qemu-img create` argv for a planned managed disk (after the binary). Pure. */
export function qemuImgCreateArgv(d: PlannedDisk, target: string): string[] {
  const a = ["create", "-q", "-f", "qcow2"];
  // -F names the backing format: without it QEMU would probe the base, and a
  // raw base whose first bytes look like qcow2 could make it follow a
  // backing file named inside the guest's own data.
  if (d.backing) a.push("-b", d.backing.path, "-F", d.backing.format);
  a.push(target);
  if (d.sizeMib > 0) a.push(`${d.sizeMib}M`);
  return a;
}

/**
 * Creates every managed disk of `plan` that does not exist yet. An image
 * disk smaller than its base is refused (the guest would lose the end of its
 * file system).
 */
export async function ensureDisks(plan: BootPlan, catalog: ImageCatalog, qemuImg = "qemu-img"): Promise<void> {
  for (const d of plan.disks) {
    if (!d.managed || existsSync(d.path)) continue;
    if (d.backing && d.sizeMib > 0) {
      const base = await catalog.inspect(catalog.get(d.image!, d.field), d.field);
      if (d.sizeMib * 1024 * 1024 < base) throw new VmmError("invalid", `${d.field}: size ${d.sizeMib} MiB is smaller than image "${d.image}" (${Math.ceil(base / 1048576)} MiB)`, { problems: [{ field: d.field, message: "smaller than the image" }] });
    } else if (d.backing) {
      await catalog.inspect(catalog.get(d.image!, d.field), d.field);
    }
    const tmp = `${d.path}.tmp`;
    rmSync(tmp, { force: true });
    try {
      await runProgram([qemuImg, ...qemuImgCreateArgv(d, tmp)], { timeoutMs: 60_000 });
      renameSync(tmp, d.path);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }
}

/** A disk as GetInfo reports it. */
export interface DiskView {
  index: number;
  path: string;
  format: DiskFormat;
  image: string;
  /** Virtual size in MiB; 0 when the file does not exist yet. */
  sizeMib: number;
}

/** Virtual size of a qcow2 file (header bytes 24-31, big-endian) or a raw file's length; 0 when unreadable. */
export function virtualSizeOf(path: string, format: DiskFormat): number {
  try {
    if (format === "raw") return statSync(path).size;
    const fd = openSync(path, "r");
    try {
      const h = Buffer.alloc(32);
      if (readSync(fd, h, 0, 32, 0) < 32 || h.readUInt32BE(0) !== 0x514649fb) return 0; // "QFI\xfb"
      return Number(h.readBigUInt64BE(24));
    } finally {
      closeSync(fd);
    }
  } catch {
    return 0;
  }
}

/** The disks of a spec in bus order, without looking images up (they may be gone). */
export function describeDisks(s: BootInput, vmDir: string): DiskView[] {
  const out: Omit<DiskView, "index" | "sizeMib">[] = [];
  if (s.image !== undefined && s.image !== "") out.push({ path: join(vmDir, "image.qcow2"), format: "qcow2", image: s.image });
  if (s.disk !== "") out.push({ path: s.disk, format: diskFormatOf(s.disk), image: "" });
  (s.disks ?? []).forEach((d, i) => out.push({ path: join(vmDir, `disk-${i}.qcow2`), format: "qcow2", image: d.image }));
  return out.map((d, index) => ({ ...d, index, sizeMib: Math.floor(virtualSizeOf(d.path, d.format) / 1048576) }));
}

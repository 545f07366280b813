// The images directory ([images] dir): one directory per image,
//
//   <dir>/<NAME>/disk.qcow2 | disk.raw   base disk (at most one of the two)
//   <dir>/<NAME>/vmlinuz                 kernel booted by default (optional)
//   <dir>/<NAME>/initrd                  initrd booted by default (optional)
//   <dir>/<NAME>/cmdline                 kernel command line, one line (optional)
//
// Why strict: an image name arrives from the API and becomes a path, and the
// paths end up in QEMU's argv and in qcow2 headers. A name with "/" or ".."
// would reach outside the directory, and a symlink inside it could point a
// guest at any host file (/etc/shadow as a "disk"). So names are held to a
// small character set, every file must be a regular file whose real path
// stays inside the images directory, and a qcow2 base must not itself have a
// backing file or an external data file (either would open a second host
// file the operator did not put there).
import { existsSync, lstatSync, readFileSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join, sep } from "node:path";
import { Problems, VmmError } from "../errors.js";
import { runProgram } from "../host/exec.js";

/** Image names: 1-63 of [A-Za-z0-9._-], starting with a letter or digit. */
export const IMAGE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** The longest cmdline file accepted (the kernel's own limit is smaller on most arches). */
export const MAX_CMDLINE_BYTES = 4096;

/**
 * Formats of an image's disk (disk.qcow2 or disk.raw); QEMU is always told which, never left to
 * guess.
 */
export type DiskFormat = "qcow2" | "raw";

/** One image as found on disk. Paths are absolute and inside the images directory. */
export interface ImageEntry {
  name: string;
  /** Base disk; undefined: the image has none (kernel-only image). */
  disk?: { path: string; format: DiskFormat; fileBytes: number };
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** Why the image cannot be used; undefined: usable. */
  problem?: string;
}

/** Adds a problem to `p` unless `name` is a valid image name. */
export function checkImageName(p: Problems, field: string, name: string): void {
  if (name === "") p.add(field, "is required");
  else if (name.length > 63) p.add(field, `is ${name.length} characters; at most 63`);
  else if (!IMAGE_NAME_RE.test(name)) p.add(field, "must be 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit");
}

/** What `qemu-img info --output=json` says about a base disk that matters here. */
export interface DiskFacts {
  format: string;
  virtualSize: number;
  backingFile?: string;
  dataFile?: string;
}

/** Parses `qemu-img info --output=json`; throws when it is not that. Pure. */
export function parseQemuImgInfo(json: string): DiskFacts {
  const j = JSON.parse(json) as Record<string, unknown>;
  const format = j["format"];
  const size = j["virtual-size"];
  if (typeof format !== "string" || typeof size !== "number") throw new Error("qemu-img info: no format or virtual-size in its output");
  const spec = (j["format-specific"] as { data?: Record<string, unknown> } | undefined)?.data;
  const backing = j["backing-filename"] ?? j["full-backing-filename"];
  const dataFile = spec?.["data-file"];
  return {
    format,
    virtualSize: size,
    ...(typeof backing === "string" ? { backingFile: backing } : {}),
    ...(typeof dataFile === "string" ? { dataFile } : {}),
  };
}

/** The images directory. Reads the file system on every call: images come and go. */
export class ImageCatalog {
  constructor(
    readonly dir: string,
    private readonly qemuImg = "qemu-img",
  ) {}

  /** The real path of the directory, or undefined when it does not exist. */
  private root(): string | undefined {
    try {
      return realpathSync(this.dir);
    } catch {
      return undefined;
    }
  }

  /** Every image, sorted by name; unusable ones carry a `problem`. */
  list(): ImageEntry[] {
    const root = this.root();
    if (root === undefined) return [];
    return readdirSync(root)
      .filter((n) => !n.startsWith("."))
      .sort()
      .map((n) => this.scan(root, n));
  }

  /** The image `name`; throws not_found, or precondition when it is unusable. */
  get(name: string, field = "image"): ImageEntry {
    const p = new Problems();
    checkImageName(p, field, name);
    p.throwIfAny();
    const root = this.root();
    if (root === undefined || !existsSync(join(root, name))) throw new VmmError("not_found", `${field}: image "${name}" not found in ${this.dir}`);
    const e = this.scan(root, name);
    if (e.problem !== undefined) throw new VmmError("precondition", `${field}: image "${name}" is unusable: ${e.problem}`);
    return e;
  }

  /**
   * Asks qemu-img about the base disk of `e`: checks that the format is the
   * one its file name says and that it opens no other file. Returns the
   * virtual size in bytes.
   */
  async inspect(e: ImageEntry, field = "image"): Promise<number> {
    if (!e.disk) throw new VmmError("precondition", `${field}: image "${e.name}" has no disk (disk.qcow2 or disk.raw)`);
    const out = await runProgram([this.qemuImg, "info", "--output=json", "-f", e.disk.format, e.disk.path], { timeoutMs: 30_000 });
    const facts = parseQemuImgInfo(out);
    if (facts.format !== e.disk.format) throw new VmmError("precondition", `${field}: ${e.disk.path} is ${facts.format}, not ${e.disk.format}`);
    if (facts.backingFile !== undefined)
      throw new VmmError("precondition", `${field}: base disk ${e.disk.path} has a backing file (${facts.backingFile}); flatten it (qemu-img convert -O qcow2)`);
    if (facts.dataFile !== undefined) throw new VmmError("precondition", `${field}: base disk ${e.disk.path} has an external data file; flatten it (qemu-img convert -O qcow2)`);
    return facts.virtualSize;
  }

  private scan(root: string, name: string): ImageEntry {
    const e: ImageEntry = { name };
    if (!IMAGE_NAME_RE.test(name)) return { name, problem: "the directory name is not a valid image name (1-63 of A-Z a-z 0-9 . _ -)" };
    const dir = join(root, name);
    const inside = (real: string) => real.startsWith(root + sep);
    let realDir: string;
    try {
      realDir = realpathSync(dir);
    } catch (err) {
      return { name, problem: `cannot resolve ${dir}: ${(err as Error).message}` };
    }
    if (!inside(realDir) || !statSync(realDir).isDirectory()) return { name, problem: `${dir} is not a directory inside ${root}` };
    // Each file: a regular file whose real path stays inside the images directory.
    const file = (base: string): string | undefined | { problem: string } => {
      const path = join(dir, base);
      let st;
      try {
        st = lstatSync(path);
      } catch {
        return undefined;
      }
      const real = st.isSymbolicLink() ? (() => { try { return realpathSync(path); } catch { return ""; } })() : path;
      if (real === "" || !inside(real)) return { problem: `${base} points outside ${root}` };
      if (!statSync(real).isFile()) return { problem: `${base} is not a regular file` };
      return real;
    };
    const qcow2 = file("disk.qcow2");
    const raw = file("disk.raw");
    for (const f of [qcow2, raw]) if (typeof f === "object") return { name, problem: f.problem };
    if (qcow2 !== undefined && raw !== undefined) return { name, problem: "has both disk.qcow2 and disk.raw; keep one" };
    const disk = (qcow2 ?? raw) as string | undefined;
    if (disk !== undefined) e.disk = { path: disk, format: qcow2 !== undefined ? "qcow2" : "raw", fileBytes: statSync(disk).size };
    for (const [key, base] of [["kernel", "vmlinuz"], ["initrd", "initrd"]] as const) {
      const f = file(base);
      if (typeof f === "object") return { name, problem: f.problem };
      if (f !== undefined) e[key] = f;
    }
    const c = file("cmdline");
    if (typeof c === "object") return { name, problem: c.problem };
    if (c !== undefined) {
      const text = readFileSync(c, "utf8").replace(/\r?\n$/, "");
      if (Buffer.byteLength(text) > MAX_CMDLINE_BYTES || /[\u0000-\u001f\u007f]/.test(text)) return { name, problem: `cmdline must be one line of at most ${MAX_CMDLINE_BYTES} bytes without control characters` };
      e.cmdline = text;
    }
    if (e.disk === undefined && e.kernel === undefined) return { name, problem: "has neither a disk (disk.qcow2, disk.raw) nor a kernel (vmlinuz)" };
    for (const path of [e.disk?.path, e.kernel, e.initrd]) {
      // Paths land in QEMU option values, where a comma starts a sub-option.
      if (path !== undefined && /[,\s]/.test(path)) return { name, problem: `${path} contains a comma or white space, which QEMU option values cannot carry` };
    }
    return e;
  }
}

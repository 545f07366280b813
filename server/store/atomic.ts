// Crash-safe file operations. Every record the daemon keeps is written with
// writeFileAtomic: write a temp file in the same directory, fsync it, rename
// it over the target, fsync the directory. A `kill -9` (or power loss) at any
// instant leaves either the old or the new content, never a torn file.
// State that cannot outlive the host's uptime (leases: they end with their
// guest) skips the fsyncs: the rename alone survives any crash of the daemon.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/**
 * Prefix of the temporary files writeFileAtomic renames into place; a crash can leave one behind,
 * and readers skip them.
 */
export const TMP_PREFIX = ".tmp-";

/** Makes `dir`'s entries (a rename, a new file) durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** How writeFileAtomic replaces a file. */
export interface AtomicWrite {
  /** New files get this mode. Default 0o600. */
  mode?: number;
  /**
   * fsync the file and its directory (default true): the new content
   * survives power loss too. Without, a crash of the daemon (`kill -9`)
   * still leaves the old or the new content (the rename is atomic), but
   * power loss may leave the old content or an empty file: only for state
   * that ends with the host's uptime anyway, and whose reader tolerates it.
   */
  durable?: boolean;
}

/**
 * Replaces `path` with `data` so a crash at any instant leaves the old or the new content (temp
 * file, fsync, rename, fsync the directory).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWrite = {}): void {
  const { mode = 0o600, durable = true } = opts;
  const dir = dirname(path);
  const tmp = join(dir, `${TMP_PREFIX}${basename(path)}.${randomBytes(4).toString("hex")}`);
  const fd = openSync(tmp, "wx", mode);
  try {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (durable) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  if (durable) fsyncDir(dir);
}

/** writeFileAtomic of `value` as indented JSON with a final newline. */
export function writeJsonAtomic(path: string, value: unknown, opts: AtomicWrite = {}): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n", opts);
}

/** Parses the JSON file at `path` as T, unchecked: callers validate what they read. */
export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

/** Creates `dir` (and parents) and fsyncs its parent so the entry is durable. */
export function mkdirDurable(dir: string, mode = 0o700): void {
  mkdirSync(dir, { recursive: true, mode });
  fsyncDir(dirname(dir));
}

/**
 * Removes a directory crash-safely: rename it to a hidden trash name (atomic),
 * fsync the parent, then delete. A crash after the rename leaves only trash,
 * which sweepTrash removes at the next start.
 */
export function removeDirDurable(dir: string): void {
  const trash = join(dirname(dir), `.trash-${basename(dir)}-${randomBytes(4).toString("hex")}`);
  renameSync(dir, trash);
  fsyncDir(dirname(dir));
  rmSync(trash, { recursive: true, force: true });
}

/** Deletes leftovers of interrupted writes and removals in `dir`. */
export function sweepTrash(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".trash-") || name.startsWith(TMP_PREFIX)) {
      rmSync(join(dir, name), { recursive: true, force: true });
    }
  }
}

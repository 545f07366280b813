// One daemon per state directory. Two vmmd on one state dir would each
// re-adopt the other's guests, rewrite the same records and fight over the
// API socket; so the very first thing a daemon does is take an exclusive
// lock on <state_dir>/vmmd.lock (native/lock.ts: a kernel record lock, gone
// when the process is, kill -9 included). A second daemon finds it held,
// names the holder's pid and exits having changed nothing.
import { closeSync, ftruncateSync, writeSync } from "node:fs";
import { join } from "node:path";
import { lockFile } from "../../native/lock.js";
import { hostError, VmmError } from "../errors.js";

/** The held lock of a state directory. */
export interface StateLock {
  readonly path: string;
  /** Releases the lock (at the very end of shutdown). */
  release(): void;
}

/**
 * Locks `stateDir` (which must exist) for this process, writing our pid
 * into the lock file for people to read. Throws "unavailable" naming the
 * pid of the daemon that holds it.
 */
export function lockStateDir(stateDir: string): StateLock {
  const path = join(stateDir, "vmmd.lock");
  let r;
  try {
    r = lockFile(path);
  } catch (e) {
    throw hostError(`lock ${path}`, e);
  }
  if ("heldBy" in r) {
    const who = r.heldBy > 0 ? `vmmd pid ${r.heldBy}` : "another vmmd (its pid is not visible from here)";
    throw new VmmError("unavailable", `state dir ${stateDir} is in use by ${who} (lock ${path})`);
  }
  const fd = r.fd;
  // SAFETY: fd is ours (lockFile hands it over); it stays open until
  // release(), and nothing else in the daemon opens this file, so no other
  // close() can drop the record lock.
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      closeSync(fd);
    },
  };
}

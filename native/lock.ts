// Typed surface of the file lock in the native addon (native/src/lock.cc).
import { loadNative } from "./index.js";

/** The lock is ours (keep `fd` open while it should hold), or another process holds it. */
export type LockResult = { fd: number } | { heldBy: number };

interface LockNative {
  lockFile(path: string): LockResult;
}

/**
 * Takes an exclusive POSIX record lock on `path` (created 0600 if missing,
 * never through a symlink) without waiting. Returns the fd holding it, or
 * the pid of the process that holds it (0 when the kernel cannot name it).
 * The kernel releases the lock when this process exits. Closing any fd of
 * the same file in this process also releases it: never open it twice.
 */
export function lockFile(path: string): LockResult {
  return (loadNative() as unknown as LockNative).lockFile(path);
}

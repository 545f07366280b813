// Capping and rotating a VM's serial log. QEMU appends the console to
// <vm dir>/serial.log (opened O_APPEND: chardev logappend=on, see
// vm/qemu-argv.ts). When the file grows past [console] log_max_bytes the
// daemon copies it to serial.log.1 (shifting older copies up to
// serial.log.<log_files>, dropping the oldest) and truncates it; QEMU keeps
// appending at the new end. So a VM's console never takes more than about
// (log_files + 1) * log_max_bytes on disk while the daemon runs.
//
// Offsets stay absolute (the ReadConsole contract, source.ts):
// serial.rotation.json records, per boot, how many bytes were cut from the
// front of serial.log; the rotated copies cover the bytes just before that.
//
// Limits, said plainly: a copy-and-truncate cannot be atomic against QEMU's
// writes, so bytes QEMU appends between the copy and the truncation (a
// window of microseconds) are lost; and while the daemon is down nobody
// rotates, so the log grows until it returns.
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { writeJsonAtomic } from "../store/atomic.js";

export const SERIAL_LOG = "serial.log";
const STATE = "serial.rotation.json";

/** Bytes cut from the front of serial.log during boot `instanceId`. */
interface RotationState {
  instanceId: string;
  discarded: number;
}

/** One kept piece of a boot's output, oldest first, with its absolute range. */
export interface Segment {
  path: string;
  start: number;
  size: number;
}

function readState(dir: string): RotationState | undefined {
  try {
    const s = JSON.parse(readFileSync(join(dir, STATE), "utf8")) as RotationState;
    return typeof s.instanceId === "string" && Number.isSafeInteger(s.discarded) ? s : undefined;
  } catch {
    return undefined;
  }
}

const sizeOf = (p: string) => {
  try {
    return statSync(p).size;
  } catch {
    return -1;
  }
};

/**
 * The rotated copies of boot `instanceId` (oldest first) and the absolute
 * offset of serial.log's first byte. Copies of another boot do not count.
 */
export function rotatedSegments(dir: string, instanceId: string): { segments: Segment[]; base: number } {
  const st = readState(dir);
  if (!st || st.instanceId !== instanceId) return { segments: [], base: 0 };
  const segments: Segment[] = [];
  let start = st.discarded;
  for (let k = 1; ; k++) {
    const path = join(dir, `${SERIAL_LOG}.${k}`);
    const size = sizeOf(path);
    if (size < 0) break;
    start -= size;
    if (start < 0) break; // a copy older than this boot's rotations
    segments.unshift({ path, start, size });
  }
  return { segments, base: st.discarded };
}

/** Reads up to `max` bytes at absolute `offset` from the rotated copies. */
export function readSegments(segments: readonly Segment[], offset: number, max: number): Buffer {
  const parts: Buffer[] = [];
  let at = offset;
  let left = max;
  for (const s of segments) {
    if (left === 0) break;
    if (at < s.start || at >= s.start + s.size) continue;
    const n = Math.min(left, s.start + s.size - at);
    const buf = Buffer.allocUnsafe(n);
    const fd = openSync(s.path, "r");
    let got = 0;
    try {
      got = readSync(fd, buf, 0, n, at - s.start);
    } finally {
      closeSync(fd);
    }
    parts.push(buf.subarray(0, got));
    at += got;
    left -= got;
    if (got < n) break;
  }
  return Buffer.concat(parts);
}

/**
 * Rotates <dir>/serial.log of boot `instanceId` when it is larger than
 * `maxBytes`, keeping `keep` copies. Returns whether it rotated.
 */
export function rotateSerialLog(dir: string, instanceId: string, maxBytes: number, keep: number): boolean {
  const log = join(dir, SERIAL_LOG);
  if (sizeOf(log) <= maxBytes) return false;
  const st = readState(dir);
  const discarded = st && st.instanceId === instanceId ? st.discarded : 0;
  if (!st || st.instanceId !== instanceId) {
    // Copies of an earlier boot: not this boot's output.
    for (let k = 1; existsSync(join(dir, `${SERIAL_LOG}.${k}`)); k++) rmSync(join(dir, `${SERIAL_LOG}.${k}`), { force: true });
  }
  rmSync(join(dir, `${SERIAL_LOG}.${keep}`), { force: true });
  for (let k = keep - 1; k >= 1; k--) {
    const from = join(dir, `${SERIAL_LOG}.${k}`);
    if (existsSync(from)) renameSync(from, join(dir, `${SERIAL_LOG}.${k + 1}`));
  }
  let cut: number;
  if (keep > 0) {
    const tmp = join(dir, `${SERIAL_LOG}.1.tmp`);
    copyFileSync(log, tmp);
    cut = statSync(tmp).size;
    renameSync(tmp, join(dir, `${SERIAL_LOG}.1`));
  } else cut = statSync(log).size;
  writeJsonAtomic(join(dir, STATE), { instanceId, discarded: discarded + cut } satisfies RotationState);
  truncateSync(log, 0);
  return true;
}

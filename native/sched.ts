// Typed surface of the scheduling part of the native addon
// (native/src/linux/sched.cc). Linux only.
import { loadNative } from "./index.js";

interface SchedNative {
  setThreadNice(nice: number): void;
}

/**
 * Sets the calling thread's nice value (-20..19) and SCHED_RESET_ON_FORK:
 * processes and threads it creates afterwards start at nice 0 instead of
 * inheriting a negative value. Throws an Error naming the syscall and errno
 * (EPERM/EACCES below the current value without CAP_SYS_NICE), or a
 * "Usage: ..." TypeError for a value out of range.
 */
export function setThreadNice(nice: number): void {
  (loadNative() as unknown as SchedNative).setThreadNice(nice);
}

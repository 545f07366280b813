// Supervising QEMU and passt as detached processes.
//
// Guests must outlive the daemon: `kill -9` of vmmd must not take them
// down, and a restarted daemon must find them again. So each process is
// spawned detached (its own session and process group: a signal to the
// daemon's group does not reach it), unref()'d (the daemon's event loop does
// not wait for it), and its stdout/stderr go to a log file, never to a pipe
// (a pipe would break with SIGPIPE/EPIPE once the daemon is gone).
//
// A pid alone is not an identity: after the process exits the number can be
// reused. We record the start time from /proc/<pid>/stat (clock ticks since
// boot, fixed for the life of a process) and compare it, optionally with a
// string the command line must contain (our QMP socket path), before we
// signal a pid or treat it as "our QEMU".
//
// Passing fds (TAP, macvtap): spawn's `stdio` array maps index i to the
// child's fd i, so extraFds[k] becomes the child's fd 3+k
// (FIRST_INHERITED_FD). The child gets a dup2()'d copy; the caller keeps
// ownership of its own fd and should close it after the spawn.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { VmmError, hostError } from "../errors.js";

/** The first fd number a child sees for fds passed after stdin/out/err (extraFds[0]). */
export const FIRST_INHERITED_FD = 3;

/**
 * A long-lived child (QEMU, passt, dnsmasq, vmm-relayd) that outlives the daemon: its own session,
 * output to a file, fds handed over.
 */
export interface SpawnDetachedOptions {
  /** argv[0] is the program (absolute path or found in PATH); no shell is involved. */
  argv: string[];
  /** stdout and stderr are appended to this file. */
  logFile: string;
  /** fds the child inherits as FIRST_INHERITED_FD (3), 4, ... in this order. */
  extraFds?: number[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A process we started, identified by pid AND start time. */
export interface ProcessRef {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot). */
  startTime: number;
}

/** Child fd number of extraFds[k]. */
export const childFdOf = (k: number) => FIRST_INHERITED_FD + k;

/**
 * Starts a detached process with stdout/stderr appended to `logFile`.
 * Resolves once it runs (rejects with the spawn errno, e.g. ENOENT).
 */
export async function spawnDetached(opts: SpawnDetachedOptions): Promise<ProcessRef> {
  const [prog, ...args] = opts.argv;
  if (!prog) throw new VmmError("invalid", "spawnDetached: argv is empty");
  for (const fd of opts.extraFds ?? []) {
    if (!Number.isInteger(fd) || fd < 0) throw new VmmError("invalid", `spawnDetached: bad fd ${fd}`);
  }
  let log: number;
  try {
    log = openSync(opts.logFile, "a", 0o640);
  } catch (e) {
    throw hostError(`open log file ${opts.logFile}`, e);
  }
  try {
    const child = spawn(prog, args, {
      detached: true,
      stdio: ["ignore", log, log, ...(opts.extraFds ?? [])],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    }).catch((e: unknown) => {
      throw hostError(`spawn ${prog}`, e, (e as NodeJS.ErrnoException).code === "ENOENT" ? "unsupported" : "internal");
    });
    child.unref();
    // Without a listener an 'error' after spawn (e.g. a failed kill) would crash the daemon.
    child.on("error", () => undefined);
    const pid = child.pid!;
    const st = await readStat(pid);
    // The child cannot have been reaped yet (we did not yield to its exit
    // handler between 'spawn' and here in a way that reaps), but be safe.
    return { pid, startTime: st?.startTime ?? -1 };
  } finally {
    closeSync(log);
  }
}

interface Stat {
  state: string;
  startTime: number;
}

/** State and start time from /proc/<pid>/stat, or undefined when there is no such process. */
async function readStat(pid: number): Promise<Stat | undefined> {
  let s: string;
  try {
    s = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ..."; comm may contain spaces and ')'.
  const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  return { state: rest[0]!, startTime: Number(rest[22 - 3]) };
}

/** The process as it is now (pid + start time), e.g. from a pid file; undefined if gone. */
export async function processRef(pid: number): Promise<ProcessRef | undefined> {
  const st = await readStat(pid);
  if (!st || st.state === "Z" || st.state === "X") return undefined;
  return { pid, startTime: st.startTime };
}

/**
 * Cheap liveness (one kill(pid, 0), no /proc read): false means no process
 * has `pid` any more. True does not rule out a zombie or a reused pid;
 * isAlive does.
 */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True while `ref` runs (not exited, not a zombie, pid not reused). */
export async function isAlive(ref: ProcessRef): Promise<boolean> {
  const st = await readStat(ref.pid);
  return st !== undefined && st.state !== "Z" && st.state !== "X" && st.startTime === ref.startTime;
}

/**
 * True when `ref` is alive and its command line contains `needle` (e.g. the
 * QMP socket path we gave it): the pid really is the process we started.
 */
export async function isOurProcess(ref: ProcessRef, needle?: string): Promise<boolean> {
  if (!(await isAlive(ref))) return false;
  if (needle === undefined) return true;
  try {
    const cmdline = (await readFile(`/proc/${ref.pid}/cmdline`, "utf8")).split("\0");
    return cmdline.some((a) => a.includes(needle));
  } catch {
    return false;
  }
}

/**
 * Waits until `ref` has exited (works for non-children: polls /proc), for
 * at most `timeoutMs`. Resolves true when it exited, false on timeout.
 */
export async function waitForExit(ref: ProcessRef, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await isAlive(ref))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
  }
}

/**
 * Sends `signal` to `ref` if it is still that process. Returns false when
 * it was already gone (or the pid was reused: then nothing is sent).
 */
export async function signalProcess(ref: ProcessRef, signal: NodeJS.Signals, needle?: string): Promise<boolean> {
  if (!(await isOurProcess(ref, needle))) return false;
  try {
    process.kill(ref.pid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw hostError(`kill -${signal} ${ref.pid}`, e);
  }
}

/**
 * SIGTERM, wait up to `graceMs`, then SIGKILL and wait up to `killWaitMs`.
 * Resolves when the process is gone; throws if even SIGKILL did not end it.
 */
export async function stopProcess(
  ref: ProcessRef,
  opts: { graceMs?: number; killWaitMs?: number; needle?: string } = {},
): Promise<void> {
  if (!(await signalProcess(ref, "SIGTERM", opts.needle))) return;
  if (await waitForExit(ref, opts.graceMs ?? 5_000)) return;
  await signalProcess(ref, "SIGKILL", opts.needle);
  if (!(await waitForExit(ref, opts.killWaitMs ?? 5_000))) {
    throw new VmmError("internal", `process ${ref.pid} did not exit after SIGKILL`);
  }
}

/** Reads a pid file (QEMU -pidfile, passt --pid); undefined when missing or empty. */
export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(path, "utf8")).trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw hostError(`read pid file ${path}`, e);
  }
}

/** Polls `cond` every `pollMs` until it is true or `timeoutMs` passed; returns its last result. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
  }
}

/** The last `bytes` of a log file, trimmed; "" when it is missing. For error messages. */
export function tailOfLog(path: string, bytes = 2000): string {
  try {
    return readFileSync(path, "utf8").slice(-bytes).trim();
  } catch {
    return "";
  }
}

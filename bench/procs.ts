// Processes of the forwarder benchmark: every peer and backend is started
// here, in the foreground, from a config file in a temp dir, in a process
// group of its own, and stopped by PID as a group. Also /proc accounting
// (CPU, RSS, fds) of a process tree, and CPU pinning.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Seconds per figure (BENCH_SECONDS). */
export const SECS = Number(process.env.BENCH_SECONDS ?? "2");
/** The hard fd limit: every peer may use it (a single process holds at most this many). */
export const FD_LIMIT = Number(spawnSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim()) || 20000;
export const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || "100");

export const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Scratch directory of this run (configs, logs); removed at exit. */
export const tmp = mkdtempSync(join(tmpdir(), "vmm-bench-"));
const procs = new Set<ChildProcess>();

/**
 * Starts `argv` in the foreground with the fd limit raised; output to a log
 * file. Each program gets a process group of its own (its pid), so stopping
 * it also reaches what it forked (socat's sessions, nginx workers) and
 * nothing else.
 */
export function start(name: string, argv: string[]): ChildProcess {
  const out = openSync(join(tmp, `${name}.log`), "a");
  // bash only raises the limit and execs: the PID is the program's own.
  const child = spawn("bash", ["-c", `ulimit -n ${FD_LIMIT} && exec "$@"`, "bench", ...argv], {
    stdio: ["ignore", out, out],
    detached: true,
  });
  closeSync(out);
  procs.add(child);
  child.once("exit", () => procs.delete(child));
  return child;
}

/** The log of a program started with start(). */
export const logOf = (name: string): string => {
  try {
    return readFileSync(join(tmp, `${name}.log`), "utf8");
  } catch {
    return "";
  }
};

/** Signals the process group `child` leads; false when no member is left. */
function signalGroup(child: ChildProcess, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-child.pid!, sig);
    return true;
  } catch {
    return false; // ESRCH: the group is gone
  }
}

/** Whether a non-zombie process is left in process group `pgid`. */
function groupAlive(pgid: number): boolean {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (f && Number(f[2]) === pgid && f[0] !== "Z") return true;
  }
  return false;
}

/** SIGTERM to the group, SIGKILL after 3 s; waits until no member is left. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    signalGroup(child, "SIGTERM");
    const t = setTimeout(() => signalGroup(child, "SIGKILL"), 3000);
    await exited;
    clearTimeout(t);
  }
  for (let i = 0; i < 60 && groupAlive(child.pid!); i++) {
    signalGroup(child, i < 20 ? "SIGTERM" : "SIGKILL");
    await sleep(50);
  }
}

/** Kills everything started here (exit path). */
export function killAll(): void {
  for (const c of procs) signalGroup(c, "SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
}

/** Runs a load generator to completion (bounded by its own duration + 30 s). */
export function run(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: (SECS + 30) * 1000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}: ${r.stderr.slice(0, 300)}`);
  return r.stdout;
}

/** Resolves once something accepts on host:port (10 s at most). */
export async function waitPort(port: number, host = "127.0.0.1", ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = createConnection({ host, port });
      s.once("connect", () => {
        s.destroy();
        r(true);
      });
      s.once("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${host}:${port} after ${ms} ms`);
    await sleep(50);
  }
}

/** Fields of /proc/<pid>/stat after the command name (field 3 first), or undefined. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** The PIDs and all their descendants. */
export function tree(pids: number[]): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (f) parent.set(Number(d), Number(f[1]));
  }
  const out = [...pids];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  return out;
}

/**
 * CPU time (user + system) of `pids`, in seconds, children that exited and
 * were reaped included (cutime + cstime: socat's per-connection processes).
 */
export function cpuSeconds(pids: number[]): number {
  let t = 0;
  for (const p of pids) {
    const f = statFields(p);
    if (f) t += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return t / CLK_TCK;
}

/** Sum of VmRSS of `pids`, MB. */
export function rssMb(pids: number[]): number {
  let kb = 0;
  for (const p of pids) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      kb += m ? Number(m[1]) : 0;
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

/** fds held by `pids`. */
export const fdsOf = (pids: number[]): number =>
  pids.reduce((n, p) => {
    try {
      return n + readdirSync(`/proc/${p}/fd`).length;
    } catch {
      return n;
    }
  }, 0);

/** Pins every thread of `pids` to `cpus` (taskset list syntax, e.g. "1" or "0,1"). */
export function pin(pids: number[], cpus: string): void {
  for (const p of pids) spawnSync("taskset", ["-a", "-p", "-c", cpus, String(p)], { stdio: "ignore" });
}

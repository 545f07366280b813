// Parsers of the /proc files the stats sampler reads. Pure functions over
// the text, so each format is tested table-driven without a process.
//
//   /proc/<pid>/stat        CPU ticks, start time, threads (proc(5))
//   /proc/<pid>/status      VmRSS
//   /proc/<pid>/fdinfo/<n>  "iff:" names the TAP behind a /dev/net/tun fd
//   /proc/net/dev           per-interface counters of the reader's namespace

/**
 * Clock ticks per second of the times in /proc/<pid>/stat (USER_HZ). It is
 * 100 on every architecture Node.js runs on (x86, arm, arm64, ppc64, s390x,
 * riscv64); sysconf(_SC_CLK_TCK) is not reachable from Node.
 */
export const USER_HZ = 100;

/** What the sampler uses of /proc/<pid>/stat. */
export interface ProcStat {
  /** utime + stime, in USER_HZ ticks. */
  cpuTicks: number;
  /** Field 22: start time in ticks after boot (a process's identity with the pid). */
  startTime: number;
  threads: number;
  /** Field 19: the nice value (of the thread, for /proc/<pid>/task/<tid>/stat). */
  nice: number;
}

/**
 * Parses /proc/<pid>/stat. The command name (field 2) may hold spaces and
 * parentheses, so fields are counted after the last ")".
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // Fields from 3 (state) on; index 0 is field 3.
  const f = text.slice(close + 2).trim().split(/\s+/);
  const num = (field: number) => Number(f[field - 3]);
  const utime = num(14);
  const stime = num(15);
  const nice = num(19);
  const threads = num(20);
  const startTime = num(22);
  if (![utime, stime, nice, threads, startTime].every(Number.isFinite)) return undefined;
  return { cpuTicks: utime + stime, startTime, threads, nice };
}

/** Resident set size in bytes from /proc/<pid>/status ("VmRSS:  1234 kB"). */
export function parseRssBytes(statusText: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(statusText);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** The interface name of a tun/tap fd from /proc/<pid>/fdinfo/<fd>. */
export function parseTunIff(fdinfoText: string): string | undefined {
  return /^iff:\s+(\S+)$/m.exec(fdinfoText)?.[1];
}

/** Counters of one interface as the host sees them (rx: received by the host side). */
export interface IfCounters {
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
}

/**
 * Parses /proc/net/dev: two header lines, then
 * "  name: rx_bytes rx_packets errs drop fifo frame compressed multicast
 * tx_bytes tx_packets ...".
 */
export function parseNetDev(text: string): Map<string, IfCounters> {
  const out = new Map<string, IfCounters>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (name === "" || f.length < 10 || f.some((n) => !Number.isFinite(n))) continue;
    out.set(name, { rxBytes: f[0]!, rxPackets: f[1]!, txBytes: f[8]!, txPackets: f[9]! });
  }
  return out;
}

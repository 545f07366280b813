// Pure formatting of durations, times, byte counts and enum names for the
// human output of vmm-cli. `--json` output never goes through here.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";

/** Compact duration: "42s", "5m12s", "2h05m", "3d04h". Negative counts as 0. */
export function formatDuration(totalSeconds: number | bigint): string {
  let s = Math.max(0, Math.floor(Number(totalSeconds)));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const two = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d${two(h)}h`;
  if (h > 0) return `${h}h${two(m)}m`;
  if (m > 0) return `${m}m${two(s)}s`;
  return `${s}s`;
}

/** Uptime column: "-" unless the VM runs (uptime 0 means not running). */
export function formatUptime(uptimeSeconds: bigint, running: boolean): string {
  return running ? formatDuration(uptimeSeconds) : "-";
}

/** RFC 3339 in UTC without fractions: "2025-01-02T03:04:05Z"; "-" when unset. */
export function formatTime(t: Timestamp | undefined): string {
  if (t === undefined) return "-";
  return timestampDate(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Lease expiry relative to `now`: "never", "in 59m58s", "expired". */
export function formatExpiry(t: Timestamp | undefined, now: Date = new Date()): string {
  if (t === undefined) return "never";
  const left = (timestampDate(t).getTime() - now.getTime()) / 1000;
  return left <= 0 ? "expired" : `in ${formatDuration(left)}`;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** Binary byte counts: "0 B", "512 B", "1.5 KiB", "12 MiB". */
export function formatBytes(n: bigint | number): string {
  let v = Number(n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${v} B`;
  return `${v < 10 ? (Math.round(v * 10) / 10).toString() : Math.round(v).toString()} ${UNITS[u]}`;
}

/**
 * Lower-case name of a protobuf-es enum value without its prefix:
 * enumName(VmStatus, VmStatus.RUNNING) === "running". Unknown values print as
 * "?N" (a newer daemon may know more values than this client).
 */
export function enumName(e: Record<number, string>, v: number): string {
  const n = e[v];
  if (n === undefined) return `?${v}`;
  return n.toLowerCase();
}

/** "127.0.0.1:8080->80/tcp", the `docker ps` form; IPv6 listen addresses in brackets; options in parentheses. */
export function formatPortMapping(p: { protocol: string; hostAddress: string; hostPort: number; vmPort: number; nicIndex?: number; path?: string; proxyProtocol?: boolean }): string {
  const addr = p.hostAddress === "" ? "" : p.hostAddress.includes(":") ? `[${p.hostAddress}]:` : `${p.hostAddress}:`;
  // The options --port takes, only where they differ from the defaults:
  // "8080->80/tcp(nic=1;path=nat;proxy)" (lists of ports are comma-separated).
  const opts = [...(p.nicIndex ? [`nic=${p.nicIndex}`] : []), ...(p.path ? [`path=${p.path}`] : []), ...(p.proxyProtocol ? ["proxy"] : [])];
  return `${addr}${p.hostPort}->${p.vmPort}/${p.protocol}${opts.length > 0 ? `(${opts.join(";")})` : ""}`;
}

/** "127.0.0.1:8080" or "[::1]:8080". */
export function hostPort(addr: string, port: number): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

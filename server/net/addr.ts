// IPv4/IPv6 address and CIDR helpers (pure).
import { isIP, isIPv4 } from "node:net";

export interface Ipv4Cidr {
  /** Network address as an unsigned 32-bit integer. */
  network: number;
  prefix: number;
}

export function ipv4ToInt(ip: string): number | null {
  if (!isIPv4(ip)) return null;
  return ip.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The netmask of an IPv4 prefix length as an unsigned 32-bit integer (/24 -> 0xffffff00). */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The dotted netmask of an IPv4 prefix length (/24 -> "255.255.255.0"). */
export function netmaskOf(prefix: number): string {
  return intToIpv4(prefixMask(prefix));
}

/** Number of addresses in an IPv4 prefix, network and broadcast included. */
export function cidrSize(c: Ipv4Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** Parses "10.0.0.0/24"; host bits must be zero. Returns null when invalid. */
export function parseIpv4Cidr(s: string): Ipv4Cidr | null {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m) return null;
  const base = ipv4ToInt(m[1]!);
  const prefix = Number(m[2]);
  if (base === null || prefix > 32) return null;
  if ((base & ~prefixMask(prefix)) >>> 0 !== 0) return null;
  return { network: base, prefix };
}

export function cidrContains(c: Ipv4Cidr, ip: string): boolean {
  const n = ipv4ToInt(ip);
  if (n === null) return false;
  return ((n & prefixMask(c.prefix)) >>> 0) === c.network;
}

export function cidrToString(c: Ipv4Cidr): string {
  return `${intToIpv4(c.network)}/${c.prefix}`;
}

/** Parses "host:port" or "[v6]:port". */
export function parseHostPort(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const host = (m[1] ?? m[2])!;
  const port = Number(m[3]);
  if (port > 65535) return null;
  if (m[1] !== undefined && isIP(host) !== 6) return null;
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIPv4(host) && host.startsWith("127.");
}

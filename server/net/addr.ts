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

/** The last address of `c` (the broadcast address of a subnet). */
export function cidrLast(c: Ipv4Cidr): number {
  return c.network + cidrSize(c) - 1;
}

/** True when `a` and `b` share at least one address. */
export function cidrsOverlap(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  return a.network <= cidrLast(b) && b.network <= cidrLast(a);
}

/** True when every address of `inner` is in `outer`. */
export function cidrWithin(inner: Ipv4Cidr, outer: Ipv4Cidr): boolean {
  return inner.network >= outer.network && cidrLast(inner) <= cidrLast(outer);
}

/**
 * Private IPv4 space a network may use: RFC 1918 and the RFC 6598 shared
 * address space. Everything else -- loopback, link-local, multicast,
 * reserved, "this network" and public addresses -- would shadow something
 * the host or the internet needs.
 */
export const PRIVATE_IPV4: readonly string[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"];

/** True when all of `c` lies in one of PRIVATE_IPV4. */
export function isPrivateIpv4Cidr(c: Ipv4Cidr): boolean {
  return PRIVATE_IPV4.some((p) => cidrWithin(c, parseIpv4Cidr(p)!));
}

// IPv6 addresses and prefixes as 128-bit integers (pure). Prefixes are
// parsed here, strictly, before any of them reaches `ip` argv or a dnsmasq
// config: `ip` would otherwise be the first to notice a malformed one, and
// its error text would surface as an internal error.
import { isIPv6 } from "node:net";

/** An IPv6 prefix as a 128-bit integer and a prefix length. */
export interface Ipv6Cidr {
  /** Network address; host bits zero. */
  network: bigint;
  prefix: number;
}

const ALL = (1n << 128n) - 1n;

/** Parses an IPv6 literal (no zone id); null when it is not one. */
export function parseIpv6(s: string): bigint | null {
  if (!isIPv6(s) || s.includes("%")) return null;
  let text = s;
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two hex groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const all = [...h, ...Array<string>(fill).fill("0"), ...t];
  if (all.length !== 8) return null;
  return all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952 text: lower case, no leading zeros, the longest run of 2+ zero groups as "::". */
export function formatIpv6(n: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(16 * (7 - i))) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

const mask = (prefix: number) => (prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL);

/** Parses "fd00:1::/64"; host bits must be zero. Null when invalid. */
export function parseIpv6Cidr(s: string): Ipv6Cidr | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return null;
  const addr = parseIpv6(m[1]!);
  const prefix = Number(m[2]);
  if (addr === null || prefix > 128 || String(prefix) !== m[2]) return null;
  if ((addr & ~mask(prefix) & ALL) !== 0n) return null;
  return { network: addr, prefix };
}

/** `c` in its canonical text form ("fd00:1::/64"). */
export function ipv6CidrToString(c: Ipv6Cidr): string {
  return `${formatIpv6(c.network)}/${c.prefix}`;
}

/** True when `a` and `b` share at least one address. */
export function ipv6Overlap(a: Ipv6Cidr, b: Ipv6Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.network & mask(p)) === (b.network & mask(p));
}

/** Unique local addresses (RFC 4193), the only IPv6 space a network may use. */
export const ULA: Ipv6Cidr = { network: 0xfcn << 120n, prefix: 7 };

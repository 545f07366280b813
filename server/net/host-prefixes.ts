// The address ranges this host already uses (its addresses' subnets and its
// routes' destinations, from host/iproute.ts), parsed into IPv4 and IPv6
// prefixes: a vmnet network whose subnet overlaps one would shadow it.
import { hostRanges, type RunIpOptions } from "../host/iproute.js";
import { isIP } from "node:net";
import { ipv4ToInt, prefixMask, type Ipv4Cidr } from "./addr.js";
import { parseIpv6, type Ipv6Cidr } from "./ipv6.js";

/** An address range the host already uses: the subnet of one of its addresses, or a route's destination. */
export type HostPrefix = ({ family: 4; cidr: Ipv4Cidr } | { family: 6; cidr: Ipv6Cidr }) & {
  /** For messages, e.g. "address 10.0.0.5/24 on eth0" or "route 10.96.0.0/12 dev cni0". */
  what: string;
};

/** "a.b.c.d[/n]" or "x::y[/n]" with host bits masked off; undefined when unparsable. */
export function toPrefix(text: string): { family: 4; cidr: Ipv4Cidr } | { family: 6; cidr: Ipv6Cidr } | undefined {
  const [addr = "", len] = text.split("/");
  if (isIP(addr) === 4) {
    const prefix = len === undefined ? 32 : Number(len);
    return { family: 4, cidr: { network: (ipv4ToInt(addr)! & prefixMask(prefix)) >>> 0, prefix } };
  }
  const n = parseIpv6(addr);
  if (n === null) return undefined;
  const prefix = len === undefined ? 128 : Number(len);
  const host = prefix === 128 ? 0n : (1n << BigInt(128 - prefix)) - 1n;
  return { family: 6, cidr: { network: n & ~host, prefix } };
}

/** Every address range the host uses, as prefixes (see the file comment); routes of prefix 0 left out. */
export async function hostPrefixes(opts?: RunIpOptions): Promise<HostPrefix[]> {
  const out: HostPrefix[] = [];
  for (const r of await hostRanges(opts)) {
    const p = toPrefix(r.text);
    if (p && (p.cidr.prefix > 0 || r.what.startsWith("address "))) out.push({ ...p, what: r.what });
  }
  return out;
}

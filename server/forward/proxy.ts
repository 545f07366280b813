// PROXY protocol version 2 (haproxy's proxy-protocol.txt, section 2.2) for
// the sockets relay; vmm-relayd builds the same header in
// native/relayd/proxy.cc. Pure.
import { isIPv4, isIPv6 } from "node:net";

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Bytes of an IPv6 literal (IPv4-mapped forms included). */
function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const parse = (part: string | undefined): number[] => {
    if (!part) return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (g.includes(".")) {
        const v4 = g.split(".").map(Number);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const h = parse(head);
  const t = parse(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

/**
 * The header of a TCP connection from `src` to `dst` (the address the client
 * connected to), or undefined when the two are not of one family.
 */
export function proxyV2Header(srcIp: string, srcPort: number, dstIp: string, dstPort: number): Buffer | undefined {
  if (isIPv4(srcIp) && isIPv4(dstIp)) {
    const b = Buffer.alloc(16 + 12);
    SIGNATURE.copy(b, 0);
    b[12] = 0x21; // version 2, PROXY
    b[13] = 0x11; // AF_INET, STREAM
    b.writeUInt16BE(12, 14);
    Buffer.from(srcIp.split(".").map(Number)).copy(b, 16);
    Buffer.from(dstIp.split(".").map(Number)).copy(b, 20);
    b.writeUInt16BE(srcPort, 24);
    b.writeUInt16BE(dstPort, 26);
    return b;
  }
  if (isIPv6(srcIp) && isIPv6(dstIp)) {
    const b = Buffer.alloc(16 + 36);
    SIGNATURE.copy(b, 0);
    b[12] = 0x21;
    b[13] = 0x21; // AF_INET6, STREAM
    b.writeUInt16BE(36, 14);
    ipv6Bytes(srcIp).copy(b, 16);
    ipv6Bytes(dstIp).copy(b, 32);
    b.writeUInt16BE(srcPort, 48);
    b.writeUInt16BE(dstPort, 50);
    return b;
  }
  return undefined;
}

/** A parsed v2 header (tests, and anyone reading one): the client and the address it reached. */
export interface ProxyV2 {
  family: "tcp4" | "tcp6";
  srcAddress: string;
  srcPort: number;
  dstAddress: string;
  dstPort: number;
  /** Bytes the header took. */
  length: number;
}

/** Parses a PROXY v2 PROXY-command header at the start of `b`; undefined when there is none. */
export function parseProxyV2(b: Buffer): ProxyV2 | undefined {
  if (b.length < 16 || !b.subarray(0, 12).equals(SIGNATURE) || b[12] !== 0x21) return undefined;
  const len = b.readUInt16BE(14);
  if (b.length < 16 + len) return undefined;
  const ip6 = (o: number) => new URL(`http://[${Array.from({ length: 8 }, (_, i) => b.readUInt16BE(o + 2 * i).toString(16)).join(":")}]/`).hostname.slice(1, -1);
  if (b[13] === 0x11 && len >= 12) {
    return { family: "tcp4", srcAddress: [...b.subarray(16, 20)].join("."), dstAddress: [...b.subarray(20, 24)].join("."), srcPort: b.readUInt16BE(24), dstPort: b.readUInt16BE(26), length: 16 + len };
  }
  if (b[13] === 0x21 && len >= 36) {
    return { family: "tcp6", srcAddress: ip6(16), dstAddress: ip6(32), srcPort: b.readUInt16BE(48), dstPort: b.readUInt16BE(50), length: 16 + len };
  }
  return undefined;
}

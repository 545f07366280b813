// Who answers ARP for an address on an interface: the kernel's neighbour
// table and ARP probes sent from the interface (the bridge a guest NIC sits
// on). Lease verification (server/net/lease-verify.ts) stands on this.
//
// Frames are built and parsed here (pure, unit-tested); the native addon
// only moves bytes (native/neigh.ts).
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { isIPv4 } from "node:net";
import { arpExchange, neighbourGet } from "../../native/neigh.js";

/** NUD_* neighbour states (linux/neighbour.h). */
export const NUD = {
  INCOMPLETE: 0x01,
  REACHABLE: 0x02,
  STALE: 0x04,
  DELAY: 0x08,
  PROBE: 0x10,
  FAILED: 0x20,
  NOARP: 0x40,
  PERMANENT: 0x80,
} as const;

/** An ARP packet (Ethernet/IPv4 only). MACs lower-case with ":", IPs dotted. */
export interface ArpPacket {
  /** 1 request, 2 reply. */
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

const ETH_P_ARP = 0x0806;
const FRAME_LEN = 42; // 14 Ethernet + 28 ARP

const macBytes = (mac: string): Buffer => Buffer.from(mac.split(":").map((h) => parseInt(h, 16)));
const ipBytes = (ip: string): Buffer => Buffer.from(ip.split(".").map(Number));
const macText = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
const ipText = (b: Buffer): string => [...b].join(".");

/**
 * An ARP request "who has `targetIp`, tell `senderIp`" from `senderMac`:
 * broadcast, or sent to `toMac` alone (a unicast request, as the kernel's
 * own reachability probes: only that station sees it). `senderIp`
 * "0.0.0.0" makes it an RFC 5227 ARP probe (for an interface without an
 * address in the subnet). Inputs are canonical (validated by the caller).
 */
export function arpRequest(senderMac: string, senderIp: string, targetIp: string, toMac?: string): Buffer {
  const f = Buffer.alloc(FRAME_LEN);
  if (toMac === undefined) f.fill(0xff, 0, 6); // destination: broadcast
  else macBytes(toMac).copy(f, 0);
  macBytes(senderMac).copy(f, 6);
  f.writeUInt16BE(ETH_P_ARP, 12);
  f.writeUInt16BE(1, 14); // hardware: Ethernet
  f.writeUInt16BE(0x0800, 16); // protocol: IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  macBytes(senderMac).copy(f, 22);
  ipBytes(senderIp).copy(f, 28);
  // target MAC 32..38 stays zero
  ipBytes(targetIp).copy(f, 38);
  return f;
}

/** Parses an Ethernet frame carrying Ethernet/IPv4 ARP; undefined for anything else. */
export function parseArp(frame: Buffer): ArpPacket | undefined {
  if (frame.length < FRAME_LEN) return undefined;
  if (frame.readUInt16BE(12) !== ETH_P_ARP) return undefined;
  if (frame.readUInt16BE(14) !== 1 || frame.readUInt16BE(16) !== 0x0800 || frame[18] !== 6 || frame[19] !== 4) return undefined;
  const op = frame.readUInt16BE(20);
  if (op !== 1 && op !== 2) return undefined;
  return {
    op,
    senderMac: macText(frame.subarray(22, 28)),
    senderIp: ipText(frame.subarray(28, 32)),
    targetMac: macText(frame.subarray(32, 38)),
    targetIp: ipText(frame.subarray(38, 42)),
  };
}

/** MACs that replied "`ip` is at MAC" among `frames`, in order, without repeats. */
export function answerers(frames: Buffer[], ip: string): string[] {
  const out: string[] = [];
  for (const f of frames) {
    const p = parseArp(f);
    if (p && p.op === 2 && p.senderIp === ip && !out.includes(p.senderMac)) out.push(p.senderMac);
  }
  return out;
}

/** What the host can tell about an address on an interface. */
export interface Wire {
  /** The kernel's neighbour entry of `ip` on `ifname`; undefined when it has none. */
  neighbour(ifname: string, ip: string): { mac: string; state: number } | undefined;
  /**
   * Sends one ARP request for `ip` from `ifname` and resolves with the MACs
   * that answered within `timeoutMs` (early once `mac` answered). Broadcast,
   * or with `unicast` to `mac` alone.
   */
  probe(ifname: string, ip: string, mac: string, timeoutMs: number, unicast?: boolean): Promise<string[]>;
}

/** The interface's MAC and its IPv4 address inside `inSubnet` (or 0.0.0.0). */
function sourceOf(ifname: string, inSubnet: (ip: string) => boolean): { mac: string; ip: string } {
  const addrs = networkInterfaces()[ifname] ?? [];
  const v4 = addrs.find((a) => a.family === "IPv4" && inSubnet(a.address)) ?? addrs.find((a) => a.family === "IPv4");
  const mac = addrs[0]?.mac ?? readFileSync(`/sys/class/net/${ifname}/address`, "utf8").trim();
  return { mac, ip: v4?.address ?? "0.0.0.0" };
}

/**
 * The Wire of this host: neighbour lookups over rtnetlink and ARP probes
 * over AF_PACKET (CAP_NET_RAW), both from the native addon. The probe's
 * source address is cached for `sourceTtlMs`; its MAC is read for every
 * probe.
 */
export class HostWire implements Wire {
  private readonly sources = new Map<string, { mac: string; ip: string; at: number }>();

  constructor(
    /** Whether `ip` lies in the subnet the probe should speak from (the NIC's). */
    private readonly sameSubnet: (ifname: string, ip: string) => boolean = () => true,
    private readonly sourceTtlMs = 5000,
  ) {}

  neighbour(ifname: string, ip: string): { mac: string; state: number } | undefined {
    if (!isIPv4(ip)) return undefined;
    const e = neighbourGet(ifname, ipBytes(ip));
    if (!e) return undefined;
    return { mac: e.lladdr.length === 6 ? macText(e.lladdr) : "", state: e.state };
  }

  async probe(ifname: string, ip: string, mac: string, timeoutMs: number, unicast = false): Promise<string[]> {
    let src = this.sources.get(ifname);
    // The interface's MAC is read afresh for every probe (one sysfs read): a
    // bridge without a MAC of its own changes it as ports come and go, and a
    // probe from a stale MAC teaches the guest an address nobody answers to.
    const current = readFileSync(`/sys/class/net/${ifname}/address`, "utf8").trim();
    if (!src || src.mac !== current || Date.now() - src.at > this.sourceTtlMs) {
      src = { ...sourceOf(ifname, (a) => this.sameSubnet(ifname, a)), at: Date.now() };
      src.mac = current;
      this.sources.set(ifname, src);
    }
    const match = Buffer.concat([macBytes(mac), ipBytes(ip)]);
    const frames = await arpExchange(ifname, arpRequest(src.mac, src.ip, ip, unicast ? mac : undefined), match, timeoutMs);
    return answerers(frames, ip);
  }
}

// Lease verification: a DHCP lease report is believed only when the wire
// agrees that the reported MAC answers ARP for the reported address on the
// NIC's bridge. Reports come from a hook that holds a token, from replays
// of dnsmasq's lease file and from stored state that may be stale; the wire
// is the one witness none of them controls.
//
// Fast path: the kernel's neighbour table already maps the address to the
// MAC (learned from the wire or injected by dnsmasq when it unicast its
// DHCPACK to that MAC): believed at once, a few microseconds. The caller
// chooses when that is enough (server/vm/leases.ts: renewals and
// re-verification; a new address is always asked on the wire, because
// dnsmasq's entry predates the guest configuring it). Anything else (no
// entry, another MAC, an entry set by hand) is decided by ARP probes from
// the bridge: the reported MAC must answer. A report the wire contradicts
// is never believed, whatever the neighbour table says.
import { NUD, type Wire } from "../host/neighbour.js";

/** The outcome of one verification. */
export type Verdict =
  /** The MAC answers for the address. `others`: further MACs that answered too (a conflict). */
  | { result: "verified"; via: "neighbour" | "arp"; others: string[] }
  /** Other MACs answer for the address; the reported one does not. */
  | { result: "mismatch"; answeredBy: string[] }
  /** Nobody answered (the guest is not configured yet, or gone). */
  | { result: "silent" }
  /** The host cannot tell (no privilege, no interface, no addon). */
  | { result: "unverifiable"; reason: string };

/** How hard verifyOnWire looks before it concludes. */
export interface VerifyOptions {
  /**
   * Neighbour states (NUD bits) that settle the question when the entry
   * holds the MAC: LEARNED on the report path, REACHABLE (confirmed by the
   * kernel within the last ~30 s) when re-verifying, 0 to always probe.
   */
  trustNeighbour: number;
  /**
   * The ARP requests to send before concluding: how long each waits for the
   * answer (ms), in order; empty for none. Short waits first catch a guest
   * that is configuring its address right now within milliseconds of it
   * doing so; longer ones give a busy guest time.
   */
  probeWaitsMs: readonly number[];
  /**
   * How many of the first requests go to the MAC alone (unicast) rather
   * than to every station on the bridge (default 0). Re-verification asks
   * a believed guest this way: on a bridge of 1,000 guests a broadcast
   * wakes all of them, for each lease, at every pass. A broadcast still
   * follows when the guest does not answer, so another MAC now holding the
   * address is seen.
   */
  unicast?: number;
}

/** Entries the kernel learned from the wire (or dnsmasq injected): not those set by hand. */
export const LEARNED = NUD.REACHABLE | NUD.STALE | NUD.DELAY | NUD.PROBE;

/** Decides whether `mac` holds `ip` on `ifname` (see the file comment). */
export async function verifyOnWire(wire: Wire, ifname: string, ip: string, mac: string, o: VerifyOptions): Promise<Verdict> {
  if (o.trustNeighbour !== 0) {
    let n: { mac: string; state: number } | undefined;
    try {
      n = wire.neighbour(ifname, ip);
    } catch (e) {
      return { result: "unverifiable", reason: `neighbour lookup on ${ifname}: ${(e as Error).message}` };
    }
    if (n && n.mac === mac && (n.state & o.trustNeighbour) !== 0) return { result: "verified", via: "neighbour", others: [] };
  }
  const seen: string[] = [];
  for (const [i, waitMs] of o.probeWaitsMs.entries()) {
    let answered: string[];
    try {
      answered = await wire.probe(ifname, ip, mac, waitMs, i < (o.unicast ?? 0));
    } catch (e) {
      return { result: "unverifiable", reason: `ARP probe on ${ifname}: ${(e as Error).message}` };
    }
    for (const m of answered) if (!seen.includes(m)) seen.push(m);
    if (answered.includes(mac)) return { result: "verified", via: "arp", others: seen.filter((m) => m !== mac) };
  }
  return seen.length > 0 ? { result: "mismatch", answeredBy: seen } : { result: "silent" };
}

import { describe, expect, it } from "vitest";
import { NUD, type Wire } from "../host/neighbour.js";
import { LEARNED, verifyOnWire } from "./lease-verify.js";

const MAC = "52:54:00:00:00:01";
const OTHER = "52:54:00:00:00:02";

/** A scripted wire: a neighbour entry and one answer list per probe. */
function wire(neighbour: { mac: string; state: number } | undefined | Error, probes: (string[] | Error)[]): Wire & { probes: number; waits: number[]; unicast: boolean[] } {
  const w = {
    probes: 0,
    waits: [] as number[],
    unicast: [] as boolean[],
    neighbour() {
      if (neighbour instanceof Error) throw neighbour;
      return neighbour;
    },
    async probe(_ifname: string, _ip: string, _mac: string, timeoutMs: number, unicast?: boolean) {
      w.waits.push(timeoutMs);
      w.unicast.push(unicast === true);
      const r = probes[Math.min(w.probes++, probes.length - 1)]!;
      if (r instanceof Error) throw r;
      return r;
    },
  };
  return w;
}
const fast = { trustNeighbour: LEARNED, probeWaitsMs: [10, 10, 10] };

describe("verifyOnWire", () => {
  it.each([
    { name: "REACHABLE entry of the MAC: believed without a probe", n: { mac: MAC, state: NUD.REACHABLE }, probes: [[]], want: { result: "verified", via: "neighbour", others: [] }, sent: 0 },
    { name: "STALE entry of the MAC (dnsmasq's injection): believed", n: { mac: MAC, state: NUD.STALE }, probes: [[]], want: { result: "verified", via: "neighbour", others: [] }, sent: 0 },
    { name: "PERMANENT entry (set by hand): probed", n: { mac: MAC, state: NUD.PERMANENT }, probes: [[MAC]], want: { result: "verified", via: "arp", others: [] }, sent: 1 },
    { name: "entry of another MAC: probed, ours answers", n: { mac: OTHER, state: NUD.REACHABLE }, probes: [[MAC]], want: { result: "verified", via: "arp", others: [] }, sent: 1 },
    { name: "entry of another MAC: probed, only the other answers -> mismatch", n: { mac: OTHER, state: NUD.REACHABLE }, probes: [[OTHER]], want: { result: "mismatch", answeredBy: [OTHER] }, sent: 3 },
    { name: "no entry, nobody answers -> silent after every attempt", n: undefined, probes: [[]], want: { result: "silent" }, sent: 3 },
    { name: "no entry, ours answers on the second attempt", n: undefined, probes: [[], [MAC]], want: { result: "verified", via: "arp", others: [] }, sent: 2 },
    { name: "both answer: verified, the conflict named", n: undefined, probes: [[OTHER, MAC]], want: { result: "verified", via: "arp", others: [OTHER] }, sent: 1 },
    { name: "INCOMPLETE entry: probed", n: { mac: "", state: NUD.INCOMPLETE }, probes: [[MAC]], want: { result: "verified", via: "arp", others: [] }, sent: 1 },
  ])("$name", async ({ n, probes, want, sent }) => {
    const w = wire(n, probes);
    expect(await verifyOnWire(w, "br0", "10.0.0.5", MAC, fast)).toEqual(want);
    expect(w.probes).toBe(sent);
  });

  it("re-verification trusts only a REACHABLE entry; 0 always probes", async () => {
    const reverify = { ...fast, trustNeighbour: NUD.REACHABLE };
    expect(await verifyOnWire(wire({ mac: MAC, state: NUD.REACHABLE }, [[]]), "br0", "10.0.0.5", MAC, reverify)).toMatchObject({ result: "verified", via: "neighbour" });
    const stale = wire({ mac: MAC, state: NUD.STALE }, [[]]);
    expect(await verifyOnWire(stale, "br0", "10.0.0.5", MAC, reverify)).toEqual({ result: "silent" });
    expect(stale.probes).toBe(3);
    const always = wire({ mac: MAC, state: NUD.REACHABLE }, [[]]);
    expect(await verifyOnWire(always, "br0", "10.0.0.5", MAC, { ...fast, trustNeighbour: 0 })).toEqual({ result: "silent" });
    expect(always.probes).toBe(3);
  });

  it("each request waits as long as its place in probeWaitsMs says, and the first answer ends the asking", async () => {
    const silent = wire(undefined, [[]]);
    expect(await verifyOnWire(silent, "br0", "10.0.0.5", MAC, { trustNeighbour: 0, probeWaitsMs: [20, 40, 80] })).toEqual({ result: "silent" });
    expect(silent.waits).toEqual([20, 40, 80]);
    const late = wire(undefined, [[], [], [MAC]]);
    expect(await verifyOnWire(late, "br0", "10.0.0.5", MAC, { trustNeighbour: 0, probeWaitsMs: [20, 20, 20, 40, 80] })).toMatchObject({ result: "verified", via: "arp" });
    expect(late.waits).toEqual([20, 20, 20]);
  });

  it("the first `unicast` requests go to the MAC alone, the rest are broadcast", async () => {
    const silent = wire(undefined, [[]]);
    expect(await verifyOnWire(silent, "br0", "10.0.0.5", MAC, { trustNeighbour: 0, probeWaitsMs: [300, 300, 300], unicast: 2 })).toEqual({ result: "silent" });
    expect(silent.unicast).toEqual([true, true, false]);
    // Another MAC took the address: only the broadcast hears it.
    const moved = wire(undefined, [[], [], [OTHER]]);
    expect(await verifyOnWire(moved, "br0", "10.0.0.5", MAC, { trustNeighbour: 0, probeWaitsMs: [300, 300, 300], unicast: 2 })).toEqual({ result: "mismatch", answeredBy: [OTHER] });
    // By default every request is a broadcast.
    const plain = wire(undefined, [[]]);
    await verifyOnWire(plain, "br0", "10.0.0.5", MAC, fast);
    expect(plain.unicast).toEqual([false, false, false]);
  });

  it("a host that cannot look or probe says so", async () => {
    expect(await verifyOnWire(wire(new Error("EPERM"), [[]]), "br0", "10.0.0.5", MAC, fast)).toEqual({ result: "unverifiable", reason: "neighbour lookup on br0: EPERM" });
    expect(await verifyOnWire(wire(undefined, [new Error("socket(AF_PACKET) failed: EPERM")]), "br0", "10.0.0.5", MAC, fast)).toEqual({
      result: "unverifiable",
      reason: "ARP probe on br0: socket(AF_PACKET) failed: EPERM",
    });
  });
});

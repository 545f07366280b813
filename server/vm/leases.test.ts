// LeaseKeeper logic with a scripted wire and an in-memory VM side: what a
// report, a revocation, a stop, a lease file and the re-verification timers
// do to leases, events and forwards. The real wire is exercised by
// native/neigh.test.ts and the bridge e2e tests.
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fillDefaults } from "../config/defaults.js";
import type { Config } from "../config/types.js";
import { NUD } from "../host/neighbour.js";
import { FakeWire } from "../../test/helpers/fakes.js";
import type { Lease, NicRef } from "../net/lease-book.js";
import { LeaseKeeper, type LeaseHost, type LeaseNic, type LeaseReport } from "./leases.js";

const MAC_A = "52:54:00:00:00:0a";
const MAC_B = "52:54:00:00:00:0b";
const MAC_A1 = "52:54:00:00:01:0a";

class FakeHost implements LeaseHost {
  readonly nics = new Map<string, LeaseNic & { ref: NicRef }>();
  readonly saved = new Map<string, Lease[]>();
  readonly events: { vm: string; kind: string; message: string }[] = [];
  readonly synced: string[] = [];
  rules: { owner: string; targetAddress: string; counters: { connectFailures: number } }[] = [];
  add(ref: NicRef, mac: string, domain = "br0") {
    this.nics.set(`${ref.vmId}/${ref.nic}`, { ref, mode: "bridge", mac, domain, subnet: "10.0.0.0/24", running: true });
  }
  nicOfMac(mac: string) {
    return [...this.nics.values()].find((n) => n.mac === mac)?.ref;
  }
  nic(ref: NicRef) {
    return this.nics.get(`${ref.vmId}/${ref.nic}`);
  }
  nicsOn(domain: string) {
    return [...this.nics.values()].filter((n) => n.domain === domain && n.running).map((n) => n.ref);
  }
  saveLeases(vmId: string, leases: Lease[]) {
    this.saved.set(vmId, leases);
  }
  event(vm: string, kind: string, message: string) {
    this.events.push({ vm, kind, message });
  }
  async syncForwards(vmId: string) {
    this.synced.push(vmId);
  }
  hostHolds(ip: string) {
    return ip === "10.0.0.1" ? "br0" : undefined;
  }
  forwards() {
    return this.rules;
  }
}

const cfg = (over: Partial<Config["networking"]> = {}): Config => {
  const c = fillDefaults({ stateDir: "/nonexistent" });
  return { ...c, networking: { ...c.networking, ...over } };
};
const report = (mac: string, ip: string, action: LeaseReport["action"] = "add"): LeaseReport => ({ action, mac, ip, hostname: "", expiresUnix: 0, interface: "br0" });
const A = { vmId: "a", nic: 0 };
const A1 = { vmId: "a", nic: 1 };
const B = { vmId: "b", nic: 0 };

function setup(over: Partial<Config["networking"]> = {}) {
  const wire = new FakeWire();
  const host = new FakeHost();
  host.add(A, MAC_A);
  host.add(A1, MAC_A1, "br1");
  host.add(B, MAC_B);
  const keeper = new LeaseKeeper(cfg(over), host, wire);
  kept.push(keeper);
  return { wire, host, keeper };
}
const kept: LeaseKeeper[] = [];
afterEach(() => kept.splice(0).forEach((k) => k.close()));

describe("LeaseKeeper reports", () => {
  it("a new address is believed once the guest answers an ARP probe, not from the neighbour entry dnsmasq injected", async () => {
    const { wire, host, keeper } = setup();
    // dnsmasq put the MAC there before its DHCPACK; the guest has not configured the address yet.
    wire.table.set("10.0.0.5", { mac: MAC_A, state: NUD.REACHABLE });
    const first = await keeper.report(report(MAC_A, "10.0.0.5"));
    expect(first.lease).toMatchObject({ ip: "10.0.0.5", state: "pending" });
    expect(keeper.activeIp(A)).toBeUndefined();
    expect(wire.probes).toBeGreaterThan(0);
    // Now it has: the next report (or the pending re-check) hears it answer.
    wire.holders.set("10.0.0.5", [MAC_A]);
    const r = await keeper.report(report(MAC_A, "10.0.0.5"));
    expect(r.lease).toMatchObject({ ip: "10.0.0.5", state: "verified", detail: "answers ARP on br0 (probe)" });
    expect(keeper.activeIp(A)).toBe("10.0.0.5");
    expect(host.saved.get("a")!.map((l) => l.ip)).toEqual(["10.0.0.5"]);
    expect(host.synced).toContain("a");
  });

  it("a renewal of an address the NIC holds is settled by the neighbour table, without a probe", async () => {
    const { wire, keeper } = setup();
    wire.holders.set("10.0.0.5", [MAC_A]);
    await keeper.report(report(MAC_A, "10.0.0.5"));
    expect(keeper.activeIp(A)).toBe("10.0.0.5");
    const probes = wire.probes;
    wire.table.set("10.0.0.5", { mac: MAC_A, state: NUD.STALE });
    const r = await keeper.report({ ...report(MAC_A, "10.0.0.5"), action: "old" });
    expect(r.lease).toMatchObject({ state: "verified", detail: "answers ARP on br0 (neighbour table)" });
    expect(wire.probes).toBe(probes);
  });

  it("a renewal nobody answers keeps a believed guest's forwards once; a second silence drops them", async () => {
    const { wire, host, keeper } = setup();
    wire.holders.set("10.0.0.5", [MAC_A]);
    await keeper.report(report(MAC_A, "10.0.0.5"));
    expect(keeper.activeIp(A)).toBe("10.0.0.5");
    // The guest misses the renewal's probe (busy, or the host is loaded).
    wire.holders.delete("10.0.0.5");
    const r = await keeper.report(report(MAC_A, "10.0.0.5", "old"));
    expect(r.lease).toMatchObject({ state: "verified" });
    expect(r.lease!.detail).toMatch(/^no ARP answer to the renewal at .*; believed since .*, asked again in 2 s$/);
    expect(keeper.activeIp(A)).toBe("10.0.0.5");
    expect(host.events.at(-1)!.message).toMatch(/renewed 10\.0\.0\.5: no ARP answer to it; still believed, asked again in 2 s/);
    // Still silent when asked again: now the forwards go.
    await waitUntil(() => keeper.activeIp(A) === undefined, 5000);
    expect(keeper.leasesOf("a")[0]).toMatchObject({ state: "silent" });
    expect(host.events.some((e) => e.kind === "lease_silent")).toBe(true);
  }, 10_000);

  it("a renewal nobody answers, then the guest answers the re-check: believed throughout", async () => {
    const { wire, host, keeper } = setup();
    wire.holders.set("10.0.0.5", [MAC_A]);
    await keeper.report(report(MAC_A, "10.0.0.5"));
    wire.holders.delete("10.0.0.5");
    await keeper.report(report(MAC_A, "10.0.0.5", "old"));
    wire.holders.set("10.0.0.5", [MAC_A]);
    await new Promise((r) => setTimeout(r, 2500));
    expect(keeper.activeIp(A)).toBe("10.0.0.5");
    expect(keeper.leasesOf("a")[0]).toMatchObject({ state: "verified", detail: "answers ARP on br0 (probe)" });
    expect(host.events.some((e) => e.kind === "lease_silent")).toBe(false);
  }, 10_000);

  it("a report whose probes go unanswered while a background check hears the guest leaves it believed", async () => {
    const { wire, keeper } = setup();
    // First report: nobody answers yet; pending, re-checked after 250 ms.
    await keeper.report(report(MAC_A, "10.0.0.5"));
    expect(keeper.leasesOf("a")[0]).toMatchObject({ state: "pending" });
    // Second report (pending at its start): its first probe waits 600 ms and
    // gets nothing, as do its later ones; the background check at 250 ms
    // hears the guest meanwhile.
    let calls = 0;
    wire.probe = async () => {
      calls++;
      if (calls === 1) return new Promise<string[]>((r) => setTimeout(() => r([]), 600));
      return calls === 2 ? [MAC_A] : [];
    };
    const second = await keeper.report(report(MAC_A, "10.0.0.5", "old"));
    expect(calls).toBeGreaterThan(2);
    expect(second.lease).toMatchObject({ state: "verified" });
    expect(keeper.activeIp(A)).toBe("10.0.0.5");
  });

  it("renewals faster than the re-check do not keep a silent guest believed", async () => {
    const { wire, keeper } = setup();
    wire.holders.set("10.0.0.5", [MAC_A]);
    await keeper.report(report(MAC_A, "10.0.0.5"));
    wire.holders.delete("10.0.0.5");
    await keeper.report(report(MAC_A, "10.0.0.5", "old"));
    expect(keeper.activeIp(A)).toBe("10.0.0.5");
    const second = await keeper.report(report(MAC_A, "10.0.0.5", "old"));
    expect(second.lease).toMatchObject({ state: "pending" });
    expect(keeper.activeIp(A)).toBeUndefined();
  });

  it("a forged report (A's MAC, B's address) changes nothing and names who answers", async () => {
    const { wire, host, keeper } = setup();
    wire.holders.set("10.0.0.6", [MAC_B]);
    wire.table.set("10.0.0.6", { mac: MAC_B, state: NUD.REACHABLE });
    await expect(keeper.report(report(MAC_A, "10.0.0.6"))).rejects.toThrow(/not applied: on br0, 10\.0\.0\.6 is answered by 52:54:00:00:00:0b \(VM "b" nics\[0\]\)/);
    expect(keeper.leasesOf("a")).toEqual([]);
    expect(host.synced).toEqual([]);
    expect(host.events.filter((e) => e.kind === "lease_mismatch").map((e) => e.vm)).toEqual(["a"]);
  });

  it("a confirmed report of X for B revokes A's lease of X: events on both, both forwards re-applied, A's first", async () => {
    const { wire, host, keeper } = setup();
    wire.holders.set("10.0.0.7", [MAC_A]);
    await keeper.report(report(MAC_A, "10.0.0.7"));
    // A's del was missed; dnsmasq gave 10.0.0.7 to B.
    wire.holders.set("10.0.0.7", [MAC_B]);
    host.synced.length = 0;
    await keeper.report(report(MAC_B, "10.0.0.7"));
    expect(keeper.activeIp(B)).toBe("10.0.0.7");
    expect(keeper.activeIp(A)).toBeUndefined();
    expect(host.synced).toEqual(["a", "b"]);
    expect(host.events.filter((e) => e.kind === "lease_revoked").map((e) => [e.vm, e.message])).toEqual([
      ["a", 'nics[0] lost 10.0.0.7: VM "b" nics[0] answers for it now'],
      ["b", 'nics[0] took 10.0.0.7 over from VM "a" nics[0]'],
    ]);
    expect(host.saved.get("a")).toEqual([]);
  });

  it("the same address on another bridge is another address", async () => {
    const { wire, keeper } = setup();
    wire.holders.set("10.0.0.8", [MAC_A1]);
    await keeper.report(report(MAC_A1, "10.0.0.8"));
    wire.holders.set("10.0.0.8", [MAC_B]);
    await keeper.report(report(MAC_B, "10.0.0.8"));
    expect(keeper.activeIp(A1)).toBe("10.0.0.8");
    expect(keeper.activeIp(B)).toBe("10.0.0.8");
  });

  it("nobody answers yet: pending, no forwards; verified by the backoff once the guest answers", async () => {
    const { wire, keeper, host } = setup();
    const r = await keeper.report(report(MAC_A, "10.0.0.9"));
    expect(r.lease).toMatchObject({ state: "pending" });
    expect(keeper.activeIp(A)).toBeUndefined();
    wire.holders.set("10.0.0.9", [MAC_A]);
    await waitUntil(() => keeper.activeIp(A) === "10.0.0.9");
    expect(host.events.some((e) => e.message.includes("10.0.0.9 verified"))).toBe(true);
  });

  it("a del releases only the address the NIC holds", async () => {
    const { wire, keeper } = setup();
    wire.holders.set("10.0.0.10", [MAC_A]);
    await keeper.report(report(MAC_A, "10.0.0.10"));
    await keeper.report(report(MAC_A, "10.0.0.11", "del"));
    expect(keeper.activeIp(A)).toBe("10.0.0.10");
    await keeper.report(report(MAC_A, "10.0.0.10", "del"));
    expect(keeper.leasesOf("a")).toEqual([]);
  });

  it.each([
    { ip: "10.0.0.0", why: "is the network address of 10.0.0.0/24" },
    { ip: "10.0.0.255", why: "is the broadcast address of 10.0.0.0/24" },
    { ip: "10.0.0.1", why: "is an address of this host (br0)" },
    { ip: "10.0.1.5", why: "is outside 10.0.0.0/24" },
  ])("refuses $ip: $why", async ({ ip, why }) => {
    const { keeper, host } = setup();
    const err = (await keeper.report(report(MAC_A, ip)).then(
      () => undefined,
      (e: unknown) => e,
    )) as { kind: string; message: string; problems: { field: string }[] } | undefined;
    expect(err).toMatchObject({ kind: "invalid" });
    expect(err!.message).toContain(why);
    expect(err!.problems.map((p) => p.field)).toEqual(["ip"]);
    expect(host.saved.size).toBe(0);
  });

  it("refuses reports for a VM that is not running, and for an unknown MAC", async () => {
    const { keeper, host } = setup();
    host.nics.get("a/0")!.running = false;
    await expect(keeper.report(report(MAC_A, "10.0.0.12"))).rejects.toThrow(/is not running/);
    await expect(keeper.report(report("02:00:00:00:00:01", "10.0.0.12"))).rejects.toMatchObject({ kind: "not_found" });
  });

  it("with verification off, reports are trusted as they come", async () => {
    const { wire, keeper } = setup({ leaseVerification: "off" });
    const r = await keeper.report(report(MAC_A, "10.0.0.13"));
    expect(r.lease).toMatchObject({ state: "trusted", detail: "not verified (networking.lease_verification = off)" });
    expect(keeper.activeIp(A)).toBe("10.0.0.13");
    expect(wire.probes).toBe(0);
  });
});

describe("LeaseKeeper lifecycle", () => {
  it("a VM's leases end when it stops", async () => {
    const { wire, keeper, host } = setup();
    wire.table.set("10.0.0.20", { mac: MAC_A, state: NUD.REACHABLE });
    await keeper.report(report(MAC_A, "10.0.0.20"));
    keeper.endVm("a", "stopped");
    expect(keeper.leasesOf("a")).toEqual([]);
    expect(host.saved.get("a")).toEqual([]);
    expect(host.events.at(-1)!.message).toBe("leases ended (stopped): nics[0] 10.0.0.20");
  });

  it("reconcile: a lease dnsmasq dropped ends, one only dnsmasq knows is applied, expired lines are ignored", async () => {
    const { wire, keeper, host } = setup();
    const dir = mkdtempSync(join(tmpdir(), "vmm-leases-"));
    try {
      keeper.load("a", [{ nic: 0, ip: "10.0.0.30", hostname: "", updatedAt: "t", interface: "br0", state: "verified" }]);
      const future = Math.floor(Date.now() / 1000) + 3600;
      const file = join(dir, "dnsmasq.leases");
      writeFileSync(file, `${future} ${MAC_B} 10.0.0.31 b *\n100 ${MAC_A} 10.0.0.30 a *\n`);
      wire.table.set("10.0.0.31", { mac: MAC_B, state: NUD.STALE });
      await keeper.reconcile("br0", file);
      expect(keeper.leasesOf("a")).toEqual([]);
      expect(keeper.activeIp(B)).toBe("10.0.0.31");
      expect(host.events.find((e) => e.vm === "a")!.message).toContain("ended while the daemon was down");
      // A missing file changes nothing.
      await keeper.reconcile("br0", join(dir, "missing.leases"));
      expect(keeper.activeIp(B)).toBe("10.0.0.31");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("load keeps a running VM's stored leases and drops a second verified holder", () => {
    const { keeper, host } = setup();
    const l = (ip: string): Lease => ({ nic: 0, ip, hostname: "", updatedAt: "t", interface: "br0", state: "verified" });
    keeper.load("a", [l("10.0.0.40")]);
    keeper.load("b", [l("10.0.0.40")]);
    expect(keeper.activeIp(A)).toBe("10.0.0.40");
    expect(keeper.activeIp(B)).toBeUndefined();
    expect(host.saved.get("b")).toEqual([]);
  });

  it("a guest that stops answering loses its forwards, and gets them back when it answers again", async () => {
    const { wire, keeper, host } = setup({ leaseVerifyIntervalSeconds: 1 });
    wire.holders.set("10.0.0.50", [MAC_A]);
    await keeper.report(report(MAC_A, "10.0.0.50"));
    expect(keeper.activeIp(A)).toBe("10.0.0.50");
    keeper.start();
    wire.holders.delete("10.0.0.50");
    await waitUntil(() => keeper.activeIp(A) === undefined, 8000);
    expect(keeper.leasesOf("a")[0]).toMatchObject({ state: "silent" });
    expect(host.events.some((e) => e.kind === "lease_silent")).toBe(true);
    wire.holders.set("10.0.0.50", [MAC_A]);
    await waitUntil(() => keeper.activeIp(A) === "10.0.0.50", 8000);
  }, 20_000);

  it("a guest that misses one round of questions keeps its forwards", async () => {
    const { wire, keeper, host } = setup({ leaseVerifyIntervalSeconds: 1 });
    wire.holders.set("10.0.0.55", [MAC_A]);
    await keeper.report(report(MAC_A, "10.0.0.55"));
    keeper.start();
    wire.holders.delete("10.0.0.55"); // the first periodic pass (1 s) gets no answer
    await new Promise((r) => setTimeout(r, 1500));
    expect(keeper.activeIp(A)).toBe("10.0.0.55");
    wire.holders.set("10.0.0.55", [MAC_A]); // answers again before the second question (3 s)
    await new Promise((r) => setTimeout(r, 2500));
    expect(keeper.activeIp(A)).toBe("10.0.0.55");
    expect(host.events.some((e) => e.kind === "lease_silent")).toBe(false);
  }, 15_000);

  it("failing connects trigger a re-verification at once; an address taken by another MAC is dropped", async () => {
    const { wire, keeper, host } = setup({ leaseVerifyIntervalSeconds: 3600 });
    wire.holders.set("10.0.0.60", [MAC_A]);
    await keeper.report(report(MAC_A, "10.0.0.60"));
    host.rules = [{ owner: "a", targetAddress: "10.0.0.60", counters: { connectFailures: 0 } }];
    keeper.start();
    // Past start()'s own early look (2 s); the watch has seen connectFailures = 0.
    await new Promise((r) => setTimeout(r, 2500));
    expect(keeper.activeIp(A)).toBe("10.0.0.60");
    wire.holders.set("10.0.0.60", ["52:54:00:99:99:99"]);
    host.rules = [{ owner: "a", targetAddress: "10.0.0.60", counters: { connectFailures: 3 } }];
    // Only the error watch (every 1 s) can notice now: the periodic pass is an hour away.
    await waitUntil(() => keeper.leasesOf("a").length === 0, 1800);
    expect(host.events.find((e) => e.kind === "lease_mismatch")!.message).toContain("lost 10.0.0.60: on br0 it is answered by 52:54:00:99:99:99");
  }, 15_000);
});

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

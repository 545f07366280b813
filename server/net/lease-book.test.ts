import { describe, expect, it } from "vitest";
import { LeaseBook, type Lease } from "./lease-book.js";

const lease = (nic: number, ip: string, state: Lease["state"], extra: Partial<Lease> = {}): Lease => ({
  nic,
  ip,
  hostname: "",
  updatedAt: "2026-01-01T00:00:00.000Z",
  interface: "br0",
  state,
  ...extra,
});
const A = { vmId: "a", nic: 0 };
const A1 = { vmId: "a", nic: 1 };
const B = { vmId: "b", nic: 0 };
const C = { vmId: "c", nic: 0 };

describe("LeaseBook", () => {
  it("a NIC holds one lease: a new report replaces the old one", () => {
    const b = new LeaseBook();
    b.report(A, "br0", lease(0, "10.0.0.5", "verified"));
    b.report(A, "br0", lease(0, "10.0.0.6", "verified"));
    expect(b.leasesOf("a").map((l) => l.ip)).toEqual(["10.0.0.6"]);
    expect(b.verifiedHolder("br0", "10.0.0.5")).toBeUndefined();
    expect(b.verifiedHolder("br0", "10.0.0.6")).toEqual(A);
  });

  it("a verified report of X revokes every other NIC's lease of X in the domain, whatever its state", () => {
    const b = new LeaseBook();
    b.report(A, "br0", lease(0, "10.0.0.5", "verified"));
    b.report(C, "br0", lease(0, "10.0.0.5", "pending"));
    b.report(A1, "br1", lease(1, "10.0.0.5", "verified")); // another domain: untouched
    const { revoked } = b.report(B, "br0", lease(0, "10.0.0.5", "verified"));
    expect(revoked.map((r) => r.ref).sort((x, y) => x.vmId.localeCompare(y.vmId))).toEqual([A, C]);
    expect(b.verifiedHolder("br0", "10.0.0.5")).toEqual(B);
    expect(b.leasesOf("a").map((l) => [l.nic, l.ip])).toEqual([[1, "10.0.0.5"]]);
    expect(b.leasesOf("c")).toEqual([]);
  });

  it("a pending report revokes nothing; settling it verified does", () => {
    const b = new LeaseBook();
    b.report(A, "br0", lease(0, "10.0.0.5", "verified"));
    const { generation, revoked } = b.report(B, "br0", lease(0, "10.0.0.5", "pending"));
    expect(revoked).toEqual([]);
    expect(b.verifiedHolder("br0", "10.0.0.5")).toEqual(A);
    const r = b.settle(B, generation, "verified", "2026-01-01T00:00:01.000Z", "answered via arp")!;
    expect(r.revoked.map((x) => x.ref)).toEqual([A]);
    expect(r.lease).toMatchObject({ state: "verified", verifiedAt: "2026-01-01T00:00:01.000Z", detail: "answered via arp" });
    expect(b.verifiedHolder("br0", "10.0.0.5")).toEqual(B);
  });

  it("settling an out-of-date generation changes nothing", () => {
    const b = new LeaseBook();
    const first = b.report(A, "br0", lease(0, "10.0.0.5", "pending"));
    b.report(A, "br0", lease(0, "10.0.0.6", "pending"));
    expect(b.settle(A, first.generation, "verified", "t", "")).toBeNull();
    expect(b.get(A)!.lease.state).toBe("pending");
    b.drop(A);
    expect(b.settle(A, first.generation, "verified", "t", "")).toBeNull();
  });

  it("silent leases are not holders; settling silent keeps verifiedAt", () => {
    const b = new LeaseBook();
    const { generation } = b.report(A, "br0", lease(0, "10.0.0.5", "verified", { verifiedAt: "t0" }));
    b.settle(A, generation, "silent", "t1", "no ARP answer");
    expect(b.verifiedHolder("br0", "10.0.0.5")).toBeUndefined();
    expect(b.get(A)!.lease).toMatchObject({ state: "silent", verifiedAt: "t0", detail: "no ARP answer" });
  });

  it("dropVm removes every lease of the VM, and only those", () => {
    const b = new LeaseBook();
    b.report(A, "br0", lease(0, "10.0.0.5", "verified"));
    b.report(A1, "br1", lease(1, "10.1.0.5", "pending"));
    b.report(B, "br0", lease(0, "10.0.0.6", "verified"));
    expect(b.dropVm("a").map((l) => l.ip)).toEqual(["10.0.0.5", "10.1.0.5"]);
    expect(b.all().map((x) => x.ref)).toEqual([B]);
    expect(b.verifiedHolder("br0", "10.0.0.5")).toBeUndefined();
  });

  it("load keeps stored leases, old records count as verified, a second verified holder is refused", () => {
    const b = new LeaseBook();
    const old = lease(0, "10.0.0.5", undefined);
    expect(b.load(A, "br0", old)).toBe(true);
    expect(b.get(A)!.lease.state).toBe("verified");
    expect(b.load(B, "br0", lease(0, "10.0.0.5", "verified"))).toBe(false);
    expect(b.load(C, "br0", lease(0, "10.0.0.5", "pending"))).toBe(true);
    expect(b.verifiedHolder("br0", "10.0.0.5")).toEqual(A);
  });

  it("expired lists leases whose expiry has passed; infinite ones never", () => {
    const b = new LeaseBook();
    b.report(A, "br0", lease(0, "10.0.0.5", "verified", { expiresAt: "2026-01-01T00:00:10.000Z" }));
    b.report(B, "br0", lease(0, "10.0.0.6", "verified"));
    expect(b.expired(Date.parse("2026-01-01T00:00:09.999Z"))).toEqual([]);
    expect(b.expired(Date.parse("2026-01-01T00:00:10.000Z"))).toEqual([A]);
  });
});

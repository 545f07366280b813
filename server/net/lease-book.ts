// The lease book: which NIC holds which IPv4 address, across every VM. Pure
// and synchronous (no I/O, no clock of its own), so its rules are tested
// table-driven; the VM manager persists what it returns and applies the
// forwards.
//
// Rules:
//  * A NIC has at most one lease (the last reported address).
//  * A lease is "pending" until the wire confirms it (lease-verify.ts),
//    then "verified"; a verified lease whose guest stopped answering is
//    "silent". Only verified leases drive forwards.
//  * One IPv4 address belongs to one NIC per L2 domain (the bridge the NICs
//    sit on): confirming address X for NIC B revokes every other NIC's
//    lease of X in that domain, whatever its state.
//  * Every change bumps the NIC's generation, so an asynchronous
//    verification of an older report can tell that it is out of date.

/**
 * Verification state of a lease: "trusted" is believed without the wire
 * (verification switched off by the operator) and otherwise acts as
 * "verified".
 */
export type LeaseState = "pending" | "verified" | "silent" | "trusted";

const holds = (state: LeaseState | undefined) => state === undefined || state === "verified" || state === "trusted";

/** A NIC of a VM. */
export interface NicRef {
  vmId: string;
  nic: number;
}

/** One NIC's lease as the book keeps it (and leases.json stores it). */
export interface Lease {
  nic: number;
  ip: string;
  hostname: string;
  /** ISO time; absent: infinite. */
  expiresAt?: string;
  /** When the lease was last reported. */
  updatedAt: string;
  /** Interface dnsmasq saw the request on (from the report). */
  interface: string;
  /** Absent in records written before verification existed: read as "verified". */
  state?: LeaseState;
  /** When the wire last confirmed the lease. */
  verifiedAt?: string;
  /** Why the lease is in its state ("answered by ... via arp", "no ARP answer since ..."). */
  detail?: string;
}

/** A lease taken from a NIC because another NIC's lease of the address was confirmed. */
export interface Revocation {
  ref: NicRef;
  lease: Lease;
}

const key = (r: NicRef) => `${r.vmId}\u0000${r.nic}`;
const addrKey = (domain: string, ip: string) => `${domain}\u0000${ip}`;

interface Slot {
  ref: NicRef;
  domain: string;
  lease: Lease;
  generation: number;
}

/**
 * The leases of every NIC in memory, indexed by NIC and by address per domain (bridge or network),
 * so one address belongs to one NIC per domain. Generations tell a stale verification from a
 * current one.
 */
export class LeaseBook {
  private readonly slots = new Map<string, Slot>();
  /** domain+ip -> NIC keys holding a lease of it (pending ones may share). */
  private readonly byAddr = new Map<string, Set<string>>();
  /** VM id -> its slots (every view of a VM asks: no scan of every lease). */
  private readonly byVm = new Map<string, Set<Slot>>();
  private nextGeneration = 1;

  /** The NIC's lease and its generation, if it has one. */
  get(ref: NicRef): { lease: Lease; domain: string; generation: number } | undefined {
    const s = this.slots.get(key(ref));
    return s && { lease: s.lease, domain: s.domain, generation: s.generation };
  }

  /** Every lease of VM `vmId`, by NIC index. */
  leasesOf(vmId: string): Lease[] {
    return [...(this.byVm.get(vmId) ?? [])].map((s) => s.lease).sort((a, b) => a.nic - b.nic);
  }

  /** The NIC holding a verified lease of `ip` in `domain`. */
  verifiedHolder(domain: string, ip: string): NicRef | undefined {
    for (const k of this.byAddr.get(addrKey(domain, ip)) ?? []) {
      const s = this.slots.get(k)!;
      if (holds(s.lease.state)) return s.ref;
    }
    return undefined;
  }

  /**
   * Loads a stored lease as it is (daemon start). A second stored verified
   * lease of an address already verified for another NIC is refused:
   * returns false and the caller drops it.
   */
  load(ref: NicRef, domain: string, lease: Lease): boolean {
    const state = lease.state ?? "verified";
    if (holds(state)) {
      const other = this.verifiedHolder(domain, lease.ip);
      if (other && key(other) !== key(ref)) return false;
    }
    this.put(ref, domain, { ...lease, state });
    return true;
  }

  /**
   * Records a reported lease (replacing the NIC's previous one). `lease.state`
   * says what the wire said: "verified" (or "trusted") revokes every other
   * NIC's lease of the address in `domain` (returned); "pending" revokes
   * nothing.
   */
  report(ref: NicRef, domain: string, lease: Lease): { generation: number; revoked: Revocation[] } {
    const generation = this.put(ref, domain, lease);
    return { generation, revoked: holds(lease.state) ? this.revokeOthers(ref, domain, lease.ip) : [] };
  }

  /**
   * The wire confirmed (or stopped confirming) the NIC's lease of
   * generation `generation`. Ignored (null) when the lease changed since.
   * Confirming revokes every other NIC's lease of the address.
   */
  settle(ref: NicRef, generation: number, state: LeaseState, at: string, detail: string): { lease: Lease; revoked: Revocation[] } | null {
    const s = this.slots.get(key(ref));
    if (!s || s.generation !== generation) return null;
    s.lease = { ...s.lease, state, detail, ...(state === "verified" ? { verifiedAt: at } : {}) };
    return { lease: s.lease, revoked: state === "verified" ? this.revokeOthers(ref, s.domain, s.lease.ip) : [] };
  }

  /** Removes the NIC's lease; returns it (undefined when it had none). */
  drop(ref: NicRef): Lease | undefined {
    const k = key(ref);
    const s = this.slots.get(k);
    if (!s) return undefined;
    this.slots.delete(k);
    const mine = this.byVm.get(s.ref.vmId)!;
    mine.delete(s);
    if (mine.size === 0) this.byVm.delete(s.ref.vmId);
    const set = this.byAddr.get(addrKey(s.domain, s.lease.ip))!;
    set.delete(k);
    if (set.size === 0) this.byAddr.delete(addrKey(s.domain, s.lease.ip));
    return s.lease;
  }

  /** Removes every lease of VM `vmId` (it stopped, exited or was removed); returns them. */
  dropVm(vmId: string): Lease[] {
    const out: Lease[] = [];
    for (const s of [...(this.byVm.get(vmId) ?? [])]) out.push(this.drop(s.ref)!);
    return out.sort((a, b) => a.nic - b.nic);
  }

  /** NICs whose leases expired at `nowMs`. */
  expired(nowMs: number): NicRef[] {
    return [...this.slots.values()].filter((s) => s.lease.expiresAt !== undefined && Date.parse(s.lease.expiresAt) <= nowMs).map((s) => s.ref);
  }

  /** Every NIC with a lease, with its domain and generation (for re-verification). */
  all(): { ref: NicRef; domain: string; lease: Lease; generation: number }[] {
    return [...this.slots.values()].map((s) => ({ ref: s.ref, domain: s.domain, lease: s.lease, generation: s.generation }));
  }

  private put(ref: NicRef, domain: string, lease: Lease): number {
    this.drop(ref);
    const k = key(ref);
    const generation = this.nextGeneration++;
    const slot = { ref, domain, lease, generation };
    this.slots.set(k, slot);
    let mine = this.byVm.get(ref.vmId);
    if (!mine) this.byVm.set(ref.vmId, (mine = new Set()));
    mine.add(slot);
    const ak = addrKey(domain, lease.ip);
    let set = this.byAddr.get(ak);
    if (!set) this.byAddr.set(ak, (set = new Set()));
    set.add(k);
    return generation;
  }

  private revokeOthers(ref: NicRef, domain: string, ip: string): Revocation[] {
    const out: Revocation[] = [];
    for (const k of [...(this.byAddr.get(addrKey(domain, ip)) ?? [])]) {
      if (k === key(ref)) continue;
      const s = this.slots.get(k)!;
      this.drop(s.ref);
      out.push({ ref: s.ref, lease: s.lease });
    }
    return out;
  }
}

// LeaseKeeper: the VM manager's lease handling. A DHCP lease is believed
// only when the network agrees (server/net/lease-verify.ts); one address
// belongs to one NIC per bridge (server/net/lease-book.ts); leases live only
// while their VM runs; dnsmasq's lease file is read at start so the daemon
// converges on what the DHCP server believes.
//
// Paths into the keeper:
//   report()     ReportDhcpLease (the dnsmasq hook): validated, verified on
//                the wire, then applied; a report the wire contradicts is
//                refused and an event names who answers instead.
//   reconcile()  daemon start: dnsmasq's lease file of a bridge.
//   endVm()      the VM stopped or exited: its leases end.
//   timers       pending leases are re-checked with backoff; every believed
//                lease is re-verified every lease_verify_interval_seconds,
//                and at once when its forwards' connects start failing; a
//                guest that stopped answering loses its forwards.
// The book changes synchronously; forwards are re-applied, then leases.json
// of each VM touched is written, so a kill -9 at any point leaves leases
// that a restart re-applies or reconciles away from dnsmasq's lease file.
import { readFileSync, statSync } from "node:fs";
import type { Config } from "../config/types.js";
import { precondition } from "../errors.js";
import { NUD, type Wire } from "../host/neighbour.js";
import { MAX_LEASE_FILE_BYTES, parseLeaseFile, type DnsmasqLease } from "../net/dnsmasq-leases.js";
import { LeaseBook, type Lease, type LeaseState, type NicRef, type Revocation } from "../net/lease-book.js";
import { LEARNED, verifyOnWire, type Verdict } from "../net/lease-verify.js";
import { PrioritySlots } from "../net/priority-slots.js";
import { log } from "../log.js";
import { checkLeaseReport, type LeaseNics, type LeaseReport } from "./lease-report.js";

export type { LeaseNic, LeaseReport } from "./lease-report.js";

/** The VM side, implemented by the VM manager. */
export interface LeaseHost extends LeaseNics {
  /** NICs of running VMs whose domain is `domain`. */
  nicsOn(domain: string): NicRef[];
  saveLeases(vmId: string, leases: Lease[]): void;
  event(vmId: string, kind: string, message: string): void;
  /** Re-applies the VM's forwards from the keeper's believed leases. */
  syncForwards(vmId: string): Promise<void>;
  /** The forwarder's rules with counters (failed connects to the guest trigger re-verification). */
  forwards(): { owner: string; targetAddress: string; counters: { connectFailures: number } }[];
}

/**
 * Probes of the report path (and of a pending lease's checks): 300 ms in
 * all, then pending. A guest reported by the DHCP server's hook is usually
 * still configuring the address when the first request goes out; asking
 * again every 20-40 ms at first believes it within that of its first
 * answer (one 150 ms wait used to leave ~150 ms on the table at every boot).
 */
const REPORT_PROBE = [20, 20, 20, 40, 80, 120];
/**
 * Re-verification: a busy guest gets more time before it counts as silent;
 * the first two requests go to the guest's MAC alone, the last to everyone
 * (see VerifyOptions.unicast).
 */
const REVERIFY_PROBE = [300, 300, 300];
const REVERIFY_UNICAST = 2;
/** Checks of a pending lease after its report (ms); then the periodic pass takes over. */
const PENDING_BACKOFF = [250, 500, 1000, 2000, 4000, 8000];
/** A believed lease that did not answer is asked again this soon (and once silent, once more). */
const SILENT_RECHECK_MS = 2000;
/** A lease believed from a neighbour entry the kernel did not just confirm is probed this soon. */
const CONFIRM_AFTER_MS = 2000;
/** Leases kept across a restart: their first checks, spread over this long after CONFIRM_AFTER_MS. */
const CONFIRM_SPREAD_MS = 5000;
/** Leases checked together: one batch of a spread-out pass (see spread). */
const REVERIFY_BATCH = 32;
/** How often forwards' error counters are looked at, and how rarely one NIC is re-checked for them. */
const ERROR_WATCH_MS = 1000;
const ERROR_RECHECK_MS = 5000;
/**
 * Probes in flight at once, by priority: a report (or start-up) waits for
 * no background re-verification. Each holds a libuv worker thread while it
 * waits for answers, and the pool has four.
 */
const MAX_PROBES = { report: 2, background: 1 };
type Priority = keyof typeof MAX_PROBES;

const key = (r: NicRef) => `${r.vmId}/${r.nic}`;
const nicName = (r: NicRef) => `nics[${r.nic}]`;
const now = () => new Date().toISOString();

/** Whether a lease drives forwards (stored leases from before verification existed count as verified). */
export const isBelieved = (l: Lease): boolean => l.state === undefined || l.state === "verified" || l.state === "trusted";

/**
 * Each NIC's lease, believed only once the wire agrees: checks reports against the NIC's subnet and
 * its MAC's ARP answers, re-verifies in the background, and tells the VM manager when a believed
 * address changes.
 */
export class LeaseKeeper {
  private readonly book = new LeaseBook();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastErrors = new Map<string, number>();
  private readonly lastErrorCheck = new Map<string, number>();
  private readonly reportSeq = new Map<string, number>();
  /** NICs whose believed lease went unanswered once (a second silence drops their forwards). */
  private readonly suspect = new Set<string>();
  private seq = 0;
  private readonly slots = new PrioritySlots(MAX_PROBES);
  private periodic: NodeJS.Timeout | undefined;
  private errorWatch: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly cfg: Config,
    private readonly host: LeaseHost,
    private readonly wire: Wire,
  ) {}

  // ----- queries ------------------------------------------------------------

  /** Every lease of VM `vmId` (all states), by NIC. */
  leasesOf(vmId: string): Lease[] {
    return this.book.leasesOf(vmId);
  }

  /** The address forwards of NIC `ref` point at: its lease when believed and unexpired. */
  activeIp(ref: NicRef): string | undefined {
    const l = this.book.get(ref)?.lease;
    if (!l || !isBelieved(l)) return undefined;
    if (l.expiresAt !== undefined && Date.parse(l.expiresAt) <= Date.now()) return undefined;
    return l.ip;
  }

  // ----- lifecycle ----------------------------------------------------------

  /** Loads a running VM's stored leases (daemon start). A lease another NIC already verified is dropped. */
  load(vmId: string, leases: Lease[]): void {
    let dropped = false;
    for (const l of leases) {
      const ref = { vmId, nic: l.nic };
      const nic = this.host.nic(ref);
      if (!nic?.domain || !this.book.load(ref, nic.domain, l)) {
        dropped = true;
        this.host.event(vmId, "lease", `${nicName(ref)}: stored lease of ${l.ip} dropped at start (${nic?.domain ? "another NIC holds it" : "the NIC takes no leases"})`);
      }
    }
    if (dropped) this.host.saveLeases(vmId, this.book.leasesOf(vmId));
  }

  /** Starts the periodic re-verification and the connect-failure watch. */
  start(): void {
    if (this.cfg.networking.leaseVerification === "off") return;
    this.periodic = setInterval(() => this.reverifyAll(), this.cfg.networking.leaseVerifyIntervalSeconds * 1000);
    this.periodic.unref();
    this.errorWatch = setInterval(() => this.watchErrors(), ERROR_WATCH_MS);
    this.errorWatch.unref();
    // Leases kept across a restart were verified by the previous daemon:
    // look again soon, spread over a few seconds (1,000 checks at once
    // stalled the event loop for ~230 ms, and every report with it).
    this.spread(this.book.all(), CONFIRM_AFTER_MS, CONFIRM_SPREAD_MS);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.periodic);
    clearInterval(this.errorWatch);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** VM `vmId` stopped or exited: its leases end (persisted; no forwards re-applied: the caller removed them). */
  endVm(vmId: string, why: string): void {
    const ended = this.book.dropVm(vmId);
    this.clearTimers(vmId);
    this.host.saveLeases(vmId, []);
    if (ended.length > 0) this.host.event(vmId, "lease", `leases ended (${why}): ${ended.map((l) => `nics[${l.nic}] ${l.ip}`).join(", ")}`);
  }

  /** VM `vmId` was removed: forget it (nothing persisted: its directory is gone). */
  forget(vmId: string): void {
    this.book.dropVm(vmId);
    this.clearTimers(vmId);
  }

  /** Drops leases that expired (their forwards go with them). */
  async expire(): Promise<void> {
    const vms = new Set<string>();
    for (const ref of this.book.expired(Date.now())) {
      const l = this.book.drop(ref)!;
      this.host.event(ref.vmId, "lease", `${nicName(ref)} lease of ${l.ip} expired`);
      vms.add(ref.vmId);
    }
    await this.persistAndSync([...vms]);
  }

  // ----- reports ------------------------------------------------------------

  /**
   * Applies a lease report. Throws "invalid" naming the field, "not_found"
   * for a MAC of no VM, "precondition" for a NIC that takes no reports, a
   * VM that is not running, or a report the wire contradicts (nothing
   * changes then, and an event on the VM names the mismatch).
   */
  async report(r: LeaseReport): Promise<{ ref: NicRef; lease: Lease | undefined }> {
    const { ref, nic, mac } = checkLeaseReport(this.host, r);
    const k = key(ref);
    if (r.action === "del") {
      const cur = this.book.get(ref);
      // A del for an address the NIC no longer holds changes nothing.
      if (cur && cur.lease.ip === r.ip) {
        this.reportSeq.set(k, ++this.seq);
        this.book.drop(ref);
        this.host.event(ref.vmId, "lease", `${nicName(ref)} released ${r.ip}`);
        await this.persistAndSync([ref.vmId]);
      }
      return { ref, lease: this.book.get(ref)?.lease };
    }
    if (!nic.running) throw precondition(`mac: VM "${ref.vmId}" is not running; its leases begin when it runs`);
    const mySeq = ++this.seq;
    this.reportSeq.set(k, mySeq);
    const t0 = performance.now();
    const t0Ns = process.hrtime.bigint(); // CLOCK_MONOTONIC, comparable across processes (bench/lease.ts)
    // A renewal of an address the NIC already holds may be settled by the
    // neighbour table. A new address may not: dnsmasq puts the guest's MAC
    // there before its DHCPACK, that is before the guest has configured the
    // address, and a rule that goes live then sends the first client's SYN
    // to a guest that drops it (the client waits for the 1 s retransmit).
    // The guest's own ARP answer is the moment it can take connections.
    const cur = this.book.get(ref)?.lease;
    const renewal = cur !== undefined && cur.ip === r.ip && isBelieved(cur);
    const verdict = await this.verify(nic.domain!, r.ip, mac, renewal ? LEARNED : 0, REPORT_PROBE, "report");
    const verified = performance.now();
    // Superseded while we looked (a newer report or a del), or the VM stopped.
    if (this.reportSeq.get(k) !== mySeq || !this.host.nic(ref)?.running) return { ref, lease: this.book.get(ref)?.lease };
    const { lease, liveAt } = await this.apply(ref, nic.domain!, r, verdict, r.action === "add" ? "leased" : "renewed");
    // Where a report's time goes (bench/lease.ts reads these with VMM_DEBUG=1).
    log("debug", "lease report applied", {
      vm: ref.vmId,
      nic: ref.nic,
      ip: r.ip,
      state: lease?.state,
      verifyMs: +(verified - t0).toFixed(3),
      liveMs: +(liveAt - t0).toFixed(3),
      totalMs: +(performance.now() - t0).toFixed(3),
      startNs: String(t0Ns),
    });
    return { ref, lease };
  }

  /**
   * Applies a verdict on a report (or a lease-file entry) for `ref`. Returns
   * the NIC's lease afterwards and when its rules were live
   * (performance.now()).
   */
  private async apply(ref: NicRef, domain: string, r: Omit<LeaseReport, "action" | "mac">, v: Verdict, verb: string): Promise<{ lease: Lease | undefined; liveAt: number }> {
    const who = nicName(ref);
    if (v.result === "mismatch") {
      const answered = v.answeredBy.map((m) => this.describeMac(m)).join(", ");
      const msg = `report of ${r.ip} for ${who} (MAC ${this.host.nic(ref)!.mac}) not applied: on ${domain}, ${r.ip} is answered by ${answered}`;
      this.host.event(ref.vmId, "lease_mismatch", msg);
      log("warn", "lease report contradicted by the wire", { vm: ref.vmId, nic: ref.nic, ip: r.ip, answeredBy: v.answeredBy });
      throw precondition(`ip: ${msg}`);
    }
    const prev = this.book.get(ref)?.lease;
    // A report whose probes went unanswered (a guest busy for a moment, a
    // loaded host) does not cost a guest believed at that address its
    // forwards: it is asked again soon, and only a second silence drops
    // them, as with the periodic re-verification (recheck). Believed as of
    // now, not as of the report's start: a background check may have heard
    // the guest while this report's probes waited. One already asked again
    // gets no second grace period (reports sent faster than the re-check
    // cannot keep a silent guest believed).
    const holdOn = v.result === "silent" && prev !== undefined && prev.ip === r.ip && isBelieved(prev) && !this.suspect.has(key(ref));
    const state: LeaseState | undefined = holdOn ? prev.state : v.result === "verified" ? (this.cfg.networking.leaseVerification === "off" ? "trusted" : "verified") : "pending";
    const at = now();
    const lease: Lease = {
      nic: ref.nic,
      ip: r.ip,
      hostname: r.hostname,
      ...(r.expiresUnix > 0 ? { expiresAt: new Date(r.expiresUnix * 1000).toISOString() } : {}),
      updatedAt: at,
      interface: r.interface,
      ...(state !== undefined ? { state } : {}),
      ...(holdOn ? (prev.verifiedAt ? { verifiedAt: prev.verifiedAt } : {}) : state !== "pending" ? { verifiedAt: at } : {}),
      detail: holdOn ? `no ARP answer to the renewal at ${at}; believed since ${prev.verifiedAt ?? "before"}, asked again in ${SILENT_RECHECK_MS / 1000} s` : this.detail(domain, v),
    };
    this.suspect.delete(key(ref));
    const { generation, revoked } = this.book.report(ref, domain, lease);
    const tail = state === "pending" ? `: pending (${lease.detail})` : holdOn ? `: no ARP answer to it; still believed, asked again in ${SILENT_RECHECK_MS / 1000} s` : "";
    this.host.event(ref.vmId, "lease", `${who} ${prev?.ip === r.ip ? "renewed" : verb} ${r.ip}${r.hostname ? ` (${r.hostname})` : ""}${tail}`);
    this.announce(ref, r.ip, revoked);
    const liveAt = await this.persistAndSync([...revoked.map((x) => x.ref.vmId), ref.vmId]);
    if (holdOn) {
      this.suspect.add(key(ref));
      this.schedule(ref, generation, SILENT_RECHECK_MS);
    } else if (state === "pending") this.schedule(ref, generation, PENDING_BACKOFF[0]!, 0);
    else if (v.result === "verified" && v.via === "neighbour") this.schedule(ref, generation, CONFIRM_AFTER_MS);
    return { lease: this.book.get(ref)?.lease, liveAt };
  }

  private detail(domain: string, v: Verdict): string {
    switch (v.result) {
      case "verified":
        if (this.cfg.networking.leaseVerification === "off") return "not verified (networking.lease_verification = off)";
        return `answers ARP on ${domain} (${v.via === "neighbour" ? "neighbour table" : "probe"})${v.others.length > 0 ? `; also answered by ${v.others.map((m) => this.describeMac(m)).join(", ")}` : ""}`;
      case "silent":
        return `no ARP answer on ${domain} since ${now()}`;
      case "unverifiable":
        return `cannot verify: ${v.reason}`;
      case "mismatch":
        return `answered by ${v.answeredBy.join(", ")} on ${domain}`;
    }
  }

  /** "52:54:00:.. (VM b nics[0])" when the MAC is a VM's. */
  private describeMac(mac: string): string {
    const owner = this.host.nicOfMac(mac);
    return owner ? `${mac} (VM "${owner.vmId}" ${nicName(owner)})` : mac;
  }

  /** Events for leases revoked because `ref` now holds `ip`. */
  private announce(ref: NicRef, ip: string, revoked: Revocation[]): void {
    for (const x of revoked) {
      this.clearTimer(x.ref);
      this.host.event(x.ref.vmId, "lease_revoked", `${nicName(x.ref)} lost ${ip}: VM "${ref.vmId}" ${nicName(ref)} answers for it now`);
      this.host.event(ref.vmId, "lease_revoked", `${nicName(ref)} took ${ip} over from VM "${x.ref.vmId}" ${nicName(x.ref)}`);
    }
  }

  // ----- start-up -----------------------------------------------------------

  /**
   * Converges the NICs on bridge `domain` with dnsmasq's lease file `file`
   * (daemon start, before serving): a stored lease dnsmasq no longer holds
   * ends (its del was missed), a lease only dnsmasq knows is applied like a
   * replayed report. Probes are not waited for: what the neighbour table
   * does not confirm at once stays pending and is checked right after.
   * A missing or unreadable file changes nothing (logged).
   */
  async reconcile(domain: string, file: string): Promise<void> {
    let leases: DnsmasqLease[];
    try {
      if (statSync(file).size > MAX_LEASE_FILE_BYTES) throw new Error(`larger than ${MAX_LEASE_FILE_BYTES} bytes`);
      const parsed = parseLeaseFile(readFileSync(file, "utf8"));
      leases = parsed.leases;
      if (parsed.skipped > 0) log("warn", "lines of a dnsmasq lease file skipped", { file, skipped: parsed.skipped });
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
      log(missing ? "info" : "warn", missing ? "no dnsmasq lease file; leases of the bridge not reconciled" : "dnsmasq lease file unreadable; leases of the bridge not reconciled", { bridge: domain, file, error: String(e) });
      return;
    }
    const nowUnix = Date.now() / 1000;
    const live = new Map<string, DnsmasqLease>();
    for (const l of leases) {
      if (l.expiresUnix !== 0 && l.expiresUnix <= nowUnix) continue;
      const prev = live.get(l.mac);
      if (!prev || prev.expiresUnix !== 0 && (l.expiresUnix === 0 || l.expiresUnix > prev.expiresUnix)) live.set(l.mac, l);
    }
    const touched: string[] = [];
    for (const ref of this.host.nicsOn(domain)) {
      const nic = this.host.nic(ref)!;
      const fileLease = live.get(nic.mac);
      const cur = this.book.get(ref);
      if (!fileLease) {
        if (cur) {
          this.book.drop(ref);
          this.host.event(ref.vmId, "lease", `${nicName(ref)} lease of ${cur.lease.ip} ended while the daemon was down (not in ${file})`);
          touched.push(ref.vmId);
        }
        continue;
      }
      const r = { ip: fileLease.ip, hostname: fileLease.hostname, expiresUnix: fileLease.expiresUnix, interface: domain };
      if (cur && cur.lease.ip === r.ip && isBelieved(cur.lease)) {
        // Same address as stored: keep believing it (re-verified after start).
        this.book.report(ref, domain, { ...cur.lease, hostname: r.hostname, ...(r.expiresUnix > 0 ? { expiresAt: new Date(r.expiresUnix * 1000).toISOString() } : {}) });
        touched.push(ref.vmId);
        continue;
      }
      try {
        checkLeaseReport(this.host, { action: "old", mac: nic.mac, ...r });
      } catch (e) {
        log("warn", "dnsmasq lease file entry refused", { file, mac: nic.mac, ip: r.ip, error: (e as Error).message });
        continue;
      }
      const verdict: Verdict =
        this.cfg.networking.leaseVerification === "off"
          ? { result: "verified", via: "neighbour", others: [] }
          : await this.verify(domain, r.ip, nic.mac, LEARNED, [], "report");
      await this.apply(ref, domain, r, verdict, "leased (from the lease file)").catch((e) => log("warn", "dnsmasq lease file entry not applied", { file, error: (e as Error).message }));
    }
    await this.persistAndSync(touched);
  }

  // ----- verification -------------------------------------------------------

  private async verify(domain: string, ip: string, mac: string, trustNeighbour: number, probeWaitsMs: readonly number[], priority: Priority, unicast = 0): Promise<Verdict> {
    if (this.cfg.networking.leaseVerification === "off") return { result: "verified", via: "neighbour", others: [] };
    // The neighbour table costs microseconds: no slot needed when it settles it.
    const quick = await verifyOnWire(this.wire, domain, ip, mac, { trustNeighbour, probeWaitsMs: [] });
    if (quick.result !== "silent" || probeWaitsMs.length === 0) return quick;
    return this.slots.run(priority, () => verifyOnWire(this.wire, domain, ip, mac, { trustNeighbour: 0, probeWaitsMs, unicast }));
  }

  /** Checks the NIC's lease of generation `generation` again after `ms`. */
  private schedule(ref: NicRef, generation: number, ms: number, backoffStep?: number): void {
    if (this.closed || this.cfg.networking.leaseVerification === "off") return;
    this.clearTimer(ref);
    const t = setTimeout(() => {
      this.timers.delete(key(ref));
      void this.recheck(ref, generation, backoffStep).catch((e) => log("error", "lease re-verification failed", { vm: ref.vmId, nic: ref.nic, error: String(e) }));
    }, ms);
    t.unref();
    this.timers.set(key(ref), t);
  }

  private clearTimer(ref: NicRef): void {
    clearTimeout(this.timers.get(key(ref)));
    this.timers.delete(key(ref));
  }

  private clearTimers(vmId: string): void {
    for (const [k, t] of [...this.timers]) {
      if (k.startsWith(`${vmId}/`)) {
        clearTimeout(t);
        this.timers.delete(k);
      }
    }
    for (const k of [...this.suspect]) if (k.startsWith(`${vmId}/`)) this.suspect.delete(k);
  }

  /**
   * Verifies the NIC's current lease again (pending: is it answering yet?
   * believed: is it still?). `backoffStep` continues a pending lease's
   * backoff.
   */
  private async recheck(ref: NicRef, generation: number, backoffStep?: number): Promise<void> {
    const cur = this.book.get(ref);
    const nic = this.host.nic(ref);
    if (!cur || cur.generation !== generation || !nic?.running || nic.domain === undefined) return;
    const wasPending = cur.lease.state === "pending";
    // A guest already known to be silent gets one question per pass.
    const probe = wasPending ? REPORT_PROBE : cur.lease.state === "silent" ? REVERIFY_PROBE.slice(0, 1) : REVERIFY_PROBE;
    // Pending: only the guest's own answer counts (see report()).
    // A believed guest is asked at its MAC first; a pending or silent one by broadcast.
    const unicast = !wasPending && cur.lease.state !== "silent" ? REVERIFY_UNICAST : 0;
    const v = await this.verify(cur.domain, cur.lease.ip, nic.mac, wasPending ? 0 : NUD.REACHABLE, probe, "background", unicast);
    const again = this.book.get(ref);
    if (!again || again.generation !== generation) return;
    const ip = cur.lease.ip;
    const who = nicName(ref);
    if (v.result === "verified") {
      this.suspect.delete(key(ref));
      const settled = this.book.settle(ref, generation, "verified", now(), this.detail(cur.domain, v))!;
      if (cur.lease.state !== "verified") {
        this.host.event(ref.vmId, "lease", `${who} ${ip} ${wasPending ? "verified" : "answers again"}: ${settled.lease.detail}`);
        this.announce(ref, ip, settled.revoked);
        await this.persistAndSync([...settled.revoked.map((x) => x.ref.vmId), ref.vmId]);
      }
      return;
    }
    if (v.result === "mismatch") {
      this.suspect.delete(key(ref));
      this.book.drop(ref);
      this.host.event(ref.vmId, "lease_mismatch", `${who} lost ${ip}: on ${cur.domain} it is answered by ${v.answeredBy.map((m) => this.describeMac(m)).join(", ")}, not by ${nic.mac}`);
      log("warn", "lease contradicted by the wire; dropped", { vm: ref.vmId, nic: ref.nic, ip, answeredBy: v.answeredBy });
      await this.persistAndSync([ref.vmId]);
      return;
    }
    if (wasPending) {
      // Still no answer (or cannot tell): keep trying, slower.
      const step = (backoffStep ?? PENDING_BACKOFF.length) + 1;
      if (v.result === "unverifiable") this.book.settle(ref, generation, "pending", now(), this.detail(cur.domain, v));
      // After the backoff, the periodic pass looks at it.
      if (step < PENDING_BACKOFF.length) this.schedule(ref, generation, PENDING_BACKOFF[step]!, step);
      return;
    }
    if (v.result === "silent" && cur.lease.state !== "silent") {
      // A busy guest may miss one round of questions: ask again soon, and
      // drop its forwards only when it stays silent.
      if (!this.suspect.has(key(ref))) {
        this.suspect.add(key(ref));
        this.schedule(ref, generation, SILENT_RECHECK_MS);
        return;
      }
      this.suspect.delete(key(ref));
      this.book.settle(ref, generation, "silent", now(), this.detail(cur.domain, v));
      this.host.event(ref.vmId, "lease_silent", `${who} ${ip} no longer answers ARP on ${cur.domain}; its forwards are dropped until it does`);
      await this.persistAndSync([ref.vmId]);
      // Back soon when it answers again (then with every periodic pass).
      this.schedule(ref, generation, SILENT_RECHECK_MS);
    }
    if (v.result === "unverifiable") log("warn", "lease cannot be re-verified", { vm: ref.vmId, nic: ref.nic, reason: v.reason });
  }

  /** Re-verifies every lease (the periodic pass). */
  private reverifyAll(): void {
    // Each lease without a check of its own already due gets one within
    // the interval, spread over its first 90%, in the book's order: a
    // lease's place in a pass, and so its period, stays about the same.
    this.spread(
      this.book.all().filter(({ ref }) => !this.timers.has(key(ref))),
      0,
      this.cfg.networking.leaseVerifyIntervalSeconds * 900,
    );
  }

  /**
   * Schedules a check of each lease, REVERIFY_BATCH at a time, the batches
   * evenly from `firstMs` over `windowMs`. Each check asks the neighbour
   * table and the wire on the event loop: a host of 1,000 leases checked at
   * once holds up every report that arrives meanwhile.
   */
  private spread(leases: { ref: NicRef; generation: number }[], firstMs: number, windowMs: number): void {
    const batches = Math.ceil(leases.length / REVERIFY_BATCH);
    const spacing = batches > 1 ? windowMs / batches : 0;
    leases.forEach(({ ref, generation }, i) => this.schedule(ref, generation, firstMs + Math.floor(i / REVERIFY_BATCH) * spacing));
  }

  /** Connects to a guest failing (a forward's connectFailures counter grew): re-verify its lease now. */
  private watchErrors(): void {
    const seen = new Set<string>();
    let byTarget: Map<string, ReturnType<LeaseBook["all"]>[number]> | undefined;
    for (const f of this.host.forwards()) {
      const k = `${f.owner} ${f.targetAddress}`;
      seen.add(k);
      const before = this.lastErrors.get(k);
      this.lastErrors.set(k, f.counters.connectFailures);
      if (before === undefined || f.counters.connectFailures <= before) continue;
      byTarget ??= new Map(this.book.all().map((x) => [`${x.ref.vmId} ${x.lease.ip}`, x]));
      const hit = byTarget.get(k);
      if (!hit || Date.now() - (this.lastErrorCheck.get(key(hit.ref)) ?? 0) < ERROR_RECHECK_MS) continue;
      this.lastErrorCheck.set(key(hit.ref), Date.now());
      void this.recheck(hit.ref, hit.generation).catch((e) => log("error", "lease re-verification failed", { vm: hit.ref.vmId, error: String(e) }));
    }
    for (const k of [...this.lastErrors.keys()]) if (!seen.has(k)) this.lastErrors.delete(k);
  }

  /**
   * Re-applies the forwards of `vmIds` in order (revoked holders before the
   * new one, so no two rules point at one address), then persists their
   * leases. Rules go live before the write; a crash in between leaves
   * stored leases that the lease file reconciles at the next start.
   * Returns when the rules were live (performance.now()).
   */
  private async persistAndSync(vmIds: string[]): Promise<number> {
    const unique = [...new Set(vmIds)];
    try {
      for (const id of unique) await this.host.syncForwards(id);
      return performance.now();
    } finally {
      for (const id of unique) this.host.saveLeases(id, this.book.leasesOf(id));
    }
  }
}

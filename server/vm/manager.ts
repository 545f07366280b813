// VmManager: the domain object behind VmmService. It owns the VM records
// (store.ts), serializes operations per VM, records events, and drives the
// runner (runner.ts) and the forwarder. RPC handlers only convert and
// call it.
//
// Why one file of ~500 lines: every method takes the VM's operation lock and
// records its event through the same private helpers; lease handling
// (leases.ts), validation (validate.ts), the runner and the record store are
// already apart, and what is left is the lifecycle itself.
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { checkId, nameKey } from "../check.js";
import type { Config } from "../config/types.js";
import { DEFAULT_EVENTS, MAX_EVENTS, STOP_TIMEOUT_SECONDS } from "../contract.js";
import { precondition, Problems, VmmError } from "../errors.js";
import type { ForwardRule } from "../forward/rules.js";
import type { Forwarder } from "../forward/types.js";
import { hostInterfaceOf } from "../host/addresses.js";
import type { Wire } from "../host/neighbour.js";
import type { ImageCatalog } from "../image/catalog.js";
import { describeDisks, type DiskView } from "../image/disks.js";
import type { Lease, NicRef } from "../net/lease-book.js";
import { log } from "../log.js";
import { deriveMac } from "../net/mac.js";
import { pageOf, readPage } from "../page.js";
import { LeaseKeeper, type LeaseHost, type LeaseNic, type LeaseReport } from "./leases.js";
import { MAX_EVENTS_KEPT, type VmStore } from "./store.js";
import type { NetworkLookup, PortSpec, RawUpdate, RawVmSpec, VmEventRecord, VmRecord, VmRunner, VmRuntime, VmSpec, VmView } from "./types.js";
import { checkRunFiles, FORWARDED_MODES, recheckStoredSpec, validateSpec, validateUpdate } from "./validate.js";
import { matches, parseSelector } from "./labels.js";

/** Filter and page of ListVms. */
export interface ListQuery {
  ids: string[];
  /** Only VMs with one of these exact names; empty: no filter. */
  names?: string[];
  keyword: string;
  /** Label selector (labels.ts); "": no filter. */
  labelSelector?: string;
  pageSize: number;
  pageToken: string;
}

interface Entry {
  record: VmRecord;
  runtime: VmRuntime;
  events: VmEventRecord[];
  /** Tail of the per-VM operation chain. */
  lock: Promise<unknown>;
}

const now = () => new Date().toISOString();

/** What the VM manager stands on; daemon.ts passes the real ones, tests fakes. */
export interface VmManagerDeps {
  cfg: Config;
  store: VmStore;
  /** Runs guests; undefined without QEMU (records are still served). */
  runner: VmRunner | undefined;
  /** Forwards the ports of bridge-like modes; undefined: none. */
  forwarder: Forwarder | undefined;
  /** The vmnet networks (existence and subnets); undefined: none. */
  networks: NetworkLookup | undefined;
  /** The images directory; undefined: VMs cannot use images. */
  images?: ImageCatalog;
  /** Where leases are verified (server/host/neighbour.ts HostWire; a scripted wire in tests). */
  wire: Wire;
  /** The forwarder's rules with counters: failing connects make the lease keeper re-verify a guest. */
  forwardList?: () => { owner: string; targetAddress: string; counters: { connectFailures: number } }[];
}

/** The domain object behind VmmService; see the file comment. */
export class VmManager {
  private readonly vms = new Map<string, Entry>();
  private readonly byMac = new Map<string, { id: string; nic: number }>();
  /** "event" (vmId, VmEventRecord) for every recorded event, plus "removed" events. */
  readonly events = new EventEmitter();
  private readonly cfg: Config;
  private readonly store: VmStore;
  private readonly runner: VmRunner | undefined;
  private readonly forwarder: Forwarder | undefined;
  private readonly networks: NetworkLookup | undefined;
  private readonly images: ImageCatalog | undefined;
  private readonly forwardList: VmManagerDeps["forwardList"];

  constructor(d: VmManagerDeps) {
    this.cfg = d.cfg;
    this.store = d.store;
    this.runner = d.runner;
    this.forwarder = d.forwarder;
    this.networks = d.networks;
    this.images = d.images;
    this.forwardList = d.forwardList;
    this.events.setMaxListeners(0);
    this.leases = new LeaseKeeper(d.cfg, this.leaseHost(), d.wire);
  }

  /** Leases of every NIC: verified on the wire, one address per NIC per bridge (leases.ts). */
  readonly leases: LeaseKeeper;

  /** Loads every record from disk; re-adopts running guests; restores forwarding. */
  async init(): Promise<void> {
    for (const id of this.store.ids()) {
      let record: VmRecord;
      try {
        record = this.store.loadRecord(id);
        if (typeof record.spec !== "object" || record.spec === null || !Array.isArray(record.macs)) throw new Error("vm.json has no spec or macs");
      } catch (err) {
        // One unreadable record (a hand edit, a damaged disk) does not keep
        // the daemon and every other VM down: it is left in place, unserved.
        log("error", "VM record unreadable; left in place and not served (fix or remove its directory)", { vm: id, dir: this.store.dir(id), error: String(err) });
        continue;
      }
      let runtime: VmRuntime;
      try {
        runtime = this.store.loadRuntime(id);
      } catch (err) {
        runtime = { version: 1, status: "exited", instanceId: "" };
        log("error", "runtime.json unreadable; the VM is served as exited (a guest it ran is not re-adopted)", { vm: id, error: String(err) });
      }
      const e: Entry = { record, runtime, events: this.store.loadEvents(id), lock: Promise.resolve() };
      this.vms.set(id, e);
      e.record.macs.forEach((m, i) => this.byMac.set(m, { id, nic: i }));
    }
    for (const [id, e] of this.vms) {
      try {
        recheckStoredSpec(id, e.record.spec, { cfg: this.cfg });
      } catch (err) {
        log("warn", "a stored VM configuration is not allowed now; StartVm will refuse it (a running guest keeps running)", { vm: id, error: (err as Error).message });
      }
    }
    // Independent per VM: adopt (and restore forwarding of) all at once.
    const live = [...this.vms].filter(([, e]) => e.runtime.status !== "stopped" && e.runtime.status !== "exited");
    await Promise.all(live.map(([id, e]) =>
      this.serialize(id, async () => {
        const alive = this.runner ? await this.runner.adopt(this.view(e), (r) => this.onExit(id, r)) : false;
        if (alive) {
          // Written only when it changes: 1,000 guests re-adopted used to
          // cost 1,000 fsyncs before the daemon served.
          if (e.runtime.status !== "running") this.setRuntime(e, { ...e.runtime, status: "running" });
          this.event(e, "adopted", `daemon restarted; re-adopted QEMU pid ${e.runtime.pid}`);
          // A restart of the daemon keeps the leases of a guest that kept running.
          this.leases.load(id, this.store.loadLeases(id));
          await this.syncForwards(e);
        } else {
          this.setRuntime(e, { version: 1, status: "exited", instanceId: e.runtime.instanceId });
          this.event(e, "exited", "QEMU was gone when the daemon restarted");
          this.leases.endVm(id, "QEMU was gone when the daemon restarted");
        }
      }),
    ));
    // Leases end with the guest: a VM that is not running holds none.
    for (const [id, e] of this.vms) if (!this.isLive(e) && this.store.loadLeases(id).length > 0) this.store.saveLeases(id, []);
  }

  // ----- queries ------------------------------------------------------------

  private entry(id: string, field = "id"): Entry {
    const p = new Problems();
    checkId(p, field, id);
    p.throwIfAny();
    const e = this.vms.get(id);
    if (!e) throw new VmmError("not_found", `${field}: VM "${id}" not found`);
    return e;
  }

  view(e: Entry, maxEvents = DEFAULT_EVENTS): VmView {
    return { record: e.record, runtime: e.runtime, leases: this.leases.leasesOf(e.record.id), events: e.events.slice(-maxEvents) };
  }

  /** Every VM's id, in the order they were created or loaded (no disk access). */
  ids(): string[] {
    return [...this.vms.keys()];
  }

  get(id: string, maxEvents = DEFAULT_EVENTS): VmView {
    if (maxEvents > MAX_EVENTS) throw new VmmError("invalid", `max_events: is ${maxEvents}; at most ${MAX_EVENTS}`, { problems: [{ field: "max_events", message: `at most ${MAX_EVENTS}` }] });
    return this.view(this.entry(id), maxEvents === 0 ? DEFAULT_EVENTS : maxEvents);
  }

  list(q: ListQuery): { vms: VmView[]; nextPageToken: string; total: number } {
    const p = new Problems();
    q.ids.forEach((id, i) => checkId(p, `ids[${i}]`, id));
    if (q.keyword.length > 256) p.add("keyword", `is ${q.keyword.length} characters; at most 256`);
    const w = readPage(p, q, "ListVms");
    const selector = parseSelector(p, "label_selector", q.labelSelector ?? "");
    p.throwIfAny();
    const kw = q.keyword.toLowerCase();
    const all = [...this.vms.values()]
      .filter((e) => q.ids.length === 0 || q.ids.includes(e.record.id))
      .filter((e) => (q.names ?? []).length === 0 || q.names!.includes(e.record.spec.name))
      .filter((e) => kw === "" || e.record.id.includes(kw) || e.record.spec.name.toLowerCase().includes(kw))
      .filter((e) => matches(e.record.spec.labels ?? {}, selector!))
      .sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt) || a.record.id.localeCompare(b.record.id));
    const page = pageOf(all, w);
    return { vms: page.items.map((e) => this.view(e)), nextPageToken: page.nextPageToken, total: all.length };
  }

  /** Ids of VMs with a NIC on vmnet network `networkId`. */
  attachedTo(networkId: string): string[] {
    return [...this.vms.values()].filter((e) => e.record.spec.nics.some((n) => n.networkId === networkId)).map((e) => e.record.id);
  }

  // ----- mutations ----------------------------------------------------------

  /** Runs `fn` after every earlier operation on VM `id` has finished. */
  private serialize<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const e = this.vms.get(id);
    const prev = e?.lock ?? Promise.resolve();
    const next = prev.then(fn, fn);
    if (e) e.lock = next.catch(() => undefined);
    return next;
  }

  private event(e: Entry, kind: string, message: string): void {
    const ev = { time: now(), kind, message };
    e.events.push(ev);
    if (e.events.length > MAX_EVENTS_KEPT) e.events.splice(0, e.events.length - MAX_EVENTS_KEPT);
    try {
      this.store.appendEvent(e.record.id, ev);
    } catch {
      // The VM directory may be gone (removal in progress); the event is still emitted.
    }
    this.events.emit("event", e.record.id, ev);
  }

  private setRuntime(e: Entry, rt: VmRuntime): void {
    this.store.saveRuntime(e.record.id, rt);
    e.runtime = rt;
  }

  /**
   * Names are handles (the CLI and clients look VMs up by name, an id
   * winning over a name): a name belongs to one VM, compared in NFC.
   */
  private checkNameFree(id: string, name: string, field: string): void {
    const key = nameKey(name);
    for (const [otherId, o] of this.vms) {
      if (otherId !== id && nameKey(o.record.spec.name) === key) throw new VmmError("exists", `${field}: VM "${otherId}" is already named "${name}"`);
    }
  }

  private checkPortConflicts(id: string, ports: PortSpec[], field: string): void {
    for (const [otherId, o] of this.vms) {
      if (otherId === id) continue;
      for (const p of ports) {
        const hit = o.record.spec.ports.find((q) => q.protocol === p.protocol && q.hostPort === p.hostPort && q.hostAddress === p.hostAddress);
        if (hit) throw new VmmError("exists", `${field}: ${p.protocol} ${p.hostAddress}:${p.hostPort} is already mapped by VM "${otherId}"`);
      }
    }
  }

  async create(rawId: string, raw: RawVmSpec, start: boolean): Promise<VmView> {
    const p = new Problems();
    if (rawId !== "") checkId(p, "id", rawId);
    const id = rawId === "" ? randomUUID() : rawId;
    if (p.empty) checkRunFiles(p, "id", this.store.files(id));
    p.throwIfAny();
    const spec = validateSpec(raw, { cfg: this.cfg });
    await this.checkImages(spec);
    if (this.vms.has(id)) throw new VmmError("exists", `id: VM "${id}" already exists`);
    if (this.store.has(id)) throw new VmmError("exists", `id: ${this.store.dir(id)} exists but its record is unreadable (the daemon logged why at start); fix or remove it`);
    this.checkNameFree(id, spec.name, "config.name");
    this.checkPortConflicts(id, spec.ports, "config.ports");
    for (const [i, nic] of spec.nics.entries()) {
      if (nic.mode === "vmnet" && this.networks?.subnetOf(nic.networkId!) === undefined)
        throw new VmmError("not_found", `config.nics[${i}].network_id: network "${nic.networkId}" not found`);
    }
    const macs = spec.nics.map((_, i) => deriveMac(id, i, this.cfg.networking.macPrefix));
    for (const [i, m] of macs.entries()) {
      const other = this.byMac.get(m);
      if (other) throw new VmmError("exists", `derived MAC ${m} of nics[${i}] collides with VM "${other.id}"`);
    }
    const record: VmRecord = { version: 1, id, createdAt: now(), spec, macs };
    const runtime: VmRuntime = { version: 1, status: "stopped", instanceId: "" };
    const ev = { time: now(), kind: "created", message: `created "${spec.name}"` };
    this.store.create(record, runtime, ev);
    const e: Entry = { record, runtime, events: [ev], lock: Promise.resolve() };
    this.vms.set(id, e);
    macs.forEach((m, i) => this.byMac.set(m, { id, nic: i }));
    this.events.emit("event", id, ev);
    if (start) return this.start(id);
    return this.view(e);
  }

  /** Images a new spec names exist, are usable and are no larger than the sizes asked for. */
  private async checkImages(spec: VmSpec): Promise<void> {
    const wanted: [string, string, number][] = [];
    if (spec.image) wanted.push([spec.image, "config.image", spec.imageSizeMib ?? 0]);
    (spec.disks ?? []).forEach((d, i) => d.image !== "" && wanted.push([d.image, `config.disks[${i}].image`, d.sizeMib]));
    if (wanted.length === 0) return;
    if (!this.images) throw new VmmError("unsupported", "this daemon has no images directory");
    for (const [name, field, sizeMib] of wanted) {
      const e = this.images.get(name, field);
      if (!e.disk) {
        if (field !== "config.image") throw precondition(`${field}: image "${name}" has no disk (disk.qcow2 or disk.raw)`);
        continue;
      }
      const bytes = await this.images.inspect(e, field);
      const sizeField = field === "config.image" ? "config.image_size_mib" : field.replace(/\.image$/, ".size_mib");
      if (sizeMib > 0 && sizeMib * 1048576 < bytes)
        throw new VmmError("invalid", `${sizeField}: ${sizeMib} MiB is smaller than image "${name}" (${Math.ceil(bytes / 1048576)} MiB)`, { problems: [{ field: sizeField, message: "smaller than the image" }] });
    }
  }

  /** The disks of a VM in bus order, as GetInfo shows them. */
  disks(v: VmView): DiskView[] {
    return describeDisks(v.record.spec, this.store.dir(v.record.id));
  }

  async update(id: string, u: RawUpdate): Promise<VmView> {
    const e = this.entry(id);
    return this.serialize(id, async () => {
      const spec = validateUpdate(e.record.spec, u, { cfg: this.cfg });
      if (u.name !== undefined) this.checkNameFree(id, spec.name, "name");
      if (u.updatePorts) this.checkPortConflicts(id, spec.ports, "ports");
      // Ports of NICs QEMU or passt map natively (user, passt) change there
      // first: if that fails, nothing has been written.
      const native = (ports: PortSpec[]) => ports.some((p) => !FORWARDED_MODES.includes(spec.nics[p.nicIndex ?? 0]!.mode));
      const previous = e.record;
      const rec = { ...previous, spec };
      /** QEMU was given spec.ports: gives it back the record's (best effort; logged). */
      let restoreQemu: (() => Promise<void>) | undefined;
      if (u.updatePorts && this.isLive(e) && this.runner?.updatePorts && (native(spec.ports) || native(previous.spec.ports))) {
        await this.runner.updatePorts(this.view(e), spec.ports);
        restoreQemu = () =>
          this.runner!.updatePorts!({ ...this.view(e), record: rec }, previous.spec.ports).catch((undo: unknown) =>
            log("error", "QEMU's ports not restored after a refused update", { vm: id, error: String(undo) }),
          );
      }
      const changed = Object.keys(u).filter((k) => k !== "ports" && k !== "updatePorts" && (u as unknown as Record<string, unknown>)[k] !== undefined);
      if (u.updatePorts) changed.push("ports");
      try {
        if (restoreQemu) {
          // Another VM may have taken the name or a port while QEMU changed
          // (updates of different VMs run concurrently): check again before
          // anything is written.
          if (u.name !== undefined) this.checkNameFree(id, spec.name, "name");
          this.checkPortConflicts(id, spec.ports, "ports");
        }
        this.store.saveRecord(rec);
        e.record = rec;
        if (u.updatePorts && this.isLive(e)) {
          try {
            await this.syncForwards(e);
          } catch (err) {
            // The forwarder refused (e.g. a port in use): restore the previous
            // record so disk, memory and the host agree, then report it.
            this.store.saveRecord(previous);
            e.record = previous;
            await this.syncForwards(e).catch(() => undefined);
            throw err;
          }
        }
      } catch (err) {
        // Whatever refused the update after QEMU took the new ports, QEMU
        // gets the record's ports back.
        await restoreQemu?.();
        throw err;
      }
      this.event(e, "updated", `updated ${changed.join(", ") || "nothing"}`);
      return this.view(e);
    });
  }

  private isLive(e: Entry): boolean {
    return e.runtime.status === "running" || e.runtime.status === "starting";
  }

  async start(id: string): Promise<VmView> {
    const e = this.entry(id);
    return this.serialize(id, async () => {
      if (this.isLive(e) || e.runtime.status === "stopping") throw precondition(`VM "${id}" is already ${e.runtime.status}`);
      if (!this.runner) throw new VmmError("unsupported", "this daemon has no VM runner (QEMU not available)");
      const s = e.record.spec;
      if (s.kernel === "" && !s.image && s.disk === "" && (s.disks ?? []).length === 0)
        throw precondition(`VM "${id}" has no kernel, image or disk to boot; set config.kernel (UpdateVm kernel) or config.image`);
      // The record passed the policy of the day it was written; it must pass today's.
      try {
        recheckStoredSpec(id, s, { cfg: this.cfg });
      } catch (err) {
        this.event(e, "start_refused", (err as Error).message);
        throw err;
      }
      const instanceId = randomUUID();
      this.setRuntime(e, { version: 1, status: "starting", instanceId });
      this.event(e, "starting", `starting instance ${instanceId}`);
      try {
        const rt = await this.runner.start(this.view(e), (r) => this.onExit(id, r));
        this.setRuntime(e, { ...rt, status: "running", instanceId });
      } catch (err) {
        this.setRuntime(e, { version: 1, status: "stopped", instanceId });
        this.event(e, "start_failed", (err as Error).message);
        throw err;
      }
      this.event(e, "started", `running as pid ${e.runtime.pid}`);
      await this.syncForwards(e);
      return this.view(e);
    });
  }

  async stop(id: string, force: boolean, timeoutSeconds: number | undefined): Promise<VmView> {
    const e = this.entry(id);
    const bounds = STOP_TIMEOUT_SECONDS;
    if (timeoutSeconds !== undefined && (timeoutSeconds < bounds.min || timeoutSeconds > bounds.max)) {
      const message = `must be between ${bounds.min} and ${bounds.max}`;
      throw new VmmError("invalid", `timeout_seconds: is ${timeoutSeconds}; ${message}`, { problems: [{ field: "timeout_seconds", message }] });
    }
    return this.serialize(id, async () => {
      if (!this.isLive(e)) throw precondition(`VM "${id}" is not running (status ${e.runtime.status})`);
      await this.halt(e, force, (timeoutSeconds ?? this.cfg.qemu.stopTimeoutSeconds) * 1000);
      return this.view(e);
    });
  }

  private async halt(e: Entry, force: boolean, timeoutMs: number): Promise<void> {
    const was = e.runtime;
    this.setRuntime(e, { ...was, status: "stopping" });
    this.event(e, "stopping", force ? "killing QEMU" : `powering down (timeout ${timeoutMs / 1000} s)`);
    try {
      await this.forwarder?.remove(e.record.id);
      await this.runner!.stop(this.view(e), { force, timeoutMs });
    } catch (err) {
      // The runner could not end QEMU: it still runs, and the VM says so
      // (with its forwards back), so StopVm can be retried -- never a VM
      // stuck in "stopping" that only a forced RemoveVm recovers.
      this.setRuntime(e, was);
      this.event(e, "stop_failed", (err as Error).message);
      await this.syncForwards(e).catch((why) => this.event(e, "forward_failed", `restoring forwards: ${(why as Error).message}`));
      throw err;
    }
    this.setRuntime(e, { version: 1, status: "stopped", instanceId: e.runtime.instanceId });
    this.leases.endVm(e.record.id, "stopped");
    this.event(e, "stopped", "stopped");
  }

  async remove(id: string, force: boolean): Promise<void> {
    const e = this.entry(id);
    await this.serialize(id, async () => {
      if (this.isLive(e) || e.runtime.status === "stopping") {
        if (!force) throw precondition(`VM "${id}" is ${e.runtime.status}; stop it first or set force`);
        await this.halt(e, true, 0);
      }
      await this.forwarder?.remove(id);
      this.leases.forget(id);
      this.store.remove(id);
      this.vms.delete(id);
      e.record.macs.forEach((m) => this.byMac.delete(m));
      this.events.emit("event", id, { time: now(), kind: "removed", message: "removed" });
    });
  }

  /** Called by the runner when QEMU exits without being asked to. */
  private onExit(id: string, reason: string): void {
    const e = this.vms.get(id);
    if (!e) return;
    void this.serialize(id, async () => {
      if (e.runtime.status === "stopping" || e.runtime.status === "stopped") return;
      await this.forwarder?.remove(id).catch(() => undefined);
      this.setRuntime(e, { version: 1, status: "exited", instanceId: e.runtime.instanceId });
      this.leases.endVm(id, "exited");
      this.event(e, "exited", reason);
      if (e.record.spec.autoRestart && this.vms.has(id)) {
        this.event(e, "auto_restart", "restarting after exit (auto_restart)");
        setImmediate(() => void this.start(id).catch((err: unknown) => log("warn", "auto_restart failed", { vm: id, error: String(err) })));
      }
    });
  }

  // ----- leases and forwarding ----------------------------------------------

  /** The VM side of the lease keeper. */
  private leaseHost(): LeaseHost {
    const entryOf = (ref: NicRef) => this.vms.get(ref.vmId);
    return {
      nicOfMac: (mac) => {
        const o = this.byMac.get(mac);
        return o && { vmId: o.id, nic: o.nic };
      },
      nic: (ref) => {
        const e = entryOf(ref);
        return e && this.leaseNic(e, ref.nic);
      },
      nicsOn: (domain) =>
        [...this.vms.values()].filter((e) => this.isLive(e)).flatMap((e) =>
          e.record.spec.nics.flatMap((_, i) => (this.leaseNic(e, i).domain === domain ? [{ vmId: e.record.id, nic: i }] : [])),
        ),
      saveLeases: (vmId, leases) => {
        if (this.vms.has(vmId)) this.store.saveLeases(vmId, leases);
      },
      event: (vmId, kind, message) => {
        const e = this.vms.get(vmId);
        if (e) this.event(e, kind, message);
      },
      syncForwards: async (vmId) => {
        const e = this.vms.get(vmId);
        if (e) await this.syncForwards(e);
      },
      hostHolds: (ip) => hostInterfaceOf(ip),
      forwards: () => this.forwardList?.() ?? [],
    };
  }

  /** NIC `i` of a VM as the lease keeper sees it: where its address lives and is verified. */
  private leaseNic(e: Entry, i: number): LeaseNic {
    const n = e.record.spec.nics[i]!;
    const base = { mode: n.mode, mac: e.record.macs[i]!, running: this.isLive(e) };
    if (n.mode === "vmnet") {
      const net = this.networks?.info(n.networkId!);
      return net ? { ...base, domain: net.bridge, subnet: net.subnet, gateway: net.gateway } : base;
    }
    const l2 = n.mode === "bridge" || n.mode === "tap" ? n.bridge : n.mode === "macvtap" ? n.macvtapParent : undefined;
    if (l2 === undefined) return base;
    const subnet = this.cfg.networking.bridgeSubnets[l2];
    return subnet === undefined ? { ...base, domain: l2 } : { ...base, domain: l2, subnet };
  }

  /** Applies a ReportDhcpLease (see LeaseKeeper.report). */
  async reportLease(r: LeaseReport): Promise<{ vmId: string; nic: number; lease: Lease | undefined; view: VmView }> {
    const { ref, lease } = await this.leases.report(r);
    return { vmId: ref.vmId, nic: ref.nic, lease, view: this.view(this.vms.get(ref.vmId)!) };
  }

  /**
   * Desired forwarding rules of a VM, only while it runs: each port to the
   * believed lease of its NIC (ports of user/passt NICs are QEMU's and
   * passt's own).
   */
  forwardRules(e: Entry): ForwardRule[] {
    if (!this.cfg.networking.forwardServiceEnabled || e.runtime.status !== "running") return [];
    const nics = e.record.spec.nics;
    return e.record.spec.ports.flatMap((p) => {
      const nic = p.nicIndex ?? 0;
      const mode = nics[nic]?.mode;
      if (!mode || !FORWARDED_MODES.includes(mode)) return [];
      const ip = this.leases.activeIp({ vmId: e.record.id, nic });
      if (ip === undefined) return [];
      return [{
        protocol: p.protocol,
        listenAddress: p.hostAddress,
        listenPort: p.hostPort,
        targetAddress: ip,
        targetPort: p.vmPort,
        // Unset: the forward service's default path.
        ...(p.path ? { path: p.path } : {}),
        ...(p.proxyProtocol ? { proxyProtocol: true } : {}),
      }];
    });
  }

  private async syncForwards(e: Entry): Promise<void> {
    if (!this.forwarder) return;
    await this.forwarder.apply(e.record.id, this.forwardRules(e));
  }

  /** Drops forwards of leases that expired since they were reported. */
  async expireLeases(): Promise<void> {
    await this.leases.expire();
  }

  /** Waits for every queued operation; used at shutdown. */
  async drain(): Promise<void> {
    await Promise.all([...this.vms.values()].map((e) => e.lock));
  }
}

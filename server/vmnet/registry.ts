// NetworkRegistry: the domain object behind NetworkService. It keeps network
// records under <state_dir>/networks/<id>.json, allocates subnets and bridge
// names, signs serializations, and tracks holders. Realizing a network on the
// host (bridge, TAPs, dnsmasq, nftables) is the backend's job (NetworkBackend).
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { checkId, displayTextProblem } from "../check.js";
import type { Config } from "../config/types.js";
import { precondition, Problems, VmmError } from "../errors.js";
import type { HostPrefix } from "../net/host-prefixes.js";
import type { NetworkAttachment } from "../net/types.js";
import { pageOf, readPage } from "../page.js";
import { fsyncDir, mkdirDurable, readJson, sweepTrash, writeFileAtomic, writeJsonAtomic } from "../store/atomic.js";
import type { NetworkBackend, NetworkRecord, NetworkSpec, RawNetworkConfig, VmAttachments } from "./types.js";
import { log } from "../log.js";
import { gatewayOf, validateNetwork } from "./validate.js";

/** Whether a network is up on the host (GetNetwork reports it). */
export interface NetworkStatus {
  state: "starting" | "ready" | "failed";
  /** Why it is not ready; "" when it is. */
  error: string;
  /** ISO time of the last change. */
  since: string;
}

const SERIAL_PREFIX = "vmmnet1.";

/**
 * The networks of this daemon. It knows nothing of VMs: which VMs use a
 * network is the VM manager's to say, and callers pass it where it matters
 * (delete), so neither domain object holds the other.
 */
export class NetworkRegistry {
  private readonly dir: string;
  private readonly nets = new Map<string, NetworkRecord>();
  private readonly secret: Buffer;
  private readonly statuses = new Map<string, NetworkStatus>();
  /** Tail of the create/delete chain. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly cfg: Config,
    private readonly backend: NetworkBackend | undefined,
    /** Address ranges the host uses; a new network must overlap none. */
    private readonly hostPrefixes: () => Promise<HostPrefix[]> = async () => [],
  ) {
    this.dir = join(cfg.stateDir, "networks");
    mkdirDurable(this.dir);
    sweepTrash(this.dir);
    const secretPath = join(cfg.stateDir, "network-secret");
    if (!existsSync(secretPath)) writeFileAtomic(secretPath, randomBytes(32).toString("hex"));
    this.secret = Buffer.from(readFileSync(secretPath, "utf8").trim(), "hex");
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith(".json") || f.startsWith(".")) continue;
      const rec = readJson<NetworkRecord>(join(this.dir, f));
      this.nets.set(rec.id, rec);
    }
  }

  /** Re-realizes every network on the host (after a daemon restart). */
  /**
   * Re-realizes every network on the host (after a daemon restart). One
   * network that fails does not stop the others or the daemon: it is
   * logged and reported as failed (status()).
   */
  async init(): Promise<void> {
    for (const rec of this.nets.values()) {
      this.setStatus(rec.id, "starting", "");
      try {
        await this.backend?.realize(rec);
        this.setStatus(rec.id, "ready", "");
      } catch (e) {
        const why = (e as Error).message;
        this.setStatus(rec.id, "failed", why);
        log("error", "network failed to come up", { network: rec.id, bridge: rec.bridge, error: why });
      }
    }
  }

  private setStatus(id: string, state: NetworkStatus["state"], error: string): void {
    this.statuses.set(id, { state, error, since: new Date().toISOString() });
  }

  /** Whether network `id` is up (ready unless its start-up failed). */
  status(id: string): NetworkStatus {
    return this.statuses.get(id) ?? { state: "ready", error: "", since: this.nets.get(id)?.createdAt ?? "" };
  }

  /** Lease files of the networks that are up, by bridge (the daemon reconciles leases from them at start). */
  leaseFiles(): { bridge: string; file: string }[] {
    const out: { bridge: string; file: string }[] = [];
    for (const rec of this.nets.values()) {
      const file = this.backend?.leaseFile?.(rec);
      if (file !== undefined && this.status(rec.id).state === "ready" && rec.spec.dhcpEnabled) out.push({ bridge: rec.bridge, file });
    }
    return out;
  }

  /** IPv4 subnet of network `id`; undefined for an unknown network. */
  subnetOf(id: string): string | undefined {
    return this.nets.get(id)?.spec.ipv4Subnet;
  }

  /** Subnet of the network whose bridge is `bridge`. */
  subnetOfBridge(bridge: string): string | undefined {
    for (const rec of this.nets.values()) if (rec.bridge === bridge) return rec.spec.ipv4Subnet;
    return undefined;
  }

  /** Subnet, bridge and gateway of network `id`, for the VMs on it; undefined for an unknown network. */
  info(id: string): { subnet: string; bridge: string; gateway: string } | undefined {
    const rec = this.nets.get(id);
    return rec && { subnet: rec.spec.ipv4Subnet, bridge: rec.bridge, gateway: rec.gateway };
  }

  /** How a NIC with `mac` joins network `id`; undefined for an unknown network. */
  attachment(id: string, mac: string): NetworkAttachment | undefined {
    const rec = this.nets.get(id);
    if (!rec) return undefined;
    if (this.backend?.attach) return { fd: this.backend.attach(rec, mac) };
    return { bridge: rec.bridge };
  }

  /** The network `id`; throws invalid (naming `field`) or not_found. */
  get(id: string, field = "id"): NetworkRecord {
    const p = new Problems();
    checkId(p, field, id);
    p.throwIfAny();
    const rec = this.nets.get(id);
    if (!rec) throw new VmmError("not_found", `${field}: network "${id}" not found`);
    return rec;
  }

  /** One page of networks, oldest first. */
  list(pageSize: number, pageToken: string): { networks: NetworkRecord[]; next: string } {
    const p = new Problems();
    const w = readPage(p, { pageSize, pageToken }, "ListNetworks");
    p.throwIfAny();
    const all = [...this.nets.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    const page = pageOf(all, w);
    return { networks: page.items, next: page.nextPageToken };
  }

  /** Runs `fn` after every earlier create/delete: validation sees the networks that exist. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Validates, records and realizes a new network; nothing is left behind when a step fails. */
  create(name: string, c: RawNetworkConfig): Promise<NetworkRecord> {
    return this.exclusive(async () => {
      const host = await this.hostPrefixes();
      const spec = validateNetwork(name, c, { cfg: this.cfg, existing: [...this.nets.values()], host });
      return this.createValidated(name, spec);
    });
  }

  private async createValidated(name: string, spec: NetworkSpec): Promise<NetworkRecord> {
    const id = `net-${randomUUID().slice(0, 8)}`;
    const rec: NetworkRecord = {
      version: 1,
      id,
      name: name === "" ? id : name,
      createdAt: new Date().toISOString(),
      spec,
      bridge: `${this.cfg.vmnet.bridgePrefix}-${id.slice(4)}`,
      gateway: gatewayOf(spec.ipv4Subnet),
      holders: [],
    };
    // Record first, then the host side: a crash in between leaves a record
    // that the next start realizes (init), never host state without a record.
    writeJsonAtomic(join(this.dir, `${id}.json`), rec);
    this.nets.set(id, rec);
    try {
      await this.backend?.realize(rec);
    } catch (e) {
      // Leave nothing half-built behind.
      await this.backend?.destroy(rec).catch(() => undefined);
      rmSync(join(this.dir, `${id}.json`), { force: true });
      fsyncDir(this.dir);
      this.nets.delete(id);
      throw e;
    }
    return rec;
  }

  /**
   * Destroys network `id`. `vms` says which VMs have a NIC on it (the VM
   * manager), asked inside the create/delete chain: without `force` a
   * network in use is refused.
   */
  delete(id: string, force: boolean, vms: VmAttachments): Promise<void> {
    const rec = this.get(id);
    return this.exclusive(() => this.deleteRecord(rec, force, vms));
  }

  private async deleteRecord(rec: NetworkRecord, force: boolean, attachments: VmAttachments): Promise<void> {
    const id = rec.id;
    if (!this.nets.has(id)) throw new VmmError("not_found", `id: network "${id}" not found`);
    const vms = attachments.attachedTo(id);
    if (!force && vms.length > 0) throw precondition(`network "${id}" has attached VMs (${vms.join(", ")}); remove them first or set force`);
    if (!force && rec.holders.length > 0) throw precondition(`network "${id}" has ${rec.holders.length} holder(s); release them first or set force`);
    await this.backend?.destroy(rec);
    rmSync(join(this.dir, `${id}.json`));
    fsyncDir(this.dir);
    this.nets.delete(id);
    this.statuses.delete(id);
  }

  /** The signed handle another process presents to AcquireNetwork. */
  serialize(rec: NetworkRecord): string {
    const payload = Buffer.from(JSON.stringify({ v: 1, id: rec.id, created: rec.createdAt })).toString("base64url");
    const mac = createHmac("sha256", this.secret).update(payload).digest("base64url");
    return `${SERIAL_PREFIX}${payload}.${mac}`;
  }

  /** Verifies a serialization; throws "invalid" if malformed or tampered with. */
  resolve(serialization: string): NetworkRecord {
    const bad = (why: string) => new VmmError("invalid", `serialization: ${why}`, { problems: [{ field: "serialization", message: why }] });
    if (serialization === "") throw bad("is required");
    if (serialization.length > 1024 || !serialization.startsWith(SERIAL_PREFIX)) throw bad("is not a network serialization of this daemon (version vmmnet1)");
    // One canonical encoding: exactly two unpadded base64url parts that
    // re-encode to themselves. Node's decoder forgives padding, stray
    // characters and the unused low bits of the last character, so without
    // this check one handle would have many spellings.
    const parts = serialization.slice(SERIAL_PREFIX.length).split(".");
    const canonical = (x: string) => /^[A-Za-z0-9_-]+$/.test(x) && Buffer.from(x, "base64url").toString("base64url") === x;
    if (parts.length !== 2 || !parts.every(canonical)) throw bad("is not in canonical form (vmmnet1.<base64url>.<base64url>, unpadded)");
    const [payload, mac] = parts as [string, string];
    const want = createHmac("sha256", this.secret).update(payload).digest();
    const got = Buffer.from(mac, "base64url");
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw bad("signature does not verify (tampered with, or issued by another daemon)");
    let data: { id: string; created: string };
    try {
      data = JSON.parse(Buffer.from(payload, "base64url").toString()) as { id: string; created: string };
    } catch {
      throw bad("is malformed");
    }
    const rec = this.nets.get(data.id);
    if (!rec || rec.createdAt !== data.created) throw new VmmError("not_found", `serialization: network "${data.id}" no longer exists`);
    return rec;
  }

  /** Registers a holder of the network named by `serialization`. */
  acquire(serialization: string, description: string): { rec: NetworkRecord; holderId: string } {
    const p = new Problems();
    const bad = displayTextProblem(description);
    if ([...description].length > 256) p.add("holder_description", `is ${[...description].length} characters; at most 256`);
    else if (bad !== undefined) p.add("holder_description", bad);
    p.throwIfAny();
    const rec = this.resolve(serialization);
    const max = this.cfg.vmnet.maxHoldersPerNetwork;
    if (rec.holders.length >= max)
      throw new VmmError("exhausted", `serialization: network "${rec.id}" already has ${rec.holders.length} holders (vmnet.max_holders_per_network = ${max}); release one first`);
    const holderId = randomUUID();
    const next = { ...rec, holders: [...rec.holders, { id: holderId, description, since: new Date().toISOString() }] };
    writeJsonAtomic(join(this.dir, `${rec.id}.json`), next);
    this.nets.set(rec.id, next);
    return { rec: next, holderId };
  }

  /** Removes holder `holderId` of network `networkId`. */
  release(networkId: string, holderId: string): void {
    const rec = this.get(networkId, "network_id");
    if (!rec.holders.some((h) => h.id === holderId)) throw new VmmError("not_found", `holder_id: holder "${holderId.slice(0, 64)}" of network "${networkId}" not found`);
    const next = { ...rec, holders: rec.holders.filter((h) => h.id !== holderId) };
    writeJsonAtomic(join(this.dir, `${rec.id}.json`), next);
    this.nets.set(rec.id, next);
  }
}

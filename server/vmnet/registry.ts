// NetworkRegistry: the domain object behind NetworkService. It keeps network
// records under <state_dir>/networks/<id>.json, allocates subnets and bridge
// names, signs serializations, and tracks holders. Realizing a network on the
// host (bridge, TAPs, dnsmasq, nftables) is the backend's job (NetworkBackend).
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isIPv4 } from "node:net";
import type { Config } from "../config/types.js";
import { precondition, Problems, VmmError } from "../errors.js";
import { cidrContains, cidrToString, intToIpv4, parseIpv4Cidr } from "../net/addr.js";
import { normalizeMac } from "../net/mac.js";
import { fsyncDir, mkdirDurable, readJson, sweepTrash, writeFileAtomic, writeJsonAtomic } from "../store/atomic.js";
import { checkName, ID_RE } from "../vm/validate.js";
import { log } from "../log.js";

export type NetworkMode = "host" | "shared";

export interface NetworkPortForwardSpec {
  protocol: "tcp" | "udp";
  listenAddress: string;
  listenPort: number;
  internalAddress: string;
  internalPort: number;
}

export interface NetworkSpec {
  mode: NetworkMode;
  ipv4Subnet: string;
  ipv6Prefix: string;
  mtu: number;
  dhcpEnabled: boolean;
  dhcpReservations: { mac: string; ipv4: string }[];
  nat44Enabled: boolean;
  nat66Enabled: boolean;
  dnsProxyEnabled: boolean;
  routerAdvertisementEnabled: boolean;
  portForwards: NetworkPortForwardSpec[];
  externalInterface: string;
}

export interface NetworkRecord {
  version: 1;
  id: string;
  name: string;
  createdAt: string;
  spec: NetworkSpec;
  bridge: string;
  gateway: string;
  holders: { id: string; description: string; since: string }[];
}

/** Raw NetworkConfig from the API; enums named, unknown as "?N"; optionals undefined when unset. */
export interface RawNetworkConfig {
  mode: string | undefined;
  ipv4Subnet: string;
  ipv6Prefix: string;
  mtu: number;
  dhcpEnabled?: boolean;
  dhcpReservations: { mac: string; ipv4: string }[];
  nat44Enabled?: boolean;
  nat66Enabled?: boolean;
  dnsProxyEnabled?: boolean;
  routerAdvertisementEnabled?: boolean;
  portForwards: { protocol: string | undefined; listenAddress: string; listenPort: number; internalAddress: string; internalPort: number }[];
  externalInterface: string;
}

/**
 * How a VM's NIC joins a network: through the network's host bridge (the
 * supervisor opens a TAP on it), or through a datagram socket fd the backend
 * relays frames on (macOS vmnet; the caller owns the fd).
 */
export type NetworkAttachment = { bridge: string } | { fd: number };

/** Whether a network is up on the host (GetNetwork reports it). */
export interface NetworkStatus {
  state: "starting" | "ready" | "failed";
  /** Why it is not ready; "" when it is. */
  error: string;
  /** ISO time of the last change. */
  since: string;
}

/** Host side of a network (Linux: bridge + dnsmasq + nftables). */
export interface NetworkBackend {
  realize(rec: NetworkRecord): Promise<void>;
  destroy(rec: NetworkRecord): Promise<void>;
  /** The network's dnsmasq lease file, when the backend runs one. */
  leaseFile?(rec: NetworkRecord): string;
  /** Backends without a host bridge hand out one datagram fd per NIC. */
  attach?(rec: NetworkRecord, mac: string): number;
}

const SERIAL_PREFIX = "vmmnet1.";

export class NetworkRegistry {
  private readonly dir: string;
  private readonly nets = new Map<string, NetworkRecord>();
  private readonly secret: Buffer;
  private readonly statuses = new Map<string, NetworkStatus>();

  constructor(
    private readonly cfg: Config,
    private readonly backend: NetworkBackend | undefined,
    /** VM ids attached to a network, from the VM manager. */
    private readonly attachedVms: (networkId: string) => string[] = () => [],
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

  get(id: string, field = "id"): NetworkRecord {
    const p = new Problems();
    if (id === "") p.add(field, "is required");
    else if (!ID_RE.test(id)) p.add(field, "must be 1-63 of a-z 0-9 and '-'");
    p.throwIfAny();
    const rec = this.nets.get(id);
    if (!rec) throw new VmmError("not_found", `${field}: network "${id}" not found`);
    return rec;
  }

  list(pageSize: number, pageToken: string): { networks: NetworkRecord[]; next: string } {
    const p = new Problems();
    if (pageSize > 1000) p.add("page_size", `is ${pageSize}; at most 1000`);
    let offset = 0;
    if (pageToken !== "") {
      const m = /^o(\d{1,9})$/.exec(Buffer.from(pageToken, "base64url").toString());
      if (!m) p.add("page_token", "is not a token returned by ListNetworks");
      else offset = Number(m[1]);
    }
    p.throwIfAny();
    const all = [...this.nets.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    const size = pageSize === 0 ? 100 : pageSize;
    return {
      networks: all.slice(offset, offset + size),
      next: offset + size < all.length ? Buffer.from(`o${offset + size}`).toString("base64url") : "",
    };
  }

  attached(id: string): string[] {
    return this.attachedVms(id);
  }

  private allocateSubnet(): string {
    const pool = parseIpv4Cidr(this.cfg.vmnet.subnetPool)!;
    const used = new Set([...this.nets.values()].map((n) => n.spec.ipv4Subnet));
    const count = 2 ** (24 - pool.prefix);
    for (let i = 0; i < count; i++) {
      const s = cidrToString({ network: pool.network + i * 256, prefix: 24 });
      if (!used.has(s)) return s;
    }
    throw new VmmError("exhausted", `no free /24 left in vmnet.subnet_pool ${this.cfg.vmnet.subnetPool}`);
  }

  private validate(name: string, c: RawNetworkConfig): NetworkSpec {
    const p = new Problems();
    if (name !== "") checkName(p, "name", name);
    let mode: NetworkMode = "shared";
    if (c.mode === "host" || c.mode === "shared") mode = c.mode;
    else p.add("config.mode", c.mode === undefined ? "is required (NETWORK_MODE_HOST or NETWORK_MODE_SHARED)" : `unknown mode ${c.mode.slice(1)}`);
    let subnet = c.ipv4Subnet;
    if (subnet !== "") {
      const cidr = parseIpv4Cidr(subnet);
      if (!cidr) p.add("config.ipv4_subnet", `"${subnet.slice(0, 64)}" is not an IPv4 CIDR with zero host bits, e.g. "192.168.64.0/24"`);
      else if (cidr.prefix < 16 || cidr.prefix > 29) p.add("config.ipv4_subnet", "prefix must be between /16 and /29");
      else if ([...this.nets.values()].some((n) => n.spec.ipv4Subnet === subnet)) p.add("config.ipv4_subnet", `${subnet} is used by another network`);
    }
    if (c.ipv6Prefix !== "" && !/^[0-9a-fA-F:]+\/64$/.test(c.ipv6Prefix)) p.add("config.ipv6_prefix", "must be an IPv6 /64 prefix such as fd00:1::/64");
    if (c.mtu !== 0 && (c.mtu < 576 || c.mtu > 9000)) p.add("config.mtu", `is ${c.mtu}; must be between 576 and 9000`);
    const cidr = subnet !== "" ? parseIpv4Cidr(subnet) : null;
    const seenMac = new Set<string>();
    c.dhcpReservations.forEach((r, i) => {
      const mac = normalizeMac(r.mac);
      if (mac === null) p.add(`config.dhcp_reservations[${i}].mac`, `"${r.mac.slice(0, 64)}" is not a MAC address`);
      else if (seenMac.has(mac)) p.add(`config.dhcp_reservations[${i}].mac`, `${mac} is reserved twice`);
      else seenMac.add(mac);
      if (!isIPv4(r.ipv4)) p.add(`config.dhcp_reservations[${i}].ipv4`, `"${r.ipv4.slice(0, 64)}" is not an IPv4 address`);
      else if (cidr && !cidrContains(cidr, r.ipv4)) p.add(`config.dhcp_reservations[${i}].ipv4`, `${r.ipv4} is outside ${subnet}`);
    });
    if (mode === "host" && c.nat44Enabled === true) p.add("config.nat44_enabled", "NAT is only available in shared mode");
    if (mode === "host" && c.nat66Enabled === true) p.add("config.nat66_enabled", "NAT is only available in shared mode");
    if (c.externalInterface !== "" && !/^[A-Za-z0-9_.-]{1,15}$/.test(c.externalInterface)) p.add("config.external_interface", "is not a valid interface name");
    if (mode === "host" && c.externalInterface !== "") p.add("config.external_interface", "only applies to shared mode");
    const forwards: NetworkPortForwardSpec[] = [];
    c.portForwards.forEach((f, i) => {
      const at = `config.port_forwards[${i}]`;
      if (f.protocol !== "tcp" && f.protocol !== "udp") p.add(`${at}.protocol`, "must be PROTOCOL_TCP or PROTOCOL_UDP");
      const la = f.listenAddress === "" ? "127.0.0.1" : f.listenAddress;
      if (!this.cfg.forward.allowedListenAddresses.includes(la)) p.add(`${at}.listen_address`, `${la.slice(0, 64)} is not in forward.allowed_listen_addresses`);
      if (f.listenPort < this.cfg.forward.portMin || f.listenPort > this.cfg.forward.portMax) p.add(`${at}.listen_port`, `is ${f.listenPort}; the configured range is ${this.cfg.forward.portMin}-${this.cfg.forward.portMax}`);
      if (!isIPv4(f.internalAddress)) p.add(`${at}.internal_address`, `"${f.internalAddress.slice(0, 64)}" is not an IPv4 address`);
      else if (cidr && !cidrContains(cidr, f.internalAddress)) p.add(`${at}.internal_address`, `${f.internalAddress} is outside ${subnet}`);
      if (f.internalPort < 1 || f.internalPort > 65535) p.add(`${at}.internal_port`, `is ${f.internalPort}; must be between 1 and 65535`);
      forwards.push({ protocol: f.protocol as "tcp" | "udp", listenAddress: la, listenPort: f.listenPort, internalAddress: f.internalAddress, internalPort: f.internalPort });
    });
    p.throwIfAny();
    if (subnet === "") subnet = this.allocateSubnet();
    const shared = mode === "shared";
    return {
      mode,
      ipv4Subnet: subnet,
      ipv6Prefix: c.ipv6Prefix,
      mtu: c.mtu === 0 ? 1500 : c.mtu,
      dhcpEnabled: c.dhcpEnabled ?? true,
      dhcpReservations: c.dhcpReservations.map((r) => ({ mac: normalizeMac(r.mac)!, ipv4: r.ipv4 })),
      nat44Enabled: c.nat44Enabled ?? shared,
      nat66Enabled: c.nat66Enabled ?? (shared && c.ipv6Prefix !== ""),
      dnsProxyEnabled: c.dnsProxyEnabled ?? false,
      routerAdvertisementEnabled: c.routerAdvertisementEnabled ?? c.ipv6Prefix !== "",
      portForwards: forwards,
      externalInterface: c.externalInterface,
    };
  }

  async create(name: string, c: RawNetworkConfig): Promise<NetworkRecord> {
    const spec = this.validate(name, c);
    const id = `net-${randomUUID().slice(0, 8)}`;
    const cidr = parseIpv4Cidr(spec.ipv4Subnet)!;
    const rec: NetworkRecord = {
      version: 1,
      id,
      name: name === "" ? id : name,
      createdAt: new Date().toISOString(),
      spec,
      bridge: `${this.cfg.vmnet.bridgePrefix}-${id.slice(4)}`,
      gateway: intToIpv4(cidr.network + 1),
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

  async delete(id: string, force: boolean): Promise<void> {
    const rec = this.get(id);
    const vms = this.attachedVms(id);
    if (!force && vms.length > 0) throw precondition(`network "${id}" has attached VMs (${vms.join(", ")}); remove them first or set force`);
    if (!force && rec.holders.length > 0) throw precondition(`network "${id}" has ${rec.holders.length} holder(s); release them first or set force`);
    await this.backend?.destroy(rec);
    rmSync(join(this.dir, `${id}.json`));
    fsyncDir(this.dir);
    this.nets.delete(id);
    this.statuses.delete(id);
  }

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
    const [payload, mac] = serialization.slice(SERIAL_PREFIX.length).split(".");
    if (!payload || !mac) throw bad("is malformed");
    const want = createHmac("sha256", this.secret).update(payload).digest();
    const got = Buffer.from(mac, "base64url");
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw bad("signature does not verify (tampered with, or issued by another daemon)");
    const data = JSON.parse(Buffer.from(payload, "base64url").toString()) as { id: string; created: string };
    const rec = this.nets.get(data.id);
    if (!rec || rec.createdAt !== data.created) throw new VmmError("not_found", `serialization: network "${data.id}" no longer exists`);
    return rec;
  }

  acquire(serialization: string, description: string): { rec: NetworkRecord; holderId: string } {
    if (description.length > 256 || /[\u0000-\u001f\u007f]/.test(description))
      throw new VmmError("invalid", "holder_description: must be at most 256 characters without control characters", { problems: [{ field: "holder_description", message: "too long or has control characters" }] });
    const rec = this.resolve(serialization);
    const holderId = randomUUID();
    const next = { ...rec, holders: [...rec.holders, { id: holderId, description, since: new Date().toISOString() }] };
    writeJsonAtomic(join(this.dir, `${rec.id}.json`), next);
    this.nets.set(rec.id, next);
    return { rec: next, holderId };
  }

  release(networkId: string, holderId: string): void {
    const rec = this.get(networkId, "network_id");
    if (!rec.holders.some((h) => h.id === holderId)) throw new VmmError("not_found", `holder_id: holder "${holderId.slice(0, 64)}" of network "${networkId}" not found`);
    const next = { ...rec, holders: rec.holders.filter((h) => h.id !== holderId) };
    writeJsonAtomic(join(this.dir, `${rec.id}.json`), next);
    this.nets.set(rec.id, next);
  }
}

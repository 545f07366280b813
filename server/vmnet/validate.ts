// The one validator of CreateNetwork input. Every problem is reported at
// once with its field path ("config.dhcp_reservations[1].ipv4").
//
// Why strict: a network's subnet becomes an address on a host bridge, a
// connected route, a dnsmasq range and nftables masquerade rules; its
// reservations become dnsmasq `dhcp-host` lines; its port forwards make the
// forwarder relay from a host port to an address. So a subnet must be
// private space nobody else on the host uses (a public or overlapping one
// would shadow a route of the host, another network or a bridge subnet), a
// reservation or forward must name a guest address of this network (never
// its network, gateway or broadcast address, never an address elsewhere:
// the forwarder would become a relay from the host to anywhere), and the
// IPv6 prefix is parsed here rather than first by `ip`.
import { isIPv4 } from "node:net";
import type { Config } from "../config/types.js";
import { Problems, VmmError } from "../errors.js";
import { cidrLast, cidrsOverlap, cidrToString, cidrWithin, intToIpv4, ipv4ToInt, isPrivateIpv4Cidr, parseIpv4Cidr, PRIVATE_IPV4, type Ipv4Cidr } from "../net/addr.js";
import type { HostPrefix } from "../net/host-prefixes.js";
import { ipv6CidrToString, ipv6Overlap, parseIpv6Cidr, ULA, type Ipv6Cidr } from "../net/ipv6.js";
import { checkName, isMulticastMac, nameKey, normalizeMac } from "../check.js";
import { checkPathOptions } from "../forward/rules.js";
import type { NetworkMode, NetworkPortForwardSpec, NetworkRecord, NetworkSpec, RawNetworkConfig } from "./types.js";

/** Shortest and longest prefix of a network's IPv4 subnet: /29 leaves 5 guest addresses. */
export const MIN_PREFIX = 16;
export const MAX_PREFIX = 29;
export const MAX_RESERVATIONS = 1024;
export const MAX_PORT_FORWARDS = 1024;

/** What a new network must not collide with. */
export interface NetworkContext {
  cfg: Config;
  /** Networks that exist now. */
  existing: readonly NetworkRecord[];
  /** Address ranges the host uses (server/net/host-prefixes.ts hostPrefixes). */
  host: readonly HostPrefix[];
}

/** A range the subnet may not overlap, and how to name it in a message. */
interface Taken {
  cidr: Ipv4Cidr;
  what: string;
}

function takenV4(ctx: NetworkContext): Taken[] {
  const out: Taken[] = [];
  for (const n of ctx.existing) out.push({ cidr: parseIpv4Cidr(n.spec.ipv4Subnet)!, what: `${n.spec.ipv4Subnet} of network ${n.id}` });
  for (const [br, s] of Object.entries(ctx.cfg.networking.bridgeSubnets)) {
    const c = parseIpv4Cidr(s);
    if (c) out.push({ cidr: c, what: `networking.bridge_subnets.${br} (${s})` });
  }
  for (const h of ctx.host) if (h.family === 4) out.push({ cidr: h.cidr, what: `the host's ${h.what}` });
  return out;
}

/** The first /24 of vmnet.subnet_pool that overlaps nothing taken; undefined when none is left. */
export function allocateSubnet(ctx: NetworkContext): string | undefined {
  const pool = parseIpv4Cidr(ctx.cfg.vmnet.subnetPool)!;
  const taken = takenV4(ctx);
  for (let net = pool.network; net + 255 <= cidrLast(pool); net += 256) {
    const c = { network: net, prefix: 24 };
    if (!taken.some((t) => cidrsOverlap(t.cidr, c))) return cidrToString(c);
  }
  return undefined;
}

function checkSubnet(p: Problems, subnet: string, ctx: NetworkContext): Ipv4Cidr | undefined {
  const f = "config.ipv4_subnet";
  const c = parseIpv4Cidr(subnet);
  if (!c) {
    p.add(f, `"${subnet.slice(0, 64)}" is not an IPv4 CIDR with zero host bits, e.g. "192.168.64.0/24"`);
    return undefined;
  }
  if (c.prefix < MIN_PREFIX || c.prefix > MAX_PREFIX) {
    p.add(f, `prefix /${c.prefix}: must be between /${MIN_PREFIX} and /${MAX_PREFIX} (a DHCP range needs guest addresses besides the network, gateway and broadcast addresses)`);
    return undefined;
  }
  if (!isPrivateIpv4Cidr(c)) {
    p.add(f, `${subnet} is not private address space (${PRIVATE_IPV4.join(", ")})`);
    return undefined;
  }
  const pool = parseIpv4Cidr(ctx.cfg.vmnet.subnetPool)!;
  if (cidrsOverlap(c, pool) && !cidrWithin(c, pool)) p.add(f, `${subnet} overlaps vmnet.subnet_pool ${ctx.cfg.vmnet.subnetPool} without lying inside it`);
  const hits = takenV4(ctx).filter((t) => cidrsOverlap(t.cidr, c));
  if (hits.length > 0) p.add(f, `${subnet} overlaps ${hits.slice(0, 3).map((h) => h.what).join(", ")}${hits.length > 3 ? ` and ${hits.length - 3} more` : ""}`);
  return hits.length > 0 ? undefined : c;
}

function checkIpv6(p: Problems, prefix: string, ctx: NetworkContext): string {
  const f = "config.ipv6_prefix";
  const c = parseIpv6Cidr(prefix);
  if (!c) {
    p.add(f, `"${prefix.slice(0, 64)}" is not an IPv6 prefix with zero host bits, e.g. "fd00:1::/64"`);
    return "";
  }
  if (c.prefix !== 64) {
    p.add(f, `prefix /${c.prefix}: must be /64 (router advertisements and SLAAC need one)`);
    return "";
  }
  if (!ipv6Overlap(c, ULA)) {
    p.add(f, `${ipv6CidrToString(c)} is not unique local address space (fc00::/7)`);
    return "";
  }
  const taken: { cidr: Ipv6Cidr; what: string }[] = [];
  for (const n of ctx.existing) {
    const o = n.spec.ipv6Prefix === "" ? null : parseIpv6Cidr(n.spec.ipv6Prefix);
    if (o) taken.push({ cidr: o, what: `${n.spec.ipv6Prefix} of network ${n.id}` });
  }
  for (const h of ctx.host) if (h.family === 6) taken.push({ cidr: h.cidr, what: `the host's ${h.what}` });
  const hits = taken.filter((t) => ipv6Overlap(t.cidr, c));
  if (hits.length > 0) p.add(f, `${ipv6CidrToString(c)} overlaps ${hits.slice(0, 3).map((h) => h.what).join(", ")}`);
  return ipv6CidrToString(c);
}

/**
 * Problem with `ip` as a guest address of `subnet`, or undefined. The
 * network address, the gateway (the host's own address on the bridge) and
 * the broadcast address are never a guest's.
 */
export function guestAddressProblem(ip: string, subnet: Ipv4Cidr): string | undefined {
  if (!isIPv4(ip)) return `"${ip.slice(0, 64)}" is not an IPv4 address`;
  const n = ipv4ToInt(ip)!;
  if (n < subnet.network || n > cidrLast(subnet)) return `${ip} is outside ${cidrToString(subnet)}`;
  if (n === subnet.network) return `${ip} is the network address of ${cidrToString(subnet)}`;
  if (n === subnet.network + 1) return `${ip} is the gateway of ${cidrToString(subnet)} (the host)`;
  if (n === cidrLast(subnet)) return `${ip} is the broadcast address of ${cidrToString(subnet)}`;
  return undefined;
}

function checkReservations(p: Problems, c: RawNetworkConfig, subnet: Ipv4Cidr | undefined): { mac: string; ipv4: string }[] {
  const out: { mac: string; ipv4: string }[] = [];
  if (c.dhcpReservations.length > MAX_RESERVATIONS) {
    p.add("config.dhcp_reservations", `has ${c.dhcpReservations.length} entries; at most ${MAX_RESERVATIONS}`);
    return out;
  }
  const macs = new Map<string, number>();
  const ips = new Map<string, number>();
  c.dhcpReservations.forEach((r, i) => {
    const at = `config.dhcp_reservations[${i}]`;
    const mac = normalizeMac(r.mac);
    if (mac === null) p.add(`${at}.mac`, `"${r.mac.slice(0, 64)}" is not a MAC address`);
    else if (isMulticastMac(mac)) p.add(`${at}.mac`, `${mac} is a multicast/broadcast MAC; a NIC has a unicast one`);
    else if (mac === "00:00:00:00:00:00") p.add(`${at}.mac`, "00:00:00:00:00:00 is no NIC's MAC");
    else if (macs.has(mac)) p.add(`${at}.mac`, `${mac} is already reserved by config.dhcp_reservations[${macs.get(mac)}]`);
    else macs.set(mac, i);
    const why = !isIPv4(r.ipv4) ? `"${r.ipv4.slice(0, 64)}" is not an IPv4 address` : subnet ? guestAddressProblem(r.ipv4, subnet) : undefined;
    if (why) p.add(`${at}.ipv4`, why);
    else if (ips.has(r.ipv4)) p.add(`${at}.ipv4`, `${r.ipv4} is already reserved by config.dhcp_reservations[${ips.get(r.ipv4)}]`);
    else ips.set(r.ipv4, i);
    if (mac !== null) out.push({ mac, ipv4: r.ipv4 });
  });
  return out;
}

function checkForwards(p: Problems, c: RawNetworkConfig, subnet: Ipv4Cidr | undefined, cfg: Config): NetworkPortForwardSpec[] {
  const out: NetworkPortForwardSpec[] = [];
  if (c.portForwards.length > MAX_PORT_FORWARDS) {
    p.add("config.port_forwards", `has ${c.portForwards.length} entries; at most ${MAX_PORT_FORWARDS}`);
    return out;
  }
  const seen = new Map<string, number>();
  c.portForwards.forEach((f, i) => {
    const at = `config.port_forwards[${i}]`;
    if (f.protocol !== "tcp" && f.protocol !== "udp") p.add(`${at}.protocol`, "must be PROTOCOL_TCP or PROTOCOL_UDP");
    const la = f.listenAddress === "" ? "127.0.0.1" : f.listenAddress;
    if (!cfg.forward.allowedListenAddresses.includes(la)) p.add(`${at}.listen_address`, `${la.slice(0, 64)} is not in forward.allowed_listen_addresses`);
    if (!Number.isInteger(f.listenPort) || f.listenPort < cfg.forward.portMin || f.listenPort > cfg.forward.portMax)
      p.add(`${at}.listen_port`, `is ${f.listenPort}; the configured range is ${cfg.forward.portMin}-${cfg.forward.portMax}`);
    else {
      const key = `${f.protocol}/${la}/${f.listenPort}`;
      if (seen.has(key)) p.add(`${at}.listen_port`, `duplicates config.port_forwards[${seen.get(key)}] (${f.protocol} ${la}:${f.listenPort})`);
      else seen.set(key, i);
    }
    const why = !isIPv4(f.internalAddress) ? `"${f.internalAddress.slice(0, 64)}" is not an IPv4 address` : subnet ? guestAddressProblem(f.internalAddress, subnet) : undefined;
    if (why) p.add(`${at}.internal_address`, why);
    if (!Number.isInteger(f.internalPort) || f.internalPort < 1 || f.internalPort > 65535) p.add(`${at}.internal_port`, `is ${f.internalPort}; must be between 1 and 65535`);
    checkPathOptions(p, at, { protocol: f.protocol, listenAddress: la, addressField: "listen_address", path: f.path, proxyProtocol: f.proxyProtocol }, cfg.forward.defaultPath);
    const spec: NetworkPortForwardSpec = { protocol: f.protocol as "tcp" | "udp", listenAddress: la, listenPort: f.listenPort, internalAddress: f.internalAddress, internalPort: f.internalPort };
    if (f.path === "userspace" || f.path === "nat") spec.path = f.path;
    if (f.proxyProtocol) spec.proxyProtocol = true;
    out.push(spec);
  });
  return out;
}

/**
 * Validates a CreateNetwork request against the policy and what exists;
 * allocates a /24 from vmnet.subnet_pool when no subnet is given. Returns
 * the spec, or throws "invalid" with every problem, "exists" for a taken
 * name, "exhausted" when the pool is used up.
 */
export function validateNetwork(name: string, c: RawNetworkConfig, ctx: NetworkContext): NetworkSpec {
  const p = new Problems();
  if (name !== "") checkName(p, "name", name);
  let mode: NetworkMode = "shared";
  if (c.mode === "host" || c.mode === "shared") mode = c.mode;
  else p.add("config.mode", c.mode === undefined ? "is required (NETWORK_MODE_HOST or NETWORK_MODE_SHARED)" : `unknown mode ${c.mode.slice(1)}`);
  let subnetText = c.ipv4Subnet;
  let subnet: Ipv4Cidr | undefined;
  if (subnetText !== "") subnet = checkSubnet(p, subnetText, ctx);
  else {
    subnetText = allocateSubnet(ctx) ?? "";
    if (subnetText !== "") subnet = parseIpv4Cidr(subnetText)!;
  }
  const ipv6Prefix = c.ipv6Prefix === "" ? "" : checkIpv6(p, c.ipv6Prefix, ctx);
  if (c.mtu !== 0 && (c.mtu < 576 || c.mtu > 9000)) p.add("config.mtu", `is ${c.mtu}; must be between 576 and 9000`);
  // Reservations and forwards are held to the subnet also when the pool
  // chose it: an address outside it is never a guest of this network.
  const reservations = checkReservations(p, c, subnet);
  const forwards = checkForwards(p, c, subnet, ctx.cfg);
  if (mode === "host" && c.nat44Enabled === true) p.add("config.nat44_enabled", "NAT is only available in shared mode");
  if (mode === "host" && c.nat66Enabled === true) p.add("config.nat66_enabled", "NAT is only available in shared mode");
  if (c.nat66Enabled === true && c.ipv6Prefix === "") p.add("config.nat66_enabled", "needs config.ipv6_prefix");
  if (c.externalInterface !== "" && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(c.externalInterface)) p.add("config.external_interface", "is not a valid interface name");
  if (mode === "host" && c.externalInterface !== "") p.add("config.external_interface", "only applies to shared mode");
  p.throwIfAny();
  if (name !== "") {
    const key = nameKey(name);
    const same = ctx.existing.find((n) => nameKey(n.name) === key);
    if (same) throw new VmmError("exists", `name: network "${name}" already exists (${same.id})`);
  }
  if (subnetText === "") throw new VmmError("exhausted", `config.ipv4_subnet: no free /24 left in vmnet.subnet_pool ${ctx.cfg.vmnet.subnetPool}; name a subnet`);
  const shared = mode === "shared";
  return {
    mode,
    ipv4Subnet: subnetText,
    ipv6Prefix,
    mtu: c.mtu === 0 ? 1500 : c.mtu,
    dhcpEnabled: c.dhcpEnabled ?? true,
    dhcpReservations: reservations,
    nat44Enabled: c.nat44Enabled ?? shared,
    nat66Enabled: c.nat66Enabled ?? (shared && ipv6Prefix !== ""),
    dnsProxyEnabled: c.dnsProxyEnabled ?? false,
    routerAdvertisementEnabled: c.routerAdvertisementEnabled ?? ipv6Prefix !== "",
    portForwards: forwards,
    externalInterface: c.externalInterface,
  };
}

/** The gateway (first host address) of a validated subnet. */
export function gatewayOf(subnet: string): string {
  return intToIpv4(parseIpv4Cidr(subnet)!.network + 1);
}

// The boundaries of issue "no request gets past the policy", table-driven
// against a real vmmd in the private namespace: each refused call gets the
// right Connect code, a message naming the field, and leaves every file of
// the state directory as it was. Complements bad-input.test.ts (malformed
// input, one rule set for VM input) with the policy: private,
// non-overlapping subnets, guest-only reservation and forward addresses,
// IPv6 prefixes parsed before `ip`, canonical network handles, the holder
// cap, custom netdevs held to an allow-list, lease reports that never name
// the subnet's network or broadcast address nor the host, names without
// invisible characters and unique, and the Bearer scheme of RFC 7235.
// (Stalled connections, the state dir lock and the hook's token have files
// of their own: connections, state-lock and hook-token.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "node:http";
import { Code, type Client } from "@connectrpc/connect";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { failure } from "../helpers/rpc.js";
import { snapshot } from "../helpers/snapshot.js";
import { Lan, sh } from "../helpers/lan.js";
import { requireNetns } from "../guest/netns.js";
import { LeaseAction, NetworkingMode, Protocol, VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode, NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CreateNetworkRequestSchema } from "../../gen/ts/vmm/v1/network_pb.js";

const ADMIN = "admin-token-policy-0123456789";
const LEASE = "lease-token-policy-0123456789";

let d: DaemonHandle;
let lan: Lan;
let nets: Client<typeof NetworkService>;
let vms: Client<typeof VmmService>;
let serialization = "";
let cappedSerialization = "";
let bridgedMac = "";

const TOML = [
  "[auth]",
  `tokens = ["${ADMIN}"]`,
  `lease_tokens = ["${LEASE}"]`,
  "[networking]",
  'bridge_subnets = { "br-pol" = "10.59.0.0/24" }',
  'allowed_modes = ["user", "bridge", "custom"]',
  'bridge = "br-pol"',
  "[forward]",
  "port_min = 2000",
  "[vmnet]",
  "max_holders_per_network = 2",
].join("\n");

/**
 * Address ranges of this file (10.57-10.63, fd00:61::/64 and fd00:63::/64):
 * test files run in parallel in one namespace, and a network overlapping
 * another file's bridge or network is refused (that is the policy).
 */
/** Logs dnsmasq of a network appends to on its own schedule. */
const FOREIGN_LOGS = /^state\/networks\/[^/]+\/dnsmasq\.log$|^vmm\.toml$/;

beforeAll(async () => {
  requireNetns();
  lan = new Lan();
  // What "the host already has": an address (and its connected route) and a route.
  lan.bridge("br-hostpol", "10.57.0.1/24");
  // The bridge of bridge-mode NICs; the host holds its first address.
  lan.bridge("br-pol", "10.59.0.1/24");
  sh(["ip", "route", "add", "10.58.0.0/16", "dev", "br-hostpol"]);
  d = await startDaemon({ toml: TOML });
  nets = client(NetworkService, transport(d, "connect", "tcp", { token: ADMIN }));
  vms = client(VmmService, transport(d, "connect", "tcp", { token: ADMIN }));
  await vms.createVm({ id: "web-1", config: { name: "web" } });
  await vms.createVm({ id: "db-1", config: { name: "café" } });
  bridgedMac = (await vms.createVm({ id: "br-1", config: { name: "bridged", nics: [{ mode: NetworkingMode.BRIDGE }] } })).vm!.nics[0]!.mac;
  const net = await nets.createNetwork({ name: "pol-net", config: { mode: NetworkMode.HOST, ipv4Subnet: "10.73.0.0/24", ipv6Prefix: "fd00:73::/64" } });
  serialization = net.network!.serialization;
  const capped = await nets.createNetwork({ name: "capped", config: { mode: NetworkMode.HOST, ipv4Subnet: "10.62.0.0/24" } });
  cappedSerialization = capped.network!.serialization;
  await nets.acquireNetwork({ serialization: cappedSerialization, holderDescription: "one" });
  await nets.acquireNetwork({ serialization: cappedSerialization, holderDescription: "two" });
});

afterAll(async () => {
  await d?.stop();
  d?.cleanup();
  await lan?.close();
});

type NetInit = MessageInitShape<typeof CreateNetworkRequestSchema>;
const createNet = (req: NetInit) => () => nets.createNetwork(req);
const subnet = (ipv4Subnet: string) => createNet({ config: { mode: NetworkMode.HOST, ipv4Subnet } });
const ipv6 = (ipv6Prefix: string) => createNet({ config: { mode: NetworkMode.HOST, ipv4Subnet: "10.63.0.0/24", ipv6Prefix } });
const reservations = (r: { mac: string; ipv4: string }[], ipv4Subnet = "10.63.0.0/24") => createNet({ config: { mode: NetworkMode.HOST, ipv4Subnet, dhcpReservations: r } });
const forward = (internalAddress: string, ipv4Subnet = "10.63.0.0/24") =>
  createNet({ config: { mode: NetworkMode.HOST, ipv4Subnet, portForwards: [{ protocol: Protocol.TCP, listenPort: 18080, internalAddress, internalPort: 80 }] } });
const acquire = (s: () => string) => () => nets.acquireNetwork({ serialization: s() });
const vmNamed = (name: string, id = "") => () => vms.createVm({ id, config: { name } });
const custom = (customNetdev: string) => () => vms.createVm({ config: { name: "custom", nics: [{ mode: NetworkingMode.CUSTOM, customNetdev }] } });
const NETDEV = "config.nics[0].custom_netdev";
/** A lease report with the hook's (lease) token. */
const lease = (ip: string) => () =>
  client(VmmService, transport(d, "connect", "tcp", { token: LEASE })).reportDhcpLease({ action: LeaseAction.ADD, mac: bridgedMac, ip });

/** The serialization with its signature's last character's unused low bits changed: decodes to the same bytes. */
function flipLowBit(s: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const last = s[s.length - 1]!;
  const flipped = alphabet[alphabet.indexOf(last) ^ 1]!;
  // 32 bytes are 43 characters; the last carries 4 bits and 2 unused ones.
  expect(Buffer.from(s.slice(s.lastIndexOf(".") + 1, -1) + flipped, "base64url")).toEqual(Buffer.from(s.slice(s.lastIndexOf(".") + 1), "base64url"));
  return s.slice(0, -1) + flipped;
}

interface Case {
  name: string;
  call: () => Promise<unknown>;
  code: Code;
  field: string;
  /** Text the message must contain besides the field. */
  mention?: string;
}

const CASES: Case[] = [
  // subnets: private, non-overlapping, servable by DHCP
  { name: "subnet containing another network's (10.73.0.0/16)", call: subnet("10.73.0.0/16"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "network net-" },
  { name: "subnet inside another network's (10.73.0.128/25)", call: subnet("10.73.0.128/25"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "overlaps 10.73.0.0/24" },
  { name: "subnet equal to another network's", call: subnet("10.73.0.0/24"), code: Code.InvalidArgument, field: "config.ipv4_subnet" },
  { name: "subnet containing the whole pool (192.168.0.0/16)", call: subnet("192.168.0.0/16"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "vmnet.subnet_pool" },
  { name: "loopback subnet", call: subnet("127.1.0.0/16"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "not private" },
  { name: "'this network' subnet", call: subnet("0.0.0.0/16"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "not private" },
  { name: "multicast subnet", call: subnet("224.0.0.0/16"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "not private" },
  { name: "link-local subnet", call: subnet("169.254.0.0/16"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "not private" },
  { name: "reserved subnet", call: subnet("240.0.0.0/16"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "not private" },
  { name: "public subnet", call: subnet("8.8.8.0/24"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "not private" },
  { name: "just outside RFC 6598", call: subnet("100.128.0.0/16"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "not private" },
  { name: "subnet of networking.bridge_subnets", call: subnet("10.59.0.0/16"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "networking.bridge_subnets.br-pol" },
  { name: "subnet of a host address", call: subnet("10.57.0.0/24"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "10.57.0.1/24 on br-hostpol" },
  { name: "subnet of a host route", call: subnet("10.58.7.0/24"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "route 10.58.0.0/16" },
  { name: "prefix too short (/8)", call: subnet("10.0.0.0/8"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "/16 and /29" },
  { name: "prefix too long for a DHCP range (/30)", call: subnet("10.99.0.0/30"), code: Code.InvalidArgument, field: "config.ipv4_subnet", mention: "/16 and /29" },
  // reservations
  {
    name: "one IP reserved for two MACs",
    call: reservations([{ mac: "02:00:00:00:00:01", ipv4: "10.63.0.10" }, { mac: "02:00:00:00:00:02", ipv4: "10.63.0.10" }]),
    code: Code.InvalidArgument,
    field: "config.dhcp_reservations[1].ipv4",
    mention: "already reserved",
  },
  {
    name: "one MAC reserved twice",
    call: reservations([{ mac: "02:00:00:00:00:01", ipv4: "10.63.0.10" }, { mac: "02:00:00:00:00:01", ipv4: "10.63.0.11" }]),
    code: Code.InvalidArgument,
    field: "config.dhcp_reservations[1].mac",
  },
  { name: "reservation of the gateway", call: reservations([{ mac: "02:00:00:00:00:01", ipv4: "10.63.0.1" }]), code: Code.InvalidArgument, field: "config.dhcp_reservations[0].ipv4", mention: "gateway" },
  { name: "reservation of the broadcast address", call: reservations([{ mac: "02:00:00:00:00:01", ipv4: "10.63.0.255" }]), code: Code.InvalidArgument, field: "config.dhcp_reservations[0].ipv4", mention: "broadcast" },
  { name: "reservation of the network address", call: reservations([{ mac: "02:00:00:00:00:01", ipv4: "10.63.0.0" }]), code: Code.InvalidArgument, field: "config.dhcp_reservations[0].ipv4", mention: "network address" },
  { name: "reservation for the broadcast MAC", call: reservations([{ mac: "ff:ff:ff:ff:ff:ff", ipv4: "10.63.0.10" }]), code: Code.InvalidArgument, field: "config.dhcp_reservations[0].mac", mention: "multicast" },
  { name: "reservation for a multicast MAC", call: reservations([{ mac: "33:33:00:00:00:01", ipv4: "10.63.0.10" }]), code: Code.InvalidArgument, field: "config.dhcp_reservations[0].mac", mention: "multicast" },
  { name: "reservation of 8.8.8.8 with the subnet from the pool", call: reservations([{ mac: "02:00:00:00:00:01", ipv4: "8.8.8.8" }], ""), code: Code.InvalidArgument, field: "config.dhcp_reservations[0].ipv4", mention: "outside 192.168." },
  // port forwards
  { name: "forward to 1.1.1.1 with the subnet from the pool", call: forward("1.1.1.1", ""), code: Code.InvalidArgument, field: "config.port_forwards[0].internal_address", mention: "outside 192.168." },
  { name: "forward to an address outside the subnet", call: forward("10.99.0.5"), code: Code.InvalidArgument, field: "config.port_forwards[0].internal_address", mention: "outside 10.63.0.0/24" },
  { name: "forward to the gateway (the host)", call: forward("10.63.0.1"), code: Code.InvalidArgument, field: "config.port_forwards[0].internal_address", mention: "gateway" },
  { name: "forward to the broadcast address", call: forward("10.63.0.255"), code: Code.InvalidArgument, field: "config.port_forwards[0].internal_address", mention: "broadcast" },
  // IPv6, parsed before any `ip` call
  { name: "IPv6 prefix ':::/64'", call: ipv6(":::/64"), code: Code.InvalidArgument, field: "config.ipv6_prefix" },
  { name: "IPv6 prefix with host bits (fd00:1::1/64)", call: ipv6("fd00:1::1/64"), code: Code.InvalidArgument, field: "config.ipv6_prefix", mention: "zero host bits" },
  { name: "IPv6 prefix not a /64", call: ipv6("fd00:1::/48"), code: Code.InvalidArgument, field: "config.ipv6_prefix", mention: "/64" },
  { name: "global IPv6 prefix", call: ipv6("2001:db8::/64"), code: Code.InvalidArgument, field: "config.ipv6_prefix", mention: "fc00::/7" },
  { name: "IPv6 prefix of another network", call: ipv6("fd00:73::/64"), code: Code.InvalidArgument, field: "config.ipv6_prefix", mention: "network net-" },
  { name: "IPv6 prefix with a zone", call: ipv6("fd00:1::%lo/64"), code: Code.InvalidArgument, field: "config.ipv6_prefix" },
  // handles: one canonical encoding
  { name: "handle with a character appended", call: acquire(() => serialization + "A"), code: Code.InvalidArgument, field: "serialization" },
  { name: "handle with '==' appended", call: acquire(() => serialization + "=="), code: Code.InvalidArgument, field: "serialization" },
  { name: "handle with the unused low bit flipped", call: acquire(() => flipLowBit(serialization)), code: Code.InvalidArgument, field: "serialization" },
  { name: "handle with a third part", call: acquire(() => serialization + ".x"), code: Code.InvalidArgument, field: "serialization" },
  { name: "handle with a stray character inside", call: acquire(() => `${serialization.slice(0, serialization.lastIndexOf("."))}!${serialization.slice(serialization.lastIndexOf("."))}`), code: Code.InvalidArgument, field: "serialization" },
  { name: "handle in standard base64", call: acquire(() => serialization.replace(/-/g, "+").replace(/_/g, "/") + (serialization.includes("-") || serialization.includes("_") ? "" : "=")), code: Code.InvalidArgument, field: "serialization" },
  // holders
  { name: "a holder over vmnet.max_holders_per_network", call: acquire(() => cappedSerialization), code: Code.ResourceExhausted, field: "serialization", mention: "max_holders_per_network" },
  // custom netdevs: an allow-list of types and options; host endpoints under the ports' policy
  { name: "custom tap with a script", call: custom("tap,script=./x.sh,downscript=no"), code: Code.PermissionDenied, field: NETDEV, mention: "type tap is not allowed" },
  { name: "custom bridge with a helper", call: custom("bridge,helper=./x"), code: Code.PermissionDenied, field: NETDEV, mention: "type bridge is not allowed" },
  { name: "custom user hostfwd on 0.0.0.0", call: custom("user,hostfwd=tcp:0.0.0.0:2222-:22"), code: Code.PermissionDenied, field: NETDEV, mention: "0.0.0.0 is not in forward.allowed_listen_addresses" },
  { name: "custom user hostfwd on every address", call: custom("user,hostfwd=tcp::2222-:22"), code: Code.PermissionDenied, field: NETDEV, mention: "names no address" },
  { name: "custom user hostfwd below forward.port_min", call: custom("user,hostfwd=tcp:127.0.0.1:1999-:22"), code: Code.PermissionDenied, field: NETDEV, mention: "port 1999 is outside" },
  { name: "custom user guestfwd", call: custom("user,guestfwd=tcp:10.0.2.100:80-cmd:/bin/sh"), code: Code.PermissionDenied, field: NETDEV, mention: "option guestfwd is not allowed" },
  { name: "custom user smb", call: custom("user,smb=/"), code: Code.PermissionDenied, field: NETDEV, mention: "option smb is not allowed" },
  { name: "custom user with a script option", call: custom("user,script=/bin/sh"), code: Code.PermissionDenied, field: NETDEV, mention: "option script is not allowed" },
  { name: "custom socket listening on every address", call: custom("socket,listen=:2500"), code: Code.PermissionDenied, field: NETDEV, mention: "names no address" },
  { name: "custom socket on another NIC's fd", call: custom("socket,fd=3"), code: Code.PermissionDenied, field: NETDEV, mention: "option fd is not allowed" },
  { name: "custom stream to a unix socket", call: custom("stream,addr.type=unix,addr.path=/run/docker.sock"), code: Code.PermissionDenied, field: NETDEV, mention: "unix sockets are not allowed" },
  { name: "custom vhost-user", call: custom("vhost-user,chardev=c0"), code: Code.PermissionDenied, field: NETDEV, mention: "type vhost-user is not allowed" },
  { name: "custom option without a value", call: custom("user,restrict"), code: Code.InvalidArgument, field: NETDEV, mention: "key=value" },
  { name: "custom malformed hostfwd", call: custom("user,hostfwd=tcp:127.0.0.1:x-:22"), code: Code.InvalidArgument, field: NETDEV, mention: "hostfwd" },
  { name: "custom netdev without a type", call: custom(",script=/bin/sh"), code: Code.InvalidArgument, field: NETDEV },
  // leases never name the subnet's network or broadcast address, nor an address the host holds
  { name: "lease of the subnet's network address", call: lease("10.59.0.0"), code: Code.InvalidArgument, field: "ip", mention: "network address" },
  { name: "lease of the subnet's broadcast address", call: lease("10.59.0.255"), code: Code.InvalidArgument, field: "ip", mention: "broadcast address" },
  { name: "lease of the host's own address on the bridge", call: lease("10.59.0.1"), code: Code.InvalidArgument, field: "ip", mention: "address of this host" },
  { name: "lease outside the bridge's subnet", call: lease("10.60.7.5"), code: Code.InvalidArgument, field: "ip", mention: "outside 10.59.0.0/24" },
  // names: no invisible or reordering characters, one VM / network per name
  { name: "VM name with U+202E (right-to-left override)", call: vmNamed("invoice\u202Egpj.exe"), code: Code.InvalidArgument, field: "config.name", mention: "U+202E" },
  { name: "VM name with U+200B (zero-width space)", call: vmNamed("web\u200B"), code: Code.InvalidArgument, field: "config.name", mention: "U+200B" },
  { name: "VM name with U+2066 (left-to-right isolate)", call: vmNamed("\u2066web"), code: Code.InvalidArgument, field: "config.name", mention: "U+2066" },
  { name: "VM name with U+FEFF (BOM)", call: vmNamed("\uFEFFweb"), code: Code.InvalidArgument, field: "config.name", mention: "U+FEFF" },
  { name: "VM name with U+2028 (line separator)", call: vmNamed("a\u2028b"), code: Code.InvalidArgument, field: "config.name", mention: "U+2028" },
  { name: "VM name with an unassigned code point", call: vmNamed("a\u0378b"), code: Code.InvalidArgument, field: "config.name", mention: "U+0378" },
  { name: "VM name with a C1 control", call: vmNamed("a\u009Bb"), code: Code.InvalidArgument, field: "config.name", mention: "U+009B" },
  { name: "UpdateVm name with U+200B", call: () => vms.updateVm({ id: "web-1", name: "we\u200Bb" }), code: Code.InvalidArgument, field: "name", mention: "U+200B" },
  { name: "network name with U+202E", call: createNet({ name: "net\u202E", config: { mode: NetworkMode.HOST } }), code: Code.InvalidArgument, field: "name", mention: "U+202E" },
  { name: "holder description with U+202E", call: () => nets.acquireNetwork({ serialization, holderDescription: "pid \u202E42" }), code: Code.InvalidArgument, field: "holder_description", mention: "U+202E" },
  { name: "VM name taken", call: vmNamed("web"), code: Code.AlreadyExists, field: "config.name", mention: 'VM "web-1"' },
  { name: "VM name taken in another normalization form", call: vmNamed("cafe\u0301"), code: Code.AlreadyExists, field: "config.name", mention: 'VM "db-1"' },
  { name: "UpdateVm rename to a taken name", call: () => vms.updateVm({ id: "web-1", name: "café" }), code: Code.AlreadyExists, field: "name" },
  { name: "network name taken", call: createNet({ name: "pol-net", config: { mode: NetworkMode.HOST } }), code: Code.AlreadyExists, field: "name" },
];

describe("the policy holds, names the field, and changes nothing on disk", () => {
  it.each(CASES)("$name", async (c) => {
    const before = snapshot(d.dir, FOREIGN_LOGS);
    const err = await failure(c.call());
    expect(snapshot(d.dir, FOREIGN_LOGS), "the daemon wrote to its state directory").toEqual(before);
    const msg = err.rawMessage;
    expect(Code[err.code], msg).toBe(Code[c.code]);
    expect(msg.split("; ").some((p) => p.startsWith(`${c.field}: `)), `message ${JSON.stringify(msg)} names ${c.field}`).toBe(true);
    if (c.mention) expect(msg).toContain(c.mention);
  });

  it("left the VMs as they were; a VM may keep its own name", async () => {
    const { vms: list } = await vms.listVms({});
    expect(list.map((v) => `${v.id}=${v.name}`).sort()).toEqual(["br-1=bridged", "db-1=café", "web-1=web"]);
    const same = await vms.updateVm({ id: "web-1", name: "web" });
    expect(same.vm!.name).toBe("web");
  });

  it("left the networks as they were", async () => {
    const { networks } = await nets.listNetworks({});
    expect(networks.map((n) => n.name).sort()).toEqual(["capped", "pol-net"]);
    expect(networks.find((n) => n.name === "pol-net")!.holderIds).toEqual([]);
    expect(networks.find((n) => n.name === "capped")!.holderIds).toHaveLength(2);
  });

  it("accepts the canonical handle and stores the IPv6 prefix canonically", async () => {
    const r = await nets.acquireNetwork({ serialization, holderDescription: "policy test" });
    await nets.releaseNetwork({ networkId: r.network!.id, holderId: r.holderId });
    const created = await nets.createNetwork({ config: { mode: NetworkMode.HOST, ipv4Subnet: "10.63.0.0/24", ipv6Prefix: "FD00:0063:0::/64" } });
    try {
      expect(created.network!.config!.ipv6Prefix).toBe("fd00:63::/64");
    } finally {
      await nets.deleteNetwork({ id: created.network!.id });
    }
  });
});

describe("custom networking is opt-in", () => {
  it("the default allowed_modes refuse it", async () => {
    const plain = await startDaemon();
    try {
      const c = client(VmmService, transport(plain, "connect", "unix"));
      const e = await failure(c.createVm({ config: { name: "c", nics: [{ mode: NetworkingMode.CUSTOM, customNetdev: "user" }] } }));
      expect(Code[e.code]).toBe("PermissionDenied");
      expect(e.rawMessage).toBe("config.nics[0].mode: custom networking is not in networking.allowed_modes");
    } finally {
      await plain.stop();
      plain.cleanup();
    }
  });

  it("an allowed custom netdev within the policy is accepted", async () => {
    const r = await vms.createVm({ id: "custom-ok", config: { name: "custom ok", nics: [{ mode: NetworkingMode.CUSTOM, customNetdev: "user,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22" }] } });
    expect(r.vm!.config!.nics[0]!.customNetdev).toBe("user,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22");
    await vms.removeVm({ id: "custom-ok" });
  });
});

describe("Bearer scheme (RFC 7235)", () => {
  function getMeta(authorization: string): Promise<number> {
    const i = d.tcp.lastIndexOf(":");
    return new Promise((resolve, reject) => {
      const req = request(
        { host: d.tcp.slice(0, i), port: Number(d.tcp.slice(i + 1)), path: "/vmm.v1.VmmService/GetMeta", method: "POST", headers: { "content-type": "application/json", authorization } },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end("{}");
    });
  }

  it.each([`Bearer ${ADMIN}`, `bearer ${ADMIN}`, `BEARER ${ADMIN}`, `Bearer  ${ADMIN}`])("%s is accepted", async (h) => {
    expect(await getMeta(h)).toBe(200);
  });

  it.each([`Bearer${ADMIN}`, `Basic ${ADMIN}`, `Bearer ${ADMIN}x`])("%s is refused", async (h) => {
    expect(await getMeta(h)).toBe(401);
  });

  it("a VmmService client with a lower-case scheme works end to end", async () => {
    const c = client(VmmService, transport(d, "connect", "unix"));
    const meta = await c.getMeta({}, { headers: { authorization: `bearer   ${ADMIN}` } });
    expect(meta.version).not.toBe("");
  });
});

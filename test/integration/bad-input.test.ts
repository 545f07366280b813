// Bad input, refused: each case asserts the exact Connect code, that the
// message names the offending field ("config.ports[0].host_port: ..."), and
// that the daemon wrote nothing (the state directory's every file and its
// contents are identical before and after the refused call).
//
// One daemon, configured so every policy refusal is reachable: tokens and a
// lease token, a bridge with a subnet, restricted modes and bridges,
// forwarding disabled, port_min 2000.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { request } from "node:http";
import { join, relative } from "node:path";
import { toBinary, create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { codeFromHttpStatus, codeFromString } from "@connectrpc/connect/protocol-connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import {
  CreateVmRequestSchema,
  LeaseAction,
  NetworkingMode,
  Protocol,
  VmmService,
} from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode, NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";

const ADMIN = "admin-token-badinput-0123456789";
const LEASE = "lease-token-badinput-0123456789";

let d: DaemonHandle;
let vms: Client<typeof VmmService>;
let nets: Client<typeof NetworkService>;
let bridgeMac = "";
let serialization = "";
let networkId = "";

const TOML = [
  "[auth]",
  `tokens = ["${ADMIN}"]`,
  `lease_tokens = ["${LEASE}"]`,
  "[networking]",
  'bridge = "br-ok"',
  'allowed_modes = ["user", "passt", "bridge", "vmnet", "custom"]',
  'allowed_bridges = ["br-ok2"]',
  'bridge_subnets = { "br-ok" = "10.66.0.0/24" }',
  "forward_service_enabled = false",
  "[forward]",
  "port_min = 2000",
].join("\n");

beforeAll(async () => {
  d = await startDaemon({ toml: TOML });
  vms = client(VmmService, transport(d, "connect", "tcp", { token: ADMIN }));
  nets = client(NetworkService, transport(d, "connect", "tcp", { token: ADMIN }));
  // Records the cases refer to.
  await vms.createVm({ id: "owner", config: { name: "owns tcp 5000", ports: [{ protocol: Protocol.TCP, hostPort: 5000, vmPort: 22 }] } });
  await vms.createVm({ id: "target", config: { name: "update target" } });
  const br = await vms.createVm({ id: "bridged", config: { name: "bridge mode", nics: [{ mode: NetworkingMode.BRIDGE }] } });
  bridgeMac = br.vm!.nics[0]!.mac;
  const net = await nets.createNetwork({ name: "shared-net", config: { mode: NetworkMode.HOST, ipv4Subnet: "192.168.200.0/24" } });
  serialization = net.network!.serialization;
  networkId = net.network!.id;
});

afterAll(async () => {
  await d?.stop();
  d?.cleanup();
});

/**
 * Logs that processes other than the daemon append to on their own schedule
 * (a network's dnsmasq logs its start-up lines after it is ready). They are
 * not the daemon's state, so the snapshot leaves them out.
 */
const FOREIGN_LOGS = /^networks\/[^/]+\/dnsmasq\.log$/;

/** Every path under the state directory with a digest of its contents. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const rel = relative(root, p);
      if (FOREIGN_LOGS.test(rel)) continue;
      const st = statSync(p);
      if (st.isDirectory()) {
        out[`${rel}/`] = `dir ${(st.mode & 0o7777).toString(8)}`;
        walk(p);
      } else {
        out[rel] = `${(st.mode & 0o7777).toString(8)} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
      }
    }
  };
  walk(root);
  return out;
}

/** Host and port of the daemon's TCP listener. */
function tcpAddress(): { host: string; port: number } {
  const i = d.tcp.lastIndexOf(":");
  return { host: d.tcp.slice(0, i), port: Number(d.tcp.slice(i + 1)) };
}

/** A raw HTTP/1.1 POST to the TCP listener. */
function post(path: string, headers: Record<string, string>, body: Buffer | string): Promise<{ status: number; body: string }> {
  const { host, port } = tcpAddress();
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: "POST", headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (data += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * A raw enveloped request over HTTP/1.1 with gRPC (status in the trailers)
 * or gRPC-Web (status in the body's trailer frame). Resolves when the status
 * is OK; otherwise rejects with the ConnectError the status describes.
 */
function postEnveloped(path: string, contentType: "application/grpc" | "application/grpc-web+proto", message: Uint8Array): Promise<void> {
  const { host, port } = tcpAddress();
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  const body = Buffer.concat([head, message]);
  const headers = { "content-type": contentType, te: "trailers", authorization: `Bearer ${ADMIN}`, "content-length": String(body.length) };
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: "POST", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const fields = new Map<string, string>();
        const add = (k: string, v: unknown) => typeof v === "string" && fields.set(k.toLowerCase(), v);
        for (const [k, v] of Object.entries(res.headers)) add(k, v);
        for (const [k, v] of Object.entries(res.trailers)) add(k, v);
        // gRPC-Web: frames of [flags, length(4), payload]; 0x80 marks the trailer frame.
        const all = Buffer.concat(chunks);
        for (let off = 0; contentType !== "application/grpc" && off + 5 <= all.length; ) {
          const len = all.readUInt32BE(off + 1);
          if (all[off]! & 0x80) {
            for (const line of all.subarray(off + 5, off + 5 + len).toString("latin1").split("\r\n")) {
              const i = line.indexOf(":");
              if (i > 0) add(line.slice(0, i).trim(), line.slice(i + 1).trim());
            }
          }
          off += 5 + len;
        }
        const status = fields.get("grpc-status");
        if (status === undefined) return reject(new Error(`HTTP ${res.statusCode}: no grpc-status in the response`));
        if (status === "0") return resolve();
        reject(new ConnectError(decodeURIComponent(fields.get("grpc-message") ?? ""), Number(status) as Code));
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * The Connect error a raw Connect-protocol response carries: the JSON error
 * body's code, else the code the Connect protocol derives from the HTTP
 * status (404 -> unimplemented, 415 -> internal, ...).
 */
function connectErrorOf(r: { status: number; body: string }): ConnectError {
  let j: { code?: string; message?: string } = {};
  try {
    j = JSON.parse(r.body) as typeof j;
  } catch {
    // not a Connect error body
  }
  const code = (j.code !== undefined ? codeFromString(j.code) : undefined) ?? codeFromHttpStatus(r.status);
  return new ConnectError(j.message ?? `HTTP ${r.status}: ${r.body.slice(0, 200)}`, code);
}

function as(token: string) {
  return {
    vms: client(VmmService, transport(d, "connect", "tcp", { token })),
    nets: client(NetworkService, transport(d, "connect", "tcp", { token })),
  };
}

const createVm = (req: MessageInitShape<typeof CreateVmRequestSchema>) => vms.createVm(req);
/** Reads a server stream to its end (its error is the call's error). */
const drain = async (stream: AsyncIterable<unknown>) => {
  for await (const _ of stream) void _;
};
const withName = (name: string) => createVm({ config: { name } });
type ConfigInit = NonNullable<MessageInitShape<typeof CreateVmRequestSchema>["config"]>;
const withPorts = (ports: { protocol?: Protocol; hostPort: number; vmPort: number; hostAddress?: string }[], extra: { nics?: ConfigInit["nics"] } = {}) =>
  createVm({ config: { name: "ports", ...extra, ports: ports.map((p) => ({ protocol: Protocol.TCP, ...p })) } });
const lease = (mac: string, ip: string, extra: { action?: LeaseAction; hostname?: string } = {}) =>
  vms.reportDhcpLease({ action: LeaseAction.ADD, mac, ip, ...extra });

interface Case {
  name: string;
  call: () => Promise<unknown>;
  code: Code;
  /** Field path the message must name, as "field: ..." (possibly among "; "-joined problems). */
  field?: string;
  /** Text the message must contain (protocol-level errors name no field). */
  mention?: string;
  /** Expected HTTP status of a raw request. */
  status?: number;
  /** Undo what a wrongly accepted call created. */
  cleanup?: () => Promise<void>;
}

const removeIfThere = (id: string) => async () => {
  await vms.removeVm({ id }).catch((e: unknown) => {
    if (ConnectError.from(e).code !== Code.NotFound) throw e;
  });
};

const long = (n: number) => "/" + "k".repeat(n - 1);

const CASES: Case[] = [
  // ids
  { name: "CreateVm id with upper case", call: () => createVm({ id: "BadId", config: { name: "x" } }), code: Code.InvalidArgument, field: "id" },
  { name: "CreateVm id of 64 characters", call: () => createVm({ id: "a".repeat(64), config: { name: "x" } }), code: Code.InvalidArgument, field: "id" },
  { name: "CreateVm id starting with '-'", call: () => createVm({ id: "-abc", config: { name: "x" } }), code: Code.InvalidArgument, field: "id" },
  { name: "CreateVm id that exists", call: () => createVm({ id: "owner", config: { name: "x" } }), code: Code.AlreadyExists, field: "id" },
  { name: "GetInfo with empty id", call: () => vms.getInfo({ id: "" }), code: Code.InvalidArgument, field: "id" },
  { name: "GetInfo id with upper case", call: () => vms.getInfo({ id: "Owner" }), code: Code.InvalidArgument, field: "id" },
  { name: "GetInfo max_events over the limit", call: () => vms.getInfo({ id: "owner", maxEvents: 100_000 }), code: Code.InvalidArgument, field: "max_events" },
  { name: "GetInfo of an unknown VM", call: () => vms.getInfo({ id: "no-such-vm" }), code: Code.NotFound, mention: '"no-such-vm"' },
  { name: "RemoveVm of an unknown VM", call: () => vms.removeVm({ id: "no-such-vm" }), code: Code.NotFound, mention: '"no-such-vm"' },
  { name: "StartVm with a bad id", call: () => vms.startVm({ id: "a b" }), code: Code.InvalidArgument, field: "id" },
  { name: "StopVm timeout_seconds 0", call: () => vms.stopVm({ id: "owner", timeoutSeconds: 0 }), code: Code.InvalidArgument, field: "timeout_seconds" },
  // names
  { name: "name with a control character", call: () => withName("bell\u0007"), code: Code.InvalidArgument, field: "config.name" },
  { name: "name with a newline", call: () => withName("two\nlines"), code: Code.InvalidArgument, field: "config.name" },
  { name: "name of 64 characters", call: () => withName("n".repeat(64)), code: Code.InvalidArgument, field: "config.name" },
  { name: "empty name", call: () => withName(""), code: Code.InvalidArgument, field: "config.name" },
  { name: "name with leading white space", call: () => withName(" padded"), code: Code.InvalidArgument, field: "config.name" },
  // ports
  { name: "host_port 0", call: () => withPorts([{ hostPort: 0, vmPort: 22 }]), code: Code.InvalidArgument, field: "config.ports[0].host_port" },
  { name: "host_port 70000", call: () => withPorts([{ hostPort: 70000, vmPort: 22 }]), code: Code.InvalidArgument, field: "config.ports[0].host_port" },
  { name: "host_port below forward.port_min", call: () => withPorts([{ hostPort: 1500, vmPort: 22 }]), code: Code.InvalidArgument, field: "config.ports[0].host_port" },
  { name: "vm_port 0", call: () => withPorts([{ hostPort: 6000, vmPort: 0 }]), code: Code.InvalidArgument, field: "config.ports[0].vm_port" },
  {
    name: "duplicate host ports in one request",
    call: () => withPorts([{ hostPort: 6001, vmPort: 22 }, { hostPort: 6001, vmPort: 23 }]),
    code: Code.InvalidArgument,
    field: "config.ports[1].host_port",
  },
  { name: "host port mapped by another VM", call: () => withPorts([{ hostPort: 5000, vmPort: 22 }]), code: Code.AlreadyExists, field: "config.ports" },
  { name: "unknown protocol enum value", call: () => withPorts([{ protocol: 7 as Protocol, hostPort: 6002, vmPort: 22 }]), code: Code.InvalidArgument, field: "config.ports[0].protocol" },
  { name: "unspecified protocol", call: () => withPorts([{ protocol: Protocol.UNSPECIFIED, hostPort: 6003, vmPort: 22 }]), code: Code.InvalidArgument, field: "config.ports[0].protocol" },
  { name: "host_address not an IP", call: () => withPorts([{ hostPort: 6004, vmPort: 22, hostAddress: "localhost" }]), code: Code.InvalidArgument, field: "config.ports[0].host_address" },
  { name: "host_address not allowed", call: () => withPorts([{ hostPort: 6005, vmPort: 22, hostAddress: "0.0.0.0" }]), code: Code.InvalidArgument, field: "config.ports[0].host_address" },
  {
    name: "every problem of a request at once",
    call: () => createVm({ config: { name: "", ports: [{ protocol: Protocol.TCP, hostPort: 0, vmPort: 22 }] } }),
    code: Code.InvalidArgument,
    field: "config.ports[0].host_port",
    mention: "config.name: ",
  },
  // networking
  { name: "unknown networking mode 99", call: () => createVm({ config: { name: "x", nics: [{ mode: 99 as NetworkingMode }] } }), code: Code.InvalidArgument, field: "config.nics[0].mode" },
  {
    name: "custom netdev setting id=",
    call: () => createVm({ config: { name: "x", nics: [{ mode: NetworkingMode.CUSTOM, customNetdev: "user,id=evil" }] } }),
    code: Code.InvalidArgument,
    field: "config.nics[0].custom_netdev",
  },
  {
    name: "bridge on a user-mode NIC",
    call: () => createVm({ config: { name: "x", nics: [{ mode: NetworkingMode.USER, bridge: "br-ok" }] } }),
    code: Code.InvalidArgument,
    field: "config.nics[0].bridge",
  },
  {
    name: "port maps on a custom netdev",
    call: () => withPorts([{ hostPort: 6006, vmPort: 22 }], { nics: [{ mode: NetworkingMode.CUSTOM, customNetdev: "user" }] }),
    code: Code.FailedPrecondition,
    field: "config.ports[0]",
  },
  {
    name: "port maps on bridge mode with forwarding disabled",
    call: () => withPorts([{ hostPort: 6007, vmPort: 22 }], { nics: [{ mode: NetworkingMode.BRIDGE }] }),
    code: Code.FailedPrecondition,
    field: "config.ports[0]",
  },
  { name: "mode not in allowed_modes", call: () => createVm({ config: { name: "x", nics: [{ mode: NetworkingMode.TAP }] } }), code: Code.PermissionDenied, field: "config.nics[0].mode" },
  {
    name: "bridge not in allowed_bridges",
    call: () => createVm({ config: { name: "x", nics: [{ mode: NetworkingMode.BRIDGE, bridge: "br-evil" }] } }),
    code: Code.PermissionDenied,
    field: "config.nics[0].bridge",
  },
  {
    name: "bridge name that is no interface name",
    call: () => createVm({ config: { name: "x", nics: [{ mode: NetworkingMode.BRIDGE, bridge: "br ok,x" }] } }),
    code: Code.InvalidArgument,
    field: "config.nics[0].bridge",
  },
  {
    name: "vmnet NIC on an unknown network",
    call: () => createVm({ config: { name: "x", nics: [{ mode: NetworkingMode.VMNET, networkId: "net-00000000" }] } }),
    code: Code.NotFound,
    field: "config.nics[0].network_id",
  },
  // One rule set: what StartVm (the argv builder) used to refuse, CreateVm refuses.
  ...[",script=/bin/sh", "User,x", "socket,listen=:1,,id=x"].map((netdev) => ({
    name: `custom netdev ${JSON.stringify(netdev)}`,
    call: () => createVm({ config: { name: "x", nics: [{ mode: NetworkingMode.CUSTOM, customNetdev: netdev }] } }),
    code: Code.InvalidArgument,
    field: "config.nics[0].custom_netdev",
  })),
  {
    name: "passt on the second NIC",
    call: () => createVm({ config: { name: "x", nics: [{ mode: NetworkingMode.USER }, { mode: NetworkingMode.PASST }] } }),
    code: Code.InvalidArgument,
    field: "config.nics[1].mode",
  },
  {
    name: "IPv6 host address on user networking",
    call: () => createVm({ config: { name: "x", ports: [{ protocol: Protocol.TCP, hostAddress: "::1", hostPort: 6011, vmPort: 22 }] } }),
    code: Code.InvalidArgument,
    field: "config.ports[0].host_address",
    mention: "IPv4 addresses only",
  },
  { name: "nine NICs", call: () => createVm({ config: { name: "x", nics: Array.from({ length: 9 }, () => ({ mode: NetworkingMode.USER })) } }), code: Code.InvalidArgument, field: "config.nics" },
  // paths and command line
  { name: "kernel path of 5000 characters", call: () => createVm({ config: { name: "x", kernel: long(5000) } }), code: Code.InvalidArgument, field: "config.kernel" },
  { name: "cmdline of 5000 characters", call: () => createVm({ config: { name: "x", cmdline: "c".repeat(5000) } }), code: Code.InvalidArgument, field: "config.cmdline" },
  { name: "relative kernel path", call: () => createVm({ config: { name: "x", kernel: "boot/vmlinuz" } }), code: Code.InvalidArgument, field: "config.kernel" },
  { name: "comma in kernel path", call: () => createVm({ config: { name: "x", kernel: "/boot/vmlinuz,if=none" } }), code: Code.InvalidArgument, field: "config.kernel" },
  { name: "space in kernel path", call: () => createVm({ config: { name: "x", kernel: "/boot/vm linuz" } }), code: Code.InvalidArgument, field: "config.kernel" },
  { name: "space in initrd path", call: () => createVm({ config: { name: "x", initrd: "/boot/init rd" } }), code: Code.InvalidArgument, field: "config.initrd" },
  { name: "UpdateVm space in kernel path", call: () => vms.updateVm({ id: "target", kernel: "/boot/vm linuz" }), code: Code.InvalidArgument, field: "kernel" },
  { name: "newline in cmdline", call: () => createVm({ config: { name: "x", cmdline: "console=ttyS0\n-monitor" } }), code: Code.InvalidArgument, field: "config.cmdline" },
  { name: "control character in disk path", call: () => createVm({ config: { name: "x", disk: "/img\u0000.raw" } }), code: Code.InvalidArgument, field: "config.disk" },
  { name: "memory below the minimum", call: () => createVm({ config: { name: "x", memoryMib: 8 } }), code: Code.InvalidArgument, field: "config.memory_mib" },
  { name: "too many vcpus", call: () => createVm({ config: { name: "x", vcpus: 1000 } }), code: Code.InvalidArgument, field: "config.vcpus" },
  // UpdateVm
  { name: "UpdateVm ports without update_ports", call: () => vms.updateVm({ id: "target", ports: [{ protocol: Protocol.TCP, hostPort: 6010, vmPort: 22 }] }), code: Code.InvalidArgument, field: "ports" },
  { name: "UpdateVm of an unknown VM", call: () => vms.updateVm({ id: "no-such-vm", name: "x" }), code: Code.NotFound, mention: '"no-such-vm"' },
  { name: "UpdateVm name with a newline", call: () => vms.updateVm({ id: "target", name: "a\nb" }), code: Code.InvalidArgument, field: "name" },
  { name: "UpdateVm empty name", call: () => vms.updateVm({ id: "target", name: "" }), code: Code.InvalidArgument, field: "name" },
  { name: "UpdateVm vcpus 0", call: () => vms.updateVm({ id: "target", vcpus: 0 }), code: Code.InvalidArgument, field: "vcpus" },
  { name: "UpdateVm relative kernel", call: () => vms.updateVm({ id: "target", kernel: "vmlinuz" }), code: Code.InvalidArgument, field: "kernel" },
  {
    name: "UpdateVm host_port 70000",
    call: () => vms.updateVm({ id: "target", updatePorts: true, ports: [{ protocol: Protocol.TCP, hostPort: 70000, vmPort: 22 }] }),
    code: Code.InvalidArgument,
    field: "ports[0].host_port",
  },
  {
    name: "UpdateVm host port mapped by another VM",
    call: () => vms.updateVm({ id: "target", updatePorts: true, ports: [{ protocol: Protocol.TCP, hostPort: 5000, vmPort: 22 }] }),
    code: Code.AlreadyExists,
    field: "ports",
  },
  {
    name: "UpdateVm ports of a bridge VM with forwarding disabled",
    call: () => vms.updateVm({ id: "bridged", updatePorts: true, ports: [{ protocol: Protocol.TCP, hostPort: 6011, vmPort: 22 }] }),
    code: Code.FailedPrecondition,
    field: "ports[0]",
  },
  // ListVms / ListNetworks
  { name: "ListVms bad page_token", call: () => vms.listVms({ pageToken: "not-a-token" }), code: Code.InvalidArgument, field: "page_token" },
  { name: "ListVms page_size over 1000", call: () => vms.listVms({ pageSize: 1001 }), code: Code.InvalidArgument, field: "page_size" },
  { name: "ListVms bad id filter", call: () => vms.listVms({ ids: ["ok", "NOT OK"] }), code: Code.InvalidArgument, field: "ids[1]" },
  { name: "ListNetworks bad page_token", call: () => nets.listNetworks({ pageToken: "bm9wZQ" }), code: Code.InvalidArgument, field: "page_token" },
  { name: "ListNetworks page_size over 1000", call: () => nets.listNetworks({ pageSize: 5000 }), code: Code.InvalidArgument, field: "page_size" },
  // ReportDhcpLease
  { name: "lease with a malformed MAC", call: () => lease("zz:00:00:00:00:01", "10.66.0.5"), code: Code.InvalidArgument, field: "mac" },
  { name: "lease with a short MAC", call: () => lease("02:00:00:00:01", "10.66.0.5"), code: Code.InvalidArgument, field: "mac" },
  { name: "lease with a malformed IP", call: () => lease("02:00:00:00:00:01", "10.66.0.300"), code: Code.InvalidArgument, field: "ip" },
  { name: "lease with an IPv6 address", call: () => lease("02:00:00:00:00:01", "fd00::1"), code: Code.InvalidArgument, field: "ip" },
  { name: "lease without an action", call: () => lease("02:00:00:00:00:01", "10.66.0.5", { action: LeaseAction.UNSPECIFIED }), code: Code.InvalidArgument, field: "action" },
  { name: "lease with a hostname that is no hostname", call: () => lease("02:00:00:00:00:01", "10.66.0.5", { hostname: "a b;c" }), code: Code.InvalidArgument, field: "hostname" },
  { name: "lease of an unknown MAC", call: () => lease("02:00:00:00:00:01", "10.66.0.5"), code: Code.NotFound, field: "mac" },
  { name: "lease IP outside the bridge subnet", call: () => lease(bridgeMac, "10.67.0.5"), code: Code.InvalidArgument, field: "ip" },
  { name: "lease of a user-mode VM", call: async () => lease((await vms.getInfo({ id: "owner" })).vm!.nics[0]!.mac, "10.66.0.5"), code: Code.FailedPrecondition, field: "mac" },
  // NetworkService
  { name: "CreateNetwork with a bad subnet", call: () => nets.createNetwork({ config: { mode: NetworkMode.HOST, ipv4Subnet: "10.0.0.1/24" } }), code: Code.InvalidArgument, field: "config.ipv4_subnet" },
  { name: "CreateNetwork with a subnet in use", call: () => nets.createNetwork({ config: { mode: NetworkMode.HOST, ipv4Subnet: "192.168.200.0/24" } }), code: Code.InvalidArgument, field: "config.ipv4_subnet" },
  { name: "CreateNetwork without a mode", call: () => nets.createNetwork({ config: {} }), code: Code.InvalidArgument, field: "config.mode" },
  {
    name: "CreateNetwork reservation with a bad MAC",
    call: () => nets.createNetwork({ config: { mode: NetworkMode.HOST, ipv4Subnet: "192.168.201.0/24", dhcpReservations: [{ mac: "nope", ipv4: "192.168.201.10" }] } }),
    code: Code.InvalidArgument,
    field: "config.dhcp_reservations[0].mac",
  },
  {
    name: "CreateNetwork reservation IP outside the subnet",
    call: () => nets.createNetwork({ config: { mode: NetworkMode.HOST, ipv4Subnet: "192.168.201.0/24", dhcpReservations: [{ mac: "02:00:00:00:00:02", ipv4: "192.168.202.10" }] } }),
    code: Code.InvalidArgument,
    field: "config.dhcp_reservations[0].ipv4",
  },
  {
    name: "CreateNetwork NAT in host mode",
    call: () => nets.createNetwork({ config: { mode: NetworkMode.HOST, nat44Enabled: true } }),
    code: Code.InvalidArgument,
    field: "config.nat44_enabled",
  },
  {
    name: "AcquireNetwork with a tampered serialization",
    call: () => {
      const [payload, mac] = serialization.slice("vmmnet1.".length).split(".");
      const forged = Buffer.from(JSON.stringify({ v: 1, id: networkId, created: "2000-01-01T00:00:00.000Z" })).toString("base64url");
      expect(forged).not.toBe(payload);
      return nets.acquireNetwork({ serialization: `vmmnet1.${forged}.${mac}` });
    },
    code: Code.InvalidArgument,
    field: "serialization",
  },
  { name: "AcquireNetwork with a foreign serialization", call: () => nets.acquireNetwork({ serialization: "something-else" }), code: Code.InvalidArgument, field: "serialization" },
  {
    name: "AcquireNetwork with a control character in the description",
    call: () => nets.acquireNetwork({ serialization, holderDescription: "pid\n42" }),
    code: Code.InvalidArgument,
    field: "holder_description",
  },
  { name: "GetNetwork with a bad id", call: () => nets.getNetwork({ id: "Net_1" }), code: Code.InvalidArgument, field: "id" },
  { name: "ReleaseNetwork of an unknown holder", call: () => nets.releaseNetwork({ networkId, holderId: "no-such-holder" }), code: Code.NotFound, field: "holder_id" },
  { name: "ReadConsole of an unknown VM", call: () => drain(vms.readConsole({ id: "no-such-vm" })), code: Code.NotFound, field: "id" },
  { name: "ReadConsole with offset and tail_lines", call: () => drain(vms.readConsole({ id: "no-such-vm", offset: 0n, tailLines: 5 })), code: Code.InvalidArgument, field: "tail_lines" },
  { name: "ReadConsole with a 2 MiB chunk", call: () => drain(vms.readConsole({ id: "no-such-vm", maxChunkBytes: 2 << 20 })), code: Code.InvalidArgument, field: "max_chunk_bytes" },
  { name: "ReadConsole with a bad instance id", call: () => drain(vms.readConsole({ id: "no-such-vm", instanceId: "a b" })), code: Code.InvalidArgument, field: "instance_id" },
  { name: "GetVmStats with a bad id", call: () => vms.getVmStats({ id: "Bad Id" }), code: Code.InvalidArgument, field: "id" },
  { name: "GetVmStats of an unknown VM", call: () => vms.getVmStats({ id: "no-such-vm" }), code: Code.NotFound, field: "id" },
  // authentication
  { name: "wrong token", call: () => as("wrong-token-0123456789abc").vms.listVms({}), code: Code.Unauthenticated, field: "authorization" },
  { name: "missing token", call: () => client(VmmService, transport(d, "connect", "tcp")).listVms({}), code: Code.Unauthenticated, field: "authorization" },
  { name: "lease token calling CreateVm", call: () => as(LEASE).vms.createVm({ config: { name: "x" } }), code: Code.PermissionDenied, field: "authorization" },
  { name: "lease token calling CreateNetwork", call: () => as(LEASE).nets.createNetwork({ config: { mode: NetworkMode.HOST } }), code: Code.PermissionDenied, field: "authorization" },
  // protocol level (raw HTTP/1.1)
  {
    name: "content-type text/plain",
    call: () => post("/vmm.v1.VmmService/CreateVm", { "content-type": "text/plain", authorization: `Bearer ${ADMIN}` }, '{"config":{"name":"x"}}'),
    // No Connect error body; the Connect protocol maps HTTP 415 to unknown.
    code: Code.Unknown,
    status: 415,
    mention: "HTTP 415",
  },
  {
    name: "truncated protobuf body",
    call: () => {
      const full = toBinary(CreateVmRequestSchema, create(CreateVmRequestSchema, { id: "trunc", config: { name: "truncated request body" } }));
      return post("/vmm.v1.VmmService/CreateVm", { "content-type": "application/proto", authorization: `Bearer ${ADMIN}` }, Buffer.from(full.subarray(0, full.length - 5)));
    },
    // gRPC's status-code table: a request proto that fails to parse is
    // INTERNAL; connect-es answers so in every protocol (docs/api.md).
    code: Code.Internal,
    status: 500,
    mention: "parse binary",
  },
  ...(["application/grpc", "application/grpc-web+proto"] as const).map((ct) => ({
    name: `truncated protobuf message over ${ct}`,
    call: () => {
      const full = toBinary(CreateVmRequestSchema, create(CreateVmRequestSchema, { id: "trunc", config: { name: "truncated request body" } }));
      return postEnveloped("/vmm.v1.VmmService/CreateVm", ct, full.subarray(0, full.length - 5));
    },
    code: Code.Internal,
    mention: "parse binary",
  })),
  {
    name: "invalid JSON body",
    call: () => post("/vmm.v1.VmmService/CreateVm", { "content-type": "application/json", authorization: `Bearer ${ADMIN}` }, '{"id": "x", "config": {'),
    code: Code.InvalidArgument,
    status: 400,
  },
  {
    name: "JSON with an unknown enum name",
    call: () => post("/vmm.v1.VmmService/CreateVm", { "content-type": "application/json", authorization: `Bearer ${ADMIN}` }, '{"id":"json-enum","config":{"name":"x","nics":[{"mode":"NETWORKING_MODE_WARP"}]}}'),
    code: Code.InvalidArgument,
    status: 400,
    mention: "NETWORKING_MODE_WARP",
    cleanup: removeIfThere("json-enum"),
  },
  {
    name: "JSON with an unknown field",
    call: () => post("/vmm.v1.VmmService/CreateVm", { "content-type": "application/json", authorization: `Bearer ${ADMIN}` }, '{"id":"json-field","config":{"name":"x","evil":true}}'),
    code: Code.InvalidArgument,
    status: 400,
    mention: "evil",
    cleanup: removeIfThere("json-field"),
  },
  {
    name: "unknown method",
    call: () => post("/vmm.v1.VmmService/FormatDisk", { "content-type": "application/json", authorization: `Bearer ${ADMIN}` }, "{}"),
    code: Code.Unimplemented,
    status: 404,
  },
];

describe("bad input is refused, names the field, and changes nothing on disk", () => {
  it("has at least 30 cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  async function check(c: Case, exact: boolean): Promise<void> {
    const before = snapshot(d.stateDir);
    let err: ConnectError | undefined;
    let status: number | undefined;
    try {
      try {
        const res = await c.call();
        if (c.status !== undefined) {
          const r = res as { status: number; body: string };
          status = r.status;
          err = r.status === 200 ? undefined : connectErrorOf(r);
        }
      } catch (e) {
        err = ConnectError.from(e);
      }
      expect(err, "the call succeeded").toBeDefined();
      expect(snapshot(d.stateDir), "the daemon wrote to its state directory").toEqual(before);
      if (!exact) return;
      const msg = err!.rawMessage;
      if (c.status !== undefined) expect(status, msg).toBe(c.status);
      expect(Code[err!.code], msg).toBe(Code[c.code]);
      if (c.field !== undefined) {
        const parts = msg.split("; ");
        expect(parts.some((p) => p.startsWith(`${c.field}: `)), `message ${JSON.stringify(msg)} names ${c.field}`).toBe(true);
      }
      if (c.mention !== undefined) expect(msg).toContain(c.mention);
    } finally {
      await c.cleanup?.();
    }
  }

  it.each(CASES)("$name", (c) => check(c, true));

  it("left the records the cases referred to as they were", async () => {
    const list = await vms.listVms({});
    expect(list.vms.map((v) => v.id).sort()).toEqual(["bridged", "owner", "target"]);
    const target = (await vms.getInfo({ id: "target" })).vm!;
    expect(target.name).toBe("update target");
    expect(target.config!.ports).toEqual([]);
    expect(target.events.map((e) => e.kind)).toEqual(["created"]);
    expect((await vms.getInfo({ id: "bridged" })).vm!.nics[0]!.lease).toBeUndefined();
    expect((await nets.getNetwork({ id: networkId })).network!.holderIds).toEqual([]);
    expect((await nets.listNetworks({})).networks).toHaveLength(1);
  });
});

// A Host / :authority header that is not a valid URL host. grpc-core clients
// (grpcio, grpc-c++) send exactly that over a unix socket by default: the
// percent-encoded socket path ("tmp%2Fvmmd.sock"). Own daemon: today the
// request kills it.
describe("malformed Host header", () => {
  let h: DaemonHandle;
  beforeAll(async () => {
    h = await startDaemon();
  });
  afterAll(async () => {
    await h?.stop();
    h?.cleanup();
  });

  function getMeta(host: string): Promise<number> {
    const port = Number(h.tcp.slice(h.tcp.lastIndexOf(":") + 1));
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "/vmm.v1.VmmService/GetMeta", method: "POST", headers: { host, "content-type": "application/json" } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end("{}");
    });
  }

  // connect-node builds `new URL(path, "http://" + authority)` outside any
  // try; server/http/listener.ts replaces such an authority so the daemon
  // does not die of it.
  it("is answered and does not kill the daemon", async () => {
    expect(await getMeta("localhost")).toBe(200);
    const status = await getMeta("tmp%2Fvmmd.sock");
    expect(status).toBeGreaterThanOrEqual(200);
    expect(h.proc.exitCode, "daemon exited").toBeNull();
    expect(await getMeta("localhost")).toBe(200);
  });
});

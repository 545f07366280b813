// The one rule set for VM input. CreateVm and UpdateVm run it at the API
// boundary; everything downstream (the QEMU and passt argv builders, the NIC
// preparers) trusts the VmSpec it returns. Every problem is reported at
// once, with the protobuf field path the caller used
// ("config.ports[1].host_port"), so a client can point at it.
//
// Why strict: names, paths and netdev strings end up in QEMU's argv, where
// QEMU parses most option values as `key=value,key=value` lists: a comma
// inside a value ends it and starts a new key (a path "/k,readonly=off" or a
// netdev ",script=/bin/sh" injects sub-options), and QEMU's own escape
// (doubling the comma) differs between its parsers, so commas are refused
// rather than escaped. A newline or other control character has no business
// in any value and would corrupt logs and the kernel command line. We spawn
// without a shell, so white space cannot split arguments; it is still
// refused in paths, where it is never legitimate for us. Interface names end
// up in `ip` argv and dnsmasq config. (The same reasoning as lima's
// networks/validate.go.)
//
// To extend: a rule for a field goes into the check function of that field
// (checkNic's table MODE_RULES for a NIC mode, checkCustomNetdev for the
// netdev grammar and its policy, check.ts for names shared with networks,
// image/spec.ts for images, disks and cloud-init).
// Field problems are `invalid`; refusals by vmm.toml policy are collected
// apart and thrown as `permission`; a valid request the configuration
// cannot serve is `precondition`.
import { isIP, isIPv4 } from "node:net";
import { checkName, checkPath, CONTROL_RE, ID_RE, isValidIfName, UNIX_PATH_MAX } from "../check.js";
import type { Config, NetMode } from "../config/types.js";
import { MAX_VCPUS, MEMORY_MIB } from "../contract.js";
import { NET_MODES } from "../config/types.js";
import { Problems, VmmError } from "../errors.js";
import { checkCloudInit, checkDisks, isEmptyCloudInit } from "../image/spec.js";
import { checkPathOptions, overlaps } from "../forward/rules.js";
import { checkLabels } from "./labels.js";
import { checkNetdevPolicy } from "./netdev-policy.js";
import type { RunFiles } from "./store.js";
import type { NicSpec, PortSpec, Protocol, RawNic, RawPort, RawUpdate, RawVmSpec, VmSpec } from "./types.js";

/** NICs per VM. */
export const MAX_NICS = 8;
/** Port mappings per VM. */
export const MAX_PORTS = 1024;
/** Kernel command line, bytes. */
export const MAX_CMDLINE = 4096;
/** A custom netdev value, bytes. */
export const MAX_NETDEV = 1024;

/** Defaults of a CreateVm config's unset fields. */
export const VM_DEFAULTS = { vcpus: 1, memoryMib: 256, cmdline: "console=ttyS0" } as const;

/** Modes whose ports the daemon forwards itself (needs forward_service_enabled). */
export const FORWARDED_MODES: readonly NetMode[] = ["bridge", "tap", "macvtap", "vmnet"];

/** What the rules read besides the input itself. */
export interface VmInputContext {
  cfg: Config;
}

/** Problems of one input: field problems, policy refusals, and an unserviceable request. */
class Findings {
  readonly invalid = new Problems();
  readonly denied: string[] = [];
  precondition: string | undefined;

  /** Throws invalid, then permission, then precondition: the first kind that has findings. */
  throwIfAny(): void {
    this.invalid.throwIfAny();
    if (this.denied.length > 0) throw new VmmError("permission", this.denied.join("; "));
    if (this.precondition !== undefined) throw new VmmError("precondition", this.precondition);
  }

  /** Every finding of every kind, one line each ("field: message" for field problems). */
  all(): string[] {
    return [...this.invalid.list.map((x) => `${x.field}: ${x.message}`), ...this.denied, ...(this.precondition !== undefined ? [this.precondition] : [])];
  }
}

function checkOptionalPath(p: Problems, field: string, v: string): void {
  if (v !== "") checkPath(p, field, v);
}

function checkCmdline(p: Problems, field: string, v: string): void {
  const bytes = Buffer.byteLength(v);
  if (bytes > MAX_CMDLINE) p.add(field, `is ${bytes} bytes; at most ${MAX_CMDLINE}`);
  else if (CONTROL_RE.test(v)) p.add(field, "must not contain control characters (a newline would end the kernel command line)");
}

function checkVcpus(p: Problems, field: string, v: number, allowZero: boolean): void {
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > MAX_VCPUS) p.add(field, `is ${v}; must be between 1 and ${MAX_VCPUS}`);
}

function checkMemory(p: Problems, field: string, v: number, allowZero: boolean): void {
  if (allowZero && v === 0) return;
  if (!Number.isInteger(v) || v < MEMORY_MIB.min || v > MEMORY_MIB.max) p.add(field, `is ${v}; must be between ${MEMORY_MIB.min} and ${MEMORY_MIB.max}`);
}

/** A custom netdev value split into its type and its options, as QEMU's QemuOpts reads it. */
export interface ParsedNetdev {
  type: string;
  options: { key: string; value: string | undefined }[];
}

const NETDEV_TYPE_RE = /^[a-z][a-z0-9-]*$/;

/**
 * Parses `TYPE[,KEY[=VALUE]]...`. Returns the problem instead when the value
 * does not start with a netdev type (",script=/bin/sh", "User,x"), has an
 * empty option (",,", QEMU's comma escape, is refused: see the file comment)
 * or carries control characters.
 */
export function parseNetdev(v: string): ParsedNetdev | string {
  if (CONTROL_RE.test(v)) return "must not contain control characters";
  const [type, ...rest] = v.split(",");
  if (!NETDEV_TYPE_RE.test(type!)) return `must start with a netdev type of a-z 0-9 '-' such as "socket", got "${type!.slice(0, 32)}"`;
  const options: ParsedNetdev["options"] = [];
  for (const o of rest) {
    if (o === "") return "must not contain an empty option (',,' or a trailing ',')";
    const eq = o.indexOf("=");
    options.push(eq < 0 ? { key: o, value: undefined } : { key: o.slice(0, eq), value: o.slice(eq + 1) });
  }
  return { type: type!, options };
}

/** The custom netdev grammar (parseNetdev) and its policy (netdev-policy.ts). */
function checkCustomNetdev(f: Findings, field: string, v: string, cfg: Config): void {
  if (v === "") return f.invalid.add(field, "is required for custom mode");
  const bytes = Buffer.byteLength(v);
  if (bytes > MAX_NETDEV) return f.invalid.add(field, `is ${bytes} bytes; at most ${MAX_NETDEV}`);
  const parsed = parseNetdev(v);
  if (typeof parsed === "string") return f.invalid.add(field, parsed);
  if (parsed.options.some((o) => o.key === "id")) f.invalid.add(field, "must not set id= (the daemon names the netdev)");
  const policy = checkNetdevPolicy(parsed, cfg);
  for (const m of policy.invalid) f.invalid.add(field, m);
  for (const m of policy.denied) f.denied.push(`${field}: ${m}`);
}

/** One NIC being checked: where it is, what arrived, what it resolves to. */
interface NicCheck {
  f: Findings;
  /** Field path of the NIC, e.g. "config.nics[1]". */
  at: string;
  index: number;
  raw: RawNic;
  nic: NicSpec;
  cfg: Config;
}

/** The per-mode rules; each fills in the NIC's one option. */
const MODE_RULES: Record<NetMode, (c: NicCheck) => void> = {
  user() {},
  passt({ f, at, index }) {
    // passt serves one socket per VM, bound to NIC 0's ports.
    if (index !== 0) f.invalid.add(`${at}.mode`, "passt is only available on the first NIC");
  },
  bridge: checkBridge,
  tap: checkBridge,
  macvtap({ f, at, raw, nic, cfg }) {
    const n = cfg.networking;
    const parent = raw.macvtapParent === "" ? n.macvtapParent : raw.macvtapParent;
    if (parent === "") f.invalid.add(`${at}.macvtap_parent`, "is required (no networking.macvtap_parent configured)");
    else if (!isValidIfName(parent)) f.invalid.add(`${at}.macvtap_parent`, "must be a valid interface name (1-15 of A-Z a-z 0-9 _ . -)");
    else if (parent !== n.macvtapParent && !n.allowedMacvtapParents.includes(parent))
      f.denied.push(`${at}.macvtap_parent: ${parent} is not in networking.allowed_macvtap_parents`);
    nic.macvtapParent = parent;
  },
  vmnet({ f, at, raw, nic }) {
    if (raw.networkId === "") f.invalid.add(`${at}.network_id`, "is required for vmnet mode");
    else if (!ID_RE.test(raw.networkId)) f.invalid.add(`${at}.network_id`, "is not a valid network id");
    nic.networkId = raw.networkId;
  },
  custom({ f, at, raw, nic, cfg }) {
    checkCustomNetdev(f, `${at}.custom_netdev`, raw.customNetdev, cfg);
    nic.customNetdev = raw.customNetdev;
  },
};

function checkBridge({ f, at, raw, nic, cfg }: NicCheck): void {
  const n = cfg.networking;
  const br = raw.bridge === "" ? n.bridge : raw.bridge;
  if (!isValidIfName(br)) f.invalid.add(`${at}.bridge`, "must be a valid interface name (1-15 of A-Z a-z 0-9 _ . -)");
  else if (br !== n.bridge && !n.allowedBridges.includes(br)) f.denied.push(`${at}.bridge: bridge ${br} is not in networking.allowed_bridges`);
  nic.bridge = br;
}

/** The option fields of a NIC and the modes they apply to. */
const MODE_FIELDS: { field: string; value: (r: RawNic) => string; modes: readonly NetMode[] }[] = [
  { field: "bridge", value: (r) => r.bridge, modes: ["bridge", "tap"] },
  { field: "macvtap_parent", value: (r) => r.macvtapParent, modes: ["macvtap"] },
  { field: "network_id", value: (r) => r.networkId, modes: ["vmnet"] },
  { field: "custom_netdev", value: (r) => r.customNetdev, modes: ["custom"] },
];

function checkNic(f: Findings, at: string, index: number, raw: RawNic, cfg: Config): NicSpec | undefined {
  let mode: NetMode;
  if (raw.mode === undefined) mode = cfg.networking.defaultMode;
  else if ((NET_MODES as readonly string[]).includes(raw.mode)) mode = raw.mode as NetMode;
  else {
    f.invalid.add(`${at}.mode`, `unknown networking mode ${raw.mode.replace(/^\?/, "")}`);
    return undefined;
  }
  if (!cfg.networking.allowedModes.includes(mode)) f.denied.push(`${at}.mode: ${mode} networking is not in networking.allowed_modes`);
  for (const o of MODE_FIELDS) {
    if (o.value(raw) !== "" && !o.modes.includes(mode)) f.invalid.add(`${at}.${o.field}`, `only applies to ${o.modes.join("/")} mode, not ${mode}`);
  }
  const nic: NicSpec = { mode };
  MODE_RULES[mode]({ f, at, index, raw, nic, cfg });
  return nic;
}

function checkPort(p: Problems, at: string, r: RawPort, modes: readonly (NetMode | undefined)[], cfg: Config): PortSpec | undefined {
  let ok = true;
  const bad = (field: string, message: string) => {
    p.add(`${at}.${field}`, message);
    ok = false;
  };
  // The port goes to the NIC it names (undefined mode: that NIC is invalid, reported there).
  const mode = modes[r.nicIndex];
  if (!Number.isInteger(r.nicIndex) || r.nicIndex < 0 || r.nicIndex >= modes.length)
    bad("nic_index", `is ${r.nicIndex}; the VM has ${modes.length} NIC${modes.length === 1 ? "" : "s"} (0-${modes.length - 1})`);
  if (r.protocol !== "tcp" && r.protocol !== "udp") {
    bad("protocol", r.protocol === undefined ? "is required (PROTOCOL_TCP or PROTOCOL_UDP)" : `unknown protocol ${r.protocol.slice(1)}`);
  }
  const addr = r.hostAddress === "" ? "127.0.0.1" : r.hostAddress;
  if (isIP(addr) === 0) bad("host_address", `"${addr.slice(0, 64)}" is not an IP address`);
  else if (!cfg.forward.allowedListenAddresses.includes(addr))
    bad("host_address", `${addr} is not in forward.allowed_listen_addresses (${cfg.forward.allowedListenAddresses.join(", ")})`);
  // QEMU's slirp (user mode) forwards from IPv4 host addresses only.
  else if (mode === "user" && !isIPv4(addr)) bad("host_address", `${addr}: user networking forwards from IPv4 addresses only`);
  if (!Number.isInteger(r.hostPort) || r.hostPort < 1 || r.hostPort > 65535) bad("host_port", `is ${r.hostPort}; must be between 1 and 65535`);
  else if (r.hostPort < cfg.forward.portMin || r.hostPort > cfg.forward.portMax)
    bad("host_port", `is ${r.hostPort}; the configured range is ${cfg.forward.portMin}-${cfg.forward.portMax}`);
  if (!Number.isInteger(r.vmPort) || r.vmPort < 1 || r.vmPort > 65535) bad("vm_port", `is ${r.vmPort}; must be between 1 and 65535`);
  // The path and PROXY option are the forwarder's: QEMU's slirp and passt map ports their own way.
  const forwarded = mode === undefined || FORWARDED_MODES.includes(mode);
  if (!forwarded && r.path !== undefined) bad("path", `${mode} networking maps ports itself; a path applies to ${FORWARDED_MODES.join("/")} modes`);
  if (!forwarded && r.proxyProtocol) bad("proxy_protocol", `${mode} networking maps ports itself; the PROXY protocol applies to ${FORWARDED_MODES.join("/")} modes`);
  const before = p.list.length;
  if (forwarded) checkPathOptions(p, at, { protocol: r.protocol, listenAddress: addr, addressField: "host_address", path: r.path, proxyProtocol: r.proxyProtocol }, cfg.forward.defaultPath);
  if (!ok || p.list.length > before) return undefined;
  const port: PortSpec = { protocol: r.protocol as Protocol, hostAddress: addr, hostPort: r.hostPort, vmPort: r.vmPort, nicIndex: r.nicIndex };
  if (r.path === "userspace" || r.path === "nat") port.path = r.path;
  if (r.proxyProtocol) port.proxyProtocol = true;
  return port;
}

/**
 * Checks the ports of a VM whose NICs have `modes` (each port goes to the
 * NIC it names) and returns them normalized (host address filled in). A
 * port on a NIC whose mode cannot honour it is refused, naming the NIC.
 */
function checkPorts(f: Findings, prefix: string, raw: RawPort[], modes: readonly (NetMode | undefined)[], cfg: Config): PortSpec[] {
  const ports: PortSpec[] = [];
  if (raw.length > MAX_PORTS) {
    f.invalid.add(prefix, `has ${raw.length} entries; at most ${MAX_PORTS}`);
    return ports;
  }
  const seen = new Map<string, number>();
  const indexOf = new Map<PortSpec, number>();
  raw.forEach((r, i) => {
    const port = checkPort(f.invalid, `${prefix}[${i}]`, r, modes, cfg);
    if (!port) return;
    const key = `${port.protocol}/${port.hostAddress}/${port.hostPort}`;
    const prev = seen.get(key);
    if (prev !== undefined) return f.invalid.add(`${prefix}[${i}].host_port`, `duplicates ${prefix}[${prev}] (${port.protocol} ${port.hostAddress}:${port.hostPort})`);
    // One port is either nat or userspace: a nat rule would take the packets of an overlapping listener.
    const rule = (q: PortSpec) => ({ protocol: q.protocol, listenAddress: q.hostAddress, listenPort: q.hostPort, targetAddress: "0.0.0.1", targetPort: 1 });
    const pathOf = (q: PortSpec) => q.path ?? cfg.forward.defaultPath;
    const clash = ports.findIndex((q) => pathOf(q) !== pathOf(port) && overlaps(rule(q), rule(port)));
    if (clash >= 0) {
      return f.invalid.add(`${prefix}[${i}].path`, `${pathOf(port)} on ${port.protocol} ${port.hostAddress}:${port.hostPort} would share packets with ${prefix}[${indexOf.get(ports[clash]!)}] (${pathOf(ports[clash]!)}): a port is either nat or userspace`);
    }
    seen.set(key, i);
    indexOf.set(port, i);
    ports.push(port);
  });
  const refusals: string[] = [];
  raw.forEach((r, i) => {
    const mode = modes[r.nicIndex];
    if (mode === "custom") refusals.push(`${prefix}[${i}]: nics[${r.nicIndex}] uses custom networking, which cannot honour port mappings; forward inside the netdev instead`);
    else if (mode !== undefined && FORWARDED_MODES.includes(mode) && !cfg.networking.forwardServiceEnabled)
      refusals.push(`${prefix}[${i}]: nics[${r.nicIndex}] uses ${mode} networking, which maps ports through the forward service, disabled (set networking.forward_service_enabled = true in vmm.toml)`);
  });
  if (refusals.length > 0) f.precondition = refusals.join("; ");
  return ports;
}

const NO_NIC: RawNic = { mode: undefined, bridge: "", macvtapParent: "", networkId: "", customNetdev: "" };

/** Validates a CreateVm config; returns the resolved spec or throws with every problem. */
export function validateSpec(raw: RawVmSpec, ctx: VmInputContext, prefix = "config."): VmSpec {
  const { f, spec } = inspectSpec(raw, ctx, prefix);
  f.throwIfAny();
  return spec;
}

/** The checks of validateSpec: what they found, and the spec they resolved (meaningful when nothing was found). */
function inspectSpec(raw: RawVmSpec, ctx: VmInputContext, prefix: string): { f: Findings; spec: VmSpec } {
  const { cfg } = ctx;
  const f = new Findings();
  const p = f.invalid;
  checkName(p, `${prefix}name`, raw.name);
  checkVcpus(p, `${prefix}vcpus`, raw.vcpus, true);
  checkMemory(p, `${prefix}memory_mib`, raw.memoryMib, true);
  checkOptionalPath(p, `${prefix}kernel`, raw.kernel);
  checkOptionalPath(p, `${prefix}initrd`, raw.initrd);
  checkOptionalPath(p, `${prefix}disk`, raw.disk);
  checkCmdline(p, `${prefix}cmdline`, raw.cmdline);
  let nics: NicSpec[] = [];
  let modes: (NetMode | undefined)[] = [];
  if (raw.nics.length > MAX_NICS) p.add(`${prefix}nics`, `has ${raw.nics.length} entries; at most ${MAX_NICS}`);
  else {
    const rawNics = raw.nics.length === 0 ? [NO_NIC] : raw.nics;
    const checked = rawNics.map((n, i) => checkNic(f, `${prefix}nics[${i}]`, i, n, cfg));
    nics = checked.filter((n): n is NicSpec => n !== undefined);
    modes = checked.map((n) => n?.mode);
  }
  const ports = checkPorts(f, `${prefix}ports`, raw.ports, modes, cfg);
  checkDisks(p, prefix, raw.image, raw.imageSizeMib, raw.disks);
  if (raw.cloudInit) checkCloudInit(p, `${prefix}cloud_init.`, raw.cloudInit);
  checkLabels(p, `${prefix}labels`, raw.labels);
  const spec: VmSpec = {
    name: raw.name,
    vcpus: raw.vcpus === 0 ? VM_DEFAULTS.vcpus : raw.vcpus,
    memoryMib: raw.memoryMib === 0 ? VM_DEFAULTS.memoryMib : raw.memoryMib,
    kernel: raw.kernel,
    initrd: raw.initrd,
    // With an image, an unset cmdline means the image's (resolved at start).
    cmdline: raw.cmdline === "" && raw.image === "" ? VM_DEFAULTS.cmdline : raw.cmdline,
    disk: raw.disk,
    nics,
    ports,
    autoRestart: raw.autoRestart,
    ...(raw.image !== "" ? { image: raw.image, imageSizeMib: raw.imageSizeMib } : {}),
    ...(raw.disks.length > 0 ? { disks: raw.disks.map((d) => ({ image: d.image, sizeMib: d.sizeMib })) } : {}),
    ...(raw.cloudInit ? { cloudInit: raw.cloudInit } : {}),
    ...(Object.keys(raw.labels).length > 0 ? { labels: { ...raw.labels } } : {}),
  };
  return { f, spec };
}

/** A stored spec in the form CreateVm's config arrives in, to check it again. */
function rawSpecOf(s: VmSpec): RawVmSpec {
  return {
    name: s.name,
    vcpus: s.vcpus,
    memoryMib: s.memoryMib,
    kernel: s.kernel,
    initrd: s.initrd,
    cmdline: s.cmdline,
    disk: s.disk,
    nics: s.nics.map((n) => ({ mode: n.mode, bridge: n.bridge ?? "", macvtapParent: n.macvtapParent ?? "", networkId: n.networkId ?? "", customNetdev: n.customNetdev ?? "" })),
    ports: s.ports.map((p) => ({ protocol: p.protocol, hostAddress: p.hostAddress, hostPort: p.hostPort, vmPort: p.vmPort, nicIndex: p.nicIndex ?? 0, path: p.path, proxyProtocol: p.proxyProtocol ?? false })),
    autoRestart: s.autoRestart,
    image: s.image ?? "",
    imageSizeMib: s.imageSizeMib ?? 0,
    disks: s.disks ?? [],
    cloudInit: s.cloudInit,
    labels: s.labels ?? {},
  };
}

/**
 * Checks a stored VM's spec against this daemon's settings now (they may
 * have changed since it was created, or the record may come from an older
 * version or a hand edit): throws "precondition" naming every problem.
 */
export function recheckStoredSpec(id: string, spec: VmSpec, ctx: VmInputContext): void {
  let found: string[];
  try {
    found = inspectSpec(rawSpecOf(spec), ctx, "config.").f.all();
  } catch (e) {
    throw new VmmError("precondition", `VM "${id}": its stored configuration (vm.json) is malformed (${(e as Error).message}); recreate it`);
  }
  if (found.length > 0) throw new VmmError("precondition", `VM "${id}": its stored configuration is not allowed by this daemon's settings now: ${found.join("; ")}; recreate it, or change vmm.toml back`);
}

/** Applies an UpdateVm patch to `spec` (undefined fields: unchanged); throws with every problem. */
export function validateUpdate(spec: VmSpec, u: RawUpdate, ctx: VmInputContext): VmSpec {
  const f = new Findings();
  const p = f.invalid;
  if (u.name !== undefined) checkName(p, "name", u.name);
  if (u.vcpus !== undefined) checkVcpus(p, "vcpus", u.vcpus, false);
  if (u.memoryMib !== undefined) checkMemory(p, "memory_mib", u.memoryMib, false);
  if (u.kernel !== undefined) checkOptionalPath(p, "kernel", u.kernel);
  if (u.initrd !== undefined) checkOptionalPath(p, "initrd", u.initrd);
  if (u.cmdline !== undefined) checkCmdline(p, "cmdline", u.cmdline);
  let ports = spec.ports;
  if (!u.updatePorts && u.ports.length > 0) p.add("ports", "is set but update_ports is false; set update_ports to replace the ports");
  if (u.updatePorts) ports = checkPorts(f, "ports", u.ports, spec.nics.map((n) => n.mode), ctx.cfg);
  if (u.cloudInit) checkCloudInit(p, "cloud_init.", u.cloudInit);
  if (u.labels) checkLabels(p, "labels.labels", u.labels);
  f.throwIfAny();
  const next: VmSpec = {
    ...spec,
    name: u.name ?? spec.name,
    vcpus: u.vcpus ?? spec.vcpus,
    memoryMib: u.memoryMib ?? spec.memoryMib,
    kernel: u.kernel ?? spec.kernel,
    initrd: u.initrd ?? spec.initrd,
    cmdline: u.cmdline ?? spec.cmdline,
    autoRestart: u.autoRestart ?? spec.autoRestart,
    ports,
  };
  if (u.cloudInit && isEmptyCloudInit(u.cloudInit)) delete next.cloudInit;
  else if (u.cloudInit) next.cloudInit = u.cloudInit;
  if (u.labels && Object.keys(u.labels).length === 0) delete next.labels;
  else if (u.labels) next.labels = { ...u.labels };
  return next;
}

/**
 * Adds a problem for `field` (the VM id) when a run file of the VM would
 * not fit QEMU's and passt's option values: its sockets must stay within
 * the unix socket path limit, which a long state_dir plus a long id exceed.
 */
export function checkRunFiles(p: Problems, field: string, files: RunFiles): void {
  for (const path of [files.qmp, files.console, files.passtSock]) {
    const bytes = Buffer.byteLength(path);
    if (bytes > UNIX_PATH_MAX) {
      p.add(field, `is too long for this state_dir: ${path} is ${bytes} bytes, over the ${UNIX_PATH_MAX}-byte unix socket path limit`);
      return;
    }
  }
}

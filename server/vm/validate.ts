// Validation of CreateVm/UpdateVm input against the schema and the policy in
// vmm.toml. Every problem is reported at once, with the protobuf field path
// the caller used ("config.ports[1].host_port"), so a client can point at it.
//
// Why strict: names, paths and netdev strings end up in QEMU's argv, where a
// comma starts a new option and a newline or control character corrupts logs
// and serial output; interface names end up in `ip` argv and dnsmasq config.
import { isIP } from "node:net";
import type { Config, NetMode } from "../config/types.js";
import { NET_MODES } from "../config/types.js";
import { Problems, VmmError } from "../errors.js";
import { isValidIfName } from "../net/addr.js";
import type { NicSpec, PortSpec, Protocol, VmSpec } from "./types.js";
import { checkCloudInit, checkDisks, isEmptyCloudInit, type CloudInitSpec, type ExtraDisk } from "../image/spec.js";

export const MAX_NICS = 8;
export const MAX_PORTS = 1024;
export const MAX_PATH = 4096;
export const MAX_CMDLINE = 4096;
export const MAX_NAME = 63;

/** Raw input as it arrives from the API; enums already named, unknown ones as "?N". */
export interface RawPort {
  protocol: string | undefined;
  hostAddress: string;
  hostPort: number;
  /** NIC the port goes to (0 when omitted). */
  nicIndex: number;
  vmPort: number;
}
export interface RawNic {
  mode: string | undefined;
  bridge: string;
  macvtapParent: string;
  networkId: string;
  customNetdev: string;
}
export interface RawVmSpec {
  name: string;
  vcpus: number;
  memoryMib: number;
  kernel: string;
  initrd: string;
  cmdline: string;
  disk: string;
  nics: RawNic[];
  ports: RawPort[];
  autoRestart: boolean;
  image: string;
  imageSizeMib: number;
  disks: ExtraDisk[];
  /** undefined: no seed drive. */
  cloudInit: CloudInitSpec | undefined;
}

export const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function checkId(p: Problems, field: string, id: string): void {
  if (id === "") p.add(field, "is required");
  else if (id.length > 63) p.add(field, `is ${id.length} characters; at most 63`);
  else if (!ID_RE.test(id)) p.add(field, "must be 1-63 of a-z 0-9 and '-', starting with a letter or digit");
}

export function checkName(p: Problems, field: string, name: string): void {
  if (name.length === 0) p.add(field, "is required");
  else if ([...name].length > MAX_NAME) p.add(field, `is ${[...name].length} characters; at most ${MAX_NAME}`);
  else if (CONTROL.test(name)) p.add(field, "must not contain control characters");
  else if (name.trim() !== name) p.add(field, "must not start or end with white space");
}

function checkPath(p: Problems, field: string, v: string, required: boolean): void {
  if (v === "") {
    if (required) p.add(field, "is required");
    return;
  }
  if (v.length > MAX_PATH) p.add(field, `is ${v.length} bytes; at most ${MAX_PATH}`);
  else if (!v.startsWith("/")) p.add(field, "must be an absolute path");
  else if (CONTROL.test(v) || v.includes(",")) p.add(field, "must not contain commas or control characters");
}

function checkCmdline(p: Problems, field: string, v: string): void {
  if (v.length > MAX_CMDLINE) p.add(field, `is ${v.length} bytes; at most ${MAX_CMDLINE}`);
  else if (CONTROL.test(v)) p.add(field, "must not contain control characters");
}

const MIN_MEMORY = 32;
const MAX_MEMORY = 1024 * 1024;

function checkResources(p: Problems, prefix: string, vcpus: number, memoryMib: number): void {
  if (vcpus > 64) p.add(`${prefix}vcpus`, `is ${vcpus}; at most 64`);
  if (memoryMib !== 0 && (memoryMib < MIN_MEMORY || memoryMib > MAX_MEMORY))
    p.add(`${prefix}memory_mib`, `is ${memoryMib}; must be between ${MIN_MEMORY} and ${MAX_MEMORY}`);
}

/** Modes whose ports the daemon forwards itself (needs forward_service_enabled). */
export const FORWARDED_MODES: readonly NetMode[] = ["bridge", "tap", "macvtap", "vmnet"];

/**
 * Validates ports. `mode` is NIC 0's mode (ports go to NIC 0). Returns the
 * normalized ports; problems are added to `p`. Policy refusals (mode cannot
 * honour ports) are returned as `precondition` for the caller to throw after
 * field problems.
 */
export function checkPorts(p: Problems, prefix: string, raw: RawPort[], modes: NetMode[], cfg: Config): { ports: PortSpec[]; precondition?: string } {
  const ports: PortSpec[] = [];
  if (raw.length > MAX_PORTS) {
    p.add(prefix, `has ${raw.length} entries; at most ${MAX_PORTS}`);
    return { ports };
  }
  const seen = new Map<string, number>();
  raw.forEach((r, i) => {
    const f = `${prefix}[${i}]`;
    let ok = true;
    if (r.protocol !== "tcp" && r.protocol !== "udp") {
      p.add(`${f}.protocol`, r.protocol === undefined ? "is required (PROTOCOL_TCP or PROTOCOL_UDP)" : `unknown protocol ${r.protocol.slice(1)}`);
      ok = false;
    }
    const addr = r.hostAddress === "" ? "127.0.0.1" : r.hostAddress;
    if (isIP(addr) === 0) {
      p.add(`${f}.host_address`, `"${addr.slice(0, 64)}" is not an IP address`);
      ok = false;
    } else if (!cfg.forward.allowedListenAddresses.includes(addr)) {
      p.add(`${f}.host_address`, `${addr} is not in forward.allowed_listen_addresses (${cfg.forward.allowedListenAddresses.join(", ")})`);
      ok = false;
    }
    if (!Number.isInteger(r.hostPort) || r.hostPort < 1 || r.hostPort > 65535) {
      p.add(`${f}.host_port`, `is ${r.hostPort}; must be between 1 and 65535`);
      ok = false;
    } else if (r.hostPort < cfg.forward.portMin || r.hostPort > cfg.forward.portMax) {
      p.add(`${f}.host_port`, `is ${r.hostPort}; the configured range is ${cfg.forward.portMin}-${cfg.forward.portMax}`);
      ok = false;
    }
    if (!Number.isInteger(r.vmPort) || r.vmPort < 1 || r.vmPort > 65535) {
      p.add(`${f}.vm_port`, `is ${r.vmPort}; must be between 1 and 65535`);
      ok = false;
    }
    if (!ok) return;
    const key = `${r.protocol}/${addr}/${r.hostPort}`;
    const prev = seen.get(key);
    if (prev !== undefined) {
      p.add(`${f}.host_port`, `duplicates ${prefix}[${prev}] (${r.protocol} ${addr}:${r.hostPort})`);
      return;
    }
    seen.set(key, i);
    ports.push({ protocol: r.protocol as Protocol, hostAddress: addr, hostPort: r.hostPort, vmPort: r.vmPort, nicIndex: r.nicIndex });
  });
  // Each port goes to the NIC it names; that NIC's mode must be able to honour it.
  const refusals: string[] = [];
  raw.forEach((r, i) => {
    const nic = r.nicIndex;
    if (!Number.isInteger(nic) || nic < 0 || nic >= modes.length) {
      p.add(`${prefix}[${i}].nic_index`, `is ${nic}; the VM has ${modes.length} NIC${modes.length === 1 ? "" : "s"} (0-${modes.length - 1})`);
      return;
    }
    const mode = modes[nic]!;
    if (mode === "custom") refusals.push(`${prefix}[${i}]: nics[${nic}] uses custom networking, which cannot honour port mappings; forward inside the netdev instead`);
    else if (FORWARDED_MODES.includes(mode) && !cfg.networking.forwardServiceEnabled)
      refusals.push(`${prefix}[${i}]: nics[${nic}] uses ${mode} networking, which maps ports through the forward service, disabled (set networking.forward_service_enabled = true in vmm.toml)`);
  });
  const precondition = refusals.length > 0 ? refusals.join("; ") : undefined;
  return { ports, precondition };
}

function checkNic(p: Problems, perm: string[], f: string, r: RawNic, cfg: Config): NicSpec | undefined {
  let mode: NetMode;
  if (r.mode === undefined) mode = cfg.networking.defaultMode;
  else if ((NET_MODES as readonly string[]).includes(r.mode)) mode = r.mode as NetMode;
  else {
    p.add(`${f}.mode`, `unknown networking mode ${r.mode.replace(/^\?/, "")}`);
    return undefined;
  }
  const n = cfg.networking;
  if (!n.allowedModes.includes(mode)) perm.push(`${f}.mode: ${mode} networking is not in networking.allowed_modes`);
  const nic: NicSpec = { mode };
  const onlyFor = (field: string, v: string, modes: NetMode[]) => {
    if (v !== "" && !modes.includes(mode)) p.add(`${f}.${field}`, `only applies to ${modes.join("/")} mode, not ${mode}`);
  };
  onlyFor("bridge", r.bridge, ["bridge", "tap"]);
  onlyFor("macvtap_parent", r.macvtapParent, ["macvtap"]);
  onlyFor("network_id", r.networkId, ["vmnet"]);
  onlyFor("custom_netdev", r.customNetdev, ["custom"]);
  if (mode === "bridge" || mode === "tap") {
    const br = r.bridge === "" ? n.bridge : r.bridge;
    if (!isValidIfName(br)) p.add(`${f}.bridge`, "must be a valid interface name (1-15 of A-Z a-z 0-9 _ . -)");
    else if (br !== n.bridge && !n.allowedBridges.includes(br)) perm.push(`${f}.bridge: bridge ${br} is not in networking.allowed_bridges`);
    nic.bridge = br;
  } else if (mode === "macvtap") {
    const parent = r.macvtapParent === "" ? n.macvtapParent : r.macvtapParent;
    if (parent === "") p.add(`${f}.macvtap_parent`, "is required (no networking.macvtap_parent configured)");
    else if (!isValidIfName(parent)) p.add(`${f}.macvtap_parent`, "must be a valid interface name");
    else if (parent !== n.macvtapParent && !n.allowedMacvtapParents.includes(parent))
      perm.push(`${f}.macvtap_parent: ${parent} is not in networking.allowed_macvtap_parents`);
    nic.macvtapParent = parent;
  } else if (mode === "vmnet") {
    if (r.networkId === "") p.add(`${f}.network_id`, "is required for vmnet mode");
    else if (!ID_RE.test(r.networkId)) p.add(`${f}.network_id`, "is not a valid network id");
    nic.networkId = r.networkId;
  } else if (mode === "custom") {
    if (r.customNetdev === "") p.add(`${f}.custom_netdev`, "is required for custom mode");
    else if (r.customNetdev.length > 1024 || CONTROL.test(r.customNetdev)) p.add(`${f}.custom_netdev`, "must be at most 1024 bytes without control characters");
    else if (/(^|,)id=/.test(r.customNetdev)) p.add(`${f}.custom_netdev`, "must not set id= (the daemon names the netdev)");
    nic.customNetdev = r.customNetdev;
  }
  return nic;
}

function throwAll(p: Problems, perm: string[], precondition: string | undefined): void {
  p.throwIfAny();
  if (perm.length > 0) throw new VmmError("permission", perm.join("; "));
  if (precondition) throw new VmmError("precondition", precondition);
}

/** Validates a CreateVm config; returns the resolved spec or throws with every problem. */
export function validateSpec(raw: RawVmSpec, cfg: Config, prefix = "config."): VmSpec {
  const p = new Problems();
  const perm: string[] = [];
  checkName(p, `${prefix}name`, raw.name);
  checkResources(p, prefix, raw.vcpus, raw.memoryMib);
  checkPath(p, `${prefix}kernel`, raw.kernel, false);
  checkPath(p, `${prefix}initrd`, raw.initrd, false);
  checkPath(p, `${prefix}disk`, raw.disk, false);
  checkCmdline(p, `${prefix}cmdline`, raw.cmdline);
  let nics: NicSpec[] = [];
  if (raw.nics.length > MAX_NICS) p.add(`${prefix}nics`, `has ${raw.nics.length} entries; at most ${MAX_NICS}`);
  else {
    const rawNics = raw.nics.length === 0 ? [{ mode: undefined, bridge: "", macvtapParent: "", networkId: "", customNetdev: "" }] : raw.nics;
    nics = rawNics.map((n, i) => checkNic(p, perm, `${prefix}nics[${i}]`, n, cfg)).filter((n): n is NicSpec => n !== undefined);
  }
  const { ports, precondition } = checkPorts(p, `${prefix}ports`, raw.ports, nics.map((n) => n.mode), cfg);
  checkDisks(p, prefix, raw.image, raw.imageSizeMib, raw.disks);
  if (raw.cloudInit) checkCloudInit(p, `${prefix}cloud_init.`, raw.cloudInit);
  throwAll(p, perm, precondition);
  return {
    name: raw.name,
    vcpus: raw.vcpus === 0 ? 1 : raw.vcpus,
    memoryMib: raw.memoryMib === 0 ? 256 : raw.memoryMib,
    kernel: raw.kernel,
    initrd: raw.initrd,
    // With an image, an unset cmdline means the image's (resolved at start).
    cmdline: raw.cmdline === "" && raw.image === "" ? "console=ttyS0" : raw.cmdline,
    disk: raw.disk,
    nics,
    ports,
    autoRestart: raw.autoRestart,
    ...(raw.image !== "" ? { image: raw.image, imageSizeMib: raw.imageSizeMib } : {}),
    ...(raw.disks.length > 0 ? { disks: raw.disks.map((d) => ({ image: d.image, sizeMib: d.sizeMib })) } : {}),
    ...(raw.cloudInit ? { cloudInit: raw.cloudInit } : {}),
  };
}

export interface RawUpdate {
  name?: string;
  vcpus?: number;
  memoryMib?: number;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  autoRestart?: boolean;
  /** undefined: unchanged; all fields empty: remove the seed drive. */
  cloudInit?: CloudInitSpec;
  updatePorts: boolean;
  ports: RawPort[];
}

/** Applies an UpdateVm patch to `spec` (undefined fields: unchanged); throws with every problem. */
export function validateUpdate(spec: VmSpec, u: RawUpdate, cfg: Config): VmSpec {
  const p = new Problems();
  if (u.name !== undefined) checkName(p, "name", u.name);
  checkResources(p, "", u.vcpus ?? 0, u.memoryMib ?? 0);
  if (u.vcpus === 0) p.add("vcpus", "must be between 1 and 64");
  if (u.memoryMib === 0) p.add("memory_mib", `must be between ${MIN_MEMORY} and ${MAX_MEMORY}`);
  if (u.kernel !== undefined) checkPath(p, "kernel", u.kernel, false);
  if (u.initrd !== undefined) checkPath(p, "initrd", u.initrd, false);
  if (u.cmdline !== undefined) checkCmdline(p, "cmdline", u.cmdline);
  let ports = spec.ports;
  let precondition: string | undefined;
  if (!u.updatePorts && u.ports.length > 0) p.add("ports", "is set but update_ports is false; set update_ports to replace the ports");
  if (u.updatePorts) ({ ports, precondition } = checkPorts(p, "ports", u.ports, spec.nics.map((n) => n.mode), cfg));
  if (u.cloudInit) checkCloudInit(p, "cloud_init.", u.cloudInit);
  throwAll(p, [], precondition);
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
  return next;
}

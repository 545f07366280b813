// Domain types of a VM, independent of the protobuf contract (server/rpc
// converts): the raw input the one validator (validate.ts) reads, the
// validated spec and records the daemon persists (store.ts), and the
// interfaces through which the VM manager reaches the floors it does not own
// (the QEMU runner, the vmnet networks, the forwarder: daemon.ts wires them).
import type { NetMode } from "../config/types.js";
import type { Lease } from "../net/lease-book.js";
import type { CloudInitSpec, ExtraDisk, ImageSpecFields } from "../image/spec.js";
import type { NetworkAttachment } from "../net/types.js";

/** Transport protocol of a port mapping. */
export type Protocol = "tcp" | "udp";

/** A validated port mapping: host address:port -> guest port of one NIC. */
export interface PortSpec {
  protocol: Protocol;
  hostAddress: string;
  hostPort: number;
  vmPort: number;
  /** NIC whose lease (or netdev) the port goes to; absent in records written before ports named NICs: 0. */
  nicIndex?: number;
  /** Forwarded modes: "userspace" or "nat"; absent: the daemon's `[forward] default_path` when the rule is applied. */
  path?: "userspace" | "nat";
  /** Forwarded modes, userspace TCP: a PROXY protocol v2 header first. */
  proxyProtocol?: boolean;
}

/** A validated NIC: its mode and the one option that mode takes. */
export interface NicSpec {
  mode: NetMode;
  /** bridge and tap modes (resolved to the default bridge at creation). */
  bridge?: string;
  macvtapParent?: string;
  networkId?: string;
  customNetdev?: string;
}

/**
 * A validated VM configuration, defaults filled in (vm.json `spec`); the
 * image, disks and cloud-init fields come from ImageSpecFields.
 */
export interface VmSpec extends ImageSpecFields {
  name: string;
  vcpus: number;
  memoryMib: number;
  kernel: string;
  initrd: string;
  cmdline: string;
  disk: string;
  nics: NicSpec[];
  ports: PortSpec[];
  autoRestart: boolean;
  /** Labels (labels.ts); absent: none (records written before labels existed have none). */
  labels?: Record<string, string>;
}

/** Lifecycle state of a VM. */
export type VmStatus = "stopped" | "starting" | "running" | "stopping" | "exited";

/** vm.json: identity and desired configuration. */
export interface VmRecord {
  version: 1;
  id: string;
  createdAt: string;
  spec: VmSpec;
  /** Deterministic MAC per NIC, fixed at creation. */
  macs: string[];
}

/** runtime.json: what the runner last knew about the QEMU process. */
export interface VmRuntime {
  version: 1;
  status: VmStatus;
  instanceId: string;
  pid?: number;
  /** Process start time (clock ticks since boot, /proc/PID/stat field 22): guards against PID reuse. */
  pidStartTime?: number;
  startedAt?: string;
  /** Host interfaces created for this run (TAP, macvtap), for cleanup. */
  hostInterfaces?: string[];
  /** passt process of this run. */
  passtPid?: number;
  passtStartTime?: number;
}

/** leases.json entries: each NIC's lease and what the wire says of it (server/net/lease-book.ts). */
export type LeaseRecord = Lease;

/** One entry of a VM's event log (events.jsonl). */
export interface VmEventRecord {
  time: string;
  kind: string;
  message: string;
}

/** Everything known about one VM, as GetInfo reports it. */
export interface VmView {
  record: VmRecord;
  runtime: VmRuntime;
  leases: LeaseRecord[];
  events: VmEventRecord[];
}

// ----- raw input ------------------------------------------------------------

/** A port mapping as it arrives from the API; an unknown protocol enum as "?N". */
export interface RawPort {
  protocol: string | undefined;
  hostAddress: string;
  hostPort: number;
  vmPort: number;
  /** NIC the port goes to (0 when omitted). */
  nicIndex: number;
  /** "userspace", "nat", undefined (the daemon's default) or "?N" (an unknown enum value). */
  path: string | undefined;
  proxyProtocol: boolean;
}

/** A NIC as it arrives from the API; unset strings are "", an unknown mode "?N". */
export interface RawNic {
  mode: string | undefined;
  bridge: string;
  macvtapParent: string;
  networkId: string;
  customNetdev: string;
}

/** CreateVm's config as it arrives from the API (proto3 zero values for unset fields). */
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
  labels: Record<string, string>;
}

/** UpdateVm's patch: undefined fields are left unchanged. */
export interface RawUpdate {
  name?: string;
  vcpus?: number;
  memoryMib?: number;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  autoRestart?: boolean;
  updatePorts: boolean;
  ports: RawPort[];
  /** undefined: unchanged; all fields empty: remove the seed drive. */
  cloudInit?: CloudInitSpec;
  /** undefined: unchanged; otherwise the complete new label set ({}: none). */
  labels?: Record<string, string>;
}

// ----- what the VM floor needs of others -------------------------------------

/** What the manager needs of the QEMU runner (runner.ts; fakes in tests). */
export interface VmRunner {
  /** Boots the VM; resolves once QEMU runs. Calls `onExit` when it exits on its own. */
  start(view: VmView, onExit: (reason: string) => void): Promise<VmRuntime>;
  /** Stops the VM (graceful unless force) and releases its host resources. */
  stop(view: VmView, opts: { force: boolean; timeoutMs: number }): Promise<void>;
  /** Re-attaches to a VM found running at daemon start; returns false if it is gone. */
  adopt(view: VmView, onExit: (reason: string) => void): Promise<boolean>;
  /** Applies new ports to a running VM that maps them natively (user, passt). */
  updatePorts?(view: VmView, ports: PortSpec[]): Promise<void>;
}

/** What the manager needs of the vmnet networks: their subnets (lease checks, existence). */
export interface NetworkLookup {
  /** IPv4 subnet of network `networkId`; undefined when there is no such network. */
  subnetOf(networkId: string): string | undefined;
  /** Subnet, bridge and gateway of network `networkId` (lease validation and verification). */
  info(networkId: string): { subnet: string; bridge: string; gateway: string } | undefined;
}

/** What the runner needs of the vmnet networks: how a NIC joins one. */
export interface NetworkAttacher {
  /** How NIC `mac` joins network `networkId`; undefined when there is no such network. */
  attachment(networkId: string, mac: string): NetworkAttachment | undefined;
}

// Domain types of a VM, independent of the protobuf contract (server/rpc
// converts). These are what the daemon persists, see store.ts.
import type { NetMode } from "../config/types.js";
import type { Lease } from "../net/lease-book.js";
import type { ImageSpecFields } from "../image/spec.js";

export type Protocol = "tcp" | "udp";

export interface PortSpec {
  protocol: Protocol;
  hostAddress: string;
  hostPort: number;
  vmPort: number;
  /** NIC whose lease (or netdev) the port goes to; absent in records written before ports named NICs: 0. */
  nicIndex?: number;
}

export interface NicSpec {
  mode: NetMode;
  /** bridge and tap modes (resolved to the default bridge at creation). */
  bridge?: string;
  macvtapParent?: string;
  networkId?: string;
  customNetdev?: string;
}

/** The desired configuration; image, disks and cloud-init fields come from ImageSpecFields. */
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
}

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

/** runtime.json: what the supervisor last knew about the QEMU process. */
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

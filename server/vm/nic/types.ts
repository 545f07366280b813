// The contract of a NIC preparer: one per networking mode (index.ts lists
// them). A preparer makes the host side of one guest NIC (a TAP on a
// bridge, a macvtap, a passt process, nothing at all for user mode) and
// returns what QEMU needs of it (its netdev and the fds to inherit), the
// host interface it created, and the step that undoes it. It reaches the
// host only through NicHost, so each mode is unit-tested with a fake host
// (nic.test.ts) and runs for real through host-linux.ts.
import type { UndoStep } from "../../cleanup.js";
import type { ProcessRef } from "../../host/process.js";
import type { NetworkAttachment } from "../../net/types.js";
import type { NicSpec as QemuNic } from "../qemu-argv.js";
import type { RunFiles } from "../store.js";
import type { NicSpec, PortSpec } from "../types.js";

/** Everything a preparer knows about the NIC it prepares. */
export interface NicContext {
  vmId: string;
  /** Position of the NIC among the VM's NICs. */
  index: number;
  /** Its deterministic MAC. */
  mac: string;
  /** Its validated spec (validate.ts). */
  nic: NicSpec;
  /** The VM's ports that name this NIC (nic_index). */
  ports: readonly PortSpec[];
  /** The number QEMU will see for the first fd this NIC passes (childFdOf(fds passed so far)). */
  firstChildFd: number;
  /** The VM's run files (passt's socket, log and pid file live there). */
  files: RunFiles;
}

/** What a preparer made. */
export interface PreparedNic {
  /** The NIC as the argv builder takes it. */
  qemu: QemuNic;
  /** fds QEMU inherits for this NIC, in order; the runner closes its copies after the spawn. */
  fds: number[];
  /** Host interface created for this NIC, "" for none (NicInfo.host_interface; deleted at stop). */
  hostInterface: string;
  /** The passt process started for this NIC, if any (recorded to find it after a restart). */
  process?: ProcessRef;
  /** Undoes what the preparer created; run LIFO when the VM stops or exits or its start fails. */
  undo?: UndoStep;
}

/** Prepares the host side of one NIC; throws a VmmError (nothing left behind) when it cannot. */
export type NicPreparer = (ctx: NicContext, host: NicHost) => Promise<PreparedNic>;

/** The host operations preparers use (host-linux.ts; fakes in tests). */
export interface NicHost {
  /** qemu-bridge-helper for bridge mode. */
  readonly bridgeHelper: string;
  /** True when interface `name` exists. */
  linkExists(name: string): Promise<boolean>;
  /** Deletes interface `name`; a missing one is not an error. */
  deleteLink(name: string): Promise<void>;
  /** Enslaves `dev` to `bridge` and brings it up. */
  addToBridge(dev: string, bridge: string): Promise<void>;
  /** Creates macvtap `name` on `parent` with `mac`, up; returns its ifindex. */
  createMacvtap(name: string, parent: string, mac: string): Promise<number>;
  /** Opens (creating) non-persistent TAP `name` with IFF_VNET_HDR; the caller owns the fd. */
  openTap(name: string): number;
  /** Opens /dev/tap<ifindex>; the caller owns the fd. */
  openMacvtap(ifindex: number): number;
  /** Closes an fd of openTap/openMacvtap/networkAttachment. */
  closeFd(fd: number): void;
  /** Starts passt serving `files.passtSock` with `ports`; resolves once the socket exists. */
  startPasst(files: RunFiles, ports: readonly PortSpec[]): Promise<ProcessRef>;
  /** Stops a process started by startPasst. */
  stopProcess(ref: ProcessRef): Promise<void>;
  /** How a NIC with `mac` joins vmnet network `networkId`; undefined for an unknown network. */
  networkAttachment(networkId: string, mac: string): NetworkAttachment | undefined;
}

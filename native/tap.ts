// Typed surface of the TAP / macvtap part of the native addon
// (native/src/linux/tap.cc). Linux only.
//
// Fd ownership: every fd returned here belongs to the caller, who must
// release it with closeFd(). To give one to QEMU, list it in the `stdio`
// array of child_process.spawn after stdin/stdout/stderr: the entry at index
// 3 becomes the child's fd 3, index 4 fd 4, and so on (server/host/process.ts
// spawnDetached({ extraFds }) does that; its FIRST_INHERITED_FD is 3). The child gets its own dup2()'d copy, so close
// the daemon's copy right after the spawn: a non-persistent TAP then lives
// exactly as long as QEMU holds it.
import { loadNative } from "./index.js";

export interface OpenTapOptions {
  /** IFF_VNET_HDR: frames carry a virtio-net header (QEMU `vnet_hdr=on`); also enables checksum/TSO offloads. */
  vnetHdr: boolean;
  /** IFF_MULTI_QUEUE (one fd per queue). */
  multiQueue?: boolean;
}

export interface TapFd {
  fd: number;
  /** The interface's name (the kernel's choice when "" was asked). */
  name: string;
}

export interface MacvtapFd {
  fd: number;
  /** /dev/tapN, N being the macvtap's ifindex. */
  path: string;
}

interface TapNative {
  openTap(name: string, opts: OpenTapOptions): TapFd;
  openMacvtap(ifindex: number): MacvtapFd;
  closeFd(fd: number): void;
}

function native(): TapNative {
  // native/index.ts declares only the common surface; tap.cc adds these.
  return loadNative() as unknown as TapNative;
}

/**
 * Opens /dev/net/tun attached to TAP interface `name` ("" for the kernel's
 * choice), creating it if needed (IFF_TAP | IFF_NO_PI, not persistent: it
 * vanishes with its last fd). The fd is close-on-exec and non-blocking.
 * Throws an Error naming the syscall and errno (`code`, `errno`, `syscall`
 * set), or a "Usage: ..." TypeError for bad arguments.
 */
export function openTap(name: string, opts: OpenTapOptions): TapFd {
  return native().openTap(name, opts);
}

/** Opens /dev/tap<ifindex> of a macvtap interface (creating the node if /dev lacks it). */
export function openMacvtap(ifindex: number): MacvtapFd {
  return native().openMacvtap(ifindex);
}

/** Closes an fd returned by openTap/openMacvtap. */
export function closeFd(fd: number): void {
  native().closeFd(fd);
}

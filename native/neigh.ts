// Typed surface of the neighbour / ARP part of the native addon
// (native/src/linux/neigh.cc). Linux only. No fd crosses this boundary: each
// call opens and closes its own socket.
import { loadNative } from "./index.js";

/** One kernel neighbour table entry. */
export interface NeighbourEntry {
  /** Link-layer address; empty while unresolved (INCOMPLETE, FAILED). */
  lladdr: Buffer;
  /** NUD_* bits (linux/neighbour.h). */
  state: number;
}

interface NeighNative {
  neighbourGet(ifname: string, ipv4: Buffer): NeighbourEntry | null;
  arpExchange(ifname: string, frame: Buffer, match: Buffer | null, timeoutMs: number): Promise<Buffer[]>;
}

function native(): NeighNative {
  // native/index.ts declares only the common surface; neigh.cc adds these.
  return loadNative() as unknown as NeighNative;
}

/**
 * The kernel's neighbour entry of IPv4 address `ipv4` (4 bytes) on
 * interface `ifname` (RTM_GETNEIGH), or null when it has none. Synchronous
 * and fast (one netlink round trip). Throws an Error naming the syscall.
 */
export function neighbourGet(ifname: string, ipv4: Buffer): NeighbourEntry | null {
  return native().neighbourGet(ifname, ipv4);
}

/**
 * Sends `frame` (an Ethernet frame carrying ARP) on `ifname` and resolves
 * with the ARP frames the interface receives within `timeoutMs` (at most
 * 64; frames queued by then count even when the waiting thread starts
 * later, all of libuv's pool being busy). With `match` (sender MAC +
 * sender IPv4, 10 bytes) it resolves as soon as that sender's reply
 * arrives: at once when the reply was queued by the time the frame was
 * sent (no thread involved), else from a worker thread that waits for it.
 * Needs CAP_NET_RAW; rejects with an Error naming the syscall otherwise.
 */
export function arpExchange(ifname: string, frame: Buffer, match: Buffer | null, timeoutMs: number): Promise<Buffer[]> {
  return native().arpExchange(ifname, frame, match, timeoutMs);
}

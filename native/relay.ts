// Typed surface of the splice relay in native/src/linux/relay.cc.
//
// fd ownership: relayListen creates, binds and listens on its socket itself
// and hands it to the relay's epoll thread; JavaScript never sees a raw fd.
// relayClose is the only way to close it (and every connection accepted on it).
import { loadNative } from "./index.js";

export interface RelayListenOptions {
  listenAddress: string;
  /** 0 picks a free port; the bound port is returned. */
  listenPort: number;
  targetAddress: string;
  targetPort: number;
  /** Deadline of the non-blocking connect to the target; then the client gets an RST. */
  connectTimeoutMs: number;
  /** Connections accepted beyond this many active ones are reset at once. */
  maxConnections: number;
}

export interface RelayCounters {
  connectionsActive: number;
  connectionsTotal: number;
  bytesToGuest: number;
  bytesFromGuest: number;
  errors: number;
}

export interface NativeRelay {
  /** Throws unless splice(2) works socket -> pipe -> socket on this kernel. */
  relayProbe(): void;
  /**
   * Binds and listens synchronously. Throws an Error carrying Node-style
   * `errno` (negative) and `syscall` ("bind", "listen", "socket") on failure.
   */
  relayListen(opts: RelayListenOptions): { id: number; port: number };
  /** Closes the listener and resets all its connections before returning. Idempotent. */
  relayClose(id: number): void;
  /** New connections go to the new target; connections to the old target are reset. */
  relayRetarget(id: number, targetAddress: string, targetPort: number): void;
  /** Counters of a live listener; undefined once closed. Synchronous (atomics). */
  relayStats(id: number): RelayCounters | undefined;
}

/** Loads the addon (throws NativeLoadError listing the paths tried) and checks it has the relay. */
export function loadRelay(): NativeRelay {
  const n = loadNative() as unknown as Partial<NativeRelay>;
  if (typeof n.relayListen !== "function" || typeof n.relayProbe !== "function") {
    throw new Error("vmm native addon has no splice relay (built for another platform?)");
  }
  return n as NativeRelay;
}

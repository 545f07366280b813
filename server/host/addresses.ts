// Addresses this host holds (every interface of the daemon's network
// namespace). Lease reports naming one of them are refused: a forwarded
// port must never be pointed back at the host itself.
import { networkInterfaces } from "node:os";

let cache: { at: number; byIp: Map<string, string> } | undefined;

/** The interface holding `ip` on this host, or undefined; the table is re-read at most every `ttlMs`. */
export function hostInterfaceOf(ip: string, ttlMs = 2000): string | undefined {
  if (!cache || Date.now() - cache.at > ttlMs) {
    const byIp = new Map<string, string>();
    for (const [name, addrs] of Object.entries(networkInterfaces())) for (const a of addrs ?? []) byIp.set(a.address, name);
    cache = { at: Date.now(), byIp };
  }
  return cache.byIp.get(ip);
}

// Addresses this host holds (every interface of the daemon's network
// namespace). Lease reports naming one of them are refused: a forwarded
// port must never be pointed back at the host itself.
//
// os.networkInterfaces() lists only interfaces that are up and running, so
// an address on a bridge without carrier (one with a MAC of its own and no
// port yet) would be missed; on Linux the kernel's local routes
// (/proc/net/fib_trie) add every IPv4 address, whatever its interface's
// state. Leases are IPv4 only (lease-report.ts), so IPv6 needs no more.
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";

let cache: { at: number; byIp: Map<string, string> } | undefined;

/** The interface holding `ip` on this host (or "a local route"), or undefined; the table is re-read at most every `ttlMs`. */
export function hostInterfaceOf(ip: string, ttlMs = 2000): string | undefined {
  if (!cache || Date.now() - cache.at > ttlMs) {
    const byIp = new Map<string, string>();
    for (const [name, addrs] of Object.entries(networkInterfaces())) for (const a of addrs ?? []) byIp.set(a.address, name);
    if (process.platform === "linux") {
      for (const addr of localIpv4(readProc("/proc/net/fib_trie"))) if (!byIp.has(addr)) byIp.set(addr, "a local route");
    }
    cache = { at: Date.now(), byIp };
  }
  return cache.byIp.get(ip);
}

function readProc(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** IPv4 addresses with a /32 host LOCAL route in /proc/net/fib_trie text (the host's own addresses). */
export function localIpv4(fibTrie: string): string[] {
  const out = new Set<string>();
  let last = "";
  for (const line of fibTrie.split("\n")) {
    const leaf = /^\s*\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line);
    if (leaf) last = leaf[1]!;
    else if (last && /^\s*\/32 host LOCAL$/.test(line)) out.add(last);
  }
  return [...out];
}

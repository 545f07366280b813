// Addresses this host holds (every interface of the daemon's network
// namespace). Lease reports naming one of them are refused: a forwarded
// port must never be pointed back at the host itself.
//
// os.networkInterfaces() lists only interfaces that are up and running, so
// an address on a bridge without carrier (one with a MAC of its own and no
// port yet) would be missed; on Linux the kernel's local routes
// (/proc/net/fib_trie: IPv4) and /proc/net/if_inet6 (IPv6) add every
// address, whatever its interface's state.
import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";

let cache: { at: number; byIp: Map<string, string> } | undefined;

/** The interface holding `ip` on this host (or "a local route"), or undefined; the table is re-read at most every `ttlMs`. */
export function hostInterfaceOf(ip: string, ttlMs = 2000): string | undefined {
  if (!cache || Date.now() - cache.at > ttlMs) {
    const byIp = new Map<string, string>();
    for (const [name, addrs] of Object.entries(networkInterfaces())) for (const a of addrs ?? []) byIp.set(a.address, name);
    if (process.platform === "linux") {
      for (const [addr, name] of inet6Addresses(readProc("/proc/net/if_inet6"))) if (!byIp.has(addr)) byIp.set(addr, name);
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

/** [address, interface] pairs of /proc/net/if_inet6 text, addresses in Node's compressed form. */
export function inet6Addresses(ifInet6: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of ifInet6.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !/^[0-9a-f]{32}$/.test(f[0]!)) continue;
    const groups = f[0]!.match(/.{4}/g)!.map((g) => parseInt(g, 16).toString(16));
    out.push([compress(groups), f[5]!]);
  }
  return out;
}

/** RFC 5952 text of eight hex groups: the longest run of two or more zero groups becomes "::". */
function compress(groups: string[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

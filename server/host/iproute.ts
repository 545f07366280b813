// iproute2 (`ip`) as a library: pure argv builders plus one runner.
//
// Why every value is validated: the runner spawns `ip` without a shell, so
// nothing can split or chain commands, but `ip` itself reads its argv as
// keywords. An interface name like "dev" or "br0 master x" (one argv
// element containing a space is harmless, yet a *name* equal to a keyword
// is not) would be read as a different command, so names must match a
// strict pattern, addresses must be IP literals with a prefix length, MACs
// must be MACs. Names are also limited to IFNAMSIZ-1 = 15 bytes.
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { IFNAME_RE, normalizeMac } from "../check.js";
import { Problems, VmmError, type ErrorKind } from "../errors.js";
import { runProgram } from "./exec.js";

/** The `ip` binary; absolute path to not depend on PATH when set. */
export const IP_BIN = process.env.VMM_IP_BIN ?? "ip";

// Words `ip link` would parse as keywords if they stood where a name is expected.
const KEYWORDS = new Set(["dev", "name", "type", "link", "up", "down", "master", "nomaster", "address", "mode", "netns", "help", "peer", "all", "group"]);

/** Throws a ValidationError naming `field` unless `name` is a safe interface name. */
export function checkIfName(name: string, field = "name"): void {
  const p = new Problems();
  if (!IFNAME_RE.test(name) || KEYWORDS.has(name)) {
    p.add(field, `must be an interface name (${IFNAME_RE.source}, not an ip keyword), got "${name}"`);
  }
  p.throwIfAny();
}

function checkCidr(cidr: string, field: string): void {
  const p = new Problems();
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  const fam = m ? isIP(m[1]!) : 0;
  if (!m || fam === 0 || Number(m[2]) > (fam === 4 ? 32 : 128)) p.add(field, `must be an address with prefix like 10.0.0.1/24, got "${cidr}"`);
  p.throwIfAny();
}

function checkMac(mac: string, field: string): string {
  const n = normalizeMac(mac);
  if (n === null) {
    const p = new Problems();
    p.add(field, `must be a MAC, got "${mac}"`);
    p.throwIfAny();
  }
  return n!;
}

/**
 * The fixed MAC of bridge `name`: locally administered, unicast, derived
 * from the name (the same bridge gets the same MAC on every host start).
 * A bridge without an address of its own takes the lowest MAC of its ports
 * and changes it whenever a TAP comes or goes; every guest that cached the
 * old one then answers into the void until its ARP entry expires.
 */
export function bridgeMac(name: string): string {
  const h = createHash("sha256").update(`vmm-bridge:${name}`).digest();
  const b = [0x02, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** Argv builders: everything after `ip`. Each validates its inputs. */
export const ipArgv = {
  /** A bridge with the fixed MAC `mac` (bridgeMac(name) by default): setting it keeps the kernel from changing it. */
  addBridge(name: string, mac: string = bridgeMac(name)): string[] {
    checkIfName(name);
    return ["link", "add", "name", name, "address", checkMac(mac, "mac"), "type", "bridge"];
  },
  addAddress(dev: string, cidr: string): string[] {
    checkIfName(dev, "dev");
    checkCidr(cidr, "address");
    return ["addr", "add", cidr, "dev", dev];
  },
  setUp(dev: string): string[] {
    checkIfName(dev, "dev");
    return ["link", "set", "dev", dev, "up"];
  },
  /** Enslaves `dev` to bridge `master` (adds a port to the bridge). */
  setMaster(dev: string, master: string): string[] {
    checkIfName(dev, "dev");
    checkIfName(master, "master");
    return ["link", "set", "dev", dev, "master", master];
  },
  addVethPair(name: string, peer: string): string[] {
    checkIfName(name);
    checkIfName(peer, "peer");
    return ["link", "add", "name", name, "type", "veth", "peer", "name", peer];
  },
  /** A macvtap in bridge mode on `parent` whose MAC is `mac` (it must equal the guest's). */
  addMacvtap(name: string, parent: string, mac: string): string[] {
    checkIfName(name);
    checkIfName(parent, "parent");
    const m = checkMac(mac, "mac");
    return ["link", "add", "link", parent, "name", name, "address", m, "type", "macvtap", "mode", "bridge"];
  },
  /** Moves `dev` into the network namespace of process `pid`. */
  setNetnsPid(dev: string, pid: number): string[] {
    checkIfName(dev, "dev");
    if (!Number.isInteger(pid) || pid < 1) throw new VmmError("invalid", `pid must be a positive integer, got ${pid}`);
    return ["link", "set", "dev", dev, "netns", String(pid)];
  },
  deleteLink(dev: string): string[] {
    checkIfName(dev, "dev");
    return ["link", "del", "dev", dev];
  },
};

/** Options of runIp and the helpers built on it. */
export interface RunIpOptions {
  /** Kill `ip` after this long (default 10 s). */
  timeoutMs?: number;
  /** Prefix argv, e.g. ["nsenter", "--net=/proc/PID/ns/net", "--"]: run `ip` through it. */
  wrapper?: string[];
}

/** Maps `ip`'s error text to a domain kind. */
function kindOf(stderr: string): ErrorKind {
  if (/File exists/i.test(stderr)) return "exists";
  if (/Cannot find device|does not exist|No such device/i.test(stderr)) return "not_found";
  if (/Operation not permitted|Permission denied/i.test(stderr)) return "permission";
  if (/Device or resource busy|Address already in use/i.test(stderr)) return "unavailable";
  return "internal";
}

/**
 * Runs `ip ARGS` (no shell) and returns its stdout. On failure throws a
 * VmmError "ip ARGS failed: <stderr>" with a kind from the message.
 */
export function runIp(args: string[], opts: RunIpOptions = {}): Promise<string> {
  return runProgram([...(opts.wrapper ?? []), IP_BIN, ...args], { timeoutMs: opts.timeoutMs, kindOf });
}

/** Creates bridge `name`, gives it `cidr` when set, and brings it up. Removes it again if a later step fails. */
export async function createBridge(name: string, cidr?: string, opts?: RunIpOptions): Promise<void> {
  const steps = [ipArgv.addBridge(name), ...(cidr !== undefined ? [ipArgv.addAddress(name, cidr)] : []), ipArgv.setUp(name)];
  await runIp(steps[0]!, opts);
  try {
    for (const s of steps.slice(1)) await runIp(s, opts);
  } catch (e) {
    await runIp(ipArgv.deleteLink(name), opts).catch(() => undefined);
    throw e;
  }
}

/** Brings link `dev` up (`ip link set dev DEV up`). */
export const setLinkUp = (dev: string, opts?: RunIpOptions) => runIp(ipArgv.setUp(dev), opts).then(() => undefined);
/** Adds `dev` to bridge `bridge` and brings it up. */
export async function addToBridge(dev: string, bridge: string, opts?: RunIpOptions): Promise<void> {
  await runIp(ipArgv.setMaster(dev, bridge), opts);
  await runIp(ipArgv.setUp(dev), opts);
}

/**
 * Creates macvtap `name` (mode bridge) on `parent` with MAC `mac`, brings
 * it up and returns its ifindex (for openMacvtap). Removes it if bringing
 * it up fails.
 */
export async function createMacvtap(name: string, parent: string, mac: string, opts?: RunIpOptions): Promise<number> {
  await runIp(ipArgv.addMacvtap(name, parent, mac), opts);
  try {
    await runIp(ipArgv.setUp(name), opts);
    return await getIfindex(name, opts);
  } catch (e) {
    await runIp(ipArgv.deleteLink(name), opts).catch(() => undefined);
    throw e;
  }
}

/**
 * ifindex of `name`, asked through `ip` (netlink) rather than /sys/class/net,
 * which shows the namespace that mounted sysfs, not necessarily ours.
 */
export async function getIfindex(name: string, opts?: RunIpOptions): Promise<number> {
  checkIfName(name);
  const out = await runIp(["-o", "link", "show", "dev", name], opts);
  const m = /^(\d+):/.exec(out);
  if (!m) throw new VmmError("internal", `ip -o link show dev ${name}: unexpected output "${out.slice(0, 80)}"`);
  return Number(m[1]);
}

/** True when interface `name` exists in the namespace `ip` runs in. */
export async function linkExists(name: string, opts?: RunIpOptions): Promise<boolean> {
  try {
    await getIfindex(name, opts);
    return true;
  } catch (e) {
    if (e instanceof VmmError && e.kind === "not_found") return false;
    throw e;
  }
}

/** Deletes interface `dev`. With `ignoreMissing`, a missing one is not an error (cleanup paths). */
export async function deleteLink(dev: string, opts: RunIpOptions & { ignoreMissing?: boolean } = {}): Promise<void> {
  try {
    await runIp(ipArgv.deleteLink(dev), opts);
  } catch (e) {
    if (opts.ignoreMissing && e instanceof VmmError && e.kind === "not_found") return;
    throw e;
  }
}

/** An address range the host already uses, as text ("10.0.0.5/24", "fd00::/64"). */
export interface HostRange {
  /** Address with prefix length, or a route destination (a bare address is one host). */
  text: string;
  /** For messages, e.g. "address 10.0.0.5/24 on eth0" or "route 10.96.0.0/12 dev cni0". */
  what: string;
}

/**
 * Every address range the host (this network namespace) uses: each address
 * with its prefix length, and on Linux the destination of each route in
 * every table, the default routes left out (they cover everything). Parsed
 * into prefixes by net/host-prefixes.ts.
 */
export async function hostRanges(opts?: RunIpOptions): Promise<HostRange[]> {
  const out: HostRange[] = [];
  if (process.platform !== "linux") {
    for (const [ifname, addrs] of Object.entries(networkInterfaces())) {
      for (const a of addrs ?? []) {
        if (a.cidr !== null) out.push({ text: a.cidr, what: `address ${a.cidr} on ${ifname}` });
      }
    }
    return out;
  }
  // `ip addr`, not os.networkInterfaces(): that one skips interfaces without
  // carrier (a bridge with a MAC of its own and no port yet), whose
  // addresses are the host's all the same.
  const links = JSON.parse(await runIp(["-j", "addr", "show"], opts)) as { ifname?: string; addr_info?: { local?: string; prefixlen?: number }[] }[];
  for (const l of links) {
    for (const a of l.addr_info ?? []) {
      if (a.local === undefined || a.prefixlen === undefined) continue;
      const cidr = `${a.local}/${a.prefixlen}`;
      out.push({ text: cidr, what: `address ${cidr} on ${l.ifname ?? "?"}` });
    }
  }
  for (const family of ["-4", "-6"]) {
    const routes = JSON.parse(await runIp(["-j", family, "route", "show", "table", "all"], opts)) as { dst?: string; dev?: string; type?: string }[];
    for (const r of routes) {
      if (r.dst === undefined || r.dst === "default") continue;
      out.push({ text: r.dst, what: `route ${r.type && r.type !== "unicast" ? `${r.type} ` : ""}${r.dst}${r.dev ? ` dev ${r.dev}` : ""}` });
    }
  }
  return out;
}

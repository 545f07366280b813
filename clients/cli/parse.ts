// Pure parsers for vmm-cli flag values. Each returns either a value or a
// list of problems naming the flag and the offending value, so one run
// reports every bad flag at once instead of stopping at the first.
//
// Why be strict here although the daemon validates too: a typo such as
// `--port tcp:8080:80x` must not reach the daemon as a half-parsed request,
// and the user should see which flag was wrong in their own terms (flag and
// value), not the proto field path.
import { isIPv4, isIPv6 } from "node:net";
import { NET_MODES, type NetMode } from "../../server/config/types.js";

/** Transport protocols of a `--port` flag, as typed on the command line. */
export type ProtocolName = "tcp" | "udp";

/** One parsed `--port PROTO[:ADDR]:HOST:VM[,OPTION...]` flag. */
export interface PortSpec {
  protocol: ProtocolName;
  /** "" means the daemon's default (127.0.0.1). */
  hostAddress: string;
  hostPort: number;
  vmPort: number;
  /** `nic=N`: the NIC whose lease the port follows (0 when not given). */
  nicIndex?: number;
  /** `path=userspace|nat`: how the port is forwarded (the daemon's default when not given). */
  path?: "userspace" | "nat";
  /** `proxy`: a PROXY protocol v2 header first (userspace TCP). */
  proxyProtocol?: boolean;
}

/**
 * One parsed `--net MODE[:ARG]` flag; the fields other than `mode` are "" unless the mode takes
 * them.
 */
export interface NicSpec {
  mode: NetMode;
  bridge: string;
  macvtapParent: string;
  networkId: string;
  customNetdev: string;
}

/**
 * A parse result: the value, or every problem found (each naming the flag and the value) so one run
 * reports them all.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; problems: string[] };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(problems: string[]): Parsed<T> => ({ ok: false, problems });

/** Quotes a user value for a message, cut to a readable length. */
export function quote(v: string): string {
  return JSON.stringify(v.length > 80 ? v.slice(0, 80) + "…" : v);
}

/** A decimal integer within [min, max]; no signs, exponents, hex or blanks. */
export function parseUint(flag: string, v: string, min: number, max: number): Parsed<number> {
  if (!/^[0-9]+$/.test(v)) return fail([`${flag} ${quote(v)}: must be an integer ${min}-${max}`]);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) return fail([`${flag} ${quote(v)}: must be an integer ${min}-${max}`]);
  return ok(n);
}

function port(flag: string, spec: string, what: string, v: string, problems: string[]): number {
  if (!/^[0-9]+$/.test(v) || Number(v) < 1 || Number(v) > 65535) {
    problems.push(`${flag} ${quote(spec)}: ${what} ${quote(v)} must be an integer 1-65535`);
    return 0;
  }
  return Number(v);
}

/**
 * `proto[:addr]:host:vm[,option...]`, e.g. `tcp:8080:80`,
 * `udp:127.0.0.1:5353:53`, `tcp:[::1]:8080:80` (IPv6 listen addresses in
 * brackets), `tcp:8080:80,nic=1,path=nat`, `tcp:8443:443,proxy`. Options:
 * `nic=N`, `path=userspace|nat`, `proxy`.
 */
export function parsePort(spec: string, flag = "--port"): Parsed<PortSpec> {
  const problems: string[] = [];
  const [mapping = "", ...options] = spec.split(",");
  const extra: Pick<PortSpec, "nicIndex" | "path" | "proxyProtocol"> = {};
  for (const o of options) {
    const [key, value] = o.includes("=") ? [o.slice(0, o.indexOf("=")), o.slice(o.indexOf("=") + 1)] : [o, undefined];
    if (key === "nic" && value !== undefined) {
      if (!/^[0-9]{1,2}$/.test(value)) problems.push(`${flag} ${quote(spec)}: nic ${quote(value)} must be a NIC index (0, 1, ...)`);
      else extra.nicIndex = Number(value);
    } else if (key === "path" && value !== undefined) {
      if (value !== "userspace" && value !== "nat") problems.push(`${flag} ${quote(spec)}: path ${quote(value)} must be userspace or nat`);
      else extra.path = value;
    } else if (key === "proxy" && value === undefined) {
      extra.proxyProtocol = true;
    } else {
      problems.push(`${flag} ${quote(spec)}: unknown option ${quote(o)} (nic=N, path=userspace|nat, proxy)`);
    }
  }
  const m = /^([^:]*):(?:(\[[^\]]*\]|[^:]*):)?([^:]*):([^:]*)$/.exec(mapping);
  if (!m) return fail([`${flag} ${quote(spec)}: expected PROTO[:ADDR]:HOST_PORT:VM_PORT[,OPTION...], e.g. tcp:8080:80 or udp:127.0.0.1:5353:53`, ...problems]);
  const [, proto, rawAddr, host, vm] = m as unknown as [string, string, string | undefined, string, string];
  const protocol = proto.toLowerCase();
  if (protocol !== "tcp" && protocol !== "udp") problems.push(`${flag} ${quote(spec)}: protocol ${quote(proto)} must be tcp or udp`);
  let hostAddress = "";
  if (rawAddr !== undefined) {
    const addr = rawAddr.startsWith("[") ? rawAddr.slice(1, -1) : rawAddr;
    if (rawAddr.startsWith("[") ? !isIPv6(addr) : !isIPv4(addr)) {
      problems.push(`${flag} ${quote(spec)}: address ${quote(rawAddr)} must be an IPv4 address or a bracketed IPv6 address`);
    }
    hostAddress = addr;
  }
  const hostPort = port(flag, spec, "host port", host, problems);
  const vmPort = port(flag, spec, "VM port", vm, problems);
  if (problems.length > 0) return fail(problems);
  return ok({ protocol: protocol as ProtocolName, hostAddress, hostPort, vmPort, ...extra });
}

const NET_KEYS: Record<string, keyof Omit<NicSpec, "mode">> = {
  bridge: "bridge",
  parent: "macvtapParent",
  network: "networkId",
  netdev: "customNetdev",
};

/**
 * `MODE[,bridge=BR][,parent=DEV][,network=ID][,netdev=...]`. `netdev=` takes
 * the rest of the value verbatim (a QEMU -netdev value contains commas), so
 * it must come last.
 */
export function parseNet(spec: string, flag = "--net"): Parsed<NicSpec> {
  const problems: string[] = [];
  let rest = spec;
  let netdev: string | undefined;
  const nd = /(^|,)netdev=/.exec(spec);
  if (nd) {
    netdev = spec.slice(nd.index + nd[0].length);
    rest = spec.slice(0, nd.index);
  }
  const parts = rest.split(",");
  const modeText = parts.shift()!;
  const mode = modeText.toLowerCase();
  if (!(NET_MODES as readonly string[]).includes(mode)) {
    problems.push(`${flag} ${quote(spec)}: mode ${quote(modeText)} must be one of ${NET_MODES.join(", ")}`);
  }
  const nic: NicSpec = { mode: mode as NetMode, bridge: "", macvtapParent: "", networkId: "", customNetdev: netdev ?? "" };
  const seen = new Set<string>(netdev !== undefined ? ["netdev"] : []);
  for (const part of parts) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    const field = NET_KEYS[key];
    if (eq < 0 || field === undefined) {
      problems.push(`${flag} ${quote(spec)}: ${quote(part)} is not KEY=VALUE with KEY one of ${Object.keys(NET_KEYS).join(", ")}`);
      continue;
    }
    if (seen.has(key)) problems.push(`${flag} ${quote(spec)}: ${key}= given twice`);
    seen.add(key);
    const value = part.slice(eq + 1);
    if (value === "") problems.push(`${flag} ${quote(spec)}: ${key}= needs a value`);
    nic[field] = value;
  }
  if (netdev === "") problems.push(`${flag} ${quote(spec)}: netdev= needs a value`);
  // Options that the mode ignores are almost certainly a mistake.
  const allowed: Record<NetMode, string[]> = {
    user: [],
    passt: [],
    bridge: ["bridge"],
    tap: ["bridge"],
    macvtap: ["parent"],
    vmnet: ["network"],
    custom: ["netdev"],
  };
  if (problems.length === 0) {
    for (const key of seen) {
      if (!allowed[nic.mode].includes(key)) problems.push(`${flag} ${quote(spec)}: ${key}= does not apply to mode ${nic.mode}`);
    }
    if (nic.mode === "vmnet" && nic.networkId === "") problems.push(`${flag} ${quote(spec)}: mode vmnet needs network=ID`);
    if (nic.mode === "custom" && nic.customNetdev === "") problems.push(`${flag} ${quote(spec)}: mode custom needs netdev=VALUE (last)`);
  }
  if (problems.length > 0) return fail(problems);
  return ok(nic);
}

/** `MAC=IP` for `network create --reserve`. */
export function parseReservation(spec: string, flag = "--reserve"): Parsed<{ mac: string; ipv4: string }> {
  const eq = spec.indexOf("=");
  if (eq < 0) return fail([`${flag} ${quote(spec)}: expected MAC=IPV4, e.g. 52:54:00:12:34:56=192.168.128.10`]);
  const mac = spec.slice(0, eq);
  const ipv4 = spec.slice(eq + 1);
  const problems: string[] = [];
  if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/.test(mac)) problems.push(`${flag} ${quote(spec)}: ${quote(mac)} is not a MAC address (xx:xx:xx:xx:xx:xx)`);
  if (!isIPv4(ipv4)) problems.push(`${flag} ${quote(spec)}: ${quote(ipv4)} is not an IPv4 address`);
  return problems.length > 0 ? fail(problems) : ok({ mac: mac.toLowerCase(), ipv4 });
}

const TRUE = new Set(["true", "on", "yes", "1"]);
const FALSE = new Set(["false", "off", "no", "0"]);

/** true|false (also on/off, yes/no, 1/0). */
export function parseBool(flag: string, v: string): Parsed<boolean> {
  const l = v.toLowerCase();
  if (TRUE.has(l)) return ok(true);
  if (FALSE.has(l)) return ok(false);
  return fail([`${flag} ${quote(v)}: must be true or false (or on/off)`]);
}

/** Parses every value with `f`, joining all problems. */
export function parseAll<T>(values: readonly string[], f: (v: string) => Parsed<T>): Parsed<T[]> {
  const out: T[] = [];
  const problems: string[] = [];
  for (const v of values) {
    const r = f(v);
    if (r.ok) out.push(r.value);
    else problems.push(...r.problems);
  }
  return problems.length > 0 ? fail(problems) : ok(out);
}

const UNITS: Record<string, number> = { "": 1, M: 1, MB: 1, MIB: 1, G: 1024, GB: 1024, GIB: 1024, T: 1024 * 1024, TB: 1024 * 1024, TIB: 1024 * 1024 };

/** A disk size in MiB: "512M", "10G", "1T" (binary units; a bare number is MiB). */
export function parseSize(flag: string, v: string): Parsed<number> {
  const m = /^([0-9]+)\s*([A-Za-z]*)$/.exec(v);
  const unit = m ? UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || unit === undefined) return fail([`${flag} ${quote(v)}: expected a size such as 512M, 10G or 1T`]);
  const mib = Number(m[1]) * unit;
  if (!Number.isSafeInteger(mib) || mib < 1 || mib > 16 * 1024 * 1024) return fail([`${flag} ${quote(v)}: must be between 1M and 16T`]);
  return ok(mib);
}

/** `--add-disk`: SIZE (a blank disk) or IMAGE[:SIZE] (an overlay of an image). */
export function parseDisk(spec: string, flag = "--add-disk"): Parsed<{ image: string; sizeMib: number }> {
  if (/^[0-9]+\s*[A-Za-z]*$/.test(spec) && !spec.includes(":")) {
    const size = parseSize(flag, spec);
    if (size.ok) return ok({ image: "", sizeMib: size.value });
    if (/^[0-9]+[MGT]?i?B?$/i.test(spec)) return size;
  }
  const colon = spec.lastIndexOf(":");
  const image = colon < 0 ? spec : spec.slice(0, colon);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(image)) return fail([`${flag} ${quote(spec)}: expected SIZE (e.g. 20G) or IMAGE[:SIZE] with an image name of A-Z a-z 0-9 . _ -`]);
  if (colon < 0) return ok({ image, sizeMib: 0 });
  const size = parseSize(flag, spec.slice(colon + 1));
  return size.ok ? ok({ image, sizeMib: size.value }) : size;
}

/** `network create --forward`: PROTO[:LISTEN_ADDR]:LISTEN_PORT:ADDR:PORT. */
export function parseNetworkForward(spec: string, flag = "--forward"): Parsed<{ protocol: ProtocolName; listenAddress: string; listenPort: number; internalAddress: string; internalPort: number }> {
  const m = /^([^:]*):(?:(\[[^\]]*\]|[0-9.]+):)?([^:]*):([0-9.]+):([^:]*)$/.exec(spec);
  if (!m) return fail([`${flag} ${quote(spec)}: expected PROTO[:LISTEN_ADDR]:LISTEN_PORT:ADDR:PORT, e.g. tcp:8080:192.168.140.10:80`]);
  const [, proto, rawAddr, lport, addr, iport] = m as unknown as [string, string, string | undefined, string, string, string];
  const problems: string[] = [];
  const protocol = proto.toLowerCase();
  if (protocol !== "tcp" && protocol !== "udp") problems.push(`${flag} ${quote(spec)}: protocol ${quote(proto)} must be tcp or udp`);
  let listenAddress = "";
  if (rawAddr !== undefined) {
    listenAddress = rawAddr.startsWith("[") ? rawAddr.slice(1, -1) : rawAddr;
    if (rawAddr.startsWith("[") ? !isIPv6(listenAddress) : !isIPv4(listenAddress)) problems.push(`${flag} ${quote(spec)}: listen address ${quote(rawAddr)} must be an IPv4 address or a bracketed IPv6 address`);
  }
  if (!isIPv4(addr)) problems.push(`${flag} ${quote(spec)}: ${quote(addr)} is not an IPv4 address`);
  const listenPort = port(flag, spec, "listen port", lport, problems);
  const internalPort = port(flag, spec, "port", iport, problems);
  if (problems.length > 0) return fail(problems);
  return ok({ protocol: protocol as ProtocolName, listenAddress, listenPort, internalAddress: addr, internalPort });
}

// passt (user-mode networking over a unix socket): the command line, built
// by a pure function, and the runtime directory it needs.
//
// Port forwards are passed as ONE `--tcp-ports`/`--udp-ports` argument PER
// forward. passt parses each SPEC as a comma-separated list, and with an
// address prefix ("127.0.0.1/8080:80") it accepts only one port per spec, so
// a comma-joined list breaks as soon as addresses are involved (upstream's
// port-spec bug) and grows into one unbounded argument for large lists.
//
// Why values are validated: an address or port containing "," or "~" would
// add or exclude other ports inside passt's SPEC grammar; a path containing
// a newline corrupts logs. Addresses must be IP literals, ports integers.
//
// Privileges: passt started as root drops to `nobody` (or --runas) BEFORE
// it binds its socket. If that user cannot write the socket's directory,
// passt 2023-03 still logs "UNIX domain socket bound" but the socket has no
// path. preparePasstRuntimeDir() creates a directory owned by that user,
// mode 0700, that no one else can write.
import { chownSync, chmodSync, lstatSync, mkdirSync, readFileSync } from "node:fs";
import { isIP, isIPv4 } from "node:net";
import { dirname } from "node:path";
import { IFNAME_RE, normalizeMac, pathProblem, UNIX_PATH_MAX } from "../check.js";
import { Problems, hostError } from "../errors.js";

export interface PasstPortSpec {
  protocol: "tcp" | "udp";
  /** IP literal to bind on the host; unset: every address. */
  hostAddress?: string;
  hostPort: number;
  guestPort: number;
}

export interface PasstOptions {
  /** Unix socket QEMU connects to; its directory must be writable by `runAs`. */
  socketPath: string;
  ports: PasstPortSpec[];
  /** passt writes its own PID here (--pid). */
  pidFile?: string;
  /** Log file (-l); otherwise passt logs to syslog. */
  logFile?: string;
  /** --runas user[:group]; passt's default as root is "nobody". */
  runAs?: string;
  /** IPv4 only (-4); the default. */
  ipv4Only?: boolean;
  /**
   * Host-side network identity. passt copies it from the interface of the
   * default route; a host without one (a private test namespace) must give
   * all of interface, address, prefix length, gateway and MAC.
   */
  interface?: string;
  address?: string;
  prefixLength?: number;
  gateway?: string;
  /** MAC passt uses as its own (the guest's gateway MAC). */
  macAddr?: string;
  /** Do not send DNS servers / search list in DHCP. Default true. */
  noDhcpDns?: boolean;
  /** Disable ICMP handling. */
  noIcmp?: boolean;
}

const USER_RE = /^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$|^[0-9]{1,10}(:[0-9]{1,10})?$/;

function validate(o: PasstOptions): void {
  const p = new Problems();
  const pathCheck = (field: string, v: string | undefined, max?: number) => {
    const m = pathProblem(v ?? "", max);
    if (m) p.add(field, m);
  };
  pathCheck("socket_path", o.socketPath, UNIX_PATH_MAX);
  if (o.pidFile !== undefined) pathCheck("pid_file", o.pidFile);
  if (o.logFile !== undefined) pathCheck("log_file", o.logFile);
  if (o.runAs !== undefined && !USER_RE.test(o.runAs)) p.add("run_as", `must be a user[:group] name or uid[:gid], got "${o.runAs}"`);
  if (o.interface !== undefined && !IFNAME_RE.test(o.interface)) p.add("interface", `must be an interface name, got "${o.interface}"`);
  if (o.address !== undefined && !isIPv4(o.address)) p.add("address", `must be an IPv4 address, got "${o.address}"`);
  if (o.gateway !== undefined && !isIPv4(o.gateway)) p.add("gateway", `must be an IPv4 address, got "${o.gateway}"`);
  if (o.prefixLength !== undefined && (!Number.isInteger(o.prefixLength) || o.prefixLength < 1 || o.prefixLength > 32)) {
    p.add("prefix_length", `must be an integer in 1..32, got ${o.prefixLength}`);
  }
  if (o.macAddr !== undefined && normalizeMac(o.macAddr) === null) p.add("mac_addr", `must be a MAC, got "${o.macAddr}"`);
  const seen = new Map<string, number>();
  o.ports.forEach((s, i) => {
    const f = `ports[${i}]`;
    if (s.protocol !== "tcp" && s.protocol !== "udp") p.add(`${f}.protocol`, `must be "tcp" or "udp", got "${String(s.protocol)}"`);
    if (s.hostAddress !== undefined && isIP(s.hostAddress) === 0) p.add(`${f}.host_address`, `must be an IP address, got "${s.hostAddress}"`);
    for (const [k, v] of [["host_port", s.hostPort], ["guest_port", s.guestPort]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 65535) p.add(`${f}.${k}`, `must be an integer in 1..65535, got ${v}`);
    }
    const key = `${s.protocol}/${s.hostAddress ?? "*"}/${s.hostPort}`;
    const prev = seen.get(key);
    if (prev !== undefined) p.add(`${f}.host_port`, `duplicates ports[${prev}]`);
    else seen.set(key, i);
  });
  p.throwIfAny();
}

/** One passt port SPEC: "[ADDR/]HOSTPORT:GUESTPORT". */
export function passtPortSpec(s: PasstPortSpec): string {
  return `${s.hostAddress !== undefined ? `${s.hostAddress}/` : ""}${s.hostPort}:${s.guestPort}`;
}

/** Arguments after the passt binary. Throws a ValidationError naming every bad field. */
export function buildPasstArgv(o: PasstOptions): string[] {
  validate(o);
  // --foreground: we supervise passt by PID (no fork); --quiet: no banner.
  const a = ["--foreground", "--quiet", "--socket", o.socketPath];
  if (o.ipv4Only ?? true) a.push("--ipv4-only");
  if (o.pidFile !== undefined) a.push("--pid", o.pidFile);
  if (o.logFile !== undefined) a.push("--log-file", o.logFile);
  if (o.runAs !== undefined) a.push("--runas", o.runAs);
  if (o.interface !== undefined) a.push("--interface", o.interface);
  if (o.address !== undefined) a.push("--address", o.address);
  if (o.prefixLength !== undefined) a.push("--netmask", String(o.prefixLength));
  if (o.gateway !== undefined) a.push("--gateway", o.gateway);
  if (o.macAddr !== undefined) a.push("--mac-addr", normalizeMac(o.macAddr)!);
  if (o.noDhcpDns ?? true) a.push("--no-dhcp-dns", "--no-dhcp-search");
  if (o.noIcmp) a.push("--no-icmp");
  let tcp = 0;
  let udp = 0;
  for (const s of o.ports) {
    if (s.protocol === "tcp") {
      a.push("--tcp-ports", passtPortSpec(s));
      tcp++;
    } else {
      a.push("--udp-ports", passtPortSpec(s));
      udp++;
    }
  }
  // Explicitly none, whatever passt's default for the mode is.
  if (tcp === 0) a.push("--tcp-ports", "none");
  if (udp === 0) a.push("--udp-ports", "none");
  return a;
}

/** uid/gid of a user from /etc/passwd (numeric "uid[:gid]" taken as is). */
export function lookupUser(spec: string): { uid: number; gid: number } {
  const [user, group] = spec.split(":") as [string, string | undefined];
  let uid: number | undefined;
  let gid: number | undefined;
  if (/^[0-9]+$/.test(user)) {
    uid = Number(user);
    gid = group !== undefined && /^[0-9]+$/.test(group) ? Number(group) : uid;
  } else {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const f = line.split(":");
      if (f[0] === user && f.length >= 4) {
        uid = Number(f[2]);
        gid = Number(f[3]);
        break;
      }
    }
  }
  if (uid === undefined || gid === undefined || Number.isNaN(uid) || Number.isNaN(gid)) {
    throw hostError(`look up user "${user}" in /etc/passwd`, new Error("no such user"), "not_found");
  }
  return { uid, gid };
}

/**
 * Creates passt's runtime directory (the socket's directory): owned by the
 * user passt drops to (`runAs`, default "nobody") when we are root, mode
 * 0700, so passt can bind its socket there and nobody else can write it.
 * Refuses a symlink or a directory owned by someone else. Returns it.
 */
export function preparePasstRuntimeDir(socketPath: string, runAs = "nobody"): string {
  const dir = dirname(socketPath);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    if (process.getuid?.() === 0) {
      const { uid, gid } = lookupUser(runAs);
      if (st.uid !== 0 && st.uid !== uid) throw new Error(`${dir} is owned by uid ${st.uid}`);
      chownSync(dir, uid, gid);
    }
    chmodSync(dir, 0o700);
  } catch (e) {
    throw hostError(`prepare passt runtime dir ${dir}`, e);
  }
  return dir;
}

// Forwarding rules: types, keys and validation. Pure; no sockets here.
import type { RelayCounters } from "../../native/relay.js";
import { isIPv4, isIPv6 } from "node:net";
import { Problems } from "../errors.js";

export type ForwardProtocol = "tcp" | "udp";

/**
 * How a rule's packets travel. "userspace": vmm-relayd (or the sockets
 * fallback) accepts and relays; any listen address, PROXY protocol, exact
 * connection counters; the guest sees the relay as its peer. "nat": an
 * nftables DNAT rule in the kernel; the guest sees the client's address, no
 * process touches the bytes.
 */
export type ForwardPath = "userspace" | "nat";

/** `{protocol, listenAddress, listenPort} -> {targetAddress, targetPort}`. */
export interface ForwardRule {
  protocol: ForwardProtocol;
  listenAddress: string;
  listenPort: number;
  targetAddress: string;
  targetPort: number;
  /** Omitted: the service's default path ("userspace" unless configured). */
  path?: ForwardPath;
  /** Send a PROXY protocol v2 header to the guest first (userspace TCP only). Omitted: false. */
  proxyProtocol?: boolean;
}

/**
 * Live counters of one rule: the relay surface's own type (native/relay.ts),
 * which the sockets fallback and UDP relays fill in the same way.
 */
export type ForwardCounters = RelayCounters;

/** What carries a rule's bytes: vmm-relayd, Node sockets, or the kernel (nftables). */
export type RelayKind = "native" | "sockets" | "nat";

export interface ForwardStatus extends ForwardRule {
  owner: string;
  relay: RelayKind;
  counters: ForwardCounters;
  /** Why the rule does not forward right now (e.g. its relay restarted and the port was taken meanwhile). */
  error?: string;
}

export const zeroCounters = (): ForwardCounters => ({
  connectionsActive: 0,
  connectionsTotal: 0,
  bytesToGuest: 0,
  bytesFromGuest: 0,
  sessionsActive: 0,
  errors: 0,
  connectFailures: 0,
  lastConnectError: "",
});

/** The identity of a rule: one listener per key. TCP and UDP on one port are two keys. */
export function ruleKey(r: Pick<ForwardRule, "protocol" | "listenAddress" | "listenPort">): string {
  return `${r.protocol} ${showAddress(r.listenAddress, r.listenPort)}`;
}

export function showAddress(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Same target and options: an apply leaves such a rule (and its connections) alone. */
export const sameSettings = (a: ForwardRule, b: ForwardRule): boolean =>
  a.targetAddress === b.targetAddress && a.targetPort === b.targetPort && (a.proxyProtocol ?? false) === (b.proxyProtocol ?? false);

/**
 * True when both rules would take the same packets: same protocol and port,
 * and the same address or one of them the unspecified address of the
 * other's family (userspace listeners on "::" are IPv6-only, and so are nat
 * rules on "::").
 */
export function overlaps(a: ForwardRule, b: ForwardRule): boolean {
  if (a.protocol !== b.protocol || a.listenPort !== b.listenPort) return false;
  if (a.listenAddress === b.listenAddress) return true;
  const v6 = (ip: string) => ip.includes(":");
  if (v6(a.listenAddress) !== v6(b.listenAddress)) return false;
  return isUnspecified(a.listenAddress) || isUnspecified(b.listenAddress);
}

/**
 * Canonical text of an IP literal (so "::1" and "0:0::1" are one key), or
 * undefined when `s` is not one. Zone ids ("fe80::1%eth0") are refused: they
 * would let a rule name an interface the daemon did not choose.
 */
export function canonicalIp(s: string): string | undefined {
  if (isIPv4(s)) return s;
  if (isIPv6(s) && !s.includes("%")) return new URL(`http://[${s}]/`).hostname.slice(1, -1);
  return undefined;
}

const isUnspecified = (ip: string) => ip === "0.0.0.0" || ip === "::";
const isLoopback = (ip: string) => ip.startsWith("127.") || ip === "::1";

/**
 * True when a rule would connect to its own listener: every accepted
 * connection would open another one until the relay runs out of fds.
 */
export function isSelfLoop(r: ForwardRule): boolean {
  if (r.targetPort !== r.listenPort) return false;
  if (r.targetAddress === r.listenAddress) return true;
  // "::" is dual-stack: it also accepts IPv4, so 127.x loops back to it too.
  if (r.listenAddress === "::") return isLoopback(r.targetAddress);
  return r.listenAddress === "0.0.0.0" && r.targetAddress.startsWith("127.");
}

function checkPort(p: Problems, field: string, v: unknown): v is number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) {
    p.add(field, "must be an integer port 1..65535");
    return false;
  }
  return true;
}

/**
 * Validates every rule and returns them normalized (canonical addresses).
 * Throws one ValidationError naming every bad field (`rules[2].listenPort`).
 */
export function validateRules(rules: unknown, field = "rules", defaultPath: ForwardPath = "userspace"): ForwardRule[] {
  const p = new Problems();
  if (!Array.isArray(rules)) {
    p.add(field, "must be an array of rules");
    p.throwIfAny();
    return [];
  }
  const out: ForwardRule[] = [];
  const seen = new Map<string, number>();
  const indexOf = new Map<ForwardRule, number>();
  rules.forEach((raw: unknown, i) => {
    const f = `${field}[${i}]`;
    if (typeof raw !== "object" || raw === null) {
      p.add(f, "must be an object");
      return;
    }
    const r = raw as Record<string, unknown>;
    let ok = true;
    if (r.protocol !== "tcp" && r.protocol !== "udp") {
      p.add(`${f}.protocol`, 'must be "tcp" or "udp"');
      ok = false;
    }
    const la = typeof r.listenAddress === "string" ? canonicalIp(r.listenAddress) : undefined;
    if (la === undefined) {
      p.add(`${f}.listenAddress`, "must be an IPv4 or IPv6 address");
      ok = false;
    }
    const ta = typeof r.targetAddress === "string" ? canonicalIp(r.targetAddress) : undefined;
    if (ta === undefined) {
      p.add(`${f}.targetAddress`, "must be an IPv4 or IPv6 address");
      ok = false;
    } else if (isUnspecified(ta)) {
      p.add(`${f}.targetAddress`, "must not be the unspecified address");
      ok = false;
    }
    ok = checkPort(p, `${f}.listenPort`, r.listenPort) && ok;
    ok = checkPort(p, `${f}.targetPort`, r.targetPort) && ok;
    const path = r.path ?? defaultPath;
    if (path !== "userspace" && path !== "nat") {
      p.add(`${f}.path`, 'must be "userspace" or "nat"');
      ok = false;
    }
    const proxy = r.proxyProtocol ?? false;
    if (typeof proxy !== "boolean") {
      p.add(`${f}.proxyProtocol`, "must be a boolean");
      ok = false;
    } else if (proxy && (r.protocol !== "tcp" || path !== "userspace")) {
      p.add(`${f}.proxyProtocol`, "is for userspace TCP rules only (a nat rule hands the guest the client's address itself)");
      ok = false;
    }
    if (ok && path === "nat") ok = checkNat(p, f, la as string, ta as string);
    if (!ok) return;
    const rule: ForwardRule = {
      protocol: r.protocol as ForwardProtocol,
      listenAddress: la as string,
      listenPort: r.listenPort as number,
      targetAddress: ta as string,
      targetPort: r.targetPort as number,
      path: path as ForwardPath,
      proxyProtocol: proxy as boolean,
    };
    if (isSelfLoop(rule)) {
      p.add(`${f}.targetPort`, `forwards ${ruleKey(rule)} to itself (${showAddress(rule.targetAddress, rule.targetPort)}): a loop`);
      return;
    }
    const key = ruleKey(rule);
    const prev = seen.get(key);
    if (prev !== undefined) {
      p.add(f, `listens on ${key} like ${field}[${prev}]`);
      return;
    }
    const clash = out.findIndex((o) => (o.path === "nat" || path === "nat") && overlaps(o, rule));
    if (clash >= 0) {
      p.add(f, `${key} (${path}) takes the packets of ${ruleKey(out[clash]!)} (${out[clash]!.path}) of ${field}[${indexOf.get(out[clash]!)}]: a port is either nat or userspace`);
      return;
    }
    seen.set(key, i);
    indexOf.set(rule, i);
    out.push(rule);
  });
  p.throwIfAny();
  return out;
}

/** A port's path and PROXY option as the API gives them (VmConfig ports, network port forwards). */
export interface PathOptions {
  protocol: string | undefined;
  listenAddress: string;
  /** API name of the listen address field ("host_address", "listen_address"). */
  addressField: string;
  /** undefined: the daemon's default; "?N": an unknown enum value. */
  path: string | undefined;
  proxyProtocol: boolean;
}

/**
 * Checks a port's path and PROXY option at the API boundary (field names in
 * API form: `config.ports[1].path`) and returns the path it resolves to.
 */
export function checkPathOptions(p: Problems, at: string, o: PathOptions, defaultPath: ForwardPath): ForwardPath {
  if (o.path !== undefined && o.path !== "userspace" && o.path !== "nat") p.add(`${at}.path`, `unknown path ${o.path.slice(1)}`);
  const path: ForwardPath = o.path === "nat" || (o.path === undefined && defaultPath === "nat") ? "nat" : "userspace";
  if (o.proxyProtocol && o.protocol === "udp") p.add(`${at}.proxy_protocol`, "is for TCP ports");
  else if (o.proxyProtocol && path === "nat")
    p.add(`${at}.proxy_protocol`, `needs path FORWARD_PATH_USERSPACE${o.path === undefined ? " (the daemon's default path is nat)" : ""}: a nat rule hands the guest the client's address itself`);
  if (path === "nat" && canonicalIp(o.listenAddress) === "::1") {
    p.add(`${at}.${o.addressField}`, "::1 cannot be forwarded by nat (the kernel does not route IPv6 loopback traffic to a guest); use path FORWARD_PATH_USERSPACE or 127.0.0.1");
  }
  return path;
}

/**
 * Where a nat rule cannot work. IPv6 loopback: the kernel never routes ::1
 * to another host (there is no route_localnet for IPv6). IPv4 loopback
 * works: the output DNAT is routed to the guest with route_localnet on the
 * way out and the source masqueraded (nat.ts), so the guest sees the host,
 * not 127.0.0.1. The families must match: DNAT does not translate between
 * IPv4 and IPv6.
 */
function checkNat(p: Problems, f: string, listen: string, target: string): boolean {
  if (listen === "::1") {
    p.add(`${f}.path`, 'nat cannot listen on ::1: the kernel does not route IPv6 loopback traffic to a guest; use path "userspace"');
    return false;
  }
  if (listen.includes(":") !== target.includes(":")) {
    p.add(`${f}.targetAddress`, "must be of the listen address's family for a nat rule (DNAT does not translate IPv4 to IPv6)");
    return false;
  }
  if (isLoopback(target)) {
    p.add(`${f}.targetAddress`, 'must not be a loopback address for a nat rule (the host itself is not a guest); use path "userspace"');
    return false;
  }
  return true;
}

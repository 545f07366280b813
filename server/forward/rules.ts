// Forwarding rules: types, keys and validation. Pure; no sockets here.
import type { RelayCounters } from "../../native/relay.js";
import { isIPv4, isIPv6 } from "node:net";
import { Problems } from "../errors.js";

export type ForwardProtocol = "tcp" | "udp";

/** `{protocol, listenAddress, listenPort} -> {targetAddress, targetPort}`. */
export interface ForwardRule {
  protocol: ForwardProtocol;
  listenAddress: string;
  listenPort: number;
  targetAddress: string;
  targetPort: number;
}

/**
 * Live counters of one rule: the relay surface's own type (native/relay.ts),
 * which the sockets fallback and UDP relays fill in the same way.
 */
export type ForwardCounters = RelayCounters;

export interface ForwardStatus extends ForwardRule {
  owner: string;
  relay: "native" | "sockets";
  counters: ForwardCounters;
}

export const zeroCounters = (): ForwardCounters => ({
  connectionsActive: 0,
  connectionsTotal: 0,
  bytesToGuest: 0,
  bytesFromGuest: 0,
  sessionsActive: 0,
  errors: 0,
});

/** The identity of a rule: one listener per key. TCP and UDP on one port are two keys. */
export function ruleKey(r: Pick<ForwardRule, "protocol" | "listenAddress" | "listenPort">): string {
  return `${r.protocol} ${showAddress(r.listenAddress, r.listenPort)}`;
}

export function showAddress(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

export const sameTarget = (a: ForwardRule, b: ForwardRule): boolean =>
  a.targetAddress === b.targetAddress && a.targetPort === b.targetPort;

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
export function validateRules(rules: unknown, field = "rules"): ForwardRule[] {
  const p = new Problems();
  if (!Array.isArray(rules)) {
    p.add(field, "must be an array of rules");
    p.throwIfAny();
    return [];
  }
  const out: ForwardRule[] = [];
  const seen = new Map<string, number>();
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
    if (!ok) return;
    const rule: ForwardRule = {
      protocol: r.protocol as ForwardProtocol,
      listenAddress: la as string,
      listenPort: r.listenPort as number,
      targetAddress: ta as string,
      targetPort: r.targetPort as number,
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
    seen.set(key, i);
    out.push(rule);
  });
  p.throwIfAny();
  return out;
}

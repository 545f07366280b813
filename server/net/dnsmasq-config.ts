// The one dnsmasq configuration generator: the vmnet backend, the bridge set
// up by scripts/setup-bridge.sh (through dnsmasq-config-cli.ts) and the
// tests' DHCP servers all write their dnsmasq.conf with it, so every DHCP
// server a guest meets behaves the same way (no-ping, bound to one bridge,
// the lease hook, its own pid/lease/log files).
//
// Why every value is checked against a grammar here, although callers
// validated their input: each value becomes a line of a config file that
// dnsmasq (as root) reads. A newline in a name would start a new option (a
// `dhcp-script=` of the attacker's choosing); a comma would add fields to
// `dhcp-range` or `dhcp-host`. The generator refuses anything outside its
// grammar rather than trusting every caller to have got it right.
import { isIPv4 } from "node:net";
import { Problems } from "../errors.js";
import { isValidIfName, normalizeMac } from "../check.js";

/** DHCP service of a dnsmasq instance. */
export interface DnsmasqDhcp {
  /** First and last address handed out. */
  rangeStart: string;
  rangeEnd: string;
  /** Subnet mask of the range ("255.255.255.0"). */
  netmask: string;
  /** Lease time: seconds with an optional m/h/d unit, or "infinite" (default "12h"). */
  leaseTime?: string;
  /** Router option (the bridge's address); omitted: none. */
  router?: string;
  /** MTU option; omitted: none (guests keep 1500). */
  mtu?: number;
  /** DNS server option (when dnsmasq also serves DNS). */
  dnsServer?: string;
  /** Fixed addresses (dhcp-host=MAC,IP). */
  reservations?: { mac: string; ip: string }[];
  /** dhcp-script: the lease hook (native/build/Release/vmm-dhcp-hook or clients/dnsmasq-hook/vmm-dhcp-hook). */
  script?: string;
}

/**
 * Everything one dnsmasq instance is told, for dnsmasqConfig to write out; the files are the
 * instance's own (never /dev/null).
 */
export interface DnsmasqConfig {
  /** Who wrote the file, for its first line ("vmmd for network net-1"). */
  writer: string;
  /** The only interface dnsmasq binds to (the bridge). */
  interface: string;
  /** Serve DNS on port 53 (true) or no DNS at all (false, port=0). */
  dns: boolean;
  dhcp?: DnsmasqDhcp;
  /** IPv6 router advertisements on the interface (ra-only). */
  routerAdvertisements?: boolean;
  leaseFile: string;
  pidFile: string;
  logFile: string;
}

const PATH_RE = /^\/[A-Za-z0-9_./-]{0,4095}$/;
const LEASE_TIME_RE = /^(infinite|[1-9][0-9]{0,8}[mhd]?)$/;
const WRITER_RE = /^[A-Za-z0-9 _.:/-]{1,200}$/;

function checkPath(p: Problems, field: string, v: string): void {
  if (!PATH_RE.test(v) || v.split("/").includes("..")) p.add(field, `"${v.slice(0, 64)}" must be an absolute path of A-Z a-z 0-9 _ . - /`);
}

function checkIp(p: Problems, field: string, v: string): void {
  if (!isIPv4(v)) p.add(field, `"${v.slice(0, 64)}" is not an IPv4 address`);
}

/** Validates `c` against the generator's grammar; throws a ValidationError naming every bad field. */
export function checkDnsmasqConfig(c: DnsmasqConfig): void {
  const p = new Problems();
  if (!WRITER_RE.test(c.writer)) p.add("writer", "must be 1-200 of A-Z a-z 0-9 space _ . : / -");
  if (!isValidIfName(c.interface)) p.add("interface", `"${c.interface.slice(0, 64)}" is not an interface name`);
  checkPath(p, "lease_file", c.leaseFile);
  checkPath(p, "pid_file", c.pidFile);
  checkPath(p, "log_file", c.logFile);
  const d = c.dhcp;
  if (d) {
    checkIp(p, "dhcp.range_start", d.rangeStart);
    checkIp(p, "dhcp.range_end", d.rangeEnd);
    checkIp(p, "dhcp.netmask", d.netmask);
    if (d.leaseTime !== undefined && !LEASE_TIME_RE.test(d.leaseTime)) p.add("dhcp.lease_time", `"${d.leaseTime.slice(0, 32)}" must be seconds with an optional m/h/d unit, or "infinite"`);
    if (d.router !== undefined) checkIp(p, "dhcp.router", d.router);
    if (d.dnsServer !== undefined) checkIp(p, "dhcp.dns_server", d.dnsServer);
    if (d.mtu !== undefined && (!Number.isInteger(d.mtu) || d.mtu < 576 || d.mtu > 9000)) p.add("dhcp.mtu", `is ${d.mtu}; must be between 576 and 9000`);
    if (d.script !== undefined) checkPath(p, "dhcp.script", d.script);
    (d.reservations ?? []).forEach((r, i) => {
      if (normalizeMac(r.mac) === null) p.add(`dhcp.reservations[${i}].mac`, `"${r.mac.slice(0, 64)}" is not a MAC address`);
      checkIp(p, `dhcp.reservations[${i}].ip`, r.ip);
    });
  }
  p.throwIfAny();
}

const serves = (c: DnsmasqConfig): string =>
  [c.dhcp ? "DHCP" : "", c.dns ? "DNS" : "", c.routerAdvertisements ? "router advertisements" : ""].filter(Boolean).join(", ") || "Nothing";

/**
 * dnsmasq.conf text for `c` (pure). Always: bound to the one interface
 * (bind-interfaces, never lo), no /etc/hosts, its own pid, lease and log
 * files, DHCP logging. With DHCP: authoritative, `no-ping` (dnsmasq would
 * otherwise ping every address before offering it: ~3 s per first lease),
 * the range with its mask and lease time, router/MTU/DNS options,
 * reservations and the lease hook. Throws a ValidationError for values
 * outside the grammar (see the file comment).
 */
export function dnsmasqConfig(c: DnsmasqConfig): string {
  checkDnsmasqConfig(c);
  const lines = [
    `# Written by ${c.writer}. ${serves(c)} on ${c.interface} only.`,
    `interface=${c.interface}`,
    "bind-interfaces",
    "except-interface=lo",
    c.dns ? "port=53" : "port=0",
    "no-hosts",
  ];
  if (!c.dns) lines.push("no-resolv");
  lines.push(`dhcp-leasefile=${c.leaseFile}`, `pid-file=${c.pidFile}`, `log-facility=${c.logFile}`, "log-dhcp");
  const d = c.dhcp;
  if (d) {
    lines.push(
      "dhcp-authoritative",
      // No ICMP probe of an address before offering it: saves ~3 s a lease.
      "no-ping",
      `dhcp-range=${d.rangeStart},${d.rangeEnd},${d.netmask},${d.leaseTime ?? "12h"}`,
    );
    if (d.router !== undefined) lines.push(`dhcp-option=option:router,${d.router}`);
    if (d.mtu !== undefined && d.mtu !== 1500) lines.push(`dhcp-option=option:mtu,${d.mtu}`);
    if (d.dnsServer !== undefined) lines.push(`dhcp-option=option:dns-server,${d.dnsServer}`);
    for (const r of d.reservations ?? []) lines.push(`dhcp-host=${normalizeMac(r.mac)},${r.ip}`);
    if (d.script !== undefined) lines.push(`dhcp-script=${d.script}`);
  }
  if (c.routerAdvertisements) lines.push("enable-ra", `dhcp-range=::,constructor:${c.interface},ra-only,64,12h`);
  return lines.join("\n") + "\n";
}

// What a ReportDhcpLease must satisfy before the wire is even asked: every
// field well formed, the MAC a VM's, the NIC one that takes leases, and the
// address inside the NIC's subnet but never the subnet's network, broadcast
// or gateway address nor an address the host holds (a forwarded port must
// never point back at the host). One validator for the hook's reports and
// dnsmasq's lease-file entries alike.
import { isIPv4 } from "node:net";
import { normalizeMac } from "../check.js";
import { precondition, Problems, VmmError } from "../errors.js";
import { cidrContains, intToIpv4, parseIpv4Cidr } from "../net/addr.js";
import type { NicRef } from "../net/lease-book.js";

/** A ReportDhcpLease request in domain terms. */
export interface LeaseReport {
  action: "add" | "old" | "del";
  mac: string;
  ip: string;
  hostname: string;
  expiresUnix: number;
  interface: string;
}

/** What the lease keeper needs to know of one NIC. */
export interface LeaseNic {
  mode: string;
  mac: string;
  /**
   * Host interface where the NIC's address is verified and unique: the
   * bridge (bridge, tap, vmnet) or the macvtap parent. Undefined: the mode
   * takes no lease reports (user, passt, custom).
   */
  domain?: string;
  /** Subnet (CIDR) reports must fall in; undefined: none configured. */
  subnet?: string;
  /** The subnet's gateway when the daemon knows it (vmnet). */
  gateway?: string;
  /** The VM is starting or running: leases exist only then. */
  running: boolean;
}

/** The NICs the reports may name (the VM manager). */
export interface LeaseNics {
  nicOfMac(mac: string): NicRef | undefined;
  nic(ref: NicRef): LeaseNic | undefined;
  /** The interface holding `ip` on this host, undefined when none does. */
  hostHolds(ip: string): string | undefined;
}

/**
 * Validates report `r` against the NIC it names; returns that NIC. Throws
 * "invalid" naming the field (every malformed field at once), "not_found"
 * for a MAC of no VM, "precondition" for a NIC that takes no reports.
 */
export function checkLeaseReport(nics: LeaseNics, r: LeaseReport): { ref: NicRef; nic: LeaseNic; mac: string } {
  const p = new Problems();
  const mac = normalizeMac(r.mac);
  if (r.mac === "") p.add("mac", "is required");
  else if (mac === null) p.add("mac", `"${r.mac.slice(0, 64)}" is not a MAC address`);
  if (r.ip === "") p.add("ip", "is required");
  else if (!isIPv4(r.ip)) p.add("ip", `"${r.ip.slice(0, 64)}" is not an IPv4 address`);
  if (r.hostname.length > 253 || /[^A-Za-z0-9._-]/.test(r.hostname)) p.add("hostname", "must be at most 253 of A-Z a-z 0-9 . _ -");
  if (r.interface !== "" && !/^[A-Za-z0-9_.-]{1,15}$/.test(r.interface)) p.add("interface", "is not a valid interface name");
  if (!Number.isInteger(r.expiresUnix) || r.expiresUnix < 0 || r.expiresUnix > 253402300799) p.add("expires_unix", `is ${r.expiresUnix}; must be 0 (infinite) or seconds since the epoch`);
  p.throwIfAny();
  const ref = nics.nicOfMac(mac!);
  if (!ref) throw new VmmError("not_found", `mac: no VM has MAC ${mac}`);
  const nic = nics.nic(ref)!;
  const at = `VM "${ref.vmId}" nics[${ref.nic}]`;
  if (nic.domain === undefined) throw precondition(`mac: ${at} uses ${nic.mode} networking, which takes no DHCP lease reports`);
  if (nic.subnet === undefined) throw precondition(`mac: ${at} is on ${nic.domain}, which has no subnet in networking.bridge_subnets; lease reports for it are refused`);
  const cidr = parseIpv4Cidr(nic.subnet)!;
  const bad = (why: string) => new VmmError("invalid", `ip: ${r.ip} ${why}`, { problems: [{ field: "ip", message: why }] });
  if (!cidrContains(cidr, r.ip)) throw bad(`is outside ${nic.subnet}, the subnet of ${at}`);
  if (cidr.prefix <= 30) {
    if (r.ip === intToIpv4(cidr.network)) throw bad(`is the network address of ${nic.subnet}`);
    if (r.ip === intToIpv4(cidr.network + 2 ** (32 - cidr.prefix) - 1)) throw bad(`is the broadcast address of ${nic.subnet}`);
  }
  if (nic.gateway === r.ip) throw bad(`is the gateway of ${nic.subnet}`);
  const held = nics.hostHolds(r.ip);
  if (held !== undefined) throw bad(`is an address of this host (${held})`);
  return { ref, nic, mac: mac! };
}

// dnsmasq's lease file (dhcp-leasefile), read at daemon start so the daemon
// converges on what the DHCP server believes without waiting for the hook.
//
// Format (dnsmasq src/lease.c, lease_update_file): one IPv4 lease a line,
//   EXPIRY MAC IP HOSTNAME CLIENT-ID
// EXPIRY in seconds since the epoch (0: never), MAC as aa:bb:..., or
// "TYPE-aa:bb:..." for non-Ethernet hardware, HOSTNAME and CLIENT-ID "*"
// when absent; then, with DHCPv6, a "duid ..." line followed by IPv6 leases
// (EXPIRY IAID ADDRESS HOSTNAME CLIENT-ID), which are not ours to read.
// The file is written by a root process but its hostnames come from guests:
// every field is checked, and a line that does not parse is skipped, never
// half-used.
import { isIPv4 } from "node:net";
import { normalizeMac } from "../check.js";

/** One IPv4 lease of the file. */
export interface DnsmasqLease {
  /** Seconds since the epoch; 0: never expires. */
  expiresUnix: number;
  mac: string;
  ip: string;
  /** "" when dnsmasq has none. */
  hostname: string;
}

/** Cap on what is read: a lease file of a few thousand guests is far below it. */
export const MAX_LEASE_FILE_BYTES = 16 * 1024 * 1024;

const HOSTNAME_RE = /^[A-Za-z0-9._-]{1,253}$/;

/** Parses a lease file's text; `skipped` counts IPv4-section lines that did not parse. */
export function parseLeaseFile(text: string): { leases: DnsmasqLease[]; skipped: number } {
  const leases: DnsmasqLease[] = [];
  let skipped = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const f = line.trim().split(/\s+/);
    if (f[0] === "duid") break; // IPv6 leases follow
    if (f.length < 4 || f.length > 5) {
      skipped++;
      continue;
    }
    const [exp, rawMac, ip, host] = f as [string, string, string, string];
    const mac = normalizeMac(rawMac);
    if (!/^\d{1,12}$/.test(exp) || mac === null || !isIPv4(ip) || (host !== "*" && !HOSTNAME_RE.test(host))) {
      skipped++;
      continue;
    }
    leases.push({ expiresUnix: Number(exp), mac, ip, hostname: host === "*" ? "" : host });
  }
  return { leases, skipped };
}

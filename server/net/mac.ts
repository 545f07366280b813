// Deterministic guest MAC addresses.
//
// A VM's MAC is derived from its id so that a DHCP lease reported by dnsmasq
// (which only knows the MAC) maps back to exactly one VM, also after a
// restart of the daemon, without storing a table.
//
// Algorithm (reproduces upstream's vectors, see mac.test.ts):
//   h      = SHA-256(nicIndex == 0 ? id : `${id}:${nicIndex}`)
//   mac    = prefix bytes (0-3), followed by h[0 .. 6-prefix.length)
//   mac[0] = (mac[0] & ~0x01) | 0x02   (unicast, locally administered)
// Note that the hash bytes FOLLOW the prefix: they are not overwritten by it.
// With prefix 52:54:00, "vm-123" (h = 97 b1 d8 b9 08 e6 ...) gives
// 52:54:00:97:b1:d8, not 52:54:00:b9:08:e6. The bit fix-up applies to the
// first byte of the result, i.e. to the prefix's first byte when there is one
// (52 is already unicast + locally administered, so it is unchanged).
import { createHash } from "node:crypto";
import { Problems } from "../errors.js";

const HEX_BYTE = /^[0-9a-f]{2}$/i;

/**
 * Derives the MAC of NIC `nicIndex` of VM `vmId`. `prefix` is a validated
 * `mac_prefix` ("" or 1-3 bytes, see parseMacPrefix). Lower-case, colon form.
 */
export function deriveMac(vmId: string, nicIndex: number, prefix: string): string {
  if (!Number.isInteger(nicIndex) || nicIndex < 0) {
    throw new RangeError(`deriveMac: nicIndex must be a non-negative integer, got ${nicIndex}`);
  }
  const pre = parseMacPrefix(prefix);
  const input = nicIndex === 0 ? vmId : `${vmId}:${nicIndex}`;
  const hash = createHash("sha256").update(input, "utf8").digest();
  const mac = Buffer.concat([Buffer.from(pre), hash.subarray(0, 6 - pre.length)]);
  mac[0] = (mac[0]! & ~0x01) | 0x02;
  return formatMac(mac);
}

/**
 * Parses a `mac_prefix`: "" or 1-3 hex bytes separated by ":" or "-".
 * Throws a ValidationError naming `field` when it is not one.
 */
export function parseMacPrefix(s: string, field = "mac_prefix"): number[] {
  if (s === "") return [];
  const parts = s.split(/[:-]/);
  const problems = new Problems();
  if (parts.length > 3) {
    problems.add(field, `must be at most 3 bytes (like "52:54:00"), got "${s}"`);
  } else if (!parts.every((p) => HEX_BYTE.test(p)) || !sameSeparators(s)) {
    problems.add(field, `must be 0-3 hex bytes separated by ":" (like "52:54:00"), got "${s}"`);
  }
  problems.throwIfAny();
  return parts.map((p) => parseInt(p, 16));
}

function sameSeparators(s: string): boolean {
  return !(s.includes(":") && s.includes("-"));
}

function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
}

// The shared checks: ids, names, paths, interface names, MACs, control
// characters and the unix socket path limit. A leaf: it imports nothing of
// the daemon but errors.ts, so every floor (host plumbing, networking, VMs,
// networks, config) can use the same rule for the same kind of value.
//
// Why strict: these values end up in QEMU option values (where a comma
// starts a new sub-option), in `ip` argv (where a name equal to a keyword is
// read as a keyword), in dnsmasq config lines and nftables rules (where a
// newline starts a new directive), and in logs and tables (where control
// characters corrupt the output). The same reasoning as lima's
// networks/validate.go: parse against a grammar first, never escape later.
import type { Problems } from "./errors.js";

/** sun_path is 108 bytes including the terminating NUL. */
export const UNIX_PATH_MAX = 107;

/** Longest path we accept anywhere (PATH_MAX is 4096 including the NUL). */
export const PATH_MAX = 4096;

/** Longest display name of a VM or network, in code points. */
export const NAME_MAX = 63;

/** Ids of VMs and networks: 1-63 of a-z 0-9 '-', starting with a letter or digit (a DNS label). */
export const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** C0 and C1 control characters, DEL, and the Unicode line and paragraph separators. */
export const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * Linux interface names: 1-15 bytes (IFNAMSIZ - 1) of [A-Za-z0-9_.-],
 * starting with a letter or digit. Names reach `ip` argv, QEMU option values,
 * dnsmasq config and nftables rules; anything else could inject options or
 * config lines, and a leading "-" would read as an option.
 */
export const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** True when `s` is an interface name we accept (also for bridges). */
export function isValidIfName(s: string): boolean {
  return IFNAME_RE.test(s);
}

/** Adds a problem for `field` unless `id` is a valid id. */
export function checkId(p: Problems, field: string, id: string): void {
  if (id === "") p.add(field, "is required");
  else if (id.length > 63) p.add(field, `is ${id.length} characters; at most 63`);
  else if (!ID_RE.test(id)) p.add(field, "must be 1-63 of a-z 0-9 and '-', starting with a letter or digit");
}

/**
 * Code points no display text may contain, by Unicode general category:
 * control (Cc), format (Cf: bidi overrides and isolates such as U+202E and
 * U+2066, zero-width characters such as U+200B, the BOM U+FEFF), surrogate
 * (Cs), line and paragraph separators (Zl, Zp) and unassigned (Cn). Each
 * makes a name display as something else than it is -- reordered, hidden,
 * split over lines -- in every table that shows it.
 */
const FORBIDDEN_TEXT: readonly [RegExp, string][] = [
  [/\p{Cc}/u, "a control character"],
  [/\p{Cf}/u, "a format character (bidi control, zero-width or BOM)"],
  [/\p{Cs}/u, "a lone surrogate"],
  [/[\p{Zl}\p{Zp}]/u, "a line or paragraph separator"],
  [/\p{Cn}/u, "an unassigned code point"],
];

/** What is wrong with `text` as display text (see FORBIDDEN_TEXT), or undefined. */
export function displayTextProblem(text: string): string | undefined {
  for (const [re, what] of FORBIDDEN_TEXT) {
    const m = re.exec(text);
    if (m) return `must not contain ${what}: U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
  }
  return undefined;
}

/**
 * Adds a problem for `field` unless `name` is a valid display name (VMs and
 * networks): 1-NAME_MAX code points, no character of FORBIDDEN_TEXT, no
 * white space at either end.
 */
export function checkName(p: Problems, field: string, name: string): void {
  const length = [...name].length;
  const bad = displayTextProblem(name);
  if (length === 0) p.add(field, "is required");
  else if (length > NAME_MAX) p.add(field, `is ${length} characters; at most ${NAME_MAX}`);
  else if (bad !== undefined) p.add(field, bad);
  else if (name.trim() !== name) p.add(field, "must not start or end with white space");
}

/** The form names are compared in for uniqueness: NFC, so composed and decomposed spellings are one name. */
export function nameKey(name: string): string {
  return name.normalize("NFC");
}

/**
 * What is wrong with an absolute path that will sit inside a QEMU option
 * value or another program's argv: empty, relative, a comma (sub-option
 * injection), a control character, white space, or longer than `maxBytes`
 * (default PATH_MAX; UNIX_PATH_MAX for a socket). Undefined when it is fine.
 */
export function pathProblem(path: string, maxBytes = PATH_MAX): string | undefined {
  if (path === "") return "must be set";
  if (!path.startsWith("/")) return `must be an absolute path, got "${path.slice(0, 64)}"`;
  if (path.includes(",")) return "must not contain ',' (QEMU would read the rest as sub-options)";
  if (CONTROL_RE.test(path)) return "must not contain control characters";
  if (/\s/.test(path)) return "must not contain white space";
  const bytes = Buffer.byteLength(path);
  if (bytes > maxBytes) {
    return maxBytes === UNIX_PATH_MAX
      ? `is ${bytes} bytes; a unix socket path may have at most ${UNIX_PATH_MAX}`
      : `is ${bytes} bytes; at most ${maxBytes}`;
  }
  return undefined;
}

/** Adds the problem of pathProblem() for `field`, if any. */
export function checkPath(p: Problems, field: string, path: string, maxBytes = PATH_MAX): void {
  const why = pathProblem(path, maxBytes);
  if (why !== undefined) p.add(field, why);
}

const HEX_BYTE = /^[0-9a-f]{2}$/i;

/**
 * Canonical form (lower case, ":") of a MAC written in any case with ":" or
 * "-" separators (not both); null when `s` is not a MAC.
 */
export function normalizeMac(s: string): string | null {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((x) => HEX_BYTE.test(x)) || (s.includes(":") && s.includes("-"))) return null;
  return parts.map((x) => x.toLowerCase()).join(":");
}

/** True when the MAC (canonical or not) has the multicast bit set. */
export function isMulticastMac(mac: string): boolean {
  const n = normalizeMac(mac);
  return n !== null && (parseInt(n.slice(0, 2), 16) & 0x01) === 0x01;
}

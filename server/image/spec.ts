// The disk and cloud-init parts of a VM's spec: their domain types and the
// validation of their API input (CreateVm config.image, config.disks,
// config.cloud_init; UpdateVm cloud_init). Every problem is reported at once
// with the field path the caller used.
//
// Why strict: image names become paths; the hostname and SSH keys are
// written into the seed drive's meta-data, where a newline would start a new
// YAML key; sizes go to qemu-img's argv.
import type { Problems } from "../errors.js";
import { checkImageName } from "./catalog.js";

/** An extra disk: an overlay on an image's base disk, or a blank disk. */
export interface ExtraDisk {
  /** Image whose base disk backs it; "" for a blank disk. */
  image: string;
  /** Virtual size in MiB; 0 for an image disk means the base disk's size. */
  sizeMib: number;
}

/** Content of the cloud-init NoCloud seed drive. */
export interface CloudInitSpec {
  userData: string;
  sshAuthorizedKeys: string[];
  hostname: string;
  networkConfig: string;
}

/** The fields this module adds to a VM spec. Optional: records written before them lack them. */
export interface ImageSpecFields {
  image?: string;
  imageSizeMib?: number;
  disks?: ExtraDisk[];
  cloudInit?: CloudInitSpec;
}

/** Extra disks one VM may have. */
export const MAX_DISKS = 8;
/** 16 TiB: larger virtual sizes are almost surely a unit mistake. */
export const MAX_DISK_MIB = 16 * 1024 * 1024;
/** Largest cloud-init user_data, in bytes (256 KiB). */
export const MAX_USER_DATA = 256 * 1024;
/** Largest cloud-init network_config, in bytes (64 KiB). */
export const MAX_NETWORK_CONFIG = 64 * 1024;
/** Most ssh_authorized_keys entries one cloud-init seed may carry. */
export const MAX_SSH_KEYS = 32;
const MAX_SSH_KEY = 16 * 1024;

// OpenSSH public key line: [options-free] TYPE BASE64 [COMMENT]; no control characters.
const SSH_KEY_RE = /^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\u0000-\u001f\u007f]*)?$/;
const HOSTNAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const BAD_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

function checkSize(p: Problems, field: string, v: number, required: boolean): void {
  if (v === 0) {
    if (required) p.add(field, "is required for a blank disk");
  } else if (!Number.isInteger(v) || v < 1 || v > MAX_DISK_MIB) p.add(field, `is ${v}; must be between 1 and ${MAX_DISK_MIB} (MiB)`);
}

/** Checks config.image, config.image_size_mib and config.disks. */
export function checkDisks(p: Problems, prefix: string, image: string, imageSizeMib: number, disks: readonly ExtraDisk[]): void {
  if (image !== "") checkImageName(p, `${prefix}image`, image);
  if (imageSizeMib !== 0) {
    if (image === "") p.add(`${prefix}image_size_mib`, "is set but config.image is not");
    else checkSize(p, `${prefix}image_size_mib`, imageSizeMib, false);
  }
  if (disks.length > MAX_DISKS) {
    p.add(`${prefix}disks`, `has ${disks.length} entries; at most ${MAX_DISKS}`);
    return;
  }
  disks.forEach((d, i) => {
    const f = `${prefix}disks[${i}]`;
    if (d.image !== "") checkImageName(p, `${f}.image`, d.image);
    checkSize(p, `${f}.size_mib`, d.sizeMib, d.image === "");
  });
}

/** Checks a CloudInit message; `prefix` ends with "." (e.g. "config.cloud_init."). */
export function checkCloudInit(p: Problems, prefix: string, c: CloudInitSpec): void {
  if (Buffer.byteLength(c.userData) > MAX_USER_DATA) p.add(`${prefix}user_data`, `is ${Buffer.byteLength(c.userData)} bytes; at most ${MAX_USER_DATA}`);
  else if (c.userData.includes("\u0000")) p.add(`${prefix}user_data`, "must not contain NUL bytes");
  if (Buffer.byteLength(c.networkConfig) > MAX_NETWORK_CONFIG) p.add(`${prefix}network_config`, `is ${Buffer.byteLength(c.networkConfig)} bytes; at most ${MAX_NETWORK_CONFIG}`);
  else if (BAD_TEXT.test(c.networkConfig)) p.add(`${prefix}network_config`, "must be text without control characters other than tab and newline");
  if (c.hostname !== "" && !HOSTNAME_RE.test(c.hostname)) p.add(`${prefix}hostname`, "must be 1-63 of a-z 0-9 '-', not starting or ending with '-'");
  if (c.sshAuthorizedKeys.length > MAX_SSH_KEYS) p.add(`${prefix}ssh_authorized_keys`, `has ${c.sshAuthorizedKeys.length} entries; at most ${MAX_SSH_KEYS}`);
  else
    c.sshAuthorizedKeys.forEach((k, i) => {
      if (k.length > MAX_SSH_KEY || !SSH_KEY_RE.test(k)) p.add(`${prefix}ssh_authorized_keys[${i}]`, "must be one OpenSSH public key line (TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAA... user@host)");
    });
}

/** True when the seed drive would be empty: an all-default CloudInit removes it. */
export function isEmptyCloudInit(c: CloudInitSpec): boolean {
  return c.userData === "" && c.sshAuthorizedKeys.length === 0 && c.hostname === "" && c.networkConfig === "";
}

// The cloud-init NoCloud seed drive: an ISO 9660 volume labelled "cidata"
// holding user-data, meta-data and optionally network-config, built with
// genisoimage (Debian's genisoimage package; cloud-image-utils' cloud-localds
// does the same), never by assembling a file system by hand.
//
// meta-data is written as JSON, which is also YAML: every string is quoted
// and escaped by JSON.stringify, so a hostname or key cannot add YAML keys.
// user-data and network-config go to the guest verbatim.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runProgram } from "../host/exec.js";
import type { CloudInitSpec } from "./spec.js";

/** The volume label cloud-init's NoCloud datasource looks for. */
export const SEED_LABEL = "cidata";

/** File name -> content of the seed. Pure. */
export function seedFiles(c: CloudInitSpec, instanceId: string): Record<string, string> {
  const meta: Record<string, unknown> = { "instance-id": instanceId };
  if (c.hostname !== "") meta["local-hostname"] = c.hostname;
  if (c.sshAuthorizedKeys.length > 0) meta["public-keys"] = c.sshAuthorizedKeys;
  const files: Record<string, string> = {
    "meta-data": JSON.stringify(meta, null, 2) + "\n",
    "user-data": c.userData,
  };
  if (c.networkConfig !== "") files["network-config"] = c.networkConfig;
  return files;
}

/** genisoimage argv (after the binary) for `files` in `dir`. Pure. */
export function genisoimageArgv(out: string, dir: string, names: readonly string[]): string[] {
  // -joliet -rock: long, case-preserving names ("user-data"), as cloud-localds does.
  return ["-quiet", "-output", out, "-volid", SEED_LABEL, "-joliet", "-rock", ...names.map((n) => join(dir, n))];
}

/**
 * Writes the seed ISO to `path` (replacing it atomically). The staging
 * directory next to it is removed afterwards, also on failure.
 */
export async function buildSeed(path: string, c: CloudInitSpec, instanceId: string, genisoimage = "genisoimage"): Promise<void> {
  const stage = `${path}.d`;
  const tmp = `${path}.tmp`;
  rmSync(stage, { recursive: true, force: true });
  rmSync(tmp, { force: true });
  mkdirSync(stage, { mode: 0o700 });
  try {
    const files = seedFiles(c, instanceId);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(stage, name), content, { mode: 0o600 });
    await runProgram([genisoimage, ...genisoimageArgv(tmp, stage, Object.keys(files))], { timeoutMs: 30_000 });
    renameSync(tmp, path);
  } finally {
    rmSync(stage, { recursive: true, force: true });
    rmSync(tmp, { force: true });
  }
}

// Reading what the test guest prints on its serial console: the seed
// drive's files (test/guest/build-initramfs.sh prints them base64-encoded),
// and validating user-data with Debian's cloud-init (unpacked by
// scripts/setup-guest.sh into .tools/cloud-init).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestDir } from "./paths.js";

/** Files between "VMM-SEED-BEGIN NAME" and "VMM-SEED-END NAME", decoded; the last copy of each wins. */
export function seedFilesFromSerial(log: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /VMM-SEED-BEGIN (\S+)\r?\n([\s\S]*?)VMM-SEED-END \1/g;
  for (const m of log.matchAll(re)) out[m[1]!] = Buffer.from(m[2]!.replace(/\s+/g, ""), "base64").toString("utf8");
  return out;
}

/** `cloud-init schema -c` on `userData`; returns its output, throws with it when invalid. */
export function cloudInitSchema(userData: string): string {
  const root = join(guestDir(), "..", "cloud-init");
  const bin = join(root, "usr", "bin", "cloud-init");
  if (!existsSync(bin)) throw new Error(`cloud-init missing at ${bin}: run \`sudo scripts/setup-guest.sh\``);
  const dir = mkdtempSync(join(tmpdir(), "vmm-cloud-init-"));
  try {
    const file = join(dir, "user-data");
    writeFileSync(file, userData);
    // Debian's interpreter: the Python dependencies are Debian packages.
    return execFileSync("/usr/bin/python3", [bin, "schema", "-c", file], {
      encoding: "utf8",
      env: { ...process.env, PYTHONPATH: join(root, "usr", "lib", "python3", "dist-packages") },
      stdio: ["ignore", "pipe", "pipe"],
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

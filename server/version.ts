// The daemon's version, from package.json at build time.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

function read(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, "..", "package.json"), join(here, "..", "..", "package.json")]) {
    try {
      const v = (JSON.parse(readFileSync(p, "utf8")) as { name?: string; version?: string });
      if (v.name === "vmm" && v.version) return v.version;
    } catch {
      // try the next location
    }
  }
  return "0.0.0-unknown";
}

/** The daemon's version from package.json ("0.0.0-unknown" when none is found). */
export const VERSION = read();

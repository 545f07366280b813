// docs/configuration.md's reference block stays true: every key the daemon
// knows is listed, with its real default. Values written as "<...>" (those
// that depend on the state directory) are only checked for presence.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { loadConfig, toToml } from "./load.js";

const ROOT = join(import.meta.dirname, "..", "..");

function referenceBlock(): string {
  const md = readFileSync(join(ROOT, "docs", "configuration.md"), "utf8");
  const from = md.indexOf("```toml", md.indexOf("## Reference"));
  return md.slice(from + "```toml".length, md.indexOf("```", from + 7));
}

describe("docs/configuration.md", () => {
  it("lists every key with its default", () => {
    const doc = parse(referenceBlock()) as Record<string, unknown>;
    const code = parse(toToml(loadConfig(undefined, { VMM_STATE_DIR: "/var/lib/vmm-docs" }))) as Record<string, unknown>;
    const flat = (o: Record<string, unknown>, prefix = ""): [string, unknown][] =>
      Object.entries(o).flatMap(([k, v]) =>
        v !== null && typeof v === "object" && !Array.isArray(v) && !(prefix === "networking." && k === "bridge_subnets") ? flat(v as Record<string, unknown>, `${prefix}${k}.`) : [[`${prefix}${k}`, v] as [string, unknown]],
      );
    const documented = new Map(flat(doc));
    for (const [key, value] of flat(code)) {
      expect(documented.has(key), `${key} is not documented`).toBe(true);
      const d = documented.get(key);
      if (typeof d === "string" && d.startsWith("<")) continue; // depends on the state directory
      expect([key, d]).toEqual([key, value]);
    }
    for (const key of ["auth.tokens", "auth.lease_tokens"]) expect(documented.get(key)).toEqual([]);
  });
});

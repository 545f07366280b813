// lockFile: held by this process, refused to another naming our pid, free
// again once released; never through a symlink.
import { afterEach, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { lockFile } from "./lock.js";

const ADDON = resolve(import.meta.dirname, "build", "Release", "vmm_native.node");

/** What another process gets when it tries to lock `path`. */
function tryFromChild(path: string): { fd?: number; heldBy?: number } {
  const r = spawnSync(process.execPath, ["-e", `const a = require(${JSON.stringify(ADDON)}); process.stdout.write(JSON.stringify(a.lockFile(${JSON.stringify(path)})))`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { fd?: number; heldBy?: number };
}

let dir = "";
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("lockFile", () => {
  it("is exclusive across processes and names the holder", () => {
    dir = mkdtempSync(join(tmpdir(), "vmm-lock-"));
    const path = join(dir, "x.lock");
    const mine = lockFile(path);
    expect("fd" in mine).toBe(true);
    expect(tryFromChild(path)).toEqual({ heldBy: process.pid });
    closeSync((mine as { fd: number }).fd);
    expect(tryFromChild(path).fd).toBeGreaterThan(2);
  });

  it("refuses a symlink in place of the lock file", () => {
    dir = mkdtempSync(join(tmpdir(), "vmm-lock-"));
    writeFileSync(join(dir, "target"), "");
    symlinkSync(join(dir, "target"), join(dir, "x.lock"));
    expect(() => lockFile(join(dir, "x.lock"))).toThrow(/ELOOP|Too many levels of symbolic links/);
  });

  it("checks its argument", () => {
    expect(() => (lockFile as (p: unknown) => unknown)(42)).toThrow(/Usage: lockFile/);
  });
});

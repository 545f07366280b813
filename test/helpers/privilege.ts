// "Guests are not root": what a process runs as, from /proc/PID/status.
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { expect } from "vitest";

/** Real, effective, saved and filesystem uids and gids, and the effective capabilities, of `pid`. */
export function credentials(pid: number): { uids: number[]; gids: number[]; capEff: bigint } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => status.match(new RegExp(`^${name}:\\s*(.*)$`, "m"))?.[1]?.trim() ?? "";
  return {
    uids: field("Uid").split(/\s+/).map(Number),
    gids: field("Gid").split(/\s+/).map(Number),
    capEff: BigInt(`0x${field("CapEff") || "0"}`),
  };
}

/** The uid and gid of `user`, from getent. */
function idsOf(user: string): { uid: number; gid: number } {
  const r = spawnSync("getent", ["passwd", user], { encoding: "utf8" });
  const f = r.stdout.split(":");
  if (r.status !== 0 || f.length < 4) throw new Error(`user ${user} does not exist: run scripts/setup.sh`);
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/**
 * Asserts that QEMU process `pid` runs as `user` (default vmm-qemu, the
 * default qemu.user): every uid and gid is that user's, none is 0, and it
 * holds no capability.
 */
export function expectUnprivileged(pid: number, user = "vmm-qemu"): void {
  expect(pid, "QEMU pid").toBeGreaterThan(0);
  const want = idsOf(user);
  const c = credentials(pid);
  expect(c.uids, `uids of QEMU pid ${pid}`).toEqual([want.uid, want.uid, want.uid, want.uid]);
  expect(c.gids, `gids of QEMU pid ${pid}`).toEqual([want.gid, want.gid, want.gid, want.gid]);
  expect(c.uids.concat(c.gids)).not.toContain(0);
  expect(c.capEff, `effective capabilities of QEMU pid ${pid}`).toBe(0n);
}

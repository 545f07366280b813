// The relay processes' shared steering lock (native/relayd/steer.cc) with
// real processes: one killed while holding it, one stopped while holding it.
// Builds native/relayd/test/steer_lock.cc with the steering sources.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const src = join(dirname(fileURLToPath(import.meta.url)), "relayd");

describe("vmm-relayd steering lock", () => {
  it("recovers from a holder that died and times out on one that is stopped", () => {
    const dir = mkdtempSync(join(tmpdir(), "vmm-lock-"));
    try {
      const bin = join(dir, "steer_lock");
      const cc = spawnSync("c++", ["-std=c++17", "-O2", "-Wall", "-o", bin, join(src, "test", "steer_lock.cc"), join(src, "steer.cc"), join(src, "slots.cc")], { encoding: "utf8" });
      expect(cc.status, cc.stderr).toBe(0);
      const r = spawnSync(bin, { encoding: "utf8", timeout: 20_000 });
      expect(r.signal, "the test program hung (a waiter never got the lock)").toBeNull();
      const [dead, stopped, after] = r.stdout.trim().split("\n").map((l) => l.split(" "));
      expect(dead![1]).toBe("taken");
      expect(Number(dead![2])).toBeLessThan(1000);
      expect(stopped![1]).toBe("timeout");
      expect(Number(stopped![2])).toBeGreaterThanOrEqual(150);
      expect(Number(stopped![2])).toBeLessThan(2000);
      expect(after![1]).toBe("taken");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

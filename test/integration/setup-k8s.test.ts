// scripts/setup-k8s.sh: the control plane it built (scripts/test.sh runs it
// first) is found again without rebuilding and reports the pinned versions;
// a cache without it says how to build it; a Go module proxy that refuses
// fails the build at once with the proxy's own error.
import { describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../helpers/daemon.js";

const SCRIPT = join(ROOT, "scripts", "setup-k8s.sh");

function run(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, timeout: 60_000, env: { ...process.env, ...env } }, (e, out, err) =>
      resolve({ code: e === null ? 0 : typeof e.code === "number" ? e.code : null, out, err }));
  });
}

describe("scripts/setup-k8s.sh", () => {
  it("finds the built control plane again, at the pinned versions", async () => {
    const r = await run("bash", [SCRIPT, "--bin-dir"]);
    expect(r.code, r.err).toBe(0);
    const bin = r.out.trim();
    expect(bin).toMatch(/\/k8s\/kube-v1\.37\.2-etcd-v3\.7\.3-[0-9a-f]{12}\/bin$/);
    expect(readdirSync(bin).sort()).toEqual(["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"]);
    expect((await run(join(bin, "kube-apiserver"), ["--version"])).out.trim()).toBe("Kubernetes v1.37.2");
    expect((await run(join(bin, "etcd"), ["--version"])).out).toMatch(/^etcd Version: 3\.7\.3$/m);
    expect((await run(join(bin, "kubectl"), ["version", "--client"])).out).toMatch(/^Client Version: v1\.37\.2$/m);
  });

  it("says how to build it when the cache does not hold it", async () => {
    const cache = mkdtempSync(join(tmpdir(), "vmm-k8s-cache-"));
    try {
      const r = await run("bash", [SCRIPT, "--bin-dir"], { VMM_CACHE: cache });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/setup-k8s: the control plane is not built at .*: run bash scripts\/setup-k8s\.sh/);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it("fails at once with the proxy's error when the Go module proxy refuses, building nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vmm-k8s-refused-"));
    try {
      // An empty module cache and no proxy: every module must be fetched, and cannot be.
      const r = await run("bash", [SCRIPT], { VMM_CACHE: join(dir, "cache"), GOMODCACHE: join(dir, "mod"), GOPROXY: "off" });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/setup-k8s: the Go module proxy refused the modules of .*scripts\/k8s\/kubernetes \(GOPROXY=off\)/);
      expect(r.err).toMatch(/module lookup disabled by GOPROXY=off/);
      expect(r.err).toMatch(/make a Go module proxy reachable \(GOPROXY\) and rerun/);
      // Nothing half-built is left to be mistaken for a build.
      const k8s = join(dir, "cache", "k8s");
      expect(existsSync(k8s) ? readdirSync(k8s).filter((n) => n !== ".lock") : []).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

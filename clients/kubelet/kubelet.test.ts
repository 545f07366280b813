// vmm-kubelet's Go unit tests (the pod -> VM mapping table, pod status,
// config, node, provider logic with a fake vmmd), run offline: the module
// and build caches were filled by scripts/setup-k8s.sh.
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { resolve } from "node:path";

const DIR = resolve(import.meta.dirname);

function goTest(): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const p = spawn("go", ["test", "-trimpath", "-count=1", "./..."], {
      cwd: DIR,
      env: { ...process.env, GOFLAGS: "-mod=readonly -buildvcs=false", GOPROXY: "off", GOTOOLCHAIN: "local" },
    });
    let out = "";
    p.stdout.on("data", (b: Buffer) => (out += b.toString()));
    p.stderr.on("data", (b: Buffer) => (out += b.toString()));
    p.once("exit", (code) => done({ code, out }));
  });
}

describe("vmm-kubelet", () => {
  it("go test ./... passes", async () => {
    const r = await goTest();
    expect(r.code, r.out).toBe(0);
    for (const pkg of ["podvm"]) expect(r.out).toMatch(new RegExp(`^ok\\s+vmm\\.dev/vmm/clients/kubelet/internal/${pkg}\\s`, "m"));
  }, 600_000);
});

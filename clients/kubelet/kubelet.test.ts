// vmm-kubelet outside a cluster: its Go unit tests (the pod -> VM mapping
// table, pod status, node, provider logic with a fake vmmd) pass; its
// configuration errors name every bad flag; its systemd unit passes
// `systemd-analyze verify`. Everything runs offline: scripts/setup-k8s.sh
// filled the module and build caches.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const DIR = resolve(import.meta.dirname);
const ROOT = resolve(DIR, "..", "..");
const OFFLINE = { ...process.env, GOFLAGS: "-mod=readonly -buildvcs=false", GOPROXY: "off", GOTOOLCHAIN: "local" };

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const p = spawn(cmd, args, { cwd: opts.cwd ?? DIR, env: opts.env ?? process.env });
    let out = "";
    p.stdout.on("data", (b: Buffer) => (out += b.toString()));
    p.stderr.on("data", (b: Buffer) => (out += b.toString()));
    p.once("exit", (code) => done({ code, out }));
  });
}

let tmp = "";
let bin = "";
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "vmm-kubelet-"));
  bin = join(tmp, "vmm-kubelet");
  const r = await run("bash", [join(ROOT, "scripts", "build-kubelet.sh"), bin], { env: OFFLINE });
  expect(r.code, r.out).toBe(0);
}, 600_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("vmm-kubelet", () => {
  it("go test ./... passes", async () => {
    const r = await run("go", ["test", "-trimpath", "-count=1", "./..."], { env: OFFLINE });
    expect(r.code, r.out).toBe(0);
    for (const pkg of ["config", "node", "podvm", "provider"]) {
      expect(r.out).toMatch(new RegExp(`^ok\\s+vmm\\.dev/vmm/clients/kubelet/internal/${pkg}\\s`, "m"));
    }
  }, 600_000);

  it("names every bad flag at once and exits 2", async () => {
    const r = await run(bin, ["--node-name=Bad_Name", "--node-ip=0.0.0.0", "--port=0", "--max-pods=0",
      "--default-networking-mode=custom", "--node-lease-duration=1s", "--tls-cert-file=/x"]);
    expect(r.code).toBe(2);
    for (const flag of ["node-name", "node-ip", "port", "max-pods", "default-networking-mode", "node-lease-duration", "tls-cert-file"]) {
      expect(r.out).toMatch(new RegExp(`^vmm-kubelet: --${flag}: `, "m"));
    }
  });

  it("scripts/systemd/vmm-kubelet.service passes systemd-analyze verify, with no warning", async () => {
    const unit = readFileSync(join(ROOT, "scripts", "systemd", "vmm-kubelet.service"), "utf8");
    for (const d of ["After=vmmd.service", "CapabilityBoundingSet=\n", "NoNewPrivileges=true", "ExecStart=/usr/local/bin/vmm-kubelet "]) expect(unit).toContain(d);
    // The unit names the installed binary; verify checks that it exists, so
    // point it at the one just built.
    writeFileSync(join(tmp, "vmm-kubelet.service"), unit.replaceAll("/usr/local/bin/vmm-kubelet", bin));
    const ok = await run("systemd-analyze", ["verify", "./vmm-kubelet.service"], { cwd: tmp });
    expect(ok.out).toBe("");
    expect(ok.code).toBe(0);
    writeFileSync(join(tmp, "broken.service"), unit.replaceAll("/usr/local/bin/vmm-kubelet", bin).replace("Restart=always", "Restart=sometimes"));
    const bad = await run("systemd-analyze", ["verify", "./broken.service"], { cwd: tmp });
    expect(bad.out).toMatch(/broken\.service:\d+: Failed to parse service restart specifier/);
  });
});

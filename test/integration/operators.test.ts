// What operators get: the systemd unit passes `systemd-analyze verify`, the
// example /etc/vmm/vmm.toml passes --check-config, --print-config prints
// TOML that loads back, vmmd --version.
import { describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, VMMD } from "../helpers/daemon.js";

function run(file: string, args: string[], cwd = ROOT): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 60_000 }, (e, out, err) => resolve({ code: e === null ? 0 : typeof e.code === "number" ? e.code : null, out, err }));
  });
}

describe("operators", () => {
  it("scripts/systemd/vmmd.service passes systemd-analyze verify, with no warning", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vmm-unit-"));
    try {
      copyFileSync(join(ROOT, "scripts", "systemd", "vmmd.service"), join(dir, "vmmd.service"));
      const r = await run("systemd-analyze", ["verify", "./vmmd.service"], dir);
      expect(r.err + r.out).toBe("");
      expect(r.code).toBe(0);
      // The directives the guests' survival and the sandbox rest on.
      const unit = readFileSync(join(dir, "vmmd.service"), "utf8");
      for (const d of ["KillMode=process", "ProtectSystem=strict", "StateDirectory=vmm", "DevicePolicy=closed", "ExecStart=/usr/bin/node /opt/vmm/dist/server/main.js --config /etc/vmm/vmm.toml"]) expect(unit).toContain(d);
      // A broken unit is noticed: the check can fail.
      writeFileSync(join(dir, "broken.service"), unit.replace("KillMode=process", "KillMode=sometimes"));
      const bad = await run("systemd-analyze", ["verify", "./broken.service"], dir);
      expect(bad.err).toMatch(/broken\.service:\d+: Failed to parse kill mode/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the example vmm.toml is valid; --print-config loads back; --version", async () => {
    const ok = await run(process.execPath, [VMMD, "--check-config", "--config", join(ROOT, "docs", "vmm.example.toml")]);
    expect(ok.out).toMatch(/vmm\.example\.toml: ok/);
    expect(ok.code).toBe(0);
    const printed = await run(process.execPath, [VMMD, "--print-config", "--config", join(ROOT, "docs", "vmm.example.toml")]);
    expect(printed.out).toMatch(/^state_dir = "\/var\/lib\/vmm"$/m);
    const dir = mkdtempSync(join(tmpdir(), "vmm-printed-"));
    try {
      writeFileSync(join(dir, "p.toml"), printed.out);
      expect((await run(process.execPath, [VMMD, "--check-config", "--config", join(dir, "p.toml")])).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const v = await run(process.execPath, [VMMD, "--version"]);
    expect(v.out).toBe(`vmmd ${JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version}\n`);
  });

  it("scripts/setup.sh skips every step that is up to date, and leaves git status as it was", async () => {
    const status = () => run("git", ["status", "--porcelain", "--untracked-files=all"]);
    const before = (await status()).out;
    await run("bash", ["scripts/setup.sh"]); // brings everything up to date
    const again = await run("bash", ["scripts/setup.sh"]);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/^setup: native addon up to date$/m);
    expect(again.out).toMatch(/^setup: TypeScript build up to date$/m);
    expect(again.out).not.toMatch(/npm install|tsc\n/);
    expect((await status()).out).toBe(before);
  }, 600_000);
});

// scripts/setup-bridge.sh in the private namespace: --dry-run changes
// nothing, setup builds every piece, check sees them, destroy removes them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ROOT } from "../helpers/daemon.js";
import { requireNetns } from "../guest/netns.js";
import { processRunning } from "../helpers/net.js";
import { Lan } from "../helpers/lan.js";
import { bridgeMac } from "../../server/host/iproute.js";

const SCRIPT = resolve(ROOT, "scripts", "setup-bridge.sh");
const BR = "vmbr-sb";
let dir = "";
let lan: Lan;
let args: string[] = [];

function run(...a: string[]) {
  return spawnSync("bash", [SCRIPT, ...a, ...args], { encoding: "utf8", timeout: 30_000 });
}
const exists = (name: string) => spawnSync("ip", ["link", "show", name]).status === 0;
const nftHas = (family: string, table: string) => spawnSync("nft", ["list", "table", family, table]).status === 0;

beforeAll(() => {
  requireNetns();
  dir = mkdtempSync(join(tmpdir(), "vmm-setup-bridge-"));
  lan = new Lan();
  lan.bridge("vmuplink0", "10.98.0.1/24"); // stands in for the uplink
  args = ["--bridge", BR, "--cidr", "10.91.0.1/24", "--uplink", "vmuplink0", "--conf-dir", join(dir, "etc"), "--run-dir", join(dir, "run"), "--socket", join(dir, "vmmd.sock")];
});
afterAll(async () => {
  run("destroy");
  rmSync(dir, { recursive: true, force: true });
  await lan?.close();
});

describe("setup-bridge.sh", () => {
  it("--dry-run prints what it would do and changes nothing", () => {
    const r = run("--dry-run", "setup");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`+ ip link add ${BR} address ${bridgeMac(BR)} type bridge`);
    expect(r.stdout).toContain("+ ip addr add 10.91.0.1/24 dev vmbr-sb");
    expect(r.stdout).toContain("dhcp-range=10.91.0.50,10.91.0.200,255.255.255.0,12h");
    expect(r.stdout).toContain("no-ping");
    expect(r.stdout).toContain('iifname "vmbr-sb" udp dport { 67, 53 } accept');
    expect(r.stdout).toContain('ip saddr 10.91.0.0/24 oifname "vmuplink0" masquerade');
    expect(exists(BR)).toBe(false);
    expect(existsSync(join(dir, "etc"))).toBe(false);
  });

  it("check reports what is missing", () => {
    const r = run("check");
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/missing\s+bridge vmbr-sb/);
  });

  it("setup builds everything; check agrees; destroy removes it all", () => {
    const s = run("setup");
    expect(s.status, s.stderr + s.stdout).toBe(0);
    const c = run("check");
    expect(c.status, c.stdout).toBe(0);
    expect(c.stdout).not.toContain("missing");
    expect(exists(BR)).toBe(true);
    expect(readFileSync("/etc/qemu/bridge.conf", "utf8")).toContain(`allow ${BR}`);
    expect(nftHas("inet", "vmm_vmbr_sb")).toBe(true);
    expect(nftHas("ip", "vmm_vmbr_sb_nat")).toBe(true);
    const pid = Number(readFileSync(join(dir, "run", "dnsmasq.pid"), "utf8"));
    expect(processRunning(pid)).toBe(true);
    expect(readFileSync(join(dir, "etc", "dnsmasq-vmbr-sb.conf"), "utf8")).toContain("dhcp-script=");
    // Idempotent.
    expect(run("setup").status).toBe(0);

    const dd = run("destroy");
    expect(dd.status, dd.stderr).toBe(0);
    expect(exists(BR)).toBe(false);
    expect(nftHas("inet", "vmm_vmbr_sb")).toBe(false);
    expect(nftHas("ip", "vmm_vmbr_sb_nat")).toBe(false);
    expect(readFileSync("/etc/qemu/bridge.conf", "utf8")).not.toContain(`allow ${BR}`);
    for (let i = 0; i < 50 && processRunning(pid); i++) spawnSync("sleep", ["0.1"]);
    expect(processRunning(pid)).toBe(false);
    expect(run("check").status).toBe(1);
  });

  it("refuses names that would inject", () => {
    const r = spawnSync("bash", [SCRIPT, "--dry-run", "setup", "--bridge", "br0;reboot"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--bridge 'br0;reboot' is not a valid interface name");
  });
});

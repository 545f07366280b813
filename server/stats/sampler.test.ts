// The sampler over a fixture /proc tree: identity checks, CPU % windows,
// NIC counters by mode (TAP and bridge helper TAPs flipped to the guest's
// view, macvtap as is, user mode without counters).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NicSpec, VmRuntime, VmView } from "../vm/types.js";
import { VmStatsSampler } from "./sampler.js";

let proc = "";
const PID = 4242;
const START = 777;

function writeStat(ticks: number, start = START): void {
  const f = Array.from({ length: 50 }, () => "0");
  // f[i] is field i + 3.
  f[14 - 3] = String(ticks);
  f[15 - 3] = "0";
  f[20 - 3] = "5";
  f[22 - 3] = String(start);
  writeFileSync(join(proc, String(PID), "stat"), `${PID} (qemu-system-x86) S ${f.slice(1).join(" ")}`);
}

function view(nics: NicSpec[], runtime: Partial<VmRuntime> = {}): VmView {
  return {
    record: { version: 1, id: "vm-1", createdAt: "", macs: [], spec: { name: "x", vcpus: 1, memoryMib: 256, kernel: "", initrd: "", cmdline: "", disk: "", nics, ports: [], autoRestart: false } },
    runtime: { version: 1, status: "running", instanceId: "i-1", pid: PID, pidStartTime: START, startedAt: new Date(Date.now() - 90_000).toISOString(), ...runtime },
    leases: [],
    events: [],
  };
}

beforeEach(() => {
  proc = mkdtempSync(join(tmpdir(), "vmm-proc-"));
  const dir = join(proc, String(PID));
  mkdirSync(join(dir, "fd"), { recursive: true });
  mkdirSync(join(dir, "fdinfo"));
  mkdirSync(join(proc, "net"));
  writeStat(1000);
  writeFileSync(join(dir, "status"), "Name:\tqemu\nVmRSS:\t  1024 kB\n");
  // fd 3: a TAP the daemon passed (vtx); fd 9 and 12: bridge helper TAPs; fd 5: not a tun.
  for (const [fd, iff] of [[12, "tap7"], [3, "vtx"], [9, "tap3"]] as const) {
    symlinkSync("/dev/net/tun", join(dir, "fd", String(fd)));
    writeFileSync(join(dir, "fdinfo", String(fd)), `pos:\t0\nflags:\t02\niff:\t${iff}\n`);
  }
  symlinkSync("/var/lib/x.log", join(dir, "fd", "5"));
  writeFileSync(
    join(proc, "net", "dev"),
    ["h1", "h2", "vtx: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0", "tap3: 300 3 0 0 0 0 0 0 400 4 0 0 0 0 0 0", "tap7: 500 5 0 0 0 0 0 0 600 6 0 0 0 0 0 0", "mvt: 700 7 0 0 0 0 0 0 800 8 0 0 0 0 0 0"].join("\n"),
  );
});
afterEach(() => rmSync(proc, { recursive: true, force: true }));

describe("VmStatsSampler", () => {
  it("reads CPU seconds, RSS and threads of the VM's own QEMU", () => {
    const r = new VmStatsSampler({ procRoot: proc }).read(view([{ mode: "user" }]));
    expect(r).toMatchObject({ cpuSeconds: 10, rssBytes: 1024 * 1024, threads: 5, process: `${PID}:${START}` });
    expect(r!.nics).toEqual([{ index: 0, hostInterface: "", rxBytes: 0, rxPackets: 0, txBytes: 0, txPackets: 0 }]);
  });

  it("has no reading for a stopped VM, a dead pid or a reused pid", () => {
    const s = new VmStatsSampler({ procRoot: proc });
    expect(s.read(view([{ mode: "user" }], { status: "stopped" }))).toBeUndefined();
    expect(s.read(view([{ mode: "user" }], { pid: 99999 }))).toBeUndefined();
    writeStat(1000, START + 1);
    expect(s.read(view([{ mode: "user" }]))).toBeUndefined();
  });

  it("maps NICs to host interfaces, from the guest's side", () => {
    const nics: NicSpec[] = [{ mode: "tap", bridge: "br0" }, { mode: "bridge", bridge: "br0" }, { mode: "user" }, { mode: "bridge", bridge: "br1" }, { mode: "macvtap", macvtapParent: "eth0" }];
    const r = new VmStatsSampler({ procRoot: proc }).read(view(nics, { hostInterfaces: ["vtx", "", "", "", "mvt"] }))!;
    expect(r.nics.map((n) => [n.hostInterface, n.rxBytes, n.rxPackets, n.txBytes, n.txPackets])).toEqual([
      ["vtx", 200, 2, 100, 1], // TAP: the host side sends what the guest receives
      ["tap3", 400, 4, 300, 3], // bridge helper TAPs in fd order
      ["", 0, 0, 0, 0],
      ["tap7", 600, 6, 500, 5],
      ["mvt", 700, 7, 800, 8], // macvtap counts from the guest's side
    ]);
  });

  it("measures CPU % over at least the minimum window, then since the previous sample", async () => {
    const s = new VmStatsSampler({ procRoot: proc, minWindowMs: 100 });
    const v = view([{ mode: "user" }]);
    setTimeout(() => writeStat(1010), 20); // 0.1 s of CPU during the first window
    const a = await s.sample(v);
    expect(a.reading!.cpuWindowSeconds).toBeGreaterThanOrEqual(0.099);
    expect(a.reading!.cpuPercent).toBeGreaterThan(0);
    expect(a.reading!.cpuPercent).toBeCloseTo((0.1 / a.reading!.cpuWindowSeconds) * 100, 5);
    expect(a.reading!.uptimeSeconds).toBeGreaterThanOrEqual(89);
    expect(a.reading!.configuredBytes).toBe(256 * 1024 * 1024);
    await new Promise((r) => setTimeout(r, 150));
    writeStat(1020);
    const t0 = performance.now();
    const b = await s.sample(v);
    expect(performance.now() - t0).toBeLessThan(50); // the previous sample starts the window: no wait
    expect(b.reading!.cpuWindowSeconds).toBeGreaterThanOrEqual(0.15);
    expect(b.reading!.cpuPercent).toBeCloseTo((0.1 / b.reading!.cpuWindowSeconds) * 100, 5);
  });

  it("answers a stopped VM with its status only", async () => {
    const s = await new VmStatsSampler({ procRoot: proc }).sample(view([{ mode: "user" }], { status: "exited", pid: undefined }));
    expect(s).toEqual({ id: "vm-1", status: "exited", instanceId: "i-1" });
  });
});

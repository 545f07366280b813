// QemuRunner with fakes: a stand-in QEMU process (test/helpers/fake-qemu.mjs,
// which serves QMP and records its argv and fds) and a fake NIC host. What
// is tested: the steps of start(), the cleanup stack per VM lifetime (a
// failed start, a stop, an exit of its own, a stop after a daemon restart),
// and that the daemon's fd copies are closed. (Real QEMU: test/e2e.)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeNicHost, tempStateDir, testConfig } from "../../test/helpers/fakes.js";
import { ROOT } from "../../test/helpers/daemon.js";
import { processesMatching, waitFor } from "../../test/helpers/net.js";
import { VmmError } from "../errors.js";
import { isAlive } from "../host/process.js";
import { ImageCatalog } from "../image/catalog.js";
import { hostIfName } from "./nic/tap.js";
import { QemuRunner } from "./runner.js";
import { runFiles } from "./store.js";
import type { NicSpec, PortSpec, VmView } from "./types.js";

const FAKE_QEMU = join(ROOT, "test", "helpers", "fake-qemu.mjs");

let state: ReturnType<typeof tempStateDir>;
let host: FakeNicHost;
let runners: QemuRunner[];
let kernel: string;

beforeEach(() => {
  state = tempStateDir();
  host = new FakeNicHost();
  runners = [];
  kernel = join(state.dir, "vmlinuz");
  writeFileSync(kernel, "not a kernel");
});

afterEach(async () => {
  for (const r of runners) r.close();
  host.closeAll();
  // A fake QEMU still running (a failed test) was started by this test: end it by PID.
  for (const pid of processesMatching(state.dir)) process.kill(pid, "SIGKILL");
  state.remove();
  delete process.env.FAKE_QEMU_FAIL;
  delete process.env.FAKE_QEMU_IGNORE_POWERDOWN;
  delete process.env.FAKE_QEMU_HMP_REFUSE;
});

function runner(): QemuRunner {
  const cfg = testConfig(state.dir, { qemu: { binary: FAKE_QEMU } });
  const r = new QemuRunner({ cfg, files: (id) => runFiles(join(state.dir, "vms", id)), nicHost: host, images: new ImageCatalog(join(state.dir, "images")), accel: "tcg", pollMs: 50 });
  runners.push(r);
  return r;
}

function view(id: string, nics: NicSpec[], over: Partial<VmView["record"]["spec"]> = {}): VmView {
  mkdirSync(join(state.dir, "vms", id), { recursive: true });
  return {
    record: {
      version: 1,
      id,
      createdAt: new Date().toISOString(),
      spec: { name: id, vcpus: 1, memoryMib: 256, kernel, initrd: "", cmdline: "console=ttyS0", disk: "", nics, ports: [], autoRestart: false, ...over },
      macs: nics.map((_, i) => `52:54:00:00:00:0${i + 1}`),
    },
    runtime: { version: 1, status: "starting", instanceId: "i-1" },
    leases: [],
    events: [],
  };
}

const recorded = (id: string) => JSON.parse(readFileSync(join(state.dir, "vms", id, "fake-qemu.json"), "utf8")) as { argv: string[]; fds: number[] };

describe("QemuRunner", () => {
  it("starts: prepares the NICs, passes their fds as 3, 4, ..., closes its own copies", async () => {
    const r = runner();
    const v = view("web", [{ mode: "tap", bridge: "br0" }, { mode: "user" }, { mode: "macvtap", macvtapParent: "eth0" }]);
    const rt = await r.start(v, () => undefined);
    expect(rt.status).toBe("running");
    expect(rt.hostInterfaces).toEqual([hostIfName("vt", "web", 0), "", hostIfName("vm", "web", 2)]);
    const { argv, fds } = recorded("web");
    expect(argv).toContain(kernel);
    expect(argv.filter((a) => a.startsWith("tap,") || a.startsWith("user,"))).toEqual(["tap,id=net0,fd=3,vhost=off", "user,id=net1", "tap,id=net2,fd=4,vhost=off"]);
    expect(fds).toEqual(expect.arrayContaining([3, 4]));
    expect(host.open.size).toBe(0);
    await r.stop({ ...v, runtime: rt }, { force: true, timeoutMs: 0 });
  });

  it("stops gracefully and unwinds the VM's cleanup stack", async () => {
    const r = runner();
    const v = view("web", [{ mode: "tap", bridge: "br0" }, { mode: "passt" }]);
    const rt = await r.start(v, () => undefined);
    const ref = { pid: rt.pid!, startTime: rt.pidStartTime! };
    host.calls.length = 0;
    await r.stop({ ...v, runtime: rt }, { force: false, timeoutMs: 5000 });
    expect(await isAlive(ref)).toBe(false);
    expect(host.calls).toEqual(["stopProcess 4242", `deleteLink ${hostIfName("vt", "web", 0)}`]);
    expect(existsSync(runFiles(join(state.dir, "vms", "web")).qmp)).toBe(false);
  });

  it("kills a guest that ignores the power button", async () => {
    process.env.FAKE_QEMU_IGNORE_POWERDOWN = "1";
    const r = runner();
    const v = view("web", [{ mode: "user" }]);
    const rt = await r.start(v, () => undefined);
    await r.stop({ ...v, runtime: rt }, { force: false, timeoutMs: 200 });
    expect(await isAlive({ pid: rt.pid!, startTime: rt.pidStartTime! })).toBe(false);
  });

  it("a failed start reports QEMU's words and undoes every NIC", async () => {
    process.env.FAKE_QEMU_FAIL = "could not open disk image: Permission denied";
    const r = runner();
    const v = view("web", [{ mode: "passt" }, { mode: "macvtap", macvtapParent: "eth0" }]);
    const err = await r.start(v, () => undefined).catch((e: unknown) => e as VmmError);
    expect(err).toBeInstanceOf(VmmError);
    expect((err as VmmError).message).toMatch(/QEMU did not start: .*Permission denied/);
    // Newest first: the macvtap of NIC 1, then passt of NIC 0; then our fd copies are closed.
    expect(host.calls.filter((c) => !c.startsWith("closeFd")).slice(-2)).toEqual([`deleteLink ${hostIfName("vm", "web", 1)}`, "stopProcess 4242"]);
    expect(host.open.size).toBe(0);
    expect(host.links.has(hostIfName("vm", "web", 1))).toBe(false);
  });

  it("a failing NIC undoes the NICs prepared before it", async () => {
    host.failAddToBridge = true;
    const r = runner();
    const v = view("web", [{ mode: "macvtap", macvtapParent: "eth0" }, { mode: "tap", bridge: "br0" }]);
    await expect(r.start(v, () => undefined)).rejects.toThrow(/master failed/);
    expect(host.links.has(hostIfName("vm", "web", 0))).toBe(false);
    expect(host.open.size).toBe(0);
  });

  it("a guest exiting on its own unwinds its stack and calls onExit", async () => {
    const r = runner();
    const v = view("web", [{ mode: "macvtap", macvtapParent: "eth0" }]);
    let reason = "";
    const rt = await r.start(v, (why) => (reason = why));
    process.kill(rt.pid!, "SIGKILL");
    await waitFor(async () => {
      if (reason === "") throw new Error("onExit not called yet");
    }, 5000, 20);
    expect(reason).toMatch(/exited on its own/);
    expect(host.links.has(hostIfName("vm", "web", 0))).toBe(false);
  });

  it("after a restart, adopts a running guest and stops it with the stack rebuilt from its runtime", async () => {
    const first = runner();
    const v = view("web", [{ mode: "macvtap", macvtapParent: "eth0" }, { mode: "passt" }]);
    const rt = await first.start(v, () => undefined);
    first.close(); // the daemon goes away; the guest stays
    host.calls.length = 0;
    const second = runner();
    expect(await second.adopt({ ...v, runtime: rt }, () => undefined)).toBe(true);
    await second.stop({ ...v, runtime: rt }, { force: true, timeoutMs: 0 });
    expect(await isAlive({ pid: rt.pid!, startTime: rt.pidStartTime! })).toBe(false);
    expect(host.calls).toEqual([`deleteLink ${hostIfName("vm", "web", 0)}`, "stopProcess 4242"]);
  });

  it("changes a running user-mode VM's ports in QEMU by their difference, all or nothing; passt's not at all", async () => {
    const r = runner();
    const port = (hostPort: number, vmPort: number, nicIndex = 0): PortSpec => ({ protocol: "tcp", hostAddress: "127.0.0.1", hostPort, vmPort, nicIndex });
    const before = [port(8080, 80), port(8081, 81), port(9000, 90, 1)];
    const v = view("web", [{ mode: "user" }, { mode: "passt" }], { ports: before });
    process.env.FAKE_QEMU_HMP_REFUSE = "8083"; // read by the fake QEMU when it starts
    const rt = await r.start(v, () => undefined);
    const hmpLog = join(state.dir, "vms", "web", "fake-qemu-hmp.log");
    const commands = () => (existsSync(hmpLog) ? readFileSync(hmpLog, "utf8").split("\n").filter((l) => l !== "") : []);

    // 8080 unchanged (no command), 8081 to another guest port, 8082 new.
    const after = [port(8080, 80), port(8081, 91), port(8082, 82), port(9000, 90, 1)];
    await r.updatePorts({ ...v, runtime: rt }, after);
    expect(commands()).toEqual(["hostfwd_remove net0 tcp:127.0.0.1:8081", "hostfwd_add net0 tcp:127.0.0.1:8081-:91", "hostfwd_add net0 tcp:127.0.0.1:8082-:82"]);

    // QEMU refuses the second of three commands: the first is undone, and the error names the refused one.
    writeFileSync(hmpLog, "");
    const v2 = { ...v, record: { ...v.record, spec: { ...v.record.spec, ports: after } }, runtime: rt };
    const err = await r.updatePorts(v2, [port(8080, 80), port(8081, 91), port(8083, 83), port(9000, 90, 1)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmmError);
    expect((err as VmmError).kind).toBe("unavailable");
    expect((err as VmmError).message).toContain('QEMU refused "hostfwd_add net0 tcp:127.0.0.1:8083-:83"');
    expect(commands()).toEqual(["hostfwd_remove net0 tcp:127.0.0.1:8082", "hostfwd_add net0 tcp:127.0.0.1:8083-:83", "hostfwd_add net0 tcp:127.0.0.1:8082-:82"]);

    // passt maps its ports when it starts: a change is refused before QEMU is asked anything.
    writeFileSync(hmpLog, "");
    const passt = await r.updatePorts(v2, [port(8080, 80), port(8081, 91), port(8082, 82), port(9001, 90, 1)]).catch((e: unknown) => e);
    expect((passt as VmmError).kind).toBe("precondition");
    expect((passt as VmmError).message).toContain("passt maps ports when it starts");
    expect(commands()).toEqual([]);
    await r.stop({ ...v, runtime: rt }, { force: true, timeoutMs: 0 });
  });

  it("refuses a kernel that does not exist, before preparing anything", async () => {
    const r = runner();
    await expect(r.start(view("web", [{ mode: "tap", bridge: "br0" }], { kernel: "/nonexistent/vmlinuz" }), () => undefined)).rejects.toMatchObject({
      kind: "precondition",
      message: expect.stringContaining("config.kernel"),
    });
    expect(host.calls).toEqual([]);
  });
});

// VM lifecycle through the RPC API on real QEMU guests (TCG): user-mode
// networking with a forwarded port, graceful stop, kill -9 of vmmd with
// re-adoption, removal leaving nothing behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { requireNetns } from "../guest/netns.js";
import { httpGet, freePort, processRunning, waitFor } from "../helpers/net.js";
import { Protocol, VmmService, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { QmpClient } from "../../server/vm/qmp.js";
import { expectUnprivileged } from "../helpers/privilege.js";

let d: DaemonHandle | undefined;
let dir = "";

beforeAll(() => {
  requireNetns();
});
afterAll(async () => {
  if (d) {
    // Stop whatever is left (the test failed half-way), then the daemon.
    const c = client(VmmService, transport(d, "connect", "unix"));
    const { vms } = await c.listVms({}).catch(() => ({ vms: [] }));
    for (const v of vms) await c.removeVm({ id: v.id, force: true }).catch(() => undefined);
    await d.stop();
    d.cleanup();
  }
});

describe("user-mode guest", () => {
  it("boots, serves through its host port, survives kill -9 of vmmd, stops gracefully, is removed cleanly", async () => {
    d = await startDaemon({ tcp: false });
    dir = d.dir;
    const c = () => client(VmmService, transport(d!, "connect", "unix"));
    const port = await freePort();
    const { vm } = await c().createVm({
      id: "user-1",
      config: {
        name: "user guest",
        kernel: guestKernel(),
        initrd: guestInitrd(),
        cmdline: "console=ttyS0 quiet panic=-1 vmm.hostname=user-1",
        ports: [{ protocol: Protocol.TCP, hostPort: port, vmPort: 8080 }],
      },
      start: true,
    });
    expect(vm!.status).toBe(VmStatus.RUNNING);
    expect(vm!.instanceId).not.toBe("");
    const pid = vm!.pid;
    expect(pid).toBeGreaterThan(0);
    // Guests are not root: QEMU runs as qemu.user.
    expectUnprivileged(pid);

    const page = await waitFor(() => httpGet(`http://127.0.0.1:${port}/`), 90_000);
    expect(page).toContain("user-1");
    const info = await c().getInfo({ id: "user-1" });
    expect(info.vm!.forwards.map((f) => f.listenPort)).toEqual([port]);
    expect(info.vm!.events.map((e) => e.kind)).toEqual(expect.arrayContaining(["created", "starting", "started"]));

    // Live port change on a user-mode guest (QMP hostfwd_remove/add).
    const port2 = await freePort();
    const upd = await c().updateVm({ id: "user-1", updatePorts: true, ports: [{ protocol: Protocol.TCP, hostPort: port2, vmPort: 8080 }] });
    expect(upd.vm!.forwards.map((f) => f.listenPort)).toEqual([port2]);
    expect(await httpGet(`http://127.0.0.1:${port2}/`)).toContain("user-1");
    await expect(httpGet(`http://127.0.0.1:${port}/`, 1000)).rejects.toThrow(/ECONNREFUSED/);
    await c().updateVm({ id: "user-1", updatePorts: true, ports: [{ protocol: Protocol.TCP, hostPort: port, vmPort: 8080 }] });
    expect(await httpGet(`http://127.0.0.1:${port}/`)).toContain("user-1");

    // kill -9 the daemon: the guest keeps running and is re-adopted.
    await d.kill9();
    expect(processRunning(pid)).toBe(true);
    d = await startDaemon({ dir, tcp: false });
    const again = await c().getInfo({ id: "user-1" });
    expect(again.vm!.status).toBe(VmStatus.RUNNING);
    expect(again.vm!.pid).toBe(pid);
    expect(again.vm!.events.map((e) => e.kind)).toContain("adopted");
    expect(await httpGet(`http://127.0.0.1:${port}/`)).toContain("user-1");

    // Graceful stop: ACPI power-down through QMP; the guest powers off by itself.
    const t0 = Date.now();
    const stopped = await c().stopVm({ id: "user-1", timeoutSeconds: 60 });
    expect(stopped.vm!.status).toBe(VmStatus.STOPPED);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(processRunning(pid)).toBe(false);
    const serial = (await import("node:fs")).readFileSync(join(d.stateDir, "vms", "user-1", "serial.log"), "utf8");
    expect(serial).toContain("VMM-GUEST-POWEROFF");

    await c().removeVm({ id: "user-1" });
    expect(readdirSync(join(d.stateDir, "vms"))).toEqual([]);
    await expect(c().getInfo({ id: "user-1" })).rejects.toThrow(/not found/);
  }, 240_000);
});

describe("a guest that exits on its own", () => {
  it("is reported exited with an event; with auto_restart it comes back as a new instance", async () => {
    const own = await startDaemon({ tcp: false });
    try {
      const c = client(VmmService, transport(own, "connect", "unix"));
      const base = { kernel: guestKernel(), initrd: guestInitrd(), cmdline: "console=ttyS0 quiet panic=-1" };
      await c.createVm({ id: "exits", config: { name: "exits", ...base }, start: true });
      await c.createVm({ id: "restarts", config: { name: "restarts", autoRestart: true, ...base }, start: true });
      const first = (await c.getInfo({ id: "restarts" })).vm!;
      // Press the power button behind the daemon's back (as a guest-side
      // `poweroff` would): QEMU exits without the daemon asking for it.
      for (const id of ["exits", "restarts"]) {
        const pid = (await c.getInfo({ id })).vm!.pid;
        // The guest's power-button watcher starts late in its /init: press
        // until QEMU is gone (each press on a fresh QMP connection).
        await waitFor(async () => {
          if (!processRunning(pid)) return;
          const qmp = await QmpClient.connect(join(own.stateDir, "vms", id, "qmp.sock"), { timeoutMs: 5_000 });
          try {
            await qmp.systemPowerdown();
          } finally {
            qmp.close();
          }
          await waitFor(async () => {
            if (processRunning(pid)) throw new Error(`QEMU ${pid} still running`);
          }, 3_000, 100);
        }, 60_000, 500);
      }
      const exited = await waitFor(async () => {
        const v = (await c.getInfo({ id: "exits" })).vm!;
        if (v.status !== VmStatus.EXITED) throw new Error(`status ${VmStatus[v.status]}`);
        return v;
      }, 30_000);
      expect(exited.pid).toBe(0);
      expect(exited.events.map((e) => e.kind)).toContain("exited");
      const back = await waitFor(async () => {
        const v = (await c.getInfo({ id: "restarts" })).vm!;
        if (v.status !== VmStatus.RUNNING || v.instanceId === first.instanceId) throw new Error("not restarted yet");
        return v;
      }, 60_000);
      expect(back.pid).not.toBe(first.pid);
      expect(back.events.map((e) => e.kind)).toEqual(expect.arrayContaining(["exited", "auto_restart", "started"]));
      // A VM that exited can be started again.
      const again = await c.startVm({ id: "exits" });
      expect(again.vm!.status).toBe(VmStatus.RUNNING);
      for (const id of ["exits", "restarts"]) await c.removeVm({ id, force: true });
    } finally {
      await own.stop();
      own.cleanup();
    }
  }, 240_000);
});

// VmManager with a fake runner and forwarder over a real store in a
// temporary directory: lifecycle, events, leases -> forwards, paging,
// failure paths. (Real QEMU: test/e2e/lifecycle.test.ts.)
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeForwarder, FakeRunner, FakeWire, tempStateDir, testConfig } from "../../test/helpers/fakes.js";
import type { PartialConfig } from "../config/defaults.js";
import { VmmError } from "../errors.js";
import { VmManager } from "./manager.js";
import { VmStore } from "./store.js";
import type { RawNic, RawPort, RawVmSpec } from "./types.js";

let state: ReturnType<typeof tempStateDir>;
let runner: FakeRunner;
let fwd: FakeForwarder;
const subnets = new Map<string, string>([["net-a", "10.70.0.0/24"]]);

function manager(over: PartialConfig = {}): VmManager {
  const cfg = testConfig(state.dir, {
    ...over,
    networking: { allowedModes: ["user", "bridge", "vmnet", "custom"], forwardServiceEnabled: true, bridgeSubnets: { vmmbr0: "10.60.0.0/24" }, ...over.networking },
  });
  const networks = { subnetOf: (id: string) => subnets.get(id), info: (id: string) => (subnets.has(id) ? { subnet: subnets.get(id)!, bridge: `vmnet-${id}`, gateway: "10.70.0.1" } : undefined) };
  // A network whose wire confirms every lease (verification: leases.test.ts).
  return new VmManager({ cfg, store: new VmStore(state.dir), runner, forwarder: fwd, networks, wire: new FakeWire(true) });
}

const nic = (mode: string, over: Partial<RawNic> = {}): RawNic => ({ mode, bridge: "", macvtapParent: "", networkId: "", customNetdev: "", ...over });
const port = (hostPort: number, vmPort = 80, nicIndex = 0): RawPort => ({ protocol: "tcp", hostAddress: "", hostPort, vmPort, nicIndex, path: undefined, proxyProtocol: false });
function spec(over: Partial<RawVmSpec> = {}): RawVmSpec {
  return { name: "web", vcpus: 0, memoryMib: 0, kernel: "/g/vmlinuz", initrd: "", cmdline: "", disk: "", nics: [], ports: [], autoRestart: false, image: "", imageSizeMib: 0, disks: [], cloudInit: undefined, labels: {}, ...over };
}
const kinds = (m: VmManager, id: string) => m.get(id, 200).events.map((e) => e.kind);

beforeEach(() => {
  state = tempStateDir();
  runner = new FakeRunner();
  fwd = new FakeForwarder();
});
afterEach(() => state.remove());

describe("VmManager lifecycle", () => {
  it("creates, starts, stops and removes a VM, recording each step", async () => {
    const m = manager();
    const v = await m.create("web", spec(), false);
    expect(v.runtime.status).toBe("stopped");
    expect(v.record.macs).toHaveLength(1);
    expect((await m.start("web")).runtime.status).toBe("running");
    expect((await m.stop("web", false, 5)).runtime.status).toBe("stopped");
    expect(kinds(m, "web")).toEqual(["created", "starting", "started", "stopping", "stopped"]);
    expect(m.ids()).toEqual(["web"]);
    await m.remove("web", false);
    expect(() => m.get("web")).toThrow(/not found/);
    expect(m.ids()).toEqual([]);
    expect(runner.calls).toEqual(["start web", "stop web"]);
  });

  it("a StopVm whose runner throws leaves the VM running (not stopping), and can be retried", async () => {
    const m = manager();
    await m.create("web", spec({ nics: [nic("bridge")], ports: [port(8080)] }), true);
    await m.reportLease({ action: "add", mac: m.get("web").record.macs[0]!, ip: "10.60.0.5", hostname: "", expiresUnix: 0, interface: "" });
    runner.failStop = new VmmError("internal", "QEMU pid 1000 did not exit after SIGKILL");
    await expect(m.stop("web", true, undefined)).rejects.toThrow(/did not exit/);
    expect(m.get("web").runtime.status).toBe("running");
    expect(kinds(m, "web")).toContain("stop_failed");
    expect(fwd.rules.get("web")).toHaveLength(1); // forwards restored
    runner.failStop = undefined;
    expect((await m.stop("web", true, undefined)).runtime.status).toBe("stopped");
    expect(fwd.rules.has("web")).toBe(false);
  });

  it("a failed start leaves the VM stopped and says why", async () => {
    const m = manager();
    await m.create("web", spec(), false);
    runner.failStart = new VmmError("precondition", "QEMU did not start: no kernel");
    await expect(m.start("web")).rejects.toThrow(/no kernel/);
    expect(m.get("web").runtime.status).toBe("stopped");
    expect(m.get("web").events.at(-1)).toMatchObject({ kind: "start_failed", message: "QEMU did not start: no kernel" });
  });

  it("a guest exiting on its own is exited, loses its forwards, and restarts with auto_restart", async () => {
    const m = manager();
    await m.create("web", spec({ autoRestart: true, nics: [nic("bridge")], ports: [port(8080)] }), true);
    await m.reportLease({ action: "add", mac: m.get("web").record.macs[0]!, ip: "10.60.0.5", hostname: "", expiresUnix: 0, interface: "" });
    runner.exit("web");
    await m.drain();
    await new Promise((r) => setImmediate(r));
    await m.drain();
    expect(kinds(m, "web")).toEqual(expect.arrayContaining(["exited", "auto_restart"]));
    expect(runner.calls.filter((c) => c === "start web")).toHaveLength(2);
    expect(m.get("web").runtime.status).toBe("running");
  });

  it("re-adopts running guests at init and marks vanished ones exited", async () => {
    const m1 = manager();
    await m1.create("alive", spec(), true);
    await m1.create("gone", spec({ name: "gone" }), true);
    runner = new FakeRunner();
    runner.alive.add("alive");
    const m2 = manager();
    await m2.init();
    expect(m2.get("alive").runtime.status).toBe("running");
    expect(m2.get("gone").runtime.status).toBe("exited");
    expect(m2.ids().sort()).toEqual(["alive", "gone"]); // loaded from the store
    expect(kinds(m2, "alive").at(-1)).toBe("adopted");
  });

  it("refuses to start a VM without a kernel, and a running VM twice", async () => {
    const m = manager();
    await m.create("web", spec({ kernel: "" }), false);
    await expect(m.start("web")).rejects.toMatchObject({ kind: "precondition" });
    await m.update("web", { kernel: "/g/vmlinuz", updatePorts: false, ports: [] });
    await m.start("web");
    await expect(m.start("web")).rejects.toMatchObject({ kind: "precondition" });
  });
});

describe("VmManager input", () => {
  it("StartVm checks the stored configuration against today's settings: what they no longer allow is refused, naming each field", async () => {
    const m1 = manager({ networking: { allowedBridges: ["br-old"] } });
    await m1.create("old", spec({ name: "old", nics: [nic("bridge", { bridge: "br-old" })], ports: [port(8080)] }), false);
    await m1.create("fine", spec({ name: "fine" }), false);
    // br-old leaves networking.allowed_bridges; ports shrink to 9000-9999.
    const m2 = manager({ forward: { portMin: 9000, portMax: 9999 } });
    await m2.init();
    const err = await m2.start("old").then(() => undefined, (e: unknown) => e as VmmError);
    expect(err).toMatchObject({ kind: "precondition" });
    expect(err!.message).toContain("config.nics[0].bridge: bridge br-old is not in networking.allowed_bridges");
    expect(err!.message).toContain("config.ports[0].host_port: is 8080; the configured range is 9000-9999");
    expect(m2.get("old").runtime.status).toBe("stopped");
    expect(kinds(m2, "old").at(-1)).toBe("start_refused");
    expect(runner.calls).not.toContain("start old");
    expect((await m2.start("fine")).runtime.status).toBe("running");

    // A hand-edited record that does not parse as a spec is refused too.
    const path = join(state.dir, "vms", "fine", "vm.json");
    await m2.stop("fine", true, undefined);
    const rec = JSON.parse(readFileSync(path, "utf8")) as { spec: { nics?: unknown } };
    delete rec.spec.nics;
    writeFileSync(path, JSON.stringify(rec));
    const m3 = manager();
    await m3.init();
    await expect(m3.start("fine")).rejects.toMatchObject({ kind: "precondition", message: expect.stringContaining("malformed") });
  });

  it("a VM record that does not parse is left in place and not served; the others are (an unreadable runtime.json: exited)", async () => {
    const m1 = manager();
    await m1.create("good", spec({ name: "good" }), false);
    await m1.create("bad", spec({ name: "bad" }), false);
    await m1.create("norun", spec({ name: "norun" }), false);
    writeFileSync(join(state.dir, "vms", "bad", "vm.json"), '{"version":1,"id":"bad","spec":');
    writeFileSync(join(state.dir, "vms", "norun", "runtime.json"), "");
    const m2 = manager();
    await m2.init();
    expect(m2.ids()).toEqual(["good", "norun"]);
    expect((await m2.start("good")).runtime.status).toBe("running");
    // Its runtime.json unreadable: served as exited, and it starts.
    expect(m2.get("norun").runtime.status).toBe("exited");
    expect((await m2.start("norun")).runtime.status).toBe("running");
    expect(() => m2.get("bad")).toThrow(/not found/);
    await expect(m2.create("bad", spec({ name: "bad2" }), false)).rejects.toMatchObject({ kind: "exists", message: expect.stringContaining("its record is unreadable") });
    expect(readFileSync(join(state.dir, "vms", "bad", "vm.json"), "utf8")).toBe('{"version":1,"id":"bad","spec":');
  });

  it("refuses an existing id, a taken host port and an unknown network", async () => {
    const m = manager();
    await m.create("a", spec({ ports: [port(8080)] }), false);
    await expect(m.create("a", spec(), false)).rejects.toMatchObject({ kind: "exists" });
    await expect(m.create("b", spec({ name: "b", ports: [port(8080)] }), false)).rejects.toMatchObject({ kind: "exists", message: expect.stringContaining("config.ports") });
    await expect(m.create("c", spec({ name: "c", nics: [nic("vmnet", { networkId: "net-x" })] }), false)).rejects.toMatchObject({ kind: "not_found" });
  });

  it("refuses a name another VM has (compared in NFC), at create and rename", async () => {
    const m = manager();
    await m.create("a", spec({ name: "café" }), false);
    await m.create("b", spec({ name: "bistro" }), false);
    await expect(m.create("c", spec({ name: "cafe\u0301" }), false)).rejects.toMatchObject({ kind: "exists", message: 'config.name: VM "a" is already named "cafe\u0301"' });
    await expect(m.update("b", { name: "café", updatePorts: false, ports: [] })).rejects.toMatchObject({ kind: "exists", message: expect.stringMatching(/^name: VM "a"/) });
    // Keeping one's own name is no conflict.
    await expect(m.update("a", { name: "café", updatePorts: false, ports: [] })).resolves.toBeDefined();
  });

  it("refuses an id whose run sockets would not fit the unix path limit", async () => {
    const m = manager();
    const id = "v".repeat(63);
    const p = m.create(id, spec(), false);
    if (state.dir.length + "/vms/".length + id.length + "/passt/passt.sock".length > 107) {
      await expect(p).rejects.toMatchObject({ kind: "invalid", message: expect.stringContaining("id: is too long") });
    } else {
      await expect(p).resolves.toBeDefined();
    }
  });

  it("pages ListVms with tokens and refuses a forged token", async () => {
    const m = manager();
    for (let i = 0; i < 5; i++) await m.create(`vm-${i}`, spec({ name: `vm ${i}` }), false);
    const first = m.list({ ids: [], keyword: "", pageSize: 2, pageToken: "" });
    expect(first.vms.map((v) => v.record.id)).toEqual(["vm-0", "vm-1"]);
    expect(first.total).toBe(5);
    const second = m.list({ ids: [], keyword: "", pageSize: 2, pageToken: first.nextPageToken });
    expect(second.vms.map((v) => v.record.id)).toEqual(["vm-2", "vm-3"]);
    const last = m.list({ ids: [], keyword: "", pageSize: 2, pageToken: second.nextPageToken });
    expect(last.nextPageToken).toBe("");
    expect(() => m.list({ ids: [], keyword: "", pageSize: 0, pageToken: "bogus" })).toThrow(/page_token/);
  });

  it("filters ListVms by label selector, pages the matches, and refuses a bad selector", async () => {
    const m = manager();
    for (let i = 0; i < 4; i++) await m.create(`vm-${i}`, spec({ name: `vm ${i}`, labels: { node: i % 2 === 0 ? "a" : "b" } }), false);
    const q = { ids: [], keyword: "", pageSize: 1, pageToken: "", labelSelector: "node=a" };
    const first = m.list(q);
    expect(first.vms.map((v) => v.record.id)).toEqual(["vm-0"]);
    expect(first.total).toBe(2);
    expect(m.list({ ...q, pageToken: first.nextPageToken }).vms.map((v) => v.record.id)).toEqual(["vm-2"]);
    expect(() => m.list({ ...q, labelSelector: "node in (a)" })).toThrow(/label_selector/);
  });

  it("UpdateVm of forwarded ports restores the record when the forwarder refuses", async () => {
    const m = manager();
    await m.create("web", spec({ nics: [nic("bridge")], ports: [port(8080)] }), true);
    await m.reportLease({ action: "add", mac: m.get("web").record.macs[0]!, ip: "10.60.0.5", hostname: "", expiresUnix: 0, interface: "" });
    fwd.failApply = new VmmError("unavailable", "rules[0]: bind tcp 127.0.0.1:9090 failed");
    await expect(m.update("web", { updatePorts: true, ports: [port(9090)] })).rejects.toMatchObject({ kind: "unavailable" });
    expect(m.get("web").record.spec.ports.map((p) => p.hostPort)).toEqual([8080]);
    expect(new VmStore(state.dir).loadRecord("web").spec.ports.map((p) => p.hostPort)).toEqual([8080]);
  });

  it("UpdateVm refused by the forwarder after QEMU took its new ports gives QEMU the old ones back", async () => {
    const m = manager();
    // NIC 0 user mode (QEMU maps its ports), NIC 1 bridged (the forwarder does).
    await m.create("web", spec({ nics: [nic("user"), nic("bridge")], ports: [port(8080), { ...port(8443), nicIndex: 1 }] }), true);
    await m.reportLease({ action: "add", mac: m.get("web").record.macs[1]!, ip: "10.60.0.5", hostname: "", expiresUnix: 0, interface: "" });
    fwd.failApply = new VmmError("unavailable", "rules[0]: bind tcp 127.0.0.1:9443 failed");
    await expect(m.update("web", { updatePorts: true, ports: [port(9090), { ...port(9443), nicIndex: 1 }] })).rejects.toMatchObject({ kind: "unavailable" });
    expect(runner.calls.filter((c) => c.startsWith("updatePorts web"))).toEqual(["updatePorts web 8080,8443 -> 9090,9443", "updatePorts web 9090,9443 -> 8080,8443"]);
    expect(new VmStore(state.dir).loadRecord("web").spec.ports.map((p) => p.hostPort)).toEqual([8080, 8443]);
  });

  it("UpdateVm of a running user-mode VM changes the ports in QEMU first", async () => {
    const m = manager();
    await m.create("web", spec({ ports: [port(8080)] }), true);
    runner.failUpdatePorts = new VmmError("unavailable", "ports: QEMU refused");
    await expect(m.update("web", { updatePorts: true, ports: [port(9090)] })).rejects.toMatchObject({ kind: "unavailable" });
    expect(m.get("web").record.spec.ports.map((p) => p.hostPort)).toEqual([8080]);
    runner.failUpdatePorts = undefined;
    await m.update("web", { updatePorts: true, ports: [port(9090)] });
    expect(runner.calls).toContain("updatePorts web 8080 -> 9090");
    expect(m.get("web").record.spec.ports.map((p) => p.hostPort)).toEqual([9090]);
  });

  it("an update that waited for QEMU is checked again: a name or port another VM took meanwhile refuses it, and QEMU gets its ports back", async () => {
    const m = manager();
    await m.create("a", spec({ name: "a", ports: [port(8080)] }), true);
    await m.create("b", spec({ name: "b" }), false);
    let release!: () => void;
    runner.holdUpdatePorts = new Promise((r) => (release = r));
    const slow = m.update("a", { name: "x", updatePorts: true, ports: [port(9090)] });
    for (let i = 0; i < 100 && !runner.calls.includes("updatePorts a 8080 -> 9090"); i++) await new Promise((r) => setTimeout(r, 1));
    expect(runner.calls).toContain("updatePorts a 8080 -> 9090");
    // b is stopped: nothing to change in QEMU, its update is written at once.
    await m.update("b", { name: "x", updatePorts: false, ports: [] });
    runner.holdUpdatePorts = undefined;
    release();
    await expect(slow).rejects.toMatchObject({ kind: "exists", message: expect.stringContaining('VM "b" is already named "x"') });
    expect(m.get("a").record.spec.name).toBe("a");
    expect(m.get("a").record.spec.ports.map((p) => p.hostPort)).toEqual([8080]);
    // QEMU is given its ports back from what it was given: 9090 -> 8080.
    expect(runner.calls.filter((c) => c.startsWith("updatePorts a"))).toEqual(["updatePorts a 8080 -> 9090", "updatePorts a 9090 -> 8080"]);

    // The same for a port: b takes 9090 while a waits for QEMU.
    runner.holdUpdatePorts = new Promise((r) => (release = r));
    const slow2 = m.update("a", { updatePorts: true, ports: [port(9090)] });
    for (let i = 0; i < 100 && runner.calls.filter((c) => c === "updatePorts a 8080 -> 9090").length < 2; i++) await new Promise((r) => setTimeout(r, 1));
    await m.update("b", { updatePorts: true, ports: [port(9090)] });
    runner.holdUpdatePorts = undefined;
    release();
    await expect(slow2).rejects.toMatchObject({ kind: "exists", message: expect.stringContaining('already mapped by VM "b"') });
    expect(m.get("a").record.spec.ports.map((p) => p.hostPort)).toEqual([8080]);
    expect(new VmStore(state.dir).loadRecord("a").spec.ports.map((p) => p.hostPort)).toEqual([8080]);
  });
});

describe("VmManager leases", () => {
  it("points forwards at the leased IP, follows a new lease, drops them on del", async () => {
    const m = manager();
    await m.create("web", spec({ nics: [nic("bridge")], ports: [port(8080, 80)] }), true);
    const mac = m.get("web").record.macs[0]!;
    const r = await m.reportLease({ action: "add", mac: mac.toUpperCase(), ip: "10.60.0.5", hostname: "web", expiresUnix: 0, interface: "vmmbr0" });
    expect(r).toMatchObject({ vmId: "web", nic: 0 });
    expect(fwd.rules.get("web")).toEqual([{ protocol: "tcp", listenAddress: "127.0.0.1", listenPort: 8080, targetAddress: "10.60.0.5", targetPort: 80 }]);
    await m.reportLease({ action: "old", mac, ip: "10.60.0.6", hostname: "web", expiresUnix: 0, interface: "vmmbr0" });
    expect(fwd.rules.get("web")![0]!.targetAddress).toBe("10.60.0.6");
    await m.reportLease({ action: "del", mac, ip: "10.60.0.5", hostname: "", expiresUnix: 0, interface: "" }); // not its address: no change
    expect(fwd.rules.get("web")![0]!.targetAddress).toBe("10.60.0.6");
    await m.reportLease({ action: "del", mac, ip: "10.60.0.6", hostname: "", expiresUnix: 0, interface: "" });
    expect(fwd.rules.has("web")).toBe(false);
  });

  it("refuses leases outside the subnet, for unknown MACs and for modes without leases", async () => {
    const m = manager();
    await m.create("web", spec({ nics: [nic("bridge")] }), false);
    await m.create("usr", spec({ name: "usr" }), false);
    const mac = m.get("web").record.macs[0]!;
    await expect(m.reportLease({ action: "add", mac, ip: "10.61.0.5", hostname: "", expiresUnix: 0, interface: "" })).rejects.toMatchObject({ kind: "invalid" });
    await expect(m.reportLease({ action: "add", mac: "02:00:00:00:00:99", ip: "10.60.0.5", hostname: "", expiresUnix: 0, interface: "" })).rejects.toMatchObject({ kind: "not_found" });
    await expect(m.reportLease({ action: "add", mac: m.get("usr").record.macs[0]!, ip: "10.60.0.5", hostname: "", expiresUnix: 0, interface: "" })).rejects.toMatchObject({ kind: "precondition" });
  });

  it("checks vmnet leases against the network's subnet", async () => {
    const m = manager();
    await m.create("web", spec({ nics: [nic("vmnet", { networkId: "net-a" })] }), true);
    const mac = m.get("web").record.macs[0]!;
    await expect(m.reportLease({ action: "add", mac, ip: "10.70.0.9", hostname: "", expiresUnix: 0, interface: "" })).resolves.toMatchObject({ vmId: "web" });
    await expect(m.reportLease({ action: "add", mac, ip: "10.60.0.9", hostname: "", expiresUnix: 0, interface: "" })).rejects.toMatchObject({ kind: "invalid" });
    expect(m.attachedTo("net-a")).toEqual(["web"]);
  });

  it("expires leases and their forwards", async () => {
    const m = manager();
    await m.create("web", spec({ nics: [nic("bridge")], ports: [port(8080)] }), true);
    const mac = m.get("web").record.macs[0]!;
    await m.reportLease({ action: "add", mac, ip: "10.60.0.5", hostname: "", expiresUnix: Math.floor(Date.now() / 1000) + 1, interface: "" });
    expect(fwd.rules.has("web")).toBe(true);
    await new Promise((r) => setTimeout(r, 1100));
    await m.expireLeases();
    expect(fwd.rules.has("web")).toBe(false);
    expect(m.get("web").leases).toEqual([]);
  });

  it("starts with leases.json empty or torn (leases are not fsynced: power loss may leave either)", async () => {
    const m1 = manager();
    await m1.create("web", spec({ nics: [nic("bridge")], ports: [port(8080)] }), true);
    await m1.create("db", spec({ name: "db", nics: [nic("bridge")] }), true);
    for (const [id, ip] of [["web", "10.60.0.5"], ["db", "10.60.0.6"]] as const) {
      await m1.reportLease({ action: "add", mac: m1.get(id).record.macs[0]!, ip, hostname: "", expiresUnix: 0, interface: "" });
    }
    writeFileSync(join(state.dir, "vms", "web", "leases.json"), "");
    writeFileSync(join(state.dir, "vms", "db", "leases.json"), '[{"nic":0,"ip":"10.60');
    runner = new FakeRunner();
    runner.alive.add("web");
    fwd = new FakeForwarder();
    const m2 = manager();
    await m2.init();
    expect(m2.get("web").runtime.status).toBe("running");
    expect(m2.get("web").leases).toEqual([]);
    expect(fwd.rules.has("web")).toBe(false);
    expect(m2.get("db").runtime.status).toBe("exited");
    expect(readFileSync(join(state.dir, "vms", "db", "leases.json"), "utf8").trim()).toBe("[]");
  });
});

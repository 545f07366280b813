// The Connect handlers through connect-es's in-memory transport
// (createRouterTransport): request -> conversion -> domain object -> error
// mapping -> response, with the real VmManager and NetworkRegistry on fakes
// of the runner, the forwarder and the network backend. No sockets. (The
// same RPCs against a real vmmd: test/integration.)
import { Code, createClient, createRouterTransport, type Client } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NetworkMode, NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";
import { LeaseAction, NetworkingMode, Protocol, VmmService, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { FakeForwarder, FakeRunner, FakeWire, tempStateDir, testConfig } from "../../test/helpers/fakes.js";
import { failure } from "../../test/helpers/rpc.js";
import { VmmError } from "../errors.js";
import type { Capabilities } from "../host/capabilities.js";
import { ImageCatalog } from "../image/catalog.js";
import { VmManager } from "../vm/manager.js";
import { VmStore } from "../vm/store.js";
import { NetworkRegistry } from "../vmnet/registry.js";
import type { NetworkBackend, NetworkRecord } from "../vmnet/types.js";
import { errorInterceptor } from "./auth.js";
import { networkService } from "./network-service.js";
import { vmmService } from "./vmm-service.js";

/** A network backend that only records what it realized and destroyed. */
class FakeBackend implements NetworkBackend {
  readonly calls: string[] = [];
  async realize(rec: NetworkRecord) {
    this.calls.push(`realize ${rec.id}`);
  }
  async destroy(rec: NetworkRecord) {
    this.calls.push(`destroy ${rec.id}`);
  }
}

const CAPS: Capabilities = { qemuVersion: "7.2.0", qemuPath: "/usr/bin/qemu-system-x86_64", passtPath: "", bridgeHelper: false, nativeAddon: false, root: true, modes: ["user", "bridge", "vmnet"], accel: "tcg", accelReason: "test" };

let state: ReturnType<typeof tempStateDir>;
let runner: FakeRunner;
let fwd: FakeForwarder;
let backend: FakeBackend;
let vmm: Client<typeof VmmService>;
let nets: Client<typeof NetworkService>;

beforeEach(() => {
  state = tempStateDir();
  runner = new FakeRunner();
  fwd = new FakeForwarder();
  backend = new FakeBackend();
  const cfg = testConfig(state.dir, { networking: { allowedModes: ["user", "bridge", "vmnet"], forwardServiceEnabled: true, bridgeSubnets: { vmmbr0: "10.60.0.0/24" } } });
  const networks = new NetworkRegistry(cfg, backend);
  const vms = new VmManager({ cfg, store: new VmStore(state.dir), runner, forwarder: fwd, networks, wire: new FakeWire(true) });
  const transport = createRouterTransport(
    (router) => {
      router.service(VmmService, vmmService({ cfg, vms, forwards: fwd, caps: CAPS, images: new ImageCatalog(`${state.dir}/images`) }));
      router.service(NetworkService, networkService({ networks, vms }));
    },
    { router: { interceptors: [errorInterceptor] } },
  );
  vmm = createClient(VmmService, transport);
  nets = createClient(NetworkService, transport);
});
afterEach(() => state.remove());

describe("VmmService handlers", () => {
  it("CreateVm -> GetInfo -> StartVm -> StopVm -> RemoveVm", async () => {
    const created = await vmm.createVm({ id: "web", config: { name: "web", kernel: "/g/vmlinuz", ports: [{ protocol: Protocol.TCP, hostPort: 8080, vmPort: 80 }] } });
    expect(created.vm).toMatchObject({ id: "web", name: "web", status: VmStatus.STOPPED });
    expect(created.vm!.nics[0]!.mode).toBe(NetworkingMode.USER);
    const started = await vmm.startVm({ id: "web" });
    expect(started.vm!.status).toBe(VmStatus.RUNNING);
    // user mode: the forward is QEMU's own hostfwd, reported as such
    expect(started.vm!.forwards).toMatchObject([{ listenPort: 8080, targetPort: 80, relay: "qemu-hostfwd" }]);
    expect((await vmm.stopVm({ id: "web", timeoutSeconds: 5 })).vm!.status).toBe(VmStatus.STOPPED);
    await vmm.removeVm({ id: "web" });
    expect((await failure(vmm.getInfo({ id: "web" }))).code).toBe(Code.NotFound);
  });

  it.each([
    { name: "a kernel path with a space", req: { config: { name: "x", kernel: "/g/vm linuz" } }, field: "config.kernel" },
    { name: "a custom netdev without a type", req: { config: { name: "x", nics: [{ mode: NetworkingMode.CUSTOM, customNetdev: ",script=/bin/sh" }] } }, field: "config.nics[0].custom_netdev" },
    { name: "an unknown mode number", req: { config: { name: "x", nics: [{ mode: 42 as NetworkingMode }] } }, field: "config.nics[0].mode" },
    { name: "a bad id", req: { id: "Web_1", config: { name: "x" } }, field: "id" },
  ])("CreateVm refuses $name as invalid_argument naming $field", async ({ req, field }) => {
    const e = await failure(vmm.createVm(req));
    expect(e.code).toBe(Code.InvalidArgument);
    expect(e.rawMessage.split("; ").some((m) => m.startsWith(`${field}: `))).toBe(true);
  });

  it("maps policy and state refusals to their codes", async () => {
    expect((await failure(vmm.createVm({ config: { name: "x", nics: [{ mode: NetworkingMode.TAP }] } }))).code).toBe(Code.PermissionDenied);
    await vmm.createVm({ id: "web", config: { name: "web" } });
    expect((await failure(vmm.startVm({ id: "web" }))).code).toBe(Code.FailedPrecondition); // no kernel
    expect((await failure(vmm.createVm({ id: "web", config: { name: "again" } }))).code).toBe(Code.AlreadyExists);
    expect((await failure(vmm.stopVm({ id: "web", timeoutSeconds: 0 }))).code).toBe(Code.InvalidArgument);
    expect((await failure(vmm.getInfo({ id: "web", maxEvents: 201 }))).code).toBe(Code.InvalidArgument);
  });

  it("StopVm whose runner fails is internal, and the VM stays running", async () => {
    await vmm.createVm({ id: "web", config: { name: "web", kernel: "/g/vmlinuz" }, start: true });
    runner.failStop = new VmmError("internal", "QEMU pid 1000 did not exit after SIGKILL");
    expect((await failure(vmm.stopVm({ id: "web", force: true }))).code).toBe(Code.Internal);
    expect((await vmm.getInfo({ id: "web" })).vm!.status).toBe(VmStatus.RUNNING);
  });

  it("ReportDhcpLease needs an action and points the forwarder at the lease", async () => {
    const vm = (await vmm.createVm({ id: "br", config: { name: "br", kernel: "/g/vmlinuz", nics: [{ mode: NetworkingMode.BRIDGE }], ports: [{ protocol: Protocol.TCP, hostPort: 8080, vmPort: 80 }] }, start: true })).vm!;
    const e = await failure(vmm.reportDhcpLease({ mac: vm.nics[0]!.mac, ip: "10.60.0.5" }));
    expect(e.code).toBe(Code.InvalidArgument);
    expect(e.rawMessage).toMatch(/^action: /);
    const r = await vmm.reportDhcpLease({ action: LeaseAction.ADD, mac: vm.nics[0]!.mac, ip: "10.60.0.5" });
    expect(r).toMatchObject({ vmId: "br", nicIndex: 0 });
    expect(r.forwards).toMatchObject([{ listenPort: 8080, targetAddress: "10.60.0.5", targetPort: 80, relay: "sockets" }]);
  });

  it("ListVms pages and refuses a forged page token", async () => {
    for (let i = 0; i < 3; i++) await vmm.createVm({ id: `vm-${i}`, config: { name: `vm ${i}` } });
    const first = await vmm.listVms({ pageSize: 2, brief: true });
    expect(first.vms.map((v) => v.id)).toEqual(["vm-0", "vm-1"]);
    expect(first.totalSize).toBe(3);
    expect((await vmm.listVms({ pageSize: 2, pageToken: first.nextPageToken })).vms.map((v) => v.id)).toEqual(["vm-2"]);
    expect((await failure(vmm.listVms({ pageToken: "forged" }))).rawMessage).toMatch(/^page_token: /);
  });

  it("GetMeta reports the capabilities and the forwarder", async () => {
    const m = await vmm.getMeta({});
    expect(m).toMatchObject({ qemuVersion: "7.2.0", forwardRelay: "sockets", forwardServiceEnabled: true, networkingModes: [NetworkingMode.USER, NetworkingMode.BRIDGE, NetworkingMode.VMNET] });
  });

  it("WatchEvents says subscribed, then streams events", async () => {
    const ac = new AbortController();
    const stream = vmm.watchEvents({}, { signal: ac.signal })[Symbol.asyncIterator]();
    expect((await stream.next()).value).toMatchObject({ subscribed: true });
    await vmm.createVm({ id: "web", config: { name: "web" } });
    expect((await stream.next()).value).toMatchObject({ vmId: "web", event: { kind: "created" } });
    ac.abort();
  });
});

describe("NetworkService handlers", () => {
  it("creates, lists, refuses to delete a network in use, deletes with force", async () => {
    const net = (await nets.createNetwork({ name: "lab", config: { mode: NetworkMode.HOST, ipv4Subnet: "192.168.77.0/24" } })).network!;
    expect(net).toMatchObject({ name: "lab", ipv4Gateway: "192.168.77.1", attachedVmIds: [] });
    expect(backend.calls).toEqual([`realize ${net.id}`]);
    await vmm.createVm({ id: "web", config: { name: "web", nics: [{ mode: NetworkingMode.VMNET, networkId: net.id }] } });
    expect((await nets.getNetwork({ id: net.id })).network!.attachedVmIds).toEqual(["web"]);
    expect((await failure(nets.deleteNetwork({ id: net.id }))).code).toBe(Code.FailedPrecondition);
    await nets.deleteNetwork({ id: net.id, force: true });
    expect(backend.calls).toEqual([`realize ${net.id}`, `destroy ${net.id}`]);
    expect((await nets.listNetworks({})).networks).toEqual([]);
  });

  it("acquires by serialization and refuses a tampered one", async () => {
    const net = (await nets.createNetwork({ config: { mode: NetworkMode.SHARED } })).network!;
    const held = await nets.acquireNetwork({ serialization: net.serialization, holderDescription: "pid 42" });
    expect(held.network!.holderIds).toEqual([held.holderId]);
    const e = await failure(nets.acquireNetwork({ serialization: net.serialization.slice(0, -2) + "AA" }));
    expect(e.code).toBe(Code.InvalidArgument);
    await nets.releaseNetwork({ networkId: net.id, holderId: held.holderId });
    expect((await failure(nets.releaseNetwork({ networkId: net.id, holderId: held.holderId }))).code).toBe(Code.NotFound);
  });
});

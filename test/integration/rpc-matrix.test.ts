// Every RPC of VmmService and NetworkService, through the TypeScript client,
// over every protocol and transport the daemon serves: Connect and gRPC-Web
// over HTTP/1.1 and HTTP/2, gRPC over HTTP/2; TCP and the unix socket. One
// daemon for the whole file; each combination works on its own records.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, startDaemon, transport, type DaemonHandle, type Protocol, type Via } from "../helpers/daemon.js";
import { failure } from "../helpers/rpc.js";
import { LeaseAction, NetworkingMode, Protocol as PortProtocol, VmStatus, VmmService, type WatchEventsResponse } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode, NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";

const ADMIN = "admin-token-matrix-0123456789";

let d: DaemonHandle;
beforeAll(async () => {
  d = await startDaemon({
    toml: [
      "[auth]",
      `tokens = ["${ADMIN}"]`,
      "[networking]",
      'bridge = "br-matrix"',
      'bridge_subnets = { "br-matrix" = "10.88.0.0/16" }',
      // Ports of bridge-mode VMs are forwarded by the daemon; the records
      // here never run, so nothing binds.
      "forward_service_enabled = true",
    ].join("\n"),
  });
});
afterAll(async () => {
  await d?.stop();
  d?.cleanup();
});

async function codeOf(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  const ce = await failure(p);
  return { code: ce.code, message: ce.rawMessage };
}

interface Combo {
  name: string;
  protocol: Protocol;
  via: Via;
  http2: boolean;
}

const COMBOS: Combo[] = [];
for (const via of ["tcp", "unix"] as const) {
  for (const protocol of ["connect", "grpcweb"] as const) {
    COMBOS.push({ name: `${protocol}/${via}/http1.1`, protocol, via, http2: false });
    COMBOS.push({ name: `${protocol}/${via}/http2`, protocol, via, http2: true });
  }
  COMBOS.push({ name: `grpc/${via}/http2`, protocol: "grpc", via, http2: true });
}

/**
 * Opens WatchEvents; `subscribed` resolves with the stream's first message
 * (which must say subscribed and carry no event), `event` with the first
 * event matching `want`.
 */
function watchFor(vms: Client<typeof VmmService>, signal: AbortSignal, want: (vmId: string, kind: string) => boolean) {
  let first!: (r: WatchEventsResponse) => void;
  const subscribed = new Promise<WatchEventsResponse>((r) => (first = r));
  const event = (async () => {
    let n = 0;
    for await (const r of vms.watchEvents({}, { signal })) {
      if (n++ === 0) first(r);
      else if (want(r.vmId, r.event?.kind ?? "")) return r;
    }
    throw new Error("WatchEvents ended without the expected event");
  })();
  return { subscribed, event };
}

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms))]);

describe.each(COMBOS.map((c, i) => ({ ...c, i })))("every RPC over $name", ({ protocol, via, http2, i }) => {
  const t = () => transport(d, protocol, via, { token: ADMIN, http2 });
  const tag = `${protocol === "grpcweb" ? "gw" : protocol === "grpc" ? "g" : "c"}-${via}-${http2 ? "h2" : "h1"}`;
  const vmId = `mx-${tag}`;
  const hostPort = 40000 + i * 10;

  it("VmmService", async () => {
    const vms = client(VmmService, t());

    const meta = await vms.getMeta({});
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(meta.authRequired).toBe(true);
    expect(meta.forwardServiceEnabled).toBe(true);

    const created = await vms.createVm({
      id: vmId,
      config: { name: `matrix ${tag}`, nics: [{ mode: NetworkingMode.BRIDGE }], ports: [{ protocol: PortProtocol.TCP, hostPort, vmPort: 22 }] },
    });
    expect(created.vm).toMatchObject({ id: vmId, name: `matrix ${tag}`, status: VmStatus.STOPPED });
    expect(created.vm!.nics[0]).toMatchObject({ mode: NetworkingMode.BRIDGE, bridge: "br-matrix" });

    const updated = await vms.updateVm({
      id: vmId,
      name: `matrix ${tag} renamed`,
      updatePorts: true,
      ports: [
        { protocol: PortProtocol.TCP, hostPort, vmPort: 2222 },
        { protocol: PortProtocol.UDP, hostPort: hostPort + 1, vmPort: 53 },
      ],
    });
    expect(updated.vm!.name).toBe(`matrix ${tag} renamed`);
    expect(updated.vm!.config!.ports.map((p) => [p.protocol, p.hostPort, p.vmPort])).toEqual([
      [PortProtocol.TCP, hostPort, 2222],
      [PortProtocol.UDP, hostPort + 1, 53],
    ]);

    const list = await vms.listVms({ ids: [vmId] });
    expect(list.totalSize).toBe(1);
    expect(list.vms.map((v) => v.id)).toEqual([vmId]);
    const brief = await vms.listVms({ keyword: tag, brief: true });
    expect(brief.vms.map((v) => v.id)).toEqual([vmId]);
    expect(brief.vms[0]!.config).toBeUndefined();

    const info = await vms.getInfo({ id: vmId });
    expect(info.vm!.name).toBe(`matrix ${tag} renamed`);
    expect(info.vm!.events.map((e) => e.kind)).toEqual(["created", "updated"]);
    const mac = info.vm!.nics[0]!.mac;
    expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);

    // No kernel configured: the VM cannot start; it is not running, so it
    // cannot stop. (Booting is tested in test/e2e.)
    const start = await codeOf(vms.startVm({ id: vmId }));
    expect(start.code, start.message).toBe(Code.FailedPrecondition);
    expect(start.message).toMatch(/kernel/);
    const stop = await codeOf(vms.stopVm({ id: vmId }));
    expect(stop.code, stop.message).toBe(Code.FailedPrecondition);
    expect((await vms.getInfo({ id: vmId })).vm!.status).toBe(VmStatus.STOPPED);

    // ReadConsole of a VM that never ran: one empty message, then the end.
    const consoleMsgs = [];
    for await (const m of vms.readConsole({ id: vmId })) consoleMsgs.push(m);
    expect(consoleMsgs.map((m) => [m.instanceId, m.offset, m.data.length])).toEqual([["", 0n, 0]]);
    const drain = async () => {
      for await (const _ of vms.readConsole({ id: `${vmId}-none` })) void _;
    };
    expect((await codeOf(drain())).code).toBe(Code.NotFound);

    // GetVmStats of a stopped VM: its status, no sample.
    const stats = await vms.getVmStats({ id: vmId });
    expect(stats).toMatchObject({ id: vmId, status: VmStatus.STOPPED, instanceId: "", cpuSeconds: 0 });
    expect(stats.sampledAt).toBeUndefined();

    const ip = `10.88.${i}.10`;
    // A VM that does not run holds no lease: the report is refused, by name.
    const refused = await failure(vms.reportDhcpLease({ action: LeaseAction.ADD, mac, ip, hostname: `h-${tag}` }));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toBe(`mac: VM "${vmId}" is not running; its leases begin when it runs`);
    expect((await vms.getInfo({ id: vmId })).vm!.nics[0]!.lease).toBeUndefined();

    // WatchEvents: subscribe; the first message says so; create a VM; its
    // "created" event arrives.
    const ac = new AbortController();
    const wid = `mx-w-${tag}`;
    const w = watchFor(vms, ac.signal, (id, kind) => kind === "created" && id === wid);
    w.event.catch(() => undefined);
    try {
      const first = await within(w.subscribed, 5000, "WatchEvents subscribed message");
      expect(first.subscribed).toBe(true);
      expect(first.event).toBeUndefined();
      expect(first.vmId).toBe("");
      await vms.createVm({ id: wid, config: { name: wid } });
      const got = await within(w.event, 5000, "WatchEvents created event");
      expect(got.vmId).toBe(wid);
      expect(got.event!.message).toContain(wid);
    } finally {
      ac.abort();
      await vms.removeVm({ id: wid }).catch((e: unknown) => {
        if (ConnectError.from(e).code !== Code.NotFound) throw e; // not created: the real error is above
      });
    }

    await vms.removeVm({ id: vmId });
    expect((await codeOf(vms.getInfo({ id: vmId }))).code).toBe(Code.NotFound);
    expect((await codeOf(vms.removeVm({ id: vmId }))).code).toBe(Code.NotFound);
    expect((await vms.listVms({ ids: [vmId] })).totalSize).toBe(0);
  });

  it("NetworkService", async () => {
    const nets = client(NetworkService, t());
    const { network } = await nets.createNetwork({
      name: `net ${tag}`,
      config: { mode: NetworkMode.HOST },
    });
    expect(network!.id).toMatch(/^net-/);
    expect(network!.name).toBe(`net ${tag}`);
    expect(network!.config!.mode).toBe(NetworkMode.HOST);
    expect(network!.config!.ipv4Subnet).toMatch(/^\d+\.\d+\.\d+\.0\/24$/);
    expect(network!.serialization).toMatch(/^vmmnet1\./);
    const id = network!.id;

    const got = await nets.getNetwork({ id });
    expect(got.network).toMatchObject({ id, name: `net ${tag}`, ipv4Gateway: network!.ipv4Gateway, serialization: network!.serialization });

    // Page through everything; ours is in there exactly once.
    const ids: string[] = [];
    let pageToken = "";
    do {
      const page = await nets.listNetworks({ pageSize: 1, pageToken });
      expect(page.networks.length).toBeLessThanOrEqual(1);
      ids.push(...page.networks.map((n) => n.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(ids.filter((x) => x === id)).toHaveLength(1);

    const acq = await nets.acquireNetwork({ serialization: network!.serialization, holderDescription: `holder ${tag}` });
    expect(acq.network!.id).toBe(id);
    expect(acq.holderId).not.toBe("");
    expect((await nets.getNetwork({ id })).network!.holderIds).toEqual([acq.holderId]);

    // A holder blocks deletion unless forced.
    expect((await codeOf(nets.deleteNetwork({ id }))).code).toBe(Code.FailedPrecondition);

    await nets.releaseNetwork({ networkId: id, holderId: acq.holderId });
    expect((await nets.getNetwork({ id })).network!.holderIds).toEqual([]);
    expect((await codeOf(nets.releaseNetwork({ networkId: id, holderId: acq.holderId }))).code).toBe(Code.NotFound);

    await nets.deleteNetwork({ id });
    expect((await codeOf(nets.getNetwork({ id }))).code).toBe(Code.NotFound);
    expect((await codeOf(nets.acquireNetwork({ serialization: network!.serialization }))).code).toBe(Code.NotFound);
  });
});

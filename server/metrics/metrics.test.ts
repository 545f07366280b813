// The exposition from stand-in sources (the real scrape by Prometheus is
// test/e2e/metrics.test.ts) and the API-call interceptor over an in-memory
// transport.
import { describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import type { ForwardStatus } from "../forward/index.js";
import type { ProcessReading } from "../stats/sampler.js";
import type { VmStatus, VmView } from "../vm/types.js";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { allVms, Metrics, type MetricsSources } from "./metrics.js";
import { codeName, metricsInterceptor } from "./api.js";

function vm(id: string, status: VmStatus, extra: Partial<VmView> = {}): VmView {
  return {
    record: {
      version: 1,
      id,
      createdAt: "",
      macs: [],
      spec: { name: `${id} "name"`, vcpus: 1, memoryMib: 128, kernel: "", initrd: "", cmdline: "", disk: "", nics: [{ mode: "vmnet", networkId: "net-a" }, { mode: "tap", bridge: "br0" }], ports: [], autoRestart: false },
    },
    runtime: { version: 1, status, instanceId: "i", ...(status === "running" ? { pid: 1, pidStartTime: 1, startedAt: new Date(Date.now() - 5000).toISOString() } : {}) },
    leases: [],
    events: [],
    ...extra,
  };
}

const reading: ProcessReading = {
  process: "1:1",
  at: 0,
  cpuTicks: 250,
  cpuSeconds: 2.5,
  rssBytes: 1000,
  threads: 3,
  nics: [
    { index: 0, hostInterface: "vt0", rxBytes: 10, rxPackets: 1, txBytes: 20, txPackets: 2 },
    { index: 1, hostInterface: "", rxBytes: 0, rxPackets: 0, txBytes: 0, txPackets: 0 },
  ],
};

const rule = (owner: string, port: number): ForwardStatus => ({
  owner,
  protocol: "tcp",
  listenAddress: "127.0.0.1",
  listenPort: port,
  targetAddress: "10.0.0.5",
  targetPort: 80,
  relay: "native",
  counters: { connectionsActive: 2, connectionsTotal: 7, bytesToGuest: 300, bytesFromGuest: 4000, sessionsActive: 0, errors: 1, connectFailures: 1, lastConnectError: "ECONNREFUSED" },
});

function sources(state: { vms: VmView[]; forwards: ForwardStatus[] }): MetricsSources {
  return {
    version: "1.2.3",
    qemuVersion: "7.2.0",
    vms: () => state.vms,
    sampler: { read: (v) => (v.runtime.status === "running" ? reading : undefined) },
    forwards: { list: () => state.forwards, relayKind: "native", dataPathPids: async () => [11, 12] },
    consoleStreams: () => 4,
  };
}

const line = (text: string, prefix: string) => text.split("\n").filter((l) => l.startsWith(prefix));

describe("Metrics", () => {
  it("exposes VMs, NICs, forwards, leases, relay and build info from one snapshot", async () => {
    const running = vm("a", "running", {
      leases: [
        { nic: 0, ip: "10.0.0.5", hostname: "", updatedAt: "", interface: "" },
        { nic: 1, ip: "10.1.0.5", hostname: "", updatedAt: "", interface: "", expiresAt: new Date(Date.now() - 1000).toISOString() },
      ],
    });
    const m = new Metrics(sources({ vms: [running, vm("b", "stopped")], forwards: [rule("a", 8080)] }));
    const text = await m.render();
    expect(line(text, "vmm_vms{")).toEqual(['vmm_vms{status="stopped"} 1', 'vmm_vms{status="starting"} 0', 'vmm_vms{status="running"} 1', 'vmm_vms{status="stopping"} 0', 'vmm_vms{status="exited"} 0']);
    expect(line(text, "vmm_vm_info{")).toEqual(['vmm_vm_info{vm="a",name="a \\"name\\""} 1', 'vmm_vm_info{vm="b",name="b \\"name\\""} 1']);
    expect(line(text, "vmm_vm_cpu_seconds_total{")).toEqual(['vmm_vm_cpu_seconds_total{vm="a"} 2.5']);
    expect(line(text, "vmm_vm_memory_rss_bytes{")).toEqual(['vmm_vm_memory_rss_bytes{vm="a"} 1000']);
    expect(line(text, "vmm_vm_memory_configured_bytes{")).toHaveLength(2);
    expect(line(text, "vmm_vm_uptime_seconds{")).toHaveLength(1);
    expect(line(text, "vmm_vm_network_receive_bytes_total{")).toEqual(['vmm_vm_network_receive_bytes_total{vm="a",nic="0"} 10']);
    expect(line(text, "vmm_vm_network_transmit_packets_total{")).toEqual(['vmm_vm_network_transmit_packets_total{vm="a",nic="0"} 2']);
    expect(line(text, "vmm_dhcp_leases{")).toEqual(['vmm_dhcp_leases{kind="vmnet",network="net-a"} 1']);
    const l = 'owner="a",protocol="tcp",listen="127.0.0.1:8080",relay="native"';
    expect(line(text, "vmm_forward_")).toEqual([
      `vmm_forward_connections_active{${l}} 2`,
      `vmm_forward_connections_total{${l}} 7`,
      `vmm_forward_to_guest_bytes_total{${l}} 300`,
      `vmm_forward_from_guest_bytes_total{${l}} 4000`,
      `vmm_forward_udp_sessions{${l}} 0`,
      `vmm_forward_errors_total{${l}} 1`,
      `vmm_forward_connect_failures_total{${l}} 1`,
      `vmm_forward_rule_up{${l}} 1`,
    ]);
    expect(text).toContain("# TYPE vmm_forward_connections_total counter");
    expect(text).toContain("# TYPE vmm_forward_connections_active gauge");
    expect(line(text, "vmm_relay_processes ")).toEqual(["vmm_relay_processes 2"]);
    expect(line(text, "vmm_console_streams ")).toEqual(["vmm_console_streams 4"]);
    expect(line(text, "vmm_build_info{")[0]).toMatch(/^vmm_build_info\{version="1\.2\.3",qemu_version="7\.2\.0",node_version="[\d.]+"\} 1$/);
    expect(text).toContain("process_cpu_seconds_total");
    // Gauges named *_total would be refused by promtool.
    expect(text).not.toMatch(/^# TYPE \S+_total gauge$/m);
  });

  it("drops the series of VMs and rules that are gone", async () => {
    const state = { vms: [vm("a", "running"), vm("b", "running")], forwards: [rule("a", 8080), rule("b", 8081)] };
    const m = new Metrics(sources(state));
    expect(line(await m.render(), "vmm_vm_cpu_seconds_total{")).toHaveLength(2);
    state.vms = [vm("a", "exited")];
    state.forwards = [];
    const text = await m.render();
    expect(line(text, "vmm_vm_cpu_seconds_total{")).toEqual([]);
    expect(line(text, "vmm_vm_info{")).toEqual(['vmm_vm_info{vm="a",name="a \\"name\\""} 1']);
    expect(line(text, "vmm_forward_")).toEqual([]);
  });

  it("lists every page of VMs", () => {
    const views = Array.from({ length: 2500 }, (_, i) => vm(`v${i}`, "stopped"));
    const lister = {
      list: (q: { pageSize: number; pageToken: string }) => {
        const at = q.pageToken === "" ? 0 : Number(q.pageToken);
        const next = at + q.pageSize < views.length ? String(at + q.pageSize) : "";
        return { vms: views.slice(at, at + q.pageSize), nextPageToken: next };
      },
    };
    expect(allVms(lister).map((v) => v.record.id)).toEqual(views.map((v) => v.record.id));
  });
});

describe("API call metrics", () => {
  it.each([
    [undefined, "ok"],
    [Code.NotFound, "not_found"],
    [Code.InvalidArgument, "invalid_argument"],
    [Code.Unauthenticated, "unauthenticated"],
    [Code.ResourceExhausted, "resource_exhausted"],
  ])("code %s is %s", (code, name) => {
    expect(codeName(code)).toBe(name);
  });

  it("counts unary calls by code with durations, and streams when they end", async () => {
    const m = new Metrics(sources({ vms: [], forwards: [] }));
    const transport = createRouterTransport(
      (router) =>
        router.service(VmmService, {
          getMeta: async () => ({ version: "1" }),
          getInfo: async () => {
            throw new ConnectError("id: nope", Code.NotFound);
          },
          async *watchEvents() {
            yield { subscribed: true };
            yield { vmId: "x" };
          },
        }),
      { router: { interceptors: [metricsInterceptor(m)] } },
    );
    const c = createClient(VmmService, transport);
    await c.getMeta({});
    await c.getMeta({});
    await expect(c.getInfo({ id: "nope" })).rejects.toThrow(/nope/);
    for await (const _ of c.watchEvents({})) void _;
    const text = await m.render();
    expect(line(text, "vmm_api_requests_total{")).toEqual([
      'vmm_api_requests_total{service="vmm.v1.VmmService",method="GetMeta",code="ok"} 2',
      'vmm_api_requests_total{service="vmm.v1.VmmService",method="GetInfo",code="not_found"} 1',
      'vmm_api_requests_total{service="vmm.v1.VmmService",method="WatchEvents",code="ok"} 1',
    ]);
    expect(line(text, "vmm_api_request_duration_seconds_count{")).toEqual([
      'vmm_api_request_duration_seconds_count{service="vmm.v1.VmmService",method="GetMeta"} 2',
      'vmm_api_request_duration_seconds_count{service="vmm.v1.VmmService",method="GetInfo"} 1',
    ]);
    expect(line(text, "vmm_api_streams{")).toEqual(['vmm_api_streams{service="vmm.v1.VmmService",method="WatchEvents"} 0']);
  });
});

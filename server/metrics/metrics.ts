// The daemon's Prometheus metrics (prom-client, text format 0.0.4).
//
// Everything about VMs, forwards and leases is read at scrape time from the
// domain objects (one snapshot per scrape, so every series of a scrape is
// from the same instant); nothing is counted on the forwarder's data path:
// forward counters are the relay's own, read through ForwardService.list().
// Label sets are bounded by configuration (VMs, NICs, forward rules, RPC
// methods, codes), never by traffic (no label per connection or client).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ForwardStatus } from "../forward/index.js";
import type { VmStatsSampler, ProcessReading } from "../stats/sampler.js";
import type { VmStatus, VmView } from "../vm/types.js";

/** What the metrics read from the rest of the daemon. */
export interface MetricsSources {
  version: string;
  qemuVersion: string;
  /** Every VM record. */
  vms(): VmView[];
  sampler: Pick<VmStatsSampler, "read">;
  /** The forward service, if any: rules with their live counters, relay processes. */
  forwards?: { list(): ForwardStatus[]; readonly relayKind: string; dataPathPids(): Promise<number[]> };
  /** Console streams open right now. */
  consoleStreams(): number;
}

/** Every VM of a paged lister (VmManager.list), all pages. */
export function allVms(vms: { list(q: { ids: string[]; keyword: string; pageSize: number; pageToken: string }): { vms: VmView[]; nextPageToken: string } }): VmView[] {
  const out: VmView[] = [];
  let pageToken = "";
  do {
    const page = vms.list({ ids: [], keyword: "", pageSize: 1000, pageToken });
    out.push(...page.vms);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return out;
}

const STATUSES: VmStatus[] = ["stopped", "starting", "running", "stopping", "exited"];

interface Snapshot {
  vms: { view: VmView; reading: ProcessReading | undefined }[];
  forwards: ForwardStatus[];
  relayProcesses: number;
}

/** Where a NIC's leases are counted: its bridge, macvtap parent or vmnet network. */
function leaseNetwork(nic: VmView["record"]["spec"]["nics"][number]): { kind: string; network: string } | undefined {
  if (nic.mode === "vmnet") return { kind: "vmnet", network: nic.networkId ?? "" };
  if (nic.mode === "bridge" || nic.mode === "tap") return { kind: "bridge", network: nic.bridge ?? "" };
  if (nic.mode === "macvtap") return { kind: "macvtap", network: nic.macvtapParent ?? "" };
  return undefined;
}

/**
 * The /metrics registry: VM, forward, lease and relay gauges read from a snapshot taken before each
 * scrape, plus the API counters the interceptor feeds.
 */
export class Metrics {
  readonly registry = new Registry();
  private snap: Snapshot = { vms: [], forwards: [], relayProcesses: 0 };
  private queue: Promise<unknown> = Promise.resolve();
  /** Counted by the API interceptor (api.ts). */
  readonly apiRequests: Counter<"service" | "method" | "code">;
  readonly apiDuration: Histogram<"service" | "method">;
  readonly apiStreams: Gauge<"service" | "method">;

  constructor(private readonly src: MetricsSources) {
    const r = [this.registry];
    // The collect() callbacks below get the metric as `this`; they read the
    // current snapshot through this closure.
    const snap = (): Snapshot => this.snap;
    // The event-loop delay histogram samples every 100 ms (prom-client's
    // default, 10 ms, woke an idle daemon 100 times a second).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    // Gauges that prom-client names *_total, which the exposition format
    // reserves for counters (promtool check metrics refuses them).
    for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.registry.removeSingleMetric(name);

    new Gauge({
      name: "vmm_build_info",
      help: "Version of vmmd and of the QEMU it found; always 1.",
      labelNames: ["version", "qemu_version", "node_version"],
      registers: r,
      collect() {
        this.set({ version: src.version, qemu_version: src.qemuVersion, node_version: process.versions.node }, 1);
      },
    });
    new Gauge({
      name: "vmm_vms",
      help: "VMs by status.",
      labelNames: ["status"],
      registers: r,
      collect() {
        for (const s of STATUSES) this.set({ status: s }, snap().vms.filter((v) => v.view.runtime.status === s).length);
      },
    });
    /** A per-VM gauge over the snapshot, dropping series of VMs that are gone. */
    const perVm = (name: string, help: string, value: (v: Snapshot["vms"][number]) => number | undefined, extra: "name" | undefined = undefined) =>
      new Gauge({
        name,
        help,
        labelNames: extra ? ["vm", extra] : ["vm"],
        registers: r,
        collect() {
          this.reset();
          for (const v of snap().vms) {
            const x = value(v);
            if (x !== undefined) this.set(extra ? { vm: v.view.record.id, name: v.view.record.spec.name } : { vm: v.view.record.id }, x);
          }
        },
      });
    perVm("vmm_vm_info", "One series per VM with its name; always 1.", () => 1, "name");
    perVm("vmm_vm_uptime_seconds", "Seconds since the VM's current run started (running VMs).", ({ view, reading }) =>
      reading && view.runtime.startedAt ? Math.max(0, (Date.now() - Date.parse(view.runtime.startedAt)) / 1000) : undefined,
    );
    perVm("vmm_vm_memory_rss_bytes", "Resident memory of the VM's QEMU process.", ({ reading }) => reading?.rssBytes);
    perVm("vmm_vm_memory_configured_bytes", "Guest RAM as configured.", ({ view }) => view.record.spec.memoryMib * 1024 * 1024);
    new Counter({
      name: "vmm_vm_cpu_seconds_total",
      help: "CPU time (user + system) of the VM's QEMU process; restarts from 0 with every boot.",
      labelNames: ["vm"],
      registers: r,
      collect() {
        this.reset();
        for (const { view, reading } of snap().vms) if (reading) this.inc({ vm: view.record.id }, reading.cpuSeconds);
      },
    });
    /** Per-NIC traffic of running VMs, from the guest's side. */
    const nicCounter = (name: string, help: string, pick: (n: ProcessReading["nics"][number]) => number) =>
      new Counter({
        name,
        help,
        labelNames: ["vm", "nic"],
        registers: r,
        collect() {
          this.reset();
          for (const { view, reading } of snap().vms) {
            for (const n of reading?.nics ?? []) if (n.hostInterface !== "") this.inc({ vm: view.record.id, nic: String(n.index) }, pick(n));
          }
        },
      });
    nicCounter("vmm_vm_network_receive_bytes_total", "Bytes the guest received on a NIC (NICs with a host interface).", (n) => n.rxBytes);
    nicCounter("vmm_vm_network_transmit_bytes_total", "Bytes the guest sent on a NIC.", (n) => n.txBytes);
    nicCounter("vmm_vm_network_receive_packets_total", "Packets the guest received on a NIC.", (n) => n.rxPackets);
    nicCounter("vmm_vm_network_transmit_packets_total", "Packets the guest sent on a NIC.", (n) => n.txPackets);

    new Gauge({
      name: "vmm_dhcp_leases",
      help: "Unexpired DHCP leases of VM NICs, by bridge, macvtap parent or vmnet network.",
      labelNames: ["kind", "network"],
      registers: r,
      collect() {
        this.reset();
        const now = Date.now();
        const count = new Map<string, { kind: string; network: string; n: number }>();
        for (const { view } of snap().vms) {
          for (const l of view.leases) {
            if (l.expiresAt && Date.parse(l.expiresAt) <= now) continue;
            const nic = view.record.spec.nics[l.nic];
            const where = nic && leaseNetwork(nic);
            if (!where) continue;
            const key = `${where.kind}\0${where.network}`;
            const c = count.get(key) ?? { ...where, n: 0 };
            c.n++;
            count.set(key, c);
          }
        }
        for (const c of count.values()) this.set({ kind: c.kind, network: c.network }, c.n);
      },
    });

    const ruleLabels = ["owner", "protocol", "listen", "relay"] as const;
    const labelsOf = (f: ForwardStatus) => ({
      owner: f.owner,
      protocol: f.protocol,
      listen: f.listenAddress.includes(":") ? `[${f.listenAddress}]:${f.listenPort}` : `${f.listenAddress}:${f.listenPort}`,
      relay: f.relay,
    });
    const perRule = (kind: "gauge" | "counter", name: string, help: string, pick: (f: ForwardStatus) => number) => {
      const cfg = { name, help, labelNames: ruleLabels, registers: r };
      if (kind === "gauge")
        return new Gauge({
          ...cfg,
          collect() {
            this.reset();
            for (const f of snap().forwards) this.set(labelsOf(f), pick(f));
          },
        });
      return new Counter({
        ...cfg,
        collect() {
          this.reset();
          for (const f of snap().forwards) this.inc(labelsOf(f), pick(f));
        },
      });
    };
    perRule("gauge", "vmm_forward_connections_active", "Open TCP connections of a forward rule.", (f) => f.counters.connectionsActive);
    perRule("counter", "vmm_forward_connections_total", "TCP connections a forward rule accepted.", (f) => f.counters.connectionsTotal);
    perRule("counter", "vmm_forward_to_guest_bytes_total", "Bytes a forward rule relayed from clients to the guest.", (f) => f.counters.bytesToGuest);
    perRule("counter", "vmm_forward_from_guest_bytes_total", "Bytes a forward rule relayed from the guest to clients.", (f) => f.counters.bytesFromGuest);
    perRule("gauge", "vmm_forward_udp_sessions", "Active UDP sessions of a forward rule.", (f) => f.counters.sessionsActive);
    perRule("counter", "vmm_forward_errors_total", "Failed connects, resets and refused sessions of a forward rule.", (f) => f.counters.errors);
    perRule("counter", "vmm_forward_connect_failures_total", "Connects to the guest that failed (refused, unreachable, timed out).", (f) => f.counters.connectFailures);
    perRule("gauge", "vmm_forward_rule_up", "1 while a forward rule forwards; 0 when it cannot (e.g. its port was taken while the relay restarted).", (f) => (f.error ? 0 : 1));
    new Gauge({
      name: "vmm_relay_processes",
      help: "vmm-relayd processes running (0 before the first rule and with the in-daemon sockets relay).",
      registers: r,
      collect() {
        this.set(snap().relayProcesses);
      },
    });
    new Gauge({
      name: "vmm_console_streams",
      help: "ReadConsole streams open.",
      registers: r,
      collect() {
        this.set(src.consoleStreams());
      },
    });

    this.apiRequests = new Counter({
      name: "vmm_api_requests_total",
      help: "Finished API calls by service, method and Connect code (streams count when they end).",
      labelNames: ["service", "method", "code"],
      registers: r,
    });
    this.apiDuration = new Histogram({
      name: "vmm_api_request_duration_seconds",
      help: "Duration of unary API calls.",
      labelNames: ["service", "method"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    });
    this.apiStreams = new Gauge({
      name: "vmm_api_streams",
      help: "Server streams open (WatchEvents, ReadConsole, health Watch).",
      labelNames: ["service", "method"],
      registers: r,
    });
  }

  /** Content-Type of render()'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition of every metric, from one snapshot (scrapes are serialized). */
  render(): Promise<string> {
    const run = this.queue.then(async () => {
      const views = this.src.vms();
      const f = this.src.forwards;
      this.snap = {
        vms: views.map((view) => ({ view, reading: this.src.sampler.read(view) })),
        forwards: f?.list() ?? [],
        relayProcesses: f && f.relayKind === "native" ? (await f.dataPathPids()).length : 0,
      };
      return this.registry.metrics();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

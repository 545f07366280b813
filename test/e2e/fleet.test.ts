// The fleet under Kubernetes, end to end: a real control plane (etcd,
// kube-apiserver, kube-scheduler, kube-controller-manager built by
// scripts/setup-k8s.sh) on 127.0.0.1, and two vmm hosts in the private
// namespace, each with its own bridge, dnsmasq + lease hook, vmmd and
// vmm-kubelet (running as the service account of
// clients/kubelet/deploy/rbac.yaml, with exactly its verbs). A Deployment of
// two VM pods spreads one guest per host; pod IP = lease; hostPorts answer
// on each host; `kubectl logs` reads the serial console; scaling to 0 leaves
// nothing behind; a restarted vmm-kubelet re-adopts its VM; a host whose
// vmm-kubelet stops goes NotReady and its pod is recreated on the other
// host (node timeouts shortened), and the VM left behind is removed when
// that vmm-kubelet comes back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { requireNetns } from "../guest/netns.js";
import { httpGet, waitFor } from "../helpers/net.js";
import { ControlPlane, until } from "../../bench/fleet/controlplane.js";
import { buildKubelet, FleetHost } from "../../bench/fleet/host.js";
import { VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const RBAC = join(ROOT, "clients", "kubelet", "deploy", "rbac.yaml");
const PORT = 18080;

let dir = "";
let cp: ControlPlane | undefined;
const hosts: FleetHost[] = [];

/** A Deployment of VM pods: image busybox (the test guest), one hostPort, spread over hosts. */
function deployment(replicas: number): string {
  return JSON.stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default" },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      template: {
        // vmm.shell=1: the test guest runs a shell on its console, for attach.
        metadata: { labels: { app: "web" }, annotations: { "vmm.dev/kernel-args": "vmm.shell=1" } },
        spec: {
          terminationGracePeriodSeconds: 3,
          tolerations: [{ key: "virtual-kubelet.io/provider", operator: "Equal", value: "vmm", effect: "NoSchedule" }],
          topologySpreadConstraints: [{
            maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule",
            nodeTaintsPolicy: "Honor", labelSelector: { matchLabels: { app: "web" } },
          }],
          containers: [{
            name: "vm",
            image: "busybox",
            resources: { limits: { cpu: "1", memory: "256Mi" } },
            ports: [{ containerPort: 8080, hostPort: PORT }],
          }],
        },
      },
    },
  });
}

interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: { phase: string; podIP?: string; hostIP?: string; reason?: string; message?: string;
    conditions?: { type: string; status: string }[]; containerStatuses?: { restartCount: number }[] };
}

const pods = (): Pod[] => cp!.json<{ items: Pod[] }>(["get", "pods", "-l", "app=web"]).items;
const ready = (p: Pod) => p.status.phase === "Running" && !!p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True");
const hostOf = (p: Pod) => hosts.find((h) => h.o.name === p.spec.nodeName)!;

/** Waits until `n` live (not terminating) web pods are Running and Ready; returns them. */
async function readyPods(n: number, ms = 180_000): Promise<Pod[]> {
  let live: Pod[] = [];
  await until(`${n} web pods ready`, () => {
    live = pods().filter((p) => !p.metadata.deletionTimestamp);
    return live.length === n && live.every(ready);
  }, ms).catch((e) => {
    throw new Error(`${(e as Error).message}\n${JSON.stringify(pods().map((p) => [p.metadata.name, p.spec.nodeName, p.status]), null, 1)}\n${diagnostics()}`);
  });
  return live;
}

function diagnostics(): string {
  return hosts.map((h) => `--- vmm-kubelet ${h.o.name}\n${h.kubeletLog(30)}`).join("\n") + `\n${cp?.logTails(10) ?? ""}`;
}

/** The VM of pod `p` on its host, found by the pod identity labels. */
async function vmOf(p: Pod) {
  const { vms } = await hostOf(p).vmm().listVms({ labelSelector: `vmm.dev/pod-uid=${p.metadata.uid}` });
  expect(vms).toHaveLength(1);
  return (await hostOf(p).vmm().getInfo({ id: vms[0]!.id })).vm!;
}

const nodeReady = (name: string) =>
  cp!.json<{ status: { conditions: { type: string; status: string }[] } }>(["get", "node", name])
    .status.conditions.find((c) => c.type === "Ready")?.status;

beforeAll(async () => {
  requireNetns();
  dir = mkdtempSync(join(tmpdir(), "vmm-fleet-"));
  chmodSync(dir, 0o711);
  const kubelet = await buildKubelet(dir);
  cp = await ControlPlane.start({ dir: join(dir, "cp"), timing: { nodeGraceSeconds: 6, evictAfterSeconds: 2 } });
  cp.kubectl(["apply", "-f", RBAC]);
  const token = cp.kubectl(["-n", "vmm-system", "create", "token", "vmm-kubelet", "--duration=2h"]).trim();
  const kubeconfig = cp.kubeconfigFor("vmm-kubelet", token);
  for (const [i, name] of ["host-a", "host-b"].entries()) {
    const h = await FleetHost.start({
      name, ip: `127.0.0.${2 + i}`, bridge: `vmbr-k${i}`, net: 141 + i, kubelet, kubeconfig,
      clientCa: cp.caCert, leaseDuration: "4s", dir,
    });
    hosts.push(h);
    h.startKubelet();
  }
  for (const h of hosts) await until(`node ${h.o.name} Ready`, () => { try { return nodeReady(h.o.name) === "True"; } catch { return false; } }, 60_000)
    .catch((e) => { throw new Error(`${(e as Error).message}\n${diagnostics()}`); });
}, 900_000);

afterAll(async () => {
  try {
    cp?.kubectl(["delete", "deployment", "web", "--ignore-not-found", "--wait=false"]);
  } catch {
    // the control plane may be down
  }
  for (const h of hosts) await h.stop().catch(() => undefined);
  await cp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe("a fleet of vmm hosts under Kubernetes", () => {
  it("registers each host as a node: capacity from the host, networking labels, taint, address", () => {
    const node = cp!.json(["get", "node", "host-a"]);
    expect(node.metadata.labels).toMatchObject({
      "networking-mode.vmm.dev/tap": "true", "bridge.vmm.dev/vmbr-k0": "true", "kubernetes.io/hostname": "host-a",
    });
    expect(node.metadata.labels["networking-mode.vmm.dev/custom"]).toBeUndefined();
    expect(node.spec.taints).toEqual([{ key: "virtual-kubelet.io/provider", value: "vmm", effect: "NoSchedule" }]);
    expect(node.status.addresses).toContainEqual({ type: "InternalIP", address: "127.0.0.2" });
    expect(Number(node.status.capacity.cpu)).toBeGreaterThan(0);
    expect(node.status.allocatable.pods).toBe("110");
    expect(node.status.daemonEndpoints.kubeletEndpoint.Port).toBe(10250);
    const types = node.status.conditions.map((c: { type: string }) => c.type).sort();
    expect(types).toEqual(["DiskPressure", "MemoryPressure", "NetworkUnavailable", "PIDPressure", "Ready"]);
    // The heartbeat is a Lease, renewed.
    const lease = cp!.json(["-n", "kube-node-lease", "get", "lease", "host-a"]);
    expect(lease.spec.holderIdentity).toBe("host-a");
  });

  it("fails a pod it cannot run, naming the field, with a Warning event", async () => {
    cp!.kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "v1", kind: "Pod", metadata: { name: "two-vms" },
      spec: {
        nodeName: "host-a",
        containers: [{ name: "a", image: "busybox" }, { name: "b", image: "busybox" }],
      },
    }));
    let pod: Pod | undefined;
    await until("two-vms Failed", () => (pod = cp!.json<Pod>(["get", "pod", "two-vms"])).status.phase === "Failed", 60_000);
    expect(pod!.status.reason).toBe("UnsupportedPod");
    expect(pod!.status.message).toMatch(/spec\.containers: has 2 containers/);
    const events = cp!.json<{ items: { reason: string; type: string }[] }>(["get", "events", "--field-selector", "involvedObject.name=two-vms"]).items;
    expect(events).toContainEqual(expect.objectContaining({ reason: "Refused", type: "Warning" }));
    const { vms } = await hosts[0]!.vmm().listVms({});
    expect(vms).toEqual([]);
    cp!.kubectl(["delete", "pod", "two-vms", "--wait=true", "--timeout=60s"]);
  });

  it("spreads a Deployment of two VM pods, one guest per host: Running, pod IP = lease, hostPort on each host, logs", async () => {
    cp!.kubectl(["apply", "-f", "-"], deployment(2));
    const ps = await readyPods(2);
    expect(new Set(ps.map((p) => p.spec.nodeName))).toEqual(new Set(["host-a", "host-b"]));
    for (const p of ps) {
      const h = hostOf(p);
      const vm = await vmOf(p);
      expect(vm.status).toBe(VmStatus.RUNNING);
      expect(p.status.podIP).toBe(vm.nics[0]!.lease!.ip);
      expect(p.status.podIP!.startsWith(`${h.subnet}.`)).toBe(true);
      expect(p.status.hostIP).toBe(h.o.ip);
      // The guest's page names its own address: this host's port reaches this pod's VM.
      const page = await waitFor(() => httpGet(`http://${h.o.ip}:${PORT}/`), 60_000);
      expect(page).toContain(p.status.podIP);
      // kubectl logs reads the serial console through the API server and vmm-kubelet.
      expect(cp!.kubectl(["logs", p.metadata.name])).toContain("VMM-GUEST-READY");
      // Events on the pod tell the VM's story.
      const reasons = cp!.json<{ items: { reason: string; source: { component: string } }[] }>(
        ["get", "events", "--field-selector", `involvedObject.name=${p.metadata.name}`]).items.map((e) => e.reason);
      expect(reasons).toEqual(expect.arrayContaining(["Scheduled", "VMCreated", "VMStarted", "VMLeased"]));
    }
  }, 300_000);

  it("kubectl attach -i types into the serial console; kubectl exec is refused with the reason", async () => {
    const p = pods()[0]!;
    const proc = spawn(join(cp!.bin, "kubectl"), [`--kubeconfig=${cp!.kubeconfig}`, "attach", "-i", p.metadata.name], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    proc.stdout.on("data", (b: Buffer) => (out += b.toString()));
    try {
      // Typed until the shell answers: the attach may still be connecting.
      // The line has no brackets or quotes: a part of it that reaches the
      // shell alone (kubectl killed mid-line, below) cannot leave the shell
      // waiting for a closing one, and the output ("attach-attach") differs
      // from the echo of what was typed.
      await until("the guest's shell answers through attach", () => {
        proc.stdin.write("A=attach; echo $A-$A\n");
        return out.includes("attach-attach");
      }, 60_000);
    } finally {
      proc.kill("SIGTERM");
    }
    expect(() => cp!.kubectl(["exec", p.metadata.name, "--", "true"])).toThrow(/runs no container processes to exec into/);
  }, 120_000);

  it("kubectl logs -f follows the console: new output arrives while it runs", async () => {
    const p = pods()[0]!;
    const logs = spawn(join(cp!.bin, "kubectl"), [`--kubeconfig=${cp!.kubeconfig}`, "logs", "-f", p.metadata.name]);
    let out = "";
    logs.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const attach = spawn(join(cp!.bin, "kubectl"), [`--kubeconfig=${cp!.kubeconfig}`, "attach", "-i", p.metadata.name], { stdio: ["pipe", "pipe", "pipe"] });
    let seen = "";
    attach.stdout.on("data", (b: Buffer) => (seen += b.toString()));
    attach.stderr.on("data", (b: Buffer) => (seen += b.toString()));
    try {
      await until("logs -f shows the boot", () => out.includes("VMM-GUEST-READY"), 30_000);
      await until("logs -f shows what is typed later", () => {
        attach.stdin.write("F=follow; echo $F-$F\n");
        return out.includes("follow-follow");
      }, 60_000).catch((e) => {
        throw new Error(`${(e as Error).message}\nlogs -f:\n${out.slice(-1500)}\nattach:\n${seen.slice(-1500)}\n${diagnostics()}`);
      });
      expect(logs.exitCode).toBeNull(); // still following
    } finally {
      attach.kill("SIGTERM");
      logs.kill("SIGTERM");
    }
  }, 120_000);

  it("scaling to 0 removes every VM: no QEMU, TAP or forward left", async () => {
    cp!.kubectl(["scale", "deployment", "web", "--replicas=0"]);
    await until("no web pods", () => pods().length === 0, 120_000);
    for (const h of hosts) {
      expect((await h.vmm().listVms({})).vms).toEqual([]);
      expect(h.taps()).toEqual([]);
      expect(h.qemuPids()).toEqual([]);
      await expect(httpGet(`http://${h.o.ip}:${PORT}/`, 1000)).rejects.toThrow(/ECONNREFUSED/);
    }
  }, 180_000);

  it("a restarted vmm-kubelet re-adopts its running VM", async () => {
    cp!.kubectl(["scale", "deployment", "web", "--replicas=1"]);
    const [p] = await readyPods(1);
    const h = hostOf(p!);
    const before = await vmOf(p!);
    await h.stopKubelet("SIGKILL");
    h.startKubelet();
    await until("adopted event", () => cp!.json<{ items: { reason: string }[] }>(
      ["get", "events", "--field-selector", `involvedObject.name=${p!.metadata.name}`]).items.some((e) => e.reason === "VMAdopted"), 60_000);
    const [again] = await readyPods(1);
    expect(again!.metadata.uid).toBe(p!.metadata.uid);
    expect(again!.status.containerStatuses![0]!.restartCount).toBe(0);
    const after = await vmOf(again!);
    expect(after.pid).toBe(before.pid);
    expect(after.instanceId).toBe(before.instanceId);
  }, 300_000);

  it("a host that stops heartbeating goes NotReady; its pod is recreated on the other host and answers there; the VM left behind is removed when its vmm-kubelet returns", async () => {
    const [p] = await readyPods(1);
    const lost = hostOf(p!);
    const other = hosts.find((h) => h !== lost)!;
    const leftBehind = await vmOf(p!);
    await lost.stopKubelet("SIGKILL");
    await until(`${lost.o.name} NotReady`, () => nodeReady(lost.o.name) !== "True", 60_000);
    let moved: Pod | undefined;
    await until("pod recreated on the other host", () => {
      moved = pods().find((q) => !q.metadata.deletionTimestamp && q.spec.nodeName === other.o.name && ready(q));
      return moved !== undefined;
    }, 180_000).catch((e) => { throw new Error(`${(e as Error).message}\n${diagnostics()}`); });
    expect((await vmOf(moved!)).nics[0]!.lease!.ip).toBe(moved!.status.podIP);
    expect(await waitFor(() => httpGet(`http://${other.o.ip}:${PORT}/`), 60_000)).toContain(moved!.status.podIP);

    // The lost host's VM still runs (nobody told it otherwise). Its pod is
    // gone from the API once force-deleted; the returning vmm-kubelet finds
    // the VM without a pod and removes it.
    expect((await lost.vmm().getInfo({ id: leftBehind.id })).vm!.status).toBe(VmStatus.RUNNING);
    cp!.kubectl(["delete", "pod", p!.metadata.name, "--force", "--grace-period=0", "--ignore-not-found"]);
    lost.startKubelet();
    await until(`${lost.o.name} Ready again`, () => nodeReady(lost.o.name) === "True", 60_000);
    await until("left-behind VM removed", async () => (await lost.vmm().listVms({})).vms.length === 0, 60_000);
    expect(lost.taps()).toEqual([]);
    expect(lost.qemuPids()).toEqual([]);
  }, 420_000);
});

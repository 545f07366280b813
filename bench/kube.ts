// Kubernetes benchmark: `kubectl apply` of a VM pod -> pod Running -> its
// hostPort answering, on a one-host fleet with the whole production path:
// the real control plane built by scripts/setup-k8s.sh (etcd,
// kube-apiserver, kube-scheduler, kube-controller-manager), vmm-kubelet as
// the RBAC manifest's service account, vmmd with TAP NICs on a bridge,
// dnsmasq with the lease hook, lease verification on the wire, the
// forwarder, the test guest under TCG. Each round applies a fresh pod (a VM
// whose MAC dnsmasq has never seen: a first boot) and times, from spawning
// `kubectl apply`:
//   apply       kubectl apply returned (the API server stored the pod)
//   scheduled   the pod is bound to the node (kube-scheduler)
//   running     phase Running (vmm-kubelet created and started the VM)
//   ready       Ready: the guest's lease is known, pod IP set
//   answering   http://<node IP>:<hostPort>/ returns the guest's page
// then deletes the pod and times `kubectl delete` -> VM gone from vmmd.
// The pod's status is watched through the API server (a watch, not
// polling); the port is polled every 10 ms.
//
// Run inside the private namespace, after `npm run build`:
//   scripts/in-netns.sh node dist/bench/kube.js      (BENCH_KUBE_ROUNDS, default 5)
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpGet } from "node:http";
import { request } from "node:https";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { ControlPlane, repoRoot, until } from "./fleet/controlplane.js";
import { buildKubelet, FleetHost } from "./fleet/host.js";

const ROUNDS = Number(process.env.BENCH_KUBE_ROUNDS ?? "5");
const PORT = 31090;
const IP = "127.0.0.2";
const log = (m: string) => process.stderr.write(`bench-kube: ${m}\n`);

interface PodEvent {
  type: string;
  object: { spec?: { nodeName?: string }; status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] } };
}

/** Watches pod `name` through the API server; calls `on` for every event until the returned stop() is called. */
function watchPod(cp: ControlPlane, name: string, on: (e: PodEvent) => void): () => void {
  const url = `${cp.apiUrl}/api/v1/namespaces/default/pods?watch=true&fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;
  const req = request(url, { rejectUnauthorized: false, headers: { authorization: `Bearer ${cp.adminToken}` } }, (res) => {
    let buf = "";
    res.setEncoding("utf8");
    res.on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== "") on(JSON.parse(line) as PodEvent);
      }
    });
    res.on("error", () => undefined);
  });
  req.on("error", () => undefined);
  req.end();
  return () => req.destroy();
}

function answers(url: string, text: string): Promise<boolean> {
  return new Promise((ok) => {
    const req = httpGet(url, { timeout: 1000, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => ok(res.statusCode === 200 && body.includes(text)));
      res.on("error", () => ok(false));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => ok(false));
    req.end();
  });
}

function pod(name: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      terminationGracePeriodSeconds: 2,
      tolerations: [{ key: "virtual-kubelet.io/provider", operator: "Equal", value: "vmm", effect: "NoSchedule" }],
      containers: [{ name: "vm", image: "busybox", resources: { limits: { cpu: "1", memory: "256Mi" } }, ports: [{ containerPort: 8080, hostPort: PORT }] }],
    },
  });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  if (process.env.VMM_IN_NETNS !== "1") throw new Error("run inside scripts/in-netns.sh (creates a bridge, dnsmasq, guests and a control plane)");
  const dir = mkdtempSync(join(tmpdir(), "vmm-bench-kube-"));
  chmodSync(dir, 0o711);
  let cp: ControlPlane | undefined;
  let host: FleetHost | undefined;
  try {
    log("building vmm-kubelet, starting the control plane and one host");
    const kubelet = await buildKubelet(dir);
    cp = await ControlPlane.start({ dir: join(dir, "cp") });
    cp.kubectl(["apply", "-f", join(repoRoot(), "clients", "kubelet", "deploy", "rbac.yaml")]);
    const token = cp.kubectl(["-n", "vmm-system", "create", "token", "vmm-kubelet", "--duration=2h"]).trim();
    host = await FleetHost.start({
      name: "bench-host", ip: IP, bridge: "vmbr-kb", net: 143, kubelet, kubeconfig: cp.kubeconfigFor("vmm-kubelet", token),
      clientCa: cp.caCert, leaseDuration: "40s", dir,
    });
    host.startKubelet();
    const c = cp;
    await until("node Ready", () => {
      try {
        return c.json<{ status: { conditions: { type: string; status: string }[] } }>(["get", "node", "bench-host"]).status.conditions.some((x) => x.type === "Ready" && x.status === "True");
      } catch {
        return false;
      }
    }, 60_000);

    const rows: Record<string, number[]> = { apply: [], scheduled: [], running: [], ready: [], answering: [], deleted: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const name = `bench-${r}`;
      const seen: Record<string, number> = {};
      const mark = (k: string) => (seen[k] ??= performance.now());
      let podIP = "";
      const stop = watchPod(cp, name, (e) => {
        if (e.object.spec?.nodeName) mark("scheduled");
        if (e.object.status?.phase === "Running") mark("running");
        if (e.object.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True")) {
          podIP = e.object.status.podIP ?? "";
          mark("ready");
        }
      });
      try {
        await new Promise((res) => setTimeout(res, 200)); // the watch is established
        const t0 = performance.now();
        cp.kubectl(["apply", "-f", "-"], pod(name));
        const tApply = performance.now();
        await until(`${name} ready`, () => seen.ready !== undefined, 120_000);
        await until(`${name} answering`, async () => answers(`http://${IP}:${PORT}/`, podIP), 60_000);
        const tAnswer = performance.now();
        rows.apply!.push(tApply - t0);
        rows.scheduled!.push(seen.scheduled! - t0);
        rows.running!.push(seen.running! - t0);
        rows.ready!.push(seen.ready! - t0);
        rows.answering!.push(tAnswer - t0);
        const d0 = performance.now();
        cp.kubectl(["delete", "pod", name, "--wait=false"]);
        const vmm = host.vmm();
        await until(`${name}'s VM gone`, async () => (await vmm.listVms({})).vms.length === 0, 60_000);
        rows.deleted!.push(performance.now() - d0);
        await until(`${name} gone from the API`, () => spawnSync(join(c.bin, "kubectl"), [`--kubeconfig=${c.kubeconfig}`, "get", "pod", name]).status !== 0, 60_000);
        log(`round ${r + 1}/${ROUNDS}: Running ${(seen.running! - t0).toFixed(0)} ms, answering ${(tAnswer - t0).toFixed(0)} ms`);
      } finally {
        stop();
      }
    }
    const ms = (x: number) => x.toFixed(0);
    const line = (label: string, k: string) => `| ${label} | ${ms(pct(rows[k]!, 50))} | ${ms(Math.max(...rows[k]!))} |`;
    process.stdout.write([
      `kubectl apply of a VM pod -> Running -> hostPort answering, one vmm host (TAP + dnsmasq + hook + ARP verification), TCG, ${ROUNDS} first boots`,
      `(${availableParallelism()} CPUs, load average ${loadavg()[0]!.toFixed(1)} at the end: TCG boots are CPU-bound, compare on a quiet host)`,
      "",
      "| from spawning kubectl apply to | p50 ms | max ms |",
      "|---|---|---|",
      line("kubectl apply returned", "apply"),
      line("pod bound to the node (kube-scheduler)", "scheduled"),
      line("**pod Running** (vmm-kubelet: VM created, QEMU started)", "running"),
      line("pod Ready (the guest's lease: pod IP)", "ready"),
      line("**hostPort answering** (the guest's page through the forward)", "answering"),
      line("kubectl delete -> VM gone from vmmd (ACPI power-down)", "deleted"),
      "",
    ].join("\n"));
  } catch (e) {
    if (host) log(`vmm-kubelet log:\n${host.kubeletLog(30)}`);
    try {
      log(`vmmd log:\n${readFileSync(join(dir, "bench-host", "vmmd.log"), "utf8").slice(-2000)}`);
    } catch {
      // none
    }
    throw e;
  } finally {
    await host?.stop();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench-kube: ${(e as Error).stack}\n`);
  process.exitCode = 1;
});

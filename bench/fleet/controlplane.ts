// A real Kubernetes control plane for the kube benchmark (bench/kube.ts)
// and the fleet e2e (test/e2e/fleet.test.ts): etcd, kube-apiserver,
// kube-scheduler and kube-controller-manager built by scripts/setup-k8s.sh,
// on 127.0.0.1 of the private namespace, with certificates and tokens made
// here. Every process is started and stopped by PID (SIGTERM, then
// SIGKILL).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { request } from "node:https";
import { request as httpRequest } from "node:http";

/** The checkout: the first directory above this file holding package.json (from the source or from dist/). */
export function repoRoot(): string {
  let d = import.meta.dirname;
  while (!existsSync(join(d, "package.json"))) {
    const up = dirname(d);
    if (up === d) throw new Error(`no package.json above ${import.meta.dirname}`);
    d = up;
  }
  return d;
}

const ROOT = repoRoot();

/** Directory of the control plane binaries; throws (with the fix) when they are not built. */
export function k8sBinDir(): string {
  const r = spawnSync("bash", [join(ROOT, "scripts", "setup-k8s.sh"), "--bin-dir"], { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`control plane binaries missing: ${r.stderr.trim() || r.error?.message}`);
  return r.stdout.trim();
}

function sh(argv: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 60_000, cwd: opts.cwd, input: opts.input });
  if (r.status !== 0) throw new Error(`${argv.join(" ")} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** Timeouts of the node lifecycle, shortened for tests. */
export interface Timing {
  /** controller-manager --node-monitor-grace-period (s): no heartbeat this long -> NotReady. */
  nodeGraceSeconds: number;
  /** apiserver default tolerations of not-ready/unreachable nodes (s): eviction after this. */
  evictAfterSeconds: number;
}

/** Where the control plane keeps its files (certificates, etcd data, logs), and its node-lifecycle timing. */
export interface ControlPlaneOptions {
  dir: string;
  timing?: Timing;
}

const PORTS = { etcd: 23790, etcdPeer: 23800, api: 16443, scheduler: 20259, cm: 20257 };

/** A running control plane (see the top of this file): its kubeconfig, binaries and CA, kubectl, and stop(). */
export class ControlPlane {
  private readonly procs: { name: string; proc: ChildProcess }[] = [];
  readonly kubeconfig: string;
  readonly bin: string;
  readonly caCert: string;
  readonly apiUrl = `https://127.0.0.1:${PORTS.api}`;
  /** The admin bearer token (system:masters). */
  readonly adminToken: string;

  private constructor(readonly dir: string) {
    this.bin = k8sBinDir();
    this.kubeconfig = join(dir, "admin.kubeconfig");
    this.caCert = join(dir, "ca.crt");
    this.adminToken = randomBytes(24).toString("hex");
  }

  /** Starts etcd, the API server, the scheduler and the controller-manager; resolves when pods can be created. */
  static async start(o: ControlPlaneOptions): Promise<ControlPlane> {
    const cp = new ControlPlane(o.dir);
    try {
      await cp.boot(o.timing ?? { nodeGraceSeconds: 40, evictAfterSeconds: 300 });
    } catch (e) {
      await cp.stop();
      throw new Error(`${(e as Error).message}\n${cp.logTails()}`, { cause: e });
    }
    return cp;
  }

  private async boot(t: Timing): Promise<void> {
    const d = this.dir;
    mkdirSync(join(d, "logs"), { recursive: true });
    // A CA for the client certificate the API server shows kubelets
    // (vmm-kubelet verifies it with --client-ca-file), and the service
    // account signing key.
    sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=fleet-test-ca",
      "-keyout", join(d, "ca.key"), "-out", this.caCert]);
    sh(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client",
      "-keyout", join(d, "kubelet-client.key"), "-out", join(d, "kubelet-client.csr")]);
    sh(["openssl", "x509", "-req", "-in", join(d, "kubelet-client.csr"), "-CA", this.caCert, "-CAkey", join(d, "ca.key"),
      "-CAcreateserial", "-days", "2", "-out", join(d, "kubelet-client.crt")]);
    sh(["openssl", "genrsa", "-out", join(d, "sa.key"), "2048"]);
    sh(["openssl", "rsa", "-in", join(d, "sa.key"), "-pubout", "-out", join(d, "sa.pub")]);
    writeFileSync(join(d, "tokens.csv"), `${this.adminToken},admin,admin-uid,system:masters\n`, { mode: 0o600 });
    writeFileSync(this.kubeconfig, kubeconfig(this.apiUrl, this.adminToken), { mode: 0o600 });

    const etcdUrl = `http://127.0.0.1:${PORTS.etcd}`;
    this.run("etcd", [
      "--name=fleet", `--data-dir=${join(d, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${PORTS.etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${PORTS.etcdPeer}`,
      `--initial-cluster=fleet=http://127.0.0.1:${PORTS.etcdPeer}`, "--unsafe-no-fsync=true",
    ]);
    await until("etcd /health", () => httpOk(`${etcdUrl}/health`), 30_000);
    this.run("kube-apiserver", [
      `--etcd-servers=${etcdUrl}`, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
      `--secure-port=${PORTS.api}`, `--cert-dir=${join(d, "certs")}`, "--service-cluster-ip-range=10.0.0.0/24",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${join(d, "sa.pub")}`, `--service-account-signing-key-file=${join(d, "sa.key")}`,
      `--token-auth-file=${join(d, "tokens.csv")}`, "--authorization-mode=RBAC", "--endpoint-reconciler-type=none",
      `--kubelet-client-certificate=${join(d, "kubelet-client.crt")}`, `--kubelet-client-key=${join(d, "kubelet-client.key")}`,
      "--kubelet-preferred-address-types=InternalIP",
      `--default-not-ready-toleration-seconds=${t.evictAfterSeconds}`, `--default-unreachable-toleration-seconds=${t.evictAfterSeconds}`,
    ]);
    await until("kube-apiserver /readyz", () => httpOk(`${this.apiUrl}/readyz`, this.adminToken), 120_000);
    const kc = `--kubeconfig=${this.kubeconfig}`;
    const common = [kc, `--authentication-kubeconfig=${this.kubeconfig}`, `--authorization-kubeconfig=${this.kubeconfig}`,
      "--bind-address=127.0.0.1", "--leader-elect=false", "--authentication-skip-lookup=true"];
    this.run("kube-scheduler", [...common, `--secure-port=${PORTS.scheduler}`]);
    this.run("kube-controller-manager", [...common, `--secure-port=${PORTS.cm}`,
      `--service-account-private-key-file=${join(d, "sa.key")}`, "--cluster-name=fleet",
      "--node-monitor-period=1s", `--node-monitor-grace-period=${t.nodeGraceSeconds}s`]);
    await until("kube-scheduler /healthz", () => httpOk(`https://127.0.0.1:${PORTS.scheduler}/healthz`), 60_000);
    await until("kube-controller-manager /healthz", () => httpOk(`https://127.0.0.1:${PORTS.cm}/healthz`), 60_000);
    // Pods need the namespace's default service account, which the
    // controller-manager creates.
    await until("default service account", async () => this.kubectlOk(["-n", "default", "get", "serviceaccount", "default"]), 60_000);
  }

  private run(name: string, args: string[]): void {
    const log = openSync(join(this.dir, "logs", `${name}.log`), "a");
    const proc = spawn(join(this.bin, name), args, { stdio: ["ignore", log, log] });
    closeSync(log);
    this.procs.push({ name, proc });
  }

  /** Runs kubectl with the admin kubeconfig; throws with its stderr on failure. */
  kubectl(args: string[], input?: string): string {
    const r = spawnSync(join(this.bin, "kubectl"), [`--kubeconfig=${this.kubeconfig}`, ...args], { encoding: "utf8", timeout: 60_000, input });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.status}): ${r.stderr || r.error?.message}`);
    return r.stdout;
  }

  /** kubectl ... -o json, parsed. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kubernetes objects, read by tests as JSON.parse gives them
  json<T = any>(args: string[]): T {
    return JSON.parse(this.kubectl([...args, "-o", "json"])) as T;
  }

  private kubectlOk(args: string[]): boolean {
    try {
      this.kubectl(args);
      return true;
    } catch {
      return false;
    }
  }

  /** A kubeconfig for `token` (e.g. a service account's), written under the control plane's directory. */
  kubeconfigFor(name: string, token: string): string {
    const p = join(this.dir, `${name}.kubeconfig`);
    writeFileSync(p, kubeconfig(this.apiUrl, token), { mode: 0o600 });
    return p;
  }

  /** The last lines of every component's log, for failure messages. */
  logTails(lines = 15): string {
    return this.procs.map(({ name }) => {
      let text = "";
      try {
        text = readFileSync(join(this.dir, "logs", `${name}.log`), "utf8").split("\n").slice(-lines).join("\n");
      } catch {
        // no log
      }
      return `--- ${name}\n${text}`;
    }).join("\n");
  }

  /** Stops every component in reverse order, by PID. */
  async stop(): Promise<void> {
    for (const { proc } of this.procs.reverse()) await stopProcess(proc);
    this.procs.length = 0;
  }
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. */
export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(t);
}

function kubeconfig(server: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: fleet
  cluster: {server: "${server}", insecure-skip-tls-verify: true}
users:
- name: user
  user: {token: "${token}"}
contexts:
- name: fleet
  context: {cluster: fleet, user: user, namespace: default}
current-context: fleet
`;
}

/** GET url (TLS not verified: loopback, certificates made by the components themselves); true on 200. */
function httpOk(url: string, token?: string): Promise<boolean> {
  return new Promise((resolveOk) => {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const mod = url.startsWith("https:") ? request : httpRequest;
    const req = mod(url, { rejectUnauthorized: false, timeout: 2000, headers }, (res) => {
      res.resume();
      resolveOk(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolveOk(false));
    req.end();
  });
}

/** Polls `ok` every 200 ms until it holds, or fails naming `what` after `ms`. */
export async function until(what: string, ok: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not ready after ${ms} ms`);
}

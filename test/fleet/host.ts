// One host of the test fleet: its own bridge, dnsmasq with the project's
// lease hook, a vmmd (TAP NICs on that bridge, ports forwarded on the
// host's own loopback address), an images directory holding the test guest
// as image "busybox", and a vmm-kubelet registering the host as a node.
// Several hosts share the private namespace; each is told apart by its
// loopback address (127.0.0.2, 127.0.0.3, ...), its bridge and its subnet.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startDaemon, client, transport, type DaemonHandle } from "../helpers/daemon.js";
import type { Lan } from "../helpers/lan.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { stopProcess } from "./controlplane.js";
import { processesMatching } from "../helpers/net.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const HOOK = join(ROOT, "clients", "dnsmasq-hook", "vmm-dhcp-hook");
const ADMIN = "fleet-admin-token-0123456789";
const LEASE = "fleet-lease-token-0123456789";

/**
 * Builds vmm-kubelet offline with scripts/build-kubelet.sh (whose first,
 * online run in scripts/setup-k8s.sh filled the caches, so this relinks)
 * into `dir`; resolves the binary's path.
 */
export async function buildKubelet(dir: string): Promise<string> {
  const out = join(dir, "vmm-kubelet");
  const proc = spawn("bash", [join(ROOT, "scripts", "build-kubelet.sh"), out], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, GOPROXY: "off" },
  });
  let err = "";
  proc.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  const timer = setTimeout(() => proc.kill("SIGKILL"), 600_000);
  const code = await new Promise<number | null>((r) => proc.once("exit", r));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`scripts/build-kubelet.sh failed (${code}; run scripts/setup-k8s.sh first): ${err}`);
  return out;
}

export interface HostOptions {
  /** Node name, e.g. "host-a". */
  name: string;
  /** The host's loopback address: node IP, kubelet API and hostPorts. */
  ip: string;
  /** Bridge name (at most 15 characters). */
  bridge: string;
  /** Third octet of the host's subnet 10.9N.0.0/24. */
  net: number;
  /** vmm-kubelet binary. */
  kubelet: string;
  /** vmm-kubelet's kubeconfig (the service account of the RBAC manifest). */
  kubeconfig: string;
  /** CA of the API server's kubelet client certificate. */
  clientCa: string;
  /** vmm-kubelet --node-lease-duration. */
  leaseDuration: string;
  /** Parent directory of the host's files. */
  dir: string;
}

export class FleetHost {
  vmmd!: DaemonHandle;
  kubeletProc: ChildProcess | undefined;
  readonly dir: string;
  readonly subnet: string;
  private dnsmasq: ChildProcess | undefined;

  private constructor(readonly o: HostOptions) {
    this.dir = join(o.dir, o.name);
    this.subnet = `10.${o.net}.0`;
  }

  /** Bridge, dnsmasq, vmmd; then vmm-kubelet (see startKubelet). */
  static async start(o: HostOptions, lan: Lan): Promise<FleetHost> {
    const h = new FleetHost(o);
    mkdirSync(h.dir, { recursive: true, mode: 0o711 });
    const images = join(h.dir, "images");
    mkdirSync(join(images, "busybox"), { recursive: true });
    // The image's files must be regular files inside the images directory.
    copyFileSync(guestKernel(), join(images, "busybox", "vmlinuz"));
    copyFileSync(guestInitrd(), join(images, "busybox", "initrd"));
    writeFileSync(join(images, "busybox", "cmdline"), "console=ttyS0 panic=-1\n");
    lan.bridge(o.bridge, `${h.subnet}.1/24`);
    const leaseTokenFile = join(h.dir, "lease.token");
    writeFileSync(leaseTokenFile, LEASE + "\n", { mode: 0o600 });
    mkdirSync(join(h.dir, "vmmd"), { recursive: true });
    h.vmmd = await startDaemon({
      dir: join(h.dir, "vmmd"),
      tcp: false,
      toml: `
[auth]
tokens = ["${ADMIN}"]
lease_tokens = ["${LEASE}"]
[networking]
default_mode = "tap"
bridge = "${o.bridge}"
bridge_subnets = { "${o.bridge}" = "${h.subnet}.0/24" }
forward_service_enabled = true
[forward]
allowed_listen_addresses = ["${o.ip}"]
[images]
dir = "${images}"
`,
    });
    h.dnsmasq = lan.dnsmasq({
      iface: o.bridge,
      range: [`${h.subnet}.50`, `${h.subnet}.150`],
      hook: HOOK,
      env: { VMM_SOCKET: h.vmmd.socket, VMM_LEASE_TOKEN_FILE: leaseTokenFile, VMM_HOOK_LOG: join(h.dir, "hook.log") },
    }).proc;
    writeFileSync(join(h.dir, "admin.token"), ADMIN + "\n", { mode: 0o600 });
    return h;
  }

  /** The vmmd API with the admin token. */
  vmm() {
    return client(VmmService, transport(this.vmmd, "connect", "unix", { token: ADMIN }));
  }

  /** Starts vmm-kubelet (again); its log is appended to kubelet.log. */
  startKubelet(): void {
    const log = openSync(join(this.dir, "kubelet.log"), "a");
    this.kubeletProc = spawn(this.o.kubelet, [
      `--node-name=${this.o.name}`, `--node-ip=${this.o.ip}`, "--port=10250",
      `--vmm-socket=${this.vmmd.socket}`, `--vmm-token-file=${join(this.dir, "admin.token")}`,
      `--kubeconfig=${this.o.kubeconfig}`, `--client-ca-file=${this.o.clientCa}`,
      "--default-networking-mode=tap", `--node-lease-duration=${this.o.leaseDuration}`,
      "--node-status-update-frequency=5s",
    ], { stdio: ["ignore", log, log] });
    closeSync(log);
  }

  /** Stops vmm-kubelet (SIGKILL: as if the host's agent died). */
  async stopKubelet(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.kubeletProc) await stopProcess(this.kubeletProc, signal);
    this.kubeletProc = undefined;
  }

  /** The tail of vmm-kubelet's log (and its exit status, if it exited). */
  kubeletLog(lines = 40): string {
    const p = this.kubeletProc;
    const exit = p && (p.exitCode !== null || p.signalCode !== null) ? `(exited: ${p.exitCode ?? p.signalCode})\n` : "";
    try {
      return exit + readFileSync(join(this.dir, "kubelet.log"), "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return exit;
    }
  }

  /** TAP devices on the host's bridge. */
  taps(): string[] {
    const r = spawnSync("ip", ["-o", "link", "show", "master", this.o.bridge], { encoding: "utf8" });
    return r.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => l.split(":")[1]!.trim().split("@")[0]!);
  }

  /** PIDs of QEMU processes of this host's vmmd. */
  qemuPids(): number[] {
    return processesMatching(join(this.dir, "vmmd")).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]!.includes("qemu-system");
      } catch {
        return false;
      }
    });
  }

  /** Stops vmm-kubelet, removes every VM, stops vmmd (dnsmasq and the bridge go with the Lan). */
  async stop(): Promise<void> {
    await this.stopKubelet();
    if (this.vmmd) {
      const { vms } = await this.vmm().listVms({}).catch(() => ({ vms: [] }));
      for (const v of vms) await this.vmm().removeVm({ id: v.id, force: true }).catch(() => undefined);
      await this.vmmd.stop();
      this.vmmd.cleanup();
    }
    if (this.dnsmasq && this.dnsmasq.exitCode === null) this.dnsmasq.kill("SIGTERM");
  }
}

// One vmm host of a test fleet, for the kube benchmark and the fleet e2e:
// its own bridge, dnsmasq (the project's generator and lease hook), a vmmd
// (TAP NICs on that bridge, ports forwarded on the host's own loopback
// address), an images directory holding the test guest as image "busybox",
// and a vmm-kubelet registering the host as a node. Several hosts share one
// private namespace, told apart by their loopback address (127.0.0.2, ...),
// bridge and subnet. Everything is started by PID and undone in reverse
// order by stop(), also after a failure.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { dnsmasqConfig } from "../../server/net/dnsmasq-config.js";
import { repoRoot, stopProcess, until } from "./controlplane.js";
import { ipArgv } from "../../server/host/iproute.js";

const ROOT = repoRoot();
const HOOK = join(ROOT, "clients", "dnsmasq-hook", "vmm-dhcp-hook");
const ADMIN = "fleet-admin-token-0123456789";
const LEASE = "fleet-lease-token-0123456789";

/** The test guest's kernel and initramfs (scripts/setup-guest.sh; VMM_GUEST_DIR overrides). */
export function guestFiles(): { kernel: string; initrd: string } {
  const dir = process.env.VMM_GUEST_DIR ?? join(ROOT, ".tools", "guest");
  const boot = join(dir, "kernel", "boot");
  const k = existsSync(boot) ? readdirSync(boot).filter((n) => n.startsWith("vmlinuz-")).sort().pop() : undefined;
  const initrd = join(dir, "initramfs.cpio.gz");
  if (!k || !existsSync(initrd)) throw new Error(`test guest missing under ${dir}: run sudo scripts/setup-guest.sh`);
  return { kernel: join(boot, k), initrd };
}

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
  proc.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const timer = setTimeout(() => proc.kill("SIGKILL"), 600_000);
  const code = await new Promise<number | null>((r) => proc.once("exit", r));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`scripts/build-kubelet.sh failed (${code}; run scripts/setup-k8s.sh first): ${err}`);
  return out;
}

function sh(...argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 15_000 });
  if (r.status !== 0) throw new Error(`${argv.join(" ")} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** PIDs of processes whose command line contains `needle`. */
function processesMatching(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(needle)) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Names, addresses and files of one fleet host; several hosts in one namespace must differ in each. */
export interface HostOptions {
  /** Node name, e.g. "host-a". */
  name: string;
  /** The host's loopback address: node IP, kubelet API and hostPorts. */
  ip: string;
  /** Bridge name (at most 15 characters). */
  bridge: string;
  /** Second octet of the host's subnet 10.N.0.0/24. */
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

/** One running fleet host (see the top of this file); stop() undoes what it started, in reverse order. */
export class FleetHost {
  kubeletProc: ChildProcess | undefined;
  readonly dir: string;
  /** First three octets of the host's subnet. */
  readonly subnet: string;
  readonly socket: string;
  private vmmd: ChildProcess | undefined;
  private readonly undo: (() => Promise<void> | void)[] = [];

  private constructor(readonly o: HostOptions) {
    this.dir = join(o.dir, o.name);
    this.subnet = `10.${o.net}.0`;
    this.socket = join(this.dir, "vmmd.sock");
  }

  /** Bridge, images, vmmd, dnsmasq; then vmm-kubelet (startKubelet). On failure, undoes what it did. */
  static async start(o: HostOptions): Promise<FleetHost> {
    const h = new FleetHost(o);
    try {
      await h.boot();
    } catch (e) {
      await h.stop();
      throw e;
    }
    return h;
  }

  private async boot(): Promise<void> {
    const { o, dir } = this;
    // Traversable by others, as a real state directory's parent is.
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    const guest = guestFiles();
    const images = join(dir, "images", "busybox");
    mkdirSync(images, { recursive: true });
    // The image's files must be regular files inside the images directory.
    copyFileSync(guest.kernel, join(images, "vmlinuz"));
    copyFileSync(guest.initrd, join(images, "initrd"));
    writeFileSync(join(images, "cmdline"), "console=ttyS0 panic=-1\n");

    sh("ip", ...ipArgv.addBridge(o.bridge)); // a MAC of its own, as scripts/setup-bridge.sh gives it
    this.undo.push(() => void spawnSync("ip", ["link", "del", o.bridge]));
    sh("ip", "addr", "add", `${this.subnet}.1/24`, "dev", o.bridge);
    sh("ip", "link", "set", o.bridge, "up");

    const leaseFile = join(dir, "dnsmasq.leases");
    writeFileSync(join(dir, "lease.token"), LEASE + "\n", { mode: 0o600 });
    writeFileSync(join(dir, "admin.token"), ADMIN + "\n", { mode: 0o600 });
    const cfg = join(dir, "vmm.toml");
    writeFileSync(cfg, `state_dir = "${join(dir, "state")}"
[api]
socket = "${this.socket}"
[auth]
tokens = ["${ADMIN}"]
lease_tokens = ["${LEASE}"]
[networking]
default_mode = "tap"
bridge = "${o.bridge}"
bridge_subnets = { "${o.bridge}" = "${this.subnet}.0/24" }
bridge_lease_files = { "${o.bridge}" = "${leaseFile}" }
forward_service_enabled = true
[forward]
allowed_listen_addresses = ["${o.ip}"]
[images]
dir = "${join(dir, "images")}"
`);
    const vlog = openSync(join(dir, "vmmd.log"), "a");
    const vmmd = spawn(process.execPath, [join(ROOT, "dist", "server", "main.js"), "--config", cfg], { stdio: ["ignore", "pipe", vlog] });
    closeSync(vlog);
    this.vmmd = vmmd;
    this.undo.push(async () => {
      await stopProcess(vmmd);
      // Whatever vmmd started for this host (guests, relays) ends with it.
      for (const pid of processesMatching(dir)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    });
    await new Promise<void>((ok, fail) => {
      createInterface({ input: vmmd.stdout! }).once("line", () => ok());
      vmmd.once("exit", (c) => fail(new Error(`vmmd of ${o.name} exited ${c}: ${readFileSync(join(dir, "vmmd.log"), "utf8").slice(-2000)}`)));
    });

    const conf = join(dir, "dnsmasq.conf");
    writeFileSync(conf, dnsmasqConfig({
      writer: "bench/fleet/host.ts",
      interface: o.bridge,
      dns: false,
      dhcp: { rangeStart: `${this.subnet}.50`, rangeEnd: `${this.subnet}.150`, netmask: "255.255.255.0", router: `${this.subnet}.1`, script: HOOK },
      leaseFile,
      pidFile: join(dir, "dnsmasq.pid"),
      logFile: join(dir, "dnsmasq.log"),
    }));
    const dns = spawn("dnsmasq", ["--keep-in-foreground", `--conf-file=${conf}`], {
      stdio: "ignore",
      env: { PATH: process.env.PATH, VMM_SOCKET: this.socket, VMM_LEASE_TOKEN_FILE: join(dir, "lease.token"), VMM_HOOK_LOG: join(dir, "hook.log") },
    });
    this.undo.push(() => stopProcess(dns));
    await until(`dnsmasq of ${o.name}`, () => existsSync(join(dir, "dnsmasq.pid")), 10_000);
  }

  /** The vmmd API with the admin token, over its unix socket. */
  vmm(): Client<typeof VmmService> {
    return createClient(VmmService, createConnectTransport({
      baseUrl: "http://localhost",
      httpVersion: "1.1",
      nodeOptions: { socketPath: this.socket },
      interceptors: [(next) => (req) => {
        req.header.set("authorization", `Bearer ${ADMIN}`);
        return next(req);
      }],
    }));
  }

  /** Starts vmm-kubelet (again); its log is appended to kubelet.log. */
  startKubelet(): void {
    const log = openSync(join(this.dir, "kubelet.log"), "a");
    this.kubeletProc = spawn(this.o.kubelet, [
      `--node-name=${this.o.name}`, `--node-ip=${this.o.ip}`, "--port=10250",
      `--vmm-socket=${this.socket}`, `--vmm-token-file=${join(this.dir, "admin.token")}`,
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

  /** Interfaces (TAPs) on the host's bridge. */
  taps(): string[] {
    const r = spawnSync("ip", ["-o", "link", "show", "master", this.o.bridge], { encoding: "utf8" });
    return r.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => l.split(":")[1]!.trim().split("@")[0]!);
  }

  /** PIDs of QEMU processes of this host. */
  qemuPids(): number[] {
    return processesMatching(this.dir).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]!.includes("qemu-system");
      } catch {
        return false;
      }
    });
  }

  /** Stops vmm-kubelet, removes every VM, then undoes the rest in reverse order. */
  async stop(): Promise<void> {
    await this.stopKubelet();
    if (this.vmmd && this.vmmd.exitCode === null) {
      const { vms } = await this.vmm().listVms({}).catch(() => ({ vms: [] }));
      for (const v of vms) await this.vmm().removeVm({ id: v.id, force: true }).catch(() => undefined);
    }
    for (const u of this.undo.reverse()) {
      try {
        await u();
      } catch {
        // keep undoing
      }
    }
    this.undo.length = 0;
  }
}

// Assembles the daemon: config -> state -> domain objects -> services ->
// listeners. main.ts parses the command line and calls startDaemon.
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import type { Config } from "./config/types.js";
import { mkdirDurable } from "./store/atomic.js";
import { chmodSync, existsSync, readFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "./store/atomic.js";
import { lockStateDir, type StateLock } from "./store/lock.js";
import { LinuxNetworkBackend } from "./vmnet/linux.js";
import { DarwinNetworkBackend } from "./vmnet/darwin.js";
import { VmStore } from "./vm/store.js";
import { VmManager } from "./vm/manager.js";
import { linuxNicHost } from "./vm/nic/host-linux.js";
import { runAsSyntax } from "./vm/qemu-argv.js";
import { QemuRunner } from "./vm/runner.js";
import { ImageCatalog } from "./image/catalog.js";
import { NetworkRegistry } from "./vmnet/registry.js";
import { probeCapabilities, type Capabilities } from "./host/capabilities.js";
import { ForwardService } from "./forward/index.js";
import { setThreadNice } from "../native/sched.js";
import { loadNative } from "../native/index.js";
import { vmmService } from "./rpc/vmm-service.js";
import { networkService } from "./rpc/network-service.js";
import { consoleService } from "./rpc/console-service.js";
import { statsService } from "./rpc/stats-service.js";
import { VmStatsSampler } from "./stats/sampler.js";
import { allVms } from "./metrics/metrics.js";
import { Site } from "./http/site.js";
import { VERSION } from "./version.js";
import { ConsoleReader } from "./console/reader.js";
import { ConsoleAttacher } from "./console/attach.js";
import { attachService } from "./rpc/attach-service.js";
import { rotateSerialLog } from "./console/rotate.js";
import { VmmError } from "./errors.js";
import { SerialFileSource } from "./console/source.js";
import { registerReflection } from "./rpc/reflection.js";
import { HealthState, registerHealth } from "./rpc/health.js";
import { keepByteOrderMarks } from "./rpc/text-encoding.js";
import { authInterceptor, errorInterceptor } from "./rpc/auth.js";
import { ApiServer } from "./http/listener.js";
import { connectionLimits } from "./http/connection-policy.js";
import { createHandler } from "./http/adapter.js";
import { cidrContains, parseHostPort, parseIpv4Cidr } from "./net/addr.js";
import { HostWire } from "./host/neighbour.js";
import { readinessGate } from "./rpc/ready.js";
import { hostPrefixes } from "./net/host-prefixes.js";
import { log } from "./log.js";
import { file_vmm_v1_vmm, VmmService } from "../gen/ts/vmm/v1/vmm_pb.js";
import { file_vmm_v1_network, NetworkService } from "../gen/ts/vmm/v1/network_pb.js";
import { file_grpc_health_v1_health } from "../gen/ts/grpc/health/v1/health_pb.js";

/** VMs whose serial log size is looked at per second (see rotateTimer). */
const ROTATE_PER_TICK = 100;

/**
 * The dnsmasq hook of this checkout (from server/ or dist/server/): the
 * compiled one when it is built (native/build/Release/vmm-dhcp-hook: one
 * process start per lease instead of two), else the script
 * clients/dnsmasq-hook/vmm-dhcp-hook. Both read the same settings.
 */
function bundledHook(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const roots = [resolve(here, ".."), resolve(here, "..", "..")];
  const compiled = roots.map((r) => resolve(r, "native", "build", "Release", "vmm-dhcp-hook"));
  const script = roots.map((r) => resolve(r, "clients", "dnsmasq-hook", "vmm-dhcp-hook"));
  return [...compiled, ...script].find((c) => existsSync(c)) ?? script[0]!;
}

/**
 * A running daemon: where it listens, what the host offers, and stop() (graceful; guests and the
 * relay outlive it).
 */
export interface Daemon {
  readonly socket: string;
  /** "host:port" actually bound, "" without a TCP listener. */
  readonly tcp: string;
  /** "host:port" of the metrics-only listener, "" without one. */
  readonly metrics: string;
  readonly caps: Capabilities;
  stop(): Promise<void>;
}

function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch (e) {
    log("warn", "native addon unavailable; TAP, macvtap and vmnet modes are off", { error: (e as Error).message });
    return false;
  }
}

/**
 * vmm.toml `nice` for the event loop (this thread): lease reports, API calls
 * and the relay's control run ahead of busy guests on a loaded host; what the
 * daemon starts does not inherit a negative value (native/sched.ts). A refusal (no
 * CAP_SYS_NICE, no addon) is logged and the daemon runs on.
 */
function applyNice(nice: number, native: boolean): void {
  if (!native) {
    if (nice !== 0) log("warn", "nice not applied: the native addon is unavailable", { nice });
    return;
  }
  try {
    setThreadNice(nice);
  } catch (e) {
    log("warn", "nice not applied; the daemon runs at the priority it was started with", { nice, error: (e as Error).message });
  }
}

/**
 * Takes the state directory's lock, then builds and starts everything from `cfg` (config -> state
 * -> domain objects -> services -> listeners). Resolves once the listeners accept; throws, having
 * released what it took, when a step fails.
 */
export async function startDaemon(cfg: Config): Promise<Daemon> {
  // Before anything else: the state dir's lock. A second daemon on the
  // same directory stops here, having changed nothing.
  mkdirDurable(cfg.stateDir, 0o711);
  const lock = lockStateDir(cfg.stateDir);
  try {
    return await startLocked(cfg, lock);
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function startLocked(cfg: Config, lock: StateLock): Promise<Daemon> {
  keepByteOrderMarks();
  // 0711: other users may traverse (passt runs as nobody and must reach its
  // socket directory under a VM's directory) but not list; files are 0600.
  chmodSync(cfg.stateDir, 0o711);
  const native = nativeAvailable();
  applyNice(cfg.nice, native);
  const caps = await probeCapabilities(cfg, native);
  const forwards = new ForwardService({
    relay: cfg.forward.relay,
    connectTimeoutMs: cfg.forward.connectTimeoutMs,
    maxConnectionsPerRule: cfg.forward.maxConnectionsPerRule,
    udpIdleMs: cfg.forward.udpIdleSeconds * 1000,
    maxUdpSessionsPerRule: cfg.forward.maxUdpSessionsPerRule,
    // vmm-relayd outlives the daemon (kill -9, restart, upgrade): the next
    // daemon finds it through this directory and adopts its rules.
    relayDir: join(cfg.stateDir, "relay"),
    defaultPath: cfg.forward.defaultPath,
    relayNice: cfg.nice,
    relayPollUs: cfg.forward.relayPollUs,
  });
  if (forwards.fallbackReason !== undefined) {
    log("warn", "native relay unavailable; forwarding through sockets in the daemon", { reason: forwards.fallbackReason });
  }
  const adopted = await forwards.adopt();
  if (adopted > 0) log("info", "forwarding carried on through the restart", { rules: adopted });
  // The hook of per-network dnsmasq instances authenticates with a lease
  // token of the daemon's own (persisted, 0600) when auth is on.
  const auth = { ...cfg.auth };
  let hookTokenFile: string | undefined;
  if (cfg.auth.tokens.length > 0) {
    hookTokenFile = join(cfg.stateDir, "hook.token");
    if (!existsSync(hookTokenFile)) writeFileAtomic(hookTokenFile, randomBytes(32).toString("hex") + "\n");
    auth.leaseTokens = [...cfg.auth.leaseTokens, readFileSync(hookTokenFile, "utf8").trim()];
  }
  // Without a unix socket the hook reaches the daemon over TCP, at the port
  // actually bound (api.tcp may ask for port 0), known only once the
  // listener is up. So the URL goes into a file the hook reads at every call
  // (VMM_HOOK_CONF), written after listening; a file of an earlier run is
  // removed first, so a report never goes to a port someone else holds now.
  const hookConf = join(cfg.stateDir, "dhcp-hook.conf");
  rmSync(hookConf, { force: true });
  const backend =
    process.platform === "linux"
      ? new LinuxNetworkBackend({
          stateDir: cfg.stateDir,
          hook: cfg.vmnet.dhcpHook !== "" ? cfg.vmnet.dhcpHook : bundledHook(),
          hookEnv: {
            ...(cfg.api.socket !== "" ? { VMM_SOCKET: cfg.api.socket } : { VMM_HOOK_CONF: hookConf }),
            ...(hookTokenFile ? { VMM_LEASE_TOKEN_FILE: hookTokenFile } : {}),
          },
          forwards,
        })
      : process.platform === "darwin"
        ? new DarwinNetworkBackend()
        : undefined;
  // The floors meet here, through explicit interfaces: the networks know
  // nothing of VMs; the VM side reaches them as a NetworkLookup (manager)
  // and a NetworkAttacher (runner); the forwarder serves both.
  const networks = new NetworkRegistry(cfg, backend, () => hostPrefixes());
  const store = new VmStore(cfg.stateDir);
  const images = new ImageCatalog(cfg.images.dir);
  log("info", "accelerator", { accel: caps.accel, reason: caps.accelReason });
  const n = cfg.networking;
  // Without QEMU the daemon still serves records; StartVm says why it cannot.
  const runner =
    caps.qemuPath !== ""
      ? new QemuRunner({
          cfg,
          files: (id) => store.files(id),
          images,
          accel: caps.accel,
          // Guests are not root: QEMU drops to qemu.user once set up.
          ...(caps.root ? { runAs: { user: cfg.qemu.user, syntax: runAsSyntax(caps.qemuVersion) } } : {}),
          nicHost: linuxNicHost({
            bridgeHelper: cfg.qemu.bridgeHelper,
            passtBinary: n.passtBinary,
            networks,
            ...(n.passtInterface !== ""
              ? { passtHost: { interface: n.passtInterface, address: n.passtAddress, prefixLength: n.passtPrefixLength, gateway: n.passtGateway } }
              : {}),
          }),
        })
      : undefined;
  // Leases are verified where the guests are: ARP probes speak from the
  // bridge's own address in the NIC's subnet.
  const wire = new HostWire((ifname, ip) => {
    const subnet = cfg.networking.bridgeSubnets[ifname] ?? networks.subnetOfBridge(ifname);
    const cidr = subnet === undefined ? null : parseIpv4Cidr(subnet);
    return cidr === null || cidrContains(cidr, ip);
  });
  if (cfg.networking.leaseVerification === "arp" && (!caps.nativeAddon || !caps.root))
    log("warn", "lease verification needs the native addon and root (CAP_NET_RAW) for ARP probes; leases the neighbour table does not confirm stay pending", {
      nativeAddon: caps.nativeAddon,
      root: caps.root,
    });
  const vms = new VmManager({ cfg, store, runner, forwarder: forwards, networks, images, wire, forwardList: () => forwards.connectFailures() });

  const sampler = new VmStatsSampler();
  const consoles = new ConsoleReader(new SerialFileSource(vms, (id) => store.dir(id)));
  const attacher = new ConsoleAttacher(vms, (id) => store.dir(id));
  // Serial logs are capped: rotated past [console] log_max_bytes (console/rotate.ts).
  // Each second looks at up to ROTATE_PER_TICK VMs, round robin: every VM
  // each second up to that many, and no stat() of every log of a large host
  // in one go on the event loop (1,000 VMs: each every 10 s).
  let rotateNext = 0;
  const rotateTimer = setInterval(() => {
    const ids = vms.ids();
    const batch = ids.length <= ROTATE_PER_TICK ? ids : Array.from({ length: ROTATE_PER_TICK }, (_, i) => ids[(rotateNext + i) % ids.length]!);
    rotateNext = ids.length <= ROTATE_PER_TICK ? 0 : (rotateNext + ROTATE_PER_TICK) % ids.length;
    for (const id of batch) {
      try {
        const rt = vms.get(id, 1).runtime;
        if (rt.status === "running" || rt.status === "stopping") rotateSerialLog(store.dir(id), rt.instanceId, cfg.console.logMaxBytes, cfg.console.logFiles);
      } catch (e) {
        // A VM removed meanwhile is not_found; anything else is worth a line.
        if (!(e instanceof VmmError && e.kind === "not_found")) log("warn", "serial log rotation failed", { vm: id, error: String(e) });
      }
    }
  }, 1000);
  rotateTimer.unref();
  const services = [VmmService.typeName, NetworkService.typeName, "grpc.health.v1.Health"];
  // NOT_SERVING until the daemon has converged (below).
  const health = new HealthState(services, false);
  let markReady!: () => void;
  const converged = new Promise<void>((resolve) => (markReady = resolve));
  const routes = (router: ConnectRouter) => {
    const vmmImpl: ServiceImpl<typeof VmmService> = { ...vmmService({ cfg, vms, forwards, caps, images }), ...consoleService(consoles), ...attachService(attacher), ...statsService({ get: (id) => vms.get(id), sampler }) };
    router.service(VmmService, vmmImpl);
    router.service(NetworkService, networkService({ networks, vms }));
    registerHealth(router, health);
    registerReflection(router, [file_vmm_v1_vmm, file_vmm_v1_network, file_grpc_health_v1_health], services);
  };
  const authorize = authInterceptor(auth);
  const site = new Site(cfg, { version: VERSION, qemuVersion: caps.qemuVersion, vms: () => allVms(vms), sampler, forwards, consoleStreams: () => consoles.active }, authorize);
  const handler = createHandler({
    routes,
    interceptors: [site.interceptor, errorInterceptor, authorize, readinessGate(converged)],
    // Bounded request size: a VM config is small; this stops memory abuse.
    readMaxBytes: 4 * 1024 * 1024,
    // Refuse unknown JSON fields and enum names instead of silently dropping
    // them (a typo'd mode must not create a VM in the default mode).
    jsonOptions: { ignoreUnknownFields: false },
  });
  const api = new ApiServer(site.wrap(handler), connectionLimits(cfg.api));
  let tcp = "";
  let metricsAddress: string;
  try {
    if (cfg.api.socket !== "") await api.listenUnix(cfg.api.socket, cfg.api.socketMode);
    if (cfg.api.tcp !== "") {
      const hp = parseHostPort(cfg.api.tcp)!;
      const port = await api.listenTcp(hp.host, hp.port);
      tcp = hp.host.includes(":") ? `[${hp.host}]:${port}` : `${hp.host}:${port}`;
      if (cfg.auth.tokens.length === 0)
        log("warn", "api.tcp without auth.tokens: every local user, and every user-mode or passt guest (they reach the host's loopback), can call the API as admin", { tcp });
      if (cfg.api.socket === "") writeFileAtomic(hookConf, `VMM_URL=http://${tcp}\n`);
    }
    metricsAddress = await site.listen();
  } catch (e) {
    await site.close();
    await api.close(0);
    await forwards.detach();
    throw e;
  }
  // Listening first: dnsmasq instances that networks (re)start replay their
  // leases to the hook at once, and those calls wait at the gate instead of
  // failing. Then converge: networks (a failure is logged and reported by
  // GetNetwork, not fatal), guests re-adopted with their leases, dnsmasq's
  // lease file of every bridge read; only then are calls served.
  let leaseTimer: NodeJS.Timeout | undefined;
  try {
    await networks.init();
    await vms.init();
    const files = [...Object.entries(cfg.networking.bridgeLeaseFiles).map(([bridge, file]) => ({ bridge, file })), ...networks.leaseFiles()];
    for (const { bridge, file } of files) await vms.leases.reconcile(bridge, file);
    // Every owner that still wants forwards has applied them by now.
    await forwards.pruneAdopted();
    vms.leases.start();
    leaseTimer = setInterval(() => void vms.expireLeases().catch((e) => log("error", "lease expiry failed", { error: String(e) })), 5000);
    leaseTimer.unref();
  } catch (e) {
    vms.leases.close();
    await site.close();
    await api.close(0);
    await forwards.detach();
    throw e;
  }
  markReady();
  health.ready();
  return {
    socket: cfg.api.socket,
    tcp,
    metrics: metricsAddress,
    caps,
    async stop() {
      health.shutdown();
      clearInterval(leaseTimer);
      vms.leases.close();
      attacher.close();
      clearInterval(rotateTimer);
      await site.close();
      await api.close();
      await vms.drain();
      // Guests keep running, and so does forwarding (vmm-relayd, nftables
      // rules): the next daemon adopts it. Only rules on Node sockets stop.
      await forwards.detach();
      runner?.close();
      lock.release();
    },
  };
}

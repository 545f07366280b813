// The daemon's start order: it listens first, then brings networks up (one
// that fails is reported by GetNetwork and stops nothing), then converges
// leases, then serves. No guests: a network's dnsmasq replaying its lease
// file to the hook at start is enough to see that the API already answers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { requireNetns } from "../guest/netns.js";
import { processRunning, waitFor } from "../helpers/net.js";
import { Lan, sh } from "../helpers/lan.js";
import { NetworkingMode, VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode, NetworkService, NetworkState } from "../../gen/ts/vmm/v1/network_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/ts/grpc/health/v1/health_pb.js";

const ADMIN = "start-order-admin-token-0123";
const TOML = `[auth]\ntokens = ["${ADMIN}"]\n`;
let d: DaemonHandle | undefined;
let lan: Lan;

const vmm = () => client(VmmService, transport(d!, "connect", "unix", { token: ADMIN }));
const nets = () => client(NetworkService, transport(d!, "connect", "unix", { token: ADMIN }));

beforeAll(async () => {
  requireNetns();
  lan = new Lan();
  lan.bridge("vmso-up0", "10.85.0.1/24"); // the shared network's way out, removed while the daemon is down
  d = await startDaemon({ tcp: false, toml: TOML });
});

afterAll(async () => {
  if (d) {
    await vmm().removeVm({ id: "so-vm", force: true }).catch(() => undefined);
    for (const n of (await nets().listNetworks({}).catch(() => ({ networks: [] }))).networks) await nets().deleteNetwork({ id: n.id, force: true }).catch(() => undefined);
    await d.stop();
    d.cleanup();
  }
  await lan?.close();
});

describe("start order", () => {
  it("listens before networks come up; a network that fails is reported, not fatal; calls are served once converged", async () => {
    const host = (await nets().createNetwork({ name: "so-host", config: { mode: NetworkMode.HOST, ipv4Subnet: "10.86.0.0/24" } })).network!;
    const shared = (await nets().createNetwork({ name: "so-shared", config: { mode: NetworkMode.SHARED, ipv4Subnet: "10.87.0.0/24", externalInterface: "vmso-up0" } })).network!;
    expect([host.state, shared.state]).toEqual([NetworkState.READY, NetworkState.READY]);
    const { vm } = await vmm().createVm({ id: "so-vm", config: { name: "so-vm", nics: [{ mode: NetworkingMode.VMNET, networkId: host.id }] } });
    const mac = vm!.nics[0]!.mac;

    await d!.stop();
    // While the daemon is down: the host network's dnsmasq is gone and its
    // lease file names the VM; the shared network's outbound interface is gone.
    const dir = join(d!.stateDir, "networks", host.id);
    const pid = Number(readFileSync(join(dir, "dnsmasq.pid"), "utf8"));
    process.kill(pid, "SIGTERM");
    await waitFor(async () => {
      if (processRunning(pid)) throw new Error("dnsmasq still running");
    }, 10_000);
    writeFileSync(join(dir, "dnsmasq.leases"), `${Math.floor(Date.now() / 1000) + 3600} ${mac} 10.86.0.57 so-vm *\n`);
    sh(["ip", "link", "del", "vmso-up0"]);

    d = await startDaemon({ dir: d!.dir, tcp: false, toml: TOML });
    // The restarted dnsmasq replayed its lease to the hook at once: the
    // daemon answered it (the VM does not run, so it refused it), it was not
    // "unreachable".
    const hookLog = join(dir, "dhcp-hook.log");
    const replay = await waitFor(async () => {
      const line = readFileSync(hookLog, "utf8").split("\n").find((l) => l.includes(`old ${mac} 10.86.0.57`));
      return line ?? Promise.reject(new Error("no replay yet"));
    }, 20_000);
    expect(replay).toContain("refused (HTTP 400)");
    expect(replay).toContain("is not running");
    expect(readFileSync(hookLog, "utf8")).not.toContain("unreachable");

    const failed = (await nets().getNetwork({ id: shared.id })).network!;
    expect(failed.state).toBe(NetworkState.FAILED);
    expect(failed.error).toContain("config.external_interface: vmso-up0 does not exist");
    expect(failed.stateChangedAt).toBeDefined();
    expect((await nets().getNetwork({ id: host.id })).network!.state).toBe(NetworkState.READY);
    expect(d!.stderr()).toMatch(/"msg":"network failed to come up".*"network":"/);
    const health = client(Health, transport(d!, "connect", "unix"));
    expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
    expect((await vmm().getInfo({ id: "so-vm" })).vm!.nics[0]!.lease).toBeUndefined();
  }, 120_000);
});

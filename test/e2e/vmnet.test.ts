// The vmnet layer on Linux with real guests: shared and host networks,
// a DHCP reservation, a forwarded host port, DNS by guest hostname, guest-to-guest reachability
// (probed from inside the guests), NAT to a simulated outside host in shared
// mode only, a second process attaching a guest through the serialization,
// and deletion leaving nothing behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { client, startDaemon, transport, type DaemonHandle, ROOT } from "../helpers/daemon.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { requireNetns } from "../guest/netns.js";
import { freePort, httpGet, processesMatching, waitFor } from "../helpers/net.js";
import { expectUnprivileged } from "../helpers/privilege.js";
import { Lan, sh } from "../helpers/lan.js";
import { deriveMac } from "../../server/net/mac.js";
import { NetworkingMode, Protocol, VmmService, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode, NetworkService, type Network } from "../../gen/ts/vmm/v1/network_pb.js";

const ADMIN = "vmnet-admin-token-0123";
const TOML = `[auth]\ntokens = ["${ADMIN}"]\n[networking]\nforward_service_enabled = true\n`;
const CLI = join(ROOT, "dist", "clients", "cli", "main.js");
let d: DaemonHandle;
let lan: Lan;
let hostHttp: Server;
const OUTSIDE = "10.97.0.2";

const vmm = () => client(VmmService, transport(d, "connect", "unix", { token: ADMIN }));
const nets = () => client(NetworkService, transport(d, "connect", "unix", { token: ADMIN }));

beforeAll(async () => {
  requireNetns();
  lan = new Lan();
  // The simulated outside world: a host in its own namespace behind a veth.
  lan.netns("vmoutside");
  lan.veth("vmext0", "vmext1", "vmoutside");
  sh(["ip", "addr", "add", "10.97.0.1/24", "dev", "vmext0"]);
  sh(["ip", "-n", "vmoutside", "addr", "add", `${OUTSIDE}/24`, "dev", "vmext1"]);
  sh(["ip", "-n", "vmoutside", "link", "set", "vmext1", "up"]);
  lan.background(["ip", "netns", "exec", "vmoutside", "busybox", "httpd", "-f", "-p", `${OUTSIDE}:8080`, "-h", lan.www("outside host")]);
  // A service on the host side that guests of both modes may reach.
  hostHttp = createServer((_q, r) => r.end("host service")).listen(18099, "0.0.0.0");
  d = await startDaemon({ tcp: false, toml: TOML });
});

afterAll(async () => {
  if (d) {
    const { vms } = await vmm().listVms({}).catch(() => ({ vms: [] }));
    for (const v of vms) await vmm().removeVm({ id: v.id, force: true }).catch(() => undefined);
    const { networks } = await nets().listNetworks({}).catch(() => ({ networks: [] as Network[] }));
    for (const n of networks) await nets().deleteNetwork({ id: n.id, force: true }).catch(() => undefined);
    await d.stop();
    d.cleanup();
  }
  hostHttp?.close();
  await lan?.close();
});

async function boot(id: string, networkId: string, probe: string[], tries = 90, hostPort = 0) {
  const { vm } = await vmm().createVm({
    id,
    config: {
      name: id,
      kernel: guestKernel(),
      initrd: guestInitrd(),
      cmdline: `console=ttyS0 quiet panic=-1 vmm.hostname=${id} vmm.probe=${probe.join(",")} vmm.probe_tries=${tries}`,
      nics: [{ mode: NetworkingMode.VMNET, networkId }],
      ports: hostPort ? [{ protocol: Protocol.TCP, hostPort, vmPort: 8080 }] : [],
    },
    start: true,
  });
  expect(vm!.status).toBe(VmStatus.RUNNING);
  // Guests are not root: QEMU runs as qemu.user.
  expectUnprivileged(vm!.pid);
  return vm!;
}

/** The guest's probe results ("ok"/"fail" per target), once all are done. */
async function probes(id: string, timeoutMs = 200_000): Promise<Record<string, string>> {
  const serial = join(d.stateDir, "vms", id, "serial.log");
  return waitFor(async () => {
    const text = existsSync(serial) ? readFileSync(serial, "utf8") : "";
    if (!text.includes("VMM-PROBE-DONE")) throw new Error(`${id}: probes not done yet`);
    const out: Record<string, string> = {};
    for (const m of text.matchAll(/VMM-PROBE (ok|fail) (\S+)/g)) out[m[2]!] = m[1]!;
    return out;
  }, timeoutMs, 1000);
}

async function leaseIp(id: string): Promise<string> {
  return waitFor(async () => {
    const ip = (await vmm().getInfo({ id })).vm!.nics[0]!.lease?.ip;
    if (!ip) throw new Error(`${id}: no lease reported yet`);
    return ip;
  }, 120_000);
}

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, "--socket", d.socket, "--token", ADMIN, ...args], { encoding: "utf8", timeout: 60_000 });
}

describe("vmnet networks", () => {
  let shared: Network;
  let host: Network;

  it("shared: three guests reach each other by name, the reserved one gets its address, NAT reaches outside", async () => {
    const macA = deriveMac("sa", 0, "");
    shared = (
      await nets().createNetwork({
        name: "shared-net",
        config: {
          mode: NetworkMode.SHARED,
          ipv4Subnet: "10.96.0.0/24",
          dhcpReservations: [{ mac: macA, ipv4: "10.96.0.10" }],
          dnsProxyEnabled: true,
          externalInterface: "vmext0",
        },
      })
    ).network!;
    expect(shared.ipv4Gateway).toBe("10.96.0.1");
    expect(shared.serialization).toMatch(/^vmmnet1\./);
    const forwarded = await freePort();
    await boot("sa", shared.id, ["sb:8080", "sc:8080", `${OUTSIDE}:8080`, "10.96.0.1:18099"], 90, forwarded);
    await boot("sb", shared.id, ["sa:8080", "sc:8080"]);
    await boot("sc", shared.id, ["sa:8080", "sb:8080", "xp:8080"]);
    expect(await leaseIp("sa")).toBe("10.96.0.10");
    // The guest (QEMU unprivileged) also answers through a forwarded host port.
    expect(await waitFor(() => httpGet(`http://127.0.0.1:${forwarded}/`), 60_000)).toContain("sa");
    for (const id of ["sb", "sc"]) expect(await leaseIp(id)).toMatch(/^10\.96\.0\.(\d+)$/);
    expect(await leaseIp("sb")).not.toBe("10.96.0.10");

    // A second process (the CLI) acquires the network by its serialization
    // and boots a guest on it; a tampered serialization is refused.
    // One character of the signature changed (not the last, whose unused
    // bits would make the handle non-canonical and refused for that).
    const at = shared.serialization.length - 5;
    const tampered = shared.serialization.slice(0, at) + (shared.serialization[at] === "A" ? "B" : "A") + shared.serialization.slice(at + 1);
    const bad = cli("network", "acquire", tampered);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/invalid_argument: serialization: signature does not verify/);
    const acq = cli("--json", "network", "acquire", shared.serialization);
    expect(acq.status, acq.stderr).toBe(0);
    const holder = JSON.parse(acq.stdout) as { network: { id: string }; holderId: string };
    expect(holder.network.id).toBe(shared.id);
    const created = cli("create", "xp", "--id", "xp", "--kernel", guestKernel(), "--initrd", guestInitrd(), "--cmdline", "console=ttyS0 quiet panic=-1 vmm.hostname=xp vmm.probe=sa:8080 vmm.probe_tries=90", "--net", `vmnet,network=${shared.id}`, "--start");
    expect(created.status, created.stderr).toBe(0);

    expect(await probes("sa")).toEqual({ "sb:8080": "ok", "sc:8080": "ok", [`${OUTSIDE}:8080`]: "ok", "10.96.0.1:18099": "ok" });
    expect(await probes("sb")).toEqual({ "sa:8080": "ok", "sc:8080": "ok" });
    expect(await probes("sc")).toEqual({ "sa:8080": "ok", "sb:8080": "ok", "xp:8080": "ok" });
    expect(await probes("xp")).toEqual({ "sa:8080": "ok" });

    // kill -9 vmmd and restart: the network, its dnsmasq (same process), the
    // guests and their leases are all still there.
    const dnsmasqBefore = processesMatching(join(d.stateDir, "networks", shared.id));
    expect(dnsmasqBefore.length).toBeGreaterThan(0);
    await d.kill9();
    d = await startDaemon({ dir: d.dir, tcp: false, toml: TOML });
    expect((await nets().getNetwork({ id: shared.id })).network!.bridge).toBe(shared.bridge);
    expect(processesMatching(join(d.stateDir, "networks", shared.id))).toEqual(dnsmasqBefore);
    expect(await leaseIp("sa")).toBe("10.96.0.10");
    expect((await vmm().getInfo({ id: "sb" })).vm!.status).toBe(VmStatus.RUNNING);

    // Deleting while VMs are attached (and a holder remains) is refused.
    await expect(nets().deleteNetwork({ id: shared.id })).rejects.toThrow(/failed_precondition|attached VMs/i);
    expect((await nets().getNetwork({ id: shared.id })).network!.attachedVmIds.sort()).toEqual(["sa", "sb", "sc", "xp"]);
    expect(cli("network", "release", shared.id, holder.holderId).status).toBe(0);
  }, 400_000);

  it("host: guests reach each other and the host, not the outside", async () => {
    host = (await nets().createNetwork({ name: "host-net", config: { mode: NetworkMode.HOST, ipv4Subnet: "10.95.0.0/24", dnsProxyEnabled: true } })).network!;
    await boot("ha", host.id, ["hb:8080", "10.95.0.1:18099", `${OUTSIDE}:8080`], 5);
    await boot("hb", host.id, ["ha:8080"], 90);
    expect(await probes("ha")).toEqual({ "hb:8080": "ok", "10.95.0.1:18099": "ok", [`${OUTSIDE}:8080`]: "fail" });
    expect(await probes("hb")).toEqual({ "ha:8080": "ok" });
  }, 300_000);

  it("deleting after the VMs are gone leaves no bridge, TAP, dnsmasq or nftables rule", async () => {
    for (const [net, ids] of [[shared, ["sa", "sb", "sc", "xp"]], [host, ["ha", "hb"]]] as const) {
      const taps = (await Promise.all(ids.map(async (id) => (await vmm().getInfo({ id })).vm!.nics[0]!.hostInterface))).filter(Boolean);
      expect(taps.length).toBe(ids.length);
      for (const id of ids) await vmm().removeVm({ id, force: true });
      await nets().deleteNetwork({ id: net.id });
      expect(spawnSync("ip", ["link", "show", net.bridge]).status).not.toBe(0);
      for (const t of taps) expect(spawnSync("ip", ["link", "show", t]).status).not.toBe(0);
      expect(processesMatching(join(d.stateDir, "networks", net.id))).toEqual([]);
      const tables = spawnSync("nft", ["list", "tables"], { encoding: "utf8" }).stdout;
      expect(tables).not.toContain(`vmmnet_${net.id.replace(/^net-/, "")}`);
    }
    expect((await nets().listNetworks({})).networks).toEqual([]);
  }, 120_000);
});

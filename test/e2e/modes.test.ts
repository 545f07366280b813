// One real guest per networking mode, created and booted through the RPC
// API, each QEMU running as the unprivileged qemu.user: passt is reached
// through its host port; tap and bridge (qemu-bridge-helper) guests get a
// DHCP lease from a dnsmasq this test starts, whose hook reports it to
// vmmd, and are reached at their guest IP and through a forwarded host
// port; macvtap guests get theirs from a peer namespace's dnsmasq and are
// reached from there (the parent's own namespace cannot reach a macvtap
// guest, so neither can a forward). RemoveVm must leave no TAP, macvtap,
// passt or socket.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { requireNetns } from "../guest/netns.js";
import { freePort, httpGet, processesMatching, waitFor } from "../helpers/net.js";
import { expectUnprivileged } from "../helpers/privilege.js";
import { HOOK, Lan } from "../helpers/lan.js";
import { NetworkingMode, Protocol, VmmService, VmStatus, type VmInfo } from "../../gen/ts/vmm/v1/vmm_pb.js";

const BR = "vmbr-e2e";
const PARENT = "vmacp0";
const PEER = "vmpeer";
const ADMIN = "modes-admin-token-0123456789abcdef";
const LEASE = "modes-lease-token-0123456789abcdef";

let d: DaemonHandle;
let lan: Lan;
let bridgeLeases = "";
let peerLeases = "";

const vmm = () => client(VmmService, transport(d, "connect", "unix", { token: ADMIN }));

beforeAll(async () => {
  requireNetns();
  lan = new Lan();
  lan.bridge(BR, "10.88.0.1/24");
  lan.netns(PEER);
  lan.veth(PARENT, "vmacq0", PEER);
  spawnSync("ip", ["-n", PEER, "addr", "add", "10.89.0.1/24", "dev", "vmacq0"]);
  spawnSync("ip", ["-n", PEER, "link", "set", "vmacq0", "up"]);
  peerLeases = lan.dnsmasq({ iface: "vmacq0", netns: PEER, range: ["10.89.0.50", "10.89.0.150"] }).leases;
  // passt needs a host interface with an address (there is no default
  // route here); a port-less bridge serves (no dummy module on this kernel).
  lan.bridge("vmmstub0", "10.99.0.1/24");
  d = await startDaemon({
    tcp: false,
    toml: `
[auth]
tokens = ["${ADMIN}"]
lease_tokens = ["${LEASE}"]
[networking]
bridge_subnets = { "${BR}" = "10.88.0.0/24" }
forward_service_enabled = true
allowed_modes = ["user", "passt", "bridge", "tap", "macvtap", "vmnet", "custom"]
bridge = "${BR}"
macvtap_parent = "${PARENT}"
passt_interface = "vmmstub0"
passt_address = "10.99.0.2"
passt_prefix_length = 24
passt_gateway = "10.99.0.1"
`,
  });
  // The bridge's dnsmasq reports leases through the project's hook (forwards follow them).
  bridgeLeases = lan.dnsmasq({
    iface: BR,
    range: ["10.88.0.50", "10.88.0.150"],
    hook: HOOK,
    env: lan.leaseHook(d.socket, LEASE).env,
  }).leases;
});

afterAll(async () => {
  if (d) {
    const { vms } = await vmm().listVms({}).catch(() => ({ vms: [] as VmInfo[] }));
    for (const v of vms) await vmm().removeVm({ id: v.id, force: true }).catch(() => undefined);
    await d.stop();
    d.cleanup();
  }
  await lan?.close();
});

function linkExists(name: string, netns?: string): boolean {
  const args = netns ? ["-n", netns, "link", "show", name] : ["link", "show", name];
  return spawnSync("ip", args).status === 0;
}

async function boot(id: string, mode: NetworkingMode, ports: { host: number; vm: number }[] = [], customNetdev = ""): Promise<VmInfo> {
  const { vm } = await vmm().createVm({
    id,
    config: {
      name: id,
      kernel: guestKernel(),
      initrd: guestInitrd(),
      cmdline: `console=ttyS0 quiet panic=-1 vmm.hostname=${id}`,
      nics: [{ mode, customNetdev }],
      ports: ports.map((p) => ({ protocol: Protocol.TCP, hostPort: p.host, vmPort: p.vm })),
    },
    start: true,
  });
  expect(vm!.status).toBe(VmStatus.RUNNING);
  // Guests are not root: QEMU runs as qemu.user in every mode.
  expectUnprivileged(vm!.pid);
  return vm!;
}

async function removeAndCheckClean(vm: VmInfo): Promise<void> {
  const dir = join(d.stateDir, "vms", vm.id);
  await vmm().removeVm({ id: vm.id, force: true });
  expect(existsSync(dir)).toBe(false);
  expect(processesMatching(dir)).toEqual([]); // no QEMU, no passt
  for (const n of vm.nics) if (n.hostInterface) expect(linkExists(n.hostInterface)).toBe(false);
  expect(readdirSync(join(d.stateDir, "vms")).filter((n) => n === vm.id)).toEqual([]);
}

describe("networking modes", () => {
  it("passt: reached through its host port", async () => {
    const port = await freePort();
    const vm = await boot("passt-1", NetworkingMode.PASST, [{ host: port, vm: 8080 }]);
    // Only passt has its pid file on the command line (QEMU has the socket).
    expect(processesMatching(join(d.stateDir, "vms", "passt-1", "passt", "passt.pid")).length).toBe(1);
    expect(await waitFor(() => httpGet(`http://127.0.0.1:${port}/`), 90_000)).toContain("passt-1");
    await removeAndCheckClean(vm);
  }, 180_000);

  it("custom: a verbatim netdev", async () => {
    const port = await freePort();
    const vm = await boot("custom-1", NetworkingMode.CUSTOM, [], `user,hostfwd=tcp:127.0.0.1:${port}-:8080`);
    expect(await waitFor(() => httpGet(`http://127.0.0.1:${port}/`), 90_000)).toContain("custom-1");
    await removeAndCheckClean(vm);
  }, 180_000);

  it("tap: the daemon's own TAP on the bridge; DHCP lease; reached at the guest IP and through a forwarded port", async () => {
    const port = await freePort();
    const vm = await boot("tap-1", NetworkingMode.TAP, [{ host: port, vm: 8080 }]);
    const tap = vm.nics[0]!.hostInterface;
    expect(tap).toMatch(/^vt[0-9a-f]{10}n0$/);
    expect(linkExists(tap)).toBe(true);
    const ip = await waitFor(async () => Lan.leaseOf(bridgeLeases, vm.nics[0]!.mac) ?? Promise.reject(new Error("no lease yet")), 90_000);
    expect(ip).toMatch(/^10\.88\.0\./);
    expect(await waitFor(() => httpGet(`http://${ip}:8080/`), 60_000)).toContain("tap-1");
    expect(await waitFor(() => httpGet(`http://127.0.0.1:${port}/`), 60_000)).toContain("tap-1");
    await removeAndCheckClean(vm);
  }, 180_000);

  it("bridge: qemu-bridge-helper; DHCP lease; reached at the guest IP and through a forwarded port", async () => {
    const port = await freePort();
    const vm = await boot("bridge-1", NetworkingMode.BRIDGE, [{ host: port, vm: 8080 }]);
    const ip = await waitFor(async () => Lan.leaseOf(bridgeLeases, vm.nics[0]!.mac) ?? Promise.reject(new Error("no lease yet")), 90_000);
    expect(await waitFor(() => httpGet(`http://${ip}:8080/`), 60_000)).toContain("bridge-1");
    expect(await waitFor(() => httpGet(`http://127.0.0.1:${port}/`), 60_000)).toContain("bridge-1");
    await removeAndCheckClean(vm);
  }, 180_000);

  it("macvtap: lease from the peer's dnsmasq; reached from the peer namespace", async () => {
    const vm = await boot("macvtap-1", NetworkingMode.MACVTAP);
    const mv = vm.nics[0]!.hostInterface;
    expect(mv).toMatch(/^vm[0-9a-f]{10}n0$/);
    expect(linkExists(mv)).toBe(true);
    const ip = await waitFor(async () => Lan.leaseOf(peerLeases, vm.nics[0]!.mac) ?? Promise.reject(new Error("no lease yet")), 90_000);
    const page = await waitFor(async () => {
      const r = spawnSync("ip", ["netns", "exec", PEER, "curl", "-sS", "--max-time", "3", `http://${ip}:8080/`], { encoding: "utf8", timeout: 10_000 });
      if (r.status !== 0) throw new Error(r.stderr);
      return r.stdout;
    }, 60_000);
    expect(page).toContain("macvtap-1");
    await removeAndCheckClean(vm);
  }, 180_000);
});

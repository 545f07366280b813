// The headline flow: a bridge-mode guest gets a DHCP lease from dnsmasq,
// dnsmasq's dhcp-script (the project's hook) reports it to vmmd with a
// lease-only token, and a host port starts reaching the guest. Then: live
// update_ports, kill -9 of vmmd with restoration before any DHCP traffic,
// lease release, and refused reports that change nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { connect, type Socket } from "node:net";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { requireNetns } from "../guest/netns.js";
import { freePort, httpGet, waitFor } from "../helpers/net.js";
import { HOOK, Lan } from "../helpers/lan.js";
import { NetworkingMode, Protocol, VmmService, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { expectUnprivileged } from "../helpers/privilege.js";

const BR = "vmbr-fwd";
const ADMIN = "admin-token-0123456789";
const LEASE = "lease-token-0123456789";

let d: DaemonHandle | undefined;
let lan: Lan;
let dir = "";
let toml = "";
let hookLog = "";
let tokenFile = "";

const vmm = () => client(VmmService, transport(d!, "connect", "unix", { token: ADMIN }));

let dns: ReturnType<Lan["dnsmasq"]>;
/** dnsmasq with the project's hook; the environment carries its settings. */
function startDns() {
  return lan.dnsmasq({
    iface: BR,
    range: ["10.90.0.50", "10.90.0.150"],
    hook: HOOK,
    env: { VMM_SOCKET: d!.socket, VMM_LEASE_TOKEN_FILE: tokenFile, VMM_HOOK_LOG: hookLog },
  });
}

/** Runs the hook as dnsmasq would; returns its exit status and stderr. */
function runHook(args: string[], token = tokenFile): { status: number | null; stderr: string } {
  const r = spawnSync(HOOK, args, {
    encoding: "utf8",
    timeout: 15_000,
    env: { PATH: process.env.PATH, VMM_SOCKET: d!.socket, VMM_LEASE_TOKEN_FILE: token, DNSMASQ_INTERFACE: BR },
  });
  return { status: r.status, stderr: r.stderr };
}

/** One TCP round trip on an open connection to the guest's echo service. */
function echo(sock: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("echo timeout")), 5000);
    sock.once("data", (b) => {
      clearTimeout(t);
      resolve(b.toString());
    });
    sock.write(text);
  });
}

beforeAll(async () => {
  requireNetns();
  lan = new Lan();
  dir = lan.dir;
  hookLog = join(dir, "hook.log");
  tokenFile = join(dir, "lease.token");
  writeFileSync(tokenFile, LEASE + "\n", { mode: 0o600 });
  lan.bridge(BR, "10.90.0.1/24");
  toml = `
[auth]
tokens = ["${ADMIN}"]
lease_tokens = ["${LEASE}"]
[networking]
default_mode = "bridge"
bridge = "${BR}"
bridge_subnets = { "${BR}" = "10.90.0.0/24" }
forward_service_enabled = true
`;
  d = await startDaemon({ tcp: false, toml });
  dns = startDns();
});

afterAll(async () => {
  if (d) {
    const { vms } = await vmm().listVms({}).catch(() => ({ vms: [] }));
    for (const v of vms) await vmm().removeVm({ id: v.id, force: true }).catch(() => undefined);
    await d.stop();
    d.cleanup();
  }
  await lan?.close();
});

describe("bridge networking end to end", () => {
  it("lease -> ReportDhcpLease -> forwarding, update_ports live, restart, release, refusals", async () => {
    const port1 = await freePort();
    const port2 = await freePort();
    const { vm } = await vmm().createVm({
      id: "web",
      config: {
        name: "web",
        kernel: guestKernel(),
        initrd: guestInitrd(),
        cmdline: "console=ttyS0 quiet panic=-1 vmm.hostname=web",
        nics: [{ mode: NetworkingMode.BRIDGE }],
        ports: [{ protocol: Protocol.TCP, hostPort: port1, vmPort: 8080 }],
      },
      start: true,
    });
    expect(vm!.status).toBe(VmStatus.RUNNING);
    // Guests are not root: QEMU (and the TAP qemu-bridge-helper made for it) runs as qemu.user.
    expectUnprivileged(vm!.pid);
    const mac = vm!.nics[0]!.mac;

    // The lease reaches vmmd through the hook; the host port serves the guest.
    const page = await waitFor(() => httpGet(`http://127.0.0.1:${port1}/`), 90_000);
    expect(page).toContain("web");
    const info = (await vmm().getInfo({ id: "web" })).vm!;
    const ip = info.nics[0]!.lease!.ip;
    expect(ip).toMatch(/^10\.90\.0\./);
    expect(info.nics[0]!.lease!.hostname).toBe("web");
    expect(info.forwards.map((f) => [f.listenPort, f.targetAddress, f.targetPort])).toEqual([[port1, ip, 8080]]);
    expect(readFileSync(hookLog, "utf8")).toMatch(new RegExp(`add ${mac} ${ip.replace(/\./g, "\\.")} \\(web\\) reported`));

    // update_ports on the running VM: the second port works at once and a
    // connection open on the first port survives.
    const first = await vmm().updateVm({ id: "web", updatePorts: true, ports: [{ protocol: Protocol.TCP, hostPort: port1, vmPort: 8081 }] });
    expect(first.vm!.forwards.map((f) => f.targetPort)).toEqual([8081]);
    const held = connect(port1, "127.0.0.1");
    await new Promise<void>((r, j) => held.once("connect", () => r()).once("error", j));
    expect(await echo(held, "ping-1")).toBe("ping-1");
    await vmm().updateVm({
      id: "web",
      updatePorts: true,
      ports: [
        { protocol: Protocol.TCP, hostPort: port1, vmPort: 8081 },
        { protocol: Protocol.TCP, hostPort: port2, vmPort: 8080 },
      ],
    });
    expect(await httpGet(`http://127.0.0.1:${port2}/`)).toContain("web");
    expect(await echo(held, "ping-2")).toBe("ping-2");
    held.destroy();

    // kill -9 vmmd; restart; the guest still runs and forwarding is back
    // before any new DHCP traffic (the hook log does not grow).
    const pid = (await vmm().getInfo({ id: "web" })).vm!.pid;
    await d!.kill9();
    const hookLines = readFileSync(hookLog, "utf8").split("\n").length;
    d = await startDaemon({ dir: d!.dir, tcp: false, toml });
    const again = (await vmm().getInfo({ id: "web" })).vm!;
    expect(again.status).toBe(VmStatus.RUNNING);
    expect(again.pid).toBe(pid);
    expect(await httpGet(`http://127.0.0.1:${port2}/`)).toContain("web");
    expect(readFileSync(hookLog, "utf8").split("\n").length).toBe(hookLines);

    // Refused reports change nothing.
    const nicsJson = async () => JSON.stringify((await vmm().getInfo({ id: "web" })).vm!.nics, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
    const before = await nicsJson();
    expect(runHook(["add", mac, "192.168.1.5"]).status).toBe(1); // outside the subnet
    expect(runHook(["add", "02:00:00:00:00:01", "10.90.0.77"]).status).toBe(1); // unknown MAC
    const wrong = join(dir, "wrong.token");
    writeFileSync(wrong, "not-the-lease-token-at-all\n");
    const r = runHook(["add", mac, "10.90.0.78"], wrong);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/401|unauthenticated/);
    await expect(
      client(VmmService, transport(d, "connect", "unix", { token: LEASE })).createVm({ config: { name: "x" } }),
    ).rejects.toThrow(/permission_denied|lease token/i);
    expect(await nicsJson()).toBe(before);

    // The lease is released (reported del): the host ports stop accepting.
    expect(runHook(["del", mac, ip]).status).toBe(0);
    const released = (await vmm().getInfo({ id: "web" })).vm!;
    expect(released.nics[0]!.lease).toBeUndefined();
    expect(released.forwards).toEqual([]);
    await expect(httpGet(`http://127.0.0.1:${port2}/`, 1000)).rejects.toThrow(/ECONNREFUSED/);

    // dnsmasq still holds the lease in its lease file: restarting it replays
    // the lease to the hook ("old"), which restores the forwarding.
    dns.proc.kill("SIGTERM");
    await new Promise((r) => dns.proc.once("exit", r));
    dns = startDns();
    await waitFor(async () => {
      if (!readFileSync(hookLog, "utf8").includes(`old ${mac} ${ip}`)) throw new Error("no replay yet");
    }, 20_000);
    expect(await waitFor(() => httpGet(`http://127.0.0.1:${port2}/`), 10_000)).toContain("web");

    // Stopping the VM removes its rules.
    await vmm().stopVm({ id: "web", force: true });
    await expect(httpGet(`http://127.0.0.1:${port2}/`, 1000)).rejects.toThrow(/ECONNREFUSED/);
  }, 240_000);
});

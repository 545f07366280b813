// A lease is believed only when the network agrees (issue: forwarding that
// always reaches the right guest). Real guests on two bridges, dnsmasq from
// the project's generator with the project's hook, a real vmmd:
//   * a forged report (VM A's MAC with VM B's address) changes no rule and
//     the mismatch is logged and recorded;
//   * a del that never reached vmmd, then the address given to another VM:
//     each host port still reaches its own VM;
//   * a vmmd restart converges from dnsmasq's lease file (dnsmasq untouched);
//   * a stopped VM holds no lease;
//   * a port on the second NIC answers on that NIC's address.
// Guests with vmm.shell=1 get commands through their console socket (the
// DHCP client's release/renew signals), so leases change the way they do
// in the field.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { requireNetns } from "../guest/netns.js";
import { freePort, httpGet, processRunning, waitFor } from "../helpers/net.js";
import { failure } from "../helpers/rpc.js";
import { HOOK, Lan } from "../helpers/lan.js";
import { deriveMac } from "../../server/net/mac.js";
import { Code } from "@connectrpc/connect";
import { LeaseVerification, NetworkingMode, Protocol, VmmService, type VmInfo } from "../../gen/ts/vmm/v1/vmm_pb.js";

const BR = "vmbr-lt0";
const BR2 = "vmbr-lt1";
const ADMIN = "admin-token-lease-truth-0123";
const LEASE = "lease-token-lease-truth-0123";

let d: DaemonHandle | undefined;
let lan: Lan;
let toml = "";
let tokenFile = "";
let hookLog = "";
let hostsFile = "";
let dns: ReturnType<Lan["dnsmasq"]>;

const vmm = () => client(VmmService, transport(d!, "connect", "unix", { token: ADMIN }));
const info = async (id: string): Promise<VmInfo> => (await vmm().getInfo({ id, maxEvents: 200 })).vm!;
const ports: Record<string, number> = {};

/** Runs the hook as dnsmasq would (its settings from the environment). */
function runHook(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(HOOK, args, { encoding: "utf8", timeout: 15_000, env: { PATH: process.env.PATH, VMM_SOCKET: d!.socket, VMM_LEASE_TOKEN_FILE: tokenFile, DNSMASQ_INTERFACE: BR } });
  // The hook quotes vmmd's JSON answer: unescape its quotes for matching.
  return { status: r.status, stderr: r.stderr.replace(/\\"/g, '"') };
}

/** Types `cmd` into the guest's console shell (vmm.shell=1). */
async function guestSh(id: string, cmd: string): Promise<void> {
  const sock = connect(join(d!.stateDir, "vms", id, "console.sock"));
  await new Promise<void>((ok, fail) => sock.once("connect", () => ok()).once("error", fail));
  sock.write(`\n${cmd}\n`);
  await new Promise((r) => setTimeout(r, 300));
  sock.destroy();
}

async function boot(id: string, nics: { mode: NetworkingMode; bridge?: string }[], portNics: number[], shell = false): Promise<VmInfo> {
  const { vm } = await vmm().createVm({
    id,
    config: {
      name: id,
      kernel: guestKernel(),
      initrd: guestInitrd(),
      cmdline: `console=ttyS0 quiet panic=-1 vmm.hostname=${id}${shell ? " vmm.shell=1" : ""}`,
      nics,
      ports: portNics.map((nic, i) => ({ protocol: Protocol.TCP, hostPort: ports[`${id}:${i}`]!, vmPort: 8080, nicIndex: nic })),
    },
  });
  return vm!;
}

/** The page of the guest behind host port `port` (retried until it answers). */
const page = (port: number, timeoutMs = 120_000) => waitFor(() => httpGet(`http://127.0.0.1:${port}/`), timeoutMs);

const targets = async (id: string) => (await info(id)).forwards.map((f) => `${f.listenPort}->${f.targetAddress}:${f.targetPort}#${f.nicIndex}`);

beforeAll(async () => {
  requireNetns();
  lan = new Lan();
  tokenFile = join(lan.dir, "lease.token");
  hookLog = join(lan.dir, "hook.log");
  hostsFile = join(lan.dir, "dhcp-hosts");
  writeFileSync(tokenFile, LEASE + "\n", { mode: 0o600 });
  // A's address is fixed, so that it can later be handed to another VM.
  // dnsmasq reads the file after dropping to nobody: traversable, readable.
  chmodSync(lan.dir, 0o711);
  writeFileSync(hostsFile, `${deriveMac("lt-a", 0, "")},10.93.0.77\n`, { mode: 0o644 });
  lan.bridge(BR, "10.93.0.1/24");
  lan.bridge(BR2, "10.94.0.1/24");
  for (const k of ["lt-a:0", "lt-b:0", "lt-d:0", "lt-c:0", "lt-c:1"]) ports[k] = await freePort();
  const leases1 = join(lan.dir, `dnsmasq-${BR}.leases`);
  const leases2 = join(lan.dir, `dnsmasq-${BR2}.leases`);
  toml = `
[auth]
tokens = ["${ADMIN}"]
lease_tokens = ["${LEASE}"]
[networking]
default_mode = "bridge"
bridge = "${BR}"
allowed_bridges = ["${BR2}"]
allowed_modes = ["user", "bridge", "custom"]
bridge_subnets = { "${BR}" = "10.93.0.0/24", "${BR2}" = "10.94.0.0/24" }
bridge_lease_files = { "${BR}" = "${leases1}", "${BR2}" = "${leases2}" }
forward_service_enabled = true
`;
  d = await startDaemon({ tcp: false, toml });
  const env = { VMM_SOCKET: d.socket, VMM_LEASE_TOKEN_FILE: tokenFile, VMM_HOOK_LOG: hookLog };
  dns = lan.dnsmasq({ iface: BR, range: ["10.93.0.50", "10.93.0.150"], hook: HOOK, env, extra: [`--dhcp-hostsfile=${hostsFile}`] });
  const dns2 = lan.dnsmasq({ iface: BR2, range: ["10.94.0.50", "10.94.0.150"], hook: HOOK, env });
  // Serving (and its signal handlers set) once the pid files exist.
  await waitFor(async () => {
    readFileSync(dns.pid);
    readFileSync(dns2.pid);
  }, 10_000);
}, 60_000);

afterAll(async () => {
  if (d) {
    const { vms } = await vmm().listVms({}).catch(() => ({ vms: [] }));
    for (const v of vms) await vmm().removeVm({ id: v.id, force: true }).catch(() => undefined);
    await d.stop();
    d.cleanup();
  }
  await lan?.close();
});

describe("leases believed only when the network agrees", () => {
  let macA = "";
  let macB = "";
  let ipB = "";

  it("two guests: each lease verified on the wire, each port reaches its guest", async () => {
    const a = await boot("lt-a", [{ mode: NetworkingMode.BRIDGE }], [0], true);
    const b = await boot("lt-b", [{ mode: NetworkingMode.BRIDGE }], [0]);
    macA = a.nics[0]!.mac;
    macB = b.nics[0]!.mac;
    expect(macA).toBe(deriveMac("lt-a", 0, ""));
    await vmm().startVm({ id: "lt-a" });
    await vmm().startVm({ id: "lt-b" });
    expect(await page(ports["lt-a:0"]!)).toContain("hello from lt-a");
    expect(await page(ports["lt-b:0"]!)).toContain("hello from lt-b");
    const la = (await info("lt-a")).nics[0]!.lease!;
    const lb = (await info("lt-b")).nics[0]!.lease!;
    expect(la.ip).toBe("10.93.0.77");
    expect(la.verification).toBe(LeaseVerification.VERIFIED);
    expect(la.verificationDetail).toMatch(/^answers ARP on vmbr-lt0/);
    expect(lb.verification).toBe(LeaseVerification.VERIFIED);
    ipB = lb.ip;
  }, 300_000);

  it("a forged report (A's MAC with B's address, or the host's) changes no rule; the mismatch is logged and recorded", async () => {
    const before = [await targets("lt-a"), await targets("lt-b")];
    const r = runHook(["add", macA, ipB]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`not applied: on ${BR}, ${ipB} is answered by ${macB} (VM "lt-b" nics[0])`);
    expect([await targets("lt-a"), await targets("lt-b")]).toEqual(before);
    expect((await info("lt-a")).nics[0]!.lease!.ip).toBe("10.93.0.77");
    expect((await info("lt-a")).events.some((e) => e.kind === "lease_mismatch" && e.message.includes(ipB))).toBe(true);
    expect(d!.stderr()).toContain("lease report contradicted by the wire");
    expect(await page(ports["lt-a:0"]!)).toContain("hello from lt-a");
    expect(await page(ports["lt-b:0"]!)).toContain("hello from lt-b");
    // Nor may a report point a port back at the host, or at the subnet's broadcast address.
    for (const [ip, why] of [["10.93.0.1", `is an address of this host (${BR})`], ["10.93.0.255", "is the broadcast address of 10.93.0.0/24"]]) {
      const h = runHook(["add", macA, ip!]);
      expect(h.status).toBe(1);
      expect(h.stderr).toContain(`ip: ${ip} ${why}`);
    }
    expect([await targets("lt-a"), await targets("lt-b")]).toEqual(before);
  }, 60_000);

  it("a missed del, then the address given to another VM: each host port reaches its own VM", async () => {
    const d0 = await boot("lt-d", [{ mode: NetworkingMode.BRIDGE }], [0]);
    // The hook's next reports fail (a wrong token): A's release never reaches vmmd.
    writeFileSync(tokenFile, "not-the-lease-token-0000000\n");
    writeFileSync(hostsFile, `${d0.nics[0]!.mac},10.93.0.77\n`);
    dns.proc.kill("SIGHUP");
    await new Promise((r) => setTimeout(r, 500));
    await guestSh("lt-a", "kill -USR2 $(cat /tmp/udhcpc.pid)");
    await waitFor(async () => {
      if (!readFileSync(hookLog, "utf8").includes(`del ${macA} 10.93.0.77 refused (HTTP 401)`)) throw new Error("no missed del yet");
    }, 30_000);
    expect((await info("lt-a")).nics[0]!.lease?.ip).toBe("10.93.0.77"); // vmmd did not hear of it
    writeFileSync(tokenFile, LEASE + "\n");

    // D gets 10.93.0.77: its verified lease revokes A's stale one.
    await vmm().startVm({ id: "lt-d" });
    expect(await page(ports["lt-d:0"]!)).toContain("hello from lt-d");
    expect((await info("lt-d")).nics[0]!.lease!.ip).toBe("10.93.0.77");
    const evA = (await info("lt-a")).events;
    expect(evA.some((e) => e.kind === "lease_revoked" && e.message === 'nics[0] lost 10.93.0.77: VM "lt-d" nics[0] answers for it now')).toBe(true);
    expect((await info("lt-d")).events.some((e) => e.kind === "lease_revoked" && e.message.includes('took 10.93.0.77 over from VM "lt-a"'))).toBe(true);

    // A asks again and gets another address; its port follows.
    await guestSh("lt-a", "kill -USR1 $(cat /tmp/udhcpc.pid)");
    await waitFor(async () => {
      const l = (await info("lt-a")).nics[0]!.lease;
      if (!l || l.ip === "10.93.0.77" || l.verification !== LeaseVerification.VERIFIED) throw new Error("A has no new verified lease yet");
    }, 60_000);
    expect(await page(ports["lt-a:0"]!)).toContain("hello from lt-a");
    expect(await page(ports["lt-d:0"]!)).toContain("hello from lt-d");
    expect(await page(ports["lt-b:0"]!)).toContain("hello from lt-b");
  }, 300_000);

  it("a vmmd restart converges from dnsmasq's lease file, dnsmasq untouched", async () => {
    const dnsPid = dns.proc.pid!;
    const guestPid = (await info("lt-a")).pid;
    await d!.kill9();
    // While vmmd is down A moves to a new address; the hook cannot tell anyone.
    writeFileSync(hostsFile, `${readFileSync(hostsFile, "utf8").trim()}\n${macA},10.93.0.88\n`);
    dns.proc.kill("SIGHUP");
    await new Promise((r) => setTimeout(r, 500));
    await guestSh("lt-a", "kill -USR2 $(cat /tmp/udhcpc.pid); sleep 1; kill -USR1 $(cat /tmp/udhcpc.pid)");
    await waitFor(async () => {
      if (Lan.leaseOf(dns.leases, macA) !== "10.93.0.88") throw new Error("dnsmasq has not leased .88 to A yet");
    }, 60_000);
    // The hook tried to report it and could not: the report is missed.
    await waitFor(async () => {
      if (!new RegExp(`add ${macA} 10\\.93\\.0\\.88: vmmd unreachable`).test(readFileSync(hookLog, "utf8"))) throw new Error("the hook has not run yet");
    }, 30_000);

    d = await startDaemon({ dir: d!.dir, tcp: false, toml });
    const a = await info("lt-a");
    expect(a.pid).toBe(guestPid);
    expect(a.nics[0]!.lease!.ip).toBe("10.93.0.88"); // read from the lease file before serving
    expect(a.events.some((e) => e.kind === "lease" && e.message.includes("10.93.0.88") && e.message.includes("from the lease file"))).toBe(true);
    expect(await page(ports["lt-a:0"]!, 30_000)).toContain("hello from lt-a");
    expect(await page(ports["lt-d:0"]!, 30_000)).toContain("hello from lt-d");
    expect(dns.proc.pid).toBe(dnsPid);
    expect(processRunning(dnsPid)).toBe(true);
    expect(readFileSync(hookLog, "utf8")).not.toMatch(new RegExp(`add ${macA} 10\\.93\\.0\\.88 .*reported`));
  }, 300_000);

  it("a stopped VM holds no lease, and a replayed report for it is refused", async () => {
    await vmm().stopVm({ id: "lt-b", force: true });
    const b = await info("lt-b");
    expect(b.nics[0]!.lease).toBeUndefined();
    expect(b.events.some((e) => e.kind === "lease" && e.message.startsWith("leases ended (stopped)"))).toBe(true);
    expect(JSON.parse(readFileSync(join(d!.stateDir, "vms", "lt-b", "leases.json"), "utf8"))).toEqual([]);
    const r = runHook(["old", macB, ipB]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('VM "lt-b" is not running');
    expect((await info("lt-b")).nics[0]!.lease).toBeUndefined();
    await expect(httpGet(`http://127.0.0.1:${ports["lt-b:0"]}/`, 1000)).rejects.toThrow(/ECONNREFUSED/);
  }, 120_000);

  it("ports name their NIC: the second NIC's port answers on that NIC's address; a NIC that cannot forward is refused", async () => {
    await boot("lt-c", [{ mode: NetworkingMode.BRIDGE }, { mode: NetworkingMode.BRIDGE, bridge: BR2 }], [0, 1]);
    await vmm().startVm({ id: "lt-c" });
    expect(await page(ports["lt-c:1"]!)).toContain("hello from lt-c");
    expect(await page(ports["lt-c:0"]!)).toContain("hello from lt-c");
    const c = await info("lt-c");
    const ip1 = c.nics[1]!.lease!.ip;
    expect(ip1).toMatch(/^10\.94\.0\./);
    expect(c.nics[1]!.lease!.verification).toBe(LeaseVerification.VERIFIED);
    expect(await targets("lt-c")).toEqual(
      expect.arrayContaining([`${ports["lt-c:0"]}->${c.nics[0]!.lease!.ip}:8080#0`, `${ports["lt-c:1"]}->${ip1}:8080#1`]),
    );
    expect(c.config!.ports.map((p) => p.nicIndex)).toEqual([0, 1]);

    const refused = await failure(
      vmm().createVm({ id: "lt-x", config: { name: "x", nics: [{ mode: NetworkingMode.BRIDGE }, { mode: NetworkingMode.CUSTOM, customNetdev: "user" }], ports: [{ protocol: Protocol.TCP, hostPort: 40999, vmPort: 80, nicIndex: 1 }] } }),
    );
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain("config.ports[0]: nics[1] uses custom networking, which cannot honour port mappings");
    const outOfRange = await failure(vmm().createVm({ id: "lt-y", config: { name: "y", ports: [{ protocol: Protocol.TCP, hostPort: 40998, vmPort: 80, nicIndex: 3 }] } }));
    expect(outOfRange.code).toBe(Code.InvalidArgument);
    expect(outOfRange.rawMessage).toContain("config.ports[0].nic_index: is 3; the VM has 1 NIC (0-0)");
  }, 300_000);
});

// What a starting daemon tells and wires: why forwarding fell back to
// sockets (logged), how the DHCP hook of vmnet networks reaches a daemon
// that listens on TCP only, on a port it picked itself, and at what
// priority it runs what (vmm.toml nice).
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NetworkMode, NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";
import { NetworkingMode, VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { CleanupStack } from "../../server/cleanup.js";
import { parseProcStat } from "../../server/stats/proc.js";
import { requireNetns } from "../guest/netns.js";
import { client, ROOT, startDaemon, transport, type StartOptions } from "../helpers/daemon.js";

const cleanup = new CleanupStack();
afterEach(() => cleanup.runOrThrow());

/** A daemon stopped and removed after the test. */
async function daemon(opts: StartOptions) {
  const d = await startDaemon(opts);
  cleanup.push("stop vmmd", async () => {
    await d.stop();
    d.cleanup();
  });
  return d;
}

describe("daemon start", () => {
  it("logs why the forwarder fell back to sockets", async () => {
    // A copy of the build without vmm-relayd beside it (native/build is not
    // part of dist; the addon is named by VMM_NATIVE_ADDON): relay "auto"
    // must fall back, and say why.
    const copy = mkdtempSync(join(tmpdir(), "vmmd-norelay-"));
    cleanup.push(`remove ${copy}`, () => rmSync(copy, { recursive: true, force: true }));
    cpSync(join(ROOT, "dist"), join(copy, "dist"), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
    const env: NodeJS.ProcessEnv = { ...process.env, VMM_NATIVE_ADDON: join(ROOT, "native", "build", "Release", "vmm_native.node") };
    delete env.VMM_RELAYD;
    const d = await daemon({ vmmd: join(copy, "dist", "server", "main.js"), env: env as Record<string, string>, toml: '[forward]\nrelay = "auto"\n' });
    const meta = await client(VmmService, transport(d, "connect", "unix")).getMeta({});
    expect(meta.forwardRelay).toBe("sockets");
    const line = d.stderr().split("\n").find((l) => l.includes("native relay unavailable"));
    expect(line, d.stderr()).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: "warn", reason: expect.stringContaining("vmm-relayd unavailable") });
  });

  it("runs its event loop at vmm.toml nice and starts dnsmasq at 0", async () => {
    requireNetns();
    const d = await daemon({ toml: "nice = -4\n" });
    const niceOf = (path: string) => parseProcStat(readFileSync(path, "utf8"))!.nice;
    expect(niceOf(`/proc/${d.pid}/task/${d.pid}/stat`)).toBe(-4);
    const t = transport(d, "connect", "unix");
    const net = (await client(NetworkService, t).createNetwork({ name: "niced", config: { mode: NetworkMode.HOST, ipv4Subnet: "192.168.211.0/24" } })).network!;
    cleanup.push("delete network", () => client(NetworkService, t).deleteNetwork({ id: net.id, force: true }));
    const dnsmasq = readFileSync(join(d.stateDir, "networks", net.id, "dnsmasq.pid"), "utf8").trim();
    expect(niceOf(`/proc/${dnsmasq}/stat`)).toBe(0);
  });

  it("points the DHCP hook at the TCP port actually bound when there is no socket", async () => {
    requireNetns();
    const d = await daemon({ toml: '[api]\nsocket = ""\ntcp = "127.0.0.1:0"\n' });
    expect(d.socket).toBe("");
    const t = transport(d, "connect", "tcp");
    const net = (await client(NetworkService, t).createNetwork({ name: "hooked", config: { mode: NetworkMode.HOST, ipv4Subnet: "192.168.210.0/24" } })).network!;
    cleanup.push("delete network", () => client(NetworkService, t).deleteNetwork({ id: net.id, force: true }));
    const vm = (await client(VmmService, t).createVm({ id: "hooked", config: { name: "hooked", nics: [{ mode: NetworkingMode.VMNET, networkId: net.id }] } })).vm!;
    // Run the hook exactly as the network's dnsmasq would: with its environment.
    const pid = readFileSync(join(d.stateDir, "networks", net.id, "dnsmasq.pid"), "utf8").trim();
    const env = Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`, "utf8")
        .split("\0")
        .filter((kv) => kv.includes("="))
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    );
    const hook = spawnSync(join(ROOT, "clients", "dnsmasq-hook", "vmm-dhcp-hook"), ["add", vm.nics[0]!.mac, "192.168.210.77", "hooked"], { env, encoding: "utf8", timeout: 15_000 });
    // It reached the daemon, which answered (a VM that does not run holds
    // no lease, so it refused the report by name): not "unreachable".
    expect(hook.status, hook.stderr).toBe(1);
    expect(hook.stderr).toContain("refused (HTTP 400)");
    expect(hook.stderr).toContain('VM \\"hooked\\" is not running');
    const info = await client(VmmService, t).getInfo({ id: "hooked" });
    expect(info.vm!.nics[0]!.lease).toBeUndefined();
  });
});

// vmm-cli against a real vmmd: the compiled CLI (dist/clients/cli/main.js,
// `npm run build`) runs as a child process over the daemon's unix socket and
// its TCP URL, with and without a bearer token.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ROOT, client, startDaemon, transport, type DaemonHandle } from "../../test/helpers/daemon.js";
import { guestInitrd, guestKernel } from "../../test/guest/paths.js";
import { LeaseAction, VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

const CLI = join(ROOT, "dist", "clients", "cli", "main.js");
const TOKEN = "0123456789abcdef-admin";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Environment without any VMM_* variable of the outer shell. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("VMM_") || k === "VMM_IN_NETNS") env[k] = v;
  return { ...env, ...extra };
}

function run(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: cleanEnv(env), timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

let d: DaemonHandle;
let open: DaemonHandle;
const unix = () => ["--socket", d.socket];
const url = () => ["--url", `http://${d.tcp}`];
const auth = { VMM_TOKEN: TOKEN };

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: run \`npm run build\``);
  [d, open] = await Promise.all([
    startDaemon({ toml: `[auth]\ntokens = [${JSON.stringify(TOKEN)}]\n\n[networking]\nbridge_subnets = { vmmbr0 = "10.77.0.0/24" }\n` }),
    startDaemon(),
  ]);
});
afterAll(async () => {
  await Promise.all([d?.stop(), open?.stop()]);
  d?.cleanup();
  open?.cleanup();
});

describe("connection and auth", () => {
  it.each([
    ["unix socket", () => unix()],
    ["URL", () => url()],
  ])("meta over the %s with a token", async (_, where) => {
    const r = await run([...where(), "meta"], auth);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Version:\s+\d+\.\d+\.\d+$/m);
    expect(r.stdout).toMatch(/^Auth required:\s+yes$/m);
    expect(r.stdout).toMatch(/^Modes:\s+.*user/m);
    const j = await run([...where(), "--json", "meta"], auth);
    const meta = JSON.parse(j.stdout);
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(meta.authRequired).toBe(true);
  });

  it.each([
    ["unix socket", () => unix()],
    ["URL", () => url()],
  ])("without a token the %s answers unauthenticated (exit 1)", async (_, where) => {
    const r = await run([...where(), "lsvm"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^vmm-cli: unauthenticated: authorization: missing bearer token/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("a wrong token is refused; --token and --token-file work", async () => {
    const bad = await run([...url(), "--token", "wrong-token", "meta"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^vmm-cli: unauthenticated: authorization: unknown token/);
    expect((await run([...unix(), "--token", TOKEN, "meta"])).code).toBe(0);
    const file = join(d.dir, "token");
    writeFileSync(file, TOKEN + "\n", { mode: 0o600 });
    expect((await run([...unix(), "--token-file", file, "meta"])).code).toBe(0);
  });

  it("VMM_URL and VMM_SOCKET select the daemon", async () => {
    expect((await run(["meta"], { ...auth, VMM_URL: `http://${d.tcp}` })).code).toBe(0);
    expect((await run(["meta"], { ...auth, VMM_SOCKET: d.socket })).code).toBe(0);
  });

  it("a daemon without auth needs no token", async () => {
    const r = await run(["--socket", open.socket, "meta"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Auth required:\s+no$/m);
  });

  it("a missing socket is unavailable (exit 1) naming the socket", async () => {
    const r = await run(["--socket", join(d.dir, "nope.sock"), "lsvm"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vmm-cli: unavailable: connect ENOENT .*nope\.sock \(is vmmd running\?\)$/m);
  });
});

describe("usage errors exit 2 without calling the daemon", () => {
  it.each<[string[], RegExp]>([
    [["create", "bad1", "--port", "tcp:abc:80"], /^vmm-cli: --port "tcp:abc:80": host port "abc" must be an integer 1-65535$/m],
    [["create", "bad2", "--port", "8080:80"], /--port "8080:80": expected PROTO\[:ADDR\]:HOST_PORT:VM_PORT/],
    [["create", "bad3", "--net", "slirp", "--port", "tcp:1:2:3:4"], /invalid flags:\n {2}--net "slirp": mode "slirp".*\n {2}--port "tcp:1:2:3:4"/],
    [["create", "bad4", "--vcpus", "two"], /--vcpus "two": must be an integer/],
    [["update-ports", "web"], /update-ports needs --port \(repeatable\) or --clear/],
    [["update", "web", "--auto-restart", "maybe"], /--auto-restart "maybe": must be true or false/],
    [["lsvm", "--page-size", "0"], /--page-size "0": must be an integer 1-1000/],
    // The daemon's own bounds (server/contract.ts): max_events 1-200, timeout_seconds 1-3600.
    [["info", "web", "--events", "201"], /--events "201": must be an integer 1-200/],
    [["stop", "web", "--timeout", "0"], /--timeout "0": must be an integer 1-3600/],
    [["stop", "web", "--timeout", "3601"], /--timeout "3601": must be an integer 1-3600/],
    [["lsvm", "--bogus"], /^vmm-cli: unknown option '--bogus'/],
    [["network", "create", "--mode", "weird"], /option '--mode <mode>' argument 'weird' is invalid/],
    [["info"], /missing required argument 'vm'/],
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["--url", "http://127.0.0.1:1", "meta"], /^vmm-cli: --url and --socket are mutually exclusive$/m],
  ])("%j", async (args, re) => {
    const r = await run([...unix(), ...args], auth);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(re);
  });

  it("a URL without a scheme", async () => {
    const r = await run(["--url", "127.0.0.1:1", "meta"], auth);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vmm-cli: --url "127\.0\.0\.1:1": /);
  });

  it("no bad VM reached the daemon", async () => {
    const r = await run([...unix(), "--json", "lsvm", "--keyword", "bad"], auth);
    expect(JSON.parse(r.stdout).vms ?? []).toEqual([]);
  });
});

describe("VM lifecycle", () => {
  it("create with --port and --net user prints the id", async () => {
    const r = await run([...unix(), "create", "web server", "--id", "web", "--net", "user", "--port", "tcp:18080:80", "--port", "udp:127.0.0.1:15353:53", "--memory", "128"], auth);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("web\n");
  });

  it("deploy --json over the URL prints the CreateVmResponse", async () => {
    const r = await run([...url(), "--json", "deploy", "br", "--id", "br", "--net", "bridge,bridge=vmmbr0"], auth);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.vm.id).toBe("br");
    expect(res.vm.status).toBe("VM_STATUS_STOPPED");
    expect(res.vm.config.nics).toEqual([{ mode: "NETWORKING_MODE_BRIDGE", bridge: "vmmbr0" }]);
    expect(res.vm.nics[0].mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  });

  it("lsvm lists both; -v adds INSTANCE_ID and MAC", async () => {
    const r = await run([...unix(), "lsvm"], auth);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]!.split(/\s{2,}/)).toEqual(["NAME", "ID", "STATUS", "UPTIME", "IP", "PORTS"]);
    expect(lines[1]).toMatch(/^web server\s+web\s+stopped\s+-\s+-\s+127\.0\.0\.1:18080->80\/tcp,127\.0\.0\.1:15353->53\/udp$/);
    expect(lines[2]).toMatch(/^br\s+br\s+stopped\s+-\s+-\s+-$/);
    const v = await run([...url(), "ls", "-o", "wide"], auth);
    const vl = v.stdout.trimEnd().split("\n");
    expect(vl[0]!.split(/\s{2,}/)).toEqual(["ID", "NAME", "STATUS", "UPTIME", "IP", "MODE", "PORTS", "IMAGE", "INSTANCE_ID", "MAC"]);
    expect(vl[1]).toMatch(/\s(-|\S+)\s+([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  });

  it("lsvm --json, paging and --all", async () => {
    const all = JSON.parse((await run([...unix(), "--json", "lsvm"], auth)).stdout);
    expect(all.vms.map((v: { id: string }) => v.id)).toEqual(["web", "br"]);
    expect(all.totalSize).toBe(2);
    const page = await run([...unix(), "lsvm", "--page-size", "1"], auth);
    expect(page.stdout.trimEnd().split("\n")).toHaveLength(2);
    expect(page.stderr).toMatch(/1 more; use --all or --page-token \S+/);
    const followed = await run([...unix(), "lsvm", "--page-size", "1", "--all"], auth);
    expect(followed.stdout.trimEnd().split("\n")).toHaveLength(3);
    expect(followed.stderr).toBe("");
    const brief = JSON.parse((await run([...unix(), "--json", "lsvm", "--brief", "web"], auth)).stdout);
    expect(brief.vms).toHaveLength(1);
    expect(brief.vms[0].config).toBeUndefined();
  });

  it("info shows config, NICs and events", async () => {
    const r = await run([...unix(), "info", "web"], auth);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ID:\s+web$/m);
    expect(r.stdout).toMatch(/^Name:\s+web server$/m);
    expect(r.stdout).toMatch(/^Status:\s+stopped$/m);
    expect(r.stdout).toMatch(/^ {2}Memory:\s+128 MiB$/m);
    expect(r.stdout).toMatch(/^ {2}Ports:\s+127\.0\.0\.1:18080->80\/tcp,127\.0\.0\.1:15353->53\/udp$/m);
    expect(r.stdout).toMatch(/^NICs:\n {2}INDEX\s+MODE\s+MAC.*\n {2}0\s+user\s+([0-9a-f]{2}:){5}[0-9a-f]{2}/m);
    expect(r.stdout).toMatch(/^Forwards:\n {2}\(none\)$/m);
    expect(r.stdout).toMatch(/^Events:\n {2}TIME\s+KIND\s+MESSAGE\n {2}\S+Z\s+created\s+created "web server"$/m);
    const j = JSON.parse((await run([...url(), "--json", "info", "web", "--events", "1"], auth)).stdout);
    expect(j.vm.events).toHaveLength(1);
  });

  it("update-ports replaces the ports, --clear removes them", async () => {
    const r = await run([...unix(), "update-ports", "web", "--port", "tcp:18081:81", "--port", "udp:15354:54"], auth);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("web: ports 127.0.0.1:18081->81/tcp,127.0.0.1:15354->54/udp\n");
    const j = JSON.parse((await run([...url(), "--json", "info", "web"], auth)).stdout);
    expect(j.vm.config.ports).toEqual([
      { protocol: "PROTOCOL_TCP", hostAddress: "127.0.0.1", hostPort: 18081, vmPort: 81 },
      { protocol: "PROTOCOL_UDP", hostAddress: "127.0.0.1", hostPort: 15354, vmPort: 54 },
    ]);
    const c = await run([...unix(), "update-ports", "br", "--clear"], auth);
    expect(c.stdout).toBe("br: ports (none)\n");
  });

  it("port options reach the daemon: nic, path and proxy (a user NIC maps ports itself, so it refuses them by name)", async () => {
    const r = await run([...unix(), "update-ports", "web", "--port", "tcp:18098:80,nic=0,path=nat", "--port", "tcp:18099:81,proxy"], auth);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ports\[0\]\.path: user networking maps ports itself/);
    expect(r.stderr).toMatch(/ports\[1\]\.proxy_protocol: user networking maps ports itself/);
    const bad = await run([...unix(), "update-ports", "web", "--port", "tcp:18098:80,nic=x,fast"], auth);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/nic "x" must be a NIC index/);
    expect(bad.stderr).toMatch(/unknown option "fast"/);
  });

  it("update sends only the given fields", async () => {
    const r = await run([...unix(), "update", "web", "--vcpus", "2", "--auto-restart", "true"], auth);
    expect(r.stdout).toBe("web\n");
    const cfg = JSON.parse((await run([...unix(), "--json", "info", "web"], auth)).stdout).vm.config;
    expect(cfg.vcpus).toBe(2);
    expect(cfg.autoRestart).toBe(true);
    expect(cfg.memoryMib).toBe(128);
    expect(cfg.name).toBe("web server");
    await run([...unix(), "update", "web", "--auto-restart", "off"], auth);
    expect(JSON.parse((await run([...unix(), "--json", "info", "web"], auth)).stdout).vm.config.autoRestart).toBeUndefined();
  });

  it("start without a kernel is failed_precondition (exit 1)", async () => {
    const r = await run([...unix(), "start", "web"], auth);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^vmm-cli: failed_precondition: VM "web" has no kernel/);
  });

  it("leases: a stopped VM holds none (a report for it is refused); --all lists its NICs", async () => {
    const mac = JSON.parse((await run([...unix(), "--json", "info", "br"], auth)).stdout).vm.nics[0].mac as string;
    // What the dnsmasq hook does when a guest gets an address: refused while the VM does not run.
    const c = client(VmmService, transport(d, "connect", "unix", { token: TOKEN }));
    await expect(c.reportDhcpLease({ action: LeaseAction.ADD, mac, ip: "10.77.0.5", hostname: "brhost", expiresUnix: BigInt(Math.floor(Date.now() / 1000) + 3600) })).rejects.toThrow(/is not running/);
    const r = await run([...url(), "leases"], auth);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]!.split(/\s{2,}/)).toEqual(["VM", "NIC", "MAC", "IP", "STATE", "HOSTNAME", "EXPIRES"]);
    expect(lines).toHaveLength(1);
    const all = await run([...url(), "leases", "--all"], auth);
    expect(all.stdout.trimEnd().split("\n")).toHaveLength(3);
    const j = JSON.parse((await run([...unix(), "--json", "leases"], auth)).stdout);
    expect(j.leases).toEqual([]);
    const ls = await run([...unix(), "lsvm", "br"], auth);
    expect(ls.stdout).toMatch(/^br\s+br\s+stopped\s+-\s+-\s+-$/m);
  });

  it("forwards prints the table (empty: no VM runs)", async () => {
    const header = ["VM", "PROTO", "LISTEN", "TARGET", "RELAY", "ACTIVE", "TOTAL", "BYTES_IN", "BYTES_OUT", "ERRORS"];
    for (const args of [["forwards"], ["forwards", "web"]]) {
      const r = await run([...unix(), ...args], auth);
      expect(r.code).toBe(0);
      expect(r.stdout.trimEnd().split(/\s{2,}/)).toEqual(header);
    }
    expect(JSON.parse((await run([...unix(), "--json", "forwards"], auth)).stdout)).toEqual({ forwards: [] });
    const missing = await run([...unix(), "forwards", "nope"], auth);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^vmm-cli: not_found: /);
  });

  it("events streams one line per event until SIGINT", async () => {
    const p = spawn(process.execPath, [CLI, ...unix(), "events", "--vm", "web"], { env: cleanEnv(auth), stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
    const line = new Promise<string>((r) => createInterface({ input: p.stdout }).once("line", r));
    // The stream has no "subscribed" marker: poke until an event arrives.
    let got: string | undefined;
    for (let i = 0; i < 50 && got === undefined; i++) {
      await run([...unix(), "update", "web", "--name", `web server ${i}`], auth);
      got = await Promise.race([line, new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]);
    }
    p.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(err).toBe("");
    expect(got).toMatch(/^\S+Z {2}web {2}\S+ {2}.+$/);
  });

  it("rm removes the VM; info then is not_found", async () => {
    for (const id of ["web", "br"]) {
      const r = await run([...unix(), "rm", id], auth);
      expect(r.stdout).toBe(`${id}\n`);
    }
    const r = await run([...url(), "info", "web"], auth);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vmm-cli: not_found: /);
    await run([...unix(), "create", "tmp", "--id", "tmp"], auth);
    const j = await run([...unix(), "--json", "rm", "tmp"], auth);
    expect(JSON.parse(j.stdout)).toEqual({ id: "tmp" });
  });
});

describe("a running guest (test/guest, user networking)", () => {
  it("create --start, lsvm uptime, info PID, forwards, stop, rm --force", async () => {
    const c = await run([...unix(), "create", "guest", "--id", "guest", "--start", "--net", "user", "--port", "tcp:127.0.0.1:18090:80", "--port", "udp:18091:53", "--kernel", guestKernel(), "--initrd", guestInitrd(), "--cmdline", "console=ttyS0 quiet panic=-1"], auth);
    expect(c.stderr).toBe("");
    expect(c.stdout).toBe("guest\n");
    try {
      const ls = await run([...unix(), "lsvm", "-v", "guest"], auth);
      expect(ls.stdout).toMatch(/^guest\s+guest\s+running\s+\d+s\s+-\s+user\s+127\.0\.0\.1:18090->80\/tcp,127\.0\.0\.1:18091->53\/udp\s+-\s+[0-9a-f-]{36}\s+([0-9a-f]{2}:){5}[0-9a-f]{2}$/m);
      const info = await run([...url(), "info", "guest"], auth);
      expect(info.stdout).toMatch(/^PID:\s+\d+$/m);
      expect(info.stdout).toMatch(/^Events:\n(.*\n)*\s+\S+Z\s+started\s/m);
      const fw = await run([...unix(), "forwards", "guest"], auth);
      const rows = fw.stdout.trimEnd().split("\n").slice(1);
      expect(rows).toHaveLength(2);
      expect(rows[0]).toMatch(/^guest\s+tcp\s+127\.0\.0\.1:18090\s+guest \(slirp\):80\s+qemu-hostfwd\s/);
      expect(rows[1]).toMatch(/^guest\s+udp\s+127\.0\.0\.1:18091\s+guest \(slirp\):53\s+qemu-hostfwd\s/);
      const refused = await run([...unix(), "rm", "guest"], auth);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^vmm-cli: failed_precondition: VM "guest" is running/);
      const stop = await run([...unix(), "stop", "guest", "--force"], auth);
      expect(stop.stdout).toMatch(/^guest \(guest\): (stopped|exited)\n$/);
      const again = await run([...unix(), "--json", "start", "guest"], auth);
      expect(JSON.parse(again.stdout).vm.status).toBe("VM_STATUS_RUNNING");
    } finally {
      const rm = await run([...unix(), "rm", "guest", "--force"], auth);
      expect(rm.stdout).toBe("guest\n");
    }
  });
});

describe("networks", () => {
  it("create, list, info, acquire, rm", async () => {
    const c = await run([...unix(), "--json", "network", "create", "--mode", "host", "--name", "n1", "--subnet", "192.168.140.0/24", "--reserve", "52:54:00:12:34:56=192.168.140.10", "--no-dhcp"], auth);
    expect(c.stderr).toBe("");
    const net = JSON.parse(c.stdout).network;
    expect(net.config.mode).toBe("NETWORK_MODE_HOST");
    expect(net.config.dhcpEnabled).toBe(false);
    expect(net.config.dhcpReservations).toEqual([{ mac: "52:54:00:12:34:56", ipv4: "192.168.140.10" }]);
    const ls = await run([...url(), "networks"], auth);
    expect(ls.stdout).toMatch(new RegExp(`^${net.id}\\s+n1\\s+host\\s+192\\.168\\.140\\.0/24\\s+192\\.168\\.140\\.1\\s+\\S+\\s+0\\s+0$`, "m"));
    const info = await run([...unix(), "network", "info", "n1"], auth); // by name
    expect(info.stdout).toMatch(/^DHCP:\s+off$/m);
    expect(info.stdout).toMatch(/^Serialization:\s+\S+$/m);
    const acq = await run([...unix(), "network", "acquire", net.serialization, "--description", "cli test"], auth);
    expect(acq.stdout).toMatch(new RegExp(`^${net.id} \\S+\\n$`));
    const refused = await run([...unix(), "network", "rm", net.id], auth);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^vmm-cli: failed_precondition: /);
    const rm = await run([...unix(), "network", "rm", net.id, "--force"], auth);
    expect(rm.stdout).toBe(`${net.id}\n`);
  });
});

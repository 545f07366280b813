// Boot benchmark: StartVm -> forwarded port answering, for a bridge-mode
// guest under TCG with the whole production path: a real vmmd, the test
// guests (below), a bridge, dnsmasq configured by the
// project's generator (no-ping) with the lease hook, lease verification on
// the wire, the forwarder. Each round creates a fresh VM (a MAC dnsmasq has
// never seen: a first boot), starts it, and polls http://127.0.0.1:PORT/
// through the forward until the guest's page comes back; then removes it.
//
// Where the time goes, per round (each a difference of two instants seen
// from here; dnsmasq's log and the serial console are polled every 5 ms):
//   StartVm RPC           until StartVm returns (QEMU spawned, QMP up)
//   boot -> DHCPDISCOVER  kernel, modules, /init, udhcpc's first packet
//   DISCOVER -> ACK       the DHCP exchange
//   ACK -> lease believed the hook, ReportDhcpLease, verification
//   lease -> answering    rule live, guest httpd up, first GET through the forward
//
// Three guests, round by round in turn, all running the same /init:
//   debian            Debian's cloud kernel (.tools/guest, what the e2e tests
//                     boot), its modules in a gzip'ed initramfs
//   debian, cryptomgr.notests  the same with its crypto self-tests off (its
//                     slowest initcall under TCG, ~0.4 s before /init)
//   minimal kernel    test/guest/kernel.config (built by
//                     test/guest/build-kernel.sh into .tools/guest-min):
//                     everything built in, no modules, an uncompressed
//                     initramfs
// The kernel, its initrd and its command line are a VM's owner's choice, not
// vmmd's; the columns show what vmmd's start path gives a stock guest and
// guests tuned for TCG. A missing guest fails the benchmark with the command
// that builds it.
//
// A round whose forward took over 0.5 s to answer once the lease was
// believed is logged with its last requests (the first connection to a new
// guest should not wait for a TCP retransmit).
//
// Run inside the private namespace, after `npm run build`:
//   scripts/in-netns.sh npm run bench:start      (BENCH_START_ROUNDS per guest, default 5)
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { LeaseVerification, NetworkingMode, Protocol, VmmService } from "../gen/ts/vmm/v1/vmm_pb.js";
import { dnsmasqConfig } from "../server/net/dnsmasq-config.js";
import { ipArgv } from "../server/host/iproute.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const VMMD = join(repo, "dist", "server", "main.js");
// The hook as vmmd's networks and scripts/setup-bridge.sh give it to dnsmasq.
const HOOK = join(repo, "native", "build", "Release", "vmm-dhcp-hook");
const ROUNDS = Number(process.env.BENCH_START_ROUNDS ?? "5");
const BR = "vmbr-bst";
const PORT = 31080;
/** The guests, one round each in turn (see the file comment): files, and what is appended to the command line. */
const VARIANTS = [
  { name: "debian", guest: "guest", initrd: "initramfs.cpio.gz", extra: "" },
  { name: "debian, cryptomgr.notests", guest: "guest", initrd: "initramfs.cpio.gz", extra: " cryptomgr.notests" },
  { name: "minimal kernel", guest: "guest-min", initrd: "initramfs.cpio", extra: "" },
] as const;
const log = (m: string) => process.stderr.write(`bench-start: ${m}\n`);

function guestFiles(v: (typeof VARIANTS)[number]): { kernel: string; initrd: string } {
  const dir = join(repo, ".tools", v.guest);
  const boot = join(dir, "kernel", "boot");
  const k = existsSync(boot) ? readdirSync(boot).filter((n) => n.startsWith("vmlinuz-")).sort().pop() : undefined;
  const initrd = join(dir, v.initrd);
  const build = v.guest === "guest" ? "sudo bash scripts/setup-guest.sh" : "sudo bash test/guest/build-kernel.sh";
  if (!k || !existsSync(initrd)) throw new Error(`test guest "${v.name}" missing under ${dir}: run ${build}`);
  return { kernel: join(boot, k), initrd };
}

function sh(...argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
}

function get(url: string): Promise<string> {
  return new Promise((ok, fail) => {
    const req = request(url, { timeout: 1000, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => (res.statusCode === 200 ? ok(body) : fail(new Error(`HTTP ${res.statusCode}`))));
      res.on("error", fail);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", fail);
    req.end();
  });
}

/** Resolves with performance.now() when `test()` first holds (polled every `everyMs`), or rejects after `ms`. */
async function when(test: () => boolean | Promise<boolean>, ms: number, everyMs = 5): Promise<number> {
  const end = performance.now() + ms;
  for (;;) {
    if (await test()) return performance.now();
    if (performance.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  if (process.env.VMM_IN_NETNS !== "1") throw new Error("run inside scripts/in-netns.sh (creates a bridge, dnsmasq and guests)");
  if (!existsSync(HOOK)) throw new Error(`${HOOK} missing: run scripts/build-native.sh`);
  const guests = VARIANTS.map(guestFiles);
  const dir = mkdtempSync(join(tmpdir(), "vmm-bench-start-"));
  chmodSync(dir, 0o711);
  const procs: ChildProcess[] = [];
  try {
    sh("ip", ...ipArgv.addBridge(BR)); // a MAC of its own, as scripts/setup-bridge.sh gives it
    sh("ip", "addr", "add", "10.97.0.1/24", "dev", BR);
    sh("ip", "link", "set", BR, "up");
    writeFileSync("/etc/qemu/bridge.conf", `allow ${BR}\n`); // private tmpfs inside in-netns.sh
    const socket = join(dir, "vmmd.sock");
    const leases = join(dir, "dnsmasq.leases");
    const dnsLog = join(dir, "dnsmasq.log");
    const tokenFile = join(dir, "lease.token");
    writeFileSync(tokenFile, "bench-lease-token-0123456789\n", { mode: 0o600 });
    const cfg = join(dir, "vmm.toml");
    writeFileSync(
      cfg,
      `state_dir = "${join(dir, "state")}"
[api]
socket = "${socket}"
[auth]
tokens = ["bench-admin-token-0123456789"]
lease_tokens = ["bench-lease-token-0123456789"]
[networking]
default_mode = "bridge"
bridge = "${BR}"
bridge_subnets = { "${BR}" = "10.97.0.0/24" }
bridge_lease_files = { "${BR}" = "${leases}" }
forward_service_enabled = true
`,
    );
    const vmmd = spawn(process.execPath, [VMMD, "--config", cfg], { stdio: ["ignore", "pipe", "ignore"] });
    procs.push(vmmd);
    await new Promise<void>((ok, fail) => {
      createInterface({ input: vmmd.stdout }).once("line", () => ok());
      vmmd.once("exit", (c) => fail(new Error(`vmmd exited ${c}`)));
    });
    const conf = join(dir, "dnsmasq.conf");
    writeFileSync(
      conf,
      dnsmasqConfig({
        writer: "bench/start.ts",
        interface: BR,
        dns: false,
        dhcp: { rangeStart: "10.97.0.50", rangeEnd: "10.97.0.200", netmask: "255.255.255.0", router: "10.97.0.1", script: HOOK },
        leaseFile: leases,
        pidFile: join(dir, "dnsmasq.pid"),
        logFile: dnsLog,
      }),
    );
    procs.push(
      spawn("dnsmasq", ["--keep-in-foreground", `--conf-file=${conf}`], {
        stdio: "ignore",
        env: { PATH: process.env.PATH, VMM_SOCKET: socket, VMM_LEASE_TOKEN_FILE: tokenFile, VMM_HOOK_LOG: join(dir, "hook.log") },
      }),
    );
    await when(() => existsSync(join(dir, "dnsmasq.pid")), 10_000, 20);
    const vmm = createClient(
      VmmService,
      createConnectTransport({ baseUrl: "http://localhost", httpVersion: "1.1", nodeOptions: { socketPath: socket }, interceptors: [(next) => (req) => { req.header.set("authorization", "Bearer bench-admin-token-0123456789"); return next(req); }] }),
    );

    /** Per command line: each phase's durations, and the guest's own clock (ms since its kernel started) at each /init step (vmm.trace=1). */
    const runs = VARIANTS.map(() => {
      const rows: Record<string, number[]> = { rpc: [], discover: [], ack: [], lease: [], answer: [], total: [] };
      const steps: Record<string, number[]> = {};
      return { rows, steps };
    });
    for (let r = 0; r < ROUNDS * VARIANTS.length; r++) {
      const v = r % VARIANTS.length;
      const { rows, steps } = runs[v]!;
      const id = `bst-${r}`;
      const { vm } = await vmm.createVm({
        id,
        config: {
          name: id,
          kernel: guests[v]!.kernel,
          initrd: guests[v]!.initrd,
          cmdline: `console=ttyS0 quiet panic=-1 vmm.hostname=${id} vmm.trace=1${VARIANTS[v]!.extra}`,
          nics: [{ mode: NetworkingMode.BRIDGE }],
          ports: [{ protocol: Protocol.TCP, hostPort: PORT, vmPort: 8080 }],
        },
      });
      const mac = vm!.nics[0]!.mac;
      const logAt = existsSync(dnsLog) ? readFileSync(dnsLog).length : 0;
      const dnsSince = () => (existsSync(dnsLog) ? readFileSync(dnsLog).subarray(logAt).toString() : "");
      const t0 = performance.now();
      await vmm.startVm({ id });
      const t1 = performance.now();
      const tDiscover = when(() => dnsSince().includes(`DHCPDISCOVER(${BR}) ${mac}`), 60_000);
      const tAck = when(() => new RegExp(`DHCPACK\\(${BR}\\) \\S+ ${mac}`).test(dnsSince()), 60_000);
      const tLease = when(async () => (await vmm.getInfo({ id })).vm!.nics[0]!.lease?.verification === LeaseVerification.VERIFIED, 60_000);
      /** Each request through the forward: when, how long, what came back. */
      const tries: string[] = [];
      const tAnswer = when(async () => {
        const st = performance.now();
        const body = await get(`http://127.0.0.1:${PORT}/`).catch((e: Error) => `ERR ${e.message}`);
        tries.push(`at ${(st - t0).toFixed(0)} ms, ${(performance.now() - st).toFixed(0)} ms: ${body.slice(0, 40).trim()}`);
        return body.includes(id);
      }, 60_000);
      const [d, a, l, ans] = await Promise.all([tDiscover, tAck, tLease, tAnswer]);
      rows.rpc!.push(t1 - t0);
      rows.discover!.push(d - t1);
      rows.ack!.push(a - d);
      rows.lease!.push(l - a);
      rows.answer!.push(ans - l);
      rows.total!.push(ans - t0);
      if (ans - l > 500) log(`round ${r + 1}: the forward answered ${(ans - l).toFixed(0)} ms after the lease was believed (at ${(l - t0).toFixed(0)} ms); last requests: ${tries.slice(-4).join(" | ")}`);
      log(`round ${r + 1}/${ROUNDS * VARIANTS.length} (${VARIANTS[v]!.name}): ${(ans - t0).toFixed(0)} ms`);
      // The guest prints READY once its echo server listens too, which may
      // come after its httpd answered: wait for that line (at most 5 s).
      const serial = join(dir, "state", "vms", id, "serial.log");
      for (let i = 0; i < 100 && !/VMM-T [0-9.]+ ready/.test(readFileSync(serial, "latin1")); i++) await new Promise((res) => setTimeout(res, 50));
      for (const m of readFileSync(serial, "latin1").matchAll(/VMM-T ([0-9.]+) (\w+)/g)) (steps[m[2]!] ??= []).push(Number(m[1]) * 1000);
      await vmm.removeVm({ id, force: true });
    }
    const load = loadavg()[0]!.toFixed(1);
    const ms = (x: number) => x.toFixed(0);
    const cols = (xs: (number[] | undefined)[]) => xs.map((x) => (x && x.length > 0 ? `${ms(pct(x, 50))} | ${ms(Math.max(...x))}` : "- | -")).join(" | ");
    const head = [`| ${VARIANTS.map((v) => `${v.name}: p50 ms | max ms`).join(" | ")} |`, `|---|${VARIANTS.map(() => "---|---|").join("")}`];
    const line = (name: string, k: string) => `| ${name} | ${cols(runs.map((x) => x.rows[k]))} |`;
    const step = (name: string, k: string) => `| ${name} | ${cols(runs.map((x) => x.steps[k]))} |`;
    process.stdout.write(
      [
        `StartVm -> forwarded port answering, bridge + dnsmasq (no-ping) + hook + ARP verification, TCG, ${ROUNDS} first boots per guest, interleaved`,
        `(${availableParallelism()} CPUs, load average ${load} at the end: TCG boots are CPU-bound, compare on a quiet host)`,
        `guests: ${VARIANTS.map((v, i) => `${v.name} = ${guests[i]!.kernel.replace(`${repo}/`, "")} + ${v.initrd}, "console=ttyS0 quiet panic=-1 ...${v.extra}"`).join("; ")}`,
        "",
        `| phase ${head[0]}`,
        head[1],
        line("StartVm RPC (QEMU spawned, QMP up)", "rpc"),
        line("-> DHCPDISCOVER (firmware, kernel, modules, /init, udhcpc)", "discover"),
        line("-> DHCPACK", "ack"),
        line("-> lease verified in vmmd (hook, ReportDhcpLease, ARP)", "lease"),
        line("-> forwarded port answering (guest httpd, relay)", "answer"),
        line("**StartVm -> forwarded port answering**", "total"),
        "",
        "Inside the guest (its clock, since its kernel started; /init with vmm.trace=1):",
        "",
        `| step ${head[0]}`,
        head[1],
        ...(
          [
            ["kernel boot -> /init", "init"],
            ["modules loaded (virtio, button, evdev; none for the minimal kernel)", "modules"],
            ["power button input found", "input"],
            ["eth0 present", "nic"],
            ["udhcpc started", "dhcp"],
            ["lease applied (seen by /init's 0.1 s poll)", "lease"],
            ["httpd and echo server listening (READY)", "ready"],
          ] as const
        ).map(([name, k]) => step(name, k)),
        "",
      ].join("\n"),
    );
  } finally {
    for (const p of procs.reverse()) p.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    spawnSync("ip", ["link", "del", BR]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench-start: ${(e as Error).stack}\n`);
  process.exitCode = 1;
});

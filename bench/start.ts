// Boot benchmark: StartVm -> forwarded port answering, for a bridge-mode
// guest under TCG with the whole production path: a real vmmd, the test
// guest (.tools/guest, or VMM_GUEST_DIR), a bridge, dnsmasq configured by the
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
//   ACK -> lease believed the hook (sh + curl), ReportDhcpLease, verification
//   lease -> answering    rule live, guest httpd up, first GET through the forward
//
// Run inside the private namespace, after `npm run build`:
//   scripts/in-netns.sh npm run bench:start      (BENCH_START_ROUNDS, default 5)
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
const HOOK = join(repo, "clients", "dnsmasq-hook", "vmm-dhcp-hook");
const ROUNDS = Number(process.env.BENCH_START_ROUNDS ?? "5");
const BR = "vmbr-bst";
const PORT = 31080;
const log = (m: string) => process.stderr.write(`bench-start: ${m}\n`);

function guestFiles(): { kernel: string; initrd: string } {
  const dir = process.env.VMM_GUEST_DIR ?? join(repo, ".tools", "guest");
  const boot = join(dir, "kernel", "boot");
  const k = existsSync(boot) ? readdirSync(boot).filter((n) => n.startsWith("vmlinuz-")).sort().pop() : undefined;
  const initrd = join(dir, "initramfs.cpio.gz");
  if (!k || !existsSync(initrd)) throw new Error(`test guest missing under ${dir}: run sudo scripts/setup-guest.sh`);
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
  const guest = guestFiles();
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

    const rows: Record<string, number[]> = { rpc: [], discover: [], ack: [], lease: [], answer: [], total: [] };
    /** The guest's own clock (seconds since its kernel started) at each /init step (vmm.trace=1). */
    const steps: Record<string, number[]> = {};
    for (let r = 0; r < ROUNDS; r++) {
      const id = `bst-${r}`;
      const { vm } = await vmm.createVm({
        id,
        config: {
          name: id,
          kernel: guest.kernel,
          initrd: guest.initrd,
          cmdline: `console=ttyS0 quiet panic=-1 vmm.hostname=${id} vmm.trace=1`,
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
      const tAnswer = when(async () => (await get(`http://127.0.0.1:${PORT}/`).catch(() => "")).includes(id), 60_000);
      const [d, a, l, ans] = await Promise.all([tDiscover, tAck, tLease, tAnswer]);
      rows.rpc!.push(t1 - t0);
      rows.discover!.push(d - t1);
      rows.ack!.push(a - d);
      rows.lease!.push(l - a);
      rows.answer!.push(ans - l);
      rows.total!.push(ans - t0);
      log(`round ${r + 1}/${ROUNDS}: ${(ans - t0).toFixed(0)} ms`);
      for (const m of readFileSync(join(dir, "state", "vms", id, "serial.log"), "latin1").matchAll(/VMM-T ([0-9.]+) (\w+)/g)) (steps[m[2]!] ??= []).push(Number(m[1]) * 1000);
      await vmm.removeVm({ id, force: true });
    }
    const load = loadavg()[0]!.toFixed(1);
    const ms = (x: number) => x.toFixed(0);
    const line = (name: string, k: string) => `| ${name} | ${ms(pct(rows[k]!, 50))} | ${ms(Math.max(...rows[k]!))} |`;
    process.stdout.write(
      [
        `StartVm -> forwarded port answering, bridge + dnsmasq (no-ping) + hook + ARP verification, TCG, ${ROUNDS} first boots`,
        `(${availableParallelism()} CPUs, load average ${load} at the end: TCG boots are CPU-bound, compare on a quiet host)`,
        "",
        "| phase | p50 ms | max ms |",
        "|---|---|---|",
        line("StartVm RPC (QEMU spawned, QMP up)", "rpc"),
        line("-> DHCPDISCOVER (kernel, modules, /init, udhcpc)", "discover"),
        line("-> DHCPACK", "ack"),
        line("-> lease verified in vmmd (hook, curl, ReportDhcpLease, ARP)", "lease"),
        line("-> forwarded port answering (guest httpd, relay)", "answer"),
        line("**StartVm -> forwarded port answering**", "total"),
        "",
        "Inside the guest (its clock, since its kernel started; /init with vmm.trace=1):",
        "",
        "| step | p50 ms | max ms |",
        "|---|---|---|",
        ...(
          [
            ["kernel boot -> /init", "init"],
            ["modules loaded (virtio, button, evdev)", "modules"],
            ["power button input found", "input"],
            ["eth0 present", "nic"],
            ["udhcpc started", "dhcp"],
            ["lease applied (seen by /init's 0.1 s poll)", "lease"],
            ["httpd up (READY)", "ready"],
          ] as const
        ).map(([name, k]) => (steps[k] ? `| ${name} | ${ms(pct(steps[k], 50))} | ${ms(Math.max(...steps[k]))} |` : `| ${name} | - | - |`)),
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

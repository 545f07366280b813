// Lease benchmark (issue: bridge networking, latency). Two figures, printed
// as a markdown table:
//
//  1. report -> accepting: the real dnsmasq hook (clients/dnsmasq-hook, curl
//     over the unix socket) reports a lease for a running bridge-mode VM; we
//     time from spawning the hook until a TCP connect to the VM's host port
//     succeeds (the forwarder's listener is up). Each round first reports
//     `del` (listener gone), untimed. p50/p99 over BENCH_LEASE_ROUNDS (200).
//  2. restart -> restored: BENCH_LEASE_VMS (1,000) running VMs holding leases;
//     vmmd is restarted and we time from spawning it until every one of the
//     1,000 host ports accepts.
//
// "Running" VMs here are stand-ins: the benchmark measures the daemon's lease
// and restore path, not QEMU, so each VM's runtime record points at one
// long-lived `busybox sh` process whose command line carries the VMs' QMP
// socket paths (the daemon identifies its guests by pid, start time and that
// path). No guest traffic is involved. Run inside the private namespace:
//
//   npm run build && scripts/in-netns.sh node dist/bench/lease.js
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { LeaseAction, NetworkingMode, Protocol, VmmService } from "../gen/ts/vmm/v1/vmm_pb.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const VMMD = join(repo, "dist", "server", "main.js");
const HOOK = join(repo, "clients", "dnsmasq-hook", "vmm-dhcp-hook");
const ROUNDS = Number(process.env.BENCH_LEASE_ROUNDS ?? "200");
const VMS = Number(process.env.BENCH_LEASE_VMS ?? "1000");
const BASE_PORT = 30000;
const log = (m: string) => process.stderr.write(`bench-lease: ${m}\n`);

const dir = mkdtempSync(join(tmpdir(), "vmm-bench-lease-"));
chmodSync(dir, 0o711);
const stateDir = join(dir, "state");
const socket = join(dir, "vmmd.sock");
const cfg = join(dir, "vmm.toml");
writeFileSync(
  cfg,
  `state_dir = "${stateDir}"
[api]
socket = "${socket}"
[networking]
default_mode = "bridge"
bridge = "vmbr-bench"
bridge_subnets = { "vmbr-bench" = "10.100.0.0/16" }
forward_service_enabled = true
[forward]
max_connections_per_rule = 16
`,
);

let daemon: ChildProcess | undefined;
let sleeper: ChildProcess | undefined;

async function startDaemon(): Promise<number> {
  const t0 = performance.now();
  daemon = spawn(process.execPath, [VMMD, "--config", cfg], { stdio: ["ignore", "pipe", "ignore"] });
  await new Promise<void>((ok, fail) => {
    createInterface({ input: daemon!.stdout! }).once("line", () => ok());
    daemon!.once("exit", (c) => fail(new Error(`vmmd exited ${c}`)));
  });
  return performance.now() - t0;
}

async function stopDaemon(): Promise<void> {
  if (!daemon || daemon.exitCode !== null) return;
  const done = new Promise((r) => daemon!.once("exit", r));
  daemon.kill("SIGTERM");
  await done;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      res(true);
    });
    s.once("error", () => res(false));
  });
}

async function until(ports: number[], deadlineMs: number): Promise<void> {
  let pending = ports;
  const deadline = performance.now() + deadlineMs;
  while (pending.length > 0) {
    if (performance.now() > deadline) throw new Error(`${pending.length} ports still closed`);
    const ok = await Promise.all(pending.map(accepts));
    pending = pending.filter((_, i) => !ok[i]);
    if (process.env.BENCH_DEBUG) log(`${pending.length} closed at ${performance.now().toFixed(0)}`);
  }
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  await startDaemon();
  const vmm = createClient(VmmService, createConnectTransport({ baseUrl: "http://localhost", httpVersion: "1.1", nodeOptions: { socketPath: socket } }));
  log(`creating ${VMS} VM records with one port each`);
  const ids: string[] = [];
  const macs: string[] = [];
  for (let i = 0; i < VMS; i++) {
    const id = `bench-${i}`;
    const { vm } = await vmm.createVm({ id, config: { name: id, nics: [{ mode: NetworkingMode.BRIDGE }], ports: [{ protocol: Protocol.TCP, hostPort: BASE_PORT + i, vmPort: 80 }] } });
    ids.push(id);
    macs.push(vm!.nics[0]!.mac);
  }
  const ipOf = (i: number) => `10.100.${Math.floor((i + 2) / 256)}.${(i + 2) % 256}`;
  for (let i = 0; i < VMS; i++) {
    await vmm.reportDhcpLease({ action: LeaseAction.ADD, mac: macs[i]!, ip: ipOf(i), expiresUnix: BigInt(Math.floor(Date.now() / 1000) + 3600) });
  }
  await stopDaemon();
  // Make every VM "running": one stand-in process whose argv names every
  // VM's QMP socket; runtime records point at it.
  const qmps = ids.map((id) => join(stateDir, "vms", id, "qmp.sock"));
  // "; :" keeps the shell from exec()ing sleep (which would drop the paths).
  sleeper = spawn("busybox", ["sh", "-c", "sleep 3600; :", "bench", ...qmps], { stdio: "ignore" });
  await new Promise((r) => sleeper!.once("spawn", r));
  const stat = readFileSync(`/proc/${sleeper.pid}/stat`, "utf8");
  const startTime = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  for (const id of ids) {
    writeFileSync(
      join(stateDir, "vms", id, "runtime.json"),
      JSON.stringify({ version: 1, status: "running", instanceId: `bench-${id}`, pid: sleeper.pid, pidStartTime: startTime, startedAt: new Date().toISOString(), hostInterfaces: [""] }),
    );
  }

  log(`restart with ${VMS} running VMs holding leases`);
  const t0 = performance.now();
  const ready = await startDaemon();
  await until(ids.map((_, i) => BASE_PORT + i), 120_000);
  const restored = performance.now() - t0;

  log(`${ROUNDS} hook reports`);
  const hookEnv = { PATH: process.env.PATH, VMM_SOCKET: socket, DNSMASQ_INTERFACE: "vmbr-bench" };
  const hookOnly: number[] = [];
  const total: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const mac = macs[0]!;
    const ip = ipOf(0);
    const del = spawnSync(HOOK, ["del", mac, ip], { env: hookEnv, encoding: "utf8" });
    if (del.status !== 0) throw new Error(`hook del failed: ${del.stderr}`);
    if (await accepts(BASE_PORT)) throw new Error("port still accepting after del");
    const t = performance.now();
    const add = spawnSync(HOOK, ["add", mac, ip, "bench"], { env: hookEnv, encoding: "utf8" });
    const tHook = performance.now() - t;
    if (add.status !== 0) throw new Error(`hook add failed: ${add.stderr}`);
    await until([BASE_PORT], 10_000);
    total.push(performance.now() - t);
    hookOnly.push(tHook);
  }
  await stopDaemon();

  const ms = (x: number) => x.toFixed(1);
  process.stdout.write(
    [
      "| figure | p50 ms | p99 ms | n |",
      "|---|---|---|---|",
      `| hook run (spawn to exit, incl. ReportDhcpLease) | ${ms(pct(hookOnly, 50))} | ${ms(pct(hookOnly, 99))} | ${ROUNDS} |`,
      `| hook spawn -> host port accepting | ${ms(pct(total, 50))} | ${ms(pct(total, 99))} | ${ROUNDS} |`,
      "",
      "| figure | ms |",
      "|---|---|",
      `| vmmd start -> ready line (${VMS} VMs) | ${ms(ready)} |`,
      `| vmmd start -> all ${VMS} forwarded ports accepting | ${ms(restored)} |`,
      "",
    ].join("\n"),
  );
}

main()
  .catch((e) => {
    process.stderr.write(`bench-lease: ${(e as Error).stack}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    daemon?.kill("SIGKILL");
    sleeper?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

// Lease benchmark (bridge networking: lease report -> rule live). Prints
// markdown tables:
//
//  1. report -> rule live, with lease verification on the wire in the path:
//     VM 0's "guest" is a veth in a peer namespace on the bridge that holds
//     VM 0's MAC and address, so its kernel answers ARP exactly as a guest
//     would. Each round reports `del` (untimed, the listener goes), then
//     `add`, and we time until a TCP connect to the VM's host port succeeds.
//       * neighbour entry path: the host already knows the guest's MAC for
//         the address (as after dnsmasq's DHCPACK); a new address is still
//         confirmed by an ARP probe (the entry predates the guest
//         configuring it), which the guest answers at once;
//       * probe path: the neighbour entry is deleted first (untimed), so the
//         probe also resolves the address;
//       * hook path: the real dnsmasq hook, as vmmd's networks and
//         scripts/setup-bridge.sh give it to dnsmasq (the compiled hook,
//         run directly), makes the report over the unix socket, neighbour
//         entry present.
//     ReportDhcpLease over an in-process Connect client for the first two.
//     "live": from sending the report until a connect to the host port
//     first succeeds (tried back to back by bench/live-probe.ts, a process
//     of its own at SCHED_IDLE, so that the loop takes no CPU from what it
//     measures); "call": until the report's answer arrived (it also writes
//     leases.json). "inside vmmd": the daemon's own timing of the same reports
//     (VMM_DEBUG log lines), from the report's validation to its rules
//     being live, verification first; with the CLOCK_MONOTONIC time at which
//     the daemon took each report up, a third table splits every round at
//     the daemon's clocks (sent -> taken up, -> rule live, -> first connect
//     seen; done -> answer received). "sent -> rule live (vmmd's clock)":
//     until vmm-relayd confirmed the listener (the kernel accepts from then
//     on), free of the prober's own delays. BENCH_LEASE_ROUNDS rounds each (200).
//     The other VMs are running too, and each holds a believed lease
//     whose address a macvlan in the peer namespace answers, so the
//     daemon's background re-verification runs against healthy guests.
//  2. restart -> restored: BENCH_LEASE_VMS (1,000) running VMs holding
//     leases; vmmd is restarted and we time from spawning it until every
//     one of the host ports accepts. Stored leases of running guests are
//     re-applied without probing (they were verified when reported; they
//     are re-verified in the background after start), so this figure runs
//     with lease_verification = "off" (the stand-ins below answer no ARP).
//
// "Running" VMs are stand-ins: the benchmark measures the daemon's lease and
// restore path, not QEMU, so each VM's runtime record points at one
// long-lived `busybox sh` process whose command line carries the VMs' QMP
// socket paths (the daemon identifies its guests by pid, start time and that
// path). Run inside the private namespace:
//
//   npm run build && scripts/in-netns.sh node dist/bench/lease.js
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { accepts } from "./accepts.js";
import { LeaseAction, LeaseVerification, NetworkingMode, Protocol, VmmService } from "../gen/ts/vmm/v1/vmm_pb.js";
import { ipArgv } from "../server/host/iproute.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const VMMD = join(repo, "dist", "server", "main.js");
const HOOK = join(repo, "native", "build", "Release", "vmm-dhcp-hook");
const LIVE_PROBE = join(repo, "dist", "bench", "live-probe.js");
const ROUNDS = Number(process.env.BENCH_LEASE_ROUNDS ?? "200");
const VMS = Number(process.env.BENCH_LEASE_VMS ?? "1000");
const BASE_PORT = 30000;
const BR = "vmbr-bench";
const PEER = `vmm-bench-peer-${process.pid}`;
const log = (m: string) => process.stderr.write(`bench-lease: ${m}\n`);

const dir = mkdtempSync(join(tmpdir(), "vmm-bench-lease-"));
chmodSync(dir, 0o711);
const stateDir = join(dir, "state");
const socket = join(dir, "vmmd.sock");
const cfg = join(dir, "vmm.toml");
const writeConfig = (verification: "arp" | "off") =>
  writeFileSync(
    cfg,
    `state_dir = "${stateDir}"
[api]
socket = "${socket}"
[networking]
default_mode = "bridge"
bridge = "${BR}"
bridge_subnets = { "${BR}" = "10.100.0.0/16" }
bridge_lease_files = { "${BR}" = "${join(dir, "no-dnsmasq.leases")}" }
forward_service_enabled = true
lease_verification = "${verification}"
[forward]
max_connections_per_rule = 16
`,
  );

let daemon: ChildProcess | undefined;
let sleeper: ChildProcess | undefined;
let prober: ChildProcess | undefined;
/** The daemon's own timing of each applied report (VMM_DEBUG=1 log lines), in order; startNs: CLOCK_MONOTONIC at its start. */
const applied: { verifyMs: number; liveMs: number; totalMs: number; startNs: bigint }[] = [];

async function startDaemon(debug = false): Promise<number> {
  const t0 = performance.now();
  daemon = spawn(process.execPath, [VMMD, "--config", cfg], {
    stdio: ["ignore", "pipe", debug ? "pipe" : "ignore"],
    env: debug ? { ...process.env, VMM_DEBUG: "1" } : process.env,
  });
  if (debug) {
    createInterface({ input: daemon.stderr! }).on("line", (l) => {
      if (!l.includes('"lease report applied"')) return;
      const j = JSON.parse(l) as { verifyMs: number; liveMs: number; totalMs: number; startNs: string };
      applied.push({ verifyMs: j.verifyMs, liveMs: j.liveMs, totalMs: j.totalMs, startNs: BigInt(j.startNs) });
    });
  }
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

async function until(ports: number[], deadlineMs: number): Promise<void> {
  let pending = ports;
  const deadline = performance.now() + deadlineMs;
  while (pending.length > 0) {
    if (performance.now() > deadline) throw new Error(`${pending.length} ports still closed`);
    const ok = await Promise.all(pending.map(accepts));
    pending = pending.filter((_, i) => !ok[i]);
  }
}

function sh(...argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const ipOf = (i: number) => `10.100.${Math.floor((i + 2) / 256)}.${(i + 2) % 256}`;

async function main(): Promise<void> {
  if (process.env.VMM_IN_NETNS !== "1") throw new Error("run inside scripts/in-netns.sh (creates a bridge and a namespace)");
  if (!existsSync(HOOK)) throw new Error(`${HOOK} missing: run scripts/build-native.sh`);
  sh("ip", ...ipArgv.addBridge(BR));
  sh("ip", "addr", "add", "10.100.0.1/16", "dev", BR);
  sh("ip", "link", "set", BR, "up");
  writeConfig("off");
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
  await stopDaemon();
  // Make every VM "running": one stand-in process whose argv names every
  // VM's QMP socket; runtime records point at it. (Leases exist only for
  // running VMs, so they are reported after this.)
  const qmps = ids.map((id) => join(stateDir, "vms", id, "qmp.sock"));
  // "; :" keeps the shell from exec()ing sleep (which would drop the paths).
  sleeper = spawn("busybox", ["sh", "-c", "sleep 3600; :", "bench", ...qmps], { stdio: "ignore", detached: true });
  await new Promise((r) => sleeper!.once("spawn", r));
  const stat = readFileSync(`/proc/${sleeper.pid}/stat`, "utf8");
  const startTime = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  for (const id of ids) {
    writeFileSync(
      join(stateDir, "vms", id, "runtime.json"),
      JSON.stringify({ version: 1, status: "running", instanceId: `bench-${id}`, pid: sleeper.pid, pidStartTime: startTime, startedAt: new Date().toISOString(), hostInterfaces: [""] }),
    );
  }
  await startDaemon();
  for (let i = 0; i < VMS; i++) {
    await vmm.reportDhcpLease({ action: LeaseAction.ADD, mac: macs[i]!, ip: ipOf(i), expiresUnix: BigInt(Math.floor(Date.now() / 1000) + 3600) });
  }
  await stopDaemon();

  log(`restart with ${VMS} running VMs holding leases`);
  const t0 = performance.now();
  const ready = await startDaemon();
  await until(ids.map((_, i) => BASE_PORT + i), 120_000);
  const restored = performance.now() - t0;
  await stopDaemon();

  // VM 0's guest: a veth end with its MAC and address, in a namespace of its own.
  sh("ip", "netns", "add", PEER);
  sh("ip", "link", "add", "vbpeer0", "type", "veth", "peer", "name", "vbpeer1");
  sh("ip", "link", "set", "vbpeer0", "master", BR, "up");
  sh("ip", "link", "set", "vbpeer1", "netns", PEER);
  sh("ip", "-n", PEER, "link", "set", "vbpeer1", "address", macs[0]!);
  sh("ip", "-n", PEER, "addr", "add", `${ipOf(0)}/16`, "dev", "vbpeer1");
  sh("ip", "-n", PEER, "link", "set", "vbpeer1", "up");
  // The other VMs' guests: a macvlan each on that veth end, with the VM's
  // MAC and address, so that every stored lease keeps answering ARP like a
  // running guest and the daemon's background re-verification sees a
  // healthy host (stand-ins that never answer would put 999 guests going
  // silent at once into the figures). arp_ignore=1 (this namespace only):
  // each interface answers for its own address alone, with its own MAC.
  log(`giving ${VMS - 1} more guests an ARP-answering interface`);
  sh("ip", "netns", "exec", PEER, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1");
  const batch = join(dir, "guests.batch");
  writeFileSync(
    batch,
    macs
      .slice(1)
      .map((m, j) => `link add vbm${j + 1} link vbpeer1 address ${m} type macvlan mode bridge\naddr add ${ipOf(j + 1)}/16 dev vbm${j + 1}\nlink set vbm${j + 1} up\n`)
      .join(""),
  );
  sh("ip", "-n", PEER, "-batch", batch);
  writeConfig("arp");
  await startDaemon(true);
  const mac = macs[0]!;
  const ip = ipOf(0);
  const expires = () => BigInt(Math.floor(Date.now() / 1000) + 3600);
  /** Makes the host resolve the guest's address (as dnsmasq's DHCPACK does). */
  const resolveNeighbour = async () => {
    const s = createSocket("udp4");
    await new Promise<void>((r) => s.send("x", 9, ip, () => r()));
    s.close();
    await new Promise((r) => setTimeout(r, 20));
  };
  // The "live" clock: a connect loop in a process of its own at SCHED_IDLE
  // (bench/live-probe.ts says why).
  prober = spawn("chrt", ["--idle", "0", process.execPath, LIVE_PROBE], { stdio: ["pipe", "pipe", "inherit"] });
  const probed: ((l: string) => void)[] = [];
  createInterface({ input: prober.stdout! }).on("line", (l) => probed.shift()?.(l));
  /** Resolves with the CLOCK_MONOTONIC time (ns) a connect to `port` first succeeded. */
  const live = (port: number): Promise<bigint> =>
    new Promise((ok, fail) => {
      probed.push((l) => (l === "timeout" ? fail(new Error(`port ${port} never accepted`)) : ok(BigInt(l))));
      prober!.stdin!.write(`${port}\n`);
    });
  const hook = (args: string[]) =>
    new Promise<void>((ok, fail) => {
      const c = spawn(HOOK, args, { stdio: ["ignore", "ignore", "pipe"], env: { PATH: process.env.PATH, VMM_SOCKET: socket, DNSMASQ_INTERFACE: BR } });
      let err = "";
      c.stderr.on("data", (b: Buffer) => (err += b.toString()));
      c.once("exit", (code) => (code === 0 ? ok() : fail(new Error(`hook ${args[0]} failed: ${err}`))));
    });
  /** One round: del (untimed), then add; ms until the rule is live and until the report returned, and the three clocks (ns). */
  const round = async (how: "neighbour" | "probe" | "hook"): Promise<{ live: number; call: number; sentNs: bigint; liveNs: bigint; answerNs: bigint }> => {
    await vmm.reportDhcpLease({ action: LeaseAction.DEL, mac, ip });
    if (await accepts(BASE_PORT)) throw new Error("port still accepting after del");
    if (how === "probe") spawnSync("ip", ["neigh", "del", ip, "dev", BR]);
    const isLive = live(BASE_PORT);
    const t = process.hrtime.bigint();
    let call: Promise<bigint>;
    if (how === "hook") call = hook(["add", mac, ip, "bench"]).then(() => process.hrtime.bigint());
    else
      call = vmm.reportDhcpLease({ action: LeaseAction.ADD, mac, ip, expiresUnix: expires() }).then((r) => {
        if (r.lease?.verification !== LeaseVerification.VERIFIED) throw new Error(`lease not verified: ${r.lease?.verificationDetail}`);
        if (!r.lease.verificationDetail.includes("(probe)")) throw new Error(`expected an ARP probe to confirm: ${r.lease.verificationDetail}`);
        return process.hrtime.bigint();
      });
    const [l, c] = await Promise.all([isLive, call]);
    const ms = (x: bigint) => Number(x - t) / 1e6;
    return { live: ms(l), call: ms(c), sentNs: t, liveNs: l, answerNs: c };
  };
  const results: Record<string, { live: number[]; call: number[] }> = {};
  const inside: Record<string, { verifyMs: number; liveMs: number }[]> = {};
  /** Per path: the same rounds split at the daemon's clocks (ms): sent -> handler, handler -> live, live -> first connect, handler done -> answer. */
  const split: Record<string, { toDaemon: number[]; inDaemon: number[]; toProbe: number[]; back: number[] }> = {};
  for (const how of ["neighbour", "probe", "hook"] as const) {
    log(`${ROUNDS} reports, ${how} path`);
    const before = applied.length;
    const r = (results[how] = { live: [] as number[], call: [] as number[] });
    const clocks: { sentNs: bigint; liveNs: bigint; answerNs: bigint }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      if (how !== "probe") await resolveNeighbour();
      const x = await round(how);
      r.live.push(x.live);
      r.call.push(x.call);
      clocks.push(x);
    }
    await new Promise((res) => setTimeout(res, 50)); // the last log line
    const ins = (inside[how] = applied.slice(before));
    if (ins.length !== clocks.length) throw new Error(`${how}: ${ins.length} daemon timings for ${clocks.length} reports`);
    const msBetween = (a: bigint, b: bigint) => Number(b - a) / 1e6;
    split[how] = {
      toDaemon: clocks.map((c, i) => msBetween(c.sentNs, ins[i]!.startNs)),
      inDaemon: ins.map((x) => x.liveMs),
      toProbe: clocks.map((c, i) => msBetween(ins[i]!.startNs, c.liveNs) - ins[i]!.liveMs),
      back: clocks.map((c, i) => msBetween(ins[i]!.startNs, c.answerNs) - ins[i]!.totalMs),
    };
  }
  await stopDaemon();

  const ms = (x: number) => x.toFixed(2);
  process.stdout.write(
    [
      `(${availableParallelism()} CPUs, load average ${loadavg()[0]!.toFixed(1)})`,
      "",
      "| lease report -> rule live (verification on the wire in the path) | live p50 ms | live p90 ms | live p99 ms | call p50 ms | call p99 ms | n |",
      "|---|---|---|---|---|---|---|",
      ...([
        ["ReportDhcpLease, neighbour entry present (as after a DHCPACK), ARP probe", "neighbour"],
        ["ReportDhcpLease, no neighbour entry, ARP probe", "probe"],
        ["the dnsmasq hook (compiled, run directly), neighbour entry present, ARP probe", "hook"],
      ] as const).map(([name, k]) => {
        const r = results[k]!;
        return `| ${name} | ${ms(pct(r.live, 50))} | ${ms(pct(r.live, 90))} | ${ms(pct(r.live, 99))} | ${ms(pct(r.call, 50))} | ${ms(pct(r.call, 99))} | ${ROUNDS} |`;
      }),
      "",
      "| inside vmmd: report accepted -> rule live | verify p50 ms | verify p99 ms | live p50 ms | live p90 ms | live p99 ms | n |",
      "|---|---|---|---|---|---|---|",
      ...(["neighbour", "probe", "hook"] as const).map((k) => {
        const xs = inside[k]!;
        const v = xs.map((x) => x.verifyMs);
        const l = xs.map((x) => x.liveMs);
        return `| ${k} path | ${ms(pct(v, 50))} | ${ms(pct(v, 99))} | ${ms(pct(l, 50))} | ${ms(pct(l, 90))} | ${ms(pct(l, 99))} | ${xs.length} |`;
      }),
      "",
      "| where those reports' time goes, p50 / p99 ms | sent -> rule live (vmmd's clock) | sent -> vmmd takes it up (HTTP, Connect, auth, checks) | taken up -> rule live | rule live -> first connect seen | vmmd done -> answer received |",
      "|---|---|---|---|---|---|",
      ...(["neighbour", "probe", "hook"] as const).map((k) => {
        const x = split[k]!;
        const cell = (xs: number[]) => `${ms(pct(xs, 50))} / ${ms(pct(xs, 99))}`;
        return `| ${k} path | ${cell(x.toDaemon.map((t, i) => t + x.inDaemon[i]!))} | ${cell(x.toDaemon)} | ${cell(x.inDaemon)} | ${cell(x.toProbe)} | ${cell(x.back)} |`;
      }),
      "",
      "| restart | ms |",
      "|---|---|",
      `| vmmd start -> ready line (${VMS} running VMs with leases) | ${ms(ready)} |`,
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
    prober?.kill("SIGKILL");
    if (sleeper?.pid) process.kill(-sleeper.pid, "SIGKILL"); // the shell and its sleep
    spawnSync("ip", ["netns", "del", PEER]);
    spawnSync("ip", ["link", "del", BR]);
    rmSync(dir, { recursive: true, force: true });
  });

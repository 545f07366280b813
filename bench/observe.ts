// What watching costs the forwarder: vmm-relayd forwarding iperf3 (bulk)
// and HTTP (wrk, small requests) through two rules, with the daemon-side
// observers idle and then busy in the process that controls the relay, as
// in vmmd: a metrics scrape every 100 ms (150x Prometheus' default rate)
// reading the rules' counters and /proc of a process, and a console stream
// following a log written at 64 KiB/s. Rounds alternate; the table shows
// medians. Run inside the private namespace after `npm run build` and
// `bash bench/setup.sh`:
//
//   scripts/in-netns.sh node dist/bench/observe.js
//
// Bounded: BENCH_SECONDS (default 3) per figure, BENCH_RUNS (default 3)
// rounds; every process it starts is killed by PID on exit.
import { spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ForwardService } from "../server/forward/service.js";
import { Metrics } from "../server/metrics/metrics.js";
import { VmStatsSampler } from "../server/stats/sampler.js";
import { ConsoleReader } from "../server/console/reader.js";
import { SerialFileSource } from "../server/console/source.js";
import type { VmView } from "../server/vm/types.js";

const SECS = Number(process.env.BENCH_SECONDS ?? "3");
const RUNS = Number(process.env.BENCH_RUNS ?? "3");
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const tmp = mkdtempSync(join(tmpdir(), "vmm-observe-"));
const procs: ChildProcess[] = [];
process.on("exit", () => {
  for (const p of procs) p.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = createConnection({ host: "127.0.0.1", port }).once("connect", () => (s.destroy(), r(true))).once("error", () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** Runs a load generator to its end without blocking this process (the observers run meanwhile). */
function run(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    procs.push(p);
    let out = "";
    let err = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const t = setTimeout(() => p.kill("SIGKILL"), (SECS + 30) * 1000);
    p.once("error", reject);
    p.once("close", (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${argv.join(" ")} exited ${code}: ${err.slice(0, 300)}`));
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// ---- the forwarder and its backends ----------------------------------------

const [iperfPort, httpPort, fwdBulk, fwdHttp] = [await freePort(), await freePort(), await freePort(), await freePort()];
const nginxConf = join(tmp, "nginx.conf");
writeFileSync(
  nginxConf,
  `daemon off; master_process off; worker_processes 1; pid ${tmp}/nginx.pid; error_log ${tmp}/nginx.err warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:${httpPort}; location / { return 200 "${"x".repeat(512)}"; } } }
`,
);
const iperf = spawn("iperf3", ["-s", "-B", "127.0.0.1", "-p", String(iperfPort)], { stdio: "ignore" });
const httpd = spawn("nginx", ["-c", nginxConf, "-p", tmp, "-e", `${tmp}/nginx.err`], { stdio: "ignore" });
procs.push(iperf, httpd);
await waitPort(iperfPort);
await waitPort(httpPort);
const svc = new ForwardService({ relay: "native", maxConnectionsPerRule: 30_000 });
await svc.apply("bench", [
  { protocol: "tcp", listenAddress: "127.0.0.1", listenPort: fwdBulk, targetAddress: "127.0.0.1", targetPort: iperfPort },
  { protocol: "tcp", listenAddress: "127.0.0.1", listenPort: fwdHttp, targetAddress: "127.0.0.1", targetPort: httpPort },
]);
log(`relay ${svc.relayKind}, processes ${(await svc.dataPathPids()).join(" ")}`);

// ---- the observers, as vmmd runs them --------------------------------------

// A VM record whose "QEMU" is the iperf3 server: the sampler reads its /proc.
const stat = readFileSync(`/proc/${iperf.pid}/stat`, "utf8");
const startTime = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
const view: VmView = {
  record: { version: 1, id: "bench", createdAt: "", macs: [], spec: { name: "bench", vcpus: 1, memoryMib: 256, kernel: "", initrd: "", cmdline: "", disk: "", nics: [{ mode: "tap", bridge: "br0" }], ports: [] , autoRestart: false } },
  runtime: { version: 1, status: "running", instanceId: "i-1", pid: iperf.pid!, pidStartTime: startTime, startedAt: new Date().toISOString(), hostInterfaces: ["lo"] },
  leases: [],
  events: [],
};
const events = new EventEmitter();
const consoles = new ConsoleReader(new SerialFileSource({ get: () => view, events }, () => join(tmp, "vm")));
mkdirSync(join(tmp, "vm"));
writeFileSync(join(tmp, "vm", "serial.log"), "");
const metrics = new Metrics({ version: "bench", qemuVersion: "", vms: () => [view], sampler: new VmStatsSampler(), forwards: svc, consoleStreams: () => consoles.active });

async function observe(signal: AbortSignal): Promise<{ scrapes: number; consoleBytes: number }> {
  let scrapes = 0;
  let consoleBytes = 0;
  const line = "[    1.234567] a console line of a busy guest, written at 64 KiB/s\n";
  const writer = setInterval(() => appendFileSync(join(tmp, "vm", "serial.log"), line.repeat(Math.ceil(6554 / line.length))), 100);
  const scraper = (async () => {
    while (!signal.aborted) {
      const text = await metrics.render();
      if (!text.includes("vmm_forward_connections_total")) throw new Error("scrape without forward counters");
      scrapes++;
      await sleep(100);
    }
  })();
  const reader = (async () => {
    for await (const c of consoles.read({ id: "bench", instanceId: "", follow: true, maxChunkBytes: 0, tailLines: 0 }, signal)) consoleBytes += c.data.length;
  })();
  await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  clearInterval(writer);
  await Promise.all([scraper, reader]);
  return { scrapes, consoleBytes };
}

// ---- rounds ------------------------------------------------------------------

interface Figures {
  gbits: number;
  rps: number;
  p99ms: number;
  /** CPU this (the controlling) process used per second of the round, ms. */
  cpuMs: number;
}

async function measure(): Promise<Figures> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const ip = JSON.parse(await run(["iperf3", "-c", "127.0.0.1", "-p", String(fwdBulk), "-t", String(SECS), "-J"])) as { end: { sum_received: { bits_per_second: number } } };
  const wrk = await run(["wrk", "-t", "2", "-c", "32", "-d", `${SECS}s`, "--latency", `http://127.0.0.1:${fwdHttp}/`]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(wrk)?.[1]);
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(wrk);
  const p99ms = p99 ? Number(p99[1]) * (p99[2] === "us" ? 0.001 : p99[2] === "s" ? 1000 : 1) : NaN;
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000 / ((performance.now() - t0) / 1000);
  return { gbits: ip.end.sum_received.bits_per_second / 1e9, rps, p99ms, cpuMs };
}

const idle: Figures[] = [];
const busy: Figures[] = [];
let work = { scrapes: 0, consoleBytes: 0 };
for (let i = 0; i < RUNS; i++) {
  log(`round ${i + 1}/${RUNS}: observers idle`);
  idle.push(await measure());
  log(`round ${i + 1}/${RUNS}: observers busy`);
  const ctl = new AbortController();
  const watching = observe(ctl.signal);
  busy.push(await measure());
  ctl.abort();
  const w = await watching;
  work = { scrapes: work.scrapes + w.scrapes, consoleBytes: work.consoleBytes + w.consoleBytes };
}
await svc.close();

/** "median (min-max)" of one figure. */
const cell = (f: Figures[], k: keyof Figures, digits: number) => {
  const xs = f.map((x) => x[k]);
  const fmt = (x: number) => x.toFixed(digits);
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})`;
};
const row = (name: string, f: Figures[]) => `| ${name} | ${cell(f, "gbits", 2)} | ${cell(f, "rps", 0)} | ${cell(f, "p99ms", 2)} | ${cell(f, "cpuMs", 1)} |`;
const delta = (k: keyof Figures) => `${(((median(busy.map((x) => x[k])) - median(idle.map((x) => x[k]))) / median(idle.map((x) => x[k]))) * 100).toFixed(1)} %`;
process.stdout.write(
  [
    `Forwarder (vmm-relayd) with the daemon's observers idle and busy; median (min-max) of ${RUNS} interleaved rounds, ${SECS} s per figure.`,
    "",
    "| observers | iperf3 Gbit/s | HTTP req/s (wrk -c 32) | HTTP p99 ms | controlling process CPU ms/s |",
    "|---|---|---|---|---|",
    row("idle", idle),
    row("busy: scrape every 100 ms + console follow at 64 KiB/s", busy),
    `| difference of medians | ${delta("gbits")} | ${delta("rps")} | ${delta("p99ms")} | |`,
    "",
    `While busy: ${work.scrapes} scrapes, ${(work.consoleBytes / 1024).toFixed(0)} KiB of console streamed.`,
    "",
  ].join("\n") + "\n",
);
process.exit(0);

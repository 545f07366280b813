// Forwarder benchmark: the vmm forwarder (native splice relay and sockets
// fallback) against direct connections, socat, haproxy (mode tcp), rinetd and
// nginx stream, all on 127.0.0.1. Prints a markdown table on stdout (progress
// on stderr). Run inside the private namespace, after `npm run build` and
// `bash bench/setup.sh`:
//
//   scripts/in-netns.sh npm run bench
//
// Every peer is started here, in the foreground, from a config file in a
// temp dir, and killed by PID; every load is bounded in time (BENCH_SECONDS,
// default 3 s per figure).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, closeSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const SECS = Number(process.env.BENCH_SECONDS ?? "3");
// 10,000 idle forwarded connections need 20,000+ fds; a hard RLIMIT_NOFILE of
// 20000 without CAP_SYS_RESOURCE (this machine) caps one process just below,
// so a single-process relay cannot hold them all (vmm-relayd spreads them
// over its processes); the table notes how many each relay held.
const IDLE_CONNS = Number(process.env.BENCH_IDLE_CONNS ?? "10000");
// Forwarded connections (ok, refused backend, client reset) after which the
// native relay must hold exactly as many fds as before; 0 skips.
const CHURN = Number(process.env.BENCH_CHURN ?? "100000");
// Rounds over all peers (interleaved); the table shows per-column medians.
const RUNS = Number(process.env.BENCH_RUNS ?? "1");
// Comma-separated peer names to run (default: all).
const ONLY = process.env.BENCH_PEERS?.split(",");
// Connections a single-process peer can be configured for within FD_LIMIT
// (two fds each, plus its own): haproxy refuses to start, nginx warns, beyond.
const PEER_CONNS = (limit: number) => Math.min(IDLE_CONNS + 50, Math.floor((limit - 200) / 2));
const FD_LIMIT = Number(spawnSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim()) || 20000;

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- processes ------------------------------------------------------------

const tmp = mkdtempSync(join(tmpdir(), "vmm-bench-"));
const procs = new Set<ChildProcess>();

/**
 * Starts `argv` in the foreground with a raised fd limit; output to a log
 * file. Each program gets a process group of its own (its pid), so stopping
 * it also reaches what it forked (socat's per-session children, nginx
 * workers) and nothing else.
 */
function start(name: string, argv: string[]): ChildProcess {
  const out = openSync(join(tmp, `${name}.log`), "a");
  // bash only raises the limit and execs: the PID is the program's own.
  const child = spawn("bash", ["-c", `ulimit -n ${FD_LIMIT} && exec "$@"`, "bench", ...argv], {
    stdio: ["ignore", out, out],
    detached: true,
  });
  closeSync(out);
  procs.add(child);
  child.once("exit", () => procs.delete(child));
  return child;
}

/** Signals the process group `child` leads; false when no member is left. */
function signalGroup(child: ChildProcess, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-child.pid!, sig);
    return true;
  } catch {
    return false; // ESRCH: the group is gone
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    signalGroup(child, "SIGTERM");
    const t = setTimeout(() => signalGroup(child, "SIGKILL"), 3000);
    await exited;
    clearTimeout(t);
  }
  // Children that outlive their leader (nginx workers finishing, socat
  // sessions) go too; zombies count as gone (they only need reaping).
  for (let i = 0; i < 60 && groupAlive(child.pid!); i++) {
    signalGroup(child, i < 20 ? "SIGTERM" : "SIGKILL");
    await sleep(50);
  }
}

/** Whether a non-zombie process is left in process group `pgid`. */
function groupAlive(pgid: number): boolean {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgid && f[0] !== "Z") return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

function killAll(): void {
  for (const c of procs) signalGroup(c, "SIGKILL");
}
process.on("exit", () => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

/** Runs a load generator to completion (bounded by its own duration + 30 s). */
function run(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: (SECS + 30) * 1000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}: ${r.stderr.slice(0, 300)}`);
  return r.stdout;
}

async function waitPort(port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = createConnection({ host: "127.0.0.1", port });
      s.once("connect", () => {
        s.destroy();
        r(true);
      });
      s.once("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await sleep(50);
  }
}

// ---- /proc accounting -----------------------------------------------------

/** The PID and all its descendants. */
function tree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(d), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  return out;
}

function cpuTicks(pids: number[]): number {
  let t = 0;
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      t += Number(f[11]) + Number(f[12]); // utime + stime
    } catch {
      // gone
    }
  }
  return t;
}

function rssKb(pids: number[]): number {
  let kb = 0;
  for (const p of pids) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      kb += m ? Number(m[1]) : 0;
    } catch {
      // gone
    }
  }
  return kb;
}

const fdNotes: string[] = [];
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || "100");

// ---- backends -------------------------------------------------------------

const B = { iperf: 17001, http: 17002, udp: 17003, idle: 17004, refused: 17009 };

async function startBackends(udpRr: string): Promise<void> {
  start("iperf3-server", ["iperf3", "-s", "-B", "127.0.0.1", "-p", String(B.iperf)]);
  const conf = join(tmp, "backend-nginx.conf");
  writeFileSync(
    conf,
    `daemon off; master_process on; worker_processes 1; pid ${tmp}/backend-nginx.pid;
error_log ${tmp}/backend-nginx.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:${B.http} reuseport backlog=4096; location / { return 200 "ok\\n"; } } }
`,
  );
  start("backend-nginx", ["nginx", "-c", conf, "-p", tmp, "-e", `${tmp}/backend-nginx.err`]);
  start("udp-echo", [udpRr, "server", String(B.udp)]);
  // Holds every connection open without reading: the far end of "idle" connections.
  start("idle-backend", [
    process.execPath,
    "-e",
    `const s=[];require("net").createServer(c=>{s.push(c);c.on("error",()=>{})}).listen({port:${B.idle},host:"127.0.0.1",backlog:4096})`,
  ]);
  await Promise.all([waitPort(B.iperf), waitPort(B.http), waitPort(B.idle)]);
}

// ---- peers ----------------------------------------------------------------

interface Ports {
  iperf: number;
  http: number;
  udp: number | undefined;
  idle: number;
}

interface Running {
  ports: Ports;
  /** The relay's whole process tree (CPU). */
  pids: () => number[];
  /** The processes carrying the bytes (RSS, fds); default pids(). */
  dataPids?: () => number[];
  /** A rule whose backend refuses (fd accounting). */
  refusedPort?: number;
  stop: () => Promise<void>;
}

interface Peer {
  name: string;
  /** Why a column is not measured, by column. */
  skip?: Partial<Record<"udp" | "idle", string>>;
  start(base: number): Promise<Running>;
}

const portsAt = (base: number): Ports => ({ iperf: base, http: base + 1, udp: base + 2, idle: base + 3 });

let forwarderStarts = 0;

function forwarderPeer(kind: "native" | "sockets"): Peer {
  return {
    name: `vmm (${kind})`,
    async start(base) {
      const p = portsAt(base);
      const rule = (protocol: "tcp" | "udp", listenPort: number, targetPort: number) => ({
        protocol,
        listenAddress: "127.0.0.1",
        listenPort,
        targetAddress: "127.0.0.1",
        targetPort,
      });
      const refusedPort = base + 4;
      const rules = [
        rule("tcp", p.iperf, B.iperf),
        rule("tcp", p.http, B.http),
        rule("udp", p.udp!, B.udp),
        rule("tcp", p.idle, B.idle),
        rule("tcp", refusedPort, B.refused),
      ];
      const name = `vmm-${kind}-${++forwarderStarts}`; // a fresh log per start: it carries the "ready" line
      const child = start(name, [process.execPath, join(here, "forwarder.js"), kind, JSON.stringify(rules)]);
      // forwarder.js prints "ready <kind> <pid>...": the data-path processes.
      let data: number[] = [];
      const end = Date.now() + 10_000;
      for (;;) {
        const m = /^ready \S+ ([\d ]+)$/m.exec(readFileSync(join(tmp, `${name}.log`), "utf8"));
        if (m) {
          data = m[1]!.trim().split(" ").map(Number);
          break;
        }
        if (Date.now() > end || child.exitCode !== null) throw new Error(`${name} did not get ready`);
        await sleep(50);
      }
      await waitPort(p.http);
      return { ports: p, pids: () => tree(child.pid!), dataPids: () => data, refusedPort, stop: () => stop(child) };
    },
  };
}

const peers: Peer[] = [
  {
    name: "direct",
    async start() {
      return { ports: { iperf: B.iperf, http: B.http, udp: B.udp, idle: B.idle }, pids: () => [], stop: async () => {} };
    },
  },
  forwarderPeer("native"),
  forwarderPeer("sockets"),
  {
    name: "socat",
    skip: { idle: "a process per connection" },
    async start(base) {
      const p = portsAt(base);
      const tcp = (l: number, t: number) => ["socat", `TCP-LISTEN:${l},bind=127.0.0.1,fork,reuseaddr,backlog=4096`, `TCP:127.0.0.1:${t}`];
      const kids = [
        start("socat-iperf", tcp(p.iperf, B.iperf)),
        start("socat-http", tcp(p.http, B.http)),
        start("socat-udp", ["socat", `UDP-LISTEN:${p.udp},bind=127.0.0.1,fork,reuseaddr`, `UDP:127.0.0.1:${B.udp}`]),
      ];
      await Promise.all([waitPort(p.iperf), waitPort(p.http)]);
      return { ports: p, pids: () => kids.flatMap((k) => tree(k.pid!)), stop: async () => void (await Promise.all(kids.map(stop))) };
    },
  },
  {
    name: "haproxy (mode tcp)",
    skip: { udp: "no UDP in haproxy community" },
    async start(base) {
      const p = portsAt(base);
      const conf = join(tmp, "haproxy.cfg");
      const l = (name: string, port: number, target: number) =>
        `listen ${name}\n  bind 127.0.0.1:${port}\n  server s 127.0.0.1:${target}\n`;
      writeFileSync(
        conf,
        `global\n  maxconn ${PEER_CONNS(FD_LIMIT)}\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 10m\n  timeout server 10m\n  maxconn ${PEER_CONNS(FD_LIMIT)}\n` +
          l("iperf", p.iperf, B.iperf) + l("http", p.http, B.http) + l("idle", p.idle, B.idle),
      );
      const child = start("haproxy", ["haproxy", "-db", "-f", conf]);
      await waitPort(p.http);
      return { ports: { ...p, udp: undefined }, pids: () => tree(child.pid!), stop: () => stop(child) };
    },
  },
  {
    name: "rinetd",
    async start(base) {
      const p = portsAt(base);
      const conf = join(tmp, "rinetd.conf");
      writeFileSync(
        conf,
        `127.0.0.1 ${p.iperf} 127.0.0.1 ${B.iperf}\n127.0.0.1 ${p.http} 127.0.0.1 ${B.http}\n` +
          `127.0.0.1 ${p.udp}/udp 127.0.0.1 ${B.udp}/udp\n127.0.0.1 ${p.idle} 127.0.0.1 ${B.idle}\n`,
      );
      const child = start("rinetd", ["rinetd", "-f", "-c", conf]);
      await waitPort(p.http);
      return { ports: p, pids: () => tree(child.pid!), stop: () => stop(child) };
    },
  },
  {
    name: "nginx stream",
    async start(base) {
      const p = portsAt(base);
      const conf = join(tmp, "nginx-stream.conf");
      const s = (port: number, target: number) =>
        `  server { listen 127.0.0.1:${port} backlog=4096; proxy_pass 127.0.0.1:${target}; }\n`;
      writeFileSync(
        conf,
        `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off; master_process on; worker_processes auto; worker_rlimit_nofile ${FD_LIMIT}; pid ${tmp}/nginx-stream.pid;
error_log ${tmp}/nginx-stream.err warn;
events { worker_connections ${Math.min(2 * IDLE_CONNS + 100, FD_LIMIT - 100)}; }
stream {
${s(p.iperf, B.iperf)}${s(p.http, B.http)}${s(p.idle, B.idle)}  server { listen 127.0.0.1:${p.udp} udp; proxy_pass 127.0.0.1:${B.udp}; proxy_responses 1; proxy_timeout 5s; }
}
`,
      );
      const child = start("nginx-stream", ["nginx", "-c", conf, "-p", tmp, "-e", `${tmp}/nginx-stream.err`]);
      await waitPort(p.http);
      return { ports: p, pids: () => tree(child.pid!), stop: () => stop(child) };
    },
  },
];

// ---- loads ----------------------------------------------------------------

function iperf(port: number, streams: number): number {
  const out = run(["iperf3", "-c", "127.0.0.1", "-p", String(port), "-t", String(SECS), "-P", String(streams), "-J"]);
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

const toUs = (v: string, unit: string) => Number(v) * (unit === "us" ? 1 : unit === "ms" ? 1000 : 1e6);

function wrk(port: number, close: boolean): { rps: number; p50: number; p99: number } {
  const argv = ["wrk", "-t1", "-c32", `-d${SECS}s`, "--latency"];
  if (close) argv.push("-H", "Connection: close");
  argv.push(`http://127.0.0.1:${port}/`);
  const out = run(argv);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const pct = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? toUs(m[1]!, m[2]!) : NaN;
  };
  const errs = /Non-2xx or 3xx responses: (\d+)|Socket errors: .*/.exec(out);
  if (errs) log(`wrk :${port}: ${errs[0]}`);
  return { rps, p50: pct("50"), p99: pct("99") };
}

function udpRr(bin: string, port: number): number {
  const [rate, lost] = run([bin, "client", String(port), String(SECS), "16"]).trim().split(" ");
  if (Number(lost) > 0) log(`udp :${port}: ${lost} requests lost and resent`);
  return Number(rate);
}

/** Opens `n` connections (64 at a time) and keeps them; resolves with the sockets. */
async function openIdle(port: number, n: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const s = createConnection({ host: "127.0.0.1", port });
      const t = setTimeout(() => {
        s.destroy();
        resolve();
      }, 10_000);
      s.on("error", () => {});
      s.once("connect", () => {
        clearTimeout(t);
        socks.push(s);
        resolve();
      });
      s.once("close", () => {
        clearTimeout(t);
        resolve();
      });
    });
  for (let i = 0; i < n; i += 64) await Promise.all(Array.from({ length: Math.min(64, n - i) }, one));
  return socks;
}

/**
 * `n` forwarded connections, 200 at a time: every 4th to a rule whose backend
 * refuses, every 4th reset by the client after one byte, the rest a complete
 * HTTP request with "Connection: close" read to the end.
 */
async function churn(httpPort: number, refusedPort: number, n: number): Promise<{ ok: number; refused: number; reset: number; failed: number }> {
  const out = { ok: 0, refused: 0, reset: 0, failed: 0 };
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const kind = i % 4 === 0 ? "refused" : i % 4 === 1 ? "reset" : "ok";
      const s = createConnection({ host: "127.0.0.1", port: kind === "refused" ? refusedPort : httpPort });
      const t = setTimeout(() => s.destroy(), 10_000);
      let got = "";
      s.on("error", () => {});
      s.on("data", (b: Buffer) => (got += b.toString("latin1")));
      s.once("connect", () => {
        if (kind === "reset") s.write("G", () => s.resetAndDestroy());
        else if (kind === "ok") s.write("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
      });
      s.once("close", () => {
        clearTimeout(t);
        if (kind === "ok" && got.startsWith("HTTP/1.1 200")) out.ok++;
        else if (kind === "refused" && got === "") out.refused++;
        else if (kind === "reset") out.reset++;
        else out.failed++;
        resolve();
      });
    });
  for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, (_, j) => one(i + j)));
  return out;
}

const fdsOf = (pids: number[]): number =>
  pids.reduce((n, p) => {
    try {
      return n + readdirSync(`/proc/${p}/fd`).length;
    } catch {
      return n;
    }
  }, 0);

// ---- main -----------------------------------------------------------------

interface Row {
  name: string;
  tcp1?: number;
  tcp4?: number;
  cps?: number;
  ka?: number;
  p50?: number;
  p99?: number;
  udp?: number;
  cpu?: number;
  rss?: number;
  rssIdle?: number;
  notes: string[];
}

const numeric = ["tcp1", "tcp4", "cps", "ka", "p50", "p99", "udp", "cpu", "rss", "rssIdle"] as const;

function median(xs: number[]): number | undefined {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}

/** Per-column medians of several rounds of one peer. */
function medianRow(rows: Row[]): Row {
  const out: Row = { name: rows[0]!.name, notes: [...new Set(rows.flatMap((r) => r.notes))] };
  for (const k of numeric) {
    const m = median(rows.map((r) => r[k]).filter((x): x is number => x !== undefined));
    if (m !== undefined) out[k] = m;
  }
  return out;
}

async function measure(peer: Peer, base: number, udpBin: string): Promise<Row> {
  const row: Row = { name: peer.name, notes: [] };
  const r = await peer.start(base);
  try {
    const tryit = async (what: string, fn: () => void | Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        row.notes.push(`${what}: ${(e as Error).message.split("\n")[0]}`);
      }
    };
    log(`${peer.name}: tcp bulk`);
    await tryit("tcp1", () => void (row.tcp1 = iperf(r.ports.iperf, 1)));
    await tryit("tcp4", () => void (row.tcp4 = iperf(r.ports.iperf, 4)));
    log(`${peer.name}: connections per second`);
    await tryit("cps", () => void (row.cps = wrk(r.ports.http, true).rps));
    log(`${peer.name}: keep-alive`);
    const c0 = cpuTicks(r.pids());
    const t0 = Date.now();
    await tryit("keep-alive", () => {
      const k = wrk(r.ports.http, false);
      Object.assign(row, { ka: k.rps, p50: k.p50, p99: k.p99 });
    });
    if (peer.name !== "direct") row.cpu = ((cpuTicks(r.pids()) - c0) / CLK_TCK / ((Date.now() - t0) / 1000)) * 100;
    if (r.ports.udp !== undefined && !peer.skip?.udp) {
      log(`${peer.name}: udp`);
      await tryit("udp", () => void (row.udp = udpRr(udpBin, r.ports.udp!)));
    }
    const dataPids = r.dataPids ?? r.pids;
    if (peer.name !== "direct") row.rss = rssKb(dataPids()) / 1024;
    if (peer.name !== "direct" && !peer.skip?.idle) {
      log(`${peer.name}: ${IDLE_CONNS} idle connections`);
      await tryit("idle", async () => {
        const socks = await openIdle(r.ports.idle, IDLE_CONNS);
        try {
          await sleep(1000);
          if (socks.length < IDLE_CONNS) row.notes.push(`idle: only ${socks.length} of ${IDLE_CONNS} connections opened`);
          row.rssIdle = rssKb(dataPids()) / 1024;
        } finally {
          for (const s of socks) s.destroy();
        }
        await sleep(500);
      });
    }
    if (CHURN > 0 && r.refusedPort !== undefined && peer.name === "vmm (native)") {
      await tryit("fds", async () => {
        await churn(r.ports.http, r.refusedPort!, 1000); // warm-up: pipe pool, allocator
        await sleep(300);
        const before = fdsOf(dataPids());
        log(`${peer.name}: ${CHURN} forwarded connections (fd accounting; ${before} fds before)`);
        const t0 = Date.now();
        const res = await churn(r.ports.http, r.refusedPort!, CHURN);
        const secs = (Date.now() - t0) / 1000;
        const end = Date.now() + 5000;
        while (fdsOf(dataPids()) !== before && Date.now() < end) await sleep(50);
        const after = fdsOf(dataPids());
        fdNotes.push(
          `* ${peer.name}: fds of the relay processes (${dataPids().join(", ")}) before/after ${CHURN} forwarded connections ` +
            `(${res.ok} ok, ${res.refused} refused by the backend, ${res.reset} reset by the client, ${res.failed} failed; ${secs.toFixed(1)} s): ` +
            `${before} -> ${after}${after === before ? " (equal)" : " (DIFFERENT)"}`,
        );
      });
    }
  } finally {
    await r.stop();
  }
  return row;
}

function fmt(v: number | undefined, direct: number | undefined, digits: number): string {
  if (v === undefined || Number.isNaN(v)) return "n/a";
  const s = v.toFixed(digits);
  if (direct === undefined || Number.isNaN(direct) || direct === 0) return s;
  const ratio = v / direct;
  return `${s} (${ratio.toFixed(2)}×)`;
}

async function main(): Promise<void> {
  if (process.env.VMM_BENCH_CHILD !== "1") {
    // Re-exec with a raised fd limit: the idle test holds IDLE_CONNS sockets here.
    const r = spawnSync("bash", ["-c", `ulimit -n ${FD_LIMIT} && exec "$@"`, "bench", process.execPath, ...process.argv.slice(1)], {
      stdio: "inherit",
      env: { ...process.env, VMM_BENCH_CHILD: "1" },
    });
    process.exit(r.status ?? 1);
  }
  if (process.env.VMM_IN_NETNS !== "1") log("warning: not inside scripts/in-netns.sh; using the host's 127.0.0.1");
  const missing = ["iperf3", "wrk", "socat", "haproxy", "rinetd", "nginx", "cc"].filter(
    (b) => spawnSync("bash", ["-c", `command -v ${b}`]).status !== 0,
  );
  if (missing.length > 0) throw new Error(`missing ${missing.join(", ")}: run bash bench/setup.sh`);
  if (process.env.VMM_IN_NETNS === "1") {
    // Namespace-local: many short connections need ephemeral ports clear of ours.
    writeFileSync("/proc/sys/net/ipv4/ip_local_port_range", "21000 65000");
    writeFileSync("/proc/sys/net/ipv4/tcp_tw_reuse", "1");
  }
  const udpBin = join(tmp, "udp-rr");
  run(["cc", "-O2", "-o", udpBin, join(repo, "bench", "udp-rr.c")]);
  await startBackends(udpBin);
  await sleep(300);

  const chosen = peers.filter((p) => p.name === "direct" || !ONLY || ONLY.some((o) => p.name.startsWith(o)));
  const rounds = new Map<string, Row[]>(chosen.map((p) => [p.name, []]));
  for (let run = 0; run < RUNS; run++) {
    let base = 20000;
    for (const peer of chosen) {
      log(`round ${run + 1}/${RUNS}, load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
      rounds.get(peer.name)!.push(await measure(peer, base, udpBin));
      base += 10;
      await sleep(500);
    }
  }
  const rows = chosen.map((p) => medianRow(rounds.get(p.name)!));

  const d = rows[0]!;
  const lines = [
    `| relay | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | conn/s (Connection: close) | keep-alive req/s | p50 µs | p99 µs | UDP round trips/s | CPU % (keep-alive) | RSS MB | RSS MB, ${IDLE_CONNS} idle conns |`,
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const skip = chosen.find((p) => p.name === r.name)?.skip;
    lines.push(
      `| ${r.name} | ${fmt(r.tcp1, d.tcp1, 1)} | ${fmt(r.tcp4, d.tcp4, 1)} | ${fmt(r.cps, d.cps, 0)} | ${fmt(r.ka, d.ka, 0)} | ${fmt(r.p50, d.p50, 0)} | ${fmt(r.p99, d.p99, 0)} | ${skip?.udp ? "n/a" : fmt(r.udp, d.udp, 0)} | ${r === d ? "-" : fmt(r.cpu, undefined, 0)} | ${r === d ? "-" : fmt(r.rss, undefined, 1)} | ${r === d ? "-" : skip?.idle ? "n/a" : fmt(r.rssIdle, undefined, 1)} |`,
    );
  }
  process.stdout.write(
    `${lines.join("\n")}\n\n` +
      `${SECS} s per figure on 127.0.0.1, median of ${RUNS} round(s); ratio to direct in parentheses (throughput: higher is better; latency: lower is better). ` +
      `CPU is the relay's whole process tree during the keep-alive run, in % of one core. ` +
      `RSS is the sum of VmRSS of the processes carrying the bytes: vmm (native) = the vmm-relayd processes only (not the Node ` +
      `process that controls them), vmm (sockets) = its Node process, peers = their whole process tree. ` +
      `Load average at the end: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}.\n`,
  );
  const notes = [...fdNotes, ...rows.flatMap((r) => r.notes.map((n) => `* ${r.name}: ${n}`))];
  for (const p of chosen) for (const [k, why] of Object.entries(p.skip ?? {})) notes.push(`* ${p.name}: ${k} not measured (${why})`);
  if (notes.length > 0) process.stdout.write(`\n${notes.join("\n")}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);

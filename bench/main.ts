// Forwarder benchmark: the vmm forwarder (vmm-relayd, the nat path, the
// sockets fallback) against a direct connection, a plain C splice relay,
// haproxy (mode tcp), nginx stream, rinetd and socat. Every relay listens
// on 127.0.0.1 and forwards to backends in a namespace of their own behind a
// veth (like a guest behind its bridge). One command, one markdown table on
// stdout (progress on stderr). Run inside the private namespace, after
// `npm run build` and `bash bench/setup.sh`:
//
//   scripts/in-netns.sh npm run bench
//
// Interleaving: a round starts every peer and stops its processes
// (SIGSTOP; the nat path's rules instead exist only during its own turns:
// its nft table turns conntrack on for every peer's traffic); then for
// each group of figures (TCP bulk, conn/s, keep-alive, latency, UDP) every
// peer in turn runs only while its own figures are taken, so that all
// peers' figures of a group fall within a minute or two (load on this
// shared host drifts over a round); odd rounds go backwards. RSS, idle RSS
// and the fd audit follow at the end of the round, after all of the
// peer's loads.
//
// A second table: TCP bulk from a client on another host (a namespace of
// its own, routed through this one), for direct, vmm (native) and vmm
// (nat), which is what the nat path is for; the main table's clients are
// all on 127.0.0.1.
//
// Environment: BENCH_SECONDS (2) per figure, BENCH_RUNS (3) rounds (cells
// are medians), BENCH_PEERS="vmm (native),haproxy" (prefixes;
// direct always runs), BENCH_IDLE_CONNS (10000), BENCH_CHURN (20000; 0
// skips the fd audit), BENCH_RELAY_WORKERS (vmm-relayd's processes).
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { churn, iperf, openIdle, udpRr, wrk } from "./loads.js";
import { B, CLIENT_IP, CLIENT_NS, GUEST_IP, IDLE_CONNS, peers, REMOTE_HOST_IP, startBackends, type Peer, type Running } from "./peers.js";
import { cpuSeconds, FD_LIMIT, fdsOf, killAll, log, pin, rssMb, run, SECS, sleep, tmp } from "./procs.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const CHURN = Number(process.env.BENCH_CHURN ?? "20000");
const RUNS = Number(process.env.BENCH_RUNS ?? "3");
const ONLY = process.env.BENCH_PEERS?.split(",");
const NS = "vmmbench";
/** CPUs of the latency test: the relay on one, the client and the backend on the other. */
const RELAY_CPU = "1";
const LOAD_CPU = "0";

interface Row {
  name: string;
  tcp1?: number;
  tcp4?: number;
  /** TCP from a client on another host (CLIENT_NS). */
  rtcp1?: number;
  rtcp4?: number;
  cpuGb?: number;
  cps1?: number;
  cps32?: number;
  cps128?: number;
  cpuConn?: number;
  ka?: number;
  cpuReq?: number;
  p50?: number;
  p99?: number;
  udp?: number;
  rss?: number;
  rssIdle?: number;
  /** Forwarded connections the relay held when rssIdle was read (fewest of the rounds). */
  idleHeld?: number;
  notes: string[];
}
const numeric = ["tcp1", "tcp4", "rtcp1", "rtcp4", "cpuGb", "cps1", "cps32", "cps128", "cpuConn", "ka", "cpuReq", "p50", "p99", "udp", "rss", "rssIdle"] as const;

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
  const held = rows.map((r) => r.idleHeld).filter((x): x is number => x !== undefined);
  if (held.length > 0) out.idleHeld = Math.min(...held);
  return out;
}

const fdNotes: string[] = [];

/** Columns where less is better (CPU, latency, memory); in the others more is. */
const LOWER_BETTER = new Set<(typeof numeric)[number]>(["cpuGb", "cpuConn", "cpuReq", "p50", "p99", "rss", "rssIdle"]);
/** The main table's columns, in its order, with their headings and decimals (for the per-round verdict). */
const COLUMNS: [(typeof numeric)[number], string, number][] = [
  ["tcp1", "TCP 1 stream", 1],
  ["tcp4", "TCP 4 streams", 1],
  ["cpuGb", "CPU s/GB", 2],
  ["cps1", "conn/s, 1 client", 0],
  ["cps32", "conn/s, 32 clients", 0],
  ["cps128", "conn/s, 128 clients", 0],
  ["cpuConn", "CPU µs/conn", 1],
  ["ka", "keep-alive req/s", 0],
  ["cpuReq", "CPU µs/req", 1],
  ["p50", "p50 µs", 0],
  ["p99", "p99 µs", 0],
  ["udp", "UDP round trips/s", 0],
  ["rss", "RSS MB", 1],
  ["rssIdle", "RSS MB, idle conns", 1],
];

/**
 * The relay `ours` against the best other peer (not direct, not another
 * vmm row), column by column: both medians, their ratio, and in how many
 * rounds it was at or beyond that round's best peer. One table's medians
 * hide how often a lead holds; on a host whose figures move 10-20% from
 * round to round, this says it. A peer's idle RSS counts only when it held
 * every idle connection.
 */
function verdict(ours: string, rounds: Map<string, Row[]>): string {
  const mine = rounds.get(ours);
  if (!mine) return "";
  const others = [...rounds].filter(([n]) => n !== "direct" && !n.startsWith("vmm"));
  const value = (r: Row | undefined, k: (typeof numeric)[number]): number | undefined => {
    const v = r?.[k];
    if (v === undefined || Number.isNaN(v)) return undefined;
    return k === "rssIdle" && r!.idleHeld !== undefined && r!.idleHeld < IDLE_CONNS ? undefined : v;
  };
  const medianOf = (rs: Row[], k: (typeof numeric)[number]) => median(rs.map((r) => value(r, k)).filter((v): v is number => v !== undefined));
  const better = (k: (typeof numeric)[number], a: number, b: number) => (LOWER_BETTER.has(k) ? a <= b : a >= b);
  const best = (k: (typeof numeric)[number], vs: (number | undefined)[]) => {
    const xs = vs.filter((v): v is number => v !== undefined);
    if (xs.length === 0) return undefined;
    return LOWER_BETTER.has(k) ? Math.min(...xs) : Math.max(...xs);
  };
  const lines = [`| column | ${ours} | best other peer | ratio | rounds at or beyond that round's best peer |`, "|---|---|---|---|---|"];
  for (const [k, heading, digits] of COLUMNS) {
    const m = medianOf(mine, k);
    const peerMedians = others.map(([n, rs]) => [n, medianOf(rs, k)] as const);
    const top = best(k, peerMedians.map(([, v]) => v));
    if (m === undefined) continue;
    if (top === undefined) {
      lines.push(`| ${heading} | ${m.toFixed(digits)} | none: no other peer ${k === "rssIdle" ? "held every idle connection" : "has this column"} | n/a | n/a |`);
      continue;
    }
    const who = peerMedians.find(([, v]) => v === top)![0];
    let led = 0;
    let counted = 0;
    mine.forEach((r, i) => {
      const v = value(r, k);
      const b = best(k, others.map(([, rs]) => value(rs[i], k)));
      if (v === undefined || b === undefined) return;
      counted++;
      if (better(k, v, b)) led++;
    });
    lines.push(`| ${heading} | ${m.toFixed(digits)} | ${top.toFixed(digits)} (${who}) | ${(m / top).toFixed(2)}× | ${led} of ${counted} |`);
  }
  return lines.join("\n");
}

/**
 * A peer during one round: its processes are stopped (SIGSTOP) except while
 * one of its figures runs. `r` is undefined between the turns of a perTurn
 * peer.
 */
interface Live {
  peer: Peer;
  base: number;
  r: Running | undefined;
  row: Row;
}

/** Every process of a started peer (its tree and its data path). */
const livePids = (s: Live): number[] => (s.r ? [...new Set([...s.r.pids(), ...(s.r.dataPids?.() ?? [])])] : []);

/**
 * Stops or continues every process of a peer. Peers wait stopped while the
 * others are measured: an idle peer takes no CPU (haproxy's busy-polling
 * spins even with no connection), and every figure of all peers is taken
 * within a minute or two of each other instead of a whole round apart.
 */
function signalLive(s: Live, sig: "SIGSTOP" | "SIGCONT"): void {
  for (const pid of livePids(s)) {
    try {
      process.kill(pid, sig);
      if (sig === "SIGSTOP") held.add(pid);
      else held.delete(pid);
    } catch {
      // gone
    }
  }
}

/**
 * Processes stopped right now. On an exit in mid-round (SIGINT, SIGTERM)
 * they get SIGKILL: vmm-relayd runs in a session of its own, outside the
 * process groups killAll ends, and a stopped process would wait forever.
 */
const held = new Set<number>();
function killHeld(): void {
  for (const pid of held) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Runs `fn`, noting its error on the row instead of failing the round. */
async function tryit(row: Row, what: string, fn: () => void | Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    row.notes.push(`${what}: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** The figures measured peer after peer, in this order; each peer runs only during its own. */
const GROUPS = ["tcp bulk", "tcp bulk, remote client", "connections per second", "keep-alive", "latency (pinned)", "udp"] as const;
type Group = (typeof GROUPS)[number];

async function measureGroup(g: Group, s: Live & { r: Running }, bins: { udp: string }, backend: { httpPids: () => number[] }): Promise<void> {
  const { peer, r, row } = s;
  const h = r.ports.host;
  const relay = peer.name !== "direct";
  const cpuOk = relay && !peer.skip?.cpu;
  if (g === "udp" && (r.ports.udp === undefined || peer.skip?.udp)) return;
  if (g === "tcp bulk, remote client" && !r.ports.remote) return;
  log(`${peer.name}: ${g}`);
  switch (g) {
    case "tcp bulk": {
      let cpu = 0;
      let bytes = 0;
      for (const [streams, k] of [[1, "tcp1"], [4, "tcp4"]] as const) {
        await tryit(row, k, () => {
          const c0 = cpuSeconds(r.pids());
          const x = iperf(h, r.ports.iperf, streams);
          cpu += cpuSeconds(r.pids()) - c0;
          bytes += x.bytes;
          row[k] = x.gbps;
        });
      }
      if (cpuOk && bytes > 0) row.cpuGb = cpu / (bytes / 1e9);
      return;
    }
    case "tcp bulk, remote client": {
      const remote = r.ports.remote;
      if (!remote) return;
      for (const [streams, k] of [[1, "rtcp1"], [4, "rtcp4"]] as const) {
        await tryit(row, `remote ${k}`, () => {
          row[k] = iperf(remote.host, remote.iperf, streams, ["ip", "netns", "exec", CLIENT_NS]).gbps;
        });
      }
      return;
    }
    case "connections per second":
      for (const [c, k] of [[1, "cps1"], [32, "cps32"], [128, "cps128"]] as const) {
        await tryit(row, `conn/s c=${c}`, () => {
          const c0 = cpuSeconds(r.pids());
          const w = wrk(h, r.ports.http, c, true);
          if (w.errors) row.notes.push(`conn/s c=${c}: ${w.errors}`);
          row[k] = w.rps;
          if (c === 32 && cpuOk) row.cpuConn = ((cpuSeconds(r.pids()) - c0) / w.requests) * 1e6;
        });
      }
      return;
    case "keep-alive":
      await tryit(row, "keep-alive", () => {
        const c0 = cpuSeconds(r.pids());
        const w = wrk(h, r.ports.http, 32, false);
        if (w.errors) row.notes.push(`keep-alive: ${w.errors}`);
        row.ka = w.rps;
        if (cpuOk) row.cpuReq = ((cpuSeconds(r.pids()) - c0) / w.requests) * 1e6;
      });
      return;
    case "latency (pinned)":
      await tryit(row, "latency", () => {
        pin(r.pids(), RELAY_CPU);
        pin(backend.httpPids(), LOAD_CPU);
        try {
          const w = wrk(h, r.ports.http, 1, false, ["taskset", "-c", LOAD_CPU]);
          row.p50 = w.p50;
          row.p99 = w.p99;
        } finally {
          pin(r.pids(), "0,1");
          pin(backend.httpPids(), "0,1");
        }
      });
      return;
    case "udp":
      await tryit(row, "udp", () => {
        const u = udpRr(bins.udp, h, r.ports.udp!);
        if (u.lost > 0) row.notes.push(`udp: ${u.lost} requests lost and resent`);
        row.udp = u.rate;
      });
      return;
  }
}

/** After every load of the round: RSS, RSS holding idle connections, the fd audit. */
async function measureFootprint(s: Live & { r: Running }): Promise<void> {
  const { peer, r, row } = s;
  const h = r.ports.host;
  const relay = peer.name !== "direct";
  const dataPids = r.dataPids ?? r.pids;
  if (relay && !peer.skip?.rss) row.rss = rssMb(dataPids());
  if (relay && !peer.skip?.idle) {
    log(`${peer.name}: ${IDLE_CONNS} idle connections`);
    await tryit(row, "idle", async () => {
      const socks = await openIdle(h, r.ports.idle, IDLE_CONNS);
      try {
        await sleep(1000);
        if (socks.length < IDLE_CONNS) row.notes.push(`idle: only ${socks.length} of ${IDLE_CONNS} connections opened`);
        row.rssIdle = rssMb(dataPids());
        // What the relay holds: its connections to the backend (a client's
        // connect succeeds in the listen backlog whether or not it does).
        row.idleHeld = run(["ip", "netns", "exec", NS, "ss", "-Htn", "state", "established", `( sport = :${B.idle} )`]).split("\n").filter(Boolean).length;
      } finally {
        for (const x of socks) x.destroy();
      }
      await sleep(500);
    });
  }
  if (CHURN > 0 && r.refusedPort !== undefined && peer.name === "vmm (native)") {
    await tryit(row, "fds", async () => {
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
        `* ${peer.name}: fds of the relay processes before/after ${CHURN} forwarded connections ` +
          `(${res.ok} ok, ${res.refused} refused by the backend, ${res.reset} reset by the client, ${res.failed} failed; ${secs.toFixed(1)} s): ` +
          `${before} -> ${after}${after === before ? " (equal)" : " (DIFFERENT)"}`,
      );
    });
  }
}

/**
 * One round: every peer started (and stopped with SIGSTOP; a perTurn peer
 * only for its turns), then each group of figures for every peer in turn,
 * forward in even rounds and backward in odd ones (drift during a group
 * falls on both ends alike), then each peer's footprint. Returns the
 * round's row per peer, in `chosen` order.
 */
async function round(n: number, chosen: Peer[], bins: { udp: string }, backend: { httpPids: () => number[] }): Promise<Row[]> {
  const live: Live[] = chosen.map((peer, i) => ({ peer, base: 20000 + 10 * i, r: undefined, row: { name: peer.name, notes: [] } }));
  try {
    for (const s of live) {
      if (s.peer.perTurn) continue;
      s.r = await s.peer.start(s.base);
      signalLive(s, "SIGSTOP");
    }
    const order = n % 2 === 0 ? live : [...live].reverse();
    const turn = async (s: Live, fn: (s: Live & { r: Running }) => Promise<void>) => {
      if (s.peer.perTurn) s.r = await s.peer.start(s.base);
      signalLive(s, "SIGCONT");
      try {
        await fn(s as Live & { r: Running });
      } finally {
        if (s.peer.perTurn) {
          await s.r!.stop();
          s.r = undefined;
        } else signalLive(s, "SIGSTOP");
      }
      await sleep(300);
    };
    for (const g of GROUPS) {
      log(`round ${n + 1}/${RUNS}: ${g}, load average ${load()}`);
      for (const s of order) await turn(s, (x) => measureGroup(g, x, bins, backend));
    }
    log(`round ${n + 1}/${RUNS}: footprint, load average ${load()}`);
    for (const s of order) await turn(s, (x) => measureFootprint(x));
  } finally {
    for (const s of live) {
      signalLive(s, "SIGCONT");
      await s.r?.stop();
    }
  }
  return live.map((s) => s.row);
}

const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

/** "value (ratio×)"; the ratio to `base` when there is one. */
function fmt(v: number | undefined, base: number | undefined, digits: number): string {
  if (v === undefined || Number.isNaN(v)) return "n/a";
  const s = v.toFixed(digits);
  if (base === undefined || Number.isNaN(base) || base === 0) return s;
  return `${s} (${(v / base).toFixed(2)}×)`;
}

/** The idle-RSS cell: a relay that held fewer than IDLE_CONNS says how many (its figure is not comparable). */
function idleCell(r: Row): string {
  const v = fmt(r.rssIdle, undefined, 1);
  return r.idleHeld !== undefined && r.idleHeld < IDLE_CONNS && r.rssIdle !== undefined ? `${v} (held ${r.idleHeld})` : v;
}

/**
 * The guest namespace: a veth from here (10.77.0.1) to there (GUEST_IP);
 * and the remote client's: a veth from here (REMOTE_HOST_IP) to there
 * (CLIENT_IP), its default route through here, forwarding on (in this
 * private namespace only).
 */
function namespaces(): void {
  const sh = (argv: string[]) => {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.trim()}`);
  };
  sh(["ip", "netns", "add", NS]);
  sh(["ip", "netns", "add", CLIENT_NS]);
  process.on("exit", () => {
    spawnSync("ip", ["netns", "del", NS]);
    spawnSync("ip", ["netns", "del", CLIENT_NS]);
    spawnSync("ip", ["link", "del", "vbh0"]);
    spawnSync("ip", ["link", "del", "vbc0"]);
  });
  sh(["ip", "link", "add", "vbh0", "type", "veth", "peer", "name", "vbh1"]);
  sh(["ip", "link", "set", "vbh1", "netns", NS]);
  sh(["ip", "addr", "add", "10.77.0.1/24", "dev", "vbh0"]);
  sh(["ip", "link", "set", "vbh0", "up"]);
  sh(["ip", "-n", NS, "link", "set", "lo", "up"]);
  sh(["ip", "-n", NS, "addr", "add", `${GUEST_IP}/24`, "dev", "vbh1"]);
  sh(["ip", "-n", NS, "link", "set", "vbh1", "up"]);
  sh(["ip", "-n", NS, "route", "add", "default", "via", "10.77.0.1"]);
  sh(["ip", "link", "add", "vbc0", "type", "veth", "peer", "name", "vbc1"]);
  sh(["ip", "link", "set", "vbc1", "netns", CLIENT_NS]);
  sh(["ip", "addr", "add", `${REMOTE_HOST_IP}/24`, "dev", "vbc0"]);
  sh(["ip", "link", "set", "vbc0", "up"]);
  sh(["ip", "-n", CLIENT_NS, "link", "set", "lo", "up"]);
  sh(["ip", "-n", CLIENT_NS, "addr", "add", `${CLIENT_IP}/24`, "dev", "vbc1"]);
  sh(["ip", "-n", CLIENT_NS, "link", "set", "vbc1", "up"]);
  sh(["ip", "-n", CLIENT_NS, "route", "add", "default", "via", REMOTE_HOST_IP]);
  writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
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
  if (process.env.VMM_IN_NETNS !== "1") throw new Error("run inside the private namespace: scripts/in-netns.sh npm run bench");
  const missing = ["iperf3", "wrk", "socat", "haproxy", "rinetd", "nginx", "cc", "taskset"].filter((b) => spawnSync("bash", ["-c", `command -v ${b}`]).status !== 0);
  if (missing.length > 0) throw new Error(`missing ${missing.join(", ")}: run bash bench/setup.sh`);
  // Namespace-local: many short connections need ephemeral ports clear of ours.
  writeFileSync("/proc/sys/net/ipv4/ip_local_port_range", "21000 65000");
  writeFileSync("/proc/sys/net/ipv4/tcp_tw_reuse", "1");
  namespaces();
  const bins = { udp: join(tmp, "udp-rr"), splice: join(tmp, "splice-relay") };
  run(["cc", "-O2", "-o", bins.udp, join(repo, "bench", "udp-rr.c")]);
  run(["cc", "-O2", "-o", bins.splice, join(repo, "bench", "splice-relay.c")]);
  const backend = await startBackends(NS, bins.udp);
  await sleep(300);

  const all = peers(bins);
  const chosen = all.filter((p) => p.name === "direct" || !ONLY || ONLY.some((o) => p.name.startsWith(o)));
  const rounds = new Map<string, Row[]>(chosen.map((p) => [p.name, []]));
  const loadStart = load();
  for (let n = 0; n < RUNS; n++) {
    const rows = await round(n, chosen, bins, backend);
    rows.forEach((r, i) => rounds.get(chosen[i]!.name)!.push(r));
  }
  const rows = chosen.map((p) => medianRow(rounds.get(p.name)!));
  const d = rows[0]!;
  const splice = rows.find((r) => r.name === "splice relay (C)");
  const lines = [
    `| relay | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | CPU s/GB | conn/s, 1 client | conn/s, 32 clients | conn/s, 128 clients | CPU µs/conn | keep-alive req/s (32 conns) | CPU µs/req | p50 µs (1 conn, pinned) | p99 µs (1 conn, pinned) | UDP round trips/s | RSS MB | RSS MB, ${IDLE_CONNS} idle conns |`,
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const skip = chosen.find((p) => p.name === r.name)?.skip ?? {};
    const na = (k: keyof typeof skip, s: string) => (skip[k] ? "n/a" : s);
    lines.push(
      `| ${r.name} | ${fmt(r.tcp1, d.tcp1, 1)} | ${fmt(r.tcp4, d.tcp4, 1)} | ${na("cpu", fmt(r.cpuGb, splice?.cpuGb, 2))} | ${fmt(r.cps1, d.cps1, 0)} | ${fmt(r.cps32, d.cps32, 0)} | ${fmt(r.cps128, d.cps128, 0)} | ${na("cpu", fmt(r.cpuConn, splice?.cpuConn, 1))} | ${fmt(r.ka, d.ka, 0)} | ${na("cpu", fmt(r.cpuReq, splice?.cpuReq, 1))} | ${fmt(r.p50, d.p50, 0)} | ${fmt(r.p99, d.p99, 0)} | ${na("udp", fmt(r.udp, d.udp, 0))} | ${na("rss", fmt(r.rss, undefined, 1))} | ${na("idle", idleCell(r))} |`,
    );
  }
  process.stdout.write(
    `${lines.join("\n")}\n\n` +
      `${SECS} s per figure, median of ${RUNS} round(s); in each round every group of figures is taken for every peer in turn (the others ` +
      `stopped with SIGSTOP meanwhile, the nat rules deleted; the order reversed every other round). Clients on 127.0.0.1 of this namespace, backends in namespace ${NS} ` +
      `(${GUEST_IP}, behind a veth); "direct" connects to the backends without a relay. Ratios: to direct (throughput: higher is better; latency: lower ` +
      `is better), CPU to the plain C splice relay (lower is better). CPU: time (user + system) of the relay's whole process tree: per GB during ` +
      `the two iperf3 runs, per connection during the 32-client conn/s run, per request during the keep-alive run (these hold up on a ` +
      `busy machine, where rates and latencies do not). conn/s: wrk with "Connection: close" (every request a new forwarded connection, closed after one ` +
      `answer) at 1, 32 and 128 concurrent clients. Latency: wrk with one keep-alive connection, the relay's processes pinned to CPU ${RELAY_CPU}, ` +
      `wrk and the backend to CPU ${LOAD_CPU}. RSS: VmRSS of the processes carrying the bytes (vmm: the vmm-relayd processes, not the Node process ` +
      `controlling them). Load average at the start: ${loadStart}; at the end: ${load()}.\n`,
  );
  const remoteRows = rows.filter((r) => r.rtcp1 !== undefined || r.rtcp4 !== undefined);
  const rd = remoteRows.find((r) => r.name === "direct");
  process.stdout.write(
    `\nTCP from a client on another host (namespace ${CLIENT_NS}, ${CLIENT_IP}, routed through this namespace; the relays listen on ${REMOTE_HOST_IP}, ` +
      `direct is routed to ${GUEST_IP}); taken in the same rounds, peer after peer:\n\n` +
      ["| relay | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s |", "|---|---|---|", ...remoteRows.map((r) => `| ${r.name} | ${fmt(r.rtcp1, rd?.rtcp1, 1)} | ${fmt(r.rtcp4, rd?.rtcp4, 1)} |`)].join("\n") +
      "\n",
  );
  const nat = rounds.get("vmm (nat)");
  const direct = rounds.get("direct")!;
  if (nat) {
    const per = (k: (typeof numeric)[number]) =>
      nat
        .map((r, i) => {
          const [v, base] = [r[k], direct[i]?.[k]];
          return v !== undefined && base ? `${(v / base).toFixed(2)}×` : "n/a";
        })
        .join(", ");
    process.stdout.write(
      `\nvmm (nat) / direct, round by round: from 127.0.0.1 ${per("tcp1")} (1 stream), ${per("tcp4")} (4 streams); ` +
        `from the other host ${per("rtcp1")} (1 stream), ${per("rtcp4")} (4 streams).\n`,
    );
  }
  if (rounds.has("vmm (native)")) {
    process.stdout.write(
      `\nvmm (native) against the best other peer, column by column (ratio: ours to theirs; for CPU, latency and RSS lower is better, so a ratio ` +
        `below 1 leads there):\n\n${verdict("vmm (native)", rounds)}\n`,
    );
  }
  const notes = [...fdNotes, ...rows.flatMap((r) => r.notes.map((n) => `* ${r.name}: ${n}`))];
  for (const p of chosen) for (const [k, why] of Object.entries(p.skip ?? {})) if (p.name !== "direct") notes.push(`* ${p.name}: ${k} not measured (${why})`);
  if (notes.length > 0) process.stdout.write(`\n${notes.join("\n")}\n`);
}

process.on("exit", () => {
  killHeld();
  killAll();
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));
main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);

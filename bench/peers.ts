// The relays the forwarder benchmark compares, each in its best
// single-process configuration for this machine, all listening on 127.0.0.1
// and forwarding to the backends in the "guest" namespace (GUEST_IP).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FD_LIMIT, log, logOf, sleep, start, stop, tmp, tree, waitPort } from "./procs.js";

const here = dirname(fileURLToPath(import.meta.url));

/** The backends' address: a namespace behind a veth, like a guest behind a bridge. */
export const GUEST_IP = "10.77.0.2";
/**
 * A client on another host: a namespace of its own (CLIENT_NS, CLIENT_IP)
 * behind a veth to this one (REMOTE_HOST_IP), routed to GUEST_IP through
 * it. The nat path is for such clients: their packets are DNATed on the
 * way in, with no masquerade and no second route lookup, which a client on
 * 127.0.0.1 needs.
 */
export const CLIENT_NS = "vmmbench-client";
/** This namespace's end of the client's veth: where the relays listen for the remote client. */
export const REMOTE_HOST_IP = "10.78.0.1";
/** The remote client's address, in CLIENT_NS. */
export const CLIENT_IP = "10.78.0.2";
/** Backend ports (in the guest namespace). */
export const B = { iperf: 17001, http: 17002, udp: 17003, idle: 17004, refused: 17009 };
/** Idle connections held for the idle-RSS column (BENCH_IDLE_CONNS). */
export const IDLE_CONNS = Number(process.env.BENCH_IDLE_CONNS ?? "10000");
// Connections a single-process peer can be configured for within FD_LIMIT
// (two fds each, plus its own): haproxy refuses to start, nginx warns, beyond.
const PEER_CONNS = Math.min(IDLE_CONNS + 50, Math.floor((FD_LIMIT - 200) / 2));

/** The ports one peer listens on for each load (loopback; udp undefined when the peer has no UDP). */
export interface Ports {
  host: string;
  iperf: number;
  http: number;
  udp: number | undefined;
  idle: number;
  /** Where a client in CLIENT_NS reaches the iperf backend through this peer (peers of the remote-client table only). */
  remote?: { host: string; iperf: number };
}

/** A started peer: its ports, the processes to measure, and how to stop it. */
export interface Running {
  ports: Ports;
  /** The relay's whole process tree (CPU). */
  pids: () => number[];
  /** The processes carrying the bytes (RSS, fds); default pids(). */
  dataPids?: () => number[];
  /** A rule whose backend refuses (fd accounting). */
  refusedPort?: number;
  stop: () => Promise<void>;
}

/** Columns a peer cannot have, and why. */
export type Skip = Partial<Record<"udp" | "idle" | "cpu" | "rss", string>>;

/** One forwarder the benchmark compares (vmm-relayd, the sockets path, haproxy, nginx, ...): a name, the columns it skips, and how to start it on ports from `base` on. */
export interface Peer {
  name: string;
  skip?: Skip;
  /**
   * While it runs it changes the namespace for every peer (nat: its nft
   * table turns conntrack on for all traffic): started for its own turns
   * only, never kept stopped beside the others.
   */
  perTurn?: true;
  start(base: number): Promise<Running>;
}

const portsAt = (base: number): Ports => ({ host: "127.0.0.1", iperf: base, http: base + 1, udp: base + 2, idle: base + 3 });

let forwarderStarts = 0;

/**
 * vmm's forwarder (bench/forwarder.js) on one data path. `pollUs`:
 * vmm-relayd's busy poll (default: vmmd's); `remote`: a rule on
 * REMOTE_HOST_IP to the iperf backend too, for the remote-client table.
 */
function forwarderPeer(kind: "native" | "sockets" | "nat", name: string, opts: { skip?: Skip; pollUs?: number; remote?: true } = {}): Peer {
  const { skip, pollUs } = opts;
  return {
    name,
    ...(skip ? { skip } : {}),
    ...(kind === "nat" ? { perTurn: true } : {}),
    async start(base) {
      const p: Ports = portsAt(base);
      const rule = (protocol: "tcp" | "udp", listenPort: number, targetPort: number, listenAddress = "127.0.0.1") => ({
        protocol,
        listenAddress,
        listenPort,
        targetAddress: GUEST_IP,
        targetPort,
        ...(kind === "nat" ? { path: "nat" } : {}),
      });
      const refusedPort = base + 4;
      const rules = [rule("tcp", p.iperf, B.iperf), rule("tcp", p.http, B.http), rule("udp", p.udp!, B.udp), rule("tcp", p.idle, B.idle)];
      if (kind !== "nat") rules.push(rule("tcp", refusedPort, B.refused));
      if (opts.remote) {
        p.remote = { host: REMOTE_HOST_IP, iperf: base + 5 };
        rules.push(rule("tcp", p.remote.iperf, B.iperf, REMOTE_HOST_IP));
      }
      const logName = `vmm-${kind}-${++forwarderStarts}`; // a fresh log per start: it carries the "ready" line
      const child = start(logName, [process.execPath, join(here, "forwarder.js"), kind, JSON.stringify(rules), ...(pollUs !== undefined ? [String(pollUs)] : [])]);
      // forwarder.js prints "ready <kind> <pid>...": the data-path processes.
      let data: number[] = [];
      const end = Date.now() + 15_000;
      for (;;) {
        const m = /^ready \S+((?: \d+)*)$/m.exec(logOf(logName));
        if (m) {
          data = m[1]!.trim() === "" ? [] : m[1]!.trim().split(" ").map(Number);
          break;
        }
        if (Date.now() > end || child.exitCode !== null) throw new Error(`${logName} did not get ready: ${logOf(logName).slice(-300)}`);
        await sleep(50);
      }
      await waitPort(p.http);
      return {
        ports: p,
        pids: () => tree([child.pid!]),
        dataPids: () => data,
        ...(kind !== "nat" ? { refusedPort } : {}),
        stop: () => stop(child),
      };
    },
  };
}

/** Stops a set of peer processes. */
const stopAll = (kids: { pid?: number }[]) => async () => void (await Promise.all(kids.map((k) => stop(k as never))));

/** haproxy `mode tcp`; `busy`: its `busy-polling` (the poller never sleeps, for latency on VMs). */
function haproxy(threads: number, busy = false): Peer {
  return {
    name: `haproxy (mode tcp, ${threads} thread${threads > 1 ? "s" : ""}${busy ? ", busy-polling" : ""})`,
    skip: { udp: "no UDP in haproxy community" },
    async start(base) {
      const p = portsAt(base);
      const conf = join(tmp, `haproxy-${threads}${busy ? "-busy" : ""}.cfg`);
      const l = (name: string, port: number, target: number) => `listen ${name}\n  bind 127.0.0.1:${port}\n  server s ${GUEST_IP}:${target}\n`;
      writeFileSync(
        conf,
        `global\n  nbthread ${threads}\n  maxconn ${PEER_CONNS}\n${busy ? "  busy-polling\n" : ""}defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 10m\n  timeout server 10m\n  maxconn ${PEER_CONNS}\n` +
          l("iperf", p.iperf, B.iperf) + l("http", p.http, B.http) + l("idle", p.idle, B.idle),
      );
      const child = start(`haproxy-${threads}${busy ? "-busy" : ""}`, ["haproxy", "-db", "-f", conf]);
      await waitPort(p.http);
      return { ports: { ...p, udp: undefined }, pids: () => tree([child.pid!]), stop: () => stop(child) };
    },
  };
}

/** Every peer, in table order; "direct" first (the ratios' base). */
export function peers(bins: { splice: string }): Peer[] {
  return [
    {
      name: "direct",
      skip: { cpu: "no relay", rss: "no relay", idle: "no relay" },
      async start() {
        return {
          ports: { host: GUEST_IP, iperf: B.iperf, http: B.http, udp: B.udp, idle: B.idle, remote: { host: GUEST_IP, iperf: B.iperf } },
          pids: () => [],
          stop: async () => {},
        };
      },
    },
    forwarderPeer("native", "vmm (native)", { remote: true }),
    forwarderPeer("native", "vmm (native, no busy poll)", { pollUs: 0 }),
    forwarderPeer("nat", "vmm (nat)", { skip: { cpu: "kernel (softirq) time is nobody's", rss: "no process", idle: "no process" }, remote: true }),
    forwarderPeer("sockets", "vmm (sockets)"),
    {
      name: "splice relay (C)",
      skip: { udp: "TCP only" },
      async start(base) {
        const p = portsAt(base);
        const child = start("splice-relay", [bins.splice, String(p.iperf), GUEST_IP, String(B.iperf), String(p.http), GUEST_IP, String(B.http), String(p.idle), GUEST_IP, String(B.idle)]);
        await waitPort(p.http);
        return { ports: { ...p, udp: undefined }, pids: () => tree([child.pid!]), stop: () => stop(child) };
      },
    },
    haproxy(1),
    haproxy(1, true),
    haproxy(2),
    {
      name: "nginx stream",
      async start(base) {
        const p = portsAt(base);
        const conf = join(tmp, "nginx-stream.conf");
        const s = (port: number, target: number) => `  server { listen 127.0.0.1:${port} backlog=4096; proxy_pass ${GUEST_IP}:${target}; }\n`;
        // One process: no master, one worker (the master alone would idle).
        writeFileSync(
          conf,
          `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off; master_process off; worker_processes 1; worker_rlimit_nofile ${FD_LIMIT}; pid ${tmp}/nginx-stream.pid;
error_log ${tmp}/nginx-stream.err warn;
events { worker_connections ${Math.min(2 * IDLE_CONNS + 100, FD_LIMIT - 100)}; }
stream {
${s(p.iperf, B.iperf)}${s(p.http, B.http)}${s(p.idle, B.idle)}  server { listen 127.0.0.1:${p.udp} udp; proxy_pass ${GUEST_IP}:${B.udp}; proxy_responses 1; proxy_timeout 5s; }
}
`,
        );
        const child = start("nginx-stream", ["nginx", "-c", conf, "-p", tmp, "-e", `${tmp}/nginx-stream.err`]);
        await waitPort(p.http);
        return { ports: p, pids: () => tree([child.pid!]), stop: () => stop(child) };
      },
    },
    {
      name: "rinetd",
      async start(base) {
        const p = portsAt(base);
        const conf = join(tmp, "rinetd.conf");
        writeFileSync(
          conf,
          `127.0.0.1 ${p.iperf} ${GUEST_IP} ${B.iperf}\n127.0.0.1 ${p.http} ${GUEST_IP} ${B.http}\n` +
            `127.0.0.1 ${p.udp}/udp ${GUEST_IP} ${B.udp}/udp\n127.0.0.1 ${p.idle} ${GUEST_IP} ${B.idle}\n`,
        );
        const child = start("rinetd", ["rinetd", "-f", "-c", conf]);
        await waitPort(p.http);
        return { ports: p, pids: () => tree([child.pid!]), stop: () => stop(child) };
      },
    },
    {
      name: "socat",
      skip: { idle: "a process per connection" },
      async start(base) {
        const p = portsAt(base);
        const tcp = (l: number, t: number) => ["socat", `TCP-LISTEN:${l},bind=127.0.0.1,fork,reuseaddr,backlog=4096`, `TCP:${GUEST_IP}:${t}`];
        const kids = [
          start("socat-iperf", tcp(p.iperf, B.iperf)),
          start("socat-http", tcp(p.http, B.http)),
          start("socat-udp", ["socat", `UDP-LISTEN:${p.udp},bind=127.0.0.1,fork,reuseaddr`, `UDP:${GUEST_IP}:${B.udp}`]),
        ];
        await Promise.all([waitPort(p.iperf), waitPort(p.http)]);
        return { ports: p, pids: () => tree(kids.map((k) => k.pid!)), stop: stopAll(kids) };
      },
    },
  ];
}

/** The backends, in the guest namespace `ns`. */
export async function startBackends(ns: string, udpRr: string): Promise<{ httpPids: () => number[] }> {
  const inNs = (argv: string[]) => ["ip", "netns", "exec", ns, ...argv];
  start("iperf3-server", inNs(["iperf3", "-s", "-B", GUEST_IP, "-p", String(B.iperf)]));
  const conf = join(tmp, "backend-nginx.conf");
  writeFileSync(
    conf,
    `daemon off; master_process on; worker_processes 1; pid ${tmp}/backend-nginx.pid;
error_log ${tmp}/backend-nginx.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen ${GUEST_IP}:${B.http} reuseport backlog=4096; location / { return 200 "ok\\n"; } } }
`,
  );
  const nginx = start("backend-nginx", inNs(["nginx", "-c", conf, "-p", tmp, "-e", `${tmp}/backend-nginx.err`]));
  start("udp-echo", inNs([udpRr, "server", String(B.udp)]));
  // Holds every connection open without reading: the far end of "idle" connections.
  start("idle-backend", inNs([
    process.execPath,
    "-e",
    `const s=[];require("net").createServer(c=>{s.push(c);c.on("error",()=>{})}).listen({port:${B.idle},host:"${GUEST_IP}",backlog:4096})`,
  ]));
  await Promise.all([waitPort(B.iperf, GUEST_IP), waitPort(B.http, GUEST_IP), waitPort(B.idle, GUEST_IP)]);
  log(`backends up in namespace ${ns} (${GUEST_IP}); nginx ${readFileSync(join(tmp, "backend-nginx.pid"), "utf8").trim()}`);
  return { httpPids: () => tree([nginx.pid!]) };
}

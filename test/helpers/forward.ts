// Helpers for the forwarder's tests (server/forward/*.test.ts and the
// end-to-end forwarding tests). Everything here is bounded in time and
// closes what it opens.
import type { CleanupStack } from "../../server/cleanup.js";
import type { ForwardRule } from "../../server/forward/rules.js";
import type { ForwardService } from "../../server/forward/service.js";
import { freePort } from "./net.js";
import { readFileSync, readdirSync } from "node:fs";
import { createServer, createConnection, type Server, type Socket } from "node:net";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";

export const fdCount = (): number => readdirSync("/proc/self/fd").length;

/** fds held by these processes (e.g. ForwardService.dataPathPids()). */
export const fdCountOf = (pids: readonly number[]): number =>
  pids.reduce((n, pid) => n + readdirSync(`/proc/${pid}/fd`).length, 0);

/** Resident memory of `pids` of one kind (/proc/<pid>/status: "Anon", the heap, .bss and stacks; "File", mapped pages of the executable), KiB. */
export const rssKbOf = (pids: readonly number[], kind: "Anon" | "File"): number =>
  pids.reduce((sum, p) => sum + Number(new RegExp(`Rss${kind}:\\s+(\\d+)`).exec(readFileSync(`/proc/${p}/status`, "utf8"))![1]), 0);

/** Sleeps in the kernel (voluntary context switches) of `pids`. */
export const sleepsOf = (pids: readonly number[]): number =>
  pids.reduce((n, p) => n + Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))![1]), 0);

/** CPU time of `pids`, ns (/proc/<pid>/schedstat: exact, unlike the clock ticks of /proc/<pid>/stat). */
export const cpuNsOf = (pids: readonly number[]): number =>
  pids.reduce((n, p) => n + Number(readFileSync(`/proc/${p}/schedstat`, "utf8").split(" ")[0]), 0);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `n` request/answer round trips of 64 bytes on one new connection to `port` (an echo behind it), back to back. */
export async function roundTrips(port: number, n: number, cleanup: CleanupStack): Promise<void> {
  const c = await connect(port);
  cleanup.push(() => c.destroy());
  const req = Buffer.alloc(64, 7);
  for (let i = 0; i < n; i++) {
    const got = new Promise<void>((resolve, reject) => {
      let seen = 0;
      const timer = setTimeout(() => reject(new Error(`round trip ${i} through :${port} timed out`)), 5000);
      const on = (b: Buffer) => {
        seen += b.length;
        if (seen >= req.length) {
          clearTimeout(timer);
          c.off("data", on);
          resolve();
        }
      };
      c.on("data", on);
    });
    c.write(req);
    await got;
  }
  c.destroy();
}

/**
 * Fewest sleeps per round trip of the relay processes `pids` in `tries`
 * runs of 300 round trips through `port` (a busy CPU makes a relay sleep
 * more, never less).
 */
export async function sleepsPerRoundTrip(pids: readonly number[], port: number, tries: number, cleanup: CleanupStack): Promise<number> {
  let best = Infinity;
  for (let t = 0; t < tries; t++) {
    const s0 = sleepsOf(pids);
    await roundTrips(port, 300, cleanup);
    best = Math.min(best, (sleepsOf(pids) - s0) / 300);
  }
  return best;
}

/** Polls `cond` every 10 ms for at most `ms`; throws with `what` on timeout. */
export async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A TCP server on 127.0.0.1:0 whose sockets all get destroyed on close. */
export async function tcpServer(onConn: (s: Socket) => void, cleanup: CleanupStack): Promise<{ server: Server; port: number }> {
  const socks = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.on("close", () => socks.delete(s));
    s.on("error", () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  );
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * A port on 127.0.0.1 that refuses connections and that no other socket can
 * take while the test runs: the local end of a connection to a throwaway
 * server (bound, never listening). A port freePort() closed again may be
 * handed out by the next bind(0), even to the relay's own listener, which
 * turns "the guest refuses" into a forwarding loop. The local end is bound
 * explicitly (bind() before connect()): a port connect() picked itself may
 * be picked again as the source port of a connect() to it, and a socket
 * connecting from port P to port P on the same address connects to itself
 * (TCP simultaneous open) instead of being refused.
 */
export async function refusingPort(cleanup: CleanupStack): Promise<number> {
  const { port } = await tcpServer(() => {}, cleanup);
  const s = await new Promise<Socket>((resolve, reject) => {
    // localAddress makes Node bind() the socket (port 0: the kernel's choice) before connecting.
    const c = createConnection({ host: "127.0.0.1", port, localAddress: "127.0.0.1" });
    c.once("connect", () => {
      c.off("error", reject);
      resolve(c);
    });
    c.once("error", reject);
  });
  s.on("error", () => {});
  cleanup.push(() => s.destroy());
  return s.localPort!;
}

/** Echo with half-close: echoes everything, ends after the client ended. */
export const echo = (s: Socket) => s.pipe(s);

export interface Exchange {
  received: Buffer;
  error?: NodeJS.ErrnoException;
}

/**
 * Connects, writes `payload`, half-closes, and reads until the peer ends or
 * errors. Bounded by `ms`.
 */
export function exchange(port: number, payload: Buffer | undefined, ms = 20_000, host = "127.0.0.1"): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = createConnection({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`exchange with :${port} timed out after ${ms} ms`));
    }, ms);
    s.on("data", (b: Buffer) => chunks.push(b));
    let err: NodeJS.ErrnoException | undefined;
    s.on("error", (e) => (err = e));
    s.on("close", () => {
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), ...(err ? { error: err } : {}) });
    });
    s.on("end", () => s.end());
    if (payload) s.end(payload);
  });
}

/** Opens a connection and resolves once connected (or rejects on error). */
export function connect(port: number, host = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host, port, allowHalfOpen: true });
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

export const payload = (n: number): Buffer => randomBytes(n);

/**
 * A listening TCP socket that never accepts (python3, backlog 0, accept queue
 * pre-filled by the helper itself), so a connect to it hangs deterministically:
 * the kernel drops SYNs to a listener whose accept queue is full.
 */
export async function neverAccepting(cleanup: CleanupStack): Promise<number> {
  const script = [
    "import socket, sys",
    "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(0)",
    "port = l.getsockname()[1]",
    "fill = []",
    "for _ in range(2):",
    "    c = socket.socket(); c.setblocking(False)",
    "    try: c.connect(('127.0.0.1', port))",
    "    except BlockingIOError: pass",
    "    fill.append(c)",
    "print(port, flush=True)",
    "sys.stdin.read()",
  ].join("\n");
  const child: ChildProcess = spawn("python3", ["-c", script], { stdio: ["pipe", "pipe", "inherit"] });
  cleanup.push(() => {
    child.stdin?.end();
    child.kill("SIGKILL");
  });
  return await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("python3 helper did not start in 10 s")), 10_000);
    child.stdout!.once("data", (b: Buffer) => {
      clearTimeout(timer);
      resolve(Number(String(b).trim()));
    });
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** A TCP rule from 127.0.0.1:listenPort to 127.0.0.1:targetPort. */
export const tcpRule = (listenPort: number, targetPort: number): ForwardRule => ({
  protocol: "tcp",
  listenAddress: "127.0.0.1",
  listenPort,
  targetAddress: "127.0.0.1",
  targetPort,
});

/**
 * Returns once every vmm-relayd process holds the listeners of the rules
 * applied so far. An add is answered as soon as the master's listener is
 * live, the workers take their copies afterwards; a removal is answered by
 * every process, and only after what came before. So one throwaway rule,
 * added and removed, waits for them (no connection is ever made to it).
 */
export async function relayWorkersSettled(svc: ForwardService): Promise<void> {
  await svc.apply("settle", [tcpRule(await freePort(), 9)]);
  await svc.apply("settle", []);
}

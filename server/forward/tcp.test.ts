// TCP relay behaviour, run once through the native splice relay and once
// through the sockets fallback, each selected explicitly.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findRelayd } from "../../native/relay.js";
import { ForwardService } from "./service.js";
import { parseProxyV2 } from "./proxy.js";
import { connect, cpuNsOf, echo, exchange, neverAccepting, payload, refusingPort, roundTrips, rssKbOf, sleep, sleepsOf, sleepsPerRoundTrip, tcpRule, tcpServer, waitFor } from "../../test/helpers/forward.js";
import { CleanupStack } from "../cleanup.js";
import { freePort } from "../../test/helpers/net.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe.each(["native", "sockets"] as const)("tcp relay: %s", (kind) => {
  let cleanup: CleanupStack;
  let svc: ForwardService;
  beforeEach(() => {
    cleanup = new CleanupStack();
    svc = new ForwardService({ relay: kind, connectTimeoutMs: 500 });
    cleanup.push(() => svc.close());
  });
  afterEach(() => cleanup.run());

  async function forward(targetPort: number, extra?: Partial<{ owner: string }>): Promise<number> {
    const listenPort = await freePort();
    await svc.apply(extra?.owner ?? "vm-1", [
      { protocol: "tcp", listenAddress: "127.0.0.1", listenPort, targetAddress: "127.0.0.1", targetPort },
    ]);
    return listenPort;
  }

  it("reports the relay kind it was asked for", () => {
    expect(svc.relayKind).toBe(kind);
  });

  it("relays random payloads of 1 B .. 8 MiB byte-exact both ways (echo, half-close)", async () => {
    const { port } = await tcpServer(echo, cleanup);
    const lp = await forward(port);
    for (const n of [1, 1000, 65_537, 1 << 20, 8 << 20]) {
      const p = payload(n);
      const r = await exchange(lp, p);
      expect(r.error).toBeUndefined();
      expect(r.received.length).toBe(n);
      expect(sha(r.received)).toBe(sha(p));
    }
    const st = svc.list("vm-1")[0]!;
    expect(st.relay).toBe(kind);
    const total = 1 + 1000 + 65_537 + (1 << 20) + (8 << 20);
    await waitFor("counters", () => svc.list("vm-1")[0]!.counters.bytesFromGuest === total);
    const c = svc.list("vm-1")[0]!.counters;
    expect(c.bytesToGuest).toBe(total);
    expect(c.connectionsTotal).toBe(5);
  });

  it("relays a guest-initiated 8 MiB download and several concurrent streams", async () => {
    const big = payload(8 << 20);
    const { port } = await tcpServer((s) => s.end(big), cleanup);
    const lp = await forward(port);
    const results = await Promise.all([0, 1, 2, 3].map(() => exchange(lp, undefined)));
    for (const r of results) expect(sha(r.received)).toBe(sha(big));
  });

  it("relays a guest that speaks first (a banner) and a client that waits for it", async () => {
    const { port } = await tcpServer((s) => {
      s.write("SSH-2.0-guest\r\n");
      s.pipe(s);
    }, cleanup);
    const lp = await forward(port);
    for (let i = 0; i < 20; i++) {
      const c = await connect(lp);
      cleanup.push(() => c.destroy());
      const banner = await new Promise<string>((r) => c.once("data", (b: Buffer) => r(String(b))));
      expect(banner).toBe("SSH-2.0-guest\r\n");
      const echoed = new Promise<string>((r) => c.once("data", (b: Buffer) => r(String(b))));
      c.write(`hello ${i}`);
      expect(await echoed).toBe(`hello ${i}`);
      c.destroy();
    }
  });

  it("ends every connection to a guest that answers and closes at once (FIN with the handshake)", async () => {
    const { port } = await tcpServer((s) => s.end("bye"), cleanup);
    const lp = await forward(port);
    for (let i = 0; i < 300; i++) {
      const r = await exchange(lp, undefined, 5000);
      expect(r.received.toString(), `connection ${i}`).toBe("bye");
    }
  });

  it("half-close: a client that shut down its write side still receives the full response", async () => {
    const response = payload(3 << 20);
    const { port } = await tcpServer((s) => {
      const got: Buffer[] = [];
      s.on("data", (b: Buffer) => got.push(b));
      // Answer only after the client's FIN arrived through the relay.
      s.on("end", () => s.end(Buffer.concat([Buffer.from(sha(Buffer.concat(got))), response])));
    }, cleanup);
    const lp = await forward(port);
    const req = payload(100_000);
    const r = await exchange(lp, req);
    expect(r.error).toBeUndefined();
    expect(r.received.subarray(0, 64).toString()).toBe(sha(req));
    expect(sha(r.received.subarray(64))).toBe(sha(response));
  });

  it("propagates a guest reset to the client", async () => {
    const { port } = await tcpServer((s) => s.once("data", () => s.resetAndDestroy()), cleanup);
    const lp = await forward(port);
    const r = await exchange(lp, Buffer.from("hello"));
    expect(r.error?.code).toBe("ECONNRESET");
  });

  it("propagates a client reset to the guest", async () => {
    let guestErr: string | undefined;
    let guestClosed = false;
    const { port } = await tcpServer((s) => {
      s.on("error", (e: NodeJS.ErrnoException) => (guestErr = e.code));
      s.on("close", () => (guestClosed = true));
      s.once("data", () => s.write("ack"));
    }, cleanup);
    const lp = await forward(port);
    const c = await connect(lp);
    cleanup.push(() => c.destroy());
    c.on("error", () => {});
    c.write("x");
    await new Promise<void>((r) => c.once("data", () => r()));
    c.resetAndDestroy();
    await waitFor("guest close", () => guestClosed);
    expect(guestErr).toBe("ECONNRESET");
  });

  it("resets the client when the guest refuses, and counts the error", async () => {
    const dead = await refusingPort(cleanup);
    const lp = await forward(dead);
    const r = await exchange(lp, Buffer.from("x"));
    expect(r.received.length).toBe(0);
    expect(r.error?.code).toBe("ECONNRESET");
    await waitFor("error counted", () => svc.list()[0]!.counters.errors >= 1);
    expect(svc.list()[0]!.counters).toMatchObject({ connectionsActive: 0, connectFailures: 1, lastConnectError: "ECONNREFUSED" });
  });

  it("says why guest connects fail: an unreachable guest is not a refusing one", async () => {
    // The private namespace has no route beyond 127.0.0.0/8: connect() fails at once.
    const lp = await freePort();
    await svc.apply("vm-1", [{ protocol: "tcp", listenAddress: "127.0.0.1", listenPort: lp, targetAddress: "10.254.254.254", targetPort: 80 }]);
    const r = await exchange(lp, Buffer.from("x"));
    expect(r.error?.code).toBe("ECONNRESET");
    await waitFor("connect failure counted", () => svc.list()[0]!.counters.connectFailures === 1);
    expect(svc.list()[0]!.counters).toMatchObject({ errors: 1, lastConnectError: "ENETUNREACH" });
  });

  it("gives up connecting after connectTimeoutMs to a guest that never accepts", async () => {
    const port = await neverAccepting(cleanup);
    const lp = await forward(port);
    const t0 = Date.now();
    const r = await exchange(lp, Buffer.from("x"), 10_000);
    const took = Date.now() - t0;
    expect(r.error?.code).toBe("ECONNRESET");
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(3000);
    expect(svc.list()[0]!.counters).toMatchObject({ errors: 1, connectFailures: 1, lastConnectError: "ETIMEDOUT" });
  });

  it("sends a PROXY protocol v2 header with the client's address first, and counts only the client's bytes", async () => {
    const { port } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    await svc.apply("vm-1", [
      { protocol: "tcp", listenAddress: "127.0.0.1", listenPort: lp, targetAddress: "127.0.0.1", targetPort: port, proxyProtocol: true },
    ]);
    const c = await connect(lp);
    cleanup.push(() => c.destroy());
    const clientPort = c.localPort;
    const got: Buffer[] = [];
    c.on("data", (b: Buffer) => got.push(b));
    c.end("hello");
    await new Promise<void>((r) => c.once("end", () => r()));
    const all = Buffer.concat(got);
    const h = parseProxyV2(all);
    expect(h).toEqual({ family: "tcp4", srcAddress: "127.0.0.1", srcPort: clientPort, dstAddress: "127.0.0.1", dstPort: lp, length: 28 });
    expect(all.subarray(h!.length).toString()).toBe("hello");
    await waitFor("counters", () => svc.list()[0]!.counters.bytesFromGuest === 28 + 5);
    expect(svc.list()[0]!.counters.bytesToGuest).toBe(5);
    expect(svc.list()[0]!.proxyProtocol).toBe(true);
  });

  it("resets connections beyond maxConnectionsPerRule", async () => {
    const limited = new ForwardService({ relay: kind, maxConnectionsPerRule: 2 });
    cleanup.push(() => limited.close());
    const { port } = await tcpServer((s) => {
      s.write("hi");
      s.on("end", () => s.end());
    }, cleanup);
    const lp = await freePort();
    await limited.apply("vm", [{ protocol: "tcp", listenAddress: "127.0.0.1", listenPort: lp, targetAddress: "127.0.0.1", targetPort: port }]);
    const held = [];
    for (let i = 0; i < 2; i++) {
      const s = await connect(lp);
      cleanup.push(() => s.destroy());
      await new Promise<void>((r) => s.once("data", () => r()));
      held.push(s);
    }
    const r = await exchange(lp, undefined, 5000);
    expect(r.received.length).toBe(0);
    expect(r.error?.code).toBe("ECONNRESET");
    expect(limited.list()[0]!.counters.connectionsActive).toBe(2);
    for (const s of held) s.destroy();
    await waitFor("connections released", () => limited.list()[0]!.counters.connectionsActive === 0);
  });
});

describe("tcp relay: native: memory", () => {
  const cleanup = new CleanupStack();
  afterEach(() => cleanup.run());

  /** A native relay forwarding one rule to a guest served by `onConn`: the service and the port. */
  async function forwarded(onConn: Parameters<typeof tcpServer>[0], maxConnectionsPerRule?: number): Promise<{ svc: ForwardService; lp: number }> {
    const svc = new ForwardService({ relay: "native", maxConnectionsPerRule });
    cleanup.push(() => svc.close());
    const { port } = await tcpServer(onConn, cleanup);
    const lp = await freePort();
    await svc.apply("vm", [tcpRule(lp, port)]);
    return { svc, lp };
  }

  it("maps little of its executable once it serves (under 400 KiB per process)", async () => {
    const { svc, lp } = await forwarded(echo);
    for (const n of [1 << 20, ...Array<number>(20).fill(100)]) {
      const p = payload(n);
      const r = await exchange(lp, p);
      expect(r.error).toBeUndefined();
      expect(sha(r.received)).toBe(sha(p));
    }
    // The kernel maps 64 KiB around each page of code touched, and RSS counts
    // every mapped page. Each process unmaps what start-up ran, and the libc
    // code of its control and data paths sits next to its own (native/relayd/hot.ld):
    // ~240 KiB. Before, the master kept 768 KiB of it and the worker 460.
    for (const pid of await svc.dataPathPids()) expect(rssKbOf([pid], "File"), `pid ${pid}`).toBeLessThan(400);
  });

  it("gives its 64 KiB copy buffer back after a second without connections", async () => {
    const { svc, lp } = await forwarded(echo);
    const [master] = await svc.dataPathPids();
    const p = payload(1 << 20); // reads of 64 KiB: the whole buffer, then splice
    expect(sha((await exchange(lp, p)).received)).toBe(sha(p));
    await waitFor("the connection closed", () => svc.list()[0]!.counters.connectionsActive === 0);
    const used = rssKbOf([master!], "Anon");
    await waitFor("the buffer released", () => rssKbOf([master!], "Anon") <= used - 48, 3000);
  });

  it("spends less than 150 bytes of heap on an idle connection", async () => {
    const n = 3000;
    const { svc, lp } = await forwarded(() => undefined, 2 * n);
    const pids = await svc.dataPathPids();
    // One connection first: the per-process state every connection shares.
    const first = await connect(lp);
    cleanup.push(() => first.destroy());
    await waitFor("the first connection", () => svc.list()[0]!.counters.connectionsActive === 1);
    const before = rssKbOf(pids, "Anon");
    for (let i = 0; i < n; i += 100) {
      const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => connect(lp)));
      for (const s of batch) cleanup.push(() => s.destroy());
    }
    await waitFor(`${n} connections`, () => svc.list()[0]!.counters.connectionsActive === n + 1, 20_000);
    const perConn = ((rssKbOf(pids, "Anon") - before) * 1024) / n;
    // A Conn of 176 bytes (a 192-byte heap chunk) before.
    expect(perConn).toBeLessThan(150);
  });
});

describe("tcp relay: native: busy polling", () => {
  const cleanup = new CleanupStack();
  afterEach(() => cleanup.run());

  /** One relay process polling up to `pollUs`, forwarding to an echo guest and to one that only reads. */
  async function relay(pollUs: number): Promise<{ pids: number[]; echoPort: number; sinkPort: number }> {
    const svc = new ForwardService({ relay: "native", relayWorkers: 1, relayPollUs: pollUs });
    cleanup.push(() => svc.close());
    const { port: e } = await tcpServer(echo, cleanup);
    const { port: s } = await tcpServer((sock) => sock.resume(), cleanup);
    const [echoPort, sinkPort] = [await freePort(), await freePort()];
    await svc.apply("vm", [tcpRule(echoPort, e), tcpRule(sinkPort, s)]);
    return { pids: await svc.dataPathPids(), echoPort, sinkPort };
  }

  it("stays awake between a request and its answer, and sleeps at each without it", async () => {
    const polling = await relay(1000);
    await roundTrips(polling.echoPort, 50, cleanup); // the window grows to its maximum
    expect(await sleepsPerRoundTrip(polling.pids, polling.echoPort, 3, cleanup)).toBeLessThan(0.5);
    // The measure itself: without polling, the relay sleeps before the answer and before the next request.
    const sleeping = await relay(0);
    expect(await sleepsPerRoundTrip(sleeping.pids, sleeping.echoPort, 1, cleanup)).toBeGreaterThanOrEqual(1);
  });

  it("does not poll while several connections are busy at once, however few events each wait returns", async () => {
    const r = await relay(1000);
    await roundTrips(r.echoPort, 200, cleanup); // polling at its widest now
    // Six connections taking turns: this process's event loop answers one
    // at a time, so the relay sees its events one or two at a time, which
    // a poll would catch. Busy connections share each wake-up anyway; the
    // relay sleeps when it has nothing to do (one connection stays awake:
    // the test above).
    const s0 = sleepsOf(r.pids);
    const n = 200;
    await Promise.all(Array.from({ length: 6 }, () => roundTrips(r.echoPort, n, cleanup)));
    expect((sleepsOf(r.pids) - s0) / (6 * n), "sleeps per round trip").toBeGreaterThan(0.5);
  });

  it("does not poll while idle, nor for events further apart than its window", async () => {
    const r = await relay(1000);
    await roundTrips(r.echoPort, 200, cleanup); // polling at its widest now
    let cpu = cpuNsOf(r.pids);
    await sleep(500);
    expect((cpuNsOf(r.pids) - cpu) / 1e6, "ms of CPU while idle").toBeLessThan(5);
    // 40 writes 10 ms apart: each wait is longer than the window, which
    // halves every time (1000, 500, 250 µs, then 0). Always polling 1 ms
    // after each write would cost at least 40 ms.
    const c = await connect(r.sinkPort);
    cleanup.push(() => c.destroy());
    await roundTrips(r.echoPort, 50, cleanup);
    cpu = cpuNsOf(r.pids);
    for (let i = 0; i < 40; i++) {
      c.write("x");
      await sleep(10);
    }
    expect((cpuNsOf(r.pids) - cpu) / 1e6, "ms of CPU for 40 writes 10 ms apart").toBeLessThan(15);
  });

  it("takes --poll-us from 0 to 1000 µs only", () => {
    const dir = mkdtempSync(join(tmpdir(), "vmm-relay-poll-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    for (const bad of ["1001", "-1", "x", ""]) {
      const r = spawnSync(findRelayd(), ["--control", dir, "--workers", "1", "--poll-us", bad], { encoding: "utf8", timeout: 5000 });
      expect(r.status, bad).toBe(2);
      expect(r.stderr).toContain("[--poll-us 0..1000]");
    }
    expect(() => new ForwardService({ relayPollUs: 1001 })).toThrow(/relayPollUs: must be an integer from 0 to 1000/);
    expect(() => new ForwardService({ relayPollUs: 1.5 })).toThrow(/relayPollUs/);
  });
});

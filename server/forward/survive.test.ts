// vmm-relayd outlives the service that started it: a detached (or killed)
// vmmd leaves forwarding up, the next one adopts the relay through its
// control socket and reconciles the rule table; a relay that dies is
// restarted with its rules. Also the control socket's defences: one
// controller at a time, a stale socket, a relay of another protocol,
// peers that are not root, lines that are not the protocol.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createSocket } from "node:dgram";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ForwardService } from "./service.js";
import { findRelayd } from "../../native/relay.js";
import { connect, echo, exchange, neverAccepting, relayWorkersSettled, roundTrips, sleepsPerRoundTrip, tcpRule, tcpServer, waitFor } from "../../test/helpers/forward.js";
import { parseProcStat } from "../stats/proc.js";
import { CleanupStack } from "../cleanup.js";
import { freePort } from "../../test/helpers/net.js";

/** Round trip of one line over an open connection. */
function ping(s: Socket, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("ping timed out")), 5000);
    s.once("data", (b: Buffer) => {
      clearTimeout(timer);
      resolve(String(b));
    });
    s.write(msg);
  });
}

/** One line from a raw control connection (the greeting or an answer). */
function rawControl(path: string): Promise<{ sock: Socket; next: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path });
    let buf = "";
    const waiters: ((l: string) => void)[] = [];
    const lines: string[] = [];
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const w = waiters.shift();
        if (w) w(l);
        else lines.push(l);
      }
    });
    sock.on("close", () => waiters.splice(0).forEach((w) => w("<closed>")));
    sock.once("error", reject);
    sock.once("connect", () =>
      resolve({
        sock,
        next: () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise<string>((r) => waiters.push(r))),
      }),
    );
  });
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(spawnSync("cat", [`/proc/${pid}/stat`], { encoding: "utf8" }).stdout);

describe("vmm-relayd survives its controller", () => {
  let cleanup: CleanupStack;
  let dir: string;
  beforeEach(() => {
    cleanup = new CleanupStack();
    dir = mkdtempSync(join(tmpdir(), "vmm-relay-test-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  });
  afterEach(() => cleanup.run());

  const service = (extra: ConstructorParameters<typeof ForwardService>[0] = {}) => {
    const s = new ForwardService({ relay: "native", relayDir: dir, relayWorkers: 2, ...extra });
    cleanup.push(() => s.close());
    return s;
  };

  it("keeps forwarding while no service controls it; the next one adopts its rules, connections and counters", async () => {
    const { port: g } = await tcpServer(echo, cleanup);
    const udpGuest = createSocket("udp4");
    udpGuest.on("message", (m, r) => udpGuest.send(m, r.port, r.address));
    await new Promise<void>((r) => udpGuest.bind(0, "127.0.0.1", () => r()));
    cleanup.push(() => udpGuest.close());
    const [a, b, u] = [await freePort(), await freePort(), await freePort("udp")];
    const udpRule = { protocol: "udp" as const, listenAddress: "127.0.0.1", listenPort: u, targetAddress: "127.0.0.1", targetPort: udpGuest.address().port };

    const first = service();
    await first.apply("vm-a", [tcpRule(a, g), udpRule]);
    await first.apply("vm-b", [tcpRule(b, g)]);
    const pids = await first.dataPathPids();
    const c = await connect(a);
    cleanup.push(() => c.destroy());
    let reset = false;
    c.on("error", () => (reset = true));
    expect(await ping(c, "one")).toBe("one");
    const client = createSocket("udp4");
    cleanup.push(() => client.close());
    await new Promise<void>((r) => client.bind(0, "127.0.0.1", () => r()));
    const udpPing = (m: string) =>
      new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("udp ping timed out")), 5000);
        client.once("message", (b) => {
          clearTimeout(t);
          resolve(String(b));
        });
        client.send(m, u, "127.0.0.1");
      });
    expect(await udpPing("u1")).toBe("u1");
    await waitFor("counted", () => first.list("vm-a").find((s) => s.protocol === "tcp")!.counters.bytesFromGuest === 3);

    await first.detach();
    // Nobody controls the relay now: established traffic and new connections go on.
    expect(await ping(c, "two")).toBe("two");
    expect(await udpPing("u2")).toBe("u2");
    const during = await connect(a);
    expect(await ping(during, "new")).toBe("new");
    during.destroy();

    const second = service();
    expect(await second.adopt()).toBe(3);
    expect(await second.dataPathPids()).toEqual(pids);
    const tcpA = () => second.list("vm-a").find((s) => s.protocol === "tcp")!;
    expect(tcpA().counters).toMatchObject({ connectionsTotal: 2, bytesToGuest: 9, bytesFromGuest: 9, connectionsActive: 1 });
    // The same rules again: nothing changes, the connection carries on.
    await second.apply("vm-a", [tcpRule(a, g), udpRule]);
    expect(await ping(c, "three")).toBe("three");
    expect(await udpPing("u3")).toBe("u3");
    const udpStatus = second.list("vm-a").find((s) => s.protocol === "udp")!;
    expect(udpStatus.counters).toMatchObject({ connectionsTotal: 1, sessionsActive: 1, bytesToGuest: 6, bytesFromGuest: 6 });
    // vm-b did not claim its rule: pruned.
    await second.pruneAdopted();
    expect(second.list().map((s) => s.owner)).toEqual(["vm-a", "vm-a"]);
    await expect(connect(b)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(reset).toBe(false);
    expect(tcpA().counters.bytesToGuest).toBe(14);
  });

  it("takes the new daemon's limits: a shorter connect timeout applies at once, also next to connects waiting under the old one", async () => {
    const port = await neverAccepting(cleanup);
    const lp = await freePort();
    const first = service({ connectTimeoutMs: 4000 });
    await first.apply("vm", [tcpRule(lp, port)]);
    const slow = exchange(lp, Buffer.from("x"), 10_000); // waits under the 4 s deadline
    await waitFor("the first connect waiting", () => first.list()[0]!.counters.connectionsActive === 1);
    await first.detach();
    const second = service({ connectTimeoutMs: 300 });
    expect(await second.adopt()).toBe(1);
    const t0 = Date.now();
    const fast = await exchange(lp, Buffer.from("y"), 10_000);
    expect(fast.error?.code).toBe("ECONNRESET");
    expect(Date.now() - t0).toBeLessThan(2500);
    expect((await slow).error?.code).toBe("ECONNRESET");
    expect(second.list()[0]!.counters).toMatchObject({ connectFailures: 2, lastConnectError: "ETIMEDOUT" });
  });

  it("takes the new daemon's nice value and busy poll", async () => {
    const { port: g } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    const niceOf = (pid: number) => parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"))!.nice;
    const first = service({ relayNice: 3, relayPollUs: 0 });
    await first.apply("vm", [tcpRule(lp, g)]);
    const pids = await first.dataPathPids();
    expect(pids.map(niceOf)).toEqual([3, 3]);
    expect(await sleepsPerRoundTrip(pids, lp, 1, cleanup)).toBeGreaterThanOrEqual(1);
    await first.detach();
    const second = service({ relayNice: -2, relayPollUs: 1000 });
    expect(await second.adopt()).toBe(1);
    expect(await second.dataPathPids()).toEqual(pids);
    expect(pids.map(niceOf)).toEqual([-2, -2]);
    await roundTrips(lp, 50, cleanup); // the window grows to its maximum
    expect(await sleepsPerRoundTrip(pids, lp, 3, cleanup)).toBeLessThan(0.5);
  });

  it("restarts a killed relay with its rules and carries the counters on", async () => {
    const { port: g } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    const svc = service();
    await svc.apply("vm", [tcpRule(lp, g)]);
    const c = await connect(lp);
    expect(await ping(c, "x")).toBe("x");
    c.destroy();
    // The relay counts a reply right after sending it: wait for the count, so
    // that the kill cannot land between the two.
    await waitFor("the first reply counted", () => svc.list()[0]!.counters.bytesFromGuest === 1);
    const [master] = await svc.dataPathPids();
    process.kill(master!, "SIGKILL");
    let fresh: number[] = [];
    await waitFor("new relay processes", () => {
      void svc.dataPathPids().then((p) => (fresh = p));
      return fresh.length === 2 && !fresh.includes(master!);
    }, 10_000);
    const c2 = await connect(lp);
    c2.on("error", () => undefined);
    cleanup.push(() => c2.destroy());
    expect(await ping(c2, "y")).toBe("y");
    await waitFor("counted", () => svc.list()[0]!.counters.bytesFromGuest === 2);
    expect(svc.list()[0]!.counters).toMatchObject({ connectionsTotal: 2, bytesToGuest: 2 });
  });

  it("refuses a second controller while the first is connected (another vmmd on the same state dir)", async () => {
    const { port: g } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    const first = service();
    await first.apply("vm", [tcpRule(lp, g)]);
    const second = service();
    await expect(second.adopt()).rejects.toThrow(/controlled by another process \(pid \d+\)/);
    // The first one still controls it.
    await first.apply("vm", []);
    await expect(connect(lp)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("replaces a stale control socket", async () => {
    // A socket file nobody listens on (a relay that died without cleaning up).
    const r = spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(join(dir, "control.sock"))}, () => process.kill(process.pid, "SIGKILL"))`]);
    expect(r.signal).toBe("SIGKILL");
    expect(existsSync(join(dir, "control.sock"))).toBe(true);
    const { port: g } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    const svc = service();
    expect(await svc.adopt()).toBe(0);
    await svc.apply("vm", [tcpRule(lp, g)]);
    const c = await connect(lp);
    c.on("error", () => undefined);
    cleanup.push(() => c.destroy());
    expect(await ping(c, "z")).toBe("z");
  });

  it("tells a relay of another protocol version to quit and starts a current one", async () => {
    // An old relay: greets with protocol 1 and quits on Q.
    const old = spawn(process.execPath, [
      "-e",
      `const s = require("net").createServer((c) => { c.write("HELLO 1 " + process.pid + " 3\\n"); c.on("data", (d) => { if (String(d).includes("Q")) { c.end("OK\\n"); process.exit(0); } }); });
       s.listen(${JSON.stringify(join(dir, "control.sock"))}, () => console.log("up"));`,
    ], { stdio: ["ignore", "pipe", "inherit"] });
    cleanup.push(() => old.kill("SIGKILL"));
    await new Promise<void>((r) => old.stdout.once("data", () => r()));
    const exited = new Promise<void>((r) => old.once("exit", () => r()));
    const { port: g } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    const svc = service();
    expect(await svc.adopt()).toBe(0);
    await exited;
    await svc.apply("vm", [tcpRule(lp, g)]);
    const c = await connect(lp);
    c.on("error", () => undefined);
    cleanup.push(() => c.destroy());
    expect(await ping(c, "v")).toBe("v");
  });

  it("answers only its owner: refuses a group- or world-accessible directory and peers that are not root, and survives lines that are not the protocol", async () => {
    const bin = findRelayd();
    chmodSync(dir, 0o755);
    const r = spawnSync(bin, ["--control", dir, "--workers", "1"], { encoding: "utf8", timeout: 5000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/must be a directory of uid 0 with mode 0700 \(is uid 0, mode 0755\)/);
    chmodSync(dir, 0o700);

    const { port: g } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    const svc = service();
    await svc.apply("vm", [tcpRule(lp, g)]);
    await svc.detach();
    const sock = join(dir, "control.sock");
    const asNobody = (): string =>
      spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e",
        `const s = require("net").createConnection(${JSON.stringify(sock)}); s.on("error", (e) => console.log(e.code)); s.on("data", (d) => { console.log(String(d).trim()); s.destroy(); });`,
      ], { encoding: "utf8", timeout: 5000 }).stdout.trim();
    expect(asNobody()).toBe("EACCES"); // the socket is 0600 in a 0700 directory
    // Even with the file system opened up, the relay checks the peer's uid itself.
    chmodSync(dir, 0o711);
    chmodSync(sock, 0o666);
    expect(asNobody()).toBe("ERR peer 1");
    chmodSync(sock, 0o600);
    chmodSync(dir, 0o700);

    const ctl = await rawControl(sock);
    expect(await ctl.next()).toMatch(/^HELLO 2 \d+,\d+ \d+$/);
    for (const bad of ["X", "A 1 tcp 127.0.0.1 1 127.0.0.1 2", "A 1 sctp 127.0.0.1 1 127.0.0.1 2 5000 10 - -", "T 99 127.0.0.1 80 1 1 -", "D 0", "A 5 udp 127.0.0.1 0 127.0.0.1 9 1 1 p -",
      // a timeout must be at most 2^31 - 1 ms (it read as a negative int before)
      "A 6 tcp 127.0.0.1 0 127.0.0.1 9 2147483648 1 - -",
      // settings: nice -20..19, busy poll 0..1000 µs
      "S", "S - - -", "S 20 -", "S -21 -", "S --1 -", "S x -", "S - 1001", "S - -5"]) {
      ctl.sock.write(`${bad}\n`);
      expect(await ctl.next(), bad).toMatch(/^ERR (usage 22|update 2)$/);
    }
    ctl.sock.write("S - -\n"); // changes nothing
    expect(await ctl.next()).toBe("OK");
    ctl.sock.write("A".repeat(5000)); // no newline: not our protocol
    expect(await ctl.next()).toBe("ERR usage 22");
    expect(await ctl.next()).toBe("<closed>");
    // The relay and its rule are unharmed; a controller may connect again.
    const c = await connect(lp);
    c.on("error", () => undefined); // reset when the service closes
    cleanup.push(() => c.destroy());
    expect(await ping(c, "w")).toBe("w");
    const again = service();
    expect(await again.adopt()).toBe(1);
  });

  it("an added rule is live once the master listens: the answer does not wait for the workers", async () => {
    const { port: g } = await tcpServer((s) => s.end("up"), cleanup);
    const svc = service();
    await svc.apply("vm", [tcpRule(await freePort(), g)]);
    // A removal waits for every worker: once it is answered, the worker has
    // also taken the first rule's listener (its answer comes after ours).
    await svc.apply("vm", []);
    const [master, worker] = await svc.dataPathPids();
    // A stopped worker cannot answer: the add used to wait for it (and fail
    // after 3 s, taking the relay down). Now the answer comes once the
    // master listens; the worker takes its copy when it runs again (within
    // the 3 s a worker has to answer).
    process.kill(worker!, "SIGSTOP");
    const lp = await freePort();
    const t0 = performance.now();
    let took: number;
    try {
      await svc.apply("vm2", [tcpRule(lp, g)]);
      took = performance.now() - t0;
    } finally {
      process.kill(worker!, "SIGCONT");
    }
    expect(took).toBeLessThan(1500);
    const s = await connect(lp);
    expect(await new Promise<string>((r) => s.once("data", (b: Buffer) => r(String(b))))).toBe("up");
    s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(await svc.dataPathPids()).toEqual([master, worker]);
    expect(alive(master!) && alive(worker!)).toBe(true);
  });

  it("a worker whose fd table is full leaves a new rule to the other processes, and the add succeeds", async () => {
    const { port: g } = await tcpServer((s) => s.end("up"), cleanup);
    const svc = service();
    await svc.apply("vm", [tcpRule(await freePort(), g)]);
    await svc.apply("vm", []); // as above: the worker is done with the first rule
    const [master, worker] = await svc.dataPathPids();
    // The worker's lowest free fd number becomes its limit: the listener
    // sent to it cannot arrive (SCM_RIGHTS drops it with MSG_CTRUNC).
    const used = new Set(spawnSync("ls", [`/proc/${worker}/fd`], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean).map(Number));
    let free = 0;
    while (used.has(free)) free++;
    const lim = spawnSync("prlimit", [`--pid=${worker}`, `--nofile=${free}:${free}`], { encoding: "utf8" });
    expect(lim.status, lim.stderr).toBe(0);
    const lp = await freePort();
    await svc.apply("vm2", [tcpRule(lp, g)]);
    for (let i = 0; i < 20; i++) {
      const s = await connect(lp);
      expect(await new Promise<string>((r) => s.once("data", (b: Buffer) => r(String(b))))).toBe("up");
      s.destroy();
    }
    expect(await svc.dataPathPids()).toEqual([master, worker]);
    await svc.apply("vm2", []); // removing it is fine too
    expect(await svc.dataPathPids()).toEqual([master, worker]);
  });

  it("a worker that stops answering fails the update; the relay restarts with the rules as they were", async () => {
    const { port: g1 } = await tcpServer((s) => s.end("one"), cleanup);
    const { port: g2 } = await tcpServer((s) => s.end("two"), cleanup);
    const lp = await freePort();
    const svc = service();
    await svc.apply("vm", [tcpRule(lp, g1)]);
    // The worker has taken vm's listener before it is stopped.
    await relayWorkersSettled(svc);
    const [master, worker] = await svc.dataPathPids();
    process.kill(worker!, "SIGSTOP");
    cleanup.push(() => {
      if (alive(worker!)) process.kill(worker!, "SIGKILL");
    });
    const err = await svc.apply("vm", [tcpRule(lp, g2)]).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/retarget tcp 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+ failed: .*worker/);
    expect(svc.list()[0]!.targetPort).toBe(g1);
    await waitFor("the stopped worker gone", () => !alive(worker!) && !alive(master!), 10_000);
    const read = async () => {
      const s = await connect(lp);
      s.on("error", () => undefined);
      return await new Promise<string>((r) => {
        let out = "";
        s.on("data", (b: Buffer) => (out += b.toString()));
        s.on("end", () => s.end());
        s.on("close", () => r(out));
      });
    };
    let got = "";
    await waitFor("the restarted relay forwards", () => {
      void read().then((v) => (got = v), () => undefined);
      return got === "one";
    }, 10_000);
    await svc.apply("vm", [tcpRule(lp, g2)]);
    expect(await read()).toBe("two");
  });
});

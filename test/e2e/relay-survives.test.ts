// Forwarding outlives vmmd. A byte-exact TCP stream of 32 s, a UDP
// request/response stream and a stream of new connections run through a
// forward of a real vmmd while it is killed with SIGKILL and started again:
// no byte lost, no reset, no refused connection. Then the relay itself is
// killed and comes back with its rules.
//
// The forwards are a network's port rules (a vmnet network in host mode, no
// DHCP) to echo servers in a peer namespace on the network's bridge: what is
// under test is the relay across vmmd restarts, not the guest behind it (the
// nat and bridge tests use real guests).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSocket } from "node:dgram";
import { createConnection } from "node:net";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { requireNetns } from "../guest/netns.js";
import { freePort, processesMatching } from "../helpers/net.js";
import { Lan, sh } from "../helpers/lan.js";
import { NetworkMode, NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";
import { Protocol } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { join } from "node:path";

// 10.47.0.0/24: no other test file uses it (files run in parallel in one
// namespace, and a network may not overlap another file's bridge).
const GW = "10.47.0.1";
const PEER = "10.47.0.5";
const STREAM_MS = 32_000;
const ECHO_TCP = 7001;
const ECHO_UDP = 7002;

let d: DaemonHandle | undefined;
let lan: Lan | undefined;

const nets = () => client(NetworkService, transport(d!, "connect", "unix"));

/** The byte at offset i of the test stream (deterministic, not periodic in 2^16). */
const byteAt = (i: number) => (Math.imul(i, 2654435761) >>> 13) & 0xff;
function chunk(from: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let k = 0; k < n; k++) b[k] = byteAt(from + k);
  return b;
}

beforeAll(async () => {
  requireNetns();
  lan = new Lan();
  d = await startDaemon({ tcp: false });
});

afterAll(async () => {
  if (d) {
    await d.stop();
    d.cleanup();
  }
  await lan?.close();
});

describe("forwarding survives vmmd", () => {
  it("a 32 s TCP stream, a UDP stream and new connections across kill -9 vmmd and restart; a killed relay comes back", async () => {
    const [tcpPort, udpPort] = [await freePort(), await freePort()];
    const net = (
      await nets().createNetwork({
        name: "survive",
        config: {
          mode: NetworkMode.HOST,
          ipv4Subnet: "10.47.0.0/24",
          dhcpEnabled: false,
          portForwards: [
            { protocol: Protocol.TCP, listenAddress: "127.0.0.1", listenPort: tcpPort, internalAddress: PEER, internalPort: ECHO_TCP },
            { protocol: Protocol.UDP, listenAddress: "127.0.0.1", listenPort: udpPort, internalAddress: PEER, internalPort: ECHO_UDP },
          ],
        },
      })
    ).network!;
    expect(net.ipv4Gateway).toBe(GW);

    // The peer: a namespace on the network's bridge with TCP and UDP echo servers.
    lan!.netns("survive-peer");
    lan!.veth("svp0", "svp1", "survive-peer");
    sh(["ip", "link", "set", "svp0", "master", net.bridge]);
    sh(["ip", "-n", "survive-peer", "addr", "add", `${PEER}/24`, "dev", "svp1"]);
    sh(["ip", "-n", "survive-peer", "link", "set", "svp1", "up"]);
    lan!.background([
      "ip", "netns", "exec", "survive-peer", process.execPath, "-e",
      `require("net").createServer({ allowHalfOpen: true }, (s) => { s.on("error", () => {}); s.pipe(s); }).listen(${ECHO_TCP}, "${PEER}");
       const u = require("dgram").createSocket("udp4"); u.on("message", (m, r) => u.send(m, r.port, r.address)); u.bind(${ECHO_UDP}, "${PEER}");`,
    ]);
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((r) => {
        const s = createConnection({ host: "127.0.0.1", port: tcpPort });
        s.on("error", () => r(false));
        s.on("connect", () => s.write("up"));
        s.on("data", () => (s.destroy(), r(true)));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }

    const t0 = Date.now();
    const stats = { sent: 0, verified: 0, mismatch: -1, streamError: "", udpSent: 0, udpOk: 0, udpLost: 0, conns: 0, connFailures: [] as string[] };

    // 1. The long stream: write while the relay drains, verify every byte back.
    const stream = createConnection({ host: "127.0.0.1", port: tcpPort, allowHalfOpen: true });
    await new Promise<void>((r, j) => stream.once("connect", () => r()).once("error", j));
    stream.on("error", (e) => (stats.streamError = (e as NodeJS.ErrnoException).code ?? e.message));
    stream.on("data", (b: Buffer) => {
      for (let k = 0; k < b.length; k++) {
        if (b[k] !== byteAt(stats.verified + k) && stats.mismatch < 0) stats.mismatch = stats.verified + k;
      }
      stats.verified += b.length;
    });
    const streamEnded = new Promise<void>((r) => stream.once("end", () => r()));
    const writer = (async () => {
      while (Date.now() - t0 < STREAM_MS && !stats.streamError) {
        // Bounded: at most 1 MiB ahead of what came back.
        if (stats.sent - stats.verified > 1 << 20) {
          await new Promise((r) => setTimeout(r, 2));
          continue;
        }
        const c = chunk(stats.sent, 16 * 1024);
        stats.sent += c.length;
        if (!stream.write(c)) await new Promise<void>((r) => stream.once("drain", () => r()));
      }
      stream.end();
    })();

    // 2. UDP request/response, one in flight, every 20 ms.
    const u = createSocket("udp4");
    await new Promise<void>((r) => u.bind(0, "127.0.0.1", () => r()));
    const udpLoop = (async () => {
      for (let seq = 0; Date.now() - t0 < STREAM_MS; seq++) {
        const msg = `seq-${seq}`;
        // 5 s without a reply: lost (a busy machine delays, it does not drop).
        const got = await new Promise<string>((resolve) => {
          const t = setTimeout(() => resolve(""), 5000);
          u.once("message", (m) => {
            clearTimeout(t);
            resolve(String(m));
          });
          u.send(msg, udpPort, "127.0.0.1");
          stats.udpSent++;
        });
        if (got === msg) stats.udpOk++;
        else stats.udpLost++;
        await new Promise((r) => setTimeout(r, 20));
      }
      u.close();
    })();

    // 3. New connections, one every 50 ms, each an echo round trip.
    const connLoop = (async () => {
      while (Date.now() - t0 < STREAM_MS) {
        const res = await new Promise<string>((resolve) => {
          const s = createConnection({ host: "127.0.0.1", port: tcpPort });
          const t = setTimeout(() => (s.destroy(), resolve("timeout")), 10_000);
          s.on("error", (e: NodeJS.ErrnoException) => (clearTimeout(t), resolve(e.code ?? e.message)));
          s.on("connect", () => s.write("hi"));
          s.on("data", (b) => {
            if (String(b) === "hi") {
              clearTimeout(t);
              s.end();
              resolve("ok");
            }
          });
        });
        stats.conns++;
        if (res !== "ok") stats.connFailures.push(res);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // kill -9 vmmd at 5 s; a new one on the same state directory at 9 s.
    await new Promise((r) => setTimeout(r, 5000));
    const relayBefore = processesMatching(join(d!.stateDir, "relay"));
    expect(relayBefore.length).toBeGreaterThan(0);
    await d!.kill9();
    await new Promise((r) => setTimeout(r, 4000));
    d = await startDaemon({ dir: d!.dir, tcp: false });
    expect(processesMatching(join(d.stateDir, "relay")).sort()).toEqual(relayBefore.sort());
    const listed = (await nets().getNetwork({ id: net.id })).network!;
    expect(listed.config!.portForwards.map((f) => f.listenPort)).toEqual([tcpPort, udpPort]);

    await Promise.all([writer, udpLoop, connLoop]);
    await streamEnded;
    stream.end();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(STREAM_MS);
    expect(stats.streamError).toBe("");
    expect(stats.mismatch).toBe(-1);
    expect(stats.verified).toBe(stats.sent);
    expect(stats.sent).toBeGreaterThan(1 << 20);
    expect(stats.udpLost).toBe(0);
    expect(stats.udpOk).toBe(stats.udpSent);
    expect(stats.connFailures).toEqual([]);
    expect(stats.conns).toBeGreaterThan(100);

    // 4. The relay itself dies: vmmd starts a new one with both rules.
    const master = Math.min(...processesMatching(join(d.stateDir, "relay")));
    process.kill(master, "SIGKILL");
    const deadline = Date.now() + 15_000;
    let back = false;
    while (!back && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const now = processesMatching(join(d.stateDir, "relay"));
      if (now.length === 0 || now.includes(master)) continue;
      back = await new Promise<boolean>((resolve) => {
        const s = createConnection({ host: "127.0.0.1", port: tcpPort });
        s.on("error", () => resolve(false));
        s.on("connect", () => s.write("again"));
        s.on("data", (b) => (s.destroy(), resolve(String(b) === "again")));
      });
    }
    expect(back).toBe(true);
    const v = createSocket("udp4");
    const reply = await new Promise<string>((resolve) => {
      const t = setTimeout(() => resolve("timeout"), 3000);
      v.on("message", (m) => (clearTimeout(t), resolve(String(m))));
      v.send("udp-again", udpPort, "127.0.0.1");
    });
    v.close();
    expect(reply).toBe("udp-again");
  }, 120_000);
});

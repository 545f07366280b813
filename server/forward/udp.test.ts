// UDP sessions: relay, idle expiry that really closes sockets, source
// filtering, session cap; (native) the receive buffers' resident memory.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSocket, type Socket } from "node:dgram";
import { ForwardService } from "./service.js";
import type { ForwardRule } from "./rules.js";
import { fdCountOf, relayWorkersSettled, rssKbOf, sleep, waitFor } from "../../test/helpers/forward.js";
import { CleanupStack } from "../cleanup.js";
import { freePort } from "../../test/helpers/net.js";

const udp = (listenPort: number, targetPort: number): ForwardRule => ({
  protocol: "udp",
  listenAddress: "127.0.0.1",
  listenPort,
  targetAddress: "127.0.0.1",
  targetPort,
});

async function bound(cleanup: CleanupStack, address = "127.0.0.1"): Promise<Socket> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  cleanup.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

async function echoServer(cleanup: CleanupStack): Promise<number> {
  const s = await bound(cleanup);
  s.on("message", (m, r) => s.send(m, r.port, r.address));
  return s.address().port;
}

/** Sends `msg` to `port` and collects replies for `ms`. */
async function ask(s: Socket, port: number, msg: string, ms = 300): Promise<string[]> {
  const got: string[] = [];
  const on = (b: Buffer) => got.push(String(b));
  s.on("message", on);
  s.send(msg, port, "127.0.0.1");
  const end = Date.now() + ms;
  while (got.length === 0 && Date.now() < end) await sleep(5);
  await sleep(30);
  s.off("message", on);
  return got;
}

describe.each(["native", "sockets"] as const)("udp forwarding (%s)", (kind) => {
  let cleanup: CleanupStack;
  beforeEach(() => {
    cleanup = new CleanupStack();
  });
  afterEach(() => cleanup.run());

  /** fds of the processes carrying the bytes (the relay's, or this one). */
  let fdCount: () => number;

  async function service(opts: ConstructorParameters<typeof ForwardService>[0]) {
    const svc = new ForwardService({ ...opts, relay: kind });
    cleanup.push(() => svc.close());
    // A rule of another owner (never connected to) starts the relay process, so fds counted from
    // here on are the rules' own ("warm" sorts after "vm" in list()).
    const spare = await freePort();
    await svc.apply("warm", [{ protocol: "tcp", listenAddress: "127.0.0.1", listenPort: spare, targetAddress: "127.0.0.1", targetPort: 9 }]);
    // The workers take their copies of the listener after the add is answered.
    await relayWorkersSettled(svc);
    const pids = await svc.dataPathPids();
    fdCount = () => fdCountOf(pids);
    return svc;
  }

  it("relays datagrams both ways with one session per client", async () => {
    const svc = await service({});
    const g = await echoServer(cleanup);
    const lp = await freePort("udp");
    await svc.apply("vm", [udp(lp, g)]);
    const a = await bound(cleanup);
    const b = await bound(cleanup);
    expect(await ask(a, lp, "from-a")).toEqual(["from-a"]);
    expect(await ask(b, lp, "from-b")).toEqual(["from-b"]);
    expect(await ask(a, lp, "again")).toEqual(["again"]);
    const c = svc.list()[0]!.counters;
    expect(c).toMatchObject({ sessionsActive: 2, connectionsTotal: 2, bytesToGuest: 17, bytesFromGuest: 17 });
    expect(svc.list()[0]!.relay).toBe(kind);
  });

  it("expires idle sessions and closes their sockets", async () => {
    const svc = await service({ udpIdleMs: 200 });
    const g = await echoServer(cleanup);
    const lp = await freePort("udp");
    await svc.apply("vm", [udp(lp, g)]);
    const clients: Socket[] = [];
    for (let i = 0; i < 20; i++) clients.push(await bound(cleanup));
    const base = fdCount();
    await Promise.all(clients.map((c, i) => ask(c, lp, `m${i}`)));
    expect(svc.list()[0]!.counters.sessionsActive).toBe(20);
    expect(fdCount()).toBe(base + 20); // one connected socket per session
    await waitFor("sessions to expire", () => svc.list()[0]!.counters.sessionsActive === 0, 5000);
    await waitFor("session sockets to close", () => fdCount() === base, 2000);
    // A client coming back gets a fresh session.
    expect(await ask(clients[0]!, lp, "back")).toEqual(["back"]);
    expect(svc.list()[0]!.counters.connectionsTotal).toBe(21);
  });

  it("drops replies that do not come from the guest address", async () => {
    const svc = await service({});
    const guest = await bound(cleanup);
    const impostor = await bound(cleanup);
    guest.on("message", (m, r) => {
      // First a reply from the wrong source port, then the right one.
      impostor.send(`bad:${m.toString()}`, r.port, r.address, () => guest.send(`good:${m.toString()}`, r.port, r.address));
    });
    const lp = await freePort("udp");
    await svc.apply("vm", [udp(lp, guest.address().port)]);
    const c = await bound(cleanup);
    expect(await ask(c, lp, "q1", 500)).toEqual(["good:q1"]);
    expect(await ask(c, lp, "q2", 500)).toEqual(["good:q2"]);
  });

  it("caps sessions per rule", async () => {
    const svc = await service({ maxUdpSessionsPerRule: 3 });
    const g = await echoServer(cleanup);
    const lp = await freePort("udp");
    await svc.apply("vm", [udp(lp, g)]);
    const answered: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await bound(cleanup);
      answered.push((await ask(c, lp, `c${i}`, 200)).length === 1);
    }
    expect(answered).toEqual([true, true, true, false, false]);
    expect(svc.list()[0]!.counters).toMatchObject({ sessionsActive: 3, errors: 2 });
  });

  it("removing the rule closes the listener and every session socket", async () => {
    const svc = await service({});
    const g = await echoServer(cleanup);
    const lp = await freePort("udp");
    const c = await bound(cleanup);
    const base = fdCount();
    await svc.apply("vm", [udp(lp, g)]);
    expect(await ask(c, lp, "x")).toEqual(["x"]);
    expect(fdCount()).toBe(base + 2); // listener + one session
    await svc.remove("vm");
    await waitFor("sockets closed", () => fdCount() === base, 2000);
  });
});

describe("udp forwarding (native): memory", () => {
  const cleanup = new CleanupStack();
  afterEach(() => cleanup.run());

  it("holds only the pages small datagrams reached of its 2 MiB of receive buffers", async () => {
    const svc = new ForwardService({ relay: "native" });
    cleanup.push(() => svc.close());
    const g = await echoServer(cleanup);
    const lp = await freePort("udp");
    await svc.apply("vm", [udp(lp, g)]);
    const pids = await svc.dataPathPids();
    const before = rssKbOf(pids, "Anon");
    // 64 clients: batches of up to 32 datagrams, each in its own buffer.
    const clients = await Promise.all(Array.from({ length: 64 }, () => bound(cleanup)));
    let got = 0;
    for (const c of clients) c.on("message", () => got++);
    for (let round = 1; round <= 10; round++) {
      for (const c of clients) c.send("x".repeat(100), lp, "127.0.0.1");
      await waitFor(`round ${round} echoed`, () => got === 64 * round);
    }
    // Zero-filled buffers (as before) made all 2,048 KiB resident at the first datagram.
    expect(rssKbOf(pids, "Anon") - before).toBeLessThan(512);
    // Without a UDP rule and a connection, the pages go back (an unaligned
    // madvise() failed with EINVAL and kept them before).
    const used = rssKbOf(pids, "Anon");
    await svc.apply("vm", []); // answered before the relay's event loop reaps
    await waitFor("the buffers released", () => rssKbOf(pids, "Anon") < used - 96, 2000);
  });
});

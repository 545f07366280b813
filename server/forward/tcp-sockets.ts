// TCP rules on plain Node sockets: the fallback when the native relay is
// missing or splice(2) does not work. Same semantics as the native relay:
// half-close propagated (allowHalfOpen + pipe ends the other side's write
// half only), resets propagated (resetAndDestroy), connect deadline, per-rule
// connection limit, TCP_NODELAY, PROXY protocol v2 (proxy.ts).
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { zeroCounters, type ForwardCounters, type ForwardRule } from "./rules.js";
import type { RelayLimits, RuleRelay } from "./relay.js";
import { proxyV2Header } from "./proxy.js";

interface Pair {
  client: Socket;
  guest: Socket;
  done: boolean;
}

/** Listens for `rule` and relays its connections in this process. */
export async function openSocketsTcp(rule: ForwardRule, limits: RelayLimits): Promise<RuleRelay> {
  let target = { host: rule.targetAddress, port: rule.targetPort };
  let proxy = rule.proxyProtocol ?? false;
  const c: ForwardCounters = zeroCounters();
  const pairs = new Set<Pair>();

  const reset = (s: Socket) => {
    if (s.destroyed) return;
    // resetAndDestroy needs a TCP handle; a socket that never got one is just destroyed.
    try {
      s.resetAndDestroy();
    } catch {
      s.destroy();
    }
  };
  const finish = (p: Pair) => {
    if (p.done) return;
    p.done = true;
    pairs.delete(p);
    c.connectionsActive--;
  };

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (client) => {
    client.on("error", () => {}); // handled through "close" below
    if (c.connectionsActive >= limits.maxConnectionsPerRule) {
      c.errors++;
      reset(client);
      return;
    }
    c.connectionsActive++;
    c.connectionsTotal++;
    const guest = createConnection({ ...target, noDelay: true, allowHalfOpen: true });
    const p: Pair = { client, guest, done: false };
    pairs.add(p);
    let connected = false;
    const timer = setTimeout(() => {
      c.errors++;
      c.connectFailures++;
      c.lastConnectError = "ETIMEDOUT";
      guest.destroy();
      reset(client);
    }, limits.connectTimeoutMs);
    guest.once("connect", () => {
      connected = true;
      clearTimeout(timer);
      if (proxy) {
        const header = proxyV2Header(client.remoteAddress ?? "", client.remotePort ?? 0, client.localAddress ?? "", client.localPort ?? 0);
        if (!header) {
          c.errors++;
          reset(guest);
          reset(client);
          return;
        }
        guest.write(header);
      }
      client.on("data", (b: Buffer) => (c.bytesToGuest += b.length));
      guest.on("data", (b: Buffer) => (c.bytesFromGuest += b.length));
      client.pipe(guest); // client FIN -> guest.end() (SHUT_WR), guest still readable
      guest.pipe(client);
      client.resume();
    });
    // An error on one side resets the other: the peer sees what we saw.
    client.once("error", () => {
      c.errors++;
      reset(guest);
    });
    guest.once("error", (e: NodeJS.ErrnoException) => {
      c.errors++;
      if (!connected) {
        clearTimeout(timer);
        c.connectFailures++;
        c.lastConnectError = e.code ?? "EIO";
      }
      reset(client);
    });
    let closes = 0;
    const onClose = () => {
      if (++closes === 2) finish(p);
    };
    client.once("close", () => {
      if (!guest.destroyed && !connected) guest.destroy();
      onClose();
    });
    guest.once("close", () => {
      clearTimeout(timer);
      // The guest closed (or was reset) before the client finished: once the
      // client has nothing more to receive, let it go too.
      if (!client.destroyed && !connected) reset(client);
      onClose();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(
      { host: rule.listenAddress, port: rule.listenPort, exclusive: true, ipv6Only: rule.listenAddress.includes(":"), backlog: 4096 },
      () => {
        server.off("error", reject);
        resolve();
      },
    );
  });
  server.on("error", () => (c.errors++));

  const resetAll = () => {
    for (const p of [...pairs]) {
      reset(p.client);
      reset(p.guest);
    }
  };

  const addr = server.address();
  return {
    kind: "sockets",
    port: typeof addr === "object" && addr ? addr.port : rule.listenPort,
    counters: () => ({ ...c }),
    async update(r) {
      proxy = r.proxyProtocol ?? false;
      if (r.targetAddress === target.host && r.targetPort === target.port) return;
      target = { host: r.targetAddress, port: r.targetPort };
      resetAll();
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      resetAll();
      await closed;
      // Every socket's "close" has fired once server.close() calls back.
    },
  };
}

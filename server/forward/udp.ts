// UDP rules: one session per client address, each with its own socket
// connect()ed to the guest, so the kernel drops datagrams from any other
// source. Sessions idle for udpIdleMs are closed (their socket really
// closed, unlike upstream), and at most maxUdpSessionsPerRule exist at once;
// datagrams from further clients are dropped and counted as errors.
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import { zeroCounters, type ForwardCounters, type ForwardRule } from "./rules.js";
import type { RelayLimits, RuleRelay } from "./relay.js";

interface Session {
  sock: Socket;
  last: number;
  ready: boolean;
  /** Datagrams received before connect() completed (bounded). */
  queue: Buffer[];
}

const kMaxQueued = 64;

/** Binds `rule`'s UDP port and relays its sessions in this process. */
export async function openUdp(rule: ForwardRule, limits: RelayLimits): Promise<RuleRelay> {
  let target = { address: rule.targetAddress, port: rule.targetPort };
  const c: ForwardCounters = zeroCounters();
  const sessions = new Map<string, Session>();
  const listener = isIPv6(rule.listenAddress)
    ? createSocket({ type: "udp6", ipv6Only: true })
    : createSocket({ type: "udp4" });

  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.bind({ address: rule.listenAddress, port: rule.listenPort, exclusive: true }, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  listener.on("error", () => c.errors++);

  const end = (key: string, s: Session) => {
    if (sessions.get(key) !== s) return;
    sessions.delete(key);
    c.sessionsActive = sessions.size;
    s.sock.close();
  };

  const open = (key: string, rinfo: RemoteInfo): Session | undefined => {
    if (sessions.size >= limits.maxUdpSessionsPerRule) {
      c.errors++;
      return undefined;
    }
    const sock = createSocket({ type: isIPv6(target.address) ? "udp6" : "udp4" });
    const s: Session = { sock, last: Date.now(), ready: false, queue: [] };
    sessions.set(key, s);
    c.sessionsActive = sessions.size;
    c.connectionsTotal++;
    sock.on("error", () => c.errors++); // e.g. ECONNREFUSED from an ICMP port unreachable
    sock.on("message", (msg) => {
      s.last = Date.now();
      c.bytesFromGuest += msg.length;
      listener.send(msg, rinfo.port, rinfo.address, (err) => {
        if (err) c.errors++;
      });
    });
    sock.connect(target.port, target.address, () => {
      s.ready = true;
      for (const m of s.queue) send(s, m);
      s.queue = [];
    });
    return s;
  };

  const send = (s: Session, msg: Buffer) => {
    s.sock.send(msg, (err) => {
      if (err) c.errors++;
      else c.bytesToGuest += msg.length;
    });
  };

  listener.on("message", (msg, rinfo) => {
    const key = `${rinfo.address} ${rinfo.port}`;
    const s = sessions.get(key) ?? open(key, rinfo);
    if (!s) return;
    s.last = Date.now();
    if (s.ready) send(s, msg);
    else if (s.queue.length < kMaxQueued) s.queue.push(msg);
    else c.errors++;
  });

  const sweep = setInterval(
    () => {
      const cutoff = Date.now() - limits.udpIdleMs;
      for (const [key, s] of sessions) if (s.last <= cutoff) end(key, s);
    },
    Math.max(10, Math.min(1000, Math.floor(limits.udpIdleMs / 4))),
  );
  sweep.unref();

  const closeAll = () => {
    for (const [key, s] of [...sessions]) end(key, s);
  };

  return {
    kind: "sockets",
    port: listener.address().port,
    counters: () => ({ ...c }),
    async update(r) {
      if (r.targetAddress === target.address && r.targetPort === target.port) return;
      target = { address: r.targetAddress, port: r.targetPort };
      closeAll();
    },
    async close() {
      clearInterval(sweep);
      closeAll();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

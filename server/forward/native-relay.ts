// TCP and UDP rules on vmm-relayd (native/relayd/): the relay's
// processes accept, connect, relay bytes and run UDP sessions; this file only
// adds, retargets and removes rules and reads their counters (synchronously,
// from the relay's shared counter file).
import type { RelayDaemon } from "../../native/relay.js";
import { zeroCounters, type ForwardCounters, type ForwardRule } from "./rules.js";
import type { RelayLimits, RuleRelay } from "./relay.js";

export async function openNativeRule(relay: RelayDaemon, rule: ForwardRule, limits: RelayLimits): Promise<RuleRelay> {
  const id = relay.allocate();
  const udp = rule.protocol === "udp";
  let port: number;
  try {
    // Addresses are validated IP literals (validateRules): no spaces, no newlines.
    const answer = await relay.request(
      [
        "A",
        id,
        rule.protocol,
        rule.listenAddress,
        rule.listenPort,
        rule.targetAddress,
        rule.targetPort,
        udp ? limits.udpIdleMs : limits.connectTimeoutMs,
        udp ? limits.maxUdpSessionsPerRule : limits.maxConnectionsPerRule,
      ].join(" "),
    );
    port = Number(answer);
  } catch (e) {
    relay.release(id);
    throw e;
  }
  let last: ForwardCounters = zeroCounters();
  let closed = false;
  const r: RuleRelay = {
    port,
    counters() {
      if (!closed) {
        const c = relay.counters(id);
        // TCP rules have no sessions, UDP rules no connections.
        last = udp ? { ...c, connectionsActive: 0 } : { ...c, sessionsActive: 0 };
      }
      return last;
    },
    async retarget(targetAddress, targetPort) {
      await relay.request(`T ${id} ${targetAddress} ${targetPort}`);
    },
    async close() {
      if (closed) return;
      r.counters();
      closed = true;
      try {
        await relay.request(`D ${id}`);
        relay.release(id); // only once the relay no longer uses the slot
      } catch {
        // the relay is gone: its sockets went with it
      }
      last = { ...last, connectionsActive: 0, sessionsActive: 0 };
    },
  };
  return r;
}

// TCP rules on the native splice relay (native/src/linux/relay.cc): the
// addon's epoll thread accepts, connects and splices; this file only opens,
// retargets and closes listeners and reads their counters.
import { getSystemErrorName } from "node:util";
import type { NativeRelay } from "../../native/relay.js";
import { zeroCounters, type ForwardCounters, type ForwardRule } from "./rules.js";
import type { RelayLimits, RuleRelay } from "./relay.js";

/** Native errors carry a negative errno; give them Node's `code` too. */
export function withCode(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.errno === "number" && err.code === undefined) {
    try {
      err.code = getSystemErrorName(err.errno);
    } catch {
      // not an errno: leave as is
    }
  }
  return err;
}

export function openNativeTcp(relay: NativeRelay, rule: ForwardRule, limits: RelayLimits): RuleRelay {
  let opened: { id: number; port: number };
  try {
    opened = relay.relayListen({
      listenAddress: rule.listenAddress,
      listenPort: rule.listenPort,
      targetAddress: rule.targetAddress,
      targetPort: rule.targetPort,
      connectTimeoutMs: limits.connectTimeoutMs,
      maxConnections: limits.maxConnectionsPerRule,
    });
  } catch (e) {
    throw withCode(e);
  }
  const { id, port } = opened;
  let last: ForwardCounters = zeroCounters();
  let closed = false;
  return {
    port,
    counters() {
      if (closed) return last;
      const c = relay.relayStats(id);
      if (c) last = { ...c, sessionsActive: 0 };
      return last;
    },
    retarget(targetAddress, targetPort) {
      relay.relayRetarget(id, targetAddress, targetPort);
    },
    async close() {
      if (closed) return;
      this.counters();
      closed = true;
      relay.relayClose(id);
      last = { ...last, connectionsActive: 0 };
    },
  };
}

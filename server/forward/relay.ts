// What the service needs from one rule's relay, whatever carries its bytes.
import type { ForwardCounters, ForwardRule } from "./rules.js";

export interface RuleRelay {
  /** The bound port (equals the rule's listenPort). */
  readonly port: number;
  counters(): ForwardCounters;
  /** New traffic goes to the new target; connections/sessions to the old one are closed. */
  retarget(targetAddress: string, targetPort: number): void | Promise<void>;
  /** Closes the listener and every connection or session of the rule. */
  close(): Promise<void>;
}

export interface RelayLimits {
  connectTimeoutMs: number;
  maxConnectionsPerRule: number;
  udpIdleMs: number;
  maxUdpSessionsPerRule: number;
}

export type OpenRelay = (rule: ForwardRule, limits: RelayLimits) => Promise<RuleRelay>;

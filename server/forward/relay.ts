// What the service needs from one rule's relay, whatever carries its bytes.
import type { ForwardCounters, ForwardRule, RelayKind } from "./rules.js";

/** One rule, live in some data path (vmm-relayd, Node sockets or nftables). */
export interface RuleRelay {
  readonly kind: RelayKind;
  /** The bound port (equals the rule's listenPort). */
  readonly port: number;
  counters(): ForwardCounters;
  /**
   * Applies the rule's new target and options to new connections; those to
   * an old target are closed (an unchanged target keeps them).
   */
  update(rule: ForwardRule): Promise<void>;
  /** Closes the listener and every connection or session of the rule. */
  close(): Promise<void>;
  /** Set when the rule does not forward right now, and why (a relay restart could not bind it again). */
  readonly broken?: string | undefined;
}

/** Limits of userspace rules (ForwardServiceOptions). */
export interface RelayLimits {
  connectTimeoutMs: number;
  maxConnectionsPerRule: number;
  udpIdleMs: number;
  maxUdpSessionsPerRule: number;
}

/** A rule found live in a data path when the service started, with the owner it was applied for. */
export interface AdoptedRule {
  owner: string;
  rule: ForwardRule;
  relay: RuleRelay;
}

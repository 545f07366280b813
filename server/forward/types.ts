// What the floors above need of the port forwarder (ForwardService), as
// interfaces: the VM manager and the vmnet backend apply and remove rules
// (Forwarder), the RPC layer reads them for GetInfo and GetMeta
// (ForwardView). They depend on these, not on the service, so tests can
// pass fakes and daemon.ts wires the one real service into all of them.
import type { ForwardRule, ForwardStatus } from "./rules.js";

/** Applies and removes the rules of one owner (a VM id or "network:<id>"). */
export interface Forwarder {
  /** Makes `rules` the complete rule set of `owner` (a diff; all or nothing). */
  apply(owner: string, rules: ForwardRule[]): Promise<void>;
  /** Closes every rule of `owner`; an unknown owner is a no-op. */
  remove(owner: string): Promise<void>;
}

/** Read-only view of the forwarder for the API. */
export interface ForwardView {
  /** Rules with live counters, of one owner or all. */
  list(owner?: string): ForwardStatus[];
  /** "native" or "sockets". */
  readonly relayKind: string;
}

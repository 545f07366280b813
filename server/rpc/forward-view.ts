// What the RPC layer reads of the forward service (server/forward) for
// GetInfo and GetMeta.
import type { ForwardStatus } from "../forward/index.js";

export type { ForwardStatus };

export interface ForwardView {
  list(owner?: string): ForwardStatus[];
  readonly relayKind: string;
}

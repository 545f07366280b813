// What the RPC layer reads of the forward service (server/forward) for
// GetInfo and GetMeta.
export interface ForwardStatus {
  owner: string;
  protocol: "tcp" | "udp";
  listenAddress: string;
  listenPort: number;
  targetAddress: string;
  targetPort: number;
  relay: string;
  counters: {
    connectionsActive: number;
    connectionsTotal: number;
    bytesToGuest: number;
    bytesFromGuest: number;
    sessionsActive: number;
    errors: number;
  };
}

export interface ForwardView {
  list(owner?: string): ForwardStatus[];
  readonly relayKind: string;
}

// Types of the vmnet layer: network records as persisted under
// <state_dir>/networks/<id>.json, raw API input, and the backend contract
// (Linux: bridge + dnsmasq + nftables; macOS: vmnet.framework).

/** host: guests and the host only; shared: plus NAT out of an external interface. */
export type NetworkMode = "host" | "shared";

/** A network-level port rule: host listen address:port -> guest address:port. */
export interface NetworkPortForwardSpec {
  protocol: "tcp" | "udp";
  listenAddress: string;
  listenPort: number;
  internalAddress: string;
  internalPort: number;
  /** "userspace" or "nat"; absent: the daemon's `[forward] default_path`. */
  path?: "userspace" | "nat";
  /** Userspace TCP: a PROXY protocol v2 header first. */
  proxyProtocol?: boolean;
}

/** A network's validated configuration, defaults filled in. */
export interface NetworkSpec {
  mode: NetworkMode;
  ipv4Subnet: string;
  ipv6Prefix: string;
  mtu: number;
  dhcpEnabled: boolean;
  dhcpReservations: { mac: string; ipv4: string }[];
  nat44Enabled: boolean;
  nat66Enabled: boolean;
  dnsProxyEnabled: boolean;
  routerAdvertisementEnabled: boolean;
  portForwards: NetworkPortForwardSpec[];
  externalInterface: string;
}

/** One network as persisted: identity, spec, host names and its holders. */
export interface NetworkRecord {
  version: 1;
  id: string;
  name: string;
  createdAt: string;
  spec: NetworkSpec;
  bridge: string;
  gateway: string;
  holders: { id: string; description: string; since: string }[];
}

/** Raw NetworkConfig from the API; enums named, unknown as "?N"; optionals undefined when unset. */
export interface RawNetworkConfig {
  mode: string | undefined;
  ipv4Subnet: string;
  ipv6Prefix: string;
  mtu: number;
  dhcpEnabled?: boolean;
  dhcpReservations: { mac: string; ipv4: string }[];
  nat44Enabled?: boolean;
  nat66Enabled?: boolean;
  dnsProxyEnabled?: boolean;
  routerAdvertisementEnabled?: boolean;
  portForwards: {
    protocol: string | undefined;
    listenAddress: string;
    listenPort: number;
    internalAddress: string;
    internalPort: number;
    /** undefined (the daemon's default), "userspace", "nat" or "?N". */
    path: string | undefined;
    proxyProtocol: boolean;
  }[];
  externalInterface: string;
}

/** Host side of a network (Linux: bridge + dnsmasq + nftables). */
export interface NetworkBackend {
  /** Creates (or re-creates after a restart) the network on the host; idempotent. */
  realize(rec: NetworkRecord): Promise<void>;
  /** Removes everything realize() created. */
  destroy(rec: NetworkRecord): Promise<void>;
  /** Backends without a host bridge hand out one datagram fd per NIC. */
  attach?(rec: NetworkRecord, mac: string): number;
  /** The network's dnsmasq lease file, when the backend runs one (the daemon reconciles leases from it at start). */
  leaseFile?(rec: NetworkRecord): string;
}

/** Which VMs use a network (the VM manager answers; the registry never holds it). */
export interface VmAttachments {
  /** Ids of the VMs with a NIC on network `networkId`. */
  attachedTo(networkId: string): string[];
}

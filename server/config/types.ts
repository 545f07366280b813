// vmm.toml as types. Leaf modules depend on these types only; loading,
// defaults and validation live in load.ts, defaults.ts and validate.ts.

/**
 * A NIC's networking mode: how its frames reach the host (QEMU slirp, passt, a bridge, a TAP or
 * macvtap the daemon opens, a vmnet network, or a verbatim netdev).
 */
export type NetMode = "user" | "passt" | "bridge" | "tap" | "macvtap" | "vmnet" | "custom";
/** Netdev types a custom NIC can be allowed to use (server/vm/netdev-policy.ts checks their options). */
export const CUSTOM_NETDEV_TYPES: readonly string[] = ["user", "socket", "stream", "dgram"];
/** Every NetMode, in the order messages and `--help` list them. */
export const NET_MODES: readonly NetMode[] = ["user", "passt", "bridge", "tap", "macvtap", "vmnet", "custom"];

/** `[api]`: where the API listens and how long a connection may dawdle. */
export interface ApiConfig {
  /** Unix socket path; "" disables the unix listener. */
  socket: string;
  /** Permission bits of the socket file. */
  socketMode: number;
  /** "host:port" TCP listener; "" disables it. */
  tcp: string;
  /** Allow a TCP listener on a non-loopback address. */
  allowRemote: boolean;
  /** Open connections per listener (each its own cap); more are closed at accept. */
  maxConnections: number;
  /** Request headers (HTTP/2: the client's SETTINGS) must be complete within this. */
  headerTimeoutSeconds: number;
  /** An incomplete request body may go this long without a byte. */
  bodyTimeoutSeconds: number;
  /** A connection with nothing in flight (keep-alive, HTTP/2 without streams) is closed after this. */
  idleTimeoutSeconds: number;
}

/**
 * `[auth]`: bearer tokens; both lists empty turns authentication off (the socket's mode is then the
 * access control).
 */
export interface AuthConfig {
  /** Bearer tokens that may call every RPC. Empty with leaseTokens empty: no auth. */
  tokens: string[];
  /** Bearer tokens that may only call ReportDhcpLease (for the dnsmasq hook). */
  leaseTokens: string[];
}

/** `[qemu]`: the QEMU binary, accelerator, bridge helper and the user guests run as. */
export interface QemuConfig {
  binary: string;
  /** "auto" (kvm when /dev/kvm is usable, else tcg), "tcg", "kvm", or "kvm:tcg" (same as auto). */
  accel: string;
  bridgeHelper: string;
  /** Seconds a graceful StopVm waits before killing QEMU. */
  stopTimeoutSeconds: number;
  /**
   * Unprivileged user QEMU runs as (`-runas`/`-run-with user=`) once it has
   * opened what it needs as root; never root. Created by scripts/setup.sh.
   */
  user: string;
}

/** `[networking]`: default and allowed NIC modes, bridges, lease checking, passt. */
export interface NetworkingConfig {
  defaultMode: NetMode;
  /** 0-3 bytes, "52:54:00" form; "" for none. */
  macPrefix: string;
  /** Default bridge for bridge and tap modes. */
  bridge: string;
  /** Default parent device for macvtap. */
  macvtapParent: string;
  /** Modes CreateVm may request. */
  allowedModes: NetMode[];
  /** Netdev types a custom NIC may use (a subset of server/vm/netdev-policy.ts's allow-list). */
  customNetdevTypes: string[];
  /** Bridges a VM may name; the default bridge is always allowed. */
  allowedBridges: string[];
  /** macvtap parents a VM may name; the default parent is always allowed. */
  allowedMacvtapParents: string[];
  /** Subnet (CIDR) of each bridge: lease reports must fall inside it. */
  bridgeSubnets: Record<string, string>;
  /**
   * dnsmasq lease file of each bridge, read at start so leases converge
   * without the hook. Default for every bridge in bridgeSubnets:
   * /var/lib/vmm/bridge-<bridge>/dnsmasq.leases (scripts/setup-bridge.sh's).
   */
  bridgeLeaseFiles: Record<string, string>;
  /**
   * "arp": a lease is believed once the NIC's MAC answers ARP for it on the
   * NIC's bridge (neighbour table or probe). "off": believed as reported.
   */
  leaseVerification: "arp" | "off";
  /** Seconds between re-verifications of every believed lease. */
  leaseVerifyIntervalSeconds: number;
  /** Must be set explicitly to forward ports of bridge/tap/macvtap/vmnet guests. */
  forwardServiceEnabled: boolean;
  passtBinary: string;
  /**
   * Host identity passt uses; "" / 0: copied by passt from the interface of
   * the default route (a host without one, such as an isolated namespace,
   * must set all four).
   */
  passtInterface: string;
  passtAddress: string;
  passtPrefixLength: number;
  passtGateway: string;
}

/** `[forward]`: the port forwarder's data path, allowed ports and addresses, and its limits. */
export interface ForwardConfig {
  /** "auto" (native splice when available), "native" or "sockets". */
  relay: "auto" | "native" | "sockets";
  /**
   * Longest busy poll of a vmm-relayd process before it sleeps, in µs
   * (0..1000; 0: never). The relay polls only while its events come closer
   * together than this (native/relayd/engine.cc).
   */
  relayPollUs: number;
  /** Host ports VMs may map, inclusive. */
  portMin: number;
  portMax: number;
  /** Host addresses VMs may listen on. */
  allowedListenAddresses: string[];
  connectTimeoutMs: number;
  maxConnectionsPerRule: number;
  udpIdleSeconds: number;
  maxUdpSessionsPerRule: number;
  /** Path of ports that do not name one: "userspace" (vmm-relayd) or "nat" (nftables DNAT). */
  defaultPath: "userspace" | "nat";
}

/** `[vmnet]`: the networks CreateNetwork makes (subnet pool, bridge names, DHCP hook, holders). */
export interface VmnetConfig {
  /** Pool that networks without a subnet get a /24 from. */
  subnetPool: string;
  /** Prefix of bridge names created for networks. */
  bridgePrefix: string;
  /** dhcp-script of network dnsmasq instances; "": the bundled hook (native/build/Release/vmm-dhcp-hook when built, else clients/dnsmasq-hook/vmm-dhcp-hook). */
  dhcpHook: string;
  /** Holders (AcquireNetwork) one network may have at once. */
  maxHoldersPerNetwork: number;
}

/** `[images]`: where VM images are found. */
export interface ImagesConfig {
  /** Directory of images (<dir>/<name>/disk.qcow2|disk.raw, vmlinuz, initrd, cmdline). */
  dir: string;
}

/** `[console]`: rotation of each VM's serial log. */
export interface ConsoleConfig {
  /** A VM's serial log is rotated when it grows past this many bytes. */
  logMaxBytes: number;
  /** Rotated logs kept (serial.log.1 ... serial.log.N); 0 keeps none. */
  logFiles: number;
}

/** `[metrics]`: the optional metrics-only listener. */
export interface MetricsConfig {
  /**
   * "host:port" of a listener serving only GET /metrics (for a Prometheus
   * that cannot reach the API socket); "" disables it. /metrics is on the
   * API listeners regardless. Both need an admin token when auth is on.
   */
  listen: string;
}

/** `[ui]`: the web console. */
export interface UiConfig {
  /** Serve the web console under /ui/ on the API listeners. */
  enabled: boolean;
}

/**
 * vmm.toml, filled: every value set (fillDefaults) and checked (validateConfig). Field names are
 * the TOML keys in camelCase.
 */
export interface Config {
  /** Directory of all daemon state (VM records, networks, sockets). */
  stateDir: string;
  /**
   * Nice value (-20..19) of vmmd's event loop thread and of vmm-relayd's
   * processes. What vmmd starts (QEMU, dnsmasq, passt) begins at 0 when it
   * is negative and inherits it when it is positive.
   */
  nice: number;
  api: ApiConfig;
  auth: AuthConfig;
  qemu: QemuConfig;
  networking: NetworkingConfig;
  forward: ForwardConfig;
  vmnet: VmnetConfig;
  images: ImagesConfig;
  console: ConsoleConfig;
  metrics: MetricsConfig;
  ui: UiConfig;
}

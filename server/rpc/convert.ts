// Conversions between the protobuf contract (gen/ts) and domain types.
// Pure functions; enums the domain does not know arrive as "?N" so that
// validation can name them.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { NetMode } from "../config/types.js";
import { modeName, NETWORKING_MODES } from "../contract.js";
import type { ForwardStatus } from "../forward/rules.js";
import type { NetworkRecord, RawNetworkConfig } from "../vmnet/types.js";
import type { NetworkStatus } from "../vmnet/registry.js";
import type { LeaseRecord, RawPort, RawVmSpec, VmView, VmStatus as DomainStatus } from "../vm/types.js";
import type { LeaseState } from "../net/lease-book.js";
import type { CloudInitSpec } from "../image/spec.js";
import type { DiskView } from "../image/disks.js";
import type { ImageEntry } from "../image/catalog.js";
import {
  ForwardInfoSchema,
  ForwardPath,
  LeaseSchema,
  LeaseVerification,
  NetworkingMode,
  Protocol,
  VmInfoSchema,
  VmStatus,
  ImageSchema,
  type CloudInit,
  type ForwardInfo,
  type Image,
  type Lease,
  type PortMapping,
  type VmConfig,
  type VmInfo,
} from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode, NetworkSchema, NetworkState, type Network, type NetworkConfig } from "../../gen/ts/vmm/v1/network_pb.js";

/** The proto enum value of a networking mode. */
export function modeToProto(m: NetMode): NetworkingMode {
  return NETWORKING_MODES[m];
}

/** A NIC mode as the validator takes it: undefined when unset, "?N" when unknown. */
function modeFromProto(m: NetworkingMode): string | undefined {
  if (m === NetworkingMode.UNSPECIFIED) return undefined;
  return modeName(m) ?? `?${m}`;
}

export function protocolFromProto(p: Protocol): string | undefined {
  if (p === Protocol.TCP) return "tcp";
  if (p === Protocol.UDP) return "udp";
  return p === Protocol.UNSPECIFIED ? undefined : `?${p}`;
}

export function protocolToProto(p: "tcp" | "udp"): Protocol {
  return p === "tcp" ? Protocol.TCP : Protocol.UDP;
}

/** A ForwardPath as the domain spells it: undefined (the daemon's default), "userspace", "nat" or "?N". */
export function pathFromProto(p: ForwardPath): string | undefined {
  if (p === ForwardPath.USERSPACE) return "userspace";
  if (p === ForwardPath.NAT) return "nat";
  return p === ForwardPath.UNSPECIFIED ? undefined : `?${p}`;
}

/** The protobuf enum value of a domain path; UNSPECIFIED when it follows the daemon's default. */
export function pathToProto(p: "userspace" | "nat" | undefined): ForwardPath {
  return p === "userspace" ? ForwardPath.USERSPACE : p === "nat" ? ForwardPath.NAT : ForwardPath.UNSPECIFIED;
}

export function portsFromProto(ports: PortMapping[]): RawPort[] {
  return ports.map((p) => ({
    protocol: protocolFromProto(p.protocol),
    hostAddress: p.hostAddress,
    hostPort: p.hostPort,
    vmPort: p.vmPort,
    nicIndex: p.nicIndex,
    path: pathFromProto(p.path),
    proxyProtocol: p.proxyProtocol,
  }));
}

export function specFromProto(c: VmConfig | undefined): RawVmSpec {
  return {
    name: c?.name ?? "",
    vcpus: c?.vcpus ?? 0,
    memoryMib: c?.memoryMib ?? 0,
    kernel: c?.kernel ?? "",
    initrd: c?.initrd ?? "",
    cmdline: c?.cmdline ?? "",
    disk: c?.disk ?? "",
    nics: (c?.nics ?? []).map((n) => ({
      mode: modeFromProto(n.mode),
      bridge: n.bridge,
      macvtapParent: n.macvtapParent,
      networkId: n.networkId,
      customNetdev: n.customNetdev,
    })),
    ports: portsFromProto(c?.ports ?? []),
    autoRestart: c?.autoRestart ?? false,
    image: c?.image ?? "",
    imageSizeMib: c?.imageSizeMib ?? 0,
    disks: (c?.disks ?? []).map((d) => ({ image: d.image, sizeMib: d.sizeMib })),
    cloudInit: cloudInitFromProto(c?.cloudInit),
    labels: { ...(c?.labels ?? {}) },
  };
}

/** undefined when the message is absent (presence matters: an empty one is a seed with defaults). */
export function cloudInitFromProto(c: CloudInit | undefined): CloudInitSpec | undefined {
  if (c === undefined) return undefined;
  return { userData: c.userData, sshAuthorizedKeys: [...c.sshAuthorizedKeys], hostname: c.hostname, networkConfig: c.networkConfig };
}

const STATUS: Record<DomainStatus, VmStatus> = {
  stopped: VmStatus.STOPPED,
  starting: VmStatus.STARTING,
  running: VmStatus.RUNNING,
  stopping: VmStatus.STOPPING,
  exited: VmStatus.EXITED,
};

/** The protobuf enum value of a domain VM status. */
export function statusToProto(s: DomainStatus): VmStatus {
  return STATUS[s];
}

export function forwardToProto(f: ForwardStatus): ForwardInfo {
  return create(ForwardInfoSchema, {
    protocol: protocolToProto(f.protocol),
    listenAddress: f.listenAddress,
    listenPort: f.listenPort,
    targetAddress: f.targetAddress,
    targetPort: f.targetPort,
    relay: f.relay,
    counters: {
      connectionsActive: BigInt(f.counters.connectionsActive),
      connectionsTotal: BigInt(f.counters.connectionsTotal),
      bytesToGuest: BigInt(f.counters.bytesToGuest),
      bytesFromGuest: BigInt(f.counters.bytesFromGuest),
      sessionsActive: BigInt(f.counters.sessionsActive),
      errors: BigInt(f.counters.errors),
    },
    proxyProtocol: f.proxyProtocol ?? false,
    connectFailures: BigInt(f.counters.connectFailures),
    lastConnectError: f.counters.lastConnectError,
    error: f.error ?? "",
  });
}

export function imageToProto(e: ImageEntry): Image {
  return create(ImageSchema, {
    name: e.name,
    disk: e.disk?.path ?? "",
    diskFormat: e.disk?.format ?? "",
    diskFileBytes: BigInt(e.disk?.fileBytes ?? 0),
    kernel: e.kernel ?? "",
    initrd: e.initrd ?? "",
    cmdline: e.cmdline ?? "",
    problem: e.problem ?? "",
  });
}

export function vmToProto(v: VmView, opts: { brief: boolean; forwards: ForwardInfo[]; disks?: DiskView[] }): VmInfo {
  const { record: r, runtime: rt } = v;
  const running = rt.status === "running" || rt.status === "stopping";
  const started = rt.startedAt && running ? new Date(rt.startedAt) : undefined;
  return create(VmInfoSchema, {
    id: r.id,
    name: r.spec.name,
    status: STATUS[rt.status],
    instanceId: rt.instanceId,
    createdAt: timestampFromDate(new Date(r.createdAt)),
    startedAt: started ? timestampFromDate(started) : undefined,
    uptimeSeconds: started ? BigInt(Math.max(0, Math.floor((Date.now() - started.getTime()) / 1000))) : 0n,
    pid: running ? (rt.pid ?? 0) : 0,
    config: opts.brief
      ? undefined
      : {
          name: r.spec.name,
          vcpus: r.spec.vcpus,
          memoryMib: r.spec.memoryMib,
          kernel: r.spec.kernel,
          initrd: r.spec.initrd,
          cmdline: r.spec.cmdline,
          disk: r.spec.disk,
          autoRestart: r.spec.autoRestart,
          nics: r.spec.nics.map((n) => ({
            mode: modeToProto(n.mode),
            bridge: n.bridge ?? "",
            macvtapParent: n.macvtapParent ?? "",
            networkId: n.networkId ?? "",
            customNetdev: n.customNetdev ?? "",
          })),
          ports: r.spec.ports.map((p) => ({
            protocol: protocolToProto(p.protocol),
            hostAddress: p.hostAddress,
            hostPort: p.hostPort,
            vmPort: p.vmPort,
            nicIndex: p.nicIndex ?? 0,
            path: pathToProto(p.path),
            proxyProtocol: p.proxyProtocol ?? false,
          })),
          image: r.spec.image ?? "",
          imageSizeMib: r.spec.imageSizeMib ?? 0,
          disks: (r.spec.disks ?? []).map((d) => ({ image: d.image, sizeMib: d.sizeMib })),
          cloudInit: r.spec.cloudInit,
          labels: { ...(r.spec.labels ?? {}) },
        },
    disks: opts.brief ? [] : (opts.disks ?? []).map((d) => ({ index: d.index, path: d.path, format: d.format, image: d.image, sizeMib: d.sizeMib })),
    nics: r.spec.nics.map((n, i) => {
      const lease = v.leases.find((l) => l.nic === i);
      return {
        index: i,
        mode: modeToProto(n.mode),
        mac: r.macs[i] ?? "",
        bridge: n.bridge ?? "",
        hostInterface: running ? (rt.hostInterfaces?.[i] ?? "") : "",
        networkId: n.networkId ?? "",
        lease: lease ? leaseToProto(lease) : undefined,
      };
    }),
    forwards: opts.brief ? [] : opts.forwards,
    events: opts.brief ? [] : v.events.map((e) => ({ time: timestampFromDate(new Date(e.time)), kind: e.kind, message: e.message })),
  });
}

const VERIFICATION: Record<LeaseState, LeaseVerification> = {
  pending: LeaseVerification.PENDING,
  verified: LeaseVerification.VERIFIED,
  silent: LeaseVerification.SILENT,
  trusted: LeaseVerification.TRUSTED,
};

export function leaseToProto(l: LeaseRecord): Lease {
  return create(LeaseSchema, {
    ip: l.ip,
    hostname: l.hostname,
    interface: l.interface,
    updatedAt: timestampFromDate(new Date(l.updatedAt)),
    expiresAt: l.expiresAt ? timestampFromDate(new Date(l.expiresAt)) : undefined,
    // Records written before verification existed were believed as reported.
    verification: VERIFICATION[l.state ?? "verified"],
    verifiedAt: l.verifiedAt ? timestampFromDate(new Date(l.verifiedAt)) : undefined,
    verificationDetail: l.detail ?? "",
  });
}

export function networkConfigFromProto(c: NetworkConfig | undefined): RawNetworkConfig {
  const mode = c?.mode ?? NetworkMode.UNSPECIFIED;
  return {
    mode: mode === NetworkMode.HOST ? "host" : mode === NetworkMode.SHARED ? "shared" : mode === NetworkMode.UNSPECIFIED ? undefined : `?${mode}`,
    ipv4Subnet: c?.ipv4Subnet ?? "",
    ipv6Prefix: c?.ipv6Prefix ?? "",
    mtu: c?.mtu ?? 0,
    dhcpEnabled: c?.dhcpEnabled,
    dhcpReservations: (c?.dhcpReservations ?? []).map((r) => ({ mac: r.mac, ipv4: r.ipv4 })),
    nat44Enabled: c?.nat44Enabled,
    nat66Enabled: c?.nat66Enabled,
    dnsProxyEnabled: c?.dnsProxyEnabled,
    routerAdvertisementEnabled: c?.routerAdvertisementEnabled,
    portForwards: (c?.portForwards ?? []).map((f) => ({
      protocol: protocolFromProto(f.protocol),
      listenAddress: f.listenAddress,
      listenPort: f.listenPort,
      internalAddress: f.internalAddress,
      internalPort: f.internalPort,
      path: pathFromProto(f.path),
      proxyProtocol: f.proxyProtocol,
    })),
    externalInterface: c?.externalInterface ?? "",
  };
}

const NETWORK_STATE: Record<NetworkStatus["state"], NetworkState> = {
  starting: NetworkState.STARTING,
  ready: NetworkState.READY,
  failed: NetworkState.FAILED,
};

export function networkToProto(n: NetworkRecord, serialization: string, attached: string[], status: NetworkStatus): Network {
  const s = n.spec;
  return create(NetworkSchema, {
    state: NETWORK_STATE[status.state],
    error: status.error,
    stateChangedAt: status.since ? timestampFromDate(new Date(status.since)) : undefined,
    id: n.id,
    name: n.name,
    serialization,
    bridge: n.bridge,
    attachedVmIds: attached,
    holderIds: n.holders.map((h) => h.id),
    createdAt: timestampFromDate(new Date(n.createdAt)),
    ipv4Gateway: n.gateway,
    config: {
      mode: s.mode === "host" ? NetworkMode.HOST : NetworkMode.SHARED,
      ipv4Subnet: s.ipv4Subnet,
      ipv6Prefix: s.ipv6Prefix,
      mtu: s.mtu,
      dhcpEnabled: s.dhcpEnabled,
      dhcpReservations: s.dhcpReservations,
      nat44Enabled: s.nat44Enabled,
      nat66Enabled: s.nat66Enabled,
      dnsProxyEnabled: s.dnsProxyEnabled,
      routerAdvertisementEnabled: s.routerAdvertisementEnabled,
      portForwards: s.portForwards.map((f) => ({ ...f, protocol: protocolToProto(f.protocol), path: pathToProto(f.path), proxyProtocol: f.proxyProtocol ?? false })),
      externalInterface: s.externalInterface,
    },
  });
}

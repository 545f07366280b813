// Human renderings of daemon responses. Pure: messages (and "now") in, text
// out, so the layouts are unit-tested without a daemon. docs/cli.md shows
// each of them.
import { ForwardPath, LeaseVerification, NetworkingMode, Protocol, VmStatus, type ForwardInfo, type PortMapping, type GetMetaResponse, type Image, type NicInfo, type VmEvent, type VmInfo } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode, type Network } from "../../gen/ts/vmm/v1/network_pb.js";
import { enumName, formatBytes, formatExpiry, formatPortMapping, formatTime, formatUptime, hostPort } from "./format.js";
import { renderFields, renderTable, sanitize } from "./table.js";

/** A VM status as tables print it (RUNNING -> running). */
export const statusName = (s: VmStatus) => enumName(VmStatus, s);
/**
 * A NIC's networking mode as tables print it; UNSPECIFIED prints "default" (the daemon's default
 * mode).
 */
export const modeName = (m: NetworkingMode) => (m === NetworkingMode.UNSPECIFIED ? "default" : enumName(NetworkingMode, m));
/** A port's protocol as tables print it (tcp, udp). */
export const protoName = (p: Protocol) => enumName(Protocol, p);
const isRunning = (v: VmInfo) => v.status === VmStatus.RUNNING || v.status === VmStatus.STOPPING;

/** A PortMapping as formatPortMapping takes it: names for the enums, the options only where set. */
export function portView(p: PortMapping): Parameters<typeof formatPortMapping>[0] {
  return {
    protocol: protoName(p.protocol),
    hostAddress: p.hostAddress,
    hostPort: p.hostPort,
    vmPort: p.vmPort,
    nicIndex: p.nicIndex,
    ...(p.path !== ForwardPath.UNSPECIFIED ? { path: enumName(ForwardPath, p.path) } : {}),
    proxyProtocol: p.proxyProtocol,
  };
}

function ports(v: VmInfo): string {
  return (v.config?.ports ?? []).map((p) => formatPortMapping(portView(p))).join(",");
}

/** Terminal width the default tables fit in. */
export const TABLE_WIDTH = 100;

/**
 * `lsvm`: NAME ID STATUS UPTIME IP PORTS, fitted into 100 columns (NAME and
 * PORTS shortened, never the ID); `wide`: every column, nothing shortened:
 * ID NAME STATUS UPTIME IP MODE PORTS IMAGE INSTANCE_ID MAC.
 */
export function renderVmList(vms: readonly VmInfo[], wide: boolean): string {
  const ip = (v: VmInfo) => v.nics.find((n) => n.index === 0)?.lease?.ip;
  if (!wide) {
    const rows = vms.map((v) => [v.name, v.id, statusName(v.status), formatUptime(v.uptimeSeconds, isRunning(v)), ip(v), ports(v)]);
    return renderTable(["NAME", "ID", "STATUS", "UPTIME", "IP", "PORTS"], rows, { maxWidth: TABLE_WIDTH, shrink: [0, 5] });
  }
  const rows = vms.map((v) => [v.id, v.name, statusName(v.status), formatUptime(v.uptimeSeconds, isRunning(v)), ip(v), v.nics.map((n) => modeName(n.mode)).join(","), ports(v), v.config?.image, v.instanceId, v.nics.map((n) => n.mac).join(",")]);
  return renderTable(["ID", "NAME", "STATUS", "UPTIME", "IP", "MODE", "PORTS", "IMAGE", "INSTANCE_ID", "MAC"], rows);
}

/** `images`: NAME FORMAT SIZE KERNEL INITRD PROBLEM (SIZE of the disk's file). */
export function renderImages(images: readonly Image[]): string {
  return renderTable(
    ["NAME", "FORMAT", "SIZE", "KERNEL", "INITRD", "PROBLEM"],
    images.map((i) => [i.name, i.diskFormat, i.disk === "" ? undefined : formatBytes(i.diskFileBytes), i.kernel === "" ? "no" : "yes", i.initrd === "" ? "no" : "yes", i.problem]),
    { maxWidth: TABLE_WIDTH, shrink: [0, 5] },
  );
}

function forwardRow(f: ForwardInfo): (string | bigint)[] {
  const c = f.counters;
  const active = f.protocol === Protocol.UDP ? c?.sessionsActive : c?.connectionsActive;
  return [
    protoName(f.protocol),
    hostPort(f.listenAddress, f.listenPort),
    hostPort(f.targetAddress, f.targetPort),
    f.relay,
    c ? String(active ?? 0n) : "-",
    c ? String(c.connectionsTotal) : "-",
    c ? formatBytes(c.bytesToGuest) : "-",
    c ? formatBytes(c.bytesFromGuest) : "-",
    c ? String(c.errors) : "-",
  ];
}

const FORWARD_HEADER = ["PROTO", "LISTEN", "TARGET", "RELAY", "ACTIVE", "TOTAL", "BYTES_IN", "BYTES_OUT", "ERRORS"];

/** `forwards`: one row per rule (VM: the name, else the id). ACTIVE is connections (TCP) or sessions (UDP). */
export function renderForwards(entries: readonly { vmId: string; vmName?: string; forward: ForwardInfo }[]): string {
  return renderTable(["VM", ...FORWARD_HEADER], entries.map((e) => [e.vmName ?? e.vmId, ...forwardRow(e.forward)]), { maxWidth: TABLE_WIDTH, shrink: [0] });
}

/** One line of `vmm-cli leases`: a NIC and the VM it belongs to (vmName when the VM has one). */
export interface LeaseRow {
  vmId: string;
  vmName?: string;
  nic: NicInfo;
}

/**
 * Whether the network agrees with a lease: verified (its MAC answers ARP there), pending (not
 * yet), silent (no longer: no forwards), trusted (verification off); undefined without a lease.
 */
export function leaseState(nic: NicInfo): string | undefined {
  const v = nic.lease?.verification;
  return v === undefined || v === LeaseVerification.UNSPECIFIED ? undefined : enumName(LeaseVerification, v);
}

/** `leases`: VM NIC MAC IP STATE HOSTNAME EXPIRES (VM: the name, else the id), fitted into 100 columns. */
export function renderLeases(rows: readonly LeaseRow[], now: Date): string {
  return renderTable(
    ["VM", "NIC", "MAC", "IP", "STATE", "HOSTNAME", "EXPIRES"],
    rows.map(({ vmId, vmName, nic }) => [vmName ?? vmId, nic.index, nic.mac, nic.lease?.ip, leaseState(nic), nic.lease?.hostname, nic.lease ? formatExpiry(nic.lease.expiresAt, now) : undefined]),
    { maxWidth: TABLE_WIDTH, shrink: [0, 5] },
  );
}

function eventLine(ev: VmEvent | undefined): [string, string, string] {
  return [formatTime(ev?.time), ev?.kind ?? "", ev?.message ?? ""];
}

/** `info`: fields, then NIC, forward and event tables. */
export function renderVmInfo(v: VmInfo, now: Date): string {
  const c = v.config;
  const running = isRunning(v);
  let out = renderFields([
    ["ID", v.id],
    ["Name", v.name],
    ["Status", statusName(v.status)],
    ["Uptime", formatUptime(v.uptimeSeconds, running)],
    ["Instance ID", v.instanceId],
    ["PID", v.pid === 0 ? undefined : v.pid],
    ["Created", formatTime(v.createdAt)],
    ["Started", formatTime(v.startedAt)],
  ]);
  if (c) {
    out += "Config:\n";
    out += renderFields(
      [
        ["vCPUs", c.vcpus === 0 ? "1 (default)" : c.vcpus],
        ["Memory", c.memoryMib === 0 ? "256 MiB (default)" : `${c.memoryMib} MiB`],
        ["Kernel", c.kernel],
        ["Initrd", c.initrd],
        ["Cmdline", c.cmdline === "" ? (c.image !== "" ? "(the image's)" : "console=ttyS0 (default)") : c.cmdline],
        ["Image", c.image === "" ? undefined : c.imageSizeMib > 0 ? `${c.image} (${c.imageSizeMib} MiB)` : c.image],
        ["Disk", c.disk],
        ["Cloud-init", c.cloudInit ? [c.cloudInit.hostname && `hostname ${c.cloudInit.hostname}`, `${c.cloudInit.sshAuthorizedKeys.length} SSH key(s)`, `user-data ${Buffer.byteLength(c.cloudInit.userData)} bytes`, c.cloudInit.networkConfig && "network-config"].filter(Boolean).join(", ") : "-"],
        ["Auto-restart", c.autoRestart ? "yes" : "no"],
        ["Ports", ports(v)],
      ],
      "  ",
    );
  }
  if (v.disks.length > 0) {
    out += "Disks:\n";
    out += renderTable(["INDEX", "FORMAT", "SIZE", "IMAGE", "PATH"], v.disks.map((d) => [d.index, d.format, d.sizeMib === 0 ? undefined : `${d.sizeMib} MiB`, d.image, d.path]), { indent: "  " });
  }
  out += "NICs:\n";
  out += v.nics.length === 0
    ? "  (none)\n"
    : renderTable(
        ["INDEX", "MODE", "MAC", "BRIDGE", "HOST_IF", "NETWORK", "IP", "STATE", "HOSTNAME", "EXPIRES"],
        v.nics.map((n) => [n.index, modeName(n.mode), n.mac, n.bridge, n.hostInterface, n.networkId, n.lease?.ip, leaseState(n), n.lease?.hostname, n.lease ? formatExpiry(n.lease.expiresAt, now) : undefined]),
        { indent: "  " },
      );
  out += "Forwards:\n";
  out += v.forwards.length === 0 ? "  (none)\n" : renderTable(FORWARD_HEADER, v.forwards.map(forwardRow), { indent: "  " });
  out += "Events:\n";
  out += v.events.length === 0 ? "  (none)\n" : renderTable(["TIME", "KIND", "MESSAGE"], v.events.map(eventLine), { indent: "  " });
  return out;
}

/** `events`: one line per event: time, VM, kind, message. */
export function renderEvent(vmId: string, ev: VmEvent | undefined): string {
  const [t, k, m] = eventLine(ev);
  return `${t}  ${sanitize(vmId)}  ${sanitize(k)}  ${sanitize(m)}\n`;
}

/** `meta`: version, QEMU, accelerator, modes and forwarding of the daemon, one field per line. */
export function renderMeta(m: GetMetaResponse): string {
  return renderFields([
    ["Version", m.version],
    ["QEMU", m.qemuVersion === "" ? "not found" : m.qemuVersion],
    ["Platform", m.platform],
    ["Accelerator", m.accel === "" ? undefined : `${m.accel} (${m.accelReason})`],
    ["Images", m.imagesDir],
    ["Modes", m.networkingModes.map(modeName).join(", ")],
    ["Default mode", modeName(m.defaultNetworkingMode)],
    ["Forward service", m.forwardServiceEnabled ? `enabled (relay ${m.forwardRelay || "-"})` : "disabled"],
    ["Auth required", m.authRequired ? "yes" : "no"],
  ]);
}

/** A vmnet network's mode as tables print it (host, shared). */
export const networkModeName = (m: NetworkMode) => enumName(NetworkMode, m);

/** `networks`: ID NAME MODE SUBNET GATEWAY BRIDGE VMS HOLDERS. */
export function renderNetworkList(nets: readonly Network[]): string {
  return renderTable(
    ["ID", "NAME", "MODE", "SUBNET", "GATEWAY", "BRIDGE", "VMS", "HOLDERS"],
    nets.map((n) => [n.id, n.name, networkModeName(n.config?.mode ?? NetworkMode.UNSPECIFIED), n.config?.ipv4Subnet, n.ipv4Gateway, n.bridge, n.attachedVmIds.length, n.holderIds.length]),
  );
}

const onOff = (v: boolean | undefined, dflt: string) => (v === undefined ? dflt : v ? "on" : "off");

/** `network info` / `network create`: fields, reservations, serialization last (it is long). */
export function renderNetwork(n: Network): string {
  const c = n.config;
  let out = renderFields([
    ["ID", n.id],
    ["Name", n.name],
    ["Mode", networkModeName(c?.mode ?? NetworkMode.UNSPECIFIED)],
    ["Subnet", c?.ipv4Subnet],
    ["Gateway", n.ipv4Gateway],
    ["IPv6 prefix", c?.ipv6Prefix],
    ["MTU", c?.mtu ? c.mtu : "1500 (default)"],
    ["DHCP", onOff(c?.dhcpEnabled, "on (default)")],
    ["NAT44", onOff(c?.nat44Enabled, c?.mode === NetworkMode.SHARED ? "on (default)" : "off")],
    ["DNS proxy", onOff(c?.dnsProxyEnabled, "off (default)")],
    ["Bridge", n.bridge],
    ["External if", c?.externalInterface],
    ["Created", formatTime(n.createdAt)],
    ["VMs", n.attachedVmIds.join(", ")],
    ["Holders", n.holderIds.join(", ")],
  ]);
  const res = c?.dhcpReservations ?? [];
  if (res.length > 0) out += "Reservations:\n" + renderTable(["MAC", "IPV4"], res.map((r) => [r.mac, r.ipv4]), { indent: "  " });
  const fw = c?.portForwards ?? [];
  if (fw.length > 0) {
    out += "Port forwards:\n" + renderTable(["PROTO", "LISTEN", "TARGET"], fw.map((f) => [protoName(f.protocol), hostPort(f.listenAddress || "127.0.0.1", f.listenPort), hostPort(f.internalAddress, f.internalPort)]), { indent: "  " });
  }
  out += renderFields([["Serialization", n.serialization]]);
  return out;
}

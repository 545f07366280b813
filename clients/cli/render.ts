// Human renderings of daemon responses. Pure: messages (and "now") in, text
// out, so the layouts are unit-tested without a daemon. docs/cli.md shows
// each of them.
import { NetworkingMode, Protocol, VmStatus, type ForwardInfo, type GetMetaResponse, type NicInfo, type VmEvent, type VmInfo } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode, type Network } from "../../gen/ts/vmm/v1/network_pb.js";
import { enumName, formatBytes, formatExpiry, formatPortMapping, formatTime, formatUptime, hostPort } from "./format.js";
import { renderFields, renderTable, sanitize } from "./table.js";

export const statusName = (s: VmStatus) => enumName(VmStatus, s);
export const modeName = (m: NetworkingMode) => (m === NetworkingMode.UNSPECIFIED ? "default" : enumName(NetworkingMode, m));
export const protoName = (p: Protocol) => enumName(Protocol, p);
const isRunning = (v: VmInfo) => v.status === VmStatus.RUNNING || v.status === VmStatus.STOPPING;

function ports(v: VmInfo): string {
  const ps = v.config?.ports ?? [];
  return ps.map((p) => formatPortMapping({ protocol: protoName(p.protocol), hostAddress: p.hostAddress, hostPort: p.hostPort, vmPort: p.vmPort })).join(",");
}

/** `lsvm`: ID NAME STATUS UPTIME IP MODE PORTS, plus INSTANCE_ID and MAC when verbose. */
export function renderVmList(vms: readonly VmInfo[], verbose: boolean): string {
  const header = ["ID", "NAME", "STATUS", "UPTIME", "IP", "MODE", "PORTS"];
  if (verbose) header.push("INSTANCE_ID", "MAC");
  const rows = vms.map((v) => {
    const nic0 = v.nics.find((n) => n.index === 0);
    const row = [v.id, v.name, statusName(v.status), formatUptime(v.uptimeSeconds, isRunning(v)), nic0?.lease?.ip, v.nics.map((n) => modeName(n.mode)).join(","), ports(v)];
    if (verbose) row.push(v.instanceId, v.nics.map((n) => n.mac).join(","));
    return row;
  });
  return renderTable(header, rows);
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

/** `forwards`: one row per rule. ACTIVE is connections (TCP) or sessions (UDP). */
export function renderForwards(entries: readonly { vmId: string; forward: ForwardInfo }[]): string {
  return renderTable(["VM", ...FORWARD_HEADER], entries.map((e) => [e.vmId, ...forwardRow(e.forward)]));
}

export interface LeaseRow {
  vmId: string;
  nic: NicInfo;
}

/** `leases`: VM NIC MAC IP HOSTNAME EXPIRES. */
export function renderLeases(rows: readonly LeaseRow[], now: Date): string {
  return renderTable(
    ["VM", "NIC", "MAC", "IP", "HOSTNAME", "EXPIRES"],
    rows.map(({ vmId, nic }) => [vmId, nic.index, nic.mac, nic.lease?.ip, nic.lease?.hostname, nic.lease ? formatExpiry(nic.lease.expiresAt, now) : undefined]),
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
        ["Cmdline", c.cmdline === "" ? "console=ttyS0 (default)" : c.cmdline],
        ["Disk", c.disk],
        ["Auto-restart", c.autoRestart ? "yes" : "no"],
        ["Ports", ports(v)],
      ],
      "  ",
    );
  }
  out += "NICs:\n";
  out += v.nics.length === 0
    ? "  (none)\n"
    : renderTable(
        ["INDEX", "MODE", "MAC", "BRIDGE", "HOST_IF", "NETWORK", "IP", "HOSTNAME", "EXPIRES"],
        v.nics.map((n) => [n.index, modeName(n.mode), n.mac, n.bridge, n.hostInterface, n.networkId, n.lease?.ip, n.lease?.hostname, n.lease ? formatExpiry(n.lease.expiresAt, now) : undefined]),
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

export function renderMeta(m: GetMetaResponse): string {
  return renderFields([
    ["Version", m.version],
    ["QEMU", m.qemuVersion === "" ? "not found" : m.qemuVersion],
    ["Platform", m.platform],
    ["Modes", m.networkingModes.map(modeName).join(", ")],
    ["Default mode", modeName(m.defaultNetworkingMode)],
    ["Forward service", m.forwardServiceEnabled ? `enabled (relay ${m.forwardRelay || "-"})` : "disabled"],
    ["Auth required", m.authRequired ? "yes" : "no"],
  ]);
}

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

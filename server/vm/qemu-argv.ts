// The QEMU command line of a VM, built by a pure function (no I/O) so that
// every mode can be tested table-driven without QEMU.
//
// Why every value is validated before it lands in the argv: QEMU parses most
// option values as `key=value,key=value` lists (QemuOpts / keyval). A comma
// inside a value ends it and starts a new key, so a bridge name like
// "br0,helper=/tmp/evil" or a socket path "/run/x,server=off" would inject
// sub-options -- e.g. make QEMU run another helper as root, or open a
// different file. QEMU's own escape (doubling the comma) differs between
// parsers, so we refuse commas outright instead of escaping. A newline or
// NUL has no business in any value and would corrupt logs and the kernel
// command line, so control characters are refused too. We spawn without a
// shell, so whitespace cannot split arguments; it is still refused in names
// and paths, where it is never legitimate for us. The same reasoning as
// lima's networks/validate.go.
import { isIPv4 } from "node:net";
import { Problems } from "../errors.js";
import { isMulticastMac, normalizeMac } from "../net/mac.js";
import { IFNAME_RE, isValidIfName } from "../net/addr.js";

/** The first fd number a child sees for fds passed after stdin/out/err (see process.ts). */
export const FIRST_INHERITED_FD = 3;

export type Accel = "tcg" | "kvm";

/** A host -> guest forward of user-mode networking (slirp `hostfwd`). */
export interface HostForward {
  protocol: "tcp" | "udp";
  /** IPv4 literal the host side binds, e.g. "127.0.0.1". */
  hostAddress: string;
  hostPort: number;
  guestPort: number;
}

/** Fields common to every NIC. */
interface NicBase {
  /** Guest MAC; any case, ":" or "-" separated. Must be unicast. */
  mac: string;
}

export type NicSpec =
  /** QEMU slirp. `restrict` cuts the guest off from everything but hostfwd. */
  | (NicBase & { mode: "user"; forwards?: HostForward[]; restrict?: boolean })
  /** passt over its unix socket (`-netdev stream`, QEMU >= 7.2). */
  | (NicBase & { mode: "passt"; socketPath: string })
  /** qemu-bridge-helper attaches a TAP to `bridge` (needs /etc/qemu/bridge.conf `allow BR`). */
  | (NicBase & { mode: "bridge"; bridge: string; helper?: string })
  /**
   * A TAP (tap, vmnet) or /dev/tapN (macvtap) fd opened by the daemon. `fd`
   * is the number QEMU sees (FIRST_INHERITED_FD + position in the extra fds
   * passed by process.ts), not the daemon's own fd number. For macvtap the
   * MAC must equal the macvtap interface's MAC. There is no vnet_hdr=
   * in the argv: QEMU 7.2 refuses `vnet_hdr=` together with `fd=` ("... are invalid
   * with fd=") and reads IFF_VNET_HDR from the fd itself (TUNGETIFF).
   */
  | (NicBase & {
      mode: "tap" | "macvtap" | "vmnet";
      fd: number;
      /**
       * How the fd was opened (IFF_VNET_HDR). Informational only: never put
       * in the argv (see above); QEMU finds out from the fd.
       */
      vnetHdr?: boolean;
    })
  /**
   * A datagram socket fd carrying one Ethernet frame per datagram
   * (`-netdev dgram,local.type=fd`, QEMU >= 7.2): the macOS vmnet backend
   * relays vmnet.framework's packets through a socketpair. `fd` is numbered
   * as for tap.
   */
  | (NicBase & { mode: "dgram"; fd: number })
  /**
   * A verbatim `-netdev` value (`TYPE,key=value,...`) from the operator; we
   * add `,id=netN`, so it must not carry an id.
   */
  | (NicBase & { mode: "custom"; netdev: string });

export type NicMode = NicSpec["mode"];

export interface DiskSpec {
  path: string;
  format: "raw" | "qcow2";
  readOnly?: boolean;
}

export interface QemuSpec {
  /** VM name, `-name`; [A-Za-z0-9_.-], 1-64 chars. */
  name: string;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  /** Kernel to boot directly. Omitted: the firmware boots the first disk. */
  kernel?: string;
  initrd?: string;
  /** Kernel command line; spaces separate kernel parameters as usual. */
  append?: string;
  /** virtio-blk disks in bus order (/dev/vda first). */
  disks?: DiskSpec[];
  /** Guest serial console (ttyS0) is written to this file. */
  serialPath: string;
  /**
   * Unix socket (QEMU listens, one client at a time) carrying the serial
   * console both ways; the log still goes to `serialPath`. Omitted: the
   * console is only written to `serialPath`.
   */
  consoleSocket?: string;
  /** QMP listens on this unix socket (server=on,wait=off). */
  qmpSocket: string;
  /** QEMU writes its pid here when set. */
  pidFile?: string;
  /** Exit instead of rebooting when the guest reboots. */
  noReboot?: boolean;
  nics: NicSpec[];
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// Linux interface names: at most IFNAMSIZ-1 = 15 bytes; we allow the portable subset.
// sun_path is 108 bytes including the terminating NUL.
const MAX_UNIX_PATH = 107;
// Any ASCII control character (C0 and DEL).
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/** True when `s` is an interface name we accept (also for bridges). */
export { isValidIfName };

/**
 * Checks an absolute path that will sit inside a QEMU option value: no
 * comma (sub-option injection), no control characters, no whitespace.
 * Returns the problem or undefined.
 */
export function pathProblem(p: string, maxLen?: number): string | undefined {
  if (p === "") return "must be set";
  if (!p.startsWith("/")) return `must be an absolute path, got "${p}"`;
  if (p.includes(",")) return "must not contain ',' (QEMU would read the rest as sub-options)";
  if (CONTROL_RE.test(p)) return "must not contain control characters";
  if (/\s/.test(p)) return "must not contain whitespace";
  if (maxLen !== undefined && Buffer.byteLength(p) > maxLen) return `must be at most ${maxLen} bytes (unix socket path limit)`;
  return undefined;
}

function checkPath(problems: Problems, field: string, p: string | undefined, maxLen?: number): void {
  const msg = pathProblem(p ?? "", maxLen);
  if (msg) problems.add(field, msg);
}

function checkInt(problems: Problems, field: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) problems.add(field, `must be an integer in ${min}..${max}, got ${v}`);
}

function validate(spec: QemuSpec): void {
  const problems = new Problems();
  if (!NAME_RE.test(spec.name)) problems.add("name", `must match ${NAME_RE.source}, got "${spec.name}"`);
  if (spec.accel !== "tcg" && spec.accel !== "kvm") problems.add("accel", `must be "tcg" or "kvm", got "${String(spec.accel)}"`);
  checkInt(problems, "memory_mib", spec.memoryMiB, 16, 1 << 20);
  checkInt(problems, "cpus", spec.cpus, 1, 255);
  if (spec.kernel !== undefined) checkPath(problems, "kernel", spec.kernel);
  else if ((spec.disks ?? []).length === 0) problems.add("kernel", "must be set when there is no disk to boot from");
  if (spec.initrd !== undefined) checkPath(problems, "initrd", spec.initrd);
  if (spec.kernel === undefined && spec.initrd !== undefined) problems.add("initrd", "needs a kernel");
  if (spec.append !== undefined && CONTROL_RE.test(spec.append)) {
    problems.add("append", "must not contain control characters (newlines would end the kernel command line)");
  }
  (spec.disks ?? []).forEach((d, i) => {
    checkPath(problems, `disks[${i}].path`, d.path);
    if (d.format !== "raw" && d.format !== "qcow2") problems.add(`disks[${i}].format`, `must be "raw" or "qcow2", got "${String(d.format)}"`);
  });
  checkPath(problems, "serial_path", spec.serialPath);
  if (spec.consoleSocket !== undefined) checkPath(problems, "console_socket", spec.consoleSocket, MAX_UNIX_PATH);
  checkPath(problems, "qmp_socket", spec.qmpSocket, MAX_UNIX_PATH);
  if (spec.pidFile !== undefined) checkPath(problems, "pid_file", spec.pidFile);

  const fds = new Map<number, number>();
  const macs = new Map<string, number>();
  spec.nics.forEach((nic, i) => {
    const f = `nics[${i}]`;
    const mac = normalizeMac(nic.mac ?? "");
    if (mac === null) problems.add(`${f}.mac`, `must be a MAC like 52:54:00:12:34:56, got "${nic.mac}"`);
    else if (isMulticastMac(mac)) problems.add(`${f}.mac`, `must be a unicast MAC, got "${nic.mac}"`);
    else if (macs.has(mac)) problems.add(`${f}.mac`, `duplicates nics[${macs.get(mac)}].mac`);
    else macs.set(mac, i);
    switch (nic.mode) {
      case "user": {
        const seen = new Set<string>();
        (nic.forwards ?? []).forEach((fw, j) => {
          const ff = `${f}.forwards[${j}]`;
          if (fw.protocol !== "tcp" && fw.protocol !== "udp") problems.add(`${ff}.protocol`, `must be "tcp" or "udp", got "${String(fw.protocol)}"`);
          // slirp in QEMU 7.2 forwards IPv4 only; an IPv4 literal also cannot inject.
          if (!isIPv4(fw.hostAddress)) problems.add(`${ff}.host_address`, `must be an IPv4 address, got "${fw.hostAddress}"`);
          checkInt(problems, `${ff}.host_port`, fw.hostPort, 1, 65535);
          checkInt(problems, `${ff}.guest_port`, fw.guestPort, 1, 65535);
          const key = `${fw.protocol}:${fw.hostAddress}:${fw.hostPort}`;
          if (seen.has(key)) problems.add(`${ff}.host_port`, `${key} is forwarded twice`);
          seen.add(key);
        });
        break;
      }
      case "passt":
        checkPath(problems, `${f}.socket_path`, nic.socketPath, MAX_UNIX_PATH);
        break;
      case "bridge":
        if (!isValidIfName(nic.bridge ?? "")) problems.add(`${f}.bridge`, `must be an interface name (${IFNAME_RE.source}), got "${nic.bridge}"`);
        if (nic.helper !== undefined) checkPath(problems, `${f}.helper`, nic.helper);
        break;
      case "tap":
      case "macvtap":
      case "vmnet":
      case "dgram":
        if (!Number.isInteger(nic.fd) || nic.fd < FIRST_INHERITED_FD || nic.fd > 1023) {
          problems.add(`${f}.fd`, `must be an inherited fd number (${FIRST_INHERITED_FD}..1023), got ${nic.fd}`);
        } else if (fds.has(nic.fd)) {
          problems.add(`${f}.fd`, `fd ${nic.fd} is already used by nics[${fds.get(nic.fd)}]`);
        } else {
          fds.set(nic.fd, i);
        }
        break;
      case "custom": {
        const v = nic.netdev ?? "";
        if (!/^[a-z][a-z0-9-]*(,|$)/.test(v)) problems.add(`${f}.netdev`, `must start with a netdev type like "socket,", got "${v}"`);
        if (CONTROL_RE.test(v)) problems.add(`${f}.netdev`, "must not contain control characters");
        if (/(^|,)id=/.test(v)) problems.add(`${f}.netdev`, "must not set id= (the id is assigned per NIC)");
        break;
      }
      default:
        problems.add(`${f}.mode`, `unknown networking mode "${String((nic as { mode: unknown }).mode)}"`);
    }
  });
  problems.throwIfAny();
}

function netdevValue(nic: NicSpec, id: string): string {
  switch (nic.mode) {
    case "user": {
      const parts = [`user,id=${id}`];
      if (nic.restrict) parts.push("restrict=on");
      for (const fw of nic.forwards ?? []) {
        // hostfwd=PROTO:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT; an empty guest
        // address means slirp's DHCP address (10.0.2.15).
        parts.push(`hostfwd=${fw.protocol}:${fw.hostAddress}:${fw.hostPort}-:${fw.guestPort}`);
      }
      return parts.join(",");
    }
    case "passt":
      // QEMU 7.2 has `-netdev stream` (passt's native transport); older
      // releases needed `-netdev socket,connect=` + qrap.
      return `stream,id=${id},server=off,addr.type=unix,addr.path=${nic.socketPath}`;
    case "bridge":
      return `bridge,id=${id},br=${nic.bridge}` + (nic.helper !== undefined ? `,helper=${nic.helper}` : "");
    case "tap":
    case "macvtap":
    case "vmnet":
      // vhost=off: no vhost-net under TCG, and it needs /dev/vhost-net.
      // No vnet_hdr=: invalid with fd= in QEMU 7.2; QEMU probes the fd's IFF_VNET_HDR.
      return `tap,id=${id},fd=${nic.fd},vhost=off`;
    case "dgram":
      // local.str is the fd number: QEMU reads the fd from it, no monitor needed.
      return `dgram,id=${id},local.type=fd,local.str=${nic.fd}`;
    case "custom":
      return `${nic.netdev},id=${id}`;
  }
}

/**
 * Everything after the QEMU binary. Throws a ValidationError naming every
 * bad field (snake_case, as in the API) at once.
 */
export function buildQemuArgv(spec: QemuSpec): string[] {
  validate(spec);
  const a: string[] = [];
  a.push("-name", spec.name);
  if (spec.accel === "kvm") a.push("-accel", "kvm", "-cpu", "host");
  else a.push("-accel", "tcg");
  a.push("-m", String(spec.memoryMiB), "-smp", String(spec.cpus));
  a.push("-nodefaults", "-no-user-config", "-nographic");
  if (spec.noReboot) a.push("-no-reboot");
  if (spec.kernel !== undefined) {
    a.push("-kernel", spec.kernel);
    if (spec.initrd !== undefined) a.push("-initrd", spec.initrd);
    if (spec.append !== undefined) a.push("-append", spec.append);
  }
  for (const d of spec.disks ?? []) {
    a.push("-drive", `file=${d.path},format=${d.format},if=virtio` + (d.readOnly ? ",readonly=on" : ""));
  }
  if (spec.consoleSocket !== undefined) {
    // logappend=on opens the log O_APPEND, so truncating it (log rotation)
    // makes QEMU continue at the new end instead of leaving a hole.
    a.push("-chardev", `socket,id=console0,path=${spec.consoleSocket},server=on,wait=off,logfile=${spec.serialPath},logappend=on`);
    a.push("-serial", "chardev:console0");
  } else {
    a.push("-serial", `file:${spec.serialPath}`);
  }
  a.push("-qmp", `unix:${spec.qmpSocket},server=on,wait=off`);
  if (spec.pidFile !== undefined) a.push("-pidfile", spec.pidFile);
  spec.nics.forEach((nic, i) => {
    const id = `net${i}`;
    a.push("-netdev", netdevValue(nic, id));
    // romfile= (empty): no iPXE option ROM; we boot -kernel directly, and
    // under TCG the ROM costs 1-2 s of boot time.
    a.push("-device", `virtio-net-pci,netdev=${id},mac=${normalizeMac(nic.mac)},romfile=`);
  });
  return a;
}

// The QEMU command line of a VM, built by a pure function (no I/O) so that
// every mode can be tested table-driven without QEMU.
//
// The builder trusts its input: every value that reaches it was checked by
// the one rule set for VM input (validate.ts: names, paths, netdev grammar,
// ports) or by config validation (state_dir, under which the socket and log
// paths live), or was made by the daemon itself (MACs, fd numbers). Why
// those rules are as strict as they are -- QEMU reads most option values as
// `key=value,...` lists, so a comma injects sub-options -- is written there.
import { normalizeMac } from "../check.js";

/** How QEMU runs guest code. */
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

/** One guest NIC as QEMU sees it: the netdev backend and its MAC. */
export type NicSpec =
  /** QEMU slirp. `restrict` cuts the guest off from everything but hostfwd. */
  | (NicBase & { mode: "user"; forwards?: HostForward[]; restrict?: boolean })
  /** passt over its unix socket (`-netdev stream`, QEMU >= 7.2). */
  | (NicBase & { mode: "passt"; socketPath: string })
  /** qemu-bridge-helper attaches a TAP to `bridge` (needs /etc/qemu/bridge.conf `allow BR`). */
  | (NicBase & { mode: "bridge"; bridge: string; helper?: string })
  /**
   * A TAP (tap, vmnet) or /dev/tapN (macvtap) fd opened by the daemon. `fd`
   * is the number QEMU sees (childFdOf(position in the extra fds passed by
   * host/process.ts)), not the daemon's own fd number. For macvtap the
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

/** A guest disk image. */
export interface DiskSpec {
  path: string;
  format: "raw" | "qcow2";
  readOnly?: boolean;
}

/** Everything the argv of one VM is built from. */
/**
 * How QEMU drops root: `-runas USER` (QEMU < 9.1) or `-run-with user=USER`
 * (9.1 deprecated -runas). QEMU opens everything of its command line --
 * kernel, disks, serial log, QMP and console sockets, TAP fds, the bridge
 * helper's TAP -- as root, then switches to USER (setgid, initgroups,
 * setuid) before the guest runs its first instruction.
 */
export interface RunAs {
  user: string;
  syntax: "runas" | "run-with";
}

/** The RunAs syntax of a QEMU version ("7.2.22", "9.1.0"); pure. */
export function runAsSyntax(qemuVersion: string): RunAs["syntax"] {
  const [major = 0, minor = 0] = qemuVersion.split(".").map(Number);
  return major > 9 || (major === 9 && minor >= 1) ? "run-with" : "runas";
}

export interface QemuSpec {
  /** VM name, `-name`; [A-Za-z0-9_.-], 1-64 chars. */
  name: string;
  /** The unprivileged user QEMU switches to once set up. Omitted: QEMU keeps the daemon's user (a daemon that is not root). */
  runAs?: RunAs;
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

/** Everything after the QEMU binary, for a validated spec (see the file comment). */
export function buildQemuArgv(spec: QemuSpec): string[] {
  const a: string[] = [];
  a.push("-name", spec.name);
  if (spec.runAs) a.push(...(spec.runAs.syntax === "run-with" ? ["-run-with", `user=${spec.runAs.user}`] : ["-runas", spec.runAs.user]));
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

import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.js";
import { buildQemuArgv, type NicSpec, type QemuSpec } from "./qemu-argv.js";

const MAC = "52:54:00:12:34:56";

function spec(over: Partial<QemuSpec> = {}): QemuSpec {
  return {
    name: "vm-1",
    accel: "tcg",
    memoryMiB: 256,
    cpus: 1,
    kernel: "/g/vmlinuz",
    initrd: "/g/initrd.gz",
    append: "console=ttyS0 quiet",
    serialPath: "/run/vm-1/serial.log",
    qmpSocket: "/run/vm-1/qmp.sock",
    nics: [],
    ...over,
  };
}

/** The value following each occurrence of `flag`. */
function values(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

function problems(s: QemuSpec): { field: string; message: string }[] {
  try {
    buildQemuArgv(s);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return [...(e as ValidationError).problems];
  }
  throw new Error("expected a ValidationError");
}

describe("buildQemuArgv: machine", () => {
  it("builds the full command line of a TCG VM", () => {
    expect(buildQemuArgv(spec({ pidFile: "/run/vm-1/qemu.pid", noReboot: true }))).toEqual([
      "-name", "vm-1",
      "-accel", "tcg",
      "-m", "256", "-smp", "1",
      "-nodefaults", "-no-user-config", "-nographic",
      "-no-reboot",
      "-kernel", "/g/vmlinuz",
      "-initrd", "/g/initrd.gz",
      "-append", "console=ttyS0 quiet",
      "-serial", "file:/run/vm-1/serial.log",
      "-qmp", "unix:/run/vm-1/qmp.sock,server=on,wait=off",
      "-pidfile", "/run/vm-1/qemu.pid",
    ]);
  });

  it("uses kvm with the host CPU", () => {
    const argv = buildQemuArgv(spec({ accel: "kvm" }));
    expect(argv.slice(2, 6)).toEqual(["-accel", "kvm", "-cpu", "host"]);
  });

  it("never daemonizes (we supervise QEMU)", () => {
    expect(buildQemuArgv(spec())).not.toContain("-daemonize");
  });

  it.each([
    { disk: { path: "/d/a.img", format: "raw" as const }, drive: "file=/d/a.img,format=raw,if=virtio" },
    { disk: { path: "/d/a.qcow2", format: "qcow2" as const, readOnly: true }, drive: "file=/d/a.qcow2,format=qcow2,if=virtio,readonly=on" },
  ])("adds a virtio-blk disk $drive", ({ disk, drive }) => {
    expect(values(buildQemuArgv(spec({ disks: [disk] })), "-drive")).toEqual([drive]);
  });

  it("several disks in bus order; firmware boot without a kernel", () => {
    const argv = buildQemuArgv(spec({ kernel: undefined, initrd: undefined, append: undefined, disks: [{ path: "/v/image.qcow2", format: "qcow2" }, { path: "/v/seed.iso", format: "raw", readOnly: true }] }));
    expect(values(argv, "-drive")).toEqual(["file=/v/image.qcow2,format=qcow2,if=virtio", "file=/v/seed.iso,format=raw,if=virtio,readonly=on"]);
    expect(argv).not.toContain("-kernel");
  });

  it("a console socket: chardev with the log file, serial on it", () => {
    const argv = buildQemuArgv(spec({ consoleSocket: "/run/vm-1/console.sock" }));
    expect(values(argv, "-chardev")).toEqual(["socket,id=console0,path=/run/vm-1/console.sock,server=on,wait=off,logfile=/run/vm-1/serial.log,logappend=on"]);
    expect(values(argv, "-serial")).toEqual(["chardev:console0"]);
  });

  it("omits optional parts", () => {
    const argv = buildQemuArgv(spec({ initrd: undefined, append: undefined }));
    expect(argv).not.toContain("-initrd");
    expect(argv).not.toContain("-append");
    expect(argv).not.toContain("-drive");
    expect(argv).not.toContain("-pidfile");
    expect(argv).not.toContain("-netdev");
  });
});

describe("buildQemuArgv: NICs", () => {
  const cases: { name: string; nic: NicSpec; netdev: string }[] = [
    { name: "user without forwards", nic: { mode: "user", mac: MAC }, netdev: "user,id=net0" },
    {
      name: "user with forwards",
      nic: {
        mode: "user",
        mac: MAC,
        restrict: true,
        forwards: [
          { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 18080, guestPort: 8080 },
          { protocol: "udp", hostAddress: "0.0.0.0", hostPort: 5353, guestPort: 53 },
        ],
      },
      netdev: "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=udp:0.0.0.0:5353-:53",
    },
    {
      name: "passt",
      nic: { mode: "passt", mac: MAC, socketPath: "/run/vm-1/passt/passt.sock" },
      netdev: "stream,id=net0,server=off,addr.type=unix,addr.path=/run/vm-1/passt/passt.sock",
    },
    { name: "bridge", nic: { mode: "bridge", mac: MAC, bridge: "vmbr0" }, netdev: "bridge,id=net0,br=vmbr0" },
    {
      name: "bridge with helper",
      nic: { mode: "bridge", mac: MAC, bridge: "vmbr0", helper: "/usr/lib/qemu/qemu-bridge-helper" },
      netdev: "bridge,id=net0,br=vmbr0,helper=/usr/lib/qemu/qemu-bridge-helper",
    },
    // never vnet_hdr= with fd= (QEMU 7.2: "vnet_hdr= ... are invalid with fd="); QEMU probes the fd
    { name: "tap", nic: { mode: "tap", mac: MAC, fd: 3 }, netdev: "tap,id=net0,fd=3,vhost=off" },
    { name: "tap opened with vnet_hdr", nic: { mode: "tap", mac: MAC, fd: 3, vnetHdr: true }, netdev: "tap,id=net0,fd=3,vhost=off" },
    { name: "macvtap", nic: { mode: "macvtap", mac: MAC, fd: 4 }, netdev: "tap,id=net0,fd=4,vhost=off" },
    { name: "vmnet", nic: { mode: "vmnet", mac: MAC, fd: 3 }, netdev: "tap,id=net0,fd=3,vhost=off" },
    { name: "dgram (macOS vmnet relay)", nic: { mode: "dgram", mac: MAC, fd: 5 }, netdev: "dgram,id=net0,local.type=fd,local.str=5" },
    {
      name: "custom",
      nic: { mode: "custom", mac: MAC, netdev: "socket,mcast=230.0.0.1:1234" },
      netdev: "socket,mcast=230.0.0.1:1234,id=net0",
    },
  ];

  it.each(cases)("$name", ({ nic, netdev }) => {
    const argv = buildQemuArgv(spec({ nics: [nic] }));
    expect(values(argv, "-netdev")).toEqual([netdev]);
    expect(values(argv, "-device")).toEqual([`virtio-net-pci,netdev=net0,mac=${MAC},romfile=`]);
  });

  it("numbers several NICs and normalizes their MACs", () => {
    const argv = buildQemuArgv(
      spec({
        nics: [
          { mode: "tap", mac: "52-54-00-AA-BB-01", fd: 3 },
          { mode: "tap", mac: "52:54:00:aa:bb:02", fd: 4 },
          { mode: "user", mac: "52:54:00:aa:bb:03" },
        ],
      }),
    );
    expect(values(argv, "-netdev")).toEqual(["tap,id=net0,fd=3,vhost=off", "tap,id=net1,fd=4,vhost=off", "user,id=net2"]);
    expect(values(argv, "-device")).toEqual([
      "virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:01,romfile=",
      "virtio-net-pci,netdev=net1,mac=52:54:00:aa:bb:02,romfile=",
      "virtio-net-pci,netdev=net2,mac=52:54:00:aa:bb:03,romfile=",
    ]);
  });
});

describe("buildQemuArgv: refusals", () => {
  const cases: { name: string; over: Partial<QemuSpec>; field: string }[] = [
    { name: "comma in the name", over: { name: "vm,process=x" }, field: "name" },
    { name: "empty name", over: { name: "" }, field: "name" },
    { name: "bad accel", over: { accel: "hvf" as never }, field: "accel" },
    { name: "zero memory", over: { memoryMiB: 0 }, field: "memory_mib" },
    { name: "fractional cpus", over: { cpus: 1.5 }, field: "cpus" },
    { name: "relative kernel", over: { kernel: "vmlinuz" }, field: "kernel" },
    { name: "comma in initrd", over: { initrd: "/g/a,b" }, field: "initrd" },
    { name: "newline in append", over: { append: "quiet\ninit=/bin/sh" }, field: "append" },
    { name: "comma in the disk path", over: { disks: [{ path: "/d/a.img,format=qcow2", format: "raw" }] }, field: "disks[0].path" },
    { name: "bad disk format", over: { disks: [{ path: "/d/a", format: "vmdk" as never }] }, field: "disks[0].format" },
    { name: "comma in the console socket", over: { consoleSocket: "/run/c,server=off" }, field: "console_socket" },
    { name: "no kernel and no disk", over: { kernel: undefined }, field: "kernel" },
    { name: "comma in the serial path", over: { serialPath: "/run/x,append=on" }, field: "serial_path" },
    { name: "comma in the QMP socket", over: { qmpSocket: "/run/q.sock,server=off" }, field: "qmp_socket" },
    { name: "QMP socket too long", over: { qmpSocket: "/" + "q".repeat(120) }, field: "qmp_socket" },
    { name: "newline in the pid file", over: { pidFile: "/run/p\n" }, field: "pid_file" },
    { name: "space in a path", over: { kernel: "/g/vm linuz" }, field: "kernel" },
    { name: "bad MAC", over: { nics: [{ mode: "user", mac: "52:54:00:12:34" }] }, field: "nics[0].mac" },
    { name: "multicast MAC", over: { nics: [{ mode: "user", mac: "01:00:5e:00:00:01" }] }, field: "nics[0].mac" },
    {
      name: "duplicate MAC",
      over: { nics: [{ mode: "user", mac: MAC }, { mode: "user", mac: MAC.toUpperCase() }] },
      field: "nics[1].mac",
    },
    {
      name: "hostfwd address injection",
      over: { nics: [{ mode: "user", mac: MAC, forwards: [{ protocol: "tcp", hostAddress: "127.0.0.1,hostfwd=tcp::22-:22", hostPort: 1, guestPort: 1 }] }] },
      field: "nics[0].forwards[0].host_address",
    },
    {
      name: "hostfwd IPv6 (unsupported by slirp in 7.2)",
      over: { nics: [{ mode: "user", mac: MAC, forwards: [{ protocol: "tcp", hostAddress: "::1", hostPort: 1, guestPort: 1 }] }] },
      field: "nics[0].forwards[0].host_address",
    },
    {
      name: "hostfwd port out of range",
      over: { nics: [{ mode: "user", mac: MAC, forwards: [{ protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 70000, guestPort: 1 }] }] },
      field: "nics[0].forwards[0].host_port",
    },
    {
      name: "hostfwd duplicate host port",
      over: {
        nics: [
          {
            mode: "user",
            mac: MAC,
            forwards: [
              { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 80, guestPort: 1 },
              { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 80, guestPort: 2 },
            ],
          },
        ],
      },
      field: "nics[0].forwards[1].host_port",
    },
    {
      name: "hostfwd bad protocol",
      over: { nics: [{ mode: "user", mac: MAC, forwards: [{ protocol: "sctp" as never, hostAddress: "127.0.0.1", hostPort: 1, guestPort: 1 }] }] },
      field: "nics[0].forwards[0].protocol",
    },
    { name: "passt socket with comma", over: { nics: [{ mode: "passt", mac: MAC, socketPath: "/p,server=on" }] }, field: "nics[0].socket_path" },
    { name: "bridge name injection", over: { nics: [{ mode: "bridge", mac: MAC, bridge: "br0,helper=/tmp/evil" }] }, field: "nics[0].bridge" },
    { name: "bridge name too long", over: { nics: [{ mode: "bridge", mac: MAC, bridge: "b".repeat(16) }] }, field: "nics[0].bridge" },
    { name: "relative helper", over: { nics: [{ mode: "bridge", mac: MAC, bridge: "br0", helper: "helper" }] }, field: "nics[0].helper" },
    { name: "tap fd of stderr", over: { nics: [{ mode: "tap", mac: MAC, fd: 2 }] }, field: "nics[0].fd" },
    { name: "dgram fd of stdout", over: { nics: [{ mode: "dgram", mac: MAC, fd: 1 }] }, field: "nics[0].fd" },
    { name: "tap fd not an integer", over: { nics: [{ mode: "macvtap", mac: MAC, fd: 3.5 }] }, field: "nics[0].fd" },
    {
      name: "tap fd shared",
      over: { nics: [{ mode: "tap", mac: MAC, fd: 3 }, { mode: "vmnet", mac: "52:54:00:00:00:02", fd: 3 }] },
      field: "nics[1].fd",
    },
    { name: "custom with id", over: { nics: [{ mode: "custom", mac: MAC, netdev: "socket,id=x,listen=:1" }] }, field: "nics[0].netdev" },
    { name: "custom with newline", over: { nics: [{ mode: "custom", mac: MAC, netdev: "socket,listen=:1\n" }] }, field: "nics[0].netdev" },
    { name: "custom without type", over: { nics: [{ mode: "custom", mac: MAC, netdev: ",listen=:1" }] }, field: "nics[0].netdev" },
    { name: "unknown mode", over: { nics: [{ mode: "vde", mac: MAC } as never] }, field: "nics[0].mode" },
  ];

  it.each(cases)("refuses $name", ({ over, field }) => {
    expect(problems(spec(over)).map((p) => p.field)).toContain(field);
  });

  it("reports every problem at once", () => {
    const fields = problems(spec({ name: "a,b", kernel: "rel", nics: [{ mode: "bridge", mac: "x", bridge: "a,b" }] })).map(
      (p) => p.field,
    );
    expect(fields).toEqual(["name", "kernel", "nics[0].mac", "nics[0].bridge"]);
  });
});

// The QEMU argv builder, table-driven. It trusts its input: what it must
// never receive is refused by the one VM input validator (validate.test.ts).
import { describe, expect, it } from "vitest";
import { buildQemuArgv, runAsSyntax, type NicSpec, type QemuSpec } from "./qemu-argv.js";

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

describe("buildQemuArgv: dropping root", () => {
  it.each([
    ["7.2.22", "runas"],
    ["8.2.2", "runas"],
    ["9.0.1", "runas"],
    ["9.1.0", "run-with"],
    ["10.0.0", "run-with"],
    ["", "runas"],
  ])("QEMU %s uses -%s", (version, syntax) => {
    expect(runAsSyntax(version)).toBe(syntax);
  });

  it("puts the user on the command line in the version's syntax", () => {
    expect(buildQemuArgv(spec({ runAs: { user: "vmm-qemu", syntax: "runas" } })).join(" ")).toContain("-runas vmm-qemu");
    expect(buildQemuArgv(spec({ runAs: { user: "vmm-qemu", syntax: "run-with" } })).join(" ")).toContain("-run-with user=vmm-qemu");
    expect(buildQemuArgv(spec()).join(" ")).not.toMatch(/-runas|-run-with/);
  });
});

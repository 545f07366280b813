// The one rule set for VM input, table-driven: what CreateVm and UpdateVm
// refuse (everything the argv builder must never see), with the field path
// of the request and the kind of refusal.
import { describe, expect, it } from "vitest";
import { fillDefaults } from "../config/defaults.js";
import type { Config } from "../config/types.js";
import { VmmError } from "../errors.js";
import { runFiles } from "./store.js";
import type { RawNic, RawVmSpec, VmSpec } from "./types.js";
import { checkRunFiles, parseNetdev, validateSpec, validateUpdate } from "./validate.js";
import { Problems } from "../errors.js";

const cfg: Config = fillDefaults({
  stateDir: "/var/lib/vmm",
  networking: {
    allowedModes: ["user", "passt", "bridge", "tap", "macvtap", "vmnet", "custom"],
    forwardServiceEnabled: true,
    macvtapParent: "eth0",
    allowedBridges: ["br1"],
  },
  forward: { allowedListenAddresses: ["127.0.0.1", "::1"] },
});

const nic = (over: Partial<RawNic>): RawNic => ({ mode: undefined, bridge: "", macvtapParent: "", networkId: "", customNetdev: "", ...over });

function raw(over: Partial<RawVmSpec> = {}): RawVmSpec {
  return { name: "web", vcpus: 0, memoryMib: 0, kernel: "/g/vmlinuz", initrd: "", cmdline: "", disk: "", nics: [], ports: [], autoRestart: false, image: "", imageSizeMib: 0, disks: [], cloudInit: undefined, labels: {}, ...over };
}

/** The error validateSpec throws for `r` (fails the test when it accepts). */
function refusal(r: RawVmSpec, c: Config = cfg): VmmError {
  try {
    validateSpec(r, { cfg: c });
  } catch (e) {
    expect(e).toBeInstanceOf(VmmError);
    return e as VmmError;
  }
  throw new Error("expected a refusal");
}

describe("validateSpec", () => {
  it("fills defaults and resolves the default bridge", () => {
    const s = validateSpec(raw({ nics: [nic({ mode: "bridge" })] }), { cfg });
    expect(s).toMatchObject({ vcpus: 1, memoryMib: 256, cmdline: "console=ttyS0", nics: [{ mode: "bridge", bridge: "vmmbr0" }] });
  });

  it("gives a VM without NICs one NIC of the default mode", () => {
    expect(validateSpec(raw(), { cfg }).nics).toEqual([{ mode: "user" }]);
  });

  const tcp = (hostAddress: string, hostPort = 8080, nicIndex = 0) => ({ protocol: "tcp", hostAddress, hostPort, vmPort: 80, nicIndex, path: undefined as string | undefined, proxyProtocol: false });
  const bridged = [nic({ mode: "bridge" })];
  const invalid: { name: string; over: Partial<RawVmSpec>; field: string }[] = [
    { name: "an empty name", over: { name: "" }, field: "config.name" },
    { name: "a name with a newline", over: { name: "a\nb" }, field: "config.name" },
    { name: "a name with spaces around it", over: { name: " web" }, field: "config.name" },
    { name: "65 vCPUs", over: { vcpus: 65 }, field: "config.vcpus" },
    { name: "16 MiB", over: { memoryMib: 16 }, field: "config.memory_mib" },
    { name: "a relative kernel", over: { kernel: "vmlinuz" }, field: "config.kernel" },
    { name: "a kernel path with a space", over: { kernel: "/g/vm linuz" }, field: "config.kernel" },
    { name: "a kernel path with a tab", over: { kernel: "/g/vm\tlinuz" }, field: "config.kernel" },
    { name: "a comma in the initrd", over: { initrd: "/g/a,b" }, field: "config.initrd" },
    { name: "sub-options in the disk path", over: { disk: "/d/a.img,format=qcow2" }, field: "config.disk" },
    { name: "a path over 4096 bytes", over: { disk: "/" + "d".repeat(4096) }, field: "config.disk" },
    { name: "a newline in the cmdline", over: { cmdline: "quiet\ninit=/bin/sh" }, field: "config.cmdline" },
    { name: "an unknown mode", over: { nics: [nic({ mode: "?42" })] }, field: "config.nics[0].mode" },
    { name: "passt on the second NIC", over: { nics: [nic({ mode: "user" }), nic({ mode: "passt" })] }, field: "config.nics[1].mode" },
    { name: "bridge name injection", over: { nics: [nic({ mode: "bridge", bridge: "br0,helper=/tmp/evil" })] }, field: "config.nics[0].bridge" },
    { name: "a bridge name of 16 bytes", over: { nics: [nic({ mode: "tap", bridge: "b".repeat(16) })] }, field: "config.nics[0].bridge" },
    { name: "a bridge on a user NIC", over: { nics: [nic({ mode: "user", bridge: "br1" })] }, field: "config.nics[0].bridge" },
    { name: "a bad macvtap parent", over: { nics: [nic({ mode: "macvtap", macvtapParent: "eth0 x" })] }, field: "config.nics[0].macvtap_parent" },
    { name: "vmnet without a network", over: { nics: [nic({ mode: "vmnet" })] }, field: "config.nics[0].network_id" },
    { name: "a bad network id", over: { nics: [nic({ mode: "vmnet", networkId: "Net_1" })] }, field: "config.nics[0].network_id" },
    { name: "custom without a netdev", over: { nics: [nic({ mode: "custom" })] }, field: "config.nics[0].custom_netdev" },
    { name: "a netdev without a type", over: { nics: [nic({ mode: "custom", customNetdev: ",script=/bin/sh" })] }, field: "config.nics[0].custom_netdev" },
    { name: "a netdev with an upper-case type", over: { nics: [nic({ mode: "custom", customNetdev: "User,x" })] }, field: "config.nics[0].custom_netdev" },
    { name: "a netdev with an id", over: { nics: [nic({ mode: "custom", customNetdev: "socket,id=x,listen=:1" })] }, field: "config.nics[0].custom_netdev" },
    { name: "a netdev with a newline", over: { nics: [nic({ mode: "custom", customNetdev: "socket,listen=:1\n" })] }, field: "config.nics[0].custom_netdev" },
    { name: "a netdev with an escaped comma", over: { nics: [nic({ mode: "custom", customNetdev: "socket,listen=a,,id=x" })] }, field: "config.nics[0].custom_netdev" },
    { name: "nine NICs", over: { nics: Array.from({ length: 9 }, () => nic({ mode: "user" })) }, field: "config.nics" },
    { name: "a port without protocol", over: { ports: [{ ...tcp("127.0.0.1"), protocol: undefined }] }, field: "config.ports[0].protocol" },
    { name: "a host address with sub-options", over: { ports: [tcp("127.0.0.1,hostfwd=tcp::22-:22")] }, field: "config.ports[0].host_address" },
    { name: "a host address not allowed", over: { ports: [tcp("0.0.0.0")] }, field: "config.ports[0].host_address" },
    { name: "IPv6 on user networking (slirp)", over: { ports: [tcp("::1")] }, field: "config.ports[0].host_address" },
    { name: "host port 0", over: { ports: [tcp("127.0.0.1", 0)] }, field: "config.ports[0].host_port" },
    { name: "a duplicate host port", over: { ports: [tcp("127.0.0.1"), tcp("")] }, field: "config.ports[1].host_port" },
    { name: "a port on a NIC the VM does not have", over: { ports: [tcp("127.0.0.1", 8080, 1)] }, field: "config.ports[0].nic_index" },
    { name: "a negative NIC index", over: { ports: [tcp("127.0.0.1", 8080, -1)] }, field: "config.ports[0].nic_index" },
    { name: "a path on user networking", over: { ports: [{ ...tcp("127.0.0.1"), path: "nat" }] }, field: "config.ports[0].path" },
    { name: "PROXY on user networking", over: { ports: [{ ...tcp("127.0.0.1"), proxyProtocol: true }] }, field: "config.ports[0].proxy_protocol" },
    { name: "an unknown path", over: { nics: bridged, ports: [{ ...tcp("127.0.0.1"), path: "?7" }] }, field: "config.ports[0].path" },
    { name: "PROXY on UDP", over: { nics: bridged, ports: [{ ...tcp("127.0.0.1"), protocol: "udp", proxyProtocol: true }] }, field: "config.ports[0].proxy_protocol" },
    { name: "PROXY on a nat port", over: { nics: bridged, ports: [{ ...tcp("127.0.0.1"), path: "nat", proxyProtocol: true }] }, field: "config.ports[0].proxy_protocol" },
    { name: "nat on ::1", over: { nics: bridged, ports: [{ ...tcp("::1"), path: "nat" }] }, field: "config.ports[0].host_address" },
  ];

  it("refuses a port that is both nat and userspace (a wildcard and a specific address)", () => {
    const wide = { ...cfg, forward: { ...cfg.forward, allowedListenAddresses: ["127.0.0.1", "0.0.0.0"] } };
    const e = refusal(raw({ nics: bridged, ports: [{ ...tcp("127.0.0.1"), path: "nat" }, { ...tcp("127.0.0.1"), protocol: "udp" }, tcp("0.0.0.0")] }), wide);
    expect(e.problems).toEqual([{ field: "config.ports[2].path", message: expect.stringMatching(/userspace on tcp 0\.0\.0\.0:8080 would share packets with config\.ports\[0\] \(nat\)/) }]);
  });

  it.each(invalid)("refuses $name as invalid, naming $field", ({ over, field }) => {
    const e = refusal(raw(over));
    expect(e.kind).toBe("invalid");
    expect(e.problems.map((p) => p.field)).toContain(field);
  });

  it("keeps a port's path and PROXY option; unset stays unset (the daemon's default applies later)", () => {
    const s = validateSpec(raw({ nics: bridged, ports: [{ ...tcp("127.0.0.1"), path: "nat" }, { ...tcp("127.0.0.1", 8081), proxyProtocol: true }, tcp("::1", 8082)] }), { cfg });
    expect(s.ports).toEqual([
      { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 8080, vmPort: 80, nicIndex: 0, path: "nat" },
      { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 8081, vmPort: 80, nicIndex: 0, proxyProtocol: true },
      { protocol: "tcp", hostAddress: "::1", hostPort: 8082, vmPort: 80, nicIndex: 0 },
    ]);
    const natDefault = { ...cfg, forward: { ...cfg.forward, defaultPath: "nat" as const } };
    expect(refusal(raw({ nics: bridged, ports: [{ ...tcp("127.0.0.1"), proxyProtocol: true }] }), natDefault).message).toMatch(/proxy_protocol: needs path FORWARD_PATH_USERSPACE \(the daemon's default path is nat\)/);
  });

  it("accepts IPv6 host addresses where the mode can listen on them", () => {
    const s = validateSpec(raw({ nics: [nic({ mode: "passt" })], ports: [tcp("::1")] }), { cfg });
    expect(s.ports[0]!.hostAddress).toBe("::1");
  });

  it("keeps labels, and only when there are some", () => {
    expect(validateSpec(raw({ labels: { "vmm.dev/node": "host-a" } }), { cfg }).labels).toEqual({ "vmm.dev/node": "host-a" });
    expect(validateSpec(raw(), { cfg })).not.toHaveProperty("labels");
    expect(refusal(raw({ labels: { "bad key": "v" } })).problems.map((p) => p.field)).toEqual(['config.labels["bad key"]']);
  });

  it("reports every problem at once", () => {
    const e = refusal(raw({ name: "", kernel: "rel", nics: [nic({ mode: "bridge", bridge: "a,b" })] }));
    expect(e.problems.map((p) => p.field)).toEqual(["config.name", "config.kernel", "config.nics[0].bridge"]);
  });

  it.each([
    { name: "a mode not in allowed_modes", c: { ...cfg, networking: { ...cfg.networking, allowedModes: ["user" as const] } }, over: { nics: [nic({ mode: "tap" })] }, text: "config.nics[0].mode" },
    { name: "a bridge not in allowed_bridges", c: cfg, over: { nics: [nic({ mode: "bridge", bridge: "br9" })] }, text: "config.nics[0].bridge" },
  ])("refuses $name as permission", ({ c, over, text }) => {
    const e = refusal(raw(over), c);
    expect(e.kind).toBe("permission");
    expect(e.message).toContain(text);
  });

  it("a port names its NIC: the second NIC's mode decides", () => {
    const s = validateSpec(raw({ nics: [nic({ mode: "user" }), nic({ mode: "tap" })], ports: [tcp("127.0.0.1", 8080, 1), tcp("127.0.0.1", 8081, 0)] }), { cfg });
    expect(s.ports.map((p) => p.nicIndex)).toEqual([1, 0]);
    const e = refusal(raw({ nics: [nic({ mode: "user" }), nic({ mode: "custom", customNetdev: "socket,listen=127.0.0.1:2500" })], ports: [tcp("127.0.0.1", 8080, 1)] }));
    expect(e.kind).toBe("precondition");
    expect(e.message).toBe("config.ports[0]: nics[1] uses custom networking, which cannot honour port mappings; forward inside the netdev instead");
  });

  it.each([
    { name: "ports on a custom netdev", c: cfg, mode: "custom", netdev: "socket,listen=127.0.0.1:2500" },
    { name: "forwarded ports with the forward service off", c: { ...cfg, networking: { ...cfg.networking, forwardServiceEnabled: false } }, mode: "tap", netdev: "" },
  ])("refuses $name as a precondition", ({ c, mode, netdev }) => {
    const e = refusal(raw({ nics: [nic({ mode, customNetdev: netdev })], ports: [tcp("127.0.0.1")] }), c);
    expect(e.kind).toBe("precondition");
  });
});

describe("validateUpdate", () => {
  const spec: VmSpec = validateSpec(raw(), { cfg });
  const update = { updatePorts: false, ports: [] };

  it.each([
    { name: "a kernel path with a space", u: { kernel: "/g/a b" }, field: "kernel" },
    { name: "0 vCPUs", u: { vcpus: 0 }, field: "vcpus" },
    { name: "0 MiB", u: { memoryMib: 0 }, field: "memory_mib" },
    { name: "a control character in the name", u: { name: "a\u0007b" }, field: "name" },
    { name: "a newline in the cmdline", u: { cmdline: "a\nb" }, field: "cmdline" },
    { name: "a label value with a space", u: { labels: { app: "a b" } }, field: 'labels.labels["app"]' },
  ])("refuses $name, naming $field", ({ u, field }) => {
    try {
      validateUpdate(spec, { ...update, ...u }, { cfg });
      throw new Error("expected a refusal");
    } catch (e) {
      expect((e as VmmError).problems.map((p) => p.field)).toEqual([field]);
    }
  });

  it("replaces the label set; an empty set removes every label", () => {
    const labelled = validateUpdate(spec, { ...update, labels: { a: "1", b: "2" } }, { cfg });
    expect(labelled.labels).toEqual({ a: "1", b: "2" });
    expect(validateUpdate(labelled, { ...update, labels: { c: "3" } }, { cfg }).labels).toEqual({ c: "3" });
    expect(validateUpdate(labelled, { ...update, labels: {} }, { cfg })).not.toHaveProperty("labels");
    expect(validateUpdate(labelled, { ...update, memoryMib: 512 }, { cfg }).labels).toEqual({ a: "1", b: "2" });
  });

  it("leaves unset fields unchanged", () => {
    expect(validateUpdate(spec, { ...update, memoryMib: 512 }, { cfg })).toEqual({ ...spec, memoryMib: 512 });
  });
});

describe("parseNetdev", () => {
  it.each([
    ["socket,listen=:1234", { type: "socket", options: [{ key: "listen", value: ":1234" }] }],
    ["user,restrict", { type: "user", options: [{ key: "restrict", value: undefined }] }],
    ["l2tpv3", { type: "l2tpv3", options: [] }],
  ])("parses %s", (v, want) => {
    expect(parseNetdev(v)).toEqual(want);
  });
  it.each([",x", "User", "user,", "a,,b", "tap\u0000"])("refuses %j", (v) => {
    expect(typeof parseNetdev(v)).toBe("string");
  });
});

describe("checkRunFiles", () => {
  it("refuses a VM whose sockets would exceed the unix path limit", () => {
    const p = new Problems();
    checkRunFiles(p, "id", runFiles("/" + "s".repeat(60) + "/vms/" + "v".repeat(40)));
    expect(p.list.map((x) => x.field)).toEqual(["id"]);
  });
  it("accepts a short one", () => {
    const p = new Problems();
    checkRunFiles(p, "id", runFiles("/var/lib/vmm/vms/web"));
    expect(p.empty).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { GetMetaResponseSchema, LeaseVerification, NetworkingMode, Protocol, VmInfoSchema, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { renderEvent, renderForwards, renderLeases, renderMeta, renderVmInfo, renderVmList } from "./render.js";

const NOW = new Date("2025-01-02T03:00:00Z");
const ts = (iso: string) => timestampFromDate(new Date(iso));

const running = create(VmInfoSchema, {
  id: "web",
  name: "web",
  status: VmStatus.RUNNING,
  instanceId: "i-1",
  pid: 4242,
  uptimeSeconds: 3725n,
  createdAt: ts("2025-01-02T01:00:00Z"),
  startedAt: ts("2025-01-02T01:57:55Z"),
  config: { vcpus: 2, memoryMib: 512, kernel: "/k", cmdline: "console=ttyS0", ports: [{ protocol: Protocol.TCP, hostAddress: "127.0.0.1", hostPort: 8080, vmPort: 80 }] },
  nics: [{ index: 0, mode: NetworkingMode.TAP, mac: "52:54:00:00:00:01", bridge: "br0", hostInterface: "vmmtap0", lease: { ip: "10.0.0.5", hostname: "web", expiresAt: ts("2025-01-02T04:00:00Z"), verification: LeaseVerification.VERIFIED } }],
  forwards: [
    { protocol: Protocol.TCP, listenAddress: "127.0.0.1", listenPort: 8080, targetAddress: "10.0.0.5", targetPort: 80, relay: "native", counters: { connectionsActive: 1n, connectionsTotal: 7n, bytesToGuest: 1536n, bytesFromGuest: 2048n, errors: 0n } },
    { protocol: Protocol.UDP, listenAddress: "::1", listenPort: 5353, targetAddress: "10.0.0.5", targetPort: 53, relay: "sockets", counters: { sessionsActive: 3n, connectionsActive: 0n } },
  ],
  events: [{ time: ts("2025-01-02T01:57:55Z"), kind: "started", message: "pid 4242" }],
});
const stopped = create(VmInfoSchema, { id: "db", name: "db", status: VmStatus.STOPPED, nics: [{ index: 0, mode: NetworkingMode.USER, mac: "52:54:00:00:00:02" }] });

describe("renderVmList", () => {
  it("plain", () => {
    expect(renderVmList([running, stopped], false)).toBe(
      [
        "NAME   ID    STATUS    UPTIME   IP         PORTS",
        "web    web   running   1h02m    10.0.0.5   127.0.0.1:8080->80/tcp",
        "db     db    stopped   -        -          -",
        "",
      ].join("\n"),
    );
  });
  it("fits 100 columns: long names and port lists are cut, ids never", () => {
    const id = "0b4f5bd2-9a57-4b8e-9e0a-8d3b1c0f4a21";
    const long = create(VmInfoSchema, {
      status: VmStatus.RUNNING,
      uptimeSeconds: 5n,
      id,
      name: "a very long name for a virtual machine that nobody would type twice",
      config: { ports: Array.from({ length: 6 }, (_, i) => ({ protocol: Protocol.TCP, hostAddress: "127.0.0.1", hostPort: 8080 + i, vmPort: 80 + i })) },
    });
    const lines = renderVmList([long], false).trimEnd().split("\n");
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(100);
    expect(lines[1]).toContain(id);
    expect(lines[1]).toMatch(/^a very .*…\s/);
    expect(lines[1]).toMatch(/ 127\.0\.0\.1:80\S*…$/);
    // -o wide keeps everything.
    expect(renderVmList([long], true)).toContain(long.name);
  });
  it("wide: every column", () => {
    const lines = renderVmList([running, stopped], true).split("\n");
    expect(lines[0]!.split(/\s{2,}/)).toEqual(["ID", "NAME", "STATUS", "UPTIME", "IP", "MODE", "PORTS", "IMAGE", "INSTANCE_ID", "MAC"]);
    expect(lines[1]).toMatch(/i-1\s+52:54:00:00:00:01$/);
    expect(lines[2]).toMatch(/-\s+52:54:00:00:00:02$/);
  });
});

describe("renderVmInfo", () => {
  const out = renderVmInfo(running, NOW);
  it.each([
    /^Status:\s+running$/m,
    /^Uptime:\s+1h02m$/m,
    /^PID:\s+4242$/m,
    /^ {2}Memory:\s+512 MiB$/m,
    /^ {2}Kernel:\s+\/k$/m,
    /^ {2}Initrd:\s+-$/m,
    /^ {2}0\s+tap\s+52:54:00:00:00:01\s+br0\s+vmmtap0\s+-\s+10\.0\.0\.5\s+verified\s+web\s+in 1h00m$/m,
    /^ {2}tcp\s+127\.0\.0\.1:8080\s+10\.0\.0\.5:80\s+native\s+1\s+7\s+1\.5 KiB\s+2 KiB\s+0$/m,
    /^ {2}udp\s+\[::1\]:5353\s+10\.0\.0\.5:53\s+sockets\s+3\s+0\s+0 B\s+0 B\s+0$/m,
    /^ {2}2025-01-02T01:57:55Z\s+started\s+pid 4242$/m,
  ])("%s", (re) => expect(out).toMatch(re));
  it("a brief record has no Config section and says (none)", () => {
    const s = renderVmInfo(stopped, NOW);
    expect(s).not.toMatch(/^Config:/m);
    expect(s).toMatch(/^Forwards:\n {2}\(none\)\nEvents:\n {2}\(none\)\n$/m);
  });
});

describe("renderLeases / renderForwards / renderEvent / renderMeta", () => {
  it("leases", () => {
    expect(renderLeases([{ vmId: "web", nic: running.nics[0]! }], NOW)).toBe(
      "VM    NIC   MAC                 IP         STATE      HOSTNAME   EXPIRES\nweb   0     52:54:00:00:00:01   10.0.0.5   verified   web        in 1h00m\n",
    );
  });
  it("forwards", () => {
    const s = renderForwards(running.forwards.map((forward) => ({ vmId: "web", forward })));
    expect(s.split("\n")[0]).toBe("VM    PROTO   LISTEN           TARGET        RELAY     ACTIVE   TOTAL   BYTES_IN   BYTES_OUT   ERRORS");
  });
  it("event lines escape control characters", () => {
    expect(renderEvent("web", { $typeName: "vmm.v1.VmEvent", time: ts("2025-01-02T03:00:00Z"), kind: "exited", message: "code 1\nfake" })).toBe("2025-01-02T03:00:00Z  web  exited  code 1\\nfake\n");
  });
  it("meta", () => {
    const s = renderMeta(create(GetMetaResponseSchema, { version: "0.1.0", networkingModes: [NetworkingMode.USER, NetworkingMode.PASST], defaultNetworkingMode: NetworkingMode.USER, forwardServiceEnabled: true, forwardRelay: "native", platform: "linux/x64" }));
    expect(s).toMatch(/^QEMU:\s+not found$/m);
    expect(s).toMatch(/^Modes:\s+user, passt$/m);
    expect(s).toMatch(/^Forward service:\s+enabled \(relay native\)$/m);
  });
});

import { describe, expect, it } from "vitest";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NetworkingMode, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { enumName, formatBytes, formatDuration, formatExpiry, formatPortMapping, formatTime, formatUptime, hostPort } from "./format.js";

describe("formatDuration", () => {
  it.each<[number | bigint, string]>([
    [0, "0s"],
    [42, "42s"],
    [60, "1m00s"],
    [312, "5m12s"],
    [3599, "59m59s"],
    [3600, "1h00m"],
    [7500, "2h05m"],
    [86399, "23h59m"],
    [86400, "1d00h"],
    [273600, "3d04h"],
    [-5, "0s"],
    [59.9, "59s"],
    [10n ** 6n, "11d13h"],
  ])("%s s", (s, want) => expect(formatDuration(s)).toBe(want));
});

describe("formatUptime", () => {
  it("is - unless running", () => {
    expect(formatUptime(0n, false)).toBe("-");
    expect(formatUptime(0n, true)).toBe("0s");
    expect(formatUptime(3661n, true)).toBe("1h01m");
  });
});

describe("formatTime / formatExpiry", () => {
  const t = timestampFromDate(new Date("2025-01-02T03:04:05.678Z"));
  it("prints RFC 3339 UTC without fractions", () => {
    expect(formatTime(t)).toBe("2025-01-02T03:04:05Z");
    expect(formatTime(undefined)).toBe("-");
  });
  it.each<[string, string]>([
    ["2025-01-02T02:04:05.678Z", "in 1h00m"],
    ["2025-01-02T03:04:04.678Z", "in 1s"],
    ["2025-01-02T03:04:05.678Z", "expired"],
    ["2025-01-03T03:04:05.678Z", "expired"],
  ])("now %s: %s", (now, want) => expect(formatExpiry(t, new Date(now))).toBe(want));
  it("no expiry is never", () => expect(formatExpiry(undefined)).toBe("never"));
});

describe("formatBytes", () => {
  it.each<[number | bigint, string]>([
    [0, "0 B"],
    [1023, "1023 B"],
    [1024, "1 KiB"],
    [1536, "1.5 KiB"],
    [10 * 1024, "10 KiB"],
    [12.4 * 1024 * 1024, "12 MiB"],
    [2n ** 40n, "1 TiB"],
  ])("%s", (n, want) => expect(formatBytes(n)).toBe(want));
});

describe("enumName", () => {
  it.each<[Record<number, string>, number, string]>([
    [VmStatus, VmStatus.RUNNING, "running"],
    [VmStatus, VmStatus.UNSPECIFIED, "unspecified"],
    [NetworkingMode, NetworkingMode.MACVTAP, "macvtap"],
    [VmStatus, 99, "?99"],
  ])("%s %d", (e, v, want) => expect(enumName(e, v)).toBe(want));
});

describe("formatPortMapping / hostPort", () => {
  it.each<[Parameters<typeof formatPortMapping>[0], string]>([
    [{ protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 8080, vmPort: 80 }, "127.0.0.1:8080->80/tcp"],
    [{ protocol: "udp", hostAddress: "", hostPort: 5353, vmPort: 53 }, "5353->53/udp"],
    [{ protocol: "tcp", hostAddress: "::1", hostPort: 8080, vmPort: 80 }, "[::1]:8080->80/tcp"],
    [{ protocol: "tcp", hostAddress: "", hostPort: 8080, vmPort: 80, nicIndex: 1, path: "nat", proxyProtocol: false }, "8080->80/tcp(nic=1;path=nat)"],
    [{ protocol: "tcp", hostAddress: "", hostPort: 8443, vmPort: 443, nicIndex: 0, proxyProtocol: true }, "8443->443/tcp(proxy)"],
  ])("%j", (p, want) => expect(formatPortMapping(p)).toBe(want));
  it("brackets IPv6", () => {
    expect(hostPort("10.0.0.5", 22)).toBe("10.0.0.5:22");
    expect(hostPort("::1", 22)).toBe("[::1]:22");
  });
});

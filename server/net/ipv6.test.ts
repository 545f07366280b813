import { describe, expect, it } from "vitest";
import { formatIpv6, ipv6CidrToString, ipv6HostOf, ipv6Overlap, parseIpv6, parseIpv6Cidr, ULA } from "./ipv6.js";
import { cidrsOverlap, cidrWithin, isPrivateIpv4Cidr, parseIpv4Cidr } from "./addr.js";

describe("parseIpv6 / formatIpv6", () => {
  it.each([
    ["::", "::"],
    ["::1", "::1"],
    ["fd00::", "fd00::"],
    ["FD00:0:0:0:0:0:0:1", "fd00::1"],
    ["fd00:0000:0000:0001:0000:0000:0000:0000", "fd00:0:0:1::"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8::0:1", "2001:db8::1"],
    ["1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"],
    ["::ffff:192.0.2.1", "::ffff:c000:201"],
  ])("%s -> %s", (input, canonical) => {
    const n = parseIpv6(input);
    expect(n).not.toBeNull();
    expect(formatIpv6(n!)).toBe(canonical);
  });

  it.each([":::", "1::2::3", "fd00::1%eth0", "fd00:::1", "12345::", "g::", "", "1.2.3.4", "1:2:3:4:5:6:7:8:9"])("refuses %j", (s) => {
    expect(parseIpv6(s)).toBeNull();
  });
});

describe("parseIpv6Cidr", () => {
  it.each([
    ["fd00:1::/64", "fd00:1::/64"],
    ["FD00:0001:0:0::/64", "fd00:1::/64"],
    ["::/0", "::/0"],
  ])("%s", (s, canonical) => {
    expect(ipv6CidrToString(parseIpv6Cidr(s)!)).toBe(canonical);
  });

  it.each([":::/64", "fd00:1::1/64", "fd00::/129", "fd00::/064", "fd00::", "fd00::/", "/64", "fd00::/64/1"])("refuses %j", (s) => {
    expect(parseIpv6Cidr(s)).toBeNull();
  });

  it("overlap, ULA and host addresses", () => {
    const a = parseIpv6Cidr("fd00:1::/64")!;
    expect(ipv6Overlap(a, parseIpv6Cidr("fd00:1::/48")!)).toBe(true);
    expect(ipv6Overlap(a, parseIpv6Cidr("fd00:2::/64")!)).toBe(false);
    expect(ipv6Overlap(a, ULA)).toBe(true);
    expect(ipv6Overlap(parseIpv6Cidr("2001:db8::/64")!, ULA)).toBe(false);
    expect(ipv6Overlap(parseIpv6Cidr("fe80::/64")!, ULA)).toBe(false);
    expect(ipv6HostOf(a, 1n)).toBe("fd00:1::1");
  });
});

describe("IPv4 ranges", () => {
  const c = (s: string) => parseIpv4Cidr(s)!;
  it.each([
    ["10.96.0.0/24", "10.96.0.0/16", true],
    ["10.96.0.0/24", "10.96.0.128/25", true],
    ["10.96.0.0/24", "10.96.1.0/24", false],
    ["192.168.0.0/16", "192.168.128.0/17", true],
    ["10.0.0.0/8", "11.0.0.0/8", false],
  ])("%s overlaps %s: %s", (a, b, want) => {
    expect(cidrsOverlap(c(a), c(b))).toBe(want);
    expect(cidrsOverlap(c(b), c(a))).toBe(want);
  });

  it("within", () => {
    expect(cidrWithin(c("192.168.130.0/24"), c("192.168.128.0/17"))).toBe(true);
    expect(cidrWithin(c("192.168.0.0/16"), c("192.168.128.0/17"))).toBe(false);
  });

  it.each([
    ["10.0.0.0/16", true],
    ["172.16.0.0/12", true],
    ["172.31.255.0/24", true],
    ["172.32.0.0/16", false],
    ["192.168.0.0/16", true],
    ["100.64.0.0/16", true],
    ["100.128.0.0/16", false],
    ["127.1.0.0/16", false],
    ["0.0.0.0/16", false],
    ["224.0.0.0/16", false],
    ["169.254.0.0/16", false],
    ["240.0.0.0/16", false],
    ["8.8.8.0/24", false],
    ["10.0.0.0/7", false],
  ])("%s is private: %s", (s, want) => {
    expect(isPrivateIpv4Cidr(c(s))).toBe(want);
  });
});

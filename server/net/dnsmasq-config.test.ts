import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.js";
import { dnsmasqConfig, type DnsmasqConfig } from "./dnsmasq-config.js";

const base: DnsmasqConfig = {
  writer: "the test",
  interface: "vmbr0",
  dns: false,
  leaseFile: "/run/x/dnsmasq.leases",
  pidFile: "/run/x/dnsmasq.pid",
  logFile: "/run/x/dnsmasq.log",
};
const dhcp = { rangeStart: "10.20.0.50", rangeEnd: "10.20.0.200", netmask: "255.255.255.0" };

const lines = (c: DnsmasqConfig) => dnsmasqConfig(c).trimEnd().split("\n");

describe("dnsmasqConfig", () => {
  it.each([
    {
      name: "bridge: DHCP only, with router and hook",
      c: { ...base, dhcp: { ...dhcp, router: "10.20.0.1", script: "/opt/vmm/vmm-dhcp-hook" } },
      want: [
        "# Written by the test. DHCP on vmbr0 only.",
        "interface=vmbr0",
        "bind-interfaces",
        "except-interface=lo",
        "port=0",
        "no-hosts",
        "no-resolv",
        "dhcp-leasefile=/run/x/dnsmasq.leases",
        "pid-file=/run/x/dnsmasq.pid",
        "log-facility=/run/x/dnsmasq.log",
        "log-dhcp",
        "dhcp-authoritative",
        "no-ping",
        "dhcp-range=10.20.0.50,10.20.0.200,255.255.255.0,12h",
        "dhcp-option=option:router,10.20.0.1",
        "dhcp-script=/opt/vmm/vmm-dhcp-hook",
      ],
    },
    {
      name: "vmnet: DNS, MTU, reservations (MAC canonical), lease time, RA",
      c: {
        ...base,
        dns: true,
        routerAdvertisements: true,
        dhcp: { ...dhcp, leaseTime: "1h", router: "10.20.0.1", mtu: 9000, dnsServer: "10.20.0.1", reservations: [{ mac: "52-54-00-AA-BB-CC", ip: "10.20.0.10" }] },
      },
      want: [
        "# Written by the test. DHCP, DNS, router advertisements on vmbr0 only.",
        "interface=vmbr0",
        "bind-interfaces",
        "except-interface=lo",
        "port=53",
        "no-hosts",
        "dhcp-leasefile=/run/x/dnsmasq.leases",
        "pid-file=/run/x/dnsmasq.pid",
        "log-facility=/run/x/dnsmasq.log",
        "log-dhcp",
        "dhcp-authoritative",
        "no-ping",
        "dhcp-range=10.20.0.50,10.20.0.200,255.255.255.0,1h",
        "dhcp-option=option:router,10.20.0.1",
        "dhcp-option=option:mtu,9000",
        "dhcp-option=option:dns-server,10.20.0.1",
        "dhcp-host=52:54:00:aa:bb:cc,10.20.0.10",
        "enable-ra",
        "dhcp-range=::,constructor:vmbr0,ra-only,64,12h",
      ],
    },
    {
      name: "no DHCP: router advertisements only, no range, no no-ping",
      c: { ...base, routerAdvertisements: true },
      want: [
        "# Written by the test. router advertisements on vmbr0 only.",
        "interface=vmbr0",
        "bind-interfaces",
        "except-interface=lo",
        "port=0",
        "no-hosts",
        "no-resolv",
        "dhcp-leasefile=/run/x/dnsmasq.leases",
        "pid-file=/run/x/dnsmasq.pid",
        "log-facility=/run/x/dnsmasq.log",
        "log-dhcp",
        "enable-ra",
        "dhcp-range=::,constructor:vmbr0,ra-only,64,12h",
      ],
    },
  ])("$name", ({ c, want }) => {
    expect(lines(c)).toEqual(want);
  });

  it("MTU 1500 adds no MTU option", () => {
    expect(dnsmasqConfig({ ...base, dhcp: { ...dhcp, mtu: 1500 } })).not.toContain("option:mtu");
  });

  it.each([
    { name: "newline in the interface", c: { ...base, interface: "br0\ndhcp-script=/tmp/x" }, field: "interface" },
    { name: "comma in a range address", c: { ...base, dhcp: { ...dhcp, rangeStart: "10.20.0.5,10.20.0.6" } }, field: "dhcp.range_start" },
    { name: "relative hook", c: { ...base, dhcp: { ...dhcp, script: "hook.sh" } }, field: "dhcp.script" },
    { name: "hook path with a space", c: { ...base, dhcp: { ...dhcp, script: "/opt/my hook" } }, field: "dhcp.script" },
    { name: "lease file with ..", c: { ...base, leaseFile: "/run/../etc/shadow" }, field: "lease_file" },
    { name: "lease file with newline", c: { ...base, leaseFile: "/run/x\nport=53" }, field: "lease_file" },
    { name: "reservation MAC with a comma", c: { ...base, dhcp: { ...dhcp, reservations: [{ mac: "52:54:00:aa:bb:cc,ignore", ip: "10.20.0.9" }] } }, field: "dhcp.reservations[0].mac" },
    { name: "reservation IP", c: { ...base, dhcp: { ...dhcp, reservations: [{ mac: "52:54:00:aa:bb:cc", ip: "10.20.0.9\n" }] } }, field: "dhcp.reservations[0].ip" },
    { name: "lease time", c: { ...base, dhcp: { ...dhcp, leaseTime: "12h,x" } }, field: "dhcp.lease_time" },
    { name: "MTU", c: { ...base, dhcp: { ...dhcp, mtu: 100 } }, field: "dhcp.mtu" },
    { name: "writer with a newline", c: { ...base, writer: "x\nport=53" }, field: "writer" },
  ])("refuses $name, naming $field", ({ c, field }) => {
    let err: unknown;
    try {
      dnsmasqConfig(c as DnsmasqConfig);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).problems.map((p) => p.field)).toEqual([field]);
  });
});

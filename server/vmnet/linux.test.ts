// The Linux backend's generators, table-driven: dnsmasq.conf and the
// nftables ruleset of a network, for each mode and option. Each generated
// text is also handed to the real tool's syntax check (`dnsmasq --test`,
// `nft --check`), which reads it without applying anything.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { requireNetns } from "../../test/guest/netns.js";
import { LinuxNetworkBackend } from "./linux.js";
import type { NetworkRecord, NetworkSpec } from "./types.js";

const dir = mkdtempSync(join(tmpdir(), "vmm-linux-gen-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const FILES = { pid: join(dir, "dnsmasq.pid"), leases: join(dir, "dnsmasq.leases"), log: join(dir, "dnsmasq.log") };
const HOOK = "/opt/vmm/clients/dnsmasq-hook/vmm-dhcp-hook";

function rec(over: Partial<NetworkSpec> = {}): NetworkRecord {
  return {
    version: 1,
    id: "net-0a1b2c3d",
    name: "lab",
    createdAt: "2026-01-01T00:00:00.000Z",
    bridge: "vmnet-0a1b2c3d",
    gateway: "10.77.0.1",
    holders: [],
    spec: {
      mode: "shared",
      ipv4Subnet: "10.77.0.0/24",
      ipv6Prefix: "",
      mtu: 1500,
      dhcpEnabled: true,
      dhcpReservations: [],
      nat44Enabled: true,
      nat66Enabled: false,
      dnsProxyEnabled: false,
      routerAdvertisementEnabled: false,
      portForwards: [],
      externalInterface: "",
      ...over,
    },
  };
}

const lines = (text: string) => text.trimEnd().split("\n");

describe("dnsmasqConf", () => {
  const base = [
    "interface=vmnet-0a1b2c3d",
    "bind-interfaces",
    "except-interface=lo",
    "no-hosts",
    `dhcp-leasefile=${FILES.leases}`,
    `pid-file=${FILES.pid}`,
    `log-facility=${FILES.log}`,
  ];
  const cases: { name: string; spec: Partial<NetworkSpec>; gateway?: string; has: string[]; lacks: string[] }[] = [
    {
      name: "DHCP on, DNS off: the range is the subnet minus network, gateway and broadcast",
      spec: {},
      has: [...base, "port=0", "no-resolv", "dhcp-authoritative", "no-ping", "dhcp-range=10.77.0.2,10.77.0.254,255.255.255.0,12h", "dhcp-option=option:router,10.77.0.1", `dhcp-script=${HOOK}`],
      lacks: ["port=53", "enable-ra", "dhcp-option=option:dns-server,10.77.0.1"],
    },
    {
      name: "a /29 leaves five guest addresses",
      spec: { ipv4Subnet: "10.77.0.8/29" },
      gateway: "10.77.0.9",
      has: ["dhcp-range=10.77.0.10,10.77.0.14,255.255.255.248,12h", "dhcp-option=option:router,10.77.0.9"],
      lacks: [],
    },
    {
      name: "DNS proxy: dnsmasq answers on port 53 and hands itself out",
      spec: { dnsProxyEnabled: true },
      has: ["port=53", "dhcp-option=option:dns-server,10.77.0.1"],
      lacks: ["port=0", "no-resolv"],
    },
    {
      name: "DHCP off: no range, no hook",
      spec: { dhcpEnabled: false },
      has: [...base, "port=0"],
      lacks: ["dhcp-authoritative", `dhcp-script=${HOOK}`, "no-ping"],
    },
    {
      name: "reservations and a non-default MTU",
      spec: { mtu: 9000, dhcpReservations: [{ mac: "02:00:00:00:00:01", ipv4: "10.77.0.10" }, { mac: "02:00:00:00:00:02", ipv4: "10.77.0.11" }] },
      has: ["dhcp-option=option:mtu,9000", "dhcp-host=02:00:00:00:00:01,10.77.0.10", "dhcp-host=02:00:00:00:00:02,10.77.0.11"],
      lacks: [],
    },
    {
      name: "router advertisements for an IPv6 prefix",
      spec: { ipv6Prefix: "fd00:77::/64", routerAdvertisementEnabled: true },
      has: ["enable-ra", "dhcp-range=::,constructor:vmnet-0a1b2c3d,ra-only,64,12h"],
      lacks: [],
    },
    {
      name: "an IPv6 prefix without router advertisements",
      spec: { ipv6Prefix: "fd00:77::/64", routerAdvertisementEnabled: false },
      has: [],
      lacks: ["enable-ra"],
    },
  ];

  it.each(cases)("$name", ({ spec, gateway, has, lacks }) => {
    const r = { ...rec(spec), ...(gateway ? { gateway } : {}) };
    const conf = lines(LinuxNetworkBackend.dnsmasqConf(r, FILES, HOOK));
    for (const l of has) expect(conf).toContain(l);
    for (const l of lacks) expect(conf).not.toContain(l);
    // One directive per line: no value may carry a newline into the file.
    expect(conf.every((l) => l.startsWith("#") || /^[a-z-]+(=.*)?$/.test(l))).toBe(true);
  });

  it.each(cases)("dnsmasq --test accepts: $name", ({ spec, gateway }) => {
    const r = { ...rec(spec), ...(gateway ? { gateway } : {}) };
    const path = join(dir, "test.conf");
    writeFileSync(path, LinuxNetworkBackend.dnsmasqConf(r, FILES, HOOK));
    const out = spawnSync("dnsmasq", ["--test", `--conf-file=${path}`], { encoding: "utf8", timeout: 10_000 });
    expect(out.status, out.stderr).toBe(0);
  });
});

describe("nftRules", () => {
  const cases: { name: string; spec: Partial<NetworkSpec>; external: string; tables: string[]; has: string[]; lacks: string[] }[] = [
    {
      name: "host mode: guests talk to each other, nothing is routed",
      spec: { mode: "host", nat44Enabled: false },
      external: "",
      tables: ["table inet vmmnet_0a1b2c3d {"],
      has: ['iifname "vmnet-0a1b2c3d" oifname "vmnet-0a1b2c3d" accept', 'iifname "vmnet-0a1b2c3d" drop', 'oifname "vmnet-0a1b2c3d" drop'],
      lacks: ["masquerade", 'oifname "eth0"'],
    },
    {
      name: "shared mode with NAT44: forward out of the external interface, masquerade the subnet",
      spec: {},
      external: "eth0",
      tables: ["table inet vmmnet_0a1b2c3d {", "table ip vmmnet_0a1b2c3d_nat {"],
      has: ['iifname "vmnet-0a1b2c3d" oifname "eth0" accept', 'iifname "eth0" oifname "vmnet-0a1b2c3d" ct state established,related accept', 'ip saddr 10.77.0.0/24 oifname "eth0" masquerade'],
      lacks: ["ip6 saddr"],
    },
    {
      name: "shared mode with NAT44 and NAT66",
      spec: { ipv6Prefix: "fd00:77::/64", nat66Enabled: true },
      external: "eth0",
      tables: ["table inet vmmnet_0a1b2c3d {", "table ip vmmnet_0a1b2c3d_nat {", "table ip6 vmmnet_0a1b2c3d_nat6 {"],
      has: ['ip6 saddr fd00:77::/64 oifname "eth0" masquerade'],
      lacks: [],
    },
    {
      name: "shared mode without an external interface routes nothing",
      spec: {},
      external: "",
      tables: ["table inet vmmnet_0a1b2c3d {"],
      has: ['iifname "vmnet-0a1b2c3d" drop'],
      lacks: ["masquerade"],
    },
  ];

  it.each(cases)("$name", ({ spec, external, tables, has, lacks }) => {
    const text = LinuxNetworkBackend.nftRules(rec(spec), external);
    const all = lines(text).map((l) => l.trim());
    expect(lines(text).filter((l) => l.startsWith("table "))).toEqual(tables);
    for (const l of has) expect(all).toContain(l);
    for (const l of lacks) expect(text).not.toContain(l);
    // The drops come after every accept: the chain's order is its meaning.
    const firstDrop = all.findIndex((l) => l.endsWith(" drop"));
    expect(all.slice(firstDrop).some((l) => l.endsWith(" accept"))).toBe(false);
  });

  it.each(cases)("nft --check accepts: $name", ({ spec, external }) => {
    requireNetns();
    const out = spawnSync("nft", ["--check", "-f", "-"], { input: LinuxNetworkBackend.nftRules(rec(spec), external), encoding: "utf8", timeout: 10_000 });
    expect(out.status, out.stderr).toBe(0);
  });
});

// validateNetwork, table-driven without a host: the subnet policy (private
// space, prefix lengths, no overlap with networks, bridge subnets, the pool
// or the host), reservations, port forwards, IPv6 prefixes, names.
import { describe, expect, it } from "vitest";
import { fillDefaults } from "../config/defaults.js";
import { ValidationError, VmmError } from "../errors.js";
import type { HostPrefix } from "../net/host-prefixes.js";
import { parseIpv4Cidr } from "../net/addr.js";
import { parseIpv6Cidr } from "../net/ipv6.js";
import type { NetworkRecord, RawNetworkConfig } from "./types.js";
import { allocateSubnet, validateNetwork, type NetworkContext } from "./validate.js";

const cfg = fillDefaults({ stateDir: "/x", networking: { bridgeSubnets: { vmmbr0: "10.20.0.0/24" } } });

function net(id: string, subnet: string, ipv6Prefix = "", name = id): NetworkRecord {
  return {
    version: 1,
    id,
    name,
    createdAt: "2020-01-01T00:00:00.000Z",
    bridge: `vmnet-${id}`,
    gateway: "",
    holders: [],
    spec: { mode: "host", ipv4Subnet: subnet, ipv6Prefix, mtu: 1500, dhcpEnabled: true, dhcpReservations: [], nat44Enabled: false, nat66Enabled: false, dnsProxyEnabled: false, routerAdvertisementEnabled: false, portForwards: [], externalInterface: "" },
  };
}

const host: HostPrefix[] = [
  { family: 4, cidr: parseIpv4Cidr("172.17.0.0/16")!, what: "address 172.17.0.1/16 on docker0" },
  { family: 4, cidr: parseIpv4Cidr("10.244.0.0/16")!, what: "route 10.244.0.0/16 dev cni0" },
  { family: 6, cidr: parseIpv6Cidr("fd00::/64")!, what: "address fd00::2/64 on eth0" },
];
const ctx: NetworkContext = { cfg, existing: [net("net-a", "10.96.0.0/24", "fd00:96::/64", "alpha"), net("net-b", "192.168.128.0/24")], host };

function raw(c: Partial<RawNetworkConfig>): RawNetworkConfig {
  return { mode: "host", ipv4Subnet: "", ipv6Prefix: "", mtu: 0, dhcpReservations: [], portForwards: [], externalInterface: "", ...c };
}

function problems(name: string, c: Partial<RawNetworkConfig>): string[] {
  try {
    validateNetwork(name, raw(c), ctx);
  } catch (e) {
    if (e instanceof ValidationError) return e.problems.map((p) => `${p.field}: ${p.message}`);
    throw e;
  }
  return [];
}

const fwd = (internalAddress: string, listenPort = 8080) => ({ protocol: "tcp", listenAddress: "", listenPort, internalAddress, internalPort: 80, path: undefined as string | undefined, proxyProtocol: false });

describe("subnets", () => {
  it.each([
    ["10.96.0.0/16", /overlaps 10\.96\.0\.0\/24 of network net-a/],
    ["10.96.0.128/25", /overlaps 10\.96\.0\.0\/24 of network net-a/],
    ["10.96.0.0/24", /overlaps 10\.96\.0\.0\/24 of network net-a/],
    ["192.168.0.0/16", /overlaps vmnet\.subnet_pool 192\.168\.128\.0\/17 without lying inside it/],
    ["127.1.0.0/16", /not private address space/],
    ["0.0.0.0/16", /not private address space/],
    ["224.0.0.0/16", /not private address space/],
    ["169.254.0.0/16", /not private address space/],
    ["240.0.0.0/16", /not private address space/],
    ["8.8.8.0/24", /not private address space/],
    ["100.63.0.0/16", /not private address space/],
    ["10.20.0.0/16", /overlaps networking\.bridge_subnets\.vmmbr0 \(10\.20\.0\.0\/24\)/],
    ["172.17.5.0/24", /overlaps the host's address 172\.17\.0\.1\/16 on docker0/],
    ["10.244.3.0/24", /overlaps the host's route 10\.244\.0\.0\/16 dev cni0/],
    ["10.0.0.0/8", /prefix \/8: must be between \/16 and \/29/],
    ["10.1.0.0/30", /prefix \/30: must be between \/16 and \/29/],
    ["10.1.0.1/24", /not an IPv4 CIDR with zero host bits/],
    ["10.1.0.0", /not an IPv4 CIDR/],
  ])("%s is refused", (subnet, why) => {
    const ps = problems("", { ipv4Subnet: subnet });
    expect(ps.length).toBeGreaterThan(0);
    for (const p of ps) expect(p).toMatch(/^config\.ipv4_subnet: /);
    expect(ps.some((p) => why.test(p)), ps.join("\n")).toBe(true);
  });

  it.each(["10.97.0.0/24", "172.16.0.0/16", "100.64.1.0/24", "10.1.0.0/29", "192.168.130.0/24"])("%s is accepted", (subnet) => {
    expect(validateNetwork("", raw({ ipv4Subnet: subnet }), ctx).ipv4Subnet).toBe(subnet);
  });

  it("allocates a /24 of the pool that overlaps nothing", () => {
    const c: NetworkContext = { ...ctx, host: [...host, { family: 4, cidr: parseIpv4Cidr("192.168.129.0/24")!, what: "route" }] };
    expect(allocateSubnet(c)).toBe("192.168.130.0/24");
    expect(validateNetwork("", raw({}), c).ipv4Subnet).toBe("192.168.130.0/24");
  });

  it("a used-up pool is exhausted, named", () => {
    const small = { ...ctx, cfg: { ...cfg, vmnet: { ...cfg.vmnet, subnetPool: "192.168.128.0/24" } } };
    expect(() => validateNetwork("", raw({}), small)).toThrow(expect.objectContaining({ kind: "exhausted", message: expect.stringMatching(/^config\.ipv4_subnet: no free \/24/) }));
  });
});

describe("reservations and forwards", () => {
  it.each([
    [{ dhcpReservations: [{ mac: "02:00:00:00:00:01", ipv4: "10.97.0.0" }] }, "config.dhcp_reservations[0].ipv4", /network address/],
    [{ dhcpReservations: [{ mac: "02:00:00:00:00:01", ipv4: "10.97.0.1" }] }, "config.dhcp_reservations[0].ipv4", /gateway/],
    [{ dhcpReservations: [{ mac: "02:00:00:00:00:01", ipv4: "10.97.0.255" }] }, "config.dhcp_reservations[0].ipv4", /broadcast/],
    [{ dhcpReservations: [{ mac: "02:00:00:00:00:01", ipv4: "8.8.8.8" }] }, "config.dhcp_reservations[0].ipv4", /outside 10\.97\.0\.0\/24/],
    [{ dhcpReservations: [{ mac: "ff:ff:ff:ff:ff:ff", ipv4: "10.97.0.9" }] }, "config.dhcp_reservations[0].mac", /multicast\/broadcast/],
    [{ dhcpReservations: [{ mac: "01:00:5e:00:00:01", ipv4: "10.97.0.9" }] }, "config.dhcp_reservations[0].mac", /multicast/],
    [{ dhcpReservations: [{ mac: "00:00:00:00:00:00", ipv4: "10.97.0.9" }] }, "config.dhcp_reservations[0].mac", /no NIC's MAC/],
    [{ dhcpReservations: [{ mac: "02:00:00:00:00:01", ipv4: "10.97.0.9" }, { mac: "02:00:00:00:00:02", ipv4: "10.97.0.9" }] }, "config.dhcp_reservations[1].ipv4", /already reserved by config\.dhcp_reservations\[0\]/],
    [{ dhcpReservations: [{ mac: "02:00:00:00:00:01", ipv4: "10.97.0.9" }, { mac: "02-00-00-00-00-01", ipv4: "10.97.0.10" }] }, "config.dhcp_reservations[1].mac", /already reserved/],
    [{ portForwards: [fwd("1.1.1.1")] }, "config.port_forwards[0].internal_address", /outside 10\.97\.0\.0\/24/],
    [{ portForwards: [fwd("10.97.0.1")] }, "config.port_forwards[0].internal_address", /gateway/],
    [{ portForwards: [fwd("10.97.0.255")] }, "config.port_forwards[0].internal_address", /broadcast/],
    [{ portForwards: [fwd("10.97.0.5"), fwd("10.97.0.6")] }, "config.port_forwards[1].listen_port", /duplicates config\.port_forwards\[0\]/],
    [{ portForwards: [fwd("10.97.0.5", 80)] }, "config.port_forwards[0].listen_port", /configured range/],
  ] as [Partial<RawNetworkConfig>, string, RegExp][])("%#: %s", (c, field, why) => {
    const ps = problems("", { ipv4Subnet: "10.97.0.0/24", ...c });
    expect(ps.some((p) => p.startsWith(`${field}: `) && why.test(p)), ps.join("\n")).toBe(true);
  });

  it("holds reservations and forwards to a subnet the pool chose", () => {
    const ps = problems("", { dhcpReservations: [{ mac: "02:00:00:00:00:01", ipv4: "8.8.8.8" }], portForwards: [fwd("1.1.1.1")] });
    expect(ps).toEqual([
      "config.dhcp_reservations[0].ipv4: 8.8.8.8 is outside 192.168.129.0/24",
      "config.port_forwards[0].internal_address: 1.1.1.1 is outside 192.168.129.0/24",
    ]);
  });
});

describe("IPv6 prefixes", () => {
  it.each([
    [":::/64", /not an IPv6 prefix/],
    ["fd00:1::1/64", /not an IPv6 prefix with zero host bits/],
    ["fd00:1::/48", /must be \/64/],
    ["2001:db8::/64", /not unique local address space/],
    ["fe80::/64", /not unique local address space/],
    ["fd00:96::/64", /overlaps fd00:96::\/64 of network net-a/],
    ["fd00::/64", /overlaps the host's address fd00::2\/64 on eth0/],
  ])("%s is refused", (prefix, why) => {
    const ps = problems("", { ipv6Prefix: prefix });
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatch(/^config\.ipv6_prefix: /);
    expect(ps[0]).toMatch(why);
  });

  it("is stored in canonical form", () => {
    expect(validateNetwork("", raw({ ipv6Prefix: "FD00:0001:0000:0000::/64" }), ctx).ipv6Prefix).toBe("fd00:1::/64");
  });
});

describe("names", () => {
  it("a name another network has already exists, also in another normalization form", () => {
    for (const name of ["alpha", "net-b", "alpha".normalize("NFD")]) {
      let err: unknown;
      try {
        validateNetwork(name, raw({}), ctx);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VmmError);
      expect((err as VmmError).kind).toBe("exists");
      expect((err as VmmError).message).toMatch(/^name: network ".*" already exists/);
    }
  });

  it("every problem at once", () => {
    const ps = problems("bad\nname", { mode: undefined, ipv4Subnet: "8.8.8.0/24", ipv6Prefix: "x", mtu: 1 });
    expect(ps.map((p) => p.split(":")[0])).toEqual(["name", "config.mode", "config.ipv4_subnet", "config.ipv6_prefix", "config.mtu"]);
  });
});

import { describe, expect, it } from "vitest";
import { parseAll, parseBool, parseNet, parsePort, parseReservation, parseUint } from "./parse.js";

describe("parsePort", () => {
  it.each([
    ["tcp:8080:80", { protocol: "tcp", hostAddress: "", hostPort: 8080, vmPort: 80 }],
    ["udp:127.0.0.1:5353:53", { protocol: "udp", hostAddress: "127.0.0.1", hostPort: 5353, vmPort: 53 }],
    ["TCP:1:65535", { protocol: "tcp", hostAddress: "", hostPort: 1, vmPort: 65535 }],
    ["tcp:[::1]:8080:80", { protocol: "tcp", hostAddress: "::1", hostPort: 8080, vmPort: 80 }],
    ["tcp:0.0.0.0:2222:22", { protocol: "tcp", hostAddress: "0.0.0.0", hostPort: 2222, vmPort: 22 }],
    ["tcp:8080:80,nic=1", { protocol: "tcp", hostAddress: "", hostPort: 8080, vmPort: 80, nicIndex: 1 }],
    ["tcp:0.0.0.0:8080:80,path=nat,nic=0", { protocol: "tcp", hostAddress: "0.0.0.0", hostPort: 8080, vmPort: 80, path: "nat", nicIndex: 0 }],
    ["tcp:8443:443,proxy,path=userspace", { protocol: "tcp", hostAddress: "", hostPort: 8443, vmPort: 443, proxyProtocol: true, path: "userspace" }],
  ])("%s", (spec, want) => {
    expect(parsePort(spec)).toEqual({ ok: true, value: want });
  });

  it.each([
    ["8080:80", /--port "8080:80": expected PROTO\[:ADDR\]:HOST_PORT:VM_PORT/],
    ["tcp:80", /--port "tcp:80": expected PROTO\[:ADDR\]:HOST_PORT:VM_PORT/],
    ["", /--port "": expected/],
    ["sctp:1:2", /protocol "sctp" must be tcp or udp/],
    ["tcp:abc:80", /host port "abc" must be an integer 1-65535/],
    ["tcp:0:80", /host port "0" must be an integer 1-65535/],
    ["tcp:8080:65536", /VM port "65536" must be an integer 1-65535/],
    ["tcp:8080:-1", /VM port "-1"/],
    ["tcp:8080:8e1", /VM port "8e1"/],
    ["tcp:8080: 80", /VM port " 80"/],
    ["tcp:localhost:8080:80", /address "localhost" must be an IPv4 address or a bracketed IPv6 address/],
    ["tcp:[1.2.3.4]:8080:80", /address "\[1.2.3.4\]"/],
    ["tcp:a:b:c:d", /expected/],
    ["tcp:::1:8080:80", /expected/],
    ["tcp:8080:80,nic=x", /nic "x" must be a NIC index/],
    ["tcp:8080:80,nic=", /nic "" must be a NIC index/],
    ["tcp:8080:80,path=kernel", /path "kernel" must be userspace or nat/],
    ["tcp:8080:80,proxy=1", /unknown option "proxy=1"/],
    ["tcp:8080:80,", /unknown option ""/],
    ["tcp:8080:80,fast", /unknown option "fast" \(nic=N, path=userspace\|nat, proxy\)/],
  ])("%s is refused", (spec, re) => {
    const r = parsePort(spec);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.join("\n")).toMatch(re);
  });

  it("reports every problem of one value", () => {
    const r = parsePort("sctp:x:0");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toHaveLength(3);
  });

  it("names the flag it was given", () => {
    const r = parsePort("nope", "--forward");
    expect(!r.ok && r.problems[0]).toMatch(/^--forward "nope"/);
  });
});

describe("parseNet", () => {
  const nic = (o: object) => ({ mode: "user", bridge: "", macvtapParent: "", networkId: "", customNetdev: "", ...o });
  it.each([
    ["user", nic({})],
    ["PASST", nic({ mode: "passt" })],
    ["bridge", nic({ mode: "bridge" })],
    ["bridge,bridge=br0", nic({ mode: "bridge", bridge: "br0" })],
    ["tap,bridge=vmmbr0", nic({ mode: "tap", bridge: "vmmbr0" })],
    ["macvtap,parent=eth0", nic({ mode: "macvtap", macvtapParent: "eth0" })],
    ["vmnet,network=net-1", nic({ mode: "vmnet", networkId: "net-1" })],
    ["custom,netdev=socket,id=n0,listen=:1234", nic({ mode: "custom", customNetdev: "socket,id=n0,listen=:1234" })],
  ])("%s", (spec, want) => {
    expect(parseNet(spec)).toEqual({ ok: true, value: want });
  });

  it.each([
    ["", /--net "": mode "" must be one of user, passt, bridge, tap, macvtap, vmnet, custom/],
    ["slirp", /mode "slirp" must be one of/],
    ["bridge,br0", /"br0" is not KEY=VALUE/],
    ["bridge,color=red", /"color=red" is not KEY=VALUE with KEY one of bridge, parent, network, netdev/],
    ["bridge,bridge=", /bridge= needs a value/],
    ["bridge,bridge=a,bridge=b", /bridge= given twice/],
    ["user,bridge=br0", /bridge= does not apply to mode user/],
    ["macvtap,bridge=br0", /bridge= does not apply to mode macvtap/],
    ["vmnet", /mode vmnet needs network=ID/],
    ["custom", /mode custom needs netdev=VALUE/],
    ["custom,netdev=", /netdev= needs a value/],
  ])("%s is refused", (spec, re) => {
    const r = parseNet(spec);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.join("\n")).toMatch(re);
  });
});

describe("parseUint", () => {
  it.each([
    ["1", 1, 1024, 1],
    ["1024", 1, 1024, 1024],
    ["0", 0, 10, 0],
  ])("%s in [%d,%d]", (v, min, max, want) => {
    expect(parseUint("--vcpus", v, min, max)).toEqual({ ok: true, value: want });
  });
  it.each(["0", "1025", "-1", "1.5", "", " 2", "0x10", "1e3", "99999999999999999999"])("%j is refused", (v) => {
    const r = parseUint("--vcpus", v, 1, 1024);
    expect(r).toEqual({ ok: false, problems: [`--vcpus ${JSON.stringify(v)}: must be an integer 1-1024`] });
  });
});

describe("parseBool", () => {
  it.each([
    ["true", true], ["on", true], ["YES", true], ["1", true],
    ["false", false], ["off", false], ["no", false], ["0", false],
  ])("%s", (v, want) => {
    expect(parseBool("--nat44", v)).toEqual({ ok: true, value: want });
  });
  it("refuses anything else, naming the flag", () => {
    expect(parseBool("--auto-restart", "maybe")).toEqual({ ok: false, problems: ['--auto-restart "maybe": must be true or false (or on/off)'] });
  });
});

describe("parseReservation", () => {
  it("parses and lower-cases the MAC", () => {
    expect(parseReservation("52:54:00:AB:CD:EF=192.168.1.10")).toEqual({ ok: true, value: { mac: "52:54:00:ab:cd:ef", ipv4: "192.168.1.10" } });
  });
  it.each([
    ["52:54:00:ab:cd:ef", /expected MAC=IPV4/],
    ["52:54:00:ab:cd=1.2.3.4", /is not a MAC address/],
    ["52:54:00:ab:cd:ef=1.2.3", /"1.2.3" is not an IPv4 address/],
  ])("%s is refused", (spec, re) => {
    const r = parseReservation(spec);
    expect(!r.ok && r.problems.join("\n")).toMatch(re);
  });
});

describe("parseAll", () => {
  it("collects values in order", () => {
    expect(parseAll(["tcp:1:2", "udp:3:4"], (v) => parsePort(v))).toEqual({
      ok: true,
      value: [
        { protocol: "tcp", hostAddress: "", hostPort: 1, vmPort: 2 },
        { protocol: "udp", hostAddress: "", hostPort: 3, vmPort: 4 },
      ],
    });
  });
  it("joins the problems of every bad value", () => {
    const r = parseAll(["tcp:1:2", "x", "tcp:0:1"], (v) => parsePort(v));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toHaveLength(2);
  });
});

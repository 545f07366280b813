// nat forwards (nftables DNAT) with real nftables and real namespaces: a
// "guest" namespace behind veth nh0 (10.71.0.2) whose TCP server answers
// with the address it sees, and a "remote client" namespace behind veth nc0
// (10.72.0.2) that reaches the host at 10.72.0.1. Plus the rule builders
// and the table parser, table-driven.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { ForwardService } from "./service.js";
import { localnetLines, natCounterLines, natRuleLines, natTableLines, parseNatTable } from "./nat.js";
import type { ForwardRule } from "./rules.js";
import { VmmError, ValidationError } from "../errors.js";
import { waitFor } from "../../test/helpers/forward.js";
import { freePort } from "../../test/helpers/net.js";

const rule = (listenAddress: string, listenPort: number, targetAddress: string, targetPort: number, protocol: "tcp" | "udp" = "tcp"): ForwardRule => ({
  protocol,
  listenAddress,
  listenPort,
  targetAddress,
  targetPort,
  path: "nat",
  proxyProtocol: false,
});

describe("nat rule builders", () => {
  it.each([
    [rule("127.0.0.1", 8080, "10.0.0.5", 80), "ip daddr 127.0.0.1 tcp dport 8080 counter name r7_conn dnat ip to 10.0.0.5:80", "acct_tcp { 8080 : jump acct_tcp_8080 }", "acct_tcp_8080 ct original ip daddr 127.0.0.1 ct direction"],
    [rule("0.0.0.0", 53, "10.0.0.5", 5353, "udp"), "fib daddr type local meta nfproto ipv4 udp dport 53 counter name r7_conn dnat ip to 10.0.0.5:5353", "acct_udp { 53 : jump acct_udp_53 }", "acct_udp_53 ct direction"],
    [rule("::", 443, "fd00::5", 8443), "fib daddr type local meta nfproto ipv6 ip6 daddr != ::1 tcp dport 443 counter name r7_conn dnat ip6 to [fd00::5]:8443", "acct_tcp { 443 : jump acct_tcp_443 }", "acct_tcp_443 ct direction"],
  ])("%j", (r, dnat, element, acct) => {
    const lines = natRuleLines("vmmfwd_t", 7, "vm-1", r);
    expect(lines[0]).toBe(`add rule inet vmmfwd_t nat_pre ${dnat} comment "vmm r7 vm-1"`);
    expect(lines[1]).toBe(`add rule inet vmmfwd_t nat_out ${dnat} comment "vmm r7"`);
    // Accounting: the port's chain, reached through the protocol's map.
    expect(lines).toContain(`add element inet vmmfwd_t ${element}`);
    const stmts = lines.filter((l) => l.startsWith(`add rule inet vmmfwd_t ${acct}`));
    expect(stmts).toHaveLength(2);
    for (const l of stmts) expect(l).toMatch(/counter name r7_(up|down) accept comment "vmm r7"$/);
    expect(lines).toHaveLength(6);
  });

  it("dispatches accounting from the base chains only, refilled by every batch", () => {
    const t = natTableLines("vmmfwd_t");
    for (const c of ["acct_forward", "acct_input", "acct_output"]) {
      const i = t.indexOf(`flush chain inet vmmfwd_t ${c}`);
      expect(i).toBeGreaterThan(-1);
      expect(t.slice(i + 1, i + 3)).toEqual([
        `add rule inet vmmfwd_t ${c} ct status dnat meta l4proto tcp ct original proto-dst vmap @acct_tcp`,
        `add rule inet vmmfwd_t ${c} ct status dnat meta l4proto udp ct original proto-dst vmap @acct_udp`,
      ]);
    }
  });

  it("refuses an owner that could inject nft syntax", () => {
    expect(() => natRuleLines("t", 1, 'vm" drop', rule("127.0.0.1", 1, "10.0.0.5", 2))).toThrow(VmmError);
    expect(() => localnetLines("t", 'br0" accept', "0")).toThrow(VmmError);
  });
});

const sh = (argv: string[]) => {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

describe("nat forwards", () => {
  const procs: ChildProcess[] = [];
  const guestPort = 7080;
  const otherPort = 7081;

  beforeAll(async () => {
    if (process.env.VMM_IN_NETNS !== "1") throw new Error("run inside scripts/in-netns.sh");
    for (const [ns, host, peer, hostIp, peerIp] of [
      ["natguest", "nh0", "nh1", "10.71.0.1", "10.71.0.2"],
      ["natclient", "nc0", "nc1", "10.72.0.1", "10.72.0.2"],
    ] as const) {
      sh(["ip", "netns", "add", ns]);
      sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
      sh(["ip", "link", "add", host, "type", "veth", "peer", "name", peer]);
      sh(["ip", "link", "set", peer, "netns", ns]);
      sh(["ip", "addr", "add", `${hostIp}/24`, "dev", host]);
      sh(["ip", "link", "set", host, "up"]);
      sh(["ip", "-n", ns, "addr", "add", `${peerIp}/24`, "dev", peer]);
      sh(["ip", "-n", ns, "link", "set", peer, "up"]);
      sh(["ip", "-n", ns, "route", "add", "default", "via", hostIp]);
    }
    // The guest: answers every connection with the address it sees, then echoes.
    const p = spawn("ip", ["netns", "exec", "natguest", process.execPath, "-e",
      `for (const port of [${guestPort}, ${otherPort}]) require("net").createServer((s) => { s.on("error", () => {}); s.write(port + " " + s.remoteAddress + "\\n"); s.pipe(s); }).listen(port, "10.71.0.2");
       const u = require("dgram").createSocket("udp4"); u.on("message", (m, r) => u.send(r.address + " " + m, r.port, r.address)); u.bind(${guestPort}, "10.71.0.2");`,
    ], { stdio: "ignore" });
    procs.push(p);
    await waitFor("guest up", () => spawnSync("ip", ["netns", "exec", "natguest", "ss", "-ltn"], { encoding: "utf8" }).stdout.includes(`:${otherPort}`), 10_000);
  });

  afterAll(() => {
    for (const p of procs) p.kill("SIGKILL");
    spawnSync("ip", ["netns", "del", "natguest"]);
    spawnSync("ip", ["netns", "del", "natclient"]);
  });

  /** First line from a TCP connection (to `host:port`, from namespace `ns` or here), then closes. */
  const firstLine = (host: string, port: number, ns?: string): string => {
    const script = `const s = require("net").createConnection({ host: "${host}", port: ${port} }); let b = ""; s.on("data", (d) => { b += d; if (b.includes("\\n")) { console.log(b.split("\\n")[0]); process.exit(0); } }); s.on("error", (e) => { console.log("ERR " + e.code); process.exit(0); }); setTimeout(() => { console.log("TIMEOUT"); process.exit(0); }, 3000);`;
    const argv = ns ? ["ip", "netns", "exec", ns, process.execPath, "-e", script] : [process.execPath, "-e", script];
    return spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 10_000 }).stdout.trim();
  };
  const ourTable = (svc: ForwardService) => spawnSync("nft", ["list", "table", "inet", svc.natTable], { encoding: "utf8" });

  it("remote clients keep their address; loopback clients work through route_localnet on the guest's interface only", async () => {
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    const svc = new ForwardService({ relay: "native" });
    try {
      const [remote, local] = [await freePort(), await freePort()];
      await svc.apply("vm-1", [rule("0.0.0.0", remote, "10.71.0.2", guestPort), rule("127.0.0.1", local, "10.71.0.2", otherPort)]);
      expect(svc.list().map((s) => s.relay)).toEqual(["nat", "nat"]);
      // The guest sees the remote client's own address.
      expect(firstLine("10.72.0.1", remote, "natclient")).toBe(`${guestPort} 10.72.0.2`);
      // A local client on 127.0.0.1 reaches it too, masqueraded as the host's address on nh0.
      expect(firstLine("127.0.0.1", local)).toBe(`${otherPort} 10.71.0.1`);
      expect(readFileSync("/proc/sys/net/ipv4/conf/nh0/route_localnet", "utf8").trim()).toBe("1");
      expect(readFileSync("/proc/sys/net/ipv4/conf/nc0/route_localnet", "utf8").trim()).toBe("0");
      const table = ourTable(svc).stdout;
      expect(table).toMatch(/ip saddr 127\.0\.0\.0\/8 iifname "nh0" drop/);
      expect(table).toMatch(/ip daddr 127\.0\.0\.0\/8 iifname "nh0" drop/);
      // Counters come from nft (refreshed at most once a second).
      await waitFor("nat counters", () => {
        const c = svc.list().find((s) => s.listenPort === remote)!.counters;
        return c.connectionsTotal === 1 && c.bytesToGuest > 0 && c.bytesFromGuest > 0;
      }, 5000);
      // Each rule counts its own connection (the output/input chains for the local one).
      await waitFor("nat counters of the loopback rule", () => {
        const c = svc.list().find((s) => s.listenPort === local)!.counters;
        return c.connectionsTotal === 1 && c.bytesToGuest > 0 && c.bytesFromGuest > 0;
      }, 5000);
      // Removing the loopback rule sets route_localnet back and removes its companions.
      await svc.apply("vm-1", [rule("0.0.0.0", remote, "10.71.0.2", guestPort)]);
      expect(readFileSync("/proc/sys/net/ipv4/conf/nh0/route_localnet", "utf8").trim()).toBe("1"); // 0.0.0.0 takes loopback clients too
      await svc.remove("vm-1");
      expect(readFileSync("/proc/sys/net/ipv4/conf/nh0/route_localnet", "utf8").trim()).toBe("0");
      expect(ourTable(svc).status).not.toBe(0); // the table went with its last rule
      expect(sh(["nft", "list", "ruleset"])).not.toMatch(new RegExp(`${svc.natTable}\\b`));
    } finally {
      await svc.close();
    }
  });

  /**
   * Sends one UDP datagram from the guest namespace as a raw Ethernet frame
   * on nh1 to the host's nh0, with addresses of our choosing: what a
   * malicious guest can put on the wire (its kernel would not route 127/8).
   */
  const forgeFromGuest = (src: string, dst: string, port: number, text: string) => {
    const mac = (s: string) => s.trim().split(":").map((h) => parseInt(h, 16));
    const hostMac = mac(readFileSync("/sys/class/net/nh0/address", "utf8"));
    const guestMac = mac(sh(["ip", "netns", "exec", "natguest", "cat", "/sys/class/net/nh1/address"]));
    const py = `
import socket, struct, sys
src, dst, port, text, hmac, gmac = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode(), bytes(map(int, sys.argv[5].split(","))), bytes(map(int, sys.argv[6].split(",")))
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
udp = struct.pack("!HHHH", 40000, port, 8 + len(text), 0) + text
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("nh1", 0))
s.send(hmac + gmac + b"\\x08\\x00" + ip + udp)
`;
    sh(["ip", "netns", "exec", "natguest", "python3", "-c", py, src, dst, String(port), text, hostMac.join(","), guestMac.join(",")]);
  };

  it("drops what a guest sends to or from 127/8 while route_localnet is on for its interface (CVE-2020-8558)", async () => {
    const svc = new ForwardService({ relay: "native" });
    // Host services a guest must not reach: one on loopback, one on every address.
    const got: string[] = [];
    const loop = createSocket("udp4").on("message", (m) => got.push(`loopback ${m.toString()}`));
    const any = createSocket("udp4").on("message", (m) => got.push(`any ${m.toString()}`));
    // The kernel's own source checks would drop a 127/8 source by themselves
    // (reverse-path filtering; and since 6.x a source that is one of the
    // host's own addresses, unless accept_local): both switched off for nh0
    // in this private namespace, so that only our rules stand in the way.
    const loosen: [string, string][] = [
      ["/proc/sys/net/ipv4/conf/all/rp_filter", "0"],
      ["/proc/sys/net/ipv4/conf/nh0/rp_filter", "0"],
      ["/proc/sys/net/ipv4/conf/nh0/accept_local", "1"],
    ];
    const before = loosen.map(([f]) => readFileSync(f, "utf8").trim());
    try {
      const [loopPort, anyPort] = [await freePort(), await freePort()];
      await new Promise<void>((r) => loop.bind(loopPort, "127.0.0.1", r));
      await new Promise<void>((r) => any.bind(anyPort, "0.0.0.0", r));
      await svc.apply("vm-1", [rule("127.0.0.1", await freePort(), "10.71.0.2", guestPort)]);
      expect(readFileSync("/proc/sys/net/ipv4/conf/nh0/route_localnet", "utf8").trim()).toBe("1");
      for (const [f, v] of loosen) writeFileSync(f, v);
      const attack = (tag: string) => {
        forgeFromGuest("10.71.0.2", "127.0.0.1", loopPort, `to-loopback ${tag}`);
        forgeFromGuest("127.0.0.1", "10.71.0.1", anyPort, `from-loopback ${tag}`);
      };
      attack("guarded");
      await new Promise((r) => setTimeout(r, 1000));
      expect(got).toEqual([]);
      // The same frames without the martian rules get through: the test sees an attack that works.
      const handles = [...sh(["nft", "-a", "list", "chain", "inet", svc.natTable, "martians"]).matchAll(/ drop .*# handle (\d+)/g)].map((m) => m[1]!);
      expect(handles).toHaveLength(2);
      for (const h of handles) sh(["nft", "delete", "rule", "inet", svc.natTable, "martians", "handle", h]);
      attack("open");
      await waitFor("forged datagrams", () => got.length === 2, 5000);
      expect(got.sort()).toEqual(["any from-loopback open", "loopback to-loopback open"]);
    } finally {
      loosen.forEach(([f], i) => writeFileSync(f, before[i]!));
      loop.close();
      any.close();
      await svc.close();
    }
  });

  it("applies as a diff: unchanged rules keep connections, retargets and removals reset them (conntrack)", async () => {
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    const svc = new ForwardService({ relay: "native" });
    try {
      const [a, b] = [await freePort(), await freePort()];
      await svc.apply("vm", [rule("0.0.0.0", a, "10.71.0.2", guestPort)]);
      // A long-lived connection from the remote client, driven over stdin/stdout.
      const held = spawn("ip", ["netns", "exec", "natclient", process.execPath, "-e",
        `const s = require("net").createConnection({ host: "10.72.0.1", port: ${a} }); s.on("data", (d) => process.stdout.write(d)); s.on("error", (e) => { console.log("ERR " + e.code); process.exit(0); }); s.on("close", () => { console.log("CLOSED"); process.exit(0); }); process.stdin.on("data", (d) => s.write(d));`,
      ], { stdio: ["pipe", "pipe", "inherit"] });
      procs.push(held);
      let out = "";
      held.stdout.on("data", (d: Buffer) => (out += d.toString()));
      await waitFor("connected", () => out.includes("10.72.0.2"), 5000);
      held.stdin.write("one\n");
      await waitFor("echo one", () => out.includes("one"), 5000);
      // Another rule added, this one unchanged: the connection carries on.
      await svc.apply("vm", [rule("0.0.0.0", a, "10.71.0.2", guestPort), rule("0.0.0.0", b, "10.71.0.2", otherPort)]);
      held.stdin.write("two\n");
      await waitFor("echo two", () => out.includes("two"), 5000);
      expect(firstLine("10.72.0.1", b, "natclient")).toBe(`${otherPort} 10.72.0.2`);
      // Retarget: new connections reach the new port, the old connection is reset.
      await svc.apply("vm", [rule("0.0.0.0", a, "10.71.0.2", otherPort), rule("0.0.0.0", b, "10.71.0.2", otherPort)]);
      held.stdin.write("three\n");
      await waitFor("old connection ended", () => /ERR ECONNRESET|CLOSED/.test(out), 10_000);
      expect(firstLine("10.72.0.1", a, "natclient")).toBe(`${otherPort} 10.72.0.2`);
      // Counters kept across the retarget (named counters).
      // (The reset old connection's next packet counts too: conntrack took it up as a new entry, DNATed to the new target, which reset it.)
      await waitFor("the connections of the rule counted", () => svc.list().find((s) => s.listenPort === a)!.counters.connectionsTotal >= 2, 5000);
    } finally {
      await svc.close();
    }
  });

  it("refuses a port claimed by both paths, a port a local socket holds, and forwarding that is off", async () => {
    const svc = new ForwardService({ relay: "native" });
    try {
      const p = await freePort();
      writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
      await svc.apply("vm-1", [{ ...rule("127.0.0.1", p, "127.0.0.1", 9), path: "userspace" }]);
      const clash = await svc.apply("vm-2", [rule("0.0.0.0", p, "10.71.0.2", guestPort)]).catch((e: unknown) => e);
      expect((clash as VmmError).kind).toBe("exists");
      expect((clash as VmmError).message).toMatch(/takes the packets of tcp 127\.0\.0\.1:\d+ \(userspace\) of "vm-1"/);
      const inOne = await svc.apply("vm-3", [rule("0.0.0.0", p + 1, "10.71.0.2", 1), { ...rule("127.0.0.1", p + 1, "127.0.0.1", 9), path: "userspace" }]).catch((e: unknown) => e);
      expect(inOne).toBeInstanceOf(ValidationError);
      expect((inOne as ValidationError).problems[0]!.field).toBe("rules[1]");
      // A socket of some other program holds the port.
      const other = createServer();
      await new Promise<void>((r) => other.listen(0, "127.0.0.1", () => r()));
      const held = (other.address() as { port: number }).port;
      const busy = await svc.apply("vm-4", [rule("127.0.0.1", held, "10.71.0.2", guestPort)]).catch((e: unknown) => e);
      other.close();
      expect((busy as VmmError).kind).toBe("unavailable");
      expect((busy as VmmError).message).toMatch(/in use by a local socket/);
      // ::1 is refused; forwarding off refuses remote-facing rules.
      const v6 = await svc.apply("vm-5", [rule("::1", p + 2, "fd00::5", 80)]).catch((e: unknown) => e);
      expect((v6 as ValidationError).problems[0]).toMatchObject({ field: "rules[0].path" });
      expect(svc.list().map((s) => s.owner)).toEqual(["vm-1"]);
      // Forwarding off (a fresh namespace's default: this one's switch is
      // shared with every test running beside this one) refuses remote-facing rules.
      const off = spawnSync("unshare", ["--net", process.execPath, "--input-type=module", "-e",
        `import { ForwardService } from ${JSON.stringify(new URL("../../dist/server/forward/service.js", import.meta.url).pathname)};
         const svc = new ForwardService({ relay: "sockets" });
         const e = await svc.apply("vm", [{ protocol: "tcp", listenAddress: "0.0.0.0", listenPort: 9, targetAddress: "10.71.0.2", targetPort: 80, path: "nat" }]).catch((e) => e);
         console.log(e.kind + " " + e.message); await svc.close();`,
      ], { encoding: "utf8", timeout: 20_000 });
      expect(off.stdout.trim(), off.stderr).toMatch(/^precondition nat forward of tcp 0\.0\.0\.0:9: .*ip_forward is 0/);
    } finally {
      await svc.close();
    }
  });

  it("a restarted service adopts its nat rules instead of duplicating them, and prunes the unclaimed", async () => {
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    const natTable = `vmmfwd_adopt${process.pid}`;
    const first = new ForwardService({ relay: "native", natTable });
    const [a, b] = [await freePort(), await freePort()];
    await first.apply("vm-a", [rule("0.0.0.0", a, "10.71.0.2", guestPort)]);
    await first.apply("vm-b", [rule("0.0.0.0", b, "10.71.0.2", otherPort)]);
    expect(firstLine("10.72.0.1", a, "natclient")).toBe(`${guestPort} 10.72.0.2`);
    await first.detach();
    // The rules and their handles, not the counters' values (late packets of closed connections still count).
    const rules = () => sh(["nft", "-a", "list", "table", "inet", natTable]).replace(/packets \d+ bytes \d+/g, "packets N bytes N");
    const before = rules();
    const second = new ForwardService({ relay: "native", natTable });
    try {
      expect(await second.adopt()).toBe(2);
      await second.apply("vm-a", [rule("0.0.0.0", a, "10.71.0.2", guestPort)]);
      expect(rules()).toBe(before); // nothing added, nothing replaced
      await waitFor("adopted counters", () => second.list("vm-a")[0]!.counters.connectionsTotal === 1, 5000);
      await second.pruneAdopted();
      expect(second.list().map((s) => s.owner)).toEqual(["vm-a"]);
      // The pruned rule's port chain went with it.
      const table = sh(["nft", "list", "table", "inet", natTable]);
      expect(table).toContain(`chain acct_tcp_${a} {`);
      expect(table).not.toContain(`acct_tcp_${b}`);
      expect(firstLine("10.72.0.1", b, "natclient")).toMatch(/ERR|TIMEOUT/);
      expect(firstLine("10.72.0.1", a, "natclient")).toBe(`${guestPort} 10.72.0.2`);
    } finally {
      await second.close();
    }
    expect(sh(["nft", "list", "ruleset"])).not.toMatch(new RegExp(natTable));
  });

  it("rules on one port count apart in the port's chain, which goes with the last of them", async () => {
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    const svc = new ForwardService({ relay: "native" });
    try {
      const port = await freePort();
      const chain = () => spawnSync("nft", ["list", "chain", "inet", svc.natTable, `acct_tcp_${port}`], { encoding: "utf8" });
      await svc.apply("vm-1", [rule("127.0.0.1", port, "10.71.0.2", guestPort)]);
      await svc.apply("vm-2", [rule("10.72.0.1", port, "10.71.0.2", otherPort)]);
      expect(firstLine("127.0.0.1", port)).toBe(`${guestPort} 10.71.0.1`);
      expect(firstLine("10.72.0.1", port, "natclient")).toBe(`${otherPort} 10.72.0.2`);
      expect(firstLine("10.72.0.1", port, "natclient")).toBe(`${otherPort} 10.72.0.2`);
      await waitFor("counted apart", () => {
        const [one, two] = [svc.list("vm-1")[0]!.counters, svc.list("vm-2")[0]!.counters];
        return one.connectionsTotal === 1 && two.connectionsTotal === 2 && one.bytesFromGuest > 0 && two.bytesFromGuest > one.bytesFromGuest;
      }, 5000);
      await svc.remove("vm-1");
      expect(chain().stdout.match(/comment "vmm r\d+"/g)).toHaveLength(2); // vm-2's two statements
      await svc.remove("vm-2");
      expect(chain().status).not.toBe(0);
    } finally {
      await svc.close();
    }
  });

  it("takes over a table of the layout before port chains: the accounting moves, the counters keep counting", async () => {
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    const natTable = `vmmfwd_upgr${process.pid}`;
    const a = await freePort();
    // What a daemon before this layout left: every rule's accounting in the base chains.
    const t = `inet ${natTable}`;
    const old = [
      // The same table and base chains as today's, without the maps and their dispatch.
      ...natTableLines(natTable).filter((l) => /^add (table|chain) /.test(l)),
      ...["conn", "up", "down"].map((c) => `add counter ${t} r1_${c}`),
      `add rule ${t} nat_pre fib daddr type local meta nfproto ipv4 tcp dport ${a} counter name r1_conn dnat ip to 10.71.0.2:${guestPort} comment "vmm r1 vm-a"`,
      `add rule ${t} nat_out fib daddr type local meta nfproto ipv4 tcp dport ${a} counter name r1_conn dnat ip to 10.71.0.2:${guestPort} comment "vmm r1"`,
      ...[["acct_forward", "up"], ["acct_forward", "down"], ["acct_output", "up"], ["acct_input", "down"]].map(([c, d]) =>
        d === "up"
          ? `add rule ${t} ${c} ct status dnat ct direction original ip daddr 10.71.0.2 tcp dport ${guestPort} ct original proto-dst ${a} counter name r1_up comment "vmm r1"`
          : `add rule ${t} ${c} ct status dnat ct direction reply ip saddr 10.71.0.2 tcp sport ${guestPort} ct original proto-dst ${a} counter name r1_down comment "vmm r1"`),
    ];
    const r = spawnSync("nft", ["-f", "-"], { input: old.join("\n") + "\n", encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    let svc = new ForwardService({ relay: "native", natTable });
    try {
      expect(firstLine("10.72.0.1", a, "natclient")).toBe(`${guestPort} 10.72.0.2`);
      const counted = JSON.parse(sh(["nft", "-j", "list", "counter", "inet", natTable, "r1_up"])).nftables[1].counter.bytes as number;
      expect(counted).toBeGreaterThan(0);
      expect(await svc.adopt()).toBe(1);
      // The base chains only dispatch now; the rule's statements are in its port's chain.
      for (const c of ["acct_forward", "acct_input", "acct_output"]) {
        const chain = sh(["nft", "list", "chain", "inet", natTable, c]);
        expect(chain).not.toContain("vmm r1");
        expect(chain).toContain("vmap @acct_tcp");
      }
      expect(sh(["nft", "list", "chain", "inet", natTable, `acct_tcp_${a}`]).match(/comment "vmm r1"/g)).toHaveLength(2);
      // The counters were kept, and count the next connection.
      expect(firstLine("10.72.0.1", a, "natclient")).toBe(`${guestPort} 10.72.0.2`);
      await waitFor("counted after the upgrade", () => {
        const c = svc.list("vm-a")[0]!.counters;
        return c.connectionsTotal === 2 && c.bytesToGuest > counted && c.bytesFromGuest > 0;
      }, 5000);
      // Adopting again changes nothing.
      const rules = () => sh(["nft", "-a", "list", "table", "inet", natTable]).replace(/packets \d+ bytes \d+/g, "");
      const before = rules();
      await svc.detach();
      svc = new ForwardService({ relay: "native", natTable });
      expect(await svc.adopt()).toBe(1);
      expect(rules()).toBe(before);
      await svc.close();
      expect(sh(["nft", "list", "ruleset"])).not.toMatch(new RegExp(natTable));
    } finally {
      await svc.close();
      spawnSync("nft", ["delete", "table", "inet", natTable]);
    }
  });

  it("builds tables nft accepts and parses them back", () => {
    const t = `vmmfwd_parse${process.pid}`;
    const r1 = rule("127.0.0.1", 8080, "10.71.0.2", 80);
    const r2 = rule("::", 53, "fd00::5", 53, "udp");
    const input = [...natTableLines(t), ...natCounterLines(t, 1), ...natRuleLines(t, 1, "vm-1", r1), ...natCounterLines(t, 2), ...natRuleLines(t, 2, "network:n-1", r2), ...localnetLines(t, "nh0", "0")].join("\n") + "\n";
    const r = spawnSync("nft", ["-f", "-"], { input, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    try {
      const st = parseNatTable(sh(["nft", "-j", "-a", "list", "table", "inet", t]));
      expect(st.rules.get(1)).toMatchObject({ owner: "vm-1", rule: r1 });
      expect(st.rules.get(2)).toMatchObject({ owner: "network:n-1", rule: r2 });
      expect(st.rules.get(1)!.handles.map((h) => h.chain).sort()).toEqual(["acct_tcp_8080", "acct_tcp_8080", "nat_out", "nat_pre"]);
      expect([...st.acctChains].sort()).toEqual(["acct_tcp_8080", "acct_udp_53"]);
      expect(st.localnet.get("nh0")).toMatchObject({ prev: "0" });
      expect(st.localnet.get("nh0")!.handles).toHaveLength(3);
    } finally {
      spawnSync("nft", ["delete", "table", "inet", t]);
    }
  });
});

// The kernel path and the PROXY protocol with a real guest in bridge mode
// (dnsmasq with the project's hook reports its lease): a nat port keeps the
// client's address (the guest's /cgi-bin/peer answers with what it sees),
// for a client in another namespace and for one on 127.0.0.1 (masqueraded:
// route_localnet on the bridge only); a userspace port with the PROXY
// protocol makes the guest's TCP echo return the v2 header naming the
// client. A restart of vmmd adopts the nat rules instead of duplicating
// them; RemoveVm leaves no rule in `nft list ruleset` and route_localnet as
// it was.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { createConnection } from "node:net";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { requireNetns } from "../guest/netns.js";
import { freePort, httpGet, waitFor } from "../helpers/net.js";
import { HOOK, Lan, sh } from "../helpers/lan.js";
import { ForwardPath, NetworkingMode, Protocol, VmmService, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { parseProxyV2 } from "../../server/forward/proxy.js";
import { natTableName } from "../../server/forward/nat.js";

const BR = "vmbr-nat";
const ADMIN = "admin-token-nat-0123456789";
const LEASE = "lease-token-nat-0123456789";

// busybox httpd listens on both families: IPv4 clients appear as [::ffff:a.b.c.d].
const PEER_CLIENT = /^peer (?:\[::ffff:)?10\.85\.0\.2\]? \d+$/;
const PEER_HOST = /^peer (?:\[::ffff:)?10\.84\.0\.1\]? \d+$/;

let d: DaemonHandle | undefined;
let lan: Lan;
let toml = "";
const vmm = () => client(VmmService, transport(d!, "connect", "unix", { token: ADMIN }));

/** The daemon's nat table (other tests running beside this one have tables of their own). */
const tableName = () => natTableName(join(d!.stateDir, "relay"));
const tableExists = () => sh(["nft", "list", "tables"]).split("\n").some((l) => l.trim() === `table inet ${tableName()}`);
/** Its rules and handles, not the counters' values (late packets of closed connections still count). */
const ourTable = () => sh(["nft", "-a", "list", "table", "inet", tableName()]).replace(/packets \d+ bytes \d+/g, "packets N bytes N");
const ruleset = () => sh(["nft", "-a", "list", "ruleset"]);

/** GET from the client namespace (a "remote" client at 10.85.0.2). */
function getFromClient(url: string): string {
  const r = spawnSync("ip", ["netns", "exec", "natcl", process.execPath, "-e",
    `require("http").get(${JSON.stringify(url)}, (res) => { let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => console.log(b.trim())); }).on("error", (e) => console.log("ERR " + e.code));`,
  ], { encoding: "utf8", timeout: 10_000 });
  return r.stdout.trim();
}

beforeAll(async () => {
  requireNetns();
  lan = new Lan();
  lan.bridge(BR, "10.84.0.1/24");
  // A remote client: its own namespace, routed through this one.
  lan.netns("natcl");
  lan.veth("ncl0", "ncl1", "natcl");
  sh(["ip", "addr", "add", "10.85.0.1/24", "dev", "ncl0"]);
  sh(["ip", "-n", "natcl", "addr", "add", "10.85.0.2/24", "dev", "ncl1"]);
  sh(["ip", "-n", "natcl", "link", "set", "ncl1", "up"]);
  sh(["ip", "-n", "natcl", "route", "add", "default", "via", "10.85.0.1"]);
  writeFileSync("/proc/sys/net/ipv4/ip_forward", "1"); // this namespace's: routing to the guest
  toml = `
[auth]
tokens = ["${ADMIN}"]
lease_tokens = ["${LEASE}"]
[networking]
default_mode = "bridge"
bridge = "${BR}"
bridge_subnets = { "${BR}" = "10.84.0.0/24" }
forward_service_enabled = true
[forward]
allowed_listen_addresses = ["127.0.0.1", "0.0.0.0"]
`;
  d = await startDaemon({ tcp: false, toml });
  lan.dnsmasq({ iface: BR, range: ["10.84.0.50", "10.84.0.150"], hook: HOOK, env: lan.leaseHook(d.socket, LEASE).env });
});

afterAll(async () => {
  if (d) {
    const { vms } = await vmm().listVms({}).catch(() => ({ vms: [] }));
    for (const v of vms) await vmm().removeVm({ id: v.id, force: true }).catch(() => undefined);
    await d.stop();
    d.cleanup();
  }
  await lan?.close();
});

describe("nat forwards and the PROXY protocol with a real guest", () => {
  it("keeps the client's address, survives a restart without duplicates, and leaves nothing behind", async () => {
    const [loop, wide, proxied] = [await freePort(), await freePort(), await freePort()];
    const { vm } = await vmm().createVm({
      id: "natweb",
      config: {
        name: "natweb",
        kernel: guestKernel(),
        initrd: guestInitrd(),
        cmdline: "console=ttyS0 quiet panic=-1 vmm.hostname=natweb",
        nics: [{ mode: NetworkingMode.BRIDGE }],
        ports: [
          { protocol: Protocol.TCP, hostAddress: "127.0.0.1", hostPort: loop, vmPort: 8080, path: ForwardPath.NAT },
          { protocol: Protocol.TCP, hostAddress: "0.0.0.0", hostPort: wide, vmPort: 8080, path: ForwardPath.NAT },
          { protocol: Protocol.TCP, hostAddress: "127.0.0.1", hostPort: proxied, vmPort: 8081, proxyProtocol: true },
        ],
      },
      start: true,
    });
    expect(vm!.status).toBe(VmStatus.RUNNING);

    // The lease arrives through the hook; then the nat port answers.
    const page = await waitFor(() => httpGet(`http://127.0.0.1:${loop}/`), 90_000);
    expect(page).toContain("natweb");
    // The nat rules carry packets from the moment they are installed, a
    // little before the report's apply has added the userspace rule and
    // committed all three (GetInfo lists committed rules).
    const info = await waitFor(async () => {
      const v = (await vmm().getInfo({ id: "natweb" })).vm!;
      if (v.forwards.length < 3) throw new Error(`${v.forwards.length} forwards listed`);
      return v;
    }, 10_000, 50);
    const ip = info.nics[0]!.lease!.ip;
    const byPort = (a: (string | number | boolean)[], b: (string | number | boolean)[]) => (a[0] as number) - (b[0] as number);
    expect(info.forwards.map((f) => [f.listenPort, f.relay, f.proxyProtocol]).sort(byPort)).toEqual(
      [[loop, "nat", false], [wide, "nat", false], [proxied, "native", true]].sort(byPort),
    );

    // A remote client: the guest sees its own address.
    expect(getFromClient(`http://10.85.0.1:${wide}/cgi-bin/peer`)).toMatch(PEER_CLIENT);
    // A client on 127.0.0.1: masqueraded as the host's address on the bridge
    // (route_localnet on the bridge only, while a rule needs it).
    expect((await httpGet(`http://127.0.0.1:${loop}/cgi-bin/peer`)).trim()).toMatch(PEER_HOST);
    expect(readFileSync(`/proc/sys/net/ipv4/conf/${BR}/route_localnet`, "utf8").trim()).toBe("1");
    expect(readFileSync("/proc/sys/net/ipv4/conf/ncl0/route_localnet", "utf8").trim()).toBe("0");

    // PROXY v2 through the relay: the guest's TCP echo returns the header.
    const echoed = await new Promise<{ data: Buffer; localPort: number }>((res, rej) => {
      const s = createConnection({ host: "127.0.0.1", port: proxied });
      const chunks: Buffer[] = [];
      const t = setTimeout(() => (s.destroy(), rej(new Error("echo timeout"))), 10_000);
      s.on("connect", () => s.write("hello\n"));
      s.on("data", (b: Buffer) => {
        chunks.push(b);
        const all = Buffer.concat(chunks);
        const h = parseProxyV2(all);
        if (h && all.length >= h.length + 6) {
          clearTimeout(t);
          const localPort = s.localPort!;
          s.destroy();
          res({ data: all, localPort });
        }
      });
      s.on("error", rej);
    });
    const h = parseProxyV2(echoed.data)!;
    expect(h).toMatchObject({ family: "tcp4", srcAddress: "127.0.0.1", srcPort: echoed.localPort, dstAddress: "127.0.0.1", dstPort: proxied });
    expect(echoed.data.subarray(h.length).toString()).toBe("hello\n");

    // Counters of the nat rules come from nft.
    await waitFor(async () => {
      const f = (await vmm().getInfo({ id: "natweb" })).vm!.forwards.find((x) => x.listenPort === wide)!;
      if (!(f.counters!.connectionsTotal >= 1n && f.counters!.bytesFromGuest > 0n)) throw new Error("counters not there yet");
    }, 5000);

    // kill -9 vmmd and start it again: the rules are adopted, not added twice.
    expect(tableExists()).toBe(true);
    const before = ourTable();
    await d!.kill9();
    d = await startDaemon({ dir: d!.dir, tcp: false, toml });
    expect((await vmm().getInfo({ id: "natweb" })).vm!.status).toBe(VmStatus.RUNNING);
    expect(ourTable()).toBe(before);
    expect(getFromClient(`http://10.85.0.1:${wide}/cgi-bin/peer`)).toMatch(PEER_CLIENT);
    expect(ip).toMatch(/^10\.84\.0\./);

    // RemoveVm: every rule gone, route_localnet back to what it was.
    await vmm().removeVm({ id: "natweb", force: true });
    expect(tableExists()).toBe(false);
    expect(ruleset()).not.toMatch(new RegExp(`${tableName()}|vmm localnet ${BR}`));
    expect(readFileSync(`/proc/sys/net/ipv4/conf/${BR}/route_localnet`, "utf8").trim()).toBe("0");
    await expect(httpGet(`http://127.0.0.1:${proxied}/`, 1000)).rejects.toThrow(/ECONNREFUSED/);
  }, 240_000);
});

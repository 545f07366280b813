// End-to-end: boot the test guest under QEMU TCG with each networking mode,
// built from the daemon's own pieces (qemu-argv, passt, iproute, native TAP
// and macvtap fds, process, qmp) -- no RPC server. Runs only inside the
// private namespace:
//
//   scripts/in-netns.sh npx vitest run test/e2e/boot.test.ts
//
// Guests boot one at a time (2 cores; other files may boot guests too), each
// with -m 256, and each ends with a graceful ACPI shutdown over QMP that must
// end QEMU within 10 s.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { allowBridge } from "../helpers/lan.js";
import { join } from "node:path";
import { deriveMac } from "../../server/net/mac.js";
import { buildPasstArgv, preparePasstRuntimeDir } from "../../server/net/passt.js";
import { addToBridge, createBridge, createMacvtap, deleteLink, ipArgv, runIp } from "../../server/host/iproute.js";
import { closeFd, openMacvtap, openTap } from "../../native/tap.js";
import { childFdOf, isAlive, waitUntil } from "../../server/host/process.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { useNetnsSysfs, uniq } from "../guest/netns.js";
import { CleanupStack } from "../../server/cleanup.js";
import {
  bootGuest,
  freePort,
  httpGet,
  powerdownGuest,
  QEMU_BIN,
  run,
  startDnsmasq,
  startProcess,
  tcpEcho,
  workDir,
  type Guest,
} from "../guest/harness.js";

const MAC_PREFIX = "52:54:00";
const BRIDGE_HELPER = "/usr/lib/qemu/qemu-bridge-helper";

function which(prog: string): string | undefined {
  for (const d of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    if (existsSync(join(d, prog))) return join(d, prog);
  }
  return undefined;
}

/** The page the guest serves names its hostname, IP and MAC. */
function expectPage(body: string, g: Guest): void {
  expect(body).toContain(`hello from ${g.name}`);
  expect(body).toContain(`ip=${g.ip}`);
  expect(body).toContain(`mac=${g.mac}`);
}

async function expectGracefulShutdown(g: Guest): Promise<void> {
  const r = await powerdownGuest(g, 10_000);
  expect(r, `QEMU of ${g.name} must exit within 10 s of system_powerdown`).toMatchObject({
    exited: true,
    guestSaid: true,
    shutdownEvent: true,
  });
}

describe("guest boot (QEMU TCG, private namespace)", () => {
  let dir: string;

  beforeAll(() => {
    useNetnsSysfs();
    const missing = ["qemu-system-x86_64", "dnsmasq", "passt", "unshare", "nsenter", "curl"].filter((p) => !which(p));
    if (!existsSync(BRIDGE_HELPER)) missing.push(BRIDGE_HELPER);
    if (missing.length > 0) throw new Error(`missing ${missing.join(", ")}: run \`sudo scripts/setup-guest.sh\``);
    guestKernel();
    guestInitrd();
    dir = workDir("e2e-boot");
  });
  // Serial/QEMU/dnsmasq logs stay for a look with VMM_KEEP_TEST_DIR=1.
  afterAll(() => {
    if (dir && process.env.VMM_KEEP_TEST_DIR !== "1") rmSync(dir, { recursive: true, force: true });
  });

  it("user mode: static address, hostfwd on 127.0.0.1", async () => {
    const cleanup = new CleanupStack();
    try {
      const http = await freePort();
      const echo = await freePort();
      const id = `user-${uniq()}`;
      const g = await bootGuest(cleanup, {
        name: id,
        dir,
        append: "vmm.dhcp=0 vmm.ip=10.0.2.15/24 vmm.gw=10.0.2.2",
        nics: [
          {
            mode: "user",
            mac: deriveMac(id, 0, MAC_PREFIX),
            restrict: true,
            forwards: [
              { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: http, guestPort: 8080 },
              { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: echo, guestPort: 8081 },
            ],
          },
        ],
      });
      expect(g.ip).toBe("10.0.2.15");
      expect(g.mac).toBe(deriveMac(id, 0, MAC_PREFIX));
      expectPage(await httpGet(`http://127.0.0.1:${http}/`), g);
      expect(await tcpEcho("127.0.0.1", echo, "ping-user\n")).toBe("ping-user\n");
      await expectGracefulShutdown(g);
    } finally {
      await cleanup.runOrThrow();
    }
  });

  it("passt mode: DHCP from passt, port mapping on 127.0.0.1", async () => {
    const cleanup = new CleanupStack();
    try {
      const http = await freePort();
      const echo = await freePort();
      const id = `passt-${uniq()}`;
      const socketPath = join(dir, `${id}-passt`, "passt.sock");
      preparePasstRuntimeDir(socketPath);
      // The namespace has no default route, so passt is told its identity.
      const argv = buildPasstArgv({
        socketPath,
        logFile: join(dir, `${id}.passt.log`),
        interface: "lo",
        address: "10.0.2.15",
        prefixLength: 24,
        gateway: "10.0.2.2",
        macAddr: "02:00:00:00:00:01",
        ports: [
          { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: http, guestPort: 8080 },
          { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: echo, guestPort: 8081 },
        ],
      });
      const passt = await startProcess(cleanup, "passt", ["passt", ...argv], join(dir, `${id}.passt.out`));
      const sockUp = await waitUntil(async () => existsSync(socketPath) || !(await isAlive(passt)), 5000);
      expect(sockUp && existsSync(socketPath), `passt socket ${socketPath}: ${readFileSync(join(dir, `${id}.passt.out`), "utf8")}`).toBe(true);
      const g = await bootGuest(cleanup, { name: id, dir, nics: [{ mode: "passt", mac: deriveMac(id, 0, MAC_PREFIX), socketPath }] });
      expect(g.ip).toBe("10.0.2.15");
      expectPage(await httpGet(`http://127.0.0.1:${http}/`), g);
      expect(await tcpEcho("127.0.0.1", echo, "ping-passt\n")).toBe("ping-passt\n");
      await expectGracefulShutdown(g);
    } finally {
      await cleanup.runOrThrow();
    }
  });

  describe("on a bridge with dnsmasq", () => {
    const br = `vbr${uniq()}`;
    const net = "10.91.0";
    const shared = new CleanupStack();
    let leaseFile = "";

    beforeAll(async () => {
      await createBridge(br, `${net}.1/24`);
      shared.push(`delete ${br}`, () => deleteLink(br, { ignoreMissing: true }));
      const d = await startDnsmasq(shared, { dir, iface: br, rangeStart: `${net}.50`, rangeEnd: `${net}.150` });
      leaseFile = d.leaseFile;
    });
    afterAll(() => shared.runOrThrow());

    const leasedTo = (mac: string) => readFileSync(leaseFile, "utf8").split("\n").find((l) => l.split(" ")[1] === mac);

    it("tap mode: the daemon's TAP fd on the bridge, guest gets a lease", async () => {
      const cleanup = new CleanupStack();
      try {
        const id = `tap-${uniq()}`;
        const mac = deriveMac(id, 0, MAC_PREFIX);
        const tap = openTap(`t${id.slice(4)}`, { vnetHdr: true });
        let fd: number | undefined = tap.fd;
        cleanup.push("close TAP fd", () => fd !== undefined && closeFd(fd));
        await addToBridge(tap.name, br);
        const g = await bootGuest(cleanup, {
          name: id,
          dir,
          nics: [{ mode: "tap", mac, fd: childFdOf(0) }],
          extraFds: [tap.fd],
        });
        // QEMU holds its own copy now.
        closeFd(fd);
        fd = undefined;
        expect(g.ip.startsWith(`${net}.`)).toBe(true);
        expect(g.mac).toBe(mac);
        expect(leasedTo(mac)).toContain(g.ip);
        expect(readFileSync(`/sys/class/net/${tap.name}/master/uevent`, "utf8")).toContain(`INTERFACE=${br}`);
        expectPage(await httpGet(`http://${g.ip}:8080/`), g);
        expect(await tcpEcho(g.ip, 8081, "ping-tap\n")).toBe("ping-tap\n");
        await expectGracefulShutdown(g);
        // Not persistent: the TAP goes away with QEMU's fd.
        expect(await waitUntil(() => !existsSync(`/sys/class/net/${tap.name}`), 3000)).toBe(true);
      } finally {
        await cleanup.runOrThrow();
      }
    });

    it("bridge mode: qemu-bridge-helper with /etc/qemu/bridge.conf (namespace tmpfs)", async () => {
      const cleanup = new CleanupStack();
      try {
        // Only inside the namespace, where /etc/qemu is a private tmpfs.
        const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n");
        expect(
          mounts.some((l) => l.split(" ")[4] === "/etc/qemu" && / - tmpfs /.test(l)),
          "/etc/qemu must be the namespace's private tmpfs (scripts/in-netns.sh)",
        ).toBe(true);
        mkdirSync("/etc/qemu", { recursive: true });
        cleanup.push("remove the bridge.conf line", allowBridge(br));
        const id = `brg-${uniq()}`;
        const mac = deriveMac(id, 0, MAC_PREFIX);
        const g = await bootGuest(cleanup, { name: id, dir, nics: [{ mode: "bridge", mac, bridge: br, helper: BRIDGE_HELPER }] });
        expect(g.ip.startsWith(`${net}.`)).toBe(true);
        expect(leasedTo(mac)).toContain(g.ip);
        expectPage(await httpGet(`http://${g.ip}:8080/`), g);
        expect(await tcpEcho(g.ip, 8081, "ping-bridge\n")).toBe("ping-bridge\n");
        await expectGracefulShutdown(g);
      } finally {
        await cleanup.runOrThrow();
      }
    });
  });

  it("macvtap mode: on a veth whose peer lives in a second namespace", async () => {
    const cleanup = new CleanupStack();
    try {
      const s = uniq();
      const vh = `vh${s}`;
      const vn = `vn${s}`;
      const mvt = `mv${s}`;
      const net = "10.92.0";
      // The "LAN": a namespace held by a sleeping process we own (no
      // `ip netns add`, which would write /run/netns on the host).
      const holder = await startProcess(cleanup, "netns holder", ["unshare", "--net", "--", "sleep", "600"], join(dir, `ns-${s}.log`));
      const nsnet = `/proc/${holder.pid}/ns/net`;
      expect(await waitUntil(() => readFileSync(`/proc/${holder.pid}/cmdline`, "utf8").startsWith("sleep"), 5000)).toBe(true);
      const inNs = ["nsenter", `--net=${nsnet}`, "--"];
      await runIp(ipArgv.addVethPair(vh, vn));
      cleanup.push(`delete ${vh}`, () => deleteLink(vh, { ignoreMissing: true }));
      await runIp(ipArgv.setNetnsPid(vn, holder.pid));
      await runIp(ipArgv.setUp("lo"), { wrapper: inNs });
      await runIp(ipArgv.addAddress(vn, `${net}.1/24`), { wrapper: inNs });
      await runIp(ipArgv.setUp(vn), { wrapper: inNs });
      await runIp(ipArgv.setUp(vh));
      const d = await startDnsmasq(cleanup, { dir, iface: vn, rangeStart: `${net}.50`, rangeEnd: `${net}.150`, wrapper: inNs });

      const id = `mvt-${s}`;
      const mac = deriveMac(id, 0, MAC_PREFIX);
      // The guest MAC must equal the macvtap's: macvtap delivers only frames for its own MAC.
      const ifindex = await createMacvtap(mvt, vh, mac);
      cleanup.push(`delete ${mvt}`, () => deleteLink(mvt, { ignoreMissing: true }));
      const m = openMacvtap(ifindex);
      let fd: number | undefined = m.fd;
      cleanup.push("close macvtap fd", () => fd !== undefined && closeFd(fd));
      const g = await bootGuest(cleanup, { name: id, dir, nics: [{ mode: "macvtap", mac, fd: childFdOf(0) }], extraFds: [m.fd] });
      closeFd(fd);
      fd = undefined;
      expect(g.ip.startsWith(`${net}.`)).toBe(true);
      expect(g.mac).toBe(mac);
      expect(readFileSync(d.leaseFile, "utf8")).toContain(`${mac} ${g.ip}`);
      // Reachable from the peer namespace (not from ours: the macvlan parent cannot talk to its children).
      const body = await run([...inNs, "curl", "-sS", "--max-time", "10", "--noproxy", "*", `http://${g.ip}:8080/`]);
      expectPage(body, g);
      const echoed = await run([...inNs, "busybox", "nc", "-w", "5", g.ip, "8081"], { input: "ping-macvtap\n" });
      expect(echoed).toBe("ping-macvtap\n");
      await expectGracefulShutdown(g);
    } finally {
      await cleanup.runOrThrow();
    }
  });

  it("QEMU binary is the one the harness uses", () => {
    expect(which(QEMU_BIN) ?? QEMU_BIN).toMatch(/qemu-system-x86_64$/);
  });
});

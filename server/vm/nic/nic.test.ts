// Every NIC preparer against a fake host: what it creates, what QEMU gets,
// what its undo removes, and that a failure half-way leaves nothing behind.
// (The real host side runs in test/e2e/modes.test.ts with real guests.)
import { afterEach, describe, expect, it } from "vitest";
import { FakeNicHost } from "../../../test/helpers/fakes.js";
import { runFiles } from "../store.js";
import type { NicSpec, PortSpec } from "../types.js";
import { NIC_PREPARERS } from "./index.js";
import { hostIfName } from "./tap.js";
import type { NicContext } from "./types.js";

const MAC = "52:54:00:12:34:56";
const PORTS: PortSpec[] = [{ protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 8080, vmPort: 80 }];
const FILES = runFiles("/var/lib/vmm/vms/web");

function ctx(nic: NicSpec, over: Partial<NicContext> = {}): NicContext {
  return { vmId: "web", index: 0, mac: MAC, nic, ports: PORTS, firstChildFd: 3, files: FILES, ...over };
}

const hosts: FakeNicHost[] = [];
afterEach(() => {
  for (const h of hosts.splice(0)) h.closeAll();
});

const prepare = (nic: NicSpec, host: FakeNicHost, over: Partial<NicContext> = {}) => {
  hosts.push(host);
  return NIC_PREPARERS[nic.mode](ctx(nic, over), host);
};

describe("NIC preparers", () => {
  it("user: NIC 0's ports become hostfwd rules; nothing on the host", async () => {
    const host = new FakeNicHost();
    const p = await prepare({ mode: "user" }, host);
    expect(p).toEqual({
      qemu: { mode: "user", mac: MAC, forwards: [{ protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 8080, guestPort: 80 }] },
      fds: [],
      hostInterface: "",
    });
    expect(host.calls).toEqual([]);
  });

  it("passt: starts passt with the ports, points QEMU at its socket, undo stops it", async () => {
    const host = new FakeNicHost();
    const p = await prepare({ mode: "passt" }, host);
    expect(p.qemu).toEqual({ mode: "passt", mac: MAC, socketPath: FILES.passtSock });
    expect(p.process).toEqual({ pid: 4242, startTime: 1 });
    await p.undo!.run();
    expect(host.calls).toEqual(["startPasst 1 ports", "stopProcess 4242"]);
  });

  it("bridge: the helper attaches the TAP; a missing bridge is a precondition", async () => {
    const host = new FakeNicHost();
    const p = await prepare({ mode: "bridge", bridge: "br0" }, host);
    expect(p.qemu).toEqual({ mode: "bridge", mac: MAC, bridge: "br0", helper: host.bridgeHelper });
    expect(p.undo).toBeUndefined();
    await expect(prepare({ mode: "bridge", bridge: "br9" }, host)).rejects.toMatchObject({ kind: "precondition", message: expect.stringContaining("config.nics[0].bridge") });
  });

  it("tap: opens a TAP, enslaves it, passes its fd as the next child fd; undo deletes it", async () => {
    const host = new FakeNicHost();
    const name = hostIfName("vt", "web", 1);
    const p = await prepare({ mode: "tap", bridge: "br0" }, host, { index: 1, firstChildFd: 5 });
    expect(p.qemu).toEqual({ mode: "tap", mac: MAC, fd: 5, vnetHdr: true });
    expect(p.fds).toHaveLength(1);
    expect(host.open.has(p.fds[0]!)).toBe(true);
    expect(p.hostInterface).toBe(name);
    expect(host.calls).toEqual([`deleteLink ${name}`, `openTap ${name}`, `addToBridge ${name} br0`]);
    await p.undo!.run();
    expect(host.links.has(name)).toBe(false);
  });

  it("tap: closes its fd when enslaving fails", async () => {
    const host = new FakeNicHost();
    host.failAddToBridge = true;
    await expect(prepare({ mode: "tap", bridge: "br0" }, host)).rejects.toThrow(/master failed/);
    expect(host.open.size).toBe(0);
  });

  it("tap: refuses a bridge that does not exist, before creating anything", async () => {
    const host = new FakeNicHost();
    await expect(prepare({ mode: "tap", bridge: "br9" }, host)).rejects.toMatchObject({ kind: "precondition" });
    expect(host.calls).toEqual([]);
  });

  it("vmnet: a TAP on the network's bridge", async () => {
    const host = new FakeNicHost();
    const p = await prepare({ mode: "vmnet", networkId: "net-1" }, host);
    expect(p.qemu).toEqual({ mode: "vmnet", mac: MAC, fd: 3, vnetHdr: true });
    expect(host.calls).toContain(`addToBridge ${hostIfName("vt", "web", 0)} vmmnet-1`);
  });

  it("vmnet: a datagram fd from the backend becomes -netdev dgram", async () => {
    const host = new FakeNicHost();
    host.attachment = { fd: 99 };
    const p = await prepare({ mode: "vmnet", networkId: "net-1" }, host, { firstChildFd: 4 });
    expect(p).toEqual({ qemu: { mode: "dgram", mac: MAC, fd: 4 }, fds: [99], hostInterface: "" });
  });

  it("vmnet: an unknown network is a precondition naming network_id", async () => {
    const host = new FakeNicHost();
    host.attachment = undefined;
    await expect(prepare({ mode: "vmnet", networkId: "net-x" }, host)).rejects.toMatchObject({
      kind: "precondition",
      message: expect.stringContaining("config.nics[0].network_id"),
    });
  });

  it("macvtap: creates the link with the guest's MAC, passes /dev/tapN; undo deletes the link", async () => {
    const host = new FakeNicHost();
    const name = hostIfName("vm", "web", 0);
    const p = await prepare({ mode: "macvtap", macvtapParent: "eth0" }, host);
    expect(p.qemu).toEqual({ mode: "macvtap", mac: MAC, fd: 3, vnetHdr: true });
    expect(p.hostInterface).toBe(name);
    expect(host.calls).toEqual([`deleteLink ${name}`, `createMacvtap ${name} eth0 ${MAC}`, "openMacvtap 77"]);
    await p.undo!.run();
    expect(host.links.has(name)).toBe(false);
  });

  it("macvtap: deletes the link when opening its device fails", async () => {
    const host = new FakeNicHost();
    host.failOpenMacvtap = true;
    await expect(prepare({ mode: "macvtap", macvtapParent: "eth0" }, host)).rejects.toThrow(/ENOENT/);
    expect(host.links.has(hostIfName("vm", "web", 0))).toBe(false);
  });

  it("custom: the netdev verbatim; nothing on the host", async () => {
    const host = new FakeNicHost();
    const p = await prepare({ mode: "custom", customNetdev: "socket,listen=:1234" }, host);
    expect(p).toEqual({ qemu: { mode: "custom", mac: MAC, netdev: "socket,listen=:1234" }, fds: [], hostInterface: "" });
    expect(host.calls).toEqual([]);
  });

  it("hostIfName fits IFNAMSIZ and is stable", () => {
    expect(hostIfName("vt", "a".repeat(63), 7)).toMatch(/^vt[0-9a-f]{10}n7$/);
    expect(hostIfName("vm", "web", 0)).toBe(hostIfName("vm", "web", 0));
  });
});

// Every NIC preparer against a fake host: what it creates, what QEMU gets,
// what its undo removes, and that a failure half-way leaves nothing behind.
// (The real host side runs in test/e2e/modes.test.ts with real guests.)
import { describe, expect, it } from "vitest";
import { VmmError } from "../../errors.js";
import type { ProcessRef } from "../../host/process.js";
import type { NetworkAttachment } from "../../net/types.js";
import { runFiles } from "../store.js";
import type { NicSpec, PortSpec } from "../types.js";
import { NIC_PREPARERS } from "./index.js";
import { hostIfName } from "./tap.js";
import type { NicContext, NicHost } from "./types.js";

/** A host that records every call; links exist when listed in `links`. */
class FakeHost implements NicHost {
  readonly bridgeHelper = "/usr/lib/qemu/qemu-bridge-helper";
  readonly calls: string[] = [];
  readonly links = new Set<string>(["br0", "vmmnet-1"]);
  readonly open = new Set<number>();
  private nextFd = 40;
  failAddToBridge = false;
  failOpenMacvtap = false;
  attachment: NetworkAttachment | undefined = { bridge: "vmmnet-1" };

  async linkExists(name: string) {
    return this.links.has(name);
  }
  async deleteLink(name: string) {
    this.calls.push(`deleteLink ${name}`);
    this.links.delete(name);
  }
  async addToBridge(dev: string, bridge: string) {
    if (this.failAddToBridge) throw new VmmError("internal", "ip link set master failed");
    this.calls.push(`addToBridge ${dev} ${bridge}`);
  }
  async createMacvtap(name: string, parent: string, mac: string) {
    this.calls.push(`createMacvtap ${name} ${parent} ${mac}`);
    this.links.add(name);
    return 77;
  }
  openTap(name: string) {
    this.calls.push(`openTap ${name}`);
    this.links.add(name);
    const fd = this.nextFd++;
    this.open.add(fd);
    return fd;
  }
  openMacvtap(ifindex: number) {
    if (this.failOpenMacvtap) throw new Error("open /dev/tap77: ENOENT");
    this.calls.push(`openMacvtap ${ifindex}`);
    const fd = this.nextFd++;
    this.open.add(fd);
    return fd;
  }
  closeFd(fd: number) {
    this.calls.push(`closeFd ${fd}`);
    this.open.delete(fd);
  }
  async startPasst(_files: unknown, ports: readonly PortSpec[]): Promise<ProcessRef> {
    this.calls.push(`startPasst ${ports.length} ports`);
    return { pid: 4242, startTime: 1 };
  }
  async stopProcess(ref: ProcessRef) {
    this.calls.push(`stopProcess ${ref.pid}`);
  }
  networkAttachment(networkId: string, mac: string) {
    this.calls.push(`networkAttachment ${networkId} ${mac}`);
    return this.attachment;
  }
}

const MAC = "52:54:00:12:34:56";
const PORTS: PortSpec[] = [{ protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 8080, vmPort: 80 }];
const FILES = runFiles("/var/lib/vmm/vms/web");

function ctx(nic: NicSpec, over: Partial<NicContext> = {}): NicContext {
  return { vmId: "web", index: 0, mac: MAC, nic, ports: PORTS, firstChildFd: 3, files: FILES, ...over };
}

const prepare = (nic: NicSpec, host: FakeHost, over: Partial<NicContext> = {}) => NIC_PREPARERS[nic.mode](ctx(nic, over), host);

describe("NIC preparers", () => {
  it("user: NIC 0's ports become hostfwd rules; nothing on the host", async () => {
    const host = new FakeHost();
    const p = await prepare({ mode: "user" }, host);
    expect(p).toEqual({
      qemu: { mode: "user", mac: MAC, forwards: [{ protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 8080, guestPort: 80 }] },
      fds: [],
      hostInterface: "",
    });
    expect(host.calls).toEqual([]);
  });

  it("passt: starts passt with the ports, points QEMU at its socket, undo stops it", async () => {
    const host = new FakeHost();
    const p = await prepare({ mode: "passt" }, host);
    expect(p.qemu).toEqual({ mode: "passt", mac: MAC, socketPath: FILES.passtSock });
    expect(p.process).toEqual({ pid: 4242, startTime: 1 });
    await p.undo!.run();
    expect(host.calls).toEqual(["startPasst 1 ports", "stopProcess 4242"]);
  });

  it("bridge: the helper attaches the TAP; a missing bridge is a precondition", async () => {
    const host = new FakeHost();
    const p = await prepare({ mode: "bridge", bridge: "br0" }, host);
    expect(p.qemu).toEqual({ mode: "bridge", mac: MAC, bridge: "br0", helper: host.bridgeHelper });
    expect(p.undo).toBeUndefined();
    await expect(prepare({ mode: "bridge", bridge: "br9" }, host)).rejects.toMatchObject({ kind: "precondition", message: expect.stringContaining("config.nics[0].bridge") });
  });

  it("tap: opens a TAP, enslaves it, passes its fd as the next child fd; undo deletes it", async () => {
    const host = new FakeHost();
    const name = hostIfName("vt", "web", 1);
    const p = await prepare({ mode: "tap", bridge: "br0" }, host, { index: 1, firstChildFd: 5 });
    expect(p.qemu).toEqual({ mode: "tap", mac: MAC, fd: 5, vnetHdr: true });
    expect(p.fds).toEqual([40]);
    expect(p.hostInterface).toBe(name);
    expect(host.calls).toEqual([`deleteLink ${name}`, `openTap ${name}`, `addToBridge ${name} br0`]);
    await p.undo!.run();
    expect(host.links.has(name)).toBe(false);
  });

  it("tap: closes its fd when enslaving fails", async () => {
    const host = new FakeHost();
    host.failAddToBridge = true;
    await expect(prepare({ mode: "tap", bridge: "br0" }, host)).rejects.toThrow(/master failed/);
    expect(host.open.size).toBe(0);
  });

  it("tap: refuses a bridge that does not exist, before creating anything", async () => {
    const host = new FakeHost();
    await expect(prepare({ mode: "tap", bridge: "br9" }, host)).rejects.toMatchObject({ kind: "precondition" });
    expect(host.calls).toEqual([]);
  });

  it("vmnet: a TAP on the network's bridge", async () => {
    const host = new FakeHost();
    const p = await prepare({ mode: "vmnet", networkId: "net-1" }, host);
    expect(p.qemu).toEqual({ mode: "vmnet", mac: MAC, fd: 3, vnetHdr: true });
    expect(host.calls).toContain(`addToBridge ${hostIfName("vt", "web", 0)} vmmnet-1`);
  });

  it("vmnet: a datagram fd from the backend becomes -netdev dgram", async () => {
    const host = new FakeHost();
    host.attachment = { fd: 99 };
    const p = await prepare({ mode: "vmnet", networkId: "net-1" }, host, { firstChildFd: 4 });
    expect(p).toEqual({ qemu: { mode: "dgram", mac: MAC, fd: 4 }, fds: [99], hostInterface: "" });
  });

  it("vmnet: an unknown network is a precondition naming network_id", async () => {
    const host = new FakeHost();
    host.attachment = undefined;
    await expect(prepare({ mode: "vmnet", networkId: "net-x" }, host)).rejects.toMatchObject({
      kind: "precondition",
      message: expect.stringContaining("config.nics[0].network_id"),
    });
  });

  it("macvtap: creates the link with the guest's MAC, passes /dev/tapN; undo deletes the link", async () => {
    const host = new FakeHost();
    const name = hostIfName("vm", "web", 0);
    const p = await prepare({ mode: "macvtap", macvtapParent: "eth0" }, host);
    expect(p.qemu).toEqual({ mode: "macvtap", mac: MAC, fd: 3, vnetHdr: true });
    expect(p.hostInterface).toBe(name);
    expect(host.calls).toEqual([`deleteLink ${name}`, `createMacvtap ${name} eth0 ${MAC}`, "openMacvtap 77"]);
    await p.undo!.run();
    expect(host.links.has(name)).toBe(false);
  });

  it("macvtap: deletes the link when opening its device fails", async () => {
    const host = new FakeHost();
    host.failOpenMacvtap = true;
    await expect(prepare({ mode: "macvtap", macvtapParent: "eth0" }, host)).rejects.toThrow(/ENOENT/);
    expect(host.links.has(hostIfName("vm", "web", 0))).toBe(false);
  });

  it("custom: the netdev verbatim; nothing on the host", async () => {
    const host = new FakeHost();
    const p = await prepare({ mode: "custom", customNetdev: "socket,listen=:1234" }, host);
    expect(p).toEqual({ qemu: { mode: "custom", mac: MAC, netdev: "socket,listen=:1234" }, fds: [], hostInterface: "" });
    expect(host.calls).toEqual([]);
  });

  it("hostIfName fits IFNAMSIZ and is stable", () => {
    expect(hostIfName("vt", "a".repeat(63), 7)).toMatch(/^vt[0-9a-f]{10}n7$/);
    expect(hostIfName("vm", "web", 0)).toBe(hostIfName("vm", "web", 0));
  });
});

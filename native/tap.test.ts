import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { useNetnsSysfs, uniq } from "../test/guest/netns.js";
import { addToBridge, createBridge, createMacvtap, deleteLink, ipArgv, runIp } from "../server/host/iproute.js";
import { closeFd, openMacvtap, openTap } from "./tap.js";

// linux/if_tun.h
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const IFF_MULTI_QUEUE = 0x0100;

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

const fdFlags = (fd: number) => parseInt(/flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!, 8);
const tunFlags = (dev: string) => Number(readFileSync(`/sys/class/net/${dev}/tun_flags`, "utf8").trim());

describe("native tap (private namespace)", () => {
  const s = uniq();
  const br = `tbr${s}`;
  const tap = `tap${s}`;
  const va = `tva${s}`;
  const vb = `tvb${s}`;
  const mvt = `tmv${s}`;
  const open: number[] = [];

  beforeAll(() => useNetnsSysfs());
  afterAll(async () => {
    for (const fd of open.splice(0)) closeFd(fd);
    for (const d of [mvt, va, br]) await deleteLink(d, { ignoreMissing: true });
  });

  it("opens a TAP with vnet_hdr, attaches it to a bridge, and it vanishes on close", async () => {
    const t = openTap(tap, { vnetHdr: true });
    open.push(t.fd);
    expect(t.name).toBe(tap);
    expect(t.fd).toBeGreaterThan(2);
    const flags = tunFlags(tap);
    expect(flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)).toBe(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
    // close-on-exec: QEMU must only get it through the stdio array.
    expect(fdFlags(t.fd) & (O_CLOEXEC | O_NONBLOCK)).toBe(O_CLOEXEC | O_NONBLOCK);
    await createBridge(br, "10.78.0.1/24");
    await addToBridge(tap, br);
    expect(readlinkSync(`/sys/class/net/${tap}/master`)).toMatch(new RegExp(`/${br}$`));
    closeFd(open.pop()!);
    expect(existsSync(`/sys/class/net/${tap}`)).toBe(false);
  });

  it("lets the kernel pick a name, without vnet_hdr, multi-queue", () => {
    const t = openTap("", { vnetHdr: false, multiQueue: true });
    open.push(t.fd);
    expect(t.name).toMatch(/^tap\d+$/);
    const flags = tunFlags(t.name);
    expect(flags & IFF_VNET_HDR).toBe(0);
    expect(flags & IFF_MULTI_QUEUE).toBe(IFF_MULTI_QUEUE);
    closeFd(open.pop()!);
    expect(existsSync(`/sys/class/net/${t.name}`)).toBe(false);
  });

  it("opens /dev/tapN of a macvtap", async () => {
    await runIp(ipArgv.addVethPair(va, vb));
    await runIp(ipArgv.setUp(va));
    const ifindex = await createMacvtap(mvt, va, "52:54:00:78:00:01");
    const m = openMacvtap(ifindex);
    open.push(m.fd);
    expect(m.path).toBe(`/dev/tap${ifindex}`);
    expect(readlinkSync(`/proc/self/fd/${m.fd}`)).toBe(m.path);
    expect(fdFlags(m.fd) & (O_CLOEXEC | O_NONBLOCK)).toBe(O_CLOEXEC | O_NONBLOCK);
    closeFd(open.pop()!);
  });

  it.each([
    { name: "openTap without opts", f: () => (openTap as (n: string) => unknown)("x") },
    { name: "openTap with a non-boolean vnetHdr", f: () => openTap("x", { vnetHdr: 1 as never }) },
    { name: "openTap with a long name", f: () => openTap("x".repeat(16), { vnetHdr: true }) },
    { name: "openTap with a slash", f: () => openTap("a/b", { vnetHdr: true }) },
    { name: "openMacvtap(0)", f: () => openMacvtap(0) },
    { name: "openMacvtap(1.5)", f: () => openMacvtap(1.5) },
    { name: "closeFd(1)", f: () => closeFd(1) },
    { name: "closeFd('3')", f: () => closeFd("3" as never) },
  ])("throws a Usage TypeError for $name", ({ f }) => {
    expect(f).toThrow(TypeError);
    expect(f).toThrow(/^Usage: /);
  });

  it("names the syscall and errno on failure", () => {
    let err: (Error & { code?: string; syscall?: string }) | undefined;
    try {
      openMacvtap(1); // lo is no macvtap
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.message).toMatch(/failed: E[A-Z]+ \(/);
    expect(err?.code).toMatch(/^E[A-Z]+$/);
    expect(err?.syscall).toBeTruthy();
    expect(() => closeFd(1_000_000)).toThrow(/close\(1000000\) failed: EBADF/);
  });
});

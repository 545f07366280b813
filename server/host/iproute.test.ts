import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile, readlink } from "node:fs/promises";
import { ValidationError, VmmError } from "../errors.js";
import { hostInterfaceOf } from "./addresses.js";
import { useNetnsSysfs, uniq } from "../../test/guest/netns.js";
import {
  addToBridge,
  bridgeMac,
  createBridge,
  createMacvtap,
  deleteLink,
  getIfindex,
  hostRanges,
  ipArgv,
  linkExists,
  runIp,
} from "./iproute.js";

describe("ipArgv", () => {
  it.each([
    { got: ipArgv.addBridge("br0"), want: ["link", "add", "name", "br0", "address", bridgeMac("br0"), "type", "bridge"] },
    { got: ipArgv.addBridge("br0", "02:AA:bb:cc:dd:ee"), want: ["link", "add", "name", "br0", "address", "02:aa:bb:cc:dd:ee", "type", "bridge"] },
    { got: ipArgv.addAddress("br0", "10.0.0.1/24"), want: ["addr", "add", "10.0.0.1/24", "dev", "br0"] },
    { got: ipArgv.addAddress("br0", "fd00::1/64"), want: ["addr", "add", "fd00::1/64", "dev", "br0"] },
    { got: ipArgv.setUp("tap0"), want: ["link", "set", "dev", "tap0", "up"] },
    { got: ipArgv.setMaster("tap0", "br0"), want: ["link", "set", "dev", "tap0", "master", "br0"] },
    { got: ipArgv.addVethPair("v0", "v1"), want: ["link", "add", "name", "v0", "type", "veth", "peer", "name", "v1"] },
    {
      got: ipArgv.addMacvtap("mvt0", "eth0", "52-54-00-AA-BB-CC"),
      want: ["link", "add", "link", "eth0", "name", "mvt0", "address", "52:54:00:aa:bb:cc", "type", "macvtap", "mode", "bridge"],
    },
    { got: ipArgv.setNetnsPid("v1", 1234), want: ["link", "set", "dev", "v1", "netns", "1234"] },
    { got: ipArgv.deleteLink("br0"), want: ["link", "del", "dev", "br0"] },
  ])("$want", ({ got, want }) => {
    expect(got).toEqual(want);
  });

  it.each([
    { name: "keyword as name", f: () => ipArgv.addBridge("dev"), field: "name" },
    { name: "space in name", f: () => ipArgv.setUp("br0 master x"), field: "dev" },
    { name: "too long", f: () => ipArgv.addBridge("b".repeat(16)), field: "name" },
    { name: "empty", f: () => ipArgv.deleteLink(""), field: "dev" },
    { name: "slash", f: () => ipArgv.setUp("a/b"), field: "dev" },
    { name: "bad cidr", f: () => ipArgv.addAddress("br0", "10.0.0.1"), field: "address" },
    { name: "bad prefix", f: () => ipArgv.addAddress("br0", "10.0.0.1/33"), field: "address" },
    { name: "bad master", f: () => ipArgv.setMaster("tap0", "-x"), field: "master" },
    { name: "bad mac", f: () => ipArgv.addMacvtap("m0", "eth0", "zz"), field: "mac" },
  ])("refuses $name", ({ f, field }) => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).problems[0]!.field).toBe(field);
  });
});

describe("iproute against the kernel (private namespace)", () => {
  const s = uniq();
  const br = `vbr${s}`;
  const va = `vea${s}`;
  const vb = `veb${s}`;
  const mvt = `mvt${s}`;

  beforeAll(() => useNetnsSysfs());
  afterAll(async () => {
    for (const d of [mvt, va, br]) await deleteLink(d, { ignoreMissing: true });
  });

  it("an address on a bridge without carrier (its own MAC, no port) is still the host's", async () => {
    const lone = `vlo${s}`;
    await createBridge(lone, "10.78.0.1/24");
    try {
      // The kernel keeps such a bridge NO-CARRIER, and os.networkInterfaces() skips it.
      expect(await runIp(["-br", "link", "show", "dev", lone])).toMatch(/NO-CARRIER/);
      expect(hostInterfaceOf("10.78.0.1", 0)).toBeDefined();
      expect((await hostRanges()).map((r) => r.what)).toContain(`address 10.78.0.1/24 on ${lone}`);
    } finally {
      await deleteLink(lone);
    }
  });

  it("creates a bridge with an address", async () => {
    await createBridge(br, "10.77.0.1/24");
    expect(await linkExists(br)).toBe(true);
    expect(await readFile(`/sys/class/net/${br}/operstate`, "utf8")).toMatch(/up|unknown|down/);
    expect(await runIp(["-br", "addr", "show", "dev", br])).toContain("10.77.0.1/24");
  });

  it("adds a link to the bridge, and the bridge keeps its own MAC", async () => {
    await runIp(ipArgv.addVethPair(va, vb));
    // A port with a lower MAC than the bridge's: an unset bridge address would follow it.
    await runIp(["link", "set", "dev", va, "address", "02:00:00:00:00:01"]);
    await addToBridge(va, br);
    expect(await readlink(`/sys/class/net/${va}/master`)).toMatch(new RegExp(`/${br}$`));
    expect((await readFile(`/sys/class/net/${br}/address`, "utf8")).trim()).toBe(bridgeMac(br));
  });

  it("creates a macvtap with the given MAC and returns its ifindex", async () => {
    const ifindex = await createMacvtap(mvt, vb, "52:54:00:77:00:01");
    expect(ifindex).toBe(await getIfindex(mvt));
    expect((await readFile(`/sys/class/net/${mvt}/address`, "utf8")).trim()).toBe("52:54:00:77:00:01");
    expect(await readFile(`/sys/class/net/${mvt}/macvtap/tap${ifindex}/dev`, "utf8")).toMatch(/^\d+:\d+/);
    await deleteLink(mvt);
    expect(await linkExists(mvt)).toBe(false);
  });

  it("names the command and kind when ip fails", async () => {
    const err = await runIp(ipArgv.setUp("nosuchdev0")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmmError);
    expect((err as VmmError).kind).toBe("not_found");
    expect((err as VmmError).message).toMatch(/^ip link set dev nosuchdev0 up failed: /);
    const dup = await runIp(ipArgv.addBridge(br)).catch((e: unknown) => e);
    expect((dup as VmmError).kind).toBe("exists");
  });

  it("deletes, tolerating a missing link only when asked", async () => {
    await deleteLink(br);
    expect(await linkExists(br)).toBe(false);
    await deleteLink(br, { ignoreMissing: true });
    await expect(deleteLink(br)).rejects.toThrow(/ip link del dev/);
  });
});

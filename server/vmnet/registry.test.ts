// NetworkRegistry with a fake backend over a real state directory: records
// and host side stay in step (a failed realize leaves nothing), records
// survive a restart, deletion honours attachments and holders, handles
// verify. (Input rules: validate.test.ts; the real backend: test/e2e/vmnet.)
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tempStateDir, testConfig } from "../../test/helpers/fakes.js";
import { VmmError } from "../errors.js";
import { parseIpv4Cidr } from "../net/addr.js";
import type { HostPrefix } from "../net/host-prefixes.js";
import { NetworkRegistry } from "./registry.js";
import type { NetworkBackend, NetworkRecord, RawNetworkConfig } from "./types.js";

class FakeBackend implements NetworkBackend {
  readonly realized = new Set<string>();
  failRealize: Error | undefined;
  async realize(rec: NetworkRecord) {
    this.realized.add(rec.id); // half-built before it fails, as a real one can be
    if (this.failRealize) throw this.failRealize;
  }
  async destroy(rec: NetworkRecord) {
    this.realized.delete(rec.id);
  }
}

const raw = (over: Partial<RawNetworkConfig> = {}): RawNetworkConfig => ({
  mode: "host",
  ipv4Subnet: "",
  ipv6Prefix: "",
  mtu: 0,
  dhcpReservations: [],
  portForwards: [],
  externalInterface: "",
  ...over,
});
const none = { attachedTo: () => [] as string[] };

let state: ReturnType<typeof tempStateDir>;
let backend: FakeBackend;
let host: HostPrefix[];
const registry = () => new NetworkRegistry(testConfig(state.dir), backend, async () => host);

beforeEach(() => {
  state = tempStateDir();
  backend = new FakeBackend();
  host = [];
});
afterEach(() => state.remove());

describe("NetworkRegistry", () => {
  it("allocates a /24 from the pool, records and realizes the network", async () => {
    const reg = registry();
    const rec = await reg.create("lab", raw());
    expect(rec.spec.ipv4Subnet).toMatch(/\/24$/);
    expect(rec.gateway).toBe(rec.spec.ipv4Subnet.replace(/\.0\/24$/, ".1"));
    expect(backend.realized.has(rec.id)).toBe(true);
    expect(existsSync(join(state.dir, "networks", `${rec.id}.json`))).toBe(true);
    expect(reg.subnetOf(rec.id)).toBe(rec.spec.ipv4Subnet);
    expect(reg.attachment(rec.id, "02:00:00:00:00:01")).toEqual({ bridge: rec.bridge });
  });

  it("a failed realize leaves neither a record nor host state", async () => {
    const reg = registry();
    backend.failRealize = new VmmError("precondition", "dnsmasq did not start");
    await expect(reg.create("lab", raw())).rejects.toThrow(/dnsmasq/);
    expect(backend.realized.size).toBe(0);
    expect(readdirSync(join(state.dir, "networks")).filter((f) => f.endsWith(".json"))).toEqual([]);
    expect(reg.list(0, "").networks).toEqual([]);
  });

  it("records survive a restart and are realized again by init", async () => {
    const rec = await registry().create("lab", raw({ ipv4Subnet: "10.77.0.0/24" }));
    backend = new FakeBackend();
    const again = registry();
    expect(again.get(rec.id)).toEqual(rec);
    await again.init();
    expect([...backend.realized]).toEqual([rec.id]);
  });

  it("refuses a subnet that overlaps an address range of the host", async () => {
    host = [{ family: 4, cidr: parseIpv4Cidr("10.77.0.0/16")!, what: "route 10.77.0.0/16 dev eth1" }];
    await expect(registry().create("lab", raw({ ipv4Subnet: "10.77.1.0/24" }))).rejects.toMatchObject({ kind: "invalid", message: expect.stringContaining("config.ipv4_subnet") });
  });

  it("delete asks which VMs are attached, and holders count too", async () => {
    const reg = registry();
    const rec = await reg.create("lab", raw());
    await expect(reg.delete(rec.id, false, { attachedTo: (id) => (id === rec.id ? ["web"] : []) })).rejects.toMatchObject({ kind: "precondition", message: expect.stringContaining("web") });
    const { holderId } = reg.acquire(reg.serialize(rec), "pid 42");
    await expect(reg.delete(rec.id, false, none)).rejects.toMatchObject({ kind: "precondition", message: expect.stringContaining("holder") });
    reg.release(rec.id, holderId);
    await reg.delete(rec.id, false, none);
    expect(backend.realized.size).toBe(0);
    await expect(async () => reg.delete(rec.id, true, none)).rejects.toMatchObject({ kind: "not_found" });
  });

  it("pages ListNetworks", async () => {
    const reg = registry();
    for (let i = 0; i < 3; i++) await reg.create(`n${i}`, raw());
    const first = reg.list(2, "");
    expect(first.networks).toHaveLength(2);
    expect(reg.list(2, first.next).networks).toHaveLength(1);
    expect(() => reg.list(0, "forged")).toThrow(/page_token/);
  });

  it("a serialization of another daemon does not verify", async () => {
    const rec = await registry().create("lab", raw());
    const otherState = tempStateDir();
    try {
      const other = new NetworkRegistry(testConfig(otherState.dir), backend, async () => []);
      expect(() => other.resolve(registry().serialize(rec))).toThrow(/signature does not verify/);
    } finally {
      otherState.remove();
    }
  });
});

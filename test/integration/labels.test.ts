// VM labels over the real API: CreateVm keeps them, ListVms filters by
// selector, UpdateVm replaces them, bad labels and selectors are
// invalid_argument naming the field and change nothing, and labels survive
// a kill -9 of the daemon. GetMeta reports the host's capacity.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { availableParallelism, totalmem } from "node:os";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

let d: DaemonHandle;
const vmm = () => client(VmmService, transport(d, "connect", "unix"));
const ids = async (labelSelector: string) => (await vmm().listVms({ labelSelector })).vms.map((v) => v.id).sort();

beforeAll(async () => {
  d = await startDaemon({ tcp: false });
  const mk = (id: string, labels: Record<string, string>) => vmm().createVm({ id, config: { name: id, labels } });
  await mk("a1", { "vmm.dev/node": "host-a", app: "web" });
  await mk("a2", { "vmm.dev/node": "host-a", app: "db" });
  await mk("b1", { "vmm.dev/node": "host-b", app: "web", canary: "" });
  await mk("none", {});
});
afterAll(async () => {
  await d?.stop();
  d?.cleanup();
});

describe("VM labels", () => {
  it("are kept by CreateVm and shown by GetInfo", async () => {
    expect((await vmm().getInfo({ id: "b1" })).vm!.config!.labels).toEqual({ "vmm.dev/node": "host-b", app: "web", canary: "" });
    expect((await vmm().getInfo({ id: "none" })).vm!.config!.labels).toEqual({});
  });

  it.each([
    ["", ["a1", "a2", "b1", "none"]],
    ["vmm.dev/node=host-a", ["a1", "a2"]],
    ["app==web,vmm.dev/node!=host-a", ["b1"]],
    ["canary", ["b1"]],
    ["!app", ["none"]],
    ["app!=web", ["a2", "none"]],
  ])("ListVms label_selector %j", async (sel, want) => {
    expect(await ids(sel)).toEqual(want);
    expect((await vmm().listVms({ labelSelector: sel, pageSize: 1 })).totalSize).toBe(want.length);
  });

  it("refuses bad labels and selectors, naming the field, changing nothing", async () => {
    await expect(vmm().createVm({ id: "bad", config: { name: "bad", labels: { "a b": "x", ok: "-" } } }))
      .rejects.toThrow(/invalid_argument.*config\.labels\["a b"\].*config\.labels\["ok"\]/);
    await expect(vmm().listVms({ labelSelector: "app in (web)" })).rejects.toThrow(/invalid_argument.*label_selector: requirement 1/);
    await expect(vmm().updateVm({ id: "a1", labels: { labels: { "x/y/z": "1" } } })).rejects.toThrow(/invalid_argument.*labels\.labels/);
    expect(await ids("")).toEqual(["a1", "a2", "b1", "none"]);
    expect((await vmm().getInfo({ id: "a1" })).vm!.config!.labels).toEqual({ "vmm.dev/node": "host-a", app: "web" });
  });

  it("are replaced by UpdateVm, left alone when omitted, survive kill -9", async () => {
    await vmm().updateVm({ id: "a2", labels: { labels: { "vmm.dev/node": "host-b" } } });
    await vmm().updateVm({ id: "a1", name: "renamed" }); // labels omitted: unchanged
    await vmm().updateVm({ id: "none", labels: { labels: {} } });
    await d.kill9();
    d = await startDaemon({ dir: d.dir, tcp: false });
    expect(await ids("vmm.dev/node=host-b")).toEqual(["a2", "b1"]);
    expect((await vmm().getInfo({ id: "a1" })).vm!.config!.labels).toEqual({ "vmm.dev/node": "host-a", app: "web" });
    expect((await vmm().getInfo({ id: "a2" })).vm!.config!.labels).toEqual({ "vmm.dev/node": "host-b" });
  });
});

describe("GetMeta host capacity", () => {
  it("reports the host's CPUs and memory", async () => {
    const m = await vmm().getMeta({});
    expect(m.hostCpus).toBe(availableParallelism());
    expect(m.hostMemoryBytes).toBe(BigInt(totalmem()));
  });
});

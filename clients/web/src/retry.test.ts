// The web console's read retry against a real vmmd over TCP, through the
// same connect-web transport the page uses (Node's fetch here). A request
// that gets no answer is made real: it goes to a port nothing listens on,
// so fetch fails with its own TypeError, as a browser's does on a refused
// connection or a network change.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "node:net";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { VmmService } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkService } from "../../../gen/ts/vmm/v1/network_pb.js";
import { startDaemon, type DaemonHandle } from "../../../test/helpers/daemon.js";
import { failure } from "../../../test/helpers/rpc.js";
import { errorText } from "./api.js";
import { retryReads } from "./retry.js";

let d: DaemonHandle;
let deadPort = 0;

beforeAll(async () => {
  d = await startDaemon();
  // A port that was free a moment ago and is closed again: connects to it are refused.
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  deadPort = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
});
afterAll(async () => {
  await d?.stop();
  d?.cleanup();
});

/** Clients whose first `failing` fetches go to the closed port; `urls` records every fetch. */
function clients(failing: number, delaysMs = [10, 20, 30]) {
  const urls: string[] = [];
  const fetchSome: typeof fetch = (input, init) => {
    const url = input instanceof Request ? input.url : input.toString();
    urls.push(url);
    const target = urls.length <= failing ? url.replace(d.tcp, `127.0.0.1:${deadPort}`) : url;
    return fetch(target, init);
  };
  const transport = createConnectTransport({ baseUrl: `http://${d.tcp}`, useBinaryFormat: true, fetch: fetchSome, interceptors: [retryReads(delaysMs)] });
  return { urls, vmm: createClient(VmmService, transport), net: createClient(NetworkService, transport) };
}

describe("web console: reads that got no answer", () => {
  it("are repeated until one is answered", async () => {
    const c = clients(3);
    const meta = await c.vmm.getMeta({});
    expect(meta.version).not.toBe("");
    expect(c.urls).toHaveLength(4);
    expect(new Set(c.urls)).toEqual(new Set([`http://${d.tcp}/vmm.v1.VmmService/GetMeta`]));
  });

  it("give up after the last pause, with an error that says no answer came", async () => {
    const c = clients(100);
    const e = await failure(c.net.listNetworks({}));
    expect(c.urls).toHaveLength(4);
    expect(e.code).toBe(Code.Unknown);
    expect(errorText(e)).toMatch(/^network error: /);
  });

  it("are not repeated when the daemon answered, even with an error", async () => {
    const c = clients(0);
    const e = await failure(c.vmm.getInfo({ id: "no-such-vm" }));
    expect(e.code).toBe(Code.NotFound);
    expect(errorText(e)).toBe('not_found: id: VM "no-such-vm" not found');
    expect(c.urls).toHaveLength(1);
  });

  it("stop at the caller's abort, during a pause", async () => {
    const c = clients(100, [60_000]);
    const ctl = new AbortController();
    const call = failure(c.vmm.listVms({}, { signal: ctl.signal }));
    while (c.urls.length === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    ctl.abort();
    const e = await call;
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(e.code).toBe(Code.Canceled);
    expect(c.urls).toHaveLength(1);
  });
});

describe("web console: calls that may change something", () => {
  it("are sent once, and their failure says that no answer came", async () => {
    const c = clients(1);
    const e = await failure(c.net.createNetwork({ name: "retry-net", config: {} }));
    expect(errorText(e)).toMatch(/^network error: /);
    expect(c.urls).toHaveLength(1);
    // Nothing was created: the one request never reached the daemon.
    expect((await c.net.listNetworks({})).networks.map((n) => n.name)).not.toContain("retry-net");
  });

  it("streams are opened once (their views reopen them with their own backoff)", async () => {
    const c = clients(1);
    const e = await failure((async () => {
      for await (const _ of c.vmm.watchEvents({})) break;
    })());
    expect(errorText(e)).toMatch(/^network error: /);
    expect(c.urls).toHaveLength(1);
  });
});

describe("the API's reads", () => {
  it("are exactly the methods declared free of side effects", () => {
    const reads = [...VmmService.methods, ...NetworkService.methods]
      .filter((m) => m.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS)
      .map((m) => m.name)
      .sort();
    expect(reads).toEqual(["GetInfo", "GetMeta", "GetNetwork", "GetVmStats", "ListImages", "ListNetworks", "ListVms"]);
  });
});

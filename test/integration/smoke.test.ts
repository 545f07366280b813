import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, startDaemon, transport, type DaemonHandle, type Protocol, type Via } from "../helpers/daemon.js";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

let d: DaemonHandle;
beforeAll(async () => {
  d = await startDaemon();
});
afterAll(async () => {
  await d?.stop();
  d?.cleanup();
});

describe.each<[Protocol, Via]>([
  ["connect", "tcp"], ["grpc", "tcp"], ["grpcweb", "tcp"],
  ["connect", "unix"], ["grpc", "unix"], ["grpcweb", "unix"],
])("GetMeta over %s/%s", (protocol, via) => {
  it("answers", async () => {
    const c = client(VmmService, transport(d, protocol, via));
    const m = await c.getMeta({});
    expect(m.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

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

describe("graceful shutdown", () => {
  it("closes idle HTTP/1.1 keep-alive connections and HTTP/2 sessions instead of waiting out the grace period", async () => {
    const own = await startDaemon();
    try {
      for (const [p, v] of [["connect", "tcp"], ["grpcweb", "unix"], ["grpc", "tcp"], ["grpc", "unix"]] as const) {
        await client(VmmService, transport(own, p, v)).getMeta({});
      }
      const t0 = Date.now();
      await own.stop();
      // The grace period for busy connections is 5 s; idle ones must not wait for it.
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(own.proc.exitCode).toBe(0);
    } finally {
      own.cleanup();
    }
  });
});

// The readiness gate over an in-memory transport: calls made while the
// daemon converges wait and are then served; health checks never wait; a
// start that takes too long or fails answers Unavailable.
import { describe, expect, it } from "vitest";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { failure } from "../../test/helpers/rpc.js";
import { readinessGate } from "./ready.js";
import { HealthState, registerHealth } from "./health.js";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/ts/grpc/health/v1/health_pb.js";

function setup(ready: Promise<void>, maxWaitMs?: number) {
  const health = new HealthState([VmmService.typeName], false);
  const served: string[] = [];
  const transport = createRouterTransport(
    (router) => {
      router.service(VmmService, {
        getMeta: () => {
          served.push("getMeta");
          return { version: "test" };
        },
      });
      registerHealth(router, health);
    },
    { router: { interceptors: [readinessGate(ready, maxWaitMs)] } },
  );
  return { vmm: createClient(VmmService, transport), health: createClient(Health, transport), state: health, served };
}

describe("readinessGate", () => {
  it("a call made before the daemon converged waits, then is served; health answers at once, NOT_SERVING until ready", async () => {
    let open!: () => void;
    const ready = new Promise<void>((r) => (open = r));
    const s = setup(ready);
    const call = s.vmm.getMeta({});
    expect((await s.health.check({ service: "" })).status).toBe(Status.NOT_SERVING);
    await new Promise((r) => setTimeout(r, 50));
    expect(s.served).toEqual([]);
    open();
    s.state.ready();
    expect((await call).version).toBe("test");
    expect((await s.health.check({ service: "" })).status).toBe(Status.SERVING);
    expect((await s.vmm.getMeta({})).version).toBe("test");
  });

  it("a call that waited too long is Unavailable, and says why", async () => {
    const s = setup(new Promise<void>(() => undefined), 30);
    const e = await failure(s.vmm.getMeta({}));
    expect(e.code).toBe(Code.Unavailable);
    expect(e.rawMessage).toBe("vmmd is starting (networks and leases converging); retry");
    expect(s.served).toEqual([]);
  });

  it("a start that failed fails the waiting calls with its reason", async () => {
    const failed = Promise.reject(new Error("state dir unreadable"));
    failed.catch(() => undefined);
    const s = setup(failed);
    const e = await failure(s.vmm.getMeta({}));
    expect(e.code).toBe(Code.Unavailable);
    expect(e.rawMessage).toBe("vmmd failed to start: state dir unreadable");
  });
});

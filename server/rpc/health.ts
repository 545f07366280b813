// grpc.health.v1: NOT_SERVING while the daemon starts (it listens before it
// has converged), SERVING for the whole server ("") and each served service
// once it is ready, NOT_SERVING again once shutdown has begun.
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { EventEmitter } from "node:events";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/ts/grpc/health/v1/health_pb.js";

export class HealthState {
  private serving: boolean;
  readonly changes = new EventEmitter();
  constructor(
    readonly services: string[],
    /** false: NOT_SERVING until ready() (a daemon still starting). */
    serving = true,
  ) {
    this.serving = serving;
  }
  ready(): void {
    this.serving = true;
    this.changes.emit("change");
  }
  status(service: string): Status | undefined {
    if (service !== "" && !this.services.includes(service)) return undefined;
    return this.serving ? Status.SERVING : Status.NOT_SERVING;
  }
  shutdown(): void {
    this.serving = false;
    this.changes.emit("change");
  }
}

export function registerHealth(router: ConnectRouter, state: HealthState): void {
  router.service(Health, {
    async check(req) {
      const s = state.status(req.service);
      if (s === undefined) throw new ConnectError(`service: unknown service "${req.service.slice(0, 128)}"`, Code.NotFound);
      return { status: s };
    },
    async *watch(req, ctx) {
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const s = state.status(req.service) ?? Status.SERVICE_UNKNOWN;
        if (s !== last) {
          yield { status: s };
          last = s;
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            state.changes.off("change", done);
            ctx.signal.removeEventListener("abort", done);
            resolve();
          };
          state.changes.once("change", done);
          ctx.signal.addEventListener("abort", done, { once: true });
        });
      }
    },
  });
}

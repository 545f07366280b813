// Counts API calls for /metrics: an interceptor outside every other one, so
// refused calls (bad token, bad input) count with their code too.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Metrics } from "./metrics.js";

/** "NotFound" -> "not_found", as Connect names codes on the wire. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return "ok";
  return (Code[code] ?? "unknown").replace(/(?<!^)([A-Z])/g, "_$1").toLowerCase();
}

/** Records every call's code and (unary) duration, and the streams open. */
export function metricsInterceptor(m: Pick<Metrics, "apiRequests" | "apiDuration" | "apiStreams">): Interceptor {
  return (next) => async (req) => {
    const labels = { service: req.service.typeName, method: req.method.name };
    const unary = req.method.methodKind === "unary";
    const t0 = performance.now();
    const done = (e?: unknown) => m.apiRequests.inc({ ...labels, code: codeName(e === undefined ? undefined : ConnectError.from(e).code) });
    let res;
    try {
      res = await next(req);
    } catch (e) {
      done(e);
      if (unary) m.apiDuration.observe(labels, (performance.now() - t0) / 1000);
      throw e;
    }
    if (!res.stream) {
      done();
      if (unary) m.apiDuration.observe(labels, (performance.now() - t0) / 1000);
      return res;
    }
    const inner = res.message;
    m.apiStreams.inc(labels);
    return {
      ...res,
      message: (async function* () {
        let err: unknown;
        try {
          yield* inner;
        } catch (e) {
          err = e;
          throw e;
        } finally {
          m.apiStreams.dec(labels);
          // A stream the client cancels ends without an error here.
          done(err);
        }
      })(),
    };
  };
}

// Reads retried when they got no answer at all. A browser fails a fetch
// (a TypeError, no HTTP status) when the connection is refused or reset,
// and Chromium also when the host's network changes under a request
// (net::ERR_NETWORK_CHANGED): vmmd creating a bridge on the same host is
// such a change. Only the methods the API declares free of side effects
// (`idempotency_level = NO_SIDE_EFFECTS` in proto/) are repeated; a call
// that may have changed something is never sent twice. An answer of the
// daemon, even an error, is final; so is the caller's own abort.
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";

/** The pauses before the 2nd, 3rd, ... attempt of a read: four attempts within ~2 s. */
export const READ_RETRY_DELAYS_MS: readonly number[] = [100, 400, 1500];

/** True when `e` is a request that got no HTTP answer (the fetch itself failed), not an error the daemon sent. */
export function isTransportFailure(e: unknown): boolean {
  const cause = e instanceof ConnectError ? e.cause : e;
  return cause instanceof TypeError;
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** An interceptor that repeats a unary read after `delaysMs[i]` when attempt i got no answer. */
export function retryReads(delaysMs: readonly number[] = READ_RETRY_DELAYS_MS): Interceptor {
  return (next) => async (req) => {
    if (req.stream || req.method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) return next(req);
    for (let attempt = 0; ; attempt++) {
      try {
        return await next(req);
      } catch (e) {
        if (attempt >= delaysMs.length || req.signal.aborted || !(e instanceof TypeError)) throw e;
        await pause(delaysMs[attempt]!, req.signal);
        if (req.signal.aborted) throw e;
      }
    }
  };
}

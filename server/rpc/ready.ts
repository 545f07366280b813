// The daemon listens before it is ready: dnsmasq instances started while
// networks come up replay their leases to the hook at once, and those calls
// must find a socket. Until the daemon has converged (networks up, guests
// re-adopted, dnsmasq lease files read), every call except health checks
// and reflection waits here; it is then served against converged state.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

const OPEN_SERVICES = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

/**
 * Holds calls until `ready` resolves; a call that waited `maxWaitMs` fails
 * with Unavailable (the caller retries), and if start-up failed the call
 * fails with that reason.
 */
export function readinessGate(ready: Promise<void>, maxWaitMs = 60_000): Interceptor {
  let done = false;
  void ready.then(
    () => (done = true),
    () => undefined,
  );
  return (next) => async (req) => {
    if (done || OPEN_SERVICES.has(req.service.typeName)) return next(req);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectError("vmmd is starting (networks and leases converging); retry", Code.Unavailable)), maxWaitMs);
    });
    try {
      await Promise.race([ready, late]);
    } catch (e) {
      if (e instanceof ConnectError) throw e;
      throw new ConnectError(`vmmd failed to start: ${(e as Error).message}`, Code.Unavailable);
    } finally {
      clearTimeout(timer);
    }
    return next(req);
  };
}

// The one place that maps domain errors to Connect codes. Field problems
// travel in the message ("config.ports[1].host_port: ...") so every client,
// curl included, sees which field was wrong.
import { Code, ConnectError } from "@connectrpc/connect";
import { VmmError, type ErrorKind } from "../errors.js";

const CODES: Record<ErrorKind, Code> = {
  // Bad input; the message names every offending field.
  invalid: Code.InvalidArgument,
  not_found: Code.NotFound,
  exists: Code.AlreadyExists,
  // Forbidden by vmm.toml policy or by the token kind.
  permission: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  // Valid request, wrong state (VM running, forwarding disabled, ...).
  precondition: Code.FailedPrecondition,
  // A host resource is busy (port in use); retrying may help.
  unavailable: Code.Unavailable,
  exhausted: Code.ResourceExhausted,
  unsupported: Code.Unimplemented,
  internal: Code.Internal,
};

/** Converts anything thrown by a domain object into a ConnectError (keeping the cause). */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  if (e instanceof VmmError) return new ConnectError(e.message, CODES[e.kind], undefined, undefined, e);
  const msg = e instanceof Error ? e.message : String(e);
  return new ConnectError(`internal error: ${msg}`, Code.Internal, undefined, undefined, e);
}

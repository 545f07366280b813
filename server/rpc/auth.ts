// Bearer-token authentication and error mapping, as Connect interceptors.
//
// Two token kinds (vmm.toml [auth]): admin tokens may call everything; lease
// tokens may only call ReportDhcpLease, so the credential handed to the
// dnsmasq hook cannot create VMs or re-point arbitrary ports. Health checks
// need no token. With no tokens configured, authentication is off (the unix
// socket's 0600 mode is then the access control).
import { timingSafeEqual, createHash } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { AuthConfig } from "../config/types.js";
import { toConnectError } from "./errors.js";

const LEASE_METHOD = "vmm.v1.VmmService/ReportDhcpLease";
const OPEN_SERVICES = new Set(["grpc.health.v1.Health"]);

// Compare digests so the comparison time does not depend on where tokens differ
// nor on their lengths.
const digest = (s: string) => createHash("sha256").update(s).digest();
function matches(token: string, list: string[]): boolean {
  const d = digest(token);
  let hit = false;
  for (const t of list) hit = timingSafeEqual(d, digest(t)) || hit;
  return hit;
}

/**
 * The bearer-token check of every RPC (token kinds at the top of this file); a pass-through when
 * `cfg` lists no token.
 */
export function authInterceptor(cfg: AuthConfig): Interceptor {
  const enabled = cfg.tokens.length > 0 || cfg.leaseTokens.length > 0;
  return (next) => async (req) => {
    if (!enabled || OPEN_SERVICES.has(req.service.typeName)) return next(req);
    const header = req.header.get("authorization");
    if (header === null) throw new ConnectError("authorization: missing bearer token", Code.Unauthenticated);
    // RFC 7235 section 2.1: the scheme is case-insensitive and separated
    // from the credentials by one or more spaces.
    const m = /^bearer +([\x21-\x7e]+)$/i.exec(header);
    if (!m) throw new ConnectError('authorization: expected "Bearer <token>"', Code.Unauthenticated);
    const token = m[1]!;
    if (matches(token, cfg.tokens)) return next(req);
    if (matches(token, cfg.leaseTokens)) {
      if (`${req.service.typeName}/${req.method.name}` === LEASE_METHOD) return next(req);
      throw new ConnectError(`authorization: a lease token may only call ${LEASE_METHOD}`, Code.PermissionDenied);
    }
    throw new ConnectError("authorization: unknown token", Code.Unauthenticated);
  };
}

/** Maps domain errors thrown by handlers to Connect codes (rpc/errors.ts). */
export const errorInterceptor: Interceptor = (next) => async (req) => {
  try {
    const res = await next(req);
    if (!res.stream) return res;
    // Streaming: map errors raised while iterating too.
    const inner = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* inner;
        } catch (e) {
          throw toConnectError(e);
        }
      })(),
    };
  } catch (e) {
    throw toConnectError(e);
  }
};

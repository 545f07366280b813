// The plain-HTTP endpoints next to the RPC routes on every API listener:
// GET /metrics (Prometheus text format, admin token when auth is on) and the
// web console under /ui/ ("/" redirects there). Everything else goes to the
// Connect handler.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { isIP } from "node:net";
import { Code, ConnectError, type Interceptor, type UnaryRequest } from "@connectrpc/connect";
import { log } from "../log.js";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;
type NodeHandler = (req: Req, res: Res) => void;

/**
 * Checks an HTTP request's Authorization header with the RPC auth
 * interceptor, so tokens follow one set of rules: an admin token passes, a
 * lease token is refused like on any RPC but ReportDhcpLease, and with auth
 * off everything passes. Resolves with the refusal, or undefined.
 */
export function httpAuthorizer(auth: Interceptor, what: string): (req: Req) => Promise<ConnectError | undefined> {
  const pass = auth(async () => ({}) as never);
  return async (req) => {
    const header = new Headers();
    const value = req.headers.authorization;
    if (typeof value === "string") header.set("authorization", value);
    try {
      // The interceptor reads the service and method names and the headers only.
      await pass({ service: { typeName: "vmm.http" }, method: { name: what }, header } as unknown as UnaryRequest);
      return undefined;
    } catch (e) {
      return ConnectError.from(e);
    }
  };
}

/** GET/HEAD /metrics: authorize, render, answer. */
export function metricsHandler(render: () => Promise<string>, contentType: string, authorize: (req: Req) => Promise<ConnectError | undefined>): NodeHandler {
  return (req, res) => {
    const r = res as ServerResponse;
    const text = (status: number, body: string, extra: Record<string, string> = {}) => {
      r.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...extra });
      r.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return text(405, "method not allowed\n", { allow: "GET, HEAD" });
    void (async () => {
      const refused = await authorize(req);
      if (refused) {
        const status = refused.code === Code.PermissionDenied ? 403 : 401;
        return text(status, `${refused.rawMessage}\n`, status === 401 ? { "www-authenticate": 'Bearer realm="vmmd"' } : {});
      }
      const body = await render();
      r.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
      if (req.method === "HEAD") r.end();
      else r.end(body);
    })().catch((e: unknown) => {
      log("error", "rendering /metrics failed", { error: String(e) });
      if (!r.headersSent) text(500, "rendering metrics failed\n");
      else r.destroy();
    });
  };
}

/**
 * Plain-HTTP handlers served beside the RPCs on the API listeners; an absent one leaves its path to
 * the RPC handler.
 */
export interface ExtraRoutes {
  metrics?: NodeHandler;
  ui?: NodeHandler;
}

/** Dispatches /metrics and /ui to their handlers, the rest to `rpc`. */
export function withExtraRoutes(rpc: NodeHandler, extra: ExtraRoutes): NodeHandler {
  return (req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0]!;
    if (path === "/metrics" && extra.metrics) return extra.metrics(req, res);
    if ((path === "/ui" || path.startsWith("/ui/")) && extra.ui) return extra.ui(req, res);
    if (path === "/" && extra.ui && (req.method === "GET" || req.method === "HEAD")) {
      (res as ServerResponse).writeHead(308, { location: "/ui/", "content-type": "text/plain; charset=utf-8" });
      return res.end("see /ui/\n");
    }
    // A Connect GET (the reads) is an answer about this moment: no cache
    // of a browser or proxy may keep it.
    if (req.method === "GET") res.setHeader("cache-control", "no-store");
    return rpc(req, res);
  };
}

// The host a request names (HTTP/1.1 `Host`, HTTP/2 `:authority`), without
// its port and brackets, lower-cased; undefined when it names none.
function requestHost(req: Req): string | undefined {
  const raw = req.headers[":authority"] ?? req.headers.host;
  if (typeof raw !== "string" || raw === "") return undefined;
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(raw);
  if (bracketed) return bracketed[1]!.toLowerCase();
  const colon = raw.lastIndexOf(":");
  return (colon >= 0 && raw.indexOf(":") === colon ? raw.slice(0, colon) : raw).toLowerCase();
}

/**
 * DNS rebinding guard for a TCP listener without tokens: a web page the
 * host's user opens can make the browser call a loopback listener under a
 * name of the page's own (rebound to 127.0.0.1), same-origin, and read the
 * answers. Names are refused (HTTP 421, nothing runs): only an IP address
 * or `localhost` may name the listener. Requests on the unix socket (no
 * browser reaches it) and requests that name no host pass.
 */
export function rebindingGuard(next: NodeHandler): NodeHandler {
  return (req, res) => {
    const host = requestHost(req);
    if (req.socket.remoteAddress === undefined || host === undefined || host === "localhost" || isIP(host) !== 0) return next(req, res);
    const r = res as ServerResponse;
    let answered = false;
    let discarded = 0;
    const answer = () => {
      if (answered) return;
      answered = true;
      // HTTP/1.1: the connection goes too (HTTP/2 has no such header).
      r.writeHead(421, { "content-type": "text/plain; charset=utf-8", ...(req.httpVersionMajor === 1 ? { connection: "close" } : {}) });
      r.end(`host: ${JSON.stringify(host.slice(0, 100))} is not an address of this listener; without auth.tokens only an IP address or localhost may name it\n`);
    };
    // The answer waits for the request body (read and dropped, at most
    // 64 KiB; the connection's body deadline bounds the wait): an HTTP/2
    // stream answered while its client still sends is reset, and clients
    // such as curl then report the reset instead of the answer.
    req.on("data", (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > 64 * 1024) answer();
    });
    req.once("end", answer);
    req.once("error", () => undefined);
  };
}

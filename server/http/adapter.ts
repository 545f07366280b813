// The Node request handler for all Connect routes: connect-node's adapter,
// plus one correction. connect-es reports a request body that fails to parse
// as protobuf binary ("parse binary: premature EOF") as `internal` (HTTP
// 500), blaming the server for the client's bytes; JSON bodies that fail to
// parse are `invalid_argument`. We answer both as `invalid_argument`, for the
// Connect protocol (JSON error body), gRPC (grpc-status header/trailer) and
// gRPC-Web (the trailer frame at the end of the body).
import { createConnectRouter, type ConnectRouter, type ConnectRouterOptions } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse, compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { log } from "../log.js";

const PARSE = /^parse binary:/;

function fixGrpc(h: Headers | undefined): void {
  if (h?.get("grpc-status") === "13" && PARSE.test(decodeURIComponent(h.get("grpc-message") ?? ""))) h.set("grpc-status", "3");
}

/** A gRPC-Web trailer frame's block with a binary-parse `internal` status turned into `invalid_argument`. */
export function fixGrpcWebTrailer(block: string): string {
  const lines = block.split("\r\n");
  const get = (k: string) => lines.find((l) => l.toLowerCase().startsWith(`${k}:`))?.slice(k.length + 1).trim();
  if (get("grpc-status") !== "13" || !PARSE.test(decodeURIComponent(get("grpc-message") ?? ""))) return block;
  return lines.map((l) => (l.toLowerCase().startsWith("grpc-status:") ? "grpc-status: 3" : l)).join("\r\n");
}

const TRAILER_FLAG = 0x80;

/**
 * Re-frames a gRPC-Web body: data frames pass through unchanged, the
 * trailer frame (flag 0x80) goes through fixGrpcWebTrailer.
 */
export async function* fixGrpcWebBody(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let buf = Buffer.alloc(0);
  for await (const chunk of body) {
    buf = buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([buf, chunk]);
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) break;
      const flags = buf[0]!;
      if (flags & TRAILER_FLAG) {
        const text = Buffer.from(fixGrpcWebTrailer(buf.subarray(5, 5 + len).toString("latin1")), "latin1");
        const head = Buffer.alloc(5);
        head[0] = flags;
        head.writeUInt32BE(text.length, 1);
        yield Buffer.concat([head, text]);
      } else {
        yield buf.subarray(0, 5 + len);
      }
      buf = buf.subarray(5 + len);
    }
  }
  if (buf.length > 0) yield buf; // a truncated frame: pass it on as it is
}

const isGrpcWeb = (h: Headers | undefined) => h?.get("content-type")?.startsWith("application/grpc-web") === true;

function parseErrorsAreInvalidArgument(h: UniversalHandler): UniversalHandler {
  const wrapped = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const res = await h(req);
    if (res.status === 500 && res.body) {
      // A Connect error body is one small JSON document.
      const chunks: Uint8Array[] = [];
      for await (const c of res.body) chunks.push(c);
      let body = Buffer.concat(chunks);
      let status = res.status;
      try {
        const err = JSON.parse(body.toString("utf8")) as { code?: string; message?: string };
        if (err.code === "internal" && PARSE.test(err.message ?? "")) {
          body = Buffer.from(JSON.stringify({ code: "invalid_argument", message: `request body: ${err.message}` }));
          status = 400;
          res.header?.delete("content-length"); // the body changed
        }
      } catch {
        // not a Connect JSON error body: pass it on unchanged
      }
      return { ...res, status, body: (async function* () { yield body; })() };
    }
    fixGrpc(res.header);
    const inner = res.body;
    if (inner && isGrpcWeb(res.header)) {
      res.header?.delete("content-length"); // the trailer frame may change length
      return { ...res, body: fixGrpcWebBody(inner) };
    }
    if (res.trailer && inner) {
      const trailer = res.trailer;
      return {
        ...res,
        body: (async function* () {
          yield* inner;
          fixGrpc(trailer);
        })(),
      };
    }
    return res;
  };
  return Object.assign(wrapped, {
    method: h.method,
    service: h.service,
    requestPath: h.requestPath,
    protocolNames: h.protocolNames,
    allowedMethods: h.allowedMethods,
    supportedContentType: h.supportedContentType,
  }) satisfies UniversalHandler;
}

export type NodeHandler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

export function createHandler(options: ConnectRouterOptions & { routes: (router: ConnectRouter) => void }): NodeHandler {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  options.routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, parseErrorsAreInvalidArgument(h)]));
  return (req, res) => {
    const h = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (!h) {
      res.writeHead(404);
      res.end();
      return;
    }
    const uReq = universalRequestFromNodeRequest(req as IncomingMessage, res as ServerResponse, undefined, undefined);
    h(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res as ServerResponse))
      .catch((e: unknown) => log("debug", "response aborted", { rpc: `${h.service.typeName}/${h.method.name}`, error: String(e) }));
  };
}

// The Node request handler for all Connect routes: connect-node's adapter,
// plus one correction. connect-es reports a request body that fails to parse
// as protobuf binary ("parse binary: premature EOF") as `internal` (HTTP
// 500), blaming the server for the client's bytes; JSON bodies that fail to
// parse are `invalid_argument`. We answer both as `invalid_argument`, for the
// Connect protocol (JSON error body) and gRPC (grpc-status header/trailer).
// gRPC-Web encodes its status inside the body and keeps upstream's code.
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

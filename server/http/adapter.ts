// The Node request handler for all Connect routes: connect-node's adapter
// over a connect-es router, nothing more. Responses are never rewritten:
// status codes are connect-es's, which follow the protocols' own tables --
// e.g. a request body that fails to parse as protobuf is `internal`, as
// gRPC's status-code table lists it ("Error parsing request proto"), while a
// JSON body that fails to parse is `invalid_argument` (docs/api.md).
import { createConnectRouter, type ConnectRouter, type ConnectRouterOptions } from "@connectrpc/connect";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse, compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { log } from "../log.js";

/** A Node `request` listener for HTTP/1.1 and HTTP/2 servers. */
export type NodeHandler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

/** Routes every registered RPC by its path; anything else is HTTP 404. */
export function createHandler(options: ConnectRouterOptions & { routes: (router: ConnectRouter) => void }): NodeHandler {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  options.routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));
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

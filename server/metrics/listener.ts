// The optional metrics-only listener (vmm.toml metrics.listen): GET
// /metrics and nothing else, behind the same front and connection policy
// as the API listeners (server/http/listener.ts: header and body
// deadlines, idle timeout, connection cap, each close logged).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ConnectionLimits } from "../http/connection-policy.js";
import { ApiServer } from "../http/listener.js";
import { VmmError } from "../errors.js";

/** A started metrics listener. */
export interface MetricsListener {
  /** "host:port" actually bound. */
  readonly address: string;
  close(): Promise<void>;
}

/** Listens on host:port, serving `handler` at /metrics and 404 elsewhere. */
export async function listenMetrics(host: string, port: number, handler: (req: IncomingMessage, res: ServerResponse) => void, limits: ConnectionLimits): Promise<MetricsListener> {
  const server = new ApiServer((req, res) => {
    if ((req.url ?? "").split("?", 1)[0] === "/metrics") return handler(req as IncomingMessage, res as ServerResponse);
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("only /metrics is served here\n");
  }, limits);
  let bound: number;
  try {
    bound = await server.listenTcp(host, port);
  } catch (e) {
    await server.close(0);
    throw e instanceof VmmError ? new VmmError(e.kind, `${e.message} (metrics.listen)`, { cause: e }) : e;
  }
  return {
    address: host.includes(":") ? `[${host}]:${bound}` : `${host}:${bound}`,
    close: () => server.close(0),
  };
}

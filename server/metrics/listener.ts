// The optional metrics-only listener (vmm.toml metrics.listen): plain
// HTTP/1.1, GET /metrics and nothing else.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { hostError } from "../errors.js";

/** A started metrics listener. */
export interface MetricsListener {
  /** "host:port" actually bound. */
  readonly address: string;
  close(): Promise<void>;
}

/** Listens on host:port, serving `handler` at /metrics and 404 elsewhere. */
export function listenMetrics(host: string, port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<MetricsListener> {
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    if ((req.url ?? "").split("?", 1)[0] === "/metrics") return handler(req, res);
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("only /metrics is served here\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", (e) => reject(hostError(`listen on ${host}:${port} (metrics.listen)`, e, "unavailable")));
    server.listen({ host, port }, () => {
      const a = server.address();
      const bound = typeof a === "object" && a ? a.port : port;
      resolve({
        address: host.includes(":") ? `[${host}]:${bound}` : `${host}:${bound}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

// The daemon's plain-HTTP side, wired in one place: the API-call metrics
// interceptor, /metrics on the API listeners, and the optional metrics-only
// listener (metrics.listen).
import type { Interceptor } from "@connectrpc/connect";
import type { Config } from "../config/types.js";
import { parseHostPort } from "../net/addr.js";
import { metricsInterceptor } from "../metrics/api.js";
import { listenMetrics, type MetricsListener } from "../metrics/listener.js";
import { Metrics, type MetricsSources } from "../metrics/metrics.js";
import { httpAuthorizer, metricsHandler, withExtraRoutes } from "./routes.js";
import type { NodeHandler } from "./adapter.js";

export class Site {
  readonly metrics: Metrics;
  /** Counts API calls; goes first in the interceptor list (outside auth). */
  readonly interceptor: Interceptor;
  private readonly scrape: NodeHandler;
  private listener: MetricsListener | undefined;

  constructor(
    private readonly cfg: Config,
    sources: MetricsSources,
    /** The RPC auth interceptor: /metrics takes the same tokens. */
    auth: Interceptor,
  ) {
    this.metrics = new Metrics(sources);
    this.interceptor = metricsInterceptor(this.metrics);
    this.scrape = metricsHandler(() => this.metrics.render(), this.metrics.contentType, httpAuthorizer(auth, "Metrics"));
  }

  /** The API listeners' handler: /metrics and the RPC routes. */
  wrap(rpc: NodeHandler): NodeHandler {
    return withExtraRoutes(rpc, { metrics: this.scrape });
  }

  /** Starts the metrics-only listener if configured; resolves with its "host:port" or "". */
  async listen(): Promise<string> {
    if (this.cfg.metrics.listen === "") return "";
    const hp = parseHostPort(this.cfg.metrics.listen)!;
    this.listener = await listenMetrics(hp.host, hp.port, this.scrape);
    return this.listener.address;
  }

  async close(): Promise<void> {
    await this.listener?.close();
    this.listener = undefined;
  }
}

// The daemon's plain-HTTP side, wired in one place: the API-call metrics
// interceptor, /metrics and the web console (/ui/) on the API listeners,
// and the optional metrics-only listener (metrics.listen).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Interceptor } from "@connectrpc/connect";
import type { Config } from "../config/types.js";
import { log } from "../log.js";
import { parseHostPort } from "../net/addr.js";
import { metricsInterceptor } from "../metrics/api.js";
import { listenMetrics, type MetricsListener } from "../metrics/listener.js";
import { connectionLimits } from "./connection-policy.js";
import { Metrics, type MetricsSources } from "../metrics/metrics.js";
import { httpAuthorizer, metricsHandler, rebindingGuard, withExtraRoutes } from "./routes.js";
import { defaultUiDir, uiHandler } from "./static.js";
import type { NodeHandler } from "./adapter.js";

/**
 * The plain-HTTP side of the daemon: the metrics registry and its API interceptor, the /metrics and
 * /ui handlers around the RPC handler, and the metrics-only listener.
 */
export class Site {
  readonly metrics: Metrics;
  /** Counts API calls; goes first in the interceptor list (outside auth). */
  readonly interceptor: Interceptor;
  private readonly scrape: NodeHandler;
  private readonly ui: NodeHandler | undefined;
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
    if (cfg.ui.enabled) {
      const dir = defaultUiDir(dirname(fileURLToPath(import.meta.url)));
      if (!existsSync(join(dir, "index.html"))) log("warn", "web console not built; /ui/ answers 404 (scripts/build-web.sh builds it)", { dir });
      this.ui = uiHandler(dir);
    }
  }

  /** The API listeners' handler: /metrics, /ui/ and the RPC routes. */
  wrap(rpc: NodeHandler): NodeHandler {
    const all = withExtraRoutes(rpc, { metrics: this.scrape, ...(this.ui ? { ui: this.ui } : {}) });
    return this.open ? rebindingGuard(all) : all;
  }

  /** Without tokens, TCP requests must name the listener by address (rebindingGuard). */
  private get open(): boolean {
    return this.cfg.auth.tokens.length === 0;
  }

  /** Starts the metrics-only listener if configured; resolves with its "host:port" or "". */
  async listen(): Promise<string> {
    if (this.cfg.metrics.listen === "") return "";
    const hp = parseHostPort(this.cfg.metrics.listen)!;
    this.listener = await listenMetrics(hp.host, hp.port, this.open ? rebindingGuard(this.scrape) : this.scrape, connectionLimits(this.cfg.api));
    return this.listener.address;
  }

  async close(): Promise<void> {
    await this.listener?.close();
    this.listener = undefined;
  }
}

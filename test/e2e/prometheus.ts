// A real Prometheus (Debian's package, scripts/setup-web.sh) started by a
// test inside the private namespace: scrapes the given targets every
// second with a bearer token; stopped by PID.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, waitFor } from "../helpers/net.js";

export const PROMETHEUS = "/usr/bin/prometheus";
export const PROMTOOL = "/usr/bin/promtool";

export interface PromTarget {
  job: string;
  /** "host:port" */
  target: string;
  token: string;
}

export interface Prometheus {
  url: string;
  /** Instant query; the result vector. */
  query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  log(): string;
  stop(): Promise<void>;
}

export async function startPrometheus(dir: string, targets: PromTarget[]): Promise<Prometheus> {
  if (!existsSync(PROMETHEUS)) throw new Error(`${PROMETHEUS} missing: run scripts/setup-web.sh (scripts/test.sh does)`);
  mkdirSync(join(dir, "data"), { recursive: true });
  const config = [
    "global:",
    "  scrape_interval: 1s",
    "  scrape_timeout: 1s",
    "scrape_configs:",
    ...targets.flatMap((t) => [
      `  - job_name: ${JSON.stringify(t.job)}`,
      "    authorization:",
      `      credentials: ${JSON.stringify(t.token)}`,
      "    static_configs:",
      `      - targets: [${JSON.stringify(t.target)}]`,
    ]),
  ].join("\n");
  writeFileSync(join(dir, "prometheus.yml"), config + "\n");
  const port = await freePort();
  const logFile = join(dir, "prometheus.log");
  const out = openSync(logFile, "a");
  const proc: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", out, out] },
  );
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;
  const log = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    }
  };
  try {
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`prometheus exited with ${proc.exitCode}:\n${log()}`);
      const r = await fetch(`${url}/-/ready`);
      if (r.status !== 200) throw new Error(`/-/ready: HTTP ${r.status}`);
    }, 30_000, 200);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url,
    log,
    stop,
    async query(q) {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await r.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      if (body.status !== "success") throw new Error(`query ${q}: ${body.error ?? r.status}`);
      return body.data!.result;
    },
  };
}

// Small network helpers for tests: loopback-only HTTP GET, free ports, waits,
// process lookups.
import { request } from "node:http";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { readdirSync, readFileSync } from "node:fs";

/** GET a URL (loopback or an in-namespace address) with a short timeout; resolves the body. */
export function httpGet(url: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: timeout`)));
    req.on("error", reject);
    req.end();
  });
}

/** A port free on `host` right now (TCP by default, or UDP). */
export function freePort(proto: "tcp" | "udp" = "tcp", host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    if (proto === "udp") {
      const u = createSocket(host.includes(":") ? "udp6" : "udp4");
      u.once("error", reject);
      u.bind(0, host, () => {
        const port = u.address().port;
        u.close(() => resolve(port));
      });
      return;
    }
    const s = createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Retries `fn` until it resolves or `timeoutMs` passes (every `everyMs`); rethrows the last error. */
export async function waitFor<T>(fn: () => Promise<T>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
  throw new Error(`gave up after ${timeoutMs} ms: ${String((last as Error)?.message ?? last)}`);
}

/** True while `pid` runs (a zombie waiting for its parent to reap it counts as gone). */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** PIDs of running processes whose command line contains `needle`. */
export function processesMatching(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(needle) && processRunning(Number(name))) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

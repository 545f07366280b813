// Load generators of the forwarder benchmark: iperf3 (bulk), wrk (HTTP
// request/response, with and without a new connection per request), the C
// UDP round-trip client, idle connections and the churn of the fd audit.
// Each is bounded in time (SECS) or count.
import { createConnection, type Socket } from "node:net";
import { run, SECS } from "./procs.js";

/** iperf3 client: Gbit/s received and bytes moved. `prefix`: e.g. ip netns exec. */
export function iperf(host: string, port: number, streams: number, prefix: string[] = []): { gbps: number; bytes: number } {
  const out = run([...prefix, "iperf3", "-c", host, "-p", String(port), "-t", String(SECS), "-P", String(streams), "-J"]);
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
  return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_received.bytes };
}

const toUs = (v: string, unit: string) => Number(v) * (unit === "us" ? 1 : unit === "ms" ? 1000 : 1e6);

/**
 * wrk against an nginx returning 3 bytes: requests/s and latency
 * percentiles (µs). `close`: "Connection: close", so every request is a new
 * forwarded connection that the backend closes after its answer. `prefix`:
 * e.g. taskset.
 */
export function wrk(host: string, port: number, conns: number, close: boolean, prefix: string[] = []): { rps: number; requests: number; p50: number; p99: number; errors: string } {
  const argv = [...prefix, "wrk", "-t1", `-c${conns}`, `-d${SECS}s`, "--latency"];
  if (close) argv.push("-H", "Connection: close");
  argv.push(`http://${host}:${port}/`);
  const out = run(argv);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const pct = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? toUs(m[1]!, m[2]!) : NaN;
  };
  const errs = /Non-2xx or 3xx responses: (\d+)|Socket errors: .*/.exec(out);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  return { rps, requests, p50: pct("50"), p99: pct("99"), errors: errs ? errs[0] : "" };
}

/** UDP round trips/s with 16 requests in flight; `lost`: requests resent after 200 ms. */
export function udpRr(bin: string, host: string, port: number): { rate: number; lost: number } {
  const [rate, lost] = run([bin, "client", host, String(port), String(SECS), "16"]).trim().split(" ");
  return { rate: Number(rate), lost: Number(lost) };
}

/** Opens `n` connections (64 at a time, stopping after a batch of which none connected) and keeps them; resolves with the sockets. */
export async function openIdle(host: string, port: number, n: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const s = createConnection({ host, port });
      const t = setTimeout(() => {
        s.destroy();
        resolve();
      }, 10_000);
      s.on("error", () => {});
      s.once("connect", () => {
        clearTimeout(t);
        socks.push(s);
        resolve();
      });
      s.once("close", () => {
        clearTimeout(t);
        resolve();
      });
    });
  for (let i = 0; i < n; i += 64) {
    const before = socks.length;
    await Promise.all(Array.from({ length: Math.min(64, n - i) }, one));
    // A whole batch refused or timed out: the relay takes no more (a full
    // backlog drops SYNs, and each further batch would wait out 10 s).
    if (socks.length === before) break;
  }
  return socks;
}

/**
 * `n` forwarded connections, 200 at a time: every 4th to a rule whose backend
 * refuses, every 4th reset by the client after one byte, the rest a complete
 * HTTP request with "Connection: close" read to the end.
 */
export async function churn(httpPort: number, refusedPort: number, n: number): Promise<{ ok: number; refused: number; reset: number; failed: number }> {
  const out = { ok: 0, refused: 0, reset: 0, failed: 0 };
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const kind = i % 4 === 0 ? "refused" : i % 4 === 1 ? "reset" : "ok";
      const s = createConnection({ host: "127.0.0.1", port: kind === "refused" ? refusedPort : httpPort });
      const t = setTimeout(() => s.destroy(), 10_000);
      let got = "";
      s.on("error", () => {});
      s.on("data", (b: Buffer) => (got += b.toString("latin1")));
      s.once("connect", () => {
        if (kind === "reset") s.write("G", () => s.resetAndDestroy());
        else if (kind === "ok") s.write("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
      });
      s.once("close", () => {
        clearTimeout(t);
        if (kind === "ok" && got.startsWith("HTTP/1.1 200")) out.ok++;
        else if (kind === "refused" && got === "") out.refused++;
        else if (kind === "reset") out.reset++;
        else out.failed++;
        resolve();
      });
    });
  for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, (_, j) => one(i + j)));
  return out;
}

// Test harness: starts a real `vmmd` process (dist/server/main.js, built by
// scripts/test.sh) on a private state directory, waits for its ready line,
// and kills it (by PID) on stop. Also builds clients for every protocol.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { processesMatching } from "./net.js";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";

export const ROOT = resolve(import.meta.dirname, "..", "..");
export const VMMD = join(ROOT, "dist", "server", "main.js");

export interface DaemonHandle {
  proc: ChildProcess;
  pid: number;
  dir: string;
  stateDir: string;
  socket: string;
  /** "127.0.0.1:port" or "" */
  tcp: string;
  stderr: () => string;
  /** SIGKILL, no cleanup (crash simulation). */
  kill9(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** Removes the temp directory (after stop). */
  cleanup(): void;
}

export interface StartOptions {
  /** vmm.toml body; `state_dir` and `[api]` are filled in unless given. */
  toml?: string;
  tcp?: boolean;
  /** Reuse a state directory (restart tests). */
  dir?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Another build's main.js to run instead of dist/server/main.js. */
  vmmd?: string;
}

export async function startDaemon(opts: StartOptions = {}): Promise<DaemonHandle> {
  const vmmd = opts.vmmd ?? VMMD;
  if (!existsSync(vmmd)) throw new Error(`${vmmd} missing: run \`npm run build\` (scripts/test.sh does)`);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "vmmd-test-"));
  // Traversable by others, as a real state directory's parent is: passt
  // runs as nobody and must reach its socket below the state directory.
  chmodSync(dir, 0o711);
  const stateDir = join(dir, "state");
  const socket = join(dir, "vmmd.sock");
  let toml = opts.toml ?? "";
  if (!/^state_dir\s*=/m.test(toml)) toml = `state_dir = ${JSON.stringify(stateDir)}\n` + toml;
  if (!/^\[api\]/m.test(toml)) toml += `\n[api]\nsocket = ${JSON.stringify(socket)}\ntcp = ${JSON.stringify(opts.tcp === false ? "" : "127.0.0.1:0")}\n`;
  const cfgPath = join(dir, "vmm.toml");
  writeFileSync(cfgPath, toml);
  const proc = spawn(process.execPath, [vmmd, "--config", cfgPath], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...opts.env },
  });
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const ready = await new Promise<{ socket: string; tcp: string }>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`vmmd not ready after ${opts.timeoutMs ?? 20000} ms; stderr:\n${err}`)), opts.timeoutMs ?? 20000);
    const rl = createInterface({ input: proc.stdout! });
    rl.once("line", (line) => {
      clearTimeout(timer);
      try {
        resolveReady(JSON.parse(line));
      } catch {
        reject(new Error(`unexpected first stdout line from vmmd: ${line}`));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`vmmd exited with ${code} before ready; stderr:\n${err}`));
    });
  });
  const h: DaemonHandle = {
    proc,
    pid: proc.pid!,
    dir,
    stateDir,
    socket: ready.socket,
    tcp: ready.tcp,
    stderr: () => err,
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(t);
      }
    },
    cleanup() {
      // Anything still running from this daemon's directory (guests,
      // dnsmasq of networks, passt) was started by this test: end it by PID.
      for (const pid of processesMatching(dir)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export type Protocol = "connect" | "grpc" | "grpcweb";
export type Via = "tcp" | "unix";

export function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** A transport for `d` over `via` with `protocol`; HTTP/2 for gRPC, HTTP/1.1 otherwise unless `http2`. */
export function transport(d: DaemonHandle, protocol: Protocol, via: Via, opts: { token?: string; http2?: boolean } = {}): Transport {
  const httpVersion = protocol === "grpc" || opts.http2 ? "2" : "1.1";
  const baseUrl = via === "tcp" ? `http://${d.tcp}` : "http://localhost";
  const nodeOptions = via === "unix" ? { socketPath: d.socket } : {};
  const interceptors = opts.token ? [bearer(opts.token)] : [];
  if (via === "unix" && httpVersion === "2") {
    // HTTP/2 over a unix socket: connect-node's session manager takes a
    // createConnection override through nodeOptions.
    const h2opts = { createConnection: () => (netConnect(d.socket)) } as unknown as Record<string, unknown>;
    if (protocol === "grpc") return createGrpcTransport({ baseUrl, interceptors, nodeOptions: h2opts });
    if (protocol === "grpcweb") return createGrpcWebTransport({ baseUrl, httpVersion: "2", interceptors, nodeOptions: h2opts });
    return createConnectTransport({ baseUrl, httpVersion: "2", interceptors, nodeOptions: h2opts });
  }
  if (protocol === "grpc") return createGrpcTransport({ baseUrl, interceptors });
  if (protocol === "grpcweb") return createGrpcWebTransport({ baseUrl, httpVersion, interceptors, nodeOptions } as Parameters<typeof createGrpcWebTransport>[0]);
  return createConnectTransport({ baseUrl, httpVersion, interceptors, nodeOptions } as Parameters<typeof createConnectTransport>[0]);
}

import { connect as netConnectRaw } from "node:net";
function netConnect(path: string) {
  return netConnectRaw(path);
}

export function client<T extends DescService>(svc: T, t: Transport): Client<T> {
  return createClient(svc, t);
}

// Where and how vmm-cli reaches the daemon. resolveEndpoint and
// resolveToken are pure (flags + environment in, decision out) so their
// precedence is unit-tested; createTransport builds the Connect transport.
//
// Precedence, highest first:
//   endpoint: --url, --socket, VMM_URL, VMM_SOCKET,
//             $VMM_STATE_DIR/vmmd.sock, ./.vmm/vmmd.sock (the daemon's defaults)
//   token:    --token, --token-file, VMM_TOKEN; none means no header
import { join, resolve } from "node:path";
import { connect as netConnect } from "node:net";
import { readFileSync } from "node:fs";
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { UsageError } from "./errors.js";

export type Endpoint = { kind: "socket"; path: string } | { kind: "url"; url: string };

export interface ConnectionFlags {
  socket?: string;
  url?: string;
  token?: string;
  tokenFile?: string;
}

export function resolveEndpoint(f: ConnectionFlags, env: NodeJS.ProcessEnv, cwd: string): Endpoint {
  if (f.url !== undefined && f.socket !== undefined) throw new UsageError("--url and --socket are mutually exclusive");
  if (f.url !== undefined) return { kind: "url", url: checkUrl("--url", f.url) };
  if (f.socket !== undefined) return { kind: "socket", path: checkSocket("--socket", f.socket, cwd) };
  if (env.VMM_URL !== undefined && env.VMM_URL !== "") return { kind: "url", url: checkUrl("VMM_URL", env.VMM_URL) };
  if (env.VMM_SOCKET !== undefined && env.VMM_SOCKET !== "") return { kind: "socket", path: checkSocket("VMM_SOCKET", env.VMM_SOCKET, cwd) };
  const stateDir = env.VMM_STATE_DIR !== undefined && env.VMM_STATE_DIR !== "" ? env.VMM_STATE_DIR : join(cwd, ".vmm");
  return { kind: "socket", path: resolve(cwd, stateDir, "vmmd.sock") };
}

function checkUrl(source: string, v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new UsageError(`${source} ${JSON.stringify(v)}: not a URL (expected e.g. http://127.0.0.1:8080)`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new UsageError(`${source} ${JSON.stringify(v)}: scheme must be http or https`);
  return v.replace(/\/+$/, "");
}

function checkSocket(source: string, v: string, cwd: string): string {
  if (v === "") throw new UsageError(`${source}: empty socket path`);
  return resolve(cwd, v);
}

/** Token characters the daemon accepts (RFC 6750 b64token is stricter; the daemon takes visible ASCII). */
const TOKEN_RE = /^[\x21-\x7e]+$/;

export function resolveToken(f: ConnectionFlags, env: NodeJS.ProcessEnv, readFile: (p: string) => string = (p) => readFileSync(p, "utf8")): string | undefined {
  if (f.token !== undefined && f.tokenFile !== undefined) throw new UsageError("--token and --token-file are mutually exclusive");
  let token: string | undefined;
  let source: string;
  if (f.token !== undefined) {
    token = f.token;
    source = "--token";
  } else if (f.tokenFile !== undefined) {
    source = `--token-file ${JSON.stringify(f.tokenFile)}`;
    try {
      // One token, optionally followed by a newline (as `echo tok > file` writes it).
      token = readFile(f.tokenFile).replace(/\r?\n$/, "");
    } catch (e) {
      throw new UsageError(`${source}: ${(e as Error).message}`);
    }
  } else {
    token = env.VMM_TOKEN === "" ? undefined : env.VMM_TOKEN;
    source = "VMM_TOKEN";
  }
  // A newline or space in a header value would be rejected by Node (or worse,
  // split the header); say so in terms of where the token came from.
  if (token !== undefined && !TOKEN_RE.test(token)) throw new UsageError(`${source}: the token must be non-empty visible ASCII without spaces`);
  return token;
}

export function describeEndpoint(e: Endpoint): string {
  return e.kind === "url" ? e.url : `unix:${e.path}`;
}

/**
 * Connect protocol to a unix socket or a URL: HTTP/1.1, or HTTP/2 (h2c)
 * with `http2`, which bidirectional streams need.
 */
export function createTransport(e: Endpoint, token: string | undefined, http2 = false): Transport {
  const interceptors: Interceptor[] = [];
  if (token !== undefined) {
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    });
  }
  if (http2) {
    // connect-node's HTTP/2 session manager passes nodeOptions to
    // http2.connect, whose createConnection reaches a unix socket.
    const nodeOptions = e.kind === "socket" ? ({ createConnection: () => netConnect(e.path) } as Record<string, unknown>) : {};
    return createConnectTransport({ baseUrl: e.kind === "url" ? e.url : "http://localhost", httpVersion: "2", interceptors, nodeOptions });
  }
  if (e.kind === "url") return createConnectTransport({ baseUrl: e.url, httpVersion: "1.1", interceptors });
  // The host name is ignored over a unix socket; it only fills the Host header.
  return createConnectTransport({ baseUrl: "http://localhost", httpVersion: "1.1", interceptors, nodeOptions: { socketPath: e.path } });
}

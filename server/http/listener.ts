// One listener, two HTTP versions. Node 20's cleartext HTTP/2 server ignores
// `allowHTTP1`, so a small front sniffs the first bytes of each connection:
// the HTTP/2 client preface ("PRI * HTTP/2.0") goes to an http2 server (gRPC,
// Connect and gRPC-Web over h2c), anything else to an HTTP/1.1 server
// (Connect and gRPC-Web, curl). Both serve the same handler. Works for TCP
// and unix sockets alike.
import { createServer as createHttp1, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttp2, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import { connect as netConnect, createServer as createNet, type Server as NetServer, type Socket } from "node:net";
import { chmodSync, lstatSync, statSync, unlinkSync } from "node:fs";
import { hostError, VmmError } from "../errors.js";
import { log } from "../log.js";
import { TrackedConnection, type ConnectionLimits } from "./connection-policy.js";

type Handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Shields the daemon from requests the Connect adapter cannot take: it
 * builds a URL from the Host/:authority header outside any try, so a header
 * like "a%2Fb" (grpcio sends the percent-encoded socket path over unix
 * sockets) would throw and end the process. Such an authority is replaced
 * by "localhost" (routing uses only the path), and anything the handler
 * throws synchronously becomes a 400 instead of a crash.
 */
function guard(handler: Handler): Handler {
  return (req, res) => {
    const h = req.headers as Record<string, string | string[] | undefined>;
    const key = h[":authority"] !== undefined ? ":authority" : "host";
    const authority = h[key];
    if (typeof authority !== "string" || !URL.canParse(`http://${authority}`)) {
      if ("authority" in req && req.stream) {
        // HTTP/2 pseudo-headers are read-only on the compat request: patch the header object.
        (req.headers as Record<string, string>)[":authority"] = "localhost";
      }
      (req.headers as Record<string, string>).host = "localhost";
    }
    try {
      handler(req, res);
    } catch (e) {
      if (!res.headersSent) {
        (res as ServerResponse).writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ code: "invalid_argument", message: `bad request: ${(e as Error).message}` }));
      } else res.destroy(e as Error);
    }
  };
}

/**
 * What a unix socket path holds: nothing, a socket someone answers on, a
 * socket nobody answers on (left by a process that died), or something else.
 */
function probeUnix(path: string): Promise<"absent" | "live" | "stale" | "other"> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return Promise.resolve("absent");
  }
  if (!isSocket) return Promise.resolve("other");
  return new Promise((resolve) => {
    const c = netConnect(path);
    c.once("connect", () => {
      c.destroy();
      resolve("live");
    });
    c.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED" ? "stale" : e.code === "ENOENT" ? "absent" : "live"));
  });
}

/** Serves one handler over HTTP/1.1 and h2c on any number of TCP and unix listeners. */
export class ApiServer {
  private readonly h1;
  private readonly h2;
  private readonly listeners: NetServer[] = [];
  private readonly sessions = new Set<Http2Session>();
  private readonly conns = new Map<Socket, TrackedConnection>();
  /** Open connections per listener: each has its own api.max_connections. */
  private readonly perListener = new Map<string, number>();
  /** Unix sockets we created, with their inode: we unlink only our own. */
  private unixPaths: { path: string; dev: number; ino: number }[] = [];
  /** The connection being handed to the HTTP/2 server ('session' fires synchronously). */
  private handingOver: TrackedConnection | undefined;
  private closing = false;

  constructor(
    handler: Handler,
    private readonly limits: ConnectionLimits,
  ) {
    const safe = guard(handler);
    // keepAliveTimeout 0: Node's own keep-alive timer stays off; the
    // connection policy closes idle connections (and says why).
    this.h1 = createHttp1({ keepAliveTimeout: 0 }, safe as (req: IncomingMessage, res: ServerResponse) => void);
    this.h2 = createHttp2({}, safe as (req: Http2ServerRequest, res: Http2ServerResponse) => void);
    this.h1.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const conn = this.conns.get(req.socket);
      if (!conn) return;
      conn.onHttp1Request(req, res);
      res.once("close", () => {
        if (this.closing && conn.inFlight === 0) conn.close("daemon shutting down");
      });
    });
    this.h2.on("session", (s: Http2Session) => {
      this.sessions.add(s);
      s.once("close", () => this.sessions.delete(s));
      this.handingOver?.startHttp2(s);
    });
  }

  private route(sock: Socket, listener: string): void {
    // Each listener has its own cap: clients of the TCP listener cannot
    // hold every connection and lock out the unix socket's users.
    const open = this.perListener.get(listener) ?? 0;
    if (this.closing || open >= this.limits.maxConnections) {
      log("debug", "connection refused", { listener, reason: this.closing ? "daemon shutting down" : `api.max_connections (${this.limits.maxConnections}) reached on this listener` });
      sock.destroy();
      return;
    }
    const conn = new TrackedConnection(sock, this.limits, listener);
    this.conns.set(sock, conn);
    this.perListener.set(listener, open + 1);
    sock.once("close", () => {
      this.conns.delete(sock);
      const left = (this.perListener.get(listener) ?? 1) - 1;
      if (left > 0) this.perListener.set(listener, left);
      else this.perListener.delete(listener);
    });
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, PREFACE.length);
      const isH2 = buf.subarray(0, n).equals(PREFACE.subarray(0, n));
      // Undecided while the bytes so far are a prefix of the preface (but
      // 3 bytes settle it: no HTTP/1.1 method starts with "PRI").
      if (isH2 && n < 3) return;
      sock.off("data", onData);
      sock.off("error", onError);
      sock.pause();
      sock.unshift(buf);
      if (isH2) {
        // The http2 session reads the unshifted bytes itself (on the next
        // tick, via socket.read()); resuming here would emit them as 'data'
        // events nobody consumes.
        this.handingOver = conn;
        try {
          this.h2.emit("connection", sock);
        } finally {
          this.handingOver = undefined;
        }
      } else {
        this.h1.emit("connection", sock);
        conn.startHttp1();
        sock.resume();
      }
    };
    // Until the protocol is known, an error ends the connection here; after
    // that the HTTP server handles the socket's errors.
    const onError = () => sock.destroy();
    sock.on("data", onData);
    sock.on("error", onError);
  }

  private listen(server: NetServer, arg: { path: string } | { host: string; port: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      const onErr = (e: Error) => reject(hostError(`listen on ${"path" in arg ? arg.path : `${arg.host}:${arg.port}`}`, e, "unavailable"));
      server.once("error", onErr);
      server.listen(arg, () => {
        server.off("error", onErr);
        resolve();
      });
    });
  }

  /**
   * Listens on a unix socket with the given mode. A socket file already
   * there is removed only when a connect to it is refused (its daemon is
   * gone); one that answers belongs to a live server and is left alone.
   */
  async listenUnix(path: string, mode: number): Promise<void> {
    const state = await probeUnix(path);
    if (state === "other") throw hostError(`listen on ${path}`, new Error("path exists and is not a socket"), "unavailable");
    if (state === "live") throw new VmmError("unavailable", `listen on ${path} failed: another server is answering on this socket`);
    if (state === "stale") unlinkSync(path);
    const server = createNet((s) => this.route(s, path));
    // Create the socket with no access for anyone, then chmod: no window in
    // which other users could connect.
    const old = process.umask(0o777);
    try {
      await this.listen(server, { path });
    } finally {
      process.umask(old);
    }
    chmodSync(path, mode);
    this.listeners.push(server);
    const st = statSync(path);
    this.unixPaths.push({ path, dev: st.dev, ino: st.ino });
  }

  /** Listens on TCP; resolves with the bound port (useful with port 0). */
  async listenTcp(host: string, port: number): Promise<number> {
    const server = createNet((s) => this.route(s, `${host.includes(":") ? `[${host}]` : host}:${port}`));
    await this.listen(server, { host, port });
    this.listeners.push(server);
    const addr = server.address();
    return typeof addr === "object" && addr ? addr.port : port;
  }

  /** Connections open right now (all listeners). */
  get connectionCount(): number {
    return this.conns.size;
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight requests finish (up to
   * `graceMs`), close idle HTTP/1.1 connections and idle HTTP/2 sessions
   * (GOAWAY), then destroy whatever is left.
   */
  async close(graceMs = 5000): Promise<void> {
    this.closing = true;
    const closed = this.listeners.map((l) => new Promise<void>((r) => l.close(() => r())));
    // Idle and undecided connections go now; busy HTTP/1.1 ones when their
    // response ends; HTTP/2 sessions get a GOAWAY.
    for (const c of this.conns.values()) if (c.protocol !== "h2" && c.inFlight === 0) c.close("daemon shutting down");
    for (const s of this.sessions) s.close();
    this.h1.close();
    this.h2.close();
    const deadline = Date.now() + graceMs;
    while (this.conns.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const c of this.conns.values()) c.close("shutdown grace period over");
    await Promise.all(closed);
    for (const u of this.unixPaths) {
      // Unlink only the socket we created: if the file was replaced (by
      // another server) it is not ours to remove.
      try {
        const st = statSync(u.path);
        if (st.dev === u.dev && st.ino === u.ino) unlinkSync(u.path);
      } catch {
        // already gone
      }
    }
  }
}

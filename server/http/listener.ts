// One listener, two HTTP versions. Node 20's cleartext HTTP/2 server ignores
// `allowHTTP1`, so a small front sniffs the first bytes of each connection:
// the HTTP/2 client preface ("PRI * HTTP/2.0") goes to an http2 server (gRPC,
// Connect and gRPC-Web over h2c), anything else to an HTTP/1.1 server
// (Connect and gRPC-Web, curl). Both serve the same handler. Works for TCP
// and unix sockets alike.
import { createServer as createHttp1, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttp2, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import { createServer as createNet, type Server as NetServer, type Socket } from "node:net";
import { chmodSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import { hostError } from "../errors.js";

type Handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How long a connection may stay silent before its first bytes. */
const SNIFF_TIMEOUT_MS = 10_000;

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
      if ("authority" in req && (req as Http2ServerRequest).stream) {
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

export class ApiServer {
  private readonly h1;
  private readonly h2;
  private readonly listeners: NetServer[] = [];
  private readonly sessions = new Set<Http2Session>();
  private readonly sockets = new Set<Socket>();
  private unixPaths: string[] = [];
  private readonly h1Active = new Map<Socket, number>();
  private readonly h1Sockets = new Set<Socket>();
  private closing = false;

  constructor(handler: Handler) {
    const safe = guard(handler);
    this.h1 = createHttp1({ keepAliveTimeout: 65_000 }, safe as (req: IncomingMessage, res: ServerResponse) => void);
    this.h2 = createHttp2({}, safe as (req: Http2ServerRequest, res: Http2ServerResponse) => void);
    // Requests in flight per HTTP/1.1 connection: the h1 server never
    // listens itself, so its own idle-connection tracking (and
    // closeIdleConnections) does not see our sockets.
    this.h1.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const sock = req.socket;
      this.h1Active.set(sock, (this.h1Active.get(sock) ?? 0) + 1);
      res.once("close", () => {
        const n = (this.h1Active.get(sock) ?? 1) - 1;
        this.h1Active.set(sock, n);
        if (n === 0 && this.closing) sock.destroy();
      });
    });
    this.h2.on("session", (s: Http2Session) => {
      this.sessions.add(s);
      s.once("close", () => this.sessions.delete(s));
    });
  }

  private route(sock: Socket): void {
    this.sockets.add(sock);
    sock.once("close", () => this.sockets.delete(sock));
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => sock.destroy(), SNIFF_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, PREFACE.length);
      const isH2 = buf.subarray(0, n).equals(PREFACE.subarray(0, n));
      // Undecided while the bytes so far are a prefix of the preface (but
      // 3 bytes settle it: no HTTP/1.1 method starts with "PRI").
      if (isH2 && n < 3) return;
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("error", onError);
      sock.pause();
      sock.unshift(buf);
      if (isH2) {
        // The http2 session reads the unshifted bytes itself (on the next
        // tick, via socket.read()); resuming here would emit them as 'data'
        // events nobody consumes.
        this.h2.emit("connection", sock);
      } else {
        this.h1Sockets.add(sock);
        sock.once("close", () => {
          this.h1Sockets.delete(sock);
          this.h1Active.delete(sock);
        });
        this.h1.emit("connection", sock);
        sock.resume();
      }
    };
    const onError = () => {
      clearTimeout(timer);
      sock.destroy();
    };
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

  /** Listens on a unix socket with the given mode, replacing a stale socket file. */
  async listenUnix(path: string, mode: number): Promise<void> {
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket()) throw hostError(`listen on ${path}`, new Error("path exists and is not a socket"), "unavailable");
      unlinkSync(path);
    }
    const server = createNet((s) => this.route(s));
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
    this.unixPaths.push(path);
  }

  /** Listens on TCP; resolves with the bound port (useful with port 0). */
  async listenTcp(host: string, port: number): Promise<number> {
    const server = createNet((s) => this.route(s));
    await this.listen(server, { host, port });
    this.listeners.push(server);
    const addr = server.address();
    return typeof addr === "object" && addr ? addr.port : port;
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight requests finish (up to
   * `graceMs`), close idle HTTP/1.1 connections and idle HTTP/2 sessions
   * (GOAWAY), then destroy whatever is left.
   */
  async close(graceMs = 5000): Promise<void> {
    this.closing = true;
    const closed = this.listeners.map((l) => new Promise<void>((r) => l.close(() => r())));
    // Idle keep-alive connections go now; busy ones when their response ends.
    for (const sock of this.h1Sockets) if ((this.h1Active.get(sock) ?? 0) === 0) sock.destroy();
    for (const s of this.sessions) s.close();
    this.h1.close();
    this.h2.close();
    const deadline = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const s of this.sockets) s.destroy();
    await Promise.all(closed);
    for (const p of this.unixPaths) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
  }
}

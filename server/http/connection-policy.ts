// What a connection to the API may cost: the deadlines and the cap that
// every listener applies, so that nobody -- no token needed -- can hold the
// daemon's sockets, memory or fds by connecting and then sending slowly or
// not at all (slowloris). The sniffing front (listener.ts) hands each
// connection to an HTTP server that never listen()s itself, so Node's own
// header and request timeouts never run; this module is their replacement,
// for HTTP/1.1 and HTTP/2 alike:
//
//   head  from accept (or from the first byte after an idle pause) until a
//         request's headers are complete -- for HTTP/2 until the client's
//         SETTINGS frame -- at most `headerTimeoutMs`, however the bytes trickle;
//   body  while a request body is incomplete, at most `bodyTimeoutMs`
//         without a byte (a body must progress; its total time is free),
//         except on an HTTP/2 stream the server is answering: a
//         bidirectional call its handler accepted (AttachConsole);
//   busy  request read, response in progress: no deadline (WatchEvents and
//         other streams may stay silent for long);
//   idle  nothing in flight: an HTTP/1.1 keep-alive connection, or an
//         HTTP/2 session with no open stream, is closed after `idleTimeoutMs`.
//
// Every close is logged at debug level with its reason.
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { ApiConfig } from "../config/types.js";
import { log } from "../log.js";

/** Deadlines and the cap of open connections (vmm.toml [api]). */
export interface ConnectionLimits {
  /** Open connections per listener; more are closed at accept. */
  maxConnections: number;
  /** Request headers (HTTP/2: the client's SETTINGS) must be complete within this. */
  headerTimeoutMs: number;
  /** An incomplete request body may go this long without a byte. */
  bodyTimeoutMs: number;
  /** A connection with nothing in flight is closed after this. */
  idleTimeoutMs: number;
}

/** The limits of vmm.toml [api], which every listener applies. */
export function connectionLimits(api: ApiConfig): ConnectionLimits {
  return {
    maxConnections: api.maxConnections,
    headerTimeoutMs: api.headerTimeoutSeconds * 1000,
    bodyTimeoutMs: api.bodyTimeoutSeconds * 1000,
    idleTimeoutMs: api.idleTimeoutSeconds * 1000,
  };
}

type Phase = "head" | "body" | "busy" | "idle";

/** One accepted connection, its phase and the deadline that applies to it now. */
export class TrackedConnection {
  private phase: Phase = "head";
  private timer: NodeJS.Timeout | undefined;
  private reason = "";
  private peerEnded = false;
  private error = "";
  /** Requests (HTTP/1.1) or streams (HTTP/2) in flight. */
  private active = 0;
  private requests = 0;
  private current: IncomingMessage | undefined;
  /** How to close an HTTP/2 connection (through its session). */
  private onTimeoutClose: (() => void) | undefined;
  protocol: "undecided" | "http/1.1" | "h2" = "undecided";

  constructor(
    readonly socket: Socket,
    private readonly limits: ConnectionLimits,
    private readonly listener: string,
  ) {
    socket.once("end", () => (this.peerEnded = true));
    socket.on("error", (e: NodeJS.ErrnoException) => (this.error ||= e.code ?? e.message));
    socket.once("close", () => {
      this.clear();
      const why = this.reason || (this.error ? `socket error ${this.error}` : this.peerEnded ? "closed by the client" : "closed by the server");
      log("debug", "connection closed", { listener: this.listener, peer: peerOf(socket), protocol: this.protocol, requests: this.requests, reason: why });
    });
    this.arm(limits.headerTimeoutMs, `request headers not complete within ${seconds(limits.headerTimeoutMs)}`);
  }

  /** Closes the connection now, recording why (the first reason wins). */
  close(reason: string): void {
    this.reason ||= reason;
    this.clear();
    if (this.onTimeoutClose) this.onTimeoutClose();
    else this.socket.destroy();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number, reason: string): void {
    this.clear();
    this.timer = setTimeout(() => {
      // HTTP/1.1 waiting for headers: tell the client, as Node's own server does.
      if (this.protocol === "http/1.1" && this.phase === "head" && this.active === 0) {
        this.socket.write("HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n", () => undefined);
      }
      this.close(reason);
    }, ms);
    this.timer.unref();
  }

  private toIdle(): void {
    this.phase = "idle";
    this.current = undefined;
    this.arm(this.limits.idleTimeoutMs, `idle for ${seconds(this.limits.idleTimeoutMs)}`);
  }

  // ----- HTTP/1.1 -------------------------------------------------------------

  /**
   * The socket now belongs to the HTTP/1.1 server. Our 'data' listener runs
   * after the server's parser (registered first), so a chunk that completes
   * a request has already moved us to body/busy when we see it. (Adding a
   * 'data' listener makes Node feed its parser from 'data' events instead
   * of consuming the handle directly; that is a supported path.)
   */
  startHttp1(): void {
    this.protocol = "http/1.1";
    this.socket.on("data", () => this.onHttp1Bytes());
  }

  private onHttp1Bytes(): void {
    if (this.phase === "idle") {
      this.phase = "head";
      this.arm(this.limits.headerTimeoutMs, `request headers not complete within ${seconds(this.limits.headerTimeoutMs)}`);
    } else if (this.phase === "body") {
      if (this.current?.complete) this.toBusy();
      else this.arm(this.limits.bodyTimeoutMs, `request body stalled for ${seconds(this.limits.bodyTimeoutMs)}`);
    }
  }

  private toBusy(): void {
    this.phase = "busy";
    this.clear();
  }

  /** A request's headers are complete (the HTTP/1.1 server's 'request' event). */
  onHttp1Request(req: IncomingMessage, res: { once(ev: "close", fn: () => void): unknown }): void {
    this.active++;
    this.requests++;
    this.current = req;
    if (req.complete) this.toBusy();
    else {
      this.phase = "body";
      this.arm(this.limits.bodyTimeoutMs, `request body stalled for ${seconds(this.limits.bodyTimeoutMs)}`);
      req.once("end", () => {
        if (this.current === req && this.phase === "body") this.toBusy();
      });
    }
    res.once("close", () => {
      this.active--;
      if (this.active === 0 && !this.socket.destroyed) this.toIdle();
    });
  }

  /** Requests of this HTTP/1.1 connection still being answered. */
  get inFlight(): number {
    return this.active;
  }

  // ----- HTTP/2 ---------------------------------------------------------------

  /**
   * The socket now carries the HTTP/2 session `session`. The header
   * deadline runs on until the client's SETTINGS frame arrives (a client
   * that sends the preface and nothing else is closed by it); then the
   * session is idle while no stream is open. A stream whose request body
   * stops progressing is reset on its own, with the reason logged.
   */
  startHttp2(session: Http2SessionLike): void {
    this.protocol = "h2";
    session.once("remoteSettings", () => {
      if (this.phase === "head") this.toIdle();
    });
    session.on("stream", (stream: Http2StreamLike) => {
      this.active++;
      this.requests++;
      this.toBusy();
      if (!stream.endAfterHeaders) {
        const stalled = () => {
          // A call the server is answering (headers sent, response not
          // ended) is a live stream its handler accepted -- after
          // authentication -- whose input may pause as long as its user
          // does (AttachConsole from grpcurl or a Go client: nobody typing,
          // a quiet guest). Looked at again after the same time: once the
          // response has ended, a request side left open is reset like any
          // stalled body.
          if (stream.headersSent && !stream.writableEnded) {
            stream.setTimeout(this.limits.bodyTimeoutMs, stalled);
            return;
          }
          log("debug", "stream reset", { listener: this.listener, peer: peerOf(this.socket), reason: `request body stalled for ${seconds(this.limits.bodyTimeoutMs)}` });
          stream.close(CANCEL);
        };
        stream.setTimeout(this.limits.bodyTimeoutMs, stalled);
        stream.once("end", () => stream.setTimeout(0));
      }
      stream.once("close", () => {
        this.active--;
        if (this.active === 0 && !this.socket.destroyed) this.toIdle();
      });
    });
    // Idle sessions get a GOAWAY (graceful) rather than a reset.
    this.onTimeoutClose = () => (this.phase === "idle" ? session.close() : session.destroy());
  }
}

/** NGHTTP2_CANCEL: the stream is no longer needed. */
const CANCEL = 0x8;

/** The parts of Http2Session / Http2Stream the policy uses (keeps it testable). */
export interface Http2SessionLike {
  once(ev: "remoteSettings", fn: () => void): unknown;
  on(ev: "stream", fn: (stream: Http2StreamLike) => void): unknown;
  close(): void;
  destroy(): void;
}
/**
 * The parts of Http2Stream the policy uses: whether a request has a body, its timer, and closing it
 * with an RST_STREAM code.
 */
export interface Http2StreamLike {
  readonly endAfterHeaders: boolean;
  /** The server has sent its response headers. */
  readonly headersSent: boolean;
  /** The server has ended its side of the stream. */
  readonly writableEnded: boolean;
  setTimeout(ms: number, fn?: () => void): unknown;
  once(ev: "end" | "close", fn: () => void): unknown;
  close(code: number): void;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function peerOf(s: Socket): string {
  if (s.remoteAddress === undefined) return "unix";
  return s.remoteAddress.includes(":") ? `[${s.remoteAddress}]:${s.remotePort}` : `${s.remoteAddress}:${s.remotePort}`;
}

// The API front's connection policy, against a real ApiServer on real
// sockets (TCP port 0, a unix socket in a temp dir) with short deadlines:
// header deadline, body progress, idle keep-alive and HTTP/2 sessions, the
// connection cap, silent streaming responses left alone, and unix socket
// files replaced only when nobody answers on them.
import { afterEach, describe, expect, it } from "vitest";
import { connect, createServer, type Socket } from "node:net";
import { connect as h2connect } from "node:http2";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiServer } from "./listener.js";

const LIMITS = { maxConnections: 50, headerTimeoutMs: 400, bodyTimeoutMs: 400, idleTimeoutMs: 900 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Echoes the request body's length; /slow answers twice, 1.5 s apart (a silent stream); /bidi
 * answers at once and echoes the body as it comes (a bidirectional call, like AttachConsole);
 * /answered answers and ends without reading the body.
 */
function handler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === "/bidi") {
    res.writeHead(200);
    res.write("attached\n");
    req.on("data", (c: Buffer) => res.write(c));
    req.on("end", () => res.end());
    return;
  }
  if (req.url === "/answered") {
    res.writeHead(200);
    res.end("done\n");
    return;
  }
  let n = 0;
  req.on("data", (c: Buffer) => (n += c.length));
  req.on("end", () => {
    if (req.url === "/slow") {
      res.writeHead(200);
      res.write("first\n");
      setTimeout(() => res.end("second\n"), 1500);
    } else res.end(`got ${n}`);
  });
}

let servers: ApiServer[] = [];
let dirs: string[] = [];
afterEach(async () => {
  for (const s of servers) await s.close(100);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  servers = [];
  dirs = [];
});

async function start(limits = LIMITS): Promise<{ api: ApiServer; port: number }> {
  const api = new ApiServer(handler as never, limits);
  servers.push(api);
  return { api, port: await api.listenTcp("127.0.0.1", 0) };
}

/** A raw TCP client that records what it received and when it was closed. */
function raw(port: number): Promise<{ sock: Socket; data: () => string; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    let data = "";
    const t0 = Date.now();
    sock.setEncoding("utf8").on("data", (d: string) => (data += d));
    const closed = new Promise<number>((r) => sock.once("close", () => r(Date.now() - t0)));
    sock.once("error", () => undefined);
    sock.once("connect", () => resolve({ sock, data: () => data, closed }));
    sock.once("error", reject);
  });
}

describe("HTTP/1.1", () => {
  it("closes a connection whose headers do not complete within the deadline, with a 408", async () => {
    const { port } = await start();
    const c = await raw(port);
    c.sock.write("POST / HTTP/1.1\r\nHost: x\r\n");
    const ms = await c.closed;
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(1500);
    expect(c.data()).toContain("408 Request Timeout");
  });

  it("a client that trickles header bytes does not extend the deadline", async () => {
    const { port } = await start();
    const c = await raw(port);
    const line = "GET / HTTP/1.1\r\nX-Slow: " + "a".repeat(100);
    let closed = false;
    void c.closed.then(() => (closed = true));
    for (let i = 0; i < line.length && !closed; i++) {
      c.sock.write(line[i]!);
      await sleep(20);
    }
    const ms = await c.closed;
    expect(ms).toBeLessThan(1500);
  });

  it("closes a connection that never sends a byte", async () => {
    const { port } = await start();
    const c = await raw(port);
    expect(await c.closed).toBeLessThan(1500);
  });

  it("a stalled request body is closed; a slow but progressing one is served", async () => {
    const { port } = await start();
    const stalled = await raw(port);
    stalled.sock.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabcde");
    expect(await stalled.closed).toBeLessThan(1500);
    expect(stalled.data()).toBe("");

    const slow = await raw(port);
    slow.sock.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n");
    // 10 bytes, 150 ms apart: 1.5 s in all, far over the 400 ms body
    // deadline, but never 400 ms without a byte.
    for (let i = 0; i < 10; i++) {
      await sleep(150);
      slow.sock.write("x");
    }
    await sleep(100);
    expect(slow.data()).toContain("got 10");
    slow.sock.destroy();
  });

  it("keeps an idle keep-alive connection for the idle timeout, then closes it", async () => {
    const { port } = await start();
    const c = await raw(port);
    c.sock.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await sleep(100);
    expect(c.data()).toContain("got 0");
    // Idle longer than the header deadline but within the idle timeout:
    // the next request is served (its header deadline starts with its first byte).
    await sleep(600);
    c.sock.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await sleep(100);
    expect(c.data().match(/got 0/g)).toHaveLength(2);
    const t = Date.now();
    await c.closed;
    expect(Date.now() - t).toBeGreaterThanOrEqual(700);
    expect(Date.now() - t).toBeLessThan(2000);
  });

  it("leaves a silent streaming response alone", async () => {
    const { port } = await start();
    const c = await raw(port);
    c.sock.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    await sleep(1800);
    expect(c.data()).toContain("second");
    c.sock.destroy();
  });
});

describe("HTTP/2", () => {
  it("closes a connection that sends the preface but no SETTINGS", async () => {
    const { port } = await start();
    const c = await raw(port);
    c.sock.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const ms = await c.closed;
    expect(ms).toBeLessThan(1500);
  });

  it("serves a request, then closes the idle session with a GOAWAY", async () => {
    const { port } = await start();
    const session = h2connect(`http://127.0.0.1:${port}`);
    const goaway = new Promise<number>((r) => session.once("goaway", (code) => r(code)));
    const closed = new Promise<void>((r) => session.once("close", () => r()));
    const body = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": "/" });
      let s = "";
      req.setEncoding("utf8").on("data", (d: string) => (s += d));
      req.on("end", () => resolve(s));
      req.on("error", reject);
      req.end("hello");
    });
    expect(body).toBe("got 5");
    const t = Date.now();
    expect(await goaway).toBe(0);
    await closed;
    expect(Date.now() - t).toBeLessThan(2000);
  });

  it("leaves an idle bidirectional call alone while the server answers it; a call whose answer ended keeps no stream", async () => {
    const { port } = await start();
    const session = h2connect(`http://127.0.0.1:${port}`);
    session.on("error", () => undefined);
    // The handler answers at once and the client then goes quiet for over twice the body deadline.
    const call = session.request({ ":method": "POST", ":path": "/bidi" });
    call.on("error", () => undefined);
    let got = "";
    call.setEncoding("utf8").on("data", (d: string) => (got += d));
    call.write("hello ");
    await sleep(1000);
    expect(call.closed).toBe(false);
    call.write("again");
    await sleep(100);
    expect(got).toBe("attached\nhello again");
    call.end();
    await new Promise((r) => call.once("close", r));
    expect(call.rstCode).toBe(0);
    // A handler that answered and ended: a request side left open does not
    // keep the stream (Node's compatibility layer closes it with NO_ERROR
    // once the response is done; the policy's reset is the fallback).
    const done = session.request({ ":method": "POST", ":path": "/answered" });
    done.on("error", () => undefined);
    done.resume();
    done.write("x");
    const t0 = Date.now();
    const code = await new Promise<number>((r) => done.once("close", () => r(done.rstCode)));
    expect([0, 8]).toContain(code);
    expect(Date.now() - t0).toBeLessThan(2000);
    session.destroy();
  });

  it("resets a stream whose request body stalls", async () => {
    const { port } = await start();
    const session = h2connect(`http://127.0.0.1:${port}`);
    session.on("error", () => undefined);
    const req = session.request({ ":method": "POST", ":path": "/" });
    req.on("error", () => undefined);
    req.write("abc");
    const code = await new Promise<number>((r) => req.once("close", () => r(req.rstCode)));
    expect(code).toBe(8); // NGHTTP2_CANCEL
    session.destroy();
  });
});

describe("connection cap", () => {
  it("closes connections over api.max_connections at once, and accepts again below it", async () => {
    const { api, port } = await start({ ...LIMITS, maxConnections: 3, headerTimeoutMs: 5000 });
    const held = await Promise.all([raw(port), raw(port), raw(port)]);
    await sleep(50);
    expect(api.connectionCount).toBe(3);
    const over = await raw(port);
    expect(await over.closed).toBeLessThan(500);
    held[0].sock.destroy();
    await sleep(50);
    const again = await raw(port);
    again.sock.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await sleep(100);
    expect(again.data()).toContain("got 0");
    for (const h of [...held, again]) h.sock.destroy();
  });

  it("counts each listener on its own: a full TCP listener leaves the unix socket serving", async () => {
    const { api, port } = await start({ ...LIMITS, maxConnections: 2, headerTimeoutMs: 5000 });
    const dir = mkdtempSync(join(tmpdir(), "vmm-listener-"));
    dirs.push(dir);
    const path = join(dir, "api.sock");
    await api.listenUnix(path, 0o600);
    const held = await Promise.all([raw(port), raw(port)]);
    await sleep(50);
    const over = await raw(port);
    expect(await over.closed).toBeLessThan(500);
    // The socket's own two connections are served, the third is refused.
    const viaUnix = () =>
      new Promise<{ data: string; closedMs: number }>((resolve) => {
        const t0 = Date.now();
        const c = connect(path);
        let data = "";
        c.setEncoding("utf8").on("data", (d: string) => (data += d));
        c.once("error", () => undefined);
        c.once("close", () => resolve({ data, closedMs: Date.now() - t0 }));
        c.once("connect", () => c.end("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      });
    const unixHeld = await Promise.all([raw2(path), raw2(path)]);
    await sleep(50);
    expect(api.connectionCount).toBe(4);
    const refused = await viaUnix();
    expect(refused.data).toBe("");
    unixHeld[0].destroy();
    await sleep(50);
    expect((await viaUnix()).data).toContain("got 0");
    for (const h of held) h.sock.destroy();
    unixHeld[1].destroy();
  });
});

/** A unix-socket client that sends nothing (holds a connection). */
function raw2(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    c.once("error", reject);
    c.once("connect", () => resolve(c));
  });
}

describe("unix socket files", () => {
  function tmp(): string {
    const d = mkdtempSync(join(tmpdir(), "vmm-listener-"));
    dirs.push(d);
    return d;
  }

  it("refuses to take over a socket someone answers on, and leaves it in place", async () => {
    const path = join(tmp(), "s.sock");
    const other = createServer(() => undefined);
    await new Promise<void>((r) => other.listen(path, r));
    const api = new ApiServer(handler as never, LIMITS);
    servers.push(api);
    await expect(api.listenUnix(path, 0o600)).rejects.toThrow(/another server is answering/);
    const before = statSync(path).ino;
    await api.close(0);
    expect(statSync(path).ino).toBe(before);
    await new Promise<void>((r) => other.close(() => r()));
  });

  it("replaces a socket nobody answers on", async () => {
    const path = join(tmp(), "s.sock");
    // What a killed server leaves: the socket file, nobody listening.
    const r = spawnSync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path]);
    expect(r.status, String(r.stderr)).toBe(0);
    expect(statSync(path).isSocket()).toBe(true);
    const api = new ApiServer(handler as never, LIMITS);
    servers.push(api);
    await api.listenUnix(path, 0o600);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await api.close(0);
    expect(existsSync(path)).toBe(false);
  });

  it("refuses a path that is not a socket", async () => {
    const path = join(tmp(), "file");
    writeFileSync(path, "x");
    const api = new ApiServer(handler as never, LIMITS);
    servers.push(api);
    await expect(api.listenUnix(path, 0o600)).rejects.toThrow(/not a socket/);
  });
});

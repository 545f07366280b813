import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VmmError } from "../errors.js";
import { QmpClient, QmpError, type QmpEvent } from "./qmp.js";

const GREETING = {
  QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "test" }, capabilities: ["oob"] },
};

type Handler = (msg: { execute: string; arguments?: unknown; id?: unknown }, sock: Socket) => void;

/** A fake QEMU speaking QMP on a unix socket; `handler` answers commands. */
function fakeQemu(path: string, handler: Handler, opts: { greet?: boolean } = {}): Promise<Server> {
  const server = createServer((sock) => {
    if (opts.greet ?? true) sock.write(JSON.stringify(GREETING) + "\r\n");
    let buf = "";
    sock.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line) as { execute: string; id?: unknown };
        if (msg.execute === "qmp_capabilities") sock.write(JSON.stringify({ return: {}, id: msg.id }) + "\r\n");
        else handler(msg, sock);
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

const reply = (sock: Socket, v: unknown) => sock.write(JSON.stringify(v) + "\r\n");

describe("QmpClient", () => {
  let dir: string;
  let sock: string;
  let servers: Server[];
  let clients: QmpClient[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vmm-qmp-"));
    sock = join(dir, "qmp.sock");
    servers = [];
    clients = [];
  });
  afterEach(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await new Promise((r) => s.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const connect = async (opts = {}) => {
    const c = await QmpClient.connect(sock, { timeoutMs: 3000, ...opts });
    clients.push(c);
    return c;
  };

  it("retries until the socket appears, then negotiates", async () => {
    const pending = connect();
    await new Promise((r) => setTimeout(r, 200));
    servers.push(await fakeQemu(sock, (m, s) => reply(s, { return: { status: "running", running: true }, id: m.id })));
    const c = await pending;
    expect(c.greeting?.QMP.version.qemu.major).toBe(7);
    expect(await c.queryStatus()).toEqual({ status: "running", running: true });
  });

  it("matches replies to commands by id, also out of order", async () => {
    servers.push(
      await fakeQemu(sock, (m, s) => {
        const delay = m.execute === "slow" ? 100 : 0;
        setTimeout(() => reply(s, { return: { cmd: m.execute, args: m.arguments }, id: m.id }), delay);
      }),
    );
    const c = await connect();
    const [a, b] = await Promise.all([c.execute("slow"), c.execute("fast", { x: 1 })]);
    expect(a).toEqual({ cmd: "slow" });
    expect(b).toEqual({ cmd: "fast", args: { x: 1 } });
  });

  it("turns error replies into QmpError", async () => {
    servers.push(await fakeQemu(sock, (m, s) => reply(s, { error: { class: "CommandNotFound", desc: "The command nope has not been found" }, id: m.id })));
    const c = await connect();
    const err = await c.execute("nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect((err as QmpError).kind).toBe("unsupported");
    expect((err as QmpError).message).toBe("QMP nope failed: CommandNotFound: The command nope has not been found");
  });

  it("delivers asynchronous events by name and as 'event'", async () => {
    servers.push(
      await fakeQemu(sock, (m, s) => {
        reply(s, { return: {}, id: m.id });
        reply(s, { event: "POWERDOWN", timestamp: { seconds: 1, microseconds: 2 } });
        reply(s, { event: "SHUTDOWN", data: { guest: true, reason: "guest-shutdown" }, timestamp: { seconds: 1, microseconds: 3 } });
      }),
    );
    const c = await connect();
    const all: string[] = [];
    c.on("event", (e: QmpEvent) => all.push(e.event));
    const shutdown = c.waitForEvent("SHUTDOWN", 2000);
    await c.systemPowerdown();
    expect((await shutdown).data).toEqual({ guest: true, reason: "guest-shutdown" });
    expect(all).toEqual(["POWERDOWN", "SHUTDOWN"]);
  });

  it("treats quit as done when QEMU closes the connection", async () => {
    servers.push(await fakeQemu(sock, (_m, s) => s.destroy()));
    const c = await connect();
    const closed = new Promise((r) => c.once("close", r));
    await c.quit();
    await closed;
    expect(c.isClosed).toBe(true);
    await expect(c.execute("query-status")).rejects.toThrow(/closed/);
  });

  it("rejects pending commands when the connection drops", async () => {
    let peer: Socket | undefined;
    servers.push(await fakeQemu(sock, (_m, s) => (peer = s)));
    const c = await connect();
    const p = c.execute("query-status");
    await new Promise((r) => setTimeout(r, 50));
    peer!.destroy();
    await expect(p).rejects.toThrow(/QMP query-status: connection to .* closed/);
  });

  it("bounds every wait", async () => {
    // no socket at all
    const t0 = Date.now();
    const err = await QmpClient.connect(sock, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmmError);
    expect((err as VmmError).message).toMatch(/connect to QMP socket .* within 300 ms failed: ENOENT/);
    expect(Date.now() - t0).toBeLessThan(2000);
    // gives up early when the process is gone
    const early = await QmpClient.connect(sock, { timeoutMs: 5000, alive: () => false }).catch((e: unknown) => e);
    expect((early as Error).message).toMatch(/QEMU is gone/);
    // a server that never greets
    servers.push(await fakeQemu(sock, () => undefined, { greet: false }));
    await expect(QmpClient.connect(sock, { timeoutMs: 300 })).rejects.toThrow(/no greeting within/);
  });

  it("times out a command that gets no reply", async () => {
    servers.push(await fakeQemu(sock, () => undefined));
    const c = await connect();
    await expect(c.execute("query-status", undefined, 100)).rejects.toThrow(/no reply within 100 ms/);
  });
});

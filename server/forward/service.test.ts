// ForwardService: diff semantics, errors, rollback, validation.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createServer, type Socket } from "node:net";
import { VmmError, ValidationError } from "../errors.js";
import { ForwardService } from "./service.js";
import { zeroCounters, type ForwardRule } from "./rules.js";
import type { RuleRelay } from "./relay.js";
import { tcpRule, connect, echo, tcpServer, waitFor } from "../../test/helpers/forward.js";
import { CleanupStack } from "../cleanup.js";
import { readFileSync } from "node:fs";
import { parseProcStat } from "../stats/proc.js";
import { freePort } from "../../test/helpers/net.js";

const tcp = tcpRule;

/** Round trip of one line over an open connection. */
function ping(s: Socket, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("ping timed out")), 5000);
    s.once("data", (b: Buffer) => {
      clearTimeout(timer);
      resolve(String(b));
    });
    s.write(msg);
  });
}

function closedPromise(s: Socket): Promise<void> {
  return new Promise((r) => (s.destroyed ? r() : s.once("close", () => r())));
}

describe.each(["native", "sockets"] as const)("ForwardService (%s)", (kind) => {
  let cleanup: CleanupStack;
  let svc: ForwardService;
  beforeEach(() => {
    cleanup = new CleanupStack();
    svc = new ForwardService({ relay: kind });
    cleanup.push(() => svc.close());
  });
  afterEach(() => cleanup.run());

  it("removing one rule closes its connections; an unchanged rule's connection keeps working; re-adding works", async () => {
    const { port: g } = await tcpServer(echo, cleanup);
    const [a, b] = [await freePort(), await freePort()];
    await svc.apply("vm-1", [tcp(a, g), tcp(b, g)]);
    const ca = await connect(a);
    const cb = await connect(b);
    cleanup.push(() => ca.destroy());
    cleanup.push(() => cb.destroy());
    ca.on("error", () => {});
    cb.on("error", () => {});
    expect(await ping(ca, "a1")).toBe("a1");
    expect(await ping(cb, "b1")).toBe("b1");

    await svc.apply("vm-1", [tcp(b, g)]);
    await closedPromise(ca); // its listener and connection are gone
    expect(await ping(cb, "b2")).toBe("b2"); // same connection, still relayed
    await expect(connect(a)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(svc.list("vm-1").map((s) => s.listenPort)).toEqual([b]);

    await svc.apply("vm-1", [tcp(b, g), tcp(a, g)]);
    const ca2 = await connect(a);
    cleanup.push(() => ca2.destroy());
    expect(await ping(ca2, "a3")).toBe("a3");
    expect(await ping(cb, "b3")).toBe("b3");
  });

  it("retargeting keeps the listener and sends new connections to the new target", async () => {
    const { port: g1 } = await tcpServer((s) => s.end("one"), cleanup);
    const { port: g2 } = await tcpServer((s) => s.end("two"), cleanup);
    const lp = await freePort();
    await svc.apply("vm-1", [tcp(lp, g1)]);
    const read = async () => {
      const s = await connect(lp);
      return await new Promise<string>((r) => {
        let out = "";
        s.on("data", (b: Buffer) => (out += b.toString()));
        s.on("end", () => {
          s.end();
          r(out);
        });
      });
    };
    expect(await read()).toBe("one");
    await svc.apply("vm-1", [tcp(lp, g2)]);
    expect(await read()).toBe("two");
    expect(svc.list()[0]!.targetPort).toBe(g2);
  });

  it("a bind failure names the address, and the whole apply is rolled back", async () => {
    const { port: g } = await tcpServer(echo, cleanup);
    const occupied = createServer();
    await new Promise<void>((r) => occupied.listen(0, "127.0.0.1", () => r()));
    cleanup.push(() => new Promise<void>((r) => occupied.close(() => r())));
    const busy = (occupied.address() as { port: number }).port;
    const [keep, fresh] = [await freePort(), await freePort()];
    await svc.apply("vm-1", [tcp(keep, g)]);
    const c = await connect(keep);
    cleanup.push(() => c.destroy());
    expect(await ping(c, "x")).toBe("x");

    const err = await svc.apply("vm-1", [tcp(fresh, g), tcp(busy, g)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmmError);
    expect((err as VmmError).kind).toBe("unavailable");
    expect((err as VmmError).message).toContain(`127.0.0.1:${busy}`);
    expect((err as VmmError).message).toContain("EADDRINUSE");
    // Prior state intact: old rule and its connection alive, nothing new bound.
    expect(svc.list("vm-1").map((s) => s.listenPort)).toEqual([keep]);
    expect(await ping(c, "y")).toBe("y");
    await expect(connect(fresh)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("refuses a listen address owned by another owner, naming the conflict", async () => {
    const { port: g } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    await svc.apply("vm-1", [tcp(lp, g)]);
    const err = await svc.apply("vm-2", [tcp(lp, g)]).catch((e: unknown) => e);
    expect((err as VmmError).kind).toBe("exists");
    expect((err as VmmError).message).toContain(`tcp 127.0.0.1:${lp}`);
    expect((err as VmmError).message).toContain('"vm-1"');
    expect(svc.list("vm-2")).toEqual([]);
    // UDP on the same port is a different key.
    const up = { ...tcp(lp, g), protocol: "udp" as const };
    await svc.apply("vm-2", [up]);
    expect(svc.list().map((s) => `${s.owner} ${s.protocol}`)).toEqual(["vm-1 tcp", "vm-2 udp"]);
    await svc.remove("vm-1");
    await svc.remove("vm-2");
    expect(svc.list()).toEqual([]);
  });

  it("validation names every bad field and changes nothing", async () => {
    const lp = await freePort();
    const bad = [
      tcp(lp, 80),
      { ...tcp(lp + 1, 80), listenAddress: "localhost" },
      { ...tcp(70000, 80) },
      { ...tcp(lp + 2, 0), protocol: "sctp" as "tcp" },
      tcp(lp, 81),
    ];
    const err = await svc.apply("vm-1", bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    const fields = (err as ValidationError).problems.map((p) => p.field);
    expect(fields).toEqual(["rules[1].listenAddress", "rules[2].listenPort", "rules[3].protocol", "rules[3].targetPort", "rules[4]"]);
    expect(svc.list()).toEqual([]);
    await expect(svc.apply("", [])).rejects.toBeInstanceOf(ValidationError);
  });

  it("closing the service closes listeners and connections", async () => {
    const { port: g } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    await svc.apply("vm-1", [tcp(lp, g)]);
    const c = await connect(lp);
    c.on("error", () => {});
    cleanup.push(() => c.destroy());
    expect(await ping(c, "z")).toBe("z");
    await svc.close();
    await closedPromise(c);
    await expect(connect(lp)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await expect(svc.apply("vm-1", [])).rejects.toMatchObject({ kind: "precondition" });
  });
});

describe("ForwardService options", () => {
  it("auto picks native here and says so", async () => {
    const svc = new ForwardService();
    expect(svc.relayKind).toBe("native");
    expect(svc.fallbackReason).toBeUndefined();
    await svc.close();
  });
  it("rejects bad limits naming the option", () => {
    expect(() => new ForwardService({ connectTimeoutMs: 0, udpIdleMs: 1.5 })).toThrow(/connectTimeoutMs.*udpIdleMs/);
    expect(() => new ForwardService({ relayNice: -21 })).toThrow(/relayNice: must be an integer from -20 to 19/);
    expect(() => new ForwardService({ relayPollUs: -1 })).toThrow(/relayPollUs: must be an integer from 0 to 1000/);
  });
  it("runs every relay process at relayNice", async () => {
    const cleanup = new CleanupStack();
    try {
      const svc = new ForwardService({ relay: "native", relayWorkers: 2, relayNice: -2 });
      cleanup.push(() => svc.close());
      await svc.apply("vm", [tcp(await freePort(), 9)]);
      const pids = await svc.dataPathPids();
      expect(pids).toHaveLength(2);
      for (const p of pids) expect(parseProcStat(readFileSync(`/proc/${p}/stat`, "utf8"))!.nice).toBe(-2);
    } finally {
      await cleanup.run();
    }
  });
  it("counts active connections synchronously", async () => {
    const cleanup = new CleanupStack();
    try {
      const svc = new ForwardService({ relay: "native" });
      cleanup.push(() => svc.close());
      const { port: g } = await tcpServer(echo, cleanup);
      const lp = await freePort();
      await svc.apply("vm", [tcp(lp, g)]);
      const c = await connect(lp);
      cleanup.push(() => c.destroy());
      expect(await ping(c, "q")).toBe("q");
      // The relay counts a byte right after its send() returned, so the
      // client may see it a moment before the counter does.
      await waitFor("the echoed byte counted", () => svc.list()[0]!.counters.bytesFromGuest === 1, 2000);
      expect(svc.list()[0]!.counters).toMatchObject({ connectionsActive: 1, connectionsTotal: 1, bytesToGuest: 1, bytesFromGuest: 1 });
      c.end();
      await waitFor("close", () => svc.list()[0]!.counters.connectionsActive === 0);
    } finally {
      await cleanup.run();
    }
  });
});

describe("ForwardService: all or nothing when an update fails", () => {
  /** A rule relay that records what happened to it; its update() fails on demand. */
  class FakeRelay implements RuleRelay {
    readonly kind = "sockets" as const;
    readonly port: number;
    readonly targets: number[] = [];
    closed = false;
    failUpdate = false;
    constructor(rule: ForwardRule) {
      this.port = rule.listenPort;
      this.targets.push(rule.targetPort);
    }
    counters() {
      return zeroCounters();
    }
    async update(rule: ForwardRule) {
      if (this.failUpdate) throw new Error("update: injected failure");
      this.targets.push(rule.targetPort);
    }
    async close() {
      this.closed = true;
    }
  }

  it("restores the updates it made and closes what it bound (no leaked listener, no half-applied retarget)", async () => {
    const made = new Map<number, FakeRelay>();
    const svc = new ForwardService({
      relay: "sockets",
      userspacePath: {
        async open(_owner, rule) {
          const f = new FakeRelay(rule);
          made.set(rule.listenPort, f);
          return f;
        },
      },
    });
    await svc.apply("vm", [tcpRule(1001, 80), tcpRule(1002, 80)]);
    made.get(1002)!.failUpdate = true;
    const err = await svc.apply("vm", [tcpRule(1001, 81), tcpRule(1002, 81), tcpRule(1003, 80)]).catch((e: unknown) => e);
    expect((err as VmmError).kind).toBe("unavailable");
    expect((err as VmmError).message).toMatch(/rules\[1\]: retarget tcp 127\.0\.0\.1:1002 to 127\.0\.0\.1:81 failed: .*injected failure/);
    // Rule 1001 was retargeted before 1002 failed: it is back on port 80.
    expect(made.get(1001)!.targets).toEqual([80, 81, 80]);
    // The listener bound for 1003 was closed again.
    expect(made.get(1003)!.closed).toBe(true);
    expect(svc.list().map((s) => [s.listenPort, s.targetPort])).toEqual([
      [1001, 80],
      [1002, 80],
    ]);
    await svc.close();
  });
});

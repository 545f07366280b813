// fd-leak check: after thousands of forwarded connections, including refused
// backends and client resets, this process and the relay's processes hold
// exactly as many fds as before.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createConnection } from "node:net";
import { ForwardService } from "./service.js";
import type { ForwardRule } from "./rules.js";
import { tcpRule, echo, exchange, fdCount, fdCountOf, refusingPort, tcpServer, waitFor } from "../../test/helpers/forward.js";
import { CleanupStack } from "../cleanup.js";
import { freePort } from "../../test/helpers/net.js";

const tcp = tcpRule;

/** Connects, sends a byte, then resets the connection without waiting for an answer. */
function resetting(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    const timer = setTimeout(() => s.destroy(), 5000);
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      resolve();
    });
    s.once("connect", () => s.write("x", () => s.resetAndDestroy()));
  });
}

describe.each(["native", "sockets"] as const)("fd accounting (%s)", (kind) => {
  let cleanup: CleanupStack;
  beforeEach(() => {
    cleanup = new CleanupStack();
  });
  afterEach(() => cleanup.run());

  it("holds exactly as many fds after 2,000 connections (ok, refused, reset)", async () => {
    const svc = new ForwardService({ relay: kind, connectTimeoutMs: 2000 });
    cleanup.push(() => svc.close());
    const { port: g } = await tcpServer(echo, cleanup);
    const dead = await refusingPort(cleanup);
    const [okPort, refusedPort] = [await freePort(), await freePort()];
    await svc.apply("vm", [tcp(okPort, g), tcp(refusedPort, dead)]);

    const one = (i: number): Promise<unknown> => {
      switch (i % 4) {
        case 0:
          return exchange(refusedPort, Buffer.from("x"), 10_000);
        case 1:
          return resetting(okPort);
        default:
          return exchange(okPort, Buffer.alloc(1 + (i % 3) * 20_000, i), 10_000).then((r) => {
            if (r.received.length !== 1 + (i % 3) * 20_000) throw new Error(`connection ${i}: short echo`);
          });
      }
    };
    const run = async (n: number) => {
      const batch = 50;
      for (let i = 0; i < n; i += batch) {
        await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => one(i + j)));
      }
      await waitFor("all forwarded connections closed", () => svc.list().every((s) => s.counters.connectionsActive === 0), 10_000);
    };

    await run(100); // warm-up: lazily created handles of Node and of the relay
    const pids = await svc.dataPathPids();
    expect(pids.length).toBeGreaterThan(0);
    const fds = () => ({ self: fdCount(), relay: kind === "native" ? fdCountOf(pids) : 0 });
    const base = fds();
    await run(2000);
    await waitFor(`fd counts back to ${JSON.stringify(base)}`, () => JSON.stringify(fds()) === JSON.stringify(base), 5000).catch(() => undefined);
    expect(fds()).toEqual(base);
    const [ok, refused] = svc.list().sort((a, b) => (a.listenPort === okPort ? -1 : b.listenPort === okPort ? 1 : 0));
    expect(ok!.counters.connectionsTotal).toBe(1575);
    expect(refused!.counters.errors).toBe(525);
  });
});

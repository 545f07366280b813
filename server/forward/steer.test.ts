// Steering of new TCP connections over vmm-relayd's processes: light loads
// are packed into the first process with fewer than `relayPackBelow`
// connections; when every process holds that many, the kernel spreads them.
// Counted through each process's fds (two per forwarded connection).
import { afterEach, describe, expect, it } from "vitest";
import type { Socket } from "node:net";
import { ForwardService } from "./service.js";
import { connect, echo, fdCountOf, relayWorkersSettled, tcpRule, tcpServer, waitFor } from "../../test/helpers/forward.js";
import { CleanupStack } from "../cleanup.js";
import { freePort } from "../../test/helpers/net.js";

describe("vmm-relayd connection steering", () => {
  const cleanup = new CleanupStack();
  afterEach(() => cleanup.run());

  it("packs connections into the first process below the threshold, then fills the next, then spreads", async () => {
    const PACK = 8;
    const svc = new ForwardService({ relay: "native", relayWorkers: 2, relayPackBelow: PACK });
    cleanup.push(() => svc.close());
    const { port: g } = await tcpServer(echo, cleanup);
    const lp = await freePort();
    await svc.apply("vm", [tcpRule(lp, g)]);
    // The worker takes its copy of the listener after the add is answered:
    // the fd baseline below is final only once it has.
    await relayWorkersSettled(svc);
    const [p0, p1] = await svc.dataPathPids();
    expect(p1).toBeDefined();
    const base = [fdCountOf([p0!]), fdCountOf([p1!])];
    const held = () => [(fdCountOf([p0!]) - base[0]!) / 2, (fdCountOf([p1!]) - base[1]!) / 2];
    const socks: Socket[] = [];
    cleanup.push(() => socks.forEach((s) => s.destroy()));
    const open = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const s = await connect(lp);
        s.on("error", () => {});
        socks.push(s);
        // One at a time, each relayed, so each accept sees the counts so far.
        await new Promise<void>((r) => {
          s.once("data", () => r());
          s.write("x");
        });
      }
    };

    await open(PACK - 2);
    expect(held()).toEqual([PACK - 2, 0]);

    await open(2 + PACK); // the first process is full: the second takes the next PACK
    await waitFor("both processes full", () => held()[0] === PACK && held()[1] === PACK);

    await open(40); // every process holds PACK: spread by hash, both take some
    await waitFor("all 56 connections held", () => held()[0]! + held()[1]! === 2 * PACK + 40);
    const [a, b] = held();
    expect(a, `process 0 holds ${a}, process 1 holds ${b}`).toBeGreaterThan(PACK);
    expect(b, `process 0 holds ${a}, process 1 holds ${b}`).toBeGreaterThan(PACK);

    // Connections close; the first process is below the threshold again and
    // takes new connections.
    for (const s of socks.splice(0)) s.destroy();
    await waitFor("all closed", () => held()[0] === 0 && held()[1] === 0);
    await open(3);
    expect(held()).toEqual([3, 0]);
  });
});

// ReadConsole on a real guest (TCG): the kernel's and the test init's boot
// lines arrive over gRPC and Connect, offsets match the serial log byte for
// byte, a followed stream moves on to the next boot across a stop/start,
// and ends when the VM is removed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { requireNetns } from "../guest/netns.js";
import { VmmService, VmStatus, type ReadConsoleResponse } from "../../gen/ts/vmm/v1/vmm_pb.js";

let d: DaemonHandle | undefined;

beforeAll(() => requireNetns());
afterAll(async () => {
  if (!d) return;
  const c = client(VmmService, transport(d, "connect", "unix"));
  const { vms } = await c.listVms({}).catch(() => ({ vms: [] }));
  for (const v of vms) await c.removeVm({ id: v.id, force: true }).catch(() => undefined);
  await d.stop();
  d.cleanup();
});

/** Collects a followed stream in the background until `stop` is called or it ends. */
function follow(stream: AsyncIterable<ReadConsoleResponse>) {
  const got: ReadConsoleResponse[] = [];
  let ended = false;
  let error: unknown;
  const done = (async () => {
    try {
      for await (const m of stream) got.push(m);
    } catch (e) {
      error = e;
    } finally {
      ended = true;
    }
  })();
  const textOf = (instanceId?: string) =>
    Buffer.concat(got.filter((m) => instanceId === undefined || m.instanceId === instanceId).map((m) => m.data)).toString("latin1");
  return {
    got,
    done,
    textOf,
    ended: () => ended,
    error: () => error,
    async until(pred: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!pred()) {
        if (ended) throw new Error(`stream ended (${String(error)}) before ${what}; got:\n${textOf().slice(-2000)}`);
        if (Date.now() > deadline) throw new Error(`no ${what} after ${timeoutMs} ms; got:\n${textOf().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

describe("ReadConsole on a real guest", () => {
  it("streams boot lines, resumes at offsets, follows across a restart, ends on removal", async () => {
    d = await startDaemon();
    const unix = client(VmmService, transport(d, "connect", "unix"));
    const grpc = client(VmmService, transport(d, "grpc", "tcp"));
    await unix.createVm({
      id: "con-1",
      config: { name: "console", kernel: guestKernel(), initrd: guestInitrd(), cmdline: "console=ttyS0 panic=-1 vmm.hostname=con-1" },
    });

    // Following before the first boot: one empty message, then the boot.
    const ctl = new AbortController();
    const live = follow(grpc.readConsole({ id: "con-1", follow: true }, { signal: ctl.signal }));
    await live.until(() => live.got.length >= 1, "the first message", 10_000);
    expect(live.got[0]).toMatchObject({ instanceId: "", offset: 0n });
    expect(live.got[0]!.data.length).toBe(0);

    const first = (await unix.startVm({ id: "con-1" })).vm!;
    await live.until(() => /VMM-GUEST-READY ip=\S+/.test(live.textOf(first.instanceId)), "VMM-GUEST-READY");
    const boot1 = live.textOf(first.instanceId);
    expect(boot1).toMatch(/Linux version \d+\.\d+/);
    // Offsets are contiguous from 0 and the bytes are the serial log's.
    let at = 0n;
    for (const m of live.got.filter((m) => m.instanceId === first.instanceId)) {
      expect(m.offset).toBe(at);
      at += BigInt(m.data.length);
    }
    const file = readFileSync(join(d.stateDir, "vms", "con-1", "serial.log"));
    expect(file.subarray(0, boot1.length).toString("latin1")).toBe(boot1);

    // Without follow over Connect (HTTP/1.1): from an offset, and the last lines.
    const mid = boot1.indexOf("VMM-GUEST-READY");
    const part: Buffer[] = [];
    for await (const m of unix.readConsole({ id: "con-1", offset: BigInt(mid), maxChunkBytes: 7 })) {
      expect(m.data.length).toBeLessThanOrEqual(7);
      part.push(Buffer.from(m.data));
    }
    expect(Buffer.concat(part).toString("latin1").startsWith("VMM-GUEST-READY")).toBe(true);
    const tail: Buffer[] = [];
    for await (const m of unix.readConsole({ id: "con-1", tailLines: 1 })) tail.push(Buffer.from(m.data));
    expect(Buffer.concat(tail).toString("latin1").split("\n").filter((l) => l !== "").length).toBe(1);

    // Clear errors.
    const err = async (p: Promise<unknown>) => ConnectError.from(await p.catch((e: unknown) => e));
    const drain = async (it: AsyncIterable<unknown>) => {
      for await (const _ of it) void _;
    };
    const notFound = await err(drain(unix.readConsole({ id: "no-such-vm" })));
    expect(notFound.code).toBe(Code.NotFound);
    const past = await err(drain(grpc.readConsole({ id: "con-1", offset: 1n << 40n })));
    expect(past.code).toBe(Code.InvalidArgument);
    expect(past.rawMessage).toMatch(/^offset: is 1099511627776; the console of boot "[^"]+" has \d+ bytes$/);

    // Restart: the stream keeps going with the new boot from offset 0.
    await unix.stopVm({ id: "con-1", timeoutSeconds: 60 });
    await live.until(() => live.textOf(first.instanceId).includes("VMM-GUEST-POWEROFF"), "VMM-GUEST-POWEROFF", 60_000);
    const second = (await unix.startVm({ id: "con-1" })).vm!;
    expect(second.status).toBe(VmStatus.RUNNING);
    expect(second.instanceId).not.toBe(first.instanceId);
    await live.until(() => /VMM-GUEST-READY/.test(live.textOf(second.instanceId)), "VMM-GUEST-READY of the second boot");
    const b2 = live.got.filter((m) => m.instanceId === second.instanceId);
    expect(b2[0]!.offset).toBe(0n);
    expect(live.textOf(second.instanceId)).toMatch(/Linux version/);
    expect(live.textOf(second.instanceId)).not.toContain("VMM-GUEST-POWEROFF");
    // The stream only moved forward: first boot, then second, never back.
    const order = live.got.map((m) => m.instanceId).filter((id, i, a) => id !== a[i - 1]);
    expect(order).toEqual(["", first.instanceId, second.instanceId]);

    // Removal ends a followed stream normally.
    await unix.removeVm({ id: "con-1", force: true });
    await live.done;
    expect(live.error()).toBeUndefined();
    ctl.abort();
  }, 360_000);
});

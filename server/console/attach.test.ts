// ConsoleAttacher against a real unix socket standing in for QEMU's console
// chardev: shared output, input from every attachment, limits, the end of a
// VM's console, and refusal while the VM does not run.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConsoleAttacher, MAX_ATTACHMENTS, MAX_INPUT_BYTES } from "./attach.js";
import type { VmView } from "../vm/types.js";

let dir: string;
let qemu: Server;
let conns: Socket[];
let typed: string;
let status: string;
let attacher: ConsoleAttacher;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "vmm-attach-"));
  conns = [];
  typed = "";
  status = "running";
  qemu = createServer((c) => {
    conns.push(c);
    c.on("data", (b) => (typed += b.toString()));
  });
  await new Promise<void>((r) => qemu.listen(join(dir, "console.sock"), r));
  const view = () => ({ record: { id: "vm1" }, runtime: { status, instanceId: "i" } }) as unknown as VmView;
  attacher = new ConsoleAttacher({ get: () => view(), events: new EventEmitter() }, () => dir);
});
afterEach(async () => {
  attacher.close();
  for (const c of conns) c.destroy();
  await new Promise((r) => qemu.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function take(it: AsyncIterator<Buffer>, want: string): Promise<string> {
  let got = "";
  while (!got.includes(want)) {
    const r = await it.next();
    if (r.done) break;
    got += r.value.toString();
  }
  return got;
}

describe("ConsoleAttacher", () => {
  it("shares one connection: every attachment sees the output and may type", async () => {
    const a = await attacher.attach("vm1");
    const b = await attacher.attach("vm1");
    expect(conns).toHaveLength(1);
    const ai = a.output[Symbol.asyncIterator]();
    const bi = b.output[Symbol.asyncIterator]();
    conns[0]!.write("login: ");
    expect(await take(ai, "login: ")).toBe("login: ");
    expect(await take(bi, "login: ")).toBe("login: ");
    a.write(Buffer.from("root\r"));
    b.write(Buffer.from("ls\r"));
    await new Promise((r) => setTimeout(r, 50));
    expect(typed).toBe("root\rls\r");
    expect(() => a.write(Buffer.alloc(MAX_INPUT_BYTES + 1))).toThrow(/input: is 65537 bytes/);
    a.close();
    b.close();
    // The last detach closes the shared connection.
    await new Promise((r) => setTimeout(r, 50));
    expect(conns[0]!.destroyed || conns[0]!.readableEnded).toBe(true);
  });

  it("the VM's console closing ends every attachment normally", async () => {
    const a = await attacher.attach("vm1");
    const ai = a.output[Symbol.asyncIterator]();
    conns[0]!.end("bye\n");
    expect(await take(ai, "bye")).toBe("bye\n");
    expect((await ai.next()).done).toBe(true);
  });

  it("refuses a VM that is not running, and more than MAX_ATTACHMENTS", async () => {
    status = "stopped";
    await expect(attacher.attach("vm1")).rejects.toThrow(/VM "vm1" is stopped; its console can be attached only while it runs/);
    status = "running";
    const all = [];
    for (let i = 0; i < MAX_ATTACHMENTS; i++) all.push(await attacher.attach("vm1"));
    await expect(attacher.attach("vm1")).rejects.toMatchObject({ kind: "exhausted" });
    for (const x of all) x.close();
  });

  it("a missing console socket is unavailable", async () => {
    rmSync(join(dir, "console.sock"));
    await expect(attacher.attach("vm1")).rejects.toMatchObject({ kind: "unavailable" });
  });

  it("a reader that falls 4 MiB behind is cut off; the others go on", async () => {
    const slow = await attacher.attach("vm1");
    const fast = await attacher.attach("vm1");
    const fi = fast.output[Symbol.asyncIterator]();
    const chunk = "x".repeat(64 * 1024);
    let read = 0;
    for (let i = 0; i < 80; i++) {
      conns[0]!.write(chunk);
      while (read < (i + 1) * chunk.length) read += ((await fi.next()).value as Buffer).length;
    }
    const si = slow.output[Symbol.asyncIterator]();
    await expect((async () => { for (;;) if ((await si.next()).done) return; })()).rejects.toMatchObject({ kind: "exhausted" });
    fast.close();
  });
});

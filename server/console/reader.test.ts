// The console reader over real files (SerialFileSource on a temp directory)
// with a stand-in for the VM manager: offsets, bounded chunks, tail lines,
// follow across a restart, removal, errors.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventEmitter } from "node:events";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VmmError } from "../errors.js";
import type { VmRuntime, VmStatus, VmView } from "../vm/types.js";
import { ConsoleReader, tailStart, type ConsoleChunk, type ConsoleQuery } from "./reader.js";
import { SerialFileSource, type BootLog, type ConsoleSource } from "./source.js";

class FakeVms {
  readonly events = new EventEmitter();
  readonly runtime = new Map<string, VmRuntime>();
  get(id: string): VmView {
    const rt = this.runtime.get(id);
    if (!rt) throw new VmmError("not_found", `id: VM "${id}" not found`);
    return { record: { version: 1, id, createdAt: "", spec: {} as VmView["record"]["spec"], macs: [] }, runtime: rt, leases: [], events: [] };
  }
  set(id: string, status: VmStatus, instanceId: string): void {
    this.runtime.set(id, { version: 1, status, instanceId });
    this.events.emit("event", id, { time: "", kind: status, message: "" });
  }
  remove(id: string): void {
    this.runtime.delete(id);
    this.events.emit("event", id, { time: "", kind: "removed", message: "" });
  }
}

let dir = "";
let vms: FakeVms;
let reader: ConsoleReader;
const serial = (id: string) => join(dir, id, "serial.log");
const q = (over: Partial<ConsoleQuery> = {}): ConsoleQuery => ({ id: "vm-1", instanceId: "", follow: false, maxChunkBytes: 0, ...over });

async function collect(it: AsyncIterable<ConsoleChunk>): Promise<ConsoleChunk[]> {
  const out: ConsoleChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}
const text = (cs: ConsoleChunk[]) => Buffer.concat(cs.map((c) => c.data)).toString();

/** Pulls chunks from a live stream until `until` holds for the text so far (bounded). */
async function pullUntil(gen: AsyncGenerator<ConsoleChunk>, got: ConsoleChunk[], until: (all: ConsoleChunk[]) => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!until(got)) {
    if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(text(got))}`);
    const r = await gen.next();
    if (r.done) throw new Error(`stream ended; got ${JSON.stringify(text(got))}`);
    got.push(r.value);
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vmm-console-"));
  mkdirSync(join(dir, "vm-1"));
  vms = new FakeVms();
  reader = new ConsoleReader(new SerialFileSource(vms, (id) => join(dir, id)), { pollMs: 50, batchMs: 0 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("tailStart", () => {
  const log = (s: string, first = 0): Pick<BootLog, "first" | "end" | "read"> => {
    const b = Buffer.from(s);
    return { first: () => first, end: () => b.length, read: (o, n) => b.subarray(o, o + n) };
  };
  it.each([
    ["a\nb\nc\n", 1, "c\n"],
    ["a\nb\nc\n", 2, "b\nc\n"],
    ["a\nb\nc", 1, "c"],
    ["a\nb\nc", 2, "b\nc"],
    ["a\nb\nc\n", 3, "a\nb\nc\n"],
    ["a\nb\nc\n", 10, "a\nb\nc\n"],
    ["a\nb\nc\n", 0, ""],
    ["", 5, ""],
    ["\n\n\n", 2, "\n\n"],
  ])("%j, last %i lines: %j", (s, n, want) => {
    expect(s.slice(tailStart(log(s), n))).toBe(want);
  });
  it("stops at the earliest byte kept", () => {
    expect(tailStart(log("a\nb\nc\n", 2), 10)).toBe(2);
  });
  it("finds lines across 64 KiB blocks", () => {
    const s = "x".repeat(70_000) + "\n" + "y".repeat(70_000) + "\nlast\n";
    expect(s.slice(tailStart(log(s), 2))).toBe("y".repeat(70_000) + "\nlast\n");
  });
});

describe("reading without follow", () => {
  it("sends the whole output in bounded chunks with their offsets", async () => {
    vms.set("vm-1", "running", "boot-a");
    const body = Buffer.from(Array.from({ length: 1000 }, (_, i) => `line ${i}\n`).join(""));
    writeFileSync(serial("vm-1"), body);
    const cs = await collect(reader.read(q({ maxChunkBytes: 1000 }), new AbortController().signal));
    expect(Buffer.concat(cs.map((c) => c.data))).toEqual(body);
    expect(cs.every((c) => c.data.length <= 1000 && c.instanceId === "boot-a" && c.firstOffset === 0)).toBe(true);
    let at = 0;
    for (const c of cs) {
      expect(c.offset).toBe(at);
      at += c.data.length;
    }
    expect(reader.active).toBe(0);
  });

  it("starts at an offset, or at the last N lines", async () => {
    vms.set("vm-1", "running", "boot-a");
    writeFileSync(serial("vm-1"), "one\ntwo\nthree\n");
    expect(text(await collect(reader.read(q({ offset: 4 }), new AbortController().signal)))).toBe("two\nthree\n");
    const at = await collect(reader.read(q({ offset: 14 }), new AbortController().signal));
    expect(at).toEqual([{ instanceId: "boot-a", offset: 14, data: Buffer.alloc(0), firstOffset: 0 }]);
    expect(text(await collect(reader.read(q({ tailLines: 1 }), new AbortController().signal)))).toBe("three\n");
  });

  it("answers a VM that never ran with one empty message", async () => {
    vms.set("vm-1", "stopped", "");
    expect(await collect(reader.read(q(), new AbortController().signal))).toEqual([{ instanceId: "", offset: 0, data: Buffer.alloc(0), firstOffset: 0 }]);
  });

  it("reads the current boot from its start when asked for a boot that is gone", async () => {
    vms.set("vm-1", "running", "boot-b");
    writeFileSync(serial("vm-1"), "new boot\n");
    const cs = await collect(reader.read(q({ instanceId: "boot-a", offset: 5 }), new AbortController().signal));
    expect(cs.map((c) => [c.instanceId, c.offset])).toEqual([["boot-b", 0]]);
    expect(text(cs)).toBe("new boot\n");
  });

  it.each([
    [q({ id: "" }), "invalid", /id: is required/],
    [q({ id: "Bad Id" }), "invalid", /id: must be/],
    [q({ offset: 3, tailLines: 2 }), "invalid", /tail_lines: cannot be combined with offset/],
    [q({ tailLines: 100_001 }), "invalid", /tail_lines: is 100001; at most 100000/],
    [q({ maxChunkBytes: 2_000_000 }), "invalid", /max_chunk_bytes: is 2000000; at most 1048576/],
    [q({ instanceId: "x y" }), "invalid", /instance_id: is not an instance id/],
    [q({ offset: 2 ** 60 }), "invalid", /offset: is .*; at most/],
    [q({ offset: 100 }), "invalid", /offset: is 100; the console of boot "boot-a" has 6 bytes/],
    [q({ id: "nope" }), "not_found", /VM "nope" not found/],
  ])("refuses %j", async (query, kind, msg) => {
    vms.set("vm-1", "running", "boot-a");
    writeFileSync(serial("vm-1"), "hello\n");
    const err = await collect(reader.read(query, new AbortController().signal)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmmError);
    expect((err as VmmError).kind).toBe(kind);
    expect((err as VmmError).message).toMatch(msg);
    expect(reader.active).toBe(0);
  });

  it("reports every bad field at once", async () => {
    const err = (await collect(reader.read(q({ id: "", tailLines: 200_000, maxChunkBytes: 2_000_000 }), new AbortController().signal)).catch((e: unknown) => e)) as VmmError;
    expect(err.problems.map((p) => p.field)).toEqual(["id", "tail_lines", "max_chunk_bytes"]);
  });
});

describe("following", () => {
  it("sends new output as it is written, moves to the next boot on restart, ends on removal", async () => {
    vms.set("vm-1", "running", "boot-a");
    writeFileSync(serial("vm-1"), "boot a: hello\n");
    const ctl = new AbortController();
    const gen = reader.read(q({ follow: true }), ctl.signal);
    const got: ConsoleChunk[] = [];
    await pullUntil(gen, got, (a) => text(a) === "boot a: hello\n");
    appendFileSync(serial("vm-1"), "boot a: more\n");
    await pullUntil(gen, got, (a) => text(a).endsWith("more\n"));

    // Restart: the old boot's last bytes come first, then the new boot from 0.
    appendFileSync(serial("vm-1"), "boot a: bye\n");
    vms.set("vm-1", "starting", "boot-b");
    rmSync(serial("vm-1"));
    writeFileSync(serial("vm-1"), "");
    vms.set("vm-1", "running", "boot-b");
    await pullUntil(gen, got, (a) => a.some((c) => c.instanceId === "boot-b"));
    appendFileSync(serial("vm-1"), "boot b: hi\n");
    await pullUntil(gen, got, (a) => text(a).endsWith("boot b: hi\n"));
    expect(text(got.filter((c) => c.instanceId === "boot-a"))).toBe("boot a: hello\nboot a: more\nboot a: bye\n");
    const b = got.filter((c) => c.instanceId === "boot-b");
    expect(b[0]).toMatchObject({ offset: 0, data: Buffer.alloc(0) });
    expect(text(b)).toBe("boot b: hi\n");

    vms.remove("vm-1");
    expect((await gen.next()).done).toBe(true);
    expect(reader.active).toBe(0);
  });

  it("waits for a VM's first boot", async () => {
    vms.set("vm-1", "stopped", "");
    const ctl = new AbortController();
    const gen = reader.read(q({ follow: true }), ctl.signal);
    const got: ConsoleChunk[] = [];
    await pullUntil(gen, got, (a) => a.length === 1);
    expect(got[0]!.instanceId).toBe("");
    vms.set("vm-1", "starting", "boot-a");
    writeFileSync(serial("vm-1"), "first words\n");
    vms.set("vm-1", "running", "boot-a");
    await pullUntil(gen, got, (a) => text(a) === "first words\n");
    ctl.abort();
    expect((await gen.next()).done).toBe(true);
    expect(reader.active).toBe(0);
  });

  it("does not serve the previous boot's output again after a start that failed before QEMU ran", async () => {
    vms.set("vm-1", "running", "boot-a");
    writeFileSync(serial("vm-1"), "boot a\n");
    const ctl = new AbortController();
    const gen = reader.read(q({ follow: true }), ctl.signal);
    const got: ConsoleChunk[] = [];
    await pullUntil(gen, got, (a) => text(a) === "boot a\n");
    vms.set("vm-1", "stopped", "boot-a");
    vms.set("vm-1", "starting", "boot-b");
    vms.set("vm-1", "stopped", "boot-b"); // start_failed: serial.log untouched
    await pullUntil(gen, got, (a) => a.some((c) => c.instanceId === "boot-b"));
    expect(got.filter((c) => c.instanceId === "boot-b").map((c) => c.data.length)).toEqual([0]);
    ctl.abort();
    await gen.next();
  });

  it("ends when the client cancels, and frees its slot", async () => {
    const small = new ConsoleReader(new SerialFileSource(vms, (id) => join(dir, id)), { pollMs: 50, maxReaders: 1 });
    vms.set("vm-1", "running", "boot-a");
    writeFileSync(serial("vm-1"), "x\n");
    const ctl = new AbortController();
    const gen = small.read(q({ follow: true }), ctl.signal);
    await gen.next();
    const second = await collect(small.read(q(), new AbortController().signal)).catch((e: unknown) => e);
    expect((second as VmmError).kind).toBe("exhausted");
    ctl.abort();
    expect((await gen.next()).done).toBe(true);
    expect(small.active).toBe(0);
    expect(text(await collect(small.read(q(), new AbortController().signal)))).toBe("x\n");
  });
});

describe("a source that discards old output", () => {
  it("starts at the earliest byte kept and reports it", async () => {
    const body = Buffer.from("0123456789abcdefghij");
    const src: ConsoleSource = {
      current: () => ({ instanceId: "boot-a", settled: true }),
      open: () => ({ instanceId: "boot-a", first: () => 10, end: () => 20, read: (o, n) => body.subarray(o, o + n), close: () => undefined }),
      watch: () => () => undefined,
    };
    const cs = await collect(new ConsoleReader(src).read(q({ offset: 4 }), new AbortController().signal));
    expect(cs).toEqual([{ instanceId: "boot-a", offset: 10, data: Buffer.from("abcdefghij"), firstOffset: 10 }]);
  });
});

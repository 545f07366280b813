// Serial log rotation on real files, with a writer that appends like QEMU
// (O_APPEND), and offsets read back through the console source.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventEmitter } from "node:events";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSegments, rotatedSegments, rotateSerialLog } from "./rotate.js";
import { SerialFileSource, type VmLookup } from "./source.js";
import type { VmView } from "../vm/types.js";

let dir: string;
let fd: number;
let written: Buffer[];
const append = (s: string) => {
  const b = Buffer.from(s);
  writeSync(fd, b);
  written.push(b);
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vmm-rotate-"));
  fd = openSync(join(dir, "serial.log"), "a");
  written = [];
});
afterEach(() => {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

describe("rotateSerialLog", () => {
  it("leaves a small log alone", () => {
    append("boot\n");
    expect(rotateSerialLog(dir, "i1", 4096, 1)).toBe(false);
    expect(rotatedSegments(dir, "i1")).toEqual({ segments: [], base: 0 });
  });

  it("keeps `keep` copies, offsets absolute, the writer appending at the new end", () => {
    for (let round = 0; round < 5; round++) {
      append(`${String(round).repeat(5000)}\n`);
      expect(rotateSerialLog(dir, "i1", 4096, 2)).toBe(true);
    }
    append("tail\n");
    const all = Buffer.concat(written);
    const { segments, base } = rotatedSegments(dir, "i1");
    expect(base).toBe(5 * 5001);
    expect(segments.map((s) => [s.start, s.size])).toEqual([[3 * 5001, 5001], [4 * 5001, 5001]]);
    expect(existsSync(join(dir, "serial.log.3"))).toBe(false);
    // The writer's O_APPEND put "tail" at the start of the truncated file, not at its old offset.
    expect(readFileSync(join(dir, "serial.log"), "utf8")).toBe("tail\n");
    // Reading across the copies returns exactly what was written there.
    expect(readSegments(segments, 3 * 5001, 2 * 5001).equals(all.subarray(3 * 5001, 5 * 5001))).toBe(true);
    expect(readSegments(segments, 3 * 5001 + 10, 100).equals(all.subarray(3 * 5001 + 10, 3 * 5001 + 110))).toBe(true);
  });

  it("keep = 0 drops the front", () => {
    append("x".repeat(5000));
    rotateSerialLog(dir, "i1", 4096, 0);
    expect(statSync(join(dir, "serial.log")).size).toBe(0);
    expect(rotatedSegments(dir, "i1")).toEqual({ segments: [], base: 5000 });
  });

  it("another boot's copies do not count, and are replaced", () => {
    append("a".repeat(5000));
    rotateSerialLog(dir, "old", 4096, 1);
    expect(rotatedSegments(dir, "new")).toEqual({ segments: [], base: 0 });
    append("b".repeat(5000));
    rotateSerialLog(dir, "new", 4096, 1);
    expect(rotatedSegments(dir, "new").segments.map((s) => [s.start, s.size])).toEqual([[0, 5000]]);
    expect(readFileSync(join(dir, "serial.log.1"), "utf8")).toBe("b".repeat(5000));
  });
});

describe("SerialFileSource over a rotated log", () => {
  it("first/end/read keep the ReadConsole offset contract", () => {
    const view = { record: { id: "vm1" }, runtime: { status: "running", instanceId: "i1" } } as unknown as VmView;
    const vms: VmLookup = { get: () => view, events: new EventEmitter() };
    const src = new SerialFileSource(vms, () => dir);
    append("0123456789".repeat(500)); // 5000 bytes
    rotateSerialLog(dir, "i1", 4096, 1);
    append("abcdef");
    const log = src.open("vm1", "i1")!;
    expect(log.first()).toBe(0);
    expect(log.end()).toBe(5006);
    const all = Buffer.concat(written);
    expect(log.read(0, 10000).equals(all)).toBe(true); // one read spans the copy and the live file
    expect(log.read(4998, 4).toString()).toBe("89ab");
    append("x".repeat(5000));
    rotateSerialLog(dir, "i1", 4096, 1);
    expect(log.first()).toBe(5000); // the first copy was replaced: bytes 0-4999 are gone
    expect(log.end()).toBe(10006);
    expect(log.read(5000, 6).toString()).toBe("abcdef");
    log.close();
  });
});

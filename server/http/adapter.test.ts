// The gRPC-Web body rewriting of the Connect adapter (pure).
import { describe, expect, it } from "vitest";
import { fixGrpcWebBody, fixGrpcWebTrailer } from "./adapter.js";

function frame(flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

async function collect(chunks: Buffer[]): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const c of fixGrpcWebBody((async function* () { yield* chunks; })())) out.push(c);
  return Buffer.concat(out);
}

const PARSE_TRAILER = "grpc-status: 13\r\ngrpc-message: parse%20binary%3A%20premature%20EOF\r\n";

describe("fixGrpcWebTrailer", () => {
  it("turns a binary-parse internal into invalid_argument", () => {
    expect(fixGrpcWebTrailer(PARSE_TRAILER)).toBe("grpc-status: 3\r\ngrpc-message: parse%20binary%3A%20premature%20EOF\r\n");
  });
  it.each([
    ["another internal", "grpc-status: 13\r\ngrpc-message: boom\r\n"],
    ["ok", "grpc-status: 0\r\n"],
    ["a parse message with another code", "grpc-status: 2\r\ngrpc-message: parse%20binary%3A%20x\r\n"],
  ])("leaves %s alone", (_name, block) => {
    expect(fixGrpcWebTrailer(block)).toBe(block);
  });
});

describe("fixGrpcWebBody", () => {
  const data = frame(0, Buffer.from([1, 2, 3, 0x80, 0xff]));
  const trailer = frame(0x80, Buffer.from(PARSE_TRAILER, "latin1"));
  const fixed = frame(0x80, Buffer.from(PARSE_TRAILER.replace("13", "3"), "latin1"));

  it("passes data frames through and rewrites the trailer frame with its new length", async () => {
    expect(await collect([Buffer.concat([data, trailer])])).toEqual(Buffer.concat([data, fixed]));
  });

  it("handles frames split at every byte", async () => {
    const whole = Buffer.concat([data, data, trailer]);
    const bytes = [...whole].map((b) => Buffer.from([b]));
    expect(await collect(bytes)).toEqual(Buffer.concat([data, data, fixed]));
  });

  it("passes a truncated frame on unchanged", async () => {
    const cut = trailer.subarray(0, 9);
    expect(await collect([data, cut])).toEqual(Buffer.concat([data, cut]));
  });
});


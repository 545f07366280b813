import { describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { CreateVmRequestSchema } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { keepByteOrderMarks } from "./text-encoding.js";

describe("keepByteOrderMarks", () => {
  it("a leading U+FEFF survives binary decoding, as it does JSON", () => {
    keepByteOrderMarks();
    const bytes = toBinary(CreateVmRequestSchema, create(CreateVmRequestSchema, { config: { name: "\uFEFFweb" } }));
    expect(fromBinary(CreateVmRequestSchema, bytes).config!.name).toBe("\uFEFFweb");
  });

  it("invalid UTF-8 is still refused", () => {
    keepByteOrderMarks();
    // field 2 (config), length 5: field 1 (name), length 3: 0xff 'a' 'b'
    const bytes = new Uint8Array([0x12, 0x05, 0x0a, 0x03, 0xff, 0x61, 0x62]);
    expect(() => fromBinary(CreateVmRequestSchema, bytes)).toThrow(/not valid for encoding utf-8/);
  });
});

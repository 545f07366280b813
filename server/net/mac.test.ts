import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.js";
import { deriveMac, parseMacPrefix } from "./mac.js";
import { isMulticastMac, normalizeMac } from "../check.js";

describe("deriveMac", () => {
  it.each([
    // upstream vectors
    { id: "vm-123", nic: 0, prefix: "", mac: "96:b1:d8:b9:08:e6" },
    { id: "vm-123", nic: 0, prefix: "52:54:00", mac: "52:54:00:97:b1:d8" },
    { id: "vm-123", nic: 1, prefix: "", mac: "c6:74:2c:65:14:b9" },
    // prefixes of every length; the hash bytes follow the prefix
    { id: "vm-123", nic: 0, prefix: "52", mac: "52:97:b1:d8:b9:08" },
    { id: "vm-123", nic: 0, prefix: "52:54", mac: "52:54:97:b1:d8:b9" },
    { id: "vm-123", nic: 1, prefix: "52:54:00", mac: "52:54:00:c5:74:2c" },
    // a multicast / globally administered prefix is fixed up: 01 -> 02, ff -> fe
    { id: "vm-123", nic: 0, prefix: "01:00:5e", mac: "02:00:5e:97:b1:d8" },
    { id: "vm-123", nic: 0, prefix: "FF-EE-DD", mac: "fe:ee:dd:97:b1:d8" },
  ])("$id nic $nic prefix '$prefix' -> $mac", ({ id, nic, prefix, mac }) => {
    expect(deriveMac(id, nic, prefix)).toBe(mac);
  });

  it("is unicast and locally administered for many ids", () => {
    for (let i = 0; i < 500; i++) {
      const b0 = parseInt(deriveMac(`vm-${i}`, i % 3, "").slice(0, 2), 16);
      expect(b0 & 1).toBe(0);
      expect(b0 & 2).toBe(2);
    }
  });

  it("differs per NIC index", () => {
    expect(deriveMac("a", 0, "")).not.toBe(deriveMac("a", 1, ""));
    expect(deriveMac("a", 1, "")).not.toBe(deriveMac("a", 2, ""));
  });

  it.each([-1, 1.5, NaN])("rejects nic index %s", (n) => {
    expect(() => deriveMac("a", n, "")).toThrow(RangeError);
  });

  it("rejects a bad prefix naming mac_prefix", () => {
    expect(() => deriveMac("a", 0, "52:54:00:11")).toThrow(/mac_prefix/);
  });
});

describe("parseMacPrefix", () => {
  it.each([
    { s: "", bytes: [] },
    { s: "52", bytes: [0x52] },
    { s: "52:54", bytes: [0x52, 0x54] },
    { s: "52:54:00", bytes: [0x52, 0x54, 0x00] },
    { s: "AA-bb-0C", bytes: [0xaa, 0xbb, 0x0c] },
  ])("'$s' -> $bytes", ({ s, bytes }) => {
    expect(parseMacPrefix(s)).toEqual(bytes);
  });

  it.each(["52:54:00:11", "5", "525400", "52:54:", ":52", "gg", "52:54-00", " 52", "52\n", "52,54"])(
    "rejects %j",
    (s) => {
      let err: unknown;
      try {
        parseMacPrefix(s, "config.mac_prefix");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).problems[0]!.field).toBe("config.mac_prefix");
    },
  );
});

describe("normalizeMac", () => {
  it.each([
    { s: "52:54:00:12:34:56", out: "52:54:00:12:34:56" },
    { s: "52:54:00:AB:CD:EF", out: "52:54:00:ab:cd:ef" },
    { s: "52-54-00-ab-cd-ef", out: "52:54:00:ab:cd:ef" },
    { s: "52:54:00:12:34", out: null },
    { s: "52:54:00:12:34:56:78", out: null },
    { s: "52:54:00:12:34:5", out: null },
    { s: "52:54-00:12:34:56", out: null },
    { s: "525400123456", out: null },
    { s: "52:54:00:12:34:zz", out: null },
    { s: "", out: null },
    { s: "52:54:00:12:34:56\n", out: null },
  ])("$s -> $out", ({ s, out }) => {
    expect(normalizeMac(s)).toBe(out);
  });

  it("detects multicast", () => {
    expect(isMulticastMac("01:00:5e:00:00:01")).toBe(true);
    expect(isMulticastMac("52:54:00:00:00:01")).toBe(false);
    expect(isMulticastMac("junk")).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { answerers, arpRequest, parseArp } from "./neighbour.js";

/** An ARP reply frame "ip is at mac" as a guest kernel sends it. */
function reply(mac: string, ip: string, toMac: string, toIp: string): Buffer {
  const hex = (m: string) => m.split(":").join("");
  const ipHex = (a: string) => a.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("");
  return Buffer.from(`${hex(toMac)}${hex(mac)}0806` + `0001080006040002${hex(mac)}${ipHex(ip)}${hex(toMac)}${ipHex(toIp)}` + "00".repeat(18), "hex");
}

describe("ARP frames", () => {
  it("builds a broadcast request that parses back", () => {
    const f = arpRequest("02:00:00:00:00:01", "10.20.0.1", "10.20.0.57");
    expect(f.length).toBe(42);
    expect(f.subarray(0, 6).toString("hex")).toBe("ffffffffffff");
    expect(f.subarray(12, 14).toString("hex")).toBe("0806");
    expect(parseArp(f)).toEqual({ op: 1, senderMac: "02:00:00:00:00:01", senderIp: "10.20.0.1", targetMac: "00:00:00:00:00:00", targetIp: "10.20.0.57" });
  });

  it("a unicast request goes to the one MAC and is otherwise the same request", () => {
    const f = arpRequest("02:00:00:00:00:01", "10.20.0.1", "10.20.0.57", "52:54:00:ab:66:1e");
    expect(f.subarray(0, 6).toString("hex")).toBe("525400ab661e");
    expect(parseArp(f)).toEqual(parseArp(arpRequest("02:00:00:00:00:01", "10.20.0.1", "10.20.0.57")));
  });

  it("an RFC 5227 probe has sender address 0.0.0.0", () => {
    expect(parseArp(arpRequest("02:00:00:00:00:01", "0.0.0.0", "10.20.0.57"))!.senderIp).toBe("0.0.0.0");
  });

  it.each([
    { name: "a reply (padded to 60 bytes)", frame: reply("52:54:00:ab:66:1e", "10.20.0.57", "02:00:00:00:00:01", "10.20.0.1"), op: 2 },
    { name: "too short", frame: Buffer.alloc(41), op: undefined },
    { name: "not ARP (IPv4 ethertype)", frame: Buffer.from(reply("52:54:00:ab:66:1e", "10.20.0.57", "02:00:00:00:00:01", "10.20.0.1").toString("hex").replace(/0806/, "0800"), "hex"), op: undefined },
    { name: "IPv6 protocol type", frame: (() => { const f = reply("52:54:00:ab:66:1e", "10.20.0.57", "02:00:00:00:00:01", "10.20.0.1"); f.writeUInt16BE(0x86dd, 16); return f; })(), op: undefined },
    { name: "unknown opcode (RARP 3)", frame: (() => { const f = reply("52:54:00:ab:66:1e", "10.20.0.57", "02:00:00:00:00:01", "10.20.0.1"); f.writeUInt16BE(3, 20); return f; })(), op: undefined },
  ])("parseArp: $name", ({ frame, op }) => {
    expect(parseArp(frame)?.op).toBe(op);
  });

  it("answerers: replies for the address only, each MAC once, in order", () => {
    const frames = [
      arpRequest("02:00:00:00:00:09", "10.20.0.9", "10.20.0.57"), // someone else's request
      reply("52:54:00:00:00:02", "10.20.0.58", "02:00:00:00:00:01", "10.20.0.1"), // another address
      reply("52:54:00:00:00:01", "10.20.0.57", "02:00:00:00:00:01", "10.20.0.1"),
      reply("52:54:00:00:00:03", "10.20.0.57", "02:00:00:00:00:01", "10.20.0.1"), // a conflicting answer
      reply("52:54:00:00:00:01", "10.20.0.57", "02:00:00:00:00:01", "10.20.0.1"), // repeated
      Buffer.from("garbage"),
    ];
    expect(answerers(frames, "10.20.0.57")).toEqual(["52:54:00:00:00:01", "52:54:00:00:00:03"]);
  });
});

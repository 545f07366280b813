import { describe, expect, it } from "vitest";
import { parseNetDev, parseProcStat, parseRssBytes, parseTunIff } from "./proc.js";

const stat = (comm: string, utime: number, stime: number, threads: number, start: number, nice = 0) =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194560 1000 0 0 0 ${utime} ${stime} 0 0 ${20 + nice} ${nice} ${threads} 0 ${start} 3133440 389 18446744073709551615 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0`;

describe("parseProcStat", () => {
  it.each([
    ["plain name", stat("qemu-system-x86", 150, 50, 7, 103667), { cpuTicks: 200, startTime: 103667, threads: 7, nice: 0 }],
    ["name with spaces and parens", stat("a (b) c", 1, 2, 1, 5), { cpuTicks: 3, startTime: 5, threads: 1, nice: 0 }],
    ["name ending in ')'", stat("x)", 10, 0, 3, 9), { cpuTicks: 10, startTime: 9, threads: 3, nice: 0 }],
    ["a negative nice", stat("node", 1, 1, 11, 7, -5), { cpuTicks: 2, startTime: 7, threads: 11, nice: -5 }],
  ])("%s", (_n, text, want) => {
    expect(parseProcStat(text)).toEqual(want);
  });
  it.each([["empty", ""], ["no parenthesis", "4242 qemu S 1"], ["truncated", "4242 (qemu) S 1 2 3"]])("rejects %s", (_n, text) => {
    expect(parseProcStat(text)).toBeUndefined();
  });
});

describe("parseRssBytes", () => {
  it.each([
    ["Name:\tqemu\nVmRSS:\t  235012 kB\nThreads:\t7\n", 235012 * 1024],
    ["VmRSS: 0 kB", 0],
    ["Name:\tkthreadd\nThreads:\t1\n", undefined],
  ])("%j", (text, want) => {
    expect(parseRssBytes(text)).toBe(want);
  });
});

describe("parseTunIff", () => {
  it.each([
    ["pos:\t0\nflags:\t0104002\nmnt_id:\t25\nino:\t1046\niff:\tvnet0\n", "vnet0"],
    ["pos:\t0\nflags:\t02\n", undefined],
  ])("%j", (text, want) => {
    expect(parseTunIff(text)).toBe(want);
  });
});

describe("parseNetDev", () => {
  it("reads bytes and packets each way and skips the headers", () => {
    const text = [
      "Inter-|   Receive                                                |  Transmit",
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
      "    lo:    4344      45    0    0    0     0          0         0     4344      45    0    0    0     0       0          0",
      "vtab12n0: 1000 10 0 0 0 0 0 0 2000000 1500 0 0 0 0 0 0",
      "broken: 1 2 3",
      "",
    ].join("\n");
    expect(parseNetDev(text)).toEqual(
      new Map([
        ["lo", { rxBytes: 4344, rxPackets: 45, txBytes: 4344, txPackets: 45 }],
        ["vtab12n0", { rxBytes: 1000, rxPackets: 10, txBytes: 2000000, txPackets: 1500 }],
      ]),
    );
  });
});

// setThreadNice: the calling thread's nice value, and nothing it starts
// inherits a negative one (SCHED_RESET_ON_FORK). Runs as root, as the suite
// does (a negative nice needs CAP_SYS_NICE).
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setThreadNice } from "./sched.js";
import { parseProcStat } from "../server/stats/proc.js";

const niceOf = (stat: string) => parseProcStat(stat)!.nice;

describe("setThreadNice", () => {
  afterAll(() => setThreadNice(0));

  it("sets this thread's nice and lets children start at 0", () => {
    setThreadNice(-3);
    expect(niceOf(readFileSync("/proc/thread-self/stat", "utf8"))).toBe(-3);
    const child = spawnSync("cat", ["/proc/self/stat"], { encoding: "utf8" });
    expect(child.status).toBe(0);
    // Without SCHED_RESET_ON_FORK the child would inherit -3.
    expect(niceOf(child.stdout)).toBe(0);
  });

  it("refuses values out of range, naming them", () => {
    for (const bad of [-21, 20, 1.5, Number.NaN]) expect(() => setThreadNice(bad)).toThrow(/Usage: setThreadNice\(nice: integer -20\.\.19\)/);
  });
});

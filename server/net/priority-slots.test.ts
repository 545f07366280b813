import { describe, expect, it } from "vitest";
import { PrioritySlots } from "./priority-slots.js";

/** A job that runs until released; records when it started. */
function job(log: string[], name: string) {
  let done!: () => void;
  const gate = new Promise<void>((r) => (done = r));
  return { done, fn: async () => (log.push(name), await gate, name) };
}

describe("PrioritySlots", () => {
  it("keeps each priority within its budget, in arrival order, and never makes one wait for the other", async () => {
    const slots = new PrioritySlots({ report: 2, background: 1 });
    const started: string[] = [];
    const b1 = job(started, "b1");
    const b2 = job(started, "b2");
    const r1 = job(started, "r1");
    const r2 = job(started, "r2");
    const r3 = job(started, "r3");
    const runs = [slots.run("background", b1.fn), slots.run("background", b2.fn), slots.run("report", r1.fn), slots.run("report", r2.fn), slots.run("report", r3.fn)];
    await new Promise((r) => setTimeout(r, 10));
    // The busy background slot holds up b2 only; two reports run at once.
    expect(started).toEqual(["b1", "r1", "r2"]);
    expect([slots.inFlight("report"), slots.inFlight("background")]).toEqual([2, 1]);
    r1.done();
    await new Promise((r) => setTimeout(r, 10));
    expect(started).toEqual(["b1", "r1", "r2", "r3"]);
    b1.done();
    await new Promise((r) => setTimeout(r, 10));
    expect(started.at(-1)).toBe("b2");
    for (const j of [b2, r2, r3]) j.done();
    expect(await Promise.all(runs)).toEqual(["b1", "b2", "r1", "r2", "r3"]);
    expect([slots.inFlight("report"), slots.inFlight("background")]).toEqual([0, 0]);
  });

  it("frees the slot when the work fails", async () => {
    const slots = new PrioritySlots({ report: 1 });
    await expect(slots.run("report", async () => Promise.reject(new Error("EPERM")))).rejects.toThrow("EPERM");
    expect(slots.inFlight("report")).toBe(0);
    expect(await slots.run("report", async () => "ok")).toBe("ok");
  });
});

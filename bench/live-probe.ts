// The "rule live" clock of bench/lease.ts, in a process of its own: on each
// line "<port>" from stdin it connects to 127.0.0.1:<port> until one
// connect succeeds, 0.1 ms apart, then prints the CLOCK_MONOTONIC time of
// that success in nanoseconds (process.hrtime, comparable across processes).
//
// lease.ts runs it under SCHED_IDLE (chrt --idle 0), and it sleeps between
// attempts, so the daemon and the relay being measured do not wait for it:
//   * a back-to-back connect loop in the benchmark's own process took one of
//     the two cores;
//   * a back-to-back loop at SCHED_IDLE still ran for whole 4 ms ticks while
//     vmmd or vmm-relayd, runnable, waited beside it on the same CPU (a
//     scheduler trace showed it: EEVDF picks a SCHED_IDLE task, whose weight
//     is tiny but not zero, when the runnable normal tasks have used more
//     than their share). Those ticks were most of the daemon's 99th
//     percentile. Sleeping 0.1 ms between attempts leaves it no tick to take.
import { accepts } from "./accepts.js";
import { createInterface } from "node:readline";

const DEADLINE_NS = 10_000_000_000n;
const PAUSE_MS = 0.1;
// Atomics.wait: a sleep of less than setTimeout's 1 ms (this process has
// nothing else to do while it probes).
const cell = new Int32Array(new SharedArrayBuffer(4));

createInterface({ input: process.stdin }).on("line", (line) => {
  const port = Number(line);
  void (async () => {
    const end = process.hrtime.bigint() + DEADLINE_NS;
    while (!(await accepts(port))) {
      Atomics.wait(cell, 0, 0, PAUSE_MS);
      if (process.hrtime.bigint() > end) {
        process.stdout.write("timeout\n");
        return;
      }
    }
    process.stdout.write(`${process.hrtime.bigint()}\n`);
  })();
});

// The "rule live" clock of bench/lease.ts, in a process of its own: on each
// line "<port>" from stdin it connects to 127.0.0.1:<port> back to back
// until one connect succeeds, then prints the CLOCK_MONOTONIC time of that
// success in nanoseconds (process.hrtime, comparable across processes).
//
// lease.ts runs it under SCHED_IDLE (chrt --idle 0): it only gets a CPU
// nobody else wants, so the daemon and the relay being measured never wait
// for it (a back-to-back connect loop in the benchmark's own process took
// one of the two cores and put scheduler delays into the figures it
// measured), yet it sees the listener as soon as a CPU is free.
import { accepts } from "./accepts.js";
import { createInterface } from "node:readline";

const DEADLINE_NS = 10_000_000_000n;

createInterface({ input: process.stdin }).on("line", (line) => {
  const port = Number(line);
  void (async () => {
    const end = process.hrtime.bigint() + DEADLINE_NS;
    while (!(await accepts(port))) {
      if (process.hrtime.bigint() > end) {
        process.stdout.write("timeout\n");
        return;
      }
    }
    process.stdout.write(`${process.hrtime.bigint()}\n`);
  })();
});

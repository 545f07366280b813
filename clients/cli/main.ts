#!/usr/bin/env node
// vmm-cli: command-line client of vmmd. See docs/cli.md.
import { run } from "./program.js";
import { processTerminal } from "./console.js";

const ctl = new AbortController();
process.once("SIGINT", () => ctl.abort());
process.once("SIGTERM", () => ctl.abort());
// `vmm-cli lsvm | head -1`: a closed pipe is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

const code = await run(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
  cwd: process.cwd(),
  signal: ctl.signal,
  tty: processTerminal(),
});
// Exit once stdout is flushed; keep-alive sockets must not hold the process.
if (process.stdout.writableLength > 0) process.stdout.once("drain", () => process.exit(code));
else process.exit(code);

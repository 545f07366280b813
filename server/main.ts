#!/usr/bin/env node
// vmmd: the VM manager daemon.
//
//   vmmd [--config vmm.toml]     run (no file: the embedded defaults)
//   vmmd --check-config FILE     validate a config file and exit
//   vmmd --print-config [FILE]   print the effective configuration as vmm.toml
//
// Once listening it prints one JSON line on stdout:
//   {"ready":true,"pid":123,"socket":"/path/vmmd.sock","tcp":"127.0.0.1:8080","version":"0.1.0"}
import { parseArgs } from "node:util";
import { loadConfig, toToml } from "./config/load.js";
import { startDaemon } from "./daemon.js";
import { log } from "./log.js";
import { VmmError } from "./errors.js";
import { VERSION } from "./version.js";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      config: { type: "string", short: "c" },
      "check-config": { type: "boolean" },
      "print-config": { type: "boolean" },
      version: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write("usage: vmmd [--config vmm.toml] [--check-config] [--print-config] [--version]\n");
    return 0;
  }
  if (values.version) {
    process.stdout.write(`vmmd ${VERSION}\n`);
    return 0;
  }
  const cfg = loadConfig(values.config);
  if (values["check-config"]) {
    process.stdout.write(`${values.config ?? "(embedded defaults)"}: ok\n`);
    return 0;
  }
  if (values["print-config"]) {
    process.stdout.write(toToml(cfg));
    return 0;
  }
  const d = await startDaemon(cfg);
  log("info", "vmmd listening", { socket: d.socket, tcp: d.tcp, stateDir: cfg.stateDir, qemu: d.caps.qemuVersion || "not found", modes: d.caps.modes });
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, socket: d.socket, tcp: d.tcp, version: VERSION }) + "\n");
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log("info", "shutting down", { signal: sig });
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await d.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    const msg = e instanceof VmmError ? e.message : (e as Error).stack ?? String(e);
    process.stderr.write(`vmmd: ${msg}\n`);
    process.exit(e instanceof VmmError && e.kind === "invalid" ? 2 : 1);
  },
);

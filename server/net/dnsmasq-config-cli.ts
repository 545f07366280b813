#!/usr/bin/env node
// Prints a dnsmasq.conf made by the project's one generator
// (dnsmasq-config.ts), for scripts/setup-bridge.sh:
//
//   node dist/server/net/dnsmasq-config-cli.js --writer "setup-bridge.sh for bridge vmmbr0" \
//     --interface vmmbr0 --range-start 10.20.0.50 --range-end 10.20.0.200 --netmask 255.255.255.0 \
//     --router 10.20.0.1 --script /path/vmm-dhcp-hook \
//     --lease-file /var/lib/vmm/bridge-vmmbr0/dnsmasq.leases --pid-file ... --log-file ...
//
// Exit 0 with the file on stdout; 2 with every bad option on stderr.
import { parseArgs } from "node:util";
import { ValidationError } from "../errors.js";
import { dnsmasqConfig } from "./dnsmasq-config.js";

function main(): number {
  const { values: v } = parseArgs({
    options: {
      writer: { type: "string" },
      interface: { type: "string" },
      dns: { type: "boolean" },
      "range-start": { type: "string" },
      "range-end": { type: "string" },
      netmask: { type: "string" },
      "lease-time": { type: "string" },
      router: { type: "string" },
      script: { type: "string" },
      "lease-file": { type: "string" },
      "pid-file": { type: "string" },
      "log-file": { type: "string" },
    },
    strict: true,
  });
  const text = dnsmasqConfig({
    writer: v.writer ?? "",
    interface: v.interface ?? "",
    dns: v.dns ?? false,
    dhcp: {
      rangeStart: v["range-start"] ?? "",
      rangeEnd: v["range-end"] ?? "",
      netmask: v.netmask ?? "",
      ...(v["lease-time"] !== undefined ? { leaseTime: v["lease-time"] } : {}),
      ...(v.router !== undefined ? { router: v.router } : {}),
      ...(v.script !== undefined ? { script: v.script } : {}),
    },
    leaseFile: v["lease-file"] ?? "",
    pidFile: v["pid-file"] ?? "",
    logFile: v["log-file"] ?? "",
  });
  process.stdout.write(text);
  return 0;
}

/** The command-line option of a generator field: "dhcp.range_start" -> "--range-start". */
const optionOf = (field: string) => `--${field.replace(/^dhcp\./, "").replace(/_/g, "-")}`;

try {
  process.exitCode = main();
} catch (e) {
  const lines = e instanceof ValidationError ? e.problems.map((p) => `${optionOf(p.field)}: ${p.message}`) : [(e as Error).message];
  for (const l of lines) process.stderr.write(`dnsmasq-config: ${l}\n`);
  process.exitCode = 2;
}

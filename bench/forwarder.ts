// The vmm forwarder as a process of its own, for bench/main.ts:
//   node dist/bench/forwarder.js <native|sockets> '<ForwardRule[] as JSON>'
// Prints "ready <relayKind> <pid>..." once every rule listens, where the PIDs
// are the processes carrying the forwarded bytes (vmm-relayd's processes for
// native, this process for sockets); exits on SIGTERM.
import { ForwardService } from "../server/forward/service.js";
import type { ForwardRule } from "../server/forward/rules.js";

const [kind, rules] = process.argv.slice(2);
if ((kind !== "native" && kind !== "sockets") || rules === undefined) {
  process.stderr.write("usage: forwarder.js <native|sockets> '<rules JSON>'\n");
  process.exit(2);
}
// BENCH_RELAY_WORKERS: vmm-relayd processes (default: one per CPU).
const workers = process.env.BENCH_RELAY_WORKERS ? Number(process.env.BENCH_RELAY_WORKERS) : undefined;
const svc = new ForwardService({ relay: kind, maxConnectionsPerRule: 30_000, maxUdpSessionsPerRule: 4096, relayWorkers: workers });
await svc.apply("bench", JSON.parse(rules) as ForwardRule[]);
process.stdout.write(`ready ${svc.relayKind} ${(await svc.dataPathPids()).join(" ")}\n`);
process.on("SIGTERM", () => {
  void svc.close().then(() => process.exit(0));
});

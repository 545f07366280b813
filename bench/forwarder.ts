// The vmm forwarder as a process of its own, for bench/main.ts:
//   node dist/bench/forwarder.js <native|sockets|nat> '<ForwardRule[] as JSON>' [poll µs]
// Prints "ready <path> <pid>..." once every rule is live, where the PIDs are
// the processes carrying the forwarded bytes (vmm-relayd's processes for
// native, this process for sockets, none for nat: the kernel); exits on
// SIGTERM, closing every rule (nat rules included).
import { ForwardService } from "../server/forward/service.js";
import type { ForwardRule } from "../server/forward/rules.js";

const [kind, rules, poll] = process.argv.slice(2);
if ((kind !== "native" && kind !== "sockets" && kind !== "nat") || rules === undefined) {
  process.stderr.write("usage: forwarder.js <native|sockets|nat> '<rules JSON>' [poll µs]\n");
  process.exit(2);
}
// BENCH_RELAY_WORKERS: vmm-relayd processes (default: one per CPU).
const workers = process.env.BENCH_RELAY_WORKERS ? Number(process.env.BENCH_RELAY_WORKERS) : undefined;
// [poll µs]: vmm-relayd's longest busy poll (default: vmmd's).
const pollUs = poll !== undefined ? Number(poll) : undefined;
const svc = new ForwardService({
  relay: kind === "sockets" ? "sockets" : "native",
  maxConnectionsPerRule: 30_000,
  maxUdpSessionsPerRule: 4096,
  relayWorkers: workers,
  relayPollUs: pollUs,
});
await svc.apply("bench", JSON.parse(rules) as ForwardRule[]);
const pids = kind === "nat" ? [] : await svc.dataPathPids();
process.stdout.write(`ready ${kind}${pids.map((p) => ` ${p}`).join("")}\n`);
process.on("SIGTERM", () => {
  void svc.close().then(() => process.exit(0));
});

// `vmm-cli top`: every VM with its CPU %, memory and traffic, refreshed
// until Ctrl-C (GetVmStats per running VM). One line per VM, then one per
// NIC of running VMs; rates come from two refreshes' counters.
import type { Command } from "commander";
import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { GetVmStatsResponseSchema, VmmService, VmStatus, type GetVmStatsResponse, type VmInfo } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { enumName, formatBytes, formatDuration } from "../format.js";
import { parseUint } from "../parse.js";
import { renderTable, sanitize } from "../table.js";
import { UsageError } from "../errors.js";
import type { Io } from "../program.js";

/** What `top` needs of the CLI session. */
export interface TopSession {
  vmm(): Client<typeof VmmService>;
  readonly io: Io;
  readonly json: boolean;
}

/** One refresh: every VM and, for running ones, a sample. */
export interface TopFrame {
  /** Milliseconds (Date.now()) when the frame was taken. */
  at: number;
  vms: { info: VmInfo; stats?: GetVmStatsResponse }[];
}

const rate = (now: bigint, before: bigint | undefined, seconds: number) =>
  before === undefined || seconds <= 0 || now < before ? "-" : `${formatBytes(Number(now - before) / seconds)}/s`;

/** The text of one frame; `prev` (the frame before) gives the rates. */
export function renderTop(f: TopFrame, prev?: TopFrame): string {
  const running = f.vms.filter((v) => v.info.status === VmStatus.RUNNING).length;
  const dt = prev ? (f.at - prev.at) / 1000 : 0;
  const before = new Map(prev?.vms.map((v) => [v.info.id, v.stats]) ?? []);
  const rows: (string | undefined)[][] = [];
  for (const { info, stats } of f.vms) {
    const sampled = stats?.sampledAt !== undefined;
    const nics = sampled ? stats!.nics : [];
    const counted = nics.filter((n) => n.hostInterface !== "");
    const old = before.get(info.id);
    const sameBoot = old?.instanceId === stats?.instanceId;
    const sum = (s: GetVmStatsResponse | undefined, k: "rxBytes" | "txBytes") =>
      s && s.sampledAt && sameBoot ? s.nics.filter((n) => n.hostInterface !== "").reduce((a, n) => a + n[k], 0n) : undefined;
    const rx = counted.reduce((a, n) => a + n.rxBytes, 0n);
    const tx = counted.reduce((a, n) => a + n.txBytes, 0n);
    rows.push([
      info.id,
      info.name,
      enumName(VmStatus, info.status),
      sampled ? stats!.cpuPercent.toFixed(1) : undefined,
      sampled ? formatBytes(stats!.memoryRssBytes) : undefined,
      sampled ? formatBytes(stats!.memoryConfiguredBytes) : undefined,
      sampled ? formatDuration(stats!.uptimeSeconds) : undefined,
      counted.length > 0 ? rate(rx, sum(old, "rxBytes"), dt) : undefined,
      counted.length > 0 ? rate(tx, sum(old, "txBytes"), dt) : undefined,
    ]);
    for (const n of nics) {
      rows.push([
        `  nic${n.index}`,
        n.hostInterface || "(no host interface)",
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        n.hostInterface ? `${formatBytes(n.rxBytes)} ${n.rxPackets}p` : undefined,
        n.hostInterface ? `${formatBytes(n.txBytes)} ${n.txPackets}p` : undefined,
      ]);
    }
  }
  const head = `vmm top - ${new Date(f.at).toISOString().slice(11, 19)} - ${f.vms.length} VMs, ${running} running\n\n`;
  return head + renderTable(["ID", "NAME", "STATUS", "CPU%", "RSS", "MEMORY", "UPTIME", "RX", "TX"], rows.map((r) => r.map((c) => (c === undefined ? undefined : sanitize(c)))));
}

async function takeFrame(s: TopSession, signal: AbortSignal | undefined): Promise<TopFrame> {
  const vms: VmInfo[] = [];
  let pageToken = "";
  do {
    const r = await s.vmm().listVms({ brief: true, pageToken, pageSize: 1000 }, { signal });
    vms.push(...r.vms);
    pageToken = r.nextPageToken;
  } while (pageToken !== "");
  const stats = await Promise.all(
    vms.map((v) =>
      v.status === VmStatus.RUNNING
        ? s
            .vmm()
            .getVmStats({ id: v.id }, { signal })
            .catch((e: unknown) => {
              // Removed or stopped between the listing and the sample: no stats this time.
              if (e instanceof ConnectError && e.code === Code.NotFound) return undefined;
              throw e;
            })
        : Promise.resolve(undefined),
    ),
  );
  return { at: Date.now(), vms: vms.map((info, i) => ({ info, ...(stats[i] ? { stats: stats[i] } : {}) })) };
}

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/** Registers `top` on the program. */
export function registerTopCommand(program: Command, s: TopSession): void {
  program
    .command("top")
    .description("CPU, memory and traffic of every VM, refreshed until Ctrl-C")
    .option("-i, --interval <seconds>", "seconds between refreshes (1-3600)", "2")
    .option("-n, --iterations <count>", "stop after this many refreshes (default: until Ctrl-C)")
    .option("--no-clear", "append frames instead of redrawing the screen (default when stdout is not a terminal)")
    .action(async (o: { interval: string; iterations?: string; clear: boolean }) => {
      const interval = parseUint("--interval", o.interval, 1, 3600);
      const iterations = o.iterations === undefined ? ({ ok: true, value: Infinity } as const) : parseUint("--iterations", o.iterations, 1, 1_000_000);
      if (!interval.ok || !iterations.ok) {
        const problems = [interval, iterations].flatMap((r) => (r.ok ? [] : r.problems));
        throw new UsageError(problems.length === 1 ? problems[0]! : "invalid flags:\n  " + problems.join("\n  "));
      }
      const every = interval.value * 1000;
      const count = iterations.value;
      const redraw = o.clear && process.stdout.isTTY === true;
      const signal = s.io.signal;
      let prev: TopFrame | undefined;
      try {
        for (let i = 0; i < count && !signal?.aborted; i++) {
          if (i > 0) await sleep(every, signal);
          if (signal?.aborted) break;
          const f = await takeFrame(s, signal);
          if (s.json) {
            for (const v of f.vms) if (v.stats) s.io.out(JSON.stringify(toJson(GetVmStatsResponseSchema, v.stats)) + "\n");
          } else {
            s.io.out((redraw ? "\x1b[H\x1b[2J" : i > 0 ? "\n" : "") + renderTop(f, prev));
          }
          prev = f;
        }
      } catch (e) {
        // Ctrl-C during a call ends the command normally.
        if (signal?.aborted && e instanceof ConnectError && e.code === Code.Canceled) return;
        throw e;
      }
    });
}

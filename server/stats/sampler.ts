// Resource use of running VMs: CPU time, threads and RSS of the QEMU
// process from /proc/<pid>, traffic per NIC from the counters of the NIC's
// host interface (/proc/net/dev of the daemon's network namespace). Read on
// demand (GetVmStats, a metrics scrape); nothing runs in the background.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { NetMode } from "../config/types.js";
import type { VmStatus, VmView } from "../vm/types.js";
import { parseNetDev, parseProcStat, parseRssBytes, parseTunIff, USER_HZ, type IfCounters } from "./proc.js";

/** Traffic of one NIC as the guest sees it (rx: received by the guest). */
export interface NicSample {
  index: number;
  /** "" when the NIC has no host interface of its own (no counters). */
  hostInterface: string;
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
}

/** One reading of a running VM's QEMU process and NICs. */
export interface ProcessReading {
  /** Identity of the process read: "pid:starttime". */
  process: string;
  /** Monotonic time of the reading, ms. */
  at: number;
  cpuTicks: number;
  cpuSeconds: number;
  rssBytes: number;
  threads: number;
  nics: NicSample[];
}

/** What GetVmStats returns. */
export interface VmSample {
  id: string;
  status: VmStatus;
  instanceId: string;
  /** Undefined when the VM is not running (no sample). */
  reading?: ProcessReading & {
    sampledAt: Date;
    cpuPercent: number;
    cpuWindowSeconds: number;
    uptimeSeconds: number;
    configuredBytes: number;
  };
}

export interface SamplerOptions {
  /** Root of the proc filesystem (tests point it at a fixture tree). */
  procRoot?: string;
  /** Shortest window CPU % is measured over. Default 500 ms. */
  minWindowMs?: number;
  /** A previous reading older than this is not used as the window's start. Default 60 s. */
  maxWindowMs?: number;
}

/**
 * Whose counters a NIC's host interface carries, by mode. A TAP's host
 * side transmits what the guest receives; a macvtap counts from the
 * guest's side already (frames handed to the guest are its rx).
 */
const GUEST_RX_IS_HOST_TX: Partial<Record<NetMode, boolean>> = { bridge: true, tap: true, vmnet: true, macvtap: false };

export class VmStatsSampler {
  private readonly proc: string;
  private readonly minWindowMs: number;
  private readonly maxWindowMs: number;
  /** Last reading per VM id, the start of the next CPU % window. */
  private readonly last = new Map<string, { process: string; at: number; cpuTicks: number }>();

  constructor(o: SamplerOptions = {}) {
    this.proc = o.procRoot ?? "/proc";
    this.minWindowMs = o.minWindowMs ?? 500;
    this.maxWindowMs = o.maxWindowMs ?? 60_000;
  }

  /**
   * Reads a VM's QEMU process now (synchronously: a few small /proc reads).
   * Undefined when the VM is not running, or its pid no longer belongs to
   * the QEMU that was started (exited, pid reused).
   */
  read(view: VmView): ProcessReading | undefined {
    const rt = view.runtime;
    if (rt.status !== "running" || !rt.pid || rt.pidStartTime === undefined) return undefined;
    const dir = join(this.proc, String(rt.pid));
    let stat;
    let rss;
    try {
      stat = parseProcStat(readFileSync(join(dir, "stat"), "latin1"));
      rss = parseRssBytes(readFileSync(join(dir, "status"), "latin1"));
    } catch {
      return undefined; // gone
    }
    if (!stat || stat.startTime !== rt.pidStartTime) return undefined;
    return {
      process: `${rt.pid}:${stat.startTime}`,
      at: performance.now(),
      cpuTicks: stat.cpuTicks,
      cpuSeconds: stat.cpuTicks / USER_HZ,
      rssBytes: rss ?? 0,
      threads: stat.threads,
      nics: this.nics(view, dir),
    };
  }

  /** A full sample with CPU %, waiting (at most minWindowMs) when no recent reading exists. */
  async sample(view: VmView): Promise<VmSample> {
    const id = view.record.id;
    const base: VmSample = { id, status: view.runtime.status, instanceId: view.runtime.instanceId };
    const first = this.read(view);
    if (!first) return base;
    let start = this.last.get(id);
    let cur: ProcessReading | undefined = first;
    if (start && start.process === first.process && first.at - start.at < this.minWindowMs) {
      await sleep(this.minWindowMs - (first.at - start.at));
      cur = this.read(view);
    } else if (!start || start.process !== first.process || first.at - start.at > this.maxWindowMs) {
      start = { process: first.process, at: first.at, cpuTicks: first.cpuTicks };
      await sleep(this.minWindowMs);
      cur = this.read(view);
    }
    if (!cur) return base;
    this.remember(id, cur);
    const windowS = (cur.at - start.at) / 1000;
    const startedAt = view.runtime.startedAt ? Date.parse(view.runtime.startedAt) : Date.now();
    return {
      ...base,
      reading: {
        ...cur,
        sampledAt: new Date(),
        cpuPercent: windowS > 0 ? ((cur.cpuTicks - start.cpuTicks) / USER_HZ / windowS) * 100 : 0,
        cpuWindowSeconds: windowS,
        uptimeSeconds: Math.max(0, Math.floor((Date.now() - startedAt) / 1000)),
        configuredBytes: view.record.spec.memoryMib * 1024 * 1024,
      },
    };
  }

  private remember(id: string, r: ProcessReading): void {
    this.last.set(id, { process: r.process, at: r.at, cpuTicks: r.cpuTicks });
    for (const [k, v] of this.last) if (r.at - v.at > this.maxWindowMs) this.last.delete(k);
  }

  /**
   * Host interface of each NIC: the daemon's own TAP/macvtap names from the
   * runtime record; bridge-mode TAPs (created by qemu-bridge-helper) are
   * found through QEMU's /dev/net/tun fds, in fd order, which is NIC order.
   */
  private nics(view: VmView, procDir: string): NicSample[] {
    const known = view.runtime.hostInterfaces ?? [];
    const specs = view.record.spec.nics;
    const bridged = specs.some((n, i) => n.mode === "bridge" && !known[i]);
    const helperTaps = bridged ? this.tunInterfaces(procDir).filter((name) => !known.includes(name)) : [];
    let counters: Map<string, IfCounters> | undefined;
    return specs.map((nic, i) => {
      const name = known[i] || (nic.mode === "bridge" ? helperTaps.shift() ?? "" : "");
      const empty = { index: i, hostInterface: "", rxBytes: 0, rxPackets: 0, txBytes: 0, txPackets: 0 };
      const flip = GUEST_RX_IS_HOST_TX[nic.mode];
      if (name === "" || flip === undefined) return empty;
      counters ??= this.netDev();
      const c = counters.get(name);
      if (!c) return { ...empty, hostInterface: name };
      return flip
        ? { index: i, hostInterface: name, rxBytes: c.txBytes, rxPackets: c.txPackets, txBytes: c.rxBytes, txPackets: c.rxPackets }
        : { index: i, hostInterface: name, ...c };
    });
  }

  private netDev(): Map<string, IfCounters> {
    try {
      return parseNetDev(readFileSync(join(this.proc, "net", "dev"), "latin1"));
    } catch {
      return new Map();
    }
  }

  private tunInterfaces(procDir: string): string[] {
    const out: { fd: number; name: string }[] = [];
    let fds: string[];
    try {
      fds = readdirSync(join(procDir, "fd"));
    } catch {
      return [];
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(join(procDir, "fd", fd)) !== "/dev/net/tun") continue;
        const name = parseTunIff(readFileSync(join(procDir, "fdinfo", fd), "latin1"));
        if (name) out.push({ fd: Number(fd), name });
      } catch {
        // closed meanwhile
      }
    }
    return out.sort((a, b) => a.fd - b.fd).map((x) => x.name);
  }
}

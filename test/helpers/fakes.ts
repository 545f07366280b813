// Fakes of the floors a domain object stands on, for unit tests of the VM
// manager, the QEMU runner, the NIC preparers and the RPC handlers: a QEMU
// runner, a forwarder and a NIC host that record what they were asked and
// fail on demand, a temporary state directory, and a configuration filled
// with defaults. The real ones run in test/e2e.
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fillDefaults, type PartialConfig } from "../../server/config/defaults.js";
import type { Config } from "../../server/config/types.js";
import { VmmError } from "../../server/errors.js";
import { zeroCounters, type ForwardRule, type ForwardStatus } from "../../server/forward/rules.js";
import type { Forwarder, ForwardView } from "../../server/forward/types.js";
import type { Wire } from "../../server/host/neighbour.js";
import type { ProcessRef } from "../../server/host/process.js";
import type { NetworkAttachment } from "../../server/net/types.js";
import type { NicHost } from "../../server/vm/nic/types.js";
import type { RunFiles } from "../../server/vm/store.js";
import type { PortSpec, VmRunner, VmRuntime, VmView } from "../../server/vm/types.js";

/** A state directory under the system temp dir; `remove()` deletes it. */
export function tempStateDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "vmm-unit-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A Config of defaults over `over`, with state in `stateDir`. */
export function testConfig(stateDir: string, over: PartialConfig = {}): Config {
  return fillDefaults({ ...over, stateDir });
}

/** A VmRunner that "runs" VMs as numbers; `exit(id)` plays QEMU exiting on its own. */
export class FakeRunner implements VmRunner {
  readonly calls: string[] = [];
  /** Running VMs and their exit callbacks. */
  readonly running = new Map<string, (reason: string) => void>();
  /** VM ids adopt() finds alive. */
  readonly alive = new Set<string>();
  failStart: Error | undefined;
  failStop: Error | undefined;
  failUpdatePorts: Error | undefined;
  private nextPid = 1000;

  async start(view: VmView, onExit: (reason: string) => void): Promise<VmRuntime> {
    this.calls.push(`start ${view.record.id}`);
    if (this.failStart) throw this.failStart;
    this.running.set(view.record.id, onExit);
    return { version: 1, status: "running", instanceId: view.runtime.instanceId, pid: this.nextPid++, pidStartTime: 1, startedAt: new Date().toISOString(), hostInterfaces: view.record.spec.nics.map(() => "") };
  }

  async stop(view: VmView, opts: { force: boolean; timeoutMs: number }): Promise<void> {
    this.calls.push(`stop ${view.record.id}${opts.force ? " force" : ""}`);
    if (this.failStop) throw this.failStop;
    this.running.delete(view.record.id);
  }

  async adopt(view: VmView, onExit: (reason: string) => void): Promise<boolean> {
    this.calls.push(`adopt ${view.record.id}`);
    if (!this.alive.has(view.record.id)) return false;
    this.running.set(view.record.id, onExit);
    return true;
  }

  /** While set, updatePorts waits for it (after recording the call). */
  holdUpdatePorts: Promise<void> | undefined;

  async updatePorts(view: VmView, ports: PortSpec[]): Promise<void> {
    // "updatePorts ID FROM -> TO": QEMU changes by the difference between the ports the view's record holds and `ports`.
    const hostPorts = (list: PortSpec[]) => list.map((p) => p.hostPort).join(",");
    this.calls.push(`updatePorts ${view.record.id} ${hostPorts(view.record.spec.ports)} -> ${hostPorts(ports)}`);
    if (this.holdUpdatePorts) await this.holdUpdatePorts;
    if (this.failUpdatePorts) throw this.failUpdatePorts;
  }

  /** QEMU of VM `id` exits without being asked. */
  exit(id: string, reason = "guest powered off"): void {
    const onExit = this.running.get(id);
    if (!onExit) throw new Error(`FakeRunner: ${id} is not running`);
    this.running.delete(id);
    onExit(reason);
  }
}

/** A Forwarder and ForwardView keeping rules in memory; `failApply` refuses the next applies. */
export class FakeForwarder implements Forwarder, ForwardView {
  readonly relayKind = "sockets";
  readonly rules = new Map<string, ForwardRule[]>();
  readonly calls: string[] = [];
  failApply: VmmError | undefined;

  async apply(owner: string, rules: ForwardRule[]): Promise<void> {
    this.calls.push(`apply ${owner} ${rules.length}`);
    if (this.failApply) throw this.failApply;
    if (rules.length === 0) this.rules.delete(owner);
    else this.rules.set(owner, rules);
  }

  async remove(owner: string): Promise<void> {
    this.calls.push(`remove ${owner}`);
    this.rules.delete(owner);
  }

  list(owner?: string): ForwardStatus[] {
    const out: ForwardStatus[] = [];
    for (const [o, rules] of this.rules) {
      if (owner !== undefined && o !== owner) continue;
      for (const r of rules) {
        out.push({ ...r, owner: o, relay: this.relayKind, counters: zeroCounters() });
      }
    }
    return out;
  }
}

/**
 * A NicHost that records every call; links exist while listed in `links`.
 * The fds it opens are real (of /dev/null), so a real process can inherit
 * them; `open` holds those not closed yet (closeAll() closes them).
 */
export class FakeNicHost implements NicHost {
  readonly bridgeHelper = "/usr/lib/qemu/qemu-bridge-helper";
  readonly calls: string[] = [];
  readonly links = new Set<string>(["br0", "vmmnet-1"]);
  readonly open = new Set<number>();
  failAddToBridge = false;
  failOpenMacvtap = false;
  attachment: NetworkAttachment | undefined = { bridge: "vmmnet-1" };

  async linkExists(name: string) {
    return this.links.has(name);
  }
  async deleteLink(name: string) {
    this.calls.push(`deleteLink ${name}`);
    this.links.delete(name);
  }
  async addToBridge(dev: string, bridge: string) {
    if (this.failAddToBridge) throw new VmmError("internal", "ip link set master failed");
    this.calls.push(`addToBridge ${dev} ${bridge}`);
  }
  async createMacvtap(name: string, parent: string, mac: string) {
    this.calls.push(`createMacvtap ${name} ${parent} ${mac}`);
    this.links.add(name);
    return 77;
  }
  openTap(name: string) {
    this.calls.push(`openTap ${name}`);
    this.links.add(name);
    const fd = openSync("/dev/null", "r");
    this.open.add(fd);
    return fd;
  }
  openMacvtap(ifindex: number) {
    if (this.failOpenMacvtap) throw new Error("open /dev/tap77: ENOENT");
    this.calls.push(`openMacvtap ${ifindex}`);
    const fd = openSync("/dev/null", "r");
    this.open.add(fd);
    return fd;
  }
  closeFd(fd: number) {
    this.calls.push(`closeFd ${fd}`);
    if (this.open.delete(fd)) closeSync(fd);
  }
  /** Closes every fd still open (end of a test). */
  closeAll() {
    for (const fd of [...this.open]) this.closeFd(fd);
  }
  async startPasst(_files: RunFiles, ports: readonly PortSpec[]): Promise<ProcessRef> {
    this.calls.push(`startPasst ${ports.length} ports`);
    return { pid: 4242, startTime: 1 };
  }
  async stopProcess(ref: ProcessRef) {
    this.calls.push(`stopProcess ${ref.pid}`);
  }
  networkAttachment(networkId: string, mac: string) {
    this.calls.push(`networkAttachment ${networkId} ${mac}`);
    return this.attachment;
  }
}

/**
 * The network as lease verification sees it (server/host/neighbour.ts
 * Wire): `table` is the kernel's neighbour table, `holders` who answers an
 * ARP probe for an address. An address without holders is answered by the
 * MAC asked about when `agree` (a network that confirms every report), by
 * nobody otherwise.
 */
export class FakeWire implements Wire {
  readonly table = new Map<string, { mac: string; state: number }>();
  readonly holders = new Map<string, string[]>();
  probes = 0;
  constructor(private readonly agree = false) {}
  neighbour(_ifname: string, ip: string): { mac: string; state: number } | undefined {
    return this.table.get(ip);
  }
  async probe(_ifname: string, ip: string, mac: string): Promise<string[]> {
    this.probes++;
    return this.holders.get(ip) ?? (this.agree ? [mac] : []);
  }
}

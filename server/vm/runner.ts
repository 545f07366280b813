// QemuRunner: the VmRunner that really runs guests. start() reads as its
// steps: check the files (and make the VM's disks and seed drive,
// image/) -> prepare each NIC's host side (nic/) -> build the argv
// (qemu-argv.ts) -> spawn QEMU detached (guests outlive the daemon) -> wait
// for QMP. Every step that creates something pushes its undo onto the
// VM's cleanup stack, which lives as long as the VM runs: it unwinds (LIFO)
// when a start fails half-way, when StopVm stops the VM, and when QEMU exits
// on its own. After a daemon restart the stack of an adopted VM is rebuilt
// from its runtime record (its host interfaces and passt process).
// The runner also talks QMP for graceful power-down and live port changes.
import { existsSync, rmSync, statSync } from "node:fs";
import { CleanupStack } from "../cleanup.js";
import type { Config } from "../config/types.js";
import { precondition, Problems, VmmError } from "../errors.js";
import type { ImageCatalog } from "../image/catalog.js";
import { ensureDisks, planBoot, type BootPlan } from "../image/disks.js";
import { buildSeed } from "../image/seed.js";
import { childFdOf, isAlive, isOurProcess, pidExists, signalProcess, spawnDetached, tailOfLog, waitForExit, type ProcessRef } from "../host/process.js";
import { log } from "../log.js";
import type { NicHost } from "./nic/types.js";
import { NIC_PREPARERS } from "./nic/index.js";
import { lookupUser } from "../host/users.js";
import { buildQemuArgv, type Accel, type DiskSpec, type NicSpec as QemuNic, type QemuSpec, type RunAs } from "./qemu-argv.js";
import { QmpClient } from "./qmp.js";
import type { RunFiles } from "./store.js";
import type { PortSpec, VmRunner, VmRuntime, VmView } from "./types.js";
import { checkRunFiles } from "./validate.js";

/** What the runner needs from the daemon. */
export interface QemuRunnerOptions {
  cfg: Config;
  /** Run files of a VM (store.ts). */
  files: (id: string) => RunFiles;
  /** Host operations of the NIC preparers (nic/host-linux.ts). */
  nicHost: NicHost;
  /** The images directory VmSpec.image and extra disks name. */
  images: ImageCatalog;
  /** Accelerator resolved at daemon start (host/capabilities.ts). */
  accel: Accel;
  /**
   * The unprivileged user QEMU switches to (qemu.user), when the daemon
   * runs as root. Omitted: QEMU runs as the daemon's own (non-root) user.
   */
  runAs?: RunAs;
  /** How often running guests are checked for exit. */
  pollMs?: number;
}

interface Watched {
  ref: ProcessRef;
  view: VmView;
  onExit: (reason: string) => void;
  /** Undo steps of this VM's lifetime, QEMU itself on top. */
  cleanup: CleanupStack;
  /** Set while the daemon itself is stopping the VM. */
  stopping: boolean;
  /** Which poll round checks this guest in full (see poll). */
  phase: number;
}

/**
 * Polls between two full checks of a guest (its /proc stat: a zombie, a
 * reused pid); the polls in between only ask kill(pid, 0). The full checks
 * of the guests are spread over the rounds.
 */
const FULL_CHECK_EVERY = 10;

/** What step 1 found: how the VM boots and the disks QEMU opens (seed drive last). */
interface Boot {
  plan: BootPlan;
  disks: DiskSpec[];
}

/**
 * Refuses to start a guest unless qemu.user is a real user other than
 * root: QEMU would otherwise fail at its very end ("User ... doesn't
 * exist") or keep running as root.
 */
async function checkRunAsUser(user: string): Promise<void> {
  const ids = await lookupUser(user);
  if (!ids) throw precondition(`qemu.user: user "${user}" does not exist; scripts/setup.sh creates it (useradd --system --user-group ${user})`);
  if (ids.uid === 0) throw precondition(`qemu.user: user "${user}" has uid 0; guests must not run as root`);
}

/** Implements VmRunner with QEMU processes; see the file comment. */
export class QemuRunner implements VmRunner {
  private readonly watched = new Map<string, Watched>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: QemuRunnerOptions) {
    this.timer = setInterval(() => void this.poll(), o.pollMs ?? 500);
    this.timer.unref();
  }

  /** Stops watching guests (they keep running). */
  close(): void {
    clearInterval(this.timer);
  }

  async start(view: VmView, onExit: (reason: string) => void): Promise<VmRuntime> {
    const { record: r } = view;
    const f = this.o.files(r.id);
    if (this.o.runAs) await checkRunAsUser(this.o.runAs.user);
    const boot = await this.checkFiles(view, f);
    const cleanup = this.baseCleanup(f);
    // Our copies of the fds QEMU inherits; closed once QEMU has its own.
    const fds: number[] = [];
    try {
      const prepared = await this.prepareNics(view, f, cleanup, fds);
      const argv = [this.o.cfg.qemu.binary, ...buildQemuArgv(this.qemuSpec(view, f, boot, prepared.nics))];
      const ref = await this.spawnQemu(argv, f, fds, cleanup);
      await this.waitForQmp(ref, f);
      const runtime: VmRuntime = {
        version: 1,
        status: "running",
        instanceId: view.runtime.instanceId,
        pid: ref.pid,
        pidStartTime: ref.startTime,
        startedAt: new Date().toISOString(),
        hostInterfaces: prepared.hostInterfaces,
        ...(prepared.passt ? { passtPid: prepared.passt.pid, passtStartTime: prepared.passt.startTime } : {}),
      };
      this.watched.set(r.id, { ref, view: { ...view, runtime }, onExit, cleanup, stopping: false, phase: this.nextPhase++ % FULL_CHECK_EVERY });
      return runtime;
    } catch (e) {
      for (const err of await cleanup.run()) log("warn", "undoing a failed start", { vm: r.id, error: err });
      throw e;
    } finally {
      for (const fd of fds) this.o.nicHost.closeFd(fd);
    }
  }

  /**
   * Step 1: the run files fit the unix socket limit; the kernel, initrd and
   * disks the VM names (itself or through its image) exist; the overlays of
   * image disks exist (made once); the cloud-init seed drive is rebuilt.
   */
  private async checkFiles(view: VmView, f: RunFiles): Promise<Boot> {
    const { record: r } = view;
    const s = r.spec;
    const p = new Problems();
    checkRunFiles(p, "id", f);
    if (!p.empty) throw precondition(p.list.map((x) => `${x.field}: ${x.message}`).join("; "));
    const plan = planBoot(s, f.dir, (name, field) => this.o.images.get(name, field));
    const unmanaged = plan.disks.filter((d) => !d.managed).map((d) => [d.field, d.path] as const);
    for (const [field, path] of [["config.kernel", plan.kernel], ["config.initrd", plan.initrd], ...unmanaged] as const) {
      if (path === "") continue;
      if (!existsSync(path)) throw precondition(`${field}: ${path} does not exist`);
      if (!statSync(path).isFile()) throw precondition(`${field}: ${path} is not a file`);
    }
    if (plan.kernel === "" && plan.disks.length === 0) throw precondition(`VM "${r.id}" has no kernel, image or disk to boot; set config.kernel or config.image`);
    await ensureDisks(plan, this.o.images);
    const disks: DiskSpec[] = plan.disks.map((d) => ({ path: d.path, format: d.format }));
    rmSync(f.seed, { force: true });
    if (s.cloudInit) {
      await buildSeed(f.seed, s.cloudInit, view.runtime.instanceId);
      disks.push({ path: f.seed, format: "raw", readOnly: true });
    }
    return { plan, disks };
  }

  /** The bottom of every VM's cleanup stack: its sockets go last. */
  private baseCleanup(f: RunFiles): CleanupStack {
    const cleanup = new CleanupStack();
    cleanup.push("remove run sockets", () => {
      rmSync(f.qmp, { force: true });
      rmSync(f.console, { force: true });
      rmSync(f.passtSock, { force: true });
    });
    return cleanup;
  }

  /** Step 2: each NIC's preparer, in order; its fds appended to `fds`, its undo pushed. */
  private async prepareNics(view: VmView, f: RunFiles, cleanup: CleanupStack, fds: number[]) {
    const { record: r } = view;
    const nics: QemuNic[] = [];
    const hostInterfaces: string[] = [];
    let passt: ProcessRef | undefined;
    for (const [index, nic] of r.spec.nics.entries()) {
      const ctx = { vmId: r.id, index, mac: r.macs[index]!, nic, ports: r.spec.ports.filter((p) => (p.nicIndex ?? 0) === index), firstChildFd: childFdOf(fds.length), files: f };
      const done = await NIC_PREPARERS[nic.mode](ctx, this.o.nicHost);
      if (done.undo) cleanup.push(done.undo.what, done.undo.run);
      fds.push(...done.fds);
      nics.push(done.qemu);
      hostInterfaces.push(done.hostInterface);
      passt ??= done.process;
    }
    return { nics, hostInterfaces, passt };
  }

  /** Step 3's input: the QEMU spec of a VM with its prepared NICs. */
  private qemuSpec(view: VmView, f: RunFiles, boot: Boot, nics: QemuNic[]): QemuSpec {
    const { record: r } = view;
    const s = r.spec;
    const { plan } = boot;
    return {
      name: r.id,
      ...(this.o.runAs ? { runAs: this.o.runAs } : {}),
      accel: this.o.accel,
      memoryMiB: s.memoryMib,
      cpus: s.vcpus,
      ...(plan.kernel !== "" ? { kernel: plan.kernel, append: plan.cmdline } : {}),
      ...(plan.kernel !== "" && plan.initrd !== "" ? { initrd: plan.initrd } : {}),
      disks: boot.disks,
      serialPath: f.serial,
      consoleSocket: f.console,
      qmpSocket: f.qmp,
      noReboot: true,
      nics,
    };
  }

  /** Step 4: spawns QEMU detached with the NICs' fds; pushes the step that kills it. */
  private async spawnQemu(argv: string[], f: RunFiles, fds: number[], cleanup: CleanupStack): Promise<ProcessRef> {
    rmSync(f.qmp, { force: true });
    rmSync(f.serial, { force: true });
    rmSync(f.console, { force: true });
    const ref = await spawnDetached({ argv, logFile: f.qemuLog, extraFds: fds, cwd: f.dir });
    cleanup.push(`kill QEMU (pid ${ref.pid})`, () => this.killQemu(ref, f));
    return ref;
  }

  /** Step 5: QMP answers and the guest runs; otherwise QEMU's own words are the error. */
  private async waitForQmp(ref: ProcessRef, f: RunFiles): Promise<void> {
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(f.qmp, { timeoutMs: 15_000, alive: () => existsSync(`/proc/${ref.pid}`) });
    } catch (e) {
      const why = tailOfLog(f.qemuLog);
      // A host port taken by someone else is a busy resource, not a bad request.
      const kind = /could not set up host forwarding rule|address already in use/i.test(why) ? "unavailable" : "precondition";
      throw new VmmError(kind, `QEMU did not start: ${why || (e as Error).message}`, { cause: e });
    }
    try {
      const st = await qmp.queryStatus();
      if (!st.running) throw new VmmError("internal", `QEMU started but the guest is ${st.status}`);
    } finally {
      qmp.close();
    }
  }

  /** SIGKILL (if it still is our QEMU) and wait for the exit; throws if it survives. */
  private async killQemu(ref: ProcessRef, f: RunFiles): Promise<void> {
    await signalProcess(ref, "SIGKILL", f.qmp);
    if (!(await waitForExit(ref, 10_000))) throw new VmmError("internal", `QEMU pid ${ref.pid} did not exit after SIGKILL`);
  }

  /**
   * The cleanup stack of a run known only from its runtime record (a VM
   * adopted after a daemon restart, or one this runner never started): the
   * same steps start() pushes, in the same order.
   */
  private cleanupFromRuntime(id: string, rt: VmRuntime): CleanupStack {
    const f = this.o.files(id);
    const cleanup = this.baseCleanup(f);
    const host = this.o.nicHost;
    if (rt.passtPid && rt.passtStartTime !== undefined) {
      const ref = { pid: rt.passtPid, startTime: rt.passtStartTime };
      cleanup.push(`stop passt (pid ${ref.pid})`, () => host.stopProcess(ref));
    }
    for (const name of rt.hostInterfaces ?? []) {
      if (name !== "") cleanup.push(`delete ${name}`, () => host.deleteLink(name));
    }
    if (rt.pid && rt.pidStartTime !== undefined) {
      const ref = { pid: rt.pid, startTime: rt.pidStartTime };
      cleanup.push(`kill QEMU (pid ${ref.pid})`, () => this.killQemu(ref, f));
    }
    return cleanup;
  }

  /** Unwinds a VM's cleanup stack; failures are logged, a QEMU that survives SIGKILL is thrown. */
  private async unwind(id: string, cleanup: CleanupStack, ref: ProcessRef | undefined): Promise<void> {
    for (const err of await cleanup.run()) log("warn", "cleaning up after a VM failed", { vm: id, error: err });
    if (ref && (await isAlive(ref))) throw new VmmError("internal", `QEMU pid ${ref.pid} did not exit after SIGKILL`);
  }

  async stop(view: VmView, opts: { force: boolean; timeoutMs: number }): Promise<void> {
    const id = view.record.id;
    const w = this.watched.get(id);
    if (w) w.stopping = true;
    const rt = w?.view.runtime ?? view.runtime;
    const f = this.o.files(id);
    const ref = rt.pid && rt.pidStartTime !== undefined ? { pid: rt.pid, startTime: rt.pidStartTime } : undefined;
    if (ref && !opts.force && opts.timeoutMs > 0 && (await isOurProcess(ref, f.qmp))) await this.powerDown(id, ref, f, opts.timeoutMs);
    this.watched.delete(id);
    await this.unwind(id, w?.cleanup ?? this.cleanupFromRuntime(id, rt), ref);
  }

  /** ACPI power-down through QMP, waiting up to `timeoutMs` for QEMU to exit; a failure only logs. */
  private async powerDown(id: string, ref: ProcessRef, f: RunFiles, timeoutMs: number): Promise<void> {
    try {
      const qmp = await QmpClient.connect(f.qmp, { timeoutMs: 5000 });
      try {
        await qmp.systemPowerdown();
      } finally {
        qmp.close();
      }
      if (!(await waitForExit(ref, timeoutMs))) log("warn", "guest ignored ACPI power-down; killing QEMU", { vm: id, timeoutMs });
    } catch (e) {
      log("warn", "graceful power-down failed; killing QEMU", { vm: id, error: String(e) });
    }
  }

  async adopt(view: VmView, onExit: (reason: string) => void): Promise<boolean> {
    const rt = view.runtime;
    const id = view.record.id;
    const f = this.o.files(id);
    if (!rt.pid || rt.pidStartTime === undefined) return false;
    const ref = { pid: rt.pid, startTime: rt.pidStartTime };
    const cleanup = this.cleanupFromRuntime(id, rt);
    if (!(await isOurProcess(ref, f.qmp))) {
      await this.unwind(id, cleanup, undefined);
      return false;
    }
    this.watched.set(id, { ref, view, onExit, cleanup, stopping: false, phase: this.nextPhase++ % FULL_CHECK_EVERY });
    return true;
  }

  /**
   * Live port changes of user and passt NICs (the forwarder handles the
   * others): user mode through QMP hostfwd_add/remove on the NIC's netdev,
   * all or nothing (a refused command undoes the ones before it); passt
   * cannot change its ports while it runs.
   */
  async updatePorts(view: VmView, ports: PortSpec[]): Promise<void> {
    const nics = view.record.spec.nics;
    const modeOf = (p: PortSpec) => nics[p.nicIndex ?? 0]?.mode;
    const key = (p: PortSpec) => `${p.protocol}:${p.hostAddress}:${p.hostPort}:${p.nicIndex ?? 0}`;
    const passtPorts = (list: PortSpec[]) => list.filter((p) => modeOf(p) === "passt").map((p) => `${key(p)}-${p.vmPort}`).sort().join(",");
    if (passtPorts(ports) !== passtPorts(view.record.spec.ports)) throw precondition("ports: passt maps ports when it starts; stop the VM to change them");
    const user = (list: PortSpec[]) => list.filter((p) => modeOf(p) === "user");
    if (user(ports).length === 0 && user(view.record.spec.ports).length === 0) return;
    const f = this.o.files(view.record.id);
    const old = new Map(user(view.record.spec.ports).map((p) => [key(p), p]));
    const next = new Map(user(ports).map((p) => [key(p), p]));
    const qmp = await QmpClient.connect(f.qmp, { timeoutMs: 5000 });
    try {
      const hmp = async (cmd: string) => {
        const out = await qmp.execute<string>("human-monitor-command", { "command-line": cmd });
        // HMP answers in prose: success of hostfwd_remove is "host forwarding
        // rule for ... removed", failures say "could not", "not found", ...
        if (typeof out === "string" && /could not|not found|invalid|error|fail/i.test(out))
          throw new VmmError("unavailable", `ports: QEMU refused "${cmd}": ${out.trim()}`);
      };
      const remove = (p: PortSpec) => `hostfwd_remove net${p.nicIndex ?? 0} ${p.protocol}:${p.hostAddress}:${p.hostPort}`;
      const add = (p: PortSpec) => `hostfwd_add net${p.nicIndex ?? 0} ${p.protocol}:${p.hostAddress}:${p.hostPort}-:${p.vmPort}`;
      // All or nothing: what was done is undone, newest first, when a later
      // command is refused (a host port taken meanwhile), so QEMU keeps the
      // ports of the record, which the caller leaves unchanged.
      const undo: string[] = [];
      try {
        for (const [k, p] of old) {
          const n = next.get(k);
          if (!n || n.vmPort !== p.vmPort) {
            await hmp(remove(p));
            undo.push(add(p));
          }
        }
        for (const [k, p] of next) {
          const o = old.get(k);
          if (!o || o.vmPort !== p.vmPort) {
            await hmp(add(p));
            undo.push(remove(p));
          }
        }
      } catch (e) {
        for (const cmd of undo.reverse()) {
          await hmp(cmd).catch((u: unknown) => log("error", "could not undo a port change in QEMU", { vm: view.record.id, command: cmd, error: String(u) }));
        }
        throw e;
      }
    } finally {
      qmp.close();
    }
  }

  private polling = false;
  private round = 0;
  private nextPhase = 0;
  /**
   * Notices guests that exited on their own. Each poll asks kill(pid, 0) of
   * every guest (microseconds: a host of 1,000 guests used to read 2,000
   * /proc files a second on the event loop) and reads /proc stat of one
   * guest in FULL_CHECK_EVERY, so a zombie or a reused pid is noticed within
   * FULL_CHECK_EVERY polls (5 s by default).
   */
  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    const round = this.round++ % FULL_CHECK_EVERY;
    try {
      for (const [id, w] of this.watched) {
        if (w.stopping) continue;
        if (w.phase === round ? await isAlive(w.ref) : pidExists(w.ref.pid)) continue;
        this.watched.delete(id);
        await this.unwind(id, w.cleanup, undefined);
        const last = tailOfLog(this.o.files(id).qemuLog, 300).split("\n").pop() ?? "";
        w.onExit(`QEMU pid ${w.ref.pid} exited on its own (guest powered off or crashed)${last ? `: ${last}` : ""}`);
      }
    } finally {
      this.polling = false;
    }
  }
}

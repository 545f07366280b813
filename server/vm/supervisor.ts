// QemuRunner: the VmRunner that really runs guests. It prepares each NIC's
// host side (TAP, macvtap, passt), builds the argv with the pure builders,
// spawns QEMU detached (guests outlive the daemon), talks QMP for graceful
// power-down and live port changes, notices a guest that exits on its own,
// re-adopts guests after a daemon restart, and tears down what it created
// (LIFO, also when a start fails half-way).
import { createHash } from "node:crypto";
import { existsSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config/types.js";
import { precondition, VmmError } from "../errors.js";
import { addToBridge, createMacvtap, deleteLink, linkExists, setLinkUp } from "../net/iproute.js";
import { buildPasstArgv, preparePasstRuntimeDir, type PasstOptions } from "../net/passt.js";
import { closeFd, openMacvtap, openTap } from "../../native/tap.js";
import { log } from "../log.js";
import type { VmRunner } from "./manager.js";
import { buildQemuArgv, type Accel, type DiskSpec, type NicSpec as QemuNic, type QemuSpec } from "./qemu-argv.js";
import type { ImageCatalog } from "../image/catalog.js";
import { ensureDisks, planBoot } from "../image/disks.js";
import { buildSeed } from "../image/seed.js";
import { childFdOf, isAlive, isOurProcess, spawnDetached, stopProcess, signalProcess, tailOfLog, waitForExit, waitUntil, type ProcessRef } from "./process.js";
import { QmpClient } from "./qmp.js";
import type { PortSpec, VmRuntime, VmView } from "./types.js";
import type { NetworkAttachment } from "../vmnet/registry.js";

/** Host identity passt should use where the host has no default route. */
export type PasstHostConfig = Pick<PasstOptions, "interface" | "address" | "prefixLength" | "gateway">;

export interface QemuRunnerOptions {
  cfg: Config;
  /** Directory of a VM's run files (the VM's record directory). */
  vmDir: (id: string) => string;
  /** How a NIC joins a vmnet network (a bridge on Linux, a datagram fd on macOS). */
  networkAttachment: (networkId: string, mac: string) => NetworkAttachment | undefined;
  passtHost?: PasstHostConfig;
  /** How often running guests are checked for exit. */
  pollMs?: number;
  /** The images directory VmSpec.image and extra disks name. */
  images: ImageCatalog;
  /** Accelerator resolved at daemon start (host/capabilities.ts). */
  accel: Accel;
}

interface Watched {
  ref: ProcessRef;
  view: VmView;
  onExit: (reason: string) => void;
  /** Set while the daemon itself is stopping the VM. */
  stopping: boolean;
}

const MAX_UNIX_PATH = 107;

/** Short, stable interface name for NIC `nic` of VM `id` (IFNAMSIZ is 16). */
export function hostIfName(prefix: "vt" | "vm", id: string, nic: number): string {
  return `${prefix}${createHash("sha256").update(id).digest("hex").slice(0, 10)}n${nic}`;
}

export class QemuRunner implements VmRunner {
  private readonly watched = new Map<string, Watched>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: QemuRunnerOptions) {
    this.timer = setInterval(() => void this.poll(), o.pollMs ?? 500);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private files(id: string) {
    const dir = this.o.vmDir(id);
    return {
      dir,
      qmp: join(dir, "qmp.sock"),
      serial: join(dir, "serial.log"),
      console: join(dir, "console.sock"),
      seed: join(dir, "seed.iso"),
      qemuLog: join(dir, "qemu.log"),
      passtSock: join(dir, "passt", "passt.sock"),
      passtLog: join(dir, "passt.log"),
      passtPid: join(dir, "passt", "passt.pid"),
    };
  }

  async start(view: VmView, onExit: (reason: string) => void): Promise<VmRuntime> {
    const { record: r } = view;
    const s = r.spec;
    const f = this.files(r.id);
    if (f.qmp.length > MAX_UNIX_PATH || f.passtSock.length > MAX_UNIX_PATH)
      throw precondition(`state_dir is too long: ${f.passtSock} exceeds the ${MAX_UNIX_PATH}-byte unix socket limit`);
    const boot = planBoot(s, f.dir, (name, field) => this.o.images.get(name, field));
    const unmanaged = boot.disks.filter((d) => !d.managed).map((d) => [d.field, d.path] as const);
    for (const [field, p] of [["config.kernel", boot.kernel], ["config.initrd", boot.initrd], ...unmanaged] as const) {
      if (p !== "" && !existsSync(p)) throw precondition(`${field}: ${p} does not exist`);
      if (p !== "" && !statSync(p).isFile()) throw precondition(`${field}: ${p} is not a file`);
    }
    if (boot.kernel === "" && boot.disks.length === 0) throw precondition(`VM "${r.id}" has no kernel, image or disk to boot; set config.kernel or config.image`);
    await ensureDisks(boot, this.o.images);
    const disks: DiskSpec[] = boot.disks.map((d) => ({ path: d.path, format: d.format }));
    rmSync(f.seed, { force: true });
    if (s.cloudInit) {
      await buildSeed(f.seed, s.cloudInit, view.runtime.instanceId);
      disks.push({ path: f.seed, format: "raw", readOnly: true });
    }
    // Cleanup stack (LIFO), run if anything below fails.
    const undo: (() => Promise<void> | void)[] = [];
    const fds: number[] = [];
    const hostIfs: string[] = [];
    let passt: ProcessRef | undefined;
    try {
      rmSync(f.qmp, { force: true });
      const nics: QemuNic[] = [];
      for (const [i, nic] of s.nics.entries()) {
        const mac = r.macs[i]!;
        switch (nic.mode) {
          case "user":
            nics.push({
              mode: "user",
              mac,
              forwards: s.ports.filter((p) => (p.nicIndex ?? 0) === i).map((p) => ({ protocol: p.protocol, hostAddress: p.hostAddress, hostPort: p.hostPort, guestPort: p.vmPort })),
            });
            hostIfs.push("");
            break;
          case "passt": {
            if (i !== 0) throw precondition(`config.nics[${i}]: only the first NIC may use passt`);
            passt = await this.startPasst(r.id, s.ports.filter((p) => (p.nicIndex ?? 0) === i));
            const ref = passt;
            undo.push(() => stopProcess(ref, { graceMs: 2000 }).catch(() => undefined));
            nics.push({ mode: "passt", mac, socketPath: f.passtSock });
            hostIfs.push("");
            break;
          }
          case "bridge":
            if (!(await linkExists(nic.bridge!))) throw precondition(`config.nics[${i}].bridge: bridge ${nic.bridge} does not exist on this host`);
            nics.push({ mode: "bridge", mac, bridge: nic.bridge!, helper: this.o.cfg.qemu.bridgeHelper });
            hostIfs.push("");
            break;
          case "tap":
          case "vmnet": {
            const via = nic.mode === "tap" ? { bridge: nic.bridge! } : this.o.networkAttachment(nic.networkId!, mac);
            if (!via) throw precondition(`config.nics[${i}].network_id: network ${nic.networkId} does not exist`);
            if ("fd" in via) {
              // SAFETY: the backend handed us this fd; like a TAP fd it is
              // dup'ed into QEMU at spawn and closed by us in `finally`.
              fds.push(via.fd);
              nics.push({ mode: "dgram", mac, fd: childFdOf(fds.length - 1) });
              hostIfs.push("");
              break;
            }
            const bridge = via.bridge;
            if (!(await linkExists(bridge))) throw precondition(`config.nics[${i}]: bridge ${bridge} does not exist on this host`);
            const name = hostIfName("vt", r.id, i);
            await deleteLink(name, { ignoreMissing: true }); // a leftover of a crashed run
            // SAFETY: openTap returns an fd we own; QEMU gets a dup of it at
            // spawn (stdio slot), after which we close ours in `finally`. The
            // TAP is not persistent: it disappears with QEMU's copy.
            const tap = openTap(name, { vnetHdr: true });
            fds.push(tap.fd);
            await addToBridge(name, bridge);
            await setLinkUp(name);
            nics.push({ mode: nic.mode, mac, fd: childFdOf(fds.length - 1), vnetHdr: true });
            hostIfs.push(name);
            break;
          }
          case "macvtap": {
            const name = hostIfName("vm", r.id, i);
            await deleteLink(name, { ignoreMissing: true });
            const ifindex = await createMacvtap(name, nic.macvtapParent!, mac);
            undo.push(() => deleteLink(name, { ignoreMissing: true }).catch(() => undefined));
            // SAFETY: as for TAPs: our fd, dup'ed into QEMU, closed by us after spawn.
            // The macvtap link itself persists and is deleted at stop/exit.
            const mv = openMacvtap(ifindex);
            fds.push(mv.fd);
            nics.push({ mode: "macvtap", mac, fd: childFdOf(fds.length - 1), vnetHdr: true });
            hostIfs.push(name);
            break;
          }
          case "custom":
            nics.push({ mode: "custom", mac, netdev: nic.customNetdev! });
            hostIfs.push("");
            break;
        }
      }
      const spec: QemuSpec = {
        name: r.id,
        accel: this.o.accel,
        memoryMiB: s.memoryMib,
        cpus: s.vcpus,
        ...(boot.kernel !== "" ? { kernel: boot.kernel, append: boot.cmdline } : {}),
        ...(boot.kernel !== "" && boot.initrd !== "" ? { initrd: boot.initrd } : {}),
        disks,
        serialPath: f.serial,
        consoleSocket: f.console,
        qmpSocket: f.qmp,
        noReboot: true,
        nics,
      };
      const argv = [this.o.cfg.qemu.binary, ...buildQemuArgv(spec)];
      rmSync(f.serial, { force: true });
      rmSync(f.console, { force: true });
      const ref = await spawnDetached({ argv, logFile: f.qemuLog, extraFds: fds, cwd: f.dir });
      undo.push(() => signalProcess(ref, "SIGKILL", f.qmp).then(() => undefined).catch(() => undefined));
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
      const runtime: VmRuntime = {
        version: 1,
        status: "running",
        instanceId: view.runtime.instanceId,
        pid: ref.pid,
        pidStartTime: ref.startTime,
        startedAt: new Date().toISOString(),
        hostInterfaces: hostIfs,
        ...(passt ? { passtPid: passt.pid, passtStartTime: passt.startTime } : {}),
      };
      this.watched.set(r.id, { ref, view: { ...view, runtime }, onExit, stopping: false });
      return runtime;
    } catch (e) {
      for (const u of undo.reverse()) await u();
      throw e;
    } finally {
      for (const fd of fds) closeFd(fd);
    }
  }

  private async startPasst(id: string, ports: PortSpec[]): Promise<ProcessRef> {
    const f = this.files(id);
    // passt drops to nobody before it binds its socket: every ancestor of
    // its directory must be traversable by others, or it fails silently.
    for (let dir = dirname(f.passtSock); dir !== "/"; dir = dirname(dir)) {
      if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0 && dir !== dirname(f.passtSock))
        throw precondition(`passt runs as nobody and cannot reach ${dirname(f.passtSock)}: ${dir} is not traversable by others (chmod o+x ${dir})`);
    }
    const passtDir = preparePasstRuntimeDir(f.passtSock);
    rmSync(f.passtSock, { force: true });
    const argv = buildPasstArgv({
      socketPath: f.passtSock,
      pidFile: f.passtPid,
      ports: ports.map((p) => ({ protocol: p.protocol, hostAddress: p.hostAddress, hostPort: p.hostPort, guestPort: p.vmPort })),
      ...(this.o.passtHost ?? {}),
    });
    // No --log-file: passt opens it after dropping capabilities but before
    // becoming nobody, so no directory suits it; its stderr (foreground)
    // goes to passt.log instead.
    const ref = await spawnDetached({ argv: [this.o.cfg.networking.passtBinary, ...argv], logFile: f.passtLog, cwd: passtDir });
    const up = await waitUntil(() => existsSync(f.passtSock) || !existsSync(`/proc/${ref.pid}`), 10_000);
    if (!up || !existsSync(f.passtSock)) {
      await stopProcess(ref, { graceMs: 1000 }).catch(() => undefined);
      throw new VmmError("precondition", `passt did not create ${f.passtSock}: ${tailOfLog(f.passtLog) || "no output"}`);
    }
    return ref;
  }

  /** Deletes what start() created for the run described by `rt`. */
  private async cleanup(id: string, rt: VmRuntime): Promise<void> {
    const f = this.files(id);
    if (rt.passtPid && rt.passtStartTime !== undefined) {
      await stopProcess({ pid: rt.passtPid, startTime: rt.passtStartTime }, { graceMs: 2000 }).catch((e) => log("warn", "stopping passt failed", { vm: id, error: String(e) }));
    }
    for (const name of rt.hostInterfaces ?? []) {
      if (name !== "") await deleteLink(name, { ignoreMissing: true }).catch((e) => log("warn", "deleting interface failed", { vm: id, name, error: String(e) }));
    }
    rmSync(f.qmp, { force: true });
    rmSync(f.console, { force: true });
    rmSync(f.passtSock, { force: true });
  }

  async stop(view: VmView, opts: { force: boolean; timeoutMs: number }): Promise<void> {
    const id = view.record.id;
    const w = this.watched.get(id);
    if (w) w.stopping = true;
    const rt = w?.view.runtime ?? view.runtime;
    const f = this.files(id);
    if (rt.pid && rt.pidStartTime !== undefined) {
      const ref = { pid: rt.pid, startTime: rt.pidStartTime };
      let gone = !(await isOurProcess(ref, f.qmp));
      if (!gone && !opts.force && opts.timeoutMs > 0) {
        try {
          const qmp = await QmpClient.connect(f.qmp, { timeoutMs: 5000 });
          try {
            await qmp.systemPowerdown();
          } finally {
            qmp.close();
          }
          gone = await waitForExit(ref, opts.timeoutMs);
          if (!gone) log("warn", "guest ignored ACPI power-down; killing QEMU", { vm: id, timeoutMs: opts.timeoutMs });
        } catch (e) {
          log("warn", "graceful power-down failed; killing QEMU", { vm: id, error: String(e) });
        }
      }
      if (!gone) {
        await signalProcess(ref, "SIGKILL", f.qmp);
        if (!(await waitForExit(ref, 10_000))) throw new VmmError("internal", `QEMU pid ${ref.pid} did not exit after SIGKILL`);
      }
    }
    this.watched.delete(id);
    await this.cleanup(id, rt);
  }

  async adopt(view: VmView, onExit: (reason: string) => void): Promise<boolean> {
    const rt = view.runtime;
    const f = this.files(view.record.id);
    if (!rt.pid || rt.pidStartTime === undefined) return false;
    const ref = { pid: rt.pid, startTime: rt.pidStartTime };
    if (!(await isOurProcess(ref, f.qmp))) {
      await this.cleanup(view.record.id, rt);
      return false;
    }
    this.watched.set(view.record.id, { ref, view, onExit, stopping: false });
    return true;
  }

  /**
   * Live port changes of user and passt NICs (the forwarder handles the
   * others): user mode through QMP hostfwd_add/remove on the NIC's netdev;
   * passt cannot change its ports while it runs.
   */
  async updatePorts(view: VmView, ports: PortSpec[]): Promise<void> {
    const nics = view.record.spec.nics;
    const modeOf = (p: PortSpec) => nics[p.nicIndex ?? 0]?.mode;
    const key = (p: PortSpec) => `${p.protocol}:${p.hostAddress}:${p.hostPort}:${p.nicIndex ?? 0}`;
    const passtPorts = (list: PortSpec[]) => list.filter((p) => modeOf(p) === "passt").map((p) => `${key(p)}-${p.vmPort}`).sort().join(",");
    if (passtPorts(ports) !== passtPorts(view.record.spec.ports)) throw precondition("ports: passt maps ports when it starts; stop the VM to change them");
    const user = (list: PortSpec[]) => list.filter((p) => modeOf(p) === "user");
    if (user(ports).length === 0 && user(view.record.spec.ports).length === 0) return;
    const f = this.files(view.record.id);
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
      for (const [k, p] of old) {
        const n = next.get(k);
        if (!n || n.vmPort !== p.vmPort) await hmp(`hostfwd_remove net${p.nicIndex ?? 0} ${p.protocol}:${p.hostAddress}:${p.hostPort}`);
      }
      for (const [k, p] of next) {
        const o = old.get(k);
        if (!o || o.vmPort !== p.vmPort) await hmp(`hostfwd_add net${p.nicIndex ?? 0} ${p.protocol}:${p.hostAddress}:${p.hostPort}-:${p.vmPort}`);
      }
    } finally {
      qmp.close();
    }
  }

  private polling = false;
  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const [id, w] of this.watched) {
        if (w.stopping || (await isAlive(w.ref))) continue;
        this.watched.delete(id);
        await this.cleanup(id, w.view.runtime);
        const last = tailOfLog(this.files(id).qemuLog, 300).split("\n").pop() ?? "";
        w.onExit(`QEMU pid ${w.ref.pid} exited on its own (guest powered off or crashed)${last ? `: ${last}` : ""}`);
      }
    } finally {
      this.polling = false;
    }
  }
}

// Persistent VM records: one directory per VM under <state_dir>/vms/<id>:
//   vm.json       identity + desired spec (VmRecord)
//   runtime.json  last known process state (VmRuntime)
//   leases.json   last lease per NIC (LeaseRecord[]); replaced atomically but
//                 not fsynced: leases end with the guest, so with the host
//                 (see saveLeases)
//   events.jsonl  append-only event log (a torn last line is ignored)
//   serial.log, qmp.sock, console.sock, seed.iso, qemu.log, passt/, passt.log
//                 run files (runFiles)
// Records are created by renaming a fully written temp directory into place
// and removed by renaming to trash first (store/atomic.ts), so a kill -9 at
// any instant leaves each VM either fully present or fully absent.
import { appendFileSync, chmodSync, existsSync, mkdirSync, openSync, closeSync, fsyncSync, readdirSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fsyncDir, mkdirDurable, readJson, removeDirDurable, sweepTrash, TMP_PREFIX, writeJsonAtomic } from "../store/atomic.js";
import { MAX_EVENTS } from "../contract.js";
import { VmmError } from "../errors.js";
import type { LeaseRecord, VmEventRecord, VmRecord, VmRuntime } from "./types.js";

/** Events kept per VM (on disk and in memory): as many as GetInfo may ask for. */
export const MAX_EVENTS_KEPT = MAX_EVENTS;

/** Paths of the files a running VM uses, below its record directory. */
export interface RunFiles {
  dir: string;
  /** QMP unix socket (QEMU listens). */
  qmp: string;
  /** Guest serial console output. */
  serial: string;
  /** Unix socket carrying the serial console both ways (QEMU listens). */
  console: string;
  /** cloud-init NoCloud seed drive, rebuilt at every start. */
  seed: string;
  /** QEMU's stdout and stderr. */
  qemuLog: string;
  /** passt's unix socket; its directory belongs to the user passt runs as. */
  passtSock: string;
  /** passt's stdout and stderr. */
  passtLog: string;
  passtPid: string;
}

/** The run files of the VM whose record directory is `dir` (pure). */
export function runFiles(dir: string): RunFiles {
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

/** The VM records on disk; see the file comment for the layout and crash safety. */
export class VmStore {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = join(stateDir, "vms");
    // Traversable, not listable: passt (as nobody) reaches <vm>/passt/.
    mkdirDurable(this.root, 0o711);
    chmodSync(this.root, 0o711);
    sweepTrash(this.root);
  }

  /** Record directory of VM `id`. */
  dir(id: string): string {
    return join(this.root, id);
  }

  /** Run files of VM `id`. */
  files(id: string): RunFiles {
    return runFiles(this.dir(id));
  }

  /** Whether VM `id` has a directory (readable or not). */
  has(id: string): boolean {
    return existsSync(this.dir(id));
  }

  ids(): string[] {
    return readdirSync(this.root).filter((n) => !n.startsWith("."));
  }

  /** Creates the VM directory with all its files in one atomic rename. */
  create(rec: VmRecord, runtime: VmRuntime, event: VmEventRecord): void {
    const final = this.dir(rec.id);
    if (existsSync(final)) throw new VmmError("exists", `VM "${rec.id}" already exists`);
    const tmp = join(this.root, `${TMP_PREFIX}${rec.id}`);
    mkdirSync(tmp, { mode: 0o711 });
    chmodSync(tmp, 0o711); // mkdir's mode is filtered by the umask
    writeJsonAtomic(join(tmp, "vm.json"), rec);
    writeJsonAtomic(join(tmp, "runtime.json"), runtime);
    writeJsonAtomic(join(tmp, "leases.json"), []);
    this.writeEvents(join(tmp, "events.jsonl"), [event]);
    renameSync(tmp, final);
    fsyncDir(this.root);
  }

  loadRecord(id: string): VmRecord {
    return readJson<VmRecord>(join(this.dir(id), "vm.json"));
  }
  loadRuntime(id: string): VmRuntime {
    return readJson<VmRuntime>(join(this.dir(id), "runtime.json"));
  }
  /**
   * The VM's stored leases; none when the file is missing or not a JSON
   * array (power loss may leave it empty, see saveLeases).
   */
  loadLeases(id: string): LeaseRecord[] {
    try {
      const v = readJson<unknown>(join(this.dir(id), "leases.json"));
      return Array.isArray(v) ? (v as LeaseRecord[]) : [];
    } catch {
      return [];
    }
  }
  /** Events oldest first; a torn last line (crash mid-append) is skipped. */
  loadEvents(id: string): VmEventRecord[] {
    const path = join(this.dir(id), "events.jsonl");
    if (!existsSync(path)) return [];
    const out: VmEventRecord[] = [];
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (line === "") continue;
      try {
        out.push(JSON.parse(line) as VmEventRecord);
      } catch {
        // Torn write of the final line; everything before it is intact.
      }
    }
    return out.slice(-MAX_EVENTS_KEPT);
  }

  saveRecord(rec: VmRecord): void {
    writeJsonAtomic(join(this.dir(rec.id), "vm.json"), rec);
  }
  saveRuntime(id: string, rt: VmRuntime): void {
    writeJsonAtomic(join(this.dir(id), "runtime.json"), rt);
  }
  /**
   * Replaces the VM's leases; every lease report goes through here, after its
   * rules are live and before it is answered. Atomic (a kill -9 leaves the
   * old or the new list) but not fsynced: a lease only counts while its
   * guest runs, and no guest outlives the host, so what power loss can do to
   * this file (old content, or empty) never matters. That keeps two fsyncs
   * (~1-2 ms, more under I/O load) off every report.
   */
  saveLeases(id: string, leases: LeaseRecord[]): void {
    writeJsonAtomic(join(this.dir(id), "leases.json"), leases, { durable: false });
  }

  appendEvent(id: string, ev: VmEventRecord): void {
    const path = join(this.dir(id), "events.jsonl");
    // A line can only be torn at the end; loadEvents tolerates that.
    appendFileSync(path, JSON.stringify(ev) + "\n", { mode: 0o600 });
  }

  private writeEvents(path: string, evs: VmEventRecord[]): void {
    const fd = openSync(path, "w", 0o600);
    try {
      writeSync(fd, evs.map((e) => JSON.stringify(e) + "\n").join(""));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  remove(id: string): void {
    removeDirDurable(this.dir(id));
  }
}

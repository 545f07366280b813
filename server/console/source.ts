// Where a VM's console output is kept, as the console reader (reader.ts)
// sees it. The reader knows only this interface, so a different way of
// keeping the output (a capped or rotated log, a daemon-side capture) is a
// different ConsoleSource, not a different reader.
//
// The offset contract: every boot of a VM (one instance_id) has its own
// byte stream; offset 0 is the first byte the guest wrote after that start,
// and offsets never move backwards within a boot. A source that discards
// old output keeps offsets absolute and reports the earliest byte it still
// has as `first()`.
import { closeSync, fstatSync, openSync, readSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import type { EventEmitter } from "node:events";
import { hostError } from "../errors.js";
import type { VmView } from "../vm/types.js";
import { readSegments, rotatedSegments } from "./rotate.js";

/** The console output of one boot, open for reading. */
export interface BootLog {
  readonly instanceId: string;
  /** Earliest offset still kept. */
  first(): number;
  /** Offset one past the last byte written so far. */
  end(): number;
  /** Up to `max` bytes at `offset` (first() <= offset <= end()); fewer at the end. */
  read(offset: number, max: number): Buffer;
  close(): void;
}

/** Which boot a VM is on, as far as its console is concerned. */
export interface BootState {
  /** "" while the VM has never been started. */
  instanceId: string;
  /** False while a start is in progress: the output of the new boot may not exist yet. */
  settled: boolean;
}

export interface ConsoleSource {
  /** The VM's current boot; throws VmmError "not_found" for unknown VMs. */
  current(id: string): BootState;
  /**
   * Opens the output of boot `instanceId` of VM `id`; undefined when it is
   * not kept (another boot replaced it, or it never wrote anything).
   */
  open(id: string, instanceId: string): BootLog | undefined;
  /**
   * Calls `wake` whenever the VM's output or state may have changed
   * (bytes written, started, stopped, removed); returns the unsubscribe.
   * Spurious calls are allowed: the reader re-checks.
   */
  watch(id: string, wake: () => void): () => void;
}

/** What SerialFileSource needs of the VM manager. */
export interface VmLookup {
  /** Throws VmmError "not_found" for unknown VMs. */
  get(id: string): VmView;
  /** Emits ("event", vmId, event) for every VM event. */
  readonly events: EventEmitter;
}

/**
 * QEMU appends the serial console of the current boot to <vm dir>/serial.log,
 * which the supervisor removes before every start. When the log is capped
 * (rotate.ts), the front of the boot's output has moved to serial.log.1,
 * .2, ... or is gone: serial.log's first byte is at the offset the rotation
 * state records, and the copies cover the bytes before it.
 */
export class SerialFileSource implements ConsoleSource {
  /**
   * Identity (inode and birth time) of the file last opened per VM, with
   * its boot. A start that fails before QEMU replaces the file leaves the
   * previous boot's output in place under the new instance id; recognising
   * the file keeps those bytes from being served twice.
   */
  private readonly lastFile = new Map<string, { file: string; instanceId: string }>();

  constructor(
    private readonly vms: VmLookup,
    private readonly vmDir: (id: string) => string,
  ) {
    vms.events.on("event", (id: string, ev: { kind: string }) => {
      if (ev.kind === "removed") this.lastFile.delete(id);
    });
  }

  private path(id: string): string {
    return join(this.vmDir(id), "serial.log");
  }

  current(id: string): BootState {
    const rt = this.vms.get(id).runtime;
    return { instanceId: rt.instanceId, settled: rt.status !== "starting" };
  }

  open(id: string, instanceId: string): BootLog | undefined {
    const now = this.current(id);
    if (instanceId === "" || now.instanceId !== instanceId || !now.settled) return undefined;
    const path = this.path(id);
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw hostError(`open ${path}`, e);
    }
    const st = fstatSync(fd, { bigint: true });
    const file = `${st.ino}:${st.birthtimeNs}`;
    const last = this.lastFile.get(id);
    if (last && last.file === file && last.instanceId !== instanceId) {
      closeSync(fd);
      return undefined;
    }
    this.lastFile.set(id, { file, instanceId });
    let closed = false;
    const dir = this.vmDir(id);
    return {
      instanceId,
      first: () => {
        const r = rotatedSegments(dir, instanceId);
        return r.segments[0]?.start ?? r.base;
      },
      end: () => rotatedSegments(dir, instanceId).base + fstatSync(fd).size,
      read(offset, max) {
        const r = rotatedSegments(dir, instanceId);
        const old = offset < r.base ? readSegments(r.segments, offset, Math.min(max, r.base - offset)) : Buffer.alloc(0);
        if (offset + old.length < r.base || old.length === max) return old;
        const buf = Buffer.allocUnsafe(max - old.length);
        const n = readSync(fd, buf, 0, buf.length, offset + old.length - r.base);
        return old.length === 0 ? buf.subarray(0, n) : Buffer.concat([old, buf.subarray(0, n)]);
      },
      close() {
        if (closed) return;
        closed = true;
        closeSync(fd);
      },
    };
  }

  watch(id: string, wake: () => void): () => void {
    const onEvent = (vmId: string) => {
      if (vmId !== id) return;
      rewatch();
      wake();
    };
    // inotify on the file: new bytes wake the reader at once. The watch
    // follows the inode, so it is renewed on every VM event (a start
    // replaces the file). Without it (no file yet, inotify limits) the
    // reader's slow poll still notices.
    let fsw: FSWatcher | undefined;
    const rewatch = () => {
      fsw?.close();
      fsw = undefined;
      try {
        fsw = watch(this.path(id), { persistent: false }, () => wake());
        fsw.on("error", () => undefined);
      } catch {
        // no file yet, or no inotify watches left
      }
    };
    rewatch();
    this.vms.events.on("event", onEvent);
    return () => {
      this.vms.events.off("event", onEvent);
      fsw?.close();
    };
  }
}

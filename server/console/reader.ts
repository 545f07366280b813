// ReadConsole: a VM's serial console output as a stream of bounded chunks,
// from a byte offset of one boot, optionally following it (`tail -f`) across
// restarts. The offset contract is in source.ts; this file validates the
// request, picks the starting point and moves through boots.
import { setTimeout as sleep } from "node:timers/promises";
import { Problems, VmmError } from "../errors.js";
import { checkId } from "../check.js";
import type { BootLog, ConsoleSource } from "./source.js";

/** A ReadConsole request in domain terms (numbers already range-checked by type). */
export interface ConsoleQuery {
  id: string;
  offset?: number;
  tailLines?: number;
  /** "" for the current boot. */
  instanceId: string;
  follow: boolean;
  /** 0 for the default. */
  maxChunkBytes: number;
}

/** One message of the stream. */
export interface ConsoleChunk {
  instanceId: string;
  offset: number;
  data: Buffer;
  firstOffset: number;
}

export const DEFAULT_CHUNK_BYTES = 65_536;
export const MAX_CHUNK_BYTES = 1_048_576;
export const MAX_TAIL_LINES = 100_000;
/** Console streams open at once; each holds a file descriptor and a watch. */
export const MAX_READERS = 256;
const INSTANCE_ID = /^[A-Za-z0-9._-]{1,128}$/;

export interface ConsoleReaderOptions {
  /** Re-check interval while following, in case a change notification is missed. */
  pollMs?: number;
  /** After a change notification, wait this long so bursts of small writes go out as one message. */
  batchMs?: number;
  maxReaders?: number;
}

/**
 * Offset where the last `lines` lines of `log` begin. A newline that ends
 * the output terminates the last line rather than starting an empty one.
 */
export function tailStart(log: Pick<BootLog, "first" | "end" | "read">, lines: number): number {
  const first = log.first();
  const end = log.end();
  if (lines === 0) return end;
  let count = 0;
  let pos = end;
  while (pos > first) {
    const n = Math.min(65_536, pos - first);
    const buf = log.read(pos - n, n);
    for (let i = buf.length - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a) continue;
      const at = pos - n + i;
      if (at === end - 1) continue;
      if (++count === lines) return at + 1;
    }
    pos -= n;
  }
  return first;
}

function validate(q: ConsoleQuery): void {
  const p = new Problems();
  checkId(p, "id", q.id);
  if (q.offset !== undefined && q.tailLines !== undefined) p.add("tail_lines", "cannot be combined with offset");
  if (q.tailLines !== undefined && q.tailLines > MAX_TAIL_LINES) p.add("tail_lines", `is ${q.tailLines}; at most ${MAX_TAIL_LINES}`);
  if (q.offset !== undefined && !Number.isSafeInteger(q.offset)) p.add("offset", `is ${q.offset}; at most ${Number.MAX_SAFE_INTEGER}`);
  if (q.instanceId !== "" && !INSTANCE_ID.test(q.instanceId)) p.add("instance_id", "is not an instance id (1-128 of A-Z a-z 0-9 . _ -)");
  if (q.maxChunkBytes > MAX_CHUNK_BYTES) p.add("max_chunk_bytes", `is ${q.maxChunkBytes}; at most ${MAX_CHUNK_BYTES}`);
  p.throwIfAny();
}

const isNotFound = (e: unknown) => e instanceof VmmError && e.kind === "not_found";

/** Reads consoles from a ConsoleSource; counts open streams against a limit. */
export class ConsoleReader {
  private open = 0;
  private readonly pollMs: number;
  private readonly batchMs: number;
  private readonly maxReaders: number;

  constructor(
    private readonly src: ConsoleSource,
    o: ConsoleReaderOptions = {},
  ) {
    this.pollMs = o.pollMs ?? 1000;
    this.batchMs = o.batchMs ?? 20;
    this.maxReaders = o.maxReaders ?? MAX_READERS;
  }

  /** Streams that are open right now. */
  get active(): number {
    return this.open;
  }

  /**
   * The stream of one ReadConsole call. Validation, an unknown VM and an
   * offset past the end fail before the first chunk. Ends at the end of the
   * output (no follow), when `signal` aborts, or when the VM is removed.
   */
  async *read(q: ConsoleQuery, signal: AbortSignal): AsyncGenerator<ConsoleChunk> {
    validate(q);
    let state = this.src.current(q.id);
    if (this.open >= this.maxReaders) throw new VmmError("exhausted", `${this.open} console streams are open; at most ${this.maxReaders}`);
    this.open++;
    let pending = false;
    let wakeup: (() => void) | undefined;
    const unwatch = this.src.watch(q.id, () => {
      pending = true;
      wakeup?.();
    });
    const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    /** Waits for a change notification, the poll interval or the abort. */
    const idle = async () => {
      if (!pending) {
        const woken = new Promise<void>((resolve) => (wakeup = resolve));
        await Promise.race([woken, sleep(this.pollMs, undefined, { ref: false }), aborted]);
        wakeup = undefined;
        if (!signal.aborted && this.batchMs > 0) await Promise.race([sleep(this.batchMs, undefined, { ref: false }), aborted]);
      }
      pending = false;
    };
    let log: BootLog | undefined;
    try {
      // A start in progress may not have replaced the previous boot's output yet.
      while (!state.settled && !signal.aborted) {
        await idle();
        state = this.src.current(q.id);
      }
      if (signal.aborted) return;
      log = this.src.open(q.id, state.instanceId);
      const max = q.maxChunkBytes === 0 ? DEFAULT_CHUNK_BYTES : q.maxChunkBytes;
      let pos = log?.first() ?? 0;
      if (q.instanceId === "" || q.instanceId === state.instanceId) {
        if (q.offset !== undefined) {
          const end = log?.end() ?? 0;
          if (q.offset > end)
            throw new VmmError("invalid", `offset: is ${q.offset}; the console of boot "${state.instanceId}" has ${end} bytes`, {
              problems: [{ field: "offset", message: `past the end (${end})` }],
            });
          pos = Math.max(q.offset, pos);
        } else if (q.tailLines !== undefined && log) {
          pos = tailStart(log, q.tailLines);
        }
      }
      let instanceId = state.instanceId;
      let announce = true; // the first message goes out even without data
      let next: string | undefined;
      for (;;) {
        if (log) {
          pos = Math.max(pos, log.first());
          for (let end = log.end(); pos < end && !signal.aborted; end = log.end()) {
            const data = log.read(pos, Math.min(max, end - pos));
            if (data.length === 0) break;
            yield { instanceId, offset: pos, data, firstOffset: log.first() };
            pos += data.length;
            announce = false;
          }
        }
        if (announce && !signal.aborted) {
          yield { instanceId, offset: pos, data: Buffer.alloc(0), firstOffset: log?.first() ?? 0 };
          announce = false;
        }
        if (next !== undefined) {
          // The previous boot is read to its end: move on to the new one and say so.
          log?.close();
          log = this.src.open(q.id, next);
          instanceId = next;
          next = undefined;
          pos = log?.first() ?? 0;
          announce = true;
          continue;
        }
        if (!q.follow || signal.aborted) return;
        await idle();
        if (signal.aborted) return;
        try {
          state = this.src.current(q.id);
        } catch (e) {
          if (isNotFound(e)) return; // removed: nothing more will be written
          throw e;
        }
        if (state.settled && state.instanceId !== instanceId) next = state.instanceId;
      }
    } finally {
      log?.close();
      unwatch();
      this.open--;
    }
  }
}

// Interactive access to a running VM's serial console. QEMU serves the
// console on <vm dir>/console.sock (a chardev socket that accepts one client
// at a time, see vm/qemu-argv.ts); the daemon holds that one connection per
// VM while anyone is attached and shares it: every attachment sees all
// output from the moment it attached, and every attachment may type.
//
// A slow attachment must not stall the guest (QEMU stops draining the
// serial port when its socket blocks, and the guest's console writes block
// behind it), so each attachment's backlog is bounded and an attachment
// that falls too far behind is ended with `exhausted` instead.
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { precondition, VmmError } from "../errors.js";
import type { VmLookup } from "./source.js";

/** Output an attachment may have queued before it is cut off. */
export const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;
/** Largest input accepted in one write. */
export const MAX_INPUT_BYTES = 64 * 1024;
/** Attachments one VM's console may have at once. */
export const MAX_ATTACHMENTS = 16;

/** One client's view of the console. */
export interface Attachment {
  /** Console output from the moment of attaching; ends when the VM stops or `close()` is called. */
  readonly output: AsyncIterable<Buffer>;
  /** Types `data` into the console. */
  write(data: Uint8Array): void;
  /** Detaches (the shared connection closes with the last attachment). */
  close(): void;
}

interface Sub {
  queue: Buffer[];
  queued: number;
  wake?: () => void;
  /** Set when the stream must end: undefined = normal end. */
  done: boolean;
  error?: Error;
}

interface Channel {
  socket: Socket;
  subs: Set<Sub>;
  ready: Promise<void>;
}

export class ConsoleAttacher {
  private readonly channels = new Map<string, Channel>();

  constructor(
    private readonly vms: VmLookup,
    private readonly vmDir: (id: string) => string,
  ) {}

  /** Attaches to VM `id`'s console; not_found for unknown VMs, precondition unless it runs. */
  async attach(id: string): Promise<Attachment> {
    const status = this.vms.get(id).runtime.status;
    if (status !== "running") throw precondition(`VM "${id}" is ${status}; its console can be attached only while it runs`);
    if ((this.channels.get(id)?.subs.size ?? 0) >= MAX_ATTACHMENTS) throw new VmmError("exhausted", `VM "${id}" has ${MAX_ATTACHMENTS} console attachments already`);
    const ch = this.channel(id);
    const sub: Sub = { queue: [], queued: 0, done: false };
    ch.subs.add(sub);
    try {
      await ch.ready;
    } catch (e) {
      ch.subs.delete(sub);
      throw e;
    }
    const end = () => {
      if (!ch.subs.delete(sub)) return;
      sub.done = true;
      sub.wake?.();
      if (ch.subs.size === 0) this.drop(id, ch);
    };
    return {
      output: this.iterate(sub, end),
      write: (data) => {
        if (data.length > MAX_INPUT_BYTES) throw new VmmError("invalid", `input: is ${data.length} bytes; at most ${MAX_INPUT_BYTES} per message`, { problems: [{ field: "input", message: "too long" }] });
        if (!sub.done && data.length > 0) ch.socket.write(data);
      },
      close: end,
    };
  }

  /** Ends every attachment (daemon shutdown). */
  close(): void {
    for (const [id, ch] of this.channels) {
      for (const s of ch.subs) this.finish(s);
      this.drop(id, ch);
    }
  }

  private channel(id: string): Channel {
    const existing = this.channels.get(id);
    if (existing) return existing;
    const path = join(this.vmDir(id), "console.sock");
    const socket = connect(path);
    const subs = new Set<Sub>();
    const ready = new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", (e) => reject(new VmmError("unavailable", `console of VM "${id}": connect ${path} failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e })));
    });
    ready.catch(() => this.drop(id, ch));
    const ch: Channel = { socket, subs, ready };
    socket.on("data", (b: Buffer) => {
      for (const s of subs) {
        if (s.queued + b.length > MAX_BACKLOG_BYTES) {
          subs.delete(s);
          this.finish(s, new VmmError("exhausted", `console output backlog over ${MAX_BACKLOG_BYTES} bytes: the client reads too slowly`));
          continue;
        }
        s.queue.push(b);
        s.queued += b.length;
        s.wake?.();
      }
      if (subs.size === 0) this.drop(id, ch);
    });
    // QEMU closed the console: the VM stopped. Every attachment ends normally.
    socket.on("close", () => {
      for (const s of subs) this.finish(s);
      subs.clear();
      if (this.channels.get(id) === ch) this.channels.delete(id);
    });
    socket.on("error", () => undefined); // reported through `ready` or ends as a close
    this.channels.set(id, ch);
    return ch;
  }

  private finish(s: Sub, error?: Error): void {
    s.done = true;
    if (error) s.error = error;
    s.wake?.();
  }

  private drop(id: string, ch: Channel): void {
    if (this.channels.get(id) === ch) this.channels.delete(id);
    ch.socket.destroy();
  }

  private async *iterate(sub: Sub, end: () => void): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        while (sub.queue.length > 0) {
          const b = sub.queue.shift()!;
          sub.queued -= b.length;
          yield b;
        }
        if (sub.done) break;
        await new Promise<void>((r) => (sub.wake = r));
        sub.wake = undefined;
      }
      if (sub.error) throw sub.error;
    } finally {
      end();
    }
  }
}

// A QMP (QEMU Machine Protocol) client over QEMU's unix socket
// (`-qmp unix:PATH,server=on,wait=off`, see qemu-argv.ts).
//
// Protocol: QEMU sends a greeting {"QMP": {...}}; the client must send
// qmp_capabilities before anything else. Then each command
// {"execute", "arguments"?, "id"} gets exactly one {"return"|"error", "id"}
// reply, and asynchronous {"event", "data"?, "timestamp"} messages arrive
// at any time. Every message is one line of JSON.
//
// Every wait here is bounded: connecting (QEMU may not have created the
// socket yet), the greeting, and each command.
import { EventEmitter } from "node:events";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { VmmError, hostError } from "../errors.js";

/** An asynchronous QMP message (SHUTDOWN, STOP, RESET, ...). */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** The first message QEMU sends on a QMP connection, with its version. */
export interface QmpGreeting {
  QMP: { version: { qemu: { major: number; minor: number; micro: number }; package: string }; capabilities: string[] };
}

/** A QMP command answered with {"error": {class, desc}}. */
export class QmpError extends VmmError {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(errorClass === "CommandNotFound" ? "unsupported" : "internal", `QMP ${command} failed: ${errorClass}: ${desc}`);
    this.name = "QmpError";
  }
}

/** Bounds of connecting and of each command; every field has a default. */
export interface QmpConnectOptions {
  /** Give up connecting after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between attempts while the socket is missing/refusing (default 50 ms). */
  retryIntervalMs?: number;
  /** Stop retrying early when this says QEMU is gone (e.g. its pid exited). */
  alive?: () => boolean;
  /** Default bound for each command (default 30 s). */
  commandTimeoutMs?: number;
}

/** The answer of `query-status`. */
export interface QmpStatus {
  status: string;
  running: boolean;
  singlestep?: boolean;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Emits "event" (QmpEvent) for every asynchronous event, also by name
 * (e.g. "SHUTDOWN", "POWERDOWN", "STOP", "RESUME"), and "close" once the
 * connection ends.
 */
export class QmpClient extends EventEmitter {
  private buf = "";
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  private greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: Error) => void } | undefined;
  greeting: QmpGreeting | undefined;

  private constructor(
    private readonly sock: Socket,
    readonly path: string,
    private readonly commandTimeoutMs: number,
  ) {
    super();
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => this.onData(d));
    sock.on("error", () => undefined); // reported through "close"
    sock.on("close", () => this.onClose());
  }

  /**
   * Connects (retrying while the socket does not exist yet or refuses),
   * reads the greeting and negotiates capabilities.
   */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    for (;;) {
      try {
        const sock = await connectOnce(path, Math.max(1, deadline - Date.now()));
        const c = new QmpClient(sock, path, opts.commandTimeoutMs ?? 30_000);
        try {
          c.greeting = await c.readGreeting(Math.max(1, deadline - Date.now()));
          await c.execute("qmp_capabilities");
          return c;
        } catch (e) {
          c.close();
          throw e;
        }
      } catch (e) {
        lastErr = e;
        const code = (e as NodeJS.ErrnoException).code;
        const retriable = code === "ENOENT" || code === "ECONNREFUSED";
        if (!retriable || Date.now() >= deadline || (opts.alive && !opts.alive())) break;
        await sleep(Math.min(opts.retryIntervalMs ?? 50, Math.max(1, deadline - Date.now())));
      }
    }
    if (lastErr instanceof VmmError) throw lastErr;
    const why = opts.alive && !opts.alive() ? " (QEMU is gone)" : "";
    throw hostError(`connect to QMP socket ${path} within ${timeoutMs} ms${why}`, lastErr, "unavailable");
  }

  /** Runs a QMP command; resolves with its "return" value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    if (this.closed) return Promise.reject(new VmmError("unavailable", `QMP ${command}: connection to ${this.path} is closed`));
    const id = `vmm-${this.nextId++}`;
    const msg: Record<string, unknown> = { execute: command, id };
    if (args !== undefined) msg.arguments = args;
    return new Promise<T>((resolve, reject) => {
      const limit = timeoutMs ?? this.commandTimeoutMs;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new VmmError("unavailable", `QMP ${command}: no reply within ${limit} ms`));
      }, limit);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.sock.write(JSON.stringify(msg) + "\n");
    });
  }

  queryStatus(): Promise<QmpStatus> {
    return this.execute<QmpStatus>("query-status");
  }

  /** Presses the ACPI power button; the guest decides to shut down. */
  async systemPowerdown(): Promise<void> {
    await this.execute("system_powerdown");
  }

  /** Ends QEMU at once. Resolves when QEMU acknowledged or closed the connection. */
  async quit(): Promise<void> {
    try {
      await this.execute("quit");
    } catch (e) {
      if (!this.closed) throw e; // QEMU may close before its reply reaches us
    }
  }

  /** Resolves with the next event named `name`, or rejects after `timeoutMs` or on close. */
  waitForEvent(name: string, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const onEvent = (ev: QmpEvent) => {
        cleanup();
        resolve(ev);
      };
      const onClose = () => {
        cleanup();
        reject(new VmmError("unavailable", `QMP connection closed while waiting for ${name}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new VmmError("unavailable", `no QMP ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off(name, onEvent);
        this.off("close", onClose);
      };
      this.on(name, onEvent);
      if (this.closed) onClose();
      else this.on("close", onClose);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the connection (QEMU keeps running). Pending commands are rejected. */
  close(): void {
    this.sock.destroy();
  }

  private readGreeting(timeoutMs: number): Promise<QmpGreeting> {
    if (this.greeting) return Promise.resolve(this.greeting);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greetingWaiter = undefined;
        reject(new VmmError("unavailable", `QMP ${this.path}: no greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      this.greetingWaiter = {
        resolve: (g) => {
          clearTimeout(timer);
          resolve(g);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line !== "") this.onMessage(line);
    }
    if (this.buf.length > 16 << 20) {
      // A runaway peer: never buffer without bound.
      this.sock.destroy(new Error("QMP message larger than 16 MiB"));
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.sock.destroy(new Error(`QMP: malformed message ${line.slice(0, 120)}`));
      return;
    }
    if ("QMP" in msg) {
      this.greeting = msg as unknown as QmpGreeting;
      this.greetingWaiter?.resolve(msg as unknown as QmpGreeting);
      this.greetingWaiter = undefined;
      return;
    }
    if (typeof msg.event === "string") {
      const ev = msg as unknown as QmpEvent;
      this.emit("event", ev);
      this.emit(ev.event, ev);
      return;
    }
    const id = typeof msg.id === "string" ? msg.id : undefined;
    const p = id !== undefined ? this.pending.get(id) : undefined;
    if (!p) return; // a reply we no longer wait for (timed out)
    this.pending.delete(id!);
    clearTimeout(p.timer);
    if ("error" in msg) {
      const err = (msg.error ?? {}) as { class?: string; desc?: string };
      p.reject(new QmpError(p.command, err.class ?? "GenericError", err.desc ?? "unknown error"));
    } else {
      p.resolve(msg.return);
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.greetingWaiter?.reject(new VmmError("unavailable", `QMP ${this.path}: closed before the greeting`));
    this.greetingWaiter = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new VmmError("unavailable", `QMP ${p.command}: connection to ${this.path} closed`));
      this.pending.delete(id);
    }
    this.emit("close");
  }
}

function connectOnce(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error(`connect timed out after ${timeoutMs} ms`), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    });
  });
}

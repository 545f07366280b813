// Client of vmm-relayd (native/relayd/), the forwarder's data path
// as a process of its own: vmmd spawns it, sends one command line per rule
// change on its stdin and reads one answer line per command on its stdout.
// Counters are read synchronously with pread(2) from a shared file the relay
// maps (one 64-byte slot per rule), so list() never waits for the relay.
//
// fd ownership: the relay creates, binds and closes every socket itself; the
// only fds vmmd holds are the relay's stdin/stdout pipes and the counter file.
import { spawn, spawnSync, type ChildProcessByStdio } from "node:child_process";
import { closeSync, existsSync, openSync, readSync, unlinkSync, accessSync, constants } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Readable, Writable } from "node:stream";
import { getSystemErrorMap } from "node:util";

/** Rules one relay can hold at once (slot 0 is unused). */
export const kRelaySlots = 4096;
const kSlotBytes = 64;

export interface RelayCounters {
  /** TCP connections open now (UDP: always 0, see sessionsActive). */
  connectionsActive: number;
  /** TCP connections accepted and relayed; UDP sessions created. */
  connectionsTotal: number;
  bytesToGuest: number;
  bytesFromGuest: number;
  /** UDP sessions open now (TCP: always 0). */
  sessionsActive: number;
  /** Refused or timed-out guest connects, resets, limit rejections, send failures. */
  errors: number;
}

/** An error answered by the relay: Node-style negative errno and the syscall. */
export class RelayError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = "RelayError";
  }
}

/** Candidate paths of the vmm-relayd binary, most specific first. */
export function relaydCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  // Works from the sources (native/relay.ts) and the build (dist/native/relay.js).
  const roots = [resolve(here), resolve(here, "..", "..", "native")];
  const out: string[] = [];
  if (process.env.VMM_RELAYD) out.push(resolve(process.env.VMM_RELAYD));
  for (const r of roots) {
    out.push(join(r, "build", "Release", "vmm-relayd"));
    out.push(join(r, "build", "Debug", "vmm-relayd"));
  }
  return [...new Set(out)];
}

/**
 * Finds an executable vmm-relayd whose `--probe` (splice socket -> pipe ->
 * socket) succeeds. Throws an Error listing every path tried and why it failed.
 */
export function findRelayd(): string {
  const tried: string[] = [];
  for (const p of relaydCandidates()) {
    if (!existsSync(p)) {
      tried.push(`  ${p}: not found`);
      continue;
    }
    try {
      accessSync(p, constants.X_OK);
    } catch (e) {
      tried.push(`  ${p}: ${(e as Error).message}`);
      continue;
    }
    const r = spawnSync(p, ["--probe"], { encoding: "utf8", timeout: 5000 });
    if (r.status === 0) return p;
    tried.push(`  ${p}: --probe failed: ${r.error?.message ?? (r.stderr.trim() || `exit ${r.status}`)}`);
  }
  throw new Error(`vmm-relayd unavailable (build it with \`npm run build:native\`); tried:\n${tried.join("\n")}`);
}

type Child = ChildProcessByStdio<Writable, Readable, null>;

/** One running vmm-relayd (a master process and its workers). */
export class RelayDaemon {
  private readonly child: Child;
  private readonly countersFd: number;
  private readonly waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  private readonly free: number[] = [];
  private buf = "";
  private dead: Error | undefined;
  private readonly ready: Promise<number[]>;
  private readonly exited: Promise<void>;
  private readonly slot = Buffer.alloc(kSlotBytes);

  /**
   * Spawns the relay with `workers` processes, packing new TCP connections
   * into the first process with fewer than `packBelow` of them (see
   * native/relayd/steer.h). Synchronous; `pids()` waits for it.
   */
  constructor(bin: string, workers: number, packBelow = 1024) {
    for (let i = kRelaySlots - 1; i >= 1; i--) this.free.push(i);
    // The counter file: created here, handed to the relay as fd 3 and
    // unlinked at once, so only the two processes can reach it.
    const dir = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
    const path = join(dir, `vmm-relayd-${process.pid}-${randomBytes(6).toString("hex")}`);
    this.countersFd = openSync(path, "wx+", 0o600);
    try {
      this.child = spawn(bin, ["--workers", String(workers), "--pack", String(packBelow)], {
        stdio: ["pipe", "pipe", "inherit", this.countersFd],
      }) as unknown as Child;
    } finally {
      unlinkSync(path);
    }
    this.child.unref();
    this.child.stdin.on("error", () => {}); // reported through "exit"
    this.child.stdout.on("error", () => {});
    this.child.stdout.setEncoding("utf8");
    let onReady: (pids: number[]) => void;
    let onFail: (e: Error) => void;
    this.ready = new Promise<number[]>((res, rej) => {
      onReady = res;
      onFail = rej;
    });
    this.ready.catch(() => undefined);
    this.waiting.push({
      resolve: (line) => {
        const m = /^READY((?: \d+)+)$/.exec(line);
        if (m) onReady(m[1]!.trim().split(" ").map(Number));
        else onFail(new Error(`vmm-relayd: unexpected first line ${JSON.stringify(line)}`));
      },
      reject: (e) => onFail(e),
    });
    this.child.stdout.on("data", (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiting.shift()?.resolve(line);
      }
      this.refIfBusy();
    });
    this.exited = new Promise<void>((res) => {
      this.child.once("exit", (code, signal) => {
        this.dead = new Error(`vmm-relayd exited (${signal ?? `code ${code}`})`);
        for (const w of this.waiting.splice(0)) w.reject(this.dead);
        res();
      });
      // "error": spawn failed (no "exit" follows) or a later kill() failed.
      this.child.on("error", (e) => {
        if (this.dead) return;
        this.dead = new Error(`vmm-relayd: spawn ${bin}: ${e.message}`);
        for (const w of this.waiting.splice(0)) w.reject(this.dead);
        res();
      });
    });
    this.refIfBusy();
  }

  /** PIDs of every relay process (master first), once it is running. */
  pids(): Promise<number[]> {
    return this.ready;
  }

  /** Allocates a rule id (counter slot), or throws when all are taken. */
  allocate(): number {
    const id = this.free.pop();
    if (id === undefined) throw new Error(`vmm-relayd: more than ${kRelaySlots - 1} rules`);
    return id;
  }

  /** Returns an id whose rule was removed (its slot is zeroed by the next add). */
  release(id: number): void {
    this.free.push(id);
    this.refIfBusy();
  }

  /**
   * Sends one command and resolves with the answer after "OK" ("" when
   * none). An "ERR <syscall> <errno>" answer rejects with a RelayError.
   */
  async request(line: string): Promise<string> {
    await this.ready;
    if (this.dead) throw this.dead;
    const answer = await new Promise<string>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.refIfBusy();
      this.child.stdin.write(`${line}\n`);
    });
    if (answer === "OK") return "";
    if (answer.startsWith("OK ")) return answer.slice(3);
    const m = /^ERR (\S+) (\d+)$/.exec(answer);
    if (!m) throw new Error(`vmm-relayd: unexpected answer ${JSON.stringify(answer)} to ${JSON.stringify(line)}`);
    const errno = Number(m[2]);
    const [code, desc] = describeErrno(errno) ?? [undefined, `errno ${errno}`];
    throw new RelayError(m[1]!, -errno, code, `${m[1]}: ${desc}`);
  }

  /** The live counters of rule `id`, read from the shared file (synchronous). */
  counters(id: number): RelayCounters {
    readSync(this.countersFd, this.slot, 0, kSlotBytes, id * kSlotBytes);
    const n = (i: number) => Number(this.slot.readBigUInt64LE(i * 8));
    // Layout: struct Slot in native/relayd/slots.h.
    return {
      errors: n(0),
      connectionsTotal: n(1),
      bytesToGuest: n(2),
      bytesFromGuest: n(3),
      sessionsActive: n(4),
      connectionsActive: n(5),
    };
  }

  /** Closes stdin (the relay closes everything and exits); SIGKILL after 5 s. */
  async close(): Promise<void> {
    if (!this.dead) {
      this.child.stdin.end();
      this.child.ref();
      const t = setTimeout(() => this.child.kill("SIGKILL"), 5000);
      await this.exited;
      clearTimeout(t);
    }
    closeSync(this.countersFd);
  }

  /**
   * Keeps the event loop alive while an answer is awaited or a rule is live
   * (as a listening net.Server would); an idle relay does not.
   */
  private refIfBusy(): void {
    const s = this.child.stdout as unknown as { ref(): void; unref(): void };
    if (this.waiting.length > 0 || this.free.length < kRelaySlots - 1) s.ref();
    else s.unref();
  }
}

let errnoNames: Map<number, [string, string]> | undefined;
/** [code, description] of a positive errno, e.g. 98 -> ["EADDRINUSE", "address already in use"]. */
function describeErrno(errno: number): [string, string] | undefined {
  errnoNames ??= new Map([...getSystemErrorMap()].map(([k, v]) => [-k, v]));
  return errnoNames.get(errno);
}

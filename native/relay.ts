// Client of vmm-relayd (native/relayd/), the forwarder's data path as
// processes of their own that outlive vmmd. vmmd talks to the relay's
// master over a unix socket in a directory of its state dir (control.h: one
// command line, one answer line), and reads counters synchronously with
// pread(2) from the relay's counter memfd (one 64-byte slot per rule), which
// it opens through /proc/<pid>/fd, so list() never waits for the relay.
//
// RelayDaemon.open() adopts the relay already serving that directory (a vmmd
// restarted after kill -9 or an upgrade finds its rules there) or starts one,
// detached like a guest: its own session, output to a log file, never a pipe
// (a pipe would break once vmmd is gone).
//
// fd ownership: the relay creates, binds and closes every forwarded socket
// itself; vmmd holds the control connection and its copy of the counter file.
// The control connection itself (directory, socket, greeting) is
// native/relay-control.ts.
import { spawn, spawnSync } from "node:child_process";
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, readlinkSync, readSync, statSync, truncateSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getSystemErrorMap } from "node:util";
import { connectControl, ensureDir, parseHello, RelayBusy, sleep, waitGone, type Control, type Hello } from "./relay-control.js";

export { waitGone };

/** Rules one relay can hold at once (slot 0 is unused). */
export const kRelaySlots = 4096;
/** Version of the control protocol and slot layout (native/relayd/control.h kProtocol). */
export const kRelayProtocol = 2;
const kSlotBytes = 64;

/**
 * Counters of one rule as vmm-relayd keeps them in its shared-memory slot (native/relayd/slots.h);
 * byte counts are totals since the rule was added.
 */
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
  /** TCP: guest connects that were refused, unreachable or timed out (counted in `errors` too). */
  connectFailures: number;
  /** TCP: errno code of the last failed guest connect ("ECONNREFUSED", "ETIMEDOUT", ...), "" before any. */
  lastConnectError: string;
}

/** One rule as the relay holds it (the L command). */
export interface RelayRule {
  id: number;
  protocol: "tcp" | "udp";
  listenAddress: string;
  /** The bound port. */
  listenPort: number;
  targetAddress: string;
  targetPort: number;
  /** Connect timeout (TCP) or idle time (UDP), ms. */
  limitMs: number;
  /** Connections (TCP) or sessions (UDP). */
  max: number;
  proxyProtocol: boolean;
  /** The tag vmmd gave the rule (its owner). */
  owner: string;
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

/** How to reach (or start) the relay of one directory. */
export interface RelayOptions {
  /** The vmm-relayd binary (findRelayd()). */
  bin: string;
  /** Its directory: control socket, lock, log. Created 0700 when missing. */
  dir: string;
  /** Relay processes. */
  workers: number;
  /** New TCP connections go to the first process below this many (native/relayd/steer.h). */
  packBelow: number;
  /** Nice value of the relay's processes (-20..19; vmm.toml `nice`); unset: the one it inherits. */
  nice?: number;
  /** Longest busy poll before a relay process sleeps, in µs (0..1000; native/relayd/engine.cc); unset: 0. */
  pollUs?: number;
}

/** The S command giving a running relay `o`'s nice value and busy poll ("-": unchanged; native/relayd/control.h). */
export const relaySettingsLine = (o: Pick<RelayOptions, "nice" | "pollUs">): string => `S ${o.nice ?? "-"} ${o.pollUs ?? "-"}`;

/** vmm-relayd's arguments for `o` (its usage line is in native/relayd/main.cc). */
export function relaydArgv(o: RelayOptions): string[] {
  const argv = ["--control", o.dir, "--workers", String(o.workers), "--pack", String(o.packBelow)];
  if (o.nice !== undefined) argv.push("--nice", String(o.nice));
  if (o.pollUs !== undefined) argv.push("--poll-us", String(o.pollUs));
  return argv;
}


/** One running vmm-relayd (a master process and its workers), controlled by this process. */
export class RelayDaemon {
  private readonly waiting: { rows: string[]; resolve: (v: { rows: string[]; line: string }) => void; reject: (e: Error) => void }[] = [];
  private readonly free: number[] = [];
  private readonly used = new Set<number>();
  /**
   * The whole counter table as read once in this turn of the event loop:
   * listing every forward (each second, for the lease error watch) costs one
   * pread, not one per rule.
   */
  private readonly table = Buffer.alloc(kRelaySlots * kSlotBytes);
  private tableFresh = false;
  private dead: Error | undefined;
  private detaching = false;
  private lost: ((e: Error) => void) | undefined;

  private constructor(
    private readonly ctl: Control,
    private readonly countersFd: number,
    /** Every relay process, master first. */
    readonly pids: number[],
    /** True when this relay was already running (started by an earlier vmmd). */
    readonly adopted: boolean,
    /** Why the relay's binary differs from `bin` (an older build keeps serving), if it does. */
    readonly stale: string | undefined,
  ) {
    for (let i = kRelaySlots - 1; i >= 1; i--) this.free.push(i);
    void this.pump();
    ctl.whenClosed(() => {
      this.dead ??= new Error("vmm-relayd exited");
      for (const w of this.waiting.splice(0)) w.reject(this.dead);
      if (!this.detaching) this.lost?.(this.dead);
    });
    this.refIfBusy();
  }

  /**
   * Adopts the relay serving `o.dir`, or starts one (`spawnIfMissing`).
   * A relay of another protocol version is told to quit and replaced (its
   * connections end). Resolves with undefined when none runs and
   * `spawnIfMissing` is false.
   */
  static async open(o: RelayOptions, spawnIfMissing = true): Promise<RelayDaemon | undefined> {
    ensureDir(o.dir);
    const path = join(o.dir, "control.sock");
    for (let attempt = 0; ; attempt++) {
      let ctl = await connectControl(path);
      const adopted = ctl !== undefined;
      if (!ctl) {
        if (!spawnIfMissing) return undefined;
        ctl = await RelayDaemon.spawn(o, path);
      }
      let hello: Hello;
      try {
        hello = parseHello(await ctl.line(5000), o.dir);
      } catch (e) {
        ctl.sock.destroy();
        // A controller that died a moment ago may still be registered.
        if (e instanceof RelayBusy && attempt < 20) {
          await sleep(100);
          continue;
        }
        throw e;
      }
      if (hello.protocol !== kRelayProtocol && attempt < 3) {
        ctl.sock.write("Q\n");
        await waitGone(hello.pids, 5000);
        ctl.sock.destroy();
        continue;
      }
      if (hello.protocol !== kRelayProtocol) throw new Error(`vmm-relayd in ${o.dir} speaks protocol ${hello.protocol}, not ${kRelayProtocol}, and did not quit`);
      return RelayDaemon.attach(ctl, hello, o, adopted);
    }
  }

  private static attach(ctl: Control, hello: Hello, o: RelayOptions, adopted: boolean): RelayDaemon {
    // SAFETY: our own open file description of the relay's counter memfd;
    // closed by detach() and shutdown(), readable after the relay died (the
    // last counters).
    const fd = openSync(`/proc/${hello.pids[0]}/fd/${hello.countersFd}`, "r");
    let stale: string | undefined;
    try {
      const exe = readlinkSync(`/proc/${hello.pids[0]}/exe`);
      if (exe.endsWith(" (deleted)")) stale = `its binary ${exe} was replaced`;
      else if (statSync(exe).ino !== statSync(o.bin).ino) stale = `it runs ${exe}, not ${o.bin}`;
    } catch {
      // not ours to judge
    }
    return new RelayDaemon(ctl, fd, hello.pids, adopted, stale);
  }

  /** Starts a relay for `o.dir` and connects to it; throws with the relay's own words when it exits first. */
  private static async spawn(o: RelayOptions, path: string): Promise<Control> {
    const logPath = join(o.dir, "relayd.log");
    try {
      if (statSync(logPath).size > 1 << 20) truncateSync(logPath, 0);
    } catch {
      // no log yet
    }
    const log = openSync(logPath, "a", 0o600);
    let exited: string | undefined;
    try {
      const child = spawn(o.bin, relaydArgv(o), {
        detached: true,
        stdio: ["ignore", log, log],
      });
      child.unref();
      child.on("error", (e) => (exited = e.message));
      child.on("exit", (code, signal) => (exited = signal ?? `exit status ${code}`));
    } finally {
      closeSync(log);
    }
    const end = Date.now() + 10_000;
    // Status 3: another relay holds the directory (and may still be binding its socket).
    while (Date.now() < end && (exited === undefined || exited === "exit status 3")) {
      const ctl = await connectControl(path);
      if (ctl) return ctl;
      await sleep(10);
      if (exited === "exit status 3" && Date.now() > end - 8000) break;
    }
    let tail = "";
    try {
      tail = readFileSync(logPath, "utf8").trim().split("\n").slice(-3).join("; ");
    } catch {
      // no log
    }
    throw new Error(`vmm-relayd did not start (${exited ?? "no control socket after 10 s"})${tail ? `: ${tail}` : ""}`);
  }

  /** Calls `fn` once if the relay goes away while this process controls it. */
  onLost(fn: (e: Error) => void): void {
    this.lost = fn;
  }

  /** Allocates a rule id (counter slot), or throws when all are taken. */
  allocate(): number {
    const id = this.free.pop();
    if (id === undefined) throw new Error(`vmm-relayd: more than ${kRelaySlots - 1} rules`);
    this.used.add(id);
    this.refIfBusy();
    return id;
  }

  /** Marks `id` as used (an adopted rule). */
  claim(id: number): void {
    const i = this.free.indexOf(id);
    if (i >= 0) this.free.splice(i, 1);
    this.used.add(id);
    this.refIfBusy();
  }

  /** Returns an id whose rule was removed (its slot is zeroed by the next add). */
  release(id: number): void {
    if (!this.used.delete(id)) return;
    this.free.push(id);
    this.refIfBusy();
  }

  /**
   * Sends one command and resolves with the answer after "OK" ("" when
   * none). An "ERR <syscall> <errno>" answer rejects with a RelayError.
   */
  async request(line: string): Promise<string> {
    return (await this.exchange(line)).answer;
  }

  /** The relay's rule table (L). */
  async list(): Promise<RelayRule[]> {
    const { rows } = await this.exchange("L");
    return rows.map((r) => {
      const f = r.split(" ");
      const owner = f[10] === "-" ? "" : Buffer.from(f[10] ?? "", "hex").toString("utf8");
      return {
        id: Number(f[1]),
        protocol: f[2] as "tcp" | "udp",
        listenAddress: f[3]!,
        listenPort: Number(f[4]),
        targetAddress: f[5]!,
        targetPort: Number(f[6]),
        limitMs: Number(f[7]),
        max: Number(f[8]),
        proxyProtocol: (f[9] ?? "").includes("p"),
        owner,
      };
    });
  }

  private async exchange(line: string): Promise<{ answer: string; rows: string[] }> {
    if (this.dead) throw this.dead;
    const { rows, line: answer } = await new Promise<{ rows: string[]; line: string }>((resolve, reject) => {
      this.waiting.push({ rows: [], resolve, reject });
      this.refIfBusy();
      this.ctl.sock.write(`${line}\n`);
    });
    this.refIfBusy();
    if (answer === "OK") return { answer: "", rows };
    if (answer.startsWith("OK ")) return { answer: answer.slice(3), rows };
    const m = /^ERR (\S+) (\d+)$/.exec(answer);
    if (!m) throw new Error(`vmm-relayd: unexpected answer ${JSON.stringify(answer)} to ${JSON.stringify(line)}`);
    const errno = Number(m[2]);
    const [code, desc] = describeErrno(errno) ?? [undefined, `errno ${errno}`];
    throw new RelayError(m[1]!, -errno, code, `${m[1]}: ${desc}`);
  }

  /** Hands answer lines to waiting requests ("R ..." rows belong to the one in front). */
  private async pump(): Promise<void> {
    for (;;) {
      let line: string;
      try {
        line = await this.ctl.line();
      } catch {
        return;
      }
      const w = this.waiting[0];
      if (!w) continue;
      if (line.startsWith("R ")) {
        w.rows.push(line);
        continue;
      }
      this.waiting.shift();
      w.resolve({ rows: w.rows, line });
    }
  }

  /**
   * The live counters of rule `id`, read from the shared file (synchronous):
   * as of the first read in this turn of the event loop, or now with `fresh`.
   */
  counters(id: number, fresh = false): RelayCounters {
    if (!this.tableFresh || fresh) {
      readSync(this.countersFd, this.table, 0, this.table.length, 0);
      this.tableFresh = true;
      setImmediate(() => (this.tableFresh = false));
    }
    const at = id * kSlotBytes;
    const n = (i: number) => Number(this.table.readBigUInt64LE(at + i * 8));
    // Layout: struct Slot in native/relayd/slots.h.
    const errno = this.table.readUInt32LE(at + 52);
    return {
      errors: n(0),
      connectionsTotal: n(1),
      bytesToGuest: n(2),
      bytesFromGuest: n(3),
      sessionsActive: n(4),
      connectionsActive: n(5),
      connectFailures: n(7),
      lastConnectError: errno === 0 ? "" : (describeErrno(errno)?.[0] ?? `errno ${errno}`),
    };
  }

  /** Whether the relay is gone (exited or killed). */
  get exited(): boolean {
    return this.dead !== undefined;
  }

  /** Lets go of the relay: it keeps forwarding and waits for the next vmmd. */
  async detach(): Promise<void> {
    this.detaching = true;
    this.ctl.sock.end();
    if (!this.ctl.closed) await new Promise<void>((r) => this.ctl.sock.once("close", () => r()));
    closeSync(this.countersFd);
  }

  /** Tells the relay to close everything and exit; waits for its processes (SIGKILL after 5 s). */
  async shutdown(): Promise<void> {
    this.detaching = true;
    if (!this.dead) await this.request("Q").catch(() => undefined);
    this.ctl.sock.destroy();
    await waitGone(this.pids, 5000);
    closeSync(this.countersFd);
  }

  /**
   * Keeps the event loop alive while an answer is awaited or a rule is live
   * (as a listening net.Server would); an idle relay does not.
   */
  private refIfBusy(): void {
    if (this.waiting.length > 0 || this.used.size > 0) this.ctl.sock.ref();
    else this.ctl.sock.unref();
  }
}

let errnoNames: Map<number, [string, string]> | undefined;
/** [code, description] of a positive errno, e.g. 98 -> ["EADDRINUSE", "address already in use"]. */
function describeErrno(errno: number): [string, string] | undefined {
  errnoNames ??= new Map([...getSystemErrorMap()].map(([k, v]) => [-k, v]));
  return errnoNames.get(errno);
}

// The port forwarding service: rules grouped by owner (a VM id or network
// id), applied as a diff so unchanged rules keep their live connections, with
// bind errors returned to the caller and no partial state on failure. Rules
// run on one of two paths: userspace (vmm-relayd, or Node sockets as a
// fallback) or nat (nftables DNAT, nat.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { VmmError, ValidationError, hostError, precondition } from "../errors.js";
import { log } from "../log.js";
import { findRelayd, RelayDaemon } from "../../native/relay.js";
import { overlaps, ruleKey, sameSettings, showAddress, validateRules, type ForwardRule, type ForwardStatus } from "./rules.js";
import type { AdoptedRule, RelayLimits, RuleRelay } from "./relay.js";
import { NativeRelays } from "./native-relay.js";
import { NatRules, natTableName } from "./nat.js";
import { openSocketsTcp } from "./tcp-sockets.js";
import { openUdp } from "./udp.js";

/** How ForwardService relays; every field has a default, and the daemon fills them from `[forward]`. */
export interface ForwardServiceOptions {
  /**
   * Userspace data path. "native": vmm-relayd, processes of their own (TCP
   * and UDP), or the constructor throws (kind "unsupported"). "sockets":
   * plain Node sockets and dgram in this process. "auto" (default): native
   * when the vmm-relayd binary is found and its splice probe passes, else
   * sockets.
   */
  relay?: "auto" | "native" | "sockets";
  /**
   * Directory of vmm-relayd's control socket (created 0700). The daemon
   * passes `<state_dir>/relay`, so a restarted daemon finds the relay (and
   * its connections) again. Default: a fresh temporary directory, removed by
   * close().
   */
  relayDir?: string;
  /**
   * Relay processes of the native relay (each its own epoll loop and fd
   * table; TCP listeners are SO_REUSEPORT per process). Default: the number
   * of CPUs, at most 8.
   */
  relayWorkers?: number;
  /**
   * New TCP connections go to the first relay process holding fewer than
   * this many connections; once all hold this many, the kernel spreads them
   * over all processes. Light loads thus stay in one process (lower latency,
   * more connections/s on small hosts); heavy ones use every core and every
   * process's fd limit. Default 1024.
   */
  relayPackBelow?: number;
  /**
   * Nice value of vmm-relayd's processes (-20..19), set by the relay itself
   * when it starts (a relay adopted from an earlier daemon is given it).
   * Default: unset, the relay runs at the nice value it inherits. The
   * daemon passes vmm.toml `nice`.
   */
  relayNice?: number;
  /**
   * Longest busy poll of a relay process before it sleeps, in µs (0..1000).
   * A process polls only while its events come closer together than this
   * (it adapts, see native/relayd/engine.cc): on a VM, where every sleep
   * ends with a wake-up through the hypervisor, this is what keeps a
   * request's round trip short. 0: never poll. Default 50. A relay adopted
   * from an earlier daemon is given it.
   */
  relayPollUs?: number;
  /** Deadline for connecting to the guest; then the client gets an RST. Default 5000. */
  connectTimeoutMs?: number;
  /** Active TCP connections per rule; further ones are reset. Default 4096. */
  maxConnectionsPerRule?: number;
  /** A UDP session with no datagram either way for this long is closed. Default 60000. */
  udpIdleMs?: number;
  /** UDP sessions per rule; datagrams from further clients are dropped. Default 1024. */
  maxUdpSessionsPerRule?: number;
  /** Path of rules that name none. Default "userspace". */
  defaultPath?: "userspace" | "nat";
  /**
   * nftables table of nat rules (`inet <name>`). Default: `vmmfwd_` and a
   * hash of the relay directory, so every daemon (state dir) has its own.
   */
  natTable?: string;
  /**
   * For tests: a data path used for userspace rules instead of the real one
   * (to make a relay fail where a real one cannot be made to).
   */
  userspacePath?: DataPath;
}

/** Where rules of one path go live. */
export interface DataPath {
  /**
   * Makes `rule` of `owner` live; throws (and leaves nothing behind) on
   * failure. `replacing`: a rule of this service that goes away in the same
   * apply holds the port now.
   */
  open(owner: string, rule: ForwardRule, replacing?: boolean): Promise<RuleRelay>;
}

interface Entry {
  owner: string;
  rule: ForwardRule;
  relay: RuleRelay;
}

type ValidationProblems = { field: string; message: string }[];

function positiveInt(p: ValidationProblems, field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) p.push({ field, message: "must be a positive integer" });
  return v;
}

/** The port forwarder: rules by owner, applied as diffs, over vmm-relayd, Node sockets or nftables. */
export class ForwardService {
  /** What userspace rules use. */
  readonly relayKind: "native" | "sockets";
  /** Why "auto" fell back to sockets (undefined when native or asked for sockets). */
  readonly fallbackReason: string | undefined;
  private readonly native: NativeRelays | undefined;
  private readonly userspace: DataPath;
  private readonly nat: NatRules;
  /** The nftables table (`inet <name>`) of nat rules. */
  readonly natTable: string;
  private readonly tempDir: string | undefined;
  private readonly relayDir: string;
  private readonly limits: RelayLimits;
  private readonly defaultPath: "userspace" | "nat";
  private readonly entries = new Map<string, Entry>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Owners that applied since adopt() (pruneAdopted() drops the others' adopted rules). */
  private claimed: Set<string> | undefined;

  constructor(opts: ForwardServiceOptions = {}) {
    const problems: ValidationProblems = [];
    this.limits = {
      connectTimeoutMs: positiveInt(problems, "connectTimeoutMs", opts.connectTimeoutMs, 5000),
      maxConnectionsPerRule: positiveInt(problems, "maxConnectionsPerRule", opts.maxConnectionsPerRule, 4096),
      udpIdleMs: positiveInt(problems, "udpIdleMs", opts.udpIdleMs, 60_000),
      maxUdpSessionsPerRule: positiveInt(problems, "maxUdpSessionsPerRule", opts.maxUdpSessionsPerRule, 1024),
    };
    const workers = positiveInt(problems, "relayWorkers", opts.relayWorkers, Math.min(8, availableParallelism()));
    if (workers > 64) problems.push({ field: "relayWorkers", message: "must be at most 64" });
    const packBelow = positiveInt(problems, "relayPackBelow", opts.relayPackBelow, 1024);
    const nice = opts.relayNice;
    if (nice !== undefined && (!Number.isInteger(nice) || nice < -20 || nice > 19)) problems.push({ field: "relayNice", message: "must be an integer from -20 to 19" });
    const pollUs = opts.relayPollUs ?? 50;
    if (!Number.isInteger(pollUs) || pollUs < 0 || pollUs > 1000) problems.push({ field: "relayPollUs", message: "must be an integer from 0 to 1000" });
    const mode = opts.relay ?? "auto";
    this.defaultPath = opts.defaultPath ?? "userspace";
    if (this.defaultPath !== "userspace" && this.defaultPath !== "nat") problems.push({ field: "defaultPath", message: 'must be "userspace" or "nat"' });
    if (mode !== "auto" && mode !== "native" && mode !== "sockets") {
      problems.push({ field: "relay", message: 'must be "auto", "native" or "sockets"' });
    }
    if (problems.length > 0) throw new ValidationError(problems);

    let bin: string | undefined;
    let reason: string | undefined;
    if (mode !== "sockets") {
      try {
        bin = findRelayd();
      } catch (e) {
        reason = (e as Error).message;
        if (mode === "native") throw new VmmError("unsupported", `native relay unavailable: ${reason}`, { cause: e });
      }
    }
    this.relayKind = bin ? "native" : "sockets";
    this.fallbackReason = mode === "auto" ? reason : undefined;
    if (!opts.relayDir) this.tempDir = mkdtempSync(join(tmpdir(), "vmm-relay-"));
    const dir = opts.relayDir ?? this.tempDir!;
    if (bin) this.native = new NativeRelays({ bin, dir, workers, packBelow, pollUs, ...(nice !== undefined ? { nice } : {}) }, this.limits, (fn) => this.serialize(fn));
    this.userspace = opts.userspacePath ?? this.native ?? {
      open: (_owner, rule) => (rule.protocol === "udp" ? openUdp(rule, this.limits) : openSocketsTcp(rule, this.limits)),
    };
    this.relayDir = dir;
    this.natTable = opts.natTable ?? natTableName(dir);
    this.nat = new NatRules(this.natTable);
  }

  /**
   * Takes over the rules that live on without a daemon (a vmm-relayd left
   * running by the previous vmmd), with their owners and connections. Until
   * pruneAdopted(), apply() of an owner reconciles its adopted rules as a
   * diff. Returns how many rules were adopted.
   */
  adopt(): Promise<number> {
    return this.serialize(async () => {
      const found: AdoptedRule[] = await this.nat.adopt();
      if (this.native) {
        found.push(...(await this.native.adopt()));
      } else if (this.tempDir === undefined) {
        // Sockets now: a relay of an earlier configuration would hold our ports.
        const r = await RelayDaemon.open({ bin: "", dir: this.relayDir, workers: 1, packBelow: 1 }, false).catch(() => undefined);
        await r?.shutdown();
      }
      for (const a of found) {
        const key = ruleKey(a.rule);
        if (this.entries.has(key)) await a.relay.close();
        else this.entries.set(key, { owner: a.owner, rule: a.rule, relay: a.relay });
      }
      this.claimed = new Set();
      return found.length;
    });
  }

  /** Closes adopted rules whose owner did not apply since adopt() (a VM that stopped or went away meanwhile). */
  pruneAdopted(): Promise<void> {
    return this.serialize(async () => {
      const claimed = this.claimed;
      this.claimed = undefined;
      if (!claimed) return;
      for (const [key, e] of [...this.entries]) {
        if (claimed.has(e.owner)) continue;
        log("info", "dropping an adopted forward nobody claimed", { owner: e.owner, rule: key });
        this.entries.delete(key);
        await e.relay.close();
      }
    });
  }

  /**
   * Makes `rules` the complete rule set of `owner`, as a diff: unchanged rules
   * keep their listener and live connections; removed rules close their
   * listener and connections; a rule whose target changed keeps its listener
   * and closes the connections to the old target; added rules are listening
   * when this resolves. All or nothing: on any error no rule changes.
   *
   * Throws ValidationError (`rules[2].listenPort`), VmmError "exists" when a
   * listen address belongs to another owner, "unavailable" when a bind fails.
   */
  apply(owner: string, rules: ForwardRule[]): Promise<void> {
    return this.serialize(() => this.doApply(owner, rules));
  }

  /** Closes every rule of `owner` (listeners and connections). Unknown owners are a no-op. */
  remove(owner: string): Promise<void> {
    return this.serialize(async () => {
      this.claimed?.add(owner);
      for (const [key, e] of [...this.entries]) {
        if (e.owner !== owner) continue;
        this.entries.delete(key);
        await e.relay.close();
      }
    });
  }

  /** Rules with their live counters, of one owner or all, sorted by owner then key. */
  list(owner?: string): ForwardStatus[] {
    const out: { key: string; status: ForwardStatus }[] = [];
    for (const [key, e] of this.entries) {
      if (owner !== undefined && e.owner !== owner) continue;
      const broken = e.relay.broken;
      out.push({ key, status: { ...e.rule, owner: e.owner, relay: e.relay.kind, counters: e.relay.counters(), ...(broken ? { error: broken } : {}) } });
    }
    // Keys are the entries' own (ruleKey): no key is built while sorting.
    out.sort((a, b) => (a.status.owner === b.status.owner ? (a.key < b.key ? -1 : 1) : a.status.owner < b.status.owner ? -1 : 1));
    return out.map((x) => x.status);
  }

  /**
   * Every rule's owner, target and failed guest connects, unsorted: what the
   * lease keeper's error watch reads each second (list() builds much more).
   */
  connectFailures(): { owner: string; targetAddress: string; counters: { connectFailures: number } }[] {
    const out: { owner: string; targetAddress: string; counters: { connectFailures: number } }[] = [];
    for (const e of this.entries.values()) out.push({ owner: e.owner, targetAddress: e.rule.targetAddress, counters: { connectFailures: e.relay.counters().connectFailures } });
    return out;
  }

  /**
   * Lets go of the data paths that outlive the daemon: vmm-relayd keeps
   * forwarding (connections included) until the next daemon adopts it.
   * Rules on Node sockets close. Later apply() calls fail (kind "precondition").
   */
  detach(): Promise<void> {
    return this.serialize(async () => {
      this.closed = true;
      for (const [key, e] of [...this.entries]) {
        if (e.relay.kind !== "sockets") continue;
        this.entries.delete(key);
        await e.relay.close();
      }
      await this.native?.detach();
    });
  }

  /** Closes every rule and stops vmm-relayd; later apply() calls fail with kind "precondition". */
  close(): Promise<void> {
    return this.serialize(async () => {
      this.closed = true;
      const all = [...this.entries.values()];
      this.entries.clear();
      await Promise.all(all.filter((e) => e.relay.kind === "sockets").map((e) => e.relay.close()));
      await this.nat.closeAll();
      await this.native?.close();
      if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
    });
  }

  /**
   * PIDs of the processes that carry forwarded bytes: the relay's processes
   * (native; empty before the first rule), or this process (sockets). For
   * tests and benchmarks (fd and memory accounting).
   */
  async dataPathPids(): Promise<number[]> {
    if (!this.native) return [process.pid];
    return this.native.pids();
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private path(rule: ForwardRule): DataPath {
    return rule.path === "nat" ? this.nat : this.userspace;
  }

  private async doApply(owner: string, input: ForwardRule[]): Promise<void> {
    if (this.closed) throw precondition("forward service is closed");
    if (typeof owner !== "string" || owner.length === 0) {
      throw new ValidationError([{ field: "owner", message: "must be a non-empty string" }]);
    }
    this.claimed?.add(owner);
    const rules = validateRules(input, "rules", this.defaultPath);

    const wanted = new Map<string, { rule: ForwardRule; index: number }>();
    // validateRules keeps order and drops nothing once it did not throw, so
    // index i of `rules` is index i of `input`.
    rules.forEach((rule, i) => wanted.set(ruleKey(rule), { rule, index: i }));

    for (const [key, { rule, index }] of wanted) {
      const e = this.entries.get(key);
      if (e && e.owner !== owner) {
        throw new VmmError("exists", `rules[${index}]: ${key} is already forwarded for "${e.owner}"`);
      }
      for (const other of this.entries.values()) {
        if (other.owner === owner || (other.rule.path !== "nat" && rule.path !== "nat") || !overlaps(other.rule, rule)) continue;
        throw new VmmError("exists", `rules[${index}]: ${key} (${rule.path}) takes the packets of ${ruleKey(other.rule)} (${other.rule.path}) of "${other.owner}": a port is either nat or userspace`);
      }
    }

    const toOpen: { key: string; rule: ForwardRule; index: number }[] = [];
    const toUpdate: { entry: Entry; rule: ForwardRule }[] = [];
    for (const [key, { rule, index }] of wanted) {
      const e = this.entries.get(key);
      if (!e || e.relay.broken || e.rule.path !== rule.path) toOpen.push({ key, rule, index });
      else if (!sameSettings(e.rule, rule)) toUpdate.push({ entry: e, rule });
    }
    const toClose = [...this.entries].filter(([key, e]) => e.owner === owner && (!wanted.has(key) || toOpen.some((o) => o.key === key)));

    // 1. Bind everything new first; any failure undoes this apply's binds only.
    const opened: { key: string; entry: Entry }[] = [];
    const undoOpened = () => Promise.all(opened.map((o) => o.entry.relay.close()));
    const leaving = toClose.map(([, e]) => e.rule);
    for (const { key, rule, index } of toOpen) {
      try {
        const replacing = leaving.some((l) => overlaps(l, rule));
        opened.push({ key, entry: { owner, rule, relay: await this.path(rule).open(owner, rule, replacing) } });
      } catch (e) {
        await undoOpened();
        if (e instanceof VmmError && e.kind !== "internal") throw e;
        throw hostError(`rules[${index}]: bind ${rule.protocol} ${showAddress(rule.listenAddress, rule.listenPort)}`, e, "unavailable");
      }
    }

    // 2. Updates (new targets, options): a failure restores the earlier ones
    // (their connections to the new target end) and undoes the binds.
    const done: { entry: Entry; before: ForwardRule }[] = [];
    for (const { entry, rule } of toUpdate) {
      try {
        await entry.relay.update(rule);
        done.push({ entry, before: entry.rule });
        entry.rule = rule;
      } catch (e) {
        for (const d of done.reverse()) {
          await d.entry.relay.update(d.before).catch((err: unknown) => log("error", "restoring a forward's target failed", { owner, error: String(err) }));
          d.entry.rule = d.before;
        }
        await undoOpened();
        throw hostError(`rules[${wanted.get(ruleKey(rule))!.index}]: retarget ${ruleKey(rule)} to ${showAddress(rule.targetAddress, rule.targetPort)}`, e, "unavailable");
      }
    }

    // 3. Commit: nothing below fails.
    for (const [key, e] of toClose) {
      this.entries.delete(key);
      await e.relay.close();
    }
    for (const { key, entry } of opened) this.entries.set(key, entry);
  }
}

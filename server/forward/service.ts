// The port forwarding service: rules grouped by owner (a VM id or network
// id), applied as a diff so unchanged rules keep their live connections, with
// bind errors returned to the caller and no partial state on failure.
import { VmmError, ValidationError, hostError, precondition } from "../errors.js";
import { availableParallelism } from "node:os";
import { findRelayd, RelayDaemon } from "../../native/relay.js";
import { ruleKey, sameTarget, showAddress, validateRules, type ForwardRule, type ForwardStatus } from "./rules.js";
import type { RelayLimits, RuleRelay } from "./relay.js";
import { openNativeRule } from "./native-relay.js";
import { openSocketsTcp } from "./tcp-sockets.js";
import { openUdp } from "./udp.js";

export interface ForwardServiceOptions {
  /**
   * Data path. "native": vmm-relayd, a process of its own (TCP and UDP), or
   * the constructor throws (kind "unsupported"). "sockets": plain Node
   * sockets and dgram in this process. "auto" (default): native when the
   * vmm-relayd binary is found and its splice probe passes, else sockets.
   */
  relay?: "auto" | "native" | "sockets";
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
  /** Deadline for connecting to the guest; then the client gets an RST. Default 5000. */
  connectTimeoutMs?: number;
  /** Active TCP connections per rule; further ones are reset. Default 4096. */
  maxConnectionsPerRule?: number;
  /** A UDP session with no datagram either way for this long is closed. Default 60000. */
  udpIdleMs?: number;
  /** UDP sessions per rule; datagrams from further clients are dropped. Default 1024. */
  maxUdpSessionsPerRule?: number;
}

interface Entry {
  owner: string;
  rule: ForwardRule;
  relay: RuleRelay;
}

function positiveInt(p: ValidationProblems, field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) p.push({ field, message: "must be a positive integer" });
  return v;
}
type ValidationProblems = { field: string; message: string }[];

export class ForwardService {
  readonly relayKind: "native" | "sockets";
  /** Why "auto" fell back to sockets (undefined when native or asked for sockets). */
  readonly fallbackReason: string | undefined;
  private readonly relaydPath: string | undefined;
  private readonly relayWorkers: number;
  private readonly relayPackBelow: number;
  private relayd: RelayDaemon | undefined;
  private readonly limits: RelayLimits;
  private readonly entries = new Map<string, Entry>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(opts: ForwardServiceOptions = {}) {
    const problems: ValidationProblems = [];
    this.limits = {
      connectTimeoutMs: positiveInt(problems, "connectTimeoutMs", opts.connectTimeoutMs, 5000),
      maxConnectionsPerRule: positiveInt(problems, "maxConnectionsPerRule", opts.maxConnectionsPerRule, 4096),
      udpIdleMs: positiveInt(problems, "udpIdleMs", opts.udpIdleMs, 60_000),
      maxUdpSessionsPerRule: positiveInt(problems, "maxUdpSessionsPerRule", opts.maxUdpSessionsPerRule, 1024),
    };
    this.relayWorkers = positiveInt(problems, "relayWorkers", opts.relayWorkers, Math.min(8, availableParallelism()));
    if (this.relayWorkers > 64) problems.push({ field: "relayWorkers", message: "must be at most 64" });
    this.relayPackBelow = positiveInt(problems, "relayPackBelow", opts.relayPackBelow, 1024);
    const mode = opts.relay ?? "auto";
    if (mode !== "auto" && mode !== "native" && mode !== "sockets") {
      problems.push({ field: "relay", message: 'must be "auto", "native" or "sockets"' });
    }
    if (problems.length > 0) throw new ValidationError(problems);

    let path: string | undefined;
    let reason: string | undefined;
    if (mode !== "sockets") {
      try {
        path = findRelayd();
      } catch (e) {
        reason = (e as Error).message;
        if (mode === "native") throw new VmmError("unsupported", `native relay unavailable: ${reason}`, { cause: e });
      }
    }
    this.relaydPath = path;
    this.relayKind = path ? "native" : "sockets";
    this.fallbackReason = mode === "auto" ? reason : undefined;
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
      for (const [key, e] of [...this.entries]) {
        if (e.owner !== owner) continue;
        this.entries.delete(key);
        await e.relay.close();
      }
    });
  }

  /** Rules with their live counters, of one owner or all, sorted by owner then key. */
  list(owner?: string): ForwardStatus[] {
    const out: ForwardStatus[] = [];
    for (const e of this.entries.values()) {
      if (owner !== undefined && e.owner !== owner) continue;
      out.push({ ...e.rule, owner: e.owner, relay: this.relayKind, counters: e.relay.counters() });
    }
    return out.sort((a, b) => (a.owner === b.owner ? (ruleKey(a) < ruleKey(b) ? -1 : 1) : a.owner < b.owner ? -1 : 1));
  }

  /** Closes every rule; later apply() calls fail with kind "precondition". */
  close(): Promise<void> {
    return this.serialize(async () => {
      this.closed = true;
      const all = [...this.entries.values()];
      this.entries.clear();
      await Promise.all(all.map((e) => e.relay.close()));
      const d = this.relayd;
      this.relayd = undefined;
      await d?.close();
    });
  }

  /**
   * PIDs of the processes that carry forwarded bytes: the relay's processes
   * (native; empty before the first rule), or this process (sockets). For
   * tests and benchmarks (fd and memory accounting).
   */
  async dataPathPids(): Promise<number[]> {
    if (!this.relaydPath) return [process.pid];
    return this.relayd ? await this.relayd.pids() : [];
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async doApply(owner: string, input: ForwardRule[]): Promise<void> {
    if (this.closed) throw precondition("forward service is closed");
    if (typeof owner !== "string" || owner.length === 0) {
      throw new ValidationError([{ field: "owner", message: "must be a non-empty string" }]);
    }
    const rules = validateRules(input, "rules");

    const wanted = new Map<string, { rule: ForwardRule; index: number }>();
    // validateRules keeps order and drops nothing once it did not throw, so
    // index i of `rules` is index i of `input`.
    rules.forEach((rule, i) => wanted.set(ruleKey(rule), { rule, index: i }));

    for (const [key, { index }] of wanted) {
      const e = this.entries.get(key);
      if (e && e.owner !== owner) {
        throw new VmmError("exists", `rules[${index}]: ${key} is already forwarded for "${e.owner}"`);
      }
    }

    const toAdd: { key: string; rule: ForwardRule; index: number }[] = [];
    const toRetarget: { entry: Entry; rule: ForwardRule }[] = [];
    for (const [key, { rule, index }] of wanted) {
      const e = this.entries.get(key);
      if (!e) toAdd.push({ key, rule, index });
      else if (!sameTarget(e.rule, rule)) toRetarget.push({ entry: e, rule });
    }
    const toRemove = [...this.entries].filter(([key, e]) => e.owner === owner && !wanted.has(key));

    // Bind everything new first; any failure undoes this apply's binds only.
    const opened: { key: string; entry: Entry }[] = [];
    try {
      for (const { key, rule, index } of toAdd) {
        try {
          const relay = await this.open(rule);
          opened.push({ key, entry: { owner, rule, relay } });
        } catch (e) {
          throw hostError(`rules[${index}]: bind ${rule.protocol} ${showAddress(rule.listenAddress, rule.listenPort)}`, e, "unavailable");
        }
      }
    } catch (e) {
      await Promise.all(opened.map((o) => o.entry.relay.close()));
      throw e;
    }

    // Commit: nothing below can fail on bind.
    for (const { entry, rule } of toRetarget) {
      await entry.relay.retarget(rule.targetAddress, rule.targetPort);
      entry.rule = rule;
    }
    for (const [key, e] of toRemove) {
      this.entries.delete(key);
      await e.relay.close();
    }
    for (const { key, entry } of opened) this.entries.set(key, entry);
  }

  private open(rule: ForwardRule): Promise<RuleRelay> {
    if (this.relaydPath) {
      // Started with the first rule: a service without rules costs no process.
      this.relayd ??= new RelayDaemon(this.relaydPath, this.relayWorkers, this.relayPackBelow);
      return openNativeRule(this.relayd, rule, this.limits);
    }
    if (rule.protocol === "udp") return openUdp(rule, this.limits);
    return openSocketsTcp(rule, this.limits);
  }
}

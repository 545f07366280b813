// TCP and UDP rules on vmm-relayd (native/relayd/): the relay's processes
// accept, connect, relay bytes and run UDP sessions; this file adds,
// updates and removes rules, reads their counters (synchronously, from the
// relay's shared counter file), adopts a relay an earlier vmmd left running,
// and restarts the relay (re-adding every rule) when it dies.
import { RelayDaemon, relaySettingsLine, waitGone, type RelayCounters, type RelayOptions, type RelayRule } from "../../native/relay.js";
import { log } from "../log.js";
import { canonicalIp, showAddress, zeroCounters, type ForwardCounters, type ForwardRule } from "./rules.js";
import type { AdoptedRule, RelayLimits, RuleRelay } from "./relay.js";

/** Counters that only grow: carried over a relay restart by adding the old relay's last values. */
const CUMULATIVE = ["connectionsTotal", "bytesToGuest", "bytesFromGuest", "errors", "connectFailures"] as const;

const hexOwner = (owner: string) => (owner === "" ? "-" : Buffer.from(owner, "utf8").toString("hex"));

/** One rule on the relay; survives relay restarts (it is re-added with a new id). */
class NativeRule implements RuleRelay {
  readonly kind = "native";
  broken: string | undefined;
  closed = false;
  /** Counters of earlier relays (restarts) to add to the live ones. */
  private base: ForwardCounters = zeroCounters();
  private last: ForwardCounters = zeroCounters();

  constructor(
    private readonly relays: NativeRelays,
    public relay: RelayDaemon | undefined,
    public id: number,
    readonly port: number,
    readonly owner: string,
    public rule: ForwardRule,
  ) {}

  /** `fresh`: read the relay's table now (the last counters of a rule that goes), not as of this turn of the event loop. */
  counters(fresh = false): ForwardCounters {
    if (this.closed || this.broken || !this.relay) return this.last;
    const c: RelayCounters = this.relay.counters(this.id, fresh);
    const out = { ...c };
    for (const k of CUMULATIVE) out[k] += this.base[k];
    // TCP rules have no sessions, UDP rules no connections.
    if (this.rule.protocol === "udp") out.connectionsActive = 0;
    else out.sessionsActive = 0;
    if (out.lastConnectError === "") out.lastConnectError = this.base.lastConnectError;
    this.last = out;
    return out;
  }

  /** The relay is gone: keep its last counters as the base of the next one. */
  freeze(): void {
    this.counters(true);
    this.base = { ...this.last, connectionsActive: 0, sessionsActive: 0 };
    this.last = this.base;
  }

  async update(rule: ForwardRule): Promise<void> {
    if (this.broken || !this.relay) {
      this.rule = rule; // re-added with these settings by the next restart
      return;
    }
    await this.relay.request(this.relays.updateLine(this.id, rule));
    this.rule = rule;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.counters(true);
    this.closed = true;
    this.relays.forget(this);
    this.last = { ...this.last, connectionsActive: 0, sessionsActive: 0 };
    const relay = this.relay;
    if (!relay || this.broken) return;
    try {
      await relay.request(`D ${this.id}`);
      relay.release(this.id); // only once the relay no longer uses the slot
    } catch {
      // the relay is gone: its sockets went with it
    }
  }
}

/** The native data path: one vmm-relayd (spawned or adopted) and its rules. */
export class NativeRelays {
  private relay: RelayDaemon | undefined;
  private readonly rules = new Set<NativeRule>();
  /** Start times within the last minute (restart backoff). */
  private starts: number[] = [];
  /** Why the relay cannot be used now (a restart failed). */
  private down: Error | undefined;

  constructor(
    private readonly o: RelayOptions,
    private readonly limits: RelayLimits,
    /** Runs `fn` in the service's queue (no apply interleaves with a restart). */
    private readonly serialize: (fn: () => Promise<void>) => Promise<void>,
  ) {}

  /** Connects to a relay an earlier vmmd left running; its rules become ours. */
  async adopt(): Promise<AdoptedRule[]> {
    if (this.relay) return [];
    const relay = await RelayDaemon.open(this.o, false);
    if (!relay) return [];
    this.attach(relay);
    if (relay.stale) log("warn", "vmm-relayd runs an older build; it keeps forwarding (restart it to upgrade: established connections end)", { pid: relay.pids[0], why: relay.stale });
    await this.settle(relay);
    const out: AdoptedRule[] = [];
    for (const r of await relay.list()) {
      relay.claim(r.id);
      const rule = ruleOf(r);
      if (!rule || r.owner === "") {
        await relay.request(`D ${r.id}`).catch(() => undefined);
        relay.release(r.id);
        continue;
      }
      const nr = new NativeRule(this, relay, r.id, r.listenPort, r.owner, rule);
      this.rules.add(nr);
      // Limits come from this daemon's configuration; an update with the same target keeps connections.
      if (r.limitMs !== this.limitOf(rule) || r.max !== this.maxOf(rule)) await nr.update(rule);
      out.push({ owner: r.owner, rule, relay: nr });
    }
    log("info", "adopted vmm-relayd", { pid: relay.pids[0], rules: out.length });
    return out;
  }

  /**
   * Gives an adopted relay this daemon's nice value and busy poll (the
   * relay's S command; a spawned one got them as arguments). A relay that
   * cannot take them forwards on with its own, and the log says why.
   */
  private async settle(relay: RelayDaemon): Promise<void> {
    const { nice, pollUs } = this.o;
    if (nice === undefined && pollUs === undefined) return;
    try {
      await relay.request(relaySettingsLine(this.o));
    } catch (e) {
      log("warn", "vmm-relayd keeps its own nice value or busy poll", { pid: relay.pids[0], nice, pollUs, error: (e as Error).message });
    }
  }

  /** Adds `rule` for `owner` (starting the relay with the first rule). */
  async open(owner: string, rule: ForwardRule): Promise<RuleRelay> {
    const relay = await this.running();
    const { id, port } = await this.add(relay, owner, rule);
    const nr = new NativeRule(this, relay, id, port, owner, rule);
    this.rules.add(nr);
    return nr;
  }

  /** Processes of the relay (master first); empty before the first rule. */
  pids(): number[] {
    return this.relay?.pids ?? [];
  }

  /** Lets go of the relay; it keeps forwarding for the next vmmd. */
  async detach(): Promise<void> {
    const r = this.relay;
    this.relay = undefined;
    await r?.detach();
  }

  /** Stops the relay (every connection ends). */
  async close(): Promise<void> {
    const r = this.relay;
    this.relay = undefined;
    for (const nr of this.rules) nr.closed = true;
    this.rules.clear();
    await r?.shutdown();
  }

  forget(nr: NativeRule): void {
    this.rules.delete(nr);
  }

  updateLine(id: number, rule: ForwardRule): string {
    // Addresses are validated IP literals (validateRules): no spaces, no newlines.
    return `T ${id} ${rule.targetAddress} ${rule.targetPort} ${this.limitOf(rule)} ${this.maxOf(rule)} ${rule.proxyProtocol ? "p" : "-"}`;
  }

  private limitOf = (r: ForwardRule) => (r.protocol === "udp" ? this.limits.udpIdleMs : this.limits.connectTimeoutMs);
  private maxOf = (r: ForwardRule) => (r.protocol === "udp" ? this.limits.maxUdpSessionsPerRule : this.limits.maxConnectionsPerRule);

  private async add(relay: RelayDaemon, owner: string, rule: ForwardRule): Promise<{ id: number; port: number }> {
    const id = relay.allocate();
    try {
      const answer = await relay.request(
        [
          "A",
          id,
          rule.protocol,
          rule.listenAddress,
          rule.listenPort,
          rule.targetAddress,
          rule.targetPort,
          this.limitOf(rule),
          this.maxOf(rule),
          rule.proxyProtocol ? "p" : "-",
          hexOwner(owner),
        ].join(" "),
      );
      return { id, port: Number(answer) };
    } catch (e) {
      relay.release(id);
      throw e;
    }
  }

  /** The relay, started (first rule) or restarted (it died) when needed. */
  private async running(): Promise<RelayDaemon> {
    if (!this.relay) this.attach((await RelayDaemon.open(this.o, true))!);
    else if (this.relay.exited) await this.revive();
    if (this.down) throw this.down;
    return this.relay!;
  }

  private attach(relay: RelayDaemon): void {
    this.relay = relay;
    this.down = undefined;
    this.starts = [...this.starts.filter((t) => Date.now() - t < 60_000).slice(-8), Date.now()];
    relay.onLost((e) => {
      if (this.relay !== relay) return;
      for (const nr of this.rules) nr.freeze();
      // Back off when it keeps dying: 0 s, then 1, 2, 4 ... 30 s after a start within the last minute.
      const n = this.starts.length;
      const delay = n > 1 ? Math.min(30_000, 1000 * 2 ** (n - 2)) : 0;
      log("error", "vmm-relayd is gone; restarting it with every rule", { pid: relay.pids[0], error: e.message, inMs: delay });
      setTimeout(() => void this.serialize(() => this.revive()), delay).unref();
    });
  }

  /**
   * A new relay after the current one died, with every rule added again
   * (each keeps its counters: the new relay's add to the old one's last
   * values). A rule that cannot be bound again is marked broken (list()
   * says why) and is added again by the next apply of its owner.
   */
  private async revive(): Promise<void> {
    const dead = this.relay;
    if (!dead || !dead.exited) return;
    await waitGone(dead.pids, 5000);
    let relay: RelayDaemon;
    try {
      relay = (await RelayDaemon.open(this.o, true))!;
    } catch (e) {
      this.down = new Error(`vmm-relayd is down (restart failed, trying again in 5 s): ${(e as Error).message}`);
      log("error", "vmm-relayd did not restart; trying again in 5 s", { error: (e as Error).message });
      setTimeout(() => void this.serialize(() => this.revive()), 5000).unref();
      return;
    }
    this.attach(relay);
    for (const nr of this.rules) {
      try {
        const { id } = await this.add(relay, nr.owner, nr.rule);
        nr.relay = relay;
        nr.id = id;
        nr.broken = undefined;
      } catch (e) {
        nr.relay = undefined;
        nr.broken = `relay restart: bind ${nr.rule.protocol} ${showAddress(nr.rule.listenAddress, nr.rule.listenPort)} failed: ${(e as Error).message}`;
        log("error", "a forward could not be re-added after a relay restart", { owner: nr.owner, error: nr.broken });
      }
    }
    log("info", "vmm-relayd restarted", { pid: relay.pids[0], rules: this.rules.size });
  }
}

/** A relay rule as a ForwardRule (addresses canonical like validateRules'); undefined when malformed. */
function ruleOf(r: RelayRule): ForwardRule | undefined {
  const la = canonicalIp(r.listenAddress);
  const ta = canonicalIp(r.targetAddress);
  if (!la || !ta || (r.protocol !== "tcp" && r.protocol !== "udp")) return undefined;
  return {
    protocol: r.protocol,
    listenAddress: la,
    listenPort: r.listenPort,
    targetAddress: ta,
    targetPort: r.targetPort,
    path: "userspace",
    proxyProtocol: r.proxyProtocol,
  };
}

// The kernel path: forwards as nftables DNAT rules, so the guest sees the
// client's own address and no process touches the bytes. One table per
// daemon (`inet vmmfwd_<hash of its relay dir>`), rules added and removed by
// handle in atomic `nft -f` batches, so a diff leaves other rules (and every
// established connection, which conntrack keeps) alone.
//
// Per rule r<N>:
//   nat_pre  (prerouting, dstnat): remote clients   -> counter r<N>_conn, dnat
//   nat_out  (output, dstnat):     local clients    -> counter r<N>_conn, dnat
//   acct_<proto>_<port> (a regular chain per protocol and original port):
//            bytes of the rule's connections,
//            matched on their conntrack tuple    -> counters r<N>_up, r<N>_down
// The accounting chains are reached through a verdict map per protocol
// (acct_tcp, acct_udp: original destination port -> jump to its chain),
// looked up by the only statements of the base chains acct_forward,
// acct_input and acct_output. So a forwarded packet costs one hash lookup
// and the statements of the rules on its own port, however many rules the
// table holds. Before, every rule's statements sat in the base chains and
// were tried in turn: in iperf3 A/B runs (one stream, loopback client) the
// accounting cost 0.94x of a table without it at 4 rules and 0.70-0.87x at
// 100; this layout is level with that table at both. The base chains hold
// nothing else: every batch that adds a rule flushes and refills them
// (atomically), which also takes out the per-rule statements a daemon
// before this layout left there (adopt re-adds those rules' accounting in
// the new layout).
// The nat_pre rule's comment "vmm r<N> <owner>" is the rule's identity: a
// restarted daemon reads the table back (adopt) instead of adding duplicates.
//
// Loopback clients (a rule on 127.x or 0.0.0.0): the output DNAT sends a
// packet with source 127.0.0.1 to the guest, which the kernel only routes
// with route_localnet on the way out, and which the guest could not answer.
// So for the interface that leads to the target: route_localnet = 1 (only
// there, only while a rule needs it, set back to what it was), every packet
// with a 127/8 source leaving it is masqueraded, and packets arriving on it
// with a 127/8 source or destination are dropped (route_localnet would
// otherwise let a guest reach the host's loopback services; kube-proxy's
// CVE-2020-8558). These rules carry "vmm localnet <iface> <previous value>".
//
// Everything that reaches a rule was validated first (validateRules: IP
// literals; owners and interface names checked against a grammar here): a
// quote, space or newline would inject nft syntax.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { runProgram } from "../host/exec.js";
import { VmmError, precondition } from "../errors.js";
import { log } from "../log.js";
import { canonicalIp, ruleKey, showAddress, zeroCounters, type ForwardCounters, type ForwardRule } from "./rules.js";
import type { AdoptedRule, RuleRelay } from "./relay.js";

/** Runs a program (nft, ip, conntrack) and resolves with its stdout. */
export type Runner = (argv: string[], opts?: { input?: string }) => Promise<string>;

/** The daemon's table, derived from something unique to it (its relay directory). */
export const natTableName = (seed: string): string => `vmmfwd_${createHash("sha256").update(seed).digest("hex").slice(0, 8)}`;

const OWNER_RE = /^[A-Za-z0-9._:-]{1,100}$/;
const IFACE_RE = /^[A-Za-z0-9_.@-]{1,15}$/;
const isV6 = (ip: string) => ip.includes(":");
const isUnspecified = (ip: string) => ip === "0.0.0.0" || ip === "::";
/** Whether loopback clients reach the rule (IPv6 loopback never does: refused by validation). */
const reachesLoopback = (r: ForwardRule) => r.listenAddress.startsWith("127.") || r.listenAddress === "0.0.0.0";

/** The accounting chain of a protocol and original destination port. */
export const acctChain = (protocol: "tcp" | "udp", port: number): string => `acct_${protocol}_${port}`;
const ACCT_CHAIN_RE = /^acct_(tcp|udp)_(\d+)$/;
const ACCT_BASE = ["acct_forward", "acct_input", "acct_output"];

/**
 * The table, its base chains and maps, and the base chains' dispatch
 * statements: safe before every batch (`add` is idempotent, and the
 * accounting base chains are flushed and refilled in the same batch).
 */
export function natTableLines(table: string): string[] {
  const t = `inet ${table}`;
  return [
    `add table ${t}`,
    `add chain ${t} nat_pre { type nat hook prerouting priority dstnat; policy accept; }`,
    `add chain ${t} nat_out { type nat hook output priority -100; policy accept; }`,
    `add chain ${t} nat_post { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${t} acct_forward { type filter hook forward priority filter; policy accept; }`,
    `add chain ${t} acct_input { type filter hook input priority filter; policy accept; }`,
    `add chain ${t} acct_output { type filter hook output priority filter; policy accept; }`,
    `add chain ${t} martians { type filter hook prerouting priority raw; policy accept; }`,
    `add map ${t} acct_tcp { type inet_service : verdict; }`,
    `add map ${t} acct_udp { type inet_service : verdict; }`,
    ...ACCT_BASE.flatMap((c) => [
      `flush chain ${t} ${c}`,
      `add rule ${t} ${c} ct status dnat meta l4proto tcp ct original proto-dst vmap @acct_tcp`,
      `add rule ${t} ${c} ct status dnat meta l4proto udp ct original proto-dst vmap @acct_udp`,
    ]),
  ];
}

/** The statements that add rule `id` of `owner` (its counters must exist: natCounterLines). */
export function natRuleLines(table: string, id: number, owner: string, r: ForwardRule): string[] {
  if (!OWNER_RE.test(owner)) throw new VmmError("invalid", `nat forwards need an owner of A-Z a-z 0-9 . _ : - (at most 100), not ${JSON.stringify(owner.slice(0, 40))}`);
  const t = `inet ${table}`;
  const ip = isV6(r.listenAddress) ? "ip6" : "ip";
  const p = r.protocol;
  const to = isV6(r.targetAddress) ? `[${r.targetAddress}]:${r.targetPort}` : `${r.targetAddress}:${r.targetPort}`;
  // Which packets the rule takes: one address, or every local address of the family.
  const match = isUnspecified(r.listenAddress)
    ? `fib daddr type local meta nfproto ${ip === "ip" ? "ipv4" : "ipv6"}${ip === "ip6" ? " ip6 daddr != ::1" : ""}`
    : `${ip} daddr ${r.listenAddress}`;
  const dnat = `${p} dport ${r.listenPort} counter name r${id}_conn dnat ${ip} to ${to}`;
  return [`add rule ${t} nat_pre ${match} ${dnat} comment "vmm r${id} ${owner}"`, `add rule ${t} nat_out ${match} ${dnat} comment "vmm r${id}"`, ...natAcctLines(table, id, r)];
}

/**
 * Rule `id`'s accounting: its port's chain and map element (both
 * idempotent) and two statements in that chain. The chain is reached only
 * by packets of DNATed connections with the rule's protocol and original
 * port (the dispatch in natTableLines); the statements tell the rules of
 * one port apart by the original address, and the directions by the
 * target. A statement that counted a packet ends the chain (`accept` ends
 * this table's base chain only; its policy accepts anyway).
 */
export function natAcctLines(table: string, id: number, r: ForwardRule): string[] {
  const t = `inet ${table}`;
  const ip = isV6(r.listenAddress) ? "ip6" : "ip";
  const p = r.protocol;
  const chain = acctChain(p, r.listenPort);
  const tag = `comment "vmm r${id}"`;
  const orig = isUnspecified(r.listenAddress) ? "" : `ct original ${ip} daddr ${r.listenAddress} `;
  return [
    `add chain ${t} ${chain}`,
    `add element ${t} acct_${p} { ${r.listenPort} : jump ${chain} }`,
    `add rule ${t} ${chain} ${orig}ct direction original ${ip} daddr ${r.targetAddress} ${p} dport ${r.targetPort} counter name r${id}_up accept ${tag}`,
    `add rule ${t} ${chain} ${orig}ct direction reply ${ip} saddr ${r.targetAddress} ${p} sport ${r.targetPort} counter name r${id}_down accept ${tag}`,
  ];
}

/** Deletes the accounting chain of `protocol` and `port` and its map element (no rule of the port is left). */
export const natAcctDropLines = (table: string, protocol: "tcp" | "udp", port: number): string[] => [
  `delete element inet ${table} acct_${protocol} { ${port} }`,
  `delete chain inet ${table} ${acctChain(protocol, port)}`,
];

/** The named counters of rule `id`. */
export const natCounterLines = (table: string, id: number): string[] => ["conn", "up", "down"].map((c) => `add counter inet ${table} r${id}_${c}`);

/** route_localnet companions for interface `iface` (see the file comment); `prev`: its value before. */
export function localnetLines(table: string, iface: string, prev: string): string[] {
  if (!IFACE_RE.test(iface)) throw new VmmError("internal", `unexpected interface name ${JSON.stringify(iface)}`);
  const t = `inet ${table}`;
  const tag = `comment "vmm localnet ${iface} ${prev === "1" ? "1" : "0"}"`;
  return [
    // The address first: nearly every packet fails that test, before the
    // interface name is copied and compared.
    `add rule ${t} martians ip saddr 127.0.0.0/8 iifname "${iface}" drop ${tag}`,
    `add rule ${t} martians ip daddr 127.0.0.0/8 iifname "${iface}" drop ${tag}`,
    `add rule ${t} nat_post oifname "${iface}" ip saddr 127.0.0.0/8 masquerade ${tag}`,
  ];
}

type Expr = Record<string, unknown>;
interface NftRule {
  chain: string;
  handle: number;
  comment?: string;
  expr: Expr[];
}

/** What a table holds, read back from `nft -j -a list table`. */
export interface NatTableState {
  rules: Map<number, { owner: string; rule: ForwardRule | undefined; handles: RuleHandle[] }>;
  localnet: Map<string, { prev: string; handles: RuleHandle[] }>;
  /** The accounting chains of ports (acct_<proto>_<port>). */
  acctChains: Set<string>;
  /** The accounting base chains that dispatch through the maps (natTableLines). */
  dispatching: Set<string>;
}

const emptyState = (): NatTableState => ({ rules: new Map(), localnet: new Map(), acctChains: new Set(), dispatching: new Set() });

/** Where a rule of the table is: its chain and handle. */
export interface RuleHandle {
  chain: string;
  handle: number;
}

/** Parses the JSON listing of our table (pure). Rules of a shape we did not write have rule undefined. */
export function parseNatTable(json: string): NatTableState {
  const out = emptyState();
  const items = (JSON.parse(json) as { nftables: { rule?: NftRule; chain?: { name: string } }[] }).nftables;
  for (const it of items) {
    if (it.chain && ACCT_CHAIN_RE.test(it.chain.name)) out.acctChains.add(it.chain.name);
    const r = it.rule;
    if (r && ACCT_BASE.includes(r.chain) && r.expr.some((e) => e.vmap)) out.dispatching.add(r.chain);
    if (!r?.comment?.startsWith("vmm ")) continue;
    const f = r.comment.split(" ");
    if (f[1] === "localnet") {
      const e = out.localnet.get(f[2]!) ?? { prev: f[3] ?? "0", handles: [] };
      e.handles.push({ chain: r.chain, handle: r.handle });
      out.localnet.set(f[2]!, e);
      continue;
    }
    const id = Number(/^r(\d+)$/.exec(f[1] ?? "")?.[1]);
    if (!Number.isInteger(id)) continue;
    const e = out.rules.get(id) ?? { owner: "", rule: undefined, handles: [] };
    e.handles.push({ chain: r.chain, handle: r.handle });
    if (r.chain === "nat_pre") {
      e.owner = f[2] ?? "";
      e.rule = ruleOfExpr(r.expr);
    }
    out.rules.set(id, e);
  }
  return out;
}

/** The ForwardRule a nat_pre rule of ours implements. */
function ruleOfExpr(expr: Expr[]): ForwardRule | undefined {
  let listen: string | undefined;
  let unspecified = false;
  let protocol: "tcp" | "udp" | undefined;
  let lport: number | undefined;
  let target: { family: string; addr: string; port: number } | undefined;
  for (const e of expr) {
    const m = e.match as { op: string; left: Expr; right: unknown } | undefined;
    if (m && m.op === "==") {
      const pl = m.left.payload as { protocol: string; field: string } | undefined;
      if (m.left.fib) unspecified = true;
      else if (pl && (pl.protocol === "ip" || pl.protocol === "ip6") && pl.field === "daddr") listen = String(m.right);
      else if (pl && (pl.protocol === "tcp" || pl.protocol === "udp") && pl.field === "dport") {
        protocol = pl.protocol;
        lport = Number(m.right);
      }
    }
    if (e.dnat) target = e.dnat as { family: string; addr: string; port: number };
  }
  if (!protocol || lport === undefined || !target) return undefined;
  const la = unspecified ? (target.family === "ip6" ? "::" : "0.0.0.0") : canonicalIp(listen ?? "");
  const ta = canonicalIp(target.addr);
  if (!la || !ta) return undefined;
  return { protocol, listenAddress: la, listenPort: lport, targetAddress: ta, targetPort: target.port, path: "nat", proxyProtocol: false };
}

/** One nat rule of the table. */
class NatRule implements RuleRelay {
  readonly kind = "nat";
  constructor(
    private readonly rules: NatRules,
    readonly id: number,
    readonly owner: string,
    public rule: ForwardRule,
  ) {}
  get port(): number {
    return this.rule.listenPort;
  }
  counters(): ForwardCounters {
    return this.rules.countersOf(this.id);
  }
  update(rule: ForwardRule): Promise<void> {
    return this.rules.update(this, rule);
  }
  close(): Promise<void> {
    return this.rules.close(this);
  }
}

/** Sysctl switch of a family's forwarding (remote clients of a nat rule are routed). */
const forwardingOf = (v6: boolean) => (v6 ? "/proc/sys/net/ipv6/conf/all/forwarding" : "/proc/sys/net/ipv4/ip_forward");

/** The nat path of one daemon: its table, its rules, their counters. */
export class NatRules {
  private readonly live = new Map<number, NatRule>();
  private next = 1;
  private counters = new Map<string, { packets: number; bytes: number }>();
  private countersAt = 0;
  private refreshing = false;

  constructor(
    readonly table: string,
    private readonly run: Runner = runProgram,
  ) {}

  /** Takes over the rules a previous daemon left in the table. */
  async adopt(): Promise<AdoptedRule[]> {
    const st = await this.state();
    const adopted: NatRule[] = [];
    const stale: RuleHandle[] = [];
    for (const [id, r] of st.rules) {
      if (!r.rule || !OWNER_RE.test(r.owner)) {
        stale.push(...r.handles);
        continue;
      }
      const nr = new NatRule(this, id, r.owner, r.rule);
      this.live.set(id, nr);
      this.next = Math.max(this.next, id + 1);
      adopted.push(nr);
    }
    // Accounting in this layout (see the file comment): the batch's
    // natTableLines flushes the base chains, so statements a daemon before
    // it left there go (stale or not) and its rules' accounting is added to
    // their ports' chains; port chains no adopted rule needs go too.
    const oldLayout = [...st.rules.values()].some((r) => r.handles.some((h) => ACCT_BASE.includes(h.chain)));
    const flush = adopted.length > 0 && (oldLayout || st.dispatching.size < ACCT_BASE.length);
    const lines = stale.filter((h) => !(flush && ACCT_BASE.includes(h.chain))).map((h) => this.deleteRule(h));
    for (const nr of adopted) {
      if (!st.rules.get(nr.id)!.handles.some((h) => ACCT_CHAIN_RE.test(h.chain))) lines.push(...natAcctLines(this.table, nr.id, nr.rule));
    }
    const needed = new Set(adopted.map((nr) => acctChain(nr.rule.protocol, nr.rule.listenPort)));
    for (const c of st.acctChains) {
      const m = ACCT_CHAIN_RE.exec(c)!;
      if (!needed.has(c)) lines.push(...natAcctDropLines(this.table, m[1] as "tcp" | "udp", Number(m[2])));
    }
    if (flush) await this.nft([...natTableLines(this.table), ...lines]);
    else await this.nft(lines);
    await this.refreshCounters();
    if (adopted.length > 0) log("info", "adopted nat forwards", { table: this.table, rules: adopted.length });
    return adopted.map((nr) => ({ owner: nr.owner, rule: nr.rule, relay: nr }));
  }

  /** Adds `rule`; `replacing`: the port is held by a rule of ours that this one replaces (no probe). */
  async open(owner: string, rule: ForwardRule, replacing = false): Promise<RuleRelay> {
    await this.check(rule, replacing);
    const id = this.next++;
    await this.nft([...natTableLines(this.table), ...natCounterLines(this.table, id), ...natRuleLines(this.table, id, owner, rule)]);
    const nr = new NatRule(this, id, owner, rule);
    this.live.set(id, nr);
    await this.syncLocalnet().catch(async (e: unknown) => {
      await this.close(nr);
      throw e;
    });
    return nr;
  }

  /** New target: the rule's statements are replaced in one batch (its counters stay); connections to the old target are reset. */
  async update(nr: NatRule, rule: ForwardRule): Promise<void> {
    if (rule.targetAddress === nr.rule.targetAddress && rule.targetPort === nr.rule.targetPort) {
      nr.rule = rule;
      return;
    }
    await this.check(rule, true);
    const st = await this.state();
    const handles = st.rules.get(nr.id)?.handles ?? [];
    await this.nft([...handles.map((h) => this.deleteRule(h)), ...natRuleLines(this.table, nr.id, nr.owner, rule)]);
    const old = nr.rule;
    nr.rule = rule;
    await this.syncLocalnet();
    await this.dropConnections(old);
  }

  /** Deletes the rule and its counters, resets its connections; the table goes with its last rule. */
  async close(nr: NatRule): Promise<void> {
    if (!this.live.delete(nr.id)) return;
    const st = await this.state().catch(() => undefined);
    const handles = st?.rules.get(nr.id)?.handles ?? [];
    const lines = [...handles.map((h) => this.deleteRule(h)), ...["conn", "up", "down"].map((c) => `delete counter inet ${this.table} r${nr.id}_${c}`)];
    // The port's accounting chain goes with its last rule.
    const { protocol, listenPort } = nr.rule;
    const shared = [...this.live.values()].some((o) => o.rule.protocol === protocol && o.rule.listenPort === listenPort);
    if (!shared && st?.acctChains.has(acctChain(protocol, listenPort))) lines.push(...natAcctDropLines(this.table, protocol, listenPort));
    await this.nft(lines).catch((e: unknown) => log("error", "deleting a nat forward failed", { rule: ruleKey(nr.rule), error: String(e) }));
    await this.syncLocalnet().catch((e: unknown) => log("error", "route_localnet cleanup failed", { error: String(e) }));
    await this.dropConnections(nr.rule);
    if (this.live.size === 0) await this.run(["nft", "delete", "table", "inet", this.table]).catch(() => undefined);
  }

  /** Deletes every rule and the table (close of the service). */
  async closeAll(): Promise<void> {
    for (const nr of [...this.live.values()]) await this.close(nr);
  }

  /** Cached counters of rule `id` (refreshed from nft at most once a second). */
  countersOf(id: number): ForwardCounters {
    if (Date.now() - this.countersAt > 1000) void this.refreshCounters();
    const c = (k: string) => this.counters.get(`r${id}_${k}`) ?? { packets: 0, bytes: 0 };
    return { ...zeroCounters(), connectionsTotal: c("conn").packets, bytesToGuest: c("up").bytes, bytesFromGuest: c("down").bytes };
  }

  /** Reads every counter of the table now. */
  async refreshCounters(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const out = await this.run(["nft", "-j", "list", "counters", "table", "inet", this.table]).catch(() => "");
      const m = new Map<string, { packets: number; bytes: number }>();
      if (out) {
        for (const it of (JSON.parse(out) as { nftables: { counter?: { name: string; packets: number; bytes: number } }[] }).nftables) {
          if (it.counter) m.set(it.counter.name, { packets: it.counter.packets, bytes: it.counter.bytes });
        }
      }
      this.counters = m;
      this.countersAt = Date.now();
    } finally {
      this.refreshing = false;
    }
  }

  private deleteRule = (h: RuleHandle) => `delete rule inet ${this.table} ${h.chain} handle ${h.handle}`;

  private async nft(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    await this.run(["nft", "-f", "-"], { input: lines.join("\n") + "\n" });
  }

  private async state(): Promise<NatTableState> {
    const out = await this.run(["nft", "-j", "-a", "list", "table", "inet", this.table]).catch(() => "");
    return out ? parseNatTable(out) : emptyState();
  }

  /** Refuses what would not work: forwarding off for remote clients, a port a local socket holds. */
  private async check(rule: ForwardRule, replacing: boolean): Promise<void> {
    const loopbackOnly = rule.listenAddress.startsWith("127.");
    if (!loopbackOnly) {
      const f = forwardingOf(isV6(rule.listenAddress));
      let on = "0";
      try {
        on = readFileSync(f, "utf8").trim();
      } catch {
        // not Linux: nothing routes
      }
      if (on !== "1") throw precondition(`nat forward of ${ruleKey(rule)}: remote clients are routed to the guest, and ${f} is ${on}; enable forwarding or use path "userspace"`);
    }
    if (!replacing) {
      const busy = await portHeld(rule);
      if (busy) throw new VmmError("unavailable", `nat forward of ${ruleKey(rule)}: ${showAddress(rule.listenAddress, rule.listenPort)} is in use by a local socket (${busy}), whose packets the DNAT rule would take`);
    }
  }

  /**
   * route_localnet and its companions on exactly the interfaces that lead
   * to targets of rules loopback clients reach; each interface set back to
   * its previous value when no rule needs it any more.
   */
  private async syncLocalnet(): Promise<void> {
    const want = new Set<string>();
    for (const nr of this.live.values()) {
      if (!reachesLoopback(nr.rule) || isV6(nr.rule.targetAddress)) continue;
      const dev = await this.routeDevice(nr.rule.targetAddress);
      if (dev && dev !== "lo") want.add(dev);
    }
    const st = await this.state();
    const lines: string[] = [];
    for (const iface of want) {
      if (st.localnet.has(iface)) continue;
      const path = `/proc/sys/net/ipv4/conf/${iface}/route_localnet`;
      const prev = readFileSync(path, "utf8").trim();
      lines.push(...localnetLines(this.table, iface, prev));
      writeFileSync(path, "1");
    }
    for (const [iface, e] of st.localnet) {
      if (want.has(iface)) continue;
      lines.push(...e.handles.map((h) => this.deleteRule(h)));
      try {
        writeFileSync(`/proc/sys/net/ipv4/conf/${iface}/route_localnet`, e.prev);
      } catch {
        // the interface is gone
      }
    }
    if (lines.length > 0) await this.nft([...natTableLines(this.table), ...lines]);
  }

  private async routeDevice(ip: string): Promise<string | undefined> {
    const out = await this.run(["ip", "-j", "route", "get", ip]).catch(() => "[]");
    const dev = (JSON.parse(out) as { dev?: string }[])[0]?.dev;
    return dev && IFACE_RE.test(dev) ? dev : undefined;
  }

  /** Ends the connections conntrack holds for `r` (removed or retargeted): their next packet is reset. */
  private async dropConnections(r: ForwardRule): Promise<void> {
    const argv = ["conntrack", "-D", "-p", r.protocol, "--orig-port-dst", String(r.listenPort), "--reply-src", r.targetAddress, "--reply-port-src", String(r.targetPort)];
    if (!isUnspecified(r.listenAddress)) argv.push("--orig-dst", r.listenAddress);
    if (isV6(r.targetAddress)) argv.push("-f", "ipv6");
    await this.run(argv).catch((e: VmmError) => {
      // Status 1: no entry matched. Anything else: say so.
      if (/0 flow entries/.test(e.message)) return;
      if (e.kind === "unsupported") log("warn", "conntrack is not installed: connections of a removed nat forward carry on until they end", {});
      else log("warn", "conntrack -D failed", { error: e.message });
    });
  }
}

/** A description of the local socket holding `r`'s address and port, or undefined. */
function portHeld(r: ForwardRule): Promise<string | undefined> {
  return new Promise((resolve) => {
    const done = (e?: NodeJS.ErrnoException) => resolve(e?.code === "EADDRINUSE" ? "EADDRINUSE" : undefined);
    if (r.protocol === "udp") {
      const s = createSocket({ type: isV6(r.listenAddress) ? "udp6" : "udp4", ipv6Only: isV6(r.listenAddress) });
      s.once("error", (e) => (s.close(), done(e)));
      s.bind({ address: r.listenAddress, port: r.listenPort, exclusive: true }, () => s.close(() => done()));
    } else {
      const s = createServer();
      s.once("error", (e) => done(e));
      s.listen({ host: r.listenAddress, port: r.listenPort, exclusive: true, ipv6Only: isV6(r.listenAddress) }, () => s.close(() => done()));
    }
  });
}

// Test LANs inside the private namespace: bridges, veth pairs, peer
// namespaces and a dnsmasq DHCP server, each registered on a cleanup stack
// that runs in reverse order (also when the test fails).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { dnsmasqConfig } from "../../server/net/dnsmasq-config.js";
import { ipArgv } from "../../server/host/iproute.js";

export function sh(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 15_000 });
  if (r.status !== 0) throw new Error(`${argv.join(" ")} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}

const BRIDGE_CONF = "/etc/qemu/bridge.conf";

/** The project's dnsmasq hook, which reports leases to vmmd. */
export const HOOK = resolve(import.meta.dirname, "..", "..", "clients", "dnsmasq-hook", "vmm-dhcp-hook");

/**
 * Lets qemu-bridge-helper attach to bridge `name`: adds "allow NAME" to
 * /etc/qemu/bridge.conf (the namespace's private tmpfs) and returns the undo
 * that removes just that line. Test files run in parallel and share the
 * file, so nobody overwrites it.
 */
export function allowBridge(name: string): () => void {
  const lines = () => (existsSync(BRIDGE_CONF) ? readFileSync(BRIDGE_CONF, "utf8").split("\n").filter((l) => l !== "") : []);
  if (!lines().includes(`allow ${name}`)) appendFileSync(BRIDGE_CONF, `allow ${name}\n`, { mode: 0o644 });
  return () => writeFileSync(BRIDGE_CONF, lines().filter((l) => l !== `allow ${name}`).map((l) => l + "\n").join(""));
}

export class Lan {
  private readonly undo: (() => void)[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), "vmm-lan-"));

  constructor() {
    this.undo.push(() => rmSync(this.dir, { recursive: true, force: true }));
  }

  /** A bridge with address `cidr`, allowed in /etc/qemu/bridge.conf (see allowBridge). */
  bridge(name: string, cidr: string): void {
    sh(["ip", ...ipArgv.addBridge(name)]); // a MAC of its own, as scripts/setup-bridge.sh gives it
    this.undo.push(() => spawnSync("ip", ["link", "del", name]));
    this.undo.push(allowBridge(name));
    sh(["ip", "addr", "add", cidr, "dev", name]);
    sh(["ip", "link", "set", name, "up"]);
  }

  /** A named namespace (for macvtap peers); `ip netns exec NAME ...` reaches into it. */
  netns(name: string): void {
    sh(["ip", "netns", "add", name]);
    this.undo.push(() => spawnSync("ip", ["netns", "del", name]));
    sh(["ip", "-n", name, "link", "set", "lo", "up"]);
  }

  /** veth pair a<->b; `bNetns` moves b into that namespace. */
  veth(a: string, b: string, bNetns?: string): void {
    sh(["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
    this.undo.push(() => spawnSync("ip", ["link", "del", a]));
    if (bNetns) sh(["ip", "link", "set", b, "netns", bNetns]);
    sh(["ip", "link", "set", a, "up"]);
  }

  /**
   * dnsmasq serving DHCP only (`port=0`) on `iface`, optionally inside
   * `netns`, with its own pid/lease/log files (never /dev/null). Its config
   * comes from the project's one generator (server/net/dnsmasq-config.ts),
   * like the daemon's and setup-bridge.sh's.
   */
  /**
   * The lease hook's side of a daemon at `socket`: `token` written to
   * <dir>/lease.token (0600), the hook logging to <dir>/hook.log, and the
   * environment dnsmasq passes the hook (give it to dnsmasq() with HOOK).
   */
  leaseHook(socket: string, token: string): { env: Record<string, string>; tokenFile: string; log: string } {
    const tokenFile = join(this.dir, "lease.token");
    const log = join(this.dir, "hook.log");
    writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
    return { env: { VMM_SOCKET: socket, VMM_LEASE_TOKEN_FILE: tokenFile, VMM_HOOK_LOG: log }, tokenFile, log };
  }

  dnsmasq(o: { iface: string; range: [string, string]; netmask?: string; netns?: string; hook?: string; extra?: string[]; env?: Record<string, string> }): { leases: string; log: string; pid: string; conf: string; proc: ChildProcess } {
    const conf = join(this.dir, `dnsmasq-${o.iface}.conf`);
    const leases = join(this.dir, `dnsmasq-${o.iface}.leases`);
    const log = join(this.dir, `dnsmasq-${o.iface}.log`);
    const pid = join(this.dir, `dnsmasq-${o.iface}.pid`);
    writeFileSync(
      conf,
      dnsmasqConfig({
        writer: "the test LAN",
        interface: o.iface,
        dns: false,
        dhcp: { rangeStart: o.range[0], rangeEnd: o.range[1], netmask: o.netmask ?? "255.255.255.0", ...(o.hook ? { script: o.hook } : {}) },
        leaseFile: leases,
        pidFile: pid,
        logFile: log,
      }),
    );
    const args = ["--keep-in-foreground", `--conf-file=${conf}`, ...(o.extra ?? [])];
    const argv = o.netns ? ["ip", "netns", "exec", o.netns, "dnsmasq", ...args] : ["dnsmasq", ...args];
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...o.env } });
    let err = "";
    proc.stderr.on("data", (b: Buffer) => (err += b.toString()));
    this.undo.push(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    });
    proc.once("exit", (code) => {
      if (code !== 0 && code !== null) process.stderr.write(`dnsmasq on ${o.iface} exited ${code}: ${err}\n`);
    });
    return { leases, log, pid, conf, proc };
  }

  /** A long-running helper process (killed at close). */
  background(argv: string[]): ChildProcess {
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: "ignore" });
    this.undo.push(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    });
    return proc;
  }

  /** A directory with an index.html saying `text`, for busybox httpd. */
  www(text: string): string {
    const dir = mkdtempSync(join(this.dir, "www-"));
    writeFileSync(join(dir, "index.html"), text + "\n");
    return dir;
  }

  /** Lease line of `mac` in a dnsmasq lease file, or undefined. */
  static leaseOf(leaseFile: string, mac: string): string | undefined {
    try {
      const line = readFileSync(leaseFile, "utf8").split("\n").find((l) => l.split(" ")[1] === mac);
      return line?.split(" ")[2];
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    for (const u of this.undo.reverse()) {
      try {
        u();
      } catch {
        // keep cleaning
      }
    }
    // Give dnsmasq a moment to exit before its files vanish.
    await new Promise((r) => setTimeout(r, 50));
  }
}

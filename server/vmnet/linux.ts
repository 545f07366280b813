// Linux backend of the vmnet layer. A network is:
//   * a bridge (<bridge_prefix>-<id>) holding the gateway address (first host
//     address of the subnet) and, with an IPv6 prefix, <prefix>::1/64;
//   * a dnsmasq bound to that bridge only: DHCP (range = the subnet minus
//     gateway and broadcast), reservations as dhcp-host, router
//     advertisements, optional DNS; its dhcp-script is the project's hook,
//     wired to ReportDhcpLease, so leases on the network reach the daemon;
//     it runs detached, like guests, and survives daemon restarts;
//   * nftables tables of its own: guests may talk to each other and to the
//     host; in shared mode, NAT44 (and NAT66) out of the external interface;
//     in host mode nothing is routed to or from the bridge;
//   * network-level port rules in the forwarder (owner "network:<id>").
// Each VM NIC on the network is a TAP the VM runner opens and enslaves
// (server/vm/nic/vmnet.ts).
//
// Names and addresses reach `ip` argv, dnsmasq config lines and nftables
// rules; all were validated by the registry (interface names, CIDRs, MACs,
// IPs), and bridge/table names are generated from the network id.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { precondition } from "../errors.js";
import type { Forwarder } from "../forward/types.js";
import { dnsmasqConfig } from "../net/dnsmasq-config.js";
import { createBridge, deleteLink, linkExists, runIp, setLinkUp } from "../host/iproute.js";
import { deleteTable, loadRuleset } from "../host/nft.js";
import { isAlive, isOurProcess, processRef, readPidFile, spawnDetached, stopProcess, tailOfLog, waitUntil } from "../host/process.js";
import { log } from "../log.js";
import { cidrSize, intToIpv4, netmaskOf, parseIpv4Cidr } from "../net/addr.js";
import type { NetworkBackend, NetworkRecord } from "./types.js";

/**
 * What the Linux backend needs: where networks keep their files, how dnsmasq's lease hook reaches
 * the daemon, the forwarder for port rules.
 */
export interface LinuxBackendOptions {
  stateDir: string;
  /** Path of the lease hook (the compiled vmm-dhcp-hook, or the script clients/dnsmasq-hook/vmm-dhcp-hook). */
  hook: string;
  /** How the hook reaches the daemon (VMM_HOOK_CONF: a file of KEY=value lines it reads at every call). */
  hookEnv: { VMM_SOCKET?: string; VMM_URL?: string; VMM_HOOK_CONF?: string; VMM_LEASE_TOKEN_FILE?: string };
  dnsmasq?: string;
  /** Network-level port rules. */
  forwards: Forwarder;
}

const tableOf = (rec: NetworkRecord) => `vmmnet_${rec.id.replace(/^net-/, "").replace(/[^a-z0-9]/g, "_")}`;

/** The interface of the default route, or "" without one. */
async function defaultRouteDevice(): Promise<string> {
  const out = await runIp(["route", "show", "default"]).catch(() => "");
  return /\bdev (\S+)/.exec(out)?.[1] ?? "";
}

/**
 * vmnet networks on Linux: a bridge each, dnsmasq for DHCP (its hook reports leases), nftables
 * NAT44 in shared mode, port rules through the forwarder.
 */
export class LinuxNetworkBackend implements NetworkBackend {
  constructor(private readonly o: LinuxBackendOptions) {}

  private files(rec: NetworkRecord) {
    const dir = join(this.o.stateDir, "networks", rec.id);
    return { dir, conf: join(dir, "dnsmasq.conf"), pid: join(dir, "dnsmasq.pid"), leases: join(dir, "dnsmasq.leases"), log: join(dir, "dnsmasq.log"), hookLog: join(dir, "dhcp-hook.log") };
  }

  leaseFile(rec: NetworkRecord): string {
    return this.files(rec).leases;
  }

  /** dnsmasq.conf of the network (pure; the project's one generator, server/net/dnsmasq-config.ts). */
  static dnsmasqConf(rec: NetworkRecord, f: { pid: string; leases: string; log: string }, hook: string): string {
    const s = rec.spec;
    const cidr = parseIpv4Cidr(s.ipv4Subnet)!;
    const size = cidrSize(cidr);
    return dnsmasqConfig({
      writer: `vmmd for network ${rec.id}`,
      interface: rec.bridge,
      dns: s.dnsProxyEnabled,
      ...(s.dhcpEnabled
        ? {
            dhcp: {
              rangeStart: intToIpv4(cidr.network + 2),
              rangeEnd: intToIpv4(cidr.network + size - 2),
              netmask: netmaskOf(cidr.prefix),
              router: rec.gateway,
              mtu: s.mtu,
              ...(s.dnsProxyEnabled ? { dnsServer: rec.gateway } : {}),
              reservations: s.dhcpReservations.map((r) => ({ mac: r.mac, ip: r.ipv4 })),
              script: hook,
            },
          }
        : {}),
      routerAdvertisements: s.ipv6Prefix !== "" && s.routerAdvertisementEnabled,
      leaseFile: f.leases,
      pidFile: f.pid,
      logFile: f.log,
    });
  }

  /** nftables rules of the network (pure). */
  static nftRules(rec: NetworkRecord, external: string): string {
    const t = tableOf(rec);
    const br = rec.bridge;
    const s = rec.spec;
    const out: string[] = [
      `table inet ${t} {`,
      "  chain forward {",
      "    type filter hook forward priority filter; policy accept;",
      `    iifname "${br}" oifname "${br}" accept`,
    ];
    if (s.mode === "shared" && external !== "") {
      if (s.nat44Enabled || s.nat66Enabled) {
        out.push(`    iifname "${br}" oifname "${external}" accept`, `    iifname "${external}" oifname "${br}" ct state established,related accept`);
      }
    }
    // Connections a DNAT rule sent here (nat port forwards, server/forward/nat.ts) and their replies.
    out.push(`    oifname "${br}" ct status dnat accept`, `    iifname "${br}" ct status dnat accept`);
    // Host mode (and anything not allowed above): nothing routed to or from guests.
    out.push(`    iifname "${br}" drop`, `    oifname "${br}" drop`, "  }", "}");
    if (s.mode === "shared" && external !== "" && s.nat44Enabled) {
      out.push(`table ip ${t}_nat {`, "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;", `    ip saddr ${s.ipv4Subnet} oifname "${external}" masquerade`, "  }", "}");
    }
    if (s.mode === "shared" && external !== "" && s.nat66Enabled && s.ipv6Prefix !== "") {
      out.push(`table ip6 ${t}_nat6 {`, "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;", `    ip6 saddr ${s.ipv6Prefix} oifname "${external}" masquerade`, "  }", "}");
    }
    return out.join("\n") + "\n";
  }

  private async deleteTables(rec: NetworkRecord): Promise<void> {
    const t = tableOf(rec);
    for (const [family, name] of [["inet", t], ["ip", `${t}_nat`], ["ip6", `${t}_nat6`]] as const) await deleteTable(family, name);
  }

  private async dnsmasqRunning(rec: NetworkRecord): Promise<boolean> {
    const f = this.files(rec);
    if (!existsSync(f.pid)) return false;
    const ref = await processRef(Number(readFileSync(f.pid, "utf8").trim()));
    return ref !== undefined && (await isOurProcess(ref, f.conf));
  }

  async realize(rec: NetworkRecord): Promise<void> {
    const s = rec.spec;
    const f = this.files(rec);
    const cidr = parseIpv4Cidr(s.ipv4Subnet)!;
    let external = "";
    if (s.mode === "shared" && (s.nat44Enabled || s.nat66Enabled)) {
      external = s.externalInterface !== "" ? s.externalInterface : await defaultRouteDevice();
      if (external === "") throw precondition("config.external_interface: shared mode needs an outbound interface and this host has no default route; set it");
      if (!(await linkExists(external))) throw precondition(`config.external_interface: ${external} does not exist`);
    }
    if (!(await linkExists(rec.bridge))) {
      await createBridge(rec.bridge, `${rec.gateway}/${cidr.prefix}`);
      if (s.ipv6Prefix !== "") await runIp(["-6", "addr", "add", `${s.ipv6Prefix.split("/")[0]!.replace(/::$/, "")}::1/64`, "dev", rec.bridge]);
      await runIp(["link", "set", "dev", rec.bridge, "mtu", String(s.mtu)]);
      await setLinkUp(rec.bridge);
    }
    // nftables: replace the network's tables as a whole.
    await this.deleteTables(rec);
    await loadRuleset(LinuxNetworkBackend.nftRules(rec, external));
    if (s.mode === "shared" && external !== "") {
      // Routing is a per-namespace switch; shared networks need it on.
      writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
      if (s.nat66Enabled && s.ipv6Prefix !== "") writeFileSync("/proc/sys/net/ipv6/conf/all/forwarding", "1");
    }
    mkdirSync(f.dir, { recursive: true, mode: 0o700 });
    const conf = LinuxNetworkBackend.dnsmasqConf(rec, f, this.o.hook);
    const changed = !existsSync(f.conf) || readFileSync(f.conf, "utf8") !== conf;
    if (changed || !(await this.dnsmasqRunning(rec))) {
      await this.stopDnsmasq(rec);
      writeFileSync(f.conf, conf);
      if (s.dhcpEnabled || s.dnsProxyEnabled || (s.ipv6Prefix !== "" && s.routerAdvertisementEnabled)) {
        // Detached like guests: DHCP keeps serving while the daemon restarts;
        // the hook's reports then reach the restarted daemon.
        const stderr = join(f.dir, "dnsmasq.stderr");
        const ref = await spawnDetached({
          argv: [this.o.dnsmasq ?? "dnsmasq", "--keep-in-foreground", `--conf-file=${f.conf}`],
          logFile: stderr,
          env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...this.o.hookEnv, VMM_HOOK_LOG: f.hookLog },
        });
        // Ready means serving: dnsmasq writes its pid file once its sockets
        // are bound. Returning earlier would report a network whose DHCP is
        // not up yet (and leave dnsmasq writing into the state directory
        // after the call returned).
        const up = await waitUntil(async () => (await readPidFile(f.pid)) === ref.pid || !(await isAlive(ref)), 10_000);
        if (!up || (await readPidFile(f.pid)) !== ref.pid) {
          await stopProcess(ref, { graceMs: 1000 }).catch(() => undefined);
          throw precondition(`dnsmasq for network ${rec.id} did not start: ${tailOfLog(stderr) || tailOfLog(f.log) || "no output"}`);
        }
      }
    }
    await this.o.forwards.apply(
      `network:${rec.id}`,
      s.portForwards.map((p) => ({
        protocol: p.protocol,
        listenAddress: p.listenAddress,
        listenPort: p.listenPort,
        targetAddress: p.internalAddress,
        targetPort: p.internalPort,
        ...(p.path ? { path: p.path } : {}),
        ...(p.proxyProtocol ? { proxyProtocol: true } : {}),
      })),
    );
  }

  private async stopDnsmasq(rec: NetworkRecord): Promise<void> {
    const f = this.files(rec);
    if (!existsSync(f.pid)) return;
    const ref = await processRef(Number(readFileSync(f.pid, "utf8").trim()));
    if (ref && (await isOurProcess(ref, f.conf))) await stopProcess(ref, { graceMs: 3000, needle: f.conf });
    rmSync(f.pid, { force: true });
  }

  async destroy(rec: NetworkRecord): Promise<void> {
    const f = this.files(rec);
    await this.o.forwards.remove(`network:${rec.id}`);
    await this.stopDnsmasq(rec).catch((e) => log("warn", "stopping dnsmasq failed", { network: rec.id, error: String(e) }));
    await this.deleteTables(rec);
    await deleteLink(rec.bridge, { ignoreMissing: true });
    rmSync(f.dir, { recursive: true, force: true });
  }
}

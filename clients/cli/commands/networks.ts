// Network commands (vmnet layer): networks, network ls/create/info/rm/
// acquire/release. Networks are named by id or name (resolve.ts).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Command, Option } from "commander";
import {
  AcquireNetworkResponseSchema,
  CreateNetworkResponseSchema,
  DeleteNetworkResponseSchema,
  GetNetworkResponseSchema,
  ListNetworksResponseSchema,
  NetworkConfigSchema,
  NetworkMode,
  ReleaseNetworkResponseSchema,
  type Network,
} from "../../../gen/ts/vmm/v1/network_pb.js";
import { Protocol } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { parseAll, parseBool, parseNetworkForward, parseReservation, parseUint, type Parsed } from "../parse.js";
import { renderNetwork, renderNetworkList } from "../render.js";
import { resolveNetwork } from "../resolve.js";
import { collect, must, mustAll, type Session } from "../session.js";

const optBool = (flag: string, v: string | undefined): Parsed<boolean | undefined> => (v === undefined ? { ok: true, value: undefined } : parseBool(flag, v));

/** Adds the network commands to `program`. */
export function registerNetworkCommands(program: Command, s: Session): void {
  const listNetworks = async (): Promise<Network[]> => {
    const out: Network[] = [];
    let pageToken = "";
    do {
      const r = await s.net().listNetworks({ pageToken });
      out.push(...r.networks);
      pageToken = r.nextPageToken;
    } while (pageToken !== "");
    return out;
  };
  const ls = async () => {
    const nets = await listNetworks();
    s.print(ListNetworksResponseSchema, create(ListNetworksResponseSchema, { networks: nets }), () => renderNetworkList(nets));
  };

  program.command("networks").description("list networks").action(ls);

  const network = program.command("network").description("manage networks (vmnet layer)");
  network.command("ls").description("list networks (same as `networks`)").action(ls);
  network
    .command("create")
    .description("create a network; prints it, serialization included")
    .addOption(new Option("--mode <mode>", "host (guests and host) or shared (plus NAT out)").choices(["host", "shared"]).makeOptionMandatory())
    .option("--name <name>", "name (default: the generated id)")
    .option("--subnet <cidr>", "IPv4 subnet, e.g. 192.168.140.0/24 (default: a free /24 from the pool)")
    .option("--ipv6-prefix <cidr>", "IPv6 prefix (/64), e.g. fd00:1::/64 (default: no IPv6)")
    .option("--mtu <n>", "MTU, 576-9000 (default 1500)")
    .option("--reserve <mac=ip>", "DHCP reservation; repeatable", collect)
    .option("--no-dhcp", "do not serve DHCP")
    .option("--nat44 <on|off>", "NAT44 out (shared mode; default on)")
    .option("--nat66 <on|off>", "NAT66 out (shared mode; default on with an IPv6 prefix)")
    .option("--dns-proxy <on|off>", "answer DNS on the gateway address (default off)")
    .option("--router-advertisement <on|off>", "send IPv6 router advertisements (default on with an IPv6 prefix)")
    .option("--forward <spec>", "port rule PROTO[:LISTEN_ADDR]:LISTEN_PORT:ADDR:PORT, e.g. tcp:8080:192.168.140.10:80; repeatable", collect)
    .option("--external-interface <ifname>", "outbound interface in shared mode (default: the default route's)")
    .action(async (o: { mode: "host" | "shared"; name?: string; subnet?: string; ipv6Prefix?: string; mtu?: string; reserve?: string[]; dhcp: boolean; nat44?: string; nat66?: string; dnsProxy?: string; routerAdvertisement?: string; forward?: string[]; externalInterface?: string }) => {
      const res = parseAll(o.reserve ?? [], (v) => parseReservation(v));
      const fwd = parseAll(o.forward ?? [], (v) => parseNetworkForward(v));
      const mtu: Parsed<number | undefined> = o.mtu === undefined ? { ok: true, value: undefined } : parseUint("--mtu", o.mtu, 576, 9000);
      const nat44 = optBool("--nat44", o.nat44);
      const nat66 = optBool("--nat66", o.nat66);
      const dns = optBool("--dns-proxy", o.dnsProxy);
      const ra = optBool("--router-advertisement", o.routerAdvertisement);
      mustAll(res, fwd, mtu, nat44, nat66, dns, ra);
      const config: MessageInitShape<typeof NetworkConfigSchema> = {
        mode: o.mode === "host" ? NetworkMode.HOST : NetworkMode.SHARED,
        ipv4Subnet: o.subnet ?? "",
        ipv6Prefix: o.ipv6Prefix ?? "",
        mtu: must(mtu) ?? 0,
        dhcpReservations: must(res),
        portForwards: must(fwd).map((f) => ({ ...f, protocol: f.protocol === "tcp" ? Protocol.TCP : Protocol.UDP })),
        externalInterface: o.externalInterface ?? "",
      };
      // proto3 optional: unset means the daemon's default.
      if (o.dhcp === false) config.dhcpEnabled = false;
      if (must(nat44) !== undefined) config.nat44Enabled = must(nat44);
      if (must(nat66) !== undefined) config.nat66Enabled = must(nat66);
      if (must(dns) !== undefined) config.dnsProxyEnabled = must(dns);
      if (must(ra) !== undefined) config.routerAdvertisementEnabled = must(ra);
      const r = await s.net().createNetwork({ name: o.name ?? "", config });
      s.print(CreateNetworkResponseSchema, r, () => renderNetwork(r.network!));
    });
  network
    .command("info")
    .description("describe one network")
    .argument("<network>", "network id or name")
    .action(async (handle: string) => {
      const r = await s.net().getNetwork({ id: await resolveNetwork(s, handle) });
      s.print(GetNetworkResponseSchema, r, () => renderNetwork(r.network!));
    });
  network
    .command("rm")
    .description("delete a network; prints its id")
    .argument("<network>", "network id or name")
    .option("--force", "delete even while VMs are attached or holders remain")
    .action(async (handle: string, o: { force?: boolean }) => {
      const id = await resolveNetwork(s, handle);
      const r = await s.net().deleteNetwork({ id, force: o.force === true });
      s.print(DeleteNetworkResponseSchema, r, () => `${id}\n`);
    });
  network
    .command("acquire")
    .description("register as a holder of a network; prints NETWORK_ID HOLDER_ID")
    .argument("<serialization>", "from `network create` or `network info`")
    .option("--description <text>", "free-form description of the holder")
    .action(async (serialization: string, o: { description?: string }) => {
      const r = await s.net().acquireNetwork({ serialization, holderDescription: o.description ?? "" });
      s.print(AcquireNetworkResponseSchema, r, () => `${r.network?.id ?? "-"} ${r.holderId}\n`);
    });
  network
    .command("release")
    .description("drop a holder obtained from `network acquire`")
    .argument("<network>", "network id or name")
    .argument("<holder-id>", "holder id")
    .action(async (handle: string, holderId: string) => {
      const r = await s.net().releaseNetwork({ networkId: await resolveNetwork(s, handle), holderId });
      s.print(ReleaseNetworkResponseSchema, r, () => `${holderId}\n`);
    });
}

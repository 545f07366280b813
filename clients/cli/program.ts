// The vmm-cli command tree (commander). Actions only turn flags into
// requests (parse.ts), call the daemon, and print either proto JSON (--json)
// or the human rendering (render.ts).
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { create, toJson, toJsonString, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import {
  ForwardInfoSchema,
  GetInfoResponseSchema,
  GetMetaResponseSchema,
  LeaseSchema,
  ListVmsResponseSchema,
  NetworkingMode,
  Protocol,
  RemoveVmResponseSchema,
  StartVmResponseSchema,
  StopVmResponseSchema,
  CreateVmResponseSchema,
  UpdateVmResponseSchema,
  VmmService,
  WatchEventsResponseSchema,
  ListVmsRequestSchema,
  NicConfigSchema,
  PortMappingSchema,
  UpdateVmRequestSchema,
  type ForwardInfo,
  type VmInfo,
} from "../../gen/ts/vmm/v1/vmm_pb.js";
import {
  AcquireNetworkResponseSchema,
  CreateNetworkResponseSchema,
  DeleteNetworkResponseSchema,
  GetNetworkResponseSchema,
  ListNetworksResponseSchema,
  NetworkMode,
  NetworkService,
  ReleaseNetworkResponseSchema,
  NetworkConfigSchema,
  type Network,
} from "../../gen/ts/vmm/v1/network_pb.js";
import { createTransport, describeEndpoint, resolveEndpoint, resolveToken, type ConnectionFlags } from "./connection.js";
import { UsageError, describeError } from "./errors.js";
import { parseAll, parseBool, parseNet, parsePort, parseReservation, parseUint, type NicModeName, type Parsed } from "./parse.js";
import { renderEvent, renderForwards, renderLeases, renderMeta, renderNetwork, renderNetworkList, renderVmInfo, renderVmList, statusName, type LeaseRow } from "./render.js";
import { formatPortMapping } from "./format.js";
import { registerTopCommand } from "./commands/top.js";

/** What a run needs from the outside world; tests may pass their own. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Aborted on Ctrl-C (ends `events`). */
  signal?: AbortSignal;
}

const MODE_TO_PROTO: Record<NicModeName, NetworkingMode> = {
  user: NetworkingMode.USER,
  passt: NetworkingMode.PASST,
  bridge: NetworkingMode.BRIDGE,
  tap: NetworkingMode.TAP,
  macvtap: NetworkingMode.MACVTAP,
  vmnet: NetworkingMode.VMNET,
  custom: NetworkingMode.CUSTOM,
};

const collect = (v: string, prev: string[] = []) => [...prev, v];

function must<T>(r: Parsed<T>): T {
  if (!r.ok) throw new UsageError(r.problems.join("\n  "));
  return r.value;
}

/** Joins every problem of several parses into one usage error (all bad flags at once). */
function mustAll(...rs: Parsed<unknown>[]): void {
  const problems = rs.flatMap((r) => (r.ok ? [] : r.problems));
  if (problems.length === 1) throw new UsageError(problems[0]!);
  if (problems.length > 1) throw new UsageError("invalid flags:\n  " + problems.join("\n  "));
}

const optUint = (flag: string, v: string | undefined, min: number, max: number): Parsed<number | undefined> =>
  v === undefined ? { ok: true, value: undefined } : parseUint(flag, v, min, max);

const toPortMapping = (p: ReturnType<typeof parsePort> extends Parsed<infer T> ? T : never): MessageInitShape<typeof PortMappingSchema> => ({
  protocol: p.protocol === "tcp" ? Protocol.TCP : Protocol.UDP,
  hostAddress: p.hostAddress,
  hostPort: p.hostPort,
  vmPort: p.vmPort,
});

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

class Session {
  private vmmClient?: Client<typeof VmmService>;
  private netClient?: Client<typeof NetworkService>;
  endpoint = "";
  constructor(
    private readonly root: Command,
    readonly io: Io,
  ) {}

  private transport() {
    const f = this.root.opts<ConnectionFlags & { json?: boolean }>();
    const ep = resolveEndpoint(f, this.io.env, this.io.cwd);
    const token = resolveToken(f, this.io.env);
    this.endpoint = describeEndpoint(ep);
    return createTransport(ep, token);
  }
  get json(): boolean {
    return this.root.opts<{ json?: boolean }>().json === true;
  }
  vmm(): Client<typeof VmmService> {
    return (this.vmmClient ??= createClient(VmmService, this.transport()));
  }
  net(): Client<typeof NetworkService> {
    return (this.netClient ??= createClient(NetworkService, this.transport()));
  }
  /** Prints `msg` as proto JSON when --json, else `human()`. */
  print<D extends DescMessage>(schema: D, msg: MessageShape<D>, human: () => string): void {
    this.io.out(this.json ? JSON.stringify(toJson(schema, msg), null, 2) + "\n" : human());
  }

  async listAllVms(req: MessageInitShape<typeof ListVmsRequestSchema>, all: boolean): Promise<{ vms: VmInfo[]; next: string; total: number }> {
    const vms: VmInfo[] = [];
    let token = req.pageToken ?? "";
    let total = 0;
    for (;;) {
      const r = await this.vmm().listVms({ ...req, pageToken: token });
      vms.push(...r.vms);
      total = r.totalSize;
      token = r.nextPageToken;
      if (!all || token === "") return { vms, next: token, total };
    }
  }
}

export function buildProgram(io: Io): { program: Command; session: Session } {
  const program = new Command("vmm-cli");
  const s = new Session(program, io);
  program
    .description("Command-line client of vmmd, the VM manager daemon")
    .version(version(), "-V, --version")
    .addOption(new Option("--socket <path>", "daemon unix socket (env VMM_SOCKET; default $VMM_STATE_DIR/vmmd.sock or ./.vmm/vmmd.sock)"))
    .addOption(new Option("--url <url>", "daemon URL instead of the socket, e.g. http://127.0.0.1:8080 (env VMM_URL)"))
    .addOption(new Option("--token <token>", "bearer token (env VMM_TOKEN)"))
    .addOption(new Option("--token-file <path>", "read the bearer token from a file"))
    .option("--json", "print responses as proto JSON")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (t) => io.out(t),
      writeErr: (t) => io.err(t),
      outputError: (t, write) => write(`vmm-cli: ${t.replace(/^error: /, "")}`),
    });

  // ----- VMs ------------------------------------------------------------------

  program
    .command("lsvm")
    .alias("ls")
    .description("list VMs")
    .argument("[ids...]", "only these VM ids")
    .option("-v, --verbose", "add INSTANCE_ID and MAC columns")
    .option("--keyword <text>", "only VMs whose id or name contains TEXT")
    .option("--page-size <n>", "VMs per request, 1-1000 (daemon default 100)")
    .option("--page-token <token>", "continue from a previous page")
    .option("--all", "follow page tokens to the last page")
    .option("--brief", "ask for brief records (no config: PORTS shows -)")
    .action(async (ids: string[], o: { verbose?: boolean; keyword?: string; pageSize?: string; pageToken?: string; all?: boolean; brief?: boolean }) => {
      const pageSize = must(optUint("--page-size", o.pageSize, 1, 1000));
      const r = await s.listAllVms({ ids, keyword: o.keyword ?? "", pageSize: pageSize ?? 0, pageToken: o.pageToken ?? "", brief: o.brief === true }, o.all === true);
      s.print(ListVmsResponseSchema, create(ListVmsResponseSchema, { vms: r.vms, nextPageToken: r.next, totalSize: r.total }), () => renderVmList(r.vms, o.verbose === true));
      if (!s.json && r.next !== "") io.err(`vmm-cli: ${r.total - r.vms.length} more; use --all or --page-token ${r.next}\n`);
    });

  program
    .command("info")
    .description("describe one VM")
    .argument("<id>", "VM id")
    .option("--events <n>", "recent events to show (daemon default 20)")
    .action(async (id: string, o: { events?: string }) => {
      const maxEvents = must(optUint("--events", o.events, 1, 10000));
      const r = await s.vmm().getInfo({ id, maxEvents: maxEvents ?? 0 });
      s.print(GetInfoResponseSchema, r, () => renderVmInfo(r.vm!, new Date()));
    });

  program
    .command("create")
    .alias("deploy")
    .description("create a VM (and start it with --start); prints its id")
    .argument("<name>", "human-readable name")
    .option("--id <id>", "VM id (default: a random UUID)")
    .option("--kernel <path>", "guest kernel on the host (needed to start)")
    .option("--initrd <path>", "initramfs on the host")
    .option("--cmdline <text>", "kernel command line (default console=ttyS0)")
    .option("--disk <path>", "raw/qcow2 disk image (virtio-blk)")
    .option("--vcpus <n>", "virtual CPUs (default 1)")
    .option("--memory <mib>", "memory in MiB (default 256)")
    .option("--net <spec>", "a NIC: MODE[,bridge=BR][,parent=DEV][,network=ID][,netdev=...]; repeat per NIC", collect)
    .option("--port <spec>", "forward PROTO[:ADDR]:HOST_PORT:VM_PORT, e.g. tcp:8080:80; repeatable", collect)
    .option("--start", "start the VM after creating it")
    .option("--auto-restart", "restart the VM when it exits on its own")
    .action(async (name: string, o: { id?: string; kernel?: string; initrd?: string; cmdline?: string; disk?: string; vcpus?: string; memory?: string; net?: string[]; port?: string[]; start?: boolean; autoRestart?: boolean }) => {
      const vcpus = optUint("--vcpus", o.vcpus, 1, 1024);
      const memory = optUint("--memory", o.memory, 1, 16 * 1024 * 1024);
      const nets = parseAll(o.net ?? [], (v) => parseNet(v));
      const ports = parseAll(o.port ?? [], (v) => parsePort(v));
      mustAll(vcpus, memory, nets, ports);
      const nics: MessageInitShape<typeof NicConfigSchema>[] = must(nets).map((n) => ({ mode: MODE_TO_PROTO[n.mode], bridge: n.bridge, macvtapParent: n.macvtapParent, networkId: n.networkId, customNetdev: n.customNetdev }));
      const r = await s.vmm().createVm({
        id: o.id ?? "",
        start: o.start === true,
        config: {
          name,
          kernel: o.kernel ?? "",
          initrd: o.initrd ?? "",
          cmdline: o.cmdline ?? "",
          disk: o.disk ?? "",
          vcpus: must(vcpus) ?? 0,
          memoryMib: must(memory) ?? 0,
          nics,
          ports: must(ports).map(toPortMapping),
          autoRestart: o.autoRestart === true,
        },
      });
      s.print(CreateVmResponseSchema, r, () => `${r.vm!.id}\n`);
    });

  program
    .command("update-ports")
    .description("replace a VM's forwarded ports (live on a running VM)")
    .argument("<id>", "VM id")
    .option("--port <spec>", "PROTO[:ADDR]:HOST_PORT:VM_PORT; repeatable; the full new list", collect)
    .option("--clear", "remove every port")
    .action(async (id: string, o: { port?: string[]; clear?: boolean }) => {
      if (o.clear && o.port) throw new UsageError("--clear and --port are mutually exclusive");
      if (!o.clear && !o.port) throw new UsageError("update-ports needs --port (repeatable) or --clear");
      const ports = must(parseAll(o.port ?? [], (v) => parsePort(v))).map(toPortMapping);
      const r = await s.vmm().updateVm({ id, updatePorts: true, ports });
      s.print(UpdateVmResponseSchema, r, () => {
        const list = (r.vm?.config?.ports ?? []).map((p) => formatPortMapping({ ...p, protocol: p.protocol === Protocol.UDP ? "udp" : "tcp" }));
        return `${r.vm!.id}: ports ${list.length === 0 ? "(none)" : list.join(",")}\n`;
      });
    });

  program
    .command("update")
    .description("change a VM's configuration; only the given flags change (most take effect at the next start)")
    .argument("<id>", "VM id")
    .option("--name <name>", "new name")
    .option("--vcpus <n>", "virtual CPUs")
    .option("--memory <mib>", "memory in MiB")
    .option("--kernel <path>", "guest kernel (empty string clears)")
    .option("--initrd <path>", "initramfs (empty string clears)")
    .option("--cmdline <text>", "kernel command line")
    .option("--auto-restart <bool>", "true or false")
    .action(async (id: string, o: { name?: string; vcpus?: string; memory?: string; kernel?: string; initrd?: string; cmdline?: string; autoRestart?: string }) => {
      const vcpus = optUint("--vcpus", o.vcpus, 1, 1024);
      const memory = optUint("--memory", o.memory, 1, 16 * 1024 * 1024);
      const auto: Parsed<boolean | undefined> = o.autoRestart === undefined ? { ok: true, value: undefined } : parseBool("--auto-restart", o.autoRestart);
      mustAll(vcpus, memory, auto);
      const req: MessageInitShape<typeof UpdateVmRequestSchema> = { id };
      // proto3 optional: a field is sent only when its flag was given.
      if (o.name !== undefined) req.name = o.name;
      if (must(vcpus) !== undefined) req.vcpus = must(vcpus);
      if (must(memory) !== undefined) req.memoryMib = must(memory);
      if (o.kernel !== undefined) req.kernel = o.kernel;
      if (o.initrd !== undefined) req.initrd = o.initrd;
      if (o.cmdline !== undefined) req.cmdline = o.cmdline;
      if (must(auto) !== undefined) req.autoRestart = must(auto);
      if (Object.keys(req).length === 1) throw new UsageError("update: give at least one of --name --vcpus --memory --kernel --initrd --cmdline --auto-restart");
      const r = await s.vmm().updateVm(req);
      s.print(UpdateVmResponseSchema, r, () => `${r.vm!.id}\n`);
    });

  program
    .command("start")
    .description("start a VM; prints ID: STATUS")
    .argument("<id>", "VM id")
    .action(async (id: string) => {
      const r = await s.vmm().startVm({ id });
      s.print(StartVmResponseSchema, r, () => `${r.vm!.id}: ${statusName(r.vm!.status)}\n`);
    });

  program
    .command("stop")
    .description("stop a VM (ACPI power-off, then kill after the timeout); prints ID: STATUS")
    .argument("<id>", "VM id")
    .option("--force", "kill QEMU at once")
    .option("--timeout <seconds>", "graceful power-off timeout (daemon default 30)")
    .action(async (id: string, o: { force?: boolean; timeout?: string }) => {
      const timeout = must(optUint("--timeout", o.timeout, 0, 86400));
      const r = await s.vmm().stopVm({ id, force: o.force === true, ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}) });
      s.print(StopVmResponseSchema, r, () => `${r.vm!.id}: ${statusName(r.vm!.status)}\n`);
    });

  program
    .command("rm")
    .description("remove a VM; prints its id")
    .argument("<id>", "VM id")
    .option("--force", "kill a running VM first instead of refusing")
    .action(async (id: string, o: { force?: boolean }) => {
      const r = await s.vmm().removeVm({ id, force: o.force === true });
      s.print(RemoveVmResponseSchema, r, () => `${id}\n`);
    });

  program
    .command("leases")
    .description("DHCP leases of every VM's NICs")
    .option("-a, --all", "also list NICs without a lease")
    .action(async (o: { all?: boolean }) => {
      const { vms } = await s.listAllVms({ brief: true }, true);
      const rows: LeaseRow[] = vms.flatMap((v) => v.nics.filter((n) => o.all || n.lease !== undefined).map((nic) => ({ vmId: v.id, nic })));
      if (s.json) {
        const leases = rows.map((r) => ({ vmId: r.vmId, nicIndex: r.nic.index, mac: r.nic.mac, ...(r.nic.lease ? { lease: toJson(LeaseSchema, r.nic.lease) } : {}) }));
        io.out(JSON.stringify({ leases }, null, 2) + "\n");
      } else io.out(renderLeases(rows, new Date()));
    });

  program
    .command("forwards")
    .description("forwarded ports with live counters, of one VM or all")
    .argument("[id]", "VM id (default: all VMs)")
    .action(async (id: string | undefined) => {
      const vms = id !== undefined ? [(await s.vmm().getInfo({ id, maxEvents: 1 })).vm!] : (await s.listAllVms({}, true)).vms;
      const entries: { vmId: string; forward: ForwardInfo }[] = vms.flatMap((v) => v.forwards.map((forward) => ({ vmId: v.id, forward })));
      if (s.json) {
        const forwards = entries.map((e) => ({ vmId: e.vmId, ...(toJson(ForwardInfoSchema, e.forward) as object) }));
        io.out(JSON.stringify({ forwards }, null, 2) + "\n");
      } else io.out(renderForwards(entries));
    });

  program
    .command("meta")
    .description("daemon version and capabilities")
    .action(async () => {
      const r = await s.vmm().getMeta({});
      s.print(GetMetaResponseSchema, r, () => renderMeta(r));
    });

  program
    .command("events")
    .description("stream VM events, one line each, until Ctrl-C")
    .option("--vm <id>", "only events of this VM")
    .action(async (o: { vm?: string }) => {
      try {
        for await (const r of s.vmm().watchEvents({ vmId: o.vm ?? "" }, { signal: io.signal })) {
          if (r.subscribed) continue; // the stream's first message: registered, no event
          io.out(s.json ? toJsonString(WatchEventsResponseSchema, r) + "\n" : renderEvent(r.vmId, r.event));
        }
      } catch (e) {
        // Ctrl-C ends the stream; that is the normal way out.
        if (io.signal?.aborted && e instanceof ConnectError && e.code === Code.Canceled) return;
        throw e;
      }
    });

  registerTopCommand(program, s);

  // ----- networks ---------------------------------------------------------------

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

  program
    .command("networks")
    .description("list networks")
    .action(async () => {
      const nets = await listNetworks();
      s.print(ListNetworksResponseSchema, create(ListNetworksResponseSchema, { networks: nets }), () => renderNetworkList(nets));
    });

  const network = program.command("network").description("manage networks (vmnet layer)");
  network
    .command("ls")
    .description("list networks (same as `networks`)")
    .action(async () => {
      const nets = await listNetworks();
      s.print(ListNetworksResponseSchema, create(ListNetworksResponseSchema, { networks: nets }), () => renderNetworkList(nets));
    });
  network
    .command("create")
    .description("create a network; prints it, serialization included")
    .addOption(new Option("--mode <mode>", "host (guests and host) or shared (plus NAT out)").choices(["host", "shared"]).makeOptionMandatory())
    .option("--name <name>", "name (default: the generated id)")
    .option("--subnet <cidr>", "IPv4 subnet, e.g. 192.168.140.0/24 (default: a free /24 from the pool)")
    .option("--reserve <mac=ip>", "DHCP reservation; repeatable", collect)
    .option("--no-dhcp", "do not serve DHCP")
    .option("--nat44 <on|off>", "NAT44 out (shared mode; default on)")
    .action(async (o: { mode: "host" | "shared"; name?: string; subnet?: string; reserve?: string[]; dhcp: boolean; nat44?: string }) => {
      const res = parseAll(o.reserve ?? [], (v) => parseReservation(v));
      const nat: Parsed<boolean | undefined> = o.nat44 === undefined ? { ok: true, value: undefined } : parseBool("--nat44", o.nat44);
      mustAll(res, nat);
      const config: MessageInitShape<typeof NetworkConfigSchema> = {
        mode: o.mode === "host" ? NetworkMode.HOST : NetworkMode.SHARED,
        ipv4Subnet: o.subnet ?? "",
        dhcpReservations: must(res),
      };
      // proto3 optional: unset means the daemon's default (DHCP on, NAT44 on in shared mode).
      if (o.dhcp === false) config.dhcpEnabled = false;
      if (must(nat) !== undefined) config.nat44Enabled = must(nat);
      const r = await s.net().createNetwork({ name: o.name ?? "", config });
      s.print(CreateNetworkResponseSchema, r, () => renderNetwork(r.network!));
    });
  network
    .command("info")
    .description("describe one network")
    .argument("<id>", "network id")
    .action(async (id: string) => {
      const r = await s.net().getNetwork({ id });
      s.print(GetNetworkResponseSchema, r, () => renderNetwork(r.network!));
    });
  network
    .command("rm")
    .description("delete a network; prints its id")
    .argument("<id>", "network id")
    .option("--force", "delete even while VMs are attached or holders remain")
    .action(async (id: string, o: { force?: boolean }) => {
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
    .argument("<network-id>", "network id")
    .argument("<holder-id>", "holder id")
    .action(async (networkId: string, holderId: string) => {
      const r = await s.net().releaseNetwork({ networkId, holderId });
      s.print(ReleaseNetworkResponseSchema, r, () => `${holderId}\n`);
    });

  return { program, session: s };
}

/** Parses argv (without node and script), runs the command, returns the exit code. Never throws. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const { program, session } = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version exit 0; every other commander error is a usage error
      // (already printed through configureOutput).
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "commander.help") return 2;
      return e.exitCode === 0 ? 0 : 2;
    }
    const d = describeError(e, session.endpoint || undefined);
    io.err(d.text);
    return d.exitCode;
  }
}

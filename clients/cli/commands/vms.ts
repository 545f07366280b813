// VM commands: lsvm, info, create, update, update-ports, start, stop,
// restart, rm. Every VM argument is an id or a name (resolve.ts).
import { create, toJson, type MessageInitShape } from "@bufbuild/protobuf";
import { type Command, Option } from "commander";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  CreateVmResponseSchema,
  GetInfoResponseSchema,
  ListVmsResponseSchema,
  type NicConfigSchema,
  type PortMappingSchema,
  ForwardPath,
  Protocol,
  StartVmResponseSchema,
  StopVmResponseSchema,
  type UpdateVmRequestSchema,
  UpdateVmResponseSchema,
  type VmInfo,
} from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { errorJson, UsageError, VmFailure } from "../errors.js";
import { formatPortMapping } from "../format.js";
import { parseAll, parseBool, parseDisk, parseNet, parsePort, parseSize, type Parsed, type PortSpec } from "../parse.js";
import { portView, renderVmInfo, renderVmList, statusName } from "../render.js";
import { resolveVm } from "../resolve.js";
import { collect, must, mustAll, optUint, type Session } from "../session.js";
import { readFileSync } from "node:fs";
import { MAX_EVENTS, NETWORKING_MODES, STOP_TIMEOUT_SECONDS } from "../../../server/contract.js";

/**
 * A `--port` flag's parsed value as the PortMapping the daemon takes (the host address stays "" for
 * the daemon's default).
 */
export const toPortMapping = (p: PortSpec): MessageInitShape<typeof PortMappingSchema> => ({
  protocol: p.protocol === "tcp" ? Protocol.TCP : Protocol.UDP,
  hostAddress: p.hostAddress,
  hostPort: p.hostPort,
  vmPort: p.vmPort,
  ...(p.nicIndex !== undefined ? { nicIndex: p.nicIndex } : {}),
  ...(p.path !== undefined ? { path: p.path === "nat" ? ForwardPath.NAT : ForwardPath.USERSPACE } : {}),
  ...(p.proxyProtocol ? { proxyProtocol: true } : {}),
});

/** Reads `@FILE` values (user data, keys) or takes the text as it is. */
function textOrFile(flag: string, v: string): string {
  if (!v.startsWith("@")) return v;
  try {
    return readFileSync(v.slice(1), "utf8");
  } catch (e) {
    throw new UsageError(`${flag} ${v}: ${(e as Error).message}`);
  }
}

/**
 * Runs `fn` for each VM handle; a failure of one does not stop the others.
 * Human output: one line per VM; --json: one response, or an array of
 * {vm} / {handle, error} for several.
 */
async function forEachVm(s: Session, handles: string[], fn: (id: string) => Promise<{ json: unknown; line: string }>): Promise<void> {
  const results: unknown[] = [];
  let failed = 0;
  for (const h of handles) {
    try {
      const r = await fn(await resolveVm(s, h));
      results.push(r.json);
      if (!s.json) s.io.out(r.line);
    } catch (e) {
      failed++;
      if (handles.length === 1) throw e;
      results.push({ handle: h, error: errorJson(e) });
      if (!s.json) s.io.err(`vmm-cli: ${h}: ${errorJson(e).code}: ${errorJson(e).message}\n`);
    }
  }
  if (s.json) s.io.out(JSON.stringify(handles.length === 1 ? results[0] : results, null, 2) + "\n");
  if (failed > 0) throw new VmFailure(`${failed} of ${handles.length} VMs failed`);
}

const vmLine = (vm: VmInfo | undefined) => `${vm?.name ?? "?"} (${vm?.id ?? "?"}): ${statusName(vm!.status)}\n`;

/** Adds the VM commands to `program`. */
export function registerVmCommands(program: Command, s: Session): void {
  program
    .command("lsvm")
    .alias("ls")
    .description("list VMs")
    .argument("[vms...]", "only these VMs (ids or names)")
    .addOption(new Option("-o, --output <format>", "wide: every column, nothing shortened").choices(["wide"]))
    .option("-v, --verbose", "same as -o wide")
    .option("-q, --quiet", "print names only, one per line")
    .option("--keyword <text>", "only VMs whose id or name contains TEXT")
    .option("--page-size <n>", "VMs per request, 1-1000 (daemon default 100)")
    .option("--page-token <token>", "continue from a previous page")
    .option("--all", "follow page tokens to the last page")
    .option("--brief", "ask for brief records (no config: PORTS shows -)")
    .action(async (handles: string[], o: { output?: string; verbose?: boolean; quiet?: boolean; keyword?: string; pageSize?: string; pageToken?: string; all?: boolean; brief?: boolean }) => {
      const pageSize = must(optUint("--page-size", o.pageSize, 1, 1000));
      const ids: string[] = [];
      for (const h of handles) ids.push(await resolveVm(s, h));
      const r = await s.listAllVms({ ids, keyword: o.keyword ?? "", pageSize: pageSize ?? 0, pageToken: o.pageToken ?? "", brief: o.brief === true }, o.all === true);
      if (o.quiet && !s.json) s.io.out(r.vms.map((v) => `${v.name}\n`).join(""));
      else s.print(ListVmsResponseSchema, create(ListVmsResponseSchema, { vms: r.vms, nextPageToken: r.next, totalSize: r.total }), () => renderVmList(r.vms, o.output === "wide" || o.verbose === true));
      if (!s.json && r.next !== "") s.io.err(`vmm-cli: ${r.total - r.vms.length} more; use --all or --page-token ${r.next}\n`);
    });

  program
    .command("info")
    .description("describe one VM")
    .argument("<vm>", "VM id or name")
    .option("--events <n>", "recent events to show (daemon default 20)")
    .action(async (handle: string, o: { events?: string }) => {
      const maxEvents = must(optUint("--events", o.events, 1, MAX_EVENTS));
      const r = await s.vmm().getInfo({ id: await resolveVm(s, handle), maxEvents: maxEvents ?? 0 });
      s.print(GetInfoResponseSchema, r, () => renderVmInfo(r.vm!, new Date()));
    });

  program
    .command("create")
    .alias("deploy")
    .description("create a VM (and start it with --start); prints its id")
    .argument("<name>", "name, unique among the daemon's VMs")
    .option("--id <id>", "VM id (default: a random UUID)")
    .option("--image <name>", "boot from this image of the daemon's images directory (see `images`)")
    .option("--image-size <size>", "virtual size of the image's overlay disk, e.g. 10G (default: the image's)")
    .option("--kernel <path>", "guest kernel on the host (default: the image's)")
    .option("--initrd <path>", "initramfs on the host (default: the image's)")
    .option("--cmdline <text>", "kernel command line (default: the image's, else console=ttyS0)")
    .option("--disk <path>", "a raw/qcow2 disk file on the host, attached as it is")
    .option("--add-disk <spec>", "an extra disk: SIZE (blank, e.g. 20G) or IMAGE[:SIZE]; repeatable", collect)
    .option("--vcpus <n>", "virtual CPUs (default 1)")
    .option("--memory <mib>", "memory in MiB (default 256)")
    .option("--net <spec>", "a NIC: MODE[,bridge=BR][,parent=DEV][,network=ID][,netdev=...]; repeat per NIC", collect)
    .option("--port <spec>", "forward PROTO[:ADDR]:HOST_PORT:VM_PORT, e.g. tcp:8080:80; repeatable", collect)
    .option("--user-data <text|@file>", "cloud-init user data (adds a seed drive)")
    .option("--ssh-key <key|@file>", "SSH public key for cloud-init; repeatable", collect)
    .option("--hostname <name>", "guest host name for cloud-init")
    .option("--network-config <text|@file>", "cloud-init network configuration")
    .option("--cloud-init", "add a seed drive even without the options above")
    .option("--start", "start the VM after creating it")
    .option("--auto-restart", "restart the VM when it exits on its own")
    .action(async (name: string, o: Record<string, string | string[] | boolean | undefined>) => {
      const str = (k: string) => o[k] as string | undefined;
      const vcpus = optUint("--vcpus", str("vcpus"), 1, 1024);
      const memory = optUint("--memory", str("memory"), 1, 16 * 1024 * 1024);
      const imageSize: Parsed<number | undefined> = str("imageSize") === undefined ? { ok: true, value: undefined } : parseSize("--image-size", str("imageSize")!);
      const nets = parseAll((o.net as string[] | undefined) ?? [], (v) => parseNet(v));
      const ports = parseAll((o.port as string[] | undefined) ?? [], (v) => parsePort(v));
      const disks = parseAll((o.addDisk as string[] | undefined) ?? [], (v) => parseDisk(v));
      mustAll(vcpus, memory, imageSize, nets, ports, disks);
      if (str("imageSize") !== undefined && str("image") === undefined) throw new UsageError("--image-size needs --image");
      const nics: MessageInitShape<typeof NicConfigSchema>[] = must(nets).map((n) => ({ mode: NETWORKING_MODES[n.mode], bridge: n.bridge, macvtapParent: n.macvtapParent, networkId: n.networkId, customNetdev: n.customNetdev }));
      const keys = ((o.sshKey as string[] | undefined) ?? []).flatMap((k) => textOrFile("--ssh-key", k).split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#")));
      // The daemon refuses duplicate names too; asking first gives the id of the VM in the way.
      const same = await s.vmm().listVms({ names: [name], brief: true, pageSize: 1 });
      if (same.vms.length > 0) throw new ConnectError(`a VM named "${name}" exists already (id ${same.vms[0]!.id}); names are unique`, Code.AlreadyExists);
      const wantsSeed = o.cloudInit === true || [str("userData"), str("hostname"), str("networkConfig")].some((v) => v !== undefined) || keys.length > 0;
      const r = await s.vmm().createVm({
        id: str("id") ?? "",
        config: {
          name,
          kernel: str("kernel") ?? "",
          initrd: str("initrd") ?? "",
          cmdline: str("cmdline") ?? "",
          disk: str("disk") ?? "",
          image: str("image") ?? "",
          imageSizeMib: must(imageSize) ?? 0,
          disks: must(disks),
          vcpus: must(vcpus) ?? 0,
          memoryMib: must(memory) ?? 0,
          nics,
          ports: must(ports).map(toPortMapping),
          autoRestart: o.autoRestart === true,
          ...(wantsSeed
            ? {
                cloudInit: {
                  userData: str("userData") !== undefined ? textOrFile("--user-data", str("userData")!) : "",
                  sshAuthorizedKeys: keys,
                  hostname: str("hostname") ?? "",
                  networkConfig: str("networkConfig") !== undefined ? textOrFile("--network-config", str("networkConfig")!) : "",
                },
              }
            : {}),
        },
      });
      const vm = r.vm!;
      if (o.start !== true) {
        s.print(CreateVmResponseSchema, r, () => `${vm.id}\n`);
        return;
      }
      // Started separately, so that a failed start can still name the VM it left behind.
      try {
        const started = await s.vmm().startVm({ id: vm.id });
        s.print(CreateVmResponseSchema, create(CreateVmResponseSchema, { vm: started.vm }), () => `${vm.id}\n`);
      } catch (e) {
        throw new VmFailure(`created VM ${vm.id} ("${vm.name}") but it did not start: ${errorJson(e).code}: ${errorJson(e).message}\n  remove it with: vmm-cli rm ${vm.id}`, { created: toJson(CreateVmResponseSchema, r), cause: e });
      }
    });

  program
    .command("update-ports")
    .description("replace a VM's forwarded ports (live on a running VM)")
    .argument("<vm>", "VM id or name")
    .option("--port <spec>", "PROTO[:ADDR]:HOST_PORT:VM_PORT; repeatable; the full new list", collect)
    .option("--clear", "remove every port")
    .action(async (handle: string, o: { port?: string[]; clear?: boolean }) => {
      if (o.clear && o.port) throw new UsageError("--clear and --port are mutually exclusive");
      if (!o.clear && !o.port) throw new UsageError("update-ports needs --port (repeatable) or --clear");
      const ports = must(parseAll(o.port ?? [], (v) => parsePort(v))).map(toPortMapping);
      const r = await s.vmm().updateVm({ id: await resolveVm(s, handle), updatePorts: true, ports });
      s.print(UpdateVmResponseSchema, r, () => {
        const list = (r.vm?.config?.ports ?? []).map((p) => formatPortMapping(portView(p)));
        return `${r.vm!.id}: ports ${list.length === 0 ? "(none)" : list.join(",")}\n`;
      });
    });

  program
    .command("update")
    .description("change a VM's configuration; only the given flags change (most take effect at the next start)")
    .argument("<vm>", "VM id or name")
    .option("--name <name>", "new name")
    .option("--vcpus <n>", "virtual CPUs")
    .option("--memory <mib>", "memory in MiB")
    .option("--kernel <path>", "guest kernel (empty string clears)")
    .option("--initrd <path>", "initramfs (empty string clears)")
    .option("--cmdline <text>", "kernel command line")
    .option("--auto-restart <bool>", "true or false")
    .option("--user-data <text|@file>", "replace the cloud-init seed's user data (other seed fields are cleared)")
    .option("--no-cloud-init", "remove the cloud-init seed drive")
    .action(async (handle: string, o: { name?: string; vcpus?: string; memory?: string; kernel?: string; initrd?: string; cmdline?: string; autoRestart?: string; userData?: string; cloudInit?: boolean }) => {
      const vcpus = optUint("--vcpus", o.vcpus, 1, 1024);
      const memory = optUint("--memory", o.memory, 1, 16 * 1024 * 1024);
      const auto: Parsed<boolean | undefined> = o.autoRestart === undefined ? { ok: true, value: undefined } : parseBool("--auto-restart", o.autoRestart);
      mustAll(vcpus, memory, auto);
      if (o.cloudInit === false && o.userData !== undefined) throw new UsageError("--user-data and --no-cloud-init are mutually exclusive");
      const req: MessageInitShape<typeof UpdateVmRequestSchema> = { id: "" };
      // proto3 optional: a field is sent only when its flag was given.
      if (o.name !== undefined) req.name = o.name;
      if (must(vcpus) !== undefined) req.vcpus = must(vcpus);
      if (must(memory) !== undefined) req.memoryMib = must(memory);
      if (o.kernel !== undefined) req.kernel = o.kernel;
      if (o.initrd !== undefined) req.initrd = o.initrd;
      if (o.cmdline !== undefined) req.cmdline = o.cmdline;
      if (must(auto) !== undefined) req.autoRestart = must(auto);
      if (o.userData !== undefined) req.cloudInit = { userData: textOrFile("--user-data", o.userData) };
      if (o.cloudInit === false) req.cloudInit = {};
      if (Object.keys(req).length === 1) throw new UsageError("update: give at least one of --name --vcpus --memory --kernel --initrd --cmdline --auto-restart --user-data --no-cloud-init");
      req.id = await resolveVm(s, handle);
      const r = await s.vmm().updateVm(req);
      s.print(UpdateVmResponseSchema, r, () => `${r.vm!.id}\n`);
    });

  program
    .command("start")
    .description("start VMs; prints NAME (ID): STATUS for each")
    .argument("<vms...>", "VM ids or names")
    .action(async (handles: string[]) => {
      await forEachVm(s, handles, async (id) => {
        const r = await s.vmm().startVm({ id });
        return { json: toJson(StartVmResponseSchema, r), line: vmLine(r.vm) };
      });
    });

  const stopOptions = (c: Command) =>
    c.option("--force", "kill QEMU at once").option("--timeout <seconds>", "graceful power-off timeout (daemon default 30)");

  stopOptions(
    program
      .command("stop")
      .description("stop VMs (ACPI power-off, then kill after the timeout); prints NAME (ID): STATUS for each")
      .argument("<vms...>", "VM ids or names"),
  ).action(async (handles: string[], o: { force?: boolean; timeout?: string }) => {
    const timeout = must(optUint("--timeout", o.timeout, STOP_TIMEOUT_SECONDS.min, STOP_TIMEOUT_SECONDS.max));
    await forEachVm(s, handles, async (id) => {
      const r = await s.vmm().stopVm({ id, force: o.force === true, ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}) });
      return { json: toJson(StopVmResponseSchema, r), line: vmLine(r.vm) };
    });
  });

  stopOptions(
    program
      .command("restart")
      .description("stop VMs that run, then start them; prints NAME (ID): STATUS for each")
      .argument("<vms...>", "VM ids or names"),
  ).action(async (handles: string[], o: { force?: boolean; timeout?: string }) => {
    const timeout = must(optUint("--timeout", o.timeout, STOP_TIMEOUT_SECONDS.min, STOP_TIMEOUT_SECONDS.max));
    await forEachVm(s, handles, async (id) => {
      const { vm } = await s.vmm().getInfo({ id, maxEvents: 1 });
      if (vm && statusName(vm.status) !== "stopped" && statusName(vm.status) !== "exited") {
        await s.vmm().stopVm({ id, force: o.force === true, ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}) });
      }
      const r = await s.vmm().startVm({ id });
      return { json: toJson(StartVmResponseSchema, r), line: vmLine(r.vm) };
    });
  });

  program
    .command("rm")
    .description("remove VMs with their disks (never an image); prints each id")
    .argument("<vms...>", "VM ids or names")
    .option("--force", "kill a running VM first instead of refusing")
    .action(async (handles: string[], o: { force?: boolean }) => {
      await forEachVm(s, handles, async (id) => {
        await s.vmm().removeVm({ id, force: o.force === true });
        return { json: { id }, line: `${id}\n` };
      });
    });
}

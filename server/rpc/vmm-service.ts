// VmmService handlers: convert the request, call the VM manager, convert the
// result. No process spawning, sockets or disk access here.
import { availableParallelism, totalmem } from "node:os";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Config } from "../config/types.js";
import type { Capabilities } from "../host/capabilities.js";
import type { VmManager } from "../vm/manager.js";
import type { VmView } from "../vm/types.js";
import { VERSION } from "../version.js";
import {
  ForwardInfoSchema,
  LeaseAction,
  VmmService,
  type ForwardInfo,
  WatchEventsResponseSchema,
} from "../../gen/ts/vmm/v1/vmm_pb.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { cloudInitFromProto, forwardToProto, imageToProto, leaseToProto, modeToProto, portsFromProto, protocolToProto, specFromProto, vmToProto } from "./convert.js";
import type { ForwardView } from "../forward/types.js";
import { Problems } from "../errors.js";
import { checkId } from "../check.js";
import type { ImageCatalog } from "../image/catalog.js";

export interface VmmServiceDeps {
  cfg: Config;
  vms: VmManager;
  forwards: ForwardView | undefined;
  caps: Capabilities;
  images: ImageCatalog;
}

/** Handlers with a module of their own (console-service.ts, attach-service.ts, stats-service.ts), joined in daemon.ts. */
type ElsewhereHandled = "readConsole" | "attachConsole" | "getVmStats";

export function vmmService(d: VmmServiceDeps): Omit<ServiceImpl<typeof VmmService>, ElsewhereHandled> {
  /** Active forwards of a VM: the forwarder's rules, or the native maps of user/passt. */
  const forwardsOf = (v: VmView): ForwardInfo[] => {
    const { nics, ports } = v.record.spec;
    const nicOf = (protocol: string, address: string, port: number) =>
      ports.find((p) => p.protocol === protocol && p.hostAddress === address && p.hostPort === port)?.nicIndex ?? 0;
    // Ports of user/passt NICs are mapped by QEMU or passt themselves.
    const native = v.runtime.status !== "running" ? [] : ports.flatMap((p) => {
      const mode = nics[p.nicIndex ?? 0]?.mode;
      if (mode !== "user" && mode !== "passt") return [];
      return [
        create(ForwardInfoSchema, {
          protocol: protocolToProto(p.protocol),
          listenAddress: p.hostAddress,
          listenPort: p.hostPort,
          targetAddress: mode === "user" ? "guest (slirp)" : "guest (passt)",
          targetPort: p.vmPort,
          relay: mode === "user" ? "qemu-hostfwd" : "passt",
          nicIndex: p.nicIndex ?? 0,
        }),
      ];
    });
    const relayed = (d.forwards?.list(v.record.id) ?? []).map((f) => {
      const m = forwardToProto(f);
      m.nicIndex = nicOf(f.protocol, f.listenAddress, f.listenPort);
      return m;
    });
    return [...native, ...relayed];
  };
  const info = (v: VmView, brief = false) => vmToProto(v, { brief, forwards: brief ? [] : forwardsOf(v), disks: brief ? [] : d.vms.disks(v) });

  return {
    async createVm(req) {
      return { vm: info(await d.vms.create(req.id, specFromProto(req.config), req.start)) };
    },
    async updateVm(req) {
      const v = await d.vms.update(req.id, {
        name: req.name,
        vcpus: req.vcpus,
        memoryMib: req.memoryMib,
        kernel: req.kernel,
        initrd: req.initrd,
        cmdline: req.cmdline,
        autoRestart: req.autoRestart,
        cloudInit: cloudInitFromProto(req.cloudInit),
        labels: req.labels ? { ...req.labels.labels } : undefined,
        updatePorts: req.updatePorts,
        ports: portsFromProto(req.ports),
      });
      return { vm: info(v) };
    },
    async startVm(req) {
      return { vm: info(await d.vms.start(req.id)) };
    },
    async stopVm(req) {
      return { vm: info(await d.vms.stop(req.id, req.force, req.timeoutSeconds)) };
    },
    async removeVm(req) {
      await d.vms.remove(req.id, req.force);
      return {};
    },
    async listVms(req) {
      const r = d.vms.list({ ids: req.ids, names: req.names, keyword: req.keyword, labelSelector: req.labelSelector, pageSize: req.pageSize, pageToken: req.pageToken });
      return { vms: r.vms.map((v) => info(v, req.brief)), nextPageToken: r.nextPageToken, totalSize: r.total };
    },
    async getInfo(req) {
      return { vm: info(d.vms.get(req.id, req.maxEvents)) };
    },
    async reportDhcpLease(req) {
      const action = req.action === LeaseAction.ADD ? "add" : req.action === LeaseAction.OLD ? "old" : req.action === LeaseAction.DEL ? "del" : undefined;
      if (action === undefined) {
        const p = new Problems();
        p.add("action", req.action === LeaseAction.UNSPECIFIED ? "is required (LEASE_ACTION_ADD, _OLD or _DEL)" : `unknown action ${req.action}`);
        p.throwIfAny();
      }
      const r = await d.vms.reportLease({
        action: action!,
        mac: req.mac,
        ip: req.ip,
        hostname: req.hostname,
        expiresUnix: Number(req.expiresUnix),
        interface: req.interface,
      });
      return { vmId: r.vmId, nicIndex: r.nic, forwards: forwardsOf(r.view), lease: r.lease ? leaseToProto(r.lease) : undefined };
    },
    async getMeta() {
      return {
        version: VERSION,
        qemuVersion: d.caps.qemuVersion,
        networkingModes: d.caps.modes.map(modeToProto),
        defaultNetworkingMode: modeToProto(d.cfg.networking.defaultMode),
        forwardServiceEnabled: d.cfg.networking.forwardServiceEnabled,
        forwardRelay: d.forwards?.relayKind ?? "",
        platform: `${process.platform}/${process.arch}`,
        authRequired: d.cfg.auth.tokens.length > 0,
        accel: d.caps.accel,
        accelReason: d.caps.accelReason,
        imagesDir: d.images.dir,
        hostCpus: availableParallelism(),
        hostMemoryBytes: BigInt(totalmem()),
        bridges: d.cfg.networking.bridge === "" ? [] : [d.cfg.networking.bridge, ...d.cfg.networking.allowedBridges.filter((b) => b !== d.cfg.networking.bridge)],
      };
    },
    async listImages() {
      return { images: d.images.list().map(imageToProto) };
    },

    async *watchEvents(req, ctx) {
      if (req.vmId !== "") {
        const p = new Problems();
        checkId(p, "vm_id", req.vmId);
        p.throwIfAny();
        d.vms.get(req.vmId); // NotFound for unknown VMs
      }
      const queue: { id: string; ev: { time: string; kind: string; message: string } }[] = [];
      let wake: (() => void) | undefined;
      const onEvent = (id: string, ev: { time: string; kind: string; message: string }) => {
        if (req.vmId !== "" && id !== req.vmId) return;
        if (queue.length >= 10_000) return; // a stalled reader loses events rather than memory
        queue.push({ id, ev });
        wake?.();
      };
      d.vms.events.on("event", onEvent);
      const aborted = new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
      try {
        // Registered above: tell the client (this also sends the response
        // headers, which connect-es holds back until the first message).
        yield create(WatchEventsResponseSchema, { subscribed: true });
        while (!ctx.signal.aborted) {
          while (queue.length > 0) {
            const { id, ev } = queue.shift()!;
            yield create(WatchEventsResponseSchema, { vmId: id, event: { time: timestampFromDate(new Date(ev.time)), kind: ev.kind, message: ev.message } });
          }
          await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
          wake = undefined;
        }
      } finally {
        d.vms.events.off("event", onEvent);
      }
    },
  };
}


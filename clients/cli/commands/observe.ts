// Commands that look at VMs and the daemon: leases, forwards, events, meta,
// images, logs, console.
import { create, toJson, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import {
  AttachConsoleRequestSchema,
  ForwardInfoSchema,
  GetMetaResponseSchema,
  LeaseSchema,
  ListImagesResponseSchema,
  WatchEventsResponseSchema,
  type AttachConsoleRequest,
  type ForwardInfo,
} from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { UsageError } from "../errors.js";
import { renderEvent, renderForwards, renderImages, renderLeases, renderMeta, type LeaseRow } from "../render.js";
import { resolveVm } from "../resolve.js";
import { must, optUint, type Session } from "../session.js";
import { DETACH_KEY_NAME, splitAtDetach } from "../console.js";

/** How often an idle `console` tells the daemon it is still there. */
const KEEPALIVE_MS = 3000;

/** Whether `e` is the end of a stream the user asked for (Ctrl-C, detach). */
const isOurCancel = (e: unknown, signal: AbortSignal | undefined) => signal?.aborted === true && e instanceof ConnectError && e.code === Code.Canceled;

/** Adds the observing commands to `program`. */
export function registerObserveCommands(program: Command, s: Session): void {
  const io = s.io;

  program
    .command("leases")
    .description("DHCP leases of every VM's NICs")
    .option("-a, --all", "also list NICs without a lease")
    .action(async (o: { all?: boolean }) => {
      const { vms } = await s.listAllVms({ brief: true }, true);
      const rows: LeaseRow[] = vms.flatMap((v) => v.nics.filter((n) => o.all || n.lease !== undefined).map((nic) => ({ vmId: v.id, vmName: v.name, nic })));
      if (s.json) {
        const leases = rows.map((r) => ({ vmId: r.vmId, nicIndex: r.nic.index, mac: r.nic.mac, ...(r.nic.lease ? { lease: toJson(LeaseSchema, r.nic.lease) } : {}) }));
        io.out(JSON.stringify({ leases }, null, 2) + "\n");
      } else io.out(renderLeases(rows, new Date()));
    });

  program
    .command("forwards")
    .description("forwarded ports with live counters, of one VM or all")
    .argument("[vm]", "VM id or name (default: all VMs)")
    .action(async (handle: string | undefined) => {
      const vms = handle !== undefined ? [(await s.vmm().getInfo({ id: await resolveVm(s, handle), maxEvents: 1 })).vm!] : (await s.listAllVms({}, true)).vms;
      const entries: { vmId: string; vmName: string; forward: ForwardInfo }[] = vms.flatMap((v) => v.forwards.map((forward) => ({ vmId: v.id, vmName: v.name, forward })));
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
    .command("images")
    .description("images in the daemon's images directory")
    .action(async () => {
      const r = await s.vmm().listImages({});
      s.print(ListImagesResponseSchema, r, () => renderImages(r.images));
    });

  program
    .command("events")
    .description("stream VM events, one line each, until Ctrl-C")
    .option("--vm <vm>", "only events of this VM (id or name)")
    .action(async (o: { vm?: string }) => {
      const vmId = o.vm !== undefined ? await resolveVm(s, o.vm) : "";
      try {
        for await (const r of s.vmm().watchEvents({ vmId }, { signal: io.signal })) {
          if (r.subscribed) continue; // the stream's first message: registered, no event
          io.out(s.json ? toJsonString(WatchEventsResponseSchema, r) + "\n" : renderEvent(r.vmId, r.event));
        }
      } catch (e) {
        // Ctrl-C ends the stream; that is the normal way out.
        if (isOurCancel(e, io.signal)) return;
        throw e;
      }
    });

  program
    .command("logs")
    .description("print a VM's serial console output (the current boot); -f follows it")
    .argument("<vm>", "VM id or name")
    .option("-f, --follow", "keep printing new output, across restarts, until Ctrl-C")
    .option("-n, --tail <lines>", "start with the last LINES lines")
    .action(async (handle: string, o: { follow?: boolean; tail?: string }) => {
      const tail = must(optUint("--tail", o.tail, 0, 100000));
      const id = await resolveVm(s, handle);
      try {
        for await (const r of s.vmm().readConsole({ id, follow: o.follow === true, ...(tail !== undefined ? { tailLines: tail } : {}) }, { signal: io.signal })) {
          if (r.data.length === 0) continue;
          // --json: one message per line, data base64-encoded (it is bytes).
          if (s.json) io.out(JSON.stringify({ instanceId: r.instanceId, offset: String(r.offset), data: Buffer.from(r.data).toString("base64") }) + "\n");
          else io.out(Buffer.from(r.data).toString("utf8"));
        }
      } catch (e) {
        if (isOurCancel(e, io.signal)) return;
        throw e;
      }
    });

  program
    .command("console")
    .description(`attach this terminal to a running VM's serial console; ${DETACH_KEY_NAME} detaches`)
    .argument("<vm>", "VM id or name")
    .action(async (handle: string) => {
      const tty = io.tty;
      if (!tty) throw new UsageError("console needs a terminal");
      if (s.json) throw new UsageError("console does not take --json");
      const id = await resolveVm(s, handle);
      const ctl = new AbortController();
      const stopOnCtrlC = () => ctl.abort();
      io.signal?.addEventListener("abort", stopOnCtrlC, { once: true });
      // Keystrokes become requests; the detach key ends the session.
      const pending: Buffer[] = [];
      let wake: (() => void) | undefined;
      let ended = false;
      const offData = tty.onData((b) => {
        const { before, detached } = splitAtDetach(b);
        if (before.length > 0) pending.push(before);
        if (detached) {
          ended = true;
          ctl.abort();
        }
        wake?.();
      });
      const offEnd = tty.onEnd(() => {
        ended = true;
        wake?.();
      });
      async function* input(): AsyncGenerator<AttachConsoleRequest> {
        yield create(AttachConsoleRequestSchema, { vmId: id });
        for (;;) {
          while (pending.length > 0) yield create(AttachConsoleRequestSchema, { input: pending.shift()! });
          if (ended) return;
          // Quiet for KEEPALIVE_MS: an empty message. This daemon does not
          // hold an answered call to [api] body_timeout_seconds; older ones
          // took an idle request stream for a stalled one and reset it.
          const woke = await new Promise<boolean>((r) => {
            const t = setTimeout(() => r(false), KEEPALIVE_MS);
            wake = () => {
              clearTimeout(t);
              r(true);
            };
          });
          wake = undefined;
          if (!woke) yield create(AttachConsoleRequestSchema, {});
        }
      }
      if (tty.isTTY) tty.setRaw(true);
      try {
        for await (const r of s.vmmStreaming().attachConsole(input(), { signal: ctl.signal })) {
          if (r.attached) io.err(`vmm-cli: attached to ${handle} (${id}); ${DETACH_KEY_NAME} detaches\r\n`);
          if (r.output.length > 0) tty.write(r.output);
        }
        io.err(`\r\nvmm-cli: the console of ${handle} closed (the VM stopped)\r\n`);
      } catch (e) {
        if (!(ctl.signal.aborted && e instanceof ConnectError && e.code === Code.Canceled)) throw e;
        io.err(`\r\nvmm-cli: detached from ${handle}\r\n`);
      } finally {
        if (tty.isTTY) tty.setRaw(false);
        offData();
        offEnd();
        io.signal?.removeEventListener("abort", stopOnCtrlC);
      }
    });
}

// AttachConsole: the first request names the VM; later requests carry
// keystrokes; responses carry console output. Only validation and the
// stream plumbing live here; the console connection is console/attach.ts.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { Problems } from "../errors.js";
import { checkId } from "../check.js";
import type { ConsoleAttacher } from "../console/attach.js";
import { AttachConsoleResponseSchema, type AttachConsoleRequest, type VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

/** The AttachConsole handler of VmmService, over `attacher`. */
export function attachService(attacher: ConsoleAttacher): Pick<ServiceImpl<typeof VmmService>, "attachConsole"> {
  return {
    async *attachConsole(reqs, ctx) {
      const it = reqs[Symbol.asyncIterator]();
      const first = await it.next();
      const p = new Problems();
      const id = first.done ? "" : first.value.vmId;
      checkId(p, "vm_id", id);
      p.throwIfAny();
      const a = await attacher.attach(id);
      const onAbort = () => a.close();
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      // Keystrokes flow while output is yielded; a bad message or the end of
      // the client's side ends the attachment.
      let inputError: unknown;
      const pump = (async (firstReq: AttachConsoleRequest | undefined) => {
        try {
          if (firstReq) a.write(firstReq.input);
          for (let r = await it.next(); !r.done; r = await it.next()) {
            if (r.value.vmId !== "" && r.value.vmId !== id) {
              const q = new Problems();
              q.add("vm_id", "may only be set in the first request");
              q.throwIfAny();
            }
            a.write(r.value.input);
          }
        } catch (e) {
          inputError = e;
        } finally {
          a.close();
        }
      })(first.done ? undefined : first.value);
      try {
        yield create(AttachConsoleResponseSchema, { attached: true });
        for await (const b of a.output) yield create(AttachConsoleResponseSchema, { output: b });
        if (inputError !== undefined && !ctx.signal.aborted) throw inputError;
      } finally {
        ctx.signal.removeEventListener("abort", onAbort);
        a.close();
        void pump;
      }
    },
  };
}

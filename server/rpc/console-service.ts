// ReadConsole: converts the request, streams the console reader's chunks.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { ConsoleReader } from "../console/reader.js";
import { ReadConsoleResponseSchema, type VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

/** The ReadConsole handler of VmmService, over `reader`. */
export function consoleService(reader: ConsoleReader): Pick<ServiceImpl<typeof VmmService>, "readConsole"> {
  return {
    async *readConsole(req, ctx) {
      const chunks = reader.read(
        {
          id: req.id,
          // Above 2^53 the reader reports the field; Number() keeps it above.
          ...(req.offset !== undefined ? { offset: Number(req.offset) } : {}),
          ...(req.tailLines !== undefined ? { tailLines: req.tailLines } : {}),
          instanceId: req.instanceId,
          follow: req.follow,
          maxChunkBytes: req.maxChunkBytes,
        },
        ctx.signal,
      );
      for await (const c of chunks) {
        yield create(ReadConsoleResponseSchema, { instanceId: c.instanceId, offset: BigInt(c.offset), data: c.data, firstOffset: BigInt(c.firstOffset) });
      }
    },
  };
}

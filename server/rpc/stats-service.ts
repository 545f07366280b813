// GetVmStats: validate the id, sample the VM, convert.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Problems } from "../errors.js";
import type { VmStatsSampler } from "../stats/sampler.js";
import { checkId } from "../check.js";
import type { VmView } from "../vm/types.js";
import { GetVmStatsResponseSchema, type VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { statusToProto } from "./convert.js";

/** The GetVmStats handler of VmmService. `get` throws not_found for unknown VMs. */
export function statsService(d: { get(id: string): VmView; sampler: VmStatsSampler }): Pick<ServiceImpl<typeof VmmService>, "getVmStats"> {
  return {
    async getVmStats(req) {
      const p = new Problems();
      checkId(p, "id", req.id);
      p.throwIfAny();
      const s = await d.sampler.sample(d.get(req.id));
      const r = s.reading;
      return create(GetVmStatsResponseSchema, {
        id: s.id,
        status: statusToProto(s.status),
        instanceId: s.instanceId,
        ...(r
          ? {
              sampledAt: timestampFromDate(r.sampledAt),
              cpuPercent: r.cpuPercent,
              cpuWindowSeconds: r.cpuWindowSeconds,
              cpuSeconds: r.cpuSeconds,
              memoryRssBytes: BigInt(r.rssBytes),
              memoryConfiguredBytes: BigInt(r.configuredBytes),
              uptimeSeconds: BigInt(r.uptimeSeconds),
              threads: r.threads,
              nics: r.nics.map((n) => ({
                index: n.index,
                hostInterface: n.hostInterface,
                rxBytes: BigInt(n.rxBytes),
                rxPackets: BigInt(n.rxPackets),
                txBytes: BigInt(n.txBytes),
                txPackets: BigInt(n.txPackets),
              })),
            }
          : {}),
      });
    },
  };
}

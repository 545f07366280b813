// NetworkService handlers: convert, call the network registry, convert back.
import type { ServiceImpl } from "@connectrpc/connect";
import { NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";
import type { NetworkRegistry } from "../vmnet/registry.js";
import type { NetworkRecord, VmAttachments } from "../vmnet/types.js";
import { networkConfigFromProto, networkToProto } from "./convert.js";

/** What NetworkService stands on. */
export interface NetworkServiceDeps {
  networks: NetworkRegistry;
  /** Which VMs use a network (the VM manager). */
  vms: VmAttachments;
}

/** The NetworkService handlers. */
export function networkService(d: NetworkServiceDeps): ServiceImpl<typeof NetworkService> {
  const reg = d.networks;
  const view = (rec: NetworkRecord) => networkToProto(rec, reg.serialize(rec), d.vms.attachedTo(rec.id), reg.status(rec.id));
  return {
    async createNetwork(req) {
      return { network: view(await reg.create(req.name, networkConfigFromProto(req.config))) };
    },
    async getNetwork(req) {
      return { network: view(reg.get(req.id)) };
    },
    async listNetworks(req) {
      const r = reg.list(req.pageSize, req.pageToken);
      return { networks: r.networks.map(view), nextPageToken: r.next };
    },
    async deleteNetwork(req) {
      await reg.delete(req.id, req.force, d.vms);
      return {};
    },
    async acquireNetwork(req) {
      const { rec, holderId } = reg.acquire(req.serialization, req.holderDescription);
      return { network: view(rec), holderId };
    },
    async releaseNetwork(req) {
      reg.release(req.networkId, req.holderId);
      return {};
    },
  };
}

// NetworkService handlers: convert, call the network registry, convert back.
import type { ServiceImpl } from "@connectrpc/connect";
import type { NetworkRegistry } from "../vmnet/registry.js";
import { NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";
import { networkConfigFromProto, networkToProto } from "./convert.js";

export function networkService(reg: NetworkRegistry): ServiceImpl<typeof NetworkService> {
  const view = (rec: ReturnType<NetworkRegistry["get"]>) => networkToProto(rec, reg.serialize(rec), reg.attached(rec.id), reg.status(rec.id));
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
      await reg.delete(req.id, req.force);
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

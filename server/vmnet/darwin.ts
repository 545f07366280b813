// macOS 26 backend of the vmnet layer: the same NetworkBackend contract as
// linux.ts, over vmnet.framework's vmnet_network_* (native/vmnet.ts). The
// daemon is the broker: it holds every vmnet_network_ref, so the API's signed
// serialization (registry.ts) is what other processes present; vmnet's own
// XPC serialization never leaves the daemon. UNVERIFIED (cannot be built or
// run on Linux): see docs/vmnet.md.
import { VmmError } from "../errors.js";
import { intToIpv4, netmaskOf, parseIpv4Cidr } from "../net/addr.js";
import { vmnetNative, type VmnetError, type VmnetNetworkHandle } from "../../native/vmnet.js";
import type { NetworkBackend, NetworkRecord } from "./types.js";

/** vmnet_return_t -> domain error kind (server/rpc/errors.ts maps kinds to codes). */
export function vmnetErrorKind(status: number): VmmError["kind"] {
  switch (status) {
    case 1001: return "internal"; // VMNET_FAILURE
    case 1002: return "exhausted"; // VMNET_MEM_FAILURE
    case 1003: return "invalid"; // VMNET_INVALID_ARGUMENT
    case 1004: return "precondition"; // VMNET_SETUP_INCOMPLETE
    case 1005: return "permission"; // VMNET_INVALID_ACCESS
    case 1006: return "invalid"; // VMNET_PACKET_TOO_BIG
    case 1007: return "exhausted"; // VMNET_BUFFER_EXHAUSTED
    case 1008: return "exhausted"; // VMNET_TOO_MANY_PACKETS
    case 1009: return "unavailable"; // VMNET_SHARING_SERVICE_BUSY
    case 1010: return "permission"; // VMNET_NOT_AUTHORIZED
    default: return "internal";
  }
}

export class DarwinNetworkBackend implements NetworkBackend {
  private readonly nets = new Map<string, VmnetNetworkHandle>();

  async realize(rec: NetworkRecord): Promise<void> {
    if (this.nets.has(rec.id)) return;
    const s = rec.spec;
    const cidr = parseIpv4Cidr(s.ipv4Subnet)!;
    try {
      const handle = vmnetNative().vmnetCreate({
        mode: s.mode,
        subnet: intToIpv4(cidr.network),
        mask: netmaskOf(cidr.prefix),
        ...(s.ipv6Prefix !== "" ? { ipv6Prefix: s.ipv6Prefix.split("/")[0]! } : {}),
        mtu: s.mtu,
        dhcp: s.dhcpEnabled,
        dnsProxy: s.dnsProxyEnabled,
        nat44: s.nat44Enabled,
        nat66: s.nat66Enabled,
        routerAdvertisement: s.routerAdvertisementEnabled,
        ...(s.externalInterface !== "" ? { externalInterface: s.externalInterface } : {}),
        reservations: s.dhcpReservations,
        portForwards: s.portForwards,
      });
      this.nets.set(rec.id, handle);
    } catch (e) {
      const status = (e as VmnetError).vmnetStatus;
      throw new VmmError(status === undefined ? "unsupported" : vmnetErrorKind(status), (e as Error).message, { cause: e });
    }
  }

  /** A datagram fd for a guest NIC with `mac` on the network (QEMU -netdev dgram); the caller owns it. */
  attach(rec: NetworkRecord, mac: string): number {
    const h = this.nets.get(rec.id);
    if (!h) throw new VmmError("precondition", `network "${rec.id}" is not realized on this host`);
    return vmnetNative().vmnetAttach(h, mac);
  }

  async destroy(rec: NetworkRecord): Promise<void> {
    const h = this.nets.get(rec.id);
    if (h) vmnetNative().vmnetRelease(h);
    this.nets.delete(rec.id);
  }
}

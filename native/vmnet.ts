// Typed surface of the darwin vmnet part of the addon (native/src/darwin/
// vmnet.cc). UNVERIFIED: it is built only on macOS 26 and was never compiled
// or run by this project's CI (Linux); see docs/vmnet.md.
import { loadNative } from "./index.js";

/** An opaque vmnet_network_ref held by the addon. */
export type VmnetNetworkHandle = { readonly __vmnet: unique symbol };

/**
 * The vmnet_network_configuration the addon builds (subnet and mask as dotted quads, MTU in bytes);
 * mirrors a network's spec.
 */
export interface VmnetCreateConfig {
  mode: "host" | "shared";
  subnet: string;
  mask: string;
  ipv6Prefix?: string;
  mtu?: number;
  dhcp: boolean;
  dnsProxy: boolean;
  nat44: boolean;
  nat66: boolean;
  routerAdvertisement: boolean;
  externalInterface?: string;
  reservations: { mac: string; ipv4: string }[];
  portForwards: { protocol: "tcp" | "udp"; listenPort: number; internalAddress: string; internalPort: number }[];
}

/** Errors carry the vmnet_return_t; server/vmnet/darwin.ts maps them to domain kinds. */
export interface VmnetError extends Error {
  vmnetStatus: number;
}

interface VmnetNative {
  vmnetCreate(c: VmnetCreateConfig): VmnetNetworkHandle;
  vmnetSubnet(n: VmnetNetworkHandle): { subnet: string; mask: string };
  /** A datagram socket fd relaying the guest's frames; pass to QEMU `-netdev dgram,local.type=fd`. */
  vmnetAttach(n: VmnetNetworkHandle, mac: string): number;
  vmnetRelease(n: VmnetNetworkHandle): void;
}

/** The addon's vmnet surface; throws on any platform but macOS, where it is the only one built. */
export function vmnetNative(): VmnetNative {
  const n = loadNative() as unknown as VmnetNative & { platform: string };
  if (n.platform !== "darwin") throw new Error(`vmnet.framework is only available on macOS (this addon is built for ${n.platform})`);
  return n;
}

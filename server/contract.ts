// What the daemon and its clients must agree on beyond the .proto files:
// the bounds of request fields the daemon enforces and the names of the
// networking modes. One source: the daemon validates against these, and
// vmm-cli checks its flags against the same numbers, so a flag the CLI
// accepts is never refused by the daemon for being out of range (and the
// other way round). A ground-floor module: it imports only the generated
// contract and config/types.ts.
import { NetworkingMode } from "../gen/ts/vmm/v1/vmm_pb.js";
import type { NetMode } from "./config/types.js";

/** GetInfo max_events: at most this many (the events a VM keeps); 0 asks for the default. */
export const MAX_EVENTS = 200;
/** GetInfo max_events when the request leaves it 0. */
export const DEFAULT_EVENTS = 20;

/** StopVm timeout_seconds (and qemu.stop_timeout_seconds): inclusive bounds. */
export const STOP_TIMEOUT_SECONDS = { min: 1, max: 3600 } as const;

/** VmConfig vcpus: at most this many (0 asks for the default). */
export const MAX_VCPUS = 64;
/** VmConfig memory_mib: inclusive bounds (0 asks for the default). */
export const MEMORY_MIB = { min: 32, max: 1024 * 1024 } as const;

/** List page_size: at most this many (0 asks for the default). */
export const MAX_PAGE_SIZE = 1000;

/** Each networking mode's name (vmm.toml, the CLI, the domain) and its proto enum value. */
export const NETWORKING_MODES: Readonly<Record<NetMode, NetworkingMode>> = {
  user: NetworkingMode.USER,
  passt: NetworkingMode.PASST,
  bridge: NetworkingMode.BRIDGE,
  tap: NetworkingMode.TAP,
  macvtap: NetworkingMode.MACVTAP,
  vmnet: NetworkingMode.VMNET,
  custom: NetworkingMode.CUSTOM,
};

/** The mode name of a proto enum value; undefined for UNSPECIFIED and for values this build does not know. */
export function modeName(m: NetworkingMode): NetMode | undefined {
  return (Object.keys(NETWORKING_MODES) as NetMode[]).find((k) => NETWORKING_MODES[k] === m);
}

// Formatting for the page; shared with vmm-cli where the forms are the same.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { NetworkingMode, Protocol, VmStatus } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode } from "../../../gen/ts/vmm/v1/network_pb.js";
import { enumName } from "../../cli/format.js";

export { formatBytes, formatDuration, formatExpiry, hostPort } from "../../cli/format.js";

/** "running", "stopped", ... */
export const statusName = (s: VmStatus): string => enumName(VmStatus, s);
/** "user", "vmnet", ... */
export const modeName = (m: NetworkingMode): string => enumName(NetworkingMode, m);
/** "tcp" or "udp" */
export const protocolName = (p: Protocol): string => enumName(Protocol, p);
/** "host" or "shared" */
export const networkModeName = (m: NetworkMode): string => enumName(NetworkMode, m);

/** Local time of day for today's timestamps, else the local date and time. */
export function formatWhen(t: Timestamp | undefined, now = new Date()): string {
  if (!t) return "-";
  const d = timestampDate(t);
  const time = d.toLocaleTimeString(undefined, { hour12: false });
  return d.toDateString() === now.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

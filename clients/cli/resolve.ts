// VMs and networks are named on the command line by id or by name. An exact
// id wins (ids are what the daemon keys on); otherwise the name must match
// exactly one VM (or network). Unknown handles are not_found, like the
// daemon's own answer for an unknown id, so scripts see one kind of error.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Session } from "./session.js";

/** VM ids: what the daemon accepts (server/vm/validate.ts ID_RE). */
const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The id of the VM named `handle` (an id or a name). */
export async function resolveVm(s: Session, handle: string): Promise<string> {
  if (ID_RE.test(handle)) {
    const byId = await s.vmm().listVms({ ids: [handle], brief: true, pageSize: 1 });
    if (byId.vms.length > 0) return handle;
  }
  const byName = await s.vmm().listVms({ names: [handle], brief: true, pageSize: 2 });
  if (byName.vms.length === 1) return byName.vms[0]!.id;
  if (byName.vms.length > 1) throw new ConnectError(`VM name "${handle}" is ambiguous (ids ${byName.vms.map((v) => v.id).join(", ")}); use an id`, Code.FailedPrecondition);
  throw new ConnectError(`no VM with id or name "${handle}"`, Code.NotFound);
}

/** The id of the network named `handle` (an id or a name). */
export async function resolveNetwork(s: Session, handle: string): Promise<string> {
  const matches: string[] = [];
  let pageToken = "";
  do {
    const r = await s.net().listNetworks({ pageToken });
    for (const n of r.networks) {
      if (n.id === handle) return n.id;
      if (n.name === handle) matches.push(n.id);
    }
    pageToken = r.nextPageToken;
  } while (pageToken !== "");
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new ConnectError(`network name "${handle}" is ambiguous (ids ${matches.join(", ")}); use an id`, Code.FailedPrecondition);
  throw new ConnectError(`no network with id or name "${handle}"`, Code.NotFound);
}

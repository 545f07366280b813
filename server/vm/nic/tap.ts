// tap mode: the daemon opens a TAP itself (native addon), enslaves it to the
// bridge and hands QEMU the fd. vmnet networks on Linux use the same path
// with the network's bridge (vmnet.ts).
import { createHash } from "node:crypto";
import { precondition } from "../../errors.js";
import type { NicContext, NicHost, NicPreparer, PreparedNic } from "./types.js";

/** Short, stable interface name for NIC `nic` of VM `id` (IFNAMSIZ is 16): "vt" TAPs, "vm" macvtaps. */
export function hostIfName(prefix: "vt" | "vm", id: string, nic: number): string {
  return `${prefix}${createHash("sha256").update(id).digest("hex").slice(0, 10)}n${nic}`;
}

/**
 * Opens a TAP for the NIC of `ctx` on `bridge` and returns it as a NIC of
 * `mode`. `what` names the bridge in the error when it does not exist.
 */
export async function tapOnBridge(ctx: NicContext, host: NicHost, bridge: string, mode: "tap" | "vmnet", what: string): Promise<PreparedNic> {
  if (!(await host.linkExists(bridge))) throw precondition(`${what}: bridge ${bridge} does not exist on this host`);
  const name = hostIfName("vt", ctx.vmId, ctx.index);
  await host.deleteLink(name); // a leftover of a crashed run
  // SAFETY: openTap returns an fd we own. It goes to QEMU through the
  // runner (dup'ed at spawn, our copy closed right after), or is closed here
  // if enslaving fails. The TAP is not persistent: it disappears with the
  // last fd, i.e. with QEMU.
  const fd = host.openTap(name);
  try {
    await host.addToBridge(name, bridge);
  } catch (e) {
    host.closeFd(fd);
    throw e;
  }
  return {
    qemu: { mode, mac: ctx.mac, fd: ctx.firstChildFd, vnetHdr: true },
    fds: [fd],
    hostInterface: name,
    undo: { what: `delete TAP ${name}`, run: () => host.deleteLink(name) },
  };
}

/** Prepares a tap-mode NIC on its bridge. */
export const prepareTap: NicPreparer = (ctx, host) => tapOnBridge(ctx, host, ctx.nic.bridge!, "tap", `config.nics[${ctx.index}].bridge`);

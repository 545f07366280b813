// macvtap mode: the daemon creates a macvtap on the parent device with the
// guest's MAC (they must be equal), opens /dev/tapN and hands QEMU the fd.
// Unlike a TAP the macvtap link persists: undo deletes it.
import { hostIfName } from "./tap.js";
import type { NicPreparer } from "./types.js";

/** Prepares a macvtap NIC. */
export const prepareMacvtap: NicPreparer = async (ctx, host) => {
  const name = hostIfName("vm", ctx.vmId, ctx.index);
  await host.deleteLink(name); // a leftover of a crashed run
  const ifindex = await host.createMacvtap(name, ctx.nic.macvtapParent!, ctx.mac);
  const undo = { what: `delete macvtap ${name}`, run: () => host.deleteLink(name) };
  let fd: number;
  try {
    // SAFETY: as for TAPs: our fd, dup'ed into QEMU at spawn and our copy
    // closed by the runner right after.
    fd = host.openMacvtap(ifindex);
  } catch (e) {
    await Promise.resolve(undo.run()).catch(() => undefined); // the open's error is the one to report
    throw e;
  }
  return { qemu: { mode: "macvtap", mac: ctx.mac, fd: ctx.firstChildFd, vnetHdr: true }, fds: [fd], hostInterface: name, undo };
};

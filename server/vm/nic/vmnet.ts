// vmnet mode: the NIC joins a network of the vmnet layer. The network says
// how (NetworkAttacher, wired by daemon.ts): on Linux through its bridge (a
// TAP, as in tap mode), on macOS through a datagram socket fd that the
// backend relays vmnet.framework's frames on (-netdev dgram).
import { precondition } from "../../errors.js";
import { tapOnBridge } from "./tap.js";
import type { NicPreparer } from "./types.js";

/** Prepares a vmnet NIC on its network. */
export const prepareVmnet: NicPreparer = async (ctx, host) => {
  const at = `config.nics[${ctx.index}].network_id`;
  const via = host.networkAttachment(ctx.nic.networkId!, ctx.mac);
  if (!via) throw precondition(`${at}: network ${ctx.nic.networkId} does not exist`);
  if ("fd" in via) {
    // SAFETY: the backend handed us this fd and we own it now; like a TAP
    // fd it is dup'ed into QEMU at spawn and our copy closed by the runner.
    return { qemu: { mode: "dgram", mac: ctx.mac, fd: ctx.firstChildFd }, fds: [via.fd], hostInterface: "" };
  }
  return tapOnBridge(ctx, host, via.bridge, "vmnet", at);
};

// bridge mode: QEMU's qemu-bridge-helper creates the TAP and attaches it to
// the bridge (allowed in /etc/qemu/bridge.conf); the TAP lives and dies with
// QEMU. The daemon only checks that the bridge exists.
import { precondition } from "../../errors.js";
import type { NicPreparer } from "./types.js";

/** Prepares a bridge-mode NIC (the helper does the host side). */
export const prepareBridge: NicPreparer = async (ctx, host) => {
  const bridge = ctx.nic.bridge!;
  if (!(await host.linkExists(bridge))) throw precondition(`config.nics[${ctx.index}].bridge: bridge ${bridge} does not exist on this host`);
  return { qemu: { mode: "bridge", mac: ctx.mac, bridge, helper: host.bridgeHelper }, fds: [], hostInterface: "" };
};

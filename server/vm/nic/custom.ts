// custom mode: the operator's netdev value, verbatim (validate.ts parsed it
// against the netdev grammar); the daemon adds only the netdev id.
import type { NicPreparer } from "./types.js";

/** Prepares a custom NIC (no host side). */
export const prepareCustom: NicPreparer = async (ctx) => ({
  qemu: { mode: "custom", mac: ctx.mac, netdev: ctx.nic.customNetdev! },
  fds: [],
  hostInterface: "",
});

// user mode: QEMU's own slirp; the NIC's ports become hostfwd rules. Nothing
// is created on the host.
import type { NicPreparer } from "./types.js";

/** Prepares a user-mode NIC (no host side). */
export const prepareUser: NicPreparer = async (ctx) => ({
  qemu: {
    mode: "user",
    mac: ctx.mac,
    forwards: ctx.ports.map((p) => ({ protocol: p.protocol, hostAddress: p.hostAddress, hostPort: p.hostPort, guestPort: p.vmPort })),
  },
  fds: [],
  hostInterface: "",
});

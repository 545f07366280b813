// passt mode: a passt process per VM, serving QEMU over a unix socket in the
// VM's run directory and mapping the NIC's ports (validation keeps passt on
// NIC 0). Undo: stop that process.
import type { NicPreparer } from "./types.js";

/** Prepares a passt NIC: starts passt and points QEMU at its socket. */
export const preparePasst: NicPreparer = async (ctx, host) => {
  const ref = await host.startPasst(ctx.files, ctx.ports);
  return {
    qemu: { mode: "passt", mac: ctx.mac, socketPath: ctx.files.passtSock },
    fds: [],
    hostInterface: "",
    process: ref,
    undo: { what: `stop passt (pid ${ref.pid})`, run: () => host.stopProcess(ref) },
  };
};

// The terminal side of `vmm-cli console`: the detach key and the process's
// own terminal. Ctrl-] detaches, as in telnet and virsh console; every other
// byte (Ctrl-C included, in raw mode) goes to the guest.
import type { Terminal } from "./session.js";

/** Ctrl-] (GS, 0x1d). */
export const DETACH_KEY = 0x1d;
export const DETACH_KEY_NAME = "Ctrl-]";

/** The bytes before the detach key, and whether it was pressed. Pure. */
export function splitAtDetach(b: Buffer): { before: Buffer; detached: boolean } {
  const i = b.indexOf(DETACH_KEY);
  return i < 0 ? { before: b, detached: false } : { before: b.subarray(0, i), detached: true };
}

/** process.stdin / process.stdout as a Terminal. */
export function processTerminal(): Terminal {
  const stdin = process.stdin;
  return {
    isTTY: stdin.isTTY === true,
    setRaw(raw) {
      if (stdin.isTTY) stdin.setRawMode(raw);
    },
    onData(cb) {
      stdin.on("data", cb);
      stdin.resume();
      return () => {
        stdin.off("data", cb);
        stdin.pause();
      };
    },
    onEnd(cb) {
      stdin.on("end", cb);
      return () => stdin.off("end", cb);
    },
    write(b) {
      process.stdout.write(b);
    },
  };
}

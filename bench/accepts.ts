// One TCP connect to 127.0.0.1:<port>: whether a listener accepted it.
// Shared by bench/lease.ts and its "live" clock, bench/live-probe.ts.
import { connect } from "node:net";

/** Resolves true when a connect to 127.0.0.1:`port` succeeds (then closes it), false on any error. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      res(true);
    });
    s.once("error", () => res(false));
  });
}

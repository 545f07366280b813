// One WatchEvents stream for the whole page, reopened with a backoff when
// it breaks. Every (re)subscription is announced as a resync (vmId ""), so
// views reload what they may have missed while the stream was down.
import type { VmEvent } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { isCanceled, type Api } from "./api.js";

export type Listener = (vmId: string, event: VmEvent | undefined) => void;
export type StreamState = "connecting" | "live" | "down";

export class EventHub {
  private readonly listeners = new Set<Listener>();
  private ctl: AbortController | undefined;
  private state: StreamState = "connecting";
  onState: (s: StreamState) => void = () => undefined;

  constructor(private readonly api: Api) {}

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get current(): StreamState {
    return this.state;
  }

  private set(s: StreamState): void {
    this.state = s;
    this.onState(s);
  }

  start(): void {
    if (this.ctl) return;
    const ctl = (this.ctl = new AbortController());
    void (async () => {
      let backoff = 500;
      while (!ctl.signal.aborted) {
        this.set("connecting");
        try {
          for await (const r of this.api.vmm.watchEvents({}, { signal: ctl.signal })) {
            if (r.subscribed) {
              backoff = 500;
              this.set("live");
              this.emit("", undefined);
              continue;
            }
            this.emit(r.vmId, r.event);
          }
        } catch (e) {
          if (ctl.signal.aborted || isCanceled(e)) break;
        }
        if (ctl.signal.aborted) break;
        this.set("down");
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    })();
  }

  stop(): void {
    this.ctl?.abort();
    this.ctl = undefined;
  }

  private emit(vmId: string, ev: VmEvent | undefined): void {
    for (const fn of this.listeners) fn(vmId, ev);
  }
}

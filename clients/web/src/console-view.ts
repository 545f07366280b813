// A VM's serial console, followed live (ReadConsole with follow, from the
// last lines), across restarts; reconnects when the stream breaks, resuming
// at the offset it got to.
import { isCanceled, errorText, type Api } from "./api.js";
import { ConsoleText } from "./console-text.js";
import { h } from "./dom.js";

const TAIL_LINES = 1000;

export class ConsoleView {
  readonly el: HTMLElement;
  private readonly pre: HTMLPreElement;
  private readonly state: HTMLElement;
  private ctl: AbortController | undefined;

  constructor(private readonly api: Api) {
    this.pre = h("pre", { class: "console", "aria-label": "serial console", tabindex: 0 });
    this.state = h("span", { class: "console-state" });
    this.el = h("div", { class: "console-box" }, h("div", { class: "console-head" }, h("span", {}, "Serial console"), this.state), this.pre);
  }

  /** Follows VM `id` (stops following the previous one). */
  show(id: string): void {
    this.stop();
    const ctl = (this.ctl = new AbortController());
    const text = new ConsoleText();
    // One text node, grown in place (a node per message would pile up).
    const node = document.createTextNode("");
    this.pre.replaceChildren(node);
    void (async () => {
      let resume: { instanceId: string; offset: bigint } | undefined;
      let backoff = 500;
      while (!ctl.signal.aborted) {
        this.state.textContent = "connecting";
        try {
          const req = resume ? { id, follow: true, instanceId: resume.instanceId, offset: resume.offset } : { id, follow: true, tailLines: TAIL_LINES };
          for await (const m of this.api.vmm.readConsole(req, { signal: ctl.signal })) {
            this.state.textContent = "live";
            backoff = 500;
            resume = { instanceId: m.instanceId, offset: m.offset + BigInt(m.data.length) };
            const atBottom = this.pre.scrollHeight - this.pre.scrollTop - this.pre.clientHeight < 40;
            const r = text.push(m.instanceId, m.data);
            if (r.reset) node.data = text.text;
            else if (r.append !== "") node.appendData(r.append);
            if (atBottom) this.pre.scrollTop = this.pre.scrollHeight;
          }
          // The stream ended on its own: the VM was removed.
          this.state.textContent = "ended";
          return;
        } catch (e) {
          if (ctl.signal.aborted || isCanceled(e)) return;
          this.state.textContent = `disconnected (${errorText(e)})`;
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    })();
  }

  stop(): void {
    this.ctl?.abort();
    this.ctl = undefined;
  }
}

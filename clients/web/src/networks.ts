// Networks of the vmnet layer: the list (reloaded with VM events, after
// changes and every few seconds: networks have no event stream of their
// own), a form to create one, and delete buttons.
import { NetworkMode, type Network } from "../../../gen/ts/vmm/v1/network_pb.js";
import { allPages, errorText, type Api } from "./api.js";
import { busy, confirmButton, h, replace } from "./dom.js";
import type { EventHub } from "./events.js";
import { networkModeName } from "./format.js";

const POLL_MS = 5000;

export class NetworkPanel {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private readonly count: HTMLElement;
  private networks: Network[] = [];
  private timer: number | undefined;
  /** Each network's row as last drawn, and what it showed: unchanged rows are kept (an armed "Really?" with them). */
  private rows = new Map<string, { shown: string; el: HTMLElement }>();

  constructor(
    private readonly api: Api,
    hub: EventHub,
    private readonly onError: (msg: string) => void,
  ) {
    this.count = h("span", { class: "count" });
    this.body = h("div", {});
    this.el = h("section", { class: "panel" }, h("h2", {}, "Networks ", this.count), this.body, this.form());
    hub.on(() => this.soon());
    window.setInterval(() => {
      if (document.visibilityState === "visible") void this.refresh();
    }, POLL_MS);
  }

  soon(): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.refresh(), 300);
  }

  async refresh(): Promise<void> {
    try {
      this.networks = await allPages(async (pageToken) => {
        const r = await this.api.net.listNetworks({ pageToken, pageSize: 1000 });
        return { items: r.networks, next: r.nextPageToken };
      });
      this.render();
    } catch (e) {
      this.onError(`listing networks: ${errorText(e)}`);
    }
  }

  private render(): void {
    this.count.textContent = String(this.networks.length);
    if (this.networks.length === 0) {
      this.rows.clear();
      replace(this.body, h("p", { class: "empty" }, "No networks."));
      return;
    }
    const rows = new Map<string, { shown: string; el: HTMLElement }>();
    for (const n of this.networks) {
      const meta = [n.config?.ipv4Subnet, n.bridge, `${n.attachedVmIds.length} VM${n.attachedVmIds.length === 1 ? "" : "s"}`].filter((x) => x).join(" · ");
      const mode = networkModeName(n.config?.mode ?? NetworkMode.UNSPECIFIED);
      const shown = JSON.stringify([n.name, mode, meta]);
      const kept = this.rows.get(n.id);
      rows.set(n.id, kept && kept.shown === shown ? kept : { shown, el: this.row(n, mode, meta) });
    }
    const list = this.body.querySelector("ul.net-list");
    const els = [...rows.values()].map((r) => r.el);
    this.rows = rows;
    // The same rows in the same order: leave the list as it is.
    if (list && list.children.length === els.length && els.every((el, i) => list.children[i] === el)) return;
    replace(this.body, h("ul", { class: "net-list", "aria-label": "networks" }, ...els));
  }

  private row(n: Network, mode: string, meta: string): HTMLElement {
    return h(
      "li",
      { "data-network": n.name },
      h("span", { class: "name", title: n.id }, n.name),
      h("span", { class: "mode" }, mode),
      confirmButton(
        "Delete",
        "Really?",
        async () => {
          try {
            await this.api.net.deleteNetwork({ id: n.id });
          } catch (e) {
            this.onError(`deleting network ${n.name}: ${errorText(e)}`);
          }
          await this.refresh();
        },
        { class: "small danger", "data-action": "delete-network", "data-network": n.name },
      ),
      h("span", { class: "meta" }, meta),
    );
  }

  private form(): HTMLElement {
    const name = h("input", { name: "name", required: true, maxlength: 63, placeholder: "name", "aria-label": "network name" });
    const mode = h("select", { name: "mode", "aria-label": "network mode" }, h("option", { value: "host" }, "host"), h("option", { value: "shared" }, "shared (NAT)"));
    const subnet = h("input", { name: "subnet", placeholder: "subnet (optional), e.g. 10.30.0.0/24", "aria-label": "IPv4 subnet" });
    const submit = h("button", { type: "submit" }, "Create network");
    const form = h("form", { class: "inline-form", "aria-label": "create network" }, name, mode, subnet, submit);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void busy(submit, async () => {
        try {
          await this.api.net.createNetwork({
            name: name.value.trim(),
            config: { mode: mode.value === "shared" ? NetworkMode.SHARED : NetworkMode.HOST, ipv4Subnet: subnet.value.trim() },
          });
          form.reset();
        } catch (e) {
          this.onError(`creating network: ${errorText(e)}`);
        }
        await this.refresh();
      });
    });
    return form;
  }
}

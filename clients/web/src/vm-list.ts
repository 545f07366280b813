// The list of VMs: one row each with status, name, id and address; live
// through the event hub (a burst of events reloads the list once).
import { VmStatus, type VmInfo } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { allPages, errorText, type Api } from "./api.js";
import { h, replace } from "./dom.js";
import type { EventHub } from "./events.js";
import { modeName, statusName } from "./format.js";

export class VmList {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly count: HTMLElement;
  private vms: VmInfo[] = [];
  private selected = "";
  private timer: number | undefined;

  constructor(
    private readonly api: Api,
    hub: EventHub,
    private readonly onError: (msg: string) => void,
  ) {
    this.count = h("span", { class: "count" });
    this.list = h("ul", { class: "vm-list", "aria-label": "virtual machines" });
    this.el = h("section", { class: "panel" }, h("h2", {}, "Virtual machines ", this.count), this.list);
    hub.on(() => this.soon());
  }

  /** Reloads after a short pause, so a burst of events costs one call. */
  soon(): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.refresh(), 150);
  }

  select(id: string): void {
    this.selected = id;
    this.render();
  }

  /** The VM with `id` as last listed. */
  get(id: string): VmInfo | undefined {
    return this.vms.find((v) => v.id === id);
  }

  async refresh(): Promise<void> {
    try {
      this.vms = await allPages(async (pageToken) => {
        const r = await this.api.vmm.listVms({ brief: true, pageToken, pageSize: 1000 });
        return { items: r.vms, next: r.nextPageToken };
      });
      this.render();
    } catch (e) {
      this.onError(`listing VMs: ${errorText(e)}`);
    }
  }

  private render(): void {
    const running = this.vms.filter((v) => v.status === VmStatus.RUNNING).length;
    this.count.textContent = `${this.vms.length} · ${running} running`;
    if (this.vms.length === 0) {
      replace(this.list, h("li", { class: "empty" }, "No VMs yet. Create them with vmm-cli or the API."));
      return;
    }
    replace(
      this.list,
      ...this.vms.map((v) => {
        const ip = v.nics.map((n) => n.lease?.ip).find((x) => x);
        return h(
          "li",
          { class: v.id === this.selected ? "selected" : "" },
          h(
            "a",
            { href: `#/vm/${encodeURIComponent(v.id)}`, "data-vm": v.id },
            h("span", { class: `dot ${statusName(v.status)}`, title: statusName(v.status) }),
            h("span", { class: "name" }, v.name),
            h("span", { class: `status ${statusName(v.status)}`, "data-status": statusName(v.status) }, statusName(v.status)),
            h("span", { class: "meta" }, v.id, " · ", v.nics.map((n) => modeName(n.mode)).join(", ") || "no NIC", ip ? ` · ${ip}` : ""),
          ),
        );
      }),
    );
  }
}

// One VM: status and actions (start, stop, force stop, remove), resource
// use (GetVmStats), NICs with their lease and traffic, forwards with live
// counters, events as they happen, and the serial console.
import { Code, ConnectError } from "@connectrpc/connect";
import { VmStatus, type GetVmStatsResponse, type VmEvent, type VmInfo } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { errorText, type Api } from "./api.js";
import { ConsoleView } from "./console-view.js";
import { busy, confirmButton, h, replace, table } from "./dom.js";
import type { EventHub } from "./events.js";
import { formatBytes, formatDuration, formatExpiry, formatWhen, hostPort, modeName, protocolName, statusName } from "./format.js";

const POLL_MS = 2000;
const MAX_EVENTS = 100;

export class VmDetail {
  readonly el: HTMLElement;
  private readonly head: HTMLElement;
  private readonly actions: HTMLElement;
  private readonly overview: HTMLElement;
  private readonly nics: HTMLElement;
  private readonly forwards: HTMLElement;
  private readonly eventList: HTMLElement;
  private readonly console: ConsoleView;
  private id = "";
  private info: VmInfo | undefined;
  private stats: GetVmStatsResponse | undefined;
  private events: VmEvent[] = [];
  private poll: number | undefined;
  private loading = false;
  private again = false;

  constructor(
    private readonly api: Api,
    hub: EventHub,
    private readonly onError: (msg: string) => void,
  ) {
    this.head = h("div", { class: "vm-head" });
    this.actions = h("div", { class: "actions" });
    this.overview = h("div", { class: "overview" });
    this.nics = h("div", {});
    this.forwards = h("div", {});
    this.eventList = h("ol", { class: "events", "aria-label": "events" });
    this.console = new ConsoleView(api);
    this.el = h(
      "div",
      { class: "vm-detail" },
      h("div", { class: "vm-title" }, this.head, this.actions),
      this.overview,
      h("section", { class: "card" }, h("h3", {}, "NICs"), this.nics),
      h("section", { class: "card" }, h("h3", {}, "Forwards"), this.forwards),
      h("div", { class: "grid2 wide-left" }, h("section", { class: "card" }, this.console.el), h("section", { class: "card" }, h("h3", {}, "Events"), this.eventList)),
    );
    hub.on((vmId, ev) => {
      if (this.id === "" || (vmId !== "" && vmId !== this.id)) return;
      if (ev) {
        this.events.push(ev);
        if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
        this.renderEvents();
        if (ev.kind === "removed") return this.gone();
      }
      void this.load();
    });
  }

  /** Shows VM `id` (and stops showing the previous one). */
  show(id: string): void {
    this.hide();
    this.id = id;
    this.info = undefined;
    this.stats = undefined;
    this.events = [];
    replace(this.head, h("h2", {}, id));
    for (const el of [this.actions, this.overview, this.nics, this.forwards, this.eventList]) el.replaceChildren();
    this.console.show(id);
    void this.load(true);
    this.poll = window.setInterval(() => {
      if (document.visibilityState === "visible") void this.load();
    }, POLL_MS);
  }

  hide(): void {
    window.clearInterval(this.poll);
    this.console.stop();
    this.id = "";
  }

  private gone(): void {
    const id = this.id;
    this.hide();
    replace(this.head, h("h2", {}, id), h("span", { class: "status removed" }, "removed"));
    this.actions.replaceChildren();
  }

  private async load(first = false): Promise<void> {
    if (this.id === "") return;
    if (this.loading) {
      // Something changed while a load was under way: load once more after it.
      this.again = true;
      return;
    }
    this.loading = true;
    const id = this.id;
    try {
      const info = (await this.api.vmm.getInfo({ id, maxEvents: first ? 50 : 1 })).vm;
      const stats = info?.status === VmStatus.RUNNING ? await this.api.vmm.getVmStats({ id }).catch(() => undefined) : undefined;
      if (id !== this.id || !info) return;
      this.info = info;
      this.stats = stats;
      if (first) this.events = [...info.events];
      this.render();
    } catch (e) {
      if (id !== this.id) return;
      if (ConnectError.from(e).code === Code.NotFound) return this.gone();
      this.onError(`loading ${id}: ${errorText(e)}`);
    } finally {
      this.loading = false;
      if (this.again && id === this.id) {
        this.again = false;
        void this.load();
      }
    }
  }

  private render(): void {
    const v = this.info!;
    const st = statusName(v.status);
    replace(this.head, h("h2", {}, v.name), h("span", { class: `status ${st}`, "data-status": st, id: "vm-status" }, st));
    this.renderActions(v);
    const s = this.stats?.sampledAt ? this.stats : undefined;
    const cfg = v.config;
    const field = (k: string, val: string) => h("div", { class: "field" }, h("span", { class: "k" }, k), h("span", { class: "v" }, val));
    replace(
      this.overview,
      field("ID", v.id),
      field("Uptime", v.status === VmStatus.RUNNING ? formatDuration(v.uptimeSeconds) : "-"),
      field("CPU", s ? `${s.cpuPercent.toFixed(1)} %` : "-"),
      field("Memory", s ? `${formatBytes(s.memoryRssBytes)} of ${formatBytes(s.memoryConfiguredBytes)}` : cfg ? `${cfg.memoryMib} MiB` : "-"),
      field("vCPUs", cfg ? String(cfg.vcpus) : "-"),
      field("PID", v.pid ? String(v.pid) : "-"),
      field("Instance", v.instanceId || "-"),
      field("Created", formatWhen(v.createdAt)),
    );
    replace(
      this.nics,
      table(
        "nics",
        ["#", "Mode", "MAC", "Attached to", "Lease", "Received", "Sent"],
        v.nics.map((n) => {
          const c = s?.nics.find((x) => x.index === n.index && x.hostInterface !== "");
          return [
            String(n.index),
            modeName(n.mode),
            h("code", {}, n.mac),
            [n.bridge, n.networkId, n.hostInterface].filter((x) => x).join(" · ") || "-",
            n.lease ? h("span", { title: `expires ${formatExpiry(n.lease.expiresAt)}` }, `${n.lease.ip}${n.lease.hostname ? ` (${n.lease.hostname})` : ""}`) : "-",
            c ? `${formatBytes(c.rxBytes)} · ${c.rxPackets} p` : "-",
            c ? `${formatBytes(c.txBytes)} · ${c.txPackets} p` : "-",
          ];
        }),
        "No NICs.",
      ),
    );
    replace(
      this.forwards,
      table(
        "forwards",
        ["Listen", "Target", "Relay", "Active", "Total", "To guest", "From guest", "Errors"],
        v.forwards.map((f) => [
          `${hostPort(f.listenAddress, f.listenPort)}/${protocolName(f.protocol)}`,
          hostPort(f.targetAddress, f.targetPort),
          f.relay,
          String((f.counters?.connectionsActive ?? 0n) + (f.counters?.sessionsActive ?? 0n)),
          String(f.counters?.connectionsTotal ?? 0n),
          formatBytes(f.counters?.bytesToGuest ?? 0n),
          formatBytes(f.counters?.bytesFromGuest ?? 0n),
          String(f.counters?.errors ?? 0n),
        ]),
        v.status === VmStatus.RUNNING ? "No forwards active." : "No forwards (the VM is not running).",
      ),
    );
    this.renderEvents();
  }

  /** What the action buttons were last drawn for (VM and status). */
  private actionsFor = "";

  /**
   * The buttons depend on the VM's status only, and are drawn again only
   * when it changes: a poll or an event must not disarm a "Really remove?"
   * the user is about to click.
   */
  private renderActions(v: VmInfo): void {
    const key = `${v.id}:${v.status}`;
    if (key === this.actionsFor && this.actions.childElementCount > 0) return;
    this.actionsFor = key;
    const act = (label: string, what: string, fn: () => Promise<unknown>, cls = "") => {
      const b = h("button", { type: "button", class: cls, "data-action": what }, label);
      b.addEventListener("click", () => void busy(b, () => this.run(what, fn)));
      return b;
    };
    const live = v.status === VmStatus.RUNNING || v.status === VmStatus.STARTING;
    replace(
      this.actions,
      !live && v.status !== VmStatus.STOPPING && act("Start", "start", () => this.api.vmm.startVm({ id: v.id }), "primary"),
      live && act("Stop", "stop", () => this.api.vmm.stopVm({ id: v.id })),
      (live || v.status === VmStatus.STOPPING) && act("Force stop", "force-stop", () => this.api.vmm.stopVm({ id: v.id, force: true })),
      confirmButton("Remove", "Really remove?", () => this.run("remove", () => this.api.vmm.removeVm({ id: v.id, force: true })), { class: "danger", "data-action": "remove" }),
    );
  }

  private async run(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
      if (what === "remove") location.hash = "#/";
    } catch (e) {
      this.onError(`${what}: ${errorText(e)}`);
    }
    await this.load();
  }

  private renderEvents(): void {
    replace(
      this.eventList,
      ...[...this.events].reverse().map((e) => h("li", {}, h("time", {}, formatWhen(e.time)), h("span", { class: `kind ${e.kind}` }, e.kind), h("span", { class: "msg" }, e.message))),
    );
  }
}

// The web console's entry point: asks for a token when the daemon wants
// one, then lays out the VM list, the networks and the selected VM, all
// kept live by one WatchEvents stream. Routing is the URL hash: #/vm/<id>.
import { Code, ConnectError } from "@connectrpc/connect";
import type { GetMetaResponse } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { Api, errorText } from "./api.js";
import { h, replace } from "./dom.js";
import { EventHub } from "./events.js";
import { NetworkPanel } from "./networks.js";
import { VmDetail } from "./vm-detail.js";
import { VmList } from "./vm-list.js";

const app = document.getElementById("app")!;
const api = new Api();

/** Fetches the daemon's metadata; undefined when it wants a (different) token. */
async function meta(): Promise<GetMetaResponse | undefined> {
  try {
    return await api.vmm.getMeta({});
  } catch (e) {
    if (ConnectError.from(e).code === Code.Unauthenticated) return undefined;
    throw e;
  }
}

function login(message = ""): void {
  const token = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true, "aria-label": "token", placeholder: "admin token" });
  const err = h("p", { class: "error", role: "alert" }, message);
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "login", "aria-label": "sign in" },
    h("h1", {}, "vmm"),
    h("p", {}, "This daemon requires a bearer token ([auth] tokens in vmm.toml)."),
    token,
    submit,
    err,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    api.setToken(token.value.trim());
    void meta()
      .then((m) => {
        if (m) return start(m);
        api.setToken(undefined);
        err.textContent = "The daemon refused this token.";
      })
      .catch((e: unknown) => (err.textContent = errorText(e)))
      .finally(() => (submit.disabled = false));
  });
  replace(app, h("div", { class: "login-wrap" }, form));
  token.focus();
}

let hub: EventHub | undefined;

function start(m: GetMetaResponse): void {
  hub?.stop();
  const events = (hub = new EventHub(api));
  const banner = h("div", { class: "banner", role: "alert", hidden: true });
  const showError = (msg: string) => {
    replace(banner, h("span", {}, msg), h("button", { type: "button", class: "small", onclick: () => (banner.hidden = true) }, "Dismiss"));
    banner.hidden = false;
  };
  const live = h("span", { class: "live connecting" }, "connecting");
  events.onState = (s) => {
    live.className = `live ${s}`;
    live.textContent = s === "live" ? "live" : s === "down" ? "reconnecting" : "connecting";
  };
  const list = new VmList(api, events, showError);
  const nets = new NetworkPanel(api, events, showError);
  const detail = new VmDetail(api, events, showError);
  const placeholder = h("div", { class: "placeholder" }, h("p", {}, "Select a VM to see its NICs, forwards, events and console."));
  const main = h("main", { class: "detail" }, placeholder);
  const logout = m.authRequired
    ? h("button", { type: "button", class: "small", onclick: () => (events.stop(), detail.hide(), api.setToken(undefined), login()) }, "Sign out")
    : false;
  replace(
    app,
    h("header", { class: "top" }, h("span", { class: "brand" }, "vmm"), h("span", { class: "version" }, `vmmd ${m.version} · QEMU ${m.qemuVersion || "not found"} · ${m.platform}`), live, logout),
    banner,
    h("div", { class: "layout" }, h("aside", { class: "side" }, list.el, nets.el), main),
  );
  const route = () => {
    const hit = /^#\/vm\/(.+)$/.exec(location.hash);
    const id = hit ? decodeURIComponent(hit[1]!) : "";
    list.select(id);
    document.body.classList.toggle("has-selection", id !== "");
    if (id === "") {
      detail.hide();
      replace(main, placeholder);
    } else {
      replace(main, h("a", { href: "#/", class: "back" }, "← All VMs"), detail.el);
      detail.show(id);
    }
  };
  window.onhashchange = route;
  api.onUnauthenticated = () => {
    events.stop();
    detail.hide();
    api.setToken(undefined);
    login("The daemon no longer accepts the token; sign in again.");
  };
  void list.refresh();
  void nets.refresh();
  events.start();
  route();
}

void meta()
  .then((m) => (m ? start(m) : login(api.token ? "The daemon refused the stored token." : "")))
  .catch((e: unknown) => replace(app, h("p", { class: "error" }, `Cannot reach vmmd: ${errorText(e)}`)));

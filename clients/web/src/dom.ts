// A few DOM helpers. Text always goes in through textContent (never
// innerHTML): VM names, event messages and console output are data, and
// the page's CSP allows no inline script anyway.

type Child = Node | string | number | false | null | undefined;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

/** Creates an element: attributes ("on*" keys are listeners, booleans toggle), then children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

/** Appends children, strings as text nodes; false/null/undefined are skipped. */
export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    el.append(typeof c === "number" ? String(c) : c);
  }
}

/** Replaces all children of `el`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** A table with a header row, scrolling sideways when too wide; cells are text or nodes. */
export function table(cls: string, header: string[], rows: Child[][], empty: string): HTMLElement {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: cls },
      h("thead", {}, h("tr", {}, ...header.map((c) => h("th", {}, c)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
    ),
  );
}

/**
 * A button that asks once more before acting: the first click arms it
 * ("Really remove?"), a second click within 4 s runs `act`.
 */
export function confirmButton(label: string, confirmLabel: string, act: () => Promise<unknown>, attrs: Attrs = {}): HTMLButtonElement {
  const b = h("button", { type: "button", ...attrs }, label);
  let armed: number | undefined;
  b.addEventListener("click", () => {
    if (armed === undefined) {
      b.textContent = confirmLabel;
      b.classList.add("armed");
      armed = window.setTimeout(() => {
        armed = undefined;
        b.textContent = label;
        b.classList.remove("armed");
      }, 4000);
      return;
    }
    window.clearTimeout(armed);
    armed = undefined;
    b.textContent = label;
    b.classList.remove("armed");
    void busy(b, act);
  });
  return b;
}

/** Disables `b` while `act` runs. */
export async function busy(b: HTMLButtonElement, act: () => Promise<unknown>): Promise<void> {
  b.disabled = true;
  b.classList.add("busy");
  try {
    await act();
  } finally {
    b.disabled = false;
    b.classList.remove("busy");
  }
}

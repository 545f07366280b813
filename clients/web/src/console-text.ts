// The console pane's text: bytes of ReadConsole decoded as UTF-8 across
// chunk boundaries, terminal control sequences removed (a serial console
// carries colours, cursor moves and carriage returns), a marker where a
// new boot begins, and only the last `maxChars` characters kept.

// CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), character set
// designations (ESC ( B), and the other two-byte sequences (ESC c, ESC 7).
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+][ -~]|\x1b[0-~]/g;
// What a chunk may end with that the next one completes: an escape
// sequence cut off, or a CR whose LF may follow.
const PARTIAL = /(?:\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[()*+])?|\r)$/;

/** Removes terminal control sequences; CR LF and lone CR become LF; other controls but TAB go. */
export function cleanTerminal(s: string): string {
  return s
    .replace(ESCAPES, "")
    .replace(/\r+\n/g, "\n")
    .replace(/\r/g, "\n")
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
}

export class ConsoleText {
  private decoder = new TextDecoder("utf-8", { fatal: false });
  private pending = "";
  private instance: string | undefined;
  private buf = "";

  constructor(private readonly maxChars = 200_000) {}

  /**
   * Adds a chunk of boot `instanceId`. Returns the text to append to the
   * view, or `reset` when older text was dropped and the view should show
   * `text` afresh.
   */
  push(instanceId: string, data: Uint8Array): { append: string; reset: boolean } {
    let out = "";
    if (instanceId !== this.instance) {
      out += this.flush();
      const before = this.buf + out;
      if (this.instance !== undefined && instanceId !== "") out += `${before === "" || before.endsWith("\n") ? "" : "\n"}── new boot ${instanceId} ──\n`;
      this.instance = instanceId;
      this.decoder = new TextDecoder("utf-8", { fatal: false });
    }
    let text = this.pending + this.decoder.decode(data, { stream: true });
    const cut = PARTIAL.exec(text);
    this.pending = cut ? cut[0] : "";
    if (cut) text = text.slice(0, cut.index);
    out += cleanTerminal(text);
    this.buf += out;
    if (this.buf.length <= this.maxChars) return { append: out, reset: false };
    this.buf = this.buf.slice(this.buf.length - this.maxChars);
    return { append: "", reset: true };
  }

  private flush(): string {
    const rest = cleanTerminal(this.pending + this.decoder.decode());
    this.pending = "";
    return rest;
  }

  /** Everything kept. */
  get text(): string {
    return this.buf;
  }
}

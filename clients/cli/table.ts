// Plain-text tables: a header row and left-aligned columns separated by
// three spaces, like `docker ps`. Empty cells print "-" so that columns stay
// splittable with awk; control characters in cells are escaped so that a VM
// name or event message cannot forge extra rows or move the cursor.

export interface TableOptions {
  /** Column separator. Default: three spaces. */
  gap?: string;
  /** Prefix of every line (for nested tables in `info`). Default: none. */
  indent?: string;
  /**
   * Fit lines into this many columns by shortening the `shrink` columns
   * (cells cut with "…"), widest first, down to 8 characters each.
   * Default: no limit.
   */
  maxWidth?: number;
  /** Indexes of columns that may be shortened. */
  shrink?: readonly number[];
}

const MIN_SHRUNK = 8;

/** Cuts `s` to `w` code points, the last one an ellipsis. */
function cut(s: string, w: number): string {
  const cps = [...s];
  return cps.length <= w ? s : cps.slice(0, w - 1).join("") + "…";
}

/** Escapes C0/C1 control characters and DEL as \n, \t or \xNN. */
export function sanitize(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\t") return "\\t";
    return "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0");
  });
}

function cell(v: string | number | bigint | undefined | null): string {
  if (v === undefined || v === null) return "-";
  const s = sanitize(String(v));
  return s === "" ? "-" : s;
}

/** Renders `rows` under `header`; returns the text with a trailing newline. */
export function renderTable(header: readonly string[], rows: readonly (readonly (string | number | bigint | undefined | null)[])[], opts: TableOptions = {}): string {
  const gap = opts.gap ?? "   ";
  const indent = opts.indent ?? "";
  const cells = rows.map((r) => header.map((_, i) => cell(r[i])));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => [...r[i]!].length)));
  if (opts.maxWidth !== undefined) {
    const total = () => indent.length + widths.reduce((a, b) => a + b, 0) + gap.length * (widths.length - 1);
    for (let over = total() - opts.maxWidth; over > 0; over--) {
      const candidates = (opts.shrink ?? []).filter((i) => widths[i]! > Math.max(MIN_SHRUNK, header[i]!.length));
      if (candidates.length === 0) break;
      const widest = candidates.reduce((a, b) => (widths[b]! > widths[a]! ? b : a));
      widths[widest]!--;
    }
    for (const r of cells) for (const i of opts.shrink ?? []) r[i] = cut(r[i]!, widths[i]!);
  }
  const line = (r: readonly string[]) =>
    indent +
    r
      .map((c, i) => (i === r.length - 1 ? c : c + " ".repeat(widths[i]! - [...c].length)))
      .join(gap)
      .trimEnd();
  return [line(header), ...cells.map(line)].join("\n") + "\n";
}

/** `key: value` lines with the values aligned. */
export function renderFields(fields: readonly (readonly [string, string | number | bigint | undefined | null])[], indent = ""): string {
  const w = Math.max(0, ...fields.map(([k]) => k.length + 1));
  return fields.map(([k, v]) => `${indent}${(k + ":").padEnd(w)}  ${cell(v)}`.trimEnd() + "\n").join("");
}

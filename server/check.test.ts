// Display names: what checkName refuses and why, table-driven.
import { describe, expect, it } from "vitest";
import { checkName, displayTextProblem, nameKey } from "./check.js";
import { Problems } from "./errors.js";

function problem(name: string): string | undefined {
  const p = new Problems();
  checkName(p, "name", name);
  return p.list[0]?.message;
}

describe("checkName", () => {
  it.each([
    ["right-to-left override", "invoice\u202Egpj.exe", "format character", "U+202E"],
    ["left-to-right isolate", "a\u2066b", "format character", "U+2066"],
    ["pop directional isolate", "a\u2069b", "format character", "U+2069"],
    ["zero-width space", "web\u200B1", "format character", "U+200B"],
    ["zero-width joiner", "a\u200Db", "format character", "U+200D"],
    ["byte order mark", "\uFEFFweb", "format character", "U+FEFF"],
    ["soft hyphen", "we\u00ADb", "format character", "U+00AD"],
    ["bell", "bell\u0007", "control character", "U+0007"],
    ["newline", "two\nlines", "control character", "U+000A"],
    ["DEL", "a\u007Fb", "control character", "U+007F"],
    ["C1 control", "a\u0085b", "control character", "U+0085"],
    ["line separator", "a\u2028b", "line or paragraph separator", "U+2028"],
    ["paragraph separator", "a\u2029b", "line or paragraph separator", "U+2029"],
    ["unassigned", "a\u0378b", "unassigned code point", "U+0378"],
    ["noncharacter", "a\uFFFFb", "unassigned code point", "U+FFFF"],
    ["lone surrogate", "a\uD800b", "lone surrogate", "U+D800"],
  ])("refuses a %s", (_what, name, kind, codepoint) => {
    const m = problem(name);
    expect(m).toContain(kind);
    expect(m).toContain(codepoint);
  });

  it.each([
    ["plain", "web-1"],
    ["spaces inside", "my web server"],
    ["accents", "café"],
    ["CJK", "ウェブ"],
    ["emoji", "🚀 launch"],
    ["right-to-left script", "שלום"],
    ["no-break space inside", "a\u00A0b"],
    ["63 code points of astral characters", "😀".repeat(63)],
  ])("accepts %s", (_what, name) => {
    expect(problem(name)).toBeUndefined();
  });

  it.each([
    ["empty", "", "is required"],
    ["64 code points", "n".repeat(64), "at most 63"],
    ["leading space", " web", "white space"],
    ["trailing no-break space", "web\u00A0", "white space"],
  ])("refuses %s", (_what, name, why) => {
    expect(problem(name)).toContain(why);
  });

  it("compares names in NFC", () => {
    expect(nameKey("cafe\u0301")).toBe(nameKey("café"));
    expect(displayTextProblem("cafe\u0301")).toBeUndefined();
  });
});

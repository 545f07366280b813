import { describe, expect, it } from "vitest";
import { renderFields, renderTable, sanitize } from "./table.js";

describe("renderTable", () => {
  it.each<[string, string[], (string | number | bigint | undefined)[][], string]>([
    ["header only", ["ID", "NAME"], [], "ID   NAME\n"],
    ["aligns columns to the widest cell", ["ID", "NAME"], [["web", "w"], ["a", "database"]], "ID    NAME\nweb   w\na     database\n"],
    ["empty and missing cells print -", ["A", "B", "C"], [["", undefined, "x"]], "A   B   C\n-   -   x\n"],
    ["numbers and bigints", ["N", "B"], [[1, 2n]], "N   B\n1   2\n"],
    ["no trailing blanks when the last cell is short", ["A", "LONGHEADER"], [["x", "y"]], "A   LONGHEADER\nx   y\n"],
    ["control characters cannot forge rows", ["NAME"], [["a\nb\x1b[2J"]], "NAME\na\\nb\\x1b[2J\n"],
  ])("%s", (_, header, rows, want) => {
    expect(renderTable(header, rows)).toBe(want);
  });

  it("indents every line", () => {
    expect(renderTable(["A"], [["x"]], { indent: "  " })).toBe("  A\n  x\n");
  });

  it("counts characters, not UTF-16 units", () => {
    expect(renderTable(["A", "B"], [["😀", "x"]])).toBe("A   B\n😀   x\n");
  });
});

describe("renderFields", () => {
  it("aligns values after the longest key", () => {
    expect(renderFields([["ID", "web"], ["Status", "running"], ["PID", undefined]])).toBe("ID:      web\nStatus:  running\nPID:     -\n");
  });
});

describe("sanitize", () => {
  it.each([
    ["plain", "plain"],
    ["tab\there", "tab\\there"],
    ["\x7f\x9b", "\\x7f\\x9b"],
    ["ünïcode", "ünïcode"],
  ])("%j", (v, want) => expect(sanitize(v)).toBe(want));
});

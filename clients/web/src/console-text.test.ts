import { describe, expect, it } from "vitest";
import { cleanTerminal, ConsoleText } from "./console-text.js";

const enc = (s: string) => new TextEncoder().encode(s);

describe("cleanTerminal", () => {
  it.each([
    ["[    0.000000] Linux version 6.1\r\n", "[    0.000000] Linux version 6.1\n"],
    ["\x1b[1;32mOK\x1b[0m done\r\n", "OK done\n"],
    ["\x1b]0;title\x07prompt$ ", "prompt$ "],
    ["a\rb", "a\nb"],
    ["bell\x07 and nul\x00 gone\ttab kept", "bell and nul gone\ttab kept"],
    ["\x1bcreset", "reset"],
    ["\x1b(Bplain\x1b7 saved", "plain saved"],
  ])("%j", (raw, want) => {
    expect(cleanTerminal(raw)).toBe(want);
  });
});

describe("ConsoleText", () => {
  it("decodes UTF-8 and escape sequences split across chunks", () => {
    const t = new ConsoleText();
    const bytes = enc("héllo \x1b[31mred\x1b[0m\r\n");
    const out = [];
    for (let i = 0; i < bytes.length; i++) out.push(t.push("b1", bytes.subarray(i, i + 1)).append);
    expect(out.join("")).toBe("héllo red\n");
    expect(t.text).toBe("héllo red\n");
  });

  it("marks a new boot", () => {
    const t = new ConsoleText();
    t.push("b1", enc("one"));
    expect(t.push("b2", enc("two\n")).append).toBe("\n── new boot b2 ──\ntwo\n");
    expect(t.text).toBe("one\n── new boot b2 ──\ntwo\n");
  });

  it("keeps the last maxChars characters and says when to redraw", () => {
    const t = new ConsoleText(10);
    expect(t.push("b1", enc("12345")).reset).toBe(false);
    expect(t.push("b1", enc("6789abcdef"))).toEqual({ append: "", reset: true });
    expect(t.text).toBe("6789abcdef");
  });
});

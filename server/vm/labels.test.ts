import { describe, expect, it } from "vitest";
import { Problems } from "../errors.js";
import { checkLabels, matches, MAX_LABELS, parseSelector } from "./labels.js";

describe("checkLabels", () => {
  const ok: [string, Record<string, string>][] = [
    ["none", {}],
    ["pod identity", { "vmm.dev/pod-uid": "0b2c8a5e-1f1d-4e8e-9d39-5c1f0e6c2a11", "vmm.dev/pod-name": "web-0", "vmm.dev/node": "host-a" }],
    ["no prefix, empty value", { app: "" }],
    ["dots, underscores, upper case", { "My_App.v2": "Blue.Green_1" }],
    ["63-character name and value", { ["a".repeat(63)]: "b".repeat(63) }],
    ["253-character prefix", { [`${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}/x`]: "y" }],
    [`${MAX_LABELS} labels`, Object.fromEntries(Array.from({ length: MAX_LABELS }, (_, i) => [`k${i}`, "v"]))],
  ];
  it.each(ok)("accepts %s", (_name, labels) => {
    const p = new Problems();
    checkLabels(p, "config.labels", labels);
    expect(p.list).toEqual([]);
  });

  const bad: [string, Record<string, string>, string[]][] = [
    ["empty key", { "": "v" }, ['config.labels[""]']],
    ["empty name after the prefix", { "vmm.dev/": "v" }, ['config.labels["vmm.dev/"]']],
    ["64-character name", { ["a".repeat(64)]: "v" }, [`config.labels["${"a".repeat(64)}"]`]],
    ["64-character value", { a: "b".repeat(64) }, ['config.labels["a"]']],
    ["name ends with a dash", { "app-": "v" }, ['config.labels["app-"]']],
    ["upper-case prefix", { "VMM.dev/x": "v" }, ['config.labels["VMM.dev/x"]']],
    ["two slashes", { "a/b/c": "v" }, ['config.labels["a/b/c"]']],
    ["newline in a value", { a: "x\ny" }, ['config.labels["a"]']],
    ["comma and equals (would break selectors)", { "a,b": "c=d" }, ['config.labels["a,b"]', 'config.labels["a,b"]']],
    ["every bad label is named", { "-x": "ok", y: "-" }, ['config.labels["-x"]', 'config.labels["y"]']],
    ["too many", Object.fromEntries(Array.from({ length: MAX_LABELS + 1 }, (_, i) => [`k${i}`, "v"])), ["config.labels"]],
  ];
  it.each(bad)("refuses %s", (_name, labels, fields) => {
    const p = new Problems();
    checkLabels(p, "config.labels", labels);
    expect(p.list.map((x) => x.field)).toEqual(fields);
  });
});

describe("label selectors", () => {
  const labels = { "vmm.dev/node": "host-a", app: "web", tier: "" };
  const cases: [string, boolean][] = [
    ["", true],
    ["vmm.dev/node=host-a", true],
    ["vmm.dev/node==host-a", true],
    ["vmm.dev/node=host-b", false],
    ["vmm.dev/node!=host-b", true],
    ["vmm.dev/node!=host-a", false],
    ["missing!=x", true],
    ["app", true],
    ["missing", false],
    ["!missing", true],
    ["!app", false],
    ["tier=", true],
    ["app=web, vmm.dev/node = host-a", true],
    ["app=web,vmm.dev/node=host-b", false],
  ];
  it.each(cases)("%j matches: %s", (text, want) => {
    const p = new Problems();
    const s = parseSelector(p, "label_selector", text);
    expect(p.list).toEqual([]);
    expect(matches(labels, s!)).toBe(want);
  });

  const bad: [string, RegExp][] = [
    ["app=web,", /requirement 2 "": want key=value/],
    ["=web", /requirement 1 "=web": want/],
    ["app in (web)", /requirement 1/],
    ["!app=web", /'!' goes with a bare key only/],
    ["app=-web", /value must be empty or/],
    ["a/b/c=x", /key name must be/],
    ["x".repeat(1025), /at most 1024/],
  ];
  it.each(bad)("refuses %j", (text, msg) => {
    const p = new Problems();
    expect(parseSelector(p, "label_selector", text)).toBeUndefined();
    expect(p.list).toHaveLength(1);
    expect(p.list[0]!.field).toBe("label_selector");
    expect(p.list[0]!.message).toMatch(msg);
  });
});

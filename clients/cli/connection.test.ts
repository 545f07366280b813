import { describe, expect, it } from "vitest";
import { resolveEndpoint, resolveToken } from "./connection.js";
import { UsageError } from "./errors.js";

describe("resolveEndpoint", () => {
  const cwd = "/home/u/proj";
  it.each<[string, Parameters<typeof resolveEndpoint>[0], NodeJS.ProcessEnv, ReturnType<typeof resolveEndpoint>]>([
    ["default: ./.vmm/vmmd.sock", {}, {}, { kind: "socket", path: "/home/u/proj/.vmm/vmmd.sock" }],
    ["VMM_STATE_DIR", {}, { VMM_STATE_DIR: "/var/lib/vmm" }, { kind: "socket", path: "/var/lib/vmm/vmmd.sock" }],
    ["relative VMM_STATE_DIR", {}, { VMM_STATE_DIR: "st" }, { kind: "socket", path: "/home/u/proj/st/vmmd.sock" }],
    ["empty VMM_STATE_DIR is unset", {}, { VMM_STATE_DIR: "" }, { kind: "socket", path: "/home/u/proj/.vmm/vmmd.sock" }],
    ["VMM_SOCKET beats VMM_STATE_DIR", {}, { VMM_SOCKET: "/run/v.sock", VMM_STATE_DIR: "/x" }, { kind: "socket", path: "/run/v.sock" }],
    ["VMM_URL beats VMM_SOCKET", {}, { VMM_SOCKET: "/run/v.sock", VMM_URL: "http://127.0.0.1:8080" }, { kind: "url", url: "http://127.0.0.1:8080" }],
    ["--socket beats VMM_URL", { socket: "s.sock" }, { VMM_URL: "http://127.0.0.1:8080" }, { kind: "socket", path: "/home/u/proj/s.sock" }],
    ["--url beats VMM_SOCKET", { url: "https://vmm.example:8443/" }, { VMM_SOCKET: "/run/v.sock" }, { kind: "url", url: "https://vmm.example:8443" }],
  ])("%s", (_, flags, env, want) => {
    expect(resolveEndpoint(flags, env, cwd)).toEqual(want);
  });

  it.each<[Parameters<typeof resolveEndpoint>[0], NodeJS.ProcessEnv, RegExp]>([
    [{ url: "http://a", socket: "/s" }, {}, /--url and --socket are mutually exclusive/],
    [{ url: "127.0.0.1:8080" }, {}, /--url "127.0.0.1:8080": (not a URL|scheme must be http or https)/],
    [{ url: "ftp://h" }, {}, /--url "ftp:\/\/h": scheme must be http or https/],
    [{}, { VMM_URL: "nope" }, /VMM_URL "nope": not a URL/],
    [{ socket: "" }, {}, /--socket: empty socket path/],
  ])("%j %j is a usage error", (flags, env, re) => {
    expect(() => resolveEndpoint(flags, env, cwd)).toThrow(UsageError);
    expect(() => resolveEndpoint(flags, env, cwd)).toThrow(re);
  });
});

describe("resolveToken", () => {
  const files: Record<string, string> = { "/t": "tok-from-file\n", "/crlf": "tok\r\n", "/bad": "two words\n" };
  const read = (p: string) => {
    if (!(p in files)) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
    return files[p]!;
  };
  it.each<[Parameters<typeof resolveToken>[0], NodeJS.ProcessEnv, string | undefined]>([
    [{}, {}, undefined],
    [{}, { VMM_TOKEN: "" }, undefined],
    [{}, { VMM_TOKEN: "env-tok" }, "env-tok"],
    [{ token: "flag-tok" }, { VMM_TOKEN: "env-tok" }, "flag-tok"],
    [{ tokenFile: "/t" }, { VMM_TOKEN: "env-tok" }, "tok-from-file"],
    [{ tokenFile: "/crlf" }, {}, "tok"],
  ])("%j %j", (flags, env, want) => {
    expect(resolveToken(flags, env, read)).toBe(want);
  });
  it.each<[Parameters<typeof resolveToken>[0], NodeJS.ProcessEnv, RegExp]>([
    [{ token: "a", tokenFile: "/t" }, {}, /--token and --token-file are mutually exclusive/],
    [{ tokenFile: "/missing" }, {}, /--token-file "\/missing": ENOENT/],
    [{ tokenFile: "/bad" }, {}, /--token-file "\/bad": the token must be/],
    [{ token: "" }, {}, /--token: the token must be non-empty/],
    [{}, { VMM_TOKEN: "a\nb" }, /VMM_TOKEN: the token must be/],
  ])("%j %j is a usage error", (flags, env, re) => {
    expect(() => resolveToken(flags, env, read)).toThrow(re);
  });
});

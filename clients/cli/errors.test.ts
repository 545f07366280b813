import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeName, describeError, UsageError } from "./errors.js";

describe("codeName", () => {
  it.each<[Code, string]>([
    [Code.FailedPrecondition, "failed_precondition"],
    [Code.NotFound, "not_found"],
    [Code.InvalidArgument, "invalid_argument"],
    [Code.Unauthenticated, "unauthenticated"],
    [Code.DeadlineExceeded, "deadline_exceeded"],
    [Code.ResourceExhausted, "resource_exhausted"],
  ])("%d", (c, want) => expect(codeName(c)).toBe(want));
});

describe("describeError", () => {
  it.each<[unknown, string, number]>([
    [new UsageError('--port "x": bad'), 'vmm-cli: --port "x": bad\n', 2],
    [new ConnectError('VM "a" not found', Code.NotFound), 'vmm-cli: not_found: VM "a" not found\n', 1],
    [new ConnectError("ports: 127.0.0.1:8080 is in use", Code.Unavailable), "vmm-cli: unavailable: ports: 127.0.0.1:8080 is in use\n", 1],
    [
      new ConnectError("connect ECONNREFUSED 127.0.0.1:1", Code.Unavailable, undefined, undefined, Object.assign(new Error("x"), { code: "ECONNREFUSED" })),
      "vmm-cli: unavailable: connect ECONNREFUSED 127.0.0.1:1 (daemon at unix:/x; is vmmd running?)\n",
      1,
    ],
    [new ConnectError("authorization: missing bearer token", Code.Unauthenticated), "vmm-cli: unauthenticated: authorization: missing bearer token (pass --token, --token-file or VMM_TOKEN)\n", 1],
    [new ConnectError("authorization: unknown token", Code.Unauthenticated), "vmm-cli: unauthenticated: authorization: unknown token\n", 1],
    [Object.assign(new Error("boom"), { code: "EACCES" }), "vmm-cli: EACCES: boom\n", 1],
    ["weird", "vmm-cli: weird\n", 1],
    [
      new ConnectError("connect ENOENT /x", Code.Internal, undefined, undefined, Object.assign(new Error("connect ENOENT /x"), { code: "ENOENT" })),
      "vmm-cli: unavailable: connect ENOENT /x (is vmmd running?)\n",
      1,
    ],
    [
      new ConnectError("connect EACCES /x", Code.Internal, undefined, undefined, Object.assign(new Error("connect EACCES /x"), { code: "EACCES" })),
      "vmm-cli: permission_denied: connect EACCES /x\n",
      1,
    ],
  ])("%s", (e, text, exitCode) => {
    expect(describeError(e, "unix:/x")).toEqual({ text, exitCode });
  });
});

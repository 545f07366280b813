// Rule validation (pure): self-loops are refused with the field named.
import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.js";
import { isSelfLoop, validateRules, type ForwardRule } from "./rules.js";

const rule = (listenAddress: string, listenPort: number, targetAddress: string, targetPort: number): ForwardRule => ({
  protocol: "tcp",
  listenAddress,
  listenPort,
  targetAddress,
  targetPort,
});

describe("isSelfLoop", () => {
  it.each([
    [rule("127.0.0.1", 8080, "127.0.0.1", 8080), true],
    [rule("0.0.0.0", 8080, "127.0.0.1", 8080), true],
    [rule("0.0.0.0", 8080, "127.0.0.2", 8080), true],
    [rule("::", 8080, "::1", 8080), true],
    [rule("::", 8080, "127.0.0.1", 8080), true], // dual-stack listener
    [rule("::1", 8080, "::1", 8080), true],
    [rule("127.0.0.1", 8080, "127.0.0.1", 8081), false],
    [rule("127.0.0.1", 8080, "127.0.0.2", 8080), false],
    [rule("0.0.0.0", 8080, "10.0.0.5", 8080), false], // a guest on the same port
    [rule("0.0.0.0", 8080, "::1", 8080), false],
  ])("%j -> %s", (r, loop) => {
    expect(isSelfLoop(r)).toBe(loop);
  });
});

describe("validateRules", () => {
  it("refuses a rule that forwards to its own listener, naming the field", () => {
    const err = (() => {
      try {
        validateRules([rule("127.0.0.1", 9000, "127.0.0.1", 9001), rule("0.0.0.0", 9002, "127.0.0.1", 9002)]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ValidationError);
    const [p] = (err as ValidationError).problems;
    expect(p!.field).toBe("rules[1].targetPort");
    expect(p!.message).toMatch(/tcp 0\.0\.0\.0:9002 to itself \(127\.0\.0\.1:9002\)/);
  });

  it("normalizes IPv6 literals before comparing", () => {
    expect(() => validateRules([rule("0:0::1", 9000, "::1", 9000)])).toThrow(ValidationError);
  });
});

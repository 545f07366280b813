// The authorization header as RFC 7235 defines it, table-driven against the
// interceptor over an in-memory transport (no sockets).
import { describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { authInterceptor } from "./auth.js";
import { LeaseAction, VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

const ADMIN = "admin-token-0123456789abcdef";
const LEASE = "lease-token-0123456789abcdef";

function clientWith(header: string | undefined) {
  const transport = createRouterTransport(
    (router) =>
      router.service(VmmService, {
        getMeta: () => ({ version: "test" }),
        reportDhcpLease: () => ({ vmId: "x" }),
      }),
    { router: { interceptors: [authInterceptor({ tokens: [ADMIN], leaseTokens: [LEASE] })] } },
  );
  return createClient(VmmService, transport);
}

async function codeOf(header: string | undefined, call: "getMeta" | "lease" = "getMeta"): Promise<Code | "ok"> {
  const c = clientWith(header);
  const headers: Record<string, string> = header === undefined ? {} : { authorization: header };
  try {
    if (call === "getMeta") await c.getMeta({}, { headers });
    else await c.reportDhcpLease({ action: LeaseAction.ADD, mac: "02:00:00:00:00:01", ip: "10.0.0.2" }, { headers });
    return "ok";
  } catch (e) {
    return ConnectError.from(e).code;
  }
}

describe("authorization: Bearer", () => {
  it.each([
    ["Bearer <admin>", `Bearer ${ADMIN}`, "ok"],
    ["lower-case scheme", `bearer ${ADMIN}`, "ok"],
    ["upper-case scheme", `BEARER ${ADMIN}`, "ok"],
    ["mixed-case scheme", `bEaReR ${ADMIN}`, "ok"],
    ["two spaces", `Bearer  ${ADMIN}`, "ok"],
    ["many spaces", `Bearer       ${ADMIN}`, "ok"],
    ["no space", `Bearer${ADMIN}`, Code.Unauthenticated],
    ["a tab instead of a space", `Bearer\t${ADMIN}`, Code.Unauthenticated],
    ["another scheme", `Basic ${ADMIN}`, Code.Unauthenticated],
    ["scheme only", "Bearer", Code.Unauthenticated],
    ["token with a space inside", `Bearer ${ADMIN.slice(0, 8)} ${ADMIN.slice(8)}`, Code.Unauthenticated],
    ["unknown token", "Bearer unknown-token-0123456789", Code.Unauthenticated],
    ["token as a prefix of the real one", `Bearer ${ADMIN.slice(0, -1)}`, Code.Unauthenticated],
    ["lease token on another RPC", `bearer ${LEASE}`, Code.PermissionDenied],
  ] as const)("%s", async (_name, header, want) => {
    expect(await codeOf(header)).toBe(want);
  });

  it("no header is unauthenticated", async () => {
    expect(await codeOf(undefined)).toBe(Code.Unauthenticated);
  });

  it("a lease token with any scheme case may call ReportDhcpLease", async () => {
    expect(await codeOf(`BEARER  ${LEASE}`, "lease")).toBe("ok");
  });
});

// The /metrics route on a real HTTP server (port 0): tokens enforced by the
// RPC auth interceptor, like on every RPC.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { authInterceptor } from "../rpc/auth.js";
import { httpAuthorizer, metricsHandler, withExtraRoutes } from "./routes.js";

let server: Server;
let base = "";
const ADMIN = "static-admin-token-0123";
const LEASE = "static-lease-token-0123";

beforeAll(async () => {
  const auth = authInterceptor({ tokens: [ADMIN], leaseTokens: [LEASE] });
  const handler = withExtraRoutes((_req, res) => res.writeHead(404).end(), {
    metrics: metricsHandler(async () => "m 1\n", "text/plain; version=0.0.4; charset=utf-8", httpAuthorizer(auth, "Metrics")),
  });
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe("/metrics", () => {
  it("takes the admin token and refuses others as the RPCs do", async () => {
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`)).headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: "Basic abc" } })).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${LEASE}` } })).status).toBe(403);
    const ok = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("m 1\n");
    expect((await fetch(`${base}/metrics`, { method: "DELETE", headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(405);
    expect((await fetch(`${base}/other`)).status).toBe(404);
  });
});

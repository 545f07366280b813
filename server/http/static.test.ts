// The /ui/ file server on a real HTTP server (port 0): content types, the
// CSP, redirects, traversal refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withExtraRoutes } from "./routes.js";
import { uiFile, uiHandler } from "./static.js";

describe("uiFile", () => {
  it.each([
    ["/ui/", "index.html"],
    ["/ui/app.js", "app.js"],
    ["/ui/style.css", "style.css"],
    ["/ui/a%20b.css", "a b.css"],
    ["/ui/../secret.js", undefined],
    ["/ui/%2e%2e/secret.js", undefined],
    ["/ui/a//b.js", undefined],
    ["/ui/a\\b.js", undefined],
    ["/ui/x%00.js", undefined],
    ["/ui/%zz.js", undefined],
    ["/ui/server.ts", undefined],
    ["/ui/.env", undefined],
    ["/other/app.js", undefined],
  ])("%s -> %s", (path, want) => {
    expect(uiFile(path)).toBe(want);
  });
});

let dir = "";
let server: Server;
let base = "";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "vmm-ui-"));
  const root = join(dir, "web");
  mkdirSync(root);
  writeFileSync(join(root, "index.html"), "<!doctype html><title>vmm</title>");
  writeFileSync(join(root, "app.js"), "console.log(1)");
  writeFileSync(join(dir, "secret.js"), "secret");
  symlinkSync(join(dir, "secret.js"), join(root, "leak.js"));
  const handler = withExtraRoutes((_req, res) => res.writeHead(404).end(), { ui: uiHandler(root) });
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe("the /ui/ handler", () => {
  it("serves the bundle with its content type and a restrictive CSP", async () => {
    const page = await fetch(`${base}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await page.text()).toContain("<title>vmm</title>");
    const js = await fetch(`${base}/ui/app.js`);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect((await fetch(`${base}/ui/app.js`, { method: "HEAD" })).status).toBe(200);
  });

  it("redirects /ui and / to /ui/", async () => {
    for (const p of ["/ui", "/"]) {
      const r = await fetch(`${base}${p}`, { redirect: "manual" });
      expect(r.status, p).toBe(308);
      expect(r.headers.get("location")).toBe("/ui/");
    }
  });

  it("refuses what is not a file of the bundle", async () => {
    for (const p of ["/ui/missing.js", "/ui/leak.js", "/ui/%2e%2e/secret.js"]) expect((await fetch(`${base}${p}`)).status, p).toBe(404);
    expect((await fetch(`${base}/ui/app.js`, { method: "POST" })).status).toBe(405);
  });
});

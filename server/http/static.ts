// Serves the web console's bundle (clients/web, built into dist/web by
// scripts/build-web.sh) under /ui/. Only files of the bundle, only GET and
// HEAD, a fixed table of content types, and a Content-Security-Policy that
// lets the page load its own script and style and talk to its own origin,
// nothing else (no inline script, no frames, no other hosts).
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { extname, join, resolve, sep } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

/** Where `/ui/` is served from. */
export const UI_PREFIX = "/ui/";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json; charset=utf-8",
};

/** Response headers of every /ui/ answer. */
export const UI_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-cache",
};

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/**
 * The request path below /ui/ as a file name of the bundle, or undefined
 * when it cannot be one (traversal, NUL, bad escapes, unknown type).
 * "" and directories mean index.html.
 */
export function uiFile(urlPath: string): string | undefined {
  if (!urlPath.startsWith(UI_PREFIX)) return undefined;
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.slice(UI_PREFIX.length));
  } catch {
    return undefined;
  }
  if (rel === "" || rel.endsWith("/")) rel += "index.html";
  if (rel.includes("\0") || rel.includes("\\") || rel.split("/").some((seg) => seg === "" || seg === "." || seg === "..")) return undefined;
  if (TYPES[extname(rel)] === undefined) return undefined;
  return rel;
}

/** The bundle directory of this checkout: dist/web next to dist/server. */
export function defaultUiDir(here: string): string {
  const candidates = [resolve(here, "..", "..", "web"), resolve(here, "..", "..", "dist", "web")];
  return candidates.find((c) => existsSync(join(c, "index.html"))) ?? candidates[0]!;
}

/** A handler for /ui and /ui/...; `root` holds the bundle. */
export function uiHandler(root: string): (req: Req, res: Res) => void {
  const send = (res: Res, status: number, type: string, body: Buffer | string, head: boolean, extra: Record<string, string> = {}) => {
    const buf = typeof body === "string" ? Buffer.from(body) : body;
    (res as ServerResponse).writeHead(status, { ...UI_HEADERS, "content-type": type, "content-length": String(buf.length), ...extra });
    if (head) res.end();
    else res.end(buf);
  };
  return (req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0]!;
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n", head, { allow: "GET, HEAD" });
    if (path === "/ui") return send(res, 308, "text/plain; charset=utf-8", "see /ui/\n", head, { location: UI_PREFIX });
    const rel = uiFile(path);
    if (rel === undefined) return send(res, 404, "text/plain; charset=utf-8", "not found\n", head);
    let file: string;
    try {
      file = realpathSync(join(root, rel));
      // A symlink in the bundle must not lead outside it.
      if (!file.startsWith(realpathSync(root) + sep) || !statSync(file).isFile()) throw new Error("outside");
    } catch {
      const missing = !existsSync(join(root, "index.html"));
      return send(res, 404, "text/plain; charset=utf-8", missing ? `the web console is not built (${root}); scripts/setup.sh builds it\n` : "not found\n", head);
    }
    send(res, 200, TYPES[extname(rel)]!, readFileSync(file), head);
  };
}

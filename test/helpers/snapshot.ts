// "Nothing changed on disk": every path under a directory with its mode and
// a digest of its contents, to compare before and after a refused request.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/**
 * Every path under `root` with its permission bits and a SHA-256 of its
 * contents (sockets and other special files: their type and mode). Paths
 * matching `skip` (relative to `root`) are left out: logs that processes
 * other than the daemon append to on their own schedule.
 */
export function snapshot(root: string, skip?: RegExp): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const rel = relative(root, p);
      if (skip?.test(rel)) continue;
      const st = statSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out[`${rel}/`] = `dir ${mode}`;
        walk(p);
      } else if (st.isFile()) {
        out[rel] = `${mode} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
      } else {
        out[rel] = `${st.isSocket() ? "socket" : "special"} ${mode} ino ${st.ino}`;
      }
    }
  };
  walk(root);
  return out;
}

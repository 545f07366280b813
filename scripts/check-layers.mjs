#!/usr/bin/env node
// check-layers.mjs -- fails when a source file imports across the floors of
// the daemon (docs/architecture.md). Every non-test .ts file under server/,
// native/ and clients/ is read with the TypeScript compiler's own import
// scanner (static imports, re-exports and import() calls); each relative
// import is resolved to a file and checked against FLOORS below:
//
//   * a file may import files of its own floor and of lower floors only;
//   * FORBIDDEN pairs may not import each other even on one floor
//     (vm/ and vmnet/ meet only in daemon.ts, through interfaces);
//   * nothing outside test files imports test code (test/, *.test.ts,
//     test helpers), so nothing test-only ships in dist;
//   * native/ and clients/ stand beside the daemon: they may use its ground
//     floor (types and pure checks) and nothing else of server/.
//
// Usage: node scripts/check-layers.mjs   (prints "layers: ok" or every violation)
import { readdirSync, readFileSync, existsSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Floors of server/, lowest first. A pattern is a path relative to server/:
 * "dir/" for a folder, "file.ts" for one file. The first matching floor wins.
 */
const FLOORS = [
  { name: "ground", paths: ["errors.ts", "log.ts", "version.ts", "check.ts", "contract.ts", "page.ts", "cleanup.ts", "store/", "config/types.ts"] },
  { name: "host", paths: ["host/"] },
  { name: "net+forward+image", paths: ["net/", "forward/", "image/"] },
  { name: "config", paths: ["config/"] },
  { name: "domain", paths: ["vm/", "vmnet/", "console/", "stats/"] },
  { name: "api", paths: ["rpc/", "http/", "metrics/"] },
  { name: "daemon", paths: ["daemon.ts"] },
  { name: "main", paths: ["main.ts"] },
];

/** Folder pairs that never import each other (either direction). */
const FORBIDDEN = [["vm/", "vmnet/"]];

/** Test-only code: importable from test files only. */
const TEST_ONLY = [/^test\//, /\.test\.ts$/];

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === "node_modules" || name === "build" || name === "dist") continue;
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith(".ts") && !p.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** The floor of a repository path (server/... only), or undefined outside server/. */
function floorOf(rel) {
  if (!rel.startsWith("server/")) return undefined;
  const inner = rel.slice("server/".length);
  for (const [i, f] of FLOORS.entries()) {
    if (f.paths.some((p) => (p.endsWith("/") ? inner.startsWith(p) : inner === p))) return { index: i, ...f };
  }
  return undefined;
}

const folderOf = (rel) => rel.slice("server/".length).replace(/[^/]*$/, "");

/** Resolves a relative specifier ("./x.js") of `from` to a repository path, or undefined. */
function resolveImport(from, spec) {
  if (!spec.startsWith(".")) return undefined;
  const base = resolve(dirname(from), spec);
  for (const c of [base.replace(/\.js$/, ".ts"), base, `${base}.ts`, join(base, "index.ts")]) {
    if (existsSync(c) && statSync(c).isFile()) return relative(ROOT, c);
  }
  return undefined;
}

const problems = [];
const files = ["server", "native", "clients"].flatMap((d) => walk(join(ROOT, d)));
for (const file of files) {
  const rel = relative(ROOT, file);
  if (TEST_ONLY.some((re) => re.test(rel))) continue; // tests may reach anywhere to set things up
  const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  for (const imp of info.importedFiles) {
    const target = resolveImport(file, imp.fileName);
    if (target === undefined) {
      if (imp.fileName.startsWith(".")) problems.push(`${rel}: import "${imp.fileName}" does not resolve to a file`);
      continue;
    }
    const say = (why) => problems.push(`${rel} imports ${target}: ${why}`);
    if (TEST_ONLY.some((re) => re.test(target))) {
      say("test-only code must not reach dist");
      continue;
    }
    const from = floorOf(rel);
    const to = floorOf(target);
    if (rel.startsWith("server/") && from === undefined) {
      say(`${rel} is on no floor: add its folder to FLOORS in scripts/check-layers.mjs and to docs/architecture.md`);
      continue;
    }
    if (to === undefined) continue; // gen/, native/, clients/ targets: not floors of the daemon
    if (from === undefined) {
      if (to.name !== "ground") say(`${rel.split("/")[0]}/ may use only the ground floor of server/ (${FLOORS[0].paths.join(" ")})`);
      continue;
    }
    if (to.index > from.index) say(`floor "${from.name}" may not import the higher floor "${to.name}"`);
    for (const [a, b] of FORBIDDEN) {
      const fa = folderOf(rel);
      const fb = folderOf(target);
      if ((fa.startsWith(a) && fb.startsWith(b)) || (fa.startsWith(b) && fb.startsWith(a))) say(`${a} and ${b} never import each other (daemon.ts wires them)`);
    }
  }
}

if (problems.length > 0) {
  process.stderr.write(`layers: ${problems.length} forbidden import(s) (see docs/architecture.md):\n  ${problems.join("\n  ")}\n`);
  process.exit(1);
}
process.stdout.write(`layers: ok (${files.length} files)\n`);

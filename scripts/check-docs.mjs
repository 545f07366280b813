#!/usr/bin/env node
// check-docs.mjs -- every export of the daemon (server/), the CLI
// (clients/cli/), the addon's wrappers (native/*.ts) and the benchmarks
// (bench/) carries a doc comment (/** ... */) that says something: what it
// is or does, why, its units, who owns what it returns. Test files are
// exempt. Run by scripts/lint.sh; prints "docs: ok (N exports in M files)"
// or one line per undocumented export:
//
//   server/vm/runner.ts:42: export `startVm` has no doc comment
//
// A comment made only of the words of the name ("Starts the VM." on
// startVm) is refused as well: it restates the name and says nothing.
// Re-exports (`export { x } from "./y.js"`) are documented where x is
// declared.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const ROOT = join(import.meta.dirname, "..");
const DIRS = ["server", "clients/cli", "bench"];
const FLAT = ["native"]; // only the .ts files directly in it (not native/relayd, native/src)

function walk(dir, recurse) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (recurse && name !== "node_modules") out.push(...walk(p, true));
    } else if (name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

// Words a comment may add around the name's own words and still say nothing.
const FILLER = new Set(
  "a an the of for to and or is are be this that it its in on with by from as returns return gets get sets set".split(" "),
);

/** The words of an identifier: startVm -> start, vm; MAX_PAGE -> max, page. */
function nameWords(name) {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** Lowercased words of a comment's text, inflections folded to a stem. */
function stem(w) {
  return w.replace(/(ing|ed|es|s)$/, "");
}

function saysSomething(text, name) {
  const own = new Set(nameWords(name).map(stem));
  const words = text
    .replace(/\{@link\s+([^}]+)\}/g, "$1")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  return words.some((w) => !FILLER.has(w) && !own.has(stem(w)));
}

/** The doc comment right before `node` (the last /** block among its leading comments), or undefined. */
function docComment(node, text) {
  const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
  const last = ranges.at(-1);
  if (!last || last.kind !== ts.SyntaxKind.MultiLineCommentTrivia) return undefined;
  const c = text.slice(last.pos, last.end);
  if (!c.startsWith("/**") || c === "/**/") return undefined;
  return c
    .slice(3, -2)
    .split("\n")
    .map((l) => l.replace(/^\s*\*?\s?/, ""))
    .join(" ")
    .trim();
}

function isExported(node) {
  return (ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Export) !== 0;
}

/** Names an exported statement declares ([] when it declares none). */
function declaredNames(st) {
  if (ts.isVariableStatement(st)) return st.declarationList.declarations.map((d) => d.name.getText());
  if (st.name) return [st.name.getText()];
  return ["default"];
}

const files = [...DIRS.flatMap((d) => walk(join(ROOT, d), true)), ...FLAT.flatMap((d) => walk(join(ROOT, d), false))].sort();
const problems = [];
let exports = 0;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  for (const st of sf.statements) {
    const kinds = [
      ts.isFunctionDeclaration,
      ts.isClassDeclaration,
      ts.isInterfaceDeclaration,
      ts.isTypeAliasDeclaration,
      ts.isEnumDeclaration,
      ts.isVariableStatement,
      ts.isModuleDeclaration,
    ];
    if (!kinds.some((k) => k(st)) || !isExported(st)) {
      if (ts.isExportAssignment(st)) {
        exports++;
        if (docComment(st, text) === undefined) problems.push(`${relative(ROOT, file)}:${line(sf, st)}: export default has no doc comment`);
      }
      continue;
    }
    // Overloads: the comment sits on the first signature.
    if (ts.isFunctionDeclaration(st) && !st.body && st.name) {
      const prev = sf.statements[sf.statements.indexOf(st) - 1];
      if (prev && ts.isFunctionDeclaration(prev) && prev.name?.getText() === st.name.getText()) continue;
    }
    if (ts.isFunctionDeclaration(st) && st.body && st.name) {
      const prev = sf.statements[sf.statements.indexOf(st) - 1];
      if (prev && ts.isFunctionDeclaration(prev) && !prev.body && prev.name?.getText() === st.name.getText()) continue;
    }
    const names = declaredNames(st);
    exports += names.length;
    const doc = docComment(st, text);
    const where = `${relative(ROOT, file)}:${line(sf, st)}`;
    if (doc === undefined || doc === "") problems.push(`${where}: export \`${names.join("`, `")}\` has no doc comment`);
    else if (names.length === 1 && !saysSomething(doc, names[0])) problems.push(`${where}: the doc comment of \`${names[0]}\` only restates its name`);
  }
}

function line(sf, node) {
  return sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
}

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  console.error(`docs: ${problems.length} of ${exports} exports without a doc comment that says something (scripts/check-docs.mjs)`);
  process.exit(1);
}
console.log(`docs: ok (${exports} exports in ${files.length} files)`);

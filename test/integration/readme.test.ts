// Docs that run: README.md's `sh` examples, in order, as a newcomer would
// type them, against the daemon its first example starts. A broken example
// fails this test (and so the suite). Runs in the checkout (the examples
// use ./.vmm and .tools), inside the private namespace:
//
//   scripts/in-netns.sh npx vitest run test/integration/readme.test.ts
//
// Directives in an HTML comment right before a block:
//   <!-- doc-test: background -->      run it in the background (the daemon)
//   <!-- doc-test: skip (reason) -->   do not run it; the reason is required
// vmm-cli goes to a temporary VMM_BIN_DIR instead of /usr/local/bin.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ROOT } from "../helpers/daemon.js";
import { requireNetns } from "../guest/netns.js";

interface Block {
  lang: string;
  code: string;
  directive: string;
  line: number;
}

/** Fenced blocks of a Markdown text with the directive comment before each. */
function blocks(md: string): Block[] {
  const out: Block[] = [];
  const lines = md.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!m) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]!);
    const prev = lines[start - 1] ?? "";
    const d = /^<!-- doc-test: (.*) -->$/.exec(prev);
    out.push({ lang: m[1]!, code: body.join("\n") + "\n", directive: d ? d[1]! : "", line: start + 1 });
  }
  return out;
}

const README = readFileSync(join(ROOT, "README.md"), "utf8");
const STATE = join(ROOT, ".vmm");
let bin = "";
let daemon: ChildProcess | undefined;
let createdState = false;
const gitStatus = () =>
  new Promise<string>((resolve, reject) =>
    execFile("git", ["status", "--porcelain", "--untracked-files=all"], { cwd: ROOT }, (err, out) => (err ? reject(err) : resolve(out))),
  );
let statusBefore = "";

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("VMM_") || k === "VMM_IN_NETNS") e[k] = v;
  return { ...e, VMM_BIN_DIR: bin, PATH: `${bin}:${process.env.PATH}` };
}

function sh(code: string, timeoutMs = 300_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile("bash", ["-euo", "pipefail", "-c", code], { cwd: ROOT, env: env(), timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : null, out: stdout + stderr });
    });
  });
}

beforeAll(async () => {
  requireNetns();
  statusBefore = await gitStatus();
  if (existsSync(STATE)) throw new Error(`${STATE} exists: this test runs the README in the checkout and would use it; move it away first`);
  createdState = true;
  bin = mkdtempSync(join(tmpdir(), "vmm-readme-bin-"));
});
afterAll(async () => {
  if (daemon && daemon.exitCode === null) {
    // Guests outlive vmmd: remove them first, then stop the daemon.
    await sh("for vm in $(vmm-cli lsvm -q); do vmm-cli rm --force \"$vm\"; done", 120_000);
    process.kill(-daemon.pid!, "SIGTERM");
    await new Promise((r) => daemon!.once("exit", r));
  }
  if (createdState) rmSync(STATE, { recursive: true, force: true });
  if (bin) rmSync(bin, { recursive: true, force: true });
});

describe("README.md", () => {
  it("the TypeScript example is clients/typescript/hello.ts, verbatim", () => {
    const ts = blocks(README).filter((b) => b.lang === "ts");
    expect(ts).toHaveLength(1);
    expect(ts[0]!.code).toBe(readFileSync(join(ROOT, "clients", "typescript", "hello.ts"), "utf8"));
  });

  it("every sh example runs, in order", async () => {
    const sh_ = blocks(README).filter((b) => b.lang === "sh");
    expect(sh_.length).toBeGreaterThan(5);
    for (const b of sh_) {
      if (b.directive.startsWith("skip")) {
        expect(b.directive, `README.md:${b.line}: a skipped example needs a reason`).toMatch(/^skip \(.+\)$/);
        continue;
      }
      if (b.directive === "background") {
        expect(daemon, "one background example").toBeUndefined();
        daemon = spawn("bash", ["-euo", "pipefail", "-c", b.code], { cwd: ROOT, env: env(), stdio: ["ignore", "pipe", "pipe"], detached: true });
        let err = "";
        daemon.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
        const lines: string[] = [];
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`README.md:${b.line}: no ready line after 300 s:\n${lines.join("\n")}\n${err}`)), 300_000);
          createInterface({ input: daemon!.stdout! }).on("line", (l) => {
            lines.push(l);
            if (l.startsWith('{"ready":true')) {
              clearTimeout(timer);
              resolve();
            }
          });
          daemon!.once("exit", (code) => reject(new Error(`README.md:${b.line}: exited ${code}:\n${lines.join("\n")}\n${err}`)));
        });
        continue;
      }
      if (process.env.VMM_README_TRACE) process.stderr.write(`README.md:${b.line}\n`);
      const r = await sh(b.code);
      if (process.env.VMM_README_TRACE) process.stderr.write(r.out);
      expect(r.code, `README.md:${b.line}:\n${b.code}\n--- output:\n${r.out}`).toBe(0);
    }
  }, 1_200_000);
});

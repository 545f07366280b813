// Docs that run: README.md's `sh` examples, in order, as a newcomer would
// type them, against the daemon its first example starts; its Go and
// Python fragments run in their place in that order too (goSnippet,
// pythonSnippet: the fragment verbatim, wrapped only to run). A broken example
// fails this test (and so the suite). Runs inside the private namespace:
//
//   scripts/in-netns.sh npx vitest run test/integration/readme.test.ts
//
// The examples run in a private copy of the checkout, never in the checkout
// itself: `bash scripts/start.sh` may rebuild native/build and dist, which the
// suite's other files are using at the same time. The copy holds the work
// tree's files as git sees them (tracked and untracked, not ignored; edits
// included) in a fresh repository, and copies of the build's outputs (dist,
// native/build, .tools) with their times kept, so setup.sh finds them up to
// date and skips its work, yet still runs every step a newcomer runs.
// node_modules is hard-linked (npm replaces files rather than rewriting them;
// its one file rewritten in place, .package-lock.json, is a real copy).
//
// Directives in an HTML comment right before a block:
//   <!-- doc-test: background -->      run it in the background (the daemon)
//   <!-- doc-test: skip (reason) -->   do not run it; the reason is required
// vmm-cli goes to a temporary VMM_BIN_DIR instead of /usr/local/bin.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
let base = "";
let checkout = "";
let bin = "";
let daemon: ChildProcess | undefined;
const git = (...args: string[]) =>
  execFileSync("git", ["-c", "user.name=readme", "-c", "user.email=readme@localhost", ...args], { cwd: checkout, encoding: "utf8" });
const gitStatus = () => git("status", "--porcelain", "--untracked-files=all");

/** A private copy of the checkout in `checkout` (see the top of this file). */
function copyCheckout(): void {
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" })
    .split("\0")
    .filter((f) => f !== "" && existsSync(join(ROOT, f)));
  mkdirSync(checkout);
  execFileSync("cp", ["-a", "--parents", "-t", checkout, ...files], { cwd: ROOT });
  git("init", "-q");
  git("add", "-A");
  git("commit", "-q", "-m", "README test copy");
  for (const dir of ["dist", "native/build", ".tools"]) {
    // The trailing "/." follows a symlinked .tools (a worktree's) to its files.
    if (existsSync(join(ROOT, dir))) execFileSync("cp", ["-a", join(ROOT, dir) + "/.", join(checkout, dir)]);
  }
  execFileSync("cp", ["-al", join(ROOT, "node_modules"), join(checkout, "node_modules")]);
  const lock = join(checkout, "node_modules", ".package-lock.json");
  rmSync(lock);
  execFileSync("cp", ["-a", join(ROOT, "node_modules", ".package-lock.json"), lock]);
}

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("VMM_") || k === "VMM_IN_NETNS") e[k] = v;
  return { ...e, VMM_BIN_DIR: bin, PATH: `${bin}:${process.env.PATH}` };
}

function sh(code: string, timeoutMs = 300_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile("bash", ["-euo", "pipefail", "-c", code], { cwd: checkout, env: env(), timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : null, out: stdout + stderr });
    });
  });
}

/**
 * The README's Go fragment, verbatim, inside a main package of the Go
 * client's module (built with its go.mod, deleted afterwards). The fragment
 * talks to 127.0.0.1:8080 through http.DefaultClient; here that client
 * dials the README daemon's unix socket instead (it has no TCP listener).
 */
async function goSnippet(code: string): Promise<{ code: number | null; out: string }> {
  const dir = join(checkout, "clients", "go", "cmd", "readme-snippet");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "main.go"),
    `package main

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"connectrpc.com/connect"
	vmmv1 "vmm.dev/vmm/gen/go/vmm/v1"
	"vmm.dev/vmm/gen/go/vmm/v1/vmmv1connect"
)

func main() {
	ctx := context.Background()
	http.DefaultClient.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", ${JSON.stringify(join(checkout, ".vmm", "vmmd.sock"))})
	}}
${code.replace(/^/gm, "\t").trimEnd()}
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Msg.Vm.Id)
}
`,
  );
  try {
    // Offline, as the Go client's own tests: setup-clients.sh downloaded and built its modules.
    return await sh(`cd clients/go && GOFLAGS="-mod=readonly -buildvcs=false" GOPROXY=off GOTOOLCHAIN=local go run ./cmd/readme-snippet`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The README's Python fragment, verbatim, with the test venv (gen/python installed), in the copy's directory. */
function pythonSnippet(code: string): Promise<{ code: number | null; out: string }> {
  return sh(`PYTHONDONTWRITEBYTECODE=1 ${join(ROOT, ".tools", "venv", "bin", "python")} - <<'PY'\n${code}PY`);
}

beforeAll(() => {
  requireNetns();
  base = mkdtempSync(join(tmpdir(), "vmm-readme-"));
  checkout = join(base, "vmm");
  bin = join(base, "bin");
  copyCheckout();
});
afterAll(async () => {
  if (daemon && daemon.exitCode === null) {
    // Guests outlive vmmd: remove them first, then stop the daemon.
    await sh("for vm in $(vmm-cli lsvm -q); do vmm-cli rm --force \"$vm\"; done", 120_000);
    process.kill(-daemon.pid!, "SIGTERM");
    await new Promise((r) => daemon!.once("exit", r));
  }
  if (base) rmSync(base, { recursive: true, force: true });
});

describe("README.md", () => {
  it("the TypeScript example is clients/typescript/hello.ts, verbatim", () => {
    const ts = blocks(README).filter((b) => b.lang === "ts");
    expect(ts).toHaveLength(1);
    expect(ts[0]!.code).toBe(readFileSync(join(ROOT, "clients", "typescript", "hello.ts"), "utf8"));
  });

  it("every sh, Go and Python example runs, in order", async () => {
    const examples = blocks(README).filter((b) => b.lang === "sh" || b.lang === "go" || b.lang === "python");
    expect(examples.filter((b) => b.lang === "sh").length).toBeGreaterThan(5);
    expect(examples.filter((b) => b.lang !== "sh").map((b) => b.lang)).toEqual(["go", "python"]);
    expect(gitStatus(), "the copy starts clean").toBe("");
    for (const b of examples) {
      if (b.lang === "go" || b.lang === "python") {
        const r = b.lang === "go" ? await goSnippet(b.code) : await pythonSnippet(b.code);
        expect(r.code, `README.md:${b.line}:\n${b.code}\n--- output:\n${r.out}`).toBe(0);
        // Each creates a VM from the tiny image and prints its id: it exists, and goes.
        const id = r.out.trim().split(/\s+/)[0]!;
        const rm = await sh(`vmm-cli info ${id} >/dev/null && vmm-cli rm --force ${id}`);
        expect(rm.code, `README.md:${b.line}: the VM it created (${id}):\n${rm.out}`).toBe(0);
        continue;
      }
      if (b.directive.startsWith("skip")) {
        expect(b.directive, `README.md:${b.line}: a skipped example needs a reason`).toMatch(/^skip \(.+\)$/);
        continue;
      }
      if (b.directive === "background") {
        expect(daemon, "one background example").toBeUndefined();
        daemon = spawn("bash", ["-euo", "pipefail", "-c", b.code], { cwd: checkout, env: env(), stdio: ["ignore", "pipe", "pipe"], detached: true });
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
    expect(gitStatus(), "the examples (scripts/start.sh, setup.sh, ...) leave git status clean").toBe("");
  }, 1_200_000);
});

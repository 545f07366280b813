// Runs an external program without a shell and collects its output: the one
// place that spawns short-lived tools (ip, nft). Failures are VmmErrors that
// name the command and carry its stderr; `kindOf` maps that text to a kind.
import { spawn } from "node:child_process";
import { hostError, type ErrorKind } from "../errors.js";

/** Options of runProgram; every field has a default. */
export interface RunOptions {
  /** Written to the program's stdin (then closed). */
  input?: string;
  /** Kill the program after this long (default 10 s). */
  timeoutMs?: number;
  /** Domain kind of a failure, from the program's stderr (default "internal"). */
  kindOf?: (stderr: string) => ErrorKind;
}

/** Runs `argv` and resolves with its stdout; rejects with "ARGV failed: <stderr>". */
export function runProgram(argv: string[], opts: RunOptions = {}): Promise<string> {
  const what = argv.join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.stdin.on("error", () => undefined); // the program may exit without reading
    child.stdin.end(opts.input ?? "");
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 10_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(hostError(what, e, (e as NodeJS.ErrnoException).code === "ENOENT" ? "unsupported" : "internal"));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(out);
      const detail = err.trim() || (signal ? `killed by ${signal}` : `exit status ${code}`);
      reject(hostError(what, new Error(detail), opts.kindOf?.(err) ?? "internal"));
    });
  });
}

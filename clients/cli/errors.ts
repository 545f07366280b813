// vmm-cli's two failure kinds and how they print. Usage errors (bad flags,
// bad values) exit 2 before any RPC; daemon errors exit 1 as
// `vmm-cli: <code>: <message>`, the code in Connect's snake_case form.
import { Code, ConnectError } from "@connectrpc/connect";

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * A command that failed after talking to the daemon, with a message of its
 * own (e.g. "created VM x but it did not start: ..."); exit 1. `extra` is
 * added to the --json form of the error.
 */
export class VmFailure extends Error {
  readonly extra: Record<string, unknown>;
  constructor(message: string, opts: { cause?: unknown } & Record<string, unknown> = {}) {
    const { cause, ...extra } = opts;
    super(message, cause === undefined ? undefined : { cause });
    this.name = "VmFailure";
    this.extra = extra;
  }
}

/** Code.FailedPrecondition -> "failed_precondition" (the Connect wire name). */
export function codeName(c: Code): string {
  const n = Code[c];
  if (n === undefined) return `code_${c}`;
  return n.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** errno codes anywhere in an error's `cause` chain. */
function errnoCodes(e: unknown): string[] {
  const out: string[] = [];
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    const code = (c as NodeJS.ErrnoException).code;
    if (typeof code === "string") out.push(code);
  }
  return out;
}

// connect-node reports a failed connect() to a unix socket as `internal`
// (it maps only ECONNREFUSED and DNS failures to `unavailable`). For a CLI
// the truth is "the daemon cannot be reached" or "you may not open its
// socket", so those client-side errnos get the codes a user can act on.
const UNREACHABLE = new Set(["ENOENT", "ECONNREFUSED", "ENOTSOCK", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN"]);
const FORBIDDEN = new Set(["EACCES", "EPERM"]);

/**
 * The --json form of an error: the Connect error JSON shape
 * ({"code": "not_found", "message": "..."}), plus what VmFailure adds.
 */
export function errorJson(e: unknown, endpoint?: string): { code: string; message: string } & Record<string, unknown> {
  if (e instanceof VmFailure) {
    const inner = e.cause !== undefined ? errorJson(e.cause, endpoint) : { code: "unknown" };
    return { code: inner.code, message: e.message, ...e.extra };
  }
  const d = describeError(e, endpoint);
  const text = d.text.replace(/^vmm-cli: /, "").replace(/\n$/, "");
  if (e instanceof UsageError) return { code: "invalid_argument", message: text };
  const m = /^([a-z_]+): ([\s\S]*)$/.exec(text);
  if (e instanceof ConnectError && m) return { code: m[1]!, message: m[2]! };
  return { code: "unknown", message: text };
}

/** The stderr text and exit code for anything thrown by a command. Never a stack trace. */
export function describeError(e: unknown, endpoint?: string): { text: string; exitCode: number } {
  if (e instanceof UsageError) return { text: `vmm-cli: ${e.message}\n`, exitCode: 2 };
  if (e instanceof VmFailure) return { text: `vmm-cli: ${e.message}\n`, exitCode: 1 };
  if (e instanceof ConnectError) {
    let msg = e.rawMessage;
    let code = e.code;
    const errnos = errnoCodes(e.cause);
    if (code === Code.Internal && errnos.some((c) => UNREACHABLE.has(c))) code = Code.Unavailable;
    if (code === Code.Internal && errnos.some((c) => FORBIDDEN.has(c))) code = Code.PermissionDenied;
    // Client-side connection failures: say where we looked. (An `unavailable`
    // from the daemon itself, e.g. a host port in use, gets no such hint.)
    if (code === Code.Unavailable && errnos.length > 0) {
      const where = endpoint === undefined || msg.includes(endpoint.replace(/^unix:/, "")) ? "" : `daemon at ${endpoint}; `;
      msg += ` (${where}is vmmd running?)`;
    }
    if (code === Code.Unauthenticated && /missing bearer token/.test(msg)) msg += " (pass --token, --token-file or VMM_TOKEN)";
    return { text: `vmm-cli: ${codeName(code)}: ${msg}\n`, exitCode: 1 };
  }
  const err = e as NodeJS.ErrnoException;
  const msg = err instanceof Error ? err.message : String(e);
  return { text: `vmm-cli: ${err?.code ? `${err.code}: ` : ""}${msg}\n`, exitCode: 1 };
}

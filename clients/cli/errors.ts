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

/** Code.FailedPrecondition -> "failed_precondition" (the Connect wire name). */
export function codeName(c: Code): string {
  const n = Code[c];
  if (n === undefined) return `code_${c}`;
  return n.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** The stderr text and exit code for anything thrown by a command. Never a stack trace. */
export function describeError(e: unknown, endpoint?: string): { text: string; exitCode: number } {
  if (e instanceof UsageError) return { text: `vmm-cli: ${e.message}\n`, exitCode: 2 };
  if (e instanceof ConnectError) {
    let msg = e.rawMessage;
    if (e.code === Code.Unavailable && endpoint !== undefined && !msg.includes(endpoint)) msg += ` (daemon at ${endpoint})`;
    if (e.code === Code.Unauthenticated && endpoint !== undefined) msg += " (pass --token, --token-file or VMM_TOKEN)";
    return { text: `vmm-cli: ${codeName(e.code)}: ${msg}\n`, exitCode: 1 };
  }
  const err = e as NodeJS.ErrnoException;
  const msg = err instanceof Error ? err.message : String(e);
  return { text: `vmm-cli: ${err?.code ? `${err.code}: ` : ""}${msg}\n`, exitCode: 1 };
}

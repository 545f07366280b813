// Domain errors. Every module of the daemon throws VmmError (or a subclass)
// with a kind saying what went wrong in domain terms; server/rpc/errors.ts is
// the one place that maps kinds to Connect codes. A message names the field,
// syscall or program that failed.

/** What went wrong, in domain terms; server/rpc/errors.ts maps each kind to one Connect code. */
export type ErrorKind =
  /** Bad input; `problems` names each offending field. */
  | "invalid"
  /** The named object does not exist. */
  | "not_found"
  /** The object already exists. */
  | "exists"
  /** Forbidden by policy (vmm.toml) or token kind. */
  | "permission"
  /** Missing or wrong credentials. */
  | "unauthenticated"
  /** Valid request, wrong state (running VM, forwarding disabled, ...). */
  | "precondition"
  /** A host resource is busy (port in use, interface exists). */
  | "unavailable"
  /** A limit was hit (connections, sessions, sizes). */
  | "exhausted"
  /** Not supported on this host. */
  | "unsupported"
  /** A bug or an unexpected host failure. */
  | "internal";

/** One problem with one field of an input, e.g. `config.ports[1].host_port`. */
export interface FieldProblem {
  field: string;
  message: string;
}

/**
 * The daemon's error: a kind, a message naming the field, syscall or program, the `cause`, and
 * field problems for bad input.
 */
export class VmmError extends Error {
  readonly kind: ErrorKind;
  readonly problems: readonly FieldProblem[];

  constructor(kind: ErrorKind, message: string, opts?: { cause?: unknown; problems?: FieldProblem[] }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "VmmError";
    this.kind = kind;
    this.problems = opts?.problems ?? [];
  }
}

/** Thrown with every problem of an input at once. */
export class ValidationError extends VmmError {
  constructor(problems: FieldProblem[]) {
    super("invalid", problems.map((p) => `${p.field}: ${p.message}`).join("; "), { problems });
    this.name = "ValidationError";
  }
}

/** Collects field problems; `throwIfAny` raises them together. */
export class Problems {
  readonly list: FieldProblem[] = [];
  add(field: string, message: string): void {
    this.list.push({ field, message });
  }
  get empty(): boolean {
    return this.list.length === 0;
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw new ValidationError(this.list);
  }
}

/** A VmmError for a valid request made in the wrong state (Connect: failed_precondition). */
export const precondition = (msg: string) => new VmmError("precondition", msg);

/**
 * A failed system call or external program, with the errno/exit status kept
 * as `cause`. `what` reads like "bind 127.0.0.1:8080" or "ip link add br0".
 */
export function hostError(what: string, cause: unknown, kind: ErrorKind = "internal"): VmmError {
  const c = cause as NodeJS.ErrnoException | undefined;
  const detail = c?.code ? `${c.code}: ${c.message}` : String(c?.message ?? cause);
  return new VmmError(kind, `${what} failed: ${detail}`, { cause });
}

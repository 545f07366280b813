// What every command shares: the parsed global flags, lazily built clients
// of the daemon, output in either form (human or --json), and the helpers
// that turn flag values into requests.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { VmmService, ListVmsRequestSchema, type VmInfo } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createTransport, describeEndpoint, resolveEndpoint, resolveToken, type ConnectionFlags } from "./connection.js";
import { UsageError } from "./errors.js";
import { parseUint, type Parsed } from "./parse.js";

/** What a run needs from the outside world; tests may pass their own. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Aborted on Ctrl-C (ends `events`, `logs -f`). */
  signal?: AbortSignal;
  /** The terminal `console` attaches to; absent: `console` refuses to run. */
  tty?: Terminal;
}

/** The terminal side of `vmm-cli console` (main.ts wires process.stdin/stdout). */
export interface Terminal {
  /** Whether stdin is a terminal (raw mode is set only then). */
  readonly isTTY: boolean;
  setRaw(raw: boolean): void;
  /** Keystrokes, as they arrive. */
  onData(cb: (b: Buffer) => void): () => void;
  /** stdin reached its end. */
  onEnd(cb: () => void): () => void;
  write(b: Uint8Array): void;
}

/** The package version of this checkout. */
export function cliVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** Throws the problems of `r` as one usage error. */
export function must<T>(r: Parsed<T>): T {
  if (!r.ok) throw new UsageError(r.problems.join("\n  "));
  return r.value;
}

/** Joins every problem of several parses into one usage error (all bad flags at once). */
export function mustAll(...rs: Parsed<unknown>[]): void {
  const problems = rs.flatMap((r) => (r.ok ? [] : r.problems));
  if (problems.length === 1) throw new UsageError(problems[0]!);
  if (problems.length > 1) throw new UsageError("invalid flags:\n  " + problems.join("\n  "));
}

/** An optional integer flag. */
export const optUint = (flag: string, v: string | undefined, min: number, max: number): Parsed<number | undefined> =>
  v === undefined ? { ok: true, value: undefined } : parseUint(flag, v, min, max);

/** Commander collector for repeatable flags. */
export const collect = (v: string, prev: string[] = []) => [...prev, v];

export class Session {
  private vmmClient?: Client<typeof VmmService>;
  private streamClient?: Client<typeof VmmService>;
  private netClient?: Client<typeof NetworkService>;
  endpoint = "";
  constructor(
    private readonly root: Command,
    readonly io: Io,
  ) {}

  private transport(http2 = false): Transport {
    const f = this.root.opts<ConnectionFlags & { json?: boolean }>();
    const ep = resolveEndpoint(f, this.io.env, this.io.cwd);
    const token = resolveToken(f, this.io.env);
    this.endpoint = describeEndpoint(ep);
    return createTransport(ep, token, http2);
  }
  get json(): boolean {
    return this.root.opts<{ json?: boolean }>().json === true;
  }
  vmm(): Client<typeof VmmService> {
    return (this.vmmClient ??= createClient(VmmService, this.transport()));
  }
  /** A client over HTTP/2, for bidirectional streams (AttachConsole). */
  vmmStreaming(): Client<typeof VmmService> {
    return (this.streamClient ??= createClient(VmmService, this.transport(true)));
  }
  net(): Client<typeof NetworkService> {
    return (this.netClient ??= createClient(NetworkService, this.transport()));
  }
  /** Prints `msg` as proto JSON when --json, else `human()`. */
  print<D extends DescMessage>(schema: D, msg: MessageShape<D>, human: () => string): void {
    this.io.out(this.json ? JSON.stringify(toJson(schema, msg), null, 2) + "\n" : human());
  }

  async listAllVms(req: MessageInitShape<typeof ListVmsRequestSchema>, all: boolean): Promise<{ vms: VmInfo[]; next: string; total: number }> {
    const vms: VmInfo[] = [];
    let token = req.pageToken ?? "";
    let total = 0;
    for (;;) {
      const r = await this.vmm().listVms({ ...req, pageToken: token });
      vms.push(...r.vms);
      total = r.totalSize;
      token = r.nextPageToken;
      if (!all || token === "") return { vms, next: token, total };
    }
  }
}

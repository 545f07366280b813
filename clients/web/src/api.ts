// The daemon's API from the page: the generated clients (gen/ts) over the
// Connect protocol on the page's own origin, with the bearer token the
// user entered (kept in sessionStorage: gone with the tab).
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { VmmService } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkService } from "../../../gen/ts/vmm/v1/network_pb.js";
import { isTransportFailure, retryReads } from "./retry.js";

const TOKEN_KEY = "vmm.token";

/** "NotFound" -> "not_found", as the daemon's docs and curl show codes. */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/(?<!^)([A-Z])/g, "_$1").toLowerCase();
}

/**
 * A readable line for an error of a call: "not_found: id: VM "x" not found", or, for a call that
 * got no HTTP answer, "network error: Failed to fetch" (then a change it asked for may or may not
 * have been made; the live views show which).
 */
export function errorText(e: unknown): string {
  const ce = ConnectError.from(e);
  if (isTransportFailure(ce)) return `network error: ${ce.rawMessage}`;
  return `${codeName(ce.code)}: ${ce.rawMessage}`;
}

/** True when `e` is the client giving up a call it aborted itself. */
export function isCanceled(e: unknown): boolean {
  return ConnectError.from(e).code === Code.Canceled;
}

/** Every item of a `List*` RPC, page after page: `page(token)` fetches one page and says where the next starts ("" after the last). */
export async function allPages<T>(page: (pageToken: string) => Promise<{ items: T[]; next: string }>): Promise<T[]> {
  const all: T[] = [];
  let pageToken = "";
  do {
    const r = await page(pageToken);
    all.push(...r.items);
    pageToken = r.next;
  } while (pageToken !== "");
  return all;
}

export class Api {
  readonly vmm: Client<typeof VmmService>;
  readonly net: Client<typeof NetworkService>;
  private tokenValue: string | undefined = sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  /** Called when the daemon refuses the token (the page asks for another). */
  onUnauthenticated: () => void = () => undefined;

  constructor(baseUrl: string = location.origin) {
    const auth: Interceptor = (next) => async (req) => {
      if (this.tokenValue !== undefined) req.header.set("authorization", `Bearer ${this.tokenValue}`);
      try {
        return await next(req);
      } catch (e) {
        if (ConnectError.from(e).code === Code.Unauthenticated) this.onUnauthenticated();
        throw e;
      }
    };
    const transport = createConnectTransport({ baseUrl, useBinaryFormat: true, interceptors: [auth, retryReads()] });
    this.vmm = createClient(VmmService, transport);
    this.net = createClient(NetworkService, transport);
  }

  get token(): string | undefined {
    return this.tokenValue;
  }

  setToken(token: string | undefined): void {
    this.tokenValue = token;
    if (token === undefined) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  }
}

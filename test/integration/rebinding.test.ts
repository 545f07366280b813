// DNS rebinding: a web page can make the host's browser call a loopback
// listener under a name of the page's own, rebound to 127.0.0.1, and read
// the answers as same-origin. Without tokens vmmd's TCP listeners refuse
// requests whose Host (HTTP/2: :authority) is a name other than localhost;
// with tokens the token is the guard. curl sends the forged names, over
// HTTP/1.1 and HTTP/2, to real daemons.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/net.js";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

const ADMIN = "admin-token-rebinding-0123456";
let open: DaemonHandle;
let authed: DaemonHandle;
let metrics = "";

beforeAll(async () => {
  metrics = `127.0.0.1:${await freePort()}`;
  [open, authed] = await Promise.all([
    startDaemon({ toml: `[metrics]\nlisten = "${metrics}"\n` }),
    startDaemon({ toml: `[auth]\ntokens = ["${ADMIN}"]\n` }),
  ]);
});
afterAll(async () => {
  for (const d of [open, authed]) {
    await d?.stop();
    d?.cleanup();
  }
});

/** curl with `args`; the HTTP status and the body. */
function curl(...args: string[]): { status: number; body: string } {
  const r = spawnSync("curl", ["-sS", "-w", "\n%{http_code}", ...args], { encoding: "utf8", timeout: 20_000 });
  expect(r.status, `curl ${args.join(" ")}: ${r.stderr}`).toBe(0);
  const i = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

const meta = (addr: string, host: string, ...more: string[]) =>
  curl("-H", "content-type: application/json", "-H", `host: ${host}`, "-d", "{}", ...more, `http://${addr}/vmm.v1.VmmService/GetMeta`);

describe("without tokens, the TCP listener", () => {
  it("refuses a request that names it by another name, over HTTP/1.1 and HTTP/2, and runs nothing", async () => {
    const port = open.tcp.split(":")[1]!;
    const c = client(VmmService, transport(open, "connect", "unix"));
    const before = await c.listVms({});
    for (const more of [[], ["--http2-prior-knowledge"]]) {
      for (const host of [`rebound.example:${port}`, "rebound.example", `LOCALHOST.example:${port}`]) {
        const r = meta(open.tcp, host, ...more);
        expect(r.status, `${host} ${more.join(" ")}`).toBe(421);
        expect(r.body).toContain("is not an address of this listener");
      }
      const created = curl("-H", "content-type: application/json", "-H", "host: rebound.example", "-d", '{"id":"rebound","config":{"name":"x"}}', ...more, `http://${open.tcp}/vmm.v1.VmmService/CreateVm`);
      expect(created.status).toBe(421);
    }
    expect((await c.listVms({})).vms.length).toBe(before.vms.length);
    // The web console and /metrics are behind the same check.
    expect(curl("-H", "host: rebound.example", `http://${open.tcp}/ui/`).status).toBe(421);
    expect(curl("-H", "host: rebound.example", `http://${open.tcp}/metrics`).status).toBe(421);
  });

  it("answers when an address or localhost names it", () => {
    const port = open.tcp.split(":")[1]!;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LocalHost:${port}`, "localhost", `[::1]:${port}`, "127.0.0.1"]) {
      for (const more of [[], ["--http2-prior-knowledge"]]) {
        const r = meta(open.tcp, host, ...more);
        expect(r.status, `${host} ${more.join(" ")}: ${r.body}`).toBe(200);
      }
    }
  });

  it("the metrics-only listener refuses names too", () => {
    expect(curl("-H", "host: rebound.example", `http://${metrics}/metrics`).status).toBe(421);
    expect(curl(`http://${metrics}/metrics`).status).toBe(200);
  });

  it("the unix socket takes any Host (no browser reaches it)", () => {
    const r = curl("--unix-socket", open.socket, "-H", "content-type: application/json", "-d", "{}", "http://rebound.example/vmm.v1.VmmService/GetMeta");
    expect(r.status).toBe(200);
  });
});

describe("with tokens", () => {
  it("the token is the guard: any Host, refused without it, answered with it", () => {
    expect(meta(authed.tcp, "rebound.example").status).toBe(401);
    expect(meta(authed.tcp, "rebound.example", "-H", `authorization: Bearer ${ADMIN}`).status).toBe(200);
  });
});

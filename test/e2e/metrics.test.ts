// /metrics scraped by a real Prometheus (Debian's package) inside the
// private namespace: through the API's TCP listener and the metrics-only
// listener, with the admin token. PromQL through Prometheus' HTTP API finds
// the booted guest's series and its forward's counters after traffic;
// promtool accepts the exposition; tokens are enforced.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type DaemonHandle } from "../helpers/daemon.js";
import { requireNetns } from "../guest/netns.js";
import { freePort, httpGet, waitFor } from "../helpers/net.js";
import { bootServedGuest, removeAll, servedGuestToml, type ServedGuest } from "./served-guest.js";
import { PROMTOOL, startPrometheus, type Prometheus } from "./prometheus.js";

const ADMIN = "metrics-admin-token-0123";
const LEASE = "metrics-lease-token-0123";
let d: DaemonHandle | undefined;
let prom: Prometheus | undefined;
let dir = "";
let metricsAddr = "";
let guest: ServedGuest;

beforeAll(async () => {
  requireNetns();
  dir = mkdtempSync(join(tmpdir(), "vmm-prom-"));
  metricsAddr = `127.0.0.1:${await freePort()}`;
  d = await startDaemon({
    toml: `${servedGuestToml(ADMIN)}[metrics]\nlisten = "${metricsAddr}"\n`.replace(`tokens = ["${ADMIN}"]`, `tokens = ["${ADMIN}"]\nlease_tokens = ["${LEASE}"]`),
  });
});
afterAll(async () => {
  await prom?.stop();
  if (d) {
    await removeAll(d, ADMIN);
    await d.stop();
    d.cleanup();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function scrape(url: string, token?: string): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: r.status, type: r.headers.get("content-type") ?? "", body: await r.text() };
}

const num = (v: { value: [number, string] }) => Number(v.value[1]);

describe("metrics", () => {
  it("Prometheus scrapes the guest's and its forward's series; promtool accepts them", async () => {
    guest = await bootServedGuest(d!, ADMIN, "met-1", "10.81.0.0/24");
    prom = await startPrometheus(dir, [
      { job: "vmm-api", target: d!.tcp, token: ADMIN },
      { job: "vmm-metrics", target: metricsAddr, token: ADMIN },
    ]);
    // Traffic through the forward: 20 page loads.
    for (let i = 0; i < 20; i++) expect(await httpGet(`http://127.0.0.1:${guest.port}/`)).toContain("hello from met-1");

    const until = async (q: string, ok: (r: Awaited<ReturnType<Prometheus["query"]>>) => boolean) =>
      waitFor(async () => {
        const r = await prom!.query(q);
        if (!ok(r)) throw new Error(`${q}: ${JSON.stringify(r)}`);
        return r;
      }, 30_000, 500);

    const up = await until("up", (r) => r.length === 2 && r.every((s) => num(s) === 1));
    expect(up.map((s) => s.metric.job).sort()).toEqual(["vmm-api", "vmm-metrics"]);
    const job = '{job="vmm-metrics"}';
    const vm = `{job="vmm-metrics",vm="met-1"}`;
    await until(`vmm_vm_info${vm}`, (r) => r.length === 1 && r[0]!.metric.name === "met-1 guest");
    await until(`vmm_vms{job="vmm-metrics",status="running"}`, (r) => r.length === 1 && num(r[0]!) === 1);
    await until(`vmm_vm_cpu_seconds_total${vm}`, (r) => r.length === 1 && num(r[0]!) > 0);
    await until(`vmm_vm_memory_rss_bytes${vm}`, (r) => r.length === 1 && num(r[0]!) > 50 * 1024 * 1024);
    await until(`vmm_vm_uptime_seconds${vm}`, (r) => r.length === 1 && num(r[0]!) > 0);
    await until(`vmm_vm_memory_configured_bytes${vm}`, (r) => r.length === 1 && num(r[0]!) === 256 * 1024 * 1024);
    // The guest's NIC is a TAP on the network's bridge: it received the page requests.
    await until(`vmm_vm_network_receive_bytes_total{job="vmm-metrics",vm="met-1",nic="0"}`, (r) => r.length === 1 && num(r[0]!) > 0);
    await until(`vmm_vm_network_transmit_packets_total{job="vmm-metrics",vm="met-1",nic="0"}`, (r) => r.length === 1 && num(r[0]!) >= 20);
    await until(`vmm_dhcp_leases{job="vmm-metrics",kind="vmnet",network="${guest.networkId}"}`, (r) => r.length === 1 && num(r[0]!) === 1);

    // The forward rule's counters after the 20 requests.
    const rule = `{job="vmm-metrics",owner="met-1",protocol="tcp",listen="127.0.0.1:${guest.port}",relay="native"}`;
    await until(`vmm_forward_connections_total${rule}`, (r) => r.length === 1 && num(r[0]!) >= 20);
    await until(`vmm_forward_to_guest_bytes_total${rule}`, (r) => r.length === 1 && num(r[0]!) > 20 * 30);
    await until(`vmm_forward_from_guest_bytes_total${rule}`, (r) => r.length === 1 && num(r[0]!) > 20 * 50);
    await until(`vmm_forward_connections_active${rule}`, (r) => r.length === 1 && num(r[0]!) === 0);
    // Connects refused while the guest's server was still starting count as errors.
    await until(`vmm_forward_errors_total${rule}`, (r) => r.length === 1 && num(r[0]!) >= 0);
    await until(`vmm_forward_rule_up${rule}`, (r) => r.length === 1 && num(r[0]!) === 1);
    await until(`vmm_relay_processes${job}`, (r) => r.length === 1 && num(r[0]!) >= 1);
    // API calls this test made, by method and code, with latencies.
    await until(`vmm_api_requests_total{job="vmm-metrics",service="vmm.v1.VmmService",method="CreateVm",code="ok"}`, (r) => r.length === 1 && num(r[0]!) === 1);
    await until(`vmm_api_request_duration_seconds_count{job="vmm-metrics",method="GetInfo"}`, (r) => r.length === 1 && num(r[0]!) >= 1);
    await until(`vmm_build_info${job}`, (r) => r.length === 1 && /^\d+\.\d+\.\d+/.test(r[0]!.metric.version!));
    // Both listeners serve the same daemon.
    await until(`vmm_vm_cpu_seconds_total{job="vmm-api",vm="met-1"}`, (r) => r.length === 1);

    // promtool accepts what the daemon serves (names, types, help, suffixes).
    const page = await scrape(`http://${metricsAddr}/metrics`, ADMIN);
    expect(page.status).toBe(200);
    expect(page.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    const check = spawnSync(PROMTOOL, ["check", "metrics"], { input: page.body, encoding: "utf8", timeout: 30_000 });
    expect(check.status, `promtool check metrics:\n${check.stdout}${check.stderr}`).toBe(0);
    // Bounded labels: no per-connection or per-client series.
    expect(page.body).not.toMatch(/(peer|client|remote|conn_id)=/);
  }, 300_000);

  it("needs the admin token on both listeners", async () => {
    for (const url of [`http://${d!.tcp}/metrics`, `http://${metricsAddr}/metrics`]) {
      const none = await scrape(url);
      expect(none.status, url).toBe(401);
      expect(none.body).toMatch(/missing bearer token/);
      expect((await scrape(url, "not-a-valid-token-000")).status, url).toBe(401);
      const lease = await scrape(url, LEASE);
      expect(lease.status, url).toBe(403);
      expect((await scrape(url, ADMIN)).status, url).toBe(200);
    }
    const post = await fetch(`http://${metricsAddr}/metrics`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}` } });
    expect(post.status).toBe(405);
    expect((await fetch(`http://${metricsAddr}/ui/`)).status).toBe(404);
  });
});

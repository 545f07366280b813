// Fault injection: kill -9 vmmd at random moments during a loop of
// Create/Update/Remove, then check that every record on disk parses and
// matches a state the API had acknowledged (or the one operation in flight).
import { afterEach, describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { Protocol, VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

/** What the test believes each VM's name and first host port are. */
interface Model {
  name: string;
  port: number | undefined;
}

type Op = { kind: "create" | "update" | "remove"; id: string; after?: Model };

let d: DaemonHandle | undefined;
afterEach(async () => {
  await d?.stop();
  d?.cleanup();
  d = undefined;
});

function diskState(stateDir: string): Map<string, Model> {
  const root = join(stateDir, "vms");
  const out = new Map<string, Model>();
  for (const id of readdirSync(root)) {
    if (id.startsWith(".")) continue; // temp dirs and trash are swept at start
    const dir = join(root, id);
    // Every file of a record must parse.
    const rec = JSON.parse(readFileSync(join(dir, "vm.json"), "utf8"));
    JSON.parse(readFileSync(join(dir, "runtime.json"), "utf8"));
    JSON.parse(readFileSync(join(dir, "leases.json"), "utf8"));
    expect(rec.id).toBe(id);
    out.set(id, { name: rec.spec.name, port: rec.spec.ports[0]?.hostPort });
  }
  return out;
}

describe("kill -9 during Create/Update/Remove", () => {
  it("leaves only acknowledged (or in-flight) states on disk", async () => {
    const dir = (await import("node:fs")).mkdtempSync(join((await import("node:os")).tmpdir(), "vmmd-crash-"));
    const model = new Map<string, Model>();
    let seq = 0;
    let rng = 0x9e3779b9;
    const rand = (n: number) => {
      rng = (rng * 1103515245 + 12345) >>> 0;
      return rng % n;
    };
    const rounds = 12;
    for (let round = 0; round < rounds; round++) {
      d = await startDaemon({ dir, tcp: false });
      const c = client(VmmService, transport(d, "connect", "unix"));
      // The daemon must agree with the model after restart.
      const listed = await c.listVms({ pageSize: 1000 });
      expect(new Map(listed.vms.map((v) => [v.id, { name: v.name, port: v.config?.ports[0]?.hostPort }]))).toEqual(model);

      let inflight: Op | undefined;
      const killAt = Date.now() + 20 + rand(250);
      const killer = new Promise<void>((r) => setTimeout(r, killAt - Date.now())).then(() => d!.kill9());
      let dead = false;
      void killer.then(() => (dead = true));
      // Bounded loop: at most 200 operations per round, stops when killed.
      for (let i = 0; i < 200 && !dead; i++) {
        const ids = [...model.keys()];
        const choice = ids.length === 0 ? 0 : rand(3);
        try {
          if (choice === 0 || ids.length < 2) {
            const id = `vm-${++seq}`;
            const m = { name: `n${seq}`, port: 20000 + seq };
            inflight = { kind: "create", id, after: m };
            await c.createVm({ id, config: { name: m.name, ports: [{ protocol: Protocol.TCP, hostPort: m.port, vmPort: 80 }] } });
            model.set(id, m);
          } else if (choice === 1) {
            const id = ids[rand(ids.length)]!;
            const m = { name: `u${++seq}`, port: 20000 + seq };
            inflight = { kind: "update", id, after: m };
            await c.updateVm({ id, name: m.name, updatePorts: true, ports: [{ protocol: Protocol.TCP, hostPort: m.port, vmPort: 80 }] });
            model.set(id, m);
          } else {
            const id = ids[rand(ids.length)]!;
            inflight = { kind: "remove", id };
            await c.removeVm({ id });
            model.delete(id);
          }
          inflight = undefined;
        } catch (e) {
          if (!dead && !/unavailable|internal|closed|ECONN|socket/i.test(String(e))) throw e;
          break;
        }
      }
      await killer;
      // Disk must equal the model, or the model with the in-flight op applied.
      const disk = diskState(d.stateDir);
      const withOp = new Map(model);
      if (inflight) {
        if (inflight.kind === "remove") withOp.delete(inflight.id);
        else withOp.set(inflight.id, inflight.after!);
      }
      const matches = JSON.stringify([...disk].sort()) === JSON.stringify([...model].sort()) || JSON.stringify([...disk].sort()) === JSON.stringify([...withOp].sort());
      if (!matches) {
        throw new Error(`round ${round}: disk ${JSON.stringify([...disk])} matches neither acknowledged ${JSON.stringify([...model])} nor in-flight ${JSON.stringify(inflight)}`);
      }
      // Adopt what the disk says (an in-flight op may or may not have landed).
      model.clear();
      for (const [k, v] of disk) model.set(k, v);
      d = undefined;
    }
    // Final restart: the daemon loads everything and sweeps temp/trash.
    d = await startDaemon({ dir, tcp: false });
    const c = client(VmmService, transport(d, "connect", "unix"));
    const listed = await c.listVms({ pageSize: 1000 });
    expect(listed.vms.length).toBe(model.size);
    expect(readdirSync(join(d.stateDir, "vms")).filter((n) => n.startsWith("."))).toEqual([]);
    expect(existsSync(join(d.stateDir, "vms"))).toBe(true);
  }, 120_000);
});

// vmm-cli against a real vmmd: VMs named by id or by name in every command,
// several VMs per command, restart, errors as JSON, a failed `create
// --start`, version and completion. The compiled CLI runs as a child process.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { ROOT, startDaemon, type DaemonHandle } from "../../test/helpers/daemon.js";
import { guestInitrd, guestKernel } from "../../test/guest/paths.js";

const CLI = join(ROOT, "dist", "clients", "cli", "main.js");

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let d: DaemonHandle;
function run(args: string[]): Promise<Result> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("VMM_") || k === "VMM_IN_NETNS") env[k] = v;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, "--socket", d.socket, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : null, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  d = await startDaemon({ tcp: false });
});
afterAll(async () => {
  await d?.stop();
  d?.cleanup();
});

describe("names and ids", () => {
  let webId = "";
  it("create prints the generated id; the name then works wherever an id does", async () => {
    const c = await run(["create", "web", "--memory", "64"]);
    expect(c.stderr).toBe("");
    webId = c.stdout.trim();
    expect(webId).toMatch(/^[0-9a-f-]{36}$/);
    await run(["create", "db", "--id", "db-1"]);
    const byName = await run(["--json", "info", "web"]);
    expect(JSON.parse(byName.stdout).vm.id).toBe(webId);
    const byId = await run(["--json", "info", webId]);
    expect(JSON.parse(byId.stdout).vm.name).toBe("web");
    for (const args of [
      ["update", "web", "--vcpus", "2"],
      ["update-ports", "web", "--clear"],
      ["forwards", "web"],
      ["lsvm", "web"],
      ["logs", "web"],
      ["events", "--vm", "nope-nope"],
    ]) {
      const r = await run(args);
      if (args[0] === "events") {
        expect(r.code).toBe(1);
        expect(r.stderr).toBe('vmm-cli: not_found: no VM with id or name "nope-nope"\n');
      } else expect([args, r.code, r.stderr]).toEqual([args, 0, ""]);
    }
    expect(JSON.parse((await run(["--json", "info", "web"])).stdout).vm.config.vcpus).toBe(2);
    expect((await run(["lsvm", "-q"])).stdout).toBe("web\ndb\n");
  });

  it("an id wins over a name; a name with spaces works", async () => {
    // A VM whose *name* is another VM's id.
    await run(["create", "db-1", "--id", "other"]);
    expect(JSON.parse((await run(["--json", "info", "db-1"])).stdout).vm.id).toBe("db-1");
    await run(["create", "my web server", "--id", "spaced"]);
    expect(JSON.parse((await run(["--json", "info", "my web server"])).stdout).vm.id).toBe("spaced");
    expect((await run(["rm", "other", "my web server"])).stdout).toBe("other\nspaced\n");
  });

  it("a duplicate name is refused and creates nothing", async () => {
    const r = await run(["create", "web"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vmm-cli: already_exists: .*web/);
    expect(JSON.parse((await run(["--json", "lsvm"])).stdout).vms.filter((v: { name: string }) => v.name === "web")).toHaveLength(1);
  });

  it("an unknown handle is not_found (exit 1)", async () => {
    for (const cmd of [["info"], ["start"], ["stop"], ["rm"], ["restart"], ["logs"], ["console"], ["forwards"], ["update", "--vcpus", "1"], ["update-ports", "--clear"]]) {
      const r = await run([cmd[0]!, "ghost", ...cmd.slice(1)]);
      expect([cmd, r.code, r.stderr]).toEqual([cmd, 1, 'vmm-cli: not_found: no VM with id or name "ghost"\n']);
    }
  });

  it("several VMs per start/stop/rm; one failure does not stop the others", async () => {
    await run(["create", "a1", "--id", "a1"]);
    await run(["create", "a2", "--id", "a2"]);
    const r = await run(["rm", "a1", "ghost", "a2"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("a1\na2\n");
    expect(r.stderr).toBe('vmm-cli: ghost: not_found: no VM with id or name "ghost"\nvmm-cli: 1 of 3 VMs failed\n');
    const j = await run(["--json", "rm", "ghost", "db"]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toEqual([{ handle: "ghost", error: { code: "not_found", message: 'no VM with id or name "ghost"' } }, { id: "db-1" }]);
  });
});

describe("update: cloud-init", () => {
  it("--user-data replaces the seed, --no-cloud-init removes it", async () => {
    expect((await run(["update", "web", "--user-data", "#cloud-config\nhostname: w\n"])).code).toBe(0);
    expect(JSON.parse((await run(["--json", "info", "web"])).stdout).vm.config.cloudInit).toEqual({ userData: "#cloud-config\nhostname: w\n" });
    expect((await run(["update", "web", "--no-cloud-init"])).code).toBe(0);
    expect(JSON.parse((await run(["--json", "info", "web"])).stdout).vm.config.cloudInit).toBeUndefined();
    const bad = await run(["update", "web", "--user-data", "x", "--no-cloud-init"]);
    expect(bad.code).toBe(2);
  });
});

describe("--json errors", () => {
  it.each<[string[], number, string]>([
    [["info", "ghost"], 1, "not_found"],
    [["create", "x", "--port", "tcp:abc:80"], 2, "invalid_argument"],
    [["frobnicate"], 2, "invalid_argument"],
    [["lsvm", "--bogus"], 2, "invalid_argument"],
    [["start", "web"], 1, "failed_precondition"],
  ])("%j", async (args, code, name) => {
    const r = await run(["--json", ...args]);
    expect(r.code).toBe(code);
    expect(r.stdout).toBe("");
    const e = JSON.parse(r.stderr);
    expect(e.code).toBe(name);
    expect(typeof e.message).toBe("string");
  });
});

describe("create --start that fails", () => {
  it("says which VM was created and how to remove it", async () => {
    const r = await run(["create", "broken", "--kernel", "/nonexistent/vmlinuz", "--start"]);
    expect(r.code).toBe(1);
    const m = /^vmm-cli: created VM ([0-9a-f-]{36}) \("broken"\) but it did not start: failed_precondition: config\.kernel: \/nonexistent\/vmlinuz does not exist\n {2}remove it with: vmm-cli rm \1\n$/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const j = await run(["--json", "create", "broken2", "--kernel", "/nonexistent/vmlinuz", "--start"]);
    const e = JSON.parse(j.stderr);
    expect(e.code).toBe("failed_precondition");
    expect(e.created.vm.name).toBe("broken2");
    expect((await run(["rm", m![1]!, e.created.vm.id])).code).toBe(0);
  });
});

describe("restart", () => {
  it("starts a stopped VM, restarts a running one with a new instance", async () => {
    await run(["create", "rs", "--id", "rs", "--net", "user", "--kernel", guestKernel(), "--initrd", guestInitrd(), "--cmdline", "console=ttyS0 quiet panic=-1"]);
    try {
      const first = await run(["--json", "restart", "rs"]);
      expect(first.stderr).toBe("");
      const a = JSON.parse(first.stdout).vm;
      expect(a.status).toBe("VM_STATUS_RUNNING");
      const second = await run(["restart", "rs", "--force"]);
      expect(second.stdout).toBe("rs (rs): running\n");
      const b = JSON.parse((await run(["--json", "info", "rs"])).stdout).vm;
      expect(b.instanceId).not.toBe(a.instanceId);
    } finally {
      await run(["rm", "--force", "rs"]);
    }
  });
});

describe("version and completion", () => {
  it("version names both sides", async () => {
    const r = await run(["version"]);
    expect(r.stdout).toMatch(/^vmm-cli \d+\.\d+\.\d+\nvmmd {4}\d+\.\d+\.\d+\n$/);
    const j = JSON.parse((await run(["--json", "version"])).stdout);
    expect(j.client).toBe(j.daemon);
  });

  it("bash completion completes commands, options and VM names", async () => {
    const script = (await run(["completion", "bash"])).stdout;
    const complete = (line: string) =>
      new Promise<string>((resolve, reject) => {
        const words = line.split(" ");
        const prog = `${script}\nvmm-cli() { node ${JSON.stringify(CLI)} --socket ${JSON.stringify(d.socket)} "$@"; }\nCOMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(" ")}); COMP_CWORD=${words.length - 1}; _vmm_cli; printf '%s\\n' "\${COMPREPLY[@]}"`;
        execFile("bash", ["-c", prog], { timeout: 30_000 }, (err, out, errOut) => (err ? reject(new Error(errOut)) : resolve(out)));
      });
    expect((await complete("vmm-cli res")).split("\n")).toContain("restart");
    expect((await complete("vmm-cli network cr")).trim()).toBe("create");
    expect((await complete("vmm-cli network create --ipv6")).trim()).toBe("--ipv6-prefix");
    expect((await complete("vmm-cli info w")).trim()).toBe("web");
    expect((await run(["completion", "zsh"])).stdout).toMatch(/bashcompinit/);
  });
});

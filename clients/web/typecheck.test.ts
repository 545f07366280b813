// The web console's type check (scripts/build-web.sh, scripts/lint.sh) must
// see its sources: clients/web/tsconfig.json extends the root tsconfig, whose
// `exclude` lists clients/web, and an inherited exclude would leave only
// gen/ts to check.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");

describe("clients/web/tsconfig.json", () => {
  it("type-checks the web console's own sources", () => {
    const files = execFileSync(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", "clients/web/tsconfig.json", "--listFilesOnly"], {
      cwd: ROOT,
      encoding: "utf8",
    })
      .split("\n")
      .map((f) => f.slice(ROOT.length + 1));
    expect(files).toContain("clients/web/src/main.ts");
    expect(files).toContain("clients/web/src/vm-detail.ts");
  });
});

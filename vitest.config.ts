import { defineConfig } from "vitest/config";

// Every test file runs inside the private network namespace set up by
// scripts/in-netns.sh (scripts/test.sh does that); see test/README.md.
export default defineConfig({
  test: {
    include: [
      "server/**/*.test.ts",
      "clients/**/*.test.ts",
      "native/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2 cores; QEMU guests under TCG are CPU-bound.
    maxWorkers: 2,
    minWorkers: 1,
  },
});

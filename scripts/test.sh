#!/usr/bin/env bash
# test.sh -- sets up a fresh Debian 12 machine and runs the whole test suite.
#
#   1. setup: runtime packages, npm install, native addon, tsc (scripts/setup.sh);
#      guest kernel + initramfs and e2e packages (scripts/setup-guest.sh);
#      Go tools, Python venv, Go module cache (scripts/setup-clients.sh);
#      the Kubernetes control plane (built once, cached outside the clone)
#      and vmm-kubelet's build cache (scripts/setup-k8s.sh);
#      Prometheus and Chromium (scripts/setup-web.sh)
#   2. lint + generated-code drift check
#   3. every vitest suite (unit, integration with a real vmmd and real Go /
#      Python / grpcurl / buf / curl clients, e2e with real QEMU guests) inside
#      a private network + mount namespace with no route out
#      (scripts/in-netns.sh)
# Prints "tests: N passed, N failed, N skipped" last. Extra arguments are
# passed to vitest (e.g. a path filter).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh
bash scripts/setup.sh
ensure_packages shellcheck systemd
bash scripts/setup-guest.sh
bash scripts/setup-clients.sh
bash scripts/setup-k8s.sh >/dev/null
bash scripts/setup-web.sh

bash scripts/lint.sh
bash scripts/check-generated.sh

report=$(mktemp -d)/vitest.json
set +e
scripts/in-netns.sh npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
set -e
if [ -f "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
    if (r.numTotalTests === 0) { console.error("test.sh: no test ran"); process.exit(1); }
    if (skipped > 0) { console.error("test.sh: skipped tests count as failures here"); process.exit(1); }
  ' "$report" || status=1
else
  echo "test.sh: vitest wrote no report" >&2
  status=1
fi
exit $status

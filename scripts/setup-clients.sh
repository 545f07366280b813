#!/usr/bin/env bash
# Prepares everything the client integration tests (test/integration/
# clients.test.ts) need, while the network is still reachable; the tests
# themselves run offline inside scripts/in-netns.sh:
#
#   * Go tools (grpcurl, code generators) in .tools/bin   (scripts/install-tools.sh)
#   * .tools/venv with grpcio-tools, pytest, the generated package (gen/python)
#     and the client package (clients/python), both editable
#   * the Go modules of clients/go in the module cache, and its packages and
#     test binary compiled once, so `go test` works with GOPROXY=off
#   * buf comes with the npm install of scripts/setup.sh (node_modules/.bin/buf); checked here
#
# Idempotent: re-running only re-checks. Runs as root on a fresh Debian 12
# with Go, Python 3.11 and Node 20.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { echo "setup-clients: $*"; }
die() { echo "setup-clients: $*" >&2; exit 1; }

for prog in go python3 node; do
  command -v "$prog" >/dev/null || die "$prog not found on PATH"
done

bash scripts/install-tools.sh
[ -x .tools/bin/grpcurl ] || die ".tools/bin/grpcurl missing after install-tools.sh"

# --- Python -----------------------------------------------------------------
VENV=.tools/venv
PY_PINS=(grpcio-tools==1.85.1 pytest)
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
# pip skips what is already satisfied; -e keeps gen/ and clients/ live.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PINS[@]}"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e gen/python -e clients/python
"$VENV/bin/python" -c 'import grpc, pytest, vmm_client; from vmm.v1 import vmm_pb2, vmm_pb2_grpc, network_pb2_grpc' \
  || die "the venv cannot import grpc/pytest/vmm/vmm_client"

# --- Go ---------------------------------------------------------------------
# Download with the proxy, then prove the offline build works the way the
# tests run it (GOFLAGS=-mod=readonly GOPROXY=off): compiling the test binary
# fills the build cache too.
(
  cd clients/go
  say "go mod download (clients/go)"
  go mod download
  export GOFLAGS="-mod=readonly -buildvcs=false" GOPROXY=off
  go vet ./...
  go build ./...
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  go test -c -o "$tmp/clients.test" .
)

# --- buf --------------------------------------------------------------------
if [ ! -x node_modules/.bin/buf ]; then
  [ -f package-lock.json ] || die "package-lock.json missing"
  say "node_modules/.bin/buf missing; running npm install"
  npm install --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/buf --version >/dev/null || die "node_modules/.bin/buf does not run"

command -v curl >/dev/null || die "curl not found (apt-get install curl)"
say "ok ($ROOT)"

#!/usr/bin/env bash
# Installs the pinned Go-built tools the project needs into .tools/bin:
# code generators for gen/go and the grpcurl used by the integration tests.
# Everything comes from the Go module proxy; re-running is cheap (go install
# skips up-to-date binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOBIN="$PWD/.tools/bin"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
mkdir -p "$GOBIN"
tools=(
  google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
  connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
  google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
  github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
)
for t in "${tools[@]}"; do
  name=${t%@*}; name=${name##*/}
  stamp="$GOBIN/.$name.version"
  if [ -x "$GOBIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$t" ]; then continue; fi
  echo "install-tools: go install $t"
  go install "$t"
  echo "$t" > "$stamp"
done

#!/usr/bin/env bash
# build-kubelet.sh OUT -- builds vmm-kubelet (clients/kubelet) into the file
# OUT. The one place its build flags live: scripts/setup-k8s.sh runs it once
# with the module proxy (filling the module and build caches), the fleet
# tests and bench/kube.ts run it offline (GOPROXY=off), which then only
# relinks.
set -euo pipefail
OUT=${1:?usage: build-kubelet.sh OUT}
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
cd "$(dirname "$0")/../clients/kubelet"
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
go build -trimpath -ldflags="-s -w" -o "$OUT" ./cmd/vmm-kubelet

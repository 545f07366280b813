#!/usr/bin/env bash
# setup-k8s.sh -- builds the Kubernetes control plane the fleet tests run
# (test/e2e/fleet.test.ts, bench/kube.ts): etcd and kube-apiserver,
# kube-scheduler, kube-controller-manager and kubectl, compiled from source
# through the Go module proxy at pinned versions, into a cache outside the
# clone, so a second run (or a second clone) reuses them at once. Then
# prepares vmm-kubelet (clients/kubelet): its modules, go vet, and one build
# (scripts/build-kubelet.sh) so the tests build it offline.
#
#   bash scripts/setup-k8s.sh                   build or reuse; the last line printed is the bin directory
#   bash scripts/setup-k8s.sh --bin-dir         print the bin directory; fail if it is not built
#   bash scripts/setup-k8s.sh --update-modules  regenerate the wrapper modules from the pinned versions
#
# Pinned: etcd v3.7.3, Kubernetes v1.37.2. Every dependency is pinned by the
# committed wrapper modules scripts/k8s/{kubernetes,etcd}/go.{mod,sum}:
# `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.37.2` is refused
# because k8s.io/kubernetes (and etcd's server module) replace their sibling
# modules with directories of their own repository. A wrapper module requires
# them and replaces each sibling with its published tag (v1.M.P -> v0.M.P),
# and lists the commands as `tool`s so `go mod tidy` keeps what they need.
#
# Cache: $VMM_CACHE/k8s (VMM_CACHE defaults to /var/cache/vmm for root, else
# ${XDG_CACHE_HOME:-~/.cache}/vmm). One directory per content hash of the
# wrapper modules and this script's build flags; builds are serialized with
# flock and published with a rename, so a half-built tree is never used.
# Cold build: about 10 minutes on 2 cores, ~1.3 GB of modules and ~4 GB of Go
# build cache (the Go defaults, GOMODCACHE and GOCACHE, so other Go builds
# share them). Needs Go >= 1.26 (GOTOOLCHAIN=local: no toolchain download).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODS=$ROOT/scripts/k8s

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KUBE_CMDS=(kube-apiserver kube-scheduler kube-controller-manager kubectl)
BUILD_DATE=2026-01-01T00:00:00Z # fixed, so the build is reproducible

say() { echo "setup-k8s: $*" >&2; }
die() { echo "setup-k8s: $*" >&2; exit 1; }

export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"

if [ -n "${VMM_CACHE:-}" ]; then
  CACHE=$VMM_CACHE/k8s
elif [ "$(id -u)" = 0 ]; then
  CACHE=/var/cache/vmm/k8s
else
  CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vmm/k8s
fi

# Version strings the binaries report, as Kubernetes' hack/lib/version.sh
# stamps them (unstamped, /version says v0.0.0-master and kubectl warns).
kube_ldflags() {
  local minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  local f="-s -w" p
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    f+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    f+=" -X $p.gitTreeState=clean -X $p.buildDate=$BUILD_DATE"
  done
  echo "$f"
}

bin_dir() {
  local h
  h=$(cat "$MODS"/kubernetes/go.mod "$MODS"/kubernetes/go.sum "$MODS"/etcd/go.mod "$MODS"/etcd/go.sum \
        <(kube_ldflags) <(go env GOVERSION) | sha256sum | cut -c1-12)
  echo "$CACHE/kube-$KUBE_VERSION-etcd-$ETCD_VERSION-$h/bin"
}

check_go() {
  command -v go >/dev/null || die "go not found on PATH (Go >= 1.26 builds the control plane)"
  local v
  v=$(go env GOVERSION)
  case "$v" in
    go1.2[6-9]*|go1.[3-9][0-9]*) ;;
    *) die "Go $v is too old: k8s.io/kubernetes $KUBE_VERSION needs Go >= 1.26" ;;
  esac
}

# download MODULE_DIR: fetch every module the wrapper needs, with the error
# the proxy gave if it refuses (offline, blocked, a version it does not serve).
download() {
  local out
  if ! out=$(cd "$1" && go mod download 2>&1); then
    die "the Go module proxy refused the modules of $1 (GOPROXY=$(go env GOPROXY)):
$(echo "$out" | tail -n 15)
The control plane is built from source: make a Go module proxy reachable (GOPROXY) and rerun."
  fi
}

# Regenerates scripts/k8s/*/go.{mod,sum} from the pinned versions (needs the proxy).
update_modules() {
  check_go
  export GOFLAGS="-mod=mod -buildvcs=false"
  local staging=v0.${KUBE_VERSION#v1.} upstream c
  mkdir -p "$MODS/kubernetes" "$MODS/etcd"
  upstream=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$upstream" ] || die "go mod download k8s.io/kubernetes@$KUBE_VERSION gave no go.mod"
  {
    printf 'module vmm.dev/vmm/scripts/k8s/kubernetes\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\n' "$KUBE_VERSION"
    printf '// k8s.io/kubernetes replaces these with ./staging/src/...; use the published tags.\nreplace (\n'
    sed -n '/^replace (/,/^)/p' "$upstream" | awk -v v="$staging" '$3 ~ /^\.\/staging\// {print "\t" $1 " => " $1 " " v}'
    printf ')\n'
  } > "$MODS/kubernetes/go.mod"
  rm -f "$MODS/kubernetes/go.sum"
  (cd "$MODS/kubernetes" && for c in "${KUBE_CMDS[@]}"; do go get -tool "k8s.io/kubernetes/cmd/$c@$KUBE_VERSION"; done && go mod tidy)
  printf 'module vmm.dev/vmm/scripts/k8s/etcd\n\ngo 1.26.0\n' > "$MODS/etcd/go.mod"
  rm -f "$MODS/etcd/go.sum"
  (cd "$MODS/etcd" && go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy)
  say "wrote $MODS/{kubernetes,etcd}/go.{mod,sum}; commit them"
}

# Checks that the binaries in $1 run and report the pinned versions.
verify() {
  local dir=$1 c out
  out=$("$dir/etcd" --version 2>&1) || die "$dir/etcd --version failed: $out"
  grep -q "etcd Version: ${ETCD_VERSION#v}\$" <<<"$out" || die "$dir/etcd reports: $out"
  for c in kube-apiserver kube-scheduler kube-controller-manager; do
    out=$("$dir/$c" --version 2>&1) || die "$dir/$c --version failed: $out"
    [ "$out" = "Kubernetes $KUBE_VERSION" ] || die "$dir/$c reports: $out"
  done
  out=$("$dir/kubectl" version --client 2>&1) || die "$dir/kubectl version failed: $out"
  grep -q "Client Version: $KUBE_VERSION\$" <<<"$out" || die "$dir/kubectl reports: $out"
}

build() {
  check_go
  local bin top tmp start
  bin=$(bin_dir)
  top=$(dirname "$bin")
  if [ -f "$top/.complete" ]; then echo "$bin"; return; fi
  mkdir -p "$CACHE"
  command -v flock >/dev/null || die "flock not found (util-linux)"
  exec 9>"$CACHE/.lock"
  flock 9
  if [ -f "$top/.complete" ]; then echo "$bin"; return; fi # built while we waited
  start=$SECONDS
  say "building etcd $ETCD_VERSION and Kubernetes $KUBE_VERSION into $top (cold: ~10 min on 2 cores)"
  download "$MODS/kubernetes"
  download "$MODS/etcd"
  tmp=$(mktemp -d "$CACHE/.build.XXXXXX")
  chmod 755 "$tmp"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  mkdir -p "$tmp/bin"
  (cd "$MODS/etcd" && go build -trimpath -ldflags="-s -w" -o "$tmp/bin/etcd" go.etcd.io/etcd/server/v3) \
    || die "go build of etcd failed"
  local pkgs=() c
  for c in "${KUBE_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$MODS/kubernetes" && go build -trimpath -ldflags="$(kube_ldflags)" -o "$tmp/bin/" "${pkgs[@]}") \
    || die "go build of the Kubernetes commands failed"
  verify "$tmp/bin"
  date -u +%FT%TZ > "$tmp/.complete"
  rm -rf "$top"
  mv "$tmp" "$top"
  trap - EXIT
  say "built in $((SECONDS - start)) s"
  echo "$bin"
}

# The tests build vmm-kubelet offline: download its modules and build it
# once here, with the proxy, so that only relinking is left for them.
prepare_kubelet() {
  local out
  (cd clients/kubelet && go mod download 2>&1) >/dev/null || die "the Go module proxy refused the modules of clients/kubelet (GOPROXY=$(go env GOPROXY))"
  (cd clients/kubelet && go vet ./...) || die "go vet of clients/kubelet failed"
  # The suite runs these tests (clients/kubelet/kubelet.test.ts) with the same flags.
  (cd clients/kubelet && go test -trimpath -count=1 ./... >/dev/null) || die "go test of clients/kubelet failed"
  out=$(mktemp -d)
  bash scripts/build-kubelet.sh "$out/vmm-kubelet" || { rm -rf "$out"; die "building vmm-kubelet failed"; }
  rm -rf "$out"
  say "vmm-kubelet builds"
}

case "${1:-}" in
  "")
    # shellcheck source=scripts/lib/apt.sh
    . scripts/lib/apt.sh
    ensure_packages openssl # the fleet tests make their certificates with it
    bin=$(build)
    prepare_kubelet
    echo "$bin" ;;
  --bin-dir)
    check_go
    bin=$(bin_dir)
    [ -f "$(dirname "$bin")/.complete" ] || die "the control plane is not built at $bin: run bash scripts/setup-k8s.sh"
    echo "$bin" ;;
  --update-modules) update_modules ;;
  *) die "unknown argument $1 (usage: setup-k8s.sh [--bin-dir | --update-modules])" ;;
esac

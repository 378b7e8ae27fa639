#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their published Go modules into the cache outside the repo
# (HYPERSCALE_CACHE, default ~/.cache/hyperscale/kube-<version>-etcd-<version>/bin). A warm cache is a
# no-op; cold it takes minutes (measured on 2 cores: hack/README.md).
#
# Why build: no registry reachable from this kind of machine ships a kube-apiserver binary, and
# Debian's etcd (3.4.23) is older than Kubernetes 1.31+ accepts. The Go module proxy has both.
#
# Usage: hack/kube/build.sh        (prints the bin folder on stdout)
set -euo pipefail
# shellcheck source=hack/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

bin_dir="${KUBE_BIN_DIR}"
if [[ -x "${bin_dir}/kube-apiserver" && -x "${bin_dir}/etcd" ]]; then
  printf '%s\n' "${bin_dir}"
  exit 0
fi
command -v go >/dev/null || die "the Go toolchain (>= 1.25, https://go.dev/dl) is needed to build kube-apiserver and etcd"

work="${KUBE_CACHE_DIR}/src"
mkdir -p "${work}/apiserver" "${work}/etcd" "${bin_dir}"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

build_apiserver() {
  local staging="v0.${KUBE_VERSION#v1.}" minor="${KUBE_VERSION#v1.}" mod d
  minor="${minor%%.*}"
  cd "${work}/apiserver"
  [[ -f go.mod ]] || go mod init hyperscale.local/kube-apiserver >/dev/null 2>&1
  go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" >/dev/null
  mod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/${KUBE_VERSION}.mod"
  # k8s.io/kubernetes requires its staging modules at v0.0.0: each needs a replace to its release.
  {
    printf 'module hyperscale.local/kube-apiserver\n\ngo 1.25.0\n\nrequire k8s.io/kubernetes %s\n\n' "${KUBE_VERSION}"
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0\s*$' "${mod}" | awk '{print $1}' | sort -u | while read -r d; do
      printf 'replace %s => %s %s\n' "${d}" "${d}" "${staging}"
    done
  } >go.mod
  cat >main.go <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
GO
  go mod tidy >/dev/null
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}" -o "${bin_dir}/kube-apiserver.tmp" .
  mv "${bin_dir}/kube-apiserver.tmp" "${bin_dir}/kube-apiserver"
}

build_etcd() {
  cd "${work}/etcd"
  printf 'module hyperscale.local/etcd\n\ngo 1.25.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "${ETCD_VERSION}" >go.mod
  cat >main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
GO
  go mod tidy >/dev/null
  go build -trimpath -ldflags "-s -w" -o "${bin_dir}/etcd.tmp" .
  mv "${bin_dir}/etcd.tmp" "${bin_dir}/etcd"
}

# Usage: timed WHAT FUNCTION   (runs FUNCTION in a subshell, so its `cd` stays there; no `||` after
# it, which would switch off `set -e` inside: a failing step ends the script with go's message)
timed() {
  local started
  started="$(hs_now)"
  log "building $1 (cold: minutes)"
  ("$2")
  log "built $1 in $(($(hs_now) - started)) s"
}

[[ -x "${bin_dir}/etcd" ]] || timed "etcd ${ETCD_VERSION}" build_etcd
[[ -x "${bin_dir}/kube-apiserver" ]] || timed "kube-apiserver ${KUBE_VERSION}" build_apiserver
log "kube binaries ready: ${bin_dir}"
printf '%s\n' "${bin_dir}"

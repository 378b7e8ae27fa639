#!/usr/bin/env bash
# Starts, stops and reports the project's own processes against the local stack.
# A process is any package with a compiled entry point `dist/main.js` and a `local.env` file beside
# its package.json holding its local settings (ports of DESIGN.md §5). Logs and PID files live in
# .stack/services/. Usage: hack/services.sh up | down | status
set -euo pipefail
cd "$(dirname "$0")/.."
state=.stack/services
mkdir -p "$state"

# Operators first: the counter service is not ready before the operator published its slot map.
packages() {
  local dir
  for dir in operators/* services/*; do
    [[ -f $dir/dist/main.js && -f $dir/local.env ]] && echo "$dir"
  done
  return 0
}

pid_of() { [[ -f $state/$1.pid ]] && cat "$state/$1.pid"; }
alive() { local pid; pid=$(pid_of "$1") && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }

metrics_port() { grep -E '^METRICS_PORT=' "$1/local.env" | cut -d= -f2; }

wait_ready() {
  local name=$1 port=$2 deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if curl -fsS -m 1 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    alive "$name" || { echo "$name exited during start-up; see $state/$name.log" >&2; tail -n 20 "$state/$name.log" >&2; return 1; }
    sleep 0.3
  done
  echo "$name not ready within 30 s; see $state/$name.log" >&2
  return 1
}

kubectl() { .stack/bin/kubectl --kubeconfig .stack/kube/kubeconfig --request-timeout=10s "$@"; }

# The example CounterShard (k8s/examples/countershard.yaml) unless one named `counters` exists, so
# the local counter service has a slot map; then wait for the operator to publish it.
ensure_countershard() {
  kubectl apply --server-side --force-conflicts --field-manager=hyperscale-hack -f k8s/operator/rbac.yaml >/dev/null
  if ! kubectl get countershard counters -n default >/dev/null 2>&1; then
    kubectl create -f k8s/examples/countershard.yaml >/dev/null
    echo "CounterShard default/counters created from k8s/examples/countershard.yaml"
  fi
  local deadline=$((SECONDS + 30))
  until kubectl get configmap counters-slotmap -n default >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "the operator did not publish ConfigMap default/counters-slotmap within 30 s; see $state/countershard.log" >&2; return 1; }
    sleep 0.3
  done
}

up() {
  local dir name
  for dir in $(packages); do
    name=$(basename "$dir")
    [[ $dir == services/* && ${countershard_ready:-0} == 0 ]] && { ensure_countershard; countershard_ready=1; }
    if alive "$name"; then echo "$name already running (pid $(pid_of "$name"))"; continue; fi
    (
      set -a
      # shellcheck disable=SC1091
      source "$dir/local.env"
      [[ -f .stack/dev.env ]] && source .stack/dev.env
      # Traces go to the stack's Jaeger (query API http://127.0.0.1:16686) unless set otherwise.
      OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:4318}"
      set +a
      cd "$dir"
      nohup setsid node --enable-source-maps --import @hyperscale/platform/telemetry dist/main.js \
        >>"../../$state/$name.log" 2>&1 &
      echo $! >"../../$state/$name.pid"
    )
    wait_ready "$name" "$(metrics_port "$dir")"
    echo "$name ready (pid $(pid_of "$name"), log $state/$name.log)"
  done
}

down() {
  local file name pid
  for file in "$state"/*.pid; do
    [[ -e $file ]] || continue
    name=$(basename "$file" .pid)
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "$name stopped"
    fi
    rm -f "$file"
  done
}

status() {
  local dir name code=0
  for dir in $(packages); do
    name=$(basename "$dir")
    if alive "$name" && curl -fsS -m 1 "http://127.0.0.1:$(metrics_port "$dir")/readyz" >/dev/null 2>&1; then
      echo "$name ready (pid $(pid_of "$name"))"
    else
      echo "$name DOWN"; code=1
    fi
  done
  return $code
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac

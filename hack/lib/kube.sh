# shellcheck shell=bash
# etcd (2379, peer 2380) and a real kube-apiserver (https 6443) built by hack/kube/build.sh.
# No kubelet, scheduler or controller-manager runs: objects are stored, validated, defaulted,
# authorised and watched, which is what the operator, the CRDs and `kubectl apply --dry-run=server`
# need. Sourced by hack/stack.sh after lib/common.sh.

kube_bin() { printf '%s/%s\n' "${KUBE_BIN_DIR}" "$1"; }
kube_tool() { printf '%s/%s\n' "${KUBE_TOOLS_DIR}" "$1"; }
kubeapi_pki() { printf '%s/pki\n' "$(server_dir kube-apiserver)"; }
kubeapi_url() { printf 'https://%s:%s\n' "${HS_HOST}" "${HS_KUBE_API_PORT}"; }
kube_operator_user() { printf 'system:serviceaccount:%s:%s\n' "${HS_OPERATOR_NAMESPACE}" "${HS_OPERATOR_SERVICE_ACCOUNT}"; }

kube_require_binaries() {
  local b
  for b in etcd kube-apiserver; do
    [[ -x "$(kube_bin "${b}")" ]] || die "${b} is not built in ${KUBE_BIN_DIR}: run hack/install-deps.sh (hack/kube/build.sh)"
  done
}

# --- etcd ---------------------------------------------------------------------------------------
etcd_start() {
  local dir client peer
  dir="$(server_dir etcd)"
  client="http://${HS_HOST}:${HS_ETCD_PORT}"
  peer="http://${HS_HOST}:${HS_ETCD_PEER_PORT}"
  kube_require_binaries
  log "starting etcd ${ETCD_VERSION} on ${HS_HOST}:${HS_ETCD_PORT} (peer ${HS_ETCD_PEER_PORT})"
  # --unsafe-no-fsync: a killed process loses nothing, only an OS crash could (like MariaDB here).
  spawn etcd "$(kube_bin etcd)" --name=hyperscale --data-dir="${dir}/data" \
    --listen-client-urls="${client}" --advertise-client-urls="${client}" \
    --listen-peer-urls="${peer}" --initial-advertise-peer-urls="${peer}" \
    --initial-cluster="hyperscale=${peer}" --initial-cluster-state=new \
    --unsafe-no-fsync --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) --log-level=warn
}

etcd_health() { curl -fsS --max-time "${HS_CLIENT_TIMEOUT}" "http://${HS_HOST}:${HS_ETCD_PORT}/health" 2>/dev/null; }
etcd_ready() { [[ "$(etcd_health)" == *'"health":"true"'* ]]; }
etcd_healthy() { etcd_ready; }
etcd_describe() {
  local size
  size="$(du -sh "$(server_dir etcd)/data" 2>/dev/null | cut -f1)"
  echo "etcd ${ETCD_VERSION} single member, peer ${HS_ETCD_PEER_PORT}, data ${size:-?} ($(etcd_health || echo 'no answer'))"
}

# --- kube-apiserver: certificates, tokens, kubeconfigs -------------------------------------------
# Made once in .stack/kube-apiserver/pki with openssl: a CA, the serving certificate for
# 127.0.0.1/localhost (and the in-cluster names, for completeness), the service-account key pair.
kubeapi_make_pki() {
  local pki
  pki="$(kubeapi_pki)"
  [[ -f "${pki}/complete" ]] && return 0
  command -v openssl >/dev/null || die "openssl is needed for the kube-apiserver certificates (apt-get install openssl)"
  rm -rf "${pki}"
  mkdir -p "${pki}"
  chmod 700 "${pki}"
  log "kube-apiserver: making a CA, serving certificate and service-account key in ${pki}"
  cat >"${pki}/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = hyperscale-local-ca
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:10.0.0.1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
CNF
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -config "${pki}/openssl.cnf" -extensions ca \
      -keyout "${pki}/ca.key" -out "${pki}/ca.crt" &&
      openssl req -new -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
        -keyout "${pki}/apiserver.key" -out "${pki}/apiserver.csr" &&
      openssl x509 -req -days 3650 -in "${pki}/apiserver.csr" -CA "${pki}/ca.crt" -CAkey "${pki}/ca.key" \
        -CAcreateserial -extfile "${pki}/openssl.cnf" -extensions serving -out "${pki}/apiserver.crt" &&
      openssl genrsa -out "${pki}/sa.key" 2048 &&
      openssl rsa -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub"
  } >>"$(server_log kube-apiserver)" 2>&1 || die "kube-apiserver: openssl failed; read $(server_log kube-apiserver)"
  touch "${pki}/complete"
}

# Static bearer tokens (random, made once): the admin in system:masters, and the operator as its
# service account with the groups a real service-account token carries, so RBAC treats it exactly
# like the operator's ServiceAccount of k8s/operator/rbac.yaml.
kubeapi_make_tokens() {
  local file
  file="$(kubeapi_pki)/tokens.csv"
  [[ -s "${file}" ]] && return 0
  (
    umask 077
    printf '%s,%s,%s,"%s"\n' "$(openssl rand -hex 32)" "${HS_KUBE_ADMIN_USER}" "${HS_KUBE_ADMIN_USER}" "system:masters"
    printf '%s,%s,%s,"%s"\n' "$(openssl rand -hex 32)" "$(kube_operator_user)" "${HS_OPERATOR_SERVICE_ACCOUNT}" \
      "system:serviceaccounts,system:serviceaccounts:${HS_OPERATOR_NAMESPACE},system:authenticated"
  ) >"${file}.tmp"
  mv "${file}.tmp" "${file}"
}

# The token of USER from the token file.
kubeapi_token() { awk -F, -v u="$1" '$2 == u { print $1 }' "$(kubeapi_pki)/tokens.csv"; }

# Usage: kube_write_kubeconfig FILE CONTEXT USER NAMESPACE
kube_write_kubeconfig() {
  local file="$1" context="$2" user="$3" namespace="$4" token ca
  token="$(kubeapi_token "${user}")"
  [[ -n "${token}" ]] || die "no token for ${user} in $(kubeapi_pki)/tokens.csv"
  ca="$(base64 -w0 <"$(kubeapi_pki)/ca.crt")"
  mkdir -p "${HS_KUBE_DIR}"
  (
    umask 077
    cat >"${file}.tmp" <<YAML
# The local kube-apiserver of hack/stack.sh ($(kubeapi_url)); user ${user}.
apiVersion: v1
kind: Config
clusters:
  - name: hyperscale-local
    cluster:
      server: $(kubeapi_url)
      certificate-authority-data: ${ca}
users:
  - name: ${context}
    user:
      token: ${token}
contexts:
  - name: ${context}
    context:
      cluster: hyperscale-local
      user: ${context}
      namespace: ${namespace}
current-context: ${context}
YAML
  )
  mv "${file}.tmp" "${file}"
}

kubeapi_prepare() {
  mkdir -p "$(server_dir kube-apiserver)" "${HS_LOG_DIR}"
  kubeapi_make_pki
  kubeapi_make_tokens
  kube_write_kubeconfig "${HS_KUBECONFIG}" hyperscale-local "${HS_KUBE_ADMIN_USER}" default
  kube_write_kubeconfig "${HS_OPERATOR_KUBECONFIG}" hyperscale-local-operator "$(kube_operator_user)" \
    "${HS_OPERATOR_NAMESPACE}"
}

# --- kube-apiserver: the server -------------------------------------------------------------------
kubeapi_start() {
  local pki deadline
  pki="$(kubeapi_pki)"
  kube_require_binaries
  kubeapi_prepare
  # The API server gives up when its store does not answer at start-up: etcd first.
  deadline=$(($(hs_now) + HS_READY_TIMEOUT))
  until etcd_ready; do
    server_pid etcd >/dev/null || die "kube-apiserver needs etcd, which is not running: hack/stack.sh start etcd"
    (($(hs_now) < deadline)) || die "etcd not ready after ${HS_READY_TIMEOUT}s; read $(server_log etcd)"
    sleep 0.2
  done
  log "starting kube-apiserver ${KUBE_VERSION} on $(kubeapi_url) (etcd ${HS_HOST}:${HS_ETCD_PORT})"
  # The flags envtest uses, with a static token file instead of client certificates.
  # ServiceAccount admission is off: no controller-manager creates service-account tokens here.
  # No endpoint reconciler: it would publish 127.0.0.1 as the `kubernetes` Service's endpoint,
  # which the API rejects (loopback) and logs every 10 s; no pod runs to use it anyway.
  spawn kube-apiserver "$(kube_bin kube-apiserver)" \
    --etcd-servers="http://${HS_HOST}:${HS_ETCD_PORT}" \
    --bind-address="${HS_HOST}" --advertise-address="${HS_HOST}" --secure-port="${HS_KUBE_API_PORT}" \
    --tls-cert-file="${pki}/apiserver.crt" --tls-private-key-file="${pki}/apiserver.key" \
    --token-auth-file="${pki}/tokens.csv" \
    --authorization-mode=RBAC \
    --service-cluster-ip-range="${HS_KUBE_SERVICE_CIDR}" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="${pki}/sa.pub" --service-account-signing-key-file="${pki}/sa.key" \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    --profiling=false
}

kubeapi_readyz() {
  local pki token
  pki="$(kubeapi_pki)"
  [[ -f "${pki}/ca.crt" && -f "${pki}/tokens.csv" ]] || return 1
  token="$(kubeapi_token "${HS_KUBE_ADMIN_USER}")"
  curl -sS --max-time "${HS_CLIENT_TIMEOUT}" --cacert "${pki}/ca.crt" -H "Authorization: Bearer ${token}" \
    "$(kubeapi_url)/readyz" 2>/dev/null
}

kubeapi_ready() { [[ "$(kubeapi_readyz)" == ok ]]; }
kubeapi_healthy() { kubeapi_ready; }
kubeapi_describe() {
  local answer
  answer="$(kubeapi_readyz)" || answer="no answer"
  echo "kube-apiserver ${KUBE_VERSION} $(kubeapi_url) (readyz: ${answer:0:60}; KUBECONFIG=${HS_KUBECONFIG})"
}

# kubectl as the admin of the local API server, every call with a time limit.
kube_kubectl() {
  [[ -x "$(kube_tool kubectl)" ]] || die "kubectl missing in ${KUBE_TOOLS_DIR}: run hack/install-deps.sh"
  timeout 60 "$(kube_tool kubectl)" --kubeconfig="${HS_KUBECONFIG}" --request-timeout=20s "$@"
}

# After start: the operator's namespace, and every CRD of k8s/crds applied and Established.
kube_post_start() {
  local deadline="$1" left f names=""
  left=$((deadline - $(hs_now)))
  ((left > 10)) || left=10
  if ! kube_kubectl apply --server-side --field-manager=hack-stack -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: ${HS_OPERATOR_NAMESPACE}
YAML
  then
    die "kube-apiserver: creating namespace ${HS_OPERATOR_NAMESPACE} failed; read $(server_log kube-apiserver)"
  fi
  compgen -G "${HS_CRD_DIR}/*.yaml" >/dev/null || return 0
  kube_kubectl apply --server-side --force-conflicts --field-manager=hack-stack -f "${HS_CRD_DIR}" >/dev/null ||
    die "kube-apiserver: applying the CRDs in ${HS_CRD_DIR} failed"
  kube_kubectl wait --for=condition=Established --timeout="${left}s" -f "${HS_CRD_DIR}" >/dev/null ||
    die "kube-apiserver: the CRDs in ${HS_CRD_DIR} were not Established within ${left}s"
  for f in "${HS_CRD_DIR}"/*.yaml; do names+=" $(basename "${f}" .yaml)"; done
  log "kube-apiserver: CRDs applied and Established:${names}"
}

{{/* Names, labels and the environment shared by the services. */}}

{{- define "hyperscale.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* <fullname>-<component>, e.g. hyperscale-like. Call with (list $ "like"). */}}
{{- define "hyperscale.name" -}}
{{- printf "%s-%s" (include "hyperscale.fullname" (index . 0)) (index . 1) -}}
{{- end -}}

{{- define "hyperscale.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: hyperscale
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
{{ include "hyperscale.selectorLabels" . }}
{{- end -}}

{{/* Labels of pod templates: no chart version, so a chart upgrade alone does not roll pods. */}}
{{- define "hyperscale.podLabels" -}}
{{ include "hyperscale.selectorLabels" . }}
app.kubernetes.io/part-of: hyperscale
{{- end -}}

{{- define "hyperscale.selectorLabels" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end -}}

{{- define "hyperscale.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* mysql.primaryUrl, which the chart's Secrets need when secrets.existingSecret is not given. */}}
{{- define "hyperscale.mysqlPrimaryUrl" -}}
{{- required "mysql.primaryUrl is required (mysql://user:password@host:3306/database), or name a Secret holding MYSQL_PRIMARY_URL in secrets.existingSecret" .Values.mysql.primaryUrl -}}
{{- end -}}

{{- define "hyperscale.secretName" -}}
{{- default (include "hyperscale.name" (list . "secrets")) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Where the services send traces: telemetry.otlpEndpoint, else the release's collector, else nowhere. */}}
{{- define "hyperscale.otlpEndpoint" -}}
{{- if .Values.telemetry.otlpEndpoint -}}
{{- .Values.telemetry.otlpEndpoint -}}
{{- else if .Values.telemetry.collector.enabled -}}
{{- printf "http://%s:4318" (include "hyperscale.name" (list . "otel-collector")) -}}
{{- end -}}
{{- end -}}

{{- define "hyperscale.kafkaBrokers" -}}
{{- if .Values.kafka.brokers -}}
{{- join "," .Values.kafka.brokers -}}
{{- else -}}
{{- printf "%s-kafka-bootstrap:9092" .Values.kafka.strimzi.clusterName -}}
{{- end -}}
{{- end -}}

{{- define "hyperscale.sentinels" -}}
{{- $out := list -}}
{{- range .Values.redis.sentinels -}}
{{- $out = append $out (printf "%s:%d" .host (int .port)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* A variable from the services' Secret. Call with (list $ "KEY" optional). */}}
{{- define "hyperscale.secretEnv" -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "hyperscale.secretName" (index . 0) }}
      key: {{ index . 1 }}
      {{- if index . 2 }}
      optional: true
      {{- end }}
{{- end -}}

{{/*
What every process reads (platform processEnv). Call with (list $ "service-name" metricsPort
componentValues). The graceful shutdown is bounded 5 s inside the pod's termination grace period,
so a process finishes (or gives up) on its own before the kubelet's SIGKILL.
*/}}
{{- define "hyperscale.env.process" -}}
{{- $root := index . 0 -}}
- name: SERVICE_NAME
  value: {{ index . 1 | quote }}
- name: LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
- name: METRICS_PORT
  value: {{ index . 2 | quote }}
- name: SHUTDOWN_TIMEOUT_MS
  value: {{ mul (sub (index . 3).terminationGracePeriodSeconds 5) 1000 | quote }}
{{- with include "hyperscale.otlpEndpoint" $root }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $root.Values.telemetry.samplingRatio | toString | quote }}
{{- end }}
{{- end -}}

{{- define "hyperscale.env.redis" -}}
- name: REDIS_SENTINELS
  value: {{ include "hyperscale.sentinels" . | quote }}
- name: REDIS_MASTER_NAMES
  value: {{ join "," .Values.redis.masterNames | quote }}
- name: REDIS_CONNECT_TIMEOUT_MS
  value: {{ .Values.redis.connectTimeoutMs | quote }}
- name: REDIS_COMMAND_TIMEOUT_MS
  value: {{ .Values.redis.commandTimeoutMs | quote }}
{{- end -}}

{{- define "hyperscale.env.mysql" -}}
{{ include "hyperscale.secretEnv" (list . "MYSQL_PRIMARY_URL" false) }}
{{ include "hyperscale.secretEnv" (list . "MYSQL_REPLICA_URL" true) }}
- name: MYSQL_CONNECTION_LIMIT
  value: {{ .Values.mysql.connectionLimit | quote }}
{{- end -}}

{{- define "hyperscale.env.kafka" -}}
- name: KAFKA_BROKERS
  value: {{ include "hyperscale.kafkaBrokers" . | quote }}
{{- end -}}

{{- define "hyperscale.env.auth" -}}
{{ include "hyperscale.secretEnv" (list . "JWT_HS256_SECRET" true) }}
{{- with .Values.auth.jwksUrl }}
- name: JWT_JWKS_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.auth.issuer }}
- name: JWT_ISSUER
  value: {{ . | quote }}
{{- end }}
{{- with .Values.auth.audience }}
- name: JWT_AUDIENCE
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The component's extra variables (values <component>.env), sorted by name. */}}
{{- define "hyperscale.env.extra" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Pod placement and security shared by every workload. Call with (list $ componentValues). */}}
{{- define "hyperscale.podSpec" -}}
{{- $root := index . 0 -}}
{{- $values := index . 1 -}}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds | default 30 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Probes of a service's metrics port: /livez (the event loop answers) and /readyz (dependencies and,
for the counter, a slot map). Call with the port name.
*/}}
{{- define "hyperscale.probes" -}}
startupProbe:
  httpGet: { path: /livez, port: {{ . }} }
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet: { path: /livez, port: {{ . }} }
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: { path: /readyz, port: {{ . }} }
  periodSeconds: 5
  failureThreshold: 2
{{- end -}}

{{/* The node command of a service image: telemetry first, then the service's entry point. */}}
{{- define "hyperscale.command" -}}
command: [node, --enable-source-maps, --import, '@hyperscale/platform/telemetry', {{ printf "%s/dist/main.js" . | quote }}]
{{- end -}}

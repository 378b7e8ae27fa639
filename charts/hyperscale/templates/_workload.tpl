{{/*
Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget of an HTTP service.
Call with (dict "root" $ "component" "like" "values" .Values.like "httpPort" 8080 "metricsPort" 9101
"env" <rendered env list> "serviceAccount" <name or "">).
*/}}
{{- define "hyperscale.httpService" -}}
{{- $root := .root -}}
{{- $c := .component -}}
{{- $v := .values -}}
{{- $name := include "hyperscale.name" (list $root $c) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hyperscale.labels" (list $root $c) | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "hyperscale.selectorLabels" (list $root $c) | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate: { maxUnavailable: 0, maxSurge: 25% }
  template:
    metadata:
      labels:
        {{- include "hyperscale.podLabels" (list $root $c) | nindent 8 }}
      annotations:
        {{- if not $root.Values.secrets.existingSecret }}
        checksum/secrets: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- end }}
    spec:
      {{- include "hyperscale.podSpec" (list $root $v) | nindent 6 }}
      {{- with .serviceAccount }}
      serviceAccountName: {{ . }}
      {{- else }}
      automountServiceAccountToken: false
      {{- end }}
      {{- if not $v.affinity }}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "hyperscale.selectorLabels" (list $root $c) | nindent 20 }}
      {{- end }}
      containers:
        - name: {{ $c }}
          image: {{ include "hyperscale.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          {{- include "hyperscale.command" (printf "services/%s" $c) | nindent 10 }}
          env:
            - name: HTTP_PORT
              value: {{ .httpPort | quote }}
            {{- .env | nindent 12 }}
          ports:
            - { name: http, containerPort: {{ .httpPort }} }
            - { name: metrics, containerPort: {{ .metricsPort }} }
          {{- include "hyperscale.probes" "metrics" | nindent 10 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hyperscale.labels" (list $root $c) | nindent 4 }}
spec:
  selector:
    {{- include "hyperscale.selectorLabels" (list $root $c) | nindent 4 }}
  ports:
    - { name: http, port: 80, targetPort: http }
    - { name: metrics, port: {{ .metricsPort }}, targetPort: metrics }
{{- if $v.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hyperscale.labels" (list $root $c) | nindent 4 }}
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: {{ $name }} }
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: { type: Utilization, averageUtilization: {{ $v.autoscaling.targetCPUUtilizationPercentage }} }
  behavior:
    # Scale in slowly: a pod that leaves drains its connections and flushes its producer.
    scaleDown:
      stabilizationWindowSeconds: 300
      policies: [{ type: Percent, value: 20, periodSeconds: 60 }]
{{- end }}
{{- include "hyperscale.pdb" (list $root $c $v) }}
{{- end -}}

{{/* PodDisruptionBudget of a component when enabled. Call with (list $ component values). */}}
{{- define "hyperscale.pdb" -}}
{{- $root := index . 0 -}}
{{- $c := index . 1 -}}
{{- $v := index . 2 -}}
{{- if $v.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "hyperscale.name" (list $root $c) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "hyperscale.labels" (list $root $c) | nindent 4 }}
spec:
  maxUnavailable: {{ $v.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "hyperscale.selectorLabels" (list $root $c) | nindent 6 }}
{{- end }}
{{- end -}}

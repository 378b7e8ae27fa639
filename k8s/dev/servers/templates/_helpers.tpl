{{/* Labels of a dev server. Call with (list $ "redis"). */}}
{{- define "devServers.labels" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/part-of: hyperscale-dev
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
{{- end -}}

{{/* Containers of the dev servers run as their images' users, without privileges. */}}
{{- define "devServers.securityContext" -}}
allowPrivilegeEscalation: false
capabilities: { drop: [ALL] }
seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{/* Names and labels shared by every object of the chart. */}}

{{- define "admission.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "admission.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "admission.labels" -}}
{{ include "admission.selectorLabels" . }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The Secret cert-manager writes the serving certificate into. */}}
{{- define "admission.certSecret" -}}
{{ include "admission.fullname" . }}-tls
{{- end -}}

{{/* Namespaces the webhook is never called for. */}}
{{- define "admission.exemptNamespaces" -}}
{{- $system := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace -}}
{{- concat $system .Values.exemptNamespaces | uniq | toJson -}}
{{- end -}}

{{/* Checks of the values that would make a broken or unsafe deployment. */}}
{{- define "admission.validate" -}}
{{- if lt (int .Values.replicas) 2 -}}
{{- fail "replicas must be 2 or more: with failurePolicy Fail one pod being replaced would block every route write" -}}
{{- end -}}
{{- if not .Values.domains -}}
{{- fail "domains must name at least one public domain (e.g. toolforge.org)" -}}
{{- end -}}
{{- if not (has .Values.webhook.failurePolicy (list "Fail" "Ignore")) -}}
{{- fail "webhook.failurePolicy must be Fail or Ignore" -}}
{{- end -}}
{{- $timeout := int .Values.webhook.timeoutSeconds -}}
{{- if or (lt $timeout 1) (gt $timeout 30) -}}
{{- fail "webhook.timeoutSeconds must be between 1 and 30" -}}
{{- end -}}
{{- range .Values.gateways -}}
{{- if ne (len (splitList "/" .)) 2 -}}
{{- fail (printf "gateways: %q is not <namespace>/<name>" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

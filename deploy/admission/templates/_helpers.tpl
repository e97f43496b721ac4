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

{{/* Names and labels shared by every object. */}}
{{- define "groundwire.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "groundwire.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "groundwire.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "groundwire.secretName" -}}
{{- default (printf "%s-secrets" (include "groundwire.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{/* The environment of every Groundwire container. */}}
{{- define "groundwire.env" -}}
- name: DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ include "groundwire.secretName" . }}, key: DATABASE_URL}}
- name: REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ include "groundwire.secretName" . }}, key: REDIS_URL}}
- name: GROUNDWIRE_ADMIN_KEY
  valueFrom: {secretKeyRef: {name: {{ include "groundwire.secretName" . }}, key: GROUNDWIRE_ADMIN_KEY}}
- name: OPENAI_API_KEY
  valueFrom: {secretKeyRef: {name: {{ include "groundwire.secretName" . }}, key: OPENAI_API_KEY, optional: true}}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "groundwire.image" -}}
image: {{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- end -}}

{{- define "groundwire.securityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: false
  capabilities: {drop: [ALL]}
{{- end -}}

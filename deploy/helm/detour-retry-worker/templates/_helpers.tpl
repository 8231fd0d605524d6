{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "detour-retry-worker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name + chart name, unless the release name already contains the chart name. */}}
{{- define "detour-retry-worker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "detour-retry-worker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "detour-retry-worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "detour-retry-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "detour-retry-worker.labels" -}}
helm.sh/chart: {{ include "detour-retry-worker.chart" . }}
{{ include "detour-retry-worker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: retry-worker
app.kubernetes.io/part-of: detour
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "detour-retry-worker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "detour-retry-worker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image: repository@digest, or repository:tag (tag defaults to the appVersion). */}}
{{- define "detour-retry-worker.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Secret holding the SASL password: the user's existing one, or the chart-created one. */}}
{{- define "detour-retry-worker.saslSecretName" -}}
{{- default (printf "%s-sasl" (include "detour-retry-worker.fullname" .)) .Values.kafka.sasl.existingSecret }}
{{- end }}

{{- define "detour-retry-worker.saslSecretKey" -}}
{{- if .Values.kafka.sasl.existingSecret }}
{{- .Values.kafka.sasl.passwordKey }}
{{- else }}
{{- "password" }}
{{- end }}
{{- end }}

{{/* True ("true") when the chart must create the SASL Secret. */}}
{{- define "detour-retry-worker.createSaslSecret" -}}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) }}true{{ end }}
{{- end }}

{{/* Shutdown timeout in whole seconds, rounded up. */}}
{{- define "detour-retry-worker.shutdownSeconds" -}}
{{- $ms := int64 .Values.shutdownTimeoutMs }}
{{- div (add $ms 999) 1000 }}
{{- end }}

{{/* Grace period: explicit (checked to exceed the shutdown timeout) or shutdown + close timeouts + 15 s. */}}
{{- define "detour-retry-worker.terminationGracePeriodSeconds" -}}
{{- $shutdown := int64 (include "detour-retry-worker.shutdownSeconds" .) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- $closeMs := 5000 }}
{{- if not (kindIs "invalid" .Values.closeTimeoutMs) }}{{ $closeMs = int64 .Values.closeTimeoutMs }}{{ end }}
{{- add (div (add (int64 .Values.shutdownTimeoutMs) $closeMs 999) 1000) 15 }}
{{- else }}
{{- $grace := int64 .Values.terminationGracePeriodSeconds }}
{{- if le $grace $shutdown }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be longer than shutdownTimeoutMs (%d s): Kubernetes would kill the worker while its handlers finish; raise it or leave it null" $grace $shutdown) }}
{{- end }}
{{- $grace }}
{{- end }}
{{- end }}

{{/*
The main app's group and the worker's own, as the worker resolves them (core's rule): groupId and
workerGroupId (default <groupId>-detour-retry), or the deprecated consumerGroup (the main app's group;
groupId is then the worker's own group). YAML: main, worker.
*/}}
{{- define "detour-retry-worker.groups" -}}
{{- if .Values.consumerGroup }}
main: {{ .Values.consumerGroup | quote }}
worker: {{ .Values.workerGroupId | default .Values.groupId | default (printf "%s-detour-retry" .Values.consumerGroup) | quote }}
{{- else }}
main: {{ .Values.groupId | quote }}
worker: {{ .Values.workerGroupId | default (printf "%s-detour-retry" .Values.groupId) | quote }}
{{- end }}
{{- end }}

{{/*
Checks of values that the JSON schema cannot express (or says less clearly). Included by the
Deployment, so a bad combination fails `helm install/template` with a message that says what to change.
*/}}
{{- define "detour-retry-worker.validate" -}}
{{- if not .Values.kafka.brokers }}
{{- fail "kafka.brokers is required: the Kafka bootstrap servers, e.g. --set 'kafka.brokers={kafka-0.kafka:9092}'" }}
{{- end }}
{{- if not (or .Values.groupId .Values.consumerGroup) }}
{{- fail "groupId is required: the main app's consumer group, as the SDK's groupId (it names the retry, redirect and error topics)" }}
{{- end }}
{{- if not .Values.topics }}
{{- fail "topics is required: the main app's source topics, e.g. --set 'topics={orders}'" }}
{{- end }}
{{- if not .Values.handler }}
{{- fail "handler is required: the path of your handler module inside the image, e.g. /app/handlers/orders/handler.js (build your image FROM the worker image, see deploy/README.md)" }}
{{- end }}
{{- $groups := include "detour-retry-worker.groups" . | fromYaml }}
{{- if eq $groups.main $groups.worker }}
{{- if .Values.consumerGroup }}
{{- fail "groupId (the worker's own group while the deprecated consumerGroup is set) must differ from consumerGroup: the worker must not join the main app's group. Better: drop consumerGroup, set groupId to the main app's group and workerGroupId to the worker's" }}
{{- else }}
{{- fail "workerGroupId must differ from groupId: the worker must not join the main app's group (leave workerGroupId empty for <groupId>-detour-retry)" }}
{{- end }}
{{- end }}
{{- if and .Values.consumerGroup .Values.groupId .Values.workerGroupId (ne .Values.groupId .Values.workerGroupId) }}
{{- fail "consumerGroup is deprecated and cannot be combined with both groupId and workerGroupId: drop consumerGroup and set groupId to the main app's group" }}
{{- end }}
{{- with .Values.kafka.sasl }}
{{- if .mechanism }}
{{- if not .username }}
{{- fail (printf "kafka.sasl.username is required with kafka.sasl.mechanism=%s" .mechanism) }}
{{- end }}
{{- if and (not .existingSecret) (not .password) }}
{{- fail "kafka.sasl: set existingSecret (a Secret with the password under passwordKey) or password (the chart then creates a Secret)" }}
{{- end }}
{{- else if or .username .existingSecret .password }}
{{- fail "kafka.sasl.username/existingSecret/password need kafka.sasl.mechanism (plain, scram-sha-256 or scram-sha-512)" }}
{{- end }}
{{- end }}
{{- if and (eq .Values.backoff.type "exponential") (gt (float64 .Values.backoff.initialDelayMs) (float64 .Values.backoff.maxDelayMs)) }}
{{- fail (printf "backoff.initialDelayMs (%v) must not exceed backoff.maxDelayMs (%v)" .Values.backoff.initialDelayMs .Values.backoff.maxDelayMs) }}
{{- end }}
{{- if and (not (kindIs "invalid" .Values.heartbeatIntervalMs)) (not (kindIs "invalid" .Values.sessionTimeoutMs)) }}
{{- if ge (float64 .Values.heartbeatIntervalMs) (float64 .Values.sessionTimeoutMs) }}
{{- fail (printf "heartbeatIntervalMs (%v) must be below sessionTimeoutMs (%v)" .Values.heartbeatIntervalMs .Values.sessionTimeoutMs) }}
{{- end }}
{{- end }}
{{- if and .Values.adminToken.existingSecret (not .Values.adminToken.key) }}
{{- fail "adminToken.key is required with adminToken.existingSecret: the key of the token in that Secret" }}
{{- end }}
{{- with .Values.podDisruptionBudget }}
{{- if and .enabled (not (kindIs "invalid" .minAvailable)) (not (kindIs "invalid" .maxUnavailable)) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- end }}
{{- end }}

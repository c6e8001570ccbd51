{{/* Names and labels. */}}
{{- define "bouncer.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bouncer.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bouncer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bouncer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bouncer.labels" -}}
{{ include "bouncer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "bouncer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bouncer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "bouncer.tlsSecretName" -}}
{{- if eq .Values.tls.mode "existingSecret" -}}
{{- required "tls.existingSecret.name is required with tls.mode existingSecret" .Values.tls.existingSecret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "bouncer.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Service's DNS names, which the serving certificate must cover. */}}
{{- define "bouncer.dnsNames" -}}
{{- $svc := include "bouncer.fullname" . -}}
{{- list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) | toJson -}}
{{- end -}}

{{/* A kind's resource name, as the API server pluralises built-in kinds (IngressClassParams is its own plural). */}}
{{- define "bouncer.plural" -}}
{{- $kind := lower . -}}
{{- if eq $kind "*" -}}*
{{- else if hasSuffix "params" $kind -}}{{ $kind }}
{{- else if or (hasSuffix "s" $kind) (hasSuffix "x" $kind) (hasSuffix "ch" $kind) (hasSuffix "sh" $kind) -}}{{ $kind }}es
{{- else if and (hasSuffix "y" $kind) (not (or (hasSuffix "ay" $kind) (hasSuffix "ey" $kind) (hasSuffix "oy" $kind) (hasSuffix "uy" $kind))) -}}{{ trimSuffix "y" $kind }}ies
{{- else -}}{{ $kind }}s
{{- end -}}
{{- end -}}

{{/*
Webhook rules: one per kind entry of every policy (only mutating ones when
.mutating is true), with the policy's operations. Kinds the API server itself
depends on are refused: a webhook on them can lock a cluster.
*/}}
{{- define "bouncer.rules" -}}
{{- $root := .root -}}
{{- /* What each built-in governs, from its metadata: `bouncer policies --output json`. */ -}}
{{- $builtins := $root.Files.Get "files/builtins.json" | fromJson -}}
{{- $forbidden := list "configmaps" "leases" "events" "validatingwebhookconfigurations" "mutatingwebhookconfigurations" "*" -}}
{{- $rules := list -}}
{{- range $policy := $root.Values.config.policies -}}
{{- $declared := get $builtins $policy.source | default dict -}}
{{- $mutating := false -}}
{{- if hasKey $policy "mutating" -}}{{- $mutating = $policy.mutating -}}{{- else -}}{{- $mutating = $declared.mutating | default false -}}{{- end -}}
{{- if or (not $.mutating) $mutating -}}
{{- $match := $policy.match | default dict -}}
{{- $kindRules := $match.kinds | default $declared.kinds -}}
{{- if not $kindRules -}}
{{- fail (printf "config.policies[%s]: give match.kinds, so the webhooks send it only the kinds it governs (the chart knows what built-ins govern, not custom policies)" $policy.name) -}}
{{- end -}}
{{- $operations := $match.operations | default $declared.operations | default (list "CREATE" "UPDATE" "DELETE" "CONNECT") -}}
{{- range $kinds := $kindRules -}}
{{- $resources := list -}}
{{- range $kind := $kinds.kinds -}}
{{- $resource := include "bouncer.plural" $kind -}}
{{- if has $resource $forbidden -}}
{{- fail (printf "config.policies[%s]: bouncer must never be a webhook for %s" $policy.name $resource) -}}
{{- end -}}
{{- $resources = append $resources $resource -}}
{{- end -}}
{{- $rules = append $rules (dict "apiGroups" $kinds.apiGroups "apiVersions" (list "*") "resources" $resources "operations" $operations "scope" "*") -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* With exceptions honoured, bouncer judges every PolicyException written. */ -}}
{{- if and $root.Values.config.exceptions (not $.mutating) -}}
{{- $rules = append $rules (dict "apiGroups" (list "bouncer.dev") "apiVersions" (list "*") "resources" (list "policyexceptions") "operations" (list "CREATE" "UPDATE") "scope" "Namespaced") -}}
{{- end -}}
{{- $rules | toYaml -}}
{{- end -}}

{{/* Namespaces the API server never sends to bouncer. */}}
{{- define "bouncer.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ concat (list "kube-system" "kube-node-lease" .Release.Namespace) .Values.webhook.exemptNamespaces | uniq | toJson }}
{{- range $key, $value := .Values.webhook.exemptLabel }}
  - key: {{ $key }}
    operator: NotIn
    values: [{{ $value | quote }}]
{{- end }}
{{- end -}}

{{/*
RBAC rules for context lookups: one per kind the policies declare in
`context`, read-only, plus rbac.contextResources, plus PolicyExceptions when
the configuration honours them. Nothing else.
*/}}
{{- define "bouncer.contextRules" -}}
{{- $rules := list -}}
{{- range $policy := .Values.config.policies -}}
{{- range $kind := ($policy.context | default list) -}}
{{- $group := "" -}}
{{- if contains "/" $kind.apiVersion -}}{{- $group = (splitList "/" $kind.apiVersion | first) -}}{{- end -}}
{{- $rules = append $rules (dict "apiGroups" (list $group) "resources" (list (include "bouncer.plural" $kind.kind)) "verbs" (list "get" "list" "watch")) -}}
{{- end -}}
{{- end -}}
{{- range .Values.rbac.contextResources -}}
{{- $rules = append $rules (dict "apiGroups" .apiGroups "resources" .resources "verbs" (list "get" "list" "watch")) -}}
{{- end -}}
{{- if .Values.config.exceptions -}}
{{- $rules = append $rules (dict "apiGroups" (list "bouncer.dev") "resources" (list "policyexceptions") "verbs" (list "get" "list" "watch")) -}}
{{- end -}}
{{- $rules | uniq | toYaml -}}
{{- end -}}

{{/*
The OTEL_* environment of a bouncer container, included when tracing.enabled
(telemetry.rs reads it): where to send spans, how many to keep, and which
pod they come from. POD_NAME and POD_NAMESPACE must be set before it.
*/}}
{{- define "bouncer.tracingEnv" -}}
{{- if not .Values.tracing.endpoint }}
{{- fail "tracing.endpoint is required with tracing.enabled: the collector's OTLP/HTTP URL, such as http://otel-collector.observability:4318" }}
{{- end }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.tracing.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: http/protobuf
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .Values.tracing.sampleRatio | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .Values.tracing.serviceName | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)"
{{- with .Values.tracing.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The image every process runs from: by digest when image.digest is set (what was built and scanned is what runs),
else by tag (the chart's appVersion, pyproject.toml's version, unless image.tag is set).
*/}}
{{- define "wukong.image" -}}
{{- with .Values.image.digest -}}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .) -}}
{{- fail (printf "image.digest must be sha256:<64 hex digits>, not %q" .) -}}
{{- end -}}
{{ $.Values.image.repository }}@{{ . }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default $.Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/*
Kubernetes 1.30 or newer (ValidatingAdmissionPolicy v1), judged only against a cluster: `lookup` answers only on
install, upgrade or a server-side dry run, so a plain `helm template` (whose default version is v1.20.0) renders.
*/}}
{{- define "wukong.kubeVersion" -}}
{{- if and (lookup "v1" "Namespace" "" "kube-system") (semverCompare "<1.30.0-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "wukong needs Kubernetes 1.30 or newer (ValidatingAdmissionPolicy v1); this cluster is %s" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- end -}}

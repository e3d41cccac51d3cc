"""The Helm chart's manifests, written from the kustomize sources in deploy/ (``make chart``).

deploy/ is the one source of every manifest; deploy/helm/wukong holds a chart whose templates and version are
generated from it (its crds/ copied from deploy/crd), so the two installs cannot drift. Each template is its
source file with a few exact text edits: the namespace becomes ``{{ .Release.Namespace }}``, the image
``{{ include "wukong.image" . }}``, and the few values the chart exposes (replicas, resources, lifetimes, pod
CIDRs, optional parts) become ``.Values``. An edit whose text is no longer in its source fails the generation,
naming both, so a change to deploy/ never slips past a value silently. values.yaml, _helpers.tpl and NOTES.txt
are written by hand.

The version is pyproject.toml's: it becomes the chart's version and appVersion (the image tag the chart runs by
default) and the image tag in deploy/. A unit test (tests/unit/test_chart.py) fails when a generated file is
not what this module writes from the sources now.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "wukong"
IMAGE = "ghcr.io/novasphere/wukong"
NAMESPACE = "wukong-system"  # the kustomize install's namespace: the chart installs into the release's instead
RELEASE_NAMESPACE = "{{ .Release.Namespace }}"


@dataclass(frozen=True)
class Edit:
    """``old`` replaced by ``new``, ``count`` times exactly (a source that changed there fails the generation)."""

    old: str
    new: str
    count: int = 1


@dataclass(frozen=True)
class Template:
    name: str  # under templates/
    source: str  # relative to the checkout
    edits: tuple[Edit, ...] = ()
    when: str | None = None  # a Helm condition around the whole file
    own_braces: bool = False  # the source holds another template language's {{ }} (Prometheus'): Helm prints them


def _resources(component: str, requests: str, limits: str) -> Edit:
    old = f"          resources:\n            requests: {requests}\n            limits: {limits}\n"
    new = f"          resources:\n            {{{{- toYaml .Values.{component}.resources | nindent 12 }}}}\n"
    return Edit(old, new)


def _pod_cidr(family: str) -> Edit:
    value = f".Values.networkPolicy.podCIDRs.{family}"
    message = f"networkPolicy.podCIDRs.{family} is required: the cluster's {family.replace('ip', 'IP')} pod CIDR"
    return Edit(
        f"except: [POD-CIDR-{family.upper()}]",
        f'except: [{{{{ required "{message} (docs/platform-teams.md, NetworkPolicy)" {value} }}}}]',
    )


def _replicas(component: str) -> Edit:
    return Edit("  replicas: 2\n", f"  replicas: {{{{ .Values.{component}.replicas }}}}\n")


_CERT_MANAGER_ANNOTATION = (
    "  name: wukong-webhook\n"
    '  {{- if eq .Values.certificates.mode "cert-manager" }}\n'
    "  annotations:\n"
    f"    cert-manager.io/inject-ca-from: {RELEASE_NAMESPACE}/wukong-webhook-tls\n"
    "  {{- end }}\n"
    "  labels:\n"
)

# The Prometheus Operator's objects: only when asked for, and only where the cluster serves their API (a
# ServiceMonitor sent to a cluster without the CRD fails the whole install).
_MONITORING = '.Values.monitoring.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")'


def _monitoring_labels(count: int) -> Edit:
    old = "    app.kubernetes.io/part-of: wukong\n"
    new = old + "    {{- with .Values.monitoring.labels }}\n    {{- toYaml . | nindent 4 }}\n    {{- end }}\n"
    return Edit(old, new, count)


DASHBOARD = "deploy/monitoring/dashboard.json"
DASHBOARD_TEMPLATE = f"""{{{{- /* The ConfigMap deploy/monitoring/kustomization.yaml generates from {DASHBOARD},
copied to files/dashboard.json by `make chart`: edit those, not this. */}}}}
{{{{- if .Values.monitoring.enabled }}}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: wukong-dashboard
  namespace: {RELEASE_NAMESPACE}
  labels:
    app.kubernetes.io/part-of: wukong
    grafana_dashboard: "1"
data:
  wukong.json: |
{{{{ .Files.Get "files/dashboard.json" | indent 4 }}}}
{{{{- end }}}}
"""

TEMPLATES = (
    Template("rbac-webhook.yaml", "deploy/rbac/webhook.yaml"),
    Template("rbac-reconciler.yaml", "deploy/rbac/reconciler.yaml"),
    Template("reconciler-policy.yaml", "deploy/rbac/reconciler-policy.yaml"),
    Template("volume-guard.yaml", "deploy/rbac/volume-guard.yaml"),
    Template("ownership-guard.yaml", "deploy/rbac/ownership-guard.yaml"),
    Template("rbac-users.yaml", "deploy/rbac/users.yaml"),
    Template(
        "webhook-deployment.yaml",
        "deploy/webhook/deployment.yaml",
        (
            _replicas("webhook"),
            _resources("webhook", "{cpu: 50m, memory: 96Mi}", "{memory: 256Mi}"),
        ),
    ),
    Template("webhook-service.yaml", "deploy/webhook/service.yaml"),
    Template("webhook-pdb.yaml", "deploy/webhook/pdb.yaml"),
    Template(
        "reconciler-deployment.yaml",
        "deploy/reconciler/deployment.yaml",
        (
            _replicas("reconciler"),
            Edit(
                "            - --metrics-port=8080\n",
                "            - --metrics-port=8080\n"
                "            {{- if .Values.reconciler.hotplugDisks }}\n"
                "            - --hotplug-disks\n"
                "            {{- end }}\n",
            ),
            _resources("reconciler", "{cpu: 50m, memory: 128Mi}", "{memory: 512Mi}"),
        ),
    ),
    Template(
        "webhookconfigurations.yaml",
        "deploy/webhookconfigurations/webhookconfigurations.yaml",
        (Edit("  name: wukong-webhook\n  labels:\n", _CERT_MANAGER_ANNOTATION, count=2),),
    ),
    Template(
        "networkpolicies.yaml",
        "deploy/networkpolicy/networkpolicies.yaml",
        (
            _pod_cidr("ipv4"),
            _pod_cidr("ipv6"),
            Edit(
                "kubernetes.io/metadata.name: monitoring\n",
                "kubernetes.io/metadata.name: {{ .Values.networkPolicy.monitoringNamespace }}\n",
                count=2,
            ),
        ),
        when=".Values.networkPolicy.enabled",
    ),
    Template(
        "certs.yaml",
        "deploy/certs/certs.yaml",
        (
            _replicas("certs"),
            Edit("--ca-lifetime=3650d", "--ca-lifetime={{ .Values.certificates.caLifetime }}"),
            Edit("--cert-lifetime=365d", "--cert-lifetime={{ .Values.certificates.certLifetime }}"),
            _resources("certs", "{cpu: 10m, memory: 48Mi}", "{memory: 128Mi}"),
        ),
        when='eq .Values.certificates.mode "builtin"',
    ),
    Template("certs-policy.yaml", "deploy/certs/certs-policy.yaml", when='eq .Values.certificates.mode "builtin"'),
    Template(
        "cert-manager.yaml",
        "overlays/cert-manager/cert-manager.yaml",
        (
            Edit("duration: 87600h", "duration: {{ .Values.certificates.certManager.caDuration }}"),
            Edit("duration: 8760h", "duration: {{ .Values.certificates.certManager.duration }}"),
            Edit("renewBefore: 2920h", "renewBefore: {{ .Values.certificates.certManager.renewBefore }}"),
        ),
        when='eq .Values.certificates.mode "cert-manager"',
    ),
    Template(
        "monitoring-monitors.yaml", "deploy/monitoring/monitors.yaml", (_monitoring_labels(2),), f"and {_MONITORING}"
    ),
    Template(
        "monitoring-rules.yaml",
        "deploy/monitoring/rules.yaml",
        (_monitoring_labels(1),),
        f"and {_MONITORING}",
        own_braces=True,
    ),
)


class SourceChanged(Exception):
    """A source no longer holds the text an edit replaces: the edit (or the chart's values) must follow it."""


def version() -> str:
    found: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return found


TAGGED = re.compile(re.escape(IMAGE) + r":[0-9A-Za-z._-]+")


def template(spec: Template) -> str:
    text = (ROOT / spec.source).read_text()
    if spec.own_braces:  # out of the way of the edits and the check; printed back as Helm string constants
        text = text.replace("{{", "\x00").replace("}}", "\x01")
    if "{{" in text:
        raise SourceChanged(f"{spec.source} holds '{{{{', which Helm would read as a template")
    for edit in spec.edits:
        found = text.count(edit.old)
        if found != edit.count:
            raise SourceChanged(
                f"{spec.source}: expected {edit.count} of {edit.old!r} for templates/{spec.name}, found {found}; "
                "change the edit in devcluster/chart.py (and values.yaml) with the source"
            )
        text = text.replace(edit.old, edit.new)
    text = TAGGED.sub('{{ include "wukong.image" . }}', text).replace(NAMESPACE, RELEASE_NAMESPACE)
    text = text.replace("\x00", '{{ "{{" }}').replace("\x01", '{{ "}}" }}')
    header = f"{{{{- /* Generated from {spec.source} by `make chart`: edit that file, not this one. */}}}}\n"
    if spec.when:
        return f"{header}{{{{- if {spec.when} }}}}\n{text}{{{{- end }}}}\n"
    return header + text


def generated() -> dict[Path, str]:
    """Every generated file of the chart, and the version-bearing lines of deploy/, as they must be now."""
    release = version()
    image = f"{IMAGE}:{release}"
    files = {CHART / "templates" / spec.name: template(spec) for spec in TEMPLATES}
    files[CHART / "templates" / "monitoring-dashboard.yaml"] = DASHBOARD_TEMPLATE
    files[CHART / "files" / "dashboard.json"] = (ROOT / DASHBOARD).read_text()
    for crd in sorted((DEPLOY / "crd").glob("*.vm.novasphere.dev.yaml")):
        files[CHART / "crds" / crd.name] = crd.read_text()  # copies: Helm warns on every command about a symlink
    chart = (CHART / "Chart.yaml").read_text()
    chart = re.sub(r"(?m)^version: .*$", f"version: {release}", chart)
    files[CHART / "Chart.yaml"] = re.sub(r"(?m)^appVersion: .*$", f'appVersion: "{release}"', chart)
    for path in [*sorted(DEPLOY.rglob("*.yaml")), ROOT / "Dockerfile"]:
        if CHART in path.parents:
            continue
        text = path.read_text()
        text = TAGGED.sub(image, text)
        if path == DEPLOY / "kustomization.yaml":
            text = re.sub(r"(?m)^(    newTag: ).*$", rf"\g<1>{release}", text)
        files[path] = text
    return files


def stale() -> list[Path]:
    """Generated files whose content differs from what the sources give now (or that are missing)."""
    return [path for path, text in generated().items() if not path.is_file() or path.read_text() != text]


def orphans() -> list[Path]:
    """Chart templates and CRDs that no source generates (left over after a source was removed)."""
    written = set(generated())
    kept = {CHART / "templates" / "_helpers.tpl", CHART / "templates" / "NOTES.txt"}
    found = [*(CHART / "templates").iterdir(), *(CHART / "crds").iterdir()]
    found += [*(CHART / "files").iterdir()] if (CHART / "files").is_dir() else []
    return sorted(path for path in found if path not in written and path not in kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.chart", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report generated files that are out of date")
    args = parser.parse_args(argv)
    try:
        files, changed = generated(), stale()
    except SourceChanged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.check:
        for path in [*changed, *orphans()]:
            print(f"out of date: {path.relative_to(ROOT)} (run `make chart`)", file=sys.stderr)
        return 1 if changed or orphans() else 0
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {path.relative_to(ROOT)}")
    for path in orphans():
        path.unlink()
        print(f"removed {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

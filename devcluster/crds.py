"""CustomResourceDefinitions for the upstream kinds the reconciler writes, from their real schemas.

The catalog's JSON Schemas are strict (``additionalProperties: false`` on every object). A CRD's
structural schema may not combine ``additionalProperties`` with ``properties``, and the API server
prunes or (with ``fieldValidation=Strict``) rejects unknown fields anyway, so dropping those keys
keeps exactly the same set of accepted objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from devcluster import checkout


@dataclass(frozen=True)
class UpstreamKind:
    group: str
    version: str
    kind: str
    plural: str
    short_names: tuple[str, ...]
    schema_file: str
    columns: tuple[tuple[str, str], ...] = ()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


VIRTUAL_MACHINE = UpstreamKind(
    "kubevirt.io",
    "v1",
    "VirtualMachine",
    "virtualmachines",
    ("vm", "vms"),
    "kubevirt.io_virtualmachine_v1.json",
    (("Status", ".status.printableStatus"), ("Ready", ".status.ready")),
)
VIRTUAL_MACHINE_INSTANCE = UpstreamKind(
    "kubevirt.io",
    "v1",
    "VirtualMachineInstance",
    "virtualmachineinstances",
    ("vmi", "vmis"),
    "kubevirt.io_virtualmachineinstance_v1.json",
    (("Phase", ".status.phase"),),
)
DATA_VOLUME = UpstreamKind(
    "cdi.kubevirt.io",
    "v1beta1",
    "DataVolume",
    "datavolumes",
    ("dv", "dvs"),
    "cdi.kubevirt.io_datavolume_v1beta1.json",
    (("Phase", ".status.phase"), ("Progress", ".status.progress")),
)
NETWORK_ATTACHMENT_DEFINITION = UpstreamKind(  # Multus: installed like the others, removable by a test
    "k8s.cni.cncf.io",
    "v1",
    "NetworkAttachmentDefinition",
    "network-attachment-definitions",
    ("net-attach-def",),
    "k8s.cni.cncf.io_networkattachmentdefinition_v1.json",
)
UPSTREAM_KINDS = (VIRTUAL_MACHINE, VIRTUAL_MACHINE_INSTANCE, DATA_VOLUME, NETWORK_ATTACHMENT_DEFINITION)


@cache
def strict_schema(kind: UpstreamKind) -> dict[str, Any]:
    """The catalog's JSON Schema as it is: what the reconciler's unit tests validate against."""
    return json.loads(checkout.upstream_schema(kind.schema_file).read_text())


def structural(schema: Any) -> Any:
    if isinstance(schema, list):
        return [structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: structural(value) for key, value in schema.items()}
    if converted.get("additionalProperties") is False or (
        "additionalProperties" in converted and "properties" in converted
    ):
        del converted["additionalProperties"]
    return converted


def crd(kind: UpstreamKind) -> dict[str, Any]:
    columns = [{"name": name, "type": "string", "jsonPath": path} for name, path in kind.columns]
    columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "wukong-devcluster"}},
        "spec": {
            "group": kind.group,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.plural.removesuffix("s"),
                "shortNames": list(kind.short_names),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": kind.version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": structural(strict_schema(kind))},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


# The CSI snapshot CRDs (external-snapshotter), installed as upstream ships them: already CRDs, not catalog schemas.
SNAPSHOT_CRD_FILES = (
    "snapshot.storage.k8s.io_volumesnapshotclasses.yaml",
    "snapshot.storage.k8s.io_volumesnapshotcontents.yaml",
    "snapshot.storage.k8s.io_volumesnapshots.yaml",
)


@cache
def _snapshot_crd(file_name: str) -> dict[str, Any]:
    return dict(yaml.safe_load(checkout.upstream_schema(file_name).read_text()))


def snapshot_crds() -> list[dict[str, Any]]:
    """VolumeSnapshot, VolumeSnapshotContent and VolumeSnapshotClass (snapshot.storage.k8s.io), labelled as
    devcluster's like the other upstream CRDs."""
    found = []
    for file_name in SNAPSHOT_CRD_FILES:
        crd_ = json.loads(json.dumps(_snapshot_crd(file_name)))
        crd_["metadata"].setdefault("labels", {})["app.kubernetes.io/part-of"] = "wukong-devcluster"
        found.append(crd_)
    return found

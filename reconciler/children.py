"""The objects a Wukong owns, built as plain manifests: PVC, CDI DataVolume and KubeVirt VirtualMachine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wukong import api
from wukong.image import parse_image
from wukong.manifests import Obj
from wukong.naming import vm_name, volume_name
from wukong.spec import Disk, WukongSpec


def owner_reference(wukong: Mapping[str, Any]) -> Obj:
    """Controller reference with blockOwnerDeletion: foreground deletion of the Wukong waits for its children."""
    metadata = wukong["metadata"]
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_owned_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    references = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid and ref.get("controller") for ref in references)


def owners(obj: Mapping[str, Any]) -> set[str]:
    """The Wukongs (by name, in the object's namespace) a child event concerns: its owner by label or reference,
    and the Wukong a released volume came from (re-creating that Wukong takes it back)."""
    metadata = obj.get("metadata") or {}
    labels_ = metadata.get("labels") or {}
    found = {labels_[label] for label in (api.WUKONG_LABEL, api.RELEASED_FROM_LABEL) if label in labels_}
    found.update(ref["name"] for ref in metadata.get("ownerReferences") or [] if ref.get("kind") == api.KIND)
    return found


def labels(wukong_name: str, disk: str | None = None) -> dict[str, str]:
    result = {api.WUKONG_LABEL: wukong_name, api.MANAGED_BY_LABEL: api.MANAGED_BY}
    if disk is not None:
        result[api.DISK_LABEL] = disk
    return result


def _metadata(wukong: Mapping[str, Any], name: str, disk: str | None = None) -> Obj:
    return {
        "name": name,
        "namespace": wukong["metadata"]["namespace"],
        "labels": labels(wukong["metadata"]["name"], disk),
        "ownerReferences": [owner_reference(wukong)],
    }


def persistent_volume_claim(wukong: Mapping[str, Any], disk: Disk) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": disk.size}}}
    if disk.storage_class:
        spec["storageClassName"] = disk.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(wukong, volume_name(wukong["metadata"]["name"], disk.name), disk.name),
        "spec": spec,
    }


def data_volume(wukong: Mapping[str, Any], disk: Disk) -> Obj:
    """``spec.storage`` lets CDI pick access and volume modes from the StorageProfile."""
    assert disk.image is not None
    source = parse_image(disk.image)
    storage: Obj = {"resources": {"requests": {"storage": disk.size}}}
    if disk.storage_class:
        storage["storageClassName"] = disk.storage_class
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": _metadata(wukong, volume_name(wukong["metadata"]["name"], disk.name), disk.name),
        "spec": {"source": {source.kind: {"url": source.url}}, "storage": storage},
    }


def virtual_machine(wukong: Mapping[str, Any], spec: WukongSpec) -> Obj:
    """The VM: cores, guest memory, one virtio disk per volume (the boot disk first in boot order), pod network."""
    name = wukong["metadata"]["name"]
    disks, volumes = [], []
    for disk in spec.disks:
        entry: Obj = {"name": disk.name, "disk": {"bus": "virtio"}}
        if disk.boot:
            entry["bootOrder"] = 1
        disks.append(entry)
        claim = volume_name(name, disk.name)
        volumes.append(
            {"name": disk.name, "dataVolume": {"name": claim}}
            if disk.image
            else {"name": disk.name, "persistentVolumeClaim": {"claimName": claim}}
        )
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": _metadata(wukong, vm_name(name)),
        "spec": {
            "runStrategy": spec.run_strategy,
            "template": {
                "metadata": {"labels": {api.WUKONG_LABEL: name, "kubevirt.io/vm": vm_name(name)}},
                "spec": {
                    "domain": {
                        "cpu": {"cores": spec.cpu or 1},
                        "memory": {"guest": spec.memory},
                        "devices": {"disks": disks, "interfaces": [{"name": "default", "masquerade": {}}]},
                    },
                    "networks": [{"name": "default", "pod": {}}],
                    "volumes": volumes,
                },
            },
        },
    }


def contains(live: Any, desired: Any) -> bool:
    """True when everything ``desired`` says is already in ``live``: defaults other controllers add are fine."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(contains(live.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(contains, live, desired))
    return bool(live == desired)

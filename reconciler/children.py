"""The objects a Wukong owns, built as plain manifests: PVC, CDI DataVolume and KubeVirt VirtualMachine.

The VM always carries the Wukong's controller reference, so the garbage collector deletes it with the Wukong.
A volume carries it only under ``volumeRetentionPolicy.whenDeleted: Delete``; under Retain (the default) it is
tied to its Wukong by labels and the ``wukong-uid`` annotation alone, so deleting the Wukong cannot delete it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from wukong import api
from wukong.image import parse_image
from wukong.manifests import Obj
from wukong.naming import vm_name, volume_name
from wukong.spec import DELETE, Disk, WukongSpec

KEEP = "false"  # deleteAfterCompletion: CDI collects a DataVolume only when it says "true"


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
    """Controlled by that owner through an ownerReference."""
    references = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid and ref.get("controller") for ref in references)


def is_ours(obj: Mapping[str, Any], wukong_uid: str) -> bool:
    """This Wukong's child: by ownerReference, or (a retained volume) by the uid annotation it was given."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return is_owned_by(obj, wukong_uid) or annotations.get(api.WUKONG_UID_ANNOTATION) == wukong_uid


def made_by_cdi(obj: Mapping[str, Any]) -> bool:
    """A PVC CDI made for a DataVolume: it follows its DataVolume, never handled on its own."""
    return any(r.get("kind") == "DataVolume" for r in obj.get("metadata", {}).get("ownerReferences") or [])


def wukong_references(obj: Mapping[str, Any]) -> list[Obj]:
    return [r for r in obj.get("metadata", {}).get("ownerReferences") or [] if r.get("kind") == api.KIND]


def ownership_patch(obj: Mapping[str, Any], wukong: Mapping[str, Any], delete_with_owner: bool) -> Obj | None:
    """The metadata patch that gives a volume of ours the ownerReferences its retention policy asks for; None
    when it already has them. Other owners' references are kept."""
    uid = wukong["metadata"]["uid"]
    metadata = obj.get("metadata") or {}
    others = [r for r in metadata.get("ownerReferences") or [] if r.get("uid") != uid]
    if is_owned_by(obj, uid) == delete_with_owner:
        return None
    wanted = [*others, owner_reference(wukong)] if delete_with_owner else others
    return {"metadata": {"resourceVersion": metadata.get("resourceVersion"), "ownerReferences": wanted or None}}


def adoption_patch(obj: Mapping[str, Any], wukong: Mapping[str, Any], delete_with_owner: bool) -> Obj:
    """A retained volume taken back by a Wukong of the name it was released from."""
    metadata, owner = obj.get("metadata") or {}, wukong["metadata"]
    return {
        "metadata": {
            "resourceVersion": metadata.get("resourceVersion"),
            "labels": {api.WUKONG_LABEL: owner["name"], api.RELEASED_FROM_LABEL: None},
            "annotations": {api.WUKONG_UID_ANNOTATION: owner["uid"]},
            "ownerReferences": [owner_reference(wukong)] if delete_with_owner else None,
        }
    }


def keep_patch(data_volume: Mapping[str, Any] | None) -> Obj | None:
    """The patch that asks CDI to keep a DataVolume of ours (one made before the reconciler asked at creation);
    None when it already says so."""
    if data_volume is None:
        return None
    metadata = data_volume.get("metadata") or {}
    if (metadata.get("annotations") or {}).get(api.CDI_DELETE_AFTER_COMPLETION) == KEEP:
        return None
    return {
        "metadata": {
            "resourceVersion": metadata.get("resourceVersion"),
            "annotations": {api.CDI_DELETE_AFTER_COMPLETION: KEEP},
        }
    }


def release_patch(obj: Mapping[str, Any], wukong_name: str, wukong_uid: str | None) -> Obj:
    """Keep the volume, drop what ties it to the Wukong, and label where it came from."""
    metadata = obj.get("metadata") or {}
    references = [r for r in metadata.get("ownerReferences") or [] if wukong_uid is None or r.get("uid") != wukong_uid]
    return {
        "metadata": {
            "resourceVersion": metadata.get("resourceVersion"),
            "ownerReferences": references or None,
            "labels": {api.WUKONG_LABEL: None, api.RELEASED_FROM_LABEL: wukong_name},
            "annotations": {api.WUKONG_UID_ANNOTATION: None},
        }
    }


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


def _volume_metadata(wukong: Mapping[str, Any], disk: Disk) -> Obj:
    metadata = _metadata(wukong, volume_name(wukong["metadata"]["name"], disk.name), disk.name)
    metadata["annotations"] = {api.WUKONG_UID_ANNOTATION: wukong["metadata"]["uid"]}
    if WukongSpec.from_object(wukong).when_deleted != DELETE:
        del metadata["ownerReferences"]
    return metadata


def persistent_volume_claim(wukong: Mapping[str, Any], disk: Disk) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": disk.size}}}
    if disk.storage_class:
        spec["storageClassName"] = disk.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _volume_metadata(wukong, disk),
        "spec": spec,
    }


def data_volume(wukong: Mapping[str, Any], disk: Disk) -> Obj:
    """``spec.storage`` lets CDI pick access and volume modes from the StorageProfile. Annotated so that CDI's
    garbage collection leaves it: the DataVolume is what says the disk was imported, and from what."""
    assert disk.image is not None
    source = parse_image(disk.image)
    storage: Obj = {"resources": {"requests": {"storage": disk.size}}}
    if disk.storage_class:
        storage["storageClassName"] = disk.storage_class
    metadata = _volume_metadata(wukong, disk)
    metadata["annotations"][api.CDI_DELETE_AFTER_COMPLETION] = KEEP
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": metadata,
        "spec": {"source": {source.kind: {"url": source.url}}, "storage": storage},
    }


def virtual_machine(wukong: Mapping[str, Any], spec: WukongSpec, hotplug: Collection[str] = ()) -> Obj:
    """The VM: cores, guest memory, one virtio disk per volume (the boot disk first in boot order), pod network.
    Disks named in ``hotplug`` are hotpluggable volumes on the scsi bus: KubeVirt attaches them to the running
    VM (declarative hotplug) instead of waiting for a restart."""
    name = wukong["metadata"]["name"]
    disks, volumes = [], []
    for disk in spec.disks:
        hot = disk.name in hotplug and not disk.boot
        entry: Obj = {"name": disk.name, "disk": {"bus": "scsi" if hot else "virtio"}}
        if disk.boot:
            entry["bootOrder"] = 1
        disks.append(entry)
        claim = volume_name(name, disk.name)
        source: Obj = {"name": claim} if disk.image else {"claimName": claim}
        if hot:
            source["hotpluggable"] = True
        volumes.append({"name": disk.name, "dataVolume" if disk.image else "persistentVolumeClaim": source})
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            **_metadata(wukong, vm_name(name)),
            "annotations": {api.START_STRATEGY_ANNOTATION: spec.start_strategy},
        },
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


def hotplugged(vm: Mapping[str, Any] | None) -> set[str]:
    """The disks a VM's template holds as hotpluggable volumes."""
    template = ((vm or {}).get("spec") or {}).get("template") or {}
    return {v.get("name") for v in (template.get("spec") or {}).get("volumes") or [] if hotpluggable(v)}


def hotpluggable(volume: Mapping[str, Any]) -> bool:
    """A VM or VMI volume KubeVirt attaches to the running instance (declarative hotplug)."""
    source = volume.get("dataVolume") or volume.get("persistentVolumeClaim") or {}
    return bool(source.get("hotpluggable"))


def template_disks(vm: Mapping[str, Any] | None) -> set[str]:
    template = ((vm or {}).get("spec") or {}).get("template") or {}
    return {v.get("name") for v in (template.get("spec") or {}).get("volumes") or []}


def contains(live: Any, desired: Any) -> bool:
    """True when everything ``desired`` says is already in ``live``: defaults other controllers add are fine."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(contains(live.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(contains, live, desired))
    return bool(live == desired)

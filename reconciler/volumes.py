"""A disk's volume as the reconciler makes it: a PVC for a blank disk, a CDI DataVolume for a disk with an image.

Both are named ``<wukong>-<disk>``, labelled with the Wukong and the disk, and annotated with the Wukong's uid;
they carry its controller reference only under ``whenDeleted: Delete`` (ownership.py). A DataVolume is asked to
be kept after its import (``deleteAfterCompletion: "false"``): it is what says the disk was imported, and from
what. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.ownership import child_metadata
from wukong import api
from wukong.image import ImageError, parse_image
from wukong.manifests import Obj
from wukong.naming import volume_name
from wukong.spec import Disk

KEEP = "false"  # deleteAfterCompletion: CDI collects a DataVolume only when it says "true"


def _metadata(wukong: Mapping[str, Any], disk: Disk, delete_with_owner: bool) -> Obj:
    metadata = child_metadata(wukong, volume_name(wukong["metadata"]["name"], disk.name), disk.name)
    metadata["annotations"] = {api.WUKONG_UID_ANNOTATION: wukong["metadata"]["uid"]}
    if not delete_with_owner:
        del metadata["ownerReferences"]
    return metadata


def persistent_volume_claim(wukong: Mapping[str, Any], disk: Disk, delete_with_owner: bool) -> Obj:
    """``delete_with_owner``: the Wukong's retention policy is Delete (``spec.when_deleted``)."""
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": disk.size}}}
    if disk.storage_class:
        spec["storageClassName"] = disk.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(wukong, disk, delete_with_owner),
        "spec": spec,
    }


def data_volume(wukong: Mapping[str, Any], disk: Disk, delete_with_owner: bool) -> Obj:
    """``spec.storage`` lets CDI pick access and volume modes from the StorageProfile. Annotated so that CDI's
    garbage collection leaves it: the DataVolume is what says the disk was imported, and from what."""
    source = data_volume_source(disk)
    assert source is not None
    storage: Obj = {"resources": {"requests": {"storage": disk.size}}}
    if disk.storage_class:
        storage["storageClassName"] = disk.storage_class
    metadata = _metadata(wukong, disk, delete_with_owner)
    metadata["annotations"][api.CDI_DELETE_AFTER_COMPLETION] = KEEP
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": metadata,
        "spec": {"source": source, "storage": storage},
    }


def data_volume_source(disk: Disk) -> Obj | None:
    """The ``spec.source`` of the DataVolume made for ``disk``: what CDI imports. None without an image the
    reconciler can import."""
    if not disk.image:
        return None
    try:
        source = parse_image(disk.image)
    except ImageError:
        return None
    return {source.kind: {"url": source.url}}


def imports_for(data_volume: Mapping[str, Any], disk: Disk) -> bool:
    """Whether a DataVolume imports exactly what the one made for ``disk`` would: the whole source compared (kind,
    URL and nothing else), never a part of it -- ``http://evil.example/quay.io/containerdisks/fedora:40`` holds
    ``quay.io/containerdisks/fedora:40`` and imports something else."""
    wanted = data_volume_source(disk)
    spec = data_volume.get("spec")
    return wanted is not None and isinstance(spec, Mapping) and spec.get("source") == wanted


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


def volume_snapshot(
    wukong: Mapping[str, Any], disk: Disk, pvc: str, name: str, class_name: str, size: str, delete_with_owner: bool
) -> Obj:
    """A CSI VolumeSnapshot of a disk's claim, taken before it grows. Labelled and annotated as the volumes are
    (the ownership guard keeps those keys the reconciler's); the Wukong's ownerReference only under
    ``whenDeleted: Delete`` -- under Retain a snapshot, like the volume, outlives its Wukong."""
    metadata = child_metadata(wukong, name, disk.name)
    metadata["annotations"] = {api.WUKONG_UID_ANNOTATION: wukong["metadata"]["uid"], api.SNAPSHOT_SIZE_ANNOTATION: size}
    if not delete_with_owner:
        del metadata["ownerReferences"]
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": metadata,
        "spec": {"volumeSnapshotClassName": class_name, "source": {"persistentVolumeClaimName": pvc}},
    }

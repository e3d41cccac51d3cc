"""What ties a child to its Wukong, and the checks and patches that read or change it.

Every child carries the Wukong's labels. The VM, the cloud-init Secret and the NetworkAttachmentDefinitions carry
its controller reference, so the garbage collector deletes them with the Wukong. A volume carries it only under
``volumeRetentionPolicy.whenDeleted: Delete``; under Retain (the default) it is tied to its Wukong by labels and
the ``wukong-uid`` annotation alone, so deleting the Wukong cannot delete it: such a volume is released (labelled
where it came from) and may be adopted again by a Wukong of the same name. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wukong import api
from wukong.manifests import Obj


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


def labels(wukong_name: str, disk: str | None = None) -> dict[str, str]:
    result = {api.WUKONG_LABEL: wukong_name, api.MANAGED_BY_LABEL: api.MANAGED_BY}
    if disk is not None:
        result[api.DISK_LABEL] = disk
    return result


def child_metadata(wukong: Mapping[str, Any], name: str, disk: str | None = None) -> Obj:
    """A child's name and namespace, the Wukong's labels and its controller reference."""
    return {
        "name": name,
        "namespace": wukong["metadata"]["namespace"],
        "labels": labels(wukong["metadata"]["name"], disk),
        "ownerReferences": [owner_reference(wukong)],
    }


# -- reading it ------------------------------------------------------------------------------------------
def is_owned_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    """Controlled by that owner through an ownerReference."""
    references = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid and ref.get("controller") for ref in references)


def is_ours(obj: Mapping[str, Any], wukong_uid: str) -> bool:
    """This Wukong's child: by ownerReference, or (a retained volume) by the uid annotation it was given. Only the
    reconciler can write that annotation (and CDI copy it from a DataVolume onto the DataVolume's claim):
    deploy/rbac/ownership-guard.yaml refuses it, and the labels that name a Wukong, from everyone else, so a volume a
    tenant made is never taken for a Wukong's."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return is_owned_by(obj, wukong_uid) or annotations.get(api.WUKONG_UID_ANNOTATION) == wukong_uid


def made_by_cdi(obj: Mapping[str, Any]) -> bool:
    """A PVC CDI made for a DataVolume: it follows its DataVolume, never handled on its own."""
    return any(r.get("kind") == "DataVolume" for r in obj.get("metadata", {}).get("ownerReferences") or [])


def wukong_references(obj: Mapping[str, Any]) -> list[Obj]:
    return [r for r in obj.get("metadata", {}).get("ownerReferences") or [] if r.get("kind") == api.KIND]


def owners(obj: Mapping[str, Any]) -> set[str]:
    """The Wukongs (by name, in the object's namespace) a child event concerns: its owner by label or reference,
    and the Wukong a released volume came from (re-creating that Wukong takes it back)."""
    metadata = obj.get("metadata") or {}
    labels_ = metadata.get("labels") or {}
    found = {labels_[label] for label in (api.WUKONG_LABEL, api.RELEASED_FROM_LABEL) if label in labels_}
    found.update(ref["name"] for ref in metadata.get("ownerReferences") or [] if ref.get("kind") == api.KIND)
    return found


# -- changing it -----------------------------------------------------------------------------------------
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

"""Mutating admission (M1-M6): fill in what the user left out, on a copy of the object, and keep no password in
clear.

The rules by id (M1-M3 are SPEC.md's): M1 each disk's StorageClass, M2 the boot disk, M3 an existing disk keeps
its defaults when a manifest is applied again, M4 volumeRetentionPolicy.whenDeleted, M5 osImage as the boot
disk's image, M6 a password stored as its hash.

The rules here only say what the object should look like. ``patch`` then compares the request with this copy
where defaulting can write -- each disk's keys, ``spec.volumeRetentionPolicy``, ``spec.cloudInitUser`` and the
last-applied annotation -- and nowhere else, which is what makes it cheap; tests check that it always yields the
copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from webhook import field
from webhook.facts import ClusterFacts
from webhook.field import quoted
from wukong import cloudinit, schema
from wukong.spec import RETAIN, Wukong, mapping

STORAGE_CLASS = "storageClassName"
BOOT = "boot"
RETENTION = "volumeRetentionPolicy"
USER, PASSWORD, PASSWORD_HASH = "cloudInitUser", "password", "passwordHash"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def default(
    new: Mapping[str, Any],
    old: Wukong | Mapping[str, Any] | None,
    facts: ClusterFacts,
) -> tuple[dict[str, Any], list[field.FieldError]]:
    """The defaulted copy of ``new`` and the errors that stop defaulting (no StorageClass to give).

    An object whose disks are not a list of objects is returned unchanged: it is not ours to
    repair, and the validating side or the API server will say what is wrong with it.
    """
    obj = _writable_copy(new)
    after = Wukong(new)  # read before any default is written (on the copy): what the request says
    before = Wukong.of(old) if old is not None else None
    password_errors = _hash_password(obj, after, before)  # M6, whatever the disks: no password rests in clear
    disks = _disks(obj)
    if disks is None:
        return obj, password_errors
    _default_retention(obj, before)  # M4
    _keep_previous_values(disks, before)  # M3 first: an existing disk keeps what it had
    errors = _default_storage_classes(disks, facts)  # M1
    _default_boot(disks)  # M2
    if old is None:
        _default_boot_image(after.os_image, disks)  # M5
    return obj, password_errors + errors


def _writable_copy(new: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``new`` whose parts defaulting writes (spec, its volumeRetentionPolicy, each disk) are new
    objects; the rest is shared, never written. Far cheaper than a deep copy on the hot path."""
    obj = dict(new)
    spec = obj.get("spec")
    if isinstance(spec, Mapping):
        spec = obj["spec"] = dict(spec)
        if isinstance(spec.get(RETENTION), Mapping):
            spec[RETENTION] = dict(spec[RETENTION])
        if isinstance(spec.get("disks"), list):
            spec["disks"] = [dict(d) if isinstance(d, Mapping) else d for d in spec["disks"]]
    return obj


def _disks(obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    spec = obj.get("spec")
    disks = spec.get("disks") if isinstance(spec, dict) else None
    if not isinstance(disks, list) or not all(isinstance(d, dict) for d in disks):
        return None
    return disks


def _keep_previous_values(disks: list[dict[str, Any]], old: Wukong | None) -> None:
    """M3: re-applying a minimal manifest changes nothing.

    ``kubectl apply`` replaces a CRD's lists whole, so the defaults written on create are missing from
    the next request. An existing disk gets them back. The old boot flag is carried over only when the
    request marks no disk ``boot: true`` itself, so that moving the boot flag to another disk works.
    """
    previous = {entry.name: entry for entry in old.named_disks} if old is not None else {}
    boot_requested = any(d.get(BOOT) is True for d in disks)
    for disk in disks:
        name = disk.get("name")
        before = previous.get(name) if isinstance(name, str) else None  # a name of another type is a schema error
        if before is None:
            continue
        if STORAGE_CLASS not in disk and (storage_class := before.text(STORAGE_CLASS)) is not None:
            disk[STORAGE_CLASS] = storage_class
        if BOOT not in disk and before.disk.boot is not None and not boot_requested:
            disk[BOOT] = before.disk.boot


def _default_storage_classes(disks: list[dict[str, Any]], facts: ClusterFacts) -> list[field.FieldError]:
    """M1: the default class of a WukongPolicy on the namespace, else the configured default, else the cluster's
    default StorageClass; none at all is an error."""
    errors = []
    for index, disk in enumerate(disks):
        given = disk.get(STORAGE_CLASS)
        if given or not isinstance(given, (str, type(None))):
            continue  # set, or of a wrong type that validation names: never silently replaced
        if facts.default_storage_class:
            disk[STORAGE_CLASS] = facts.default_storage_class
            continue
        errors.append(
            field.required(
                field.DISKS.index(index).child(STORAGE_CLASS),
                f"disk {quoted(disk.get('name'))} names no StorageClass and {_no_default(facts, index)}",
            )
        )
    return errors


def _no_default(facts: ClusterFacts, index: int) -> str:
    """Why no class was found, and what to do, in the terms of where the classes come from: a cluster, a file, or
    nothing at all (an offline check given none)."""
    remedy = f"set spec.disks[{index}].storageClassName"
    if not facts.knows_storage_classes:
        return (
            f"no StorageClasses are known to this check; {remedy}, or give --storage-classes FILE, "
            "--default-storage-class NAME or --kubeconfig"
        )
    if facts.classes_origin:
        return f"no StorageClass in {facts.classes_origin} is the default; {remedy}, or mark one as the default"
    return f"the cluster has no default one; {remedy}, or mark a StorageClass as the default"


def _default_boot(disks: list[dict[str, Any]]) -> None:
    """M2: with no boot disk marked, the first disk with an image boots, else the first disk.

    A disk explicitly marked ``boot: false`` is never chosen; every other disk gets an explicit false.
    """
    if any(not isinstance(d.get(BOOT), (bool, type(None))) for d in disks):
        return  # a boot flag of a wrong type is validation's to name, not defaulting's to overwrite
    if disks and not any(d.get(BOOT) is True for d in disks):
        candidates = [d for d in disks if d.get(BOOT) is not False]
        chosen = next((d for d in candidates if d.get("image")), candidates[0] if candidates else None)
        if chosen is not None:
            chosen[BOOT] = True
    for disk in disks:
        if disk.get(BOOT) is None:
            disk[BOOT] = False


def _default_boot_image(image: str | None, disks: list[dict[str, Any]]) -> None:
    """M5: ``osImage`` is the boot disk's image when no disk names one (at creation; afterwards the boot disk's
    image is what it is, and changing it is validation's business)."""
    if image is None or any(d.get("image") for d in disks):
        return
    boot = next((d for d in disks if d.get(BOOT) is True), None)
    if boot is not None:
        boot["image"] = image


def _default_retention(obj: dict[str, Any], old: Wukong | None) -> None:
    """M4: ``volumeRetentionPolicy.whenDeleted`` is shown, not implied: the previous value on update (a request
    that omits it never flips Delete back to Retain), else Retain -- data outlives the Wukong unless asked."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    policy = spec.setdefault(RETENTION, {})
    if not isinstance(policy, dict) or "whenDeleted" in policy:
        return
    before = old.when_deleted if old is not None else None
    policy["whenDeleted"] = before if isinstance(before, str) else RETAIN


def _hash_password(obj: dict[str, Any], new: Wukong, old: Wukong | None) -> list[field.FieldError]:
    """M6: ``cloudInitUser.password`` is stored as its SHA-512 crypt hash in ``passwordHash``, and the plaintext is
    taken out of the last-applied annotation too, so it rests nowhere: not in the Wukong, etcd or its backups,
    nor in what every reader of Wukongs sees. The hash already stored is kept while the same password is applied
    again (kubectl apply sends it every time), so re-applying a manifest changes nothing."""
    spec, user = obj.get("spec"), new.user
    password = user.password if user is not None else None
    if not isinstance(spec, dict) or user is None or password is None:
        return []  # no password, or one of a wrong type that validation names (without showing it)
    path = field.SPEC.child(USER)
    if len(password) > _password_limit():
        return [field.invalid(path.child(PASSWORD), password, f"may not be longer than {_password_limit()} characters")]
    given = user.password_hash
    previous = old.user.password_hash if old is not None and old.user is not None else None
    known = [h for h in (given, previous) if h]
    if given and given != previous and not cloudinit.password_matches(password, given):
        return [field.forbidden(path.child(PASSWORD_HASH), "set password or passwordHash, not both")]
    try:
        hashed = next((h for h in known if cloudinit.password_matches(password, h)), None)
        hashed = hashed or cloudinit.hash_password(password)
    except ValueError:
        return [field.invalid(path.child(PASSWORD), password, "may not hold a NUL character")]
    spec[USER] = {**{k: v for k, v in new.cloud_init_user.items() if k != PASSWORD}, PASSWORD_HASH: hashed}
    _scrub_last_applied(obj, hashed)
    return []


@cache
def _password_limit() -> int:
    """The CRD's maxLength for a password, judged here because the plaintext does not reach the schema check."""
    user = schema.openapi_schema()["properties"]["spec"]["properties"][USER]["properties"]
    return int(user[PASSWORD]["maxLength"])


def _scrub_last_applied(obj: dict[str, Any], hashed: str) -> None:
    """kubectl's client-side apply keeps the whole manifest in an annotation. There, the password becomes the hash
    that replaced it: the next apply of a manifest that still holds the password sets it again (hashed again, to
    the same hash), and one that drops it drops the hash too -- as kubectl would for any field."""
    metadata = mapping(obj.get("metadata"))
    annotations = mapping(metadata.get("annotations"))
    text = annotations.get(LAST_APPLIED)
    if not isinstance(text, str) or PASSWORD not in text:
        return
    try:
        applied = json.loads(text)
    except (ValueError, RecursionError):
        applied = None
    user = mapping(mapping(mapping(applied).get("spec")).get(USER))
    scrubbed = dict(annotations)
    if isinstance(user, dict) and PASSWORD in user:
        user.pop(PASSWORD)
        user[PASSWORD_HASH] = hashed
        scrubbed[LAST_APPLIED] = json.dumps(applied, separators=(",", ":")) + "\n"
    elif applied is None:
        del scrubbed[LAST_APPLIED]  # not kubectl's JSON: it cannot be scrubbed field by field, and may hold it
    else:
        return
    obj["metadata"] = {**metadata, "annotations": scrubbed}


def patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON Patch (RFC 6902) that turns ``before`` into ``after``, its defaulted copy."""
    ops: list[dict[str, Any]] = []
    spec_before, spec_after = mapping(before.get("spec")), mapping(after.get("spec"))
    for key in (RETENTION, USER):
        if spec_before.get(key) != spec_after.get(key):
            op = "replace" if key in spec_before else "add"
            ops.append({"op": op, "path": f"/spec/{key}", "value": spec_after[key]})
    annotations_before = mapping(mapping(before.get("metadata")).get("annotations"))
    annotations_after = mapping(mapping(after.get("metadata")).get("annotations"))
    if annotations_before.get(LAST_APPLIED) != annotations_after.get(LAST_APPLIED):
        where = f"/metadata/annotations/{_pointer(LAST_APPLIED)}"
        if LAST_APPLIED in annotations_after:
            ops.append({"op": "replace", "path": where, "value": annotations_after[LAST_APPLIED]})
        else:
            ops.append({"op": "remove", "path": where})
    disks_before, disks_after = _disks(dict(before)) or [], _disks(dict(after)) or []
    for index, (was, now) in enumerate(zip(disks_before, disks_after, strict=False)):
        for key, value in now.items():
            if key not in was or was[key] != value:
                op = "replace" if key in was else "add"
                ops.append({"op": op, "path": f"/spec/disks/{index}/{_pointer(key)}", "value": value})
    return ops


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")

"""Validating admission (V1-V10, W1-W3): what may not be created or changed, with every reason at once.

The rules by id (SPEC.md's, and the tests' section names): V1 the CRD's schema, V2 unique disk names, V3 one boot
disk, V4 valid quantities, V5 no shrinking, V6 and V7 a bound disk's storageClassName and image fixed, V8 a disk
removed only with the annotation, V9 growth only on an expandable StorageClass, V10 supported images. The rules
added since have names, not ids: ``name_fits_children``, ``reserved_disk_names``, ``guest_user``,
``guest_networks``, ``placement``, ``os_image``, ``ssh_key_secret``, and the WukongPolicies (``wukong.policy``).
Warnings let a request through: W1 a StorageClass that does not exist, W2 a password stored in clear, W3 a removal
permission that this update does not use (and whatever a policy only warns of).

``validate(new, old, facts)`` mirrors Kubernetes' ``ValidateUpdate(new, old, opts)``: it returns the
field errors that deny the request and, separately, warnings that let it through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import cache
from itertools import islice
from typing import Any, cast

import fastjsonschema
import jsonschema

from webhook import field
from webhook.facts import ClusterFacts
from webhook.field import quoted
from wukong import api, cloudinit, naming, policy, schema
from wukong import networkrules as network_rules
from wukong.image import ImageError, parse_image
from wukong.naming import CLOUD_INIT_DISK, POD_NETWORK
from wukong.quantity import Quantity, QuantityError, parse, parse_or_none
from wukong.spec import RESTART_POLICY_RUN_STRATEGY, DiskEntry, Wukong, mapping, text

Old = Wukong | None
Result = tuple[list[field.FieldError], list[str]]


def validate(new: Mapping[str, Any], old: Wukong | Mapping[str, Any] | None, facts: ClusterFacts) -> Result:
    """All errors and warnings for a CREATE (``old`` None) or an UPDATE (``old`` as stored, or its reader)."""
    before = Wukong.of(old) if old is not None else None
    if before is not None and before.object.get("spec") == new.get("spec"):
        # Metadata- or finalizer-only updates pass even if an older object predates a rule.
        return [], []
    errors = field.FieldErrors(_schema_errors(new))  # V1: what is not of its type, named once, here
    after = Wukong(new)  # read once, by every rule
    for rule in _RULES:
        errors.extend(rule(after, before, facts))
    warnings = [*_warnings(after, facts), *_removal_warnings(after, before)]
    for violation in facts.scope.evaluate(after, before):
        if violation.action == policy.DENY:
            errors.append(field.forbidden(field.Path(violation.path), violation.detail))
        else:
            warnings.append(f"{violation.path}: {violation.detail} (the policy only warns: not refused)")
    return errors, warnings


# V1 ----------------------------------------------------------------------------------------------------
@cache
def _validator() -> jsonschema.protocols.Validator:
    crd_schema = schema.openapi_schema()
    return jsonschema.Draft7Validator(crd_schema)


@cache
def _fast_check() -> Callable[[Any], Any]:
    """The same schema compiled to Python by fastjsonschema: about 100x faster, but it stops at the first error.
    It only decides that an object is valid; any object it refuses goes to jsonschema, which lists every error
    with its path (and is the authority: a unit test holds that nothing passes here that jsonschema refuses)."""
    return cast(Callable[[Any], Any], fastjsonschema.compile(schema.openapi_schema()))


def _schema_errors(obj: Mapping[str, Any]) -> Iterator[field.FieldError]:
    """The first errors jsonschema finds, in the order of their paths, then the rest, only to be counted. The
    object is within the CRD's bounds (webhook.bounds), so there are not many; still no more are kept and
    sorted than an answer shows."""
    try:
        _fast_check()(obj)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    found = _validator().iter_errors(obj)
    first = sorted(islice(found, field.MAX_ERRORS_KEPT), key=lambda e: list(map(str, e.absolute_path)))
    yield from map(_field_error, first)
    yield from map(_field_error, found)


def _field_error(error: jsonschema.ValidationError) -> field.FieldError:
    path = field.Path()
    for part in error.absolute_path:
        path = path.index(part) if isinstance(part, int) else path.child(part)
    kind, detail = str(error.validator), cast(Any, error.validator_value)
    if kind == "required":
        present = error.instance if isinstance(error.instance, Mapping) else {}
        missing = next((name for name in detail if name not in present), detail[0])
        return field.required(path.child(missing), f"{missing} is required")
    if kind == "enum":
        return field.not_supported(path, error.instance, detail)
    messages = {
        "type": f"must be of type {detail}",
        "minimum": f"should be greater than or equal to {detail}",
        "maximum": f"should be less than or equal to {detail}",
        "minItems": f"must have at least {detail} items",
        "maxItems": f"must have at most {detail} items",
        "minLength": f"must be at least {detail} characters long",
        "maxLength": f"may not be longer than {detail} characters",
        "pattern": _pattern_message(path, str(detail)),
    }
    value = error.instance if not isinstance(error.instance, (dict, list)) else type(error.instance).__name__
    return field.invalid(path, value, messages.get(kind, error.message))


_SUBDOMAIN = "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending alphanumeric"
_PATTERN_MESSAGES = {
    "name": "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending alphanumeric",
    "storageClassName": f"must be the name of a StorageClass, {_SUBDOMAIN}",
    "sshKeySecret": f"must be the name of a Secret in this namespace, {_SUBDOMAIN}",
    "nadName": (
        f"must be the name of a NetworkAttachmentDefinition, {_SUBDOMAIN}; another namespace's is <namespace>/<name>"
    ),
}


def _pattern_message(path: field.Path, pattern: str) -> str:
    last = str(path).rpartition(".")[2]
    return _PATTERN_MESSAGES.get(last, f"should match '{pattern}'")


# V2-V10 ------------------------------------------------------------------------------------------------
def _disks(obj: Old) -> Iterator[tuple[int, DiskEntry, str]]:
    """(index, disk, name) of the disks whose name is a string."""
    for entry in obj.named_disks if obj is not None else ():
        yield entry.index, entry, entry.name or ""


def _previous(old: Old) -> dict[str, DiskEntry]:
    return {name: disk for _, disk, name in _disks(old)}


def unique_names(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """V2."""
    seen: set[str] = set()
    for index, _, name in _disks(new):
        if name in seen:
            yield field.duplicate(field.DISKS.index(index).child("name"), name, "disk names must be unique")
        seen.add(name)


def one_boot_disk(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """V3."""
    boots = [(index, name) for index, disk, name in _disks(new) if disk.boots]
    if not boots and new.disks:
        yield field.required(field.DISKS, "exactly one disk must have boot: true, and none has")
    for index, name in boots[1:]:
        yield field.invalid(
            field.DISKS.index(index).child("boot"),
            True,
            f"disk {quoted(name)} is marked to boot but disk {quoted(boots[0][1])} already is; exactly one disk boots",
        )


def valid_quantities(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """V4: sizes and memory parse as quantities, and are more than zero."""
    if new.memory_text is not None:
        yield from _positive_quantity(field.SPEC.child("memory"), new.memory_text, "memory")
    for index, disk, name in _disks(new):
        if (size := disk.text("size")) is not None:
            yield from _positive_quantity(field.DISKS.index(index).child("size"), size, f"disk {quoted(name)}")


def _positive_quantity(path: field.Path, text: str, what: str) -> Iterator[field.FieldError]:
    try:
        quantity = parse(text)
    except QuantityError as error:
        yield field.invalid(path, text, f"{what}: {error}")
        return
    if quantity.value <= 0:
        yield field.invalid(path, text, f"{what} must be greater than zero")


def size_changes(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """V5 (shrink; a failed expansion may be taken back to above the capacity reached) and V9 (growth needs an
    expandable StorageClass)."""
    previous = _previous(old)
    failed = _failed_expansions(old)
    for index, entry, name in _disks(new):
        earlier = previous.get(name)
        if earlier is None:
            continue
        disk, before = entry.raw, earlier.raw
        was, now = earlier.size, entry.size
        if was is None or now is None or was == now:
            continue
        path = field.DISKS.index(index).child("size")
        if now < was and name in failed:
            reached = failed[name]
            if reached is None or now <= reached:
                yield field.forbidden(
                    path,
                    f"disk {quoted(name)} cannot shrink from {was} to {now}: its expansion failed, and its size may "
                    f"be lowered only to more than the capacity its volume reached"
                    + (f" ({reached})" if reached is not None else " (not known yet)")
                    + ", as Kubernetes allows",
                )
            continue
        if now < was:
            yield field.forbidden(path, f"disk {quoted(name)} cannot shrink from {was} to {now}; disks can only grow")
            continue
        class_name = disk.get("storageClassName") or before.get("storageClassName")
        storage_class = facts.storage_class(class_name) if isinstance(class_name, str) else None
        if storage_class is not None and not storage_class.allow_volume_expansion:
            yield field.forbidden(
                path,
                f"disk {quoted(name)} cannot grow from {was} to {now}: StorageClass {quoted(class_name)} "
                f"does not allow volume expansion (allowVolumeExpansion is not true)",
            )


def immutable_fields(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """V6 (storageClassName) and V7 (image) of an existing disk cannot change once its volume has bound: it may
    hold data. Until then (a mistyped class, say) they may be corrected, and the reconciler replaces the unbound
    claim; it re-checks, and never deletes a claim that bound, whatever this rule saw."""
    previous = _previous(old)
    held = old.ever_bound if old is not None else frozenset()
    for index, entry, name in _disks(new):
        earlier = previous.get(name)
        if earlier is None or name not in held:
            continue
        disk, before = entry.raw, earlier.raw
        path = field.DISKS.index(index)
        if before.get("storageClassName") and disk.get("storageClassName") != before["storageClassName"]:
            yield field.forbidden(
                path.child("storageClassName"),
                f"disk {quoted(name)} is on StorageClass {quoted(before['storageClassName'])} and its volume has "
                f"bound, so it may hold data and the class cannot change; add a new disk to use another class",
            )
        if disk.get("image") != before.get("image"):
            yield field.forbidden(
                path.child("image"),
                f"disk {quoted(name)} image cannot change (was {quoted(before.get('image'))}): its volume has "
                f"bound and may hold data; add a new disk for another image",
            )


def _failed_expansions(old: Old) -> dict[str, Quantity | None]:
    """Disk -> the capacity its volume reached, for the disks whose expansion failed (status.volumes[]
    .expansionFailed, written by the reconciler from the claim): while it stands, the disk's size may be lowered to
    more than that capacity (KEP-1790, recovery from expansion failure)."""
    status = mapping(old.object.get("status")) if old is not None else {}
    volumes = status.get("volumes")
    if not isinstance(volumes, list):
        return {}
    return {
        v["name"]: parse_or_none(v.get("capacity"))
        for v in volumes
        if isinstance(v, Mapping) and isinstance(v.get("name"), str) and v.get("expansionFailed") is True
    }


def no_removal(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """V8: removing a disk needs the allow-disk-removal annotation set *by the same update*, naming the disk (or
    ``"true"``, every disk that update removes); its volume is kept either way.

    An annotation already stored before the update allows nothing: it would otherwise stay on the object (kubectl
    apply keeps sending it) and allow every later removal unseen. So a permission is spent by the update that
    carries it, and the next removal needs the annotation set again, to a new value (the disk's name), or dropped
    and added back."""
    removed = _removed(new, old)
    if not removed:
        return
    given = _removal_permission(new)
    stale = given is not None and given == _removal_permission(old)
    allowed = set() if given is None or stale else _named(given, removed)
    for name in removed:
        if name in allowed:
            continue
        if stale:
            why = (
                f"{api.ALLOW_DISK_REMOVAL_ANNOTATION}: {quoted(given)} was already set before this update, and "
                "a permission holds only for the update that sets it"
            )
        elif given is not None:
            why = f"{api.ALLOW_DISK_REMOVAL_ANNOTATION}: {quoted(given)} does not name it"
        else:
            why = "its data would be detached"
        yield field.forbidden(
            field.DISKS,
            f"disk {quoted(name)} cannot be removed: {why}; to remove it anyway, set the annotation "
            f"{api.ALLOW_DISK_REMOVAL_ANNOTATION}: {quoted(name)} in the same update (its volume is kept, not "
            "deleted)",
        )


def _removed(new: Wukong, old: Old) -> list[str]:
    remaining = {name for _, _, name in _disks(new)}
    return [name for _, _, name in _disks(old) if name not in remaining]


def _removal_permission(obj: Old) -> str | None:
    return obj.annotation(api.ALLOW_DISK_REMOVAL_ANNOTATION) if obj is not None else None


def _named(value: str, removed: list[str]) -> set[str]:
    """The disks an annotation value allows to remove: ``"true"`` all of them, else the comma-separated names."""
    if value == "true":
        return set(removed)
    return {name.strip() for name in value.split(",")}


def _removal_warnings(new: Wukong, old: Old) -> Iterator[str]:
    """W3: a permission set for a disk this update does not remove is spent unused: say so, rather than let it
    look armed."""
    given = _removal_permission(new)
    if old is None or given is None or given == "true" or given == _removal_permission(old):
        return
    removed = set(_removed(new, old))
    if unused := sorted(n for n in _named(given, []) - removed if n):
        yield (
            f"metadata.annotations[{api.ALLOW_DISK_REMOVAL_ANNOTATION}]: {', '.join(map(quoted, unused))} not "
            "removed by this update; the permission holds only for the update that sets it"
        )


def supported_images(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """V10."""
    for index, disk, name in _disks(new):
        image = disk.text("image")
        if image is None:
            continue
        try:
            parse_image(image)
        except ImageError as error:
            yield field.invalid(field.DISKS.index(index).child("image"), image, f"disk {quoted(name)}: {error}")


def name_fits_children(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """The VM is named ``<name>-vm`` and that name is a label value (63 characters at most)."""
    name = new.name
    if old is None and name is not None and len(name) > naming.MAX_NAME_LENGTH:
        yield field.invalid(
            field.Path("metadata").child("name"),
            name,
            f"must be no more than {naming.MAX_NAME_LENGTH} characters: the VirtualMachine is named "
            f"{quoted(naming.vm_name(name))} and that name is also a label value, limited to "
            f"{naming.LABEL_VALUE_MAX} characters",
        )


def reserved_disk_names(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    for index, _, name in _disks(new):
        if name == CLOUD_INIT_DISK:
            yield field.invalid(
                field.DISKS.index(index).child("name"), name, f'"{CLOUD_INIT_DISK}" is the VM\'s cloud-init disk'
            )


def guest_user(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """What cloud-init and useradd would refuse, said before the VM boots."""
    user = new.cloud_init_user
    path = field.SPEC.child("cloudInitUser")
    if (name := text(user, "name")) is not None and (problem := cloudinit.user_name_problem(name)):
        yield field.invalid(path.child("name"), name, problem)
    groups = user.get("groups")
    for index, group in enumerate(groups if isinstance(groups, list) else []):
        if isinstance(group, str) and (problem := cloudinit.group_problem(group)):
            yield field.invalid(path.child("groups").index(index), group, problem)
    if (shell := text(user, "shell")) is not None and (problem := cloudinit.shell_problem(shell)):
        yield field.invalid(path.child("shell"), shell, problem)
    hashed = text(user, "passwordHash")
    if hashed is not None and not hashed.startswith("$"):
        yield field.invalid(
            path.child("passwordHash"),
            hashed,
            "must be a crypt(3) hash such as $6$...; put a plaintext password in password",
        )
    if user.get("sshPasswordAuth") is True and not user.get("password") and not user.get("passwordHash"):
        yield field.forbidden(
            path.child("sshPasswordAuth"),
            "there is no password to log in with: set password or passwordHash, or drop sshPasswordAuth",
        )


def guest_networks(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    before = {e.raw.get("name"): e.raw for e in old.networks} if old is not None else {}
    seen: set[str] = set()
    for index, entry, network in ((e.index, e.raw, e.network) for e in new.networks):
        path = field.SPEC.child("networks").index(index)
        name = entry.get("name")
        if name == POD_NETWORK:
            yield field.invalid(
                path.child("name"), name, f'"{POD_NETWORK}" is the pod network, always the first interface'
            )
        if isinstance(name, str):
            if name in seen:
                yield field.duplicate(path.child("name"), name, "network names must be unique")
            seen.add(name)
        for where, problem in network_rules.problems(network):
            yield field.invalid(path.child(where), _at(entry, where), problem)
        ip = network.ip_config
        stored_entry = before.get(name, {}) if isinstance(name, str) else {}
        # A gateway without routes stored before routes existed (when it was a default route) may stay as it is.
        unchanged = bool(stored_entry) and stored_entry.get("ipConfig") == entry.get("ipConfig")
        if ip and ip.mode == network_rules.STATIC and ip.gateway and not ip.routes and not unchanged:
            yield field.invalid(path.child("ipConfig.gateway"), ip.gateway, network_rules.GATEWAY_WITHOUT_ROUTES)
        # So may a macvlan master or sriov resource stored in bridgeName before master and resourceName existed.
        misplaced = network_rules.MISPLACED_BRIDGE_NAME.get(network.type)
        kept = all(stored_entry.get(key) == entry.get(key) for key in ("type", "bridgeName"))
        legacy = not network.nad_name and network_rules.host_field(network) == "bridgeName"
        if misplaced is not None and legacy and not (stored_entry and kept):
            yield field.invalid(path.child("bridgeName"), network.bridge_name, misplaced)


def _at(entry: Mapping[str, Any], where: str) -> Any:
    value: Any = entry
    for step in where.split("."):
        value = value.get(step) if isinstance(value, Mapping) else None
    return value if not isinstance(value, (dict, list)) else type(value).__name__


def placement(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """highAvailability.restartPolicy sets the run strategy only when startStrategy does not say otherwise."""
    policy = new.high_availability.get("restartPolicy")
    start = new.start_strategy
    if not isinstance(policy, str) or policy not in RESTART_POLICY_RUN_STRATEGY:
        return
    path = field.SPEC.child("highAvailability").child("restartPolicy")
    mapped = RESTART_POLICY_RUN_STRATEGY[policy]
    given = start.get("runStrategy")
    if isinstance(given, str) and given != mapped:
        contradiction = f"spec.startStrategy.runStrategy is {given}"
    elif start.get("autoStart") is False and not given:
        contradiction = "spec.startStrategy.autoStart is false (runStrategy Halted)"
    else:
        return
    yield field.invalid(
        path, policy, f"restartPolicy {policy} means runStrategy {mapped}, but {contradiction}; set one of the two"
    )


def os_image(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """osImage fills the boot disk's image at creation; it may not contradict it, nor be set where it cannot act."""
    image = new.os_image
    if image is None:
        return
    path = field.SPEC.child("osImage")
    try:
        parse_image(image)
    except ImageError as error:
        yield field.invalid(path, image, str(error))
        return
    before = old.os_image if old is not None else None
    boot = next(((i, d.raw) for i, d, _ in _disks(new) if d.boots), None)
    if boot is not None and image != before and boot[1].get("image") not in (None, image):
        yield field.invalid(
            path,
            image,
            f"osImage is the boot disk's image, but spec.disks[{boot[0]}].image is {quoted(boot[1].get('image'))}; "
            f"set one of the two (a disk's image cannot change once its volume bound)",
        )
    elif boot is not None and image != before and boot[1].get("image") is None:
        yield field.invalid(
            path,
            image,
            f"osImage becomes the boot disk's image only when the Wukong is created and no disk names an image, "
            f"and boot disk spec.disks[{boot[0]}] has none; set spec.disks[{boot[0]}].image instead",
        )


def ssh_key_secret(new: Wukong, old: Old, facts: ClusterFacts) -> Iterator[field.FieldError]:
    """A Secret named anew in sshKeySecret must be one the user asking may read: KubeVirt copies every value of it
    into the guest's cloud-init data, where whoever uses the VM reads it, so naming a Secret one cannot read (a
    ServiceAccount token, another team's TLS key) would read it through the VM. Judged by the API server's own
    authorisers (facts.readable_secrets, a SubjectAccessReview for this user); not judged where there is none."""
    name = new.ssh_key_secret
    if name is None or facts.readable_secrets.get(name) is not False:
        return
    yield field.forbidden(
        field.SPEC.child("sshKeySecret"),
        f"you may not read Secret {quoted(name)} in namespace {quoted(facts.namespace or '')} (get secrets), and "
        f"KubeVirt copies every value of it into the VM's guest, where its users read them: name a Secret of SSH "
        f"public keys that you may read (an Opaque Secret of public keys only, labelled "
        f"{api.SSH_KEYS_LABEL}=true by convention), or ask for read access to it",
    )


_RULES: tuple[Callable[[Wukong, Old, ClusterFacts], Iterator[field.FieldError]], ...] = (
    name_fits_children,
    unique_names,
    one_boot_disk,
    valid_quantities,
    size_changes,
    immutable_fields,
    no_removal,
    supported_images,
    reserved_disk_names,
    guest_user,
    guest_networks,
    placement,
    os_image,
    ssh_key_secret,
)


# W1, W2 (W3 is _removal_warnings) ----------------------------------------------------------------------
def _warnings(new: Wukong, facts: ClusterFacts) -> Iterator[str]:
    """W2 a password in clear, W1 a StorageClass that does not exist."""
    user = new.cloud_init_user
    if text(user, "password") and not user.get("passwordHash"):
        yield (
            "spec.cloudInitUser.password is stored in clear in this Wukong, readable by anyone who can read it "
            "(the VM's user-data gets a SHA-512 hash of it); use passwordHash instead, e.g. the output of "
            "`openssl passwd -6`"
        )
    if not facts.knows_storage_classes:
        return
    for index, disk, name in _disks(new):
        class_name = disk.text("storageClassName")
        if class_name is not None and facts.storage_class(class_name) is None:
            yield (
                f"spec.disks[{index}].storageClassName: StorageClass {quoted(class_name)} does not exist; "
                f"disk {quoted(name)} stays Pending until it does"
            )

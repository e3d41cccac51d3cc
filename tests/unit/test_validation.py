import pytest

from tests.builders import disk, facts, wukong
from webhook.validation import validate


def messages(new, old=None, cluster=None):
    errors, _ = validate(new, old, cluster or facts())
    return [str(e) for e in errors]


def warnings(new, old=None, cluster=None):
    return validate(new, old, cluster or facts())[1]


def sc(name="data", size="500Gi", **fields):
    return disk(name, size, storageClassName=fields.pop("storageClassName", "longhorn"), **fields)


BOOT = disk("system", "20Gi", storageClassName="longhorn", boot=True, image="docker://quay.io/containerdisks/fedora:40")


def test_a_valid_wukong_passes():
    assert messages(wukong(BOOT, sc(boot=False))) == []


# V1 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o["spec"].pop("cpu"), "spec.cpu: Required value: cpu is required"),
        (lambda o: o["spec"].update(cpu=0), "spec.cpu: Invalid value: 0: should be greater than or equal to 1"),
        (lambda o: o["spec"].update(cpu=65), "spec.cpu: Invalid value: 65: should be less than or equal to 64"),
        (lambda o: o["spec"].update(cpu="two"), 'spec.cpu: Invalid value: "two": must be of type integer'),
        (lambda o: o["spec"].update(disks=[]), 'spec.disks: Invalid value: "list": must have at least 1 items'),
        (
            lambda o: o["spec"]["disks"][0].update(name="Sys_1"),
            'spec.disks[0].name: Invalid value: "Sys_1": must be a DNS-1123 label',
        ),
        (
            lambda o: o["spec"].update(startStrategy={"runStrategy": "Sometimes"}),
            'spec.startStrategy.runStrategy: Unsupported value: "Sometimes": supported values: "Always"',
        ),
    ],
    ids=["cpu-missing", "cpu-zero", "cpu-too-many", "cpu-a-string", "no-disks", "bad-disk-name", "bad-run-strategy"],
)
def test_schema_errors_name_the_field(mutate, expected):
    obj = wukong(BOOT)
    mutate(obj)
    assert any(m.startswith(expected) for m in messages(obj)), messages(obj)


def test_too_many_disks_are_refused():
    disks = [BOOT] + [sc(f"d{i}", boot=False) for i in range(16)]
    assert 'spec.disks: Invalid value: "list": must have at most 16 items' in messages(wukong(*disks))


# V2 / V3 ----------------------------------------------------------------------------------------------
def test_duplicate_disk_names_are_refused():
    assert messages(wukong(BOOT, sc(boot=False), sc(boot=False))) == [
        'spec.disks[2].name: Duplicate value: "data": disk names must be unique'
    ]


def test_two_boot_disks_are_refused_naming_both():
    assert messages(wukong(BOOT, sc(boot=True))) == [
        'spec.disks[1].boot: Invalid value: true: disk "data" is marked to boot but disk "system" already is; '
        "exactly one disk boots"
    ]


def test_no_boot_disk_is_refused():
    assert messages(wukong(sc(boot=False))) == [
        "spec.disks: Required value: exactly one disk must have boot: true, and none has"
    ]


# V4 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("lots", 'spec.disks[1].size: Invalid value: "lots": disk "data": not a quantity; use a number'),
        ("0", 'spec.disks[1].size: Invalid value: "0": disk "data" must be greater than zero'),
        ("-1Gi", 'spec.disks[1].size: Invalid value: "-1Gi": disk "data" must be greater than zero'),
    ],
    ids=["not-a-quantity", "zero", "negative"],
)
def test_disk_sizes_must_be_positive_quantities(size, expected):
    [message] = messages(wukong(BOOT, sc(size=size, boot=False)))
    assert message.startswith(expected)


def test_memory_must_be_a_quantity():
    [message] = messages(wukong(BOOT, memory="4 gigs"))
    assert message.startswith('spec.memory: Invalid value: "4 gigs": memory: not a quantity')


# V5 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after"),
    [("500Gi", "400Gi"), ("1Ti", "1000Gi"), ("2Gi", "2G"), ("1.5Gi", "1535Mi")],
    ids=lambda s: s,
)
def test_shrinking_a_disk_is_refused(before, after):
    old = wukong(BOOT, sc(size=before, boot=False))
    new = wukong(BOOT, sc(size=after, boot=False))
    assert messages(new, old) == [
        f'spec.disks[1].size: Forbidden: disk "data" cannot shrink from {before} to {after}; disks can only grow'
    ]


def test_shrink_from_1Ti_to_1000Gi_is_refused():
    old, new = wukong(BOOT, sc(size="1Ti", boot=False)), wukong(BOOT, sc(size="1000Gi", boot=False))
    assert len(messages(new, old)) == 1


@pytest.mark.parametrize(("before", "after"), [("1Ti", "1024Gi"), ("1536Mi", "1.5Gi"), ("500Gi", "1Ti")])
def test_equal_or_larger_sizes_are_allowed(before, after):
    assert messages(wukong(BOOT, sc(size=after, boot=False)), wukong(BOOT, sc(size=before, boot=False))) == []


def test_a_shrink_is_found_wherever_the_disk_moved_in_the_list():
    old = wukong(BOOT, sc(size="500Gi", boot=False))
    new = wukong(sc(size="100Gi", boot=False), BOOT)
    assert messages(new, old)[0].startswith('spec.disks[0].size: Forbidden: disk "data" cannot shrink')


# V6 / V7 ----------------------------------------------------------------------------------------------
def bound(obj, *disks):
    """The Wukong as the reconciler reported it: these disks' volumes have bound."""
    obj["status"] = {"volumes": [{"name": name, "everBound": True} for name in disks]}
    return obj


def test_the_storage_class_of_a_disk_whose_volume_bound_is_immutable():
    old = bound(wukong(BOOT, sc(boot=False)), "system", "data")
    new = wukong(BOOT, sc(boot=False, storageClassName="longhorn-hdd"))
    assert messages(new, old) == [
        'spec.disks[1].storageClassName: Forbidden: disk "data" is on StorageClass "longhorn" and its volume has '
        "bound, so it may hold data and the class cannot change; add a new disk to use another class"
    ]


@pytest.mark.parametrize("status", [None, {"volumes": [{"name": "data", "everBound": False}]}, {"volumes": "x"}])
def test_a_mistyped_storage_class_can_be_corrected_while_the_volume_never_bound(status):
    old = wukong(BOOT, sc(boot=False, storageClassName="longhron"))
    if status is not None:
        old["status"] = status
    assert messages(wukong(BOOT, sc(boot=False)), old) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [("docker://a/b:1", "docker://a/b:2"), (None, "docker://a/b:1"), ("docker://a/b:1", None)],
    ids=["changed", "added", "removed"],
)
def test_the_image_of_a_disk_whose_volume_bound_is_immutable(before, after):
    def data(image):
        return sc(boot=False, **({"image": image} if image else {}))

    [message] = messages(wukong(BOOT, data(after)), bound(wukong(BOOT, data(before)), "data"))
    assert message.startswith('spec.disks[1].image: Forbidden: disk "data" image cannot change')
    assert messages(wukong(BOOT, data(after)), wukong(BOOT, data(before))) == []


# V8 ---------------------------------------------------------------------------------------------------
REMOVAL = "vm.novasphere.dev/allow-disk-removal"
WITH_DATA = wukong(BOOT, sc(boot=False))


def allowing(value, *disks):
    return wukong(*disks, annotations={REMOVAL: value})


def test_removing_a_disk_is_refused_and_says_how_to_allow_it():
    assert messages(wukong(BOOT), WITH_DATA) == [
        'spec.disks: Forbidden: disk "data" cannot be removed: its data would be detached; to remove it anyway, '
        'set the annotation vm.novasphere.dev/allow-disk-removal: "data" in the same update (its volume is kept, '
        "not deleted)"
    ]


@pytest.mark.parametrize("value", ["data", "true", "logs, data"])
def test_removing_a_disk_with_the_annotation_set_by_the_same_update_is_allowed(value):
    assert messages(allowing(value, BOOT), WITH_DATA) == []


def test_an_annotation_left_from_an_earlier_update_allows_no_later_removal():
    before = allowing("true", BOOT, sc(boot=False))  # set when another disk went; kubectl apply keeps sending it
    assert messages(allowing("true", BOOT), before) == [
        'spec.disks: Forbidden: disk "data" cannot be removed: vm.novasphere.dev/allow-disk-removal: "true" was '
        "already set before this update, and a permission holds only for the update that sets it; to remove it "
        'anyway, set the annotation vm.novasphere.dev/allow-disk-removal: "data" in the same update (its volume is '
        "kept, not deleted)"
    ]
    assert messages(allowing("data", BOOT), before) == []  # a new value is a new permission


def test_an_annotation_naming_another_disk_does_not_allow_the_removal():
    [message] = messages(allowing("logs", BOOT), WITH_DATA)
    assert 'disk "data" cannot be removed: vm.novasphere.dev/allow-disk-removal: "logs" does not name it' in message


def test_a_permission_for_a_disk_the_update_keeps_is_a_warning_not_a_silent_arming():
    new = allowing("data", BOOT, sc(size="600Gi", boot=False))
    assert messages(new, WITH_DATA) == []
    assert warnings(new, WITH_DATA) == [
        'metadata.annotations[vm.novasphere.dev/allow-disk-removal]: "data" not removed by this update; the '
        "permission holds only for the update that sets it"
    ]


# Guest networks and SSH password login ---------------------------------------------------------------
def networked(ip_config):
    return wukong(
        BOOT, networks=[{"name": "storage", "type": "bridge", "nadName": "storage-lan", "ipConfig": ip_config}]
    )


GATEWAY_ONLY = {"mode": "static", "address": "10.20.0.5/24", "gateway": "10.20.0.1"}


def test_a_gateway_without_routes_is_refused_as_it_would_not_be_a_default_route():
    assert messages(networked(GATEWAY_ONLY)) == [
        'spec.networks[0].ipConfig.gateway: Invalid value: "10.20.0.1": the pod network holds the guest\'s only '
        "default route, so a gateway carries only ipConfig.routes: list the networks reached through it, or drop "
        "gateway"
    ]
    assert messages(networked({**GATEWAY_ONLY, "routes": ["10.30.0.0/16"]})) == []


def test_a_gateway_stored_before_routes_existed_does_not_block_other_changes():
    old = networked(GATEWAY_ONLY)
    new = networked(GATEWAY_ONLY)
    new["spec"]["cpu"] = 4
    assert messages(new, old) == []
    changed = networked({**GATEWAY_ONLY, "address": "10.20.0.6/24"})
    assert [m.split(":")[0] for m in messages(changed, old)] == ["spec.networks[0].ipConfig.gateway"]


def test_ssh_password_login_without_a_password_is_refused():
    user = {"name": "fedora", "sshPasswordAuth": True}
    assert messages(wukong(BOOT, cloudInitUser=user)) == [
        "spec.cloudInitUser.sshPasswordAuth: Forbidden: there is no password to log in with: set "
        "password or passwordHash, or drop sshPasswordAuth"
    ]
    assert messages(wukong(BOOT, cloudInitUser={**user, "passwordHash": "$6$salt$hash"})) == []


# V9 ---------------------------------------------------------------------------------------------------
def test_growing_on_a_class_without_expansion_is_refused_naming_the_class():
    old = wukong(BOOT, sc(storageClassName="local-path", boot=False))
    new = wukong(BOOT, sc(size="600Gi", storageClassName="local-path", boot=False))
    assert messages(new, old) == [
        'spec.disks[1].size: Forbidden: disk "data" cannot grow from 500Gi to 600Gi: StorageClass "local-path" '
        "does not allow volume expansion (allowVolumeExpansion is not true)"
    ]


def test_growing_on_an_expandable_class_is_allowed():
    assert messages(wukong(BOOT, sc(size="1Ti", boot=False)), wukong(BOOT, sc(boot=False))) == []


def test_growth_is_not_judged_when_the_classes_are_unknown():
    old = wukong(BOOT, sc(storageClassName="local-path", boot=False))
    new = wukong(BOOT, sc(size="600Gi", storageClassName="local-path", boot=False))
    assert messages(new, old, facts(classes=None)) == []


# V10 --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "image",
    [
        "docker://quay.io/containerdisks/fedora:40",
        "quay.io/containerdisks/fedora:40",
        "fedora",
        "registry:5000/team/img@sha256:" + "a" * 64,
        "registry:5000/team/img:1.0",
        "https://example.com/disk.img",
        "http://1.2.3.4:8080/x.qcow2",  # a private address is refused by the built-in policy rule
    ],
)
def test_supported_images_are_allowed(image):
    assert messages(wukong(disk("system", boot=True, storageClassName="longhorn", image=image))) == []


@pytest.mark.parametrize(
    "image",
    [
        "s3://bucket/disk.img",
        "ftp://host/x",
        "Quay.io/UPPER/Case",
        "https://",
        "docker://",
        "a b",
        "https://images.example.com:99999/vm/fedora.qcow2",
        "quay.io/containerdisks/fedora@md5:" + "a" * 32,
        "quay.io/containerdisks/fedora@sha256:" + "a" * 32,  # too short for sha256
        "quay.io/containerdisks/fedora@blake3:" + "a" * 64,
        "quay.io/containerdisks/fedora:40@sha256:" + "a" * 64,  # CDI's importer refuses a tag beside a digest
    ],
)
def test_unsupported_images_are_refused(image):
    [message] = messages(wukong(disk("system", boot=True, storageClassName="longhorn", image=image)))
    assert message.startswith("spec.disks[0].image: Invalid value: ") and 'disk "system": not a' in message


# W1 and all-at-once -----------------------------------------------------------------------------------
def test_an_unknown_storage_class_is_a_warning_not_an_error():
    new = wukong(BOOT, sc(boot=False, storageClassName="fast"))
    assert messages(new) == []
    assert warnings(new) == [
        'spec.disks[1].storageClassName: StorageClass "fast" does not exist; disk "data" stays Pending until it does'
    ]
    assert all(len(w) < 120 for w in warnings(new))


def test_all_errors_are_reported_together():
    old = bound(wukong(BOOT, sc(boot=False), sc("logs", boot=False)), "data")
    new = wukong(BOOT, sc(size="1Gi", boot=False, storageClassName="longhorn-hdd"), cpu=99)
    assert len(messages(new, old)) == 4  # cpu, shrink, class change, removal


def test_a_metadata_only_update_of_an_old_invalid_object_passes():
    old = wukong(BOOT, sc(boot=True))
    new = wukong(BOOT, sc(boot=True), annotations={"note": "x"})
    assert messages(new, old) == []


def test_a_name_too_long_for_the_vm_label_is_refused_on_create():
    [message] = messages(wukong(BOOT, name="x" * 61))
    assert message.startswith('metadata.name: Invalid value: "' + "x" * 61 + '": must be no more than 60 characters')
    assert messages(wukong(BOOT, name="x" * 60)) == []


def test_an_os_image_that_would_reach_no_disk_is_refused_not_ignored():
    blank_boot = disk("system", "20Gi", storageClassName="longhorn", boot=True)
    imaged = disk("data", "20Gi", storageClassName="longhorn", boot=False, image="docker://a/b:1")
    created = messages(wukong(blank_boot, imaged, osImage="docker://a/os:1"))
    assert created == [
        'spec.osImage: Invalid value: "docker://a/os:1": osImage becomes the boot disk\'s image only when the Wukong '
        "is created and no disk names an image, and boot disk spec.disks[0] has none; set spec.disks[0].image instead"
    ]
    added_later = messages(wukong(blank_boot, osImage="docker://a/os:1"), wukong(blank_boot))
    assert [m.split(":")[0] for m in added_later] == ["spec.osImage"]
    unchanged = wukong(blank_boot, osImage="docker://a/os:1")
    assert messages(unchanged, unchanged) == []

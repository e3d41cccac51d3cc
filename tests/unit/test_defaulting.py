import pytest

from tests.builders import disk, facts, wukong
from webhook.defaulting import default


def disks_of(obj):
    return obj["spec"]["disks"]


def test_a_disk_without_a_class_gets_the_cluster_default():
    defaulted, errors = default(wukong(disk("system")), None, facts())
    assert errors == []
    assert disks_of(defaulted)[0]["storageClassName"] == "longhorn"


def test_the_configured_default_wins_over_the_cluster_default():
    defaulted, _ = default(wukong(disk("system")), None, facts(default="longhorn-ssd"))
    assert disks_of(defaulted)[0]["storageClassName"] == "longhorn-ssd"


def test_a_class_the_user_chose_is_kept():
    defaulted, _ = default(wukong(disk("system", storageClassName="local-path")), None, facts())
    assert disks_of(defaulted)[0]["storageClassName"] == "local-path"


def test_no_default_anywhere_is_an_error_naming_the_disk_and_the_field():
    _, errors = default(wukong(disk("system", storageClassName="x"), disk("data")), None, facts(classes=[]))
    assert [str(e) for e in errors] == [
        'spec.disks[1].storageClassName: Required value: disk "data" names no StorageClass and the cluster has '
        "no default one; set spec.disks[1].storageClassName, or mark a StorageClass as the default"
    ]


def test_the_request_object_is_not_modified():
    request = wukong(disk("system"))
    default(request, None, facts())
    assert "storageClassName" not in disks_of(request)[0]


@pytest.mark.parametrize(
    ("disks", "boots"),
    [
        ([disk("a"), disk("b")], [True, False]),
        ([disk("a"), disk("b", image="docker://x/y")], [False, True]),
        ([disk("a", boot=False), disk("b")], [False, True]),
        ([disk("a"), disk("b", boot=True)], [False, True]),
        ([disk("a", boot=False)], [False]),
    ],
    ids=["first-disk", "first-with-image", "explicit-false-skipped", "explicit-true-kept", "all-false-left-alone"],
)
def test_boot_flag(disks, boots):
    defaulted, _ = default(wukong(*disks), None, facts())
    assert [d["boot"] for d in disks_of(defaulted)] == boots


def test_reapplying_a_minimal_manifest_keeps_the_existing_values():
    minimal = wukong(disk("system", image="docker://x/y"), disk("data", "500Gi"))
    live, _ = default(minimal, None, facts(default="longhorn-ssd"))
    reapplied, errors = default(minimal, live, facts(default="longhorn"))
    assert errors == []
    assert reapplied == live


def test_a_new_disk_on_update_gets_defaults_while_old_ones_keep_theirs():
    live, _ = default(wukong(disk("system")), None, facts(default="longhorn-ssd"))
    updated, _ = default(wukong(disk("system"), disk("data")), live, facts())
    assert [(d["storageClassName"], d["boot"]) for d in disks_of(updated)] == [
        ("longhorn-ssd", True),
        ("longhorn", False),
    ]


def test_moving_the_boot_flag_to_another_disk_is_possible_without_touching_the_old_one():
    live, _ = default(wukong(disk("system"), disk("data")), None, facts())
    moved, _ = default(wukong(disk("system"), disk("data", boot=True)), live, facts())
    assert [d["boot"] for d in disks_of(moved)] == [False, True]


def test_mutating_its_own_output_changes_nothing():
    once, _ = default(wukong(disk("a"), disk("b", image="docker://x/y")), None, facts())
    twice, _ = default(once, None, facts())
    assert twice == once


def test_reordered_disks_change_nothing():
    live, _ = default(wukong(disk("a"), disk("b")), None, facts())
    swapped = wukong(*reversed(disks_of(live)), volumeRetentionPolicy={"whenDeleted": "Retain"})
    again, _ = default(swapped, live, facts())
    assert again == swapped


@pytest.mark.parametrize(
    "spec",
    [{"disks": "nope"}, {"disks": [1, 2]}, {"disks": None}, "not-a-dict"],
    ids=["disks-a-string", "disks-not-objects", "disks-null", "spec-a-string"],
)
def test_unparseable_objects_are_not_patched(spec):
    request = {"apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "metadata": {}, "spec": spec}
    defaulted, errors = default(request, None, facts())
    assert defaulted == request
    assert errors == []


def test_volumes_are_retained_unless_the_wukong_says_otherwise():
    created, _ = default(wukong(disk("a")), None, facts())
    assert created["spec"]["volumeRetentionPolicy"] == {"whenDeleted": "Retain"}
    chosen, _ = default(wukong(disk("a"), volumeRetentionPolicy={"whenDeleted": "Delete"}), None, facts())
    assert chosen["spec"]["volumeRetentionPolicy"] == {"whenDeleted": "Delete"}


def test_an_update_that_omits_the_retention_policy_keeps_the_previous_one():
    live, _ = default(wukong(disk("a"), volumeRetentionPolicy={"whenDeleted": "Delete"}), None, facts())
    replaced, _ = default(wukong(disk("a")), live, facts())
    assert replaced["spec"]["volumeRetentionPolicy"] == {"whenDeleted": "Delete"}

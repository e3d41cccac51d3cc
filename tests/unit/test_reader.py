"""The one reader of a Wukong: hostile JSON reads as missing, never as a crash; paths point where the user wrote."""

import re
from pathlib import Path

import pytest

from kubeclient import timestamps
from tests.builders import disk, facts, wukong
from webhook import defaulting, validation
from webhook.validation import validate
from wukong.quantity import Quantity, parse, parse_or_none
from wukong.spec import Wukong, WukongSpec

BOOT = disk("system", "20Gi", storageClassName="longhorn", boot=True, image="docker://quay.io/containerdisks/fedora:40")
HOSTILE = [None, 7, "spec", [], [1, 2], {"spec": []}, {"spec": {"disks": {"a": 1}}}, {"spec": {"disks": [None, 5]}}]
HOSTILE += [
    {"spec": {key: value for key in ("cpu", "memory", "osImage", "networks", "highAvailability")}}
    for value in (True, -1, 1e309, "", [None], {"x": []})
]
READS = [
    "name",
    "cpu",
    "memory_text",
    "memory",
    "os_image",
    "disks",
    "named_disks",
    "networks",
    "cloud_init_user",
    "high_availability",
    "start_strategy",
    "tolerations",
    "node_selector",
    "when_deleted",
    "ssh_key_secret",
    "recorded",
    "ever_bound",
    "total_size",
    "spec",
]


@pytest.mark.parametrize("obj", HOSTILE, ids=repr)
def test_every_field_of_any_json_reads_without_raising(obj):
    reader = Wukong(obj)
    for name in READS:
        getattr(reader, name)
    assert reader.images() == []
    assert reader.annotation("a") is None


def test_a_field_of_the_wrong_type_reads_as_missing():
    reader = Wukong({"spec": {"cpu": True, "memory": 4, "osImage": "", "disks": [{"name": 3, "size": "x"}]}})
    assert (reader.cpu, reader.memory_text, reader.memory, reader.os_image) == (None, None, None, None)
    assert reader.disks[0].name is None and reader.disks[0].disk.name == "" and reader.disks[0].size is None
    assert reader.named_disks == ()


def test_entries_keep_the_index_the_user_wrote_them_at():
    reader = Wukong({"spec": {"disks": ["junk", {"name": "a", "size": "1Gi"}], "networks": [1, {"name": "n"}]}})
    assert [e.index for e in reader.disks] == [1]
    assert [e.index for e in reader.networks] == [1]
    assert reader.total_size == parse("1Gi")


def test_a_message_about_a_disk_after_an_entry_that_is_not_an_object_names_its_own_index():
    obj = wukong(BOOT)
    obj["spec"]["disks"] = ["junk", *obj["spec"]["disks"], dict(BOOT)]
    errors, _ = validate(obj, None, facts())
    assert any(str(e).startswith('spec.disks[2].name: Duplicate value: "system"') for e in errors)


def test_of_reads_an_object_once_and_passes_a_reader_through():
    reader = Wukong.of(wukong(BOOT))
    assert Wukong.of(reader) is reader
    assert reader.disks is reader.disks  # read once


def test_the_reconcilers_spec_is_what_the_reader_reads():
    obj = wukong(BOOT, disk("data", "1Ti", boot=False))
    assert WukongSpec.from_object(obj) == Wukong(obj).spec
    assert [d.name for d in Wukong(obj).spec.disks] == ["system", "data"]


@pytest.mark.parametrize("value", [None, 1, True, [], {}, "", "1.5.5Gi", "9" * 5000])
def test_what_is_not_a_quantity_reads_as_none(value):
    assert parse_or_none(value) is None


def test_a_quantity_reads_exactly():
    assert parse_or_none("1Gi") == Quantity(parse("1024Mi").value, binary=True)


def test_timestamps_are_kubernetes_utc_times():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", timestamps.now())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", timestamps.now_micro())


def _ids(text: str) -> str:
    return re.search(r"\(([MVW][^)]*)\)", text)[1].replace("\u2013", "-")


def test_the_rule_ids_are_one_list_in_the_contributors_page_and_the_modules():
    readme = Path(__file__).parents[2].joinpath("docs", "contributors.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `webhook/`"))
    said = re.findall(r"defaulting \((M[^)]*)\) and validation \((V[^,]*, W[^,]*),", row)
    assert said, row
    assert [s.replace("\u2013", "-") for s in said[0]] == [_ids(defaulting.__doc__), _ids(validation.__doc__)]

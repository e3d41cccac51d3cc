"""The offline checker: the verdicts of the seed samples, and clear exits for unusable input."""

import json
from pathlib import Path

import pytest
import yaml

from webhook.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "deploy" / "samples"
CLASSES = str(ROOT / "deploy" / "storageclasses" / "devcluster.yaml")


def run(capsys, *args):
    code = main(["check", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def edited(tmp_path, sample, old, new):
    path = tmp_path / f"{new}-{sample}"
    path.write_text((SAMPLES / sample).read_text().replace(old, new))
    return path


@pytest.mark.parametrize("sample", ["single-disk.yaml", "system-and-data.yaml", "storage-classes.yaml"])
def test_each_seed_sample_is_allowed_and_fully_defaulted(capsys, sample):
    code, out, err = run(capsys, "--storage-classes", CLASSES, SAMPLES / sample)
    assert (code, err) == (0, "")
    disks = yaml.safe_load(out)["spec"]["disks"]
    assert all(d["storageClassName"] for d in disks)
    assert [d["boot"] for d in disks].count(True) == 1


def test_tiered_sample_keeps_its_classes_and_boots_the_image_disk(capsys):
    _, out, _ = run(capsys, "--storage-classes", CLASSES, SAMPLES / "storage-classes.yaml")
    disks = yaml.safe_load(out)["spec"]["disks"]
    assert [(d["storageClassName"], d["boot"]) for d in disks] == [
        ("longhorn-ssd", True),
        ("longhorn-hdd", False),
        ("local-path", False),
    ]


def test_a_shrink_exits_1_with_the_message(capsys, tmp_path):
    new = edited(tmp_path, "system-and-data.yaml", "500Gi", "400Gi")
    code, out, err = run(capsys, "--storage-classes", CLASSES, "--old", SAMPLES / "system-and-data.yaml", new)
    assert code == 1
    assert out == ""
    assert (
        err == 'denied: spec.disks[1].size: Forbidden: disk "data" cannot shrink from 500Gi to 400Gi; '
        "disks can only grow\n"
    )


def test_growing_on_local_path_is_refused_and_on_longhorn_allowed(capsys, tmp_path):
    old = SAMPLES / "storage-classes.yaml"
    scratch = edited(tmp_path, "storage-classes.yaml", "100Gi", "200Gi")
    data = edited(tmp_path, "storage-classes.yaml", "2Ti", "3Ti")
    code, _, err = run(capsys, "--storage-classes", CLASSES, "--old", old, scratch)
    assert code == 1 and 'StorageClass "local-path" does not allow volume expansion' in err
    code, _, _ = run(capsys, "--storage-classes", CLASSES, "--old", old, data)
    assert code == 0


def test_json_output_has_the_verdict_object_patch_and_warnings(capsys):
    code, out, _ = run(
        capsys,
        "-o",
        "json",
        "--default-storage-class",
        "fast",
        "--storage-classes",
        CLASSES,
        SAMPLES / "single-disk.yaml",
    )
    result = json.loads(out)
    assert code == 0
    assert set(result) == {"allowed", "object", "patch", "message", "warnings"}
    assert result["allowed"] is True
    assert {"op": "add", "path": "/spec/disks/0/storageClassName", "value": "fast"} in result["patch"]
    assert result["warnings"] == [
        'spec.disks[0].storageClassName: StorageClass "fast" does not exist; disk "system" stays Pending until it does'
    ]


def test_without_storage_classes_a_disk_without_one_needs_a_default(capsys):
    code, _, err = run(capsys, SAMPLES / "single-disk.yaml")
    assert code == 1
    assert "spec.disks[0].storageClassName: Required value" in err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("a: [unclosed", "not valid YAML or JSON"),
        ("", "expected exactly one object, found 0"),
        ("- 1\n- 2\n", "document 1 is a list, not an object"),
    ],
    ids=["bad-yaml", "empty", "a-list"],
)
def test_unusable_input_exits_2_with_a_clear_message(capsys, tmp_path, content, reason):
    path = tmp_path / "in.yaml"
    path.write_text(content)
    code, out, err = run(capsys, path)
    assert code == 2 and out == ""
    assert reason in err and "Traceback" not in err


def test_a_missing_file_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path / "absent.yaml")
    assert code == 2 and "cannot read" in err


def test_storage_classes_file_of_another_kind_exits_2(capsys):
    code, _, err = run(capsys, "--storage-classes", SAMPLES / "single-disk.yaml", SAMPLES / "single-disk.yaml")
    assert code == 2 and 'expected StorageClasses, found kind "Wukong"' in err

"""The offline checker: the verdicts of the seed samples, and clear exits for unusable input."""

import io
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
    assert err == (
        f'denied: {new}#1: The Wukong "system-and-data" is invalid: spec.disks[1].size: Forbidden: disk "data" '
        "cannot shrink from 500Gi to 400Gi; disks can only grow\n"
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
    [result] = json.loads(out)
    assert code == 0
    assert set(result) == {"source", "allowed", "object", "patch", "message", "warnings", "undecided"}
    assert result["undecided"] == []
    assert result["allowed"] is True
    assert {"op": "add", "path": "/spec/disks/0/storageClassName", "value": "fast"} in result["patch"]
    assert result["warnings"] == [
        'spec.disks[0].storageClassName: StorageClass "fast" does not exist; disk "system" stays Pending until it does'
    ]


def test_without_storage_classes_a_disk_without_one_needs_a_default(capsys):
    code, _, err = run(capsys, SAMPLES / "single-disk.yaml")
    assert code == 1
    assert "spec.disks[0].storageClassName: Required value" in err
    assert "no StorageClasses are known to this check" in err and "cluster" not in err


def test_a_classes_file_without_a_default_is_named_as_the_file_not_a_cluster(capsys, tmp_path):
    classes = tmp_path / "classes.yaml"
    classes.write_text("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: slow}\nprovisioner: x\n")
    code, _, err = run(capsys, "--storage-classes", classes, SAMPLES / "single-disk.yaml")
    assert code == 1
    assert f"no StorageClass in {classes} is the default" in err and "cluster" not in err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("a: [unclosed", "not valid YAML or JSON"),
        ("", "no Wukong found in the input"),
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


WUKONG_SAMPLES = ("single-disk.yaml", "system-and-data.yaml", "storage-classes.yaml")


def test_a_gitops_directory_with_other_kinds_is_checked_document_by_document(capsys, tmp_path):
    repo = tmp_path / "repo"
    (repo / "apps").mkdir(parents=True)
    docs = [(SAMPLES / s).read_text() for s in WUKONG_SAMPLES]
    (repo / "apps" / "vms.yaml").write_text("---\n".join([docs[0], "apiVersion: v1\nkind: ConfigMap\n", docs[1]]))
    listed = {"apiVersion": "v1", "kind": "List", "items": [yaml.safe_load(docs[2])]}
    (repo / "list.json").write_text(json.dumps(listed))
    (repo / "README.md").write_text("not a manifest")
    code, out, err = run(capsys, "--storage-classes", CLASSES, repo)
    assert code == 0
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == [
        "single-disk",
        "system-and-data",
        "tiered-storage",
    ]
    assert err.count("notice:") == 1 and "notice: skipped 1 document that is not a Wukong (ConfigMap)\n" in err


def test_stdin_is_read_and_one_denied_document_fails_the_run_naming_it(capsys, tmp_path, monkeypatch):
    bad = (SAMPLES / "single-disk.yaml").read_text().replace("size: ", "size: -").replace("single-disk", "bad")
    monkeypatch.setattr("sys.stdin", io.StringIO((SAMPLES / "single-disk.yaml").read_text() + "---\n" + bad))
    code, out, err = run(capsys, "--storage-classes", CLASSES, "-")
    assert code == 1
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["single-disk"]
    assert err.startswith('denied: -#2: The Wukong "bad" is invalid: spec.disks[0].size: Invalid value:')


def test_only_other_kinds_is_unusable_input(capsys, tmp_path):
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, _, err = run(capsys, path)
    assert code == 2
    assert "no Wukong found" in err and err.count("ConfigMap") == 1


# Arabic-Indic ten, full-width ten, and an ASCII one followed by an Arabic-Indic zero
@pytest.mark.parametrize("size", ["\u0661\u0660Gi", "\uff11\uff10Gi", "1\u0660Gi"])
def test_sizes_written_with_non_ascii_digits_are_refused_as_the_api_server_does(capsys, tmp_path, size):
    path = edited(tmp_path, "single-disk.yaml", "size: 30Gi", f"size: {size}")
    assert size in path.read_text()
    code, _, err = run(capsys, "--storage-classes", CLASSES, path)
    assert code == 1 and "spec.disks[0].size: Invalid value" in err


def test_policies_judge_the_namespaces_their_selector_picks_and_lend_their_default_class(capsys, tmp_path):
    """The example policies, a Namespace labelled for each among the manifests, and one that is not labelled."""
    policies = ROOT / "deploy" / "policies" / "small-tenant.yaml"
    team = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    team["metadata"]["labels"] = {"wukong.novasphere.dev/tier": "small"}
    vm = yaml.safe_load((SAMPLES / "system-and-data.yaml").read_text())  # a 500Gi data disk on longhorn
    vm["metadata"]["namespace"] = "team-a"
    manifests = tmp_path / "team-a.yaml"
    manifests.write_text(yaml.safe_dump_all([team, vm]))
    code, _, err = run(capsys, "--storage-classes", CLASSES, "--policies", policies, manifests)
    assert code == 1
    assert (
        'spec.disks[1].size: Forbidden: 500Gi exceeds 200Gi, the largest disk policy "small-tenant" allows in '
        'namespace "team-a"'
    ) in err

    vm["metadata"]["namespace"] = "team-b"  # not labelled: the policy does not apply
    unlabelled = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}
    manifests.write_text(yaml.safe_dump_all([team, unlabelled, vm]))
    code, _, err = run(capsys, "--storage-classes", CLASSES, "--policies", policies, manifests)
    assert code == 0, err

    production = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    production["metadata"]["labels"] = {"environment": "production"}
    plain = {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": {"name": "s", "namespace": "shop"},
    }
    plain["spec"] = {"cpu": 2, "memory": "4Gi", "disks": [{"name": "system", "size": "20Gi"}]}
    manifests.write_text(yaml.safe_dump_all([production, plain]))
    code, out, err = run(capsys, "--storage-classes", CLASSES, "--policies", ROOT / "deploy" / "policies", manifests)
    assert code == 0, err
    assert yaml.safe_load(out)["spec"]["disks"][0]["storageClassName"] == "longhorn-ssd"  # not the cluster's longhorn


def test_a_policies_file_holding_something_else_is_unusable(capsys, tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text((SAMPLES / "single-disk.yaml").read_text())
    code, _, err = run(capsys, "--storage-classes", CLASSES, "--policies", wrong, SAMPLES / "single-disk.yaml")
    assert code == 2
    assert f"{wrong}#1: expected a WukongPolicy, found kind Wukong" in err


def wukong_in(namespace, **spec):
    obj = yaml.safe_load((SAMPLES / "system-and-data.yaml").read_text())  # a 500Gi data disk on longhorn
    obj["metadata"]["namespace"] = namespace
    obj["spec"].update(spec)
    return obj


def namespace(name, **labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


SMALL_TENANT = ROOT / "deploy" / "policies" / "small-tenant.yaml"


def test_a_namespace_of_unknown_labels_under_a_label_selecting_policy_is_undecided_not_allowed(capsys, tmp_path):
    manifests = tmp_path / "vm.yaml"
    manifests.write_text(yaml.safe_dump(wukong_in("team-b")))
    code, out, err = run(capsys, "--storage-classes", CLASSES, "--policies", SMALL_TENANT, manifests)
    assert code == 3
    assert yaml.safe_load(out)["metadata"]["name"] == "system-and-data"  # judged as it could be, and shown
    assert err == (
        f'undecided: {manifests}#1: WukongPolicy "small-tenant" selects namespaces by label '
        'wukong.novasphere.dev/tier and the labels of namespace "team-b" are unknown (no Namespace document among '
        "the manifests, no cluster); add the Namespace to the input, or state them with --assume-namespace-labels "
        "team-b:KEY=VALUE,... (nothing after the colon: it has none)\n"
    )


def test_json_output_lists_why_a_verdict_is_undecided(capsys, tmp_path):
    manifests = tmp_path / "vm.yaml"
    manifests.write_text(yaml.safe_dump(wukong_in("team-b")))
    code, out, _ = run(capsys, "-o", "json", "--storage-classes", CLASSES, "--policies", SMALL_TENANT, manifests)
    [result] = json.loads(out)
    assert code == 3 and result["allowed"] is True
    assert len(result["undecided"]) == 1 and '"team-b" are unknown' in result["undecided"][0]


@pytest.mark.parametrize(
    ("assumed", "code"),
    [
        ("team-b:wukong.novasphere.dev/tier=small", 1),
        ("team-b:", 0),
        ("wukong.novasphere.dev/tier=small,environment=dev", 1),
        ("", 0),
        ("other:wukong.novasphere.dev/tier=small", 3),
    ],
    ids=["named-small", "named-none", "every-small", "every-none", "another-namespace"],
)
def test_assumed_namespace_labels_settle_the_verdict(capsys, tmp_path, assumed, code):
    manifests = tmp_path / "vm.yaml"
    manifests.write_text(yaml.safe_dump(wukong_in("team-b")))
    args = ("--storage-classes", CLASSES, "--policies", SMALL_TENANT, "--assume-namespace-labels", assumed)
    found, _, err = run(capsys, *args, manifests)
    assert found == code, err
    if code == 1:
        assert "500Gi exceeds 200Gi" in err


def test_a_namespace_document_beats_an_assumption_and_is_not_reported_as_skipped(capsys, tmp_path):
    manifests = tmp_path / "vm.yaml"
    manifests.write_text(
        yaml.safe_dump_all([namespace("team-b", **{"wukong.novasphere.dev/tier": "small"}), wukong_in("team-b")])
    )
    args = ("--storage-classes", CLASSES, "--policies", SMALL_TENANT, "--assume-namespace-labels", "team-b:")
    code, _, err = run(capsys, *args, manifests)
    assert code == 1 and "notice" not in err and "undecided" not in err


def test_a_selector_that_the_name_label_settles_needs_no_labels(capsys, tmp_path):
    by_name = {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "WukongPolicy",
        "metadata": {"name": "by-name"},
        "spec": {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": "team-a"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            "compute": {"maxCpu": 1},
        },
    }
    policies = tmp_path / "policy.yaml"
    policies.write_text(yaml.safe_dump(by_name))
    manifests = tmp_path / "vm.yaml"
    manifests.write_text(yaml.safe_dump(wukong_in("team-b")))  # the name label alone says: not selected
    code, _, err = run(capsys, "--storage-classes", CLASSES, "--policies", policies, manifests)
    assert (code, err) == (0, "")
    manifests.write_text(yaml.safe_dump(wukong_in("team-a")))  # selected unless "tier" is missing: unknown
    code, _, err = run(capsys, "--storage-classes", CLASSES, "--policies", policies, manifests)
    assert code == 3
    assert 'selects namespaces by label tier and the labels of namespace "team-a" are unknown' in err


def test_several_errors_are_printed_as_kubectl_prints_them(capsys, tmp_path):
    manifests = tmp_path / "vm.yaml"
    manifests.write_text(yaml.safe_dump(wukong_in("default", cpu=0, memory="lots")))
    code, _, err = run(capsys, "--storage-classes", CLASSES, manifests)
    assert code == 1
    first, *causes = err.splitlines()
    assert first == f'denied: {manifests}#1: The Wukong "system-and-data" is invalid: '
    assert len(causes) >= 2 and all(line.startswith("* spec.") for line in causes)
    assert "[" not in err


@pytest.mark.parametrize("bad", ["team-b:tier", ":tier=small", "team-b:=x"])
def test_malformed_assumed_labels_are_unusable_input(capsys, bad):
    code, _, err = run(capsys, "--assume-namespace-labels", bad, SAMPLES / "single-disk.yaml")
    assert code == 2 and "--assume-namespace-labels" in err

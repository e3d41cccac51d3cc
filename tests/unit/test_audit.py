"""The WukongPolicy audit's finding: which existing Wukongs in a policy's namespaces break it (no server)."""

from __future__ import annotations

from reconciler.audit import LISTED, findings
from tests.builders import disk, wukong
from wukong.policy import Policy


def limits(**storage) -> Policy:
    return Policy.from_object(
        {
            "metadata": {"name": "team-limits"},
            "spec": {"namespaceSelector": {"matchLabels": {"team": "a"}}, "storage": storage},
        }
    )


def placed(obj: dict, namespace: str) -> dict:
    obj["metadata"]["namespace"] = namespace
    return obj


LABELS = {"team-a": {"team": "a"}, "team-b": {"team": "b"}}


def test_only_wukongs_of_selected_namespaces_that_break_the_policy_are_counted():
    wukongs = [
        placed(wukong(disk("data", "2Ti"), name="big"), "team-a"),
        placed(wukong(disk("data", "1Ti"), name="fits"), "team-a"),
        placed(wukong(disk("data", "5Ti"), name="elsewhere"), "team-b"),
    ]
    found = findings(limits(maxDiskSize="1Ti"), wukongs, LABELS)
    assert found == {
        "violations": 1,
        "violating": [
            {
                "namespace": "team-a",
                "name": "big",
                "message": 'spec.disks[0].size: 2Ti exceeds 1Ti, the largest disk policy "team-limits" allows in '
                'namespace "team-a"',
            }
        ],
    }


def test_the_listing_is_bounded_sorted_and_says_when_a_wukong_breaks_more_than_one_rule():
    wukongs = [
        placed(wukong(disk("a", "2Ti"), disk("b", "3Ti"), name=f"vm{i:02d}"), "team-a") for i in reversed(range(30))
    ]
    found = findings(limits(maxDiskSize="1Ti"), wukongs, LABELS)
    assert found["violations"] == 30
    assert len(found["violating"]) == LISTED
    assert [v["name"] for v in found["violating"]] == [f"vm{i:02d}" for i in range(LISTED)]
    assert found["violating"][0]["message"].endswith("(and 1 more)")


def test_a_namespace_whose_labels_are_unknown_is_judged_by_its_name_label():
    by_name = Policy.from_object(
        {
            "metadata": {"name": "p"},
            "spec": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "new"}},
                "compute": {"maxCpu": 2},
            },
        }
    )
    found = findings(by_name, [placed(wukong(disk("d"), name="vm", cpu=4), "new")], {})
    assert found["violations"] == 1

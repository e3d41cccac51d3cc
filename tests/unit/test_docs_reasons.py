"""The operators' troubleshooting table names every problem reason the reconciler can put in Degraded."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = re.compile(
    r'"([A-Z][A-Za-z]+(?:NotFound|Failed|Failing|Conflict|Invalid|Immutable|Lost|Refused|NotSupported|Exceeded'
    r'|NotInstalled|NotAllowed))"'
)


def reasons() -> set[str]:
    found: set[str] = set()
    for module in ("status.py", "assess.py", "snapshots.py"):
        found |= set(PROBLEM.findall((ROOT / "reconciler" / module).read_text()))
    return found


def test_the_reasons_are_found_at_all():
    assert {"VolumeLost", "SSHKeySecretNotFound", "SnapshotFailed", "ImportFailing"} <= reasons()


def test_every_problem_reason_has_a_row_in_the_troubleshooting_table():
    table = (ROOT / "docs" / "operators.md").read_text()
    assert sorted(r for r in reasons() if f"| `{r}` |" not in table) == []

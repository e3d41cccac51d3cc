"""The docs' commands, run as a reader runs them: every ```sh block of docs/, in page order, against devcluster.

A block is run with ``bash -euo pipefail`` from the repository's root with ``KUBECONFIG`` and ``PATH`` as
``python -m devcluster env`` exports them, and must exit 0 -- or the status its info string names (```sh exit=1,
a command the docs show being refused). An ```output block right after it holds lines the run must print.
```console, ```text and ```yaml blocks are not run: commands that need a real cluster or a registry, synopses,
output that changes from run to run. Every ```sh block in docs/ must be on a page listed here, and README.md has
none, so no command in the docs goes unrun.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from devcluster.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = ("vm-owners.md", "platform-teams.md", "operators.md", "contributors.md")  # the order a newcomer reads
FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[A-Za-z]*)(?P<info>[^`]*)$")
EXIT = re.compile(r"^exit=(\d+)$")
BLOCK_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    lang: str
    info: str
    body: str
    end: int  # of the closing fence

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"

    @property
    def exit_code(self) -> int:
        words = self.info.split()
        codes = [int(m.group(1)) for word in words if (m := EXIT.match(word))]
        assert len(codes) == len(words), f"{self.where}: unknown fence words {self.info!r} (only exit=N)"
        return codes[0] if codes else 0


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the language and the rest of the info string."""
    found, lines, opened = [], path.read_text().splitlines(), None
    for number, text in enumerate(lines, 1):
        match = FENCE.match(text)
        if opened is None and match:
            opened = (number, match)
        elif opened is not None and text.strip() == "```":
            start, fence = opened
            indent = len(fence["indent"])
            body = "\n".join(line[indent:] for line in lines[start : number - 1])
            found.append(Block(path.name, start, fence["lang"], fence["info"].strip(), body + "\n", number))
            opened = None
    assert opened is None, f"{path}: a fence opened at line {opened[0]} is never closed"
    return found


def runs(page: str) -> list[tuple[Block, Block | None]]:
    """Each ```sh block of a page with the ```output block right after it, if any."""
    found = blocks(DOCS / page)
    lines = (DOCS / page).read_text().splitlines()
    paired = []
    for i, block in enumerate(found):
        if block.lang != "sh":
            assert block.lang != "output" or (i and found[i - 1].lang == "sh"), f"{block.where}: output of nothing"
            continue
        after = found[i + 1] if i + 1 < len(found) else None
        between = lines[block.end : after.line - 1] if after else []
        output = after if after and after.lang == "output" and not any(t.strip() for t in between) else None
        paired.append((block, output))
    return paired


def test_every_sh_block_in_the_docs_is_on_a_page_the_docs_test_runs():
    pages = {path.name for path in DOCS.glob("**/*.md")}
    assert set(PAGES) <= pages
    unrun = [b.where for path in DOCS.glob("**/*.md") if path.name not in PAGES for b in blocks(path) if b.lang == "sh"]
    assert not unrun, f"```sh blocks on pages the docs test does not run: {unrun}"
    readme = [b.line for b in blocks(ROOT / "README.md") if b.lang == "sh"]
    assert not readme, f"README.md lines {readme}: ```sh blocks there are not run; use ```console or move them to docs/"
    for page in PAGES:
        for block, _ in runs(page):
            assert block.exit_code >= 0
            assert "sleep" not in block.body.split(), f"{block.where}: wait on a fact (kubectl wait), not sleep"


@pytest.fixture
def docs_cluster(cluster: ControlPlane, webhook, reconciler):
    """The session's devcluster with the webhook, the reconciler and the simulation, as `make up` runs them."""
    try:
        yield cluster
    finally:  # what the pages make, when a block failed before their own cleanup ran
        for args in (
            ("delete", "namespace", "team-a", "--ignore-not-found", "--wait=false"),
            ("delete", "namespace", "team-b", "--ignore-not-found", "--wait=false"),
            ("delete", "wukongpolicy", "small-tenant", "--ignore-not-found"),
            ("delete", "-n", "default", "wukong", "--all"),
            ("delete", "-n", "default", "secret", "keyed-keys", "--ignore-not-found"),
        ):
            cluster.kubectl(*args, check=False)


def test_the_docs_commands_run_as_written(docs_cluster: ControlPlane):
    environment = {**_base_environment(), **docs_cluster.environment()}
    ran = []
    for page in PAGES:
        for block, output in runs(page):
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.body],
                cwd=ROOT,
                env=environment,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT_SECONDS,
                check=False,
            )
            printed = result.stdout + result.stderr
            shown = f"{block.where} exited {result.returncode}:\n{block.body}---\n{printed}"
            assert result.returncode == block.exit_code, shown
            for expected in output.body.splitlines() if output else []:
                assert expected.strip() in printed, f"{output.where if output else ''}: {expected!r} not in\n{shown}"
            ran.append(block.where)
    everything = [b.where for page in PAGES for b in blocks(DOCS / page) if b.lang == "sh"]
    assert ran == everything
    assert len(ran) >= 20  # the pages' tours, not an empty extraction


def _base_environment() -> dict[str, str]:
    """A reader's shell: HOME and the locale, nothing of the test process's own settings."""
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    return {key: os.environ[key] for key in keep if key in os.environ}

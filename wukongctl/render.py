"""The status view as one screen of text: aligned plain text for pipes and files, the same with colours for a
terminal. Pure: the caller says whether to colour and how wide the screen is."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

RESET, BOLD, DIM = "\033[0m", "\033[1m", "\033[2m"
GREEN, YELLOW, RED = "\033[32m", "\033[33m", "\033[31m"
GOOD_PHASES = frozenset({"Running", "Succeeded"})
BAD_PHASES = frozenset({"Blocked", "Error", "Failed", "Unknown"})  # and KubeVirt's Error*, CrashLoopBackOff
# Conditions whose True is bad news; for the rest (Ready, VolumesBound) False is
TRUE_IS_BAD = frozenset({"Degraded", "RestartRequired", "Resizing", "Reconciling", "Stalled"})


class Style:
    def __init__(self, colour: bool, width: int | None) -> None:
        self.colour, self.width = colour, width

    def paint(self, text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if self.colour and code and text else text

    def heading(self, text: str) -> str:
        return self.paint(text, BOLD)

    def phase(self, phase: str) -> str:
        bad = phase in BAD_PHASES or phase.startswith("Error") or phase == "CrashLoopBackOff"
        return self.paint(phase, GREEN if phase in GOOD_PHASES else RED if bad else YELLOW)

    def condition(self, kind: str, status: str) -> str:
        good = (status == "False") if kind in TRUE_IS_BAD else (status == "True")
        return self.paint(status, GREEN if good else YELLOW if kind != "Degraded" else RED)

    def wrap(self, text: str, indent: int) -> str:
        """A long message folded under its column on a terminal; kept on one line otherwise (for grep)."""
        if not self.width or self.width - indent < 40:
            return text
        lines = textwrap.wrap(text, self.width - indent, break_on_hyphens=False) or [""]
        return ("\n" + " " * indent).join(lines)

    def fit(self, text: str, indent: int) -> str:
        """A table's last cell cut to the terminal's width (the whole text is above, or in -o json)."""
        room = max((self.width or 0) - indent, 20)
        return text if not self.width or len(text) <= room else text[: room - 1] + "…"


def render(view: Mapping[str, Any], colour: bool = False, width: int | None = None) -> str:
    style = Style(colour, width)
    phase = view.get("phase") or "-"
    generation, observed = view.get("generation"), view.get("observedGeneration")
    lines = [
        f"{style.heading('Wukong')}    {view.get('namespace')}/{view.get('name')}   {style.phase(phase)}"
        + (f"   generation {generation}, observed {observed if observed is not None else '-'}" if generation else ""),
    ]
    for label, key in (("Ready", "ready"), ("Degraded", "degraded")):
        summary = view.get(key)
        if summary:
            state = str(summary.get("status"))
            head = f"{label:<10}{style.condition(label, state)}{' ' * max(1, 6 - len(state))}"
            reason = f"{summary['reason']}: " if summary.get("reason") else ""
            indent = 10 + max(len(state) + 1, 6)
            lines.append(head + style.wrap(reason + (summary.get("message") or ""), indent))
    lines += ["", style.heading("Disks")]
    lines += _table(
        ["DISK", "SIZE", "CAPACITY", "CLASS", "SOURCE", "BOUND", "VOLUME", "STATE"],
        [_disk_row(d) for d in view.get("disks") or []],
        style,
    )
    for disk in view.get("disks") or []:
        for snapshot in disk.get("snapshots") or []:
            state = "ready" if snapshot.get("readyToUse") else snapshot.get("error") or "not ready"
            taken = ", ".join(str(snapshot[k]) for k in ("size", "time") if snapshot.get(k))
            lines.append(
                f"  snapshot of {disk['name']}: {snapshot.get('name')} ({state}" + (f", {taken})" if taken else ")")
            )
    lines += ["", style.heading("Virtual machine")]
    vm, vmi = view.get("vm"), view.get("vmi")
    if view.get("vmUnreadable"):
        lines.append(f"  VM        not shown: {view['vmUnreadable']}")
    elif vm is None:
        lines.append("  VM        none yet (created once every volume is bound)")
    else:
        restart = ", restart required" if vm.get("restartRequired") else ""
        lines.append(
            f"  VM        {vm.get('name')}   {style.phase(vm.get('printableStatus') or '-')}"
            f"   runStrategy {vm.get('runStrategy') or '-'}{restart}"
        )
    if vmi is not None:
        lines.append(
            f"  instance  {vmi.get('name')}   {style.phase(vmi.get('phase') or '-')}   node {vmi.get('node') or '-'}"
            f"   uid {vmi.get('uid')}"
        )
    elif vm is not None:
        lines.append("  instance  none (the VM is not running)")
    lines += ["", style.heading("Waiting for")]
    waiting = view.get("waitingFor") or []
    lines += [f"  {w['reason']}: " + style.wrap(w["message"], 4 + len(w["reason"])) for w in waiting] or ["  nothing"]
    lines += ["", style.heading("Conditions")]
    rows = [
        [c["type"], c["status"], c["reason"], c.get("lastTransitionTime") or "-", c["message"]]
        for c in view.get("conditions") or []
    ]
    lines += _table(["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], rows, style, coloured=1)
    return "\n".join(lines) + "\n"


def _disk_row(disk: Mapping[str, Any]) -> list[str]:
    bound = disk.get("bound")
    return [
        str(disk.get("name") or "-"),
        str(disk.get("requested") or disk.get("size") or "-"),
        str(disk.get("capacity") or "-"),
        str(disk.get("storageClass") or "-"),
        str(disk.get("image") or ("blank" if disk.get("source") == "pvc" else "-")),
        "-" if bound is None else "yes" if bound else "no",
        str(disk.get("volume") or "-"),
        _disk_state(disk),
    ]


def _disk_state(disk: Mapping[str, Any]) -> str:
    """What a disk is doing, in a few words: lost, a failed expansion, an import's progress, growing, ready."""
    if disk.get("lost"):
        return "LOST"
    if disk.get("expansionFailed"):
        return f"expansion failed ({disk.get('resizeStatus') or 'see Degraded'})"
    notes = []
    if progress := disk.get("importProgress"):
        notes.append(f"importing {progress}")
    if restarts := disk.get("importRestartCount"):
        notes.append(f"{restarts} importer restarts")
    requested, size, capacity = disk.get("requested"), disk.get("size"), disk.get("capacity")
    if size and requested and size != requested:
        notes.append(f"asks for {size}")
    elif requested and capacity and requested != capacity:
        notes.append(f"growing {capacity} -> {requested}")
    if not notes:
        notes.append("ready" if disk.get("bound") else "waiting to bind" if disk.get("volume") else "not created yet")
    return ", ".join(notes)


def _table(header: Sequence[str], rows: list[list[str]], style: Style, coloured: int | None = None) -> list[str]:
    """Columns padded to their widest cell, as kubectl prints; the last column is left as long as it is."""
    if not rows:
        return ["  none"]
    cells = [list(header), *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    lines = []
    for number, row in enumerate(cells):
        shown = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        if number == 0:
            shown = [style.paint(cell, DIM) for cell in shown]
        elif coloured is not None:
            shown[coloured] = style.condition(row[0], row[coloured]) + " " * (widths[coloured] - len(row[coloured]))
        indent = 2 + sum(widths) + 2 * len(widths)
        lines.append("  " + "  ".join([*shown, style.fit(row[-1], indent) if number else row[-1]]))
    return lines

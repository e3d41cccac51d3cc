"""The series selectors of a PromQL expression: metric names and label matchers, for holding the rules and the
dashboard to what the processes expose. A tokenizer, not a parser: it knows PromQL's keywords, functions (anything
called), grouping clauses and durations, which is all the expressions in deploy/monitoring use; promtool checks
their syntax."""

from __future__ import annotations

import re
from dataclasses import dataclass

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\{[^}]*\}|[A-Za-z_:][A-Za-z0-9_:]*|\S')


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


def grouping_labels(expr: str) -> set[str]:
    """The labels of ``by (...)`` and ``without (...)``: each must be on the series it aggregates."""
    return {
        label.strip()
        for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
        for label in clause.split(",")
        if label.strip()
    }


def selectors(expr: str) -> list[Selector]:
    text = _GROUPING.sub(" ", expr.replace("$__rate_interval", "5m"))
    tokens = _TOKEN.findall(text)
    found = []
    for i, token in enumerate(tokens):
        if not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", token) or token in KEYWORDS:
            continue
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if following == "(":  # a function or an aggregation
            continue
        if i > 0 and tokens[i - 1] == "offset":
            continue
        matchers: tuple[tuple[str, str, str], ...] = ()
        if following.startswith("{"):
            matchers = tuple(_MATCHER.findall(following[1:-1]))
        found.append(Selector(token, matchers))
    return found

"""Kubernetes' two wire formats of a moment, in UTC: ``metav1.Time`` (whole seconds, as conditions, events and
status times are written) and ``metav1.MicroTime`` (a Lease's renewTime)."""

from __future__ import annotations

import datetime

_TIME = "%Y-%m-%dT%H:%M:%SZ"
_MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def now() -> str:
    """The current moment as a ``metav1.Time``: ``2026-01-02T03:04:05Z``."""
    return datetime.datetime.now(datetime.UTC).strftime(_TIME)


def now_micro() -> str:
    """The current moment as a ``metav1.MicroTime``: ``2026-01-02T03:04:05.000006Z``."""
    return datetime.datetime.now(datetime.UTC).strftime(_MICRO_TIME)

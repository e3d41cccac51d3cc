"""The Wukongs by phase and by Degraded reason, for /metrics: counted from the informer cache when Prometheus
scrapes, so a pass writes nothing for them and a scrape costs one walk over the cached objects.

Every replica reports every Wukong it caches (a standby as much as the leader): alert on ``max`` across replicas,
never ``sum``. How long a Wukong has been Degraded, or not Ready, comes from the condition's
``lastTransitionTime``, which the status keeps across reconciler restarts.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reconciler.status import (
    PHASE_BLOCKED,
    PHASE_CREATING,
    PHASE_ERROR,
    PHASE_PENDING,
    PHASE_RUNNING,
    PHASE_STOPPED,
)

PHASES = (PHASE_PENDING, PHASE_BLOCKED, PHASE_CREATING, PHASE_RUNNING, PHASE_STOPPED, PHASE_ERROR)
UNKNOWN = "Unknown"  # no status yet (the reconciler has not passed over it), or a phase this version does not know


@dataclass
class Tally:
    phases: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*PHASES, UNKNOWN), 0))
    not_ready_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys((*PHASES, UNKNOWN), 0.0))
    degraded: dict[str, int] = field(default_factory=dict)
    degraded_seconds: dict[str, float] = field(default_factory=dict)


def tally(wukongs: Iterable[Mapping[str, Any]], now: datetime.datetime) -> Tally:
    """Counts by phase and Degraded reason, and the longest a Wukong of each has been not Ready / Degraded."""
    result = Tally()
    for wukong in wukongs:
        status = wukong.get("status")
        status = status if isinstance(status, dict) else {}
        phase = status.get("phase")
        phase = phase if phase in PHASES else UNKNOWN
        result.phases[phase] += 1
        conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
        ready = conditions.get("Ready")
        if ready is not None and ready.get("status") == "False":
            longest = max(result.not_ready_seconds[phase], _age(ready, now))
            result.not_ready_seconds[phase] = longest
        degraded = conditions.get("Degraded")
        if degraded is not None and degraded.get("status") == "True":
            reason = str(degraded.get("reason") or UNKNOWN)
            result.degraded[reason] = result.degraded.get(reason, 0) + 1
            result.degraded_seconds[reason] = max(result.degraded_seconds.get(reason, 0.0), _age(degraded, now))
    return result


def _age(condition: Mapping[str, Any], now: datetime.datetime) -> float:
    since = condition.get("lastTransitionTime")
    try:
        moment = datetime.datetime.fromisoformat(str(since).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return max(0.0, (now - moment).total_seconds())


class FleetCollector(Collector):
    """``wukong_wukongs``, ``wukong_wukongs_not_ready_seconds_max``, ``wukong_wukongs_degraded`` and
    ``wukong_wukongs_degraded_seconds_max`` from ``items()`` (the Wukong informer's cache) at each scrape."""

    def __init__(
        self,
        items: Callable[[], Iterable[Mapping[str, Any]]],
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self._items, self._clock = items, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counted = tally(self._items(), self._clock())
        phases = GaugeMetricFamily("wukong_wukongs", "Wukongs by status.phase (Unknown: none yet).", labels=["phase"])
        waiting = GaugeMetricFamily(
            "wukong_wukongs_not_ready_seconds_max",
            "The longest a Wukong in this phase has had Ready=False (its lastTransitionTime); 0 when none.",
            labels=["phase"],
        )
        for phase, count in counted.phases.items():
            phases.add_metric([phase], count)
            waiting.add_metric([phase], counted.not_ready_seconds[phase])
        degraded = GaugeMetricFamily(
            "wukong_wukongs_degraded", "Wukongs with Degraded=True by the condition's reason.", labels=["reason"]
        )
        degraded_for = GaugeMetricFamily(
            "wukong_wukongs_degraded_seconds_max",
            "The longest a Wukong with this Degraded reason has been Degraded (its lastTransitionTime).",
            labels=["reason"],
        )
        for reason in sorted(counted.degraded):
            degraded.add_metric([reason], counted.degraded[reason])
            degraded_for.add_metric([reason], counted.degraded_seconds[reason])
        yield from (phases, waiting, degraded, degraded_for)

"""A fleet of Wukongs for the fault suite: created at once, followed by a watch until all run."""

from __future__ import annotations

from kubeclient.rest import Kube
from tests.builders import disk, wukong
from tests.waiting import wait_for_all
from wukong.api import WUKONGS

IMAGE = "docker://quay.io/containerdisks/fedora:40"


def create_fleet(admin: Kube, namespace: str, count: int) -> list[str]:
    """``count`` Wukongs of two disks each (a DataVolume and a PVC), through the webhooks."""
    names = [f"vm{i}" for i in range(count)]
    for name in names:
        obj = wukong(disk("root", "10Gi", image=IMAGE), disk("data", "20Gi"), name=name)
        obj["metadata"]["namespace"] = namespace
        admin.create(WUKONGS, obj)
    return names


def wait_fleet_running(admin: Kube, namespace: str, count: int, timeout: float) -> None:
    def all_running(objects: dict[str, dict]) -> bool:
        return sum((o.get("status") or {}).get("phase") == "Running" for o in objects.values()) == count

    wait_for_all(admin, WUKONGS, namespace, all_running, f"{count} Wukongs Running", timeout)

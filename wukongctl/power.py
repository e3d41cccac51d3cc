"""Start, stop and restart a Wukong's VM the way virtctl does, and nothing more.

The run state belongs to the VM's user: the reconciler applies the Wukong's ``startStrategy`` only when that field
changes, and never reverts the VM's ``spec.runStrategy`` (docs/vm-owners.md, Lifecycle). So these verbs act on the
VM, as ``virtctl start/stop/restart`` do, and leave the Wukong's spec alone.

Where KubeVirt's subresource API (virt-api, ``subresources.kubevirt.io``) is served, the verb is its action
(``PUT .../virtualmachines/NAME/start``), exactly what virtctl sends, and virt-api judges it. Where it is not (a
control plane without virt-api, such as devcluster), the same change virt-api makes for the run strategies where
it is a plain write: ``start`` of a Halted VM sets ``runStrategy: Always`` and ``stop`` of an Always or Once VM sets
``Halted`` (a JSON patch that tests the value it replaces, as virt-api's does), and ``restart`` deletes the running
instance (uid precondition), which KubeVirt starts again from the current template under Always and
RerunOnFailure. Manual and RerunOnFailure stop/start go through requests only virt-api takes: refused, saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

VERBS = ("start", "stop", "restart")
FINAL_PHASES = ("Succeeded", "Failed")


class Refused(Exception):
    """The verb does not apply to the VM as it is: one line that says why."""


@dataclass(frozen=True)
class Plan:
    action: str | None = None  # virt-api's subresource to PUT
    patch: list[dict[str, Any]] = field(default_factory=list)  # a JSON patch of the VM
    delete_instance: str | None = None  # the uid of the instance to delete

    @property
    def how(self) -> str:
        if self.action:
            return f"KubeVirt's {self.action} request"
        if self.patch:
            return f"runStrategy {self.patch[-1]['value']}"
        return "its instance deleted"


def plan(verb: str, vm: Mapping[str, Any], vmi: Mapping[str, Any] | None, actions_served: bool) -> Plan:
    if actions_served:
        return Plan(action=verb)
    name = (vm.get("metadata") or {}).get("name")
    spec = vm.get("spec") or {}
    strategy = spec.get("runStrategy")
    if not isinstance(strategy, str):
        raise Refused(
            f"VirtualMachine {name} has no spec.runStrategy (the deprecated spec.running?); without KubeVirt's "
            f"subresource API only a runStrategy is changed here"
        )
    running = vmi is not None and (vmi.get("status") or {}).get("phase") not in FINAL_PHASES
    by_request = (
        f"runStrategy {strategy} takes {verb} requests only through KubeVirt's subresource API (virt-api), "
        f"which this cluster does not serve (subresources.kubevirt.io)"
    )
    if verb == "start":
        if running:
            raise Refused(f"VirtualMachine {name} is already running")
        if strategy == "Halted":
            return Plan(patch=_run_strategy(strategy, "Always"))
        if strategy in ("Always", "Once"):
            raise Refused(f"VirtualMachine {name} has runStrategy {strategy}: KubeVirt starts it by itself")
        raise Refused(by_request)
    if verb == "stop":
        if strategy in ("Always", "Once"):
            return Plan(patch=_run_strategy(strategy, "Halted"))
        if strategy == "Halted":
            raise Refused(f"VirtualMachine {name} is not running (runStrategy Halted)")
        raise Refused(by_request)
    if verb == "restart":
        if strategy in ("Halted", "Once"):
            raise Refused(f"runStrategy {strategy} of VirtualMachine {name} does not take restart requests")
        if not running or vmi is None:
            raise Refused(f"VirtualMachine {name} is not running")
        if strategy not in ("Always", "RerunOnFailure"):
            raise Refused(by_request)
        return Plan(delete_instance=(vmi.get("metadata") or {}).get("uid"))
    raise ValueError(f"unknown verb {verb!r}")


def _run_strategy(current: str, wanted: str) -> list[dict[str, Any]]:
    """The patch virt-api writes: the test makes a change made meanwhile by someone else fail, not be overwritten."""
    return [
        {"op": "test", "path": "/spec/runStrategy", "value": current},
        {"op": "replace", "path": "/spec/runStrategy", "value": wanted},
    ]

"""What waits for a restart: the VM the Wukong asks for, set against the instance KubeVirt is running.

KubeVirt judges whether a template change can reach a running instance; when it cannot, it sets the VM
condition ``RestartRequired`` and the instance keeps its old shape. This module names, in the Wukong's own
terms, what a restart would apply -- ``cpu 8→12, disk "logs" added`` -- so the user reads it in the Wukong.
Pure: it reads an ``Observed``.
"""

from __future__ import annotations

from reconciler.observation import Observed, lookup, quantity
from reconciler.vm import hotpluggable, hotplugged
from wukong import api
from wukong.naming import CLOUD_INIT_DISK, vm_name

RESTART_REQUIRED = "RestartRequired"
CLOUD_INIT = "cloud-init user-data"  # read by the guest at boot only


def condition(observed: Observed) -> tuple[bool, str, str]:
    """(status, reason, message) of the Wukong's RestartRequired condition."""
    if observed.vmi is None:
        return False, "NotRunning", "the VM is not running; it starts with the current spec"
    judged = next(
        (
            c
            for c in lookup(observed.vm, "status", "conditions") or []
            if c.get("type") == RESTART_REQUIRED and c.get("status") == "True"
        ),
        None,
    )
    changes = pending(observed)
    if judged is None and CLOUD_INIT not in changes:  # KubeVirt cannot see a change inside the Secret; we can
        return False, "UpToDate", "the running VM has every change of the spec"
    reported = (judged or {}).get("message") or "a change"
    what = ", ".join(changes) if changes else f"KubeVirt reports {reported}"
    return True, RESTART_REQUIRED, f"{what}; restart the VM to apply (virtctl restart {vm_name(observed.name)})"


def pending(observed: Observed) -> list[str]:
    """The spec's differences from the running instance that no hotplug will carry."""
    spec, instance = observed.spec, lookup(observed.vmi, "spec") or {}
    domain = lookup(instance, "domain") or {}
    changes = []
    cores, wanted_cores = lookup(domain, "cpu", "cores"), spec.cpu or 1
    if cores is not None and cores != wanted_cores:
        changes.append(f"cpu {cores}→{wanted_cores}")
    guest = lookup(domain, "memory", "guest")
    if spec.memory and guest and quantity(guest) != quantity(spec.memory):
        changes.append(f"memory {guest}→{spec.memory}")
    running = {
        v.get("name"): v
        for v in instance.get("volumes") or []
        if isinstance(v, dict) and v.get("name") != CLOUD_INIT_DISK
    }
    hot = hotplugged(observed.vm)  # KubeVirt attaches these live
    wanted = [d.name for d in spec.disks]
    changes += [f'disk "{name}" added' for name in wanted if name not in running and name not in hot]
    changes += [f'disk "{name}" removed' for name, v in running.items() if name not in wanted and not hotpluggable(v)]
    template = lookup(observed.vm, "spec", "template") or {}
    digest_path = ("metadata", "annotations", api.CLOUD_INIT_DIGEST_ANNOTATION)
    if lookup(observed.vmi, *digest_path) != lookup(template, *digest_path):
        changes.append(CLOUD_INIT)
    if [n.get("name") for n in instance.get("networks") or []] != [
        n.get("name") for n in lookup(template, "spec", "networks") or []
    ]:
        changes.append("networks")
    if any(instance.get(k) != lookup(template, "spec", k) for k in ("nodeSelector", "tolerations", "affinity")):
        changes.append("placement")
    booting = next((d.get("name") for d in lookup(domain, "devices", "disks") or [] if d.get("bootOrder") == 1), None)
    boot = spec.boot_disk
    if boot is not None and booting is not None and boot.name != booting:
        changes.append(f'boot disk "{booting}"→"{boot.name}"')
    return changes

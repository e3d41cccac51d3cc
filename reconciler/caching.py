"""What the reconciler's informers keep of each object (kubeclient/transforms.py): the fields a pass reads.

Every cached object loses ``managedFields`` and kubectl's last-applied annotation, which no pass reads, and shares
its strings with the rest of the cache. A VirtualMachineInstance keeps its spec (what a restart would change,
restarts.py) but of its status only ``nodeName`` (status.py) and ``phase``: KubeVirt writes much more there
(interfaces, guest OS, conditions, migration and launcher state) and nothing here reads it. The other children keep
their spec and status whole: planning and status read most of both (sizes, classes, sources, phases, conditions,
resize errors, CDI's progress and restarts), and a VM's spec is compared whole with the one wanted (vm.py).

One table of strings for all of them: the namespace, label values and "True" recur across kinds.
"""

from __future__ import annotations

from kubeclient.transforms import SharedStrings, Transform, chain, keep_only, without_bookkeeping

INSTANCE_STATUS = ("nodeName", "phase")


class CacheTransforms:
    """The transform of each informer of one reconciler."""

    def __init__(self) -> None:
        self.strings = SharedStrings()
        self.default: Transform = chain(without_bookkeeping, self.strings)
        self.instances: Transform = chain(without_bookkeeping, keep_only("status", INSTANCE_STATUS), self.strings)

"""The API resources this project reads and writes, and how their REST paths are built."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from wukong import api


def _segment(value: str, what: str) -> str:
    """One path segment: a name the API server would read as another path (``..``, ``a/b``) is refused, and the
    rest is percent-escaped, so no value -- whatever a Wukong says -- can make a request for another object."""
    if not value or value in (".", "..") or "/" in value:
        raise ValueError(f"{what} {value!r} cannot be used in an API path")
    return quote(value, safe="")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{_segment(namespace, 'namespace')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{_segment(name, 'name')}"
        if subresource:
            base += f"/{_segment(subresource, 'subresource')}"
        return base


WUKONGS = Resource(api.GROUP, api.VERSION, api.PLURAL, api.KIND)
WUKONG_POLICIES = Resource(api.GROUP, api.VERSION, api.POLICY_PLURAL, api.POLICY_KIND, namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
PVCS = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
PVS = Resource("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False)
DATA_VOLUMES = Resource("cdi.kubevirt.io", "v1beta1", "datavolumes", "DataVolume")
VIRTUAL_MACHINES = Resource("kubevirt.io", "v1", "virtualmachines", "VirtualMachine")
VIRTUAL_MACHINE_INSTANCES = Resource("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance")
STORAGE_CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False)
EVENTS = Resource("", "v1", "events", "Event")
SECRETS = Resource("", "v1", "secrets", "Secret")
NETWORK_ATTACHMENT_DEFINITIONS = Resource(
    "k8s.cni.cncf.io", "v1", "network-attachment-definitions", "NetworkAttachmentDefinition"
)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
MUTATING_WEBHOOK_CONFIGURATIONS = Resource(
    "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False
)
VALIDATING_WEBHOOK_CONFIGURATIONS = Resource(
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False
)

"""The rest of the VM a Wukong asks for: cloud-init, SSH keys, Multus networks and placement.

``GuestConfig`` is built once per pass from the spec (the password hash it needs is computed once per process
and password, see ``password_hash``) and adds its parts to the VM template that ``children.virtual_machine``
builds. The cloud-init user-data lives in a Secret the Wukong owns; the VM only names it. A digest of that
Secret's data is written into the VM template's annotations, so a changed user-data is a template change:
the reconciler rewrites the Secret, and KubeVirt reports that the running VM needs a restart to see it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler import children, networks
from reconciler.observation import Observed
from wukong import api, cloudinit
from wukong.manifests import Obj
from wukong.naming import CLOUD_INIT_DISK, cloud_init_secret_name
from wukong.spec import WukongSpec

CLOUD_INIT_DIGEST_ANNOTATION = f"{api.GROUP}/cloud-init-digest"
ANTI_AFFINITY_TOPOLOGY = "kubernetes.io/hostname"


@functools.lru_cache(maxsize=1024)
def password_hash(password: str, uid: str) -> str:
    """SHA-512 crypt of a plaintext password, with a salt derived from the Wukong's uid and the password: the
    same input gives the same hash, so the Secret does not change on every pass, and no two Wukongs share one."""
    digest = hmac.new(uid.encode(), password.encode(), hashlib.sha256).digest()
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    salt = "".join(alphabet[b % 64] for b in digest[:16])
    return cloudinit.hash_password(password, salt=salt)


@dataclass(frozen=True)
class GuestConfig:
    observed: Observed

    @property
    def wukong(self) -> Mapping[str, Any]:
        return self.observed.wukong

    @property
    def spec(self) -> WukongSpec:
        return self.observed.spec

    @property
    def name(self) -> str:
        return self.observed.name

    @property
    def namespace(self) -> str:
        return self.observed.namespace

    @property
    def needs_cloud_init(self) -> bool:
        """cloud-init carries the user, the static addresses, and the SSH keys (noCloud propagation needs it)."""
        return bool(self.spec.cloud_init_user or self.spec.networks or self.spec.ssh_key_secret)

    def secret(self) -> Obj | None:
        """The user-data Secret (and network-data for Multus interfaces), owned by the Wukong; None when the VM
        needs no cloud-init."""
        if not self.needs_cloud_init:
            return None
        user = self.spec.cloud_init_user
        hashed = None
        if user is not None:
            hashed = user.password_hash or (password_hash(user.password, self.observed.uid) if user.password else None)
        data = {"userdata": cloudinit.user_data(user, self.name, hashed)}
        if self.spec.networks:
            config = cloudinit.network_config(self.spec.networks, self.namespace, self.name)
            if config is not None:
                data["networkdata"] = config
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": cloud_init_secret_name(self.name),
                "namespace": self.namespace,
                "labels": children.labels(self.name),
                "annotations": {CLOUD_INIT_DIGEST_ANNOTATION: digest(data)},
                "ownerReferences": [children.owner_reference(self.wukong)],
            },
            "type": "Opaque",
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
        }

    def network_attachment_definitions(self) -> list[Obj]:
        """One per network that names no existing NetworkAttachmentDefinition."""
        return [networks.network_attachment_definition(self.wukong, n) for n in self.spec.networks if not n.nad_name]

    def nad_names(self) -> list[str]:
        return [n.nad_name or networks.nad_name(self.name, n.name) for n in self.spec.networks]

    def add_to(self, template: Obj, secret: Obj | None) -> None:
        """Give the VM template (``spec.template``) its networks, cloud-init, SSH keys and placement."""
        spec = template["spec"]
        interfaces, nets = networks.vm_interfaces(self.namespace, self.name, self.spec.networks)
        spec["domain"]["devices"]["interfaces"], spec["networks"] = interfaces, nets
        if secret is not None:
            source: Obj = {"secretRef": {"name": secret["metadata"]["name"]}}
            if "networkdata" in secret["data"]:
                source["networkDataSecretRef"] = {"name": secret["metadata"]["name"]}
            spec["domain"]["devices"]["disks"].append({"name": CLOUD_INIT_DISK, "disk": {"bus": "virtio"}})
            spec["volumes"].append({"name": CLOUD_INIT_DISK, "cloudInitNoCloud": source})
            annotations = template["metadata"].setdefault("annotations", {})
            annotations[CLOUD_INIT_DIGEST_ANNOTATION] = secret["metadata"]["annotations"][CLOUD_INIT_DIGEST_ANNOTATION]
        if self.spec.ssh_key_secret:
            spec["accessCredentials"] = [
                {
                    "sshPublicKey": {
                        "source": {"secret": {"secretName": self.spec.ssh_key_secret}},
                        "propagationMethod": {"noCloud": {}},
                    }
                }
            ]
        placement = self.spec.high_availability
        if placement.node_selector:
            spec["nodeSelector"] = dict(placement.node_selector)
        if placement.tolerations:
            spec["tolerations"] = [dict(t) for t in placement.tolerations]
        if placement.anti_affinity:
            spec["affinity"] = {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "labelSelector": {
                                    "matchExpressions": [{"key": api.WUKONG_LABEL, "operator": "Exists"}]
                                },
                                "topologyKey": ANTI_AFFINITY_TOPOLOGY,
                            },
                        }
                    ]
                }
            }


def digest(data: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]

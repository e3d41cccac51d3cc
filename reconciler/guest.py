"""The cloud-init a Wukong's VM boots with: a Secret holding its user-data, and network-data for Multus interfaces.

cloud-init carries the user, the static addresses and the SSH keys (noCloud propagation needs it). The Secret is
the Wukong's own; the VM only names it (vm.py's cloud-init part). A digest of the Secret's data is written into its
annotations and the VM template's, so a changed user-data is a template change: the reconciler rewrites the
Secret, and KubeVirt reports that the running VM needs a restart to see it. The password hash it needs is computed
once per process and password (``password_hash``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping

from reconciler.observation import Observed
from reconciler.ownership import labels, owner_reference
from wukong import api, cloudinit
from wukong.manifests import Obj
from wukong.naming import cloud_init_secret_name
from wukong.spec import WukongSpec


@functools.lru_cache(maxsize=1024)
def password_hash(password: str, uid: str) -> str:
    """SHA-512 crypt of a plaintext password, with a salt derived from the Wukong's uid and the password: the
    same input gives the same hash, so the Secret does not change on every pass, and no two Wukongs share one."""
    digest = hmac.new(uid.encode(), password.encode(), hashlib.sha256).digest()
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    salt = "".join(alphabet[b % 64] for b in digest[:16])
    return cloudinit.hash_password(password, salt=salt)


def needs_cloud_init(spec: WukongSpec) -> bool:
    return bool(spec.cloud_init_user or spec.networks or spec.ssh_key_secret)


def cloud_init_secret(observed: Observed) -> Obj | None:
    """The user-data Secret (and network-data for Multus interfaces), owned by the Wukong; None when the VM needs
    no cloud-init."""
    spec, name, namespace = observed.spec, observed.name, observed.namespace
    if not needs_cloud_init(spec):
        return None
    user = spec.cloud_init_user
    hashed = None
    if user is not None:
        hashed = user.password_hash or (password_hash(user.password, observed.uid) if user.password else None)
    data = {"userdata": cloudinit.user_data(user, name, hashed)}
    if spec.networks:
        config = cloudinit.network_config(spec.networks, namespace, name)
        if config is not None:
            data["networkdata"] = config
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": cloud_init_secret_name(name),
            "namespace": namespace,
            "labels": labels(name),
            "annotations": {api.CLOUD_INIT_DIGEST_ANNOTATION: digest(data)},
            "ownerReferences": [owner_reference(observed.wukong)],
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def digest(data: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]

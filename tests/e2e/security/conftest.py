"""The attacker of the security suite: a tenant who holds only what Kubernetes' built-in roles give in a namespace.

Safety (SPEC 9) is judged from a tenant's seat: a user bound to the built-in ``edit`` ClusterRole in its own
namespace, with no RBAC written for Wukongs. Its Wukong rights come only from the aggregated roles of
deploy/rbac/users.yaml, so every test here also proves those suffice, and grant no more.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest

from devcluster.controlplane import ControlPlane
from tests.waiting import poll

WUKONGS = "wukongs.vm.novasphere.dev"
# A verb each built-in role has on Wukongs only once the aggregation controller has copied our rules into it.
AGGREGATED_VERB = {"view": "list", "edit": "create", "admin": "deletecollection"}


@dataclass(frozen=True)
class Tenant:
    """A user acting through the devcluster's kubectl with ``--as``: the API server authorises every request
    as that user (and the group system:authenticated, which impersonation adds), as for a real tenant."""

    cluster: ControlPlane
    namespace: str
    user: str

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, "--as", self.user, stdin=stdin, check=check)

    def can(self, verb: str, resource: str = WUKONGS, namespace: str | None = None, subresource: str = "") -> bool:
        """``kubectl auth can-i``: the API server's own authoriser answers for this user, in its namespace unless
        told another (``""``: at the cluster scope). It shows a verb refused that kubectl never sends alone:
        ``kubectl patch`` reads the object first, and that read's refusal would hide the patch's."""
        scope = ["--all-namespaces"] if namespace == "" else ["-n", namespace or self.namespace]
        return self.kubectl("auth", "can-i", verb, resource, *scope, f"--subresource={subresource}").returncode == 0


def bind(cluster: ControlPlane, namespace: str, role: str, user: str) -> Tenant:
    """``user`` bound to the built-in ClusterRole ``role`` in ``namespace`` by a RoleBinding, returned once the
    API server authorises by it with the Wukong rules aggregated in: the binding and the aggregation both take
    effect asynchronously (an informer, a controller), so this waits on the authoriser's answer."""
    cluster.kubectl(
        "create", "rolebinding", f"{user}-{role}", f"--clusterrole={role}", f"--user={user}", "-n", namespace
    )
    tenant = Tenant(cluster, namespace, user)
    verb = AGGREGATED_VERB[role]
    poll(lambda: tenant.can(verb), f"{user} to {verb} Wukongs through the built-in {role!r} role", 30, interval=0.2)
    return tenant


@pytest.fixture
def tenant(cluster: ControlPlane, namespace: str) -> Tenant:
    """A fresh namespace and its editor, ``tenant-<namespace>``, bound to the built-in ``edit`` and nothing else."""
    return bind(cluster, namespace, "edit", f"tenant-{namespace}")

"""The product's three ServiceAccounts on devcluster, with exactly their RBAC and admission policies from deploy/
(the reconciler's with the guard on its volumes' deletion, which exempts its account).

Only the identities are installed (ServiceAccounts, Roles, bindings, ValidatingAdmissionPolicies), never the
Deployments: on devcluster the processes run from the checkout with a token of their account (``token_kubeconfig``),
so every request they make is authorised and admitted as it would be in their Pods.

``permissions`` is what the API server says each account may do (``kubectl auth can-i --list``) in the product's
namespace and in any other, in a stable form; deploy/rbac/expected-permissions.txt holds the reviewed answer, and
``python -m devcluster permissions`` (``make permissions``) and an e2e test fail when RBAC grants anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from devcluster import checkout
from devcluster.controlplane import ControlPlane

NAMESPACE = "wukong-system"
RECONCILER, WEBHOOK, CERTS = "wukong-reconciler", "wukong-webhook", "wukong-certs"
ACCOUNTS = (RECONCILER, WEBHOOK, CERTS)
IDENTITY_KINDS = {
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
SOURCES = {
    RECONCILER: [
        ("rbac", "reconciler.yaml"),
        ("rbac", "reconciler-policy.yaml"),
        ("rbac", "volume-guard.yaml"),
        ("rbac", "ownership-guard.yaml"),
    ],
    WEBHOOK: [("rbac", "webhook.yaml")],
    CERTS: [("certs", "certs.yaml"), ("certs", "certs-policy.yaml")],
}


OTHER_NAMESPACE = "any-other-namespace"  # stands for every namespace but the product's own
EXPECTED_PERMISSIONS = ("rbac", "expected-permissions.txt")


def username(account: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{account}"


def manifests(*accounts: str) -> list[dict[str, Any]]:
    """The identity objects of ``accounts`` (all three by default), in the order deploy/ lists them."""
    paths = [checkout.deploy("namespace.yaml")]
    paths += [checkout.deploy(*source) for account in accounts or ACCOUNTS for source in SOURCES[account]]
    return [doc for path in paths for doc in _documents(path) if doc["kind"] in IDENTITY_KINDS]


def install(plane: ControlPlane, *accounts: str) -> None:
    plane.apply(manifests(*accounts))


def token_kubeconfig(plane: ControlPlane, account: str) -> Path:
    return plane.service_account_kubeconfig(NAMESPACE, account)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def permissions(plane: ControlPlane) -> str:
    """Every account's ``kubectl auth can-i --list``, in the product's namespace and another, one rule a line
    (resources, non-resource URLs, resource names, verbs), sorted and without the table's padding."""
    plane.kubectl("create", "namespace", OTHER_NAMESPACE, check=False)
    sections = []
    for account in ACCOUNTS:
        for namespace in (NAMESPACE, OTHER_NAMESPACE):
            table = plane.kubectl("auth", "can-i", "--list", "--as", username(account), "-n", namespace).stdout
            sections.append(f"[{account} in {namespace}]\n" + "\n".join(_rules(table)))
    return "\n\n".join(sections) + "\n"


def expected_permissions() -> str:
    return checkout.deploy(*EXPECTED_PERMISSIONS).read_text()


def _rules(table: str) -> list[str]:
    lines = table.splitlines()
    header, rows = lines[0], lines[1:]
    starts = [0, *(header.index(title) for title in ("Non-Resource URLs", "Resource Names", "Verbs"))]
    columns = [
        tuple(row[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)) for row in rows
    ]
    return sorted({"  ".join(c or "-" for c in cells) for cells in columns if any(cells)})

"""The product's three ServiceAccounts on devcluster, with exactly their RBAC and admission policies from deploy/.

Only the identities are installed (ServiceAccounts, Roles, bindings, ValidatingAdmissionPolicies), never the
Deployments: on devcluster the processes run from the checkout with a token of their account (``token_kubeconfig``),
so every request they make is authorised and admitted as it would be in their Pods.
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
    RECONCILER: [("rbac", "reconciler.yaml"), ("rbac", "reconciler-policy.yaml")],
    WEBHOOK: [("rbac", "webhook.yaml")],
    CERTS: [("certs", "certs.yaml"), ("certs", "certs-policy.yaml")],
}


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

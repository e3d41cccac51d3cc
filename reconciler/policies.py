"""The WukongPolicies and the namespaces' labels, followed by watch: what the reconciler judges a Wukong's networks
by before it makes or changes a NetworkAttachmentDefinition (and before it looks up another namespace's), and what
the audit judges existing Wukongs by.

Admission already refuses a network the policies do not allow; the reconciler asks again because it writes with
cluster-wide rights, and a Wukong may have been stored while the webhook was bypassed or before a policy changed --
as it re-checks a shrink before it patches a claim.
"""

from __future__ import annotations

from kubeclient.informer import Informer
from kubeclient.resources import NAMESPACES
from kubeclient.rest import Kube
from wukong import labels, policy
from wukong.api import WUKONG_POLICIES
from wukong.policy import Policy


class Policies:
    def __init__(self, kube: Kube) -> None:
        self.policies = Informer(kube, WUKONG_POLICIES)
        self.namespaces = Informer(kube, NAMESPACES)
        self._parsed: list[Policy] | None = None
        self._scopes: dict[str, policy.Scope] = {}
        for informer in self.informers:
            informer.on_change(self._changed)

    @property
    def informers(self) -> tuple[Informer, ...]:
        return self.policies, self.namespaces

    def _changed(self, _event: str, _obj: object) -> None:
        self._parsed, self._scopes = None, {}  # replaced, not cleared: a scope being built lands in the old dict

    def scope(self, namespace: str) -> policy.Scope:
        """The policies selecting ``namespace``, built once per namespace until a policy or a namespace changes."""
        scopes = self._scopes
        if (found := scopes.get(namespace)) is None:
            parsed = self._parsed
            if parsed is None:
                parsed = self._parsed = [Policy.from_object(obj) for obj in self.policies.items()]
            namespace_obj = self.namespaces.get("", namespace)
            known = labels.of_namespaces([namespace_obj] if namespace_obj is not None else [])
            found = scopes[namespace] = policy.Scope.of(
                policy.applying(parsed, labels.of_namespace(namespace, known)), namespace
            )
        return found

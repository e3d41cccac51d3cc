"""What the offline checker reads: manifests as a GitOps repository holds them, and optionally the live cluster.

Paths are files, directories (every ``.yaml``, ``.yml`` and ``.json`` file below them, in name order) or ``-``
for stdin; each may hold several YAML documents and ``List``s. Every document keeps where it came from
(``path#3``), so a verdict names the document it is about.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from wukong import api, labels
from wukong.manifests import ManifestError, parse_objects
from wukong.policy import Policy
from wukong.storageclass import StorageClass

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ClusterError(Exception):
    """The cluster could not be asked; the message says what failed."""


@dataclass(frozen=True)
class Document:
    source: str  # path#index (1-based), or -#index for stdin
    object: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.object.get("kind") or "(no kind)")

    @property
    def key(self) -> tuple[str, str]:
        metadata = self.object.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def read(paths: Iterable[str], stdin: TextIO) -> list[Document]:
    documents: list[Document] = []
    for path in paths:
        if path == "-":
            documents += _documents(stdin.read(), "-")
            continue
        root = Path(path)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
        else:
            files = [root]
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise ManifestError(f"{file}: cannot read: {getattr(error, 'strerror', None) or error}") from None
            documents += _documents(text, str(file))
    return documents


def _documents(text: str, source: str) -> list[Document]:
    return [Document(f"{source}#{index}", obj) for index, obj in enumerate(parse_objects(text, source), start=1)]


def wukongs(documents: list[Document], namespace: str) -> tuple[list[Document], list[Document]]:
    """The Wukongs (namespaced as ``kubectl apply -n`` would) and the documents skipped."""
    found, skipped = [], []
    for document in documents:
        group = str(document.object.get("apiVersion", "")).rpartition("/")[0]
        if document.object.get("kind") != api.KIND or group != api.GROUP:
            skipped.append(document)
            continue
        obj = dict(document.object)
        metadata = dict(obj["metadata"]) if isinstance(obj.get("metadata"), dict) else {}
        metadata.setdefault("namespace", namespace)
        obj["metadata"] = metadata
        found.append(Document(document.source, obj))
    return found, skipped


def policies(documents: list[Document]) -> list[Policy]:
    """The WukongPolicies of a --policies input; any other kind there is a mistake worth saying."""
    found = []
    for document in documents:
        group = str(document.object.get("apiVersion", "")).rpartition("/")[0]
        if document.object.get("kind") != api.POLICY_KIND or group != api.GROUP:
            raise ManifestError(f"{document.source}: expected a WukongPolicy, found kind {document.kind}")
        found.append(Policy.from_object(document.object))
    return found


def is_namespace(document: Document) -> bool:
    return document.object.get("kind") == "Namespace" and document.object.get("apiVersion") == "v1"


def namespace_labels(documents: list[Document]) -> dict[str, dict[str, str]]:
    """The labels of the Namespaces among the documents."""
    return labels.of_namespaces(d.object for d in documents if is_namespace(d))


class Cluster:
    """Reads from a live cluster: its StorageClasses, and the live Wukong an update would replace."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube

    @classmethod
    def connect(cls, kubeconfig: str | None) -> Cluster:
        from kubeclient.credentials import load_api_client
        from kubeclient.rest import Kube

        try:
            return cls(Kube(load_api_client(kubeconfig), field_manager="wukong-webhook-check"))
        except Exception as error:
            raise ClusterError(f"cannot load cluster credentials: {error}") from None

    def storage_classes(self) -> list[StorageClass]:
        from kubeclient.resources import STORAGE_CLASSES
        from kubeclient.rest import ApiError

        try:
            items, _ = self.kube.list(STORAGE_CLASSES, None)
        except ApiError as error:
            raise ClusterError(f"cannot list StorageClasses: {error}") from None
        return [StorageClass.from_manifest(item) for item in items]

    def policies(self) -> list[Policy]:
        from kubeclient.rest import ApiError, NotFound
        from wukong.api import WUKONG_POLICIES

        try:
            items, _ = self.kube.list(WUKONG_POLICIES, None)
        except NotFound:  # the WukongPolicy CRD is not installed: no policies
            return []
        except ApiError as error:
            raise ClusterError(f"cannot list WukongPolicies: {error}") from None
        return [Policy.from_object(item) for item in items]

    def namespace_labels(self) -> dict[str, dict[str, str]]:
        from kubeclient.resources import NAMESPACES
        from kubeclient.rest import ApiError

        try:
            items, _ = self.kube.list(NAMESPACES, None)
        except ApiError as error:
            raise ClusterError(f"cannot list namespaces: {error}") from None
        return labels.of_namespaces(items)

    def wukong(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubeclient.rest import ApiError, NotFound
        from wukong.api import WUKONGS

        try:
            return dict(self.kube.get(WUKONGS, namespace, name))
        except NotFound:
            return None
        except ApiError as error:
            raise ClusterError(f"cannot read Wukong {namespace}/{name}: {error}") from None

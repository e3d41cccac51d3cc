"""``wukong-webhook``: serve admission over TLS, or check a manifest offline with the same rules."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import Any

import yaml

from webhook.app import StaticFacts, WebhookConfig, create_app
from webhook.check import check
from webhook.facts import ClusterFacts
from webhook.field import quoted
from wukong.api import NAMESPACE_NAME_LABEL
from wukong.manifests import ManifestError, load_objects
from wukong.storageclass import StorageClass

EXIT_ALLOWED, EXIT_DENIED, EXIT_UNUSABLE, EXIT_UNDECIDED = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wukong-webhook", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve /mutate and /validate over TLS with gunicorn")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--bind-address", default="0.0.0.0")
    serve.add_argument("--tls-cert-file", required=True)
    serve.add_argument("--tls-private-key-file", required=True)
    serve.add_argument("--threads", type=int, default=8, help="request threads (default 8)")
    serve.add_argument(
        "--tls-secret",
        metavar="NAMESPACE/NAME",
        help="copy tls.crt/tls.key from this Secret (kept by wukong-certs manage) to the two files, and follow it",
    )
    _facts_arguments(serve)
    serve.add_argument(
        "--kubeconfig",
        help="kubeconfig for the StorageClass watch (default: in-cluster, then $KUBECONFIG or ~/.kube/config)",
    )
    serve.set_defaults(run=_serve)

    offline = commands.add_parser(
        "check",
        help="run Wukong manifests through mutation and validation offline, as the API server would",
        description="Files, directories (every .yaml, .yml and .json file in them) and - (stdin); multi-document "
        "YAML and Lists. Documents that are not Wukongs are skipped with one notice. Exit 0 when every Wukong is "
        "allowed, 1 when any is denied, 2 when the input is unusable, 3 when none is denied but some could not be "
        "judged: a WukongPolicy selects namespaces by labels the check does not know.",
    )
    offline.add_argument("paths", nargs="+", metavar="PATH", help="manifest files, directories, or - for stdin")
    offline.add_argument(
        "--old", metavar="PATH", help="the Wukongs as they are now (matched by namespace and name), to check updates"
    )
    offline.add_argument(
        "--old-from-cluster",
        action="store_true",
        help="check each Wukong as an update of the live object of its namespace and name, when there is one",
    )
    _facts_arguments(offline)
    offline.add_argument(
        "--policies",
        metavar="PATH",
        action="append",
        help="WukongPolicies (files or directories) to judge by, instead of the cluster's; repeatable. A Namespace "
        "among the checked documents gives its labels to the policies' namespaceSelectors",
    )
    offline.add_argument(
        "--assume-namespace-labels",
        metavar="[NAMESPACE:]KEY=VALUE,...",
        action="append",
        default=[],
        help="the labels of a namespace that no Namespace document (nor the cluster) describes, for the policies' "
        "namespaceSelectors; without NAMESPACE: of every such namespace; nothing after the colon: no labels. "
        "Repeatable. Without it such a namespace, when a policy selects by label, makes the check exit 3",
    )
    offline.add_argument(
        "--kubeconfig",
        help="read StorageClasses, WukongPolicies, namespaces (and live objects) from this cluster instead of files",
    )
    offline.add_argument(
        "--cluster",
        action="store_true",
        help="read from the cluster of the default credentials (in-cluster, then $KUBECONFIG or ~/.kube/config)",
    )
    offline.add_argument("--namespace", "-n", default="default", help="namespace of Wukongs that name none")
    offline.add_argument("--output", "-o", choices=("yaml", "json"), default="yaml")
    offline.set_defaults(run=_check)
    return parser


def _facts_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--default-storage-class",
        metavar="NAME",
        help="StorageClass for disks that name none (default: the cluster's default class)",
    )
    parser.add_argument(
        "--storage-classes",
        metavar="FILE",
        help="StorageClasses as YAML/JSON documents or a List (check: instead of reading them from a cluster)",
    )


def _static_facts(args: argparse.Namespace) -> ClusterFacts:
    classes = None
    if args.storage_classes:
        objects = load_objects(args.storage_classes)
        if others := [o.get("kind") for o in objects if o.get("kind") != "StorageClass"]:
            raise ManifestError(f"{args.storage_classes}: expected StorageClasses, found kind {quoted(others[0])}")
        classes = [StorageClass.from_manifest(o) for o in objects]
    return ClusterFacts.of(classes, args.default_storage_class, classes_origin=args.storage_classes)


def _check(args: argparse.Namespace) -> int:
    from webhook import gitops

    try:
        source = gitops.Cluster.connect(args.kubeconfig) if args.kubeconfig or args.cluster else None
        documents = gitops.read(args.paths, sys.stdin)
        olds = gitops.read([args.old], sys.stdin) if args.old else []
        assumed = [_assumed_labels(text) for text in args.assume_namespace_labels]
        facts = _check_facts(args, source, documents, assumed)
    except (ManifestError, gitops.ClusterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    wukongs, skipped = gitops.wukongs(documents, args.namespace)
    if facts.policies:  # a Namespace's labels were read for the policies' selectors: it was not skipped
        skipped = [d for d in skipped if not gitops.is_namespace(d)]
    if skipped:
        kinds = ", ".join(sorted({d.kind for d in skipped}))
        are = "document that is not a Wukong" if len(skipped) == 1 else "documents that are not Wukongs"
        print(f"notice: skipped {len(skipped)} {are} ({kinds})", file=sys.stderr)
    if not wukongs:
        print("error: no Wukong found in the input", file=sys.stderr)
        return EXIT_UNUSABLE
    facts = _assume_labels(facts, assumed, {d.key[0] for d in wukongs})
    labels_from = "not in the cluster" if source is not None else "no cluster"
    previous, _ = gitops.wukongs(olds, args.namespace)
    old_by_key = {d.key: d.object for d in previous}
    results = []
    for document in wukongs:
        old = old_by_key.get(document.key)
        if old is None and args.old_from_cluster and source is not None:
            try:
                old = source.wukong(*document.key)
            except gitops.ClusterError as error:
                print(f"error: {error}", file=sys.stderr)
                return EXIT_UNUSABLE
        results.append((document, check(document.object, old, facts, labels_from)))
    _print(results, args.output)
    if not all(result.allowed for _, result in results):
        return EXIT_DENIED
    return EXIT_UNDECIDED if any(result.undecided for _, result in results) else EXIT_ALLOWED


Assumed = tuple[str | None, dict[str, str]]  # (namespace, or None for every namespace otherwise unknown; labels)


def _assumed_labels(text: str) -> Assumed:
    """``[NAMESPACE:]KEY=VALUE,...`` as --assume-namespace-labels takes it."""
    namespace, colon, pairs = text.partition(":") if ":" in text else ("", "", text)  # no label has a colon
    found = {}
    for pair in filter(None, (p.strip() for p in pairs.split(","))):
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise ManifestError(f"--assume-namespace-labels {quoted(text)}: {quoted(pair)} is not KEY=VALUE")
        found[key] = value
    if colon and not namespace:
        raise ManifestError(f"--assume-namespace-labels {quoted(text)}: no namespace before the colon")
    return (namespace if colon else None), found


def _assume_labels(facts: ClusterFacts, assumed: list[Assumed], namespaces: set[str]) -> ClusterFacts:
    """The labels --assume-namespace-labels gives without a namespace, for each namespace still unknown."""
    every = {k: v for namespace, given in assumed if namespace is None for k, v in given.items()}
    if not any(namespace is None for namespace, _ in assumed):
        return facts
    known = dict(facts.namespace_labels)
    for namespace in namespaces - known.keys():
        known[namespace] = {**every, NAMESPACE_NAME_LABEL: namespace}
    return dataclasses.replace(facts, namespace_labels=known)


def _check_facts(args: argparse.Namespace, source: Any, documents: list[Any], assumed: list[Assumed]) -> ClusterFacts:
    """StorageClasses from --storage-classes, else the cluster; policies from --policies, else the cluster; the
    namespaces' labels from the cluster, overridden by --assume-namespace-labels NAMESPACE:..., overridden by
    Namespace documents among the ones checked (what the pipeline applies)."""
    from webhook import gitops

    if source is not None and not args.storage_classes:
        facts = ClusterFacts.of(source.storage_classes(), args.default_storage_class)
    else:
        facts = _static_facts(args)
    if args.policies:
        policies = gitops.policies(gitops.read(args.policies, sys.stdin))
    else:
        policies = source.policies() if source is not None else []
    labels = source.namespace_labels() if source is not None and policies else {}
    for namespace, given in assumed:
        if namespace is not None:
            labels[namespace] = {**given, NAMESPACE_NAME_LABEL: namespace}
    labels.update(gitops.namespace_labels(documents))
    return dataclasses.replace(facts, policies=tuple(policies), namespace_labels=labels)


def _print(results: list[tuple[Any, Any]], output: str) -> None:
    if output == "json":
        print(json.dumps([{"source": d.source, **r.as_dict()} for d, r in results], indent=2))
        return
    allowed = [r.object for _, r in results if r.allowed]
    for document, result in results:
        for warning in result.warnings:
            print(f"Warning: {document.source}: {warning}", file=sys.stderr)
        if not result.allowed:
            print(f"denied: {document.source}: {result.kubectl_message()}", file=sys.stderr)
        for reason in result.undecided:
            print(f"undecided: {document.source}: {reason}", file=sys.stderr)
    if allowed:
        print(yaml.safe_dump_all(allowed, sort_keys=False), end="")


def _serve(args: argparse.Namespace) -> int:
    from webhook.server import ServeOptions, WebhookServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        static = _static_facts(args) if args.storage_classes else None
    except ManifestError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE

    def app_factory() -> Any:
        """Runs in the gunicorn worker, so the watch thread lives in the process that serves."""
        if static is not None:
            return create_app(WebhookConfig(facts=StaticFacts(static), certificate_file=args.tls_cert_file))
        from kubeclient.credentials import load_api_client
        from kubeclient.rest import Kube
        from webhook.factscache import FactsCache

        kube = Kube(load_api_client(args.kubeconfig), field_manager="wukong-webhook")
        cache = FactsCache(kube, args.default_storage_class).start()
        return create_app(WebhookConfig(facts=cache, certificate_file=args.tls_cert_file))

    if args.tls_secret:
        from pathlib import Path

        from kubeclient.credentials import load_api_client
        from kubeclient.rest import Kube
        from webhook.tlssecret import SecretFiles

        namespace, _, name = args.tls_secret.partition("/")
        if not namespace or not name:
            print("error: --tls-secret takes NAMESPACE/NAME", file=sys.stderr)
            return EXIT_UNUSABLE
        kube = Kube(load_api_client(args.kubeconfig), field_manager="wukong-webhook")
        follower = SecretFiles(kube, namespace, name, Path(args.tls_cert_file), Path(args.tls_private_key_file))
        try:
            follower.wait_for_first()
        except TimeoutError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_UNUSABLE
        follower.start()  # in the master process: the worker reads the files at each handshake
    options = ServeOptions(
        bind=f"{args.bind_address}:{args.port}",
        cert_file=args.tls_cert_file,
        key_file=args.tls_private_key_file,
        threads=args.threads,
    )
    try:
        WebhookServer(app_factory, options).run()
    except (OSError, ValueError) as error:
        print(f"error: cannot serve: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    return 0

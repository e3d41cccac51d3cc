"""``wukong-webhook``: serve admission over TLS, or check a manifest offline with the same rules."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import yaml

from webhook.app import StaticFacts, WebhookConfig, create_app
from webhook.check import check
from webhook.facts import ClusterFacts
from webhook.field import quoted
from wukong.manifests import ManifestError, load_object, load_objects
from wukong.storageclass import StorageClass

EXIT_ALLOWED, EXIT_DENIED, EXIT_UNUSABLE = 0, 1, 2


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
    _facts_arguments(serve)
    serve.add_argument(
        "--kubeconfig",
        help="kubeconfig for the StorageClass watch (default: in-cluster, then $KUBECONFIG or ~/.kube/config)",
    )
    serve.set_defaults(run=_serve)

    offline = commands.add_parser("check", help="run a Wukong manifest through mutation and validation offline")
    offline.add_argument("new", metavar="NEW", help="the Wukong as it would be applied (YAML or JSON)")
    offline.add_argument("--old", metavar="OLD", help="the Wukong as it is now, to check an update")
    _facts_arguments(offline)
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
        help="StorageClasses as YAML/JSON documents or a List, instead of asking the cluster",
    )


def _static_facts(args: argparse.Namespace) -> ClusterFacts:
    classes = None
    if args.storage_classes:
        objects = load_objects(args.storage_classes)
        if others := [o.get("kind") for o in objects if o.get("kind") != "StorageClass"]:
            raise ManifestError(f"{args.storage_classes}: expected StorageClasses, found kind {quoted(others[0])}")
        classes = [StorageClass.from_manifest(o) for o in objects]
    return ClusterFacts.of(classes, args.default_storage_class)


def _check(args: argparse.Namespace) -> int:
    try:
        facts = _static_facts(args)
        new = load_object(args.new)
        old = load_object(args.old) if args.old else None
    except ManifestError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    result = check(new, old, facts)
    if args.output == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        for warning in result.warnings:
            print(f"Warning: {warning}", file=sys.stderr)
        if result.allowed:
            print(yaml.safe_dump(result.object, sort_keys=False), end="")
        else:
            print(f"denied: {result.message}", file=sys.stderr)
    return EXIT_ALLOWED if result.allowed else EXIT_DENIED


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
            return create_app(WebhookConfig(facts=StaticFacts(static)))
        from kubeclient.credentials import load_api_client
        from kubeclient.rest import Kube
        from webhook.storageclasses import StorageClassCache

        kube = Kube(load_api_client(args.kubeconfig), field_manager="wukong-webhook")
        cache = StorageClassCache(kube, args.default_storage_class).start()
        return create_app(WebhookConfig(facts=cache))

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

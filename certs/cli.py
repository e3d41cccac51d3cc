"""``wukong-certs``: make the webhook's CA and serving certificate."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path

from cryptography import x509

from certs import files, pki


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wukong-certs", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    generate = commands.add_parser(
        "generate",
        help="write ca.crt, ca.key, tls.crt and tls.key for the webhook Service",
        description="Creates a CA (or reuses --ca-cert/--ca-key) and a serving certificate whose SANs are "
        "SVC, SVC.NS, SVC.NS.svc and SVC.NS.svc.cluster.local plus any --dns/--ip. Keys are 0600.",
    )
    generate.add_argument("--service", required=True, help="the webhook Service name")
    generate.add_argument("--namespace", required=True, help="the webhook Service namespace")
    generate.add_argument("--out-dir", required=True, type=Path)
    generate.add_argument("--dns", action="append", default=[], help="extra DNS name (repeatable)")
    generate.add_argument("--ip", action="append", default=[], type=_ip, help="extra IP address (repeatable)")
    days, ca_days = pki.CERT_LIFETIME.days, pki.CA_LIFETIME.days
    generate.add_argument("--days", type=_positive, default=days, help=f"serving certificate lifetime (default {days})")
    generate.add_argument("--ca-days", type=_positive, default=ca_days, help=f"CA lifetime (default {ca_days})")
    generate.add_argument(
        "--key-algorithm", choices=[a.value for a in pki.KeyAlgorithm], default=pki.KeyAlgorithm.ECDSA_P256.value
    )
    generate.add_argument("--ca-cert", type=Path, help="sign with this existing CA certificate")
    generate.add_argument("--ca-key", type=Path, help="the existing CA's private key")
    generate.set_defaults(run=_generate)

    inject = commands.add_parser(
        "inject-ca-bundle",
        help="put a CA bundle into Mutating/ValidatingWebhookConfigurations",
        description="Sets clientConfig.caBundle on every webhook of the named configurations.",
    )
    inject.add_argument("--ca-file", required=True, type=Path, help="PEM bundle (one or more CA certificates)")
    inject.add_argument(
        "--mutating", action="append", default=[], metavar="NAME", help="MutatingWebhookConfiguration name (repeatable)"
    )
    inject.add_argument(
        "--validating",
        action="append",
        default=[],
        metavar="NAME",
        help="ValidatingWebhookConfiguration name (repeatable)",
    )
    inject.add_argument("--kubeconfig", help="default: in-cluster, then $KUBECONFIG or ~/.kube/config")
    inject.set_defaults(run=_inject)

    manage = commands.add_parser(
        "manage",
        help="keep the webhook's certificate Secret valid and its CA bundle injected (runs until stopped)",
        description="Creates the CA Secret and the serving certificate Secret when missing; renews each when less "
        "than a third of its lifetime is left, and replaces expired, foreign or unparseable material; keeps the "
        "previous CA in the bundle until it expires; injects the bundle into the webhook configurations before "
        "writing the Secrets, and again whenever someone overwrites it. A CA key found in the serving Secret (an "
        "earlier release kept it there) is moved to the CA Secret.",
    )
    manage.add_argument("--namespace", required=True, help="namespace of the Secrets and the webhook Service")
    manage.add_argument("--secret", required=True, help="the Secret the webhook serves from: the serving pair only")
    manage.add_argument("--ca-secret", required=True, help="the Secret of the CA and its key, kept from the webhook")
    manage.add_argument("--service", required=True, help="the webhook Service name")
    manage.add_argument("--mutating", action="append", default=[], metavar="NAME")
    manage.add_argument("--validating", action="append", default=[], metavar="NAME")
    manage.add_argument("--dns", action="append", default=[], help="extra DNS name (repeatable)")
    manage.add_argument("--ip", action="append", default=[], type=_ip, help="extra IP address (repeatable)")
    manage.add_argument("--ca-lifetime", type=_duration, default=pki.CA_LIFETIME, help="e.g. 3650d")
    manage.add_argument("--cert-lifetime", type=_duration, default=pki.CERT_LIFETIME, help="e.g. 365d, 12h")
    manage.add_argument("--interval", type=float, default=30.0, help="seconds between passes at most (default 30)")
    manage.add_argument("--leader-elect", action="store_true", help="act only while holding the Lease")
    manage.add_argument("--leader-elect-id", default="wukong-certs", help="Lease name, in --namespace")
    manage.add_argument("--kubeconfig", help="default: in-cluster, then $KUBECONFIG or ~/.kube/config")
    manage.set_defaults(run=_manage)
    return parser


def _manage(args: argparse.Namespace) -> int:
    import logging
    import os
    import signal
    import threading

    from certs.manager import CertificateManager
    from certs.rotation import Settings
    from kubeclient.credentials import load_api_client
    from kubeclient.leader import LeaderElector
    from kubeclient.rest import Kube

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kube = Kube(load_api_client(args.kubeconfig), field_manager="wukong-certs")
    settings = Settings(
        args.service, args.namespace, args.ca_lifetime, args.cert_lifetime, tuple(args.dns), tuple(args.ip)
    )
    manager = CertificateManager(
        kube, args.namespace, args.secret, args.ca_secret, settings, args.mutating, args.validating
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    may_act: Callable[[], bool] = lambda: True  # noqa: E731
    if args.leader_elect:
        elector = LeaderElector(kube, args.namespace, args.leader_elect_id, f"{os.uname().nodename}-{os.getpid()}")
        threading.Thread(target=elector.run, args=(lambda: None, stop.set, stop), daemon=True).start()
        may_act = elector.leading.is_set
    manager.run(stop, args.interval, may_act)
    return 0


def _duration(text: str) -> datetime.timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 15m, 12h or 365d")
    return datetime.timedelta(**{units[unit]: int(number)})


def _inject(args: argparse.Namespace) -> int:
    from certs.inject import inject_ca_bundle
    from kubeclient.credentials import load_api_client
    from kubeclient.rest import ApiError, Kube

    if not args.mutating and not args.validating:
        print("error: name at least one --mutating or --validating configuration", file=sys.stderr)
        return 2
    try:
        bundle = args.ca_file.read_bytes()
        certificates = x509.load_pem_x509_certificates(bundle)
    except (OSError, ValueError) as error:
        print(f"error: {args.ca_file}: not a PEM certificate bundle ({error})", file=sys.stderr)
        return 2
    try:
        kube = Kube(load_api_client(args.kubeconfig), field_manager="wukong-certs")
        count = inject_ca_bundle(kube, bundle, args.mutating, args.validating)
    except ApiError as error:
        print(f"error: {error.status} {_reason_phrase(error.status)}: {error.message}", file=sys.stderr)
        return 1
    print(f"injected a bundle of {len(certificates)} CA certificate(s) into {count} webhook(s)")
    return 0


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _generate(args: argparse.Namespace) -> int:
    algorithm = pki.KeyAlgorithm(args.key_algorithm)
    if bool(args.ca_cert) != bool(args.ca_key):
        print("error: --ca-cert and --ca-key go together", file=sys.stderr)
        return 2
    try:
        if args.ca_cert:
            ca = files.read_pair(args.ca_cert, args.ca_key)
        else:
            ca = pki.new_ca(
                f"wukong-webhook-ca@{int(datetime.datetime.now().timestamp())}",
                datetime.timedelta(days=args.ca_days),
                algorithm,
            )
            files.write_pair(ca, args.out_dir / files.CA_CERT, args.out_dir / files.CA_KEY)
        serving = pki.issue(
            ca,
            f"{args.service}.{args.namespace}.svc",
            datetime.timedelta(days=args.days),
            dns_names=[*pki.service_dns_names(args.service, args.namespace), *args.dns],
            ips=args.ip,
            algorithm=algorithm,
        )
        if args.ca_cert:
            files.write_file(args.out_dir / files.CA_CERT, ca.cert_pem, 0o644)
        files.write_pair(serving, args.out_dir / files.TLS_CERT, args.out_dir / files.TLS_KEY)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out_dir}/{{{files.CA_CERT},{files.TLS_CERT},{files.TLS_KEY}}}"
        f" for {args.service}.{args.namespace}.svc, valid {args.days} days"
    )
    return 0


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days >= 1")
    return int(text)

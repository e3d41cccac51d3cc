"""``wukong-certs``: make the webhook's CA and serving certificate."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
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
    generate.add_argument("--days", type=_positive, default=365, help="serving certificate lifetime (default 365)")
    generate.add_argument("--ca-days", type=_positive, default=3650, help="CA lifetime (default 3650)")
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
    return parser


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

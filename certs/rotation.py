"""What the webhook's two certificate Secrets should hold, decided from what they hold now (pure, clock injected).

The CA lives apart from what the webhook serves, so that the webhook, which may read its serving Secret, never holds
a key that signs certificates the API server trusts:

- the CA Secret: ``tls.crt`` the current CA, ``tls.key`` its key, ``ca.crt`` the bundle the API server trusts;
- the serving Secret: ``tls.crt`` and ``tls.key``, the pair the webhook serves, and ``ca.crt`` the bundle (public).

Material is renewed when less than a third of its lifetime is left, and replaced at once when it is expired,
unparseable, or not ours (a serving certificate the CA did not sign, or for other names): never kept silently. A new
CA joins the bundle beside the previous one, which stays trusted until it expires, so a webhook still serving a
certificate of the old CA is believed throughout the switch.

Installs before the split kept the CA's key in the serving Secret (``ca.key``). Such a CA is taken up as it is and
moved: the CA Secret is written with it, and the serving Secret rewritten without the key, no certificate changed.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from certs import pki

CA_CERT, TLS_CERT, TLS_KEY = "ca.crt", "tls.crt", "tls.key"
LEGACY_CA_KEY = "ca.key"  # the CA's key, in the serving Secret before the split: read to be moved, never written


@dataclass(frozen=True)
class Settings:
    service: str
    namespace: str
    ca_lifetime: datetime.timedelta = pki.CA_LIFETIME
    cert_lifetime: datetime.timedelta = pki.CERT_LIFETIME
    extra_dns_names: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    @property
    def dns_names(self) -> list[str]:
        return [*pki.service_dns_names(self.service, self.namespace), *self.extra_dns_names]


@dataclass(frozen=True)
class Material:
    ca: pki.KeyPair | None
    bundle: tuple[x509.Certificate, ...]
    serving: pki.KeyPair | None

    @classmethod
    def from_secrets(cls, ca: Mapping[str, str] | None, serving: Mapping[str, str] | None) -> Material:
        """Whatever of them parses; anything that does not is None (and gets replaced). With no CA in the CA
        Secret, a CA kept in the serving Secret by an earlier release (``ca.key``) is taken up, to be moved."""
        ca_data, serving_data = _decoded(ca), _decoded(serving)
        ca_pair, bundle = _pair(ca_data[TLS_CERT], ca_data[TLS_KEY]), ca_data[CA_CERT]
        if ca_pair is None and serving_data[LEGACY_CA_KEY]:
            ca_pair, bundle = _pair(serving_data[CA_CERT], serving_data[LEGACY_CA_KEY]), serving_data[CA_CERT]
        return cls(
            ca=ca_pair,
            bundle=tuple(_certificates(bundle or serving_data[CA_CERT])),
            serving=_pair(serving_data[TLS_CERT], serving_data[TLS_KEY]),
        )

    def ca_secret_data(self) -> dict[str, str]:
        assert self.ca is not None
        return _encoded({CA_CERT: self.bundle_pem, TLS_CERT: self.ca.cert_pem, TLS_KEY: self.ca.key_pem})

    def serving_secret_data(self) -> dict[str, str]:
        assert self.serving is not None
        return _encoded({CA_CERT: self.bundle_pem, TLS_CERT: self.serving.cert_pem, TLS_KEY: self.serving.key_pem})

    @property
    def bundle_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.bundle)


def _decoded(data: Mapping[str, str] | None) -> dict[str, bytes]:
    def value(key: str) -> bytes:
        try:
            return base64.b64decode((data or {}).get(key) or "", validate=True)
        except ValueError:
            return b""

    return {key: value(key) for key in (CA_CERT, TLS_CERT, TLS_KEY, LEGACY_CA_KEY)}


def _encoded(values: Mapping[str, bytes]) -> dict[str, str]:
    return {key: base64.b64encode(value).decode() for key, value in values.items()}


def plan(current: Material, settings: Settings, now: datetime.datetime) -> tuple[Material, list[str]]:
    """The material to hold, and why it differs from ``current`` (an empty list: keep it as it is)."""
    reasons: list[str] = []
    ca, bundle = current.ca, [c for c in current.bundle if c.not_valid_after_utc > now]
    if ca is None:
        reasons.append("no usable CA in the CA Secret")
    elif (why := _renewal(ca.certificate, now)) is not None:
        reasons.append(f"the CA {why}")
    if reasons:
        ca = pki.new_ca(f"{settings.service}.{settings.namespace}-ca", settings.ca_lifetime)
        bundle = [*bundle, ca.certificate]  # the previous CA stays trusted until it expires
    assert ca is not None
    if ca.certificate not in bundle:
        bundle.append(ca.certificate)
        reasons.append("the CA was missing from the bundle")
    serving = current.serving
    if reasons:
        serving = None  # a new CA signs a new serving certificate
    elif serving is None:
        reasons.append("no usable serving certificate in the serving Secret")
    elif (why := _foreign(serving.certificate, ca, settings) or _renewal(serving.certificate, now)) is not None:
        reasons.append(f"the serving certificate {why}")
        serving = None
    if serving is None:
        serving = pki.issue(
            ca, settings.service, settings.cert_lifetime, dns_names=settings.dns_names, ips=settings.ips
        )
    return Material(ca, tuple(bundle), serving), reasons


def _renewal(certificate: x509.Certificate, now: datetime.datetime) -> str | None:
    """Why a certificate is due: expired, or less than a third of its lifetime left (the lifetime it was issued
    for: notBefore is backdated by the clock-skew allowance)."""
    start, end = certificate.not_valid_before_utc + pki.CLOCK_SKEW, certificate.not_valid_after_utc
    if end <= now:
        return f"expired at {end.isoformat()}"
    if end - now < (end - start) / 3:
        return f"has less than a third of its lifetime left (until {end.isoformat()})"
    return None


def _foreign(certificate: x509.Certificate, ca: pki.KeyPair, settings: Settings) -> str | None:
    if certificate.issuer != ca.certificate.subject:
        return "was not issued by this CA"
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return "was not signed by this CA"
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "names no DNS names"
    missing = set(settings.dns_names) - set(names.get_values_for_type(x509.DNSName))
    if missing:
        return f"does not name {', '.join(sorted(missing))}"
    return None


def _pair(cert_pem: bytes, key_pem: bytes) -> pki.KeyPair | None:
    """The certificate among ``cert_pem`` (a bundle may hold several) whose public key is the key's."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return None
    public = _spki(key.public_key())
    for certificate in _certificates(cert_pem):
        if _spki(certificate.public_key()) == public:
            return pki.KeyPair.from_pem(certificate.public_bytes(serialization.Encoding.PEM), key_pem)
    return None


def _spki(public_key: object) -> bytes:
    try:
        return public_key.public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (AttributeError, ValueError):
        return b""


def _certificates(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem) if pem else []
    except ValueError:
        return []


def next_due(material: Material) -> datetime.datetime:
    """When the first of the CA and the serving certificate reaches its renewal point."""
    points = []
    for pair in (material.ca, material.serving):
        if pair is not None:
            start = pair.certificate.not_valid_before_utc + pki.CLOCK_SKEW
            end = pair.certificate.not_valid_after_utc
            points.append(end - (end - start) / 3)
    return min(points) if points else datetime.datetime.now(datetime.UTC)

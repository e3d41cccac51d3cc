"""Certificate rotation decisions, with an injected clock: when material is kept, renewed or replaced."""

from __future__ import annotations

import base64
import datetime

from cryptography import x509

from certs import pki
from certs.rotation import Material, Settings, plan

SETTINGS = Settings(
    "wukong-webhook", "wukong-system", datetime.timedelta(days=30), datetime.timedelta(days=9), ips=("127.0.0.1",)
)


def at(days: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)


def fresh() -> Material:
    material, reasons = plan(Material(None, (), None), SETTINGS, at(0))
    assert reasons == ["no usable CA in the CA Secret"]
    return material


def test_an_empty_secret_gets_a_ca_and_a_serving_certificate_for_the_service():
    material = fresh()
    assert material.bundle == (material.ca.certificate,)
    names = material.serving.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "wukong-webhook.wukong-system.svc" in names.get_values_for_type(x509.DNSName)
    again = Material.from_secrets(material.ca_secret_data(), material.serving_secret_data())
    assert (again.ca_secret_data(), again.serving_secret_data()) == (
        material.ca_secret_data(),
        material.serving_secret_data(),
    )


def test_good_material_is_kept():
    material = fresh()
    assert plan(material, SETTINGS, at(1)) == (material, [])


def test_the_serving_certificate_is_renewed_with_a_third_of_its_lifetime_left_and_the_ca_is_kept():
    material = fresh()
    renewed, reasons = plan(material, SETTINGS, at(6.5))
    assert reasons and reasons[0].startswith("the serving certificate has less than a third of its lifetime left")
    assert renewed.ca == material.ca and renewed.bundle == material.bundle
    assert renewed.serving.certificate.serial_number != material.serving.certificate.serial_number


def test_a_new_ca_joins_the_bundle_beside_the_old_one_which_leaves_when_it_expires():
    material = fresh()
    switched, reasons = plan(material, SETTINGS, at(21))
    assert reasons[0].startswith("the CA has less than a third")
    assert switched.bundle == (material.ca.certificate, switched.ca.certificate)
    assert switched.serving.certificate.issuer == switched.ca.certificate.subject
    later, _ = plan(switched, SETTINGS, at(31))  # the old CA expired
    assert material.ca.certificate not in later.bundle


def test_expired_foreign_or_unparseable_material_is_replaced_never_kept():
    material = fresh()
    _, expired = plan(material, SETTINGS, at(40))
    assert expired[0].startswith("the CA expired")
    other_ca = pki.new_ca("someone-else", datetime.timedelta(days=30))
    foreign = Material(material.ca, material.bundle, pki.issue(other_ca, "x", datetime.timedelta(days=9)))
    replaced, reasons = plan(foreign, SETTINGS, at(1))
    assert reasons == ["the serving certificate was not issued by this CA"]
    assert replaced.serving.certificate.issuer == material.ca.certificate.subject
    wrong_names = Material(material.ca, material.bundle, pki.issue(material.ca, "x", datetime.timedelta(days=9)))
    assert plan(wrong_names, SETTINGS, at(1))[1] == ["the serving certificate names no DNS names"]
    garbage = {"tls.crt": "bm90IGEgY2VydA==", "tls.key": "%%%", "ca.crt": "", "ca.key": ""}
    assert plan(Material.from_secrets(garbage, garbage), SETTINGS, at(0))[1] == ["no usable CA in the CA Secret"]


def test_the_ca_key_is_never_in_the_serving_secret():
    material = fresh()
    serving = material.serving_secret_data()
    assert sorted(serving) == ["ca.crt", "tls.crt", "tls.key"]
    assert base64.b64decode(serving["tls.key"]) == material.serving.key_pem
    assert base64.b64encode(material.ca.key_pem).decode() not in serving.values()
    assert base64.b64decode(material.ca_secret_data()["tls.key"]) == material.ca.key_pem


def test_a_ca_kept_in_the_serving_secret_by_an_earlier_release_is_taken_up_as_it_is():
    material = fresh()
    legacy = {**material.serving_secret_data(), "ca.key": base64.b64encode(material.ca.key_pem).decode()}
    moved = Material.from_secrets(None, legacy)
    assert plan(moved, SETTINGS, at(1)) == (moved, [])  # the same CA and certificate: nothing renewed
    assert moved.ca_secret_data() == material.ca_secret_data()
    assert "ca.key" not in moved.serving_secret_data()


def test_the_ca_secret_wins_over_a_leftover_key_in_the_serving_secret():
    material, other = fresh(), fresh()
    leftover = {**material.serving_secret_data(), "ca.key": base64.b64encode(other.ca.key_pem).decode()}
    read = Material.from_secrets(material.ca_secret_data(), leftover)
    assert (read.ca.cert_pem, read.ca.key_pem) == (material.ca.cert_pem, material.ca.key_pem)

"""Certificate rotation decisions, with an injected clock: when material is kept, renewed or replaced."""

from __future__ import annotations

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
    assert reasons == ["no usable CA in the Secret"]
    return material


def test_an_empty_secret_gets_a_ca_and_a_serving_certificate_for_the_service():
    material = fresh()
    assert material.bundle == (material.ca.certificate,)
    names = material.serving.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "wukong-webhook.wukong-system.svc" in names.get_values_for_type(x509.DNSName)
    assert Material.from_secret_data(material.secret_data()).secret_data() == material.secret_data()


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
    garbage = Material.from_secret_data({"tls.crt": "bm90IGEgY2VydA==", "tls.key": "%%%", "ca.crt": "", "ca.key": ""})
    assert plan(garbage, SETTINGS, at(0))[1] == ["no usable CA in the Secret"]

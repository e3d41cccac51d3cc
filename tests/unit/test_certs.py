import datetime
import stat

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certs import pki
from certs.cli import main


def test_generate_writes_a_ca_and_serving_pair_with_private_keys_0600(tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--service",
                "wukong-webhook",
                "--namespace",
                "wukong-system",
                "--out-dir",
                str(tmp_path),
                "--dns",
                "webhook.example",
                "--ip",
                "127.0.0.1",
            ]
        )
        == 0
    )
    for name, mode in {"ca.crt": 0o644, "ca.key": 0o600, "tls.crt": 0o644, "tls.key": 0o600}.items():
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    cert = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "wukong-webhook",
        "wukong-webhook.wukong-system",
        "wukong-webhook.wukong-system.svc",
        "wukong-webhook.wukong-system.svc.cluster.local",
        "webhook.example",
    ]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)


def test_an_existing_ca_is_reused(tmp_path):
    args = ["generate", "--service", "s", "--namespace", "n"]
    main([*args, "--out-dir", str(tmp_path / "a")])
    main(
        [
            *args,
            "--out-dir",
            str(tmp_path / "b"),
            "--ca-cert",
            str(tmp_path / "a/ca.crt"),
            "--ca-key",
            str(tmp_path / "a/ca.key"),
        ]
    )
    assert (tmp_path / "a/ca.crt").read_bytes() == (tmp_path / "b/ca.crt").read_bytes()
    assert not (tmp_path / "b/ca.key").exists()


def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--service",
                "s",
                "--namespace",
                "n",
                "--out-dir",
                str(tmp_path),
                "--ca-cert",
                str(tmp_path / "ca.crt"),
            ]
        )
        == 2
    )
    assert "--ca-cert and --ca-key go together" in capsys.readouterr().err


def test_rsa_and_validity_options():
    ca = pki.new_ca("ca", datetime.timedelta(days=2), pki.KeyAlgorithm.RSA_2048)
    leaf = pki.issue(ca, "leaf", datetime.timedelta(days=30), algorithm=pki.KeyAlgorithm.RSA_2048)
    assert isinstance(leaf.key, rsa.RSAPrivateKey)
    assert leaf.certificate.not_valid_after_utc <= ca.certificate.not_valid_after_utc  # never outlives its CA


def test_client_certificates_carry_user_and_groups():
    ca = pki.new_ca("ca", datetime.timedelta(days=1))
    admin = pki.issue(
        ca, "admin", datetime.timedelta(days=1), usages=[pki.Usage.CLIENT], organizations=["system:masters"]
    )
    subject = admin.certificate.subject.rfc4514_string()
    assert subject == "O=system:masters,CN=admin"

"""The standing red team: every bypass of a WukongPolicy or of the reconciler's trust found so far, and its
variants, judged through the decision code (``wukong.policy.evaluate``, ``admission.decide``), the offline checker
(``webhook.check``, what ``wukong-webhook check`` runs), which must agree with the webhook and never raise, and the
reconciler's ``plan()``. A new finding becomes a test here."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import networks, planning, status, volumes
from reconciler.observation import Observed
from reconciler.planning import Create, Expand
from reconciler.vm import virtual_machine
from tests import bodies
from tests.builders import CLASSES, disk, facts, wukong
from webhook import admission
from webhook.admission import Endpoint
from webhook.app import StaticFacts, WebhookConfig, create_app
from webhook.check import check
from webhook.cli import main
from webhook.facts import ClusterFacts, FactsUnavailable
from wukong import api
from wukong.image import ImageError, parse_image
from wukong.policy import Policy, Scope, Violation, evaluate
from wukong.quantity import QuantityError, parse
from wukong.spec import Disk, Network, WukongSpec

NS = "team-a"


def policy(name: str = "team-limits", action: str = "deny", **sections: Any) -> Policy:
    spec = {"namespaceSelector": {}, "enforcementAction": action, **sections}
    return Policy.from_object({"metadata": {"name": name}, "spec": spec})


def judged(policies: list[Policy], new: dict, old: dict | None = None) -> list[Violation]:
    return evaluate(policies, "default", new, old)


def checked(policies: list[Policy], new: dict, old: dict | None = None) -> list[str]:
    """The checker's field errors, as kubectl prints each."""
    result = check(new, old, ClusterFacts.of(CLASSES, policies=policies))
    assert result.allowed == (not result.errors)
    return [str(error) for error in result.errors]


def decided(new: dict, old: dict | None = None, policies: tuple[Policy, ...] = ()) -> admission.Decision:
    """The validating webhook's verdict, as the API server would ask for it (and the checker does)."""
    for obj in (new, old):
        if obj is not None:
            obj["metadata"]["namespace"] = NS
    facts = ClusterFacts.of(CLASSES, None, list(policies))
    return admission.decide(bodies.review(new, old)["request"], Endpoint.VALIDATE, facts)


def refusals(decision: admission.Decision) -> list[str]:
    """``path: message`` of each field error, as kubectl prints them (``Forbidden:`` left out of policy ones)."""
    return [str(error).replace(": Forbidden: ", ": ", 1) for error in decision.errors]


# Image sources ---------------------------------------------------------------------------------------------------
SHA256 = "0123456789abcdef" * 4
SHA512 = SHA256 * 2


def imaged(image: Any, **spec: Any) -> dict:
    return wukong(disk("system", "20Gi", boot=True, image=image), **spec)


@pytest.mark.parametrize(
    ("source", "image", "allowed"),
    [
        ("registry.example.com", f"registry.example.com:31337/x@sha256:{SHA256}", False),
        ("registry.example.com", f"REGISTRY.EXAMPLE.COM:31337/x@sha256:{SHA256}", False),
        ("registry.example.com", f"Registry.Example.Com/x@sha256:{SHA256}", True),  # the same host, in DNS
        ("REGISTRY.example.com", f"registry.example.com/x@sha256:{SHA256}", True),
        ("registry.example.com", f"registry.example.com:443/x@sha256:{SHA256}", False),  # a port names a registry
        ("registry.example.com:5000", f"registry.example.com/x@sha256:{SHA256}", False),
        ("registry.example.com:5000", f"registry.example.com:05000/x@sha256:{SHA256}", True),
        ("registry.example.com/team", f"registry.example.com:31337/team/x@sha256:{SHA256}", False),
        ("registry.example.com/team", f"registry.example.com/team/x@sha256:{SHA256}", True),
        ("registry.example.com/team", f"registry.example.com/teamevil/x@sha256:{SHA256}", False),
        ("registry.example.com/team", f"registry.example.com/other/team/x@sha256:{SHA256}", False),
        ("registry.example.com", f"registry.example.com.evil.com/x@sha256:{SHA256}", False),
        ("registry.example.com", f"registry.example.comevil/x@sha256:{SHA256}", False),
        ("registry.example.com", f"evil.com/registry.example.com/x@sha256:{SHA256}", False),
        ("registry.example.com", f"docker://registry.example.com/x@sha256:{SHA256}", True),
        ("docker://registry.example.com", f"registry.example.com/x@sha256:{SHA256}", True),
        ("registry.example.com", f"https://registry.example.com/x@sha256:{SHA256}", False),
        ("docker.io", f"index.docker.io/library/x@sha256:{SHA256}", True),
        ("docker.io", f"docker.io:443/library/x@sha256:{SHA256}", False),
        ("docker.io", f"fedora@sha256:{SHA256}", True),
        ("fedora", f"docker.io/library/fedora@sha256:{SHA256}", True),
        ("fedora", f"registry.example.com/library/fedora@sha256:{SHA256}", False),
        ("[::1]:5000", f"[0:0::1]:5000/x@sha256:{SHA256}", True),
        ("[::1]:5000", f"[::1]:5001/x@sha256:{SHA256}", False),
        ("registry.example.com/x@sha256:" + SHA256, f"registry.example.com/x@sha256:{SHA256}", True),
        ("registry.example.com/x@sha256:" + SHA256, f"registry.example.com/x@sha256:{'f' * 64}", False),
        ("registry.example.com:99999", f"registry.example.com:99999/x@sha256:{SHA256}", False),  # no such port
    ],
)
def test_a_registry_prefix_allows_its_own_host_port_and_path_only(source, image, allowed):
    limits = [policy(images={"allowedSources": [source], "requireDigest": True})]
    found = judged(limits, imaged(image))
    errors = checked(limits, imaged(image))
    if allowed:
        assert (found, errors) == ([], [])
    else:
        # an https URL is also unpinned; [] where validation refuses the image before any policy
        assert [v.rule for v in found][:1] in (["images.allowedSources"], [])
        assert errors and all(e.startswith("spec.disks[0].image: ") for e in errors)


def test_a_registry_on_another_port_is_refused_with_the_sources_allowed():
    limits = [policy("p", images={"allowedSources": ["registry.example.com"]})]
    image = "registry.example.com:31337/x:40"
    assert checked(limits, imaged(image)) == [
        f'spec.disks[0].image: Forbidden: image "docker://{image}" is not from a source policy "p" allows in '
        'namespace "default" (allowed: "registry.example.com")'
    ]


@pytest.mark.parametrize(
    "image",
    [
        f"quay.io/x@md5:{SHA256[:32]}",
        f"quay.io/x@sha1:{SHA256[:40]}",
        f"quay.io/x@blake3:{SHA256}",
        f"quay.io/x@SHA256:{SHA256}",
        f"quay.io/x@sha256:{SHA256.upper()}",
        f"quay.io/x@sha256:{SHA256[:63]}",
        f"quay.io/x@sha256:{SHA256}0",
        f"quay.io/x@sha256:{SHA256[:32]}",
        f"quay.io/x@sha512:{SHA256}",
        f"quay.io/x@sha512:{SHA512.upper()}",
        f"quay.io/x@sha256:{SHA256[:-1]}g",
        f"quay.io/x@sha256:{SHA256}@sha256:{SHA256}",
        f"quay.io/x@@sha256:{SHA256}",
        f"quay.io/x@sha256:{SHA256} ",
        f"quay.io/x@sha256:{SHA256}\n",
        f"quay.io/x@sha256+evil:{SHA256}",
    ],
)
def test_a_digest_the_runtime_would_refuse_is_a_field_error_of_the_image(image):
    for limits in ([], [policy(images={"requireDigest": True})]):
        assert judged(limits, imaged(image)) == []  # left to validation
        (error,) = checked(limits, imaged(image))
        assert error.startswith("spec.disks[0].image: Invalid value: ")


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        (f"quay.io/x@sha256:{SHA256}", True),
        (f"quay.io/x@sha512:{SHA512}", True),
        (f"docker://quay.io/x@sha256:{SHA256}", True),
        (f"quay.io/x@sha384:{SHA256}{SHA256[:32]}", False),  # the runtime takes it; pinning asks sha256/sha512
        ("quay.io/x:40", False),
        ("quay.io/x", False),
        ("https://images.example.com/x.img", False),
    ],
)
def test_required_digests_are_sha256_or_sha512_alone(image, pinned):
    limits = [policy(images={"requireDigest": True})]
    assert [v.rule for v in judged(limits, imaged(image))] == ([] if pinned else ["images.requireDigest"])
    assert len(checked(limits, imaged(image))) == (0 if pinned else 1)
    assert judged([policy(images={"requireDigest": False})], imaged(image)) == []


def test_a_tag_beside_a_digest_is_refused_saying_to_drop_the_tag():
    image = f"quay.io/x:40@sha256:{SHA256}"
    for limits in ([], [policy("p", images={"requireDigest": True})]):
        assert checked(limits, imaged(image)) == [
            f'spec.disks[0].image: Invalid value: "{image}": disk "system": not a supported image: it names tag "40" '
            "beside its digest, which CDI's importer refuses (the digest is what would be pulled; the tag only "
            'misleads a reader); drop ":40"'
        ]


MALFORMED_URLS = [
    "https://[evil/x",
    "https://[evil]/x",
    "http://[::1/x",
    "http://[::1]x/",
    "http://[::1]:/x",
    "http://[zzzz::1]/",
    "http://[fe80::1%25eth0]/x",
    "http://[fe80::1%eth0]/x",
    "http://[::ffff:169.254.169.254%25lo]/",
    "http://[]/",
    "http://host:99999/x",
    "http://host:65536/x",
    "http://host:0/x",
    "http://host:-1/x",
    "http://host:+80/x",
    "http://host:/x",
    "http://host:8o/x",
    "http://host:\u0663/x",  # an Arabic-Indic three
    "http://host:80:80/x",
    "http://host:1e3/x",
    "http://ho st/x",
    "http://host/x y",
    "http://host/\x00",
    "http://host\t/x",
    "http://host/\x7f",
    "http://host/\u0085",
    "http://host\\@evil.example/x",
    "http://%31%30.0.0.1/",
    "http://ex%61mple.com/",
    "http://169.254.169.254%2f/",
    "http://exämple.com/",
    "http://\u212a.example.com/",  # the Kelvin sign, a K after NFKC
    "http://\uff11\uff10.0.0.1/",  # full-width digits
    "http:///x",
    "http://@/x",
    "http://user@/x",
    "http://a..b/",
    "http://./",
    "http://a.b../",
    "http://-a.example.com/",
    "http://a-.example.com/",
    "http://" + "a" * 64 + ".example.com/",
    "http://" + "a." * 127 + "com/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0XA9FEA9FE/",
    "http://0251.0376.0251.0376/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://169.254.43518/",
    "http://169.16629246/",
    "http://127.1/",
    "http://0x7f.1/",
    "http://010.0.0.1/",
    "http://10.0.0.01/",
    "http://1.2.3.256/",
    "http://1.2.3.4.5/",
    "http://169.254.169.254./",
    "http://example.0x10/",
    "http://example.123/",
    "https://",
    "https:/host/x",
    "https:host/x",
]


@pytest.mark.parametrize("image", MALFORMED_URLS)
def test_a_malformed_url_is_a_field_error_of_the_image_never_an_exception(image):
    for limits in ([], [policy(images={"allowedSources": ["https://images.example.com/"]})]):
        assert judged(limits, imaged(image)) == []  # left to validation
        (error,) = checked(limits, imaged(image))
        assert error.startswith("spec.disks[0].image: Invalid value: ")


def test_a_malformed_os_image_is_a_field_error_of_os_image():
    errors = checked([], wukong(disk("system", "20Gi", boot=True), osImage="https://[evil/x"))
    assert any(e.startswith("spec.osImage: Invalid value: ") for e in errors), errors


def test_the_checker_prints_a_malformed_url_as_kubectl_would(tmp_path, capsys):
    manifest = tmp_path / "wukong.yaml"
    manifest.write_text(yaml.safe_dump(imaged("https://[evil/x")))
    classes = ["--default-storage-class", "longhorn"]
    code = main(["check", *classes, "--policies", str(_policy_file(tmp_path)), str(manifest)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert 'The Wukong "vm1" is invalid: spec.disks[0].image: Invalid value: "https://[evil/x"' in err
    assert "Traceback" not in err


def _policy_file(tmp_path) -> Any:
    path = tmp_path / "policy.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "vm.novasphere.dev/v1alpha1",
                "kind": "WukongPolicy",
                "metadata": {"name": "images"},
                "spec": {"namespaceSelector": {}, "images": {"allowedSources": ["https://images.example.com/"]}},
            }
        )
    )
    return path


INSIDE = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://kubernetes.default.svc/api/v1/secrets",
    "http://10.96.0.10:9153/metrics",
    "https://kubernetes.default.svc./api",
    "https://KUBERNETES.DEFAULT.SVC.CLUSTER.LOCAL/api",
    "https://kubernetes.default.svc.cluster.local./api",
    "https://kubernetes/api",
    "https://kubernetes./api",
    "https://kubernetes.default/api",
    "https://Kubernetes.Default/api",
    "http://prometheus.monitoring.svc/metrics",
    "http://prometheus.monitoring.svc.corp.example/metrics",  # a cluster domain other than cluster.local
    "http://web-0.web.shop.svc.cluster.local/",  # a headless service's pod
    "http://10-0-0-1.shop.pod.cluster.local/",
    "http://10-0-0-1.shop.pod/",
    "http://localhost:10250/pods",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/computeMetadata/v1/",
    "http://printer.local/",
    "http://127.0.0.1:10255/pods",
    "http://127.255.255.254/",
    "http://0.0.0.0:10250/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # shared address space, where many pod networks live
    "http://169.254.0.1/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.0.170/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fd00:10:96::a]/",
    "http://[fec0::1]/",  # site-local, deprecated but routed by some
    "http://[ff02::1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::FFFF:10.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::1]/",
    "https://x@10.0.0.1/",
    "https://user:password@169.254.169.254/",
    "https://images.example.com@kubernetes.default.svc/",
    "http://169.254.169.254:80/",
    "https://169.254.169.254:443/",
    "http://169.254.169.254/?q=http://images.example.com/",
    "http://169.254.169.254#@images.example.com/",
]


@pytest.mark.parametrize("image", INSIDE)
def test_a_url_inside_the_cluster_or_the_node_is_refused_with_no_policy_at_all(image):
    (found,) = judged([], imaged(image))
    assert (found.policy, found.action, found.rule, found.path) == ("", "deny", "images.allowedSources", found.path)
    assert found.path == "spec.disks[0].image"
    (error,) = checked([], imaged(image))
    assert error.startswith("spec.disks[0].image: Forbidden: ") and "from inside the cluster" in error


@pytest.mark.parametrize("image", INSIDE[:6])
def test_a_url_inside_the_cluster_is_refused_where_policies_name_other_sources(image):
    limits = [policy(images={"allowedSources": ["https://images.example.com/", "quay.io"]})]
    (found,) = judged(limits, imaged(image))
    assert (found.policy, found.rule) == ("", "images.allowedSources")
    assert "allowed here: " in found.detail


def test_the_refusal_says_why_and_how_an_admin_allows_it():
    assert checked([], imaged("http://169.254.169.254/latest/meta-data/")) == [
        'spec.disks[0].image: Forbidden: image "http://169.254.169.254/latest/meta-data/" would be fetched by '
        "CDI's importer from inside the cluster: 169.254.169.254 is a link-local address (the node's, and cloud "
        'metadata services\'); no WukongPolicy on namespace "default" allows it: a cluster admin allows such a '
        "host by naming it in images.allowedSources of a WukongPolicy selecting this namespace"
    ]


@pytest.mark.parametrize(
    ("source", "image", "allowed"),
    [
        ("http://10.0.0.5/images/", "http://10.0.0.5/images/fedora.img", True),
        ("http://10.0.0.5/images/", "http://10.0.0.5/other/fedora.img", False),
        ("http://10.0.0.5/images/", "http://10.0.0.5:8080/images/fedora.img", False),
        ("http://10.0.0.5/images/", "https://10.0.0.5/images/fedora.img", False),
        ("http://10.0.0.5/images/", "http://10.0.0.6/images/fedora.img", False),
        ("http://10.0.0.5/images/", "http://10.0.0.5/images/../../latest/meta-data", False),
        ("http://images.shop.svc.cluster.local/", "http://IMAGES.shop.svc.cluster.local./x.img", True),
        ("http://images.shop.svc.cluster.local/", "http://images.shop.svc/x.img", False),
        ("http://[fd00::5]/", "http://[fd00:0::5]/x.img", True),
        ("10.0.0.5", "http://10.0.0.5/x.img", False),  # a registry prefix names no URL
        ("http://", "http://10.0.0.5/x.img", False),
    ],
)
def test_a_host_inside_the_cluster_is_allowed_only_where_a_policy_names_it(source, image, allowed):
    limits = [policy(images={"allowedSources": [source]})]
    found = judged(limits, imaged(image))
    assert [(v.policy, v.rule) for v in found] == ([] if allowed else [("", "images.allowedSources")])


def test_a_host_one_policy_names_is_still_refused_by_another_policy_s_list():
    named = policy("a-internal", images={"allowedSources": ["http://10.0.0.5/"]})
    other = policy("b-public", images={"allowedSources": ["https://images.example.com/"]})
    found = judged([named, other], imaged("http://10.0.0.5/x.img"))
    assert [(v.policy, v.rule) for v in found] == [("b-public", "images.allowedSources")]


@pytest.mark.parametrize(
    "image",
    [
        "https://images.example.com/fedora.img",
        "http://1.2.3.4/fedora.img",
        "http://[2606:4700::1]/fedora.img",
        "https://svc.example.com/x.img",  # svc or pod as one of the first two labels is not Kubernetes'
        "https://pod.svc.example.com/x.img",
        "https://images.example.com.:8443/x.img",
        "https://images.example.com/x.img?from=http://169.254.169.254/",
        "https://images.example.com/169.254.169.254/latest/meta-data/",
        "10.96.0.5:5000/team/fedora:40",  # a registry speaks only the registry protocol: not judged as a URL
        "localhost:5000/team/fedora:40",
    ],
)
def test_a_public_url_and_any_registry_reference_pass_the_built_in_rule(image):
    assert judged([], imaged(image)) == []
    assert checked([], imaged(image)) == []


def test_an_unchanged_image_is_not_judged_again_on_update():
    old = imaged("http://10.0.0.5/x.img")
    new = imaged("http://10.0.0.5/x.img", cpu=4)
    assert judged([], new, old) == []
    assert [v.rule for v in judged([], imaged("http://10.0.0.6/x.img"), old)] == ["images.allowedSources"]


def test_every_disk_and_the_os_image_are_judged_each_at_its_own_path():
    new = wukong(
        disk("system", "20Gi", boot=True, image="http://10.0.0.1/a"),
        disk("data", "20Gi"),
        disk("scratch", "20Gi", image="https://kubernetes.default.svc/b"),
    )
    assert [v.path for v in judged([], new)] == ["spec.disks[0].image", "spec.disks[2].image"]
    assert [v.path for v in judged([], wukong(disk("system", "20Gi", boot=True), osImage="http://[::1]/x"))] == [
        "spec.osImage"
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=80) | st.text(max_size=80).map(lambda s: f"https://{s}") | st.text().map(lambda s: f"http://[{s}")
)
def test_any_image_string_parses_or_raises_image_error_and_the_checker_never_raises(image):
    with contextlib.suppress(ImageError):
        parse_image(image)
    for error in checked([policy(images={"allowedSources": ["quay.io"], "requireDigest": True})], imaged(image)):
        assert error.startswith("spec.disks[0].image: ")


@pytest.mark.parametrize("image", ["https://[evil/x", f"quay.io/x:40@sha256:{SHA256}", "http://0xa9fea9fe/"])
def test_the_reconciler_makes_no_data_volume_for_an_image_stored_past_the_webhook_and_says_why(image):
    stored = imaged(image, name="vm1")
    stored["spec"]["disks"][0]["storageClassName"] = "longhorn"
    stored["metadata"].update(uid="0f0f0f0f-1111-2222-3333-444444444444", generation=1, resourceVersion="1")
    observed = Observed(stored, storage_classes={c.name: c for c in CLASSES})
    assert not [a for a in planning.plan(observed) if isinstance(a, Create) and a.kind == "DataVolume"]
    degraded = next(
        c for c in status.compute(observed, "2026-11-25T12:00:00Z")["conditions"] if c["type"] == "Degraded"
    )
    assert (degraded["status"], degraded["reason"]) == ("True", "ImageInvalid")
    assert degraded["message"].startswith("disk system: image ") and "correct the disk's image" in degraded["message"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(max_size=40)
        | st.text(max_size=40).map(lambda s: f"https://{s}")
        | st.text(max_size=40).map(lambda s: f"registry.example.com{s}"),
        max_size=4,
    )
)
def test_any_allowed_sources_judge_without_raising(sources):
    limits = [policy(images={"allowedSources": sources})]
    for image in (f"registry.example.com:5000/x@sha256:{SHA256}", "https://images.example.com/x", "http://10.0.0.1/"):
        assert all(v.rule == "images.allowedSources" for v in judged(limits, imaged(image)))


# References and ownership ---------------------------------------------------------------------------------------
def networked(*networks: dict) -> dict:
    obj = wukong(disk("system", "20Gi", storageClassName="longhorn", boot=True))
    obj["spec"]["networks"] = list(networks)
    return obj


SRIOV_POOL = policy(
    networks={"allowedTypes": ["sriov"], "hostNetworks": [{"type": "sriov", "resourceName": "intel.com/vf_pool_a"}]}
)


@pytest.mark.parametrize(
    "resource",
    ["nvidia.com/gpu", "intel.com/vf_pool_b", "INTEL.com/vf_pool_a", "intel.com/VF_POOL_A", "intel.com/vf_pool_a.x"],
    ids=["a-gpu", "another-teams-vf-pool", "upper-case-domain", "upper-case-name", "a-longer-name"],
)
def test_an_sriov_resource_the_policy_does_not_name_is_refused(resource):
    decision = decided(networked({"name": "fast", "type": "sriov", "resourceName": resource}), policies=(SRIOV_POOL,))
    assert not decision.allowed
    causes = [c for c in refusals(decision) if c.startswith("spec.networks[0].resourceName")]
    assert any("is a device resource the VM's pod would request" in c for c in causes), causes


def test_an_sriov_resource_the_policy_names_is_allowed():
    decision = decided(
        networked({"name": "fast", "type": "sriov", "resourceName": "intel.com/vf_pool_a"}), policies=(SRIOV_POOL,)
    )
    assert decision.allowed, refusals(decision)


def test_allowed_types_alone_never_allow_an_sriov_resource():
    only_types = policy(networks={"allowedTypes": ["sriov"]})
    decision = decided(
        networked({"name": "fast", "type": "sriov", "resourceName": "nvidia.com/gpu"}), None, (only_types,)
    )
    assert refusals(decision) == [
        'spec.networks[0].resourceName: host network "sriov nvidia.com/gpu" is a device resource the VM\'s pod would '
        'request (a VF pool, or any other device); no WukongPolicy on namespace "team-a" allows it: a cluster admin '
        "allows it with networks.hostNetworks: [{type: sriov, resourceName: nvidia.com/gpu}] in a WukongPolicy "
        "selecting this namespace, or name an existing NetworkAttachmentDefinition with nadName"
    ]


def test_the_checker_refuses_a_gpu_named_as_an_sriov_resource(tmp_path, capsys):
    """The offline checker GitOps pipelines trust gives the webhook's verdict, on the finding as it was reported."""
    manifests, policies = tmp_path / "wukong.yaml", tmp_path / "policy.yaml"
    gpu = networked({"name": "fast", "type": "sriov", "resourceName": "nvidia.com/gpu"})
    gpu["metadata"]["namespace"] = NS
    manifests.write_text(yaml.safe_dump(gpu))
    only_types = {"apiVersion": api.API_VERSION, "kind": api.POLICY_KIND, "metadata": {"name": "red-team"}}
    only_types["spec"] = {"namespaceSelector": {}, "networks": {"allowedTypes": ["sriov"]}}
    policies.write_text(yaml.safe_dump(only_types))
    assert main(["check", "--default-storage-class", "longhorn", "--policies", str(policies), str(manifests)]) == 1
    assert 'spec.networks[0].resourceName: Forbidden: host network "sriov nvidia.com/gpu"' in capsys.readouterr().err


@pytest.mark.parametrize(
    ("network", "said"),
    [
        (
            {"type": "sriov", "bridgeName": "intel.com/vf_pool_a"},
            'spec.networks[0].bridgeName: Invalid value: "intel.com/vf_pool_a": bridgeName names a Linux or Open '
            "vSwitch bridge; an sriov network names its device plugin resource in resourceName",
        ),
        (
            {"type": "macvlan", "bridgeName": "eth1"},
            'spec.networks[0].bridgeName: Invalid value: "eth1": bridgeName names a Linux or Open vSwitch bridge; '
            "a macvlan network names the host interface it enslaves in master",
        ),
        (
            {"type": "bridge", "resourceName": "intel.com/vf_pool_a"},
            'spec.networks[0].resourceName: Invalid value: "intel.com/vf_pool_a": only for sriov networks; a bridge '
            "network names its Linux bridge in bridgeName",
        ),
        (
            {"type": "sriov", "resourceName": "intel.com/vf_pool_a", "master": "eth1"},
            'spec.networks[0].master: Invalid value: "eth1": only for macvlan networks; a sriov network names its '
            "device plugin resource in resourceName",
        ),
        (
            {"type": "sriov"},
            "spec.networks[0].resourceName: Invalid value: null: required for sriov: the device plugin's resource, "
            "like intel.com/sriov_netdevice",
        ),
        (
            {"type": "sriov", "resourceName": "kubernetes.io/hugepages-2Mi"},
            'spec.networks[0].resourceName: Invalid value: "kubernetes.io/hugepages-2Mi": kubernetes.io resources '
            "are Kubernetes' own, not a device plugin's; name the SR-IOV resource",
        ),
        (
            {"type": "sriov", "resourceName": "cpu"},
            'spec.networks[0].resourceName: Invalid value: "cpu": must be an extended resource name, '
            "<domain>/<name>, like intel.com/sriov_netdevice",
        ),
    ],
    ids=[
        "sriov-resource-in-bridge-name",
        "macvlan-master-in-bridge-name",
        "resource-name-on-a-bridge",
        "master-on-sriov",
        "sriov-without-resource",
        "a-kubernetes-io-resource",
        "a-native-resource",
    ],
)
def test_a_field_names_one_thing_and_the_refusal_names_the_right_field(network, said):
    decision = decided(networked({"name": "fast", **network}), policies=(SRIOV_POOL,))
    assert said in refusals(decision)


def test_a_macvlan_or_sriov_network_stored_with_bridge_name_stays_editable_while_that_entry_is_unchanged():
    legacy = networked({"name": "fast", "type": "sriov", "bridgeName": "intel.com/vf_pool_a"})
    legacy_pool = policy(networks={"hostNetworks": [{"type": "sriov", "interface": "intel.com/vf_pool_a"}]})
    edited = copy.deepcopy(legacy)
    edited["spec"]["cpu"] = 2
    assert decided(edited, copy.deepcopy(legacy), (legacy_pool,)).allowed
    moved = copy.deepcopy(legacy)
    moved["spec"]["networks"][0]["bridgeName"] = "nvidia.com/gpu"
    assert any(c.startswith("spec.networks[0].bridgeName") for c in refusals(decided(moved, legacy, (legacy_pool,))))


# The reconciler: a volume is a Wukong's by what only the reconciler writes, and is attached only when it fits.
WUKONG_UID = "0f0f0f0f-1111-2222-3333-444444444444"
FEDORA = "docker://quay.io/containerdisks/fedora:40"
SYSTEM = {"name": "system", "size": "80Gi", "storageClassName": "longhorn", "boot": True, "image": FEDORA}


def live(image: str = FEDORA, uid: str = WUKONG_UID) -> dict:
    obj = wukong({**SYSTEM, "image": image})
    obj["metadata"].update(uid=uid, generation=3, resourceVersion="10")
    return obj


def imported(obj: dict, source: dict | None = None) -> tuple[dict, dict]:
    """The DataVolume made for the Wukong's system disk (its source replaced by ``source``), imported, and the claim
    CDI made for it, bound."""
    dv = volumes.data_volume(obj, WukongSpec.from_object(obj).disks[0], delete_with_owner=False)
    if source is not None:
        dv["spec"]["source"] = source
    dv["metadata"].update(uid="uid-dv", resourceVersion="6")
    dv["status"] = {"phase": "Succeeded", "progress": "100.0%", "claimName": dv["metadata"]["name"]}
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": dv["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "uid": "uid-pvc",
            "resourceVersion": "5",
            "labels": dict(dv["metadata"]["labels"]),
            "annotations": dict(dv["metadata"]["annotations"]),
            "ownerReferences": [{"kind": "DataVolume", "uid": "uid-dv", "controller": True}],
        },
        "spec": {"resources": {"requests": {"storage": "80Gi"}}, "storageClassName": "longhorn", "volumeName": "pv-1"},
        "status": {"phase": "Bound", "capacity": {"storage": "80Gi"}},
    }
    return dv, pvc


def observed(obj: dict, dv: dict, pvc: dict, vm: dict | None = None) -> Observed:
    name = dv["metadata"]["name"]
    by_name = {c.name: c for c in CLASSES}
    return Observed(obj, pvcs={name: pvc}, data_volumes={name: dv}, vm=vm, storage_classes=by_name)


def degraded(seen: Observed) -> dict:
    return next(c for c in status.compute(seen, "2026-11-28T00:00:00Z")["conditions"] if c["type"] == "Degraded")


EVIL_SOURCES = [
    pytest.param({"http": {"url": "http://evil.example/quay.io/containerdisks/fedora:40"}}, id="url-holding-the-image"),
    pytest.param({"registry": {"url": "docker://quay.io/containerdisks/fedora:40x"}}, id="a-longer-tag"),
    pytest.param({"registry": {"url": "docker://evil.example/quay.io/containerdisks/fedora:40"}}, id="another-host"),
    pytest.param({"http": {"url": "docker://quay.io/containerdisks/fedora:40"}}, id="the-url-under-another-kind"),
    pytest.param(
        {"registry": {"url": "docker://quay.io/containerdisks/fedora:40", "certConfigMap": "mitm-ca"}},
        id="the-url-with-a-certificate-of-the-tenants",
    ),
    pytest.param(
        {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}, "http": {"url": "http://evil.example/x"}},
        id="two-sources",
    ),
    pytest.param({"registry": {"url": "docker://QUAY.IO/containerdisks/fedora:40"}}, id="upper-case-host"),
]


@pytest.mark.parametrize("source", EVIL_SOURCES)
def test_a_retained_data_volume_from_another_source_is_never_taken_back(source):
    """A volume released by an earlier Wukong of the name fits only when its source is exactly the disk's: a
    substring test passed ``http://evil.example/quay.io/containerdisks/fedora:40`` for the containerdisk."""
    dv, pvc = imported(live(), source)
    for obj in (dv, pvc):  # what the release left
        obj["metadata"]["labels"].pop(api.WUKONG_LABEL)
        obj["metadata"]["labels"][api.RELEASED_FROM_LABEL] = "vm1"
        obj["metadata"]["annotations"].pop(api.WUKONG_UID_ANNOTATION)
    seen = observed(live(uid="a-new-wukong-of-the-name"), dv, pvc)
    actions = planning.plan(seen)
    assert not [a for a in actions if isinstance(a, (planning.Adopt, planning.Create))], actions
    said = degraded(seen)
    assert said["reason"] == "NameConflict"
    shown = json.dumps(source, sort_keys=True, separators=(",", ":"))
    assert f"it was imported from {shown}, not {FEDORA}; it is left alone" in said["message"]


@pytest.mark.parametrize("vm", [False, True], ids=["before-the-vm", "with-a-vm"])
@pytest.mark.parametrize("source", EVIL_SOURCES)
def test_a_bound_volume_that_does_not_fit_its_disk_is_never_attached_nor_touched(source, vm):
    obj = live()
    dv, pvc = imported(obj, source)
    running = virtual_machine(Observed(obj), None) if vm else None
    if running is not None:
        running["metadata"]["resourceVersion"] = "7"
        running["spec"]["template"]["spec"]["volumes"] = []  # the VM as it was before the disk: nothing to keep
    seen = observed(obj, dv, pvc, running)
    actions = planning.plan(seen)
    assert not [a for a in actions if isinstance(a, (planning.Create, planning.UpdateVM, planning.Replace))], actions
    said = degraded(seen)
    assert said["reason"] == "VolumeImmutable"
    assert "nor is it attached to the VM" in said["message"]


def test_the_data_volume_made_for_a_disk_fits_it_and_is_attached():
    obj = live()
    dv, pvc = imported(obj)
    actions = planning.plan(observed(obj, dv, pvc))
    assert [type(a).__name__ for a in actions] == ["Create"] and actions[0].kind == "VirtualMachine"


@pytest.mark.parametrize(
    ("image", "source"),
    [
        ("quay.io/containerdisks/fedora:40", {"registry": {"url": FEDORA}}),
        ("https://cloud-images.example.com/noble.img", {"http": {"url": "https://cloud-images.example.com/noble.img"}}),
    ],
    ids=["registry", "http"],
)
def test_a_disk_and_the_source_built_for_it_are_compared_whole(image, source):
    disk_ = Disk("system", "80Gi", image=image)
    assert volumes.data_volume_source(disk_) == source
    assert volumes.imports_for({"spec": {"source": source}}, disk_)
    assert not volumes.imports_for({"spec": {"source": {**source, "blank": {}}}}, disk_)
    assert not volumes.imports_for({"spec": "hostile"}, disk_)


# sshKeySecret: a Secret is named only by a user who may read it (the API server's SubjectAccessReview).
class AccessFacts(StaticFacts):
    """Facts from memory, and an API server that answers SubjectAccessReviews from ``readable`` (or is down)."""

    def __init__(self, readable: set[str], down: bool = False) -> None:
        super().__init__(ClusterFacts.of(CLASSES))
        self.readable, self.down, self.asked = readable, down, []

    def may_read_secret(self, user, namespace, name):
        self.asked.append((user.get("username"), tuple(user.get("groups") or ()), namespace, name))
        if self.down:
            raise FactsUnavailable(f"whether you may read it could not be asked ({name}): try again")
        return name in self.readable


def keyed(secret: Any = "web-keys") -> dict:
    obj = wukong(disk("system", "20Gi", storageClassName="longhorn", boot=True))
    obj["metadata"]["namespace"] = NS
    obj["spec"]["sshKeySecret"] = secret
    return obj


def posted(source: AccessFacts, endpoint: str, new: dict, old: dict | None = None) -> dict:
    body = bodies.review(new, old)
    body["request"]["userInfo"] = {"username": "tenant", "groups": ["team-a-devs", "system:authenticated"]}
    reply = create_app(WebhookConfig(facts=source)).test_client().post(f"/{endpoint}", json=body)
    assert reply.status_code == 200, reply.text
    return reply.get_json()["response"]


@pytest.mark.parametrize(
    "secret",
    ["default-token-x7k2p", "web-tls", "other-teams-keys", "web-keys-not-mine"],
    ids=["a-service-account-token", "a-tls-secret", "another-teams-keys", "a-near-name"],
)
def test_a_secret_the_user_may_not_read_is_refused_on_spec_ssh_key_secret(secret):
    source = AccessFacts(readable={"web-keys"})
    answer = posted(source, "validate", keyed(secret))
    assert answer["allowed"] is False
    [cause] = answer["status"]["details"]["causes"]
    assert cause["field"] == "spec.sshKeySecret"
    assert f'you may not read Secret "{secret}" in namespace "team-a" (get secrets)' in cause["message"]
    assert source.asked == [("tenant", ("team-a-devs", "system:authenticated"), NS, secret)], "asked for this user"


def test_a_secret_the_user_may_read_is_allowed():
    assert posted(AccessFacts(readable={"web-keys"}), "validate", keyed())["allowed"] is True


def test_the_question_is_asked_only_for_a_secret_named_anew_and_only_on_the_validating_endpoint():
    source = AccessFacts(readable=set())
    stored = keyed()
    edited = copy.deepcopy(stored)
    edited["spec"]["cpu"] = 2
    assert posted(source, "validate", edited, stored)["allowed"] is True, "named before: its author was asked"
    assert posted(source, "mutate", keyed())["allowed"] is True
    assert source.asked == []
    assert posted(source, "validate", keyed("other"), stored)["allowed"] is False
    assert [name for *_, name in source.asked] == ["other"]


def test_an_api_server_that_cannot_be_asked_refuses_the_request_to_be_retried_never_admits_it():
    answer = posted(AccessFacts(readable={"web-keys"}, down=True), "validate", keyed())
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 503 and "try again" in answer["status"]["message"]


@pytest.mark.parametrize("secret", [7, ["web-keys"], {"name": "x"}, "", "k" * 300], ids=repr)
def test_a_hostile_secret_name_is_a_field_error_never_a_question(secret):
    source = AccessFacts(readable=set())
    answer = posted(source, "validate", keyed(secret))
    assert answer["allowed"] is False
    assert any(c["field"].startswith("spec.sshKeySecret") for c in answer["status"]["details"]["causes"])
    assert source.asked == []


def test_without_an_api_server_the_checker_does_not_judge_whom_a_secret_may_be_read_by():
    assert decided(keyed("default-token-x7k2p")).allowed  # the offline checker: the webhook judges at apply time


@pytest.mark.parametrize(
    ("network", "plugin", "annotations"),
    [
        ({"type": "macvlan", "bridgeName": "eth1"}, {"type": "macvlan", "mode": "bridge", "master": "eth1"}, None),
        ({"type": "macvlan", "master": "eth1"}, {"type": "macvlan", "mode": "bridge", "master": "eth1"}, None),
        (
            {"type": "sriov", "bridgeName": "intel.com/vf_pool_a"},
            {"type": "sriov"},
            {"k8s.v1.cni.cncf.io/resourceName": "intel.com/vf_pool_a"},
        ),
        (
            {"type": "sriov", "resourceName": "intel.com/vf_pool_a"},
            {"type": "sriov"},
            {"k8s.v1.cni.cncf.io/resourceName": "intel.com/vf_pool_a"},
        ),
    ],
    ids=["stored-macvlan", "macvlan", "stored-sriov", "sriov"],
)
def test_a_network_stored_before_its_own_field_existed_is_built_as_it_was(network, plugin, annotations):
    made = networks.network_attachment_definition(live(), Network.from_dict({"name": "fast", **network}))
    config = json.loads(made["spec"]["config"])
    assert {k: v for k, v in config.items() if k in ("type", "mode", "master")} == plugin
    assert made["metadata"].get("annotations") == annotations


# Limits and retention: helpers ------------------------------------------------------------------------------
NAMESPACE = "team-a"
UID = "0f0f0f0f-1111-2222-3333-444444444444"


def limit_policy(name: str = "limits", action: str = "deny", **sections: Any) -> Policy:
    spec = {"namespaceSelector": {}, "enforcementAction": action, **sections}
    return Policy.from_object({"metadata": {"name": name}, "spec": spec})


def said(policies: Policy | list[Policy], new: dict, old: dict | None = None) -> list[str]:
    found = evaluate(policies if isinstance(policies, list) else [policies], NAMESPACE, new, old)
    return [f"{v.path}: {v.detail}" for v in found]


def limit_checked(policies: list[Policy], new: dict, old: dict | None = None) -> list[str]:
    """The offline checker's verdict (mutation, then validation with the policies), as field errors."""
    new, old = copy.deepcopy(new), copy.deepcopy(old)
    for obj in (new, old):
        if obj is not None:
            obj["metadata"]["namespace"] = NAMESPACE
    result = check(new, old, dataclasses.replace(facts(), policies=tuple(policies)))
    return [f"{e.path}: {e.detail}" for e in result.errors]


def vm(*disks: dict, **spec: Any) -> dict:
    return wukong(*disks, **spec)


# Limits and retention ------------------------------------------------------------------------------------------
# The forms the API server's ParseQuantity (so the CRD's CEL isQuantity) accepts or refuses, with their values;
# tests/e2e/test_policy_quantities.py holds the API server to the same table.
QUANTITY_FORMS: list[tuple[str, Any]] = [
    ("16000000000000000000n", 16 * 10**9),
    ("16Gi", 16 * 2**30),
    ("17179869184", 16 * 2**30),
    ("1.6e10", 16 * 10**9),
    ("1.6E10", 16 * 10**9),
    ("1.6e+10", 16 * 10**9),
    ("16e9", 16 * 10**9),
    ("160000000000e-1", 16 * 10**9),
    ("+16G", 16 * 10**9),
    ("0.015625Ti", 16 * 2**30),
    ("16384Mi", 16 * 2**30),
    ("16000000u", 16),
    ("16000m", 16),
    (".5Gi", 2**29),
    ("5.", 5),
    ("-1Gi", -(2**30)),
    ("0", 0),
    ("Gi", 0),
    ("+", 0),
    (".", 0),
    ("16Ei", 2**63 - 1),
    ("1e30", 10**30),
    ("1Gb", None),
    ("1gi", None),
    ("1K", None),
    ("1 Gi", None),
    ("", None),
    ("Pi", None),
    ("e-10", None),
    ("1e", None),
    ("1e2147483648", None),
    ("1e999", 10**999),
    ("1E-999", Fraction(1, 10**9)),
    ("-9.5e+999", -95 * 10**998),
    ("1e1000", None),
    ("1e-1000", None),
    ("1e0001", None),
    ("1e99999", None),
    ("1e999999999", None),
    ("1e-999999999", None),
    ("1e2147483647", None),
    ("0x10", None),
    ("1.2.3", None),
    ("--1", None),
    ("1e1.5", None),
    ("\uff11Gi", None),
]


@pytest.mark.parametrize(("text", "value"), QUANTITY_FORMS, ids=lambda v: repr(v) if isinstance(v, str) else "")
def test_a_policy_quantity_reads_as_the_api_server_reads_it(text, value):
    if value is None:
        with pytest.raises(QuantityError):
            parse(text)
    else:
        assert parse(text).value == value


def test_max_memory_in_nano_units_limits_memory():
    limit = limit_policy(compute={"maxMemory": "16000000000000000000n"})  # 16G, written in nano units
    assert limit.max_memory == parse("16G")
    assert said(limit, vm(disk("a", boot=True), memory="1Ti")) == [
        'spec.memory: 1Ti exceeds 16000000000000000000n, the most memory policy "limits" allows in namespace "team-a"'
    ]
    assert said(limit, vm(disk("a", boot=True), memory="16G")) == []
    assert limit_checked([limit], vm(disk("a", boot=True, storageClassName="longhorn"), memory="1Ti")) != []


@pytest.mark.parametrize(
    ("maximum", "memory", "refused"),
    [
        ("16e9", "16G", False),
        ("16e9", "16000000001", True),
        ("1.6E+10", "15Gi", True),  # 15Gi is 16.1G
        ("0.015625Ti", "16Gi", False),
        ("0.015625Ti", "16385Mi", True),
        ("16384Mi", "17179869184", False),
        ("1e999", "1Ei", False),
        ("16Ei", "8Ei", False),  # 16Ei is capped at 2^63-1, as the API server caps it; 8Ei is 2^63
        ("16Ei", "7Ei", False),
        ("1e-3", "1", True),
        ("-1Gi", "1Mi", True),
        ("0", "1Ki", True),
        ("Gi", "1Ki", True),  # no digits: zero, as the API server reads it
    ],
)
def test_memory_limits_in_every_unit_exponent_and_sign(maximum, memory, refused):
    found = said(limit_policy(compute={"maxMemory": maximum}), vm(disk("a", boot=True), memory=memory))
    assert bool(found) == refused, found


@pytest.mark.parametrize(
    ("section", "field", "value", "rule", "wukong_field", "spec"),
    [
        ("compute", "maxMemory", "16 Gi", "compute.maxMemory", "spec.memory", {"memory": "1Gi"}),
        ("compute", "maxMemory", 17179869184, "compute.maxMemory", "spec.memory", {"memory": "1Gi"}),
        ("compute", "maxCpu", "4", "compute.maxCpu", "spec.cpu", {"cpu": 1}),
        ("compute", "maxCpu", 4.5, "compute.maxCpu", "spec.cpu", {"cpu": 1}),
        ("compute", "maxCpu", True, "compute.maxCpu", "spec.cpu", {"cpu": 1}),
        ("storage", "maxDiskSize", "big", "storage.maxDiskSize", "spec.disks[0].size", {}),
        ("storage", "maxDiskSize", ["1Ti"], "storage.maxDiskSize", "spec.disks[0].size", {}),
        ("storage", "maxTotalSize", "1e2147483648", "storage.maxTotalSize", "spec.disks", {}),
        ("storage", "maxTotalSize", {"size": "1Ti"}, "storage.maxTotalSize", "spec.disks", {}),
        ("storage", "maxDisks", "2", "storage.maxDisks", "spec.disks", {}),
        ("storage", "maxDisks", 2.5, "storage.maxDisks", "spec.disks", {}),
    ],
)
def test_a_limit_that_cannot_be_read_refuses_naming_the_policy_and_its_field(
    section, field, value, rule, wukong_field, spec
):
    broken = limit_policy("broken", **{section: {field: value}})
    found = said(broken, vm(disk("a", "1Gi", boot=True), **spec))
    assert len(found) == 1, found
    assert found[0].startswith(f'{wukong_field}: {rule} of policy "broken" is ')
    assert "cannot be read as a limit" in found[0]


def test_a_limit_that_cannot_be_read_refuses_even_beside_a_readable_one():
    policies = [
        limit_policy("broken", compute={"maxMemory": "lots"}),
        limit_policy("fine", compute={"maxMemory": "1Ti"}),
    ]
    assert [v.policy for v in evaluate(policies, NAMESPACE, vm(disk("a", boot=True), memory="1Gi"))] == ["broken"]


def test_a_warning_policy_whose_limit_cannot_be_read_warns():
    found = evaluate([limit_policy(action="warn", compute={"maxCpu": "8"})], NAMESPACE, vm(disk("a", boot=True)))
    assert [(v.action, v.rule) for v in found] == [("warn", "compute.maxCpu")]


def test_allow_disk_removal_that_is_not_a_boolean_forbids_removal():
    assert limit_policy(storage={"allowDiskRemoval": "yes"}).allow_disk_removal is False
    assert limit_policy(storage={"allowDiskRemoval": True}).allow_disk_removal is True
    assert limit_policy(storage={}).allow_disk_removal is True


def write(path, *documents) -> str:
    path.write_text(yaml.safe_dump_all(documents))
    return str(path)


def policy_document(**spec: Any) -> dict:
    return {
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "WukongPolicy",
        "metadata": {"name": "limits"},
        "spec": {"namespaceSelector": {}, **spec},
    }


def run_checker(capsys, tmp_path, policy_doc: dict, manifest: dict) -> tuple[int, str]:
    policies = write(tmp_path / "policies.yaml", policy_doc)
    manifests = write(tmp_path / "vm.yaml", manifest)
    code = main(["check", "--storage-classes", _classes(tmp_path), "--policies", policies, manifests])
    return code, capsys.readouterr().err


def _classes(tmp_path) -> str:
    return write(
        tmp_path / "classes.yaml",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "longhorn", "annotations": {api.DEFAULT_CLASS_ANNOTATIONS[0]: "true"}},
            "provisioner": "driver.longhorn.io",
            "allowVolumeExpansion": True,
        },
    )


@pytest.mark.parametrize("cpu", [64.0, 5.0, 4.0000000000000001e0 * 2])
def test_a_whole_float_cpu_meets_max_cpu_in_the_checker_as_the_api_server_sends_it(capsys, tmp_path, cpu):
    manifest = vm(disk("system", "10Gi", boot=True), cpu=cpu)
    code, err = run_checker(capsys, tmp_path, policy_document(compute={"maxCpu": 4}), manifest)
    assert code == 1
    assert f'spec.cpu: Forbidden: {int(cpu)} CPUs exceed 4, the most policy "limits" allows' in err


def test_a_cpu_with_a_fraction_is_refused_by_the_checker_as_the_api_server_refuses_it(capsys, tmp_path):
    code, err = run_checker(
        capsys, tmp_path, policy_document(compute={"maxCpu": 4}), vm(disk("system", boot=True), cpu=64.5)
    )
    assert code == 1 and "spec.cpu" in err


def test_a_whole_float_limit_in_a_policy_file_limits(capsys, tmp_path):
    code, err = run_checker(
        capsys, tmp_path, policy_document(compute={"maxCpu": 4.0}), vm(disk("system", boot=True), cpu=8)
    )
    assert code == 1 and "8 CPUs exceed 4" in err


def test_the_checker_refuses_under_a_limit_in_nano_units(capsys, tmp_path):
    doc = policy_document(compute={"maxMemory": "16000000000000000000n"})
    code, err = run_checker(capsys, tmp_path, doc, vm(disk("system", boot=True), memory="1Ti"))
    assert code == 1 and "spec.memory: Forbidden: 1Ti exceeds 16000000000000000000n" in err


# -- storage held past maxTotalSize by swapping disks --
TOTAL = {"storage": {"maxTotalSize": "500Gi"}}


def held(*disks: dict, released: dict[str, str] | None = None, volumes: dict[str, str] | None = None) -> dict:
    """A stored Wukong, with the status the reconciler would have written."""
    obj = vm(*disks)
    obj["status"] = {
        "volumes": [{"name": n, "pvcName": f"vm1-{n}", "size": s} for n, s in (volumes or {}).items()],
        "releasedVolumes": [
            {"kind": "PersistentVolumeClaim", "name": f"vm1-{n}", "disk": n, "size": s}
            for n, s in (released or {}).items()
        ],
    }
    return obj


A, C, D = disk("a", "400Gi", boot=True), disk("c", "100Gi"), disk("d", "100Gi")


@pytest.mark.parametrize("size", ["100Gi", "107374182400", "0.09765625Ti", "102400Mi", "1.073741824e11"])
def test_swapping_a_disk_for_another_in_one_update_is_refused_in_any_unit(size):
    found = said(limit_policy(**TOTAL), vm(A, disk("d", size)), vm(A, C))
    assert len(found) == 1
    assert found[0].startswith("spec.disks: disks total ")
    assert 'and the volumes of removed disks "c" 100Gi: ' in found[0]
    assert "counts until it is deleted" in found[0]


def test_swapping_in_two_updates_is_refused_once_the_status_records_the_release():
    assert said(limit_policy(**TOTAL), vm(A), vm(A, C)) == []  # the removal itself holds no more
    found = said(limit_policy(**TOTAL), vm(A, D), held(A, released={"c": "100Gi"}))
    assert len(found) == 1 and "600Gi held" in found[0]


def test_two_quick_updates_are_refused_while_the_status_still_lists_the_removed_disks_volume():
    found = said(limit_policy(**TOTAL), vm(A, D), held(A, volumes={"a": "400Gi", "c": "100Gi"}))
    assert len(found) == 1 and "600Gi held" in found[0]


def test_adding_the_removed_disk_back_takes_its_volume_back_and_counts_once():
    assert said(limit_policy(**TOTAL), vm(A, C), held(A, released={"c": "100Gi"})) == []


def test_growing_a_disk_counts_the_released_volumes_too():
    found = said(limit_policy(**TOTAL), vm(disk("a", "401Gi", boot=True)), held(A, released={"c": "100Gi"}))
    assert len(found) == 1 and "501Gi held" in found[0]


def test_a_swap_within_the_limit_is_admitted():
    small = disk("c", "50Gi")
    assert said(limit_policy(**TOTAL), vm(A, disk("d", "50Gi")), vm(A, small)) == []


def test_a_swap_is_refused_by_the_checker_too():
    annotated = vm(A, D, annotations={api.ALLOW_DISK_REMOVAL_ANNOTATION: "c"})
    before = vm(A, C)
    for obj in (annotated, before):
        for entry in obj["spec"]["disks"]:
            entry["storageClassName"] = "longhorn"
    found = limit_checked([limit_policy(**TOTAL)], annotated, before)
    assert any(e.startswith("spec.disks: disks total 500Gi and the volumes of removed disks") for e in found), found


def observed_with(*released: tuple[str, str], disks: tuple[dict, ...] = (A, D), scope: Scope | None = None):
    obj = vm(*disks)
    obj["metadata"].update(uid=UID, generation=2, resourceVersion="10", namespace=NAMESPACE)
    volumes = {}
    for name, size in released:
        volumes[f"PersistentVolumeClaim/vm1-{name}"] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": f"vm1-{name}",
                "namespace": NAMESPACE,
                "labels": {api.RELEASED_FROM_LABEL: "vm1", api.DISK_LABEL: name, api.MANAGED_BY_LABEL: api.MANAGED_BY},
            },
            "spec": {"resources": {"requests": {"storage": size}}},
        }
    return Observed(obj, released=volumes, policy_scope=scope or Scope.of([limit_policy(**TOTAL)], NAMESPACE))


def created_disks(observed: Observed) -> list[str | None]:
    return [a.disk for a in planning.plan(observed) if isinstance(a, Create)]


def test_the_reconciler_makes_no_volume_past_the_limit_with_a_released_one_held():
    observed = observed_with(("c", "100Gi"))
    assert created_disks(observed) == ["a"]  # 400Gi + the released 100Gi: d's 100Gi would pass 500Gi
    computed = status.compute(observed, "2026-11-28T00:00:00Z")
    degraded = next(c for c in computed["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "StorageLimitExceeded")
    assert "policy limits allows one Wukong (storage.maxTotalSize)" in degraded["message"]
    assert computed["releasedVolumes"] == [
        {"kind": "PersistentVolumeClaim", "name": "vm1-c", "disk": "c", "size": "100Gi"}
    ]


def test_the_reconciler_makes_the_volume_once_the_released_one_is_deleted():
    assert created_disks(observed_with()) == ["a", "d"]


def test_the_reconciler_counts_a_volume_it_releases_in_the_same_pass():
    observed = observed_with(disks=(A,))
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "vm1-c",
            "namespace": NAMESPACE,
            "labels": {api.WUKONG_LABEL: "vm1", api.DISK_LABEL: "c", api.MANAGED_BY_LABEL: api.MANAGED_BY},
            "annotations": {api.WUKONG_UID_ANNOTATION: UID},
        },
        "spec": {"resources": {"requests": {"storage": "100Gi"}}},
    }
    observed = dataclasses.replace(
        observed, pvcs={"vm1-c": pvc}, wukong=vm(A, D) | {"metadata": observed.wukong["metadata"]}
    )
    assert [h.name for h in observed.held_elsewhere] == ["vm1-c"]
    assert "d" in observed.storage_refusals


def test_the_reconciler_grows_no_volume_past_the_limit():
    observed = observed_with(("c", "100Gi"), disks=(disk("a", "450Gi", boot=True),))
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "vm1-a",
            "namespace": NAMESPACE,
            "uid": "pvc-a",
            "resourceVersion": "3",
            "labels": {api.WUKONG_LABEL: "vm1", api.DISK_LABEL: "a", api.MANAGED_BY_LABEL: api.MANAGED_BY},
            "annotations": {api.WUKONG_UID_ANNOTATION: UID},
        },
        "spec": {"resources": {"requests": {"storage": "400Gi"}}, "storageClassName": "longhorn"},
        "status": {"phase": "Bound", "capacity": {"storage": "400Gi"}},
    }
    observed = dataclasses.replace(
        observed, pvcs={"vm1-a": pvc}, storage_classes={"longhorn": facts().storage_class("longhorn")}
    )
    assert not [a for a in planning.plan(observed) if isinstance(a, Expand)]
    assert "a" in observed.storage_refusals


def test_the_reconciler_ignores_warning_policies_and_unlimited_namespaces():
    assert created_disks(
        observed_with(("c", "100Gi"), scope=Scope.of([limit_policy(action="warn", **TOTAL)], NAMESPACE))
    ) == ["a", "d"]
    assert created_disks(observed_with(("c", "100Gi"), scope=Scope.of([], NAMESPACE))) == ["a", "d"]


def test_the_reconciler_makes_nothing_under_a_total_it_cannot_read():
    broken = Scope.of([limit_policy(storage={"maxTotalSize": "lots"})], NAMESPACE)
    assert created_disks(observed_with(scope=broken)) == []


# -- retention under allowDiskRemoval: false --
KEEP = {"storage": {"allowDiskRemoval": False}}


def retained(when: str | None) -> dict:
    obj = vm(A)
    if when is not None:
        obj["spec"]["volumeRetentionPolicy"] = {"whenDeleted": when}
    return obj


@pytest.mark.parametrize("before", ["Retain", None])
def test_changing_retention_to_delete_is_refused_when_disks_may_not_be_removed(before):
    assert said(limit_policy(**KEEP), retained("Delete"), retained(before)) == [
        "spec.volumeRetentionPolicy.whenDeleted: whenDeleted: Delete would delete every disk with the Wukong, and "
        'policy "limits" forbids removing disks in namespace "team-a" (storage.allowDiskRemoval: false); keep '
        "whenDeleted: Retain"
    ]


def test_creating_with_delete_is_refused_when_disks_may_not_be_removed():
    assert len(said(limit_policy(**KEEP), retained("Delete"))) == 1


def test_a_wukong_that_already_deletes_its_disks_is_not_judged_again():
    grown = retained("Delete")
    grown["spec"]["cpu"] = 3
    assert said(limit_policy(**KEEP), grown, retained("Delete")) == []


@pytest.mark.parametrize("after", ["Retain", None, "delete", 1])
def test_anything_but_delete_is_left_to_the_schema(after):
    assert said(limit_policy(**KEEP), retained(after), retained("Retain")) == []


def test_delete_is_admitted_where_removal_is_allowed_and_warned_under_a_warning_policy():
    assert said(limit_policy(storage={"allowDiskRemoval": True}), retained("Delete"), retained("Retain")) == []
    found = evaluate([limit_policy(action="warn", **KEEP)], NAMESPACE, retained("Delete"), retained("Retain"))
    assert [(v.action, v.rule) for v in found] == [("warn", "storage.allowDiskRemoval")]


def test_the_checker_refuses_the_retention_change():
    before, after = retained("Retain"), retained("Delete")
    for obj in (before, after):
        obj["spec"]["disks"][0]["storageClassName"] = "longhorn"
    found = limit_checked([limit_policy(**KEEP)], after, before)
    assert any(e.startswith("spec.volumeRetentionPolicy.whenDeleted: whenDeleted: Delete") for e in found), found


def test_the_record_of_released_volumes_is_emptied_not_dropped_once_written():
    """The status is merge-patched: a key left out would keep the record of a volume deleted since."""
    assert "releasedVolumes" not in status.compute(observed_with(), "2026-11-28T00:00:00Z")
    observed = observed_with()
    recorded = {**observed.wukong, "status": {"releasedVolumes": [{"kind": "PersistentVolumeClaim", "name": "vm1-c"}]}}
    computed = status.compute(dataclasses.replace(observed, wukong=recorded), "2026-11-28T00:00:00Z")
    assert computed["releasedVolumes"] == []


def test_another_owners_volume_of_a_disks_name_is_not_counted_as_held():
    foreign = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "vm1-a", "namespace": NAMESPACE, "uid": "someone-elses"},
        "spec": {"resources": {"requests": {"storage": "500Gi"}}},
    }
    observed = dataclasses.replace(observed_with(), pvcs={"vm1-a": foreign})
    assert "d" not in observed.storage_refusals  # a's name is taken (NameConflict); d's 100Gi fits

"""Image sources, as a tenant meets them through the real API server and webhook: a malformed URL is a field error
(never the webhook's 500), a URL inside the cluster or the node is refused with no policy at all (CDI's importer
would fetch it from inside), and a registry on another port is another registry."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import disk
from tests.e2e.security.conftest import Tenant
from tests.e2e.security.test_tenant_boundary import allow, manifest, refused  # noqa: F401 (allow: a fixture)

pytestmark = pytest.mark.usefixtures("webhook")
SHA256 = "0123456789abcdef" * 4


def imaged(image: str) -> dict[str, Any]:
    return {"disks": [disk("system", "10Gi", boot=True, image=image)]}


def dry_run(tenant: Tenant, **spec: Any) -> Any:
    return tenant.kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifest(tenant, **spec))


@pytest.mark.parametrize("image", ["https://[evil/x", "http://images.example.com:99999/x.img", "http://0xa9fea9fe/"])
def test_a_malformed_url_is_a_field_error_not_an_internal_error(tenant, image):
    said = refused(
        tenant, f'The Wukong "vm1" is invalid: spec.disks[0].image: Invalid value: "{image}"', **imaged(image)
    )
    assert "InternalError" not in said and "Internal error" not in said


@pytest.mark.parametrize(
    "image",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://kubernetes.default.svc/api/v1/secrets",
        "http://10.96.0.10:9153/metrics",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_a_url_inside_the_cluster_is_refused_with_no_policy_at_all(tenant, image):
    refused(
        tenant,
        f'spec.disks[0].image: Forbidden: image "{image}" would be fetched by CDI\'s importer from inside the cluster',
        f'no WukongPolicy on namespace "{tenant.namespace}" allows it',
        **imaged(image),
    )


def test_a_cluster_admin_opens_exactly_the_internal_host_a_policy_names(tenant, allow):  # noqa: F811
    allow(imaged("http://10.0.0.5/images/fedora.img"), images={"allowedSources": ["http://10.0.0.5/images/"]})
    refused(tenant, "from inside the cluster", **imaged("http://10.0.0.5:8080/images/fedora.img"))
    refused(tenant, "from inside the cluster", **imaged("http://169.254.169.254/latest/meta-data/"))


def test_a_registry_on_another_port_is_another_registry(tenant, allow):  # noqa: F811
    allow(imaged(f"registry.example.com/x@sha256:{SHA256}"), images={"allowedSources": ["registry.example.com"]})
    image = f"registry.example.com:31337/x@sha256:{SHA256}"
    refused(
        tenant,
        'spec.disks[0].image: Forbidden: image "docker://registry.example.com:31337/x@sha256:',
        'is not from a source policy "allow-',
        **imaged(image),
    )
    assert dry_run(tenant, **imaged(f"REGISTRY.example.com/x@sha256:{SHA256}")).returncode == 0

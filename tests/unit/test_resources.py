"""API paths: a name from a Wukong can never make a request for another object."""

import pytest

from kubeclient.resources import NETWORK_ATTACHMENT_DEFINITIONS, SECRETS


def test_a_name_is_escaped_as_one_path_segment():
    assert SECRETS.path("ns", "a b%") == "/api/v1/namespaces/ns/secrets/a%20b%25"
    assert NETWORK_ATTACHMENT_DEFINITIONS.path("ns", "lan") == (
        "/apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions/lan"
    )


@pytest.mark.parametrize("hostile", ["..", ".", "../../x", "kube-system/x", "../../../../api/v1/secrets/x"])
def test_a_name_that_would_be_another_path_is_refused(hostile):
    with pytest.raises(ValueError, match="cannot be used in an API path"):
        SECRETS.path("ns", hostile)
    with pytest.raises(ValueError):
        SECRETS.path(hostile, "x")

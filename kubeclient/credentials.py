"""Credentials for the Kubernetes API, shared by every process that talks to it.

In a Pod with no kubeconfig named, the ServiceAccount's in-cluster credentials; otherwise the named
kubeconfig, or $KUBECONFIG / ~/.kube/config. The official client refreshes tokens; the pool is sized for
one long-lived connection per watch plus concurrent requests.
"""

from __future__ import annotations

from kubernetes import client, config


def load_api_client(kubeconfig: str | None = None, pool_size: int = 32) -> client.ApiClient:
    configuration = client.Configuration()
    if kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)

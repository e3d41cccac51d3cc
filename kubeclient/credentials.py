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


class CredentialsError(Exception):
    """No usable kubeconfig (none found, a context it does not have, a file that does not parse)."""


def load_kubectl_client(kubeconfig: str | None = None, context: str | None = None) -> tuple[client.ApiClient, str]:
    """Credentials found the way kubectl finds them, for a command a person runs: ``kubeconfig`` (--kubeconfig),
    else $KUBECONFIG (a list of files, merged), else ~/.kube/config, else -- in a Pod -- the ServiceAccount.
    ``context`` (--context) instead of the current one. Returns the client and the context's namespace
    (``default`` when it names none), what kubectl uses when no -n is given."""
    configuration = client.Configuration()
    try:
        try:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        except config.ConfigException:
            if kubeconfig is not None or context is not None:
                raise
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration), _incluster_namespace()
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError, ValueError) as error:
        raise CredentialsError(str(error) or type(error).__name__) from error
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return client.ApiClient(configuration), namespace


def _incluster_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as file:
            return file.read().strip() or "default"
    except OSError:
        return "default"

"""The one client layer: everything in this project that talks to the Kubernetes API goes through here.

``credentials`` loads them (in-cluster or kubeconfig); ``rest`` is the typed-error JSON adapter; ``resources``
names the REST paths; ``informer`` keeps a watched cache; ``workqueue``, ``leader`` and ``health`` are the
controller machinery. Only this package imports the official client or urllib3 (an import-linter contract).
"""

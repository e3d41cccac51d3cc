"""The one client layer: everything in this project that talks to the Kubernetes API goes through here.

``credentials`` loads them (in-cluster or kubeconfig); ``rest`` is the typed-error JSON adapter; ``resources``
names the REST paths; ``informer`` keeps a watched cache; ``controller`` runs passes over a ``workqueue``;
``leader`` and ``health`` complete the controller machinery. Only this package imports the official client or
urllib3 (an import-linter contract).
"""

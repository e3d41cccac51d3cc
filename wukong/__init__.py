"""The Wukong domain: API constants, the typed spec, quantities, naming and the CRD schema.

Nothing here talks to Kubernetes or HTTP; the webhook and the reconciler both build on it.
"""

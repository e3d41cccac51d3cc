"""Certificates for the webhook: a CA and serving certificate, their files, rotation and CA-bundle injection."""

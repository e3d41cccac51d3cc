"""The validity of the certificate the webhook serves, for /metrics: an alert fires while a renewal is overdue.

The file is what the next TLS handshake serves (server.py re-reads it when it changes); it is parsed again only
when its inode, mtime or size moved, so a scrape costs a stat.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from cryptography import x509
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class CertificateValidity(Collector):
    """``wukong_webhook_certificate_not_before_timestamp_seconds`` and ``..._not_after_...`` of the first
    certificate in ``path``; neither while the file cannot be read or parsed (the TLS context keeps the last
    good pair then, and the process logs why)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._validity: tuple[float, float] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        validity = self._read()
        if validity is None:
            return
        not_before, not_after = validity
        yield GaugeMetricFamily(
            "wukong_webhook_certificate_not_before_timestamp_seconds",
            "Start of the serving certificate's validity (Unix time).",
            value=not_before,
        )
        yield GaugeMetricFamily(
            "wukong_webhook_certificate_not_after_timestamp_seconds",
            "End of the serving certificate's validity (Unix time): renewed with a third of its lifetime left.",
            value=not_after,
        )

    def _read(self) -> tuple[float, float] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            try:
                with open(self.path, "rb") as pem:
                    certificate = x509.load_pem_x509_certificate(pem.read())
            except (OSError, ValueError):
                return None
            self._stamp = stamp
            self._validity = (
                certificate.not_valid_before_utc.timestamp(),
                certificate.not_valid_after_utc.timestamp(),
            )
        return self._validity

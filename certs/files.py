"""Writing certificates and keys: atomically, and private keys readable by their owner only (0600)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from certs.pki import KeyPair

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file in the same folder, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_pair(pair: KeyPair, cert_path: Path, key_path: Path) -> None:
    """Key first: a watcher that reloads on a certificate change then finds the matching key in place."""
    write_file(key_path, pair.key_pem, 0o600)
    write_file(cert_path, pair.cert_pem, 0o644)


def read_pair(cert_path: Path, key_path: Path) -> KeyPair:
    return KeyPair.from_pem(cert_path.read_bytes(), key_path.read_bytes())

"""Clients that try to hold a server's resources: idle TCP, slow headers, slow bodies. A load generator for the
fault suite: it paces its own writes, which is what a slow client does, not a test waiting for something."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass, field


@dataclass
class HostileClients:
    host: str
    port: int
    context: ssl.SSLContext
    pace: float = 0.5  # seconds between the bytes a slow client trickles
    idle: list[socket.socket] = field(default_factory=list)
    slow: list[socket.socket] = field(default_factory=list)
    dropped: int = 0  # connections the server closed on them
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def open(self, idle: int, slow_headers: int, slow_bodies: int) -> HostileClients:
        for _ in range(idle):  # TCP connected, TLS never started
            self.idle.append(socket.create_connection((self.host, self.port), timeout=5))
        for index in range(slow_headers + slow_bodies):
            raw = socket.create_connection((self.host, self.port), timeout=5)  # a server that cannot answer fails
            tls = self.context.wrap_socket(raw, server_hostname=self.host)
            if index < slow_headers:
                tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n")  # headers never finish
            else:
                tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
            self.slow.append(tls)
        self._thread = threading.Thread(target=self._trickle, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(self.pace):
            for connection in list(self.slow):
                try:
                    connection.send(b"x")
                except OSError:
                    self.slow.remove(connection)
                    self.dropped += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for connection in self.idle + self.slow:
            with contextlib.suppress(OSError):
                connection.close()

    def __enter__(self) -> HostileClients:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

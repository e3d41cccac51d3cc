"""Clients that try to hold a server's resources: idle TCP, slow headers, slow bodies. A load generator for the
fault suite: it paces its own writes, which is what a slow client does, not a test waiting for something."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass, field

SLOW_BODY = b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"


@dataclass
class HostileClients:
    host: str
    port: int
    context: ssl.SSLContext
    pace: float = 0.5  # seconds between the bytes a slow client trickles
    idle: list[socket.socket] = field(default_factory=list)
    slow: list[socket.socket] = field(default_factory=list)
    dropped: int = 0  # slow connections the server closed (each is opened again: the attack goes on)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def open(self, idle: int, slow_headers: int, slow_bodies: int) -> HostileClients:
        for _ in range(idle):  # TCP connected, TLS never started
            self.idle.append(socket.create_connection((self.host, self.port), timeout=5))
        for _ in range(slow_headers):
            self.slow.append(self._connect(b"POST /validate HTTP/1.1\r\nHost: x\r\n"))  # headers never finish
        for _ in range(slow_bodies):
            self.slow.append(self._connect(SLOW_BODY))
        self._thread = threading.Thread(target=self._trickle, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def _connect(self, start: bytes) -> ssl.SSLSocket:
        raw = socket.create_connection((self.host, self.port), timeout=5)  # a server that cannot answer fails
        tls = self.context.wrap_socket(raw, server_hostname=self.host)
        tls.sendall(start)
        return tls

    def _trickle(self) -> None:
        while not self._stop.wait(self.pace):
            for index, connection in enumerate(list(self.slow)):
                if self._stop.is_set():
                    return
                try:
                    connection.setblocking(False)
                    answered = connection.recv(1024)  # anything, or EOF: the server gave up on this one
                except (ssl.SSLWantReadError, BlockingIOError):
                    answered = None
                except OSError:
                    answered = b""
                try:
                    if answered is None:
                        connection.setblocking(True)
                        connection.send(b"x")
                        continue
                except OSError:
                    pass
                self.dropped += 1
                with contextlib.suppress(OSError):
                    connection.close()
                with contextlib.suppress(OSError):
                    self.slow[index] = self._connect(SLOW_BODY)

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

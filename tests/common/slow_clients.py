"""Slow HTTP clients (slowloris): sockets that start a request and never finish it.

Each socket sends an opening at once and then one more byte every `interval` seconds, never
completing its request. The kinds: part of a request line and then nothing (`LINE`); headers one
byte at a time, never reaching the blank line that ends them (`HEADERS`); complete headers of an
SDK metrics upload whose body arrives a byte at a time (`body(token)`). A server that gives each
connection a thread at its first byte (gunicorn's gthread) runs out of threads; a buffering proxy
holds the sockets itself and times them out. Used by tests/ops/test_slow_clients.py and
bench/slow_clients.py; only loopback addresses.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType


@dataclass(frozen=True)
class Kind:
    """How a slow socket behaves: `opening` at once, then `trickle` one byte per interval."""

    name: str
    opening: bytes
    trickle: bytes


LINE = Kind("partial request line", b"GET /api/client/features HTT", b"")
# Host 127.0.0.1 is one the test proxies route (a Caddy site matches on it). The header value
# never ends, so the request never completes (nor reaches gunicorn's 8,190-byte header field
# limit in any run shorter than an hour).
HEADERS = Kind(
    "headers byte by byte",
    b"G",
    b"ET /api/client/features HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 8000,
)


def body(token: str, size: int = 8000) -> Kind:
    """A metrics upload with a valid client token (so the server reads its body) sent slowly."""
    head = (
        "POST /api/client/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    return Kind("body byte by byte", head.encode(), b" " * size)


@dataclass
class _Slow:
    sock: socket.socket
    kind: Kind
    sent: int = 0


@dataclass
class SlowClients:
    """`count` slow sockets to 127.0.0.1:`port`, kinds taken in turn, kept going by one thread."""

    port: int
    count: int = 50
    kinds: tuple[Kind, ...] = (LINE, HEADERS)
    interval: float = 0.5
    reopen: bool = False  # replace sockets the server closes (keeps `count` open in a long run)
    closed_by_server: int = 0
    _sockets: list[_Slow] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _open(self, kind: Kind) -> _Slow:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(kind.opening)
        sock.setblocking(False)
        return _Slow(sock, kind)

    def start(self) -> SlowClients:
        self._sockets = [self._open(self.kinds[i % len(self.kinds)]) for i in range(self.count)]
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for i, slow in enumerate(self._sockets):
                if self._server_closed(slow):
                    self.closed_by_server += 1
                    slow.sock.close()
                    if self.reopen and not self._stop.is_set():
                        self._sockets[i] = self._open(slow.kind)
                    continue
                # Never the last byte: the request must stay unfinished.
                if slow.sent < len(slow.kind.trickle) - 1:
                    try:
                        slow.sock.send(slow.kind.trickle[slow.sent : slow.sent + 1])
                        slow.sent += 1
                    except OSError:
                        pass  # seen as closed on the next round

    @staticmethod
    def _server_closed(slow: _Slow) -> bool:
        """Whether the server closed the socket or answered (a 408 or 400 ends it as well)."""
        if slow.sock.fileno() < 0:
            return True
        try:
            slow.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False  # nothing to read: still waiting for the rest of our request
        except OSError:
            return True
        return True  # b"" (closed) or the first byte of an answer

    def still_open(self) -> int:
        """How many of the sockets the server has neither closed nor answered."""
        return sum(1 for slow in self._sockets if not self._server_closed(slow))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for slow in self._sockets:
            slow.sock.close()

    def __enter__(self) -> SlowClients:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""Gate-bypass attempts, and a careless application that would fall for every one of them.

`CORPUS` is the list of requests an attacker sends to a gated site to reach `/secret.txt`
without passing the gate: dot-segments (plain, percent-encoded, double-encoded, overlong
UTF-8), encoded and literal slashes and backslashes, case variants of `/gate/`, `;`
parameters, empty segments, NUL and control characters, and hostile headers (a client's own
`X-Original-URI`, `X-Forwarded-Uri`, `X-Forwarded-User`). `raw_request` sends one exactly as
written (a raw socket: nothing on the way normalises the path). `CarelessSite` is the protected
application: a static file server that decodes, re-decodes and resolves `..` with no
protection, so a request that reaches it with a traversal really gets the secret.
"""

from __future__ import annotations

import os
import posixpath
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

SECRET = "TOP-SECRET-LAUNCH-PLAN"
TARGET = "secret.txt"
# An identity a visitor claims for themselves; gate audiences in the tests name this user.
CLAIMED_USER = "alice@corp"


@dataclass(frozen=True)
class Attempt:
    """One request line target (sent byte for byte) and the extra headers it carries."""

    target: str
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        extra = " ".join(f"{k}: {v}" for k, v in self.headers)
        return f"{self.target} {extra}".strip()


def _traversals() -> list[str]:
    # Each prefix with the number of levels a traversal must climb to leave it.
    prefixes = [("/gate/", 1), ("/gate/assets/", 2), ("/gate/preview/x/", 3), ("/GATE/", 1)]
    prefixes += [("/Gate/assets/", 2)]
    dots = [
        "..",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e.",
        "%252e%252e",
        "%25252e%25252e",
        "%c0%ae%c0%ae",
        "%e0%80%ae%e0%80%ae",
        "%c0%2e%c0%2e",
    ]
    separators = ["/", "%2f", "%2F", "%5c", "%5C", "\\", "%252f", "%c0%af", ";/", "%3b/", "%00/"]
    found: list[str] = []
    for prefix, depth in prefixes:
        for dot in dots:
            found.append(f"{prefix}{(dot + '/') * depth}{TARGET}")
        for sep in separators[1:]:
            found.append(f"{prefix}{('..' + sep) * depth}{TARGET}")
    found += [
        f"/gate//../{TARGET}",
        f"/gate/./../{TARGET}",
        f"/gate/.%2f..%2f{TARGET}",
        f"/gate/..%2f..%2f{TARGET}",
        f"/gate/../../{TARGET}",
        f"/gate/assets/../../{TARGET}",
        f"/gate/assets/..%2f..%2f{TARGET}",
        f"/gate/..;/{TARGET}",
        f"/gate;/../{TARGET}",
        f"/gate;x=1/../{TARGET}",
        f"/gate/x;/../../{TARGET}",
        f"/gate%2f..%2f{TARGET}",
        f"/gate%2F%2E%2E%2F{TARGET}",
        f"/gate\\..\\{TARGET}",
        f"/gate/..\\{TARGET}",
        f"/%67ate/../{TARGET}",
        f"/%67ate/%2e%2e/{TARGET}",
        f"/gat%65/..%2f{TARGET}",
        f"/gate/%2e%2e%2f{TARGET}",
        f"/gate/%2e%2e%5c{TARGET}",
        f"/gate/%2e%2e/%2e%2e/{TARGET}",
        f"/gate/%%32%65%%32%65/{TARGET}",
        f"/gate/..%00/{TARGET}",
        f"/gate/%00/../{TARGET}",
        f"/gate/..%0a/{TARGET}",
        f"/gate/..%0d%0a/{TARGET}",
        f"/gate/..%09/{TARGET}",
        f"/gate/..%ff/{TARGET}",
        f"/gate/%ef%bc%8e%ef%bc%8e/{TARGET}",  # fullwidth dots
        f"/gate/..%u002f{TARGET}",
        f"/gate/.../{TARGET}",
        f"/gate/.. /{TARGET}".replace(" ", "%20"),
        f"/gate/../{TARGET}?x=/gate/",
        f"/gate/../{TARGET}#/gate/",
        f"/gate/%3f/../{TARGET}",
        f"/gate/%23/../{TARGET}",
        f"//gate/../{TARGET}",
        f"///gate/../{TARGET}",
        f"/./gate/../{TARGET}",
        f"/x/../gate/../{TARGET}",
        f"/gate/%2e%2e%2f%2e%2e%2f{TARGET}",
        f"/GATE/assets/../../{TARGET}",
        f"/gAtE/..%2F{TARGET}",
    ]
    return found


def _plain() -> list[str]:
    """The secret asked for without tricks, or with tricks that need no /gate/ prefix."""
    return [
        f"/{TARGET}",
        f"/{TARGET.upper()}",
        f"//{TARGET}",
        f"/./{TARGET}",
        "/%73ecret.txt",
        f"/{TARGET};/gate/",
        f"/{TARGET}%3b/gate/",
        f"/{TARGET}?/gate/",
        f"/{TARGET}%00/gate/",
        f"/{TARGET}%00.css",
    ]


def _hostile_headers() -> list[Attempt]:
    """Headers a client sets to pose as the proxy: the original URI, or who they are."""
    path = f"/{TARGET}"
    attempts = []
    for name in ("X-Original-URI", "X-Forwarded-Uri", "X-Original-URL", "X-Rewrite-URL"):
        for value in ("/gate/x", "/gate/assets/gate.css", "/gate/preview/abc"):
            attempts.append(Attempt(path, ((name, value),)))
    attempts += [
        Attempt(path, (("X-Forwarded-User", CLAIMED_USER),)),
        Attempt(path, (("X-Forwarded-User", CLAIMED_USER), ("X-Original-URI", "/gate/x"))),
        Attempt(path, (("X-Forwarded-Prefix", "/gate"),)),
        Attempt(path, (("X-Forwarded-Uri", "/gate/x"), ("X-Forwarded-Method", "GET"))),
        Attempt(f"/gate/../{TARGET}", (("X-Original-URI", "/gate/x"),)),
    ]
    return attempts


# Request targets that try to climb out of /gate/ (every one is ambiguous: refused outright).
TRAVERSALS: tuple[str, ...] = tuple(dict.fromkeys(_traversals()))
CORPUS: tuple[Attempt, ...] = tuple(
    dict.fromkeys(
        [Attempt(t) for t in _traversals()] + [Attempt(t) for t in _plain()] + _hostile_headers()
    )
)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def raw_request(
    port: int,
    target: str,
    headers: tuple[tuple[str, str], ...] = (),
    method: str = "GET",
    source: str = "127.0.0.2",
) -> Reply:
    """Send one HTTP/1.1 request with `target` exactly as given (no client normalises it)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0)) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        parsed[key.strip().lower()] = value.strip()
    if parsed.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return Reply(int(status_line.split()[1]), parsed, body)


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


# ---- the careless application ------------------------------------------------------------------

_OVERLONG = {b"\xc0\xae": b".", b"\xe0\x80\xae": b".", b"\xc0\xaf": b"/", b"\xc0\x2e": b"."}


def careless_resolve(target: str) -> str:
    """Resolve a request target the way a sloppy server does: every mistake at once."""
    raw = target.split("?", 1)[0].split("#", 1)[0]
    data = raw.encode("latin-1", "replace")
    for _ in range(4):  # decode again and again: double encoding works
        data = unquote_to_bytes(data)
    for overlong, plain in _OVERLONG.items():
        data = data.replace(overlong, plain)
    data = data.split(b"\x00", 1)[0]  # C-style truncation at NUL
    text = data.decode("utf-8", "replace").replace("\\", "/").lower()
    text = text.replace("\uff0e", ".")  # a Unicode-normalising filesystem
    text = "/".join(part.split(";", 1)[0] for part in text.split("/"))
    return "/" + posixpath.normpath("/" + text.strip()).lstrip("/")


@dataclass
class Site:
    """The running careless application: its port and every request target it received."""

    port: int
    root: Path
    received: list[str] = field(default_factory=list)


@contextmanager
def careless_site(folder: Path) -> Iterator[Site]:
    """Serve `folder` (with a secret.txt in it) carelessly on a free loopback port."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TARGET).write_text(SECRET, encoding="utf-8")
    received: list[str] = []
    root = str(folder)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)
            resolved = careless_resolve(self.path)
            # Joined without a check, so ../ walks out of any subfolder it names.
            file = os.path.normpath(root + resolved)
            if os.path.isfile(file):
                body = Path(file).read_bytes()
            else:
                gate = self.headers.get("X-Darklaunch-Gate", "")
                body = f"customer site at {self.path} (gate: {gate})".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(server.server_port, folder, received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def looks_closed(reply: Reply) -> bool:
    """The closed page (503) or a refusal (4xx), and never the secret."""
    return SECRET not in reply.text and (reply.status == 503 or 400 <= reply.status < 500)

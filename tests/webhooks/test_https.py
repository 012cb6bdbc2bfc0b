"""https receivers: the connection goes to the checked address, and the certificate is still
verified against the URL's host name (a real TLS server on loopback, with a test CA)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from server.webhooks import transport

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "openssl"], capture_output=True).returncode != 0,
    reason="needs the openssl command to make a test CA",
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """An https server for `hooks.test` on 127.0.0.1; yields (port, CA file, Host headers)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=Darklaunch test CA", cwd=tmp_path)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=hooks.test", cwd=tmp_path)  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:hooks.test\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "san.ext",
             cwd=tmp_path)  # fmt: skip
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hosts.append(self.headers.get("Host", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "srv.pem", tmp_path / "srv.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, tmp_path / "ca.pem", hosts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def to_loopback(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def test_https_connects_to_the_checked_address_and_verifies_the_host_name(
    tls_receiver: tuple[int, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ca, hosts = tls_receiver
    monkeypatch.setattr(transport, "CA_BUNDLE", str(ca))
    answer = transport.post(
        f"https://hooks.test:{port}/in", b"{}", {}, allow_private=True, resolve=to_loopback
    )
    assert answer.status == 204
    assert hosts == [f"hooks.test:{port}"]
    with pytest.raises(transport.SendFailed):  # the certificate is not for this name
        transport.post(
            f"https://other.test:{port}/in", b"{}", {}, allow_private=True, resolve=to_loopback
        )


def test_https_refuses_a_certificate_from_an_unknown_authority(
    tls_receiver: tuple[int, Path, list[str]],
) -> None:
    port, _, hosts = tls_receiver
    with pytest.raises(transport.SendFailed):
        transport.post(
            f"https://hooks.test:{port}/in", b"{}", {}, allow_private=True, resolve=to_loopback
        )
    assert hosts == []

"""Fixtures for streaming: a real stream server (aiohttp on its own loop), SSE readers, SDKs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from UnleashClient import UnleashClient

from server.streaming.hub import Running
from tests.conftest import free_port

Api = Callable[..., Any]
FEATURES = "/api/admin/projects/default/features"


@pytest.fixture
def stream_server(app: Flask) -> Iterator[Running]:
    server = Running(app, "127.0.0.1", free_port()).serve_in_thread()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Event:
    event: str
    id: str | None
    data: str
    at: float


@dataclass
class Reader:
    """A raw SSE reader on a thread: every event and comment as it arrives, with its time."""

    response: requests.Response
    events: list[Event] = field(default_factory=list)
    comments: int = 0
    ended: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        name, ident, data = "", None, []
        try:
            for raw in self.response.iter_lines(chunk_size=1):
                line = raw.decode()
                if line == "":
                    if data or name:
                        self.events.append(Event(name, ident, "\n".join(data), time.monotonic()))
                    name, ident, data = "", None, []
                elif line.startswith(":"):
                    self.comments += 1
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("id: "):
                    ident = line[4:]
                elif line.startswith("data: "):
                    data.append(line[6:])
        except (requests.RequestException, AttributeError, ValueError):
            pass
        finally:
            self.ended.set()

    def wait(self, count: int, timeout: float = 10.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.events) >= count, self.events
        return self.events

    def close(self) -> None:
        # Shut the socket first: closing a response another thread is reading waits for data.
        connection = getattr(self.response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.response.close()


def open_stream(url: str, token: str | None, **headers: str) -> requests.Response:
    sent = {"Accept": "text/event-stream", **headers}
    if token is not None:
        sent["Authorization"] = token
    return requests.get(f"{url}/api/client/streaming", headers=sent, stream=True, timeout=30)


@pytest.fixture
def read_stream() -> Iterator[Callable[..., Reader]]:
    readers: list[Reader] = []

    def start(url: str, token: str | None, **headers: str) -> Reader:
        response = open_stream(url, token, **headers)
        assert response.status_code == 200, response.text
        reader = Reader(response)
        threading.Thread(target=reader.run, daemon=True).start()
        readers.append(reader)
        return reader

    yield start
    for reader in readers:
        reader.close()


@pytest.fixture
def streaming_sdk(tmp_path: Path) -> Iterator[Callable[..., UnleashClient]]:
    made: list[UnleashClient] = []

    def make(url: str, token: str, name: str = "streamer") -> UnleashClient:
        client = UnleashClient(
            url=f"{url}/api",
            app_name=name,
            instance_id=f"{name}-1",
            custom_headers={"Authorization": token},
            experimental_mode={"type": "streaming"},
            disable_metrics=True,
            disable_registration=True,
            cache_directory=str(tmp_path / f"sdk-{name}-{len(made)}"),
        )
        client.initialize_client()
        made.append(client)
        return client

    yield make
    for client in made:
        client.destroy()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def make_flag(api: Api, name: str, env: str = "production", on: bool = True) -> None:
    response = api("post", FEATURES, json={"name": name})
    assert response.status_code == 200, response.get_json()
    strategy = api(
        "post", f"{FEATURES}/{name}/environments/{env}/strategies", json={"name": "default"}
    )
    assert strategy.status_code == 200, strategy.get_json()
    if on:
        toggle(api, name, True, env)


def toggle(api: Api, name: str, on: bool, env: str = "production") -> None:
    response = api("post", f"{FEATURES}/{name}/environments/{env}/{'on' if on else 'off'}")
    assert response.status_code in (200, 202), response.get_json()


@pytest.fixture
def client_token(make_token: Callable[..., str]) -> str:
    return make_token("client", "production")

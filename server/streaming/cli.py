"""`darklaunch stream`: run the stream process (the Procfile's `stream:` line)."""

from __future__ import annotations

import asyncio
import os

import click
from aiohttp import web
from flask import current_app

DEFAULT_BIND = "127.0.0.1:8001"


def parse_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{bind!r} is not HOST:PORT", param_hint="--bind")
    return host.strip("[]"), int(port)


@click.command("stream")
@click.option(
    "--bind",
    envvar="DARKLAUNCH_STREAM_BIND",
    default=DEFAULT_BIND,
    show_default=True,
    help="HOST:PORT to listen on (env DARKLAUNCH_STREAM_BIND); the proxy routes "
    "/api/client/streaming here.",
)
def stream(bind: str) -> None:
    """Serve /api/client/streaming (Server-Sent Events) to SDKs, until SIGTERM or SIGINT."""
    from server.streaming.hub import make_web_app

    host, port = parse_bind(bind)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    click.echo(f"darklaunch stream: listening on http://{host}:{port} (pid {os.getpid()})")
    web.run_app(
        make_web_app(app, loop, trim=True),
        host=host,
        port=port,
        loop=loop,
        backlog=4096,
        shutdown_timeout=5,
        handler_cancellation=True,
        print=None,
        access_log=None,
    )

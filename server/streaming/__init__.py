"""Flag changes pushed to SDKs: the stream process (`darklaunch stream`, Server-Sent Events on
`/api/client/streaming`) and delta polling on `web` (`/api/client/delta`). See
docs/deployment.md#stream for how the two processes are deployed."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from server.streaming import cli, delta

    app.register_blueprint(delta.bp)
    app.cli.add_command(cli.stream)

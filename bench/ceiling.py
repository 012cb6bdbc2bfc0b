"""The reference ("ceiling"): a bare Flask app returning the same bytes from memory.

gunicorn serves it with the same settings as Darklaunch, so the ratio between the two says how
much Darklaunch's own work costs on top of what this stack can do at best for that response.
Bodies come from files named in BENCH_CEILING_DIR: `<name>.body` and `<name>.type`.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response, request


def create_app() -> Flask:
    app = Flask(__name__)
    folder = Path(os.environ["BENCH_CEILING_DIR"])
    bodies = {
        p.stem: (p.read_bytes(), (folder / f"{p.stem}.type").read_text().strip())
        for p in folder.glob("*.body")
    }

    def serve(name: str) -> Response:
        body, content_type = bodies[name]
        if content_type == "not-modified":
            return Response(status=304)
        response = Response(body, content_type=content_type)
        if name.endswith("-gzip"):
            response.headers["Content-Encoding"] = "gzip"
        return response

    @app.route("/<name>", methods=["GET", "POST"])
    def body(name: str) -> Response:
        if request.method == "POST":
            request.get_data()  # read the body, as a real endpoint must
        return serve(name)

    @app.route("/empty")
    def empty() -> Response:
        return Response(b"", status=200)

    return app

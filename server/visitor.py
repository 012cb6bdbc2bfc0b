"""A sticky, signed visitor id for anonymous visitors (the `sessionId` flags are evaluated with).

`visitor_id()` returns the id from the signed `dl_visitor` cookie, or makes a new one that the
after-request hook sets for a year. Signed, so nobody can pick an id to land inside a rollout.
The cookie is only issued when some view asks for the id.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Flask, current_app, g, request
from itsdangerous import BadSignature, Signer
from werkzeug.wrappers import Response

from server.config import Mode

COOKIE = "dl_visitor"
MAX_AGE = timedelta(days=365)
_SALT = "darklaunch.visitor"


def _signer() -> Signer:
    return Signer(current_app.config["SECRET_KEY"], salt=_SALT)


def visitor_id() -> str:
    """This visitor's id: from the signed cookie, or a new one set on the response."""
    if "visitor_id" in g:
        return str(g.visitor_id)
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            value = _signer().unsign(raw).decode()
        except BadSignature:
            value = ""
        if value:
            g.visitor_id = value
            return value
    value = uuid.uuid4().hex
    g.visitor_id = value
    g.visitor_is_new = True
    return value


def _set_cookie(response: Response) -> Response:
    if g.get("visitor_is_new"):
        response.set_cookie(
            COOKIE,
            _signer().sign(g.visitor_id).decode(),
            max_age=int(MAX_AGE.total_seconds()),
            httponly=True,
            samesite="Lax",
            secure=current_app.config["MODE"] is Mode.PRODUCTION,
            path="/",
        )
    return response


def init_app(app: Flask) -> None:
    app.after_request(_set_cookie)

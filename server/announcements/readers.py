"""Who is reading: the host product's user context, trusted only when its backend signed it.

A flag-linked announcement whose flag targets users (`userId`, `country=NO`, a parent flag
that does) can never match an anonymous reader, who carries only a visitor id and an address.
The host product knows its user, so its backend signs that user's context with this install's
reader-context key (HMAC-SHA256 over the exact JSON text) and hands both to the widget; the
widget passes them on to the changelog. Unsigned or badly signed context is ignored: it would
let anyone claim to be any user and read announcements of features they do not have.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

CONTEXT_MAX = 2000  # characters of JSON: enough for an id and a few properties
PROPERTIES_MAX = 20
COOKIE = "darklaunch_reader"
_KEY_LABEL = b"darklaunch changelog reader context v1"


@dataclass(frozen=True)
class Reader:
    """A reader's verified context, as the flag evaluator takes it."""

    user_id: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    expires: int | None = None  # Unix seconds; None means it does not expire

    def context(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"properties": dict(self.properties)}
        if self.user_id is not None:
            raw["userId"] = self.user_id
        return raw

    def as_dict(self) -> dict[str, Any]:
        return {"userId": self.user_id, "properties": dict(self.properties), "exp": self.expires}


def context_key(secret_key: str) -> str:
    """This install's reader-context key (hex) from SECRET_KEY; host backends sign with it."""
    return hmac.new(secret_key.encode(), _KEY_LABEL, hashlib.sha256).hexdigest()


def sign_context(context_json: str, secret_key: str) -> str:
    """The signature a host backend sends with `context_json` (hex HMAC-SHA256)."""
    key = bytes.fromhex(context_key(secret_key))
    return hmac.new(key, context_json.encode(), hashlib.sha256).hexdigest()


def verify(
    context_json: str | None, signature: str | None, secret_key: str, now: datetime
) -> Reader | None:
    """The reader `context_json` describes, or None unless it is well signed, well formed, fresh."""
    if not context_json or not signature or len(context_json) > CONTEXT_MAX:
        return None
    expected = sign_context(context_json, secret_key)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        return None
    try:
        doc = json.loads(context_json)
    except ValueError:
        return None
    reader = _reader(doc)
    if reader is None or (reader.expires is not None and reader.expires < now.timestamp()):
        return None
    return reader


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)[:200]
    return None


def _reader(doc: Any) -> Reader | None:
    if not isinstance(doc, dict) or set(doc) - {"userId", "properties", "exp"}:
        return None
    user_id = doc.get("userId")
    if user_id is not None and not isinstance(user_id, str | int):
        return None
    raw_properties = doc.get("properties") or {}
    if not isinstance(raw_properties, dict) or len(raw_properties) > PROPERTIES_MAX:
        return None
    properties: dict[str, str] = {}
    for name, value in raw_properties.items():
        text = _text(value)
        if text is None:
            return None
        properties[str(name)[:100]] = text
    expires = doc.get("exp")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
        return None
    return Reader(
        user_id=None if user_id is None else str(user_id)[:200],
        properties=properties,
        expires=expires,
    )


def _cookie_serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="darklaunch-changelog-reader")


def dump_cookie(reader: Reader, secret_key: str) -> str:
    """The cookie value that remembers a verified reader on the changelog pages."""
    return str(_cookie_serializer(secret_key).dumps(reader.as_dict()))


def load_cookie(value: str | None, secret_key: str, now: datetime) -> Reader | None:
    """The reader a cookie from `dump_cookie` remembers; None for anything else or expired."""
    if not value:
        return None
    try:
        doc = _cookie_serializer(secret_key).loads(value)
    except BadSignature:
        return None
    if not isinstance(doc, dict):
        return None
    reader = _reader({k: v for k, v in doc.items() if v is not None})
    if reader is None or (reader.expires is not None and reader.expires < now.timestamp()):
        return None
    return reader

"""Which paths the gate judges: always-through paths, ungated endpoints, forwarded original URIs.

A reverse proxy and the application behind it may read an unusual path two ways, so a
forwarded original URI that could be read two ways is refused here rather than guessed at.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

# Paths that are always through, on Darklaunch's own pages: health and readiness, sign-in and
# sign-out (single sign-on, TOTP, reset links too), static files, and the gate's own public
# pages (preview claim, forward-auth, closed page and its assets).
EXEMPT_PREFIXES = ("/-/", "/static/", "/gate/", "/reset/")
# /widget.js is a static script with no content: served while closed, it logs why it stays empty.
EXEMPT_PATHS = (
    "/login",
    "/logout",
    "/widget.js",
    # single sign-on, the break-glass admin's second factor (docs/accounts.md)
    "/login/oidc",
    "/login/oidc/callback",
    "/login/totp",
    "/logout/oidc",
)
# For forward-auth the original URI belongs to the protected application: only the gate's own
# pages (which the proxy routes to Darklaunch) are exempt there. The rest of the list names
# Darklaunch's paths; exempting e.g. the application's /static/ would leak its assets.
FORWARD_AUTH_EXEMPT_PREFIXES = ("/gate/",)
# Machine endpoints carry their own tokens; they are not site pages and are never gated.
UNGATED_PREFIXES = ("/api/", "/ofrep/", "/metrics/")
UNGATED_PATHS = ("/metrics",)


def is_exempt(path: str) -> bool:
    """True for the short list of paths that are always through."""
    if _has_dot_segment_or_empty(path):  # never exempt a path a later hop may resolve elsewhere
        return False
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


def _has_dot_segment_or_empty(path: str) -> bool:
    # Segments of dots and spaces only (`...`, `.. `): some servers (Windows) trim them to `..`.
    return "//" in path or any(part and not part.strip(". ") for part in path.split("/"))


# Hex escapes that decode to a separator: the proxy routes on one reading, the app on another.
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]*")


def forwarded_path(original_uri: str) -> str | None:
    """The path of a proxied request's original URI, percent-decoded; None when it is ambiguous.

    Proxies and applications read unusual paths differently (nginx and Caddy normalise
    `/gate/..%2fsecret` to `/secret`, an application may serve the raw form), so anything that
    two readers could resolve differently is refused outright instead of guessed at:
    dot-segments (plain, `%2e`, `%252e`), encoded or literal backslashes and encoded slashes,
    empty segments (`//`), `;` parameters, control characters, invalid or overlong UTF-8
    (`%c0%ae`), Unicode look-alikes that fold to any of these, double encoding, fragments, and
    anything that is not an absolute path.
    """
    if not _PRINTABLE_ASCII.fullmatch(original_uri) or "\\" in original_uri:
        return None
    raw = original_uri.split("?", 1)[0]
    if not raw.startswith("/") or "#" in raw or ";" in raw:
        return None
    if _ESCAPE.search(raw) or _ENCODED_SEPARATOR.search(raw):
        return None
    try:
        path = unquote_to_bytes(raw).decode("utf-8", errors="strict")
    except UnicodeDecodeError:  # overlong forms such as %c0%ae are invalid UTF-8
        return None
    if "%" in path or ";" in path or "\\" in path or not path.isprintable():
        return None  # double encoding, parameters, backslashes, control characters
    if _has_dot_segment_or_empty(path):
        return None
    if not path.isascii():  # fullwidth dots and slashes become `..` and `/` where apps fold them
        folded = unicodedata.normalize("NFKC", path)
        if "\\" in folded or ";" in folded or _has_dot_segment_or_empty(folded):
            return None
    return path


def is_forward_auth_exempt(path: str) -> bool:
    """True for the gate's own pages in a normalised original path (case-sensitive, ASCII)."""
    return path.isascii() and path.startswith(FORWARD_AUTH_EXEMPT_PREFIXES)


def is_site_page(path: str) -> bool:
    """True for pages people read (gated); False for API, SDK and metrics endpoints."""
    return not (path in UNGATED_PATHS or path.startswith(UNGATED_PREFIXES))

"""Markdown to HTML, then through nh3 (a maintained sanitiser) before anything stores or serves it.

The allow-list is deliberately small: text structure, links, images, code and tables. Nothing
executable survives: no script/style/iframe/object/svg, no event handlers or style attributes,
only absolute http(s)/mailto links and https images.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

import markdown
import nh3

TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "del",
        "em",
        "h2",
        "h3",
        "h4",
        "hr",
        "i",
        "img",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"scope"},
}
# Removed together with everything inside them (the other unknown tags keep their text).
DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "template", "noscript", "svg", "math"}
)
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"
_HEADING = re.compile(r"<(/?)h1>")


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        # Images load without a click, so only absolute https images (no tracking over http,
        # no relative paths that break in feeds).
        return value if is_https_url(value) else None
    if tag == "img" and attribute in ("width", "height"):
        return value if value.isdigit() and len(value) <= 4 else None
    return value


def sanitise(html: str) -> str:
    """Reduce HTML to the allow-list; links get rel="noopener noreferrer nofollow"."""
    return nh3.clean(
        html,
        tags=set(TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        url_relative="deny",  # relative links would point at this server, and break in feeds
        strip_comments=True,
    )


def render_markdown(body: str) -> str:
    """Render an announcement's Markdown to sanitised HTML (h1 becomes h2: the title is h1)."""
    raw = markdown.markdown(
        body,
        extensions=["fenced_code", "tables", "sane_lists"],
        output_format="html",
    )
    return sanitise(_HEADING.sub(r"<\1h2>", raw))


def is_https_url(value: str) -> bool:
    """An absolute https URL with a host and no spaces or control characters."""
    if len(value) > 500 or any(c.isspace() or ord(c) < 32 or c in "\"'<>`\\" for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname)


def slugify(title: str, max_length: int = 80) -> str:
    """A lowercase ASCII slug from a title; 'update' when nothing usable is left."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_length:
            break
        slug = candidate
    return slug or (words[0][:max_length] if words else "update")

"""Known XSS payloads go in through the API and the editor; no output lets one run.

Checked surfaces: the changelog page, the permalink, the Atom feed, the JSON Feed, the widget's
JSON, the editor's preview and every file of the static export.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import post_form

Api = Callable[..., Any]

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<img src="https://ok.example/a.png" onerror="alert(1)">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="&#106;&#97;vascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    '<iframe src="https://evil.example/"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<div style="width: expression(alert(1))">x</div>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    "<body onload=alert(1)>",
    "<!--<script>alert(1)</script>-->",
    "<!--><img src=x onerror=alert(1)>-->",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<form action="javascript:alert(1)"><button>x</button></form>',
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<<script>script>alert(1)<</script>/script>",
    "<scr<script>ipt>alert(1)</script>",
    "![x](javascript:alert(1))",
    '![x](https://ok.example/x.png" onerror="alert(1))',
    "<javascript:alert(1)>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<a href="vbscript:msgbox(1)">x</a>',
]

BANNED_TAGS = {
    "script",
    "style",
    "iframe",
    "frame",
    "object",
    "embed",
    "svg",
    "math",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "base",
    "details",
}
URL_ATTRIBUTES = {"href", "src", "action", "data", "formaction", "xlink:href", "poster"}
BAD_SCHEMES = ("javascript:", "data:", "vbscript:")
C0_AND_SPACE = "".join(chr(i) for i in range(0x21))


class DangerFinder(HTMLParser):
    """Collects everything in an HTML document or fragment that could run script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BANNED_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in ("style", "srcdoc"):
                self.found.append(f"<{tag} {name}>")
            if tag == "meta" and name == "http-equiv":
                self.found.append("<meta http-equiv>")
            if name in URL_ATTRIBUTES and value:
                # As browsers read URLs (WHATWG URL standard): trim C0 controls and spaces at
                # both ends, drop every tab and newline inside.
                compact = re.sub(r"[\t\n\r]", "", value.strip(C0_AND_SPACE)).lower()
                if compact.startswith(BAD_SCHEMES):
                    self.found.append(f"<{tag} {name}={value!r}>")
            if tag == "a" and name == "href" and value and value.startswith("http"):
                rel = dict(attrs).get("rel") or ""
                if "noopener" not in rel or "nofollow" not in rel:
                    self.found.append("<a> without rel=noopener nofollow")


def dangers(html: str) -> list[str]:
    finder = DangerFinder()
    finder.feed(html)
    finder.close()
    return finder.found


def atom_html(xml: bytes) -> Iterable[str]:
    root = ET.fromstring(xml)  # noqa: S314 - our own feed, parsed to be checked
    ns = "{http://www.w3.org/2005/Atom}"
    for element in root.iter():
        assert element.tag.startswith(ns), f"unexpected element {element.tag}"
    for content in root.iter(f"{ns}content"):
        assert content.get("type") == "html"
        yield content.text or ""


def check_outputs(client: FlaskClient, slug: str) -> None:
    page = client.get("/changelog").get_data(as_text=True)
    assert dangers(page) == []
    permalink = client.get(f"/changelog/{slug}")
    assert permalink.status_code == 200
    assert dangers(permalink.get_data(as_text=True)) == []
    atom = client.get("/changelog.atom").data
    for html in atom_html(atom):
        assert dangers(html) == []
    feed = json.loads(client.get("/changelog.json").data)
    for item in feed["items"]:
        assert dangers(item["content_html"]) == []
    widget = json.loads(client.get("/changelog/widget.json").data)
    for item in widget["items"]:
        # No HTML field at all: the widget puts every value in with textContent.
        assert set(item) == {
            "id",
            "url",
            "title",
            "summary",
            "category",
            "category_label",
            "date_published",
        }
        assert item["url"].startswith(("http://", "https://"))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_in_every_field_never_reaches_any_output(
    app: Flask, client: FlaskClient, api: Api, payload: str, tmp_path: Path
) -> None:
    response = api(
        "post",
        "/api/announcements",
        json={
            "title": f"Title {payload}"[:120],
            "summary": f"Summary {payload}"[:300],
            "body": f"Before\n\n{payload}\n\nAfter *emphasis* {payload}",
            "image_url": "https://cdn.example.com/pic.png",
            "image_alt": f"Alt {payload}"[:200],
            "status": "published",
        },
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert dangers(created["html"]) == []
    preview = api("post", "/api/announcements/preview", json={"body": payload}).get_json()
    assert dangers(preview["html"]) == []
    check_outputs(client, created["slug"])
    app.config["SITE_URL"] = "https://x.example"
    result = app.test_cli_runner().invoke(args=["site", "build", "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    files = [p for p in (tmp_path / "site" / "changelog").iterdir()]
    assert {p.suffix for p in files} == {".html", ".atom", ".json"}
    for path in files:
        if path.suffix == ".html":
            assert dangers(path.read_text(encoding="utf-8")) == [], path.name
        elif path.suffix == ".atom":
            for html in atom_html(path.read_bytes()):
                assert dangers(html) == []
        elif path.suffix == ".json":
            for item in json.loads(path.read_text(encoding="utf-8"))["items"]:
                assert dangers(item["content_html"]) == []


def test_payloads_through_the_editor_form_are_neutralised(
    app: Flask, admin_client: FlaskClient
) -> None:
    body = "\n\n".join(PAYLOADS)
    response = post_form(
        admin_client,
        "/announcements/new",
        {
            "title": "<script>alert(1)</script>",
            "summary": "<img src=x onerror=alert(1)>",
            "category": "new",
            "body": body,
            "image_url": "",
            "image_alt": "",
            "flag": "",
            "publish_at": "",
            "timezone": "UTC",
            "action": "publish",
        },
    )
    assert response.status_code == 302
    page = admin_client.get("/changelog").get_data(as_text=True)
    assert dangers(page) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the title shows as text
    editor = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    preview = editor.split("data-preview-body>", 1)[1].split("</article>", 1)[0]
    assert dangers(preview) == []


def test_the_checker_itself_spots_dangerous_html() -> None:
    assert dangers('<a href="JAVA\nSCRIPT:alert(1)" rel="x">x</a>') == [
        "<a href='JAVA\\nSCRIPT:alert(1)'>"
    ]
    assert dangers('<p onclick="x" style="y">') == ["<p onclick>", "<p style>"]
    assert dangers('<a href="https://x.example">x</a>') == ["<a> without rel=noopener nofollow"]
    assert dangers("<script></script><meta http-equiv=refresh>") == [
        "<script>",
        "<meta http-equiv>",
    ]

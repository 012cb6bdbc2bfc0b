"""Markdown rendering, the sanitiser's allow-list, slugs and image addresses."""

from __future__ import annotations

import pytest

from server.announcements.render import is_https_url, render_markdown, sanitise, slugify


def test_markdown_features_editors_use_survive() -> None:
    html = render_markdown(
        "# Heading\n\n## Sub\n\n- one\n- two\n\n1. first\n\n> quote\n\n`code` and\n\n"
        "```python\nprint(1)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n---\n\n"
        "[docs](https://docs.example.com) ![pic](https://cdn.example.com/p.png) "
        "[mail](mailto:team@example.com)"
    )
    for fragment in (
        "<h2>Heading</h2>",  # h1 is the page title's, so headings start at h2
        "<h2>Sub</h2>",
        "<li>one</li>",
        "<ol>",
        "<blockquote>",
        "<code>code</code>",
        "<pre><code>print(1)",
        "<table>",
        "<td>1</td>",
        "<hr>",
        '<a href="https://docs.example.com" rel="noopener noreferrer nofollow">docs</a>',
        '<img alt="pic" src="https://cdn.example.com/p.png">',
        'href="mailto:team@example.com"',
    ):
        assert fragment in html, fragment


def test_images_must_be_https_and_links_absolute() -> None:
    html = render_markdown(
        "![a](http://plain.example.com/a.png) ![b](/local.png) [rel](/docs) [anchor](#x)"
    )
    assert "src=" not in html
    assert "href=" not in html


def test_image_sizes_are_kept_only_when_plain_numbers() -> None:
    html = sanitise('<img src="https://c.example/a.png" width="640" height="100%">')
    assert 'width="640"' in html and "height" not in html


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Dark mode", "dark-mode"),
        ("Héllo, Wörld! — 2.0", "hello-world-2-0"),
        ("  spaces   everywhere ", "spaces-everywhere"),
        ("🎉", "update"),
        ("word " * 40, "-".join(["word"] * 16)),
        ("x" * 120, "x" * 80),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://cdn.example.com/a.png", True),
        ("https://cdn.example.com/a.png?w=800&h=400", True),
        ("http://cdn.example.com/a.png", False),
        ("https:///no-host.png", False),
        ("//cdn.example.com/a.png", False),
        ("https://cdn.example.com/a b.png", False),
        ('https://cdn.example.com/a.png"onerror="x', False),
        ("https://[::1", False),
        ("https://cdn.example.com/" + "a" * 500, False),
        ("javascript:alert(1)", False),
    ],
)
def test_image_addresses(url: str, ok: bool) -> None:
    assert is_https_url(url) is ok

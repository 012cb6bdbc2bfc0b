"""The customer-facing changelog: pages, permalinks, Atom and JSON feeds, the embeddable widget.

Each view starts with `_gate_check()`: the production gate may block it unless an admin made
the changelog public on its own. A flag-linked entry shows on the pages when its flag is on for
this visitor; the feeds and the widget (read by anyone, anywhere) show it once it is on for all.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
)
from werkzeug.wrappers import Response

from server import clock, db, gate, snapshot
from server.access import Permission, current_principal, public
from server.announcements import feeds, readers, reveal, service
from server.announcements.links import LiveLinks
from server.announcements.models import Announcement, Category
from server.announcements.schemas import JsonFeed, WidgetFeed
from server.announcements.service import ChangelogView
from server.api import api_doc
from server.errors import Invalid, NotFound
from server.pagination import page_number
from server.visitor import secure_cookies, visitor_id
from server.web import client_address, vary_on

bp = Blueprint("changelog", __name__)
PAGE_SIZE = 10


def settings() -> ChangelogView:
    """The changelog settings, from the snapshot (no query per request)."""
    view: ChangelogView = snapshot.current()["changelog"]
    return view


def _gate_check() -> Response | None:
    """Let the production gate block this view, unless the changelog is public on its own.

    The gate already checks public pages before their view runs (and skips these while the
    changelog is public); asking again costs nothing and keeps each view closed by itself.
    """
    if settings().public:
        return None
    return gate.guard()


def _category(raw: str | None) -> Category | None:
    if not raw:
        return None
    try:
        return Category(raw)
    except ValueError:
        raise Invalid(f"There is no category {raw[:40]!r}; pick new, improved or fixed.") from None


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def _reader() -> readers.Reader | None:
    """The signed-in host product's user, remembered from signed reader context (or None)."""
    if "changelog_reader" not in g:
        cookie = request.cookies.get(readers.COOKIE)
        g.changelog_reader = readers.load_cookie(cookie, _secret(), clock.now())
    reader: readers.Reader | None = g.changelog_reader
    return reader


def _adopt_reader_context() -> Response | None:
    """A link from the widget carries signed reader context: remember it, then drop it from
    the address (303) so it does not linger in history, bookmarks or Referer headers."""
    if "context" not in request.args and "signature" not in request.args:
        return None
    reader = readers.verify(
        request.args.get("context"), request.args.get("signature"), _secret(), clock.now()
    )
    rest = [(k, v) for k, v in request.args.items(multi=True) if k not in ("context", "signature")]
    response = redirect(request.path + (f"?{urlencode(rest)}" if rest else ""), 303)
    response.headers["Cache-Control"] = "no-store"
    if reader is not None:  # unsigned context never changes what a reader sees
        max_age = 30 * 24 * 3600
        if reader.expires is not None:
            max_age = max(0, min(max_age, int(reader.expires - clock.now().timestamp())))
        response.set_cookie(
            readers.COOKIE,
            readers.dump_cookie(reader, _secret()),
            max_age=max_age,
            httponly=True,
            samesite="Lax",
            secure=secure_cookies(),
        )
    return response


def _hidden_for_this_visitor(now_linked: set[str]) -> set[str]:
    if not now_linked:
        return set()  # no linked entries: no need for a visitor cookie at all
    return reveal.hidden_for_visitor(now_linked, visitor_id(), client_address(), _reader())


def _for_everyone(limit: int, category: Category | None = None) -> list[Announcement]:
    s = db.session()
    hidden = reveal.hidden_for_everyone(service.linked_live_flags(s))
    entries, _ = service.list_live(s, hidden_flags=hidden, category=category, limit=limit)
    return entries


def _feed_title(category: Category | None) -> str:
    title = settings().title
    return f"{title}: {category.label}" if category is not None else title


def _is_team() -> bool:
    principal = current_principal()
    return principal is not None and principal.can(Permission.READ)


def _shareable(response: Response) -> Response:
    """Feeds and the widget: readable from any origin, revalidated cheaply by ETag."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    return response.make_conditional(request)


@bp.route("/changelog")
@public
def index() -> Response:
    """List the live announcements this visitor may see, newest first."""
    blocked = _gate_check()
    if blocked is not None:
        return blocked
    adopted = _adopt_reader_context()
    if adopted is not None:
        return adopted
    category = _category(request.args.get("category"))
    page = page_number()
    s = db.session()
    hidden = _hidden_for_this_visitor(service.linked_live_flags(s))
    entries, total = service.list_live(
        s,
        hidden_flags=hidden,
        category=category,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    response = make_response(
        render_template(
            "changelog/index.html",
            settings=settings(),
            links=LiveLinks(),
            entries=entries,
            category=category,
            categories=list(Category),
            page=page,
            pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            total=total,
            feed_links=LiveLinks().feeds(category),
            feed_title=_feed_title(category),
        )
    )
    return _personal(response)


def _personal(response: Response) -> Response:
    """A page that depends on this visitor's flags is theirs alone: never stored by caches."""
    if "visitor_id" in g or g.get("changelog_reader") is not None:
        response.headers["Cache-Control"] = "private, no-store"
        vary_on(response, "Cookie")
    return response


@bp.route("/changelog/-/subscribe")
@public
def subscribe() -> Response:
    """Explain how to follow the changelog in a feed reader, with every feed's address."""
    blocked = _gate_check()
    if blocked is not None:
        return blocked
    links = LiveLinks()
    return make_response(
        render_template(
            "changelog/subscribe.html",
            settings=settings(),
            links=links,
            choices=[(None, "All updates"), *((c, c.label) for c in Category)],
        )
    )


@bp.route("/changelog/<slug>")
@public
def entry(slug: str) -> Response:
    """Show one announcement; an old slug redirects (301) to the current one."""
    blocked = _gate_check()
    if blocked is not None:
        return blocked
    adopted = _adopt_reader_context()
    if adopted is not None:
        return adopted
    s = db.session()
    a = service.find_by_slug(s, slug)
    live = service.is_live(a)
    visible = live and (a.flag is None or not _hidden_for_this_visitor({a.flag}))
    if not visible and not _is_team():
        raise NotFound("No update lives at this address.")
    if a.slug != slug:
        return redirect(LiveLinks().entry(a), 301)
    response = make_response(
        render_template(
            "changelog/entry.html",
            settings=settings(),
            links=LiveLinks(),
            a=a,
            team_note=None if visible else _team_note(a, live),
        )
    )
    return _personal(response)


def _team_note(a: Announcement, live: bool) -> str:
    status = service.effective_status(a)
    if not live:
        return (
            f"Only the team sees this page: the announcement is {status.value}, so customers "
            "get “not found” here."
        )
    return (
        f"Only the team sees this page right now: the linked flag “{a.flag}” is off for you, "
        "so customers see it once the flag is on for them."
    )


@bp.route("/changelog.atom")
@public
def atom() -> Response:
    """Serve the Atom 1.0 feed of the latest announcements on for everyone (`?category=`)."""
    blocked = _gate_check()
    if blocked is not None:
        return blocked
    category = _category(request.args.get("category"))
    entries = _for_everyone(feeds.FEED_SIZE, category)
    body = feeds.atom_feed(_feed_title(category), LiveLinks().feeds(category), entries)
    return _shareable(Response(body, mimetype=feeds.ATOM_TYPE))


@bp.route("/changelog.json")
@public
@api_doc(
    "The changelog as a JSON Feed 1.1",
    responses={200: JsonFeed},
    tag="changelog",
    content_type=feeds.JSON_FEED_TYPE,
)
def json_feed() -> Response:
    """Serve the JSON Feed 1.1 of the latest announcements on for everyone (`?category=`)."""
    blocked = _gate_check()
    if blocked is not None:
        return blocked
    category = _category(request.args.get("category"))
    entries = _for_everyone(feeds.FEED_SIZE, category)
    doc = feeds.json_feed(_feed_title(category), LiveLinks().feeds(category), entries)
    return _shareable(Response(json.dumps(doc), mimetype=feeds.JSON_FEED_TYPE))


@bp.route("/changelog/widget.json")
@public
@api_doc(
    "The latest announcements for the embeddable widget (CORS: any origin)",
    responses={200: WidgetFeed},
    tag="changelog",
)
def widget_json() -> Response:
    """Serve the latest announcements for the widget, as plain text: those on for everyone, and
    with signed reader context (`context`, `signature`) also those on for that reader."""
    blocked = _gate_check()
    if blocked is not None:
        blocked.headers["Access-Control-Allow-Origin"] = "*"  # so the widget can say why
        return blocked
    reader = readers.verify(
        request.args.get("context"), request.args.get("signature"), _secret(), clock.now()
    )
    if reader is None:
        entries = _for_everyone(feeds.WIDGET_SIZE)
    else:
        s = db.session()
        hidden = reveal.hidden_for_reader(service.linked_live_flags(s), reader, client_address())
        entries, _ = service.list_live(s, hidden_flags=hidden, limit=feeds.WIDGET_SIZE)
    doc = feeds.widget_feed(settings().title, LiveLinks().feeds(), entries)
    response = _shareable(Response(json.dumps(doc), mimetype="application/json"))
    if reader is not None:
        response.headers["Cache-Control"] = "private, no-store"  # this reader's answer alone
    return response


@bp.route("/widget.js")
@public
def widget_js() -> Response:
    """Serve the embeddable "What's new" widget script, even while the changelog is closed."""
    script = Path(current_app.static_folder or "static") / "js" / "widget.js"
    response = _shareable(Response(script.read_bytes(), mimetype="text/javascript"))
    response.headers["Cache-Control"] = "public, max-age=300"  # no secrets: it only fetches
    return response

"""What an announcement may hold, judged the same way for the API and the editor form."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import lru_cache
from importlib import resources

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from server.announcements.models import Category, Status
from server.announcements.render import is_https_url
from server.api import StrictModel

TITLE_MAX = 120
SUMMARY_MAX = 300
BODY_MAX = 50_000


@lru_cache(maxsize=1)
def timezones() -> tuple[str, ...]:
    """Every IANA zone this machine knows, UTC first (only UTC when it has no zone data)."""
    return ("UTC", *sorted(z for z in zoneinfo.available_timezones() if z != "UTC"))


@lru_cache(maxsize=1)
def canonical_timezones() -> tuple[str, ...]:
    """The zones to offer, UTC first: those the tz database's zone.tab names (one or more per
    country, current names only), so aliases such as Asia/Calcutta, US/Eastern, Etc/GMT+5,
    Factory or localtime are left out. Any zone this machine knows is still accepted."""
    try:
        table = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # no tzdata package: offer what we know
        return timezones()
    known = set(timezones())
    names = {
        line.split("\t")[2]
        for line in table.splitlines()
        if line and not line.startswith("#") and len(line.split("\t")) >= 3
    }
    return ("UTC", *sorted(names & known))


def _check_timezone(value: str) -> str:
    if value not in timezones():
        raise ValueError("must be an IANA time zone name such as UTC or Europe/Oslo")
    return value


def _check_image_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not is_https_url(value):
        raise ValueError("must be an absolute https:// address of an image")
    return value


def _blank_is_none(value: str | None) -> str | None:
    return value or None


class AnnouncementIn(StrictModel):
    """An announcement as the API creates it (and as an edit is checked once merged)."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    body: str = Field("", max_length=BODY_MAX, description="Markdown")
    summary: str = Field("", max_length=SUMMARY_MAX, description="One or two plain sentences")
    category: Category = Category.NEW
    status: Status = Status.DRAFT
    publish_at: AwareDatetime | None = Field(
        None,
        description="With a UTC offset. Required for `scheduled` (in the future); for "
        "`published` it may back-date the entry and defaults to now.",
    )
    timezone: str = Field("UTC", max_length=64, description="Zone the editor shows times in")
    flag: str | None = Field(
        None, max_length=100, description="Linked flag: shown once it is on in production"
    )
    image_url: str | None = Field(None, max_length=500, description="An https:// image")
    image_alt: str = Field("", max_length=200)

    _tz = field_validator("timezone")(_check_timezone)
    _image = field_validator("image_url")(_check_image_url)
    _flag = field_validator("flag")(_blank_is_none)


class AnnouncementPatch(StrictModel):
    """Fields to change; absent fields stay as they are, `flag: null` unlinks the flag."""

    title: str | None = Field(None, min_length=1, max_length=TITLE_MAX)
    body: str | None = Field(None, max_length=BODY_MAX)
    summary: str | None = Field(None, max_length=SUMMARY_MAX)
    category: Category | None = None
    status: Status | None = None
    publish_at: AwareDatetime | None = None
    timezone: str | None = Field(None, max_length=64)
    flag: str | None = Field(None, max_length=100)
    image_url: str | None = Field(None, max_length=500)
    image_alt: str | None = Field(None, max_length=200)
    version: int | None = Field(
        None, ge=1, description="The version your edit is based on; a newer one gives 409"
    )


class AnnouncementOut(BaseModel):
    id: int
    slug: str
    url: str
    title: str
    summary: str
    body: str
    html: str
    category: Category
    status: Status
    live: bool
    publish_at: datetime | None
    timezone: str
    flag: str | None
    image_url: str | None
    image_alt: str
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


class AnnouncementList(BaseModel):
    items: list[AnnouncementOut]
    total: int


class AnnouncementsQuery(StrictModel):
    status: Status | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000_000)


class PreviewIn(StrictModel):
    body: str = Field("", max_length=BODY_MAX)


class PreviewOut(BaseModel):
    html: str


# ---- public JSON: the JSON Feed (https://www.jsonfeed.org/version/1.1/) and the widget ----------


class FeedAuthor(BaseModel):
    name: str


class FeedItem(BaseModel):
    id: str
    url: str
    title: str
    content_html: str
    summary: str
    date_published: str
    date_modified: str
    tags: list[str]
    image: str | None = None


class JsonFeed(BaseModel):
    version: str
    title: str
    home_page_url: str
    feed_url: str
    description: str
    language: str
    authors: list[FeedAuthor]
    items: list[FeedItem]


class WidgetItem(BaseModel):
    id: str
    url: str
    title: str
    summary: str
    category: Category
    category_label: str
    date_published: str


class WidgetFeed(BaseModel):
    title: str
    changelog_url: str
    items: list[WidgetItem]

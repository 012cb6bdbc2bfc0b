"""The one page-number parser for every paginated page and API (`?page=`, `?history=`).

On pages a page number is never an error and never a 500: anything that is not a positive whole
number (missing, `abc`, `-3`, `0`, a superscript digit) means page 1, and a number above
`MAX_PAGE` (`?page=` followed by 30 nines) means `MAX_PAGE`, a page past the end, which each
list shows as it shows any page past its end (flags and audit: the last page; deploys and
changelog: an empty page that links back). JSON APIs declare `PageNumber` and answer 400 for
the same inputs. Either way the offsets fit a 64-bit integer.
"""

from __future__ import annotations

from typing import Annotated

from flask import request
from pydantic import Field

MAX_PAGE = 1_000_000


def parse_page(raw: str | None) -> int:
    """The 1-based page number in `raw`, clamped to 1..MAX_PAGE; unusable text means 1."""
    text = (raw or "").strip()
    if not (text.isascii() and text.isdigit()):
        return 1
    # Only the length is looked at for long numbers, so a million digits cost nothing.
    number = int(text) if len(text) <= len(str(MAX_PAGE)) else MAX_PAGE
    return max(1, min(number, MAX_PAGE))


# A `page` field of an API's query model. APIs are strict where pages forgive: anything but a
# whole number from 1 to MAX_PAGE is a 400 naming the field (a program should learn its
# mistake), never a 500.
PageNumber = Annotated[int, Field(ge=1, le=MAX_PAGE)]


def page_number(name: str = "page") -> int:
    """The page asked for in this request's query string (`name`, default `page`)."""
    return parse_page(request.args.get(name))


def last_page(total: int, per_page: int) -> int:
    """How many pages `total` rows fill (at least one, so an empty list has page 1)."""
    return max((total + per_page - 1) // per_page, 1)

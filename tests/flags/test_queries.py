"""The flags table's query: filters, sorting and paging done by the database, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from server import clock, db
from server.flags import queries, service
from server.flags.queries import Archived, FlagFilters, Sort
from server.segments import queries as segment_queries
from tests.common.flags_ui import add_strategy, enable, make_flag, make_segment


def names(page: queries.FlagPage) -> list[str]:
    return [row.flag.name for row in page.rows]


def test_tags_filter_and_list_on_this_backend(app: Flask) -> None:
    make_flag(app, "a", tags=["web", "team:x"])
    make_flag(app, "b", tags=["web_ui"])
    make_flag(app, "c")
    with app.app_context():
        s = db.session()
        assert names(queries.list_flags(s, FlagFilters(tag="web"))) == ["a"]
        assert names(queries.list_flags(s, FlagFilters(tag="web_ui"))) == ["b"]
        assert names(queries.list_flags(s, FlagFilters(tag="we"))) == []
        assert queries.all_tags(s) == ["team:x", "web", "web_ui"]


def test_text_search_treats_wildcards_literally(app: Flask) -> None:
    make_flag(app, "a_b")
    make_flag(app, "axb", description="100% done")
    with app.app_context():
        s = db.session()
        assert names(queries.list_flags(s, FlagFilters(text="a_b"))) == ["a_b"]
        assert names(queries.list_flags(s, FlagFilters(text="100%"))) == ["axb"]
        assert names(queries.list_flags(s, FlagFilters(text="A"))) == ["a_b", "axb"]


def test_stale_filter_matches_the_service_rule(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day, (name, flag_type) in enumerate(
        [("rel", "release"), ("ops", "operational"), ("kill", "kill-switch"), ("exp", "experiment")]
    ):
        monkeypatch.setattr(clock, "now", lambda day=day: start + timedelta(days=day))
        make_flag(app, name, type=flag_type)
    make_flag(app, "marked", stale=True)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(days=41, hours=12))
    with app.app_context():
        s = db.session()
        page = queries.list_flags(s, FlagFilters(stale=True))
        assert names(page) == ["marked", "ops", "rel"]
        everything = queries.list_flags(s, FlagFilters())
        assert {r.flag.name for r in everything.rows if r.potentially_stale} == set(names(page))
        assert all(service.potentially_stale(r.flag) == r.potentially_stale for r in page.rows)


def test_state_archive_sort_and_page_bounds(app: Flask) -> None:
    for name in ("b", "a", "c"):
        make_flag(app, name, type="experiment" if name == "a" else "release")
    enable(app, "b", "production")
    make_flag(app, "gone")
    with app.app_context():
        s = db.session()
        service.archive_flag(s, service.Actor("t"), "gone")
        on = FlagFilters(environment="production", enabled=True)
        assert names(queries.list_flags(s, on)) == ["b"]
        off = FlagFilters(environment="production", enabled=False)
        assert names(queries.list_flags(s, off)) == ["a", "c"]
        assert names(queries.list_flags(s, FlagFilters(archived=Archived.ARCHIVED))) == ["gone"]
        assert len(queries.list_flags(s, FlagFilters(archived=Archived.ALL)).rows) == 4
        assert names(queries.list_flags(s, FlagFilters(), Sort.TYPE)) == ["a", "b", "c"]
        assert names(queries.list_flags(s, FlagFilters(), Sort.CREATED_DESC)) == ["c", "a", "b"]
        paged = queries.list_flags(s, FlagFilters(), Sort.NAME, page=2, per_page=2)
        assert names(paged) == ["c"] and (paged.total, paged.pages, paged.first) == (3, 2, 3)
        clamped = queries.list_flags(s, FlagFilters(), Sort.NAME, page=-4, per_page=2)
        assert clamped.page == 1
        empty = queries.list_flags(s, FlagFilters(text="zzz"))
        assert (empty.total, empty.pages, empty.first, empty.last) == (0, 1, 0, 0)


def test_rows_carry_environments_strategy_counts_and_segment_usage(app: Flask) -> None:
    seg = make_segment(app, "beta")
    make_flag(app, "f")
    add_strategy(app, "f", "development", name="default", segments=[seg])
    add_strategy(app, "f", "development", name="default", disabled=True)
    add_strategy(app, "f", "production", name="default", segments=[seg])
    with app.app_context():
        s = db.session()
        (row,) = queries.list_flags(s, FlagFilters()).rows
        assert sorted(row.environments) == ["development", "production"]
        assert row.strategy_counts == {"development": 1, "production": 1}
        assert segment_queries.segment_usage(s) == {
            seg: [("f", "development"), ("f", "production")]
        }
        assert queries.flag_names(s, exclude="f") == []
        assert queries.strategy_counts(s, []) == {}

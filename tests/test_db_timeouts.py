"""Bounded waits on PostgreSQL: statements, answers and transactions all have an end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from server import db
from server.auth.models import ApiToken as Token
from tests.conftest import Database, make_app


@pytest.fixture
def pg_app(database: Database, tmp_path: Any) -> Iterator[Flask]:
    if database.backend != "postgresql":
        pytest.skip("the database timeouts are PostgreSQL's")
    application = make_app(
        database.fresh_url(tmp_path), DB_STATEMENT_TIMEOUT_MS=300, DB_TRANSACTION_TIMEOUT_MS=500
    )
    yield application
    application.extensions["db.engine"].dispose()
    database.reset()


def test_a_slow_statement_is_cancelled_by_the_server(pg_app: Flask) -> None:
    with pg_app.app_context(), pytest.raises(OperationalError, match="statement timeout"):
        db.session().execute(text("SELECT pg_sleep(5)"))


def test_a_request_transaction_older_than_the_limit_is_rolled_back_not_committed(
    pg_app: Flask, make_token: Callable[..., str]
) -> None:
    make_token("admin", name="kept")
    with pg_app.test_request_context("/"):
        s = db.session()
        token = s.scalars(select(Token).where(Token.name == "kept")).one()
        token.name = "renamed-late"
        s.flush()
        for _ in range(3):  # 0.9 s in all (the client has given up), never idle 0.5 s
            time.sleep(0.3)
            s.execute(text("SELECT 1"))
        with pytest.raises(OperationalError, match="rolled back"):
            s.commit()
    with pg_app.app_context():
        names = db.session().scalars(select(Token.name)).all()
    assert names == ["kept"]


def test_commands_are_not_held_to_the_request_transaction_limit(
    pg_app: Flask, make_token: Callable[..., str]
) -> None:
    make_token("admin", name="kept")
    with pg_app.app_context():
        s = db.session()
        s.scalars(select(Token).where(Token.name == "kept")).one().name = "renamed"
        s.flush()
        for _ in range(3):  # 0.9 s in all, never idle as long as the server's 0.5 s limit
            time.sleep(0.3)
            s.execute(text("SELECT 1"))
        s.commit()
        assert db.session().scalars(select(Token.name)).all() == ["renamed"]

"""Fixtures for operations tests: cheap password hashing, a PostgreSQL of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from tests.ops.pg import PrivatePostgres, require_postgres_bin


@pytest.fixture(scope="module")
def private_postgres(request: pytest.FixtureRequest) -> Iterator[PrivatePostgres]:
    """A PostgreSQL server this module may stop and start (runs in the PostgreSQL pass)."""
    if request.config.getoption("--backend") != "postgresql":
        pytest.skip("tests with a private PostgreSQL run in the PostgreSQL pass")
    with PrivatePostgres.create(require_postgres_bin()) as pg:
        yield pg


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    import server.models  # noqa: F401 - imports features in an order free of import cycles
    from server.auth import service as auth

    # Real argon2, minimal cost: verification reads the parameters from each hash.
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))

"""Operations tests create many users: hash their passwords with cheap argon2 parameters."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    import server.models  # noqa: F401 - imports features in an order free of import cycles
    from server.auth import service as auth

    # Real argon2, minimal cost: verification reads the parameters from each hash.
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))

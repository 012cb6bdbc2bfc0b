"""Password rules from NIST SP 800-63B: length, no composition rules, no common passwords.

A new password must be MIN_PASSWORD to MAX_PASSWORD characters (any characters: spaces and
every Unicode letter count), must not be one of the 30,000 most common passwords (the list
the `zxcvbn` package ships, from leaked-password corpora), and must not be the account's own
email address or its name part. Nothing else: no "one digit and one symbol" rules, which
800-63B advises against.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from functools import lru_cache
from pathlib import Path

MIN_PASSWORD = 10
MAX_PASSWORD = 1000  # hashing cost grows with length; nobody types more (NIST: at least 64)
# Words that make a password guessable on this very service.
CONTEXT_WORDS = ("darklaunch",)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The common-password list, lower-cased (loaded once per process, at the first check).

    Only zxcvbn's list module is run, not the package: importing `zxcvbn` builds ranked
    dictionaries of all its word lists (tens of MB per worker) that this check never uses.
    """
    found = importlib.util.find_spec("zxcvbn")
    if found is None or found.origin is None:  # pragma: no cover - a declared dependency
        raise RuntimeError("the zxcvbn package (its common-password list) is not installed")
    path = Path(found.origin).with_name("frequency_lists.py")
    spec = importlib.util.spec_from_file_location("_darklaunch_common_passwords", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not kept in sys.modules: the other lists are freed
    return frozenset(word.lower() for word in module.FREQUENCY_LISTS["passwords"])


def _normal(text: str) -> str:
    # NIST asks for Unicode normalisation (NFKC) before comparing.
    return unicodedata.normalize("NFKC", text).casefold()


def password_problem(password: str, email: str = "") -> str | None:
    """Why `password` may not be used by the account `email`, or None when it may."""
    if len(password) < MIN_PASSWORD:
        return f"Use at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return f"Use at most {MAX_PASSWORD} characters."
    normal = _normal(password)
    squeezed = "".join(normal.split())
    if normal in common_passwords() or squeezed in common_passwords():
        return "That password is one of the most common ones: choose another."
    email = _normal(email)
    local = email.partition("@")[0]
    if email and (normal == email or squeezed in (local, email)):
        return "Do not use your email address as your password."
    if any(squeezed == word or squeezed.rstrip("0123456789") == word for word in CONTEXT_WORDS):
        return "Do not use the name of this service as your password."
    if len(set(squeezed)) < 3:
        return "That password repeats one or two characters: choose another."
    return None

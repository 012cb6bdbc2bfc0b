"""The app's routes as concrete calls: every (method, URL) the URL map routes, with its access.

Walked by the access tests and by the tests that send every endpoint odd input (nested JSON,
huge page numbers), so endpoints added by any feature are covered without listing them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule
from werkzeug.routing.converters import AnyConverter, ValidationError

from server.access import AccessRule, access_of

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SAMPLES = ["1", "sample", str(uuid.UUID(int=1)), "1.5", "sample/path", "-1"]


@dataclass(frozen=True)
class Call:
    endpoint: str
    method: str
    path: str
    access: AccessRule

    @property
    def is_api(self) -> bool:
        return self.path.startswith(("/api/", "/ofrep/"))

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.endpoint})"


def sample_value(rule: Rule, name: str) -> str:
    """A value the rule's converter accepts for `name` (e.g. 1 for <int:id>)."""
    converter = rule._converters[name]  # werkzeug keeps each argument's converter here
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    for candidate in SAMPLES:
        if re.fullmatch(converter.regex, candidate):
            try:
                converter.to_python(candidate)
            except ValidationError:
                continue
            return candidate
    raise AssertionError(f"no sample value for <{name}> in {rule.rule}; add one to SAMPLES")


def calls(app: Flask) -> Iterator[Call]:
    """Every (method, concrete URL) the app routes, with the access rule of its view."""
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        values = {
            name: sample_value(rule, name)
            for name in rule.arguments
            if name not in (rule.defaults or {})
        }
        built = rule.build(values, append_unknown=False)
        assert built is not None, rule.rule
        path = built[1]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            try:
                endpoint, _ = adapter.match(path, method=method)
            except HTTPException:  # pragma: no cover - a rule shadowed by a redirect
                continue
            if endpoint != rule.endpoint:
                continue  # another rule wins for this sample URL; it is checked on its own
            rule_access = access_of(app.view_functions[endpoint])
            assert rule_access is not None
            yield Call(endpoint, method, path, rule_access)

"""JSON Patch (RFC 6902) for the admin API's PATCH endpoints, as Unleash accepts them.

Supports `add`, `remove`, `replace` and `test`; the patched document is then validated by the
same rules as a full write, so a patch can never store what a PUT could not.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import Field, RootModel

from server.api import StrictModel
from server.errors import Invalid


class PatchOperation(StrictModel):
    op: Literal["add", "remove", "replace", "test"]
    path: str = Field(max_length=500, description="A JSON Pointer, e.g. /parameters/rollout")
    value: Any = None


class Patches(RootModel[list[PatchOperation]]):
    """A JSON Patch document: a list of operations applied in order."""

    root: list[PatchOperation] = Field(max_length=100)


class _PatchError(Exception):
    pass


def apply_patch(document: Any, operations: list[PatchOperation]) -> Any:
    """Apply `operations` to a copy of `document`; a bad operation is Invalid, naming which."""
    result = copy.deepcopy(document)
    for number, operation in enumerate(operations, start=1):
        try:
            result = _apply(result, operation)
        except _PatchError as exc:
            message = f"Patch operation {number} ({operation.op} {operation.path or '/'}): {exc}"
            raise Invalid(message, {"fields": {f"{number - 1}.path": str(exc)}}) from None
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _PatchError("a path starts with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _value(operation: PatchOperation) -> Any:
    if "value" not in operation.model_fields_set:
        raise _PatchError(f"{operation.op} needs a value")
    return copy.deepcopy(operation.value)


def _index(part: str, size: int) -> int:
    if not part.isdigit() or (len(part) > 1 and part.startswith("0")):
        raise _PatchError(f"{part!r} is not an array index")
    index = int(part)
    if index >= size:
        raise _PatchError(f"index {index} is past the end of the array")
    return index


def _child(container: Any, token: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise _PatchError(f"there is no {token!r} here")
        return container[token]
    if isinstance(container, list):
        return container[_index(token, len(container))]
    raise _PatchError(f"cannot look inside a {type(container).__name__} for {token!r}")


def _apply(document: Any, operation: PatchOperation) -> Any:
    tokens = _pointer(operation.path)
    if not tokens:
        if operation.op == "remove":
            raise _PatchError("cannot remove the whole document")
        if operation.op == "test":
            if document != _value(operation):
                raise _PatchError("the test failed: the value differs")
            return document
        return _value(operation)
    parent = document
    for token in tokens[:-1]:
        parent = _child(parent, token)
    last = tokens[-1]
    if operation.op == "test":
        if _child(parent, last) != _value(operation):
            raise _PatchError("the test failed: the value differs")
    elif isinstance(parent, dict):
        if operation.op == "add":
            parent[last] = _value(operation)
        elif last not in parent:
            raise _PatchError(f"there is no {last!r} to {operation.op}")
        elif operation.op == "replace":
            parent[last] = _value(operation)
        else:
            del parent[last]
    elif isinstance(parent, list):
        if operation.op == "add":
            if last == "-":
                parent.append(_value(operation))
            else:
                parent.insert(_index(last, len(parent) + 1), _value(operation))
        elif operation.op == "replace":
            parent[_index(last, len(parent))] = _value(operation)
        else:
            del parent[_index(last, len(parent))]
    else:
        raise _PatchError(f"cannot change inside a {type(parent).__name__}")
    return document

"""JSON Patch as the admin API applies it: add, remove, replace, test."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import Invalid
from server.flags.patch import PatchOperation, apply_patch


def patch(document: Any, *operations: dict[str, Any]) -> Any:
    return apply_patch(document, [PatchOperation.model_validate(op) for op in operations])


def test_operations_apply_in_order_to_a_copy() -> None:
    original = {"parameters": {"rollout": "10"}, "segments": [1, 3], "title": ""}
    result = patch(
        original,
        {"op": "replace", "path": "/parameters/rollout", "value": "20"},
        {"op": "add", "path": "/segments/1", "value": 2},
        {"op": "add", "path": "/segments/-", "value": 4},
        {"op": "remove", "path": "/title"},
        {"op": "add", "path": "/a~1b", "value": "slash"},
        {"op": "add", "path": "/t~0ilde", "value": "tilde"},
        {"op": "test", "path": "/segments/0", "value": 1},
    )
    assert result == {
        "parameters": {"rollout": "20"},
        "segments": [1, 2, 3, 4],
        "a/b": "slash",
        "t~ilde": "tilde",
    }
    assert original == {"parameters": {"rollout": "10"}, "segments": [1, 3], "title": ""}


def test_the_whole_document_can_be_replaced_or_tested() -> None:
    assert patch([1], {"op": "replace", "path": "", "value": [2]}) == [2]
    assert patch([1], {"op": "test", "path": "", "value": [1]}) == [1]
    assert patch(
        [1, 2], {"op": "replace", "path": "/0", "value": 9}, {"op": "remove", "path": "/1"}
    ) == [9]


@pytest.mark.parametrize(
    ("document", "operation", "words"),
    [
        ({}, {"op": "remove", "path": ""}, "whole document"),
        ({}, {"op": "test", "path": "", "value": {"x": 1}}, "test failed"),
        ({}, {"op": "add", "path": "no-slash", "value": 1}, "starts with '/'"),
        ({"a": 1}, {"op": "replace", "path": "/a"}, "needs a value"),
        ({}, {"op": "remove", "path": "/a/b"}, "there is no 'a'"),
        ({"a": 1}, {"op": "add", "path": "/a/b", "value": 1}, "inside a int"),
        ({"a": 1}, {"op": "remove", "path": "/a/b/c"}, "look inside a int"),
        ({"a": []}, {"op": "add", "path": "/a/01", "value": 1}, "not an array index"),
        ({"a": []}, {"op": "add", "path": "/a/x", "value": 1}, "not an array index"),
        ({"a": [1]}, {"op": "replace", "path": "/a/1", "value": 1}, "past the end"),
        ({"a": [1]}, {"op": "remove", "path": "/a/1/x"}, "past the end"),
        ({"a": [1]}, {"op": "test", "path": "/a/0", "value": 2}, "test failed"),
    ],
)
def test_bad_operations_are_invalid_and_name_the_operation(
    document: Any, operation: dict[str, Any], words: str
) -> None:
    with pytest.raises(Invalid) as err:
        patch(document, {"op": "test", "path": "", "value": document}, operation)
    assert err.value.message.startswith("Patch operation 2 (")
    assert words in err.value.message
    assert "1.path" in err.value.details["fields"]

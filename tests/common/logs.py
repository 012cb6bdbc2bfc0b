"""Reading what the app logged: access lines are written by a thread of their own, so a test
waits for them to be written before it reads standard error."""

from __future__ import annotations

import pytest

from server.ops import access_log


def captured(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureResult[str]:
    """`capsys.readouterr()` once every access line queued so far has been written."""
    assert access_log.flush(), "the access-log writer did not catch up within 5 s"
    return capsys.readouterr()

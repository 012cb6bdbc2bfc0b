"""`darklaunch stream` options."""

from __future__ import annotations

import click
import pytest
from flask.testing import FlaskCliRunner

from server.streaming.cli import parse_bind


def test_bind_is_host_and_port() -> None:
    assert parse_bind("127.0.0.1:8001") == ("127.0.0.1", 8001)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    for bad in ("8001", ":8001", "host:", "host:0", "host:70000", "host:x"):
        with pytest.raises(click.BadParameter):
            parse_bind(bad)


def test_a_bad_bind_is_refused_before_serving(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["stream", "--bind", "nowhere"])
    assert result.exit_code == 2
    assert "is not HOST:PORT" in result.output

"""The access-log writer thread: lines in order, at the time the request ended, none lost."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from server.config import AccessLogMode
from server.ops.access_log import AccessLine, Writer, write_access_line, writer_for


class Recorder(logging.Handler):
    """Collects darklaunch.access records; slow on purpose, so a backlog builds up."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        super().__init__()
        self.delay = delay
        self.fail_on = fail_on
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        time.sleep(self.delay)
        if record.__dict__.get("request_id") == self.fail_on:
            raise RuntimeError("this handler refuses the line")
        self.records.append(record)

    def handleError(self, record: logging.LogRecord) -> None:
        raise


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    logger = logging.getLogger("darklaunch.access")
    handler = Recorder(delay=0.001)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def line(request_id: str, ended: float = 1_700_000_000.25) -> AccessLine:
    return AccessLine(request_id, "GET", "/x", 200, 0.001, "x", None, "127.0.0.1", ended)


def test_flush_waits_for_every_queued_line_in_order(recorder: Recorder) -> None:
    writer = Writer()
    ids = [f"r{i:03d}" for i in range(200)]
    for request_id in ids:
        writer.put(line(request_id))
    assert len(recorder.records) < len(ids)  # the lines are written later, not by put
    assert writer.flush(timeout=10)
    assert [r.__dict__["request_id"] for r in recorder.records] == ids


def test_a_line_carries_the_time_its_request_ended(recorder: Recorder) -> None:
    writer = Writer()
    writer.put(line("late", ended=1_700_000_000.25))
    assert writer.flush()
    (record,) = recorder.records
    assert record.created == 1_700_000_000.25
    assert record.msecs == pytest.approx(250)


def test_a_line_that_fails_does_not_stop_the_ones_after_it(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.fail_on = "broken"
    writer = Writer()
    for request_id in ("before", "broken", "after"):
        writer.put(line(request_id))
    assert writer.flush()
    assert [r.__dict__["request_id"] for r in recorder.records] == ["before", "after"]
    assert "an access line could not be written" in caplog.text


def test_a_forked_child_writes_what_it_queued_without_the_parents_thread(
    recorder: Recorder,
) -> None:
    writer = Writer()
    writer.put(line("parent"))
    assert writer.flush()
    writer.after_fork()  # as in a gunicorn worker: the parent's thread does not exist there
    writer._queue.put(line("child"))  # queued while no thread runs
    assert writer.flush()  # no thread: the caller writes the queue itself
    assert [r.__dict__["request_id"] for r in recorder.records] == ["parent", "child"]


def test_the_writer_thread_starts_once_under_concurrent_requests(recorder: Recorder) -> None:
    writer = Writer()
    threads = [threading.Thread(target=writer.put, args=(line(f"t{i}"),)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writer.flush()
    assert sorted(r.__dict__["request_id"] for r in recorder.records) == sorted(
        f"t{i}" for i in range(20)
    )
    assert sum(t.name == "access-log" and t.is_alive() for t in threading.enumerate()) >= 1


@pytest.mark.parametrize("app_config", [{"ACCESS_LOG": AccessLogMode.INLINE}], ids=["inline"])
def test_inline_mode_writes_the_line_before_the_response_returns(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = client.get("/-/health", headers={"X-Request-ID": "inline-1"})
    err = capsys.readouterr().err  # no flush: the line must already be there
    entries = [json.loads(text) for text in err.splitlines() if text.strip()]
    access = [e for e in entries if e["logger"] == "darklaunch.access"]
    assert [e["request_id"] for e in access] == ["inline-1"]
    assert response.headers["X-Request-ID"] == "inline-1"
    assert writer_for(client.application) is write_access_line

"""Which SDK instances are connected by stream right now (the Clients page shows them).

Only a stream process knows its open streams, and there may be several processes on several
hosts. Each one keeps a row per open stream in `sdk_streams` under its own process key: a
stream's row is inserted soon after it opens and deleted soon after it closes (a flush follows
each change within FLUSH_DELAY), and every REFRESH seconds the process marks all its rows as
seen. A process that dies without cleaning up leaves rows that stop being refreshed: readers
ignore rows not seen for EXPIRY, and the next flush of any process deletes them.

When the database is unreachable the flush fails and is tried again later; the streams are not
affected (the page is only as fresh as the last flush that got through).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, UniqueConstraint, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from server import clock
from server.db import Base
from server.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

REFRESH = 15.0  # seconds between marking this process's rows as seen
EXPIRY = timedelta(seconds=60)  # a row not seen for this long belongs to a process that died
FLUSH_DELAY = 0.25  # seconds: streams opened or closed together are written together


class SdkStream(Base):
    """One open SDK stream on one stream process."""

    __tablename__ = "sdk_streams"
    # Live state of running processes: an export of it would be stale before it was imported.
    __table_args__ = (UniqueConstraint("process", "stream"), {"info": {"export": False}})

    id: Mapped[int] = mapped_column(primary_key=True)
    process: Mapped[str] = mapped_column(String(100))  # host:pid:random, one per process run
    stream: Mapped[str] = mapped_column(String(40))  # the stream's key within its process
    kind: Mapped[str] = mapped_column(String(20))  # unleash or ofrep
    app_name: Mapped[str] = mapped_column(String(255), default="")
    instance_id: Mapped[str] = mapped_column(String(255), default="")
    connection_id: Mapped[str] = mapped_column(String(100), default="")
    sdk_version: Mapped[str] = mapped_column(String(255), default="")
    environment: Mapped[str] = mapped_column(String(100))
    token_name: Mapped[str] = mapped_column(String(255), default="")
    opened_at: Mapped[datetime]
    seen_at: Mapped[datetime] = mapped_column(index=True)


@dataclass(frozen=True)
class StreamInfo:
    """What a stream's request said about its SDK, and when it opened."""

    kind: str
    environment: str
    token_name: str
    app_name: str
    instance_id: str
    connection_id: str
    sdk_version: str
    opened_at: datetime


def stream_info(
    headers: Mapping[str, str], kind: str, environment: str, principal_label: str
) -> StreamInfo:
    """The SDK's identity from its headers (Unleash SDKs send these on every request)."""
    app_name = headers.get("Unleash-AppName") or headers.get("User-Agent") or ""
    return StreamInfo(
        kind=kind,
        environment=environment,
        token_name=principal_label.removeprefix("token:")[:255],
        app_name=app_name[:255],
        instance_id=headers.get("Unleash-InstanceId", "")[:255],
        connection_id=headers.get("Unleash-Connection-Id", "")[:100],
        sdk_version=headers.get("Unleash-Sdk", "")[:255],
        opened_at=clock.now(),
    )


def process_key() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def sync(
    session: Session,
    process: str,
    current: Mapping[str, StreamInfo],
    written: set[str],
    now: datetime,
) -> None:
    """Bring this process's rows to `current` (`written`: the keys the last sync left)."""
    gone = written - current.keys()
    if gone:
        session.execute(
            delete(SdkStream).where(SdkStream.process == process, SdkStream.stream.in_(gone))
        )
    added = [
        {
            "process": process,
            "stream": key,
            "kind": info.kind,
            "app_name": info.app_name,
            "instance_id": info.instance_id,
            "connection_id": info.connection_id,
            "sdk_version": info.sdk_version,
            "environment": info.environment,
            "token_name": info.token_name,
            "opened_at": info.opened_at,
            "seen_at": now,
        }
        for key, info in current.items()
        if key not in written
    ]
    if added:  # one executemany: thousands of streams reconnect together after a restart
        session.execute(insert(SdkStream), added)
    session.execute(update(SdkStream).where(SdkStream.process == process).values(seen_at=now))
    session.execute(delete(SdkStream).where(SdkStream.seen_at < now - EXPIRY))


def forget(session: Session, process: str) -> None:
    session.execute(delete(SdkStream).where(SdkStream.process == process))


def live_streams(session: Session, now: datetime, limit: int = 200) -> list[SdkStream]:
    """Streams open now on any stream process, newest first."""
    query = (
        select(SdkStream)
        .where(SdkStream.seen_at >= now - EXPIRY)
        .order_by(SdkStream.opened_at.desc(), SdkStream.id)
        .limit(limit)
    )
    return list(session.scalars(query))


class Presence:
    """This process's open streams, written to `sdk_streams` off the event loop."""

    def __init__(self, make_session: Callable[[], Session]) -> None:
        self.make_session = make_session
        self.process = process_key()
        self.open: dict[str, StreamInfo] = {}
        self.written: set[str] = set()
        self.failures = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # A flush still running in its thread when the process stops must not write after the
        # rows were removed: writes and the removal take turns, and nothing is written after.
        self._writing = threading.Lock()
        self._stopped = False

    def opened(self, info: StreamInfo) -> str:
        key = uuid.uuid4().hex
        self.open[key] = info
        self._wake.set()
        return key

    def closed(self, key: str) -> None:
        if self.open.pop(key, None) is not None:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), REFRESH)
                await asyncio.sleep(FLUSH_DELAY)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        current = dict(self.open)
        try:
            await asyncio.to_thread(self._write, current)
        except SQLAlchemyError as exc:  # the database is away: the streams carry on
            self.failures += 1
            log.warning("could not record open streams: %s", exc)
            return
        self.written = set(current)

    def _write(self, current: dict[str, StreamInfo]) -> None:
        with self._writing:
            if self._stopped:
                return
            with self.make_session() as session, unit_of_work(session):
                sync(session, self.process, current, self.written, clock.now())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            await asyncio.to_thread(self._forget)
        except SQLAlchemyError as exc:
            log.warning("could not remove this process's streams: %s", exc)

    def _forget(self) -> None:
        with self._writing:
            self._stopped = True
            with self.make_session() as session, unit_of_work(session):
                forget(session, self.process)

"""The stream process: `GET /api/client/streaming` (Server-Sent Events) for thousands of SDKs.

One asyncio event loop (aiohttp) holds every open stream; an open stream costs a socket, a small
queue and a coroutine, never a thread. The process runs the same app as `web` for its snapshot
(server.snapshot): its updater thread follows the change notifications (PostgreSQL NOTIFY, or
polling of the revision on SQLite) and reports each check to the hub, which then, on the loop:

- compares the flags of the snapshot it last sent with the new one, for the flags and segments
  the change log named (the `stream-changes` part), and sends each environment's streams one
  `unleash-updated` event with exactly those that changed (event id = the revision);
- checks the tokens of open streams again if tokens changed: a revoked (or narrowed) token's
  streams are closed.

A stream opens with a hydration (`unleash-connected`), or, when the SDK sends `Last-Event-ID`
and the change log still covers it, with an `unleash-updated` of what changed since (nothing if
nothing did). A comment line every HEARTBEAT seconds keeps proxies and SDK read timeouts from
closing idle streams. When the database is unreachable or the gate is closed, streams stay open
and keep the last state: the snapshot keeps serving and nothing is sent until it moves.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from flask import Flask
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server.access import Permission, Principal, TokenResolver, token_in
from server.errors import DomainError
from server.flags.compile import PROJECT, READS, CompiledEnvironment, FlagsSnapshot
from server.snapshot import Snapshot, SnapshotCache, Status
from server.streaming import events
from server.streaming.events import CONNECTED, UPDATED
from server.streaming.ofrep_events import OFREP_STREAM_PATH, REFETCH, read_channel
from server.streaming.presence import Presence, stream_info

log = logging.getLogger(__name__)

STREAM_PATH = "/api/client/streaming"
HEARTBEAT = 15.0  # seconds; under the Python SDK's 30 s read timeout and any proxy's idle limit
QUEUE_LIMIT = 256  # events waiting for one slow reader; beyond, it is closed and resumes later
SLOW_BUFFER = 1 << 20  # bytes unread by one reader; beyond, it is closed and resumes later
CHANGES_PART = "stream-changes"
_HEARTBEAT = b":\n\n"


class Close(enum.StrEnum):
    """Why the server ended a stream (a metric label)."""

    REVOKED = "revoked"  # the token is gone or no longer allows this
    SLOW = "slow"  # the reader fell QUEUE_LIMIT events behind
    SHUTDOWN = "shutdown"


class Start(enum.StrEnum):
    """How a stream began (a metric label)."""

    HYDRATION = "hydration"
    RESUMED = "resumed"  # Last-Event-ID covered by the change log: only what changed since
    CURRENT = "current"  # Last-Event-ID is the current revision: nothing to send


class Kind(enum.StrEnum):
    UNLEASH = "unleash"  # /api/client/streaming: Unleash delta events
    OFREP = "ofrep"  # /ofrep/v1/event-stream: "evaluate again" notifications


OFREP_EVENT = "refetchEvaluation"


@dataclass(eq=False)
class Stream:
    token: str  # the secret (Unleash), or "#<id>" (OFREP: the signed channel names the id)
    principal: Principal
    environment: str
    visible: bool  # False: a project filter without this server's one project, so no flags
    kind: Kind = Kind.UNLEASH
    # Set once the opening is written: events are then written straight to the socket by the
    # hub (no task switch per stream), framed as HTTP/1.1 chunks when the response is chunked.
    transport: asyncio.BaseTransport | None = None
    chunked: bool = False
    queue: asyncio.Queue[tuple[int, bytes] | Close] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    revision: int = 0  # the newest revision this reader has been sent
    presence: str = ""  # its key in `Presence` (the Clients page's list of open streams)


class StreamMetrics:
    """The stream process's own registry, served on its `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.open = Gauge(
            "darklaunch_streams_open",
            "SDK streams open on this stream process.",
            ["environment"],
            registry=self.registry,
        )
        self.events = Counter(
            "darklaunch_stream_events_sent",
            "Events sent to SDK streams, by SSE event name.",
            ["event"],
            registry=self.registry,
        )
        self.starts = Counter(
            "darklaunch_stream_starts",
            "Streams opened, by how they began.",
            ["start"],
            registry=self.registry,
        )
        self.closed = Counter(
            "darklaunch_stream_closed_by_server",
            "Streams the server ended, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.revision = Gauge(
            "darklaunch_stream_revision",
            "The revision this stream process last sent to its streams.",
            registry=self.registry,
        )


def record_changes(
    session: Session, previous: Any, changes: Sequence[Mapping[str, Any]]
) -> tuple[Mapping[str, Any], ...]:
    """The `stream-changes` snapshot part: the change log entries this update applied."""
    del session, previous
    return tuple(changes)


class Hub:
    """Every open stream of this process, and what is sent to them (only on the event loop)."""

    def __init__(self, app: Flask, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.cache: SnapshotCache = app.extensions["snapshot"]
        self.resolve: TokenResolver = app.extensions["access.token_resolver"]
        self.metrics = StreamMetrics()
        self.streams: dict[str, set[Stream]] = {}
        self.sent: Snapshot | None = None  # the snapshot the open streams were brought to
        self._catch_ups: dict[tuple[int, str], asyncio.Task[events.Changed | None]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._hydrations: dict[tuple[str, bool], tuple[int, bytes]] = {}
        self.presence = Presence(app.extensions["db.sessionmaker"])

    # ---- the snapshot ---------------------------------------------------------------------

    def start(self) -> None:
        self.sent = self.cache.get()
        self.metrics.revision.set(self.sent.revision)
        self.cache.observe(self._from_updater)
        self._heartbeat = self.loop.create_task(self._beat())
        self.presence.start()

    def _from_updater(self, status: Status) -> None:
        # The updater's thread: hand over to the loop (a loop that ended has nobody to tell).
        # Each snapshot is handed over as it was just built, so the hub sees every step in
        # order and each step's `stream-changes` names what that step changed.
        if self.loop.is_closed():
            return
        snapshot = self.cache.peek()
        if snapshot is not None:
            self.loop.call_soon_threadsafe(self.advance, snapshot)

    def flags(self, snapshot: Snapshot) -> FlagsSnapshot:
        flags: FlagsSnapshot = snapshot["flags"]
        return flags

    def advance(self, new: Snapshot) -> None:
        """Bring every open stream to `new`, the snapshot the updater built after `self.sent`."""
        old = self.sent
        if old is None or new is old or new.revision == old.revision:
            return
        if new.built_at < old.built_at:
            return  # an older snapshot, reported late by another thread (the listener's)
        self.sent = new
        self.metrics.revision.set(new.revision)
        self._catch_ups.clear()  # answers for the revision these streams were at
        if new["principals"] is not old["principals"]:
            self._check_tokens()
        old_flags, new_flags = self.flags(old), self.flags(new)
        if new_flags is old_flags:
            return
        named: tuple[Mapping[str, Any], ...] | None = None
        if new.parts.get(CHANGES_PART) is not old.parts.get(CHANGES_PART):
            named = new.parts.get(CHANGES_PART)  # None after a whole rebuild: compare all
        for environment, streams in self.streams.items():
            before = old_flags.environments.get(environment)
            after = new_flags.environments.get(environment)
            if after is None or not streams:
                continue
            if before is after:
                continue
            if named is None or before is None:
                found = events.delta(before, after, new.revision)
            else:
                changed = events.changed_in(named, environment)
                found = events.delta(before, after, new.revision, changed.flags, changed.segments)
            if not found:
                continue
            message = events.sse(UPDATED, new.revision, events.document(found))
            refetch = ofrep_message(new.revision)
            out = {Kind.UNLEASH: (message, _chunk(message)), Kind.OFREP: (refetch, _chunk(refetch))}
            sent = {Kind.UNLEASH: 0, Kind.OFREP: 0}
            for stream in list(streams):
                if stream.kind is Kind.UNLEASH and not stream.visible:
                    continue
                plain, framed = out[stream.kind]
                sent[stream.kind] += self._deliver(stream, new.revision, plain, framed)
            self.metrics.events.labels(UPDATED).inc(sent[Kind.UNLEASH])
            self.metrics.events.labels(OFREP_EVENT).inc(sent[Kind.OFREP])

    def _deliver(self, stream: Stream, revision: int, plain: bytes, framed: bytes) -> int:
        """Write an event to a live stream's socket at once (1 if written)."""
        transport = stream.transport
        if transport is None:  # still opening: its handler sends it after the opening
            self._send(stream, revision, plain)
            return 0
        if revision <= stream.revision or transport.is_closing():
            return 0
        assert isinstance(transport, asyncio.WriteTransport)
        if transport.get_write_buffer_size() > SLOW_BUFFER:
            self._close(stream, Close.SLOW)
            return 0
        transport.write(framed if stream.chunked else plain)
        stream.revision = revision
        return 1

    def _send(self, stream: Stream, revision: int, message: bytes) -> None:
        try:
            stream.queue.put_nowait((revision, message))
        except asyncio.QueueFull:
            self._close(stream, Close.SLOW)

    def _close(self, stream: Stream, reason: Close) -> None:
        # Make room if needed: the reader sees Close next and ends (and may resume later).
        while True:
            try:
                stream.queue.put_nowait(reason)
                return
            except asyncio.QueueFull:
                stream.queue.get_nowait()

    def _check_tokens(self) -> None:
        verdicts: dict[str, bool] = {}
        for environment, streams in self.streams.items():
            for stream in list(streams):
                if stream.token not in verdicts:
                    if stream.kind is Kind.OFREP:
                        principal = self.token_by_id(int(stream.token[1:]))
                        needed = Permission.SDK_EVALUATE
                    else:
                        principal = self._principal(stream.token)
                        needed = Permission.SDK_CLIENT
                    verdicts[stream.token] = (
                        principal is not None
                        and principal.can(needed)
                        and principal.environment == environment
                    )
                if not verdicts[stream.token]:
                    self.metrics.closed.labels(Close.REVOKED.value).inc()
                    self._close(stream, Close.REVOKED)

    def token_by_id(self, token_id: int) -> Principal | None:
        """An active token's principal by its id (OFREP channels name tokens by id)."""
        assert self.sent is not None
        for principal in self.sent["principals"].tokens.values():
            if principal.id == token_id:
                return principal
        return None

    def _principal(self, token: str) -> Principal | None:
        with self.app.app_context():
            return self.resolve(token)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            for streams in self.streams.values():
                for stream in streams:
                    if stream.queue.empty():
                        stream.queue.put_nowait((0, _HEARTBEAT))

    def shutdown(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for streams in self.streams.values():
            for stream in list(streams):
                self._close(stream, Close.SHUTDOWN)

    # ---- one stream -----------------------------------------------------------------------

    def caller(self, authorization: str) -> tuple[str, Principal, CompiledEnvironment]:
        """The token, its principal and its environment's flags, exactly as the client API."""
        from server.errors import Forbidden, Unauthorized

        token = token_in(authorization)
        if token is None:
            raise Unauthorized("Send a client token in the Authorization header.")
        principal = self._principal(token)
        if principal is None:
            raise Unauthorized("The API token is unknown or revoked.")
        if not principal.can(Permission.SDK_CLIENT):
            raise Forbidden("Your role or token does not allow this.")
        if principal.environment is None:
            raise Forbidden(
                "This endpoint needs a client or frontend token bound to an environment."
            )
        assert self.sent is not None
        compiled = self.flags(self.sent).environments.get(principal.environment)
        if compiled is None:
            raise Forbidden(
                f"This token is for the environment {principal.environment!r}, which this "
                "server does not serve. Issue a token for one of its environments."
            )
        return token, principal, compiled

    async def opening(self, stream: Stream, last_event_id: int | None) -> tuple[Start, bytes]:
        """What a new stream is sent first, and the revision that brings it to."""
        if last_event_id is not None and stream.visible:
            changed = await self._catch_up(last_event_id, stream.environment)
            assert self.sent is not None
            current = self.sent
            if changed is not None and last_event_id <= current.revision:
                stream.revision = current.revision
                if last_event_id == current.revision:
                    return Start.CURRENT, b""
                compiled = self.flags(current).environments[stream.environment]
                found = events.delta(
                    None, compiled, current.revision, changed.flags, changed.segments
                )
                return Start.RESUMED, events.sse(UPDATED, current.revision, events.document(found))
        assert self.sent is not None
        current = self.sent
        stream.revision = current.revision
        return Start.HYDRATION, self._hydration(current, stream.environment, stream.visible)

    def _hydration(self, current: Snapshot, environment: str, visible: bool) -> bytes:
        """The hydration event, made once per environment and revision for every stream."""
        key = (environment, visible)
        made = self._hydrations.get(key)
        if made is None or made[0] != current.revision:
            whole = self.flags(current).environments[environment] if visible else None
            message = events.sse(
                CONNECTED, current.revision, events.hydration(whole, current.revision)
            )
            made = self._hydrations[key] = (current.revision, message)
        return made[1]

    async def _catch_up(self, after: int, environment: str) -> events.Changed | None:
        """The change log since `after`, read once for all streams resuming from there."""
        assert self.sent is not None
        if after == self.sent.revision:
            return events.Changed(frozenset(), frozenset())
        key = (after, environment)
        pending = self._catch_ups.get(key)
        if pending is None:
            # A task of its own: the first reader going away must not cancel it for the rest.
            pending = self.loop.create_task(asyncio.to_thread(self._read_log, after, environment))
            self._catch_ups[key] = pending
        return await asyncio.shield(pending)

    def _read_log(self, after: int, environment: str) -> events.Changed | None:
        make_session = self.app.extensions["db.sessionmaker"]
        try:
            with make_session() as session:
                return events.catch_up(session, after, environment)
        except SQLAlchemyError as exc:  # the database is away: hydrate from the snapshot instead
            log.warning("stream resume could not read the change log: %s", exc)
            return None

    def add(self, stream: Stream, headers: Mapping[str, str]) -> None:
        self.streams.setdefault(stream.environment, set()).add(stream)
        info = stream_info(headers, stream.kind.value, stream.environment, stream.principal.label)
        stream.presence = self.presence.opened(info)
        self.metrics.open.labels(stream.environment).inc()

    def remove(self, stream: Stream) -> None:
        self.streams.get(stream.environment, set()).discard(stream)
        self.presence.closed(stream.presence)
        self.metrics.open.labels(stream.environment).dec()


def _error(exc: DomainError) -> web.Response:
    return web.json_response(
        {"error": {"code": exc.code, "message": exc.message}}, status=exc.status
    )


def _last_event_id(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


async def handle_stream(request: web.Request) -> web.StreamResponse:
    hub: Hub = request.app[HUB]
    try:
        token, principal, _compiled = hub.caller(request.headers.get("Authorization", ""))
    except DomainError as exc:
        return _error(exc)
    projects = request.query.getall("project", [])
    assert principal.environment is not None
    stream = Stream(token, principal, principal.environment, not projects or PROJECT in projects)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: never buffer this response
        }
    )
    if request.version >= (1, 1):
        response.enable_chunked_encoding()  # what aiohttp does anyway; now `chunked` says so
    hub.add(stream, request.headers)
    try:
        await response.prepare(request)
        last_event_id = _last_event_id(request.headers.get("Last-Event-ID"))
        start, first = await hub.opening(stream, last_event_id)
        hub.metrics.starts.labels(start.value).inc()
        await response.write(first or _HEARTBEAT)
        if first:
            hub.metrics.events.labels(CONNECTED if start is Start.HYDRATION else UPDATED).inc()
        await _pump(hub, stream, response, request, UPDATED)
    except ConnectionResetError:
        pass  # the reader went away; with handler cancellation, a CancelledError ends it too
    finally:
        hub.remove(stream)
    return response


async def _pump(
    hub: Hub, stream: Stream, response: web.StreamResponse, request: web.Request, event: str
) -> None:
    """Write what the hub queues for `stream` (events sent while it opened, heartbeats) until
    it is closed; from then on the hub writes events to its socket itself."""
    while not stream.queue.empty():
        item = stream.queue.get_nowait()
        if isinstance(item, Close):
            stream.queue.put_nowait(item)
            break
        revision, message = item
        if revision > stream.revision:
            await response.write(message)
            stream.revision = revision
            hub.metrics.events.labels(event).inc()
    stream.chunked = response.chunked
    stream.transport = request.transport
    while True:
        item = await stream.queue.get()
        if isinstance(item, Close):
            if item is Close.SLOW:
                hub.metrics.closed.labels(item.value).inc()
            return
        revision, message = item
        if revision and revision <= stream.revision:
            continue  # the opening already brought this reader there
        await response.write(message)
        if revision:
            stream.revision = revision
            hub.metrics.events.labels(event).inc()


def _chunk(message: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(message), message)


def ofrep_message(revision: int) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (revision, REFETCH)


def _allowed_origin(app: Flask, origin: str | None) -> str | None:
    if not origin:
        return None
    allowed: tuple[str, ...] = app.config["FRONTEND_ORIGINS"]
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


async def handle_ofrep_stream(request: web.Request) -> web.StreamResponse:
    """OFREP's event stream: `refetchEvaluation` whenever the channel's environment changed."""
    hub: Hub = request.app[HUB]
    named = read_channel(hub.app.config["SECRET_KEY"], request.query.get("channel", ""))
    principal = hub.token_by_id(named[0]) if named is not None else None
    if (
        named is None
        or principal is None
        or principal.environment != named[1]
        or not principal.can(Permission.SDK_EVALUATE)
    ):
        return web.Response(status=401)  # OFREP: 401 without a body
    assert hub.sent is not None
    stream = Stream(f"#{named[0]}", principal, named[1], True, Kind.OFREP)
    headers = {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    origin = _allowed_origin(hub.app, request.headers.get("Origin"))
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
        if origin != "*":
            headers["Vary"] = "Origin"
    response = web.StreamResponse(headers=headers)
    if request.version >= (1, 1):
        response.enable_chunked_encoding()
    hub.add(stream, request.headers)
    try:
        await response.prepare(request)
        current = hub.sent.revision
        stream.revision = current
        last = _last_event_id(request.headers.get("Last-Event-ID"))
        if last is not None and last != current:
            hub.metrics.starts.labels(Start.RESUMED.value).inc()
            hub.metrics.events.labels(OFREP_EVENT).inc()
            await response.write(ofrep_message(current))
        else:
            hub.metrics.starts.labels(Start.CURRENT.value).inc()
            await response.write(_HEARTBEAT)
        await _pump(hub, stream, response, request, OFREP_EVENT)
    except ConnectionResetError:
        pass
    finally:
        hub.remove(stream)
    return response


async def handle_metrics(request: web.Request) -> web.Response:
    hub: Hub = request.app[HUB]
    return web.Response(
        body=generate_latest(hub.metrics.registry),
        headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4},
    )


async def handle_health(request: web.Request) -> web.Response:
    hub: Hub = request.app[HUB]
    snapshot = hub.sent
    return web.json_response(
        {
            "status": "ok",
            "revision": snapshot.revision if snapshot is not None else None,
            "streams": sum(len(s) for s in hub.streams.values()),
        }
    )


HUB = web.AppKey("hub", Hub)


# The snapshot parts streams read: compiled flags, and tokens. The others (the gate's passes,
# sign-in sessions, the changelog) serve pages this process never answers.
NEEDED_PARTS = frozenset({"flags", "principals", CHANGES_PART})


def prepare(app: Flask, *, trim: bool = False) -> None:
    """Register what only the stream process's snapshot needs (before its first build).

    With `trim` (the stream process has the app to itself), parts it never reads are replaced
    by empty ones that no change touches, so a change costs it only the flags and tokens.
    """
    cache: SnapshotCache = app.extensions["snapshot"]
    cache.register(CHANGES_PART, lambda session: None, update=record_changes, reads=READS)
    if trim:
        for name in [n for n in cache._parts if n not in NEEDED_PARTS]:
            cache.register(name, lambda session: None, reads=frozenset())


def make_web_app(
    app: Flask, loop: asyncio.AbstractEventLoop, *, trim: bool = False
) -> web.Application:
    prepare(app, trim=trim)
    hub = Hub(app, loop)
    web_app = web.Application()
    web_app[HUB] = hub
    web_app.router.add_get(STREAM_PATH, handle_stream)
    web_app.router.add_get(OFREP_STREAM_PATH, handle_ofrep_stream)
    web_app.router.add_get("/metrics", handle_metrics)
    web_app.router.add_get("/healthz", handle_health)

    async def on_startup(_: web.Application) -> None:
        await asyncio.to_thread(hub.cache.get)  # the first build, off the loop
        hub.start()

    async def on_shutdown(_: web.Application) -> None:
        hub.shutdown()
        await hub.presence.stop()

    web_app.on_startup.append(on_startup)
    web_app.on_shutdown.append(on_shutdown)
    return web_app


class Running:
    """A stream server on its own thread and loop (`darklaunch stream` runs one in the main)."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.web_app = make_web_app(app, self.loop)
        self.ready = threading.Event()
        self.runner: web.AppRunner | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def hub(self) -> Hub:
        return self.web_app[HUB]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _start(self) -> None:
        self.runner = web.AppRunner(
            self.web_app,
            handle_signals=False,
            shutdown_timeout=5,
            handler_cancellation=True,
            access_log=None,
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, backlog=4096, reuse_address=True)
        await site.start()

    def serve_in_thread(self) -> Running:
        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._start())
            except BaseException as exc:
                self.error = exc
                self.ready.set()
                return
            self.ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="stream-server", daemon=True)
        self.thread.start()
        self.ready.wait(60)
        if self.error is not None:
            raise self.error
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the loop and return its result (tests look at the hub this way)."""
        return asyncio.run_coroutine_threadsafe(_call(fn), self.loop).result(10)

    def stop(self) -> None:
        if self.loop.is_closed():
            return  # stopped already
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(10)
        if not self.loop.is_running():
            self.loop.close()


async def _call(fn: Callable[[], Any]) -> Any:
    return fn()

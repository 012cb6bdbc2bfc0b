"""SDK streams at scale: one `darklaunch stream` process, up to 5,000 Server-Sent Event streams.

On PostgreSQL (BENCH_DATABASE_URL, as bench/propagation.py; SQLite when it is unavailable) with
100 flags, a gunicorn `web` (as in production) and one stream process:

1. `/api/client/features` polling throughput (wrk) with no streams open;
2. 100 streams: a toggle through web's admin API, delivery latency to every stream (p50/p99 over
   all streams and toggles, measured from the moment the toggle request is sent);
3. ramp to 5,000 streams (batches, not all at once): RSS of the stream process per 1,000 streams,
   idle CPU of the stream process with all open (heartbeats included), toggle delivery to all;
4. polling throughput again with the 5,000 streams open;
5. reconnect storm: the stream process is restarted; every client reconnects as the Python SDK
   does (about 2 s, with jitter, then back-off) with Last-Event-ID; time until all have their
   stream back, and whether the process stayed up.

The clients are raw asyncio sockets in this process (HTTP/1.0, so the stream is not chunked).
`ulimit -n` is raised to the hard limit for this process and the servers it starts.

Usage: python bench/streams.py [--streams 5000] [--flags 100] [--toggles 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.harness import Request
from bench.propagation import percentile, postgres_database

REQUESTS: list[float] = []  # milliseconds each toggle request took on web (its commit inside)
RAMP_BATCH = 250  # streams opened together, then a pause
RAMP_PAUSE = 0.25  # seconds between batches
IDLE_SECONDS = 30.0  # idle CPU window (two heartbeats)
SDK_RETRY_FIRST, SDK_RETRY_MAX = 2.0, 30.0  # the Python SDK's reconnect back-off (50 % jitter)


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class StreamServer:
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start it; seconds until it answers /healthz."""
        t0 = time.monotonic()
        self.process = subprocess.Popen(
            [str(harness.BIN / "darklaunch"), "stream"],
            cwd=harness.ROOT,
            env={
                **os.environ,
                **self.env,
                "DARKLAUNCH_STREAM_BIND": f"127.0.0.1:{self.port}",
                "DARKLAUNCH_LOG_LEVEL": "WARNING",
            },
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        while time.monotonic() - t0 < 60:
            if self.process.poll() is not None:
                raise RuntimeError(f"stream process exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return time.monotonic() - t0
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("stream process did not start")

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / harness.CLK_TCK

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Client:
    """One SDK stream: reconnects like the Python SDK, remembers the newest event id."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.last_id: int | None = None
        self.last_at = 0.0
        self.opened = asyncio.Event()
        self.opens = 0
        self.failures = 0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        delay = SDK_RETRY_FIRST
        while True:
            try:
                await self._once()
                delay = SDK_RETRY_FIRST
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.failures += 1
            self.opened.clear()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, SDK_RETRY_MAX)

    async def _once(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id is not None else ""
            writer.write(
                (
                    "GET /api/client/streaming HTTP/1.0\r\nHost: bench\r\n"
                    f"Authorization: {self.token}\r\nAccept: text/event-stream\r\n{resume}\r\n"
                ).encode()
            )
            status = await reader.readline()
            if b" 200 " not in status:
                raise ValueError(status)
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            while True:
                block = await reader.readuntil(b"\n\n")
                if not self.opened.is_set():
                    self.opens += 1
                    self.opened.set()
                for line in block.split(b"\n"):
                    if line.startswith(b"id: "):
                        self.last_id = int(line[4:])
                        self.last_at = time.monotonic()
        finally:
            writer.close()


def toggle(web: harness.Server, admin: str, flag: str, on: bool) -> None:
    action = "on" if on else "off"
    request = urllib.request.Request(
        f"{web.url}/api/admin/projects/default/features/{flag}/environments/production/{action}",
        method="POST",
        headers={"Authorization": admin},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


async def open_clients(clients: list[Client], port: int, token: str, count: int) -> float:
    """Ramp up to `count` streams in batches; seconds it took."""
    t0 = time.monotonic()
    while len(clients) < count:
        batch = [Client(port, token) for _ in range(min(RAMP_BATCH, count - len(clients)))]
        for client in batch:
            client.task = asyncio.create_task(client.run())
        await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in batch)), 60)
        clients.extend(batch)
        await asyncio.sleep(RAMP_PAUSE)
    return time.monotonic() - t0


async def deliveries(
    clients: list[Client], web: harness.Server, admin: str, toggles: int, state: list[bool]
) -> list[float]:
    """Milliseconds from sending each toggle until each stream has the event."""
    latencies: list[float] = []
    for _ in range(toggles):
        before = max(c.last_id or 0 for c in clients)
        state[0] = not state[0]
        t0 = time.monotonic()
        await asyncio.to_thread(toggle, web, admin, "flag-00001", state[0])
        REQUESTS.append((time.monotonic() - t0) * 1000)
        deadline = t0 + 30
        while any((c.last_id or 0) <= before for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("a toggle did not reach every stream within 30 s")
            await asyncio.sleep(0.005)
        latencies.extend((c.last_at - t0) * 1000 for c in clients)
        await asyncio.sleep(0.2)
    return latencies


def wrk_polls(web: harness.Server, client: str, folder: Path) -> harness.WrkResult:
    return harness.run_wrk(
        web, Request("/api/client/features", headers={"Authorization": client}), folder
    )


def ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} / {percentile(values, 99):.0f}"


async def bench(args: argparse.Namespace, db_url: str, log_line: list[str]) -> None:
    from bench.propagation import env_for, seeded

    def log(message: str) -> None:
        print(message, flush=True)

    _app, client_token, admin = seeded(db_url, args.flags, log)
    rows: list[tuple[str, str]] = []
    with harness.workdir() as folder, ExitStack() as stack:
        env = env_for(db_url)
        web = harness.start_gunicorn("web", "server:create_app()", env, folder, "/-/ready")
        stack.callback(web.stop)
        stream = StreamServer(harness.free_port(), env, folder / "stream.log")
        stream.start()
        stack.callback(stream.stop)
        rss_empty = stream.rss_mb()

        no_streams = wrk_polls(web, client_token, folder)
        log(f"polls, no streams: {no_streams.rps:.0f}/s")

        clients: list[Client] = []
        state = [False]  # flag-00001 is seeded off (odd flags are)
        await open_clients(clients, stream.port, client_token, min(100, args.streams))
        small = await deliveries(clients, web, admin, args.toggles, state)
        rows.append(("toggle → 100 streams, p50 / p99 ms", ms(small)))
        rows.append(("the toggle request itself (web), p50 / p99 ms", ms(REQUESTS)))
        log(f"100 streams: {ms(small)} ms")

        ramp = await open_clients(clients, stream.port, client_token, args.streams)
        await asyncio.sleep(2)
        rss_full = stream.rss_mb()
        per_thousand = (rss_full - rss_empty) / (args.streams / 1000)
        rows.append((f"ramp to {args.streams} streams ({RAMP_BATCH} per batch)", f"{ramp:.1f} s"))
        rows.append(
            ("stream process RSS: none open / all open", f"{rss_empty:.0f} / {rss_full:.0f} MB")
        )
        rows.append(("RSS per 1,000 streams", f"{per_thousand:.1f} MB"))
        log(f"RSS {rss_empty:.0f} -> {rss_full:.0f} MB")

        cpu0, wall0 = stream.cpu_seconds(), time.monotonic()
        await asyncio.sleep(IDLE_SECONDS)
        idle = (stream.cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100
        window = f"idle CPU, {args.streams} open ({IDLE_SECONDS:.0f} s)"
        rows.append((window, f"{idle:.1f} % of a core"))
        log(f"idle CPU {idle:.1f} %")

        big = await deliveries(clients, web, admin, max(3, args.toggles // 2), state)
        rows.append((f"toggle → {args.streams} streams, p50 / p99 ms", ms(big)))
        log(f"{args.streams} streams: {ms(big)} ms")

        with_streams = await asyncio.to_thread(wrk_polls, web, client_token, folder)
        rows.append(
            (
                "/api/client/features polls/s: no streams / all open",
                f"{no_streams.rps:.0f} / {with_streams.rps:.0f}",
            )
        )
        rows.append(
            (
                "poll p99 ms: no streams / all open",
                f"{no_streams.p99_ms:.1f} / {with_streams.p99_ms:.1f}",
            )
        )

        # Reconnect storm: restart the stream process under every open stream.
        failures0 = sum(c.failures for c in clients)
        opens0 = sum(c.opens for c in clients)
        t0 = time.monotonic()
        stream.stop()
        stopped = time.monotonic() - t0
        startup = stream.start()
        deadline = t0 + 120
        while sum(c.opens for c in clients) - opens0 < len(clients) or not all(
            c.opened.is_set() for c in clients
        ):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        recovered = time.monotonic() - t0
        back = sum(1 for c in clients if c.opened.is_set())
        rows.append(
            (
                f"reconnect storm: all {args.streams} back after restart",
                f"{recovered:.1f} s ({back} back; stop {stopped:.1f} s, start {startup:.1f} s, "
                f"{sum(c.failures for c in clients) - failures0} refused tries)",
            )
        )
        rows.append(("stream process alive after the storm", "yes" if stream.alive() else "NO"))
        resumed = await asyncio.to_thread(metric, stream.port, "darklaunch_stream_starts_total")
        rows.append(("stream starts after restart (by kind)", resumed))
        big_after = await deliveries(clients, web, admin, 5, state)
        rows.append(("toggle → all, after the storm, p50 / p99 ms", ms(big_after)))

        for client in clients:
            if client.task is not None:
                client.task.cancel()
        await asyncio.gather(*(c.task for c in clients if c.task), return_exceptions=True)

    width = max(len(r[0]) for r in rows)
    lines = [
        f"SDK streams: {args.flags} flags, one stream process, {log_line[0]}",
        "",
        f"| {'measure'.ljust(width)} | result |",
        f"|{'-' * (width + 2)}|--------|",
        *[f"| {name.ljust(width)} | {value} |" for name, value in rows],
    ]
    lines.append("")
    lines.append(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    print("\n".join(lines), flush=True)


def metric(port: int, name: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            label = line.split('"')[1]
            found.append(f"{label} {float(line.rsplit(' ', 1)[1]):.0f}")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--flags", type=int, default=100)
    parser.add_argument("--toggles", type=int, default=10)
    args = parser.parse_args(argv)
    limit = raise_open_files()
    if limit < args.streams * 2 + 500:
        sys.exit(f"ulimit -n is {limit}; {args.streams} streams need {args.streams * 2 + 500}")
    with postgres_database(print) as db_url:
        if db_url is None:
            folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"dl-streams-{os.getpid()}.db"
            url, backend = f"sqlite:///{folder}", "SQLite"
        else:
            url, backend = db_url, "PostgreSQL"
        asyncio.run(bench(args, url, [backend]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

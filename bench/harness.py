"""Benchmark plumbing: gunicorn servers on loopback, the bare-Flask ceiling, wrk, CPU accounting.

Nothing here is a test: benchmarks print tables. Every figure is compared with a reference
measured in the same run, because absolute numbers on a shared machine drift.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The worker model and count the docs recommend (gunicorn.conf.py): gthread, 2 workers, 4 threads.
GUNICORN_WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
GUNICORN_THREADS = int(os.environ.get("BENCH_THREADS", "4"))
WRK_SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
WRK_CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
WRK_THREADS = 2
REPEATS = 3
# A run in which one worker did less than this share of the server's work is run again (below).
LOPSIDED_SHARE = 0.1
LOPSIDED_RETRIES = 3


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit("wrk is not installed. Install it with: apt-get install -y wrk")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A gunicorn process tree serving one WSGI app on a loopback port."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The master and its workers."""
        pids = [self.process.pid]
        with contextlib.suppress(FileNotFoundError):
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids += [int(p) for p in children.read_text().split()]
        return pids

    def cpu_by_process(self) -> list[float]:
        """CPU seconds of the master and of each worker, in `pids()` order."""
        seconds = []
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                seconds.append(0.0)
                continue
            seconds.append((int(fields[11]) + int(fields[12])) / CLK_TCK)  # utime + stime
        return seconds

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.pids()[1:]:
            with contextlib.suppress(FileNotFoundError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gunicorn(
    name: str, app_spec: str, env: dict[str, str], workdir: Path, ready_path: str = "/"
) -> Server:
    """Start gunicorn with the project's gunicorn.conf.py and wait until it answers."""
    port = free_port()
    log = workdir / f"{name}.log"
    full_env = {
        **os.environ,
        **env,
        "WEB_CONCURRENCY": str(GUNICORN_WORKERS),
        "GUNICORN_THREADS": str(GUNICORN_THREADS),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            app_spec,
        ],
        cwd=ROOT,
        env=full_env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(server.url + ready_path, timeout=1)
            break
        except urllib.error.HTTPError:
            break  # it answers (a 4xx/5xx is an answer)
        except OSError:
            time.sleep(0.1)
    else:
        server.stop()
        raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")
    # Let every worker finish booting before measuring.
    time.sleep(0.5)
    return server


@dataclass
class Request:
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_cores: float  # server CPU seconds per wall second during the run
    lopsided: bool = False  # one worker did (almost) none of the work
    repeated: int = 0  # lopsided runs measured again (see `run_wrk`)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _lua(req: Request, folder: Path) -> Path:
    def quote(s: str) -> str:
        if "]==]" in s or "\n" in s:
            raise ValueError(f"cannot quote {s!r} for wrk's Lua script")
        return "[==[" + s + "]==]"

    lines = [f"wrk.method = {quote(req.method)}"]
    for k, v in req.headers.items():
        # The spaces matter: `t[[==[k]==]]` would read as a call with a long string, and wrk
        # would send the request without the header.
        lines.append(f"wrk.headers[ {quote(k)} ] = {quote(v)}")
    if req.body is not None:
        lines.append(f"wrk.body = {quote(req.body)}")
    key = (req.method, req.path, req.body, tuple(sorted(req.headers.items())))
    path = folder / f"req-{abs(hash(key)) % 10**8}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


class WrongAnswers(RuntimeError):
    """wrk saw answers of another status class than the one the row claims to measure."""


def run_wrk(server: Server, req: Request, folder: Path, expect: int = 200) -> WrkResult:
    """A wrk run (see `_run_wrk_once`), run again while it was lopsided, at most 3 more times.

    wrk opens its 16 keep-alive connections in one burst, and now and then one gthread worker
    accepts all of them while the other sleeps: the run then measures one worker on one core
    and gunicorn's accept race, not the app (seen as ~1.1 cores of server CPU with one worker
    at zero). It can hit Darklaunch and the ceiling alike; the table says how often it did.
    """
    repeated = 0
    result = _run_wrk_once(server, req, folder, expect)
    while result.lopsided and repeated < LOPSIDED_RETRIES:
        repeated += 1
        result = _run_wrk_once(server, req, folder, expect)
    result.repeated = repeated
    return result


def _run_wrk_once(server: Server, req: Request, folder: Path, expect: int) -> WrkResult:
    """One wrk run of WRK_SECONDS against `server`; every answer must be of `expect`'s class.

    wrk counts answers outside 2xx/3xx; for an expected 2xx/3xx there must be none, for an
    expected 4xx/5xx every answer must be one. Otherwise the row would time something else
    (a 401 instead of the document, say) and the figure would be meaningless.
    """
    script = _lua(req, folder)
    cpu_before, t0 = server.cpu_by_process(), time.monotonic()
    out = subprocess.run(
        [
            require_wrk(),
            f"-t{WRK_THREADS}",
            f"-c{WRK_CONNECTIONS}",
            f"-d{WRK_SECONDS}s",
            "--latency",
            "-s",
            str(script),
            server.url + req.path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu_after = server.cpu_by_process()
    spent = [after - before for after, before in zip(cpu_after, cpu_before, strict=False)]
    cpu = sum(spent) / (time.monotonic() - t0)
    workers = spent[1:]
    lopsided = len(workers) > 1 and min(workers) < LOPSIDED_SHARE * sum(workers)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), "
        r"timeout (\d+)",
        out,
    )
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    failed = int(non2xx.group(1)) if non2xx else 0
    unexpected = failed if expect < 400 else total - failed
    if unexpected:
        raise WrongAnswers(
            f"{server.name} {req.method} {req.path}: {unexpected} of {total} answers were not "
            f"of the expected status {expect}"
        )
    errors = sum(int(g) for g in socket_errors.groups()) if socket_errors else 0
    return WrkResult(rps, p50, p99, errors, cpu, lopsided)


def paired(
    server: Server,
    req: Request,
    ceiling: Server,
    ceiling_req: Request,
    folder: Path,
    expect: int = 200,
    ceiling_expect: int | None = None,
    repeats: int = REPEATS,
) -> tuple[WrkResult, WrkResult]:
    """Darklaunch and its ceiling measured in turns (A B A B A B), the median of each.

    Taking turns puts both under the same drift of a shared machine, which measuring one after
    the other does not: a slow minute would land on one side of the ratio only.
    """
    ours: list[WrkResult] = []
    theirs: list[WrkResult] = []
    for _ in range(repeats):
        ours.append(run_wrk(server, req, folder, expect))
        theirs.append(run_wrk(ceiling, ceiling_req, folder, ceiling_expect or expect))
    return _median(ours), _median(theirs)


def _median(runs: list[WrkResult]) -> WrkResult:
    runs = sorted(runs, key=lambda r: r.rps)
    mid = runs[len(runs) // 2]
    return WrkResult(
        statistics.median(r.rps for r in runs),
        mid.p50_ms,
        mid.p99_ms,
        sum(r.errors for r in runs),
        statistics.median(r.cpu_cores for r in runs),
        lopsided=any(r.lopsided for r in runs),
        repeated=sum(r.repeated for r in runs),
    )


def fetch(server: Server, req: Request) -> tuple[int, bytes, dict[str, str]]:
    """One request, to learn the status, the body and its size on the wire."""
    data = req.body.encode() if req.body is not None else None
    r = urllib.request.Request(
        server.url + req.path,
        data=data,
        method=req.method,
        headers=req.headers,
    )
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


@dataclass
class Row:
    scenario: str
    flags: str
    status: int
    result: WrkResult
    size: int
    ceiling: WrkResult | None
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.ceiling is None or self.ceiling.rps == 0:
            return None
        return self.result.rps / self.ceiling.rps


def print_table(rows: Sequence[Row], extra: Sequence[tuple[str, str]] = ()) -> str:
    header = (
        "scenario",
        "flags",
        "status",
        "req/s",
        "p50 ms",
        "p99 ms",
        "bytes",
        "cpu",
        "ceiling req/s",
        "ratio",
        "target",
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.scenario,
                r.flags,
                str(r.status),
                f"{r.result.rps:,.0f}",
                f"{r.result.p50_ms:.2f}",
                f"{r.result.p99_ms:.2f}",
                f"{r.size:,}",
                f"{r.result.cpu_cores:.2f}",
                f"{r.ceiling.rps:,.0f}" if r.ceiling else "—",
                f"{r.ratio:.2f}×" if r.ratio is not None else "—",
                (
                    (
                        "≥ "
                        + f"{r.target:.1f}×"
                        + (" ok" if (r.ratio or 0) >= r.target else " MISSED")
                    )
                    if r.target
                    else ""
                ),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(widths[j]) for j, cell in enumerate(line)) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    repeated = sum(r.result.repeated + (r.ceiling.repeated if r.ceiling else 0) for r in rows)
    still = [r.scenario for r in rows if r.result.lopsided or (r.ceiling and r.ceiling.lopsided)]
    note = f"lopsided wrk runs (one worker idle) measured again: {repeated}"
    if still:
        note += f"; still lopsided after {LOPSIDED_RETRIES} tries in: {', '.join(still)}"
    out.append(note)
    for label, value in extra:
        out.append(f"{label}: {value}")
    text = "\n".join(out)
    print(text, flush=True)
    return text


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="darklaunch-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""What `darklaunch deploy record` gathers on a CI runner: commits, test counts, coverage.

Every problem becomes a `CollectError` whose message is one line naming the file (or `git`),
which the command prints before exiting with status 1.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn
from xml.parsers import expat

SQLITE_HEADER = b"SQLite format 3\x00"
FIELD = "\x1f"  # git log field and record separators: never found in names or subjects
RECORD = "\x1e"


class CollectError(Exception):
    """A file or tool could not provide what the deploy record needs."""


class GitFailed(CollectError):
    """git ran and refused (unknown revision, not a repository, ...)."""


# ---- XML, without DTDs or entities -----------------------------------------------------------


def parse_xml(path: Path) -> ET.Element:
    """Parse an XML report, refusing DTDs and entity declarations (billion laughs, XXE)."""
    data = _read(path)
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()

    def refuse(*_: Any) -> NoReturn:
        raise CollectError(f"{path}: DTDs and entity declarations are not accepted")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        reason = expat.errors.messages.get(exc.code, "malformed")
        raise CollectError(
            f"{path}: not valid XML ({reason} at line {exc.lineno}, column {exc.offset})"
        ) from None
    return builder.close()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CollectError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CollectError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise CollectError(f"{path}: cannot be read ({exc.strerror})") from None


def _number(path: Path, element: ET.Element, name: str) -> float | None:
    raw = element.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw.replace(",", ""))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise CollectError(
            f"{path}: {name}={raw!r} on <{element.tag}> is not a number of 0 or more"
        )
    return value


# ---- JUnit XML -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteCounts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration: float | None = None

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped

    def __add__(self, other: SuiteCounts) -> SuiteCounts:
        durations = [d for d in (self.duration, other.duration) if d is not None]
        return SuiteCounts(
            self.passed + other.passed,
            self.failed + other.failed,
            self.errors + other.errors,
            self.skipped + other.skipped,
            sum(durations) if durations else None,
        )


def read_junit(path: Path) -> SuiteCounts:
    """Count passed, failed, errored and skipped tests in one JUnit XML file."""
    root = parse_xml(path)
    if root.tag not in ("testsuites", "testsuite"):
        raise CollectError(
            f"{path}: the root element is <{root.tag}>, not <testsuites> or <testsuite>"
        )
    cases = list(root.iter("testcase"))
    passed = failed = errors = skipped = 0
    if cases:
        for case in cases:
            outcomes = {child.tag for child in case}
            if "error" in outcomes:
                errors += 1
            elif "failure" in outcomes:
                failed += 1
            elif "skipped" in outcomes:
                skipped += 1
            else:
                passed += 1
    else:
        # Summary-only reports: the innermost suites carry the counts as attributes.
        for suite in root.iter("testsuite"):
            if suite.find("testsuite") is not None:
                continue
            tests = int(_number(path, suite, "tests") or 0)
            failed_here = int(_number(path, suite, "failures") or 0)
            errors_here = int(_number(path, suite, "errors") or 0)
            skipped_here = int(
                _number(path, suite, "skipped") or _number(path, suite, "disabled") or 0
            )
            if failed_here + errors_here + skipped_here > tests:
                raise CollectError(
                    f"{path}: <testsuite> counts more failures, errors and skips than tests"
                )
            passed += tests - failed_here - errors_here - skipped_here
            failed += failed_here
            errors += errors_here
            skipped += skipped_here
    return SuiteCounts(passed, failed, errors, skipped, _junit_duration(path, root, cases))


def _junit_duration(path: Path, root: ET.Element, cases: list[ET.Element]) -> float | None:
    own = _number(path, root, "time")
    if own is not None:
        return own
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    times = [t for t in (_number(path, s, "time") for s in suites) if t is not None]
    if times:
        return sum(times)
    times = [t for t in (_number(path, c, "time") for c in cases) if t is not None]
    return sum(times) if times else None


def read_junit_files(paths: list[Path]) -> SuiteCounts:
    total = SuiteCounts()
    for path in paths:
        total = total + read_junit(path)
    return total


# ---- coverage.py output ----------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageFigures:
    line: float
    branch: float | None
    kind: str  # "data file", "Cobertura XML" or "JSON report"


def _percent(covered: float, total: float) -> float:
    return 100.0 * covered / total if total else 100.0


def read_coverage(path: Path) -> CoverageFigures:
    """Line and branch coverage from `.coverage`, `coverage.xml` or `coverage.json`."""
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return _read_cobertura(path)
    if suffix == ".json":
        return _read_coverage_json(_read(path), path)
    return _read_coverage_data(path)


def _read_cobertura(path: Path) -> CoverageFigures:
    root = parse_xml(path)
    if root.tag != "coverage":
        raise CollectError(f"{path}: the root element is <{root.tag}>, not Cobertura's <coverage>")
    lines_valid = _number(path, root, "lines-valid")
    lines_covered = _number(path, root, "lines-covered")
    if lines_valid is not None and lines_covered is not None:
        line = _percent(lines_covered, lines_valid)
    else:
        rate = _number(path, root, "line-rate")
        if rate is None:
            raise CollectError(f"{path}: <coverage> has neither lines-valid nor line-rate")
        line = rate * 100
    branches_valid = _number(path, root, "branches-valid")
    branch: float | None = None
    if branches_valid:
        branch = _percent(_number(path, root, "branches-covered") or 0, branches_valid)
    elif branches_valid is None and (rate := _number(path, root, "branch-rate")) is not None:
        branch = rate * 100
    return _checked(path, line, branch, "Cobertura XML")


def _read_coverage_json(data: bytes, named: Path) -> CoverageFigures:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CollectError(f"{named}: not valid JSON ({exc})") from None
    totals = document.get("totals") if isinstance(document, dict) else None
    if not isinstance(totals, dict):
        raise CollectError(f'{named}: no "totals" object; is this coverage.py\'s JSON report?')

    def figure(name: str) -> float | None:
        value = totals.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise CollectError(f"{named}: totals.{name} is not a number of 0 or more")
        return float(value)

    statements, covered_lines = figure("num_statements"), figure("covered_lines")
    if statements is not None and covered_lines is not None:
        line = _percent(covered_lines, statements)
    else:
        fallback = figure("percent_statements_covered") or figure("percent_covered")
        if fallback is None:
            raise CollectError(f"{named}: totals has no line counts or percentages")
        line = fallback
    branches = figure("num_branches")
    branch = None
    if branches:
        branch = _percent(figure("covered_branches") or 0, branches)
    elif branches is None and (given := figure("percent_branches_covered")) is not None:
        branch = given
    return _checked(named, line, branch, "JSON report")


def _read_coverage_data(path: Path) -> CoverageFigures:
    if not _read(path).startswith(SQLITE_HEADER):
        raise CollectError(
            f"{path}: not a coverage.py data file; pass .coverage, coverage.xml or coverage.json"
        )
    import coverage
    from coverage.exceptions import CoverageException

    with tempfile.TemporaryDirectory(prefix="darklaunch-coverage-") as folder:
        report = Path(folder) / "coverage.json"
        try:
            with warnings.catch_warnings():
                # coverage.py warns about measurement details that do not change the totals.
                warnings.simplefilter("ignore")
                measured = coverage.Coverage(data_file=str(path), messages=False)
                measured.load()
                measured.json_report(outfile=str(report))
        except CoverageException as exc:
            message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise CollectError(f"{path}: coverage.py cannot report on it ({message})") from None
        figures = _read_coverage_json(report.read_bytes(), path)
    return CoverageFigures(figures.line, figures.branch, "data file")


def _checked(path: Path, line: float, branch: float | None, kind: str) -> CoverageFigures:
    for value in (line, branch):
        if value is not None and not 0 <= value <= 100.000001:
            raise CollectError(f"{path}: coverage of {value:.1f}% is outside 0-100%")
    return CoverageFigures(
        round(min(line, 100.0), 2), None if branch is None else round(min(branch, 100.0), 2), kind
    )


# ---- git ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitCommit:
    sha: str
    author_name: str
    author_email: str
    committed_at: datetime
    subject: str


def _git(repo: Path, *args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise CollectError("git: not found on PATH; install git on the CI runner")
    try:
        # Fixed arguments and shas checked by rev-parse: nothing here reaches a shell.
        done = subprocess.run(  # noqa: S603
            [git, "-C", str(repo), *args],
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            check=False,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CollectError(f"git: {exc}") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise GitFailed(f"git {args[0]}: {reason}")
    return done.stdout


def resolve_commit(repo: Path, revision: str) -> str:
    """The full sha of `revision` (a sha, tag, branch or HEAD) in `repo`."""
    if revision.startswith("-"):
        raise CollectError(f"git: {revision!r} is not a commit")
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").strip()
    except GitFailed:
        raise CollectError(f"git: {revision!r} is not a commit in {repo}") from None


def has_commit(repo: Path, sha: str) -> bool:
    try:
        _git(repo, "cat-file", "-e", f"{sha}^{{commit}}")
    except GitFailed:
        return False
    return True


def _clean(text: str, limit: int) -> str:
    text = "".join(ch if ch >= " " or ch == "\t" else " " for ch in text).strip()
    return text[:limit]


def commits_between(repo: Path, base: str | None, head: str) -> list[GitCommit]:
    """Commits in `head` but not in `base`, newest first; only `head` itself without a base."""
    revisions = [f"{base}..{head}"] if base else ["-1", head]
    out = _git(
        repo,
        "log",
        "--no-color",
        f"--format=%H{FIELD}%an{FIELD}%ae{FIELD}%cI{FIELD}%s{RECORD}",
        *revisions,
        "--",
    )
    commits = []
    for record in out.split(RECORD):
        record = record.strip("\n")
        if not record:
            continue
        sha, name, email, when, subject = record.split(FIELD, 4)
        commits.append(
            GitCommit(
                sha=sha,
                author_name=_clean(name, 200) or "(unknown)",
                author_email=_clean(email, 254),
                committed_at=datetime.fromisoformat(when),
                subject=_clean(subject, 500),
            )
        )
    return commits

"""What `deploy record` reads on a CI runner: git history, JUnit XML, coverage.py output."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from server.deploys import collect
from server.deploys.collect import CollectError, SuiteCounts
from tests.deploys.conftest import HISTORY, Project


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- JUnit ---------------------------------------------------------------------------------


def test_reads_pytests_own_junit_file(ci_project: Project) -> None:
    counts = collect.read_junit(ci_project.root / "junit.xml")
    assert (counts.passed, counts.failed, counts.errors, counts.skipped) == (2, 1, 1, 1)
    assert counts.total == 5
    assert counts.duration is not None and counts.duration >= 0


def test_reads_a_testsuite_root_with_its_time(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "suite.xml",
        '<testsuite name="unit" tests="3" time="1.5">'
        '<testcase name="a"/><testcase name="b"><failure message="x"/></testcase>'
        '<testcase name="c"><skipped/></testcase></testsuite>',
    )
    assert collect.read_junit(path) == SuiteCounts(1, 1, 0, 1, 1.5)


def test_reads_summary_only_suites_and_sums_their_times(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "summary.xml",
        '<testsuites><testsuite name="a" tests="10" failures="1" errors="2" skipped="3" time="2"/>'
        '<testsuite name="b" tests="4" disabled="1" time="0.5"/></testsuites>',
    )
    assert collect.read_junit(path) == SuiteCounts(7, 1, 2, 4, 2.5)


def test_duration_falls_back_to_the_test_cases(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cases.xml",
        '<testsuites><testsuite><testcase time="0.25"/><testcase time="0.5"/></testsuite>'
        "</testsuites>",
    )
    assert collect.read_junit(path).duration == 0.75
    bare = write(tmp_path, "bare.xml", "<testsuite><testcase/></testsuite>")
    assert collect.read_junit(bare).duration is None


def test_several_junit_files_add_up(ci_project: Project, tmp_path: Path) -> None:
    other = write(tmp_path, "more.xml", '<testsuite time="1"><testcase/></testsuite>')
    total = collect.read_junit_files([ci_project.root / "junit.xml", other])
    assert (total.passed, total.total) == (3, 6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            "<testsuite>&lol2;</testsuite>",
            "DTDs and entity declarations are not accepted",
        ),
        (
            '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><testsuite>&xxe;</testsuite>',
            "DTDs and entity declarations are not accepted",
        ),
        ("<testsuite><testcase></testsuite>", "not valid XML (mismatched tag at line 1, column"),
        ("", "not valid XML (no element found"),
        ("<report/>", "the root element is <report>, not <testsuites> or <testsuite>"),
        ('<testsuite time="soon"><testcase/></testsuite>', "time='soon' on <testsuite>"),
        ('<testsuite tests="1" failures="2"/>', "counts more failures"),
    ],
)
def test_bad_junit_files_get_one_line_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, "junit.xml", text)
    with pytest.raises(CollectError) as caught:
        collect.read_junit(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_or_folder_junit_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(CollectError, match=r"nope\.xml: no such file"):
        collect.read_junit(tmp_path / "nope.xml")
    with pytest.raises(CollectError, match="is a folder"):
        collect.read_junit(tmp_path)


# ---- coverage ------------------------------------------------------------------------------


def test_the_three_coverage_formats_agree(
    ci_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ci_project.root)  # coverage.py reads the project's own settings
    totals = json.loads((ci_project.root / "coverage.json").read_text())["totals"]
    data = collect.read_coverage(ci_project.root / ".coverage")
    xml = collect.read_coverage(ci_project.root / "coverage.xml")
    report = collect.read_coverage(ci_project.root / "coverage.json")
    expected_line = round(100 * totals["covered_lines"] / totals["num_statements"], 2)
    expected_branch = round(100 * totals["covered_branches"] / totals["num_branches"], 2)
    for figures in (data, xml, report):
        assert figures.line == pytest.approx(expected_line, abs=0.01)
        assert figures.branch == pytest.approx(expected_branch, abs=0.01)
    assert 0 < expected_branch < expected_line < 100
    assert (data.kind, xml.kind, report.kind) == ("data file", "Cobertura XML", "JSON report")


def test_cobertura_rates_and_missing_branches(tmp_path: Path) -> None:
    rates = write(tmp_path, "coverage.xml", '<coverage line-rate="0.875" branch-rate="0.5"/>')
    assert (collect.read_coverage(rates).line, collect.read_coverage(rates).branch) == (87.5, 50.0)
    lines_only = write(
        tmp_path, "lines.xml", '<coverage lines-valid="8" lines-covered="6" branches-valid="0"/>'
    )
    assert (collect.read_coverage(lines_only).line, collect.read_coverage(lines_only).branch) == (
        75.0,
        None,
    )


def test_json_percentages_without_counts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "coverage.json",
        json.dumps({"totals": {"percent_covered": 91.0, "percent_branches_covered": 80.0}}),
    )
    figures = collect.read_coverage(path)
    assert (figures.line, figures.branch) == (91.0, 80.0)
    no_statements = write(
        tmp_path, "empty.json", json.dumps({"totals": {"num_statements": 0, "covered_lines": 0}})
    )
    assert collect.read_coverage(no_statements).line == 100.0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("coverage.json", "{oops", "not valid JSON"),
        ("coverage.json", "[1, 2]", 'no "totals" object'),
        ("coverage.json", '{"totals": {}}', "no line counts or percentages"),
        (
            "coverage.json",
            '{"totals": {"num_statements": "ten", "covered_lines": 1}}',
            "totals.num_statements is not a number",
        ),
        ("coverage.json", '{"totals": {"percent_covered": 140}}', "outside 0-100%"),
        ("coverage.xml", "<report/>", "not Cobertura's <coverage>"),
        ("coverage.xml", "<coverage/>", "neither lines-valid nor line-rate"),
        ("coverage.xml", '<coverage line-rate="-1"/>', "line-rate='-1'"),
        (".coverage", "plain text", "not a coverage.py data file"),
    ],
)
def test_bad_coverage_files_get_one_line_naming_the_file(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(CollectError) as caught:
        collect.read_coverage(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_coverage_data_whose_sources_are_gone_is_refused(
    ci_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(ci_project.root, copy, ignore=shutil.ignore_patterns(".git"))
    (ci_project.root / "calc.py").rename(tmp_path / "calc.py.away")
    try:
        monkeypatch.chdir(copy)
        with pytest.raises(CollectError, match=r"\.coverage: coverage\.py cannot report on it"):
            collect.read_coverage(copy / ".coverage")
    finally:
        (tmp_path / "calc.py.away").rename(ci_project.root / "calc.py")


def test_missing_coverage_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CollectError, match=r"\.coverage: no such file"):
        collect.read_coverage(tmp_path / ".coverage")


# ---- git -----------------------------------------------------------------------------------


def test_commits_between_two_deploys_with_authors_and_times(ci_project: Project) -> None:
    first, second, third = ci_project.shas
    assert collect.resolve_commit(ci_project.root, "HEAD") == third
    assert collect.resolve_commit(ci_project.root, first[:10]) == first
    commits = collect.commits_between(ci_project.root, first, third)
    assert [c.sha for c in commits] == [third, second]  # newest first, base excluded
    assert [c.subject for c in commits] == [HISTORY[2][2], HISTORY[1][2]]
    assert [c.author_name for c in commits] == ["Chen Wei", "Bruno Lima"]
    assert commits[1].author_email == "bruno@example.com"
    assert commits[1].committed_at == datetime.fromisoformat(HISTORY[1][1])


def test_without_a_previous_deploy_only_the_deployed_commit_counts(ci_project: Project) -> None:
    (only,) = collect.commits_between(ci_project.root, None, ci_project.shas[1])
    assert only.sha == ci_project.shas[1]


def test_unknown_revisions_are_refused(ci_project: Project) -> None:
    with pytest.raises(CollectError, match="'no-such-branch' is not a commit"):
        collect.resolve_commit(ci_project.root, "no-such-branch")
    with pytest.raises(CollectError, match="'--all' is not a commit"):
        collect.resolve_commit(ci_project.root, "--all")
    assert collect.has_commit(ci_project.root, ci_project.shas[0])
    assert not collect.has_commit(ci_project.root, "0" * 40)


def test_git_outside_a_repository_names_git(tmp_path: Path) -> None:
    with pytest.raises(CollectError, match=r"^git log: "):
        collect.commits_between(tmp_path, None, "HEAD")


def test_missing_git_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collect.shutil, "which", lambda _name: None)
    with pytest.raises(CollectError, match="git: not found on PATH"):
        collect.resolve_commit(tmp_path, "HEAD")

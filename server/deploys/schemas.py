"""The JSON shapes of the deploys API: strict requests, exact responses.

`darklaunch deploy record` builds its request with `DeployIn` too, so a body the server would
refuse is caught on the CI runner, with the same field messages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from server.api import StrictModel
from server.pagination import PageNumber

MAX_COMMITS = 2000
SHA_PATTERN = r"^[0-9a-f]{7,64}$"
# Versions appear in URLs, file names of the static export and CI logs: keep them plain.
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+:@/-]{0,99}$"

ABSENT: Any = None

StatusName = Literal["started", "succeeded", "failed", "rolled_back"]


def _printable(value: str) -> str:
    # PostgreSQL refuses NUL in text, and control characters only garble the pages.
    if any(ord(ch) < 32 and ch not in "\t" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _web_link(value: str) -> str:
    _printable(value)
    if not value.lower().startswith(("https://", "http://")):
        raise ValueError("must be an http:// or https:// address")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces")
    return value


def _plausible_time(value: datetime) -> datetime:
    # Git and CI clocks live after 1970; extreme offsets near year 1 or 9999 cannot be stored.
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be a time between 1970 and 9000") from None
    if not EARLIEST <= utc.year <= LATEST:
        raise ValueError("must be a time between 1970 and 9000")
    return utc


EARLIEST, LATEST = 1970, 9000
Text = Annotated[str, AfterValidator(_printable)]
Moment = Annotated[AwareDatetime, AfterValidator(_plausible_time)]
Link = Annotated[str, Field(min_length=8, max_length=500), AfterValidator(_web_link)]
Count = Annotated[int, Field(ge=0, le=100_000_000)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class SuiteIn(StrictModel):
    """Test counts from JUnit XML."""

    passed: Count
    failed: Count = 0
    errors: Count = 0
    skipped: Count = 0
    duration_seconds: Annotated[float, Field(ge=0, le=10_000_000, allow_inf_nan=False)] | None = (
        None
    )


class CoverageIn(StrictModel):
    """Coverage from coverage.py, in percent."""

    line_percent: Percent
    branch_percent: Percent | None = None


class CommitIn(StrictModel):
    sha: Annotated[str, Field(pattern=SHA_PATTERN)]
    author_name: Annotated[Text, Field(min_length=1, max_length=200)]
    author_email: Annotated[Text, Field(max_length=254)] = ""
    committed_at: Moment
    subject: Annotated[Text, Field(max_length=500)] = ""


class DeployFields(StrictModel):
    """Fields a deploy can be recorded or updated with; absent fields stay as they are."""

    # sha, status and started_at may be left out but never cleared, so their types exclude
    # null; ABSENT (None typed as Any) is only the marker of "not sent".
    sha: Annotated[str, Field(pattern=SHA_PATTERN)] = Field(
        ABSENT, description="The deployed commit"
    )
    base_sha: Annotated[str, Field(pattern=SHA_PATTERN)] | None = Field(
        None, description="The environment's previously deployed commit"
    )
    status: StatusName = Field(
        ABSENT, description="Defaults to succeeded for a new deploy; unchanged on update"
    )
    started_at: Moment = Field(ABSENT, description="Defaults to now for a new deploy")
    finished_at: Moment | None = None
    url: Link | None = Field(None, description="Link to the CI run or release")
    tests: SuiteIn | None = None
    coverage: CoverageIn | None = None
    commits: Annotated[list[CommitIn], Field(max_length=MAX_COMMITS)] | None = Field(
        None, description="Newest first, as `git log` lists them; replaces earlier commits"
    )


class DeployIn(DeployFields):
    """Record a deploy; a second post for the same environment and version updates it."""

    environment: Annotated[str, Field(min_length=1, max_length=100)]
    version: Annotated[str, Field(pattern=VERSION_PATTERN)]


class DeployPatch(DeployFields):
    """Change a recorded deploy (status, finish time, figures, link)."""


class DeploysQuery(StrictModel):
    env: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    status: StatusName | None = None
    page: PageNumber = 1
    per_page: Annotated[int, Field(ge=1, le=200)] = 50


class SuiteOut(BaseModel):
    passed: int
    failed: int
    errors: int
    skipped: int
    total: int
    duration_seconds: float | None


class CoverageOut(BaseModel):
    line_percent: float
    branch_percent: float | None


class CommitOut(BaseModel):
    sha: str
    author_name: str
    author_email: str
    committed_at: datetime
    subject: str


class DeployOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    environment: str
    version: str
    sha: str | None
    base_sha: str | None
    status: StatusName
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    url: str | None
    tests: SuiteOut | None
    coverage: CoverageOut | None
    commit_count: int
    authors: list[str]
    commits: list[CommitOut]
    recorded_by: str
    created_at: datetime
    updated_at: datetime


class DeployPage(BaseModel):
    deploys: list[DeployOut]
    total: int
    page: int
    per_page: int

"""`/api/admin/features-batch/export`, `/validate` and `/import`: Unleash's own format and paths.

Unleash scripts and its UI's import dialog send one environment at a time: `{project,
environment, data}` where `data` is an export. An import either applies entirely or, when
something cannot be represented, is refused with the list (as Unleash refuses an import whose
validation has errors); `/validate` gives the same list without changing anything.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import Blueprint, current_app
from pydantic import BaseModel, Field, model_validator
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import StrictModel, api_doc, parse_body
from server.errors import Invalid, NotFound
from server.unleash_compat import batch
from server.web import actor

bp = Blueprint("unleash_batch", __name__)

BATCH = "/api/admin/features-batch"


class ExportQueryIn(BaseModel):
    """Unleash's `exportQuerySchema`: one environment, and features by name, a tag or the
    project (an empty or missing `features` list means every flag)."""

    environment: str = Field(min_length=1, max_length=100)
    features: list[str] | None = Field(default=None, max_length=10_000)
    tag: str | None = Field(default=None, max_length=200)
    project: str | None = Field(default=None, max_length=100)
    downloadFile: bool = False


class ImportTogglesIn(StrictModel):
    """Unleash's `importTogglesSchema`."""

    project: str = Field(min_length=1, max_length=100)
    environment: str = Field(min_length=1, max_length=100)
    data: dict[str, Any]

    @model_validator(mode="after")
    def _default_project(self) -> ImportTogglesIn:
        if self.project != batch.PROJECT:
            raise ValueError("Darklaunch has one project, 'default'")
        return self


class ValidateItemOut(BaseModel):
    message: str
    affectedItems: list[str]


class ValidateOut(BaseModel):
    """Unleash's `importTogglesValidateSchema`."""

    errors: list[ValidateItemOut]
    warnings: list[ValidateItemOut]
    permissions: list[ValidateItemOut]


def _json(data: Any, status: int = 200) -> Response:
    return current_app.response_class(
        current_app.json.dumps(data), status=status, mimetype="application/json"
    )


@bp.post(BATCH + "/export")
@requires(Permission.READ)
@api_doc(
    "Export one environment's flags in Unleash's format",
    request=ExportQueryIn,
    responses={200: None},
    tag="flags",
)
def export_features() -> Response:
    """Flags of one environment as Unleash's `exportResultSchema`."""
    body = parse_body(ExportQueryIn)
    if body.project is not None and body.project != batch.PROJECT and not body.features:
        raise NotFound(f"No project named {body.project!r}; Darklaunch has one, 'default'.")
    document = batch.export_unleash(
        db.session(),
        body.environment,
        current_app.config["ENVIRONMENTS"],
        names=body.features or None,
        tag=body.tag,
    )
    response = _json(document)
    if body.downloadFile:
        response.headers["Content-Disposition"] = (
            f'attachment; filename="export-{body.environment}.json"'
        )
    return response


def _run(body: ImportTogglesIn, *, dry_run: bool) -> batch.ImportReport:
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    environment = batch.export_environment(body.data, body.environment)
    if environment != body.environment:
        raise Invalid(
            f"The export is of {environment!r}; it cannot be imported into {body.environment!r}."
        )
    source = batch.UnleashSource({environment: body.data})
    return batch.import_unleash(db.session(), actor(), source, environments, dry_run=dry_run)


def _validation(report: batch.ImportReport) -> ValidateOut:
    by_reason: dict[str, list[str]] = defaultdict(list)
    for problem in report.problems:
        by_reason["These flags cannot be represented in Darklaunch:"].append(str(problem))
    return ValidateOut(
        errors=[ValidateItemOut(message=m, affectedItems=items) for m, items in by_reason.items()],
        warnings=[ValidateItemOut(message=note, affectedItems=[]) for note in report.notes],
        permissions=[],
    )


@bp.post(BATCH + "/validate")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Check an Unleash import without changing anything",
    request=ImportTogglesIn,
    responses={200: ValidateOut},
    tag="flags",
)
def validate_import() -> Response:
    """What an import would refuse (errors) and leave aside (warnings)."""
    report = _run(parse_body(ImportTogglesIn), dry_run=True)
    return _json(_validation(report).model_dump())


@bp.post(BATCH + "/import")
@requires(Permission.FLAGS_WRITE)
@api_doc(
    "Import one environment of an Unleash export",
    request=ImportTogglesIn,
    responses={200: None},
    tag="flags",
)
def import_features() -> Response:
    """Create or update the exported flags in that environment; all or nothing."""
    body = parse_body(ImportTogglesIn)
    checked = _run(body, dry_run=True)
    if checked.problems:
        raise Invalid(
            "The import was refused; nothing was changed. "
            + "; ".join(str(p) for p in checked.problems),
            {"errors": [str(p) for p in checked.problems]},
        )
    _run(body, dry_run=False)
    return Response(status=200)

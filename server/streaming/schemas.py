"""The delta document's shape, for /api/openapi.json."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from server.protocols.schemas import ClientFeature, ClientSegment


class DeltaEvent(BaseModel):
    eventId: int
    type: Literal[
        "hydration", "feature-updated", "feature-removed", "segment-updated", "segment-removed"
    ]
    features: list[ClientFeature] | None = None  # hydration
    segments: list[ClientSegment] | None = None  # hydration
    feature: ClientFeature | None = None  # feature-updated
    featureName: str | None = None
    project: str | None = None  # feature-removed
    segment: ClientSegment | None = None  # segment-updated
    segmentId: int | None = None


class ClientDeltaOut(BaseModel):
    """Unleash's delta document: events in order; each `eventId` is the revision it reaches."""

    events: list[DeltaEvent]

    model_config = {"json_schema_extra": {"example": {"events": []}}}

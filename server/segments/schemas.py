"""The segments admin API's request and response shapes (Unleash's field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from server.flags.schemas import ConstraintOut, SegmentIn


class SegmentOut(BaseModel):
    id: int
    name: str
    description: str
    constraints: list[ConstraintOut]
    usedInFeatures: int
    version: int
    createdAt: datetime
    updatedAt: datetime
    updatedBy: str


class SegmentsOut(BaseModel):
    segments: list[SegmentOut]


class SegmentBody(SegmentIn):
    project: Literal["default"] | None = None
    version: int | None = Field(default=None, ge=1)

"""Request and response shapes of the SDK protocols (Unleash client and frontend APIs, OFREP).

Bodies SDKs send are read leniently where the SDKs add fields of their own (register and metrics
carry platform details, flavours, impact metrics): unknown fields are ignored, known ones are
checked strictly. Response models describe exactly what the endpoints return, for the OpenAPI
document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_MAX = 255
COUNT_MAX = 10**12  # far above any real bucket; keeps sums inside a 64-bit integer
Count = Annotated[int, Field(ge=0, le=COUNT_MAX, strict=True)]


class SdkBody(BaseModel):
    """An SDK's request body: fields we do not use are ignored, the ones we use are checked."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class RegisterIn(SdkBody):
    appName: str = Field(min_length=1, max_length=NAME_MAX)
    instanceId: str = Field(default="default", min_length=1, max_length=NAME_MAX)
    connectionId: str | None = Field(default=None, max_length=100)
    sdkVersion: str | None = Field(default=None, max_length=NAME_MAX)
    platformName: str | None = Field(default=None, max_length=100)
    platformVersion: str | None = Field(default=None, max_length=100)
    started: datetime | None = None
    interval: int | None = Field(default=None, ge=0, le=2**31 - 1, strict=True)
    strategies: list[Annotated[str, Field(max_length=NAME_MAX)]] = Field(
        default_factory=list, max_length=100
    )


class ToggleCounts(SdkBody):
    yes: Count = 0
    no: Count = 0
    variants: dict[str, Count] = Field(default_factory=dict, max_length=1000)

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, variants: dict[str, int]) -> dict[str, int]:
        for name in variants:
            if not name or len(name) > NAME_MAX:
                raise ValueError(f"variant names are 1-{NAME_MAX} characters")
        return variants


class Bucket(SdkBody):
    start: datetime
    stop: datetime
    toggles: dict[str, ToggleCounts] = Field(default_factory=dict, max_length=10_000)

    @field_validator("toggles")
    @classmethod
    def _flag_names(cls, toggles: dict[str, ToggleCounts]) -> dict[str, ToggleCounts]:
        for name in toggles:
            if not name or len(name) > NAME_MAX:
                raise ValueError(f"flag names are 1-{NAME_MAX} characters")
        return toggles


class MetricsIn(SdkBody):
    appName: str = Field(min_length=1, max_length=NAME_MAX)
    instanceId: str = Field(default="default", min_length=1, max_length=NAME_MAX)
    connectionId: str | None = Field(default=None, max_length=100)
    sdkVersion: str | None = Field(default=None, max_length=NAME_MAX)
    bucket: Bucket


class ContextBody(BaseModel):
    """`POST /api/frontend` and OFREP: `{"context": {...}}` (values: strings, numbers, booleans)."""

    model_config = ConfigDict(extra="forbid")

    context: dict[str, Any] = Field(default_factory=dict)


class FrontendQuery(BaseModel):
    """The frontend API's context as query parameters; any other name becomes a property."""

    model_config = ConfigDict(extra="allow")

    userId: str | None = None
    sessionId: str | None = None
    remoteAddress: str | None = None
    appName: str | None = None
    environment: str | None = None
    currentTime: str | None = None


# ---- responses ---------------------------------------------------------------------------------


class ClientStrategy(BaseModel):
    id: str | None = None
    name: str
    title: str | None = None
    parameters: dict[str, str]
    constraints: list[dict[str, Any]]
    segments: list[int]
    variants: list[dict[str, Any]]


class ClientFeature(BaseModel):
    name: str
    type: str
    description: str | None = None
    enabled: bool
    stale: bool
    impressionData: bool
    project: str
    strategies: list[ClientStrategy]
    variants: list[dict[str, Any]]
    dependencies: list[dict[str, Any]] | None = None


class ClientSegment(BaseModel):
    id: int
    name: str | None = None
    constraints: list[dict[str, Any]]


class ClientFeaturesOut(BaseModel):
    """The Unleash client document (version 2): one environment's flags, segments at top level."""

    version: int
    features: list[ClientFeature]
    segments: list[ClientSegment]
    query: dict[str, Any]


class PayloadOut(BaseModel):
    type: Literal["string", "json", "csv", "number"]
    value: str


class FrontendVariant(BaseModel):
    name: str
    enabled: bool
    feature_enabled: bool | None = None
    payload: PayloadOut | None = None


class FrontendToggle(BaseModel):
    name: str
    enabled: bool
    impressionData: bool
    variant: FrontendVariant


class FrontendOut(BaseModel):
    """The flags enabled for the context, with their variants."""

    toggles: list[FrontendToggle]


OfrepReason = Literal["STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "DEFAULT", "UNKNOWN"]
OfrepErrorCode = Literal[
    "PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "FLAG_NOT_FOUND", "GENERAL"
]


class OfrepSuccess(BaseModel):
    """One evaluated flag; without `value` the caller's code default applies."""

    key: str
    value: bool | int | float | str | dict[str, Any] | list[Any] | None = None
    reason: OfrepReason
    variant: str
    metadata: dict[str, str | bool | int | float]


class OfrepFailure(BaseModel):
    key: str
    errorCode: OfrepErrorCode
    errorDetails: str


class OfrepError(BaseModel):
    """An OFREP error body (its own shape, not Darklaunch's `{"error": ...}`)."""

    key: str | None = None
    errorCode: OfrepErrorCode | None = None
    errorDetails: str


class OfrepEventStream(BaseModel):
    """An SSE connection that says when to evaluate again (OFREP v0.3.0 `eventStreams`)."""

    type: str
    url: str
    inactivityDelaySec: int | None = None


class OfrepBulkOut(BaseModel):
    flags: list[OfrepSuccess | OfrepFailure]
    metadata: dict[str, str | bool | int | float]
    eventStreams: list[OfrepEventStream] | None = None

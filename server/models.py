"""Imports every feature's models so Base.metadata is complete (migrations, checks, tests)."""

from server.announcements.models import Announcement, AnnouncementSlug, ChangelogSettings
from server.audit.models import Event
from server.auth.models import ApiToken, LoginFailure, LoginLimit, User, UserSession
from server.changes.models import ChangeSet
from server.db import Base, StateRevision
from server.deploys.models import Deploy, DeployCommit
from server.flags.definitions import ContextField, StrategyDefinition, TagType
from server.flags.models import Flag, FlagEnvironment, Segment, Strategy, StrategySegment
from server.gate.models import PreviewPass
from server.incidents.models import Incident
from server.protocols.models import (
    FlagHourlyMetric,
    FlagHourlyVariantMetric,
    FlagLastSeen,
    SdkInstance,
)
from server.streaming.presence import SdkStream
from server.webhooks.models import Webhook, WebhookDelivery

__all__ = [
    "Announcement",
    "AnnouncementSlug",
    "ApiToken",
    "Base",
    "ChangeSet",
    "ChangelogSettings",
    "ContextField",
    "Deploy",
    "DeployCommit",
    "Event",
    "Flag",
    "FlagEnvironment",
    "FlagHourlyMetric",
    "FlagHourlyVariantMetric",
    "FlagLastSeen",
    "Incident",
    "LoginFailure",
    "LoginLimit",
    "PreviewPass",
    "SdkInstance",
    "SdkStream",
    "Segment",
    "StateRevision",
    "Strategy",
    "StrategyDefinition",
    "StrategySegment",
    "TagType",
    "User",
    "UserSession",
    "Webhook",
    "WebhookDelivery",
]

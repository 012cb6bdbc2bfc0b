"""Imports every feature's models so Base.metadata is complete (migrations, checks, tests)."""

from server.audit.models import Event
from server.auth.models import ApiToken, LoginFailure, User
from server.db import Base, StateRevision
from server.deploys.models import Deploy, DeployCommit
from server.flags.models import Flag, FlagEnvironment, Segment, Strategy
from server.gate.models import PreviewPass

__all__ = [
    "ApiToken",
    "Base",
    "Deploy",
    "DeployCommit",
    "Event",
    "Flag",
    "FlagEnvironment",
    "LoginFailure",
    "PreviewPass",
    "Segment",
    "StateRevision",
    "Strategy",
    "User",
]

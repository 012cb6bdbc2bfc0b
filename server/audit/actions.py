"""Every action the audit log records: one closed set (STYLE.md rule 18).

Values are what is stored in `events.action` and what `?type=` and the audit page's filter
match (by prefix: `flag.` selects every flag action), so a value never changes once released.
docs/api.md lists them for users; a test keeps that list and this enum in step.
"""

# Action names, not secrets: "pass" is a preview pass and "token" an API token.
# ruff: noqa: S105

from __future__ import annotations

import enum


class AuditAction(enum.StrEnum):
    """What happened, as `family.verb` (the family names the kind of target)."""

    FLAG_CREATED = "flag.created"
    FLAG_UPDATED = "flag.updated"
    FLAG_ARCHIVED = "flag.archived"
    FLAG_REVIVED = "flag.revived"
    FLAG_ENABLED = "flag.enabled"
    FLAG_DISABLED = "flag.disabled"
    FLAG_STRATEGY_ADDED = "flag.strategy.added"
    FLAG_STRATEGY_UPDATED = "flag.strategy.updated"
    FLAG_STRATEGY_REMOVED = "flag.strategy.removed"
    FLAG_STRATEGY_REORDERED = "flag.strategy.reordered"
    FLAG_VARIANTS_UPDATED = "flag.variants.updated"
    FLAG_ENVIRONMENT_COPIED = "flag.environment.copied"

    SEGMENT_CREATED = "segment.created"
    SEGMENT_UPDATED = "segment.updated"
    SEGMENT_DELETED = "segment.deleted"

    STRATEGY_TYPE_CREATED = "strategy.created"
    STRATEGY_TYPE_UPDATED = "strategy.updated"
    STRATEGY_TYPE_DEPRECATED = "strategy.deprecated"
    STRATEGY_TYPE_REACTIVATED = "strategy.reactivated"
    STRATEGY_TYPE_DELETED = "strategy.deleted"

    CONTEXT_FIELD_CREATED = "context.created"
    CONTEXT_FIELD_UPDATED = "context.updated"
    CONTEXT_FIELD_DELETED = "context.deleted"

    TAG_TYPE_CREATED = "tagtype.created"
    TAG_TYPE_UPDATED = "tagtype.updated"
    TAG_TYPE_DELETED = "tagtype.deleted"

    PASS_CREATED = "pass.created"
    PASS_REVOKED = "pass.revoked"
    PASS_CLAIMED = "pass.claimed"

    USER_CREATED = "user.created"
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    USER_ROLE_CHANGED = "user.role_changed"  # by an admin, or by the provider's groups at sign-in
    USER_SIGNIN_REFUSED = "user.signin_refused"  # single sign-on: no mapped group, not invited
    USER_PASSWORD_CHANGED = "user.password_changed"
    USER_PASSWORD_RESET_ISSUED = "user.password_reset_issued"
    USER_PASSWORD_RESET = "user.password_reset"  # a reset link was used
    USER_TOTP_ENROLLED = "user.totp_enrolled"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"

    DEPLOY_RECORDED = "deploy.recorded"
    DEPLOY_UPDATED = "deploy.updated"

    INCIDENT_OPENED = "incident.opened"
    INCIDENT_RESOLVED = "incident.resolved"
    INCIDENT_REOPENED = "incident.reopened"
    INCIDENT_UPDATED = "incident.updated"  # its title or link, nothing about its state

    ANNOUNCEMENT_CREATED = "announcement.created"
    ANNOUNCEMENT_UPDATED = "announcement.updated"
    ANNOUNCEMENT_PUBLISHED = "announcement.published"
    ANNOUNCEMENT_SCHEDULED = "announcement.scheduled"
    ANNOUNCEMENT_UNPUBLISHED = "announcement.unpublished"
    ANNOUNCEMENT_ARCHIVED = "announcement.archived"
    ANNOUNCEMENT_RESTORED = "announcement.restored"
    ANNOUNCEMENT_DELETED = "announcement.deleted"
    CHANGELOG_SETTINGS_CHANGED = "changelog.settings_changed"

    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_DISABLED = "webhook.disabled"  # by the delivery worker, after the retry period
    WEBHOOK_REDELIVERED = "webhook.redelivered"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"

    DEMO_SEEDED = "demo.seeded"

    @property
    def family(self) -> str:
        """The kind of target the action is about: `flag`, `pass`, `user`..."""
        return self.value.split(".", 1)[0]

    @classmethod
    def of_family(cls, family: str) -> tuple[AuditAction, ...]:
        """Every action of one family, in declaration order."""
        return tuple(a for a in cls if a.family == family)

"""Single sign-on with OpenID Connect: who a provider's claims make a user, and in what role.

The protocol itself (discovery, authorization code with PKCE, state, nonce, the ID token's
signature, issuer, audience and expiry) is Authlib's; see server.auth.oidc_views. This module
decides, from the checked claims, whether the person may sign in and with which role:

- the role comes from the groups claim through DARKLAUNCH_OIDC_ROLE_MAP, strongest role first,
  and is set again at every sign-in (a change is audited, and every live session follows);
- a person in no mapped group but in a gate group, or with a provider-verified email in a gate
  domain, becomes `team`: they pass the closed gate and see no Darklaunch page;
- anyone else is refused, and a known user refused this way loses their live sessions too;
- a first sign-in creates the user, unless only invited people may sign in: then an admin must
  have added the email first. An existing account is linked to the provider's subject only
  when the provider says the email is verified.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import clock
from server.access import Role
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.auth.accounts import apply_role
from server.auth.models import User
from server.auth.service import EMAIL_RE, _user_dict
from server.auth.sessions import end_sessions
from server.changes.log import ChangeKind
from server.errors import Forbidden
from server.unit_of_work import record_change

log = logging.getLogger(__name__)

# Strongest first: a person in several mapped groups gets the strongest role among them.
ROLE_ORDER = (Role.ADMIN, Role.DEVELOPER, Role.EDITOR, Role.VIEWER, Role.TEAM)


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    scopes: str
    role_claim: str
    role_map: tuple[tuple[str, str], ...]
    invited_only: bool
    oidc_only: bool
    break_glass: str
    gate_groups: tuple[str, ...]
    gate_domains: tuple[str, ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OidcSettings | None:
        if not config.get("OIDC_ISSUER"):
            return None
        return cls(
            issuer=config["OIDC_ISSUER"],
            client_id=config["OIDC_CLIENT_ID"],
            client_secret=config["OIDC_CLIENT_SECRET"],
            name=config["OIDC_NAME"],
            scopes=config["OIDC_SCOPES"],
            role_claim=config["OIDC_ROLE_CLAIM"],
            role_map=tuple(config["OIDC_ROLE_MAP"]),
            invited_only=config["OIDC_INVITED_ONLY"],
            oidc_only=config["OIDC_ONLY"],
            break_glass=config["BREAK_GLASS_EMAIL"],
            gate_groups=tuple(config["OIDC_GATE_GROUPS"]),
            gate_domains=tuple(config["OIDC_GATE_DOMAINS"]),
        )


class SignInRefused(Forbidden):
    """The provider vouched for this person, but Darklaunch does not let them in."""


def groups_of(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """The groups in `claim`: a list of strings, or one string (comma- or space-separated)."""
    value = claims.get(claim)
    if isinstance(value, str):
        return tuple(part for part in value.replace(",", " ").split() if part)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


def verified_email(claims: Mapping[str, Any]) -> str | None:
    """The email the provider vouches for, lower-cased; None when absent or unverified."""
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is not True:
        return None
    email = email.strip().lower()
    return email if EMAIL_RE.match(email) and len(email) <= 254 else None


def role_for(settings: OidcSettings, claims: Mapping[str, Any]) -> Role | None:
    """The role the claims give (strongest mapped group, else `team` through the gate), or None."""
    groups = set(groups_of(claims, settings.role_claim))
    mapped = {Role(role) for group, role in settings.role_map if group in groups}
    for role in ROLE_ORDER:
        if role in mapped:
            return role
    if groups & set(settings.gate_groups):
        return Role.TEAM
    email = verified_email(claims)
    if email is not None and email.rpartition("@")[2] in settings.gate_domains:
        return Role.TEAM
    return None


def _refuse(session: Session, who: str, reason: str, user: User | None) -> SignInRefused:
    actor = Actor(f"sso:{who}")
    record_event(
        session, actor, AuditAction.USER_SIGNIN_REFUSED, "user", who, after={"reason": reason}
    )
    if user is not None:
        # Removed from every group at the provider: what they still had open ends now.
        end_sessions(session, user, actor=actor)
    return SignInRefused(reason)


def sign_in(session: Session, settings: OidcSettings, claims: Mapping[str, Any]) -> User:
    """The user these checked ID-token claims sign in (created or updated); SignInRefused else.

    The caller commits even when this raises SignInRefused: the refusal is audited.
    """
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise SignInRefused("The provider sent no usable subject.")
    email = verified_email(claims)
    user = session.scalar(select(User).where(User.oidc_subject == subject))
    if user is None and email is not None:
        user = session.scalar(select(User).where(User.email == email))
        if user is not None and user.oidc_subject is not None:
            # The email belongs to another subject at the provider: never take it over.
            raise _refuse(session, email, "email linked to another provider account", None)
    who = user.email if user is not None else (email or subject)
    if user is not None and user.disabled_at is not None:
        raise _refuse(session, who, "account disabled", None)
    role = role_for(settings, claims)
    if role is None:
        raise _refuse(session, who, "in no group that Darklaunch maps", user)
    if user is None:
        if settings.invited_only:
            raise _refuse(session, who, "not invited", None)
        if email is None:
            raise _refuse(session, who, "no verified email", None)
        user = User(
            email=email, role=role.value, password_hash="", oidc_subject=subject,
            created_at=clock.now(),
        )  # fmt: skip
        session.add(user)
        session.flush()
        actor = Actor(email)
        record_event(
            session, actor, AuditAction.USER_CREATED, "user", email,
            after={**_user_dict(user), "via": "oidc"},
        )  # fmt: skip
        record_change(session, actor, ChangeKind.USER, email, _user_dict(user))
        return user
    if user.oidc_subject is None:
        user.oidc_subject = subject  # linked: the provider verified this email
    if user.email == settings.break_glass and role is not Role.ADMIN:
        # The break-glass account stays an admin whatever the provider says.
        return user
    apply_role(session, Actor(f"sso:{user.email}"), user, role)
    return user

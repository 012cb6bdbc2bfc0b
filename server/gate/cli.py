"""`darklaunch gate ...`: the same services the gate page and API call."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from server import clock, db
from server.audit.service import Actor
from server.auth.cli import fail
from server.errors import DomainError
from server.gate import FLAG, settings
from server.gate import passes as preview_passes
from server.gate.state import GateState, read_state

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def _envs() -> tuple[tuple[str, ...], str]:
    return tuple(current_app.config["ENVIRONMENTS"]), str(current_app.config["GATE_ENV"])


def _show(state: GateState) -> None:
    click.echo(state.sentence)
    click.echo(f"Flag: {FLAG} in {state.environment}")
    if state.open or not state.audience.everyone:
        opened = "" if state.open else " (once open)"
        who = "everyone" if state.audience.everyone else "; ".join(state.audience.phrases())
        click.echo(f"Who may pass{opened}: {who}")
    click.echo(f"Active preview passes: {state.active_passes}")


@click.group(cls=AppGroup)
def gate() -> None:
    """Open, close and inspect the production gate; manage preview passes."""


@gate.command("status")
def status() -> None:
    """Say whether the gate is open and who may pass."""
    _show(read_state(db.session(), _envs()[1]))


@gate.command("open")
def open_gate() -> None:
    """Open the gate (for everyone, unless who-may-pass narrows it)."""
    environments, environment = _envs()
    try:
        _show(settings.open_gate(db.session(), Actor.cli(), environments, environment))
    except DomainError as exc:
        fail(exc)


@gate.command("close")
def close_gate() -> None:
    """Close the gate: only the team and preview passes get in."""
    environments, environment = _envs()
    try:
        _show(settings.close_gate(db.session(), Actor.cli(), environments, environment))
    except DomainError as exc:
        fail(exc)


@gate.command("audience")
@click.option("--everyone", is_flag=True, help="Everyone passes an open gate.")
@click.option("--percent", type=int, default=None, help="Soft launch: share of visitors.")
@click.option("--network", "networks", multiple=True, help="Office address or CIDR (repeat).")
@click.option("--user", "users", multiple=True, help="User id a trusted proxy asserts (repeat).")
def audience(
    everyone: bool, percent: int | None, networks: tuple[str, ...], users: tuple[str, ...]
) -> None:
    """Set who may pass while the gate is open."""
    if everyone and (percent is not None or networks or users):
        raise click.UsageError("--everyone cannot be combined with --percent, --network, --user.")
    environments, environment = _envs()
    choice = settings.AudienceChoice(
        everyone=everyone,
        percent=percent,
        networks=settings.split_list(networks),
        user_ids=list(users),
    )
    try:
        _show(settings.set_audience(db.session(), Actor.cli(), environments, environment, choice))
    except DomainError as exc:
        fail(exc)


@gate.group("pass")
def passes() -> None:
    """Preview passes: links that let someone past the closed gate."""


@passes.command("create")
@click.option("--label", required=True, help="Who or what the pass is for.")
@click.option("--expires", default="7d", show_default=True, help="30m, 12h, 7d, 2w or a date.")
@click.option("--uses", type=int, default=None, help="How many times the link may be opened.")
def create_pass(label: str, expires: str, uses: int | None) -> None:
    """Create a preview pass and print its link alone on the last line (shown only once)."""
    try:
        issued = preview_passes.create_pass(db.session(), Actor.cli(), label, expires, uses)
    except DomainError as exc:
        fail(exc)
    else:
        p = issued.preview_pass
        limit = f", up to {p.max_uses} uses" if p.max_uses else ""
        click.echo(
            f"Created preview pass {p.id} “{p.label}”, valid until "
            f"{p.expires_at:%Y-%m-%d %H:%M} UTC{limit}. Share the link now: it is shown once.",
            err=True,
        )
        base = current_app.config["BASE_URL"] or DEFAULT_BASE_URL
        click.echo(preview_passes.preview_link(base, issued.secret))


@passes.command("list")
def list_passes() -> None:
    """List preview passes (never their links)."""
    now = clock.now()
    for p in preview_passes.list_passes(db.session()):
        uses = f"{p.uses}/{p.max_uses}" if p.max_uses else str(p.uses)
        state = preview_passes.pass_state(p, now).value
        click.echo(f"{p.id}\t{p.label}\t{state}\tuses {uses}\tuntil {p.expires_at:%Y-%m-%d %H:%M}")


@passes.command("revoke")
@click.argument("pass_id", type=int)
def revoke_pass(pass_id: int) -> None:
    """Revoke a preview pass by id."""
    try:
        p = preview_passes.revoke_pass(db.session(), Actor.cli(), pass_id)
    except DomainError as exc:
        fail(exc)
    else:
        click.echo(f"Revoked preview pass {p.id} “{p.label}”.")

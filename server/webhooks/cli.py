"""`darklaunch webhooks deliver`: send what is due now, without waiting for a worker's thread."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from server.webhooks.delivery import Deliverer


@click.group("webhooks", cls=AppGroup)
def webhooks_group() -> None:
    """Outbound webhooks."""


@webhooks_group.command("deliver")
def deliver() -> None:
    """Send every delivery that is due, in order per webhook, until none is left."""
    deliverer: Deliverer = current_app.extensions["webhooks"]
    total = 0
    while sent := deliverer.run_once():
        total += sent
        click.echo(f"sent {total} so far", err=True)
    click.echo(f"Sent {total} deliveries; nothing else is due.")

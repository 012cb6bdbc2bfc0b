"""Settings → Webhooks: the list, the form, each webhook's delivery log and its actions."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, session, url_for
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from server import db
from server.access import Permission, requires
from server.errors import DomainError
from server.web import actor, form_errors
from server.webhooks import service
from server.webhooks.forms import EVENT_LABELS, WebhookForm

bp = Blueprint("webhooks", __name__, url_prefix="/settings/webhooks")

# The session key that holds a new webhook's secret until the next page shows it, once.
UNSHOWN_SLOT = "unshown_webhook"


def _form(blank: bool = False) -> WebhookForm:
    form = WebhookForm(prefix="webhook", formdata=None) if blank else WebhookForm(prefix="webhook")
    form.environment.choices = [SelectChoice("", "(every environment)")] + [
        SelectChoice(env) for env in current_app.config["ENVIRONMENTS"]
    ]
    return form


def _page(status: int = 200, form: WebhookForm | None = None) -> tuple[str, int, dict[str, str]]:
    new = session.pop(UNSHOWN_SLOT, None)
    page = render_template(
        "webhooks/list.html",
        webhooks=service.list_webhooks(db.session()),
        form=form or _form(blank=True),
        labels=EVENT_LABELS,
        new_webhook=new if isinstance(new, dict) else None,
    )
    # The page may hold a new secret: kept out of every cache and the back button.
    return page, status, {"Cache-Control": "no-store"}


@bp.get("")
@requires(Permission.USERS_ADMIN)
def index() -> tuple[str, int, dict[str, str]]:
    """List webhooks with the form to add one."""
    return _page()


@bp.post("")
@requires(Permission.USERS_ADMIN)
def create() -> Response | tuple[str, int, dict[str, str]]:
    """Add a webhook and show its signing secret once."""
    form = _form()
    if form.validate_on_submit():
        try:
            issued = service.create_webhook(
                db.session(),
                actor(),
                form.url.data or "",
                list(form.events.data or []),
                form.environment.data or None,
                form.format.data or "",
                current_app.config["ENVIRONMENTS"],
                enabled=bool(form.enabled.data),
            )
        except DomainError as exc:
            form_errors(form, exc)
            return _page(exc.status, form)
        session[UNSHOWN_SLOT] = {"url": issued.webhook.url, "secret": issued.secret}
        return redirect(url_for("webhooks.index", _anchor="new-webhook"), 303)
    return _page(400, form)


@bp.get("/<int:webhook_id>")
@requires(Permission.USERS_ADMIN)
def detail(webhook_id: int) -> str:
    """Show a webhook and its delivery log."""
    s = db.session()
    return render_template(
        "webhooks/detail.html",
        webhook=service.get_webhook(s, webhook_id),
        deliveries=service.list_deliveries(s, webhook_id),
        labels=EVENT_LABELS,
    )


@bp.post("/<int:webhook_id>/enabled")
@requires(Permission.USERS_ADMIN)
def toggle(webhook_id: int) -> Response:
    """Enable or disable a webhook."""
    s = db.session()
    webhook = service.get_webhook(s, webhook_id)
    enabled = not webhook.enabled
    service.update_webhook(
        s, actor(), webhook_id, current_app.config["ENVIRONMENTS"], enabled=enabled
    )
    flash(f"The webhook is {'enabled' if enabled else 'disabled'}.", "success")
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/secret")
@requires(Permission.USERS_ADMIN)
def rotate_secret(webhook_id: int) -> Response:
    """Rotate the signing secret and show the new one once."""
    issued = service.rotate_secret(db.session(), actor(), webhook_id)
    session[UNSHOWN_SLOT] = {"url": issued.webhook.url, "secret": issued.secret, "rotated": True}
    return redirect(url_for("webhooks.index", _anchor="new-webhook"), 303)


@bp.post("/<int:webhook_id>/delete")
@requires(Permission.USERS_ADMIN)
def delete(webhook_id: int) -> Response:
    """Remove a webhook."""
    service.delete_webhook(db.session(), actor(), webhook_id)
    flash("The webhook is removed.", "success")
    return redirect(url_for("webhooks.index"))


@bp.post("/<int:webhook_id>/deliveries/<int:delivery_pk>/redeliver")
@requires(Permission.USERS_ADMIN)
def redeliver(webhook_id: int, delivery_pk: int) -> Response:
    """Queue a delivery's event again."""
    again = service.redeliver(db.session(), actor(), webhook_id, delivery_pk)
    flash(f"Queued again as delivery {again.delivery_id}.", "success")
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id))

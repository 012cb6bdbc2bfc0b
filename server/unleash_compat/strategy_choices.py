"""The strategy editor's choices: the built-ins, then the custom strategy types in use."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.flags import forms
from server.unleash_compat.strategies import list_strategy_types

CUSTOM_HINT = (
    "Custom: your server-side SDKs decide with the implementation they register under this name. "
    "The frontend API, OFREP, the gate and the evaluate box have none: there it never matches."
)


def offer_custom_strategies(
    session: Session, form: forms.StrategyForm, current: str | None
) -> dict[str, str]:
    """Add the custom types to the form's choices (deprecated ones only when already chosen);
    return the hint for every choice."""
    hints = dict(forms.STRATEGY_HINTS)
    extra = []
    for d in list_strategy_types(session):
        if d.deprecated and d.name != current:
            continue
        extra.append((d.name, d.title or d.name))
        listed = ", ".join(
            p["name"] + (" (required)" if p.get("required") else "") for p in d.parameters
        )
        about = f"{d.description} " if d.description else ""
        params = f"Parameters: {listed}. " if listed else ""
        hints[d.name] = about + params + CUSTOM_HINT
    form.name.choices = [*forms.STRATEGY_CHOICES, *forms.choices(extra)]
    return hints

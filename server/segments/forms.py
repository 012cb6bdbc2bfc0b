"""The segment form and its translation into the rules (constraint rows as on strategies).

The form only collects text; `SegmentIn` judges it, exactly as for the admin API.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from pydantic import ValidationError
from wtforms import FieldList, FormField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from server.flags import forms
from server.flags.schemas import SegmentIn


class SegmentForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(message="Give the segment a name."), Length(max=100)],
    )
    description = TextAreaField("Description", validators=[Length(max=2000)])
    constraints = FieldList(FormField(forms.ConstraintForm))
    version = HiddenField()


def segment_form_for(segment: Any = None, formdata: Any = None) -> SegmentForm:
    if formdata is not None or segment is None:
        return SegmentForm(formdata=formdata)
    return SegmentForm(
        formdata=None,
        data={
            "name": segment.name,
            "description": segment.description,
            "constraints": [forms.constraint_form_data(c) for c in segment.constraints],
            "version": segment.version,
        },
    )


def segment_from_form(form: SegmentForm) -> SegmentIn | None:
    constraints = forms.constraints_from_rows(form.constraints)
    if constraints is None or forms.has_errors(form):
        return None
    data = {
        "name": (form.name.data or "").strip(),
        "description": (form.description.data or "").strip(),
        "constraints": constraints,
    }
    try:
        return SegmentIn.model_validate(data)
    except ValidationError as exc:
        forms.place_errors(form, exc, {"name": form.name, "description": form.description})
        return None

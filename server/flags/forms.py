"""Web forms for flags, strategies and variants, and their translation into the rules.

The forms only collect text; the pydantic models in `server.flags.schemas` judge it, exactly as
for the admin API and flag files. Each `*_from_form` function returns the validated model, or
None after putting every problem, in words, next to the field it concerns.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_wtf import FlaskForm
from pydantic import ValidationError
from wtforms import (
    BooleanField,
    Field,
    FieldList,
    Form,
    FormField,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Regexp
from wtforms.widgets import CheckboxInput, ListWidget, NumberInput

from server.flags.evaluation import STANDARD_FIELDS
from server.flags.models import Flag
from server.flags.schemas import (
    BUILT_IN_STRATEGY_NAMES,
    CONTEXT_NAME_RE,
    FLAG_NAME_PATTERN,
    FLAG_NAME_RULE,
    STANDARD_STICKINESS,
    Constraint,
    Dependency,
    FlagCreate,
    FlagFields,
    FlagType,
    Operator,
    StrategyIn,
    Variant,
)
from server.flags.service import flag_fields


def choices(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """Options for a select, radio or checkbox list, from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


TYPE_LABELS = {
    FlagType.RELEASE: "Release",
    FlagType.EXPERIMENT: "Experiment",
    FlagType.OPERATIONAL: "Operational",
    FlagType.KILL_SWITCH: "Kill switch",
    FlagType.PERMISSION: "Permission",
}


def _type_choice(flag_type: FlagType) -> tuple[str, str]:
    days = flag_type.expected_lifetime_days
    lifetime = f"stale after {days} days" if days else "never stale"
    return flag_type.value, f"{TYPE_LABELS[flag_type]} ({lifetime})"


TYPE_CHOICES = choices(_type_choice(t) for t in FlagType)

STRATEGY_LABELS = {
    "default": "Everyone",
    "flexibleRollout": "Gradual rollout",
    "userWithId": "User IDs",
    "remoteAddress": "IP addresses",
    "applicationHostname": "Host names",
}
STRATEGY_CHOICES = choices(STRATEGY_LABELS.items())
STRATEGY_HINTS = {
    "default": "Everyone who passes the constraints and segments.",
    "flexibleRollout": "A steady percentage of users, the same users each time.",
    "userWithId": "Only the user IDs you list.",
    "remoteAddress": "Requests from the IP addresses or ranges you list.",
    "applicationHostname": "Server-side SDKs running on the machines you list. The server itself "
    "has no such machine: the frontend API, OFREP and the gate count it as not matching.",
}

OPERATOR_LABELS = {
    Operator.IN: "is one of",
    Operator.NOT_IN: "is not one of",
    Operator.STR_CONTAINS: "contains",
    Operator.STR_STARTS_WITH: "starts with",
    Operator.STR_ENDS_WITH: "ends with",
    Operator.NUM_EQ: "number =",
    Operator.NUM_GT: "number >",
    Operator.NUM_GTE: "number ≥",
    Operator.NUM_LT: "number <",
    Operator.NUM_LTE: "number ≤",
    Operator.DATE_AFTER: "date after",
    Operator.DATE_BEFORE: "date before",
    Operator.SEMVER_EQ: "version =",
    Operator.SEMVER_GT: "version >",
    Operator.SEMVER_GTE: "version ≥",
    Operator.SEMVER_LT: "version <",
    Operator.SEMVER_LTE: "version ≤",
    Operator.REGEX: "matches regex",
    Operator.IN_CIDR: "is in IP range",
}
OPERATOR_CHOICES = choices(
    (op.value, f"{label} ({op.value})") for op, label in OPERATOR_LABELS.items()
)
SINGLE_VALUE_OPERATORS = frozenset(op.value for op in Operator if op.single_value)

STICKINESS_CUSTOM = "custom"
STICKINESS_CHOICES = choices(
    [
        ("default", "default"),
        ("userId", "userId"),
        ("sessionId", "sessionId"),
        ("random", "random"),
        (STICKINESS_CUSTOM, "another context field…"),
    ]
)
PAYLOAD_CHOICES = choices(
    [("", "No payload"), ("string", "Text"), ("json", "JSON"), ("csv", "CSV"), ("number", "Number")]
)
# Suggested in the context-field boxes; any name made of letters, digits, '_', '.', '-' works.
CONTEXT_FIELD_SUGGESTIONS = (*STANDARD_FIELDS, "country", "plan", "tenantId", "appVersion")


# ---- messages ----------------------------------------------------------------------------------


def clean_message(message: str) -> str:
    """A pydantic message as a sentence for people: no 'Value error,' prefix, no backticks."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    message = message.replace("`", "").strip()
    if message and message[0].islower():
        message = message[0].upper() + message[1:]
    if message and message[-1] not in ".!?":
        message += "."
    return message


def add_error(field: Field, message: str) -> None:
    if message not in field.errors:
        field.errors = [*list(field.errors), message]


def place_errors(
    form: Form,
    errors: list[Any] | ValidationError,
    fields: Mapping[str, Field],
    fallback: Field | None = None,
) -> None:
    """Put each pydantic error on the field its location names (else on `fallback` or the form)."""
    items = errors.errors(include_url=False) if isinstance(errors, ValidationError) else errors
    for item in items:
        loc = [str(part) for part in item["loc"]]
        message = clean_message(item["msg"])
        target = next((fields[part] for part in loc if part in fields), fallback)
        if target is not None:
            add_error(target, message)
        else:
            form_level(form, message)


def form_level(form: Form, message: str) -> None:
    errors: list[str] = form.form_errors
    if message not in errors:
        errors.append(message)


def has_errors(form: Form) -> bool:
    """True when any field, row or the form itself carries an error."""
    if form.form_errors:
        return True
    return any(_field_has_errors(field) for field in form)


def _field_has_errors(field: Field) -> bool:
    if isinstance(field, FieldList):
        return any(_field_has_errors(entry) for entry in field.entries)
    if isinstance(field, FormField):
        return has_errors(field.form)
    return bool(field.errors)


def split_values(raw: str) -> list[str]:
    """Values typed one per line, or separated by commas when all are on one line."""
    text = raw.strip()
    if not text:
        return []
    parts = text.splitlines() if "\n" in text else text.split(",")
    return [part.strip() for part in parts if part.strip()]


def join_values(values: list[str]) -> str:
    """The inverse of split_values: commas unless a value holds a comma itself."""
    if any("," in v for v in values):
        return "\n".join(values)
    return ", ".join(values)


# ---- flags -------------------------------------------------------------------------------------


class FlagFieldsForm(FlaskForm):
    description = TextAreaField("Description", validators=[Length(max=2000)])
    type = SelectField("Type", choices=TYPE_CHOICES, default=FlagType.RELEASE.value)
    owner = StringField("Owner", validators=[Length(max=200)])
    tags = StringField("Tags")
    impression_data = BooleanField("Send impression events to SDKs")


class NewFlagForm(FlagFieldsForm):
    name = StringField(
        "Name",
        validators=[
            DataRequired(message=f"Give the flag a name: {FLAG_NAME_RULE}."),
            Regexp(FLAG_NAME_PATTERN, message=f"Flag names are {FLAG_NAME_RULE}."),
        ],
    )


class EditFlagForm(FlagFieldsForm):
    stale = BooleanField("Mark as stale (ready to be cleaned up)")
    version = HiddenField()


def _flag_data(form: FlagFieldsForm) -> dict[str, Any]:
    return {
        "description": (form.description.data or "").strip(),
        "type": form.type.data,
        "owner": (form.owner.data or "").strip(),
        "tags": split_values(form.tags.data or ""),
        "impressionData": bool(form.impression_data.data),
    }


def new_flag_from_form(form: NewFlagForm) -> FlagCreate | None:
    """The new flag the form describes, or None with the problems placed on the form."""
    data = _flag_data(form) | {"name": (form.name.data or "").strip()}
    try:
        return FlagCreate.model_validate(data)
    except ValidationError as exc:
        items = exc.errors(include_url=False)
        if any(item["loc"][:1] == ("name",) for item in items):
            add_error(form.name, f"Flag names are {FLAG_NAME_RULE}.")
        rest = [item for item in items if item["loc"][:1] != ("name",)]
        place_errors(form, rest, _flag_fields(form))
        return None


def _flag_fields(form: FlagFieldsForm) -> dict[str, Field]:
    return {
        "description": form.description,
        "type": form.type,
        "owner": form.owner,
        "tags": form.tags,
        "impressionData": form.impression_data,
    }


def flag_fields_from_form(
    form: EditFlagForm, dependencies: list[dict[str, Any]]
) -> FlagFields | None:
    """The edited flag fields (dependencies kept as they are), or None with the problems placed."""
    data = _flag_data(form) | {"stale": bool(form.stale.data), "dependencies": dependencies}
    try:
        return FlagFields.model_validate(data)
    except ValidationError as exc:
        place_errors(form, exc, _flag_fields(form) | {"stale": form.stale})
        return None


def edit_flag_form(flag: Flag, formdata: Any = None) -> EditFlagForm:
    fields = flag_fields(flag)
    return EditFlagForm(
        formdata=formdata,
        data={
            "description": fields["description"],
            "type": fields["type"],
            "owner": fields["owner"],
            "tags": ", ".join(fields["tags"]),
            "impression_data": fields["impressionData"],
            "stale": fields["stale"],
            "version": flag.version,
        },
    )


# ---- constraints -------------------------------------------------------------------------------


class ConstraintForm(Form):
    context_name = StringField("Context field", validators=[Length(max=100)])
    operator = SelectField("Operator", choices=OPERATOR_CHOICES, default=Operator.IN.value)
    values = TextAreaField("Values")
    inverted = BooleanField("Negate")
    case_insensitive = BooleanField("Ignore case")


def constraint_form_data(c: Mapping[str, Any]) -> dict[str, Any]:
    values = [c["value"]] if c.get("value") is not None else list(c.get("values", []))
    return {
        "context_name": c.get("contextName", ""),
        "operator": c.get("operator", Operator.IN.value),
        "values": join_values([str(v) for v in values]),
        "inverted": bool(c.get("inverted")),
        "case_insensitive": bool(c.get("caseInsensitive")),
    }


def _constraint(row: ConstraintForm) -> dict[str, Any] | None:
    """One constraint row as the schema's shape; None for an empty row; errors on the row."""
    name = (row.context_name.data or "").strip()
    raw = row.values.data or ""
    if not name and not raw.strip():
        return None
    operator = row.operator.data or Operator.IN.value
    data: dict[str, Any] = {
        "contextName": name,
        "operator": operator,
        "inverted": bool(row.inverted.data),
        "caseInsensitive": bool(row.case_insensitive.data),
    }
    if not name:
        add_error(row.context_name, "Name the context field to check, like userId or country.")
    if operator in SINGLE_VALUE_OPERATORS:
        lines = [line for line in raw.splitlines() if line.strip()]
        if not lines:
            add_error(row.values, f"{operator} compares with one value: enter it.")
        elif len(lines) > 1:
            add_error(row.values, f"{operator} compares with one value: enter just one.")
        data["value"] = raw.strip()
    else:
        data["values"] = split_values(raw)
        if not data["values"]:
            add_error(row.values, "Enter at least one value (separate several with commas).")
    if row.context_name.errors or row.values.errors:
        return data
    try:
        Constraint.model_validate(data)
    except ValidationError as exc:
        place_errors(
            row,
            exc,
            {"contextName": row.context_name, "operator": row.operator, "value": row.values},
            fallback=row.values,
        )
    return data


def constraints_from_rows(rows: FieldList) -> list[dict[str, Any]] | None:
    """Every filled constraint row, or None when any row has a problem (placed on the row)."""
    out = []
    ok = True
    for entry in rows.entries:
        data = _constraint(entry.form)
        if has_errors(entry.form):
            ok = False
        if data is not None:
            out.append(data)
    return out if ok else None


# ---- variants ----------------------------------------------------------------------------------


class VariantForm(Form):
    name = StringField("Variant name", validators=[Length(max=100)])
    weight_type = SelectField(
        "Share",
        choices=choices([("variable", "Split the rest evenly"), ("fix", "Fixed percentage")]),
        default="variable",
    )
    weight = StringField("Fixed %", widget=NumberInput(step="0.1", min=0, max=100))
    stickiness = StringField("Stickiness", default="default", validators=[Length(max=100)])
    payload_type = SelectField("Payload type", choices=PAYLOAD_CHOICES, default="")
    payload_value = TextAreaField("Payload")


def variant_form_data(v: Mapping[str, Any]) -> dict[str, Any]:
    payload = v.get("payload") or {}
    weight = Decimal(int(v.get("weight", 0))) / 10
    return {
        "name": v.get("name", ""),
        "weight_type": v.get("weightType", "variable"),
        "weight": f"{weight.normalize():f}" if v.get("weightType") == "fix" else "",
        "stickiness": v.get("stickiness", "default"),
        "payload_type": payload.get("type", ""),
        "payload_value": payload.get("value", ""),
    }


def _variant(row: VariantForm) -> dict[str, Any] | None:
    name = (row.name.data or "").strip()
    payload = row.payload_value.data or ""
    if not name and not payload.strip():
        return None
    data: dict[str, Any] = {
        "name": name,
        "weightType": row.weight_type.data or "variable",
        "stickiness": (row.stickiness.data or "").strip() or "default",
        "weight": 0,
    }
    if not name:
        add_error(row.name, "Name the variant.")
    if data["weightType"] == "fix":
        try:
            percent = Decimal((row.weight.data or "").strip())
        except InvalidOperation:
            add_error(row.weight, "Enter the fixed share as a percentage, like 25 or 12.5.")
        else:
            if not Decimal(0) <= percent <= Decimal(100):
                add_error(row.weight, "A fixed share is from 0 to 100%.")
            else:
                data["weight"] = int((percent * 10).to_integral_value())
    if row.payload_type.data:
        data["payload"] = {"type": row.payload_type.data, "value": payload}
    elif payload.strip():
        add_error(row.payload_type, "Choose the payload's type, or clear the payload.")
    if has_errors(row):
        return data
    try:
        Variant.model_validate(data)
    except ValidationError as exc:
        place_errors(
            row,
            exc,
            {
                "name": row.name,
                "weight": row.weight,
                "weightType": row.weight_type,
                "stickiness": row.stickiness,
                "payload": row.payload_value,
            },
            fallback=row.name,
        )
    return data


def variants_from_rows(rows: FieldList) -> list[dict[str, Any]] | None:
    out = []
    ok = True
    for entry in rows.entries:
        data = _variant(entry.form)
        if has_errors(entry.form):
            ok = False
        if data is not None:
            out.append(data)
    return out if ok else None


class VariantsForm(FlaskForm):
    variants = FieldList(FormField(VariantForm))
    version = HiddenField()


def variants_from_form(form: VariantsForm) -> list[Variant] | None:
    """The feature variants the form lists (weights still to be normalised by the service)."""
    rows = variants_from_rows(form.variants)
    if rows is None:
        return None
    return [Variant.model_validate(row) for row in rows]


# ---- strategies --------------------------------------------------------------------------------


class StrategyForm(FlaskForm):
    name = RadioField("Who gets it", choices=STRATEGY_CHOICES, default="flexibleRollout")
    title = StringField("Title (optional)", validators=[Length(max=200)])
    rollout = StringField("Rollout", default="100", widget=NumberInput(min=0, max=100, step=1))
    stickiness = SelectField("Stickiness", choices=STICKINESS_CHOICES, default="default")
    stickiness_field = StringField("Stickiness context field", validators=[Length(max=100)])
    group_id = StringField("Group ID", validators=[Length(max=100)])
    user_ids = TextAreaField("User IDs")
    ips = TextAreaField("IP addresses and CIDR ranges")
    host_names = TextAreaField("Host names")
    custom_parameters = TextAreaField("Parameters")  # a custom strategy's: `name=value` lines
    constraints = FieldList(FormField(ConstraintForm))
    segments = SelectMultipleField(
        "Segments",
        coerce=int,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=False,
    )
    variants = FieldList(FormField(VariantForm))
    disabled = BooleanField("Paused (kept, but not evaluated)")
    version = HiddenField()


# Unleash's deprecated percentage strategies open in the editor as the gradual rollout that
# behaves the same way (the editor offers only the current strategies).
LEGACY_STICKINESS = {
    "gradualRolloutUserId": "userId",
    "gradualRolloutSessionId": "sessionId",
    "gradualRolloutRandom": "random",
}


def strategy_form_data(strategy: Any) -> dict[str, Any]:
    p = dict(strategy.parameters)
    name = strategy.name
    if name in LEGACY_STICKINESS:
        p = {
            "rollout": p.get("percentage", "100"),
            "stickiness": LEGACY_STICKINESS[name],
            "groupId": p.get("groupId", ""),
        }
        name = "flexibleRollout"
    stickiness = p.get("stickiness", "default") or "default"
    standard = stickiness in STANDARD_STICKINESS
    return {
        "name": name,
        "title": strategy.title,
        "rollout": p.get("rollout", "100"),
        "stickiness": stickiness if standard else STICKINESS_CUSTOM,
        "stickiness_field": "" if standard else stickiness,
        "group_id": p.get("groupId", ""),
        "user_ids": join_values([i for i in p.get("userIds", "").split(",") if i]),
        "ips": join_values([i for i in p.get("IPs", "").split(",") if i]),
        "host_names": join_values([h for h in p.get("hostNames", "").split(",") if h]),
        "custom_parameters": ""
        if name in BUILT_IN_STRATEGY_NAMES
        else "\n".join(f"{k}={v}" for k, v in p.items()),
        "constraints": [constraint_form_data(c) for c in strategy.constraints],
        "segments": list(strategy.segments),
        "variants": [variant_form_data(v) for v in strategy.variants],
        "disabled": strategy.disabled,
    }


def _parameters(form: StrategyForm) -> dict[str, str]:
    name = form.name.data
    if name == "flexibleRollout":
        stickiness = form.stickiness.data or "default"
        if stickiness == STICKINESS_CUSTOM:
            stickiness = (form.stickiness_field.data or "").strip()
            if not stickiness:
                add_error(form.stickiness_field, "Name the context field to stick by.")
        return {
            "rollout": (form.rollout.data or "").strip(),
            "stickiness": stickiness or "default",
            "groupId": (form.group_id.data or "").strip(),
        }
    if name == "userWithId":
        return {"userIds": ",".join(split_values(form.user_ids.data or ""))}
    if name == "remoteAddress":
        ips = split_values(form.ips.data or "")
        # The API stores an entry that is no address, as Unleash does (it never matches); a
        # person typing one in the editor has made a typo, so the editor says so.
        for ip in ips:
            try:
                ipaddress.ip_network(ip, strict=False)
            except ValueError:
                add_error(form.ips, f"{ip!r} is not an IP address or CIDR range.")
                break
        return {"IPs": ",".join(ips)}
    if name == "applicationHostname":
        return {"hostNames": ",".join(split_values(form.host_names.data or ""))}
    if name not in BUILT_IN_STRATEGY_NAMES:
        return _custom_parameters(form)
    return {}


def _custom_parameters(form: StrategyForm) -> dict[str, str]:
    """A custom strategy's parameters from `name=value` lines (values are passed on as typed)."""
    out: dict[str, str] = {}
    for line in (form.custom_parameters.data or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            add_error(form.custom_parameters, f"Write each parameter as name=value: {line!r}.")
            break
        out[key.strip()] = value.strip()
    return out


def _strategy_error_field(form: StrategyForm, message: str) -> Field | None:
    """Which field a strategy-level rule speaks about."""
    lowered = message.lower()
    if "variant" in lowered:
        return None  # shown above the variant rows
    if form.name.data == "flexibleRollout":
        if "stickiness" in lowered:
            custom = form.stickiness.data == STICKINESS_CUSTOM
            return form.stickiness_field if custom else form.stickiness
        return form.rollout
    if form.name.data == "userWithId":
        return form.user_ids
    if form.name.data == "remoteAddress":
        return form.ips
    if form.name.data == "applicationHostname":
        return form.host_names
    if form.name.data not in BUILT_IN_STRATEGY_NAMES:
        return form.custom_parameters
    return None


def strategy_from_form(form: StrategyForm, variant_errors: list[str]) -> StrategyIn | None:
    """The strategy the form describes, or None with every problem placed next to its field.

    `variant_errors` collects rules about the variants as a whole (unique names, weights).
    """
    parameters = _parameters(form)
    constraints = constraints_from_rows(form.constraints)
    variants = variants_from_rows(form.variants)
    rows_ok = constraints is not None and variants is not None
    # Rows with problems are left out so the strategy's own fields are still judged: the
    # person sees every problem at once.
    data = {
        "name": form.name.data,
        "title": (form.title.data or "").strip(),
        "parameters": parameters,
        "constraints": constraints or [],
        "segments": list(form.segments.data or []),
        "variants": variants or [],
        "disabled": bool(form.disabled.data),
    }
    try:
        strategy = StrategyIn.model_validate(data)
    except ValidationError as exc:
        for item in exc.errors(include_url=False):
            message = clean_message(item["msg"])
            loc = [str(part) for part in item["loc"]]
            if loc and loc[0] == "title":
                add_error(form.title, message)
                continue
            field = _strategy_error_field(form, message)
            if field is not None:
                add_error(field, message)
            elif "variant" in message.lower():
                variant_errors.append(message)
            else:
                form_level(form, message)
        return None
    return strategy if rows_ok and not has_errors(form) else None


def strategy_form_for(strategy: Any = None, formdata: Any = None) -> StrategyForm:
    if formdata is not None:
        return StrategyForm(formdata=formdata)
    if strategy is None:
        return StrategyForm(formdata=None)
    return StrategyForm(formdata=None, data=strategy_form_data(strategy))


# ---- dependencies ------------------------------------------------------------------------------


class DependencyForm(Form):
    feature = StringField("Parent flag", validators=[Length(max=100)])
    enabled = SelectField(
        "Needs the parent", choices=choices([("1", "to be on"), ("0", "to be off")]), default="1"
    )
    variants = StringField("Only with these variants (optional)")


class DependenciesForm(FlaskForm):
    dependencies = FieldList(FormField(DependencyForm))
    version = HiddenField()


def dependency_form_data(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "feature": d.get("feature", ""),
        "enabled": "1" if d.get("enabled", True) else "0",
        "variants": ", ".join(d.get("variants", [])),
    }


def dependencies_from_form(form: DependenciesForm) -> list[dict[str, Any]] | None:
    out = []
    ok = True
    for entry in form.dependencies.entries:
        row: DependencyForm = entry.form
        feature = (row.feature.data or "").strip()
        if not feature:
            continue
        data = {
            "feature": feature,
            "enabled": row.enabled.data == "1",
            "variants": split_values(row.variants.data or ""),
        }
        try:
            Dependency.model_validate(data)
        except ValidationError as exc:
            items = exc.errors(include_url=False)
            if any(item["loc"][:1] == ("feature",) for item in items):
                add_error(row.feature, f"Flag names are {FLAG_NAME_RULE}.")
            rest = [item for item in items if item["loc"][:1] != ("feature",)]
            place_errors(row, rest, {"variants": row.variants}, row.variants)
            ok = False
        else:
            out.append(data)
    return out if ok else None


# ---- copying and evaluating --------------------------------------------------------------------


class CopyForm(FlaskForm):
    source = SelectField("Copy from")
    target = SelectField("to")


class EvaluateForm(Form):
    """The evaluate box: read-only, sent with GET, so no CSRF token."""

    environment = SelectField("Environment")
    user_id = StringField("userId", validators=[Length(max=200)])
    session_id = StringField("sessionId", validators=[Length(max=200)])
    remote_address = StringField("remoteAddress", validators=[Length(max=100)])
    properties = TextAreaField("Other fields")


def context_from_form(form: EvaluateForm) -> dict[str, Any] | None:
    """The context the evaluate box describes, or None with the problem on the field."""
    raw: dict[str, Any] = {}
    for key, field in (
        ("userId", form.user_id),
        ("sessionId", form.session_id),
        ("remoteAddress", form.remote_address),
    ):
        value = (field.data or "").strip()
        if value:
            raw[key] = value
    if "remoteAddress" in raw:
        try:
            ipaddress.ip_address(raw["remoteAddress"])
        except ValueError:
            add_error(form.remote_address, "Enter one IP address, like 203.0.113.7.")
    properties: dict[str, str] = {}
    for number, line in enumerate((form.properties.data or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not CONTEXT_NAME_RE.match(key):
            add_error(
                form.properties,
                f"Line {number}: write one field per line as name=value, like country=NO.",
            )
            continue
        properties[key] = value.strip()
    if has_errors(form):
        return None
    return raw | {"properties": properties}

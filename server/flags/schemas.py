"""The rules for what a flag, strategy, constraint, variant and segment may hold.

Pydantic models shared by the admin API, the web forms and flags-as-code files, so a value is
judged the same way whichever door it comes through. Shapes and field names follow Unleash.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator
from pydantic_core import SchemaError, SchemaValidator, core_schema

from server.api import StrictModel, loads
from server.errors import TooDeeplyNested

# Unleash's rule ("URL friendly"): what encodeURIComponent leaves as it is, so a name is its own
# URL path segment: ASCII letters, digits and - _ . ! ~ * ' ( ), but not "." or "..".
# FLAG_NAME_PATTERN is the character rule (pydantic compiles it with Rust's regex, which has no
# lookahead); FLAG_NAME_RE, used by every write, also refuses "." and "..".
FLAG_NAME_PATTERN = r"^[A-Za-z0-9\-_.!~*'()]{1,100}$"
FLAG_NAME_RE = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9\-_.!~*'()]{1,100}$")
FLAG_NAME_RULE = (
    "1-100 characters that URLs need not escape: letters, digits and - _ . ! ~ * ' ( ) "
    "(not '.' or '..', as in Unleash)"
)
CONTEXT_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


class FlagType(enum.StrEnum):
    RELEASE = "release"
    EXPERIMENT = "experiment"
    OPERATIONAL = "operational"
    KILL_SWITCH = "kill-switch"
    PERMISSION = "permission"

    @property
    def expected_lifetime_days(self) -> int | None:
        """After this many days a flag is 'potentially stale' (None: never)."""
        return {"release": 40, "experiment": 40, "operational": 7}.get(self.value)


class Operator(enum.StrEnum):
    IN = "IN"
    NOT_IN = "NOT_IN"
    STR_CONTAINS = "STR_CONTAINS"
    STR_STARTS_WITH = "STR_STARTS_WITH"
    STR_ENDS_WITH = "STR_ENDS_WITH"
    NUM_EQ = "NUM_EQ"
    NUM_GT = "NUM_GT"
    NUM_GTE = "NUM_GTE"
    NUM_LT = "NUM_LT"
    NUM_LTE = "NUM_LTE"
    DATE_AFTER = "DATE_AFTER"
    DATE_BEFORE = "DATE_BEFORE"
    SEMVER_EQ = "SEMVER_EQ"
    SEMVER_GT = "SEMVER_GT"
    SEMVER_LT = "SEMVER_LT"
    SEMVER_GTE = "SEMVER_GTE"
    SEMVER_LTE = "SEMVER_LTE"
    REGEX = "REGEX"
    IN_CIDR = "IN_CIDR"

    @property
    def single_value(self) -> bool:
        """Operators that compare against one `value` rather than a list of `values`."""
        return self.name.startswith(("NUM_", "DATE_", "SEMVER_")) or self is Operator.REGEX


STRATEGY_NAMES = ("default", "flexibleRollout", "userWithId", "remoteAddress")
# Unleash's deprecated built-ins: accepted from the API and files so existing setups import
# unchanged; the editor offers only STRATEGY_NAMES.
LEGACY_STRATEGY_NAMES = ("gradualRolloutRandom", "gradualRolloutUserId", "gradualRolloutSessionId")
BUILT_IN_STRATEGY_NAMES = (
    *STRATEGY_NAMES,
    *LEGACY_STRATEGY_NAMES,
    # Evaluated by each SDK against its own host name; never matching where the server evaluates.
    "applicationHostname",
)
# Custom strategy type names (Unleash: URL-friendly, like flag names).
STRATEGY_NAME_PATTERN = FLAG_NAME_PATTERN
STANDARD_STICKINESS = ("default", "userId", "sessionId", "random")
# A segment's database id (a 32-bit integer column): larger numbers cannot name one.
SegmentId = Annotated[int, Field(ge=1, le=2_147_483_647)]


class Constraint(StrictModel):
    # Values are compared as given: leading or trailing spaces can be meaningful.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    contextName: str = Field(min_length=1, max_length=100)
    operator: Operator
    values: list[str] = Field(default_factory=list, max_length=1000)
    value: str | None = Field(default=None, max_length=1000)
    inverted: bool = False
    caseInsensitive: bool = False

    @field_validator("values", mode="before")
    @classmethod
    def _stringify_values(cls, raw: Any) -> Any:
        if isinstance(raw, list):
            return [
                str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in raw
            ]
        return raw

    @field_validator("contextName")
    @classmethod
    def _context_name(cls, name: str) -> str:
        if not CONTEXT_NAME_RE.match(name):
            raise ValueError("a context field is letters, digits, '_', '.' or '-'")
        return name

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Constraint:
        op = self.operator
        values = [v for v in self.values if v != ""]
        if op.single_value:
            value = self.value if self.value is not None else (values[0] if values else "")
            if not value.strip():
                raise ValueError(f"{op.value} compares against one value; give `value`")
            _check_single(op, value)
            self.value = value
            self.values = []
        else:
            if not values:
                raise ValueError(f"{op.value} needs at least one value in `values`")
            if op is Operator.IN_CIDR:
                for v in values:
                    try:
                        ipaddress.ip_network(v, strict=False)
                    except ValueError:
                        raise ValueError(f"{v!r} is not an IP address or CIDR range") from None
            self.values = values
            self.value = None
        return self


def _check_single(op: Operator, value: str) -> None:
    if op.name.startswith("NUM_"):
        try:
            float(value)
        except ValueError:
            raise ValueError(f"{op.value} needs a number, not {value!r}") from None
    elif op.name.startswith("DATE_"):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{op.value} needs a date and time like 2026-12-01T09:00:00Z, not {value!r}"
            ) from None
    elif op.name.startswith("SEMVER_"):
        if not SEMVER_RE.match(value):
            raise ValueError(f"{op.value} needs a semantic version like 1.2.3, not {value!r}")
    elif op is Operator.REGEX:
        problem = engine_regex_problem(value)
        if problem is not None:
            raise ValueError(f"the regular expression does not compile: {problem}")


def engine_regex_problem(pattern: str) -> str | None:
    """Why the engine would not compile `pattern` as a regular expression, or None.

    The engine uses Rust's `regex` crate, not Python's `re`, and the dialects differ: lookarounds
    and backreferences compile in Python but never match in the engine (it does not refuse the
    document, it just answers no), while `\\p{L}`, `[[:alpha:]]` and `(?i)` mid-pattern are
    fine there and refused by Python. pydantic-core compiles `pattern` with that same crate, so
    it judges in the engine's dialect.
    """
    try:
        SchemaValidator(core_schema.str_schema(pattern=pattern))
    except SchemaError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return lines[-1].removeprefix("error: ").removeprefix("SchemaError: ")
    return None


class Payload(StrictModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    type: Literal["string", "json", "csv", "number"]
    value: str = Field(max_length=100_000)

    @model_validator(mode="after")
    def _value_fits_type(self) -> Payload:
        if self.type == "json":
            try:
                loads(self.value)
            except ValueError:
                raise ValueError("a json payload must hold valid JSON") from None
            except TooDeeplyNested as exc:
                raise ValueError(f"a json payload: {exc.message}") from None
        if self.type == "number":
            try:
                float(self.value)
            except ValueError:
                raise ValueError("a number payload must hold a number") from None
        return self


class VariantOverride(StrictModel):
    """A legacy feature-variant override: these context values always get this variant."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    contextName: str = Field(min_length=1, max_length=100)
    values: list[str] = Field(min_length=1, max_length=1000)

    @field_validator("contextName")
    @classmethod
    def _context_name(cls, name: str) -> str:
        if not CONTEXT_NAME_RE.match(name):
            raise ValueError("a context field is letters, digits, '_', '.' or '-'")
        return name


class Variant(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    weight: int = Field(default=0, ge=0, le=1000)
    weightType: Literal["variable", "fix"] = "variable"
    stickiness: str = Field(default="default", min_length=1, max_length=100)
    payload: Payload | None = None
    # Unleash's legacy `overrides` (instances from v4 still carry them): SDKs pick this variant
    # first for the listed context values. Feature variants only, as in Unleash.
    overrides: list[VariantOverride] | None = Field(default=None, max_length=100)


def normalise_variants(variants: list[Variant]) -> list[Variant]:
    """Spread the weight that `fix` variants leave over the `variable` ones (total 1000)."""
    if not variants:
        return []
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError("variant names must be unique")
    fixed = sum(v.weight for v in variants if v.weightType == "fix")
    variable = [v for v in variants if v.weightType == "variable"]
    if fixed > 1000:
        raise ValueError("fixed variant weights add up to more than 1000 (100%)")
    if not variable:
        if fixed != 1000:
            raise ValueError("with only fixed variants, weights must add up to 1000 (100%)")
        return variants
    share, rest = divmod(1000 - fixed, len(variable))
    out = []
    for v in variants:
        if v.weightType == "variable":
            weight = share + (1 if rest > 0 else 0)
            rest -= 1
            out.append(v.model_copy(update={"weight": weight}))
        else:
            out.append(v)
    return out


class StrategyIn(StrictModel):
    # A built-in (BUILT_IN_STRATEGY_NAMES) or a custom strategy type defined here; the service
    # refuses a name that is neither (`server.flags.definitions`).
    name: str = Field(pattern=STRATEGY_NAME_PATTERN)
    title: str = Field(default="", max_length=200)
    parameters: dict[str, str] = Field(default_factory=dict)
    constraints: list[Constraint] = Field(default_factory=list, max_length=100)
    segments: list[SegmentId] = Field(default_factory=list, max_length=100)
    variants: list[Variant] = Field(default_factory=list, max_length=100)
    disabled: bool = False
    sortOrder: int | None = Field(default=None, ge=0, le=1_000_000)

    @field_validator("parameters", mode="before")
    @classmethod
    def _stringify(cls, raw: Any) -> Any:
        # Unleash clients need strings; accept the numbers scripts naturally send.
        if isinstance(raw, dict):
            return {
                k: (str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
                for k, v in raw.items()
            }
        return raw

    @model_validator(mode="after")
    def _parameters_fit_strategy(self) -> StrategyIn:
        p = dict(self.parameters)
        if self.name == "flexibleRollout":
            rollout = p.get("rollout", "100").strip()
            if not rollout.isdigit() or not 0 <= int(rollout) <= 100:
                raise ValueError("rollout must be a whole percentage from 0 to 100")
            p["rollout"] = str(int(rollout))
            p["stickiness"] = (p.get("stickiness") or "default").strip()
            if not CONTEXT_NAME_RE.match(p["stickiness"]):
                raise ValueError(
                    "stickiness must be default, userId, sessionId, random or a context field name"
                )
            p["groupId"] = (p.get("groupId") or "").strip()
        elif self.name == "userWithId":
            ids = [u.strip() for u in p.get("userIds", "").split(",") if u.strip()]
            if not ids:
                raise ValueError("userWithId needs at least one user id in userIds")
            p = {"userIds": ",".join(ids)}
        elif self.name == "remoteAddress":
            ips = [i.strip() for i in p.get("IPs", "").split(",") if i.strip()]
            if not ips:
                raise ValueError("remoteAddress needs at least one IP address or CIDR range in IPs")
            # Unleash stores an entry that is not an address (a typo, a host name) and its
            # engines skip it; so does Darklaunch. `ip_problems` names them for a warning.
            p = {"IPs": ",".join(ips)}
        elif self.name == "applicationHostname":
            # Evaluated by each SDK against its own machine's host name (case-insensitive). The
            # server has no such host: the frontend API, OFREP and the gate count it as not
            # matching, as Unleash's own server-side evaluation does.
            hosts = [h.strip() for h in p.get("hostNames", "").split(",") if h.strip()]
            if not hosts:
                raise ValueError("applicationHostname needs at least one host name in hostNames")
            p = {"hostNames": ",".join(hosts)}
        elif self.name in LEGACY_STRATEGY_NAMES:
            percentage = p.get("percentage", "100").strip()
            if not percentage.isdigit() or not 0 <= int(percentage) <= 100:
                raise ValueError("percentage must be a whole number from 0 to 100")
            p = {"percentage": str(int(percentage)), "groupId": p.get("groupId", "").strip()}
        elif self.name == "default":
            p = {}
        # A custom strategy's parameters go to the SDKs as given; its definition says which
        # exist, and the service checks them against it.
        self.parameters = p
        if any(v.overrides for v in self.variants):
            raise ValueError("variant overrides belong to feature variants, not strategy variants")
        if self.variants:
            self.variants = normalise_variants(self.variants)
        return self


def ip_problems(strategy: StrategyIn) -> list[str]:
    """Entries of a remoteAddress strategy's IPs that are no address or range (never match)."""
    if strategy.name != "remoteAddress":
        return []
    problems = []
    for ip in strategy.parameters.get("IPs", "").split(","):
        try:
            ipaddress.ip_network(ip, strict=False)
        except ValueError:
            problems.append(ip)
    return problems


class Dependency(StrictModel):
    feature: str = Field(pattern=FLAG_NAME_PATTERN)
    enabled: bool = True
    variants: list[str] = Field(default_factory=list, max_length=100)


class FlagFields(StrictModel):
    """A flag's own fields (not per environment)."""

    description: str = Field(default="", max_length=2000)
    type: FlagType = FlagType.RELEASE
    owner: str = Field(default="", max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=50)
    impressionData: bool = False
    stale: bool = False
    dependencies: list[Dependency] = Field(default_factory=list, max_length=20)

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        clean = []
        for tag in tags:
            tag = tag.strip().lower()
            if not re.match(r"^[a-z0-9][a-z0-9:._-]{0,49}$", tag):
                raise ValueError(
                    f"tag {tag!r}: use 1-50 lowercase letters, digits, ':', '.', '_' or '-'"
                )
            if tag not in clean:
                clean.append(tag)
        return clean


class FlagCreate(FlagFields):
    name: str = Field(pattern=FLAG_NAME_PATTERN, description=f"Flag name: {FLAG_NAME_RULE}.")


class SegmentIn(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    constraints: list[Constraint] = Field(default_factory=list, max_length=100)


# ---- admin API responses (Unleash's field names; our extras: owner, version, declaredInCode) ----


# /api/openapi.json names a component after its module when two features have a model of the
# same name (server__flags__api__StrategyOut beside server__gate__api__StrategyOut). These models
# were published from server/flags/api.py; they keep that name, and so resolve their annotations
# here by an explicit rebuild (see the end of this section).
PUBLISHED_MODULE = "server.flags.api"


class TagOut(BaseModel):
    type: str
    value: str


class PayloadOut(BaseModel):
    __module__ = PUBLISHED_MODULE

    type: str
    value: str


class VariantOverrideOut(BaseModel):
    contextName: str
    values: list[str]


class VariantOut(BaseModel):
    name: str
    weight: int
    weightType: str
    stickiness: str
    payload: PayloadOut | None = None
    overrides: list[VariantOverrideOut] | None = None


class ConstraintOut(BaseModel):
    contextName: str
    operator: str
    values: list[str] = Field(default_factory=list)
    value: str | None = None
    inverted: bool = False
    caseInsensitive: bool = False


class StrategyOut(BaseModel):
    __module__ = PUBLISHED_MODULE

    id: str
    name: str
    title: str
    featureName: str
    environment: str
    sortOrder: int
    disabled: bool
    parameters: dict[str, str]
    constraints: list[ConstraintOut]
    segments: list[int]
    variants: list[VariantOut]


class StrategiesOut(RootModel[list[StrategyOut]]):
    """An environment's strategies, in evaluation order."""


class EnvironmentOut(BaseModel):
    __module__ = PUBLISHED_MODULE

    name: str
    environment: str
    featureName: str
    enabled: bool
    version: int = Field(description="Send it back (If-Match or `version`) with changes here")
    updatedAt: datetime
    updatedBy: str
    strategies: list[StrategyOut]
    variants: list[VariantOut]
    variantCount: int
    hasStrategies: bool
    hasEnabledStrategies: bool


class DependencyOut(BaseModel):
    feature: str
    enabled: bool = True
    variants: list[str] = Field(default_factory=list)


class FeatureOut(BaseModel):
    name: str
    type: str
    description: str
    project: Literal["default"]
    stale: bool
    potentiallyStale: bool
    impressionData: bool
    archived: bool
    archivedAt: datetime | None
    createdAt: datetime
    createdBy: str
    owner: str
    tags: list[TagOut]
    dependencies: list[DependencyOut]
    declaredInCode: bool
    version: int = Field(description="Send it back (If-Match or `version`) with metadata changes")
    updatedAt: datetime
    updatedBy: str
    environments: list[EnvironmentOut]


class FeaturesOut(BaseModel):
    version: int
    features: list[FeatureOut]


class VariantsOut(BaseModel):
    version: int = Field(description="The shape's version (1), as in Unleash")
    variants: list[VariantOut]
    environmentVersion: int


# The models published under PUBLISHED_MODULE, and those holding them, look their annotations up
# in that module, where these names are not: build them here, with this module's names.
for _model in (
    PayloadOut,
    VariantOut,
    StrategyOut,
    StrategiesOut,
    EnvironmentOut,
    FeatureOut,
    FeaturesOut,
    VariantsOut,
):
    _model.model_rebuild(_types_namespace=globals())
del _model


# ---- admin API requests --------------------------------------------------------------------------


class TagIn(StrictModel):
    type: str = Field(default="simple", min_length=1, max_length=50)
    value: str = Field(min_length=1, max_length=50)


class CreateFeatureIn(StrictModel):
    name: str = Field(json_schema_extra={"pattern": FLAG_NAME_PATTERN}, description=FLAG_NAME_RULE)
    type: FlagType = FlagType.RELEASE
    description: str | None = Field(default=None, max_length=2000)
    impressionData: bool = False
    owner: str = Field(default="", max_length=200)
    tags: list[str | TagIn] = Field(default_factory=list, max_length=50)

    @field_validator("name")
    @classmethod
    def _name_rule(cls, name: str) -> str:
        if not FLAG_NAME_RE.match(name):
            raise ValueError(f"flag names are {FLAG_NAME_RULE}")
        return name


class UpdateFeatureIn(StrictModel):
    """Unleash's update body: fields left out stay as they are."""

    name: str | None = Field(default=None, description="Must be the flag's own name if given")
    description: str | None = Field(default=None, max_length=2000)
    type: FlagType | None = None
    stale: bool | None = None
    impressionData: bool | None = None
    archived: bool | None = Field(default=None, description="Only false; archive with DELETE")
    project: Literal["default"] | None = None
    createdAt: datetime | None = Field(default=None, description="Ignored, as in Unleash")
    owner: str | None = Field(default=None, max_length=200)
    tags: list[str | TagIn] | None = Field(default=None, max_length=50)
    dependencies: list[Dependency] | None = Field(default=None, max_length=20)
    version: int | None = Field(default=None, ge=1)


class StrategyCreateIn(StrategyIn):
    version: int | None = Field(default=None, ge=1, description="The environment's version")


class StrategyUpdateIn(StrictModel):
    """A strategy's whole configuration; `name` defaults to the strategy's current one."""

    name: str | None = None
    title: str | None = None
    parameters: dict[str, str | int | float] | None = None
    constraints: list[Constraint] | None = Field(default=None, max_length=100)
    segments: list[SegmentId] | None = Field(default=None, max_length=100)
    variants: list[Variant] | None = Field(default=None, max_length=100)
    disabled: bool | None = None
    sortOrder: int | None = None
    version: int | None = Field(default=None, ge=1, description="The environment's version")


class SortOrderItem(StrictModel):
    id: str = Field(min_length=1, max_length=36)
    sortOrder: int = Field(ge=0, le=1_000_000)


class SortOrderIn(RootModel[list[SortOrderItem]]):
    # Empty is accepted, as Unleash accepts it (200): nothing to reorder.
    root: list[SortOrderItem] = Field(max_length=1000)


class VariantsIn(RootModel[list[Variant]]):
    root: list[Variant] = Field(max_length=100)


class BulkToggleIn(StrictModel):
    features: list[str] = Field(min_length=1, max_length=1000)


class FeaturesQuery(StrictModel):
    namePrefix: str | None = Field(default=None, max_length=100)
    tag: str | None = Field(default=None, max_length=101, description="`value` or `type:value`")

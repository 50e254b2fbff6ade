"""The review schema: a declarative YAML file, validated with pydantic.

A schema says *what* a review checks: its sheets and fields (types, ranges, aliases), its
vocabularies (canonical terms, aliases, eligibility), the cross-field checks it applies (each
names a rule registered in :mod:`curation.rules`) and the analysis plan that ``curate run``
pools. *How* a check is done lives in the rule functions, never here.

``load_schema("prrt_177lu")`` loads a shipped schema by name; any other argument is a path.
A malformed file raises :class:`curation.errors.SchemaError` with the file and the line.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SchemaError

FieldType = Literal["text", "integer", "number", "percentage", "year", "vocabulary", "p_value"]
NUMERIC_TYPES = frozenset({"integer", "number", "percentage", "year"})

_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
                         "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\t": " "})
_SPACES = re.compile(r"\s+")
_COMPACT = re.compile(r"[\s\-_\[\]()]+")


def fold(text: str) -> str:
    """Fold a label for matching: case, surrounding and repeated spaces, dashes as hyphens."""
    text = unicodedata.normalize("NFKC", str(text)).translate(_DASHES)
    return _SPACES.sub(" ", text).strip().casefold()


def compact(text: str) -> str:
    """A looser fold that also drops spaces, hyphens, underscores and brackets."""
    return _COMPACT.sub("", fold(text))


def current_year() -> int:
    return _dt.date.today().year


def _check_regex(value: str | None) -> str | None:
    """A schema's regular expression must compile (the message names the line)."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Term(_Model):
    """One canonical value of a vocabulary."""

    value: str
    aliases: tuple[str, ...] = ()
    eligible: bool = True
    warning: str | None = None
    factor: float | None = None
    description: str | None = None

    @field_validator("aliases", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return () if v is None else v


class Vocabulary(_Model):
    """Canonical terms with their aliases; ``rejected`` maps known-wrong labels to a reason."""

    description: str | None = None
    terms: tuple[Term, ...]
    rejected: dict[str, str] = Field(default_factory=dict)
    eligible_pattern: str | None = None
    ineligible_reason: str | None = None

    _regex = field_validator("eligible_pattern")(classmethod(lambda cls, v: _check_regex(v)))

    @model_validator(mode="after")
    def _unambiguous(self) -> "Vocabulary":
        seen: dict[str, str] = {}
        for term in self.terms:
            for label in (term.value, *term.aliases):
                for key in {fold(label), compact(label)}:
                    other = seen.setdefault(key, term.value)
                    if other != term.value:
                        raise ValueError(f"label {label!r} of term {term.value!r} also matches term {other!r}")
        return self

    @cached_property
    def values(self) -> tuple[str, ...]:
        return tuple(t.value for t in self.terms)

    @cached_property
    def lookup(self) -> dict[str, str]:
        """Folded label -> canonical value (exact folds first, compact folds as fallback)."""
        table: dict[str, str] = {}
        for term in self.terms:
            for label in (term.value, *term.aliases):
                table.setdefault("~" + compact(label), term.value)
        for term in self.terms:
            for label in (term.value, *term.aliases):
                table[fold(label)] = term.value
        return table

    @cached_property
    def rejected_lookup(self) -> dict[str, str]:
        table = {}
        for label, reason in self.rejected.items():
            table[fold(label)] = reason
            table["~" + compact(label)] = reason
        return table

    @cached_property
    def by_value(self) -> dict[str, Term]:
        return {t.value: t for t in self.terms}

    def canonical(self, text: str) -> str | None:
        """The canonical value of ``text``, or None when it matches no term."""
        table = self.lookup
        hit = table.get(fold(text))
        if hit is None:
            hit = table.get("~" + compact(text))
        return hit

    def rejection(self, text: str) -> str | None:
        table = self.rejected_lookup
        return table.get(fold(text)) or table.get("~" + compact(text))


class FieldSpec(_Model):
    """One column of a sheet."""

    type: FieldType = "text"
    required: bool = False
    vocabulary: str | None = None
    min: float | None = None
    max: float | str | None = None
    min_exclusive: float | None = None
    warn_min: float | None = None
    warn_max: float | None = None
    pattern: str | None = None
    pattern_hint: str | None = None
    not_reached: bool = False
    reject_not_reached: bool = False
    unit_field: str | None = None
    combined: dict[Literal["low", "high"], str] | None = None
    default: str | None = None
    metadata: bool = False
    aliases: tuple[str, ...] = ()
    description: str = ""
    unit: str | None = None
    example: Any = None

    @field_validator("max")
    @classmethod
    def _max(cls, v: Any) -> Any:
        if isinstance(v, str) and not re.fullmatch(r"\s*current_year\s*([+-]\s*\d+)?\s*", v):
            raise ValueError("max must be a number or 'current_year + N'")
        return v

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: _check_regex(v)))

    @model_validator(mode="after")
    def _vocab(self) -> "FieldSpec":
        if self.type == "vocabulary" and not self.vocabulary:
            raise ValueError("a vocabulary field needs 'vocabulary: NAME'")
        if self.type != "vocabulary" and self.vocabulary:
            raise ValueError("'vocabulary' is only for fields of type vocabulary")
        return self

    def bounds(self) -> list[str]:
        """The declared hard bounds as text: ``[">= 1990", "<= 2027"]`` (``current_year`` resolved)."""
        from .cells import format_number

        out = []
        if self.min is not None:
            out.append(f">= {format_number(self.min)}")
        if self.min_exclusive is not None:
            out.append(f"> {format_number(self.min_exclusive)}")
        if self.max_value is not None:
            out.append(f"<= {format_number(self.max_value)}")
        return out

    @property
    def max_value(self) -> float | None:
        """``max`` with ``current_year + N`` resolved to today's year."""
        if isinstance(self.max, str):
            m = re.fullmatch(r"\s*current_year\s*(?:([+-])\s*(\d+))?\s*", self.max)
            offset = int(m.group(2) or 0) * (-1 if m.group(1) == "-" else 1)
            return float(current_year() + offset)
        return self.max


class ParentSpec(_Model):
    sheet: str
    key: str


class SheetSpec(_Model):
    """A data sheet: one row per ``key``."""

    description: str = ""
    key: tuple[str, ...]
    parent: ParentSpec | None = None
    fields: dict[str, FieldSpec]

    @model_validator(mode="after")
    def _key_fields(self) -> "SheetSpec":
        for k in self.key:
            if k not in self.fields:
                raise ValueError(f"key field {k!r} is not a field of the sheet")
        for name, spec in self.fields.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"field key {name!r} must be lower-case letters, digits and '_'")
            for ref in (spec.unit_field, *(spec.combined or {}).values()):
                if ref is not None and ref not in self.fields:
                    raise ValueError(f"field {name!r} refers to {ref!r}, which is not a field of the sheet")
        return self


class CheckSpec(BaseModel):
    """One cross-field check: a registered rule and its parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)
    rule: str
    severity: Literal["error", "warning", "info"] | None = None

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OutcomeSpec(_Model):
    label: str
    kind: Literal["proportion", "median", "adverse_event"]
    events: tuple[str, ...] | str | None = None
    total: str | None = None
    median: str | None = None
    low: str | None = None
    high: str | None = None
    sheet: str | None = None
    term: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> "OutcomeSpec":
        need = {"proportion": ("events", "total"), "median": ("median", "low", "high"),
                "adverse_event": ("sheet", "term", "events", "total")}[self.kind]
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"an outcome of kind {self.kind!r} needs {', '.join(missing)}")
        return self


class SubgroupSpec(_Model):
    label: str
    field: str
    exclude: tuple[str, ...] = ()
    groups: dict[str, tuple[str, ...]] | None = None


class PoolSettings(_Model):
    measure: Literal["PR", "PLN", "PLO", "PAS", "PFT"] = "PLO"
    method: Literal["EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "GLMM"] = "REML"
    hk: bool = False
    level: float = 0.95


class PlanEntry(_Model):
    outcome: str
    subgroup: str | None = None
    each_term: bool = False
    measure: Literal["PR", "PLN", "PLO", "PAS", "PFT"] | None = None
    method: Literal["EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "GLMM"] | None = None
    hk: bool | None = None


class AnalysisSpec(_Model):
    sheet: str = "outcomes"
    cohort_field: str = "cohort"
    overall_cohort: str = "overall"
    defaults: PoolSettings = PoolSettings()
    outcomes: dict[str, OutcomeSpec] = Field(default_factory=dict)
    subgroups: dict[str, SubgroupSpec] = Field(default_factory=dict)
    plan: tuple[PlanEntry, ...] = ()
    sensitivity: tuple[PoolSettings, ...] = ()

    @model_validator(mode="after")
    def _refs(self) -> "AnalysisSpec":
        for entry in self.plan:
            if entry.outcome not in self.outcomes:
                raise ValueError(f"plan names outcome {entry.outcome!r}, which 'outcomes' does not define")
            if entry.subgroup is not None and entry.subgroup not in self.subgroups:
                raise ValueError(f"plan names subgroup {entry.subgroup!r}, which 'subgroups' does not define")
        return self


class Limits(_Model):
    """What a form of this review may be at most (checked before it is parsed)."""

    max_uncompressed_mb: float = Field(200, gt=0)
    max_rows: int = Field(100_000, gt=0)
    max_columns: int = Field(500, gt=0)
    max_cells: int = Field(3_000_000, gt=0)
    max_sheets: int = Field(255, gt=0)
    max_shared_strings: int = Field(1_000_000, gt=0)
    max_cell_chars: int = Field(32_767, gt=0)


class ReviewSchema(_Model):
    """A whole review schema (one YAML file)."""

    name: str
    title: str = ""
    version: int | str = 1
    description: str = ""
    limits: Limits = Limits()
    vocabularies: dict[str, Vocabulary] = Field(default_factory=dict)
    sheets: dict[str, SheetSpec]
    checks: dict[str, tuple[CheckSpec, ...]] = Field(default_factory=dict)
    analysis: AnalysisSpec = AnalysisSpec()
    source: str | None = None

    @model_validator(mode="after")
    def _references(self) -> "ReviewSchema":
        from .rules import REGISTRY  # the registry is light: no pandas at import

        for sheet_name, sheet in self.sheets.items():
            for fname, spec in sheet.fields.items():
                if spec.vocabulary and spec.vocabulary not in self.vocabularies:
                    raise ValueError(f"sheets.{sheet_name}.fields.{fname}: vocabulary "
                                     f"{spec.vocabulary!r} is not defined under 'vocabularies'")
            if sheet.parent and sheet.parent.sheet not in self.sheets:
                raise ValueError(f"sheets.{sheet_name}.parent: no sheet {sheet.parent.sheet!r}")
        for sheet_name, checks in self.checks.items():
            if sheet_name not in self.sheets:
                raise ValueError(f"checks.{sheet_name}: no such sheet")
            for i, check in enumerate(checks):
                rule = REGISTRY.get(check.rule)
                if rule is None:
                    raise ValueError(f"checks.{sheet_name}[{i}]: unknown rule {check.rule!r} "
                                     f"(see `curate rules`)")
                rule.validate_params(self, sheet_name, check.params, where=f"checks.{sheet_name}[{i}]")
        return self

    # -- conveniences ---------------------------------------------------------------------
    def sheet(self, name: str) -> SheetSpec:
        return self.sheets[name]

    def vocabulary_of(self, sheet: str, field: str) -> Vocabulary | None:
        spec = self.sheets[sheet].fields[field]
        return self.vocabularies.get(spec.vocabulary) if spec.vocabulary else None

    @property
    def analysis_sheet(self) -> str:
        """The sheet whose rows are pooled (``outcomes``)."""
        return self.analysis.sheet

    @property
    def root_sheet(self) -> str:
        """The sheet the others refer to (``studies`` in the shipped schema)."""
        for name, sheet in self.sheets.items():
            if sheet.parent is None:
                return name
        return next(iter(self.sheets))


# ---------------------------------------------------------------------------------------------
# Loading, with errors that name the line
# ---------------------------------------------------------------------------------------------

SCHEMA_DIRS = (Path(__file__).resolve().parent.parent / "schemas", Path(__file__).resolve().parent / "schemas")
DEFAULT_SCHEMA = "prrt_177lu"


def shipped_schemas() -> dict[str, Path]:
    """Names of the schemas shipped in ``schemas/`` and their paths."""
    found: dict[str, Path] = {}
    for d in SCHEMA_DIRS:
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                found.setdefault(p.stem, p)
    return found


def resolve_schema_path(schema: str | Path | None) -> Path:
    if schema is None:
        schema = DEFAULT_SCHEMA
    p = Path(schema)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise SchemaError(f"{p}: schema file not found")
        return p
    shipped = shipped_schemas()
    if str(schema) in shipped:
        return shipped[str(schema)]
    raise SchemaError(f"{schema}: no such schema file, and no shipped schema of that name "
                      f"(shipped: {', '.join(shipped) or 'none'})")


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree; return a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(part):
                    nxt = v
                    break
            if nxt is None:
                break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


_cache: dict[tuple[str, float], ReviewSchema] = {}


def load_schema(schema: str | Path | None = None) -> ReviewSchema:
    """Load and validate a review schema.

    Parameters
    ----------
    schema : str or Path, optional
        A path to a YAML file, or the name of a schema shipped in ``schemas/``
        (default ``prrt_177lu``).

    Returns
    -------
    ReviewSchema
        The validated, immutable schema.

    Raises
    ------
    SchemaError
        When the file is missing, is not YAML, or does not describe a valid schema; the
        message names the file, the line and what is wrong.
    """
    path = resolve_schema_path(schema)
    key = (str(path.resolve()), path.stat().st_mtime)
    if key in _cache:
        return _cache[key]
    text = path.read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SchemaError(f"{path}{where}: not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: a schema is a YAML mapping with at least 'name' and 'sheets'")
    try:
        model = ReviewSchema.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        line = _line_of(yaml.compose(text, Loader=loader), loc)
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise SchemaError(f"{path}, line {line}: {dotted}: {msg}{more}") from None
    _cache[key] = model
    return model

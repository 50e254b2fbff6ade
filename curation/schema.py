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

FieldType = Literal["text", "integer", "number", "percentage", "year", "vocabulary", "p_value", "source"]
NUMERIC_TYPES = frozenset({"integer", "number", "percentage", "year"})
#: Field types checked against the study's article by default (``verify:`` overrides it per field):
#: the figures and the vocabulary terms a reviewer copies from the article.
VERIFIED_TYPES = frozenset({"integer", "number", "percentage", "year", "p_value", "vocabulary"})
#: Field keys that identify the article rather than report a figure of it (never verified by default).
IDENTIFIER_FIELDS = frozenset({"doi", "pmid", "pmcid", "pmc", "source", "source_file", "file"})

#: Outcome kinds: one-arm (proportion, median, adverse_event) and two-arm (binary, continuous,
#: reported_effect) analyses.
OutcomeKind = Literal["proportion", "median", "adverse_event", "binary", "continuous", "reported_effect"]
Measure = Literal["PR", "PLN", "PLO", "PAS", "PFT", "OR", "RR", "RD", "MD", "SMD", "ROM", "GEN"]
Method = Literal["EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "GLMM", "MH", "PETO"]
MEASURES: tuple[str, ...] = Measure.__args__  # type: ignore[attr-defined]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]
RMA_METHODS = ("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
#: Which measures and methods fit each outcome kind (metafor: escalc measures, rma/rma.glmm/rma.mh/rma.peto).
KIND_MEASURES: dict[str, tuple[str, ...]] = {
    "proportion": ("PR", "PLN", "PLO", "PAS", "PFT"), "adverse_event": ("PR", "PLN", "PLO", "PAS", "PFT"),
    "median": ("GEN",), "binary": ("OR", "RR", "RD"), "continuous": ("MD", "SMD", "ROM"), "reported_effect": ("GEN",)}
KIND_METHODS: dict[str, tuple[str, ...]] = {
    "proportion": (*RMA_METHODS, "GLMM"), "adverse_event": (*RMA_METHODS, "GLMM"), "median": RMA_METHODS,
    "binary": (*RMA_METHODS, "MH", "PETO"), "continuous": RMA_METHODS, "reported_effect": RMA_METHODS}
#: The measure of a kind when neither the plan entry nor the defaults give one that fits.
KIND_DEFAULT_MEASURE = {"proportion": "PLO", "adverse_event": "PLO", "median": "GEN", "binary": "OR",
                        "continuous": "SMD", "reported_effect": "GEN"}
#: Measures pooled on the log scale and shown back-transformed with exp (a ratio: no effect at 1).
RATIO_MEASURES = frozenset({"OR", "RR", "ROM"})
TWO_ARM_KINDS = frozenset({"binary", "continuous", "reported_effect"})


def method_fits(kind: str, measure: str, method: str) -> str | None:
    """Why ``method`` does not fit ``measure`` of an outcome of ``kind`` (None when it fits)."""
    if measure not in KIND_MEASURES.get(kind, ()):
        return (f"measure {measure} does not fit an outcome of kind {kind} "
                f"(it takes {', '.join(KIND_MEASURES.get(kind, ()))})")
    if method not in KIND_METHODS.get(kind, ()):
        return (f"method {method} does not fit an outcome of kind {kind} "
                f"(it takes {', '.join(KIND_METHODS.get(kind, ()))})")
    if method == "PETO" and measure != "OR":
        return "method PETO (Peto's one-step odds ratio) needs measure OR"
    return None

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
    synonyms: tuple[str, ...] = ()
    count_field: str | None = None
    description: str = ""
    unit: str | None = None
    example: Any = None
    source_terms: tuple[str, ...] | None = None
    verify: bool | None = None
    derived: bool = False

    @field_validator("source_terms", mode="before")
    @classmethod
    def _terms(cls, v: Any) -> Any:
        if isinstance(v, str):
            return (v,)
        return v

    @field_validator("source_terms")
    @classmethod
    def _terms_text(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None:
            blank = [t for t in v if not t.strip()]
            if blank or not v:
                raise ValueError("source_terms lists the words articles use for the field, none of them empty "
                                 "(e.g. [progression-free survival, PFS])")
        return v

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
        numeric = self.type in NUMERIC_TYPES or self.type == "p_value"
        misplaced = [n for n in ("min", "max", "min_exclusive", "warn_min", "warn_max") if getattr(self, n) is not None
                     and not numeric]
        misplaced += [n for n in ("not_reached", "reject_not_reached") if getattr(self, n) and self.type != "number"]
        misplaced += [n for n in ("unit_field", "combined") if getattr(self, n) is not None and self.type != "number"]
        if self.pattern is not None and self.type not in ("text", "source"):
            misplaced.append("pattern")
        if self.type == "source" and (self.source_terms is not None or self.verify):
            misplaced += [n for n in ("source_terms", "verify") if getattr(self, n)]
        elif self.verify and self.type not in VERIFIED_TYPES:
            raise ValueError(f"verify: true is for numbers and vocabulary fields (a {self.type} field is not "
                             "checked against the article)")
        if self.verify and (self.derived or self.metadata):
            raise ValueError(f"a {'derived' if self.derived else 'metadata'} field is never checked against the "
                             "article; leave out verify: true")
        if misplaced:
            raise ValueError(f"{', '.join(repr(m) for m in misplaced)} does not apply to a field of type {self.type}")
        return self

    def terms_in_sources(self, key: str = "") -> tuple[str, ...]:
        """The words that name the field in an article: ``source_terms``, else the field's aliases
        and synonyms (its label), else its key in words (``pfs_median`` -> ``pfs median``).

        The terms are what :mod:`curation.sources` looks for around a figure to tell it is this
        field's (contract: sources.md, "Per field, the words that name it in articles").
        """
        if self.source_terms is not None:
            return self.source_terms
        terms = tuple(dict.fromkeys(t for t in (*self.aliases, *self.synonyms) if t.strip()))
        return terms or ((key.replace("_", " "),) if key else ())

    def verified(self, by_default: bool = True) -> bool:
        """Whether the field is checked against the study's article.

        ``verify:`` when the schema sets it (``true`` only for numbers and vocabularies); else
        numbers (integer, number, percentage, year, p-value) and vocabulary fields are, when
        ``by_default`` (False for the fields :meth:`ReviewSchema.verified_fields` leaves out: keys,
        links, units, identifiers). Never a ``derived`` field (computed by the reviewer, e.g. a
        count from a percentage: not printed in the article), a metadata field or the source field.
        """
        if self.derived or self.type == "source" or self.metadata:
            return False
        if self.verify is not None:
            return self.verify
        return by_default and self.type in VERIFIED_TYPES

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
    aliases: tuple[str, ...] = ()
    key: tuple[str, ...] = Field(min_length=1)
    parent: ParentSpec | None = None
    fields: dict[str, FieldSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _key_fields(self) -> "SheetSpec":
        for k in self.key:
            if k not in self.fields:
                raise ValueError(f"key field {k!r} is not a field of the sheet")
        for name, spec in self.fields.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"field key {name!r} must be lower-case letters, digits and '_'")
            for ref in (spec.unit_field, spec.count_field, *(spec.combined or {}).values()):
                if ref is not None and ref not in self.fields:
                    raise ValueError(f"field {name!r} refers to {ref!r}, which is not a field of the sheet")
        return self


class CheckSpec(BaseModel):
    """One cross-field check: a registered rule and its parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)
    rule: str
    severity: Literal["error", "warning", "info"] | None = None
    #: the severity of a code the check reports besides its own (a companion:
    #: ``{arm-totals-below-randomised: error}``)
    severities: dict[str, Literal["error", "warning", "info"]] = Field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ArmsSpec(_Model):
    """Arm rows: one row per study, comparison and arm, paired by ``pair_by`` and the arm's role."""

    sheet: str
    role_field: str
    intervention: str = "intervention"
    control: str = "control"
    pair_by: tuple[str, ...]
    events: str | None = None
    total: str | None = None
    mean: str | None = None
    sd: str | None = None

    @field_validator("pair_by", mode="before")
    @classmethod
    def _one_is_a_list(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v


class FavoursSpec(_Model):
    """The labels under the two sides of a forest plot's line of no effect."""

    left: str
    right: str


_OUTCOME_FIELDS = {
    "proportion": {"events", "total", "reported_events"}, "median": {"median", "low", "high"},
    "adverse_event": {"sheet", "term", "events", "total"},
    "binary": {"events", "totals", "arms"}, "continuous": {"means", "sds", "totals", "arms"},
    "reported_effect": {"effect", "low", "high", "p", "scale", "measure_label"},
}
_OPTIONAL_EVERYWHERE = {"label", "kind", "sheet", "unit", "direction", "favours", "measure_label"}


class OutcomeSpec(_Model):
    """One outcome the plan can pool.

    Kinds: ``proportion`` (events / total), ``median`` (median and 95% CI), ``adverse_event``
    (a proportion per term of a vocabulary), ``binary`` (events and totals of two arms),
    ``continuous`` (means, SDs and sizes of two arms) and ``reported_effect`` (an effect with its
    CI, as a ratio or a difference). Two-arm outcomes read one row per comparison (``events:
    [arm 1, arm 2]``, ``totals: [...]``) or paired arm rows (``arms:``).
    """

    label: str
    kind: OutcomeKind
    events: tuple[str, ...] | str | None = None
    total: str | None = None
    totals: tuple[str, ...] | None = None
    means: tuple[str, ...] | None = None
    sds: tuple[str, ...] | None = None
    median: str | None = None
    effect: str | None = None
    low: str | None = None
    high: str | None = None
    p: str | None = None
    scale: Literal["ratio", "difference"] | None = None
    measure_label: str | None = None
    arms: ArmsSpec | None = None
    sheet: str | None = None
    term: str | None = None
    reported_events: str | None = None
    unit: str | None = None
    direction: Literal["lower_is_better", "higher_is_better"] | None = None
    favours: FavoursSpec | None = None

    @model_validator(mode="after")
    def _complete(self) -> "OutcomeSpec":
        kind = self.kind
        if kind in ("binary", "continuous") and self.arms is not None:
            need_arm = ("events", "total") if kind == "binary" else ("mean", "sd", "total")
            missing = [f"arms.{n}" for n in need_arm if getattr(self.arms, n) is None]
            if missing:
                raise ValueError(f"an outcome of kind {kind!r} read from arm rows needs {', '.join(missing)}")
            extra = [n for n in ("events", "totals", "means", "sds") if getattr(self, n) is not None]
            if extra:
                raise ValueError(f"give either 'arms' or {', '.join(extra)} (comparison rows), not both")
            return self._unused(kind)
        need = {"proportion": ("events", "total"), "median": ("median", "low", "high"),
                "adverse_event": ("sheet", "term", "events", "total"), "binary": ("events", "totals"),
                "continuous": ("means", "sds", "totals"), "reported_effect": ("effect", "low", "high", "scale")}[kind]
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            hint = " (or 'arms' for arm rows)" if kind in ("binary", "continuous") else ""
            raise ValueError(f"an outcome of kind {kind!r} needs {', '.join(missing)}{hint}")
        if kind in ("binary", "continuous"):
            for n in ("events", "totals", "means", "sds"):
                v = getattr(self, n)
                if v is not None and (isinstance(v, str) or len(v) != 2):
                    raise ValueError(f"{n} of a two-arm outcome names two fields: [intervention arm, control arm]")
        return self._unused(kind)

    def _unused(self, kind: str) -> "OutcomeSpec":
        allowed = _OUTCOME_FIELDS[kind] | _OPTIONAL_EVERYWHERE
        given = [n for n in type(self).model_fields if n not in allowed and getattr(self, n) is not None]
        if given:
            raise ValueError(f"{', '.join(repr(g) for g in given)} is not for an outcome of kind {kind!r}")
        return self

    @property
    def is_ratio_scale(self) -> bool:
        return self.kind == "reported_effect" and self.scale == "ratio"

    def fields(self) -> dict[str, str]:
        """Role -> field name of every field the outcome reads from its own sheet (arm rows excluded)."""
        out: dict[str, str] = {}
        for role in ("total", "median", "effect", "low", "high", "p", "term", "reported_events"):
            v = getattr(self, role)
            if v is not None:
                out[role] = v
        for role in ("events", "totals", "means", "sds"):
            v = getattr(self, role)
            if isinstance(v, str):
                out[role] = v
            elif v is not None:
                for i, f in enumerate(v):
                    out[f"{role}[{i}]"] = f
        return out


class SubgroupSpec(_Model):
    label: str
    field: str
    exclude: tuple[str, ...] = ()
    groups: dict[str, tuple[str, ...]] | None = None


class PoolSettings(_Model):
    measure: Measure = "PLO"
    method: Method = "REML"
    hk: bool = False
    level: float = Field(0.95, gt=0, lt=1)


class PlanEntry(_Model):
    outcome: str
    subgroup: str | None = None
    each_term: bool = False
    measure: Measure | None = None
    method: Method | None = None
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
    # funnel plot and Egger's test only with at least this many studies (Cochrane Handbook 10.4.3.1)
    small_study_min_k: int = Field(10, ge=3)

    def settings_for(self, outcome: OutcomeSpec, entry: PlanEntry | None = None) -> PoolSettings:
        """The settings of one analysis: the plan entry's, else the defaults that fit the outcome's kind.

        A default measure that does not fit the kind (PLO for a binary outcome) gives way to the
        kind's own default (OR for binary, SMD for continuous, GEN for medians and reported
        effects); a default method that does not fit gives way to REML.
        """
        d = self.defaults
        kind = outcome.kind
        measure = (entry.measure if entry is not None and entry.measure else None) or (
            d.measure if d.measure in KIND_MEASURES[kind] else KIND_DEFAULT_MEASURE[kind])
        method = (entry.method if entry is not None and entry.method else None) or d.method
        if method_fits(kind, measure, method) is not None and not (entry is not None and entry.method):
            method = "REML"
        hk = d.hk if entry is None or entry.hk is None else entry.hk
        return PoolSettings(measure=measure, method=method, hk=hk, level=d.level)


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
    sheets: dict[str, SheetSpec] = Field(min_length=1)
    checks: dict[str, tuple[CheckSpec, ...]] = Field(default_factory=dict)
    #: the severity of any rule code for this review (``{unspecific-term: error}``); a check
    #: entry's own ``severity:``/``severities:`` win over it
    severities: dict[str, Literal["error", "warning", "info"]] = Field(default_factory=dict)
    analysis: AnalysisSpec = AnalysisSpec()
    source: str | None = None

    # -- conveniences ---------------------------------------------------------------------
    def sheet(self, name: str) -> SheetSpec:
        return self.sheets[name]

    def vocabulary_of(self, sheet: str, field: str) -> Vocabulary | None:
        spec = self.sheets[sheet].fields[field]
        return self.vocabularies.get(spec.vocabulary) if spec.vocabulary else None

    @property
    def analysis_sheet(self) -> str:
        """The sheet whose rows are pooled (``analysis.sheet``; ``outcomes`` by default).

        A schema with no analysis of its own and no ``outcomes`` sheet: its first sheet with a
        parent (else its first sheet).
        """
        if self.analysis.sheet in self.sheets:
            return self.analysis.sheet
        for name, sheet in self.sheets.items():
            if sheet.parent is not None:
                return name
        return next(iter(self.sheets))

    def outcome_sheet(self, outcome: OutcomeSpec) -> str:
        """The sheet an outcome's fields are on (its arm sheet for arm rows)."""
        if outcome.arms is not None:
            return outcome.arms.sheet
        return outcome.sheet or self.analysis_sheet

    def settings_for(self, outcome: OutcomeSpec, entry: PlanEntry | None = None) -> PoolSettings:
        """See :meth:`AnalysisSpec.settings_for`."""
        return self.analysis.settings_for(outcome, entry)

    @property
    def root_sheet(self) -> str:
        """The sheet the others refer to (``studies`` in the shipped schema)."""
        for name, sheet in self.sheets.items():
            if sheet.parent is None:
                return name
        return next(iter(self.sheets))

    # -- checking figures against the articles (contract: sources.md) ----------------------
    @property
    def source_field(self) -> str | None:
        """The studies sheet's field of ``type: source`` (the study's article: a file name in the
        sources folder, a DOI, a PMID or a PMCID), or None when the schema has none."""
        for name, spec in self.sheets[self.root_sheet].fields.items():
            if spec.type == "source":
                return name
        return None

    def unverified_by_default(self, sheet: str) -> frozenset[str]:
        """Fields of ``sheet`` that are not checked against the article unless ``verify: true`` says
        so: the row's key and the link to its study (they name the row), unit fields (a unit is read
        with its figure and may be filled in by default) and identifiers (``doi``, ``pmid``,
        ``pmcid``: they find the article, they are not figures in it)."""
        spec = self.sheets[sheet]
        units = {fs.unit_field for s in self.sheets.values() for fs in s.fields.values() if fs.unit_field}
        out = set(spec.key) | {f for f in spec.fields if f in units or f.lower() in IDENTIFIER_FIELDS}
        if spec.parent is not None:
            out.add(spec.parent.key)
        return frozenset(out)

    def verified_fields(self, sheet: str) -> dict[str, tuple[str, ...]]:
        """The fields of ``sheet`` checked against the article, each with the words that name it
        there (:meth:`FieldSpec.terms_in_sources`), in the sheet's order."""
        left_out = self.unverified_by_default(sheet)
        return {f: fs.terms_in_sources(f) for f, fs in self.sheets[sheet].fields.items()
                if fs.verified(f not in left_out)}


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

Loc = tuple[Any, ...]
_BROKEN = object()  # a part of the schema that did not validate (its problems are listed already)


def _pydantic_problems(exc: ValidationError, prefix: Loc) -> list[tuple[Loc, str]]:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p.startswith("function-") or
                                                                        p in ("tuple[str, ...]", "str"))))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (a misspelling?)"
        out.append((prefix + loc, msg))
    return out


def _piece(model: Any, value: Any, loc: Loc, problems: list) -> Any:
    """Validate one part of a schema on its own; its problems are added, _BROKEN returned."""
    from pydantic import TypeAdapter

    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(value)
        return TypeAdapter(model).validate_python(value)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, loc))
        return _BROKEN


def _mapping(value: Any, loc: Loc, problems: list, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append((loc, f"{what} must be a mapping (name: ...)"))
        return {}
    bad = [k for k in value if not isinstance(k, str)]
    for k in bad:
        problems.append((loc + (k,), f"the name {k!r} must be text"))
    return {k: v for k, v in value.items() if isinstance(k, str)}


def _sequence(value: Any, loc: Loc, problems: list, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append((loc, f"{what} must be a list"))
        return []
    return value


class _Parts:
    """The parts of a schema that validated, for the reference checks (the rest is _BROKEN)."""

    def __init__(self) -> None:
        self.vocabularies: dict[str, Any] = {}
        self.sheets: dict[str, Any] = {}
        self.checks: dict[str, tuple] = {}
        self.severities: dict[str, str] = {}
        self.outcomes: dict[str, Any] = {}
        self.subgroups: dict[str, Any] = {}
        self.plan: list[Any] = []
        self.defaults: Any = PoolSettings()
        self.sensitivity: list[Any] = []
        self.analysis_sheet: str | None = None
        self.analysis_sheet_given = False
        self.cohort_field: str | None = None
        self.cohort_given = False

    def ok(self, table: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in table.items() if v is not _BROKEN}

    @property
    def root_sheet(self) -> str | None:
        good = self.ok(self.sheets)
        for name, sheet in good.items():
            if sheet.parent is None:
                return name
        return next(iter(self.sheets), None)


def _structure(data: dict, problems: list) -> _Parts:
    """Validate every part on its own so that one problem never hides another."""
    parts = _Parts()
    known = set(ReviewSchema.model_fields) - {"source"}
    for key in data:
        if key not in known:
            problems.append(((key,), f"unknown key (a schema has {', '.join(sorted(known))})"))
    for key in ("name",):
        if key not in data:
            problems.append(((), f"a schema needs '{key}'"))
    for key in ("name", "title", "version", "description", "limits"):
        if key in data:
            _piece(ReviewSchema.model_fields[key].annotation, data[key], (key,), problems)
    if "severities" in data:
        sev = _piece(ReviewSchema.model_fields["severities"].annotation, data["severities"], ("severities",), problems)
        parts.severities = {} if sev is _BROKEN else sev
    for name, value in _mapping(data.get("vocabularies"), ("vocabularies",), problems, "vocabularies").items():
        parts.vocabularies[name] = _piece(Vocabulary, value, ("vocabularies", name), problems)
    if "sheets" not in data:
        problems.append(((), "a schema needs 'sheets' (at least one sheet with its key and fields)"))
    sheets = _mapping(data.get("sheets"), ("sheets",), problems, "sheets")
    if "sheets" in data and not sheets and isinstance(data.get("sheets"), (dict, type(None))):
        problems.append((("sheets",), "a schema needs at least one sheet"))
    types = FieldType.__args__  # type: ignore[attr-defined]
    for name, value in sheets.items():
        if isinstance(value, dict) and isinstance(value.get("fields"), dict):
            fields = {}
            for fname, fv in value["fields"].items():  # one bad field never hides the sheet
                spec = _piece(FieldSpec, fv, ("sheets", name, "fields", fname), problems)
                if spec is _BROKEN:
                    t = fv.get("type", "text") if isinstance(fv, dict) else "text"
                    spec = FieldSpec.model_construct(type=t if t in types else "text")
                fields[fname] = spec
            value = {**value, "fields": fields}
        parts.sheets[name] = _piece(SheetSpec, value, ("sheets", name), problems)
    for name, value in _mapping(data.get("checks"), ("checks",), problems, "checks").items():
        entries = []
        for i, item in enumerate(_sequence(value, ("checks", name), problems, f"checks.{name}")):
            entries.append(_piece(CheckSpec, item, ("checks", name, i), problems))
        parts.checks[name] = tuple(entries)
    analysis = _mapping(data.get("analysis"), ("analysis",), problems, "analysis")
    known = set(AnalysisSpec.model_fields)
    for key in analysis:
        if key not in known:
            problems.append((("analysis", key), f"unknown key (analysis has {', '.join(sorted(known))})"))
    for key in ("sheet", "cohort_field", "overall_cohort"):
        if key in analysis:
            v = _piece(str, analysis[key], ("analysis", key), problems)
            if key == "sheet" and v is not _BROKEN:
                parts.analysis_sheet, parts.analysis_sheet_given = v, True
            if key == "cohort_field" and v is not _BROKEN:
                parts.cohort_field, parts.cohort_given = v, True
    if "defaults" in analysis:
        parts.defaults = _piece(PoolSettings, analysis["defaults"], ("analysis", "defaults"), problems)
    for name, value in _mapping(analysis.get("outcomes"), ("analysis", "outcomes"), problems, "outcomes").items():
        parts.outcomes[name] = _piece(OutcomeSpec, value, ("analysis", "outcomes", name), problems)
    for name, value in _mapping(analysis.get("subgroups"), ("analysis", "subgroups"), problems, "subgroups").items():
        parts.subgroups[name] = _piece(SubgroupSpec, value, ("analysis", "subgroups", name), problems)
    for i, item in enumerate(_sequence(analysis.get("plan"), ("analysis", "plan"), problems, "plan")):
        parts.plan.append(_piece(PlanEntry, item, ("analysis", "plan", i), problems))
    for i, item in enumerate(_sequence(analysis.get("sensitivity"), ("analysis", "sensitivity"), problems,
                                       "sensitivity")):
        parts.sensitivity.append(_piece(PoolSettings, item, ("analysis", "sensitivity", i), problems))
    if parts.analysis_sheet is None:
        parts.analysis_sheet = "outcomes"
    return parts


def _references(parts: _Parts, problems: list) -> None:
    """Every name a schema uses must be defined, and fit where it is used."""
    vocabs = parts.vocabularies
    sheets = parts.sheets
    good = parts.ok(sheets)
    root = parts.root_sheet

    def field_of(sheet: str | None, name: Any, loc: Loc, *, types: Iterable[str] | None = None,
                 role: str = "", study_fields: bool = False) -> Any:
        """The FieldSpec of ``name`` on ``sheet`` (or its study's sheet); a problem when absent or ill-typed."""
        if sheet is None or sheet not in good:
            return None
        if not isinstance(name, str):
            problems.append((loc, f"{name!r} is not a field name"))
            return None
        spec = good[sheet].fields.get(name)
        if spec is None and study_fields and root in good and sheet != root:
            spec = good[root].fields.get(name)
        if spec is None:
            where = f"sheet {sheet!r}" + (f" (or {root!r})" if study_fields and root and root != sheet else "")
            problems.append((loc, f"{role or 'field'} {name!r}: {where} has no such field "
                                  f"(its fields: {', '.join(good[sheet].fields)})"))
            return None
        if types is not None and spec.type not in set(types):
            problems.append((loc, f"{role or 'field'} {name!r} is of type {spec.type}; it must be of type "
                                  f"{' or '.join(sorted(set(types)))}"))
        return spec

    def vocabulary_terms(spec: Any) -> Any:
        if spec is None or spec.type != "vocabulary":
            return None
        v = vocabs.get(spec.vocabulary)
        return None if v is None or v is _BROKEN else v

    # sheets: vocabularies, parents, unit fields, defaults
    for sname, sheet in good.items():
        for fname, fs in sheet.fields.items():
            loc = ("sheets", sname, "fields", fname)
            if fs.vocabulary and fs.vocabulary not in vocabs:
                problems.append((loc + ("vocabulary",), f"vocabulary {fs.vocabulary!r} is not defined under "
                                                        f"'vocabularies' ({', '.join(vocabs) or 'none'})"))
            if fs.unit_field is not None and fs.unit_field in sheet.fields:
                us = sheet.fields[fs.unit_field]
                uv = vocabulary_terms(us)
                if us.type != "vocabulary":
                    problems.append((loc + ("unit_field",), f"unit field {fs.unit_field!r} must be a vocabulary "
                                                            f"field (its terms are units with a 'factor')"))
                elif uv is not None and any(t.factor is None for t in uv.terms):
                    missing = [t.value for t in uv.terms if t.factor is None]
                    problems.append((loc + ("unit_field",), f"unit field {fs.unit_field!r}: every term of vocabulary "
                                                            f"{us.vocabulary!r} needs a 'factor' (missing: "
                                                            f"{', '.join(missing)})"))
            v = vocabulary_terms(fs)
            if fs.default is not None and v is not None and v.canonical(fs.default) is None:
                problems.append((loc + ("default",), f"default {fs.default!r} is not a term of vocabulary "
                                                     f"{fs.vocabulary!r}"))
        if sheet.parent is not None:
            ploc = ("sheets", sname, "parent")
            if sheet.parent.sheet not in sheets:
                problems.append((ploc + ("sheet",), f"no sheet {sheet.parent.sheet!r}"))
            elif sheet.parent.sheet == sname:
                problems.append((ploc + ("sheet",), "a sheet cannot be its own parent"))
            elif sheet.parent.sheet in good and good[sheet.parent.sheet].parent is not None:
                problems.append((ploc + ("sheet",), f"the parent must be the top sheet (one without a parent); "
                                                    f"{sheet.parent.sheet!r} has a parent itself"))
            if sheet.parent.key not in sheet.fields:
                problems.append((ploc + ("key",), f"{sheet.parent.key!r} is not a field of sheet {sname!r}"))

    # the article of each study: at most one field of type source, on the studies sheet
    sources = [(sname, fname) for sname, sheet in good.items() for fname, fs in sheet.fields.items()
               if fs.type == "source"]
    for sname, fname in sources:
        if sname != root:
            problems.append((("sheets", sname, "fields", fname, "type"),
                             f"a field of type source names the study's article, so it belongs on the {root!r} "
                             f"sheet (one per study), not on {sname!r}"))
    on_root = [f for s, f in sources if s == root]
    for fname in on_root[1:]:
        problems.append((("sheets", root, "fields", fname, "type"),
                         f"only one field of type source per schema ({on_root[0]!r} is one already)"))

    # checks: the sheet exists; rules and their parameters (validated by the rules module)
    class _Partial:
        pass

    partial = _Partial()
    partial.sheets, partial.vocabularies = good, parts.ok(vocabs)
    partial.severities = parts.severities
    partial.checks = {}
    for sname, entries in parts.checks.items():
        if sname not in sheets:
            problems.append((("checks", sname), f"no sheet {sname!r} (the sheets: {', '.join(sheets)})"))
        elif sname in good:
            partial.checks[sname] = entries
    from .registry import schema_problems

    problems.extend(schema_problems(partial))

    # analysis
    a_sheet = parts.analysis_sheet
    if parts.analysis_sheet_given and a_sheet not in sheets:
        problems.append((("analysis", "sheet"), f"no sheet {a_sheet!r} (the sheets: {', '.join(sheets)})"))
    if a_sheet not in sheets and (parts.outcomes or parts.plan):
        if not parts.analysis_sheet_given:
            problems.append((("analysis",), f"the analysis needs 'sheet:' (no sheet is called {a_sheet!r})"))
    if parts.cohort_given and a_sheet in good:
        field_of(a_sheet, parts.cohort_field, ("analysis", "cohort_field"), role="cohort field")
    number = ("integer", "number", "percentage")
    count = ("integer", "number")
    for oname, oc in parts.ok(parts.outcomes).items():
        loc = ("analysis", "outcomes", oname)
        osheet = oc.sheet or a_sheet
        if oc.sheet is not None and oc.sheet not in sheets:
            problems.append((loc + ("sheet",), f"no sheet {oc.sheet!r} (the sheets: {', '.join(sheets)})"))
            continue
        if oc.arms is None or oc.kind == "reported_effect":
            types_of = {"events": count, "total": count, "totals": count, "means": ("number", "integer"),
                        "sds": ("number", "integer"), "median": ("number",), "low": ("number",),
                        "high": ("number",), "effect": ("number",), "p": ("p_value", "number"),
                        "term": ("vocabulary",), "reported_events": count}
            for role, fname in oc.fields().items():
                base = role.split("[", 1)[0]
                sub = (base, int(role[len(base) + 1:-1])) if "[" in role else (base,)
                field_of(osheet, fname, loc + sub, types=types_of[base], role=role.replace("[", " [").split(" ")[0],
                         study_fields=False)
        if oc.arms is not None:
            arms = oc.arms
            aloc = loc + ("arms",)
            if arms.sheet not in sheets:
                problems.append((aloc + ("sheet",), f"no sheet {arms.sheet!r} (the sheets: {', '.join(sheets)})"))
            else:
                rs = field_of(arms.sheet, arms.role_field, aloc + ("role_field",), types=("vocabulary",),
                              role="role field")
                rv = vocabulary_terms(rs)
                if rv is not None:
                    for side in ("intervention", "control"):
                        term = getattr(arms, side)
                        if rv.canonical(term) != term:
                            problems.append((aloc + (side,), f"{term!r} is not a term of vocabulary "
                                                             f"{rs.vocabulary!r} ({', '.join(rv.values)})"))
                    if arms.intervention == arms.control:
                        problems.append((aloc + ("control",), "the control role must differ from the intervention role"))
                for i, fname in enumerate(arms.pair_by):
                    field_of(arms.sheet, fname, aloc + ("pair_by", i), role="pairing field")
                if not arms.pair_by:
                    problems.append((aloc + ("pair_by",), "name the fields that pair two arms, e.g. [study_id, comparison]"))
                for role in ("events", "total"):
                    if getattr(arms, role) is not None:
                        field_of(arms.sheet, getattr(arms, role), aloc + (role,), types=count, role=role)
                for role in ("mean", "sd"):
                    if getattr(arms, role) is not None:
                        field_of(arms.sheet, getattr(arms, role), aloc + (role,), types=("number", "integer"), role=role)
                if arms.sheet in good and good[arms.sheet].parent is None and arms.sheet != root:
                    pass
        if oc.kind == "adverse_event" and oc.term is not None and osheet in good:
            pass
        # units: a median field converted by a unit field shows in a unit of that vocabulary
        if oc.kind == "median" and oc.unit is not None and osheet in good and isinstance(oc.median, str):
            ms = good[osheet].fields.get(oc.median)
            if ms is not None and ms.unit_field and ms.unit_field in good[osheet].fields:
                uv = vocabulary_terms(good[osheet].fields[ms.unit_field])
                if uv is not None and uv.canonical(oc.unit) is None:
                    problems.append((loc + ("unit",), f"unit {oc.unit!r} is not a term of vocabulary "
                                                      f"{good[osheet].fields[ms.unit_field].vocabulary!r} "
                                                      f"({', '.join(uv.values)}), in which {oc.median} is converted"))
    # measures and methods
    defaults = parts.defaults
    if defaults is not _BROKEN:
        if defaults.method in ("MH", "PETO") and defaults.hk:
            problems.append((("analysis", "defaults", "hk"), f"method {defaults.method} has no Knapp-Hartung adjustment"))
    outcomes = parts.outcomes
    for sname, sg in parts.ok(parts.subgroups).items():
        loc = ("analysis", "subgroups", sname)
        if a_sheet in good:
            spec = field_of(a_sheet, sg.field, loc + ("field",), role="subgroup field", study_fields=True)
            if spec is not None:
                v = vocabulary_terms(spec)
                if spec.type == "vocabulary" and v is not None:
                    for i, term in enumerate(sg.exclude):
                        if v.canonical(term) != term:
                            problems.append((loc + ("exclude", i), f"{term!r} is not a term of vocabulary "
                                                                   f"{spec.vocabulary!r}"))
                    for g, terms in (sg.groups or {}).items():
                        for i, term in enumerate(terms):
                            if v.canonical(term) != term:
                                problems.append((loc + ("groups", g, i), f"{term!r} is not a term of vocabulary "
                                                                         f"{spec.vocabulary!r} ({', '.join(v.values)})"))
                elif spec.type != "vocabulary" and not sg.groups:
                    problems.append((loc + ("field",), f"subgroup field {sg.field!r} is of type {spec.type}: "
                                                       "subgroups come from a vocabulary field, or list their "
                                                       "values under 'groups'"))
    for i, entry in enumerate(parts.plan):
        if entry is _BROKEN:
            continue
        loc = ("analysis", "plan", i)
        oc = outcomes.get(entry.outcome)
        if entry.outcome not in outcomes:
            problems.append((loc + ("outcome",), f"outcome {entry.outcome!r} is not defined under analysis.outcomes "
                                                 f"({', '.join(outcomes) or 'none'})"))
        if entry.subgroup is not None and entry.subgroup not in parts.subgroups:
            problems.append((loc + ("subgroup",), f"subgroup {entry.subgroup!r} is not defined under "
                                                  f"analysis.subgroups ({', '.join(parts.subgroups) or 'none'})"))
        if oc is None or oc is _BROKEN:
            continue
        if entry.each_term and oc.kind != "adverse_event":
            problems.append((loc + ("each_term",), f"each_term is for adverse_event outcomes; {entry.outcome!r} "
                                                   f"is of kind {oc.kind}"))
        sg = parts.subgroups.get(entry.subgroup) if entry.subgroup else None
        if sg is not None and sg is not _BROKEN and oc.arms is not None:
            field_of(oc.arms.sheet, sg.field, loc + ("subgroup",), role="subgroup field", study_fields=True)
        elif sg is not None and sg is not _BROKEN and oc.sheet not in (None, a_sheet):
            field_of(oc.sheet, sg.field, loc + ("subgroup",), role="subgroup field", study_fields=True)
        if defaults is _BROKEN:
            continue
        s = AnalysisSpec.model_construct(defaults=defaults).settings_for(oc, entry)
        why = method_fits(oc.kind, s.measure, s.method)
        if why:
            problems.append((loc + ("method" if entry.method and "method" in why.split(" ", 1)[0] else "measure",),
                             f"{why} ({entry.outcome!r})"))
        if s.hk and s.method in ("MH", "PETO"):
            problems.append((loc + ("hk",), f"method {s.method} has no Knapp-Hartung adjustment"))
    for i, v in enumerate(parts.sensitivity):
        if v is _BROKEN:
            continue
        if v.hk and v.method in ("MH", "PETO"):
            problems.append((("analysis", "sensitivity", i, "hk"), f"method {v.method} has no Knapp-Hartung adjustment"))
        if "measure" in v.model_fields_set:
            kinds = [k for k, ms in KIND_MEASURES.items() if v.measure in ms]
            if not any(method_fits(k, v.measure, v.method) is None for k in kinds):
                problems.append((("analysis", "sensitivity", i, "method"),
                                 f"method {v.method} does not fit measure {v.measure}"))
        elif not any(v.method in ms for ms in KIND_METHODS.values()):
            problems.append((("analysis", "sensitivity", i, "method"), f"unknown method {v.method}"))


def schema_problems(data: dict) -> list[tuple[Loc, str]]:
    """Every problem of a schema's data (its YAML as Python), each with its location; [] when valid."""
    problems: list[tuple[Loc, str]] = []
    parts = _structure(data, problems)
    _references(parts, problems)
    if not problems:
        try:
            ReviewSchema.model_validate(data)
        except ValidationError as exc:  # anything the parts missed
            problems.extend(_pydantic_problems(exc, ()))
    seen = set()
    out = []
    for loc, msg in problems:
        key = (tuple(map(str, loc)), msg)
        if key not in seen:
            seen.add(key)
            out.append((loc, msg))
    return out


def _format(path: Path, node: Any, loc: Loc, msg: str) -> str:
    line = _line_of(node, loc)
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    if msg.startswith(dotted + ":") or msg.startswith(dotted.replace(".", "[", 1)):
        return f"{path}, line {line}: {msg}"
    return f"{path}, line {line}: {dotted}: {msg}"


_OPEN_CLOSE = (("(", ")"), ("[", "]"), ("{", "}"))


def split_list_items(node: Any, loc: Loc = ()) -> list[tuple[Loc, str]]:
    """Items of a ``[a, b]`` list that YAML split at a comma inside one label.

    In a flow list a comma separates items, so ``aliases: [Median (95% CI, months)]`` is read as
    two labels, ``Median (95% CI`` and ``months)``: each with a bracket the other closes. That is
    never what a reviewer meant, and would silently match neither header nor term; it is a
    problem naming both halves (quote the label, or write one item per line).
    """
    import yaml

    out: list[tuple[Loc, str]] = []
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            out.extend(split_list_items(v, loc + (getattr(k, "value", k),)))
    elif isinstance(node, yaml.SequenceNode):
        items = node.value
        if node.flow_style:
            for j in range(len(items) - 1):
                a, b = items[j], items[j + 1]
                if not (isinstance(a, yaml.ScalarNode) and isinstance(b, yaml.ScalarNode)) or a.style or b.style:
                    continue
                if any(a.value.count(o) > a.value.count(c) and b.value.count(c) > b.value.count(o)
                       for o, c in _OPEN_CLOSE):
                    out.append((loc + (j,), f"{a.value!r} and {b.value!r} look like one label split at its comma: "
                                            f"in [...] a comma separates items; quote the label "
                                            f"(\"{a.value}, {b.value}\") or write the list one item per line"))
        for j, item in enumerate(items):
            out.extend(split_list_items(item, loc + (j,)))
    return out


def load_schema(schema: str | Path | None = None) -> ReviewSchema:
    """Load and validate a review schema.

    Every reference is checked when the file loads (sheets, fields named by checks, outcomes,
    analyses, subgroups and plan entries, arm pairing fields, units, measures and methods that
    fit each outcome's kind), and every problem is listed at once, each with its line.

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
        message names the file, and the line and what is wrong for every problem found
        (``SchemaError.problems`` holds them one per item).
    """
    path = resolve_schema_path(schema)
    try:
        key = (str(path.resolve()), path.stat().st_mtime)
    except OSError as exc:
        raise SchemaError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if key in _cache:
        return _cache[key]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot be read as UTF-8 text ({str(exc)[:100]})") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SchemaError(f"{path}{where}: not valid YAML ({problem})") from None
    except RecursionError:
        raise SchemaError(f"{path}: nested too deeply to be a schema") from None
    if not isinstance(data, dict):
        raise SchemaError(f"{path}, line 1: a schema is a YAML mapping with at least 'name' and 'sheets'")
    try:
        problems = split_list_items(node) + schema_problems(data)
    except RecursionError:
        raise SchemaError(f"{path}: nested too deeply to be a schema") from None
    if problems:
        lines = [_format(path, node, loc, msg) for loc, msg in problems]
        head = lines[0] if len(lines) == 1 else f"{path}: {len(lines)} problems:\n  " + "\n  ".join(lines)
        err = SchemaError(head)
        err.problems = lines  # type: ignore[attr-defined]
        raise err
    model = ReviewSchema.model_validate({**data, "source": str(path)})
    _cache[key] = model
    return model

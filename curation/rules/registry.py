"""The one registry of rules: :class:`Rule`, :class:`Param`, and the decorators that register them.

Every rule code lives in :data:`REGISTRY`: ``curate rules`` prints it, ``docs/rules.md``
documents each code and the tests check that every code has both. Rules are registered by
:func:`declare` (implemented by the reader, normaliser or pandera), :func:`check` (a cross-field
check a schema names under ``checks:``) and :func:`companion` (a second code a check reports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..findings import Finding


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A parameter of a check.

    ``kind`` is field, fields, ref, refs, number, mapping, bands, text or flag (true/false).
    ``choices`` lists the values a text parameter may take; ``like`` names a ``fields`` parameter
    whose list this one must match in length (one field per arm, in the same order).
    """

    name: str
    kind: str
    required: bool = True
    help: str = ""
    choices: tuple[str, ...] = ()
    like: str = ""
    types: tuple[str, ...] | None = None  # field types the fields must have (None: any)
    by_study: bool = False  # a ref that may name any sheet: the check matches its rows by study


@dataclass(frozen=True)
class Rule:
    """A registered rule.

    Attributes
    ----------
    code : str
        Stable kebab-case identifier used in findings.
    severity : {"error", "warning", "info"}
        Default severity (a schema's check entry may override it).
    summary : str
        One line for documentation and ``curate rules``.
    scope : {"structure", "cell", "field", "check", "coverage"}
        ``structure``: reading the workbook; ``cell``: a cell that cannot be read as its type;
        ``field``: from a field's declaration; ``check``: named in a schema's ``checks:``;
        ``coverage``: what the check stage says of a check that could not run.
    params : tuple of Param
        For checks: what the schema entry must give.
    func : callable or None
        For checks: ``func(ctx, sheet, severity, **params) -> list[Finding]``.
    reported_by : str
        For a companion code: the check that reports it (the schema names that one).
    needs : tuple of str or None
        For checks: the parameters whose fields a row must hold for the check to look at it (its
        coverage, :mod:`curation.rules.stage`); None: every required field parameter.
    excludes : {"fields", "record"}
        What an error of this rule takes out of the analyses. ``fields`` (most rules): the record
        leaves only the analyses that use one of the fields the finding involves
        (:attr:`~curation.findings.Finding.fields`). ``record``: the finding is about the
        record's identity or eligibility (a duplicate key, a study not on the studies sheet, an
        ineligible or rejected term, a study excluded), so the record leaves every analysis, and
        a study's record takes its rows on the other sheets with it. An error on a field of the
        row key (or the link to the parent sheet) is about identity whatever its rule: see
        :func:`excludes_record`.
    """

    code: str
    severity: str
    summary: str
    scope: str
    params: tuple[Param, ...] = ()
    func: Callable[..., list[Finding]] | None = None
    reported_by: str = ""
    excludes: str = "fields"
    needs: tuple[str, ...] | None = None

    def validate_params(self, schema: Any, sheet: str, params: dict[str, Any], where: str) -> None:
        """Check a schema entry's parameters (names, kinds, fields that exist); raise the first problem."""
        problems = self.param_problems(schema, sheet, params)
        if problems:
            raise ValueError(f"{where}: {problems[0][1]}")

    def param_problems(self, schema: Any, sheet: str, params: dict[str, Any]) -> list[tuple[str | None, str]]:
        """Every problem of a schema entry's parameters: ``[(parameter or None, message), ...]``."""
        if self.scope == "coverage":
            return [(None, f"rule {self.code!r} is reported by the check stage of every check; it is not named "
                           f"under 'checks' (set its severity under 'severities')")]
        if self.scope != "check":
            return [(None, f"rule {self.code!r} is applied from field declarations, not under 'checks'")]
        if self.func is None:
            return [(None, f"rule {self.code!r} is reported by the check {self.reported_by!r}; "
                           f"name that one under 'checks'")]
        out: list[tuple[str | None, str]] = []
        known = {p.name for p in self.params}
        for name in params:
            if name not in known:
                out.append((name, f"rule {self.code!r} takes no parameter {name!r} "
                                  f"(it takes {', '.join(sorted(known))})"))
        fields = schema.sheets[sheet].fields
        for p in self.params:
            if p.name not in params:
                if p.required:
                    out.append((None, f"rule {self.code!r} needs parameter {p.name!r} ({p.help})"))
                continue
            value = params[p.name]
            refs: list[Any] = []
            if p.kind in ("field", "ref"):
                refs = [value]
            elif p.kind in ("fields", "refs"):
                if not isinstance(value, list) or not value:
                    out.append((p.name, f"{p.name!r} must be a list of fields"))
                    continue
                refs = value
            elif p.kind == "number":
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                    out.append((p.name, f"{p.name!r} must be a number"))
            elif p.kind in ("mapping", "bands") and not isinstance(value, dict):
                out.append((p.name, f"{p.name!r} must be a mapping"))
                continue
            elif p.kind == "text" and not isinstance(value, (str, int, float)):
                out.append((p.name, f"{p.name!r} must be text"))
            elif p.kind == "flag" and not isinstance(value, bool):
                out.append((p.name, f"{p.name!r} must be true or false"))
            elif p.kind == "text" and p.choices and value not in p.choices:
                out.append((p.name, f"{p.name!r} must be one of {', '.join(p.choices)} (not {value!r})"))
            if p.like and p.like in params and isinstance(value, list) and isinstance(params[p.like], list) \
                    and len(value) != len(params[p.like]):
                out.append((p.name, f"{p.name!r} needs one field per field of {p.like!r} "
                                    f"({len(params[p.like])}), in the same order; it has {len(value)}"))
            if p.kind == "bands":
                from .cohorts import parse_band

                for band in value.values():
                    try:
                        parse_band(band)
                    except (ValueError, TypeError) as exc:
                        out.append((p.name, f"{p.name!r}: {exc}"))
            for ref in refs:
                if not isinstance(ref, str):
                    out.append((p.name, f"{p.name!r}: {ref!r} is not a field name"))
                    continue
                if "." in ref and p.kind in ("ref", "refs"):
                    other, fname = ref.split(".", 1)
                    if other not in schema.sheets or fname not in schema.sheets[other].fields:
                        out.append((p.name, f"{p.name!r}: no field {fname!r} on sheet {other!r}"))
                        continue
                elif ref not in fields:
                    out.append((p.name, f"{p.name!r}: sheet {sheet!r} has no field {ref!r}"))
                    continue
                else:
                    other, fname = sheet, ref
                if p.types is not None:
                    ftype = schema.sheets[other].fields[fname].type
                    if ftype not in p.types:
                        need = "a number field" if p.types == NUMBER else f"a field of type {' or '.join(p.types)}"
                        out.append((p.name, f"{p.name!r}: field {ref!r} is of type {ftype}; rule {self.code!r} "
                                            f"needs {need} here"))
        return out


REGISTRY: dict[str, Rule] = {}
#: Field types a check reads as numbers (its Param(types=NUMBER)).
NUMBER = ("integer", "number", "percentage", "year", "p_value")


def _register(rule: Rule) -> Rule:
    if rule.code in REGISTRY:
        raise ValueError(f"rule {rule.code!r} registered twice")
    REGISTRY[rule.code] = rule
    return rule


#: What an error of a rule takes out of the analyses (:attr:`Rule.excludes`).
EXCLUDES = ("fields", "record")


def declare(code: str, severity: str, summary: str, scope: str, excludes: str = "fields") -> Rule:
    """Register a structure, cell or field rule (implemented by the reader, normaliser or pandera)."""
    if excludes not in EXCLUDES:
        raise ValueError(f"rule {code!r}: excludes must be one of {', '.join(EXCLUDES)}")
    return _register(Rule(code, severity, summary, scope, excludes=excludes))


def check(code: str, severity: str, summary: str, params: Iterable[Param], needs: Iterable[str] | None = None):
    """Register a cross-field check function under ``code``; ``needs``: see :attr:`Rule.needs`."""

    def deco(func: Callable[..., list[Finding]]):
        _register(Rule(code, severity, summary, "check", tuple(params), func,
                       needs=tuple(needs) if needs is not None else None))
        return func

    return deco


def companion(code: str, severity: str, summary: str, reported_by: str) -> Rule:
    """Register a code that the check ``reported_by`` reports besides its own (a second severity:
    the warning beside an error, an info note of what the check did). A schema names the check."""
    return _register(Rule(code, severity, summary, "check", (), None, reported_by))


def excludes_record(finding: Any, schema: Any) -> bool:
    """Does an error ``finding`` exclude its record from every analysis (not only from those that
    use its fields)?

    True for a rule about identity or eligibility (:attr:`Rule.excludes` ``record``:
    ``duplicate-key``, ``unknown-study``, ``ineligible-term``, ``rejected-term``,
    ``study-excluded``) and for an error on a field that identifies the row: one of its sheet's
    key fields or the link to its parent sheet (an unreadable or missing ``study_id``, an
    unknown arm label on a sheet keyed by arm). A record of the root sheet (a study) excluded
    so takes the study's rows on the other sheets with it (``study-excluded``). False for a
    finding at no row. Selection (the stage after the checks) calls this for each error.
    """
    if finding.row is None:
        return False
    rule = REGISTRY.get(finding.rule)
    if rule is not None and rule.excludes == "record":
        return True
    spec = schema.sheets.get(finding.contract_sheet) if finding.contract_sheet else None
    if spec is None or not finding.field:
        return False
    identity = set(spec.key) | ({spec.parent.key} if spec.parent is not None else set())
    return finding.field in identity


#: ``cover(ctx, sheet, **params) -> (applies, checked, reason)``: three arrays over the sheet's
#: rows (``reason`` holds why an applicable row was not checked, None where it was).
CoverFunc = Callable[..., tuple[Any, Any, Any]]
_COVER: dict[str, CoverFunc] = {}


def covers(code: str) -> Callable[[CoverFunc], CoverFunc]:
    """Register how the check ``code`` counts the records it applies to and checks, when the
    default (every field it needs present on the row, :func:`row_coverage`) does not say it:
    checks over groups of rows, or over a chain of fields of which any two suffice."""

    def deco(func: CoverFunc) -> CoverFunc:
        _COVER[code] = func
        return func

    return deco



def all_rules() -> list[Rule]:
    """Every registered rule, in registration order."""
    return list(REGISTRY.values())


def check_problems(schema: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Every problem of a schema's ``checks:`` entries (unknown rule, parameters, fields), with its location.

    Called by the schema loader through :mod:`curation.registry`, so that the schema module never
    imports this one; ``schema`` may be a partial schema (the sheets that validated).
    """
    out: list[tuple[tuple[Any, ...], str]] = []
    for sheet, checks in schema.checks.items():
        if sheet not in schema.sheets:
            continue
        for i, entry in enumerate(checks):
            if not hasattr(entry, "rule"):
                continue  # did not validate: listed already
            rule = REGISTRY.get(entry.rule)
            if rule is None:
                out.append((("checks", sheet, i, "rule"), f"unknown rule {entry.rule!r} (see `curate rules`)"))
                continue
            for name, msg in rule.param_problems(schema, sheet, entry.params):
                out.append((("checks", sheet, i) + ((name,) if name else ()), msg))
            mine = [c for c, r in REGISTRY.items() if r.reported_by == rule.code]
            for code in getattr(entry, "severities", None) or {}:
                if code not in mine:
                    also = (f"the codes it reports besides its own: {', '.join(mine)}" if mine else
                            "it reports no other code; set its own with 'severity:'")
                    out.append((("checks", sheet, i, "severities", code),
                                f"rule {rule.code!r} does not report {code!r} ({also})"))
    for code in getattr(schema, "severities", None) or {}:
        if code not in REGISTRY:
            out.append((("severities", code), f"unknown rule {code!r} (see `curate rules`)"))
    return out

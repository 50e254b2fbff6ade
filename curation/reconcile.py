"""Dual extraction: reconcile two reviewers' forms, measure their agreement, carry adjudication.

:func:`reconcile` reads two forms filled for the same studies (and, optionally, a third
reviewer's filled ``conflicts`` sheet), and returns a :class:`Reconciliation`: every real
disagreement as a :class:`Conflict` at its cell in each form (with a suggestion where the form's
own rules decide which value is right), the agreement between the reviewers per field (percent
agreement; Cohen's kappa and Gwet's AC1 for vocabulary fields), each reviewer's own validation
findings, and the consensus rows. It is pure apart from reading its inputs: the command line
writes :func:`consensus_workbook`, :meth:`Reconciliation.to_dict` and
:meth:`Reconciliation.audit_log`.

Rows are matched by the sheet's row key from the schema (never by position), after
normalisation: a text key that other sheets refer to (``study_id``) is compared stripped, other
text keys (``cohort``) folded for case and spaces, vocabulary keys (``ae_term``) by canonical
term. Values are compared after normalisation too (aliases, numbers as text, percentages, NR,
units converted to months), so that only real disagreements are conflicts.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, replace
from dataclasses import field as _field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import UnusableInputError
from .findings import Finding, _plain
from .schema import NUMERIC_TYPES, ReviewSchema, fold, load_schema

__all__ = ["Conflict", "Resolution", "ConsensusRow", "Reconciliation", "reconcile", "consensus_workbook",
           "cohen_kappa", "gwet_ac1", "CONFLICT_COLUMNS", "print_reconciliation"]

#: Columns of the ``conflicts`` sheet; the last three are for the third reviewer.
CONFLICT_COLUMNS = ("id", "sheet", "key", "field", "value_a", "value_b", "cell_a", "cell_b", "suggestion",
                    "resolved_value", "adjudicator", "note")
#: Resolved values of a row conflict (a row only one reviewer has).
KEEP_WORDS = frozenset({"keep", "include", "included", "yes", "accept", "accepted", "retain"})
DROP_WORDS = frozenset({"drop", "exclude", "excluded", "delete", "remove", "no", "reject", "rejected"})

CONFLICT_FILL = "FFC7CE"      # light red: a cell the reviewers disagree on, not yet resolved
ONE_REVIEWER_FILL = "FFEB9C"  # light yellow: a row only one reviewer has, not yet resolved
RESOLVED_FILL = "C6EFCE"      # light green: a value the adjudicator decided

_EMPTY_LABEL = "(empty)"


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    """One cell after normalisation.

    ``kind`` is ``empty``, ``number`` (``value`` a float in canonical units: percent, months),
    ``nr`` (not reached) or ``text`` (``value`` the canonical vocabulary term, the cleaned text, or
    the text of a number that could not be read). ``tol`` is half a unit of the last digit
    reported, in canonical units; it is used only when two reviewers reported in different units.
    """

    kind: str
    value: Any = None
    raw: Any = None
    tol: float = 0.0
    unit: str | None = None
    decimals: float = math.nan

    @property
    def filled(self) -> bool:
        return self.kind != "empty"


EMPTY = _Cell("empty")


def _same(a: _Cell, b: _Cell) -> bool:
    """Do two normalised cells agree?"""
    if a.kind != b.kind:
        return False
    if a.kind in ("empty", "nr"):
        return True
    if a.kind == "number":
        if math.isclose(a.value, b.value, rel_tol=1e-9, abs_tol=1e-12):
            return True
        if a.unit and b.unit and a.unit != b.unit:  # 26 weeks vs 6 months: equal to the digits reported
            return abs(a.value - b.value) <= max(a.tol, b.tol) * (1 + 1e-9)
        return False
    return fold(a.value) == fold(b.value)


def _show(cell: _Cell) -> str:
    """A cell's value as the reviewer typed it (for messages)."""
    from .cells import format_number, text_value

    if cell.kind == "empty":
        return "empty"
    if cell.raw is not None and text_value(cell.raw) is not None:
        return text_value(cell.raw)
    if cell.kind == "nr":
        return "NR"
    if cell.kind == "number":
        return format_number(cell.value)
    return str(cell.value)


def _fmt(x: float) -> str:
    from .cells import format_number

    return format_number(x)


def _category(cell: _Cell, terms: Iterable[str] = ()) -> str:
    """A kappa category: the canonical term, or the folded text of a label that matches none."""
    if cell.kind == "text" and cell.value in terms:
        return cell.value
    if cell.kind == "empty":
        return _EMPTY_LABEL
    if cell.kind == "nr":
        return "NR"
    if cell.kind == "number":
        return _fmt(cell.value)
    return fold(cell.value) if cell.value is not None else _EMPTY_LABEL


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """A third reviewer's decision on one conflict.

    Attributes
    ----------
    value : object
        The resolved value as typed in the adjudication file.
    source : {"A", "B", "other", "keep", "drop"}
        Whose value it is: reviewer A's, B's, a third value (accepted and noted), or for a row
        that only one reviewer has, whether the row is kept or dropped.
    adjudicator : str or None
        The third reviewer's initials.
    note : str or None
    row : int
        The Excel row of the decision in the adjudication file.
    """

    value: Any
    source: str
    adjudicator: str | None
    note: str | None
    row: int
    cell: _Cell = _field(default=EMPTY, repr=False)


@dataclass(frozen=True)
class Conflict:
    """One disagreement between the reviewers.

    Attributes
    ----------
    id : int
        1-based number, in sheet, row and field order.
    sheet : str
    key : dict
        The row key (field -> value), e.g. ``{"study_id": "S01", "cohort": "overall"}``.
    field : str or None
        The field, or None for a row that only one reviewer has.
    value_a, value_b : object
        The values as typed (``"only in A"`` / ``"only in B"`` for a row of one reviewer).
    cell_a, cell_b : str or None
        ``sheet!C12`` in each reviewer's form (the row reference of ``Table.ref`` for a whole row).
    suggestion : str or None
        Why one of the two values is right, when the schema's rules decide it.
    suggested : {"A", "B"} or None
        Whose value the suggestion favours.
    kind : {"value", "only_in_a", "only_in_b"}
    resolution : Resolution or None
        The adjudicator's decision, when an adjudication file was given and decides it.
    """

    id: int
    sheet: str
    key: dict[str, Any]
    field: str | None
    value_a: Any
    value_b: Any
    cell_a: str | None
    cell_b: str | None
    suggestion: str | None = None
    suggested: str | None = None
    kind: str = "value"
    resolution: Resolution | None = None
    cell_value_a: _Cell = _field(default=EMPTY, repr=False)
    cell_value_b: _Cell = _field(default=EMPTY, repr=False)
    canonical_a: Any = None
    canonical_b: Any = None

    @property
    def key_text(self) -> str:
        return key_text(self.key)

    @property
    def resolved(self) -> bool:
        return self.resolution is not None

    @property
    def suggested_value(self) -> Any:
        """The suggested value as the consensus writes it (canonical; medians in months)."""
        if self.suggested == "A":
            return _plain(self.canonical_a)
        if self.suggested == "B":
            return _plain(self.canonical_b)
        return None

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "sheet": self.sheet, "key": {k: _plain(v) for k, v in self.key.items()},
             "field": self.field, "value_a": _plain(self.value_a), "value_b": _plain(self.value_b),
             "cell_a": self.cell_a, "cell_b": self.cell_b, "suggestion": self.suggestion,
             "suggested": self.suggested, "suggested_value": self.suggested_value, "kind": self.kind,
             "status": "resolved" if self.resolved else "unresolved"}
        if self.resolution is not None:
            r = self.resolution
            d["resolution"] = {"value": _plain(r.value), "source": r.source, "adjudicator": r.adjudicator,
                               "note": r.note}
        return d


def key_text(key: dict[str, Any]) -> str:
    """``study_id=S01; cohort=overall`` (the key column of the conflicts sheet)."""
    from .cells import format_number

    return "; ".join(f"{k}={format_number(v) if isinstance(v, float) else v}" for k, v in key.items())


@dataclass(frozen=True)
class ConsensusRow:
    """One row of the consensus form.

    Attributes
    ----------
    sheet : str
    key : dict
    values : dict
        Field -> value to write (canonical: vocabulary terms, numbers, ``NR``, medians in months;
        None for an empty cell or a conflict not resolved).
    conflicts : dict
        Field -> conflict id of the cells still in conflict.
    resolved : dict
        Field -> conflict id of the cells an adjudicator decided.
    only_in : {"A", "B"} or None
        The reviewer who alone has this row (while the row conflict is unresolved, or kept).
    row_conflict : int or None
        The id of the row conflict, for a row only one reviewer has.
    dropped : bool
        The adjudicator dropped the row; it is not written.
    """

    sheet: str
    key: dict[str, Any]
    values: dict[str, Any]
    conflicts: dict[str, int] = _field(default_factory=dict)
    resolved: dict[str, int] = _field(default_factory=dict)
    only_in: str | None = None
    row_conflict: int | None = None
    row_resolved: bool = False
    dropped: bool = False


@dataclass(frozen=True)
class Reconciliation:
    """What :func:`reconcile` found.

    Attributes
    ----------
    schema : ReviewSchema
    form_a, form_b : str
        The two forms, as given.
    conflicts : tuple of Conflict
        Every disagreement (resolved or not), in sheet, row and field order.
    agreement : dict
        ``{"overall": float, "n": int, "agreed": int, "fields": {...}, "rows": {...}}``; see
        :func:`agreement_table`.
    findings_a, findings_b : tuple of Finding
        Each reviewer's own validation findings.
    rows : dict[str, tuple of ConsensusRow]
        The consensus rows per sheet.
    adjudication : str or None
        The adjudication file, when one was given.
    unmatched : tuple of dict
        Adjudication rows that match no conflict (sheet, key, field, row, reason); reported, never
        applied.
    warnings : tuple of str
        Messages about the adjudication (unmatched rows, words not understood, third values).
    decided_at : str
        ISO time stamped on every decision of the audit log.
    """

    schema: ReviewSchema
    form_a: str
    form_b: str
    conflicts: tuple[Conflict, ...]
    agreement: dict[str, Any]
    findings_a: tuple[Finding, ...]
    findings_b: tuple[Finding, ...]
    rows: dict[str, tuple[ConsensusRow, ...]]
    adjudication: str | None = None
    unmatched: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    decided_at: str = ""
    extractors: tuple[str | None, str | None] = (None, None)

    @property
    def unresolved(self) -> tuple[Conflict, ...]:
        return tuple(c for c in self.conflicts if not c.resolved)

    @property
    def resolved(self) -> tuple[Conflict, ...]:
        return tuple(c for c in self.conflicts if c.resolved)

    def exit_code(self) -> int:
        """0 when no conflict is left unresolved, 1 otherwise."""
        return 1 if self.unresolved else 0

    def audit_log(self) -> list[dict[str, Any]]:
        """One entry per adjudicated decision (the ``<consensus>.audit.json`` file)."""
        out = []
        for c in self.conflicts:
            r = c.resolution
            if r is None:
                continue
            out.append({"conflict_id": c.id, "sheet": c.sheet, "key": {k: _plain(v) for k, v in c.key.items()},
                        "field": c.field, "value_a": _plain(c.value_a), "value_b": _plain(c.value_b),
                        "resolution": _plain(r.value), "source": r.source, "third_value": r.source == "other",
                        "suggested": c.suggested, "adjudicator": r.adjudicator, "note": r.note,
                        "adjudication_row": r.row, "time": self.decided_at})
        return out

    def summary(self) -> dict[str, Any]:
        return {"conflicts": len(self.conflicts), "resolved": len(self.resolved),
                "unresolved": len(self.unresolved),
                "with_suggestion": sum(1 for c in self.conflicts if c.suggested),
                "rows_only_in_a": sum(1 for c in self.conflicts if c.kind == "only_in_a"),
                "rows_only_in_b": sum(1 for c in self.conflicts if c.kind == "only_in_b"),
                "findings_a": _count_severities(self.findings_a), "findings_b": _count_severities(self.findings_b)}

    def to_dict(self) -> dict[str, Any]:
        """The object ``--json`` writes.

        ``{"conflicts": [...], "agreement": {"overall": ..., "fields": {...}}, "findings_a": [...],
        "findings_b": [...], "summary": {...}, "adjudication": {...} or null, "forms": {"a", "b"}}``.
        """
        adj = None
        if self.adjudication is not None:
            adj = {"file": self.adjudication, "resolved": len(self.resolved), "unresolved": len(self.unresolved),
                   "third_values": [c.id for c in self.resolved if c.resolution.source == "other"],
                   "unmatched": [dict(u) for u in self.unmatched], "warnings": list(self.warnings),
                   "decisions": self.audit_log()}
        return {"conflicts": [c.to_dict() for c in self.conflicts],
                "agreement": self.agreement,
                "findings_a": [f.to_dict() for f in self.findings_a],
                "findings_b": [f.to_dict() for f in self.findings_b],
                "summary": self.summary(),
                "adjudication": adj,
                "forms": {"a": self.form_a, "b": self.form_b}}


def _count_severities(findings: Iterable[Finding]) -> dict[str, int]:
    out = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        out[f.severity] = out.get(f.severity, 0) + 1
    return out


# ---------------------------------------------------------------------------------------------
# Agreement statistics
# ---------------------------------------------------------------------------------------------


def _table(pairs: Sequence[tuple[str, str]]) -> tuple[list[str], Any]:
    import numpy as np

    labels = sorted({x for p in pairs for x in p})
    index = {c: i for i, c in enumerate(labels)}
    t = np.zeros((len(labels), len(labels)))
    for a, b in pairs:
        t[index[a], index[b]] += 1
    return labels, t


def cohen_kappa(table: Any, level: float = 0.95) -> dict[str, Any]:
    """Cohen's kappa of a square contingency table (rows: reviewer A, columns: reviewer B).

    The variance is the large-sample one of Fleiss, Cohen & Everitt (1969), as in R's
    ``psych::cohen.kappa``; the CI is kappa +- z * SE, clipped to [-1, 1] as psych does.

    Returns
    -------
    dict
        ``kappa``, ``se``, ``ci_low``, ``ci_high``, ``po`` (observed agreement), ``pe``
        (chance agreement), ``n``. ``kappa`` is None when chance agreement is 1 (one category
        only: kappa is undefined).
    """
    import numpy as np
    from scipy.stats import norm

    x = np.asarray(table, dtype=float)
    n = float(x.sum())
    out: dict[str, Any] = {"kappa": None, "se": None, "ci_low": None, "ci_high": None, "po": None, "pe": None,
                           "n": int(n)}
    if n <= 0:
        return out
    p = x / n
    rs, cs = p.sum(axis=1), p.sum(axis=0)
    po = float(np.trace(p))
    pc = float(np.sum(rs * cs))
    out.update(po=po, pe=pc)
    if pc >= 1 - 1e-12:
        return out
    kappa = (po - pc) / (1 - pc)
    diag = np.diag(p)
    first = float(np.sum(diag * ((1 - pc) - (rs + cs) * (1 - po)) ** 2))
    cross = np.add.outer(cs, rs)  # [i, j] = p.i + pj.
    off = float(np.sum(p * cross ** 2) - np.sum(diag * np.diag(cross) ** 2))
    var = (first + (1 - po) ** 2 * off - (po * pc - 2 * pc + po) ** 2) / (n * (1 - pc) ** 4)
    var = max(var, 0.0)
    se = math.sqrt(var)
    z = float(norm.ppf(1 - (1 - level) / 2))
    out.update(kappa=kappa, se=se, ci_low=max(-1.0, kappa - z * se), ci_high=min(1.0, kappa + z * se))
    return out


def gwet_ac1(table: Any, level: float = 0.95, categories: int | None = None) -> dict[str, Any]:
    """Gwet's AC1 (Gwet 2008) of a square contingency table, with its SE and CI.

    Chance agreement ``pe = sum_k pi_k (1 - pi_k) / (Q - 1)`` with ``pi_k`` the mean of the two
    reviewers' marginal proportions and ``Q`` the number of categories (by default the number
    that occur in the table, as R's ``irrCAC::gwet.ac1.table`` counts its rows). The variance is
    Gwet's (2008, eq. 9 with sampling fraction 0), the CI AC1 +- t(n-1) * SE as in irrCAC, the
    upper limit capped at 1.

    Returns
    -------
    dict
        ``ac1``, ``se``, ``ci_low``, ``ci_high``, ``pa``, ``pe``, ``n``, ``q``. With a single
        category the two reviewers agree on every row: AC1 is 1 with no SE.
    """
    import numpy as np
    from scipy.stats import t as tdist

    x = np.asarray(table, dtype=float)
    n = float(x.sum())
    q = categories if categories is not None else int(x.shape[0])
    out: dict[str, Any] = {"ac1": None, "se": None, "ci_low": None, "ci_high": None, "pa": None, "pe": None,
                           "n": int(n), "q": q}
    if n <= 0:
        return out
    p = x / n
    pa = float(np.trace(p))
    pi = (p.sum(axis=1) + p.sum(axis=0)) / 2
    out["pa"] = pa
    if q < 2:
        out.update(ac1=1.0 if pa == 1 else None, pe=0.0)
        return out
    pe = float(np.sum(pi * (1 - pi)) / (q - 1))
    ac1 = (pa - pe) / (1 - pe)
    tkl = (1 - np.add.outer(pi, pi) / 2) / (q - 1)
    w = np.eye(x.shape[0])
    s1 = float(np.sum(p * (w - 2 * (1 - ac1) * tkl) ** 2))
    var = (s1 - (pa - 2 * (1 - ac1) * pe) ** 2) / (n * (1 - pe) ** 2)
    var = max(var, 0.0)
    se = math.sqrt(var)
    out.update(ac1=ac1, pe=pe, se=se)
    if n > 1:
        crit = float(tdist.ppf(1 - (1 - level) / 2, n - 1))
        out.update(ci_low=ac1 - crit * se, ci_high=min(1.0, ac1 + crit * se))
    return out


# ---------------------------------------------------------------------------------------------
# Reading the two forms
# ---------------------------------------------------------------------------------------------


@dataclass
class _Form:
    label: str             # "A" or "B"
    path: str
    workbook: Any
    result: Any            # ValidationResult
    keys: dict[str, list]  # sheet -> per row: match key tuple, or None when a key field is empty
    display: dict[str, list]

    @property
    def tables(self):
        return self.result.tables


def _unit_factors(schema: ReviewSchema, sheet: str, fname: str) -> tuple[str | None, dict[str, float]]:
    fs = schema.sheets[sheet].fields[fname]
    if not fs.unit_field:
        return None, {}
    vocab = schema.vocabularies[schema.sheets[sheet].fields[fs.unit_field].vocabulary]
    return fs.unit_field, {t.value: t.factor for t in vocab.terms if t.factor is not None}


def _unit_fields(schema: ReviewSchema, sheet: str) -> set[str]:
    return {fs.unit_field for fs in schema.sheets[sheet].fields.values() if fs.unit_field}


def _cell(schema: ReviewSchema, form: _Form, sheet: str, i: int, fname: str) -> _Cell:
    """The normalised value of one cell of a form."""
    from .cells import is_missing_text, reported_decimals, text_value
    from .normalise import NR_SUFFIX

    t = form.tables[sheet]
    fs = schema.sheets[sheet].fields[fname]
    raw = t.raw[fname].iat[i]
    if isinstance(raw, float) and math.isnan(raw):
        raw = None
    if fs.type in NUMERIC_TYPES:
        v = t.data[fname].iat[i]
        nr_col = fname + NR_SUFFIX
        if nr_col in t.data and bool(t.data[nr_col].iat[i]):
            return _Cell("nr", None, raw)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            dec = math.nan
            if fname in t.decimals:
                dec = float(t.decimals[fname][i])
            elif raw is not None:
                d = reported_decimals(raw)
                dec = math.nan if d is None else float(d)
            unit_field, factors = _unit_factors(schema, sheet, fname)
            unit = None
            factor = 1.0
            if unit_field:
                unit = t.data[unit_field].iat[i] if unit_field in t.data else None
                factor = factors.get(unit, 1.0) if unit else 1.0
            tol = 0.5 * 10 ** (-dec) * factor if not math.isnan(dec) else 0.0
            return _Cell("number", float(v), raw, tol, unit, dec)
        text = text_value(raw)
        if text is None or is_missing_text(text):
            return EMPTY if raw is None else _Cell("empty", None, raw)
        return _Cell("text", text, raw)
    v = t.data[fname].iat[i]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return EMPTY if raw is None else _Cell("empty", None, raw)
    return _Cell("text", str(v), raw)


def _exact_keys(schema: ReviewSchema) -> set[str]:
    """Key fields compared stripped but not folded: the root key and the fields that refer to it."""
    out = {schema.sheets[schema.root_sheet].key[0]}
    for s in schema.sheets.values():
        if s.parent is not None:
            out.add(s.parent.key)
    return out


def _row_keys(schema: ReviewSchema, form: _Form) -> None:
    exact = _exact_keys(schema)
    for sheet, spec in schema.sheets.items():
        keys: list = []
        display: list = []
        if sheet in form.tables:
            for i in range(len(form.tables[sheet])):
                parts = []
                shown = {}
                for k in spec.key:
                    c = _cell(schema, form, sheet, i, k)
                    if not c.filled:
                        parts = None
                        shown[k] = None
                        continue
                    if c.kind == "number":
                        m = ("n", round(c.value, 9))
                    elif spec.fields[k].type == "text" and k in exact:
                        m = ("t", str(c.value))
                    else:
                        m = ("t", fold(c.value))
                    if parts is not None:
                        parts.append(m)
                    shown[k] = c.value
                keys.append(tuple(parts) if parts is not None else None)
                display.append(shown)
        form.keys[sheet] = keys
        form.display[sheet] = display


def _only_in(a: set, b: set, path_a: Any, path_b: Any) -> str:
    """``"x, y only in A.xlsx; z only in B.xlsx"``: what one side has and the other lacks."""
    parts = [f"{', '.join(sorted(only))} only in {path}" for only, path in ((a - b, path_a), (b - a, path_b)) if only]
    return "; ".join(parts)


def _check_same_form(schema: ReviewSchema, a: _Form, b: _Form) -> None:
    sa, sb = set(a.workbook.sheets), set(b.workbook.sheets)
    if sa != sb:
        what = _only_in(sa, sb, a.path, b.path)
        raise UnusableInputError(
            f"{a.path} and {b.path} are not the same form: contract sheets differ ({what}); both reviewers "
            "must fill forms of the same schema (`curate template`)")
    for sheet in schema.sheets:
        if sheet not in sa:
            continue
        ca, cb = set(a.workbook.sheets[sheet].columns), set(b.workbook.sheets[sheet].columns)
        if ca != cb:
            what = _only_in(ca, cb, a.path, b.path)
            raise UnusableInputError(
                f"{a.path} and {b.path} are not the same form: sheet {sheet!r} has different columns ({what}); "
                "both reviewers must fill forms of the same schema (`curate template`)")


def _check_duplicates(schema: ReviewSchema, form: _Form) -> None:
    problems = []
    for sheet, spec in schema.sheets.items():
        if sheet not in form.tables:
            continue
        seen: dict[tuple, list[int]] = {}
        rows = form.tables[sheet].data["_row"].to_numpy()
        for i, k in enumerate(form.keys[sheet]):
            if k is not None:
                seen.setdefault(k, []).append(i)
        for k, pos in seen.items():
            if len(pos) > 1:
                shown = key_text(form.display[sheet][pos[0]])
                problems.append(f"{sheet} rows {', '.join(str(int(rows[p])) for p in pos)} have the same key "
                                f"({shown})")
    if problems:
        raise UnusableInputError(
            f"{form.path}: duplicate row keys: {'; '.join(problems)}. Rows are matched by key, so each key must "
            "appear once in a form: merge or correct those rows, then reconcile again")


def _read_form(schema: ReviewSchema, path: str | Path, label: str, layout: Any = None) -> _Form:
    from .layout import read_form as read_workbook
    from .validation import validate_workbooks

    wb = read_workbook(path, schema, display_name=str(path), layout=layout)
    result = validate_workbooks(schema, [wb])
    form = _Form(label, str(path), wb, result, {}, {})
    _row_keys(schema, form)
    return form


# ---------------------------------------------------------------------------------------------
# Suggestions: which of two values the schema's own rules support
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Relation:
    kind: str                 # sum, rate, order, ci, chain, limit
    fields: tuple[str, ...]   # local fields of the sheet involved
    params: dict


def _relations(schema: ReviewSchema, sheet: str) -> list[_Relation]:
    out = []
    for check in schema.checks.get(sheet, ()):
        p = check.params
        r = check.rule
        if r == "response-sum-mismatch":
            fields = (*p["parts"], p["total"], *([p["not_evaluable"]] if p.get("not_evaluable") else []))
            out.append(_Relation("sum", tuple(fields), p))
        elif r == "percentage-mismatch":
            out.append(_Relation("rate", (p["rate"], *p["events"], p["total"]), p))
        elif r == "dcr-below-orr":
            out.append(_Relation("order", (p["orr"], p["dcr"]), p))
        elif r == "median-outside-ci":
            out.append(_Relation("ci", (p["median"], p["low"], p["high"]), p))
        elif r == "adverse-event-counts-inconsistent":
            out.append(_Relation("chain", tuple(f for f in p["chain"] if "." not in f), p))
        elif r == "evaluable-exceeds-enrolled":
            out.append(_Relation("limit", (p["field"],), p))
    return out


def _num(cell: _Cell | None, nr_as: float = math.nan) -> float:
    if cell is None:
        return math.nan
    if cell.kind == "number":
        return float(cell.value)
    if cell.kind == "nr":
        return nr_as
    return math.nan


def _label(ref: str) -> str:
    return ref.split(".", 1)[-1]


def _evaluate(rel: _Relation, f: str, vals: dict[str, _Cell], lookup) -> tuple[bool | None, str]:
    """Does the row ``vals`` satisfy the relation? (None: cannot tell) and a phrase describing it."""
    import numpy as np

    from .rules import rate_matches

    p = rel.params
    if rel.kind == "sum":
        parts = list(p["parts"])
        ne_f = p.get("not_evaluable")
        nums = [_num(vals.get(x)) for x in parts]
        total = _num(vals.get(p["total"]))
        ne = _num(vals.get(ne_f)) if ne_f else math.nan
        if any(math.isnan(x) for x in nums) or math.isnan(total):
            return None, ""
        s = sum(nums) + (0 if math.isnan(ne) else ne)
        names = "+".join(x.upper() for x in parts) + (f"+{ne_f.upper()}" if ne_f and not math.isnan(ne) else "")
        if f == p["total"]:
            return s == total, f"equals {names} = {_fmt(s)}"
        return s == total, f"makes {names} = {p['total']} ({_fmt(total)})"
    if rel.kind == "rate":
        rate_c = vals.get(p["rate"])
        r = _num(rate_c)
        ev_nums = [_num(vals.get(e)) for e in p["events"]]
        tot = _num(vals.get(p["total"]))
        if math.isnan(r) or math.isnan(tot) or tot <= 0 or any(math.isnan(x) for x in ev_nums):
            return None, ""
        ev = sum(ev_nums)
        ok = bool(rate_matches(np.array([r]), np.array([rate_c.decimals]), np.array([ev]), np.array([tot]))[0])
        names = "+".join(e.upper() for e in p["events"])
        if f == p["rate"]:
            return ok, f"matches 100 x ({names})/{p['total']} = {_fmt(ev)}/{_fmt(tot)} = {100 * ev / tot:.2f}%"
        return ok, (f"gives ({names})/{p['total']} = {_fmt(ev)}/{_fmt(tot)} = {100 * ev / tot:.2f}%, the reported "
                    f"{p['rate']} {_fmt(r)}")
    if rel.kind == "order":
        o, d = _num(vals.get(p["orr"])), _num(vals.get(p["dcr"]))
        if math.isnan(o) or math.isnan(d):
            return None, ""
        if f == p["dcr"]:
            return d >= o, f"is not below {p['orr']} = {_fmt(o)}"
        return o <= d, f"is not above {p['dcr']} = {_fmt(d)}"
    if rel.kind == "ci":
        mc, lc, hc = vals.get(p["median"]), vals.get(p["low"]), vals.get(p["high"])
        if mc is not None and mc.kind == "nr":
            return None, ""
        m, lo, hi = _num(mc), _num(lc), _num(hc, nr_as=math.inf)
        present = [not math.isnan(x) for x in (m, lo, hi)]
        if sum(present) < 2 or (f == p["median"] and math.isnan(m)):
            return None, ""
        ok = True
        if not math.isnan(lo) and not math.isnan(hi):
            ok &= lo < hi
        if not math.isnan(m):
            ok &= (math.isnan(lo) or lo <= m) and (math.isnan(hi) or m <= hi)
        hi_text = "NR" if hc is not None and hc.kind == "nr" else _fmt(hi)
        ci = f"{_fmt(lo)}-{hi_text}"
        if f == p["median"]:
            return ok, f"lies inside its 95% CI {ci}"
        return ok, f"keeps {p['median']} = {_fmt(m)} inside its 95% CI ({ci})"
    if rel.kind == "chain":
        chain = list(p["chain"])
        nums = [lookup(x) if "." in x else _num(vals.get(x)) for x in chain]
        i = chain.index(f)
        checked = False
        ok = True
        for j in (i - 1, i):
            if 0 <= j and j + 1 < len(chain):
                a, b = nums[j], nums[j + 1]
                if not math.isnan(a) and not math.isnan(b):
                    checked = True
                    ok &= a <= b
        if not checked:
            return None, ""
        return ok, "keeps " + " <= ".join(_label(x) for x in chain)
    if rel.kind == "limit":
        v = _num(vals.get(p["field"]))
        lim = lookup(p["limit"])
        if math.isnan(v) or math.isnan(lim):
            return None, ""
        return v <= lim, f"is within {_label(p['limit'])} = {_fmt(lim)}"
    return None, ""


def _suggest(rels: list[_Relation], f: str, base: dict[str, _Cell], conflicted: set[str],
             cells_a: dict[str, _Cell], cells_b: dict[str, _Cell], lookup) -> tuple[str | None, str | None]:
    """Which reviewer's value of ``f`` the schema's checks support, and why.

    A check decides when it holds with one reviewer's values and fails with the other's. The other
    fields of the check take their agreed values; fields of the check that are in conflict too
    (a median and its CI bound swapped) take each reviewer's own value, and the message says so.
    """
    ca, cb = cells_a[f], cells_b[f]
    votes: list[tuple[str, str]] = []
    for rel in rels:
        if f not in rel.fields:
            continue
        others = [x for x in rel.fields if x != f and x in conflicted]
        vals_a = {**base, **{x: cells_a[x] for x in others}, f: ca}
        vals_b = {**base, **{x: cells_b[x] for x in others}, f: cb}
        ok_a, phrase_a = _evaluate(rel, f, vals_a, lookup)
        ok_b, phrase_b = _evaluate(rel, f, vals_b, lookup)
        if ok_a is None or ok_b is None or ok_a == ok_b:
            continue

        def with_(cells: dict[str, _Cell], who: str) -> str:
            return "".join(f" (with {who}'s {x} = {_show(cells[x])})" for x in others)

        if ok_a:
            votes.append(("A", f"A's {f} = {_show(ca)}{with_(cells_a, 'A')} {phrase_a}; "
                               f"B's {_show(cb)}{with_(cells_b, 'B')} does not"))
        else:
            votes.append(("B", f"B's {f} = {_show(cb)}{with_(cells_b, 'B')} {phrase_b}; "
                               f"A's {_show(ca)}{with_(cells_a, 'A')} does not"))
    if votes and len({v[0] for v in votes}) == 1:
        return votes[0][0], "; ".join(v[1] for v in votes[:2])
    return None, None


def _cell_findings(findings: Iterable[Finding], severity: str) -> dict[tuple, Finding]:
    """The first finding of ``severity`` at each cell (sheet, row, column)."""
    out: dict[tuple, Finding] = {}
    for f in findings:
        if f.severity == severity and f.row is not None and f.column and f.rule != "study-excluded":
            out.setdefault((f.sheet, f.row, f.column), f)
    return out


# ---------------------------------------------------------------------------------------------
# Adjudication
# ---------------------------------------------------------------------------------------------


def _uninert(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1] in "=+-@\t\r":
        return value[1:]
    return value


def _read_adjudication(path: str | Path, schema: ReviewSchema) -> list[dict[str, Any]]:
    """The rows of a filled ``conflicts`` sheet: dicts with sheet, key, field, resolved_value ..."""
    import openpyxl

    from .reading import header_key, sheet_key
    from .safety import Limits, check_workbook

    path = Path(path)
    lim = schema.limits
    check_workbook(path, Limits(max_uncompressed_bytes=int(lim.max_uncompressed_mb * 1_000_000),
                                max_rows=lim.max_rows, max_columns=lim.max_columns,
                                max_cell_chars=lim.max_cell_chars))
    try:
        import warnings

        with warnings.catch_warnings():  # openpyxl's UserWarnings (unsupported extensions) are not ours
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:
        raise UnusableInputError(f"{path}: cannot be read as an .xlsx workbook ({type(exc).__name__}); "
                                 "save the adjudication file again as .xlsx") from None
    try:
        titles = {sheet_key(t): t for t in wb.sheetnames}
        if "conflicts" not in titles:
            raise UnusableInputError(f"{path}: no 'conflicts' sheet (found: {', '.join(wb.sheetnames)}); the "
                                     "adjudication file is the consensus workbook's conflicts sheet, filled in")
        ws = wb[titles["conflicts"]]
        rows = list(ws.iter_rows())
    finally:
        wb.close()
    header_at = next((i for i, r in enumerate(rows) if any(c.value not in (None, "") for c in r)), None)
    if header_at is None:
        raise UnusableInputError(f"{path}: the conflicts sheet is empty")
    cols: dict[str, int] = {}
    for j, c in enumerate(rows[header_at]):
        if c.value not in (None, ""):
            cols.setdefault(header_key(str(c.value)), j)
    need = [c for c in ("sheet", "key", "field", "resolved_value") if header_key(c) not in cols]
    if need:
        raise UnusableInputError(f"{path}: the conflicts sheet has no column {', '.join(need)} (its header must be "
                                 f"{', '.join(CONFLICT_COLUMNS)})")
    out = []
    for r in rows[header_at + 1:]:
        def get(name, _r=r):
            j = cols.get(header_key(name))
            if j is None or j >= len(_r):
                return None
            v = _r[j].value
            if isinstance(v, str):
                v = _uninert(v.strip()) or None
            return v

        def percent_format(name, _r=r):
            j = cols.get(header_key(name))
            return j is not None and j < len(_r) and "%" in (getattr(_r[j], "number_format", "") or "")

        values = {n: get(n) for n in CONFLICT_COLUMNS}
        if all(v is None for v in values.values()):
            continue
        values["row"] = getattr(r[0], "row", None) if r else None
        values["percent_format"] = percent_format("resolved_value")
        out.append(values)
    return out


def _parse_resolution(schema: ReviewSchema, sheet: str, fname: str, raw: Any, percent_format: bool) -> _Cell:
    """A resolved value read like a cell of the consensus form (medians in months)."""
    from .cells import is_missing_text, parse_number_text, reported_decimals, text_value, year_of

    fs = schema.sheets[sheet].fields[fname]
    text = text_value(raw)
    if text is not None and fs.type == "vocabulary":
        canonical = schema.vocabularies[fs.vocabulary].canonical(text)
        if canonical is not None:
            return _Cell("text", canonical, raw)
    if text is None or is_missing_text(text) and not (fs.not_reached and fold(text) in ("nr", "not reached")):
        return _Cell("empty", None, raw)
    unit = "months" if fs.unit_field else None
    if fs.type in NUMERIC_TYPES:
        if fs.type == "year":
            y = year_of(raw)
            return _Cell("number", float(y), raw, unit=unit, decimals=0.0) if y is not None else _Cell("text", text, raw)
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            v = float(raw) * (100.0 if percent_format and fs.type == "percentage" else 1.0)
            d = reported_decimals(raw)
            dec = math.nan if d is None else float(max(d - 2, 0) if percent_format else d)
            return _Cell("number", v, raw, unit=unit, decimals=dec)
        parsed = parse_number_text(text, not_reached=fs.not_reached, integer=fs.type == "integer",
                                   percent=fs.type == "percentage")
        if parsed.status == "not_reached":
            return _Cell("nr", None, raw)
        if parsed.status == "value":
            d = reported_decimals(text)
            return _Cell("number", parsed.value, raw, unit=unit, decimals=math.nan if d is None else float(d))
        return _Cell("text", text, raw)
    return _Cell("text", text, raw)


def _adjudicate(schema: ReviewSchema, conflicts: list[Conflict], entries: list[dict[str, Any]]
                ) -> tuple[list[Conflict], list[dict[str, Any]], list[str]]:
    """Apply an adjudication file's decisions to the conflicts."""
    by_identity = {(c.sheet, fold(c.key_text), c.field or ""): i for i, c in enumerate(conflicts)}
    done: dict[int, int] = {}
    unmatched: list[dict[str, Any]] = []
    warnings: list[str] = []
    out = list(conflicts)
    for e in entries:
        sheet = str(e["sheet"]).strip() if e["sheet"] is not None else ""
        ktext = str(e["key"]) if e["key"] is not None else ""
        fname = str(e["field"]).strip() if e["field"] is not None else ""
        ident = (sheet, fold(ktext), fname)
        where = f"adjudication row {e['row']} ({sheet} {ktext}{' ' + fname if fname else ''})"
        if ident not in by_identity:
            reason = "matches no conflict of these two forms"
            unmatched.append({"row": e["row"], "id": _plain(e.get("id")), "sheet": sheet or None, "key": ktext or None,
                              "field": fname or None, "resolved_value": _plain(e["resolved_value"]), "reason": reason})
            warnings.append(f"{where} {reason}; it was not applied")
            continue
        idx = by_identity[ident]
        c = out[idx]
        raw = e["resolved_value"]
        if raw is None:
            continue  # not decided yet: stays a conflict
        if idx in done:
            warnings.append(f"{where}: conflict {c.id} is decided again (first in row {done[idx]}); the first "
                            "decision is kept")
            continue
        adjudicator = str(e["adjudicator"]).strip() if e["adjudicator"] is not None else None
        note = str(e["note"]).strip() if e["note"] is not None else None
        if c.field is None:
            word = fold(str(raw))
            if word in KEEP_WORDS:
                source = "keep"
            elif word in DROP_WORDS:
                source = "drop"
            else:
                warnings.append(f"{where}: conflict {c.id} is a row only one reviewer has; resolved_value "
                                f"{raw!r} is neither 'keep' nor 'drop', so it stays unresolved")
                continue
            res = Resolution(raw, source, adjudicator, note, e["row"])
        else:
            cell = _parse_resolution(schema, c.sheet, c.field, raw, bool(e.get("percent_format")))
            if _same(cell, c.cell_value_a):
                source = "A"
            elif _same(cell, c.cell_value_b):
                source = "B"
            else:
                source = "other"
                warnings.append(f"{where}: conflict {c.id} resolved with {raw!r}, neither A's "
                                f"{_show(c.cell_value_a)!s} nor B's {_show(c.cell_value_b)!s}: accepted and noted")
            res = Resolution(raw, source, adjudicator, note, e["row"], cell)
        if not adjudicator:
            warnings.append(f"{where}: conflict {c.id} resolved without adjudicator initials")
        done[idx] = e["row"]
        out[idx] = replace(c, resolution=res)
    return out, unmatched, warnings


# ---------------------------------------------------------------------------------------------
# Writing values
# ---------------------------------------------------------------------------------------------


def _write_value(cell: _Cell, fs: Any) -> Any:
    """The value a consensus cell holds: canonical (terms, numbers, NR; medians in months)."""
    if cell.kind == "empty":
        return None
    if cell.kind == "nr":
        return "NR"
    if cell.kind == "text":
        return cell.value
    v = float(cell.value)
    if fs.type in ("integer", "year"):
        return int(round(v))
    if fs.type == "percentage" and not math.isnan(cell.decimals):
        v = round(v, int(cell.decimals))
    v = float(f"{v:.12g}")
    return int(v) if v.is_integer() and abs(v) < 1e15 else v


# ---------------------------------------------------------------------------------------------
# reconcile
# ---------------------------------------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def reconcile(form_a: str | Path, form_b: str | Path, schema: str | Path | ReviewSchema | None = None,
              adjudication: str | Path | None = None, *, decided_at: str | _dt.datetime | None = None,
              layout: Any = None) -> Reconciliation:
    """Compare two reviewers' forms of the same studies.

    Parameters
    ----------
    form_a, form_b : str or Path
        The two reviewers' ``.xlsx`` forms (read only, never written to).
    schema : str, Path or ReviewSchema, optional
        The review schema both forms follow (default: the 177Lu-PRRT review).
    adjudication : str or Path, optional
        A third reviewer's filled ``conflicts`` sheet (the consensus workbook, or any workbook
        with a ``conflicts`` sheet of the same columns). Resolved values go into the consensus;
        an empty ``resolved_value`` leaves the conflict open; a value that is neither reviewer's
        is accepted and noted; a row that matches no conflict is reported in ``unmatched``.
    decided_at : str or datetime, optional
        The time stamped on every decision of the audit log (default: now, UTC).

    Returns
    -------
    Reconciliation

    Raises
    ------
    UnusableInputError
        A form that cannot be read, forms that do not follow the same schema (different contract
        sheets or columns), a key that occurs twice in one form, or an unreadable adjudication
        file (exit code 2 on the command line).

    Examples
    --------
    >>> rec = reconcile("extraction_forms/example_reviewer_a.xlsx",
    ...                 "extraction_forms/example_reviewer_b.xlsx")  # doctest: +SKIP
    >>> [c.to_dict() for c in rec.conflicts][:1]  # doctest: +SKIP
    >>> rec.agreement["fields"]["grade"]  # doctest: +SKIP
    """
    sch = schema if isinstance(schema, ReviewSchema) else load_schema(schema)
    if isinstance(decided_at, _dt.datetime):
        decided_at = decided_at.isoformat()
    a = _read_form(sch, form_a, "A", layout)
    b = _read_form(sch, form_b, "B", layout)
    _check_same_form(sch, a, b)
    _check_duplicates(sch, a)
    _check_duplicates(sch, b)

    cell_findings = {sev: (_cell_findings(a.result.finding_list, sev), _cell_findings(b.result.finding_list, sev))
                     for sev in ("error", "warning")}
    conflicts: list[Conflict] = []
    plans: dict[str, list[tuple[int | None, int | None, dict[str, Any]]]] = {}
    stats: dict[tuple[str, str], dict[str, Any]] = {}
    agreed_rows: dict[str, dict[tuple, dict[str, _Cell]]] = {}  # for cross-sheet lookups
    rows_summary: dict[str, dict[str, int]] = {}
    extractors = (_first_extractor(sch, a), _first_extractor(sch, b))

    for sheet, spec in sch.sheets.items():
        if sheet not in a.tables and sheet not in b.tables:
            continue
        keys_a, keys_b = a.keys.get(sheet, []), b.keys.get(sheet, [])
        index_b = {k: j for j, k in enumerate(keys_b) if k is not None}
        matched_b: set[int] = set()
        plan: list[tuple[int | None, int | None, dict[str, Any]]] = []
        for i, k in enumerate(keys_a):
            j = index_b.get(k) if k is not None else None
            if j is not None:
                matched_b.add(j)
            plan.append((i, j, a.display[sheet][i]))
        # rows only B has go right after the matched row that precedes them in B's form
        pos_of_b = {j: pos for pos, (_i, j, _d) in enumerate(plan) if j is not None}
        after: dict[int, list[int]] = {}
        anchor = -1
        for j in range(len(keys_b)):
            if j in matched_b:
                anchor = pos_of_b[j]
            else:
                after.setdefault(anchor, []).append(j)
        merged = [(None, j, b.display[sheet][j]) for j in after.get(-1, [])]
        for pos, item in enumerate(plan):
            merged.append(item)
            merged.extend((None, j, b.display[sheet][j]) for j in after.get(pos, []))
        plan = merged
        plans[sheet] = plan
        rows_summary[sheet] = {"matched": len(matched_b), "only_in_a": sum(1 for i, j, _ in plan if j is None),
                               "only_in_b": sum(1 for i, j, _ in plan if i is None)}

    # root sheet first, so that cross-sheet suggestions can look up agreed study values
    order = [sch.root_sheet] + [s for s in sch.sheets if s != sch.root_sheet]
    pending: dict[str, list[tuple]] = {}
    for sheet in order:
        if sheet not in plans:
            continue
        spec = sch.sheets[sheet]
        units = _unit_fields(sch, sheet)
        compared = [f for f, fs in spec.fields.items() if not fs.metadata and f not in spec.key]
        rels = _relations(sch, sheet)
        agreed_rows[sheet] = {}
        for f in compared:
            if f not in units:
                stats[(sheet, f)] = {"n": 0, "agreed": 0, "pairs": []}
        row_items = []
        for i, j, disp in plans[sheet]:
            if i is None or j is None:
                row_items.append((i, j, disp, None))
                continue
            cells_a = {f: _cell(sch, a, sheet, i, f) for f in spec.fields}
            cells_b = {f: _cell(sch, b, sheet, j, f) for f in spec.fields}
            diffs: list[str] = []
            for f in compared:
                ca, cb = cells_a[f], cells_b[f]
                if f in units:
                    vocab = sch.vocabulary_of(sheet, f)
                    known = vocab is not None and all(not c.filled or c.value in vocab.values for c in (ca, cb))
                    if known:
                        continue  # compared through the converted values
                    if not _same(ca, cb):
                        diffs.append(f)
                    continue
                same = _same(ca, cb)
                st = stats[(sheet, f)]
                if ca.filled or cb.filled:
                    st["n"] += 1
                    st["agreed"] += int(same)
                    vocab = sch.vocabulary_of(sheet, f)
                    terms = vocab.values if vocab is not None else ()
                    st["pairs"].append((_category(ca, terms), _category(cb, terms)))
                if not same:
                    diffs.append(f)
            base = {}
            for f in spec.fields:
                ca, cb = cells_a[f], cells_b[f]
                if f in diffs:
                    continue
                if ca.kind == "number" and cb.kind == "number" and not math.isnan(cb.decimals):
                    dec = cb.decimals if math.isnan(ca.decimals) else min(ca.decimals, cb.decimals)
                    ca = replace(ca, decimals=dec)
                base[f] = ca if ca.filled or not cb.filled else cb
            key = a.keys[sheet][i]
            agreed_rows[sheet][key] = base
            row_items.append((i, j, disp, (cells_a, cells_b, diffs, base, rels)))
        pending[sheet] = row_items

    def lookup_for(sheet: str, base: dict[str, _Cell]):
        def lookup(ref: str) -> float:
            other, fname = ref.split(".", 1)
            link = sch.sheets[sheet].parent.key if sch.sheets[sheet].parent else None
            if link is None or other not in agreed_rows or link not in base:
                return math.nan
            mk = (("t", str(base[link].value)),)
            row = agreed_rows[other].get(mk)
            return _num(row.get(fname)) if row else math.nan
        return lookup

    rows_out: dict[str, list[dict[str, Any]]] = {}
    for sheet in sch.sheets:
        if sheet not in pending:
            continue
        spec = sch.sheets[sheet]
        ta, tb = a.tables.get(sheet), b.tables.get(sheet)
        items = []
        for i, j, disp, detail in pending[sheet]:
            if detail is None:
                form, t, pos, who = (a, ta, i, "A") if j is None else (b, tb, j, "B")
                other = b if who == "A" else a
                hint = _only_hint(sch, sheet, form, other, pos, who)
                conflicts.append(Conflict(
                    0, sheet, disp, None, "only in A" if who == "A" else None, "only in B" if who == "B" else None,
                    t.ref(pos, None) if who == "A" else None, t.ref(pos, None) if who == "B" else None,
                    hint, None, "only_in_a" if who == "A" else "only_in_b"))
                cells = {f: _cell(sch, form, sheet, pos, f) for f in spec.fields}
                items.append({"key": disp, "cells": cells, "only": who, "conflict": len(conflicts) - 1,
                              "extractor": _text_of(cells.get("extractor"))})
                continue
            cells_a, cells_b, diffs, base, rels = detail
            fields_conflict = {}
            for f in diffs:
                ca, cb = cells_a[f], cells_b[f]
                who, why = _suggest(rels, f, base, set(diffs), cells_a, cells_b, lookup_for(sheet, base))
                at_a = (sheet, int(ta.data["_row"].iat[i]), ta.letter(ta.data["_file"].iat[i], f))
                at_b = (sheet, int(tb.data["_row"].iat[j]), tb.letter(tb.data["_file"].iat[j], f))
                for severity, (found_a, found_b) in cell_findings.items():
                    if who is not None:
                        break
                    fa, fb = found_a.get(at_a), found_b.get(at_b)
                    verb = "fails validation" if severity == "error" else "draws a warning"
                    if fa is not None and fb is None and cb.filled:
                        who, why = "B", f"A's {f} = {_show(ca)} {verb} ({fa.rule}); B's {_show(cb)} does not"
                    elif fb is not None and fa is None and ca.filled:
                        who, why = "A", f"B's {f} = {_show(cb)} {verb} ({fb.rule}); A's {_show(ca)} does not"
                conflicts.append(Conflict(
                    0, sheet, disp, f, ca.raw if ca.raw is not None else _write_value(ca, spec.fields[f]),
                    cb.raw if cb.raw is not None else _write_value(cb, spec.fields[f]),
                    ta.ref(i, f), tb.ref(j, f), why, who, "value", None, ca, cb,
                    _write_value(ca, spec.fields[f]), _write_value(cb, spec.fields[f])))
                fields_conflict[f] = len(conflicts) - 1
            ext = "/".join(dict.fromkeys(x for x in (_text_of(cells_a.get("extractor")),
                                                      _text_of(cells_b.get("extractor"))) if x)) or None
            items.append({"key": disp, "cells": base, "only": None, "conflicts": fields_conflict, "extractor": ext})
        rows_out[sheet] = items

    conflicts = [replace(c, id=n) for n, c in enumerate(conflicts, start=1)]
    unmatched: list[dict[str, Any]] = []
    warnings: list[str] = []
    if adjudication is not None:
        entries = _read_adjudication(adjudication, sch)
        conflicts, unmatched, warnings = _adjudicate(sch, conflicts, entries)

    rows = _consensus_rows(sch, rows_out, conflicts)
    agreement = agreement_table(sch, stats, rows_summary)
    return Reconciliation(
        schema=sch, form_a=str(form_a), form_b=str(form_b), conflicts=tuple(conflicts), agreement=agreement,
        findings_a=tuple(a.result.finding_list), findings_b=tuple(b.result.finding_list), rows=rows,
        adjudication=str(adjudication) if adjudication is not None else None, unmatched=tuple(unmatched),
        warnings=tuple(warnings), decided_at=decided_at or _now(), extractors=extractors)


def _text_of(cell: _Cell | None) -> str | None:
    if cell is None or cell.kind == "empty":
        return None
    return str(cell.value) if cell.kind == "text" else _show(cell)


def _first_extractor(schema: ReviewSchema, form: _Form) -> str | None:
    for sheet, spec in schema.sheets.items():
        meta = [f for f, fs in spec.fields.items() if fs.metadata]
        if sheet in form.tables and meta:
            for v in form.tables[sheet].data[meta[0]]:
                if isinstance(v, str) and v:
                    return v
    return None


def _only_hint(schema: ReviewSchema, sheet: str, form: _Form, other: _Form, pos: int, who: str) -> str:
    """Why a row is unmatched, and what the other reviewer has for the same study."""
    spec = schema.sheets[sheet]
    them = "B" if who == "A" else "A"
    disp = form.display[sheet][pos]
    missing = [k for k, v in disp.items() if v is None]
    if missing:
        return f"row has no {', '.join(missing)}, so it cannot be matched with {them}'s rows"
    link = spec.parent.key if spec.parent else spec.key[0]
    rest = [k for k in spec.key if k != link]
    sid = disp.get(link)
    if not rest:
        return f"{them} has no {sheet} row {link}={sid}"
    theirs = [d for d in other.display.get(sheet, []) if d.get(link) == sid]
    if not theirs:
        return f"{them} has no {sheet} row for {link}={sid}"
    shown = ", ".join(key_text({k: d[k] for k in rest}) for d in theirs[:6])
    return f"{them} has no {sheet} row with this key; {them}'s rows for {link}={sid}: {shown}"


def _consensus_rows(schema: ReviewSchema, rows_out: dict[str, list[dict[str, Any]]], conflicts: list[Conflict]
                    ) -> dict[str, tuple[ConsensusRow, ...]]:
    out: dict[str, tuple[ConsensusRow, ...]] = {}
    for sheet, items in rows_out.items():
        spec = schema.sheets[sheet]
        units = _unit_fields(schema, sheet)
        rows = []
        for it in items:
            values: dict[str, Any] = {}
            open_: dict[str, int] = {}
            done: dict[str, int] = {}
            cells: dict[str, _Cell] = dict(it["cells"])
            for f, idx in it.get("conflicts", {}).items():
                c = conflicts[idx]
                if c.resolution is not None:
                    cells[f] = c.resolution.cell
                    done[f] = c.id
                else:
                    cells[f] = EMPTY
                    open_[f] = c.id
            for f, fs in spec.fields.items():
                if fs.metadata:
                    values[f] = it.get("extractor")
                elif f in units and f not in open_ and f not in done:
                    cell = cells.get(f, EMPTY)
                    vocab = schema.vocabulary_of(sheet, f)
                    if cell.filled and vocab is not None and cell.value not in vocab.values:
                        values[f] = cell.value  # an unknown unit: kept as typed, validation reports it
                    else:
                        users = [g for g, gs in spec.fields.items() if gs.unit_field == f]
                        canon = next((t.value for t in vocab.terms if t.factor == 1), "months") if vocab else "months"
                        values[f] = canon if any(cells.get(g, EMPTY).filled for g in users) else None
                else:
                    values[f] = _write_value(cells.get(f, EMPTY), fs)
            row_conflict = None
            row_resolved = False
            dropped = False
            only = it["only"]
            if only is not None:
                c = conflicts[it["conflict"]]
                row_conflict = c.id
                if c.resolution is not None:
                    row_resolved = True
                    dropped = c.resolution.source == "drop"
            rows.append(ConsensusRow(sheet, it["key"], values, open_, done, only, row_conflict, row_resolved,
                                     dropped))
        out[sheet] = tuple(rows)
    return out


def agreement_table(schema: ReviewSchema, stats: dict[tuple[str, str], dict[str, Any]],
                    rows_summary: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """Agreement per compared field and overall.

    Per field: over the rows both reviewers have, counting only rows where at least one of them
    filled the field (``n``); ``agreement`` = agreed / n. Vocabulary fields also get Cohen's
    kappa and Gwet's AC1 over the same rows (an empty cell is a category of its own there).
    Fields are named bare where the name is unique across sheets, else ``sheet.field``.
    """
    names: dict[str, int] = {}
    for (sheet, f) in stats:
        names[f] = names.get(f, 0) + 1
    fields: dict[str, Any] = {}
    total_n = total_agreed = 0
    for (sheet, f), st in stats.items():
        fs = schema.sheets[sheet].fields[f]
        n, agreed = st["n"], st["agreed"]
        total_n += n
        total_agreed += agreed
        entry: dict[str, Any] = {"sheet": sheet, "field": f, "type": fs.type, "n": n, "agreed": agreed,
                                 "agreement": agreed / n if n else None}
        if fs.type == "vocabulary":
            labels, table = _table(st["pairs"]) if st["pairs"] else ([], None)
            if table is not None:
                k = cohen_kappa(table)
                g = gwet_ac1(table)
            else:
                k = cohen_kappa([[0]])
                g = gwet_ac1([[0]])
            entry.update(kappa=k["kappa"], kappa_se=k["se"],
                         kappa_ci=[k["ci_low"], k["ci_high"]] if k["kappa"] is not None else None,
                         ac1=g["ac1"], ac1_se=g["se"],
                         ac1_ci=[g["ci_low"], g["ci_high"]] if g["ci_low"] is not None else None,
                         categories=labels)
        fields[f if names[f] == 1 else f"{sheet}.{f}"] = entry
    return {"overall": total_agreed / total_n if total_n else None, "n": total_n, "agreed": total_agreed,
            "fields": fields, "rows": rows_summary or {},
            "method": {"n": "rows both reviewers have where at least one filled the field",
                       "kappa": "Cohen's kappa, large-sample SE of Fleiss, Cohen & Everitt (1969) as psych::cohen.kappa,"
                                " normal 95% CI clipped to [-1, 1]",
                       "ac1": "Gwet's AC1 (2008), Q = categories observed, SE of Gwet (2008), t(n-1) 95% CI as "
                              "irrCAC"}}


# ---------------------------------------------------------------------------------------------
# The consensus workbook
# ---------------------------------------------------------------------------------------------


def consensus_workbook(rec: Reconciliation):
    """The consensus form: the contract sheets with agreed (and adjudicated) values, and a
    ``conflicts`` sheet for the third reviewer.

    Agreed cells hold the canonical value (vocabulary term, number, ``NR``; medians and CIs in
    months). A cell still in conflict is empty and filled light red with a comment naming both
    values; a row only one reviewer has is kept and filled light yellow until the adjudicator
    keeps (then unmarked) or drops it (then left out); an adjudicated cell is filled light green.
    Text from the forms is written inert.

    Returns
    -------
    openpyxl.Workbook
    """
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill

    from .outputs import inert

    fills = {k: PatternFill("solid", start_color=v, end_color=v) for k, v in
             (("conflict", CONFLICT_FILL), ("only", ONE_REVIEWER_FILL), ("resolved", RESOLVED_FILL))}
    by_id = {c.id: c for c in rec.conflicts}
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    schema = rec.schema
    for sheet, spec in schema.sheets.items():
        ws = wb.create_sheet(sheet)
        header = list(spec.fields)
        ws.append(header)
        for c in ws[1]:
            c.font = Font(bold=True)
        ws.freeze_panes = "A2"
        for row in rec.rows.get(sheet, ()):
            if row.dropped:
                continue
            ws.append([inert(row.values.get(f)) for f in header])
            r = ws.max_row
            if row.only_in and not row.row_resolved:
                for col in range(1, len(header) + 1):
                    ws.cell(r, col).fill = fills["only"]
                c = by_id[row.row_conflict]
                ws.cell(r, 1).comment = Comment(f"conflict {c.id}: row only in {row.only_in}'s form "
                                                f"({c.cell_a or c.cell_b}); keep or drop it", "curate")
            for f, cid in row.conflicts.items():
                c = by_id[cid]
                cell = ws.cell(r, header.index(f) + 1)
                cell.fill = fills["conflict"]
                cell.comment = Comment(f"conflict {cid}: A {_show(c.cell_value_a)} ({c.cell_a}) vs "
                                       f"B {_show(c.cell_value_b)} ({c.cell_b})"
                                       + (f"; suggestion: {c.suggestion}" if c.suggestion else ""), "curate")
            for f, cid in row.resolved.items():
                c = by_id[cid]
                cell = ws.cell(r, header.index(f) + 1)
                cell.fill = fills["resolved"]
                cell.comment = Comment(f"conflict {cid} resolved by {c.resolution.adjudicator or '?'}: "
                                       f"A {_show(c.cell_value_a)}, B {_show(c.cell_value_b)}"
                                       + (f"; {c.resolution.note}" if c.resolution.note else ""), "curate")
    ws = wb.create_sheet("conflicts")
    ws.append(list(CONFLICT_COLUMNS) + ["status"])
    for c in ws[1]:
        c.font = Font(bold=True)
    ws.freeze_panes = "A2"
    for c in rec.conflicts:
        r = c.resolution
        status = "unresolved" if r is None else ("resolved (third value)" if r.source == "other" else "resolved")
        ws.append([c.id, c.sheet, inert(c.key_text), c.field, inert(_cellable(c.value_a)), inert(_cellable(c.value_b)),
                   c.cell_a, c.cell_b, inert(c.suggestion),
                   inert(_cellable(r.value)) if r else None, inert(r.adjudicator) if r else None,
                   inert(r.note) if r else None, status])
        if r is None:
            ws.cell(ws.max_row, CONFLICT_COLUMNS.index("resolved_value") + 1).fill = fills["conflict"]
    for col, width in zip("ABCDEFGHIJKLM", (5, 15, 32, 22, 16, 16, 16, 16, 60, 16, 12, 40, 20)):
        ws.column_dimensions[col].width = width
    about = wb.create_sheet("about")
    for line in (
            ["Consensus of two reviewers' extraction forms (curate reconcile)"],
            ["reviewer A", inert(rec.form_a)], ["reviewer B", inert(rec.form_b)],
            ["conflicts", len(rec.conflicts)], ["unresolved", len(rec.unresolved)],
            [],
            ["light red", "cell in conflict: empty until the adjudicator fills resolved_value on the conflicts sheet"],
            ["light yellow", "row only one reviewer has: resolved_value 'keep' or 'drop'"],
            ["light green", "value decided by the adjudicator"],
            ["values", "canonical: vocabulary terms, numbers, NR; medians and CIs in months"]):
        about.append(line)
    return wb


def _cellable(v: Any) -> Any:
    """A value an Excel cell can hold."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (_dt.date, _dt.datetime)):
        return v
    return str(_plain(v))


def workbook_bytes(wb: Any) -> bytes:
    import io

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Terminal summary
# ---------------------------------------------------------------------------------------------


def print_reconciliation(rec: Reconciliation, *, first: int = 40) -> None:
    """A rich summary: the conflicts, agreement per field, adjudication warnings."""
    from rich.table import Table

    from .console import console

    c = console()
    if rec.conflicts:
        t = Table(title=f"Conflicts ({len(rec.unresolved)} of {len(rec.conflicts)} unresolved)", show_edge=False,
                  header_style="bold")
        for col in ("id", "sheet", "key", "field", "A", "B", "suggestion / resolution"):
            t.add_column(col, overflow="fold")
        for x in rec.conflicts[:first]:
            if x.resolution is not None:
                r = x.resolution
                end = f"[green]{r.source}: {_plain(r.value)}[/] ({r.adjudicator or '?'})"
            else:
                end = x.suggestion or ""
            t.add_row(str(x.id), x.sheet, x.key_text, x.field or "(row)", _short(x.value_a), _short(x.value_b),
                      _escape(end) if x.resolution is None else end)
        c.print(t)
        if len(rec.conflicts) > first:
            c.print(f"... and {len(rec.conflicts) - first} more (see --json or the consensus conflicts sheet)")
    ag = rec.agreement
    t = Table(title="Agreement per field", show_edge=False, header_style="bold")
    for col in ("field", "n", "agreement", "kappa (95% CI)", "AC1 (95% CI)"):
        t.add_column(col, justify="left" if col == "field" else "right")
    for name, e in ag["fields"].items():
        if not e["n"]:
            continue
        kap = _ci(e.get("kappa"), e.get("kappa_ci")) if e["type"] == "vocabulary" else ""
        ac1 = _ci(e.get("ac1"), e.get("ac1_ci")) if e["type"] == "vocabulary" else ""
        style = "" if e["agreement"] == 1 else "[yellow]"
        t.add_row(name, str(e["n"]), f"{style}{100 * e['agreement']:.1f}%", kap, ac1)
    c.print(t)
    for w in rec.warnings:
        c.print(f"[yellow]warning:[/] {_escape(w)}")
    overall = ag["overall"]
    c.print(f"overall agreement {'n/a' if overall is None else f'{100 * overall:.1f}%'} over {ag['n']} cells; "
            f"{len(rec.conflicts)} conflict(s), {len(rec.resolved)} resolved, "
            f"[{'bold red' if rec.unresolved else 'green'}]{len(rec.unresolved)} unresolved[/]; "
            f"findings A: {_count_severities(rec.findings_a)['error']} error(s), "
            f"B: {_count_severities(rec.findings_b)['error']} error(s)")


def _ci(v: Any, ci: Any) -> str:
    if v is None:
        return "n/a"
    if not ci or ci[0] is None:
        return f"{v:.2f}"
    return f"{v:.2f} ({ci[0]:.2f} to {ci[1]:.2f})"


def _short(v: Any, n: int = 24) -> str:
    s = "" if v is None else str(_plain(v))
    s = _escape(s)
    return s if len(s) <= n else s[: n - 1] + "…"


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)

"""The rules: every check, registered in one place with a stable code and a severity.

Two kinds of rule live here:

* **field rules** apply to every field of a schema from its declaration (``required``, ``min``,
  ``pattern``, ``vocabulary`` ...). Column-level ones run as a pandera schema compiled from the
  YAML (:func:`column_schema`), whose failure-cases table becomes findings.
* **checks** are cross-field and cross-sheet rules that a schema names under ``checks:`` with
  the fields they work on (``rule: response-sum-mismatch, parts: [cr, pr, sd, pd] ...``). Each
  is a small vectorised function registered with :func:`check`.

The registry (:data:`REGISTRY`) is the single list of rule codes: ``curate rules`` prints it,
``docs/rules.md`` documents each code and the tests check that every code has both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .cells import format_number as fmt
from .findings import Finding

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
    scope : {"structure", "cell", "field", "check"}
        ``structure``: reading the workbook; ``cell``: a cell that cannot be read as its type;
        ``field``: from a field's declaration; ``check``: named in a schema's ``checks:``.
    params : tuple of Param
        For checks: what the schema entry must give.
    func : callable or None
        For checks: ``func(ctx, sheet, severity, **params) -> list[Finding]``.
    """

    code: str
    severity: str
    summary: str
    scope: str
    params: tuple[Param, ...] = ()
    func: Callable[..., list[Finding]] | None = None
    reported_by: str = ""

    def validate_params(self, schema: Any, sheet: str, params: dict[str, Any], where: str) -> None:
        """Check a schema entry's parameters (names, kinds, fields that exist); raise the first problem."""
        problems = self.param_problems(schema, sheet, params)
        if problems:
            raise ValueError(f"{where}: {problems[0][1]}")

    def param_problems(self, schema: Any, sheet: str, params: dict[str, Any]) -> list[tuple[str | None, str]]:
        """Every problem of a schema entry's parameters: ``[(parameter or None, message), ...]``."""
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


def declare(code: str, severity: str, summary: str, scope: str) -> Rule:
    """Register a structure, cell or field rule (implemented by the reader, normaliser or pandera)."""
    return _register(Rule(code, severity, summary, scope))


def check(code: str, severity: str, summary: str, params: Iterable[Param]):
    """Register a cross-field check function under ``code``."""

    def deco(func: Callable[..., list[Finding]]):
        _register(Rule(code, severity, summary, "check", tuple(params), func))
        return func

    return deco


def companion(code: str, severity: str, summary: str, reported_by: str) -> Rule:
    """Register a code that the check ``reported_by`` reports besides its own (a second severity:
    the warning beside an error, an info note of what the check did). A schema names the check."""
    return _register(Rule(code, severity, summary, "check", (), None, reported_by))


# structure: reading the workbook (curation.reading)
declare("missing-sheet", "warning", "A contract sheet is not in the workbook.", "structure")
declare("empty-sheet", "info", "A contract sheet has no header and no data.", "structure")
declare("missing-column", "error", "A field has no column (error for a required field, info otherwise).", "structure")
declare("duplicate-column", "warning", "Two headers match the same field; the second is ignored.", "structure")
declare("unknown-column", "info", "A header matches no field; the column is kept but not checked.", "structure")
declare("merged-cell", "warning", "Merged cells: the top-left value is read into every row of the area.", "structure")
declare("formula-without-value", "error", "A formula whose value was never calculated and saved.", "structure")
# layout: reading a workbook the team laid out its own way (curation.layout)
declare("inferred-layout", "info", "What was inferred of a workbook not in the template's layout: the sheet's contract "
        "sheets, its header rows, and each column read by a synonym, as a composite or with a unit.", "structure")
declare("unmatched-sheet", "info", "A sheet whose headers match no contract sheet; skipped.", "structure")
declare("non-data-row", "info", "A row below the header that is not data (a Total/Sum/Mean/Pooled row, a note or "
        "source line, a repeated header, a blank separator); never read as a record.", "structure")
declare("hidden-row", "warning", "A hidden row that is read as data.", "structure")
declare("hidden-column", "warning", "A hidden column that is read, or one not read because a visible column holds the "
        "same field.", "structure")
declare("helper-column", "warning", "A column computed by formulas (a reviewer's own calculation), not typed from the "
        "paper.", "structure")
declare("unplaced-column", "error", "A header the layout could not place while a field the review needs has no "
        "column: names the header and the field it is close to.", "structure")
declare("study-field-conflict", "warning", "In a sheet with one row per cohort, a cohort row whose study-level value "
        "differs from the study's own row (not read).", "structure")
# cells: a value that cannot be read as its type (curation.normalise)
declare("invalid-number", "error", "A number field holds something that is not one number.", "cell")
declare("not-an-integer", "error", "A count holds a fraction.", "cell")
declare("invalid-year", "error", "A year or date field holds something that is not a year.", "cell")
declare("combined-median-ci", "info", "A median cell holds 'median (low-high)'; it is split into median and CI.", "cell")
declare("unknown-unit", "error", "A number with a unit (in the cell or its header) that the schema cannot convert.", "cell")
declare("unit-conflict", "error", "A cell states a unit that contradicts the row's unit column.", "cell")
# fields: from each field's declaration (pandera, compiled from the schema)
declare("missing-required", "error", "A required field is empty.", "field")
declare("out-of-range", "error", "A value outside the field's declared min/max.", "field")
declare("implausible-value", "warning", "A value outside the field's plausible range (warn_min/warn_max).", "field")
declare("invalid-format", "error", "Text that does not match the field's pattern (study_id, DOI ...).", "field")
declare("unknown-term", "error", "A vocabulary value that matches no term or alias.", "field")
declare("rejected-term", "error", "A vocabulary value the schema rejects with a reason (G4, 'high grade').", "field")
declare("ineligible-term", "error", "A term that makes the study ineligible (a term the vocabulary marks "
        "eligible: false, or text outside its eligible_pattern).", "field")
declare("unspecific-term", "warning", "An accepted but unspecific term (one the vocabulary gives a warning).", "field")
declare("duplicate-key", "error", "Two rows with the same row key (study_id, or study_id + cohort ...).", "field")
declare("unknown-study", "error", "A row whose study_id is not on the studies sheet.", "field")
declare("study-excluded", "error", "A row excluded because its study's row on the studies sheet has an error.", "field")
# sources: each figure checked against its article (curation.sources, its own list of codes)
from .sources.codes import SOURCE_RULES as _SOURCE_RULES  # noqa: E402 - data only, no reader imported

for _code, _severity, _summary, _scope in _SOURCE_RULES:
    declare(_code, _severity, _summary, _scope)


# ---------------------------------------------------------------------------------------------
# Context: typed tables, lookups across sheets, and finding construction
# ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a check sees: the schema and the typed tables (see :mod:`curation.normalise`)."""

    schema: Any
    tables: dict[str, Any]
    _parent_index: dict = field(default_factory=dict)
    _decimals: dict = field(default_factory=dict)

    def table(self, sheet: str):
        return self.tables[sheet]

    def _parent_positions(self, sheet: str, other: str):
        """For each row of ``sheet``, the position of its study's row in ``other`` (-1 if none)."""
        import numpy as np
        import pandas as pd

        key = (sheet, other)
        if key not in self._parent_index:
            child = self.tables[sheet].data
            parent = self.tables[other].data
            link = self.schema.sheets[sheet].parent.key if self.schema.sheets[sheet].parent else "study_id"
            pkey = self.schema.sheets[other].key[0]
            first = pd.Series(np.arange(len(parent)), index=parent[pkey].to_numpy())
            first = first[~first.index.duplicated(keep="first")]
            pos = child[link].map(first).to_numpy(dtype=float, na_value=np.nan)
            self._parent_index[key] = np.where(np.isnan(pos), -1, pos).astype(int)
        return self._parent_index[key]

    def values(self, sheet: str, ref: str):
        """Values of ``field`` or ``sheet.field`` aligned with the rows of ``sheet``."""
        import numpy as np

        if "." in ref:
            other, fname = ref.split(".", 1)
            pos = self._parent_positions(sheet, other)
            src = self.tables[other].data[fname].to_numpy()
            out = src[np.clip(pos, 0, max(len(src) - 1, 0))] if len(src) else np.full(len(pos), np.nan)
            if out.dtype.kind == "f":
                out = np.where(pos >= 0, out, np.nan)
            else:
                out = np.where(pos >= 0, out, None)
            return out
        return self.tables[sheet].data[ref].to_numpy()

    def num(self, sheet: str, ref: str):
        import numpy as np

        return np.asarray(self.values(sheet, ref), dtype=float)

    def decimals(self, sheet: str, fname: str):
        """Decimal places reported in each cell of ``fname`` (NaN where unknown): ``0.70`` typed as
        text -> 2; a number cell keeps no trailing zeros, so ``0.70`` typed as a number -> 1."""
        import numpy as np

        t = self.tables[sheet]
        if fname in t.decimals:
            return np.asarray(t.decimals[fname], dtype=float)
        key = (sheet, fname)
        if key not in self._decimals:
            from .cells import column_decimals

            self._decimals[key] = column_decimals(t.raw[fname].to_numpy(), self.num(sheet, fname))
        return self._decimals[key]

    def half_unit(self, sheet: str, fname: str):
        """Half a unit of the last reported digit of each cell (0 where the digits are unknown)."""
        import numpy as np

        d = self.decimals(sheet, fname)
        return np.where(np.isnan(d), 0.0, 0.5 * 10.0 ** -np.where(np.isnan(d), 0, d))

    def half_units(self, sheet: str, *fnames: str):
        """:meth:`half_unit` of an effect and its CI bounds, read together: a paper reports them with
        the same digits, and a number cell keeps no trailing zeros (0.70 typed as a number reads
        0.7), so a number cell is taken to as many digits as the row's most precise of these cells."""
        import numpy as np

        decs = [self.decimals(sheet, f) for f in fnames]
        raw = [self.tables[sheet].raw[f].to_numpy() for f in fnames]
        row_max = np.nanmax(np.vstack(decs), axis=0) if len(decs) and len(decs[0]) else np.zeros(0)
        out = []
        for d, r in zip(decs, raw):
            typed_num = np.fromiter((isinstance(v, (int, float)) and not isinstance(v, bool) for v in r), bool, len(r))
            d = np.where(typed_num & ~np.isnan(row_max), np.fmax(d, row_max), d)
            out.append(np.where(np.isnan(d), 0.0, 0.5 * 10.0 ** -np.where(np.isnan(d), 0, d)))
        return out

    def unit(self, sheet: str, ref: str, i: int) -> str:
        """The unit of a field's value as a reviewer reads it (`` months``, `` mmHg``, ``%``; ``""`` for none).

        A field with a ``unit_field`` is held in its vocabulary's unit of factor 1 after
        normalisation (a row in weeks is converted); a vocabulary without factors leaves the
        row's own unit. Otherwise the field's ``unit:``, unless that names another field.
        """
        other, fname = (ref.split(".", 1) if "." in ref else (sheet, ref))
        fields = self.schema.sheets[other].fields
        fs = fields.get(fname)
        if fs is None:
            return ""
        if fs.unit_field:
            vocab = self.schema.vocabulary_of(other, fs.unit_field)
            base = [t.value for t in vocab.terms if t.factor == 1] if vocab is not None else []
            row_unit = None
            if other in self.tables and fs.unit_field in self.tables[other].data:
                j = i if other == sheet else int(self._parent_positions(sheet, other)[i])
                if j >= 0:
                    row_unit = self.tables[other].data[fs.unit_field].iat[j]
            factor = vocab.by_value[row_unit].factor if vocab is not None and row_unit in vocab.by_value else None
            text = base[0] if base and (factor is not None or row_unit is None) else row_unit
            if not isinstance(text, str) or not text:
                text = fields[fs.unit_field].default or ""
            return f" {text}" if text else ""
        if fs.unit and fs.unit not in fields:
            return fs.unit if fs.unit == "%" else f" {fs.unit}"
        return ""

    def nr(self, sheet: str, fname: str):
        import numpy as np

        data = self.tables[sheet].data
        col = fname + "__nr"
        return data[col].to_numpy(dtype=bool) if col in data else np.zeros(len(data), bool)

    def cell(self, sheet: str, ref: str, i: int) -> str:
        """Cell reference of ``ref`` for row ``i`` of ``sheet`` (following ``sheet.field``)."""
        if "." in ref:
            other, fname = ref.split(".", 1)
            pos = int(self._parent_positions(sheet, other)[i])
            if pos < 0:
                return f"{other}!?"
            return self.tables[other].ref(pos, fname)
        return self.tables[sheet].ref(i, ref)

    def finding(self, sheet: str, i: int, fname: str | None, rule: str, severity: str, message: str,
                value: Any = None) -> Finding:
        t = self.tables[sheet]
        file = t.files[i]
        return Finding(file, t.title(file), t.rows[i], t.letter(file, fname) if fname else None, fname,
                       t.study_ids[i], rule, severity, message, _scalar(value), sheet)


def _scalar(value: Any) -> Any:
    """numpy scalars -> Python values (findings hold plain values)."""
    item = getattr(value, "item", None)
    return item() if item is not None and not isinstance(value, (str, bytes)) else value


def _label(ref: str) -> str:
    return ref.split(".", 1)[-1]


def _abbr(name: str) -> str:
    """A short count field as its abbreviation (``cr`` -> ``CR``); a longer name as it is."""
    return name.upper() if len(name) <= 3 else name


def _sum_of(names: Iterable[str]) -> str:
    return "+".join(_abbr(n) for n in names)


def _present(*arrays):
    import numpy as np

    mask = None
    for a in arrays:
        m = ~np.isnan(a)
        mask = m if mask is None else mask & m
    return mask


# ---------------------------------------------------------------------------------------------
# Count consistency
# ---------------------------------------------------------------------------------------------


def rate_matches(rate, decimals, events, total):
    """Does a reported percentage equal 100 x events / total within the rounding of its digits?

    Exact integer arithmetic: with ``d`` decimals reported, ``R = round(rate x 10^d)`` matches when
    ``|2 R total - 2 x 100 x events x 10^d| <= total``, i.e. the true value lies within half a unit
    of the last digit, half-way values included (23.75 reported as 23.7 or 23.8 both match).
    """
    import numpy as np

    d = np.where(np.isnan(decimals), 1, np.clip(decimals, 0, 6))
    scale = 10.0 ** d
    r = np.round(rate * scale)
    lhs = np.abs(2 * r * total - 200 * events * scale)
    return lhs <= total + 1e-9 * np.maximum(lhs, 1)


_SUM = [Param("parts", "fields", types=NUMBER, help="the response counts, e.g. [cr, pr, sd, pd]"),
        Param("not_evaluable", "field", types=NUMBER, required=False, help="patients without an assessable response, e.g. ne"),
        Param("total", "field", types=NUMBER, help="the denominator, e.g. n_evaluable")]


def _response_sums(ctx: Context, sheet: str, parts, not_evaluable, total):
    import numpy as np

    arrs = [ctx.num(sheet, p) for p in parts]
    tot = ctx.num(sheet, total)
    ne = ctx.num(sheet, not_evaluable) if not_evaluable else np.full(len(tot), np.nan)
    present = _present(tot, *arrs)
    s = np.sum(arrs, axis=0) if arrs else np.zeros(len(tot))
    with_ne = s + np.where(np.isnan(ne), 0, ne)
    return arrs, tot, ne, present, s, with_ne


def _likely_wrong(ctx: Context, sheet: str, i: int, parts, arrs, total, tot_i, with_ne_i,
                  not_evaluable=None, ne_i=float("nan")) -> tuple[str, str]:
    """The cell most likely wrong in a count mismatch, using the reported percentages as witnesses.

    A count is the likely culprit when replacing it by the value that makes the sum right also
    makes every reported percentage that involves it agree; the denominator is, when the
    percentages agree with the counts over their own sum. Otherwise the denominator is reported.
    """
    import numpy as np

    witnesses = []  # (rate field, part indices included)
    for chk in ctx.schema.checks.get(sheet, ()):
        if chk.rule == "percentage-mismatch":
            p = chk.params
            if p.get("total") == total and all(e in parts for e in p.get("events", [])):
                witnesses.append((p["rate"], [parts.index(e) for e in p["events"]]))
    data = ctx.table(sheet).data
    dec = ctx.table(sheet).decimals
    nan = np.full(len(data), np.nan)
    usable = [(rf, idx) for rf, idx in witnesses if rf in data and not np.isnan(data[rf].iat[i])]
    if not usable:
        return total, ""

    def agrees(counts, denominator) -> bool:
        return all(rate_matches(np.array([data[rf].iat[i]]), np.array([dec.get(rf, nan)[i]]),
                                np.array([sum(counts[k] for k in idx)]), np.array([denominator]))[0]
                   for rf, idx in usable)

    vals = [a[i] for a in arrs]
    candidates = []
    for j, name in enumerate(parts):
        new = tot_i - (with_ne_i - vals[j])
        trial = list(vals)
        trial[j] = new
        if new >= 0 and agrees(trial, tot_i):
            candidates.append((name, new))
    if not_evaluable and not np.isnan(ne_i):
        new = tot_i - (with_ne_i - ne_i)
        if new >= 0 and agrees(vals, tot_i):
            candidates.append((not_evaluable, new))
    witnessed = ", ".join(f"{rf} {fmt(data[rf].iat[i])}%" for rf, _ in usable)
    unit = ctx.unit(sheet, total, i) or " participants"
    if len(candidates) == 1:
        name, new = candidates[0]
        return name, f"; {name} = {fmt(new)} would make the counts add up and agree with {witnessed}"
    if candidates:
        either = " or ".join(f"{n} = {fmt(v)}" for n, v in candidates)
        return total, f"; {either} would make the counts add up and agree with {witnessed}"
    if agrees(vals, with_ne_i):
        return total, (f"; the reported {witnessed} agree with the counts over {fmt(with_ne_i)}{unit}, "
                       f"so {total} looks wrong")
    return total, ""


@check("response-sum-mismatch", "error",
       "CR+PR+SD+PD(+NE) does not add up to n_evaluable (with NE given: any difference; without: a sum above it).",
       _SUM)
def response_sum_mismatch(ctx: Context, sheet: str, severity: str, parts, total, not_evaluable=None):
    import numpy as np

    arrs, tot, ne, present, s, with_ne = _response_sums(ctx, sheet, parts, not_evaluable, total)
    has_ne = ~np.isnan(ne)
    bad = present & ((has_ne & (with_ne != tot)) | (~has_ne & (s > tot)))
    out = []
    names = _sum_of(parts) + (f"+{_abbr(not_evaluable)}" if not_evaluable else "")
    for i in np.flatnonzero(bad):
        cells = ", ".join(ctx.cell(sheet, p, i) for p in [*parts, *([not_evaluable] if has_ne[i] else [])])
        where, hint = _likely_wrong(ctx, sheet, i, list(parts), arrs, total, tot[i], with_ne[i],
                                    not_evaluable if has_ne[i] else None, ne[i])
        label = names if has_ne[i] else _sum_of(parts)
        msg = (f"{label} = {fmt(with_ne[i])} but {total} = {fmt(tot[i])} ({ctx.cell(sheet, total, i)}; "
               f"counts in {cells}){hint}")
        out.append(ctx.finding(sheet, i, where, "response-sum-mismatch", severity, msg,
                               ctx.values(sheet, where)[i]))
    return out


@check("response-sum-short", "warning",
       "Without NE, CR+PR+SD+PD is below n_evaluable: patients unaccounted for.", _SUM)
def response_sum_short(ctx: Context, sheet: str, severity: str, parts, total, not_evaluable=None):
    import numpy as np

    arrs, tot, ne, present, s, with_ne = _response_sums(ctx, sheet, parts, not_evaluable, total)
    bad = present & np.isnan(ne) & (s < tot)
    out = []
    for i in np.flatnonzero(bad):
        cells = ", ".join(ctx.cell(sheet, p, i) for p in parts)
        where, hint = _likely_wrong(ctx, sheet, i, list(parts), arrs, total, tot[i], with_ne[i])
        msg = (f"{_sum_of(parts)} = {fmt(s[i])} is {fmt(tot[i] - s[i])} short of {total} = "
               f"{fmt(tot[i])} ({ctx.cell(sheet, total, i)}; counts in {cells}): "
               f"{fmt(tot[i] - s[i])}{ctx.unit(sheet, total, i) or ' participants'} unaccounted for; enter them as "
               f"{not_evaluable or 'not evaluable'} if the paper says so{hint}")
        out.append(ctx.finding(sheet, i, where, "response-sum-short", severity, msg, ctx.values(sheet, where)[i]))
    return out


_RATE = [Param("rate", "field", types=NUMBER, help="the reported percentage, e.g. orr_pct"),
         Param("events", "fields", types=NUMBER, help="the counts it is made of, e.g. [cr, pr]"),
         Param("total", "field", types=NUMBER, help="its denominator, e.g. n_evaluable"),
         Param("itt_total", "ref", types=NUMBER, required=False, help="the intention-to-treat denominator, e.g. studies.n_enrolled")]


def _rates(ctx: Context, sheet: str, rate, events, total, itt_total):
    import numpy as np

    r = ctx.num(sheet, rate)
    dec = ctx.table(sheet).decimals.get(rate, np.full(len(r), np.nan))
    ev_arrs = [ctx.num(sheet, e) for e in events]
    ev = np.sum(ev_arrs, axis=0)
    tot = ctx.num(sheet, total)
    present = _present(r, tot, *ev_arrs) & (tot > 0)
    ok = np.zeros(len(r), bool)
    ok[present] = rate_matches(r[present], dec[present], ev[present], tot[present])
    itt_ok = np.zeros(len(r), bool)
    if itt_total:
        itt = ctx.num(sheet, itt_total)
        m = present & ~np.isnan(itt) & (itt > 0)
        itt_ok[m] = rate_matches(r[m], dec[m], ev[m], itt[m])
    return r, ev, tot, present, ok, itt_ok


@check("percentage-mismatch", "error",
       "A reported percentage (ORR, DCR ...) that no rounding of 100 x events / total gives.", _RATE)
def percentage_mismatch(ctx: Context, sheet: str, severity: str, rate, events, total, itt_total=None):
    import numpy as np

    r, ev, tot, present, ok, itt_ok = _rates(ctx, sheet, rate, events, total, itt_total)
    out = []
    for i in np.flatnonzero(present & ~ok & ~itt_ok):
        cells = ", ".join(ctx.cell(sheet, e, i) for e in events)
        msg = (f"{rate} = {fmt(r[i])}% ({ctx.cell(sheet, rate, i)}) but {_sum_of(events)} / "
               f"{total} = {fmt(ev[i])}/{fmt(tot[i])} = {100 * ev[i] / tot[i]:.2f}% ({cells}; "
               f"{ctx.cell(sheet, total, i)})")
        out.append(ctx.finding(sheet, i, rate, "percentage-mismatch", severity, msg, ctx.table(sheet).raw[rate].iat[i]))
    return out


@check("percentage-itt-denominator", "warning",
       "A reported percentage that matches the intention-to-treat denominator (itt_total, e.g. n_enrolled), not "
       "its total.", _RATE)
def percentage_itt_denominator(ctx: Context, sheet: str, severity: str, rate, events, total, itt_total=None):
    import numpy as np

    if not itt_total:
        return []
    r, ev, tot, present, ok, itt_ok = _rates(ctx, sheet, rate, events, total, itt_total)
    itt = ctx.num(sheet, itt_total)
    out = []
    for i in np.flatnonzero(present & ~ok & itt_ok):
        msg = (f"{rate} = {fmt(r[i])}% ({ctx.cell(sheet, rate, i)}) is {fmt(ev[i])}/{fmt(itt[i])} over "
               f"{_label(itt_total)} ({ctx.cell(sheet, itt_total, i)}), not over {total} = {fmt(tot[i])} "
               f"({ctx.cell(sheet, total, i)}): an intention-to-treat denominator; pooling uses the counts")
        out.append(ctx.finding(sheet, i, rate, "percentage-itt-denominator", severity, msg,
                               ctx.table(sheet).raw[rate].iat[i]))
    return out


@check("percentage-impossible", "error",
       "A reported percentage that no whole number out of its total gives (when the counts are not "
       "all given; with counts, percentage-mismatch applies).", _RATE)
def percentage_impossible(ctx: Context, sheet: str, severity: str, rate, events, total, itt_total=None):
    import numpy as np

    r = ctx.num(sheet, rate)
    dec = ctx.table(sheet).decimals.get(rate, np.full(len(r), np.nan))
    counts_missing = np.any([np.isnan(ctx.num(sheet, e)) for e in events], axis=0)
    tot = ctx.num(sheet, total)

    def possible(denominator):
        ok = np.zeros(len(r), bool)
        m = ~np.isnan(r) & ~np.isnan(denominator) & (denominator > 0) & (r >= 0) & (r <= 100)
        k = np.floor(r[m] * denominator[m] / 100 + 1e-9)
        ok[m] = (rate_matches(r[m], dec[m], k, denominator[m])
                 | rate_matches(r[m], dec[m], np.minimum(k + 1, denominator[m]), denominator[m]))
        return ok, m

    ok, checked = possible(tot)
    ok_itt = possible(ctx.num(sheet, itt_total))[0] if itt_total else np.zeros(len(r), bool)
    out = []
    for i in np.flatnonzero(counts_missing & checked & ~ok & ~ok_itt):
        k = int(np.floor(r[i] * tot[i] / 100 + 1e-9))
        near = ", ".join(f"{x}/{fmt(tot[i])} = {100 * x / tot[i]:.{int(dec[i]) if dec[i] == dec[i] else 1}f}%"
                         for x in (k, k + 1) if 0 <= x <= tot[i])
        msg = (f"{rate} = {fmt(r[i])}% ({ctx.cell(sheet, rate, i)}) is no whole number of"
               f"{ctx.unit(sheet, total, i) or ' participants'} out of "
               f"{total} = {fmt(tot[i])} ({ctx.cell(sheet, total, i)}): {near}; check the percentage and the "
               "denominator in the paper")
        out.append(ctx.finding(sheet, i, rate, "percentage-impossible", severity, msg,
                               ctx.table(sheet).raw[rate].iat[i]))
    return out


@check("reported-count-mismatch", "error",
       "A reported count (the n of an 'ORR, n (%)' cell) that differs from the sum of the counts it is made of "
       "(CR+PR).",
       [Param("count", "field", types=NUMBER, help="the reported count, e.g. orr_n"),
        Param("parts", "fields", types=NUMBER, help="the counts it is the sum of, e.g. [cr, pr]")])
def reported_count_mismatch(ctx: Context, sheet: str, severity: str, count, parts):
    import numpy as np

    n = ctx.num(sheet, count)
    arrs = [ctx.num(sheet, p) for p in parts]
    total = np.sum(arrs, axis=0) if arrs else np.zeros(len(n))
    out = []
    for i in np.flatnonzero(_present(n, *arrs) & (n != total)):
        cells = ", ".join(ctx.cell(sheet, p, i) for p in parts)
        msg = (f"{count} = {fmt(n[i])} ({ctx.cell(sheet, count, i)}) but {'+'.join(p.upper() for p in parts)} = "
               f"{' + '.join(fmt(a[i]) for a in arrs)} = {fmt(total[i])} ({cells}); one of them was typed wrong")
        out.append(ctx.finding(sheet, i, count, "reported-count-mismatch", severity, msg, n[i]))
    return out


def _described(ctx: Context, sheet: str, ref: str) -> str:
    """``field (its description)``: the schema's own words for a field, when it has any."""
    other, fname = (ref.split(".", 1) if "." in ref else (sheet, ref))
    fs = ctx.schema.sheets[other].fields.get(fname)
    desc = (fs.description or "").strip() if fs is not None else ""
    if desc and not desc[:2].isupper():  # "Disease control rate" reads "disease control rate"; "ORR" stays
        desc = desc[0].lower() + desc[1:]
    return f"{fname} ({desc})" if desc else fname


def _value_unit(ctx: Context, sheet: str, ref: str, i: int) -> str:
    """The unit shown after a value: the field's own, ``%`` for a percentage field without one."""
    unit = ctx.unit(sheet, ref, i)
    other, fname = (ref.split(".", 1) if "." in ref else (sheet, ref))
    fs = ctx.schema.sheets[other].fields.get(fname)
    return unit or ("%" if fs is not None and fs.type == "percentage" else "")


@check("dcr-below-orr", "error",
       "A rate below a rate it includes (disease control below objective response, ORR below CR ...): the "
       "first field counts every case the second counts.",
       [Param("dcr", "field", types=NUMBER, help="the including rate, e.g. dcr_pct (or orr_pct)"),
        Param("orr", "field", types=NUMBER, help="the included rate, e.g. orr_pct (or cr_pct)")])
def dcr_below_orr(ctx: Context, sheet: str, severity: str, dcr, orr):
    import numpy as np

    d, o = ctx.num(sheet, dcr), ctx.num(sheet, orr)
    out = []
    for i in np.flatnonzero(_present(d, o) & (d < o)):
        msg = (f"{dcr} = {fmt(d[i])}{_value_unit(ctx, sheet, dcr, i)} ({ctx.cell(sheet, dcr, i)}) is below {orr} = "
               f"{fmt(o[i])}{_value_unit(ctx, sheet, orr, i)} ({ctx.cell(sheet, orr, i)}); {_described(ctx, sheet, dcr)} "
               f"includes every case counted in {_described(ctx, sheet, orr)}, so it cannot be lower")
        out.append(ctx.finding(sheet, i, dcr, "dcr-below-orr", severity, msg, d[i]))
    return out


@check("evaluable-exceeds-enrolled", "error", "A count above its limit: more evaluable than the study enrolled.",
       [Param("field", "field", types=NUMBER, help="e.g. n_evaluable"),
        Param("limit", "ref", types=NUMBER, help="e.g. studies.n_enrolled")])
def evaluable_exceeds_enrolled(ctx: Context, sheet: str, severity: str, field, limit):
    import numpy as np

    v, lim = ctx.num(sheet, field), ctx.num(sheet, limit)
    out = []
    for i in np.flatnonzero(_present(v, lim) & (v > lim)):
        msg = (f"{field} = {fmt(v[i])} ({ctx.cell(sheet, field, i)}) exceeds {_label(limit)} = {fmt(lim[i])} "
               f"({ctx.cell(sheet, limit, i)})")
        out.append(ctx.finding(sheet, i, field, "evaluable-exceeds-enrolled", severity, msg, v[i]))
    return out


@check("adverse-event-counts-inconsistent", "error",
       "Adverse-event counts out of order: grade3plus_n <= any_grade_n <= n_safety <= n_enrolled must hold.",
       [Param("chain", "refs", types=NUMBER, help="fields that must not decrease, e.g. [grade3plus_n, any_grade_n, n_safety, "
                                    "studies.n_enrolled]")])
def adverse_event_counts(ctx: Context, sheet: str, severity: str, chain):
    import numpy as np

    arrs = [ctx.num(sheet, r) for r in chain]
    out = []
    reported = np.zeros(len(arrs[0]) if arrs else 0, bool)
    # each count against the next one given in the chain (an empty any_grade_n does not hide
    # grade3plus_n > n_safety)
    pairs = []
    for i in range(len(chain)):
        between_missing = np.ones(len(arrs[0]) if arrs else 0, bool)
        for j in range(i + 1, len(chain)):
            pairs.append((chain[i], chain[j], arrs[i], np.where(between_missing, arrs[j], np.nan)))
            between_missing = between_missing & np.isnan(arrs[j])
    for a_ref, b_ref, a, b in pairs:
        bad = _present(a, b) & (a > b) & ~reported
        for i in np.flatnonzero(bad):
            msg = (f"{_label(a_ref)} = {fmt(a[i])} ({ctx.cell(sheet, a_ref, i)}) exceeds {_label(b_ref)} = "
                   f"{fmt(b[i])} ({ctx.cell(sheet, b_ref, i)}); "
                   + " <= ".join(_label(r) for r in chain) + " must hold")
            fname = a_ref if "." not in a_ref else (b_ref if "." not in b_ref else None)
            out.append(ctx.finding(sheet, i, fname, "adverse-event-counts-inconsistent", severity, msg, a[i]))
        reported |= bad
    return out


# ---------------------------------------------------------------------------------------------
# Medians and confidence intervals
# ---------------------------------------------------------------------------------------------

_MEDIAN = [Param("median", "field", types=NUMBER, help="e.g. pfs_median"), Param("low", "field", types=NUMBER, help="e.g. pfs_ci_low"),
           Param("high", "field", types=NUMBER, help="e.g. pfs_ci_high")]


@check("median-outside-ci", "error",
       "A median outside its own confidence interval, or a CI whose lower bound is not below its upper bound.",
       _MEDIAN)
def median_outside_ci(ctx: Context, sheet: str, severity: str, median, low, high):
    import numpy as np

    m, lo, hi = ctx.num(sheet, median), ctx.num(sheet, low), ctx.num(sheet, high)
    hi_nr = ctx.nr(sheet, high)
    out = []
    cells = lambda i: f"{ctx.cell(sheet, median, i)}, {ctx.cell(sheet, low, i)}, {ctx.cell(sheet, high, i)}"
    reversed_ = _present(lo, hi) & (lo >= hi)
    for i in np.flatnonzero(reversed_):
        msg = (f"95% CI of {median} is {fmt(lo[i])}-{fmt(hi[i])}: the lower bound {low} ({ctx.cell(sheet, low, i)}) "
               f"is not below the upper bound {high} ({ctx.cell(sheet, high, i)}); median {fmt(m[i])} "
               f"({ctx.cell(sheet, median, i)})")
        out.append(ctx.finding(sheet, i, low, "median-outside-ci", severity, msg, lo[i]))
    below = _present(m, lo) & (m < lo) & ~reversed_
    above = _present(m, hi) & (m > hi) & ~hi_nr & ~reversed_ & ~below
    for i in np.flatnonzero(below | above):
        hi_text = "NR" if hi_nr[i] else fmt(hi[i])
        side = "below the lower" if below[i] else "above the upper"
        # a swap of the median with the bound it passed gives a plausible (roughly symmetric) CI:
        # then the bound's cell is where the median was typed
        bound, b = (low, lo[i]) if below[i] else (high, hi[i])
        new_m, new_lo, new_hi = b, (m[i] if below[i] else lo[i]), (hi[i] if below[i] else m[i])
        swapped = False
        if not np.isnan(new_lo) and not np.isnan(new_hi) and new_lo < new_m < new_hi:
            ratio = (new_hi - new_m) / (new_m - new_lo)
            swapped = 0.5 <= ratio <= 2
        hint = (f"was it swapped with {bound} ({ctx.cell(sheet, bound, i)})? Median {fmt(new_m)} with CI "
                f"{fmt(new_lo)}-{fmt(new_hi)} would fit" if swapped else
                "was a CI bound typed into the median cell, or the median into a CI cell?")
        msg = f"{median} = {fmt(m[i])} lies {side} bound of its 95% CI {fmt(lo[i])}-{hi_text} ({cells(i)}); {hint}"
        # reported on the median: a typo there, or a swap with a bound, both leave the median cell wrong
        out.append(ctx.finding(sheet, i, median, "median-outside-ci", severity, msg, m[i]))
    return out


@check("ci-bound-equals-median", "warning",
       "A CI bound equal to its median: was the median typed into the CI cell?", _MEDIAN)
def ci_bound_equals_median(ctx: Context, sheet: str, severity: str, median, low, high):
    import numpy as np

    m, lo, hi = ctx.num(sheet, median), ctx.num(sheet, low), ctx.num(sheet, high)
    out = []
    for name, b in ((low, lo), (high, hi)):
        for i in np.flatnonzero(_present(m, b) & (m == b)):
            msg = (f"{name} = {fmt(b[i])} ({ctx.cell(sheet, name, i)}) equals the median {median} "
                   f"({ctx.cell(sheet, median, i)}): was the median typed into the CI cell? Check the paper")
            out.append(ctx.finding(sheet, i, name, "ci-bound-equals-median", severity, msg, b[i]))
    return out


@check("median-without-ci", "warning", "A median without a usable 95% CI cannot be pooled.", _MEDIAN)
def median_without_ci(ctx: Context, sheet: str, severity: str, median, low, high):
    import numpy as np

    m, lo, hi = ctx.num(sheet, median), ctx.num(sheet, low), ctx.num(sheet, high)
    hi_nr = ctx.nr(sheet, high)
    out = []
    no_upper = np.isnan(hi) & ~hi_nr
    for i in np.flatnonzero(~np.isnan(m) & (np.isnan(lo) | no_upper)):
        what = ("no 95% CI" if np.isnan(lo[i]) and no_upper[i] else
                "no lower CI bound" if np.isnan(lo[i]) else "no upper CI bound (write NR if it was not reached)")
        msg = (f"{median} = {fmt(m[i])} ({ctx.cell(sheet, median, i)}) has {what} "
               f"({ctx.cell(sheet, low, i)}, {ctx.cell(sheet, high, i)}), so it cannot be pooled")
        out.append(ctx.finding(sheet, i, median, "median-without-ci", severity, msg, m[i]))
    return out


@check("asymmetric-ci", "info",
       "A CI much longer on one side (ratio above the threshold): the standard error taken from it assumes symmetry.",
       [*_MEDIAN, Param("ratio", "number", help="e.g. 3")])
def asymmetric_ci(ctx: Context, sheet: str, severity: str, median, low, high, ratio):
    import numpy as np

    m, lo, hi = ctx.num(sheet, median), ctx.num(sheet, low), ctx.num(sheet, high)
    ok = _present(m, lo, hi) & (m > lo) & (hi > m)
    up = np.where(ok, hi - m, np.nan)
    down = np.where(ok, m - lo, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.maximum(up / down, down / up)
    out = []
    for i in np.flatnonzero(ok & (r > ratio)):
        msg = (f"95% CI of {median} {fmt(m[i])} is {fmt(lo[i])}-{fmt(hi[i])}: one side is {r[i]:.1f} times the "
               f"other ({ctx.cell(sheet, low, i)}, {ctx.cell(sheet, high, i)}); the standard error taken from it "
               "assumes symmetry")
        out.append(ctx.finding(sheet, i, median, "asymmetric-ci", severity, msg, m[i]))
    return out


@check("pfs-exceeds-os", "warning", "Median PFS above median OS in the same cohort.",
       [Param("pfs", "field", types=NUMBER, help="e.g. pfs_median"), Param("os", "field", types=NUMBER, help="e.g. os_median")])
def pfs_exceeds_os(ctx: Context, sheet: str, severity: str, pfs, os):
    import numpy as np

    p, o = ctx.num(sheet, pfs), ctx.num(sheet, os)
    out = []
    for i in np.flatnonzero(_present(p, o) & (p > o)):
        msg = (f"{pfs} = {fmt(p[i])}{ctx.unit(sheet, pfs, i)} ({ctx.cell(sheet, pfs, i)}) is above {os} = "
               f"{fmt(o[i])}{ctx.unit(sheet, os, i)} ({ctx.cell(sheet, os, i)}); progression-free survival cannot be "
               "longer than overall survival")
        out.append(ctx.finding(sheet, i, pfs, "pfs-exceeds-os", severity, msg, p[i]))
    return out


@check("pfs-beyond-followup", "warning", "Median PFS above a multiple (factor) of the median follow-up.",
       [Param("median", "field", types=NUMBER, help="e.g. pfs_median"), Param("followup", "field", types=NUMBER, help="e.g. followup_median_months"),
        Param("factor", "number", help="e.g. 2")])
def pfs_beyond_followup(ctx: Context, sheet: str, severity: str, median, followup, factor):
    import numpy as np

    m, f = ctx.num(sheet, median), ctx.num(sheet, followup)
    out = []
    for i in np.flatnonzero(_present(m, f) & (m > factor * f)):
        msg = (f"{median} = {fmt(m[i])}{ctx.unit(sheet, median, i)} ({ctx.cell(sheet, median, i)}) is more than "
               f"{fmt(factor)} times the median follow-up {followup} = {fmt(f[i])}{ctx.unit(sheet, followup, i)} "
               f"({ctx.cell(sheet, followup, i)})")
        out.append(ctx.finding(sheet, i, median, "pfs-beyond-followup", severity, msg, m[i]))
    return out


# ---------------------------------------------------------------------------------------------
# Grade, cohorts, studies
# ---------------------------------------------------------------------------------------------


def parse_band(band: Any) -> tuple[float, float, bool, bool]:
    """A Ki-67 band: ``[low, high]`` (inclusive) or text ``"< 3"``, ``"<= 20"``, ``"> 20"``, ``"3-20"``.

    Returns ``(low, high, low_inclusive, high_inclusive)``.
    """
    import re

    if isinstance(band, (list, tuple)) and len(band) == 2:
        return float(band[0]), float(band[1]), True, True
    text = str(band).strip()
    m = re.fullmatch(r"(<=|>=|<|>|≤|≥)\s*(\d+(?:\.\d+)?)", text)
    if m:
        op, v = m.group(1), float(m.group(2))
        return {"<": (-math.inf, v, True, False), "<=": (-math.inf, v, True, True), "≤": (-math.inf, v, True, True),
                ">": (v, math.inf, False, True), ">=": (v, math.inf, True, True), "≥": (v, math.inf, True, True)}[op]
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)", text)
    if m:
        return float(m.group(1)), float(m.group(2)), True, True
    raise ValueError(f"not a Ki-67 band: {band!r} (write '< 3', '3-20', '> 20' or [low, high])")


def _band_text(lo: float, hi: float, lo_in: bool, hi_in: bool) -> str:
    if math.isinf(lo):
        return f"{'<=' if hi_in else '<'} {fmt(hi)}%"
    if math.isinf(hi):
        return f"{'>=' if lo_in else '>'} {fmt(lo)}%"
    return f"{fmt(lo)}-{fmt(hi)}%"


@check("ki67-contradicts-grade", "warning", "The cohort's highest Ki-67 contradicts its WHO grade.",
       [Param("ki67", "field", types=NUMBER, help="e.g. ki67_max"), Param("grade", "field", help="e.g. grade"),
        Param("bands", "bands", help="grade -> Ki-67 band: '< 3', '3-20', '> 20' or [low, high]")])
def ki67_contradicts_grade(ctx: Context, sheet: str, severity: str, ki67, grade, bands):
    import numpy as np
    import pandas as pd

    parsed = {g: parse_band(b) for g, b in bands.items()}
    k = ctx.num(sheet, ki67)
    g = pd.Series(ctx.values(sheet, grade), dtype=object)

    def col(j, dtype=float):
        return g.map({b: v[j] for b, v in parsed.items()}).to_numpy(dtype=float, na_value=np.nan)

    lo, hi = col(0), col(1)
    lo_in = g.map({b: v[2] for b, v in parsed.items()}).fillna(True).to_numpy(dtype=bool)
    hi_in = g.map({b: v[3] for b, v in parsed.items()}).fillna(True).to_numpy(dtype=bool)
    known = ~np.isnan(k) & ~np.isnan(lo)
    with np.errstate(invalid="ignore"):
        below = np.where(lo_in, k < lo, k <= lo)
        above = np.where(hi_in, k > hi, k >= hi)
    out = []
    for i in np.flatnonzero(known & (below | above)):
        band = _band_text(lo[i], hi[i], lo_in[i], hi_in[i])
        msg = (f"{ki67} = {fmt(k[i])}% ({ctx.cell(sheet, ki67, i)}) contradicts grade {g.iat[i]} "
               f"({ctx.cell(sheet, grade, i)}), which means Ki-67 {band} (WHO 2019)")
        out.append(ctx.finding(sheet, i, ki67, "ki67-contradicts-grade", severity, msg, k[i]))
    return out


@check("subgroups-exceed-overall", "warning",
       "Subgroup cohorts of one study (of one kind: by grade, or by site) with a larger total than its overall cohort.",
       [Param("cohort", "field", help="e.g. cohort"), Param("overall", "text", help="the whole-study label, e.g. overall"),
        Param("total", "field", types=NUMBER, help="e.g. n_evaluable")])
def subgroups_exceed_overall(ctx: Context, sheet: str, severity: str, cohort, overall, total):
    import numpy as np
    import pandas as pd

    from .schema import fold

    d = ctx.table(sheet).data
    n = ctx.num(sheet, total)
    label = d[cohort]
    target = fold(overall)
    folded = {c: isinstance(c, str) and fold(c) == target for c in label.dropna().unique()}
    is_overall = label.map(lambda c: folded.get(c, False), na_action="ignore").astype("boolean").fillna(False) \
        .to_numpy(dtype=bool) if len(label) else np.zeros(0, bool)
    frame = pd.DataFrame({"study": d["study_id"].to_numpy(), "n": n, "overall": is_overall,
                          "pos": np.arange(len(d))})
    dims = [f for f in ("grade", "primary_site") if f in d]
    for f in dims:
        frame[f] = d[f].to_numpy()
    frame = frame[frame["study"].notna()]
    overall_rows = frame[frame["overall"]]
    overall_rows = overall_rows[~overall_rows["study"].duplicated(keep=False)]  # exactly one overall cohort
    subs = frame[~frame["overall"]].merge(overall_rows, on="study", suffixes=("", "_o"))
    if subs.empty:
        return []
    # the dimension a subgroup splits the study by: its label when it names a term of a field's
    # vocabulary ("G3", "pancreas"), else the one field in which it differs from the overall cohort
    differs = pd.DataFrame({f: (subs[f].astype(object) != subs[f + "_o"].astype(object)) for f in dims})
    n_diff = differs.sum(axis=1)
    kind = pd.Series("cohort", index=subs.index, dtype=object)
    for f in dims:
        kind[(n_diff == 1) & differs[f]] = f
    labels = pd.Series(d[cohort].to_numpy()[subs["pos"].to_numpy()], index=subs.index, dtype=object)
    distinct = [v for v in labels.dropna().unique() if isinstance(v, str)]
    for f in reversed(dims):
        vocab = ctx.schema.vocabulary_of(sheet, f)
        if vocab is not None:
            named = {v: vocab.canonical(v) is not None for v in distinct}
            kind[labels.map(named).fillna(False).astype(bool)] = f
    subs["kind"] = kind
    sums = subs.groupby(["study", "kind"], sort=False).agg(total_n=("n", "sum"), over_n=("n_o", "first"),
                                                          pos_o=("pos_o", "first"), last=("pos", "max"))
    out = []
    for (sid, knd), r in sums[sums["total_n"] > sums["over_n"]].iterrows():
        members = subs.loc[(subs["study"] == sid) & (subs["kind"] == knd), "pos"].tolist()
        cells = ", ".join(ctx.cell(sheet, total, p) for p in members)
        o = int(r["pos_o"])
        msg = (f"subgroup cohorts of {sid} by {knd} have {total} summing to {fmt(r['total_n'])} ({cells}), more "
               f"than the overall cohort's {fmt(n[o])} ({ctx.cell(sheet, total, o)}); the same"
               f"{ctx.unit(sheet, total, o) or ' participants'} may be counted twice")
        out.append(ctx.finding(sheet, int(r["last"]), total, "subgroups-exceed-overall", severity, msg,
                               n[int(r["last"])]))
    return out


@check("cumulative-activity-mismatch", "warning",
       "Cumulative activity differs from cycles x activity per cycle by more than the tolerance.",
       [Param("product", "field", types=NUMBER, help="e.g. cumulative_activity_gbq"),
        Param("factors", "fields", types=NUMBER, help="e.g. [cycles_median, activity_per_cycle_gbq]"),
        Param("tolerance", "number", help="relative, e.g. 0.25")])
def cumulative_activity_mismatch(ctx: Context, sheet: str, severity: str, product, factors, tolerance):
    import numpy as np

    p = ctx.num(sheet, product)
    fs = [ctx.num(sheet, f) for f in factors]
    expected = np.prod(fs, axis=0)
    ok = _present(p, *fs) & (expected > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(p - expected) / expected
    out = []
    for i in np.flatnonzero(ok & (rel > tolerance)):
        parts = " x ".join(f"{f} {fmt(a[i])} ({ctx.cell(sheet, f, i)})" for f, a in zip(factors, fs))
        msg = (f"{product} = {fmt(p[i])} ({ctx.cell(sheet, product, i)}) differs by {100 * rel[i]:.0f}% from "
               f"{parts} = {fmt(round(expected[i], 3))}")
        out.append(ctx.finding(sheet, i, product, "cumulative-activity-mismatch", severity, msg, p[i]))
    return out


@check("enrolment-period-reversed", "error", "Enrolment ends before it starts.",
       [Param("start", "field", types=NUMBER, help="e.g. enrolment_start"), Param("end", "field", types=NUMBER, help="e.g. enrolment_end")])
def enrolment_period_reversed(ctx: Context, sheet: str, severity: str, start, end):
    import numpy as np

    s, e = ctx.num(sheet, start), ctx.num(sheet, end)
    out = []
    for i in np.flatnonzero(_present(s, e) & (s > e)):
        msg = (f"{start} = {fmt(s[i])} ({ctx.cell(sheet, start, i)}) is after {end} = {fmt(e[i])} "
               f"({ctx.cell(sheet, end, i)})")
        out.append(ctx.finding(sheet, i, start, "enrolment-period-reversed", severity, msg, s[i]))
    return out


@check("enrolment-after-publication", "warning", "Enrolment ends after the year of publication.",
       [Param("end", "field", types=NUMBER, help="e.g. enrolment_end"), Param("publication", "field", types=NUMBER, help="e.g. year")])
def enrolment_after_publication(ctx: Context, sheet: str, severity: str, end, publication):
    import numpy as np

    e, y = ctx.num(sheet, end), ctx.num(sheet, publication)
    out = []
    for i in np.flatnonzero(_present(e, y) & (e > y)):
        msg = (f"{end} = {fmt(e[i])} ({ctx.cell(sheet, end, i)}) is after the publication year {fmt(y[i])} "
               f"({ctx.cell(sheet, publication, i)})")
        out.append(ctx.finding(sheet, i, end, "enrolment-after-publication", severity, msg, e[i]))
    return out


@check("possible-duplicate-population", "warning",
       "Two studies that share the given fields (first author, intervention ...) and overlapping enrolment: "
       "the same participants must not be pooled twice.",
       [Param("same", "fields", help="e.g. [first_author, radiopharmaceutical]"),
        Param("start", "field", types=NUMBER, help="e.g. enrolment_start"), Param("end", "field", types=NUMBER, help="e.g. enrolment_end")])
def possible_duplicate_population(ctx: Context, sheet: str, severity: str, same, start, end):
    import numpy as np
    import pandas as pd

    from .schema import fold

    d = ctx.table(sheet).data
    t = ctx.table(sheet)
    keys = pd.DataFrame({f: d[f].map({v: fold(v) for v in d[f].dropna().unique() if isinstance(v, str)})
                         for f in same})
    s, e = ctx.num(sheet, start), ctx.num(sheet, end)
    s = np.where(np.isnan(s), e, s)
    e = np.where(np.isnan(e), s, e)
    keys["pos"] = np.arange(len(d))
    keys["s"], keys["e"] = s, e
    keys["sid"] = t.study_ids
    keys = keys.dropna()
    pairs = keys.merge(keys, on=list(same), suffixes=("_a", "_b"))
    pairs = pairs[(pairs["pos_a"] != pairs["pos_b"]) & (pairs["s_a"] <= pairs["e_b"]) & (pairs["s_b"] <= pairs["e_a"])
                  & (pairs["sid_a"] != pairs["sid_b"])]
    out = []
    for a, b in zip(pairs["pos_a"].tolist(), pairs["pos_b"].tolist()):
        msg = (f"{t.study(a)} and {t.study(b)} share "
               + ", ".join(f"{f} {d[f].iat[a]!s}" for f in same)
               + f" and overlapping enrolment ({fmt(s[a])}-{fmt(e[a])} vs {fmt(s[b])}-{fmt(e[b])}; "
               f"{ctx.cell(sheet, start, a)}, {ctx.cell(sheet, start, b)}): possibly the same participants; "
               "pool only one of them")
        out.append(ctx.finding(sheet, a, same[0], "possible-duplicate-population", severity, msg, d[same[0]].iat[a]))
    return out


# ---------------------------------------------------------------------------------------------
# Comparative reviews: arms, effects with CIs, p-values (issue 14)
# ---------------------------------------------------------------------------------------------

#: The 97.5% quantile of the standard normal: a 95% CI spans 2 x 1.959964 standard errors.
Z975 = 1.959963984540054


def _two_sided_p(z):
    """Two-sided normal p-value of ``|z|`` (``erfc(|z| / sqrt 2)``), vectorised."""
    import numpy as np
    from math import erfc

    z = np.abs(np.asarray(z, dtype=float))
    return np.vectorize(lambda v: erfc(v / math.sqrt(2)) if v == v else float("nan"), otypes=[float])(z)


def _pfmt(p: float) -> str:
    """A p-value as a reviewer reads it: 0.0038, 0.21, < 0.0001."""
    if p != p:
        return "NA"
    if p < 0.0001:
        return "< 0.0001"
    if p < 0.001:
        return f"{p:.2g}"
    text = f"{p:.4f}" if p < 0.01 else f"{p:.3f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _arms(names: list[str]) -> str:
    return " + ".join(names)


_ARM_EVENTS = [Param("events", "fields", types=NUMBER, help="events of each arm, e.g. [events_vaccinated, events_control]"),
               Param("totals", "fields", types=NUMBER, like="events",
                     help="each arm's total, in the same order, e.g. [total_vaccinated, total_control]")]


@check("events-exceed-total", "error", "More events in an arm than participants in that arm.", _ARM_EVENTS)
def events_exceed_total(ctx: Context, sheet: str, severity: str, events, totals):
    import numpy as np

    out = []
    for ev_f, tot_f in zip(events, totals):
        e, n = ctx.num(sheet, ev_f), ctx.num(sheet, tot_f)
        for i in np.flatnonzero(_present(e, n) & (e > n)):
            unit = ctx.unit(sheet, tot_f, i) or " participants"
            msg = (f"{ev_f} = {fmt(e[i])} ({ctx.cell(sheet, ev_f, i)}) is above the arm's {tot_f} = {fmt(n[i])}"
                   f"{unit} ({ctx.cell(sheet, tot_f, i)}): an arm cannot have more events than{unit}; were the "
                   "events and the total swapped, or the other arm's total entered?")
            out.append(ctx.finding(sheet, i, ev_f, "events-exceed-total", severity, msg, e[i]))
    return out


@check("arm-totals-exceed-randomised", "error",
       "The arms' totals add up to more than the number randomised (below it: arm-totals-below-randomised).",
       [Param("totals", "fields", types=NUMBER, help="the arms' totals, e.g. [total_vaccinated, total_control]"),
        Param("randomised", "ref", types=NUMBER, help="the number randomised, e.g. studies.n_randomised"),
        Param("group_by", "fields", required=False,
              help="rows whose totals add up together, e.g. [study_id, comparison] on a sheet of one row per arm "
                   "(default: each row alone)")])
def arm_totals_exceed_randomised(ctx: Context, sheet: str, severity: str, totals, randomised, group_by=None):
    import numpy as np
    import pandas as pd

    arrs = [ctx.num(sheet, t) for t in totals]
    r = ctx.num(sheet, randomised)
    n = len(r)
    if group_by:
        d = ctx.table(sheet).data
        keys = pd.DataFrame({g: d[g].astype(object).to_numpy() for g in group_by})
        codes = keys.groupby(list(group_by), dropna=False, sort=False).ngroup().to_numpy()
    else:
        codes = np.arange(n)
    complete = _present(*arrs)
    sums = np.sum(arrs, axis=0)
    ng = int(codes.max()) + 1 if n else 0
    g_sum = np.bincount(codes, weights=np.where(complete, sums, 0.0), minlength=ng)
    g_complete = np.bincount(codes, weights=(~complete).astype(float), minlength=ng) == 0
    g_r = np.full(ng, np.nan)
    for p in np.flatnonzero(~np.isnan(r))[::-1]:  # the group's first row with a number randomised
        g_r[codes[p]] = r[p]
    out = []
    below_sev = REGISTRY["arm-totals-below-randomised"].severity
    for g in np.flatnonzero(g_complete & ~np.isnan(g_r) & (g_sum != g_r)):
        pos = np.flatnonzero(codes == g).tolist()
        rv, total = g_r[g], float(g_sum[g])
        last = pos[-1]
        parts = [(t, p) for p in pos for t in totals]
        terms = " + ".join(fmt(ctx.num(sheet, t)[p]) for t, p in parts)
        cells = ", ".join(ctx.cell(sheet, t, p) for t, p in parts)
        names = _arms(list(totals)) + (f" over {len(pos)} rows" if len(pos) > 1 else "")
        unit = ctx.unit(sheet, totals[0], last) or " participants"
        where = f"{_label(randomised)} = {fmt(rv)} ({ctx.cell(sheet, randomised, last)})"
        if total > rv:
            msg = (f"{names} = {terms} = {fmt(total)} ({cells}) is above {where}: the arms hold "
                   f"{fmt(total - rv)} more{unit} than were randomised; check the arm totals and {_label(randomised)}")
            out.append(ctx.finding(sheet, last, totals[0], "arm-totals-exceed-randomised", severity, msg, total))
        else:
            msg = (f"{names} = {terms} = {fmt(total)} ({cells}) is {fmt(rv - total)} below {where}: "
                   f"{fmt(rv - total)} randomised{unit} are in no arm (attrition, exclusions after randomisation, "
                   "or an arm outside this comparison?); pooling uses the arm totals")
            out.append(ctx.finding(sheet, last, totals[0], "arm-totals-below-randomised", below_sev, msg, total))
    return out


companion("arm-totals-below-randomised", "warning",
          "The arms' totals add up to less than the number randomised (attrition).", "arm-totals-exceed-randomised")


_EFFECT = [Param("effect", "field", types=NUMBER, help="the reported effect, e.g. rr_reported"),
           Param("low", "field", types=NUMBER, help="its lower 95% CI bound, e.g. rr_ci_low"),
           Param("high", "field", types=NUMBER, help="its upper 95% CI bound, e.g. rr_ci_high")]


def _effect_cells(ctx: Context, sheet: str, effect: str, low: str, high: str, i: int) -> str:
    return f"{ctx.cell(sheet, effect, i)}, {ctx.cell(sheet, low, i)}, {ctx.cell(sheet, high, i)}"


@check("effect-outside-ci", "error",
       "A reported effect outside its own 95% CI (beyond the rounding of the reported digits), or a CI whose lower "
       "bound is not below its upper bound.", _EFFECT)
def effect_outside_ci(ctx: Context, sheet: str, severity: str, effect, low, high):
    import numpy as np

    e, lo, hi = ctx.num(sheet, effect), ctx.num(sheet, low), ctx.num(sheet, high)
    he, hl, hh = ctx.half_units(sheet, effect, low, high)
    out = []
    reversed_ = _present(lo, hi) & (lo >= hi)
    for i in np.flatnonzero(reversed_):
        msg = (f"95% CI of {effect} is {fmt(lo[i])} to {fmt(hi[i])}: the lower bound {low} ({ctx.cell(sheet, low, i)}) "
               f"is not below the upper bound {high} ({ctx.cell(sheet, high, i)}); {effect} = {fmt(e[i])} "
               f"({ctx.cell(sheet, effect, i)}). Were the bounds swapped or one of them mistyped?")
        out.append(ctx.finding(sheet, i, low, "effect-outside-ci", severity, msg, lo[i]))
    below = _present(e, lo) & (e + he < lo - hl) & ~reversed_
    above = _present(e, hi) & (e - he > hi + hh) & ~reversed_ & ~below
    for i in np.flatnonzero(below | above):
        side, bound, b = ("below the lower", low, lo[i]) if below[i] else ("above the upper", high, hi[i])
        new_lo, new_hi = (e[i], hi[i]) if below[i] else (lo[i], e[i])
        swapped = not np.isnan(new_lo) and not np.isnan(new_hi) and new_lo < b < new_hi
        hint = (f"was it swapped with {bound} ({ctx.cell(sheet, bound, i)})? {effect} {fmt(b)} with CI "
                f"{fmt(new_lo)} to {fmt(new_hi)} would fit" if swapped else
                "was a CI bound typed into the effect cell, or the effect into a CI cell?")
        msg = (f"{effect} = {fmt(e[i])} lies {side} bound of its 95% CI {fmt(lo[i])} to {fmt(hi[i])} "
               f"({_effect_cells(ctx, sheet, effect, low, high, i)}); {hint}")
        out.append(ctx.finding(sheet, i, effect, "effect-outside-ci", severity, msg, e[i]))
    return out


@check("ratio-ci-not-log-symmetric", "warning",
       "A ratio's 95% CI symmetric around it on the natural scale, not on the log scale, beyond the rounding of "
       "the reported digits: a typed or transposed bound? (A ratio or bound <= 0: ratio-not-positive.)", _EFFECT)
def ratio_ci_not_log_symmetric(ctx: Context, sheet: str, severity: str, effect, low, high):
    import numpy as np

    e, lo, hi = ctx.num(sheet, effect), ctx.num(sheet, low), ctx.num(sheet, high)
    he, hl, hh = ctx.half_units(sheet, effect, low, high)
    out = []
    bad_sev = REGISTRY["ratio-not-positive"].severity
    nonpos = np.zeros(len(e), bool)
    for name, v in ((effect, e), (low, lo), (high, hi)):
        for i in np.flatnonzero(~np.isnan(v) & (v <= 0) & ~nonpos):
            nonpos[i] = True
            msg = (f"{name} = {fmt(v[i])} ({ctx.cell(sheet, name, i)}): a ratio and its CI bounds are above 0; "
                   f"was a log ratio or a difference entered? ({effect}, {low}, {high}: "
                   f"{_effect_cells(ctx, sheet, effect, low, high, i)})")
            out.append(ctx.finding(sheet, i, name, "ratio-not-positive", bad_sev, msg, v[i]))
    ok = _present(e, lo, hi) & ~nonpos & (lo < e) & (e < hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        # log-symmetric within rounding: some e', lo', hi' within half a unit of the digits with e'^2 = lo' hi'
        e_lo, e_hi = np.maximum(e - he, 0) ** 2, (e + he) ** 2
        p_lo, p_hi = np.maximum(lo - hl, 0) * np.maximum(hi - hh, 0), (lo + hl) * (hi + hh)
        log_sym = (e_lo <= p_hi) & (p_lo <= e_hi)
        nat_sym = np.abs(2 * e - lo - hi) <= 2 * he + hl + hh
    for i in np.flatnonzero(ok & nat_sym & ~log_sym):
        msg = (f"95% CI {fmt(lo[i])} to {fmt(hi[i])} of {effect} = {fmt(e[i])} "
               f"({_effect_cells(ctx, sheet, effect, low, high, i)}) is symmetric on the natural scale, but a ratio's "
               f"CI is symmetric on the log scale: with {low} = {fmt(lo[i])} the upper bound would be about "
               f"{e[i] ** 2 / lo[i]:.3g}, with {high} = {fmt(hi[i])} the lower about {e[i] ** 2 / hi[i]:.3g}. "
               "Is a bound mistyped or transposed? Check the paper")
        out.append(ctx.finding(sheet, i, high, "ratio-ci-not-log-symmetric", severity, msg, hi[i]))
    return out


companion("ratio-not-positive", "error", "A ratio (or a bound of its CI) that is 0 or negative.",
          "ratio-ci-not-log-symmetric")


def p_range_from_ci(e, lo, hi, he, hl, hh, ratio: bool):
    """The two-sided p-values a reported effect and 95% CI can give within the rounding of their digits.

    As Altman & Bland (2011) obtain a p from a CI: on the scale where the CI is symmetric (log for
    ratios), ``se = (hi - lo) / (2 x 1.959964)``, ``z = estimate / se``, ``p = 2 (1 - Phi(|z|))``.
    As statcheck (Nuijten et al. 2016) recomputes a reported test, every value the rounded figures
    stand for is allowed: each of ``e``, ``lo``, ``hi`` lies within half a unit of its last digit
    (``he``, ``hl``, ``hh``). The estimate is the reported effect or, for a CI that is not symmetric
    around it (an exact or profile CI), the CI's centre. Returns ``(p_centre, p_min, p_max)``.

    References
    ----------
    Altman DG, Bland JM. How to obtain the P value from a confidence interval. BMJ 2011;343:d2304.
    Nuijten MB, Hartgerink CHJ, van Assen MALM, Epskamp S, Wicherts JM. The prevalence of
    statistical reporting errors in psychology (1985-2013). Behav Res Methods 2016;48:1205-26.
    """
    import numpy as np

    def g(x):
        if not ratio:
            return np.asarray(x, dtype=float)
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), -np.inf)

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        se0 = (g(hi) - g(lo)) / (2 * Z975)
        p0 = _two_sided_p(g(e) / se0)
        se_min = np.maximum((g(hi - hh) - g(lo + hl)) / (2 * Z975), 0)
        se_max = (g(hi + hh) - g(lo - hl)) / (2 * Z975)
        ends = [g(e - he), g(e + he), (g(lo - hl) + g(hi - hh)) / 2, (g(lo + hl) + g(hi + hh)) / 2]
        stack = np.vstack([np.where(np.isnan(x), np.nan, x) for x in ends])
        lo_est = np.minimum(stack[0], stack[2])
        hi_est = np.maximum(stack[1], stack[3])
        crosses = (lo_est <= 0) & (hi_est >= 0)
        a_min = np.where(crosses, 0.0, np.minimum(np.abs(lo_est), np.abs(hi_est)))
        a_max = np.maximum(np.abs(lo_est), np.abs(hi_est))
        z_max = np.where(se_min > 0, a_max / np.where(se_min > 0, se_min, 1), np.inf)
        z_min = np.where(np.isfinite(se_max) & (se_max > 0), a_min / np.where(se_max > 0, se_max, 1), 0.0)
        p_min = _two_sided_p(np.where(np.isnan(a_max), np.nan, z_max))
        p_max = _two_sided_p(np.where(np.isnan(a_min), np.nan, z_min))
    return p0, p_min, p_max


def _reported_significant(p: float, bound: str, alpha: float) -> bool | None:
    """Does the reported p say significant at ``alpha`` (True), not significant (False), or neither?"""
    if bound == "":
        return p <= alpha  # as statcheck: p = .05 reported counts as significant
    if bound in ("<", "<="):
        return True if p <= alpha else None
    if bound == ">":
        return False if p >= alpha else None
    return False  # ns


@check("p-value-contradicts-ci", "error",
       "A reported p-value whose decision at alpha contradicts the one its 95% CI gives (recomputed as statcheck "
       "does, Altman & Bland 2011); a p inconsistent with the CI without changing the decision: "
       "p-value-inconsistent.",
       [*_EFFECT, Param("p", "field", types=NUMBER, help="the reported p-value (a field of type p_value), e.g. p_value"),
        Param("scale", "text", choices=("ratio", "difference"),
              help="ratio (OR, RR, HR: the CI is symmetric on the log scale) or difference (MD, RD)"),
        Param("alpha", "number", required=False, help="the significance level, default 0.05 (also what NS means)")])
def p_value_contradicts_ci(ctx: Context, sheet: str, severity: str, effect, low, high, p, scale, alpha=0.05):
    import numpy as np

    e, lo, hi, pv = (ctx.num(sheet, f) for f in (effect, low, high, p))
    data = ctx.table(sheet).data
    bounds = data[p + "__bound"].to_numpy() if p + "__bound" in data else np.full(len(pv), "", dtype=object)
    ratio = scale == "ratio"
    ok = _present(e, lo, hi, pv) & (lo < hi)
    if ratio:
        ok &= (e > 0) & (lo > 0) & (hi > 0)
    if not ok.any():
        return []
    he, hl, hh = ctx.half_units(sheet, effect, low, high)
    hp = ctx.half_unit(sheet, p)
    p0, p_min, p_max = p_range_from_ci(e, lo, hi, he, hl, hh, ratio)
    out = []
    weak = REGISTRY["p-value-inconsistent"].severity
    for i in np.flatnonzero(ok):
        b = bounds[i] if isinstance(bounds[i], str) else ""
        x = pv[i]
        if b == "":
            consistent = (x - hp[i] <= p_max[i] + 1e-12) and (x + hp[i] >= p_min[i] - 1e-12)
            shown = f"p = {fmt(x)}"
        elif b == "<":
            consistent, shown = p_min[i] < x, f"p < {fmt(x)}"
        elif b == "<=":
            consistent, shown = p_min[i] <= x, f"p <= {fmt(x)}"
        elif b == ">":
            consistent, shown = p_max[i] >= x, f"p > {fmt(x)}"
        else:
            consistent, shown = p_max[i] >= alpha, f"not significant (p > {fmt(alpha)})"
        if consistent:
            continue
        said = _reported_significant(x, b, alpha) if b != "ns" else False
        computed = True if p_max[i] < alpha else False if p_min[i] > alpha else None
        decision = said is not None and computed is not None and said != computed
        null = "1" if ratio else "0"
        excludes = "excludes" if computed else "includes"
        rng = (f"{_pfmt(p_min[i])} to {_pfmt(p_max[i])}" if _pfmt(p_min[i]) != _pfmt(p_max[i]) else _pfmt(p0[i]))
        se = (math.log(hi[i]) - math.log(lo[i]) if ratio else hi[i] - lo[i]) / (2 * Z975)
        what = "log " + effect if ratio else effect
        msg = (f"{p} says {shown} ({ctx.cell(sheet, p, i)}), but {effect} = {fmt(e[i])} with 95% CI "
               f"{fmt(lo[i])} to {fmt(hi[i])} ({_effect_cells(ctx, sheet, effect, low, high, i)}) gives p = "
               f"{_pfmt(p0[i])} (se of {what} = {se:.3g}; within the rounding of the reported digits p = {rng}; "
               f"Altman & Bland 2011)")
        if decision:
            msg += (f": the CI {excludes} the null value {null}, so the p-value and the CI disagree on "
                    f"significance at {fmt(alpha)}. Check the p-value, the effect and the CI in the paper")
            out.append(ctx.finding(sheet, i, p, "p-value-contradicts-ci", severity, msg, ctx.table(sheet).raw[p].iat[i]))
        else:
            msg += "; the decision at " + fmt(alpha) + " is the same, but the figures do not match: check them"
            out.append(ctx.finding(sheet, i, p, "p-value-inconsistent", weak, msg, ctx.table(sheet).raw[p].iat[i]))
    return out


companion("p-value-inconsistent", "warning",
          "A reported p-value that its 95% CI cannot give within rounding, without changing the decision at alpha "
          "(statcheck's 'inconsistency').", "p-value-contradicts-ci")


_MEASURES = ("RR", "OR", "RD", "MD", "ROM")


def arm_effect(measure: str, x1, x2, n1, n2, s1=None, s2=None):
    """The effect of arm 1 versus arm 2 from arm-level data, on its analysis scale, and its standard error.

    ``RR``, ``OR``, ``RD`` from events ``x`` of totals ``n`` (0.5 added to every cell of a table with
    a zero cell for RR and OR, as metafor's ``escalc`` does by default); ``MD`` and ``ROM`` from means
    ``x``, SDs ``s`` and totals ``n``. RR, OR and ROM are on the log scale. The standard errors are
    the usual large-sample ones (Borenstein et al. 2009, Introduction to Meta-Analysis, ch. 4-5).
    Returns ``(estimate, se)`` arrays (se NaN when it cannot be computed).
    """
    import numpy as np

    x1, x2, n1, n2 = (np.asarray(v, dtype=float) for v in (x1, x2, n1, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure in ("RR", "OR"):
            zero = (x1 == 0) | (x2 == 0) | (x1 == n1) | (x2 == n2)
            add = np.where(zero, 0.5, 0.0)
            a, b, c, d = x1 + add, n1 - x1 + add, x2 + add, n2 - x2 + add
            if measure == "RR":
                est = np.log(a / (a + b)) - np.log(c / (c + d))
                se = np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
            else:
                est = np.log(a * d / (b * c))
                se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        elif measure == "RD":
            p1, p2 = x1 / n1, x2 / n2
            est = p1 - p2
            se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        else:
            s1 = np.full(len(x1), np.nan) if s1 is None else np.asarray(s1, dtype=float)
            s2 = np.full(len(x1), np.nan) if s2 is None else np.asarray(s2, dtype=float)
            if measure == "MD":
                est = x1 - x2
                se = np.sqrt(s1 ** 2 / n1 + s2 ** 2 / n2)
            else:
                est = np.where((x1 > 0) & (x2 > 0), np.log(x1 / np.where(x2 > 0, x2, 1)), np.nan)
                se = np.sqrt(s1 ** 2 / (n1 * x1 ** 2) + s2 ** 2 / (n2 * x2 ** 2))
    return est, se


_NAMES = {"RR": "risk ratio", "OR": "odds ratio", "RD": "risk difference", "MD": "mean difference",
          "ROM": "ratio of means"}


@check("effect-contradicts-counts", "error",
       "A reported effect whose direction contradicts the arm-level counts or means of the same row, and which "
       "the 95% CI of the estimate from them excludes (an inverted ratio, swapped arms); a size mismatch beyond "
       "rounding: effect-differs-from-counts.",
       [Param("effect", "field", types=NUMBER, help="the reported effect, e.g. rr_reported"),
        Param("measure", "text", choices=_MEASURES, help="what the effect is: RR, OR, RD (from events and totals), "
                                                         "MD or ROM (from means, SDs and totals)"),
        Param("totals", "fields", types=NUMBER, help="each arm's total, intervention first, e.g. [total_vaccinated, total_control]"),
        Param("events", "fields", types=NUMBER, required=False, like="totals",
              help="each arm's events (RR, OR, RD), e.g. [events_vaccinated, events_control]"),
        Param("means", "fields", types=NUMBER, required=False, like="totals", help="each arm's mean (MD, ROM)"),
        Param("sds", "fields", types=NUMBER, required=False, like="totals", help="each arm's SD (MD, ROM)"),
        Param("tolerance", "number", required=False,
              help="relative difference allowed beyond rounding before effect-differs-from-counts, e.g. 0.1 for "
                   "adjusted effects (default 0: rounding only)")])
def effect_contradicts_counts(ctx: Context, sheet: str, severity: str, effect, measure, totals, events=None,
                              means=None, sds=None, tolerance=0.0):
    import numpy as np

    source = events if measure in ("RR", "OR", "RD") else means
    if not source or len(source) != 2 or len(totals) != 2:
        return []
    if any(f not in ctx.table(sheet).data for f in [*source, *(sds or [])]):
        return []
    r = ctx.num(sheet, effect)
    hr = ctx.half_unit(sheet, effect)
    x1, x2 = (ctx.num(sheet, f) for f in source)
    n1, n2 = (ctx.num(sheet, f) for f in totals)
    s1, s2 = (ctx.num(sheet, f) for f in sds) if sds and len(sds) == 2 else (None, None)
    est, se = arm_effect(measure, x1, x2, n1, n2, s1, s2)
    ratio = measure in ("RR", "OR", "ROM")
    valid = _present(r, x1, x2, n1, n2, est) & (n1 > 0) & (n2 > 0)
    if measure in ("RR", "OR", "RD"):
        valid &= (x1 <= n1) & (x2 <= n2) & (x1 >= 0) & (x2 >= 0)
    if ratio:
        valid &= r > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # the reported value's rounding interval on the analysis scale
        r_lo = np.log(np.maximum(r - hr, 1e-300)) if ratio else r - hr
        r_hi = np.log(r + hr) if ratio else r + hr
        r_c = np.log(np.where(r > 0, r, 1)) if ratio else r
        tol = np.log1p(tolerance) if ratio else tolerance * np.abs(np.where(np.isnan(est), 0, est))
        ci_lo, ci_hi = est - Z975 * se, est + Z975 * se
        opposite = ((r_hi < 0) & (est > 0)) | ((r_lo > 0) & (est < 0))
        excluded = (r_hi < ci_lo) | (r_lo > ci_hi)
        mismatch = (r_hi < est - tol - 1e-12) | (r_lo > est + tol + 1e-12)
    out = []
    weak = REGISTRY["effect-differs-from-counts"].severity
    name = _NAMES[measure]
    show = (lambda v: math.exp(v)) if ratio else (lambda v: v)
    for i in np.flatnonzero(valid & mismatch):
        arms = ", ".join(ctx.cell(sheet, f, i) for f in [*source, *totals, *(sds or [])])
        data_txt = (f"{fmt(x1[i])}/{fmt(n1[i])} vs {fmt(x2[i])}/{fmt(n2[i])}" if measure in ("RR", "OR", "RD") else
                    f"means {x1[i]:.6g} vs {x2[i]:.6g} (n {fmt(n1[i])} vs {fmt(n2[i])})")
        ci = (f" (95% CI {show(ci_lo[i]):.3g} to {show(ci_hi[i]):.3g})" if not np.isnan(se[i]) else "")
        msg = (f"{effect} = {fmt(r[i])} ({ctx.cell(sheet, effect, i)}) but the arms of this row, {data_txt} "
               f"({arms}), give a {name} of {show(est[i]):.3g}{ci}")
        # what a slip would explain
        hint = ""
        inv = -r_c[i]
        if abs(inv - est[i]) <= (np.log1p(2 * hr[i] / r[i]) if ratio else 2 * hr[i]) + 1e-9 + (tol if ratio else 0):
            flipped = f"1/{fmt(r[i])} = {1 / r[i]:.3g}" if ratio else f"-({fmt(r[i])})"
            hint = f"; {flipped} matches them: an inverted effect, or the arms swapped?"
        elif measure in ("RR", "OR"):
            other = "OR" if measure == "RR" else "RR"
            alt, _ = arm_effect(other, x1[i:i + 1], x2[i:i + 1], n1[i:i + 1], n2[i:i + 1])
            if r_lo[i] - 1e-12 <= alt[0] <= r_hi[i] + 1e-12:
                hint = f"; it matches their {_NAMES[other]} ({math.exp(alt[0]):.3g}): is the measure right?"
        if opposite[i] and excluded[i] and not np.isnan(se[i]):
            msg += (f"{hint} The direction differs: the reported effect favours the other arm, outside the CI "
                    f"from the arms. Check {effect} and the arm columns in the paper")
            out.append(ctx.finding(sheet, i, effect, "effect-contradicts-counts", severity, msg, r[i]))
        else:
            msg += (f", beyond the rounding of the reported digits{hint or '; an adjusted or differently computed effect?'}"
                    " Check it in the paper")
            out.append(ctx.finding(sheet, i, effect, "effect-differs-from-counts", weak, msg, r[i]))
    return out


companion("effect-differs-from-counts", "warning",
          "A reported effect whose size differs from the arm-level counts or means of the same row beyond rounding "
          "(and the tolerance).", "effect-contradicts-counts")


@check("sd-looks-like-se", "warning",
       "An SD that looks like a standard error: far below the other studies' SDs of the outcome while SD x sqrt(n) "
       "is in line with them, or below the smallest SD plausible on the outcome's scale.",
       [Param("sds", "fields", types=NUMBER, help="each arm's SD, e.g. [sd_intervention, sd_control]"),
        Param("totals", "fields", types=NUMBER, like="sds", help="each arm's total, same order, e.g. [n_intervention, n_control]"),
        Param("group_by", "fields", required=False,
              help="the rows of one outcome, e.g. [outcome] (default: the whole sheet is one outcome)"),
        Param("factor", "number", required=False,
              help="how far below: an SD below factor/sqrt(n) times the others' median SD (default 2)"),
        Param("min_sd", "number", required=False, help="the smallest SD plausible on the outcome's scale")])
def sd_looks_like_se(ctx: Context, sheet: str, severity: str, sds, totals, group_by=None, factor=2.0, min_sd=None):
    import numpy as np
    import pandas as pd

    d = ctx.table(sheet).data
    n_rows = len(d)
    group = (pd.DataFrame({g: d[g].astype(object).to_numpy() for g in group_by})
             .groupby(list(group_by), dropna=False, sort=False).ngroup().to_numpy() if group_by
             else np.zeros(n_rows, int))
    study = np.array([s if s is not None else f"#{i}" for i, s in enumerate(ctx.table(sheet).study_ids)], dtype=object)
    recs = pd.DataFrame({
        "pos": np.tile(np.arange(n_rows), len(sds)), "arm": np.repeat(np.arange(len(sds)), n_rows),
        "sd": np.concatenate([ctx.num(sheet, f) for f in sds]), "n": np.concatenate([ctx.num(sheet, f) for f in totals]),
        "g": np.tile(group, len(sds)), "study": np.tile(study, len(sds))})
    recs = recs[recs["sd"].notna()]
    out = []
    flagged: set[tuple[int, int]] = set()
    for _, grp in recs.groupby("g", sort=False):
        sd_all, st_all = grp["sd"].to_numpy(), grp["study"].to_numpy()
        for rec in grp.itertuples(index=False):
            if not (rec.n > 1 and rec.sd > 0):
                continue
            others = sd_all[(st_all != rec.study) & (sd_all > 0)]
            if len(others) < 2:
                continue
            med = float(np.median(others))
            root = math.sqrt(rec.n)
            if rec.sd < factor * med / root and rec.sd <= med / factor and med / factor <= rec.sd * root <= factor * med:
                i, f = int(rec.pos), sds[int(rec.arm)]
                flagged.add((i, int(rec.arm)))
                unit = ctx.unit(sheet, f, i)
                msg = (f"{f} = {fmt(rec.sd)}{unit} ({ctx.cell(sheet, f, i)}) is far below the SDs of the other "
                       f"studies of this outcome (median {med:.4g}{unit} over {len(others)} arms); as a "
                       f"standard error with {totals[int(rec.arm)]} = {fmt(rec.n)} ({ctx.cell(sheet, totals[int(rec.arm)], i)}) "
                       f"it gives SD = {fmt(rec.sd)} x sqrt({fmt(rec.n)}) = {rec.sd * root:.4g}{unit}, "
                       "in line with them: was the SE entered as the SD? Check the paper (SE, SEM or SD?)")
                out.append(ctx.finding(sheet, i, f, "sd-looks-like-se", severity, msg, rec.sd))
    if min_sd is not None:
        for arm, f in enumerate(sds):
            v = ctx.num(sheet, f)
            n = ctx.num(sheet, totals[arm])
            for i in np.flatnonzero(~np.isnan(v) & (v < min_sd)):
                if (int(i), arm) in flagged:
                    continue
                unit = ctx.unit(sheet, f, i)
                se_txt = (f"; as a standard error with {totals[arm]} = {fmt(n[i])} ({ctx.cell(sheet, totals[arm], i)}) "
                          f"it gives SD = {v[i] * math.sqrt(n[i]):.4g}{unit}" if n[i] > 1 else "")
                msg = (f"{f} = {fmt(v[i])}{unit} ({ctx.cell(sheet, f, i)}) is below {fmt(min_sd)}{unit}, the smallest "
                       f"SD plausible on this scale{se_txt}: was the SE entered as the SD? Check the paper")
                out.append(ctx.finding(sheet, int(i), f, "sd-looks-like-se", severity, msg, v[i]))
    return out


def _phi_inv(q):
    """The standard normal quantile (scipy's ``norm.ppf``)."""
    from scipy.stats import norm

    return norm.ppf(q)


def mean_sd_from_quantiles(n, median, q1=None, q3=None, minimum=None, maximum=None):
    """Estimate a sample mean and SD from the median with the quartiles and/or the range.

    Scenarios as Luo et al. name them: S1 = {min, median, max}, S2 = {q1, median, q3},
    S3 = {min, q1, median, q3, max} (Wan et al.'s C1, C3 and C2); the richest one the values
    allow is used.

    Mean (Luo et al. 2018)::

        S1: w = 4 / (4 + n^0.75);            mean = w (min + max) / 2 + (1 - w) median
        S2: w = 0.7 + 0.39 / n;               mean = w (q1 + q3) / 2 + (1 - w) median
        S3: w1 = 2.2 / (2.2 + n^0.75), w2 = 0.7 - 0.72 / n^0.55;
            mean = w1 (min + max) / 2 + w2 (q1 + q3) / 2 + (1 - w1 - w2) median

    SD (Wan et al. 2014)::

        xi(n)  = 2 Phi^-1((n - 0.375) / (n + 0.25))
        eta(n) = 2 Phi^-1((0.75 n - 0.125) / (n + 0.25))
        S1: SD = (max - min) / xi(n)
        S2: SD = (q3 - q1) / eta(n)
        S3: SD = (max - min) / (2 xi(n)) + (q3 - q1) / (2 eta(n))

    Both assume an approximately normal outcome; a skewed one is better left unpooled.

    References
    ----------
    Luo D, Wan X, Liu J, Tong T. Optimally estimating the sample mean from the sample size, median,
    mid-range, and/or mid-quartile range. Stat Methods Med Res 2018;27(6):1785-1805.
    Wan X, Wang W, Liu J, Tong T. Estimating the sample mean and standard deviation from the sample
    size, median, range and/or interquartile range. BMC Med Res Methodol 2014;14:135.

    Returns
    -------
    (mean, sd, scenario) with scenario ``"S1"``, ``"S2"`` or ``"S3"``; ``(nan, nan, "")`` when the
    values allow none.
    """
    nan = float("nan")

    def ok(*v):
        return all(x is not None and x == x for x in v)

    if not ok(n, median) or n < 2:
        return nan, nan, ""
    xi = 2 * float(_phi_inv((n - 0.375) / (n + 0.25)))
    eta = 2 * float(_phi_inv((0.75 * n - 0.125) / (n + 0.25)))
    if ok(q1, q3, minimum, maximum):
        w1 = 2.2 / (2.2 + n ** 0.75)
        w2 = 0.7 - 0.72 / n ** 0.55
        mean = w1 * (minimum + maximum) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * median
        return mean, (maximum - minimum) / (2 * xi) + (q3 - q1) / (2 * eta), "S3"
    if ok(q1, q3):
        w = 0.7 + 0.39 / n
        return w * (q1 + q3) / 2 + (1 - w) * median, (q3 - q1) / eta, "S2"
    if ok(minimum, maximum):
        w = 4 / (4 + n ** 0.75)
        return w * (minimum + maximum) / 2 + (1 - w) * median, (maximum - minimum) / xi, "S1"
    return nan, nan, ""


@check("median-iqr-not-mean-sd", "warning",
       "A median with its IQR or range where a mean and SD are expected; with convert_median_iqr: true, mean and SD "
       "are estimated (Luo et al. 2018; Wan et al. 2014) and noted as median-iqr-converted.",
       [Param("means", "fields", types=NUMBER, help="each arm's mean, e.g. [mean_intervention, mean_control]"),
        Param("sds", "fields", types=NUMBER, like="means", help="each arm's SD, same order"),
        Param("medians", "fields", types=NUMBER, like="means", help="each arm's median, same order"),
        Param("totals", "fields", types=NUMBER, like="means", help="each arm's total, same order"),
        Param("q1", "fields", types=NUMBER, required=False, like="means", help="each arm's first quartile"),
        Param("q3", "fields", types=NUMBER, required=False, like="means", help="each arm's third quartile"),
        Param("minimum", "fields", types=NUMBER, required=False, like="means", help="each arm's minimum (range)"),
        Param("maximum", "fields", types=NUMBER, required=False, like="means", help="each arm's maximum (range)"),
        Param("convert_median_iqr", "flag", required=False,
              help="true: estimate the missing mean and SD from the median and IQR/range (default false)")])
def median_iqr_not_mean_sd(ctx: Context, sheet: str, severity: str, means, sds, medians, totals, q1=None, q3=None,
                           minimum=None, maximum=None, convert_median_iqr=False):
    import numpy as np

    data = ctx.table(sheet).data
    out = []
    note = REGISTRY["median-iqr-converted"].severity

    def col(names, arm):
        if not names or names[arm] not in data:
            return np.full(len(data), np.nan)
        return ctx.num(sheet, names[arm])

    for arm, (mf, sf, medf, nf) in enumerate(zip(means, sds, medians, totals)):
        if any(f not in data for f in (mf, sf, medf)):
            continue
        m, s, med, n = col(means, arm), col(sds, arm), col(medians, arm), col(totals, arm)
        a, b, lo, hi = col(q1, arm), col(q3, arm), col(minimum, arm), col(maximum, arm)
        has_iqr, has_range = _present(a, b), _present(lo, hi)
        todo = ~np.isnan(med) & (np.isnan(m) | np.isnan(s)) & (has_iqr | has_range)
        for i in np.flatnonzero(todo):
            given = [f"{medf} = {fmt(med[i])} ({ctx.cell(sheet, medf, i)})"]
            if has_iqr[i]:
                given.append(f"IQR {fmt(a[i])} to {fmt(b[i])} ({ctx.cell(sheet, q1[arm], i)}, {ctx.cell(sheet, q3[arm], i)})")
            if has_range[i]:
                given.append(f"range {fmt(lo[i])} to {fmt(hi[i])} ({ctx.cell(sheet, minimum[arm], i)}, "
                             f"{ctx.cell(sheet, maximum[arm], i)})")
            empty = [f for f, v in ((mf, m[i]), (sf, s[i])) if np.isnan(v)]
            cells = ", ".join(ctx.cell(sheet, f, i) for f in empty)
            mean_est, sd_est, scen = (mean_sd_from_quantiles(n[i], med[i], a[i] if has_iqr[i] else None,
                                                             b[i] if has_iqr[i] else None,
                                                             lo[i] if has_range[i] else None,
                                                             hi[i] if has_range[i] else None)
                                      if convert_median_iqr else (float("nan"),) * 2 + ("",))
            if convert_median_iqr and scen:
                done = []
                if np.isnan(m[i]):
                    data.loc[data.index[i], mf] = mean_est
                    done.append(f"{mf} = {mean_est:.4g} (Luo et al. 2018)")
                if np.isnan(s[i]):
                    data.loc[data.index[i], sf] = sd_est
                    done.append(f"{sf} = {sd_est:.4g} (Wan et al. 2014)")
                msg = (f"{' and '.join(empty)} ({cells}) estimated from {', '.join(given)} and {nf} = {fmt(n[i])} "
                       f"({ctx.cell(sheet, nf, i)}), scenario {scen}: {'; '.join(done)}; these estimates assume a "
                       "roughly normal outcome and are used for pooling (convert_median_iqr: true)")
                out.append(ctx.finding(sheet, i, empty[0], "median-iqr-converted", note, msg, None))
                continue
            why = (f"; it cannot be converted without {nf} ({ctx.cell(sheet, nf, i)})" if convert_median_iqr else
                   "; set convert_median_iqr: true on this check to estimate them (Luo et al. 2018 for the mean, "
                   "Wan et al. 2014 for the SD), or leave this arm out of the pooled means")
            msg = (f"{' and '.join(empty)} empty ({cells}) but {', '.join(given)} reported: a median and its IQR or "
                   f"range are not a mean and SD{why}")
            out.append(ctx.finding(sheet, i, medf, "median-iqr-not-mean-sd", severity, msg, med[i]))
    return out


companion("median-iqr-converted", "info",
          "A mean and SD estimated from a median with its IQR or range (convert_median_iqr: true; Luo et al. 2018, "
          "Wan et al. 2014).", "median-iqr-not-mean-sd")


# ---------------------------------------------------------------------------------------------
# Field rules through pandera
# ---------------------------------------------------------------------------------------------


def _vocab_sets(vocab):
    values = set(vocab.values)
    rejected = {fold_ for fold_ in vocab.rejected}
    return values, rejected


def _distinct(is_bad: Callable[[Any], bool]):
    """A vectorised check that calls ``is_bad`` once per distinct value, not once per row."""

    def check(series):
        bad = [v for v in series.dropna().unique() if is_bad(v)]
        return ~series.isin(bad) if bad else series.notna() | series.isna()

    return check


def column_schema(schema: Any, sheet: str):
    """Compile one sheet's field declarations into a pandera ``DataFrameSchema``.

    Returns the schema and ``{(column, check_number): (rule, severity)}`` to name its failures.
    """
    import re

    import numpy as np
    import pandera.pandas as pa

    spec = schema.sheets[sheet]
    columns = {}
    codes: dict[tuple[str, int], tuple[str, str]] = {}
    for name, fs in spec.fields.items():
        checks = []

        def add(check, rule, severity="error", _name=name, _checks=checks):
            codes[(_name, len(_checks))] = (rule, severity)
            _checks.append(check)

        lo, hi = fs.min, fs.max_value
        if lo is not None:
            add(pa.Check.ge(lo), "out-of-range")
        if hi is not None:
            add(pa.Check.le(hi), "out-of-range")
        if fs.min_exclusive is not None:
            add(pa.Check.gt(fs.min_exclusive), "out-of-range")
        if fs.warn_min is not None:
            add(pa.Check.ge(fs.warn_min), "implausible-value", "warning")
        if fs.warn_max is not None:
            add(pa.Check.le(fs.warn_max), "implausible-value", "warning")
        if fs.pattern is not None:
            rx = re.compile(fs.pattern)
            add(pa.Check(_distinct(lambda v, _rx=rx: isinstance(v, str) and not _rx.match(v))), "invalid-format")
        if fs.vocabulary is not None:
            vocab = schema.vocabularies[fs.vocabulary]
            values = set(vocab.values)
            pattern = re.compile(vocab.eligible_pattern, re.I) if vocab.eligible_pattern else None
            ineligible_terms = {t.value for t in vocab.terms if not t.eligible}
            warned = {t.value for t in vocab.terms if t.warning}

            # each predicate binds this field's vocabulary now (not the loop's last one at call time)
            def is_rejected(v, _vocab=vocab):
                return isinstance(v, str) and _vocab.rejection(v) is not None

            def is_unknown(v, _values=values, _pattern=pattern, _rejected=is_rejected):
                return (isinstance(v, str) and v not in _values and not _rejected(v)
                        and (_pattern is None or bool(_pattern.search(v))))

            def is_ineligible(v, _values=values, _pattern=pattern, _bad=ineligible_terms, _rejected=is_rejected):
                if not isinstance(v, str):
                    return False
                if v in _bad:
                    return True
                return v not in _values and not _rejected(v) and _pattern is not None and not _pattern.search(v)

            add(pa.Check(_distinct(is_unknown)), "unknown-term")
            add(pa.Check(_distinct(is_rejected)), "rejected-term")
            add(pa.Check(_distinct(is_ineligible)), "ineligible-term")
            if warned:
                add(pa.Check(lambda s, w=warned: ~s.isin(w)), "unspecific-term", "warning")
        nullable = not fs.required
        if not nullable:
            codes[(name, -1)] = ("missing-required", "error")
        columns[name] = pa.Column(checks=checks, nullable=nullable, required=False)
    key = list(spec.key)
    # the first row of a key is taken; every later repeat is the duplicate (pandas' duplicated())
    frame_schema = pa.DataFrameSchema(columns, unique=key if len(key) > 0 else None, report_duplicates="exclude_first",
                                      strict=False)
    del np
    return frame_schema, codes


def _same(a: Any, b: Any) -> bool:
    """Equal cell values, NaN and None included."""
    a_missing = a is None or (isinstance(a, float) and a != a)
    b_missing = b is None or (isinstance(b, float) and b != b)
    return (a_missing and b_missing) or (not a_missing and not b_missing and a == b)


def run_field_rules(ctx: Context, sheet: str) -> list[Finding]:
    """Run the pandera schema of one sheet (lazily: every failure) and turn failures into findings."""
    import numpy as np
    import pandera.pandas as pa

    table = ctx.table(sheet)
    data = table.data
    if len(data) == 0:
        return []
    spec = ctx.schema.sheets[sheet]
    frame_schema, codes = column_schema(ctx.schema, sheet)
    present = [f for f in spec.fields if f in data]
    try:
        frame_schema.validate(data[present], lazy=True)
        return []
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    out: list[Finding] = []
    seen_dupes: set[int] = set()
    key = list(spec.key)
    for row in cases.itertuples(index=False):
        idx = row.index
        if idx is None or (isinstance(idx, float) and np.isnan(idx)):
            continue
        i = int(idx)
        col = row.column
        if row.check in ("multiple_fields_uniqueness", "field_uniqueness"):
            if i in seen_dupes:
                continue
            seen_dupes.add(i)
            keyval = ", ".join(f"{k} {data[k].iat[i]!s}" for k in key)
            same = np.flatnonzero(np.logical_and.reduce([
                (data[k].isna() if _same(data[k].iat[i], None) else data[k].eq(data[k].iat[i])).to_numpy(dtype=bool)
                for k in key]))
            first = int(same[0]) if len(same) else i
            fields = [f for f in spec.fields if f in data and not spec.fields[f].metadata]
            identical = all(_same(data[f].iat[i], data[f].iat[first]) for f in fields)
            what = "an exact copy of" if identical else "a second row for the same key as"
            there = table.ref(first, None)
            if table.files[first] != table.files[i]:
                from pathlib import Path

                there = f"{there} of {Path(table.files[first]).name}"
            out.append(ctx.finding(sheet, i, key[-1], "duplicate-key", "error",
                                   f"row key ({keyval}) appears more than once: {table.ref(i, key[-1])} is {what} "
                                   f"{there}; this row is excluded (delete it, or correct its key)",
                                   data[key[-1]].iat[i]))
            continue
        if row.check == "not_nullable":
            if i in table.unreadable.get(col, ()):
                continue  # the cell holds something unreadable: reported once, as invalid-number
            rule, severity = codes.get((col, -1), ("missing-required", "error"))
            out.append(ctx.finding(sheet, i, col, rule, severity,
                                   f"{col} is required but empty ({table.ref(i, col)})", None))
            continue
        num = row.check_number
        if num is None or (isinstance(num, float) and np.isnan(num)):
            continue
        rule, severity = codes[(col, int(num))]
        out.append(_field_finding(ctx, sheet, i, col, rule, severity))
    return out


def _field_finding(ctx: Context, sheet: str, i: int, col: str, rule: str, severity: str) -> Finding:
    import difflib

    table = ctx.table(sheet)
    fs = ctx.schema.sheets[sheet].fields[col]
    value = table.data[col].iat[i]
    raw = table.raw[col].iat[i]
    ref = table.ref(i, col)
    if rule == "out-of-range":
        unit = ctx.unit(sheet, col, i)
        msg = f"{col} = {fmt(value)}{unit} ({ref}) must be {' and '.join(fs.bounds())}"
    elif rule == "implausible-value":
        unit = ctx.unit(sheet, col, i)
        lo = fmt(fs.warn_min) if fs.warn_min is not None else "-"
        hi = fmt(fs.warn_max) if fs.warn_max is not None else "-"
        msg = f"{col} = {fmt(value)}{unit} ({ref}) is outside the plausible range {lo}..{hi}{unit}; check the paper"
    elif rule == "invalid-format":
        msg = f"{col} {value!r} ({ref}) is not of the form {fs.pattern_hint or fs.pattern}"
    else:
        vocab = ctx.schema.vocabularies[fs.vocabulary]
        if rule == "rejected-term":
            msg = f"{col} {value!r} ({ref}): {vocab.rejection(value)}"
        elif rule == "ineligible-term":
            term = vocab.by_value.get(value)
            reason = vocab.ineligible_reason or "not eligible for this review"
            msg = (f"{col} {value!r} ({ref}): {reason}" if term is not None else
                   f"{col} {value!r} ({ref}) is {reason}")
        elif rule == "unspecific-term":
            msg = f"{col} {value!r} ({ref}): {vocab.by_value[value].warning}"
        else:
            labels = list(vocab.lookup)
            from .schema import fold
            close = difflib.get_close_matches(fold(value), [l for l in labels if not l.startswith("~")], n=1, cutoff=0.6)
            hint = f" (did you mean {vocab.lookup[close[0]]!r}?)" if close else ""
            allowed = ", ".join(vocab.values)
            msg = f"{col} {value!r} ({ref}) is not a known term{hint}; allowed: {allowed}"
    return ctx.finding(sheet, i, col, rule, severity, msg, raw)


def run_checks(ctx: Context) -> list[Finding]:
    """Every check the schema names, each over whole columns."""
    out: list[Finding] = []
    for sheet, checks in ctx.schema.checks.items():
        if sheet not in ctx.tables or len(ctx.tables[sheet]) == 0:
            continue
        for entry in checks:
            rule = REGISTRY[entry.rule]
            params = entry.params
            # a check on a field whose column is absent from every form has nothing to look at
            needed = []
            for p in rule.params:
                v = params.get(p.name)
                if p.kind in ("field",) and v:
                    needed.append(v)
                elif p.kind == "fields" and v:
                    needed.extend(v)
            if any(f not in ctx.tables[sheet].data for f in needed):
                continue
            out.extend(rule.func(ctx, sheet, entry.severity or rule.severity, **params))
    return out


def run_links(ctx: Context) -> list[Finding]:
    """Rows whose study is not on the parent sheet (``unknown-study``)."""
    import numpy as np

    out = []
    for sheet, spec in ctx.schema.sheets.items():
        if spec.parent is None or sheet not in ctx.tables or len(ctx.tables[sheet]) == 0:
            continue
        if spec.parent.sheet not in ctx.tables:
            continue
        pos = ctx._parent_positions(sheet, spec.parent.sheet)
        link = ctx.tables[sheet].data[spec.parent.key]
        for i in np.flatnonzero((pos < 0) & link.notna().to_numpy()):
            v = link.iat[i]
            msg = (f"{spec.parent.key} {v!s} ({ctx.tables[sheet].ref(int(i), spec.parent.key)}) is not on the "
                   f"{spec.parent.sheet} sheet")
            out.append(ctx.finding(sheet, int(i), spec.parent.key, "unknown-study", "error", msg, v))
    return out


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
    return out


def _register_schema_validator() -> None:
    from .registry import register_schema_validator

    register_schema_validator(check_problems)


_register_schema_validator()

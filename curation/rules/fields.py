"""Field rules: what each field's declaration requires (type, range, pattern, vocabulary, key).

Cell rules are applied by the normaliser (a value that cannot be read as its type); the
column-level ones run as a pandera schema compiled from the YAML (:func:`column_schema`),
whose failure-cases table becomes findings (:func:`run_field_rules`); :func:`run_links` reports
rows whose study is not on the parent sheet.
"""

from __future__ import annotations

from typing import Any, Callable

from ..cells import format_number as fmt
from ..findings import Finding
from .context import Context
from .registry import declare


# cells: a value that cannot be read as its type (curation.normalise)
declare("invalid-number", "error", "A number field holds something that is not one number.", "cell")
declare("not-an-integer", "error", "A count holds a fraction.", "cell")
declare("invalid-year", "error", "A year or date field holds something that is not a year.", "cell")
declare("combined-median-ci", "info", "A median cell holds 'median (low-high)'; it is split into median and CI.", "cell")
declare("combined-ci-mismatch", "warning", "A 'median (low-high)' cell whose bound differs from the typed CI cell of its "
        "row (the typed cell is read).", "cell")
declare("unknown-unit", "error", "A number with a unit (in the cell or its header) that the schema cannot convert.", "cell")
declare("unit-conflict", "error", "A cell states a unit that contradicts the row's unit column.", "cell")
# fields: from each field's declaration (pandera, compiled from the schema)
declare("missing-required", "error", "A required field is empty.", "field")
declare("out-of-range", "error", "A value outside the field's declared min/max.", "field")
declare("implausible-value", "warning", "A value outside the field's plausible range (warn_min/warn_max).", "field")
declare("invalid-format", "error", "Text that does not match the field's pattern (study_id, DOI ...).", "field")
declare("unknown-term", "error", "A vocabulary value that matches no term or alias.", "field")
declare("rejected-term", "error", "A vocabulary value the schema rejects with a reason (G4, 'high grade').", "field",
        excludes="record")
declare("ineligible-term", "error", "A term that makes the study ineligible (a term the vocabulary marks "
        "eligible: false, or text outside its eligible_pattern).", "field", excludes="record")
declare("unspecific-term", "warning", "An accepted but unspecific term (one the vocabulary gives a warning).", "field")
declare("duplicate-key", "error", "Two rows with the same row key (study_id, or study_id + cohort ...).", "field",
        excludes="record")
declare("unknown-study", "error", "A row whose study_id is not on the studies sheet.", "field", excludes="record")
declare("study-excluded", "error", "A row excluded because its study's row on the studies sheet has an error.",
        "field", excludes="record")


# ---------------------------------------------------------------------------------------------
# Field rules through pandera
# ---------------------------------------------------------------------------------------------


def _vocab_sets(vocab):
    values = set(vocab.values)
    rejected = {fold_ for fold_ in vocab.rejected}
    return values, rejected


def _distinct(is_bad: Callable[[Any], bool]):
    """A vectorised check that calls ``is_bad`` once per distinct value, not once per row. An empty cell
    passes (``is_bad`` is False for anything but text), so pandera need not drop them first
    (``ignore_na=False``: two scans of a text column fewer per check)."""
    import pandas as pd

    def check(series):
        bad = [v for v in series.unique() if is_bad(v)]
        return ~series.isin(bad) if bad else pd.Series(True, index=series.index)

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
            add(pa.Check(_distinct(lambda v, _rx=rx: isinstance(v, str) and not _rx.match(v)), ignore_na=False),
                "invalid-format")
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

            add(pa.Check(_distinct(is_unknown), ignore_na=False), "unknown-term")
            add(pa.Check(_distinct(is_rejected), ignore_na=False), "rejected-term")
            add(pa.Check(_distinct(is_ineligible), ignore_na=False), "ineligible-term")
            if warned:  # an empty cell is in no set of terms: it passes
                add(pa.Check(lambda s, w=warned: ~s.isin(w), ignore_na=False), "unspecific-term", "warning")
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
            if any(k in spec.fields and spec.fields[k].required and _missing(data[k].iat[i]) for k in key):
                continue  # a required key part is empty: missing-required says so (the rows may well differ)
            keyval = ", ".join(f"{k} {data[k].iat[i]!s}" for k in key)
            same = np.flatnonzero(np.logical_and.reduce([
                (data[k].isna() if _same(data[k].iat[i], None) else data[k].eq(data[k].iat[i])).to_numpy(dtype=bool)
                for k in key]))
            first = int(same[0]) if len(same) else i
            fields = [f for f in spec.fields if f in data and not spec.fields[f].metadata]
            identical = all(_same(data[f].iat[i], data[f].iat[first]) for f in fields)
            what = "an exact copy of" if identical else "a second row for the same key as"
            # the first row's own row; its key cell where the record is not a row (a column of a transposed sheet)
            there = table.ref(first, key[-1] if table.row_of(first, key[-1]) != table.rows[first] else None)
            if table.files[first] != table.files[i]:
                from pathlib import Path

                there = f"{there} of {Path(table.files[first]).name}"
            out.append(ctx.finding(sheet, i, key[-1], "duplicate-key", ctx.severity("duplicate-key"),
                                   f"row key ({keyval}) appears more than once: {table.ref(i, key[-1])} is {what} "
                                   f"{there}; this row is excluded (delete it, or correct its key)",
                                   data[key[-1]].iat[i], involves=key))
            continue
        if row.check == "not_nullable":
            if i in table.unreadable.get(col, ()):
                continue  # the cell holds something unreadable: reported once, as invalid-number
            rule, _ = codes.get((col, -1), ("missing-required", "error"))
            severity = ctx.severity(rule)
            out.append(ctx.finding(sheet, i, col, rule, severity,
                                   f"{col} is required but empty ({table.ref(i, col)})", None))
            continue
        num = row.check_number
        if num is None or (isinstance(num, float) and np.isnan(num)):
            continue
        rule, _ = codes[(col, int(num))]
        out.append(_field_finding(ctx, sheet, i, col, rule, ctx.severity(rule)))
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
        from ..schema import fold

        vocab = ctx.schema.vocabularies[fs.vocabulary]
        # the reviewer's own words first ('single-arm'), then the term it reads as ('non-randomised')
        typed = raw.strip() if isinstance(raw, str) and raw.strip() else value
        said = (f"{typed!r} (read as {value!r})" if isinstance(typed, str) and isinstance(value, str)
                and fold(typed) != fold(value) else f"{typed!r}")
        if rule == "rejected-term":
            msg = f"{col} {said} ({ref}): {vocab.rejection(value)}"
        elif rule == "ineligible-term":
            term = vocab.by_value.get(value)
            reason = vocab.ineligible_reason or "not eligible for this review"
            msg = (f"{col} {said} ({ref}): {reason}" if term is not None else
                   f"{col} {said} ({ref}) is {reason}")
        elif rule == "unspecific-term":
            msg = f"{col} {said} ({ref}): {vocab.by_value[value].warning}"
        else:
            labels = list(vocab.lookup)
            close = difflib.get_close_matches(fold(value), [l for l in labels if not l.startswith("~")], n=1, cutoff=0.6)
            hint = f" (did you mean {vocab.lookup[close[0]]!r}?)" if close else ""
            allowed = ", ".join(vocab.values)
            msg = f"{col} {value!r} ({ref}) is not a known term{hint}; allowed: {allowed}"
    return ctx.finding(sheet, i, col, rule, severity, msg, raw)


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
            out.append(ctx.finding(sheet, int(i), spec.parent.key, "unknown-study", ctx.severity("unknown-study"), msg, v))
    return out


def _missing(v: object) -> bool:
    """An empty cell (None, NaN, or a text of spaces)."""
    import pandas as pd

    return v is None or (isinstance(v, str) and not v.strip()) or bool(pd.isna(v)) if not isinstance(v, (list, tuple)) \
        else False

"""One worksheet's columns: the field and the form (plain, composite, unit) of each column."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..reading import SheetGrid, column_letter, sheet_key
from ..schema import NUMERIC_TYPES, ReviewSchema, fold
from .cells import Kind, _cell_text, _text, content_kind
from .headers import FieldIndex, _header_unit, _quals_text, split_header
from .model import ColumnLayout, IgnoredColumn, SheetLayout, _col_index
from .labels import sheet_labels
from .long import detect_long
from .nondata import row_structure

if TYPE_CHECKING:
    from .structure import _SheetGuess


def _sheet_layout(schema: ReviewSchema, index: FieldIndex, g: _SheetGuess, tables: list[str],
                  by_name: bool, shape: str | None = None, rows_from: SheetLayout | None = None) -> SheetLayout:
    """One worksheet's layout; ``shape="wide"`` reads it as wide even where it reads as long too (the rival
    explanation that :mod:`curation.layout.compete` scores against the long one); ``rows_from``: take the
    non-data rows, headings and blocks of that layout of the sheet instead of finding them again (the
    rival's columns are all the score needs)."""
    grid = g.grid
    vals = grid.values
    first_data = g.header_rows[-1] + 1
    cols: list[ColumnLayout] = []
    ignored: dict[str, IgnoredColumn] = {}
    table_fields = {t: set(schema.sheets[t].fields) for t in tables}
    long = detect_long(schema, index, grid, [c.header for c in g.candidates], first_data, tables) \
        if shape != "wide" else None
    long_cols = set(long["roles"]) | {long["outcome_column"]} if long else set()
    # a sheet below the studies sheet (adverse events) naming each row's study by its first author and year in
    # two columns, with no study_id column: those columns are the row's identity (study_id derived from them
    # as on the studies sheet), though the sheet's own fields do not include them
    id_tables = [t for t in tables if "study_id" in table_fields[t]]
    has_id = any(t in tables and f == "study_id" for c in g.candidates for t, f in c.fields)
    identity = {f: next(t for t, spec in schema.sheets.items() if f in spec.fields)
                for f in ("first_author", "year")
                if id_tables and not has_id and not any(f in table_fields[t] for t in tables)
                and any(f in spec.fields for spec in schema.sheets.values())}
    present = {f for f in identity if any(t == identity[f] and f2 == f for c in g.candidates for t, f2 in c.fields)}
    if present == {"year"}:
        present = set()
    identity = {f: identity[f] for f in present}  # both columns, or an 'Author (year)' one (checked below)
    for c in g.candidates:
        letter = column_letter(c.col)
        if letter in long_cols:
            continue  # the outcome column and the role columns of a long sheet: bound by outcome x role
        fields = [f for t, f in c.fields if t in tables]
        fields = list(dict.fromkeys(fields))
        if not c.header:
            continue
        if not fields and identity:
            fields = [f for t, f in c.fields if f in identity and t == identity[f]][:1]
        if not fields:
            core, _q, ci = split_header(c.header)
            prev = next((col for col in reversed(cols) if col.kind in ("value", "median_ci")), None)
            prev_fs = _field_spec(schema, tables, prev.parts.get("value")) if prev is not None else None
            if ci and not core and prev is not None and prev_fs is not None and prev_fs.combined and \
                    _col_index(prev.column) == c.col - 1:
                # '95% CI' right of a median column: that median's interval
                lo_hi = prev_fs.combined
                cols.append(ColumnLayout(column=letter, header=c.header, kind="ci",
                                         parts={"low": lo_hi["low"], "high": lo_hi["high"]}, confidence="medium",
                                         hidden=c.col in grid.hidden_columns,
                                         note=f"the interval of {prev.parts['value']} in {prev.column}"))
                continue
            ignored[letter] = IgnoredColumn(header=c.header)
            continue
        fname = fields[0]
        table = next((t for t in tables if fname in table_fields[t]), None) or identity[fname]
        fs = schema.sheets[table].fields[fname]
        body = vals[first_data:, c.col] if first_data < len(vals) else np.zeros(0, object)
        kind = content_kind(body)
        qtext = _quals_text(c.quals)
        if kind is not None and c.how == "exact" and not c.quals and by_name_hint(grid.title, tables, schema):
            # the template's own layout: a composite cell here and there is the normaliser's to read
            n_text = sum(1 for v in body if _text(v) is not None)
            if n_text < 3:
                kind = None
        parts: dict[str, str] = {"value": fname}
        k: Kind = "value"
        low_high = fs.combined
        if fname in ("first_author", "study_id") and (kind == "author_year" or "year" in qtext):
            k = "author_year"
            parts = {"author": "first_author", "year": "year", "id": "study_id", "cohort": "cohort"}
            if fname == "study_id" and kind != "author_year":
                k, parts = "value", {"value": "study_id"}
        elif fname in identity and len(identity) == 1:
            ignored[letter] = IgnoredColumn(header=c.header)  # an author without a year: no study identity
            continue
        elif low_high and (kind == "ci" or (c.ci_in_core and kind != "median_ci")):
            k, parts = "ci", {"low": low_high["low"], "high": low_high["high"]}
        elif low_high and (kind == "median_ci" or ("ci" in qtext and kind != "ci")):
            k, parts = "median_ci", {"value": fname, "low": low_high["low"], "high": low_high["high"]}
        elif fs.type == "percentage" and (kind == "count_pct" or re.search(r"\bn\b", qtext)):
            k, parts = "count_pct", {"percent": fname}
            if fs.count_field:
                parts["count"] = fs.count_field
        elif c.ci_in_core and not low_high and fname not in _ci_bounds(schema, tables):
            # 'X 95% CI' of a field without a CI pair (and not itself a CI bound, 'OS 95% CI lower'): not this field
            ignored[letter] = IgnoredColumn(header=c.header)
            continue
        unit = _header_unit(schema, c.quals) if k in ("value", "median_ci", "ci") and fs.type in NUMERIC_TYPES \
            and fs.type != "year" else None
        conf = "high" if c.how == "exact" and k == "value" else \
            ("medium" if c.how in ("exact", "synonym", "core", "ci") else "low")
        note = None
        if len(fields) > 1 and k == "value":
            note = f"also matches {', '.join(fields[1:])}"
        cols.append(ColumnLayout(column=letter, header=c.header, kind=k, parts=parts, unit=unit, confidence=conf,
                                 hidden=c.col in grid.hidden_columns, note=note))
    cols = _explicit_ci_first(cols)
    cols = _resolve_duplicates(schema, grid, cols, first_data, ignored)
    derived: dict[str, str] = {}
    mapped = {f for col in cols for f in col.parts.values()}
    for table in tables:
        spec = schema.sheets[table]
        if "study_id" in spec.fields and "study_id" not in mapped:
            src = next((col for col in cols if col.kind == "author_year"), None)
            if src is None and "first_author" in mapped and "year" in mapped:
                derived["study_id"] = "first_author + year"
            elif src is not None:
                derived["study_id"] = f"{src.column} ({src.header})"
        if "cohort" in spec.fields and "cohort" not in mapped:
            src = next((col for col in cols if col.kind == "author_year"), None)
            derived["cohort"] = (f"the text after the year in {src.column}, else "
                                 f"'{schema.analysis.overall_cohort}'") if src else f"'{schema.analysis.overall_cohort}'"
    if rows_from is not None:
        return rows_from.model_copy(update={"columns": cols, "ignored": ignored, "derived": derived,
                                            "shape": "wide", "outcome_column": None, "roles": {}, "outcomes": {}})
    comments, headings, blocks = row_structure(schema, grid, g, cols, first_data)
    labels, block_layouts, unmatched = sheet_labels(schema, tables, grid, g.header_rows, cols, headings, blocks)
    for r in unmatched:
        labels[r] = {}  # a heading that gives no value: reported, its rows keep what they state
    return SheetLayout(sheet=grid.title, tables=tables, headerRows=[r + 1 for r in g.header_rows], columns=cols,
                       ignored=ignored, derived=derived, commentRows=comments, by_name=by_name,
                       labels=dict(sorted(labels.items())), blocks=block_layouts,
                       **({"shape": "long", "outcomeColumn": long["outcome_column"], "roles": long["roles"],
                           "outcomes": long["outcomes"]} if long else {}))


def _ci_bounds(schema: ReviewSchema, tables: list[str]) -> set[str]:
    """The fields that are the lower or upper bound of another field's CI (``os_ci_low``, ``os_ci_high``)."""
    return {b for t in tables for fs in schema.sheets[t].fields.values() if fs.combined
            for b in (fs.combined["low"], fs.combined["high"])}


def _explicit_ci_first(cols: list[ColumnLayout]) -> list[ColumnLayout]:
    """A median column read as 'median (low-high)' because of its cells alone (its header names no CI) beside
    columns of its own CI bounds: the bound columns are read, and the median column as plain values, so that
    a composite cell in it is split and cross-checked against the bound cells of its row (by the normaliser)
    instead of making the bound columns 'duplicates' for every row."""
    plain = {f for col in cols if col.kind == "value" for f in col.parts.values()}
    out = []
    for col in cols:
        if col.kind == "median_ci" and col.parts.get("low") in plain and col.parts.get("high") in plain and \
                not split_header(col.header)[2] and not re.search(r"\bci\b|confidence|interval", fold(col.header)):
            col = col.model_copy(update={"kind": "value", "parts": {"value": col.parts["value"]},
                                         "note": f"composite cells split and checked against "
                                                 f"{col.parts['low']}, {col.parts['high']}"})
        out.append(col)
    return out


def _field_spec(schema: ReviewSchema, tables: list[str], field: str | None):
    if field is None:
        return None
    for t in tables:
        if field in schema.sheets[t].fields:
            return schema.sheets[t].fields[field]
    return None


def by_name_hint(title: str, tables: list[str], schema: ReviewSchema) -> bool:
    """The sheet is named as the contract sheet it holds (the template's own layout)."""
    return len(tables) == 1 and sheet_key(title) == sheet_key(tables[0])


def _formula_share(grid: SheetGrid, col: int, first_data: int) -> float:
    """The share of a column's filled data cells (below row ``first_data``, 0-based) that are formulas."""
    if not grid.formula_cells:
        return 0.0
    rows = {r for (r, c) in grid.formula_cells if c == col and r > first_data}
    if not rows:
        return 0.0
    typed = sum(1 for i, v in enumerate(grid.values[first_data:, col]) if _cell_text(v) and first_data + i + 1 not in rows)
    return len(rows) / (len(rows) + typed)


def _resolve_duplicates(schema: ReviewSchema, grid: SheetGrid, cols: list[ColumnLayout], first_data: int,
                        ignored: dict[str, IgnoredColumn]) -> list[ColumnLayout]:
    """Two columns for one field: visible over hidden, typed over formula, better match over worse."""
    rank = {"high": 0, "medium": 1, "low": 2}
    by_field: dict[str, list[int]] = {}
    for i, col in enumerate(cols):
        for part, f in col.parts.items():
            if part in ("cohort", "id"):
                continue
            by_field.setdefault(f, []).append(i)
    drop: dict[int, tuple[str, str]] = {}
    typed_over_label: dict[int, set[str]] = {}
    for f, idxs in by_field.items():
        live = [i for i in idxs if i not in drop]
        if len(live) < 2:
            continue
        labels = [i for i in live if cols[i].kind == "author_year"]
        if labels and len(labels) < len(live):
            # a study label's author or year beside a column named for that field ('First author', 'Year'): the
            # typed column is read (as explicit CI columns beat a composite cell); the label keeps giving the
            # study's id and is cross-checked against the typed cells (label-conflict where they differ)
            live = [i for i in live if i not in labels]
            for i in labels:
                typed_over_label.setdefault(i, set()).add(f)
            if len(live) < 2:
                continue

        def key(i: int):
            col = cols[i]
            c0 = _col_index(col.column)
            return (col.hidden, _formula_share(grid, c0, first_data) > 0.5, col.kind == "value" and
                    any(cols[j].kind != "value" for j in live), rank[col.confidence], c0)

        winner = min(live, key=key)
        for i in live:
            if i == winner:
                continue
            col = cols[i]
            why = ("hidden" if col.hidden else "computed by formulas" if
                   _formula_share(grid, _col_index(col.column), first_data) > 0.5 else "a second column")
            drop[i] = (f, f"{why}; {f} is read from {cols[winner].column} ({cols[winner].header!r})")
    out = []
    for i, col in enumerate(cols):
        if i in drop:
            ignored[col.column] = IgnoredColumn(header=col.header, field=drop[i][0], reason=drop[i][1])
            continue
        out.append(col)
    for k, col in enumerate(out):
        if col.kind != "author_year":
            continue
        given = {f: next((c.column for c in out if c.kind != "author_year" and f in c.parts.values()), "")
                 for f in set().union(*(fs for i, fs in typed_over_label.items() if cols[i] is col))}
        if given:
            note = "; ".join(f"{f} read from {given[f]}" for f in sorted(given)) + \
                " (typed); the label's are cross-checked against them"
            out[k] = col.model_copy(update={"parts": {p: f for p, f in col.parts.items() if f not in given},
                                            "note": note})
    return out

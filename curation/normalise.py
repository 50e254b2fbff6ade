"""Normalisation: raw cells -> typed, canonical columns (one table per sheet).

Numbers are parsed (numbers as text, decimal commas, percentages, ``NR``, missing markers,
combined ``median (low-high)`` cells), vocabulary labels are mapped to their canonical term,
values with a unit field are converted to their vocabulary's unit of factor 1 (months in the shipped schema),
p-values keep their bound (``<0.001``, ``NS``), and every cell that cannot be read becomes a finding
on that cell. Several forms are stacked into one table per sheet, each row keeping its file and
Excel row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .cells import (column_decimals, format_number, is_missing_free_text, parse_numeric_column, parse_p_column,
                    text_value)
from .findings import Finding
from .reading import RawWorkbook
from .schema import NUMERIC_TYPES, ReviewSchema, fold

NR_SUFFIX = "__nr"
#: Companion column of a p_value field: "", "<", "<=", ">" or "ns" (see :func:`curation.cells.parse_p_text`).
BOUND_SUFFIX = "__bound"


@dataclass(frozen=True, eq=False)
class Table:
    """One sheet's rows from every form, typed.

    Attributes
    ----------
    sheet : str
        Contract sheet name.
    data : pandas.DataFrame
        One row per data row: a column per field (floats for numbers, canonical strings for
        vocabularies, stripped text, None/NaN when empty), ``<field>__nr`` booleans for fields
        that accept ``NR``, and provenance columns ``_file`` and ``_row``.
    raw : pandas.DataFrame
        The values as typed, one column per field.
    letters : dict
        ``{file: {field: column letter}}``.
    decimals : dict
        ``{field: float array}``: decimal places reported, for percentage and p_value fields.
    extra : dict
        ``{file: {header: column letter}}`` of columns that match no field.
    unreadable : dict
        ``{field: positions}`` of cells that could not be read as their type (already a finding).
    """

    sheet: str
    data: pd.DataFrame
    raw: pd.DataFrame
    letters: dict[str, dict[str, str]]
    decimals: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, dict[str, str]] = field(default_factory=dict)
    unreadable: dict[str, frozenset[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data)

    @cached_property
    def rows(self) -> list[int]:
        """Excel row number of each row (a plain list: cheap to index one at a time)."""
        return [int(r) for r in self.data["_row"]]

    @cached_property
    def files(self) -> list[str]:
        return list(self.data["_file"])

    @cached_property
    def study_ids(self) -> list[str | None]:
        if "study_id" not in self.data:
            return [None] * len(self.data)
        return [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in self.data["study_id"]]

    def letter(self, file: str, fld: str) -> str | None:
        return self.letters.get(file, {}).get(fld)

    def ref(self, i: int, fld: str | None) -> str:
        """``sheet!C12`` for row position ``i`` and field ``fld`` (``sheet!12:12``, the row, without one)."""
        letter = self.letters.get(self.files[i], {}).get(fld) if fld else None
        row = self.rows[i]
        return f"{self.sheet}!{letter}{row}" if letter else f"{self.sheet}!{row}:{row}"

    def study(self, i: int) -> str | None:
        return self.study_ids[i]


def stack(schema: ReviewSchema, workbooks: Iterable[RawWorkbook]) -> dict[str, tuple[pd.DataFrame, dict, dict, dict]]:
    """Stack the raw sheets of several forms: raw frame, letters, percent positions, extras."""
    out = {}
    wbs = list(workbooks)
    for sheet, spec in schema.sheets.items():
        cols: dict[str, list] = {k: [] for k in spec.fields}
        files: list[str] = []
        rows: list[int] = []
        letters: dict[str, dict[str, str]] = {}
        extras: dict[str, dict[str, str]] = {}
        percent: dict[str, set[int]] = {}
        for wb in wbs:
            raw = wb.sheets.get(sheet)
            if raw is None:
                continue
            offset = len(rows)
            n = len(raw.rows)
            for k in spec.fields:
                v = raw.values.get(k)
                cols[k].append(v if v is not None else np.full(n, None, dtype=object))
            for fld, pos in raw.percent_cells.items():
                percent.setdefault(fld, set()).update(p + offset for p in pos)
            files.extend([raw.file] * n)
            rows.extend(raw.rows)
            letters[raw.file] = dict(raw.columns)
            extras[raw.file] = dict(raw.extra_columns)
        frame = pd.DataFrame({k: pd.Series(np.concatenate(v) if v else np.zeros(0, dtype=object), dtype=object)
                              for k, v in cols.items()})
        frame["_file"] = pd.Series(files, dtype=object)
        frame["_row"] = pd.Series(rows, dtype="int64")
        out[sheet] = (frame, letters, {k: frozenset(v) for k, v in percent.items()}, extras)
    return out


def normalise(schema: ReviewSchema, workbooks: Iterable[RawWorkbook]) -> tuple[dict[str, Table], list[Finding]]:
    """Type and canonicalise every sheet; cells that cannot be read become findings.

    Parameters
    ----------
    schema : ReviewSchema
    workbooks : iterable of RawWorkbook

    Returns
    -------
    tables : dict[str, Table]
    findings : list[Finding]
        ``invalid-number``, ``not-an-integer``, ``invalid-year``, ``combined-median-ci``.
        Vocabulary, range and other column checks run later (:mod:`curation.rules`).
    """
    findings: list[Finding] = []
    tables: dict[str, Table] = {}
    for sheet, (raw, letters, percent, extras) in stack(schema, workbooks).items():
        spec = schema.sheets[sheet]
        n = len(raw)
        files = raw["_file"].to_numpy()
        rows = raw["_row"].to_numpy()
        typed: dict[str, Any] = {}
        decimals: dict[str, np.ndarray] = {}
        unreadable: dict[str, frozenset[int]] = {}
        study_ids: list = []

        def emit(i: int, fld: str, rule: str, severity: str, message: str, value: Any) -> None:
            if not study_ids:
                study_ids.extend(typed["study_id"].tolist() if "study_id" in typed else [None] * n)
            letter = letters.get(files[i], {}).get(fld)
            findings.append(Finding(files[i], sheet, int(rows[i]), letter, fld, study_ids[i], rule, severity,
                                    message, value))

        def ref(i: int, fld: str) -> str:
            return f"{sheet}!{letters.get(files[i], {}).get(fld, '')}{rows[i]}"

        # text and vocabulary first (units are needed for the numbers): each distinct value once
        for fld, fs in spec.fields.items():
            if fs.type in NUMERIC_TYPES or fs.type == "p_value":
                continue
            col = raw[fld]
            mapping: dict[Any, Any] = {}
            for v in pd.unique(col.dropna()):
                t = text_value(v)
                if fs.type == "vocabulary":
                    vocab = schema.vocabularies[fs.vocabulary]
                    if t is None:
                        t = fs.default
                    elif vocab.canonical(t) is not None:
                        t = vocab.canonical(t)
                    elif t.casefold() in ("na", "n/a", "-", "--", "none", "nan", "missing"):
                        t = fs.default
                elif (sheet == schema.analysis_sheet and fld == schema.analysis.cohort_field and t is not None
                      and fold(t) == fold(schema.analysis.overall_cohort)):
                    t = schema.analysis.overall_cohort
                elif t is not None and fld not in spec.key and is_missing_free_text(t):
                    t = None  # "n/a", "-", "NA" in a free-text field: no value (keys stay as typed)
                mapping[v] = t
            empty = fs.default if fs.type == "vocabulary" else None
            mapped = col.map(mapping) if mapping else pd.Series([None] * n, dtype=object)
            typed[fld] = mapped.astype(object).where(col.notna(), empty)

        for fld, fs in spec.fields.items():
            if fs.type == "p_value":  # a number and its bound (< 0.001, NS): a bound is never an error
                pcol = parse_p_column(raw[fld].to_numpy())
                unreadable[fld] = frozenset(pcol.invalid)
                for i, reason in sorted(pcol.invalid.items()):
                    emit(i, fld, "invalid-number", "error", f"{fld} ({ref(i, fld)}): {reason}", raw[fld].iat[i])
                typed[fld], typed[fld + BOUND_SUFFIX], decimals[fld] = pcol.values, pcol.bounds, pcol.decimals
                continue
            if fs.type not in NUMERIC_TYPES:
                continue
            values = raw[fld].to_numpy()
            col = parse_numeric_column(values, kind=fs.type, not_reached=fs.not_reached,
                                       combined=fs.combined is not None, percent_positions=percent.get(fld, frozenset()),
                                       reject_not_reached=fs.reject_not_reached)
            unreadable[fld] = frozenset(col.invalid)
            for i, reason in sorted(col.invalid.items()):
                rule = {"integer": "not-an-integer", "year": "invalid-year"}.get(fs.type, "invalid-number")
                if rule == "not-an-integer" and "whole number" not in reason:
                    rule = "invalid-number"
                emit(i, fld, rule, "error", f"{fld} ({ref(i, fld)}): {reason}", values[i])
            typed[fld] = col.values
            if fs.not_reached:
                typed[fld + NR_SUFFIX] = col.not_reached
            if fs.type == "percentage":
                decimals[fld] = column_decimals(values, col.values, percent.get(fld, frozenset()))
            for i, parsed in sorted(col.combined.items()):
                low_f, high_f = fs.combined["low"], fs.combined["high"]
                low_raw, high_raw = raw[low_f].iat[i], raw[high_f].iat[i]
                filled = low_raw in (None, "") and high_raw in (None, "")
                typed.setdefault("_combined", []).append((i, fld, parsed, filled))
                ci = (f"{format_number(parsed.low)}-"
                      f"{'NR' if parsed.high_not_reached else format_number(parsed.high)}")
                if filled:
                    msg = (f"{fld} ({ref(i, fld)}) holds {text_value(values[i])!r}: read as median "
                           f"{'NR' if parsed.median_not_reached else format_number(parsed.value)} with 95% CI {ci} "
                           f"(now {low_f}, {high_f}); type the CI into {ref(i, low_f)} and {ref(i, high_f)}")
                else:
                    msg = (f"{fld} ({ref(i, fld)}) holds {text_value(values[i])!r}: read the median only; the CI "
                           f"cells {ref(i, low_f)} and {ref(i, high_f)} are already filled and were kept")
                emit(i, fld, "combined-median-ci", "info", msg, values[i])

        # combined cells fill their CI fields when those are empty
        for i, fld, parsed, filled in typed.pop("_combined", []):
            if not filled:
                continue
            fs = spec.fields[fld]
            low_f, high_f = fs.combined["low"], fs.combined["high"]
            typed[low_f][i] = parsed.low if parsed.low is not None else np.nan
            if parsed.high_not_reached:
                if high_f + NR_SUFFIX in typed:
                    typed[high_f + NR_SUFFIX][i] = True
            else:
                typed[high_f][i] = parsed.high

        # units: values with a unit field to the unit vocabulary's term of factor 1 (months, say)
        for fld, fs in spec.fields.items():
            if fs.unit_field and fs.type in NUMERIC_TYPES:
                unit_vocab = schema.vocabularies[spec.fields[fs.unit_field].vocabulary]
                factors = {t.value: t.factor for t in unit_vocab.terms if t.factor is not None}
                units = typed[fs.unit_field]
                factor = units.map(factors).astype(float).fillna(1.0).to_numpy(dtype=float)
                typed[fld] = typed[fld] * factor

        data = pd.DataFrame({k: (v if isinstance(v, pd.Series) else pd.Series(v)) for k, v in typed.items()})
        data = data[[c for c in [*spec.fields, *[f + NR_SUFFIX for f, s in spec.fields.items() if s.not_reached],
                                 *[f + BOUND_SUFFIX for f, s in spec.fields.items() if s.type == "p_value"]]
                     if c in data]]
        data["_file"] = raw["_file"].to_numpy()
        data["_row"] = raw["_row"].to_numpy()
        data.index = pd.RangeIndex(n)
        tables[sheet] = Table(sheet=sheet, data=data, raw=raw[list(spec.fields)], letters=letters,
                              decimals=decimals, extra=extras, unreadable=unreadable)
    return tables, findings

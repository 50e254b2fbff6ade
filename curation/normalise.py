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

from .cells import (TEXT_MISSING_EXACT, TEXT_MISSING_LONGEST, TEXT_MISSING_TOKENS, column_decimals, format_number, is_missing_free_text, parse_numeric_column,
                    parse_p_column, text_value, text_values)
from .findings import Finding, quote_sheet
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
    titles : dict
        ``{file: sheet}``: the workbook's own name of the sheet the rows come from (findings and
        messages cite it: ``'Data extraction'!M7``).
    """

    sheet: str
    data: pd.DataFrame
    raw: pd.DataFrame
    letters: dict[str, dict[str, str]]
    decimals: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, dict[str, str]] = field(default_factory=dict)
    unreadable: dict[str, frozenset[int]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    cell_rows: dict[str, np.ndarray] = field(default_factory=dict)
    row_titles: Any = None
    cell_letters: dict[str, np.ndarray] = field(default_factory=dict)
    cell_titles: dict[str, np.ndarray] = field(default_factory=dict)

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

    def row_of(self, i: int, fld: str | None) -> int:
        """Excel row of field ``fld``'s cell in row position ``i`` (a record bound from several rows of a long
        sheet keeps each cell's own row), else the record's row."""
        if fld is not None and fld in self.cell_rows:
            r = self.cell_rows[fld][i]
            if r > 0:
                return int(r)
        return self.rows[i]

    def letter_of(self, i: int, file: str, fld: str | None) -> str | None:
        """Column letter of field ``fld``'s cell in row position ``i`` (a cross-tab keeps each cell's own
        column), else the field's column in ``file``."""
        if fld is None:
            return None
        if fld in self.cell_letters:
            x = self.cell_letters[fld][i]
            if x:
                return x
        return self.letters.get(file, {}).get(fld)

    def letter(self, file: str, fld: str) -> str | None:
        return self.letters.get(file, {}).get(fld)

    def title(self, file: str, i: int | None = None, fld: str | None = None) -> str:
        """The workbook's own name of this sheet in ``file`` (of row position ``i``'s worksheet, where one
        contract sheet is read from several worksheets; of field ``fld``'s own cell, where one record joins
        cells of several worksheets, one sheet per outcome)."""
        if i is not None and fld is not None and fld in self.cell_titles and self.cell_titles[fld][i]:
            return self.cell_titles[fld][i]
        if i is not None and self.row_titles is not None and self.row_titles[i]:
            return self.row_titles[i]
        return self.titles.get(file, self.sheet)

    def ref(self, i: int, fld: str | None) -> str:
        """``sheet!C12`` for row position ``i`` and field ``fld`` (``sheet!12:12``, the row, without one),
        with the workbook's own sheet name (``'Data extraction'!M7``)."""
        file = self.files[i]
        letter = self.letter_of(i, file, fld) if fld else None
        row = self.row_of(i, fld) if letter else self.rows[i]
        sheet = quote_sheet(self.title(file, i, fld if letter else None))
        return f"{sheet}!{letter}{row}" if letter else f"{sheet}!{row}:{row}"

    def study(self, i: int) -> str | None:
        return self.study_ids[i]


def stack(schema: ReviewSchema, workbooks: Iterable[RawWorkbook]) -> dict[str, tuple]:
    """Stack the raw sheets of several forms: raw frame, letters, percent positions, extras, titles, cell units,
    cells' own rows (field -> Excel row per record, 0 for the record's row), each record's worksheet (None
    when all are the sheet's one title) and cells' own columns (field -> letter per record, None for the field's
    column)."""
    out = {}
    wbs = list(workbooks)
    for sheet, spec in schema.sheets.items():
        cols: dict[str, list] = {k: [] for k in spec.fields}
        files: list[str] = []
        rows: list[int] = []
        letters: dict[str, dict[str, str]] = {}
        extras: dict[str, dict[str, str]] = {}
        percent: dict[str, set[int]] = {}
        titles: dict[str, str] = {}
        units: dict[str, list] = {}
        cell_row_pieces: dict[str, list] = {}
        row_titles: list = []
        cell_letter_pieces: dict[str, list] = {}
        cell_title_pieces: dict[str, list] = {}
        for wb in wbs:
            raw = wb.sheets.get(sheet)
            if raw is None:
                continue
            offset = len(rows)
            n = len(raw.rows)
            titles[raw.file] = raw.title
            for fld, u in raw.units.items():
                units.setdefault(fld, []).append((offset, u))
            for fld, rr in getattr(raw, "cell_rows", {}).items():
                cell_row_pieces.setdefault(fld, []).append((offset, rr))
            row_titles.extend(raw.row_titles if raw.row_titles is not None else [None] * n)
            for fld, ll in getattr(raw, "cell_letters", {}).items():
                cell_letter_pieces.setdefault(fld, []).append((offset, ll))
            for fld, tt in getattr(raw, "cell_titles", {}).items():
                cell_title_pieces.setdefault(fld, []).append((offset, tt))
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
        cell_rows = {fld: _assembled(pieces, len(rows), 0, "int64") for fld, pieces in cell_row_pieces.items()}
        cell_letters = {fld: _assembled(pieces, len(rows)) for fld, pieces in cell_letter_pieces.items()}
        cell_titles = {fld: _assembled(pieces, len(rows)) for fld, pieces in cell_title_pieces.items()}
        cell_units = {fld: _assembled(pieces, len(rows)) for fld, pieces in units.items()}
        out[sheet] = (frame, letters, {k: frozenset(v) for k, v in percent.items()}, extras, titles, cell_units,
                      cell_rows, np.asarray(row_titles, dtype=object) if any(row_titles) else None, cell_letters,
                      cell_titles)
    return out


def _assembled(pieces: list, n: int, fill: Any = None, dtype: Any = object) -> np.ndarray:
    """One array of ``n`` from the ``(offset, values)`` pieces of the workbooks stacked into one sheet."""
    arr = np.full(n, fill, dtype=dtype)
    for offset, vs in pieces:
        arr[offset:offset + len(vs)] = np.asarray(vs, dtype=dtype) if dtype != object else vs
    return arr


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
    for sheet, (raw, letters, percent, extras, titles, cell_units, cell_rows, row_titles, cell_letters,
                cell_titles) in \
            stack(schema, workbooks).items():
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
            letter = (cell_letters[fld][i] if fld in cell_letters and cell_letters[fld][i] else None) or \
                letters.get(files[i], {}).get(fld)
            row = int(cell_rows[fld][i]) if fld in cell_rows and cell_rows[fld][i] > 0 else int(rows[i])
            title = (cell_titles[fld][i] if fld in cell_titles and cell_titles[fld][i] else None) or \
                (row_titles[i] if row_titles is not None and row_titles[i] else titles.get(files[i], sheet))
            findings.append(Finding(files[i], title, row, letter, fld, study_ids[i],
                                    rule, severity, message, value, sheet))

        def ref(i: int, fld: str) -> str:
            row = int(cell_rows[fld][i]) if fld in cell_rows and cell_rows[fld][i] > 0 else int(rows[i])
            title = (cell_titles[fld][i] if fld in cell_titles and cell_titles[fld][i] else None) or \
                (row_titles[i] if row_titles is not None and row_titles[i] else titles.get(files[i], sheet))
            letter = (cell_letters[fld][i] if fld in cell_letters and cell_letters[fld][i] else None) or \
                letters.get(files[i], {}).get(fld, '')
            return f"{quote_sheet(title)}!{letter}{row}"

        # text and vocabulary first (units are needed for the numbers): each distinct value once
        cohort_field = schema.analysis.cohort_field if sheet == schema.analysis_sheet else None
        overall = fold(schema.analysis.overall_cohort)
        for fld, fs in spec.fields.items():
            if fs.type in NUMERIC_TYPES or fs.type == "p_value":
                continue
            col = raw[fld]
            # each row's distinct value (-1: empty), as pandas' unique() and map() would match them
            codes, distinct = pd.factorize(col.to_numpy(dtype=object), use_na_sentinel=True)
            texts = text_values(distinct)
            if fs.type == "vocabulary":
                vocab = schema.vocabularies[fs.vocabulary]
                for j, t in enumerate(texts):
                    if t is None:
                        t = fs.default
                    elif vocab.canonical(t) is not None:
                        t = vocab.canonical(t)
                    elif t.casefold() in ("na", "n/a", "-", "--", "none", "nan", "missing"):
                        t = fs.default
                    texts[j] = t
            else:
                free = fld not in spec.key  # "n/a", "-", "NA" in a free-text field: no value (keys stay as typed)
                for j, t in enumerate(texts):
                    if t is None:
                        continue
                    if fld == cohort_field and fold(t) == overall:
                        texts[j] = schema.analysis.overall_cohort
                    elif free and _missing_free_text(t):
                        texts[j] = None
            empty = fs.default if fs.type == "vocabulary" else None
            out = np.empty(len(texts) + 1, dtype=object)
            out[:-1] = texts
            out[-1] = empty  # code -1
            typed[fld] = pd.Series(out[codes], index=col.index, dtype=object)

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
                if parsed.unit:  # '29 months; 95% CI 26 to 33': the unit it states, converted or refused below
                    cell_units.setdefault(fld, np.full(n, None, dtype=object))[i] = parsed.unit
                low_f, high_f = fs.combined["low"], fs.combined["high"]
                low_raw, high_raw = raw[low_f].iat[i], raw[high_f].iat[i]
                filled = low_raw in (None, "") and high_raw in (None, "")
                typed.setdefault("_combined", []).append((i, fld, parsed, filled))
                ci = (f"{format_number(parsed.low)}-"
                      f"{'NR' if parsed.high_not_reached else format_number(parsed.high)}")
                if filled:
                    msg = (f"{fld} ({ref(i, fld)}) holds {text_value(values[i])!r}: read as median "
                           f"{'NR' if parsed.median_not_reached else format_number(parsed.value)}"
                           f"{' ' + parsed.unit if parsed.unit else ''} with 95% CI {ci} "
                           f"(now {low_f}, {high_f}); " + (
                               f"type the CI into {ref(i, low_f)} and {ref(i, high_f)}"
                               if ref(i, low_f) != ref(i, fld) else "the sheet has no CI columns of its own"))
                else:
                    msg = (f"{fld} ({ref(i, fld)}) holds {text_value(values[i])!r}: read the median; the CI "
                           f"cells {ref(i, low_f)} and {ref(i, high_f)} are typed, so they are read (an empty one "
                           "takes the cell's bound) and the cell's bounds are checked against them")
                emit(i, fld, "combined-median-ci", "info", msg, values[i])

        # combined cells fill their CI fields when those are empty; where the CI cells are typed, they are
        # read and the combined cell's bounds are checked against them
        for i, fld, parsed, filled in typed.pop("_combined", []):
            fs = spec.fields[fld]
            low_f, high_f = fs.combined["low"], fs.combined["high"]
            if not filled:
                _cross_check_ci(i, fld, parsed, low_f, high_f, typed, raw, emit, ref)
                continue
            typed[low_f][i] = parsed.low if parsed.low is not None else np.nan
            if parsed.high_not_reached:
                if high_f + NR_SUFFIX in typed:
                    typed[high_f + NR_SUFFIX][i] = True
            else:
                typed[high_f][i] = parsed.high

        # units: medians and CIs to months (the row's unit column, or the unit a cell or its header states)
        _convert_units(schema, sheet, spec, typed, raw, cell_units, emit, ref)

        data = pd.DataFrame({k: (v if isinstance(v, pd.Series) else pd.Series(v)) for k, v in typed.items()})
        data = data[[c for c in [*spec.fields, *[f + NR_SUFFIX for f, s in spec.fields.items() if s.not_reached],
                                 *[f + BOUND_SUFFIX for f, s in spec.fields.items() if s.type == "p_value"]]
                     if c in data]]
        data["_file"] = raw["_file"].to_numpy()
        data["_row"] = raw["_row"].to_numpy()
        data.index = pd.RangeIndex(n)
        tables[sheet] = Table(sheet=sheet, data=data, raw=raw[list(spec.fields)], letters=letters,
                              decimals=decimals, extra=extras, unreadable=unreadable, titles=titles,
                              cell_rows=cell_rows, row_titles=row_titles, cell_letters=cell_letters,
                              cell_titles=cell_titles)
    return tables, findings


def _missing_free_text(text: str) -> bool:
    """:func:`~curation.cells.is_missing_free_text` of a text :func:`~curation.cells.text_value` gave: an
    ASCII one is normalised already (normalising it again leaves it as it is), so only its case is folded."""
    if text.isascii():
        return len(text) <= TEXT_MISSING_LONGEST and (text in TEXT_MISSING_EXACT or text.lower() in TEXT_MISSING_TOKENS)
    return is_missing_free_text(text)


def _unit_factors(schema: ReviewSchema, unit: str | None) -> tuple[Any, dict[str, float]] | None:
    """The vocabulary (with factors) that knows ``unit``, and its factors by canonical term."""
    if not unit:
        return None
    for vocab in schema.vocabularies.values():
        factors = {t.value: t.factor for t in vocab.terms if t.factor is not None}
        if factors and vocab.canonical(unit) in factors:
            return vocab, factors
    return None


def _convert_units(schema: ReviewSchema, sheet: str, spec: Any, typed: dict[str, Any], raw: pd.DataFrame,
                   cell_units: dict[str, np.ndarray], emit: Any, ref: Any) -> None:
    """Numbers to the field's unit: a row's unit column (``pfs_unit``), or the unit its cell states
    (``95 wk``, a header ``OS (mo)``); a unit no vocabulary knows, or one that contradicts the unit
    column, is an error at the cell."""
    n = len(raw)
    groups: dict[str, list[str]] = {}
    for fld, fs in spec.fields.items():
        if fs.unit_field and fs.type in NUMERIC_TYPES:
            groups.setdefault(fs.unit_field, []).append(fld)
    for unit_field, flds in groups.items():
        unit_vocab = schema.vocabularies[spec.fields[unit_field].vocabulary]
        factors = {t.value: t.factor for t in unit_vocab.terms if t.factor is not None}
        column = typed[unit_field]
        typed_unit = column.to_numpy(dtype=object) if isinstance(column, pd.Series) else np.asarray(column, object)
        given = raw[unit_field].notna().to_numpy() if unit_field in raw else np.zeros(n, bool)
        own: dict[str, np.ndarray] = {}
        for fld in flds:
            cu = cell_units.get(fld)
            if cu is None:
                continue
            canon = np.full(n, None, dtype=object)
            for i in np.flatnonzero(pd.notna(cu)):
                c = unit_vocab.canonical(str(cu[i]))
                if c is None or c not in factors:
                    emit(int(i), fld, "unknown-unit", "error",
                         f"{fld} ({ref(int(i), fld)}): unit {cu[i]!r} is not one of {', '.join(factors)} "
                         f"(or their abbreviations); the value cannot be converted", raw[fld].iat[i])
                    typed[fld][i] = np.nan
                elif given[i] and typed_unit[i] is not None and typed_unit[i] != c:
                    emit(int(i), fld, "unit-conflict", "error",
                         f"{fld} ({ref(int(i), fld)}) states {cu[i]!r} but {unit_field} ({ref(int(i), unit_field)}) "
                         f"says {typed_unit[i]!r}; correct one of them", raw[fld].iat[i])
                    typed[fld][i] = np.nan
                else:
                    canon[i] = c
            own[fld] = canon
        # the row's unit: its unit column, else the one unit its cells state, else the default
        row_unit = typed_unit.copy()
        for i in range(n):
            if given[i] and row_unit[i] is not None:
                continue
            stated = {own[f][i] for f in own if own[f][i] is not None}
            if len(stated) == 1:
                row_unit[i] = stated.pop()
        for fld in flds:
            units = own[fld] if fld in own else np.full(n, None, dtype=object)
            eff = np.where(pd.notna(units), units, row_unit)
            factor = pd.Series(eff, dtype=object).map(factors).astype(float).fillna(1.0).to_numpy(dtype=float)
            typed[fld] = typed[fld] * factor
    # fields with a fixed unit (GBq, months): a stated unit is converted when a vocabulary knows both
    for fld, fs in spec.fields.items():
        if fs.unit_field or fs.type not in NUMERIC_TYPES or fld not in cell_units:
            continue
        cu = cell_units[fld]
        target = _unit_factors(schema, fs.unit) if fs.unit else None
        for i in np.flatnonzero(pd.notna(cu)):
            u = str(cu[i])
            if fs.unit and fold(u).rstrip(".") == fold(fs.unit):
                continue
            if target is not None and target[0].canonical(u) in target[1]:
                vocab, factors = target
                typed[fld][i] = typed[fld][i] * factors[vocab.canonical(u)] / factors[vocab.canonical(fs.unit)]
                continue
            emit(int(i), fld, "unknown-unit", "error",
                 f"{fld} ({ref(int(i), fld)}): unit {u!r} is not {fs.unit or 'a unit this field takes'}, and no "
                 "conversion is declared; enter the value in " + (fs.unit or "the field's unit"), raw[fld].iat[i])
            typed[fld][i] = np.nan


def _cross_check_ci(i: int, fld: str, parsed: Any, low_f: str, high_f: str, typed: dict, raw: Any, emit: Any,
                    ref: Any) -> None:
    """A ``median (low-high)`` cell beside typed CI cells: an empty bound cell takes the combined cell's
    bound; a typed one is read, and a combined bound that differs from it is a ``combined-ci-mismatch``
    warning naming both cells (each cell once)."""
    import math

    for bound_f, value, nr in ((low_f, parsed.low, False), (high_f, parsed.high, parsed.high_not_reached)):
        if bound_f not in typed:
            continue
        cell = raw[bound_f].iat[i]
        if cell is None or cell == "":
            if nr:
                if bound_f + NR_SUFFIX in typed:
                    typed[bound_f + NR_SUFFIX][i] = True
            elif value is not None:
                typed[bound_f][i] = value
            continue
        typed_nr = bool(typed[bound_f + NR_SUFFIX][i]) if bound_f + NR_SUFFIX in typed else False
        current = typed[bound_f][i]
        if nr or typed_nr:
            same = nr == typed_nr
        else:
            same = value is None or current is None or (isinstance(current, float) and math.isnan(current)) or \
                math.isclose(float(current), float(value), rel_tol=1e-9, abs_tol=1e-12)
        if not same:
            shown = "NR" if nr else format_number(value)
            emit(i, bound_f, "combined-ci-mismatch", "warning",
                 f"{fld} ({ref(i, fld)}) holds the bound {shown} but {bound_f} ({ref(i, bound_f)}) is "
                 f"{text_value(cell)!r}: the {bound_f} cell is read; check which is right", cell)

"""Binding value cells to records and fields: a layout applied to one worksheet."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..findings import Finding, quote_sheet
from ..reading import SheetGrid, column_letter
from ..schema import NUMERIC_TYPES, ReviewSchema, fold
from .cells import _cell_text, _filled, _split_cell, _text, _types, pd_isna, RX_AUTHOR_YEAR
from .columns import _formula_share
from .headers import FieldIndex, _unit_terms, split_header
from .model import SheetLayout, _col_index


@dataclass
class _Emit:
    file: str
    findings: list[Finding]

    def __call__(self, sheet: str, row: int | None, column: str | None, field: str | None, rule: str, severity: str,
                 message: str, value: Any = None, table: str | None = None, study: str | None = None) -> None:
        self.findings.append(Finding(self.file, sheet, row, column, field, study, rule, severity, message, value,
                                     table))



@dataclass(frozen=True, eq=False)
class SheetContext:
    """What every step of binding one worksheet's cells needs: the schema, the sheet's grid and layout."""

    schema: ReviewSchema
    index: FieldIndex
    grid: SheetGrid
    sl: SheetLayout
    emit: _Emit
    needed: dict
    inferred: bool

    @property
    def title(self) -> str:
        return self.sl.sheet

    @property
    def header_row(self) -> int:
        """Excel row of the header's last row (also the 0-based index of the first row below it)."""
        return self.sl.header_rows[-1]

    @property
    def primary(self) -> str:
        return self.sl.tables[0]

    @property
    def is_template(self) -> bool:
        sl = self.sl
        return (sl.by_name and sl.header_rows == [1] and all(c.kind == "value" and c.confidence == "high"
                                                             for c in sl.columns) and len(sl.tables) == 1)


@dataclass(frozen=True, eq=False)
class BoundSheet:
    """One worksheet's value cells bound to fields: per field, one raw value per data row.

    Attributes
    ----------
    vals : numpy.ndarray
        The sheet's values with merged areas of data rows filled from their top-left cell.
    data_rows : list[int]
        0-based rows read as records.
    columns : dict[str, list]
        Field -> raw values, one per data row.
    letters : dict[str, str]
        Field -> the column letter it was read from.
    units : dict[str, list]
        Field -> the unit each cell states (or its header states), None where none.
    percent : dict[str, set[int]]
        Field -> positions of percent-formatted cells.
    """

    vals: Any
    data_rows: list
    columns: dict
    letters: dict
    units: dict
    percent: dict
    roles: Any = None
    cell_rows: dict = None  # field -> Excel row of each record's cell (a long sheet's records span rows)
    cell_letters: dict = None  # field -> column letter of each record's cell (a cross-tab's study columns)
    parts: tuple = ()  # a form sheet's tables: (SheetContext, BoundSheet) each (:mod:`.formtables`)



def bind_sheet(ctx: SheetContext) -> BoundSheet:
    """Bind one worksheet's value cells to fields through its layout, reporting what was inferred,
    what could not be placed and which rows are not data (a function of the grid and layout only)."""
    from .account import sheet_roles

    vals = ctx.grid.values.copy()
    filled = ctx.grid.filled.copy()  # of the grid as read (== _filled(vals) before merged areas are filled)
    if ctx.sl.record_per in ("sheet", "column"):
        return bind_form_sheet(ctx, vals, filled)
    if ctx.sl.shape == "crosstab":
        from .account import EMPTY, NOT_READ
        from .crosstab import bind_crosstab

        roles = np.where(filled, NOT_READ, EMPTY).astype(np.int8)
        data_rows, columns, letters, units, cell_rows, cell_letters = bind_crosstab(ctx, vals, filled, roles)
        return BoundSheet(vals, data_rows, columns, letters, units, {}, roles, cell_rows, cell_letters)
    report_inferred(ctx)
    report_columns(ctx)
    data_rows = data_rows_of(ctx, vals, filled)
    roles = sheet_roles(ctx.grid, ctx.sl, data_rows, filled)
    fill_merged(ctx, vals, data_rows)
    report_data_cells(ctx, data_rows)
    columns, letters, units, percent, ids, cohorts = bind_cells(ctx, vals, data_rows)
    report_labels(ctx, data_rows)
    apply_labels(ctx, columns, data_rows, letters)
    derive_identity(ctx, columns, letters, ids, cohorts, len(data_rows), data_rows, vals)
    cell_rows: dict = {}
    if ctx.sl.shape == "long":
        data_rows, columns, units, percent, cell_rows = bind_long(ctx, vals, data_rows, columns, letters, units,
                                                                  roles)
    return BoundSheet(vals, data_rows, columns, letters, units, percent, roles, cell_rows)

def report_inferred(ctx: SheetContext) -> None:
    """What was inferred, once per sheet, header and column (info)."""
    sl, emit = ctx.sl, ctx.emit
    title, header_row, primary = ctx.title, ctx.header_row, ctx.primary
    inferred, is_template = ctx.inferred, ctx.is_template
    if inferred and not is_template:
        emit(title, header_row, None, None, "inferred-layout", "info",
             f"sheet {quote_sheet(title)} read as {' + '.join(sl.tables)} "
             f"({'by its name' if sl.by_name else 'by its headers'}); header in row"
             f"{'s' if len(sl.header_rows) > 1 else ''} {', '.join(map(str, sl.header_rows))}"
             + (" (joined)" if len(sl.header_rows) > 1 else "")
             + ("; rows above it are titles" if sl.header_rows[0] > 1 else ""), None, primary)
        for col in sl.columns:
            if col.kind == "value" and col.confidence == "high" and not col.unit:
                continue
            what = {"value": "", "median_ci": " as median (95% CI)", "ci": " as a 95% CI 'low-high'",
                    "count_pct": " as n (%)", "author_year": " as Author (year)",
                    "number_unit": " as number and unit"}[col.kind]
            fields = ", ".join(dict.fromkeys(col.parts.values()))
            emit(title, header_row, col.column, next(iter(col.parts.values())), "inferred-layout", "info",
                 f"{quote_sheet(title)}!{col.column}{header_row} {col.header!r} read{what} -> {fields}"
                 + (f" (unit {col.unit})" if col.unit else "") + f"; {col.confidence} confidence"
                 + (f"; {col.note}" if col.note else ""), col.header, primary)
        for f, how in sl.derived.items():
            emit(title, header_row, None, f, "inferred-layout", "info",
                 f"{f} is not a column of {quote_sheet(title)}: taken from {how}", None, primary)


def report_columns(ctx: SheetContext) -> None:
    """Columns that could not be placed, hidden columns and helper columns read."""
    schema, index, grid, sl, emit, needed = ctx.schema, ctx.index, ctx.grid, ctx.sl, ctx.emit, ctx.needed
    title, header_row, primary = ctx.title, ctx.header_row, ctx.primary
    placed = {f for c in sl.columns for f in c.parts.values()} | set(sl.derived)  # (a study_id from author + year)
    needed_here = set().union(*(needed.get(t, set()) for t in sl.tables))
    for letter, ign in sl.ignored.items():
        c = _col_index(letter)
        hidden = c in grid.hidden_columns
        header = ign.header
        if ign.reason:
            emit(title, header_row, letter, ign.field, "hidden-column" if hidden else "duplicate-column", "warning",
                 f"header {header!r} ({quote_sheet(title)}!{letter}{header_row}) matches field {ign.field!r} again: "
                 f"{ign.reason}; this column is ignored", header, _table_of(schema, sl, ign.field or ""))
            continue
        guess = index.closest(header)
        field_hint = None
        if guess is not None and guess[0] in sl.tables and guess[1] not in placed:
            field_hint = guess[1]
        core = split_header(header)[0]
        if field_hint and field_hint in needed_here:
            emit(title, header_row, letter, field_hint, "unplaced-column", "error",
                 f"{quote_sheet(title)}!{letter}{header_row} {header!r} could not be placed, and the review needs "
                 f"{field_hint!r} which no column holds: did you mean {field_hint!r}? Rename the header (or add "
                 f"{header!r} to the field's synonyms in the schema, or map it in a layout file)", header, primary)
        else:
            emit(title, header_row, letter, None, "unknown-column", "info",
                 f"column {header!r} ({quote_sheet(title)}!{letter}{header_row}) matches no field; kept in the form, "
                 "not checked" + (f" (did you mean {guess[1]!r}?)" if guess and guess[1] not in placed else ""),
                 header if core else header, primary)
    # -- hidden columns read
    for col in sl.columns:
        if _col_index(col.column) in grid.hidden_columns:
            emit(title, header_row, col.column, next(iter(col.parts.values())), "hidden-column", "warning",
                 f"{quote_sheet(title)}!{col.column}{header_row} {col.header!r} is a hidden column and is read "
                 f"({', '.join(dict.fromkeys(col.parts.values()))}); unhide it and check it is not a helper column",
                 col.header, primary)
        elif _formula_share(grid, _col_index(col.column), header_row) > 0.5:
            emit(title, header_row, col.column, next(iter(col.parts.values())), "helper-column", "warning",
                 f"{quote_sheet(title)}!{col.column}{header_row} {col.header!r} is computed by formulas in the workbook "
                 "(a reviewer's calculation), not typed from the paper; it is read, but check it against the paper",
                 col.header, primary)


def data_rows_of(ctx: SheetContext, vals: np.ndarray, filled_all: np.ndarray | None = None) -> list[int]:
    """The 0-based rows read as records (non-data rows reported)."""
    header_row = ctx.header_row
    sl, emit = ctx.sl, ctx.emit
    title, primary = ctx.title, ctx.primary
    first_data = header_row  # 0-based index of the first row below the header
    n_rows, width = vals.shape
    for r, why in sl.comment_rows.items():
        emit(title, r, None, None, "non-data-row", "info",
             f"{quote_sheet(title)}!{r}:{r} is not read as data: {why}", None, primary)
    data_rows = []
    if first_data >= n_rows:
        filled = np.zeros((0, width), bool)
    else:
        filled = filled_all[first_data:] if filled_all is not None else _filled(vals[first_data:])
    mapped_cols = sorted({_col_index(c.column) for c in sl.columns if _col_index(c.column) < width})
    in_mapped = filled[:, mapped_cols].any(axis=1) if mapped_cols else np.zeros(len(filled), bool)
    elsewhere = filled.any(axis=1) & ~in_mapped
    comment = np.zeros(len(filled), bool)
    for r in sl.comment_rows:
        if 0 <= r - 1 - first_data < len(filled):
            comment[r - 1 - first_data] = True
    for b in sl.blocks:
        if not b.read:
            comment[max(b.rows[0] - 1 - first_data, 0):max(b.rows[1] - first_data, 0)] = True
    data_rows = [first_data + int(i) for i in np.flatnonzero(in_mapped & ~comment)]
    for i in np.flatnonzero(elsewhere & ~comment):
        r = first_data + int(i) + 1
        emit(title, r, None, None, "non-data-row", "info",
             f"{quote_sheet(title)}!{r}:{r} has no value in any mapped column; not read", None, primary)
    return data_rows


def fill_merged(ctx: SheetContext, vals: np.ndarray, data_rows: list[int]) -> None:
    """Merged areas in data rows: the top-left value fills the area (in ``vals``), with a warning."""
    header_row = ctx.header_row
    grid, sl, emit = ctx.grid, ctx.sl, ctx.emit
    title, primary = ctx.title, ctx.primary
    first_data = header_row  # 0-based index of the first row below the header
    data_set = set(data_rows)
    merged_fill: dict[tuple[int, int], tuple[Any, str]] = {}
    for (r0, c0), (r1, c1) in grid.merged:
        if r1 < first_data:
            continue
        top_left = grid.values[r0, c0]
        ref = f"{column_letter(c0)}{r0 + 1}:{column_letter(c1)}{r1 + 1}"
        for r in range(max(r0, first_data), r1 + 1):
            if r not in data_set:
                continue
            for c in range(c0, c1 + 1):
                vals[r, c] = top_left
                merged_fill[(r, c)] = (top_left, ref)
    if not merged_fill:
        return
    from ..schema import NUMERIC_TYPES as _NUMERIC

    for col in sl.columns:
        c = _col_index(col.column)
        field = next(iter(col.parts.values()))
        fs = _field_spec_of(ctx.schema, sl.tables, field)
        # a label merged down over its rows (a study's name over its subgroup rows): filled down, as info
        label = col.kind == "author_year" or (fs is not None and fs.type not in _NUMERIC and fs.type != "p_value")
        told: set[str] = set()
        for r in data_rows:
            if (r, c) in merged_fill and _cell_text(merged_fill[(r, c)][0]) != "":
                tl, ref = merged_fill[(r, c)]
                if label:
                    if ref not in told:
                        told.add(ref)
                        emit(title, r + 1, col.column, field, "merged-cell", "info",
                             f"{quote_sheet(title)}!{ref} is one label merged over its rows: {tl!r} is filled down "
                             "into each of them", tl, primary)
                    continue
                emit(title, r + 1, col.column, field, "merged-cell", "warning",
                     f"{quote_sheet(title)}!{col.column}{r + 1} is part of the merged cells {quote_sheet(title)}!{ref}: "
                     f"read the top-left value {tl!r}; unmerge them and fill each row", tl, primary)


def report_data_cells(ctx: SheetContext, data_rows: list[int]) -> None:
    """Hidden rows read as data; formulas without a saved value."""
    grid, sl, emit = ctx.grid, ctx.sl, ctx.emit
    title, primary = ctx.title, ctx.primary
    data_set = set(data_rows)
    width = grid.values.shape[1]
    mapped_cols = sorted({_col_index(c.column) for c in sl.columns if _col_index(c.column) < width})
    for r in data_rows:
        if r + 1 in grid.hidden_rows:
            emit(title, r + 1, None, None, "hidden-row", "warning",
                 f"{quote_sheet(title)}!{r + 1}:{r + 1} is a hidden row and is read as data; unhide it and check it",
                 None, primary)
    for (r, c) in sorted(grid.formula_cells):
        if (r - 1) in data_set and c in mapped_cols and _cell_text(grid.values[r - 1, c]) == "":
            col = next(cl for cl in sl.columns if _col_index(cl.column) == c)
            emit(title, r, col.column, next(iter(col.parts.values())), "formula-without-value", "error",
                 f"{quote_sheet(title)}!{col.column}{r} holds a formula with no saved value; open the form in Excel, "
                 "let it calculate, and save it (or type the value)", None, primary)


def bind_cells(ctx: SheetContext, vals: np.ndarray, data_rows: list[int]):
    """Each mapped cell of each data row split into its fields (composite cells into parts, units apart)."""
    schema, grid, sl, emit = ctx.schema, ctx.grid, ctx.sl, ctx.emit
    title = ctx.title
    data_set = set(data_rows)
    n = len(data_rows)
    columns: dict[str, list[Any]] = {}
    letters: dict[str, str] = {}
    units: dict[str, list[Any]] = {}
    percent: dict[str, set[int]] = {}
    ids: list[Any] = [None] * n
    cohorts: list[Any] = [None] * n
    from_label: dict[str, tuple[list[Any], str]] = {}
    known_units = {u for u in _unit_terms(schema)}
    pos_of_row = {r: k for k, r in enumerate(data_rows)}
    percent_by_col: dict[int, list[int]] = {}
    for (r1, c0) in grid.percent_cells:
        percent_by_col.setdefault(c0, []).append(r1)
    col_units: dict[str, frozenset] = {}
    for col in sl.columns:
        f = col.parts.get("value")
        fs = next((schema.sheets[t].fields[f] for t in sl.tables if f in schema.sheets[t].fields), None) if f else None
        if fs is not None and fs.type in NUMERIC_TYPES and fs.type != "year":
            col_units[col.column] = frozenset(known_units | ({fold(fs.unit)} if fs.unit else set()))
    rows_idx = np.asarray(data_rows, dtype=int)
    totals: list[tuple] = []
    for col in sl.columns:
        c = _col_index(col.column)
        for f in col.parts.values():
            if f not in columns:
                columns[f] = [None] * n
            letters.setdefault(f, col.column)
        body = vals[rows_idx, c] if n else np.zeros(0, object)
        cell_units = col_units.get(col.column, frozenset())
        if col.kind == "value":
            # the common case, whole column at once: only text cells that may hold 'number unit' one by one
            f = col.parts["value"]
            arr = body if n else np.array(body, dtype=object)  # fancy indexing made ``body`` a copy already
            arr[(arr == "") | pd_isna(arr)] = None
            fs_f = _field_spec_of(schema, sl.tables, f)
            if fs_f is not None and fs_f.type == "integer":
                read_counts(arr)
                _count_parts(schema, sl, f, arr, data_rows, col.column, totals)
            elif fs_f is not None and fs_f.type == "percentage" and fs_f.count_field:
                _fraction_parts(ctx, f, fs_f.count_field, arr, data_rows, col.column, totals)
            columns[f] = arr.tolist()  # (an object array's own objects)
            if cell_units:
                strs = np.flatnonzero(_types(arr) == str)
                for k in strs[np.fromiter((arr[k][:1] in "+-.0123456789" for k in strs), bool, len(strs))]:
                    got, unit, _problem = _split_cell(col, arr[k], schema, cell_units)
                    columns[f][k] = got.get(f, arr[k])
                    if unit:
                        if f not in units:
                            units[f] = [None] * n
                        units[f][k] = unit
            if col.unit:
                u = units.setdefault(f, [None] * n)
                for k in range(n):
                    if u[k] is None and columns[f][k] is not None:
                        u[k] = col.unit
            for r1 in percent_by_col.get(c, ()):
                if (r1 - 1) in data_set:
                    percent.setdefault(f, set()).add(pos_of_row[r1 - 1])
            continue
        for k, r in enumerate(data_rows):
            v = body[k]
            if v == "" or v is None:
                continue
            got, unit, problem = _split_cell(col, v, schema, cell_units)
            if problem:
                target = next(iter(col.parts.values()))
                emit(title, r + 1, col.column, target, "invalid-number", "error",
                     f"{target} ({quote_sheet(title)}!{col.column}{r + 1}): {problem}", v, _table_of(schema, sl, target))
                continue
            if "__id" in got:
                ids[k] = got.pop("__id")
            if "__cohort" in got:
                cohorts[k] = got.pop("__cohort")
            if "__total" in got:  # '15/46': the denominator, checked against the row's own once all are bound
                count_f = col.parts.get("count")
                totals.append((k, r, col.column, count_f, _denominator_of(schema, sl, count_f), got.pop("__total"),
                               v, "denominator"))
            for aside in ("__author", "__year"):  # a label's author or year that a typed column gives
                if aside in got:
                    from_label.setdefault(aside, ([None] * n, col.column))[0][k] = got.pop(aside)
            for f, part in got.items():
                if f not in columns:
                    columns[f] = [None] * n
                columns[f][k] = part
                letters.setdefault(f, col.column)
                u = unit or col.unit
                if u:
                    if f not in units:
                        units[f] = [None] * n
                    units[f][k] = u
    if totals:
        _cell_denominators(ctx, columns, letters, totals, n)
    if from_label:
        _typed_over_label(ctx, from_label, columns, letters, data_rows)
    return columns, letters, units, percent, ids, cohorts


def _denominator_of(schema: ReviewSchema, sl: SheetLayout, count_f: str | None) -> str | None:
    """The field that is a count's denominator (as the schema's checks and analysis declare it), if the
    sheet holds it."""
    from .long import _denominators

    if not count_f:
        return None
    tf = _denominators(schema, sl.tables).get(count_f)
    return tf if tf is not None and any(tf in schema.sheets[t].fields for t in sl.tables) else None


def _count_parts(schema: ReviewSchema, sl: SheetLayout, f: str, arr: np.ndarray, data_rows: list[int],
                 letter: str, extras: list) -> None:
    """A count cell typed with more than its count (``15/46``, ``15 of 46``, ``18 (17.8)``): the count, in
    place, and the rest (the denominator, the percentage) kept in ``extras`` for :func:`_cell_parts`. Only
    for a count the schema gives a denominator or a percentage; anything else is left for the number parser
    (and its finding)."""
    from .cells import RX_COUNT_OF, RX_COUNT_PCT

    strs = np.flatnonzero(_types(arr) == str)
    if not len(strs):
        return
    total_f = _denominator_of(schema, sl, f)
    pct_f = next((g for t in sl.tables for g, fs in schema.sheets[t].fields.items()
                  if fs.type == "percentage" and fs.count_field == f), None)
    if total_f is None and pct_f is None:
        return
    for k in strs:
        t = arr[k].strip()
        m = RX_COUNT_OF.match(t)
        if m and total_f is not None:
            arr[k] = m.group("n")
            extras.append((int(k), data_rows[k], letter, f, total_f, m.group("d"), t, "denominator"))
            continue
        m = RX_COUNT_PCT.match(t)
        if m and (pct_f is not None or not m.group("d")):
            arr[k] = m.group("n")
            if m.group("d"):
                extras.append((int(k), data_rows[k], letter, f, total_f, m.group("d"), t, "denominator"))
            extras.append((int(k), data_rows[k], letter, f, pct_f, m.group("p"), t, "percentage"))


def _fraction_parts(ctx: SheetContext, f: str, count_f: str, arr: np.ndarray, data_rows: list[int], letter: str,
                    extras: list) -> None:
    """A percentage cell typed as its count and denominator (``15/46``, ``15 of 46`` under ``ORR (%)``): the
    percentage 100 * 15 / 46, to one decimal, in place (an info finding says what was read), and the count
    and the denominator kept in ``extras`` for :func:`_cell_denominators` (they fill the row's empty count
    and denominator cells, or are checked against the typed ones). The grammar is the count column's
    (:data:`~curation.layout.cells.RX_COUNT_OF`); anything else is left for the number parser (and its
    finding)."""
    from .cells import RX_COUNT_OF

    strs = np.flatnonzero(_types(arr) == str)
    if not len(strs):
        return
    total_f = _denominator_of(ctx.schema, ctx.sl, count_f)
    has_count = any(count_f in ctx.schema.sheets[t].fields for t in ctx.sl.tables)
    q = quote_sheet(ctx.title)
    for k in strs:
        t = arr[k].strip()
        m = RX_COUNT_OF.match(t)
        if not m or int(m.group("d")) == 0:
            continue  # '15/0' stays unread: the number parser's finding names it
        pct = f"{100 * int(m.group('n')) / int(m.group('d')):.1f}"
        arr[k] = pct
        r = data_rows[k]
        ctx.emit(ctx.title, r + 1, letter, f, "inferred-layout", "info",
                 f"{f} ({q}!{letter}{r + 1}): {t!r} read as {m.group('n')} of {m.group('d')} = {pct}%"
                 f" ({count_f} {m.group('n')}" + (f", {total_f} {m.group('d')})" if total_f else ")"), t,
                 _table_of(ctx.schema, ctx.sl, f))
        extras.append((int(k), r, letter, f, count_f if has_count else None, m.group("n"), t, "count"))
        extras.append((int(k), r, letter, f, total_f, m.group("d"), t, "denominator"))


def form_typed_cell(ctx: SheetContext, field: str, v: Any, k: int, row: int, letter: str, extras: list) -> Any:
    """A form-style sheet's value cell typed as a fraction under a percentage, read as a wide sheet's column
    reads it (:func:`_fraction_parts`): ``15/46``, ``15 of 46`` -> ``32.6`` (an info finding says so), its
    count and denominator kept in ``extras`` for :func:`resolve_form_parts`. Anything else is returned as
    typed, for :func:`typed_cell` (counts as typed, units, composites) and the number parser."""
    from .cells import RX_COUNT_OF

    if not isinstance(v, str):
        return v
    fs = _field_spec_of(ctx.schema, ctx.sl.tables, field)
    if fs is None or fs.type != "percentage" or not fs.count_field:
        return v
    t = v.strip()
    m = RX_COUNT_OF.match(t)
    if not m or int(m.group("d")) == 0:
        return v
    count_f = fs.count_field
    total_f = _denominator_of(ctx.schema, ctx.sl, count_f)
    pct = f"{100 * int(m.group('n')) / int(m.group('d')):.1f}"
    ctx.emit(ctx.title, row, letter, field, "inferred-layout", "info",
             f"{field} ({quote_sheet(ctx.title)}!{letter}{row}): {t!r} read as {m.group('n')} of {m.group('d')} = "
             f"{pct}% ({count_f} {m.group('n')}" + (f", {total_f} {m.group('d')})" if total_f else ")"), t,
             _table_of(ctx.schema, ctx.sl, field))
    has_count = any(count_f in ctx.schema.sheets[tb].fields for tb in ctx.sl.tables)
    extras.append((k, row, letter, field, count_f if has_count else None, m.group("n"), t, "count"))
    extras.append((k, row, letter, field, total_f, m.group("d"), t, "denominator"))
    return pct


def resolve_form_parts(ctx: SheetContext, extras: list, columns: dict, letters: dict, cell_rows: dict,
                       cell_letters: dict, n: int, first: int) -> None:
    """The count and denominator a form's ``15/46`` percentage cell gives (:func:`form_typed_cell`): each fills
    its field where the record's own cell is empty (the value keeps the percentage cell as its cell), and one
    that differs from the record's own is not read, with a warning naming both cells (never dropped
    silently)."""
    from ..cells import parse_number_text

    q = quote_sheet(ctx.title)
    label_row = {f: c.row for c in ctx.sl.columns for f in c.parts.values()}
    for k, row, letter, field, tf, d, text, what in extras:
        where = f"{q}!{letter}{row}"
        if tf is None:
            ctx.emit(ctx.title, row, letter, field, "unread-data", "warning",
                     f"{where} {text!r}: the {what} {d} is not read (no field of the sheet is the {what} of "
                     f"{field}); type it in its own cell if the review needs it", text,
                     _table_of(ctx.schema, ctx.sl, field))
            continue
        current = columns.get(tf, [None] * n)[k]
        if current is None or _cell_text(current) == "":
            columns.setdefault(tf, [None] * n)[k] = d
            letters.setdefault(tf, letter)
            cell_rows.setdefault(tf, [0] * n)[k] = row if row != first else 0
            cell_letters.setdefault(tf, [None] * n)[k] = letter
            continue
        parsed = parse_number_text(_cell_text(current)) if not isinstance(current, (int, float)) else None
        value = float(current) if parsed is None else parsed.value
        own = f"{q}!{letter}{label_row.get(tf, row)}"
        if value is None or abs(float(value) - float(d)) > 1e-9:
            ctx.emit(ctx.title, row, letter, field, "unread-data", "warning",
                     f"{where} {text!r} gives {tf} = {d}, but the {tf} cell ({own}) holds {_cell_text(current)!r}: "
                     f"the {tf} cell is read, the {what} in {where} is not; check which is right", text,
                     _table_of(ctx.schema, ctx.sl, tf))


def _cell_denominators(ctx: SheetContext, columns: dict, letters: dict, totals: list, n: int) -> None:
    """The parts typed in a count cell beside its count: the denominator of ``15/46``, ``15 of 46``,
    ``15/46 (32.6)``, the percentage of ``18 (17.8)`` in a count column. The field they belong to (the
    count's denominator as the schema's checks and analysis declare it; the percentage whose count field it
    is) takes the part where the row has none; one that differs from the row's own is not read, with a
    warning naming both cells; one no field of the sheet takes is not read, with a warning (never dropped
    silently)."""
    from ..cells import parse_number_text

    schema, sl, emit, title = ctx.schema, ctx.sl, ctx.emit, ctx.title
    q = quote_sheet(title)
    for k, r, letter, count_f, tf, d, text, what in totals:
        where = f"{q}!{letter}{r + 1}"
        if tf is None:
            emit(title, r + 1, letter, count_f, "unread-data", "warning",
                 f"{where} {_cell_text(text)!r}: the {what} {d} is not read (no field of the sheet is the {what} "
                 f"of {count_f}); type it in its own column if the review needs it", _cell_text(text),
                 _table_of(schema, sl, count_f) if count_f else ctx.primary)
            continue
        current = columns[tf][k] if tf in columns else None
        if current is None or _cell_text(current) == "":
            columns.setdefault(tf, [None] * n)[k] = d
            letters.setdefault(tf, letter)
            continue
        parsed = parse_number_text(_cell_text(current)) if not isinstance(current, (int, float)) else None
        value = float(current) if parsed is None else parsed.value
        if value is None:
            emit(title, r + 1, letter, tf, "unread-data", "warning",
                 f"{where} {_cell_text(text)!r} gives {tf} = {d}, but the row's {tf} cell ({q}!{letters.get(tf, '')}"
                 f"{r + 1}) holds {_cell_text(current)!r}: the {what} in {where} is not read; correct the two cells",
                 _cell_text(text), _table_of(schema, sl, tf))
        elif abs(float(value) - float(d.replace(",", "."))) > 1e-9:
            emit(title, r + 1, letter, tf, "unread-data", "warning",
                 f"{where} {_cell_text(text)!r} gives {tf} = {d}, but the row's {tf} is {_cell_text(current)} "
                 f"({q}!{letters.get(tf, '')}{r + 1}): the {tf} cell is read, the {what} in {where} is not; "
                 "check which is right", _cell_text(text), _table_of(schema, sl, tf))


def _typed_over_label(ctx: SheetContext, from_label: dict, columns: dict, letters: dict, data_rows: list[int]) -> None:
    """A study label's author and year (``Brabander T 2017``) beside columns typed for them (``First author``,
    ``Year``): the typed value is read; where the typed cell is empty the label's value is taken; where the two
    differ, a ``label-conflict`` warning names both cells. The label's author agrees when one's words begin the
    other's (``Brabander`` and ``Brabander T``); its year must be the typed year."""
    from .identity import cross_check_label

    for aside, field in (("__author", "first_author"), ("__year", "year")):
        if aside not in from_label:
            continue
        derived, label_letter = from_label[aside]
        if field not in columns:  # no typed column (a layout whose label column lacks the part): the label's
            columns[field] = list(derived)
            letters.setdefault(field, label_letter)
            continue
        typed_letter = letters.get(field, "")
        col = columns[field]
        for k, d in enumerate(derived):
            if d is None:
                continue
            if _cell_text(col[k]) == "":
                col[k] = d
            else:
                cross_check_label(ctx, field, data_rows[k] + 1, col[k], typed_letter, d, label_letter)


def derive_identity(ctx: SheetContext, columns: dict, letters: dict, ids: list, cohorts: list, n: int,
                    data_rows: list | None = None, vals: Any = None) -> None:
    """study_id and cohort where no column holds them (in ``columns``): see :mod:`.identity`."""
    from .identity import derive_ids

    derive_ids(ctx, columns, letters, ids, cohorts, n, data_rows, vals)


def _table_of(schema: ReviewSchema, sl: SheetLayout, field: str) -> str:
    for t in sl.tables:
        if field in schema.sheets[t].fields:
            return t
    return sl.tables[0]


def report_labels(ctx: SheetContext, data_rows: list[int]) -> None:
    """Group headings and block titles: the values they give (info), a heading that gives none and a block
    that is not read (warnings)."""
    from .labels import label_value, matched_without_tail

    sl, emit, title, primary = ctx.sl, ctx.emit, ctx.title, ctx.primary
    q = quote_sheet(title)
    rows_excel = np.asarray(data_rows, dtype=int) + 1
    labels = all_labels(sl)
    label_rows = sorted(labels)
    for k, r in enumerate(label_rows):
        lv = labels[r]
        if r == 0 and sl.block is not None and sl.block.labels:  # a block's title, the block read on its own
            b = sl.block
            emit(title, b.title_row, b.columns[0], next(iter(lv)), "inferred-layout", "info",
                 f"block {b.title!r} ({q}!{b.columns[0]}{b.rows[0]}:{b.columns[1]}{b.rows[1]}): its title is a label: "
                 f"{', '.join(f'{f} = {v}' for f, v in lv.items())} for its {len(rows_excel)} row(s) (a block of the "
                 "same fields as another, never pooled with it as one)", b.title, primary)
            continue
        if r == 0:
            emit(title, None, None, next(iter(lv)), "inferred-layout", "info",
                 f"sheet {q}: its name is a label: {', '.join(f'{f} = {v}' for f, v in lv.items())} for its "
                 f"{len(rows_excel)} row(s) where they state none (one sheet per subgroup)", title, primary)
            continue
        text = _cell_text(next((v for v in ctx.grid.values[r - 1] if _cell_text(v)), ""))
        nxt = next((r2 for r2 in label_rows[k + 1:] if set(labels[r2]) & set(lv) or not labels[r2] or not lv), None)
        under = rows_excel[(rows_excel > r) & ((rows_excel < nxt) if nxt else True)]
        if not lv:
            why = label_value(ctx.schema, sl.tables, text, sl.columns)[1] or "gives no value"
            emit(title, r, None, None, "group-heading", "warning",
                 f"{q}!{r}:{r} {text!r} is a group heading that {why}; its {len(under)} row(s) below keep what they "
                 "state (give its value in the layout file's labels if it names a subgroup)", text, primary)
            continue
        what = ", ".join(f"{f} = {v}" for f, v in lv.items())
        span = f"{q}!{under[0]}:{under[-1]}" if len(under) else "no row"
        tail = matched_without_tail(ctx.schema, sl.tables, text)
        how = f" (matched without its parenthetical {tail!r})" if tail else ""
        emit(title, r, None, next(iter(lv)), "inferred-layout", "info",
             f"{q}!{r}:{r} {text!r} is a label{how}: {what} for the rows below it ({span}, {len(under)} row(s)) "
             "where they state none", text, primary)
    for b in sl.blocks:
        if b.read:
            continue
        n = int(ctx.grid.filled[b.rows[0] - 1:b.rows[1]].sum()) if b.rows[1] >= b.rows[0] else 0
        emit(title, b.title_row, None, None, "unread-data", "warning",
             f"{q}!{b.title_row}:{b.title_row} {b.title!r} heads a table of its own (header row {b.header_row}, rows "
             f"{b.rows[0]}-{b.rows[1]}, {n} cell(s)): it is not read, so that two blocks are never pooled as one "
             "outcome; its title gives no value of a field this sheet holds. Give each block's label in the layout "
             "file (`blocks:` ... `read: true`, `labels:`) to read it", b.title, primary)


def apply_labels(ctx: SheetContext, columns: dict, data_rows: list[int], letters: dict | None = None) -> None:
    """Each label value (a heading's, a block title's) to the data rows below it, up to the next label of the
    same field, where the row states no value of its own (in ``columns``)."""
    labels = all_labels(ctx.sl)
    if not labels or not data_rows:
        return
    n = len(data_rows)
    rows_excel = np.asarray(data_rows, dtype=int) + 1
    named = (ctx.sl.name_labels.get("cohort") or ctx.title) if ctx.sl.name_labels else None
    if named is not None and "cohort" in columns:  # one sheet per subgroup with a cohort column: they must agree
        from .labels import label_agrees

        q = quote_sheet(ctx.title)
        letter = next((c.column for c in ctx.sl.columns if c.kind == "value" and c.parts.get("value") == "cohort"),
                      None) or (letters or {}).get("cohort", "")
        for k in range(n):
            stated = _cell_text(columns["cohort"][k])
            if stated and not label_agrees(ctx.schema, ctx.sl.tables, named, stated):
                ctx.emit(ctx.title, int(rows_excel[k]), letter or None, "cohort", "label-conflict", "warning",
                         f"{q}!{letter}{int(rows_excel[k])} states cohort {stated!r}, but the sheet's name {ctx.title!r} "
                         f"is the subgroup {named!r}: the row keeps its own cohort; check which is right (move the row "
                         "to its subgroup's sheet, or correct the cohort)", stated, ctx.primary)
    for f in sorted({f for lv in labels.values() for f in lv}):
        # a heading that gives no value ends the group above it too (its rows keep what they state)
        at = sorted(r for r, lv in labels.items() if f in lv or not lv)
        pos = np.searchsorted(np.asarray(at), rows_excel, side="right") - 1  # the closest label at or above
        col = columns.setdefault(f, [None] * n)
        for k in np.flatnonzero(pos >= 0):
            value = labels[at[int(pos[k])]].get(f)
            if value is not None and (col[k] is None or _cell_text(col[k]) == ""):
                col[k] = value


def all_labels(sl: SheetLayout) -> dict[int, dict[str, str]]:
    """The sheet's label rows: its headings' and titles' (``labels``) and those of the blocks it reads."""
    out = {r: dict(lv) for r, lv in sl.labels.items()}
    if sl.name_labels:
        out.setdefault(0, {}).update(sl.name_labels)  # the sheet's name: above every row
    for b in sl.blocks:
        if b.read and b.labels:
            out.setdefault(b.title_row, {}).update(b.labels)
    if sl.block is not None and sl.block.labels:  # a block read as a table of its own: its title's value
        out.setdefault(0, {}).update(sl.block.labels)
    return dict(sorted(out.items()))


def _field_spec_of(schema: ReviewSchema, tables: list[str], field: str):
    return next((schema.sheets[t].fields[field] for t in tables if field in schema.sheets[t].fields), None)


def read_counts(arr: np.ndarray) -> None:
    """A count as people type it (``n=62``, ``N = 62``, ``62 pts``) -> its number, in place; one regex call
    per distinct text. Anything else is left for the number parser (and its finding)."""
    from .cells import RX_COUNT_TEXT

    strs = np.flatnonzero(_types(arr) == str)
    if not len(strs):
        return
    seen: dict[str, str | None] = {}
    for k in strs:
        v = arr[k]
        if v not in seen:
            m = RX_COUNT_TEXT.match(v)
            seen[v] = (m.group("n") or m.group("n2")) if m else None
        if seen[v] is not None:
            arr[k] = seen[v]


def typed_cell(schema: ReviewSchema, tables: list[str], col, v: Any) -> tuple[dict[str, Any], str | None, str | None]:
    """One cell read as :func:`bind_cells` reads the cells of a column (a form's or a transposed sheet's
    value, bound by its row label): a count as typed (``n=62``, ``62 pts``: :func:`read_counts`), a number
    with its unit (``24 months``) for a numeric field, every composite of :func:`.cells._split_cell`.
    Returns ``({field: raw part}, unit, problem)``."""
    f = col.parts.get("value")
    fs = _field_spec_of(schema, tables, f) if f else None
    units: frozenset = frozenset()
    if col.kind == "value" and fs is not None:
        if fs.type == "integer" and isinstance(v, str):
            arr = np.array([v], dtype=object)
            read_counts(arr)
            v = arr[0]
        if fs.type in NUMERIC_TYPES and fs.type != "year":
            units = frozenset(set(_unit_terms(schema)) | ({fold(fs.unit)} if fs.unit else set()))
    return _split_cell(col, v, schema, units)


def bind_long(ctx: SheetContext, vals: np.ndarray, data_rows: list[int], columns: dict, letters: dict, units: dict,
              roles: np.ndarray):
    """A long sheet's rows -> records: the outcome named in each row and the role of each column name the
    field (:mod:`curation.layout.long`); the rows of one study and subgroup are one record, every value
    keeping its own cell. Role cells that no field takes, and rows whose outcome the schema does not know,
    are not read, with a warning."""
    from .account import HEADER, NOT_READ, VALUE, figures
    from .long import pivot_long

    sl, emit, title, primary = ctx.sl, ctx.emit, ctx.title, ctx.primary
    q = quote_sheet(title)
    n = len(data_rows)
    rows = np.asarray(data_rows, dtype=int)
    width = vals.shape[1]
    by_sheet = sl.outcome_column is None  # one sheet per outcome: the sheet's name names every row's outcome
    oc = width if by_sheet else _col_index(sl.outcome_column)
    role_letters = [l for l in sl.roles if _col_index(l) < width]
    if by_sheet:
        outcome_values = np.full(n, next(iter(sl.outcomes), None), dtype=object)
    else:
        outcome_values = vals[rows, oc] if n and oc < width else np.full(n, None, dtype=object)

    def col_values(c: int) -> np.ndarray:
        arr = np.array(vals[rows, c], dtype=object) if n else np.zeros(0, object)
        if arr.size:
            arr[(arr == "") | pd_isna(arr)] = None
        return arr

    role_values = {l: col_values(_col_index(l)) for l in role_letters}
    for l, arr in role_values.items():  # 'n=62', '62 pts' in count roles
        if sl.roles[l] in ("events", "total"):
            read_counts(arr)
    keys = sorted(columns)
    group = [tuple(_cell_text(columns[f][k]) for f in keys) for k in range(n)]
    repeats: list = []
    if by_sheet:  # one outcome per sheet: each row is a record of its own (a key twice is a duplicate-key)
        group = [(k, *gr) for k, gr in enumerate(group)]
    records, unread, consumed, conflicts = pivot_long(outcome_values, role_values, dict(sl.roles), sl.outcomes,
                                                      group, rows + 1, repeats)
    # the account: outcome cells are labels, role cells read are values, the rest of the role cells not read
    if n and oc < width:
        sub = roles[rows, oc]
        roles[rows, oc] = np.where(sub != 0, HEADER, sub)
    for (k, letter) in consumed:
        roles[rows[k], _col_index(letter)] = VALUE
    for letter in role_letters:
        c = _col_index(letter)
        taken = np.array([(k, letter) in consumed for k in range(n)], dtype=bool) if n else np.zeros(0, bool)
        left = (roles[rows, c] == VALUE) & ~taken if n else np.zeros(0, bool)
        roles[rows[left], c] = NOT_READ
    # warnings: outcomes the schema does not know; role columns whose figures no field takes
    by_text: dict[str, list[int]] = {}
    for k, text, _why in unread:
        by_text.setdefault(text, []).append(k)
    oc_letter = sl.outcome_column
    for text, ks in by_text.items():
        r0, r1 = int(rows[ks[0]]) + 1, int(rows[ks[-1]]) + 1
        emit(title, r0, oc_letter, None, "unread-data", "warning",
             f"{q}!{oc_letter}{r0} outcome {text!r} ({len(ks)} row(s), {q}!{r0}:{r1}) names no outcome of the "
             "schema's analysis: its figures are not read (name the outcome's fields in the layout file's "
             "`outcomes:` if the review needs it)", text, primary)
    clashing = {(k, letter) for k, letter, *_ in conflicts}
    if repeats:
        key = list(ctx.schema.sheets[primary].key) if primary in ctx.schema.sheets else []
        for k, first, text, differs in repeats:
            r = int(rows[k]) + 1
            keyval = ", ".join(f"{f} {_cell_text(columns[f][k])}" for f in key if f in columns)
            what = ("an exact copy of" if not differs else
                    f"a second entry (differing in {', '.join(differs)}) of")
            emit(title, r, oc_letter, key[-1] if key else None, "duplicate-key", "error",
                 f"row key ({keyval}) gives outcome {text!r} more than once: {q}!{r}:{r} is {what} {q}!{first}:{first}; "
                 "this row is not read (delete it, or correct its key)", text, primary)
            clashing.update((k, letter) for letter in role_letters)
    for k, letter, f, v, row_read, v_read in conflicts:
        r = int(rows[k]) + 1
        emit(title, r, letter, f, "unread-data", "warning",
             f"{q}!{letter}{r} gives {f} = {_cell_text(v)} for the same study and subgroup as {q}!{letter}{row_read}, "
             f"which gives {f} = {_cell_text(v_read)}: the first is read, this one is not (correct the one that is "
             "wrong, or give the rows a subgroup column that tells them apart)", _cell_text(v), primary)
    unread_rows = {u[0] for u in unread}
    for letter in role_letters:
        c = _col_index(letter)
        left = np.array([(k, letter) not in consumed and (k, letter) not in clashing and k not in unread_rows
                         for k in range(n)], bool)
        if not left.any():
            continue
        figs = figures(vals[rows[left], c:c + 1], np.ones((int(left.sum()), 1), bool))
        if figs.any():
            header = sl.roles[letter]
            emit(title, sl.header_rows[-1], letter, None, "unread-data", "warning",
                 f"{q}!{letter}{sl.header_rows[-1]} ({header}) holds {int(figs.sum())} figure(s) that no field of "
                 "the outcome named in their row takes: not read (give the field in the layout file's `outcomes:`)",
                 None, primary)
    # the records
    new_rows = [int(rows[k]) for k, *_ in records]
    new_columns: dict[str, list] = {f: [columns[f][k] for k, *_ in records] for f in columns}
    new_units: dict[str, list] = {f: [u[k] for k, *_ in records] for f, u in units.items()}
    cell_rows: dict[str, list] = {}
    for j, (k, got, where_row, where_letter, unit) in enumerate(records):
        for f, v in got.items():
            new_columns.setdefault(f, [None] * len(records))[j] = v
            cell_rows.setdefault(f, [0] * len(records))[j] = where_row[f]
            letters.setdefault(f, where_letter[f])
        for f, u in unit.items():
            new_units.setdefault(f, [None] * len(records))[j] = u
    for f, rr in cell_rows.items():
        for j, (k, *_rest) in enumerate(records):
            if rr[j] == int(rows[k]) + 1:
                rr[j] = 0  # the record's own row
    if records:
        emit(title, sl.header_rows[-1], sl.outcome_column, None, "inferred-layout", "info",
             f"sheet {q} read as long: "
             + (f"its name names the outcome of every row ({next(iter(sl.outcomes))!r}), " if by_sheet else
                f"{q}!{oc_letter} names the outcome of each row, ")
             + ", ".join(f"{l} the {r}" for l, r in sl.roles.items())
             + f"; {n} row(s) -> {len(records)} record(s) (one per study and subgroup)", None, primary)
    return new_rows, new_columns, new_units, {}, {f: np.asarray(v, dtype="int64") for f, v in cell_rows.items()}


def bind_form_sheet(ctx: SheetContext, vals: np.ndarray, filled: np.ndarray) -> BoundSheet:
    """A form-style sheet (``recordPer: sheet``): one record, each label's value keeping its cell
    (:mod:`curation.layout.form`); figures on the sheet that no label takes are a warning."""
    from .account import EMPTY, NOT_READ, figures
    from .form import bind_form

    roles = np.where(filled, NOT_READ, EMPTY).astype(np.int8)
    data_rows, columns, letters, units, cell_rows, cell_letters = bind_form(ctx, vals, roles)
    n = len(data_rows)
    derive_identity(ctx, columns, letters, [None] * n, [None] * n, n)
    parts: tuple = ()
    reported = None
    if ctx.sl.form_tables:  # tables inside the form (below or beside it), bound to the form's study
        from .formtables import bind_form_tables

        parts, reported = bind_form_tables(ctx, roles, columns, cell_rows, cell_letters,
                                           min(c.row for c in ctx.sl.columns))
    q = quote_sheet(ctx.title)
    ctx.emit(ctx.title, None, None, None, "inferred-layout", "info",
             (f"sheet {q} read as one record (labels in column {ctx.sl.columns[0].label}, values in "
              f"{ctx.sl.columns[0].column})" if ctx.sl.record_per == "sheet" else
              f"sheet {q} read transposed: labels in column {ctx.sl.columns[0].label}, one record per column "
              f"({', '.join(ctx.sl.value_columns)})") + f": {len(ctx.sl.columns)} label(s) -> {', '.join(ctx.sl.tables)}",
             None, ctx.primary)
    figs = figures(vals, (roles == NOT_READ) if reported is None else (roles == NOT_READ) & ~reported)
    if figs.any():
        rr, cc = np.nonzero(figs)
        ctx.emit(ctx.title, int(rr.min()) + 1, None, None, "unread-data", "warning",
                 f"{q} holds {int(figs.sum())} figure(s) that no label of the form takes "
                 f"({q}!{column_letter(int(cc.min()))}{int(rr.min()) + 1}:{column_letter(int(cc.max()))}"
                 f"{int(rr.max()) + 1}): not read (add their labels to the layout file's columns, with row and "
                 "column, if the review needs them; a table inside the form is read when its header row names "
                 "fields, or when the layout file gives it under formTables)", None, ctx.primary)
    _unread_form_texts(ctx, vals, roles, figs if reported is None else figs | reported)
    return BoundSheet(vals, data_rows, columns, letters, units, {}, roles, cell_rows, cell_letters, parts)


def _unread_form_texts(ctx: SheetContext, vals: np.ndarray, roles: np.ndarray, skip: np.ndarray) -> None:
    """Text in a value position of a form or transposed sheet (right of a label, in a row the label column
    names) that no label took: a warning naming the cells, as figures get (``G1/G2`` beside ``Grade``)."""
    from .account import NOT_READ

    labels = {c.label for c in ctx.sl.columns if c.label}
    if not labels:
        return
    lab = min(_col_index(x) for x in labels)
    rows = np.flatnonzero(roles[:, lab] != 0)
    if not rows.size:
        return
    mask = np.zeros(roles.shape, bool)
    mask[rows, lab + 1:] = True
    texts = mask & (roles == NOT_READ) & ~skip
    if not texts.any():
        return
    q = quote_sheet(ctx.title)
    rr, cc = np.nonzero(texts)
    cells = [f"{column_letter(int(c))}{int(r) + 1}" for r, c in zip(rr, cc)]
    shown = ", ".join(f"{q}!{x} {_cell_text(vals[r, c])[:30]!r}" for x, r, c in list(zip(cells, rr, cc))[:6])
    ctx.emit(ctx.title, int(rr.min()) + 1, column_letter(int(cc.min())), None, "unread-data", "warning",
             f"{q} holds {len(cells)} text value(s) beside labels that are not read: {shown}"
             + (" ..." if len(cells) > 6 else "") + ": their labels name no field of the layout (add them to the "
             "layout file's columns, with row and column, if the review needs them)", None, ctx.primary)

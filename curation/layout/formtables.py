"""Tables inside a form-style sheet: a form and a table in one sheet (layouts.md v2, shape 3).

A team's per-study form often keeps, below the study's labels and values (or beside them), a small table
of its own: the study's adverse events, one row per event, under a header row (``Event | Grade >=3 |
Any grade | N safety``). The sheet is then two structures: the form (labels left of their values, one
record per sheet or per cohort column) and the table (a header above its values, one record per row).
The table's rows name no study: the study is the one the form names (its first author and year, or the
sheet's name), databaker's ``HDimConst`` for the whole table, unpivotr's ``behead`` of the header row
for each column. Both structures are read through the same cell model: the form by :mod:`.form`, the
table by the wide binding of :mod:`.binding` applied to its range only.

- :func:`find_form_tables`: the tables of a form sheet (runs of header cells naming two or more fields
  of one contract sheet the form does not hold, with rows under them), and the form's label hits that
  lie outside them;
- :func:`form_table_layout`: a table's layout (:class:`~curation.layout.model.FormTable`: its contract
  sheet, range, header row and columns), the wide sheet inference run on its range;
- :func:`bind_form_tables`: each table's rows bound to fields and to the form's study; a table whose rows
  cannot be given a study (the form names none, or several) is not read, with an ``unread-data`` warning;
- :func:`check_form_tables`: a layout file's ``formTables`` refused (exit 2, one line) when it no longer
  fits the workbook.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import UnusableInputError
from ..findings import quote_sheet
from ..reading import SheetGrid, column_letter
from ..schema import ReviewSchema
from .cells import _cell_text, _filled, _looks_numeric
from .headers import IDENTITY, FieldIndex, _match_column, fold_header
from .model import FormTable, SheetLayout, _col_index

#: at least this share of a header run's cells must name a field of the table
_MIN_SHARE = 0.5


def _range_bounds(text: str) -> tuple[int, int, int, int]:
    """``A26:D28`` -> (row0, row1, col0, col1), 0-based and inclusive."""
    import re

    m = re.fullmatch(r"\s*([A-Za-z]{1,3})(\d+)\s*:\s*([A-Za-z]{1,3})(\d+)\s*", text or "")
    if not m:
        raise ValueError(text)
    c0, r0, c1, r1 = _col_index(m.group(1)), int(m.group(2)) - 1, _col_index(m.group(3)), int(m.group(4)) - 1
    return min(r0, r1), max(r0, r1), min(c0, c1), max(c0, c1)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in np.flatnonzero(mask):
        c = int(c)
        if out and c == out[-1][1] + 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


def _header_run(index: FieldIndex, vals: np.ndarray, r: int, c0: int, c1: int) -> tuple[str, int] | None:
    """The contract sheet a run of text cells names as a header (two or more of its fields, most of the run),
    with how many fields; None when it is not a header."""
    texts = [_cell_text(vals[r, c]) for c in range(c0, c1 + 1)]
    if any(not t or _looks_numeric(vals[r, c0 + i]) or len(t) > 80 for i, t in enumerate(texts)):
        return None
    per: dict[str, set] = {}
    matched = 0
    for t in texts:
        fields = _match_column(index, [t])[0]
        if fields:
            matched += 1
        for table, f in fields:
            if f not in IDENTITY:
                per.setdefault(table, set()).add(f)
    if not per or matched < _MIN_SHARE * len(texts):
        return None
    table = max(per, key=lambda t: len(per[t]))
    return (table, len(per[table])) if len(per[table]) >= 2 else None


def find_form_tables(schema: ReviewSchema, index: FieldIndex, grid: SheetGrid, found: tuple,
                     form_tables_of) -> tuple[tuple, list[tuple[str, int, int, int, int]]]:
    """The tables kept in a form sheet, and the form without them.

    Parameters
    ----------
    found : tuple
        :func:`.form.detect_form`'s ``(label column, value column, hits, value columns)``.
    form_tables_of : callable
        :func:`.form.form_tables` (the contract sheets a form holds, from its hits).

    Returns
    -------
    tuple
        ``found`` without the label hits that lie inside a table, and the tables as ``(contract sheet,
        header row0, last row0, col0, col1)``: a run of two or more adjacent text cells in one row that names
        two or more fields of a contract sheet the form does not hold (the share of its cells naming a field at
        least a half), with one or more rows under it, down to the first row with nothing in its columns.
    """
    label_col, value_col, hits, value_cols = found[:4]
    rest = tuple(found[4:])  # the labels' own columns, where they lie left of the label column (form.py)
    vals = grid.values
    n_rows, _width = vals.shape
    filled = _filled(vals)
    regions: list[tuple[str, int, int, int, int]] = []
    r = 0
    while r < n_rows - 1:
        best = None
        for c0, c1 in _runs(filled[r]):
            if c1 == c0:
                continue
            got = _header_run(index, vals, r, c0, c1)
            if got is None:
                continue
            end = r
            while end + 1 < n_rows and filled[end + 1, c0:c1 + 1].any():
                end += 1
            if c0 <= label_col <= c1 and any(r < h[0] <= end for h in hits):
                continue  # the form's own labels go on below it: a label row whose values name fields, not a table
            if end > r and (best is None or got[1] > best[1]):
                best = (got[0], got[1], r, end, c0, c1)
        if best is None:
            r += 1
            continue
        regions.append((best[0], best[2], best[3], best[4], best[5]))
        r = best[3] + 1
    if not regions:
        return found, []
    inside = {h[0] for h in hits for (_t, r0, r1, c0, c1) in regions if r0 <= h[0] <= r1 and c0 <= label_col <= c1}
    kept = [h for h in hits if h[0] not in inside]
    # a table beside the form, level with its labels: its columns are not the form's value columns
    beside = {c for (_t, r0, r1, c0, c1) in regions if any(r0 <= h[0] <= r1 for h in kept) for c in range(c0, c1 + 1)}
    value_cols = [c for c in value_cols if c not in beside]
    if not value_cols or label_col in beside:
        return found, []
    trimmed = (label_col, value_col if value_col in value_cols else value_cols[0], kept, value_cols, *rest)
    if len(kept) < 3:
        return found, []  # the labels were the table's own header: a table, not a form with a table inside
    held = set(form_tables_of(schema, trimmed))
    regions = [reg for reg in regions if reg[0] not in held]  # a contract sheet the form holds: not a second time
    return (trimmed if regions else found), regions


def _masked(grid: SheetGrid, r0: int, r1: int, c0: int, c1: int) -> SheetGrid:
    """The grid with every cell outside rows ``r0..r1`` and columns ``c0..c1`` emptied (same shape, so that rows
    and columns keep their Excel numbers)."""
    vals = np.full(grid.values.shape, "", dtype=object)
    vals[r0:r1 + 1, c0:c1 + 1] = grid.values[r0:r1 + 1, c0:c1 + 1]
    merged = tuple(((a, b), (c, d)) for (a, b), (c, d) in grid.merged if r0 <= a and c <= r1 and c0 <= b and d <= c1)
    return replace(grid, values=vals, merged=merged,
                   formula_cells=frozenset((r, c) for r, c in grid.formula_cells if r0 <= r - 1 <= r1 and c0 <= c <= c1),
                   percent_cells=frozenset((r, c) for r, c in grid.percent_cells if r0 <= r - 1 <= r1 and c0 <= c <= c1))


def form_table_layout(schema: ReviewSchema, index: FieldIndex, grid: SheetGrid,
                      region: tuple[str, int, int, int, int]) -> FormTable | None:
    """A table's layout: the wide inference (header, columns and their forms, non-data rows) on its range."""
    from .columns import _sheet_layout
    from .structure import _guess_sheet

    table, r0, r1, c0, c1 = region
    g = _guess_sheet(index, _masked(grid, r0, r1, c0, c1))
    if g is None or g.header_rows[-1] != r0:
        return None
    g.header_rows = [r0]
    sl = _sheet_layout(schema, index, g, [table], by_name=False)
    if len({f for c in sl.columns for f in c.parts.values()} - set(IDENTITY)) < 2:
        return None
    study = "column" if any(f in ("study_id", "first_author") for c in sl.columns for f in c.parts.values()) \
        else "form"
    return FormTable(table=table, range=f"{column_letter(c0)}{r0 + 1}:{column_letter(c1)}{r1 + 1}",
                     headerRow=r0 + 1, study=study, columns=sl.columns, ignored=sl.ignored,
                     commentRows=sl.comment_rows)


def form_tables_layouts(schema: ReviewSchema, index: FieldIndex, grid: SheetGrid,
                        regions: list[tuple[str, int, int, int, int]]) -> list[FormTable]:
    """The layouts of a form sheet's tables (those the wide inference can lay out)."""
    out = []
    for region in regions:
        ft = form_table_layout(schema, index, grid, region)
        if ft is not None:
            out.append(ft)
    return out


def part_layout(sl: SheetLayout, ft: FormTable) -> SheetLayout:
    """A form table as a sheet layout of its own (one record per row under its header row)."""
    return SheetLayout(sheet=sl.sheet, tables=[ft.table], headerRows=[ft.header_row], columns=ft.columns,
                       ignored=ft.ignored, commentRows=ft.comment_rows,
                       derived={"study_id": "the form's study"} if ft.study == "form" else {})


def _form_study(columns: dict, cell_rows: dict, cell_letters: dict, first: int) -> tuple[list[str], tuple]:
    """The distinct studies a form's records name, and the cell of the first (Excel row, letter), or ``(0, None)``
    when the sheet's name gives it."""
    ids = [_cell_text(v) for v in columns.get("study_id", [])]
    studies = list(dict.fromkeys(t for t in ids if t))
    where: tuple = (0, None)
    if studies:
        k = ids.index(studies[0])
        for f in ("study_id", "first_author"):
            if f in cell_letters and k < len(cell_letters[f]) and cell_letters[f][k]:
                row = int(cell_rows[f][k]) if f in cell_rows and k < len(cell_rows[f]) else 0
                where = (row or first, cell_letters[f][k])
                break
    return studies, where


def bind_form_tables(ctx: Any, roles: np.ndarray, columns: dict, cell_rows: dict, cell_letters: dict,
                     first: int) -> tuple[tuple, np.ndarray]:
    """Each table of a form sheet bound: ``((context, bound sheet), ...)`` for the records step, its cells'
    roles written into ``roles``. A table whose rows can be given no single study is not read (warning), and is
    marked in the mask returned (its figures reported once, here)."""
    from .account import HEADER, NOT_READ
    from .binding import (BoundSheet, SheetContext, bind_cells, data_rows_of, derive_identity, fill_merged,
                          report_columns, report_data_cells)
    from .account import sheet_roles, unread_findings

    sl, emit, title = ctx.sl, ctx.emit, ctx.title
    q = quote_sheet(title)
    studies, where = _form_study(columns, cell_rows, cell_letters, first)
    out = []
    reported = np.zeros(roles.shape, bool)
    for ft in sl.form_tables:
        r0, r1, c0, c1 = _range_bounds(ft.range)
        n_rows, width = ctx.grid.values.shape
        r1, c1 = min(r1, n_rows - 1), min(c1, width - 1)
        grid = _masked(ctx.grid, r0, r1, c0, c1)
        psl = part_layout(sl, ft)
        pctx = SheetContext(ctx.schema, ctx.index, grid, psl, emit, ctx.needed, ctx.inferred)
        region = np.s_[r0:r1 + 1, c0:c1 + 1]
        if ft.study == "form" and len(studies) != 1:
            sub = roles[region]
            sub[sub != 0] = NOT_READ
            sub[0][sub[0] != 0] = HEADER
            reported[region] = True
            why = ("the form names no study (no first author and year among its labels, and the sheet's name is not "
                   "'Author year')" if not studies else
                   f"the form names {len(studies)} studies ({', '.join(repr(s) for s in studies[:4])}), so it is not "
                   "clear whose rows they are")
            emit(title, ft.header_row, None, None, "unread-data", "warning",
                 f"{q}!{ft.range} is a table inside the form ({ft.table}), but its rows are not read: {why}. Give the "
                 "table a study column (first author and year), or keep one study per form", None, ft.table)
            continue
        vals = grid.values.copy()
        filled = _filled(vals)
        emit(title, ft.header_row, None, None, "inferred-layout", "info",
             f"{q}!{ft.range} is a table inside the form: read as {ft.table}, header in row {ft.header_row}, one "
             "record per row" + (f", each of the form's study {studies[0]!r}" if ft.study == "form" else ""),
             None, ft.table)
        report_columns(pctx)
        data_rows = data_rows_of(pctx, vals, filled)
        proles = sheet_roles(grid, psl, data_rows, filled)
        fill_merged(pctx, vals, data_rows)
        report_data_cells(pctx, data_rows)
        pcols, letters, units, percent, ids, cohorts = bind_cells(pctx, vals, data_rows)
        n = len(data_rows)
        p_rows: dict = {}
        p_letters: dict = {}
        if ft.study == "form":
            pcols["study_id"] = [studies[0]] * n
            if where[1]:  # the study's own cell on the form (its first author): every row's study cites it
                p_rows["study_id"] = np.full(n, where[0], dtype="int64")
                p_letters["study_id"] = np.full(n, where[1], dtype=object)
                letters["study_id"] = where[1]
        derive_identity(pctx, pcols, letters, ids, cohorts, n, data_rows, vals)
        for f in pcols:  # each value's own column: two forms may keep their tables in different columns
            if f not in p_letters and letters.get(f):
                p_letters[f] = np.full(n, letters[f], dtype=object)
        unread_findings(grid, psl, proles, ctx.index, emit, ft.table)
        roles[region] = proles[region]
        _title_above(ctx.grid.values, roles, r0, c0, c1)
        out.append((pctx, BoundSheet(vals, data_rows, pcols, letters, units, percent, proles, p_rows, p_letters)))
    return tuple(out), reported


def _title_above(vals: np.ndarray, roles: np.ndarray, r0: int, c0: int, c1: int) -> None:
    """A title in the row right above a table's header (``Adverse events``), text only and not taken by the form:
    a header (it names what is below)."""
    from .account import HEADER, NOT_READ, figures

    if r0 < 1:
        return
    row = roles[r0 - 1, c0:c1 + 1]
    if not (row == NOT_READ).any() or (row != 0).sum() != (row == NOT_READ).sum():
        return
    if figures(vals[r0 - 1:r0, c0:c1 + 1], (row != 0)[None, :]).any():
        return
    row[row == NOT_READ] = HEADER


def check_form_tables(sl: SheetLayout, grid: SheetGrid, source: str, schema: ReviewSchema | None) -> None:
    """Refuse (exit 2, one line) a layout's ``formTables`` entry that does not fit its sheet or schema."""
    n_rows, width = grid.shape
    for ft in sl.form_tables:
        where = f"{source}: the {ft.table!r} table {ft.range!r} of sheet {sl.sheet!r}"
        if schema is not None and ft.table not in schema.sheets:
            raise UnusableInputError(f"{where}: schema {schema.name!r} has no sheet {ft.table!r} (its sheets: "
                                     f"{', '.join(schema.sheets)})")
        try:
            r0, r1, c0, c1 = _range_bounds(ft.range)
        except ValueError:
            raise UnusableInputError(f"{where}: range must be like A26:D40") from None
        if ft.header_row != r0 + 1 or r0 >= n_rows or c0 >= width:
            raise UnusableInputError(f"{where}: its headerRow {ft.header_row} must be the range's first row, within "
                                     f"the sheet ({n_rows} rows, {width} columns); write a new layout with `curate map`")
        for col in ft.columns:
            c = _col_index(col.column)
            now = _cell_text(grid.values[r0, c]) if c < width else ""
            if not c0 <= c <= c1 or fold_header(now) != fold_header(col.header):
                raise UnusableInputError(f"{where}: the header of {quote_sheet(sl.sheet)}!{col.column}{ft.header_row} "
                                         f"changed: the layout says {col.header!r}, the workbook has {now!r}; correct "
                                         "the layout or write a new one with `curate map`")
            if schema is not None:
                for part, f in col.parts.items():
                    if part in ("id", "cohort", "author", "year") or f in IDENTITY:
                        continue
                    if f not in schema.sheets[ft.table].fields:
                        raise UnusableInputError(f"{where}: column {col.column} names field {f!r}, which "
                                                 f"{ft.table!r} does not have in schema {schema.name!r}")

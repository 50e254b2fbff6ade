"""Records: value cells bound to fields -> the contract sheets of a workbook (RawWorkbook)."""

from __future__ import annotations

from dataclasses import replace

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnusableInputError
from ..findings import quote_sheet
from ..reading import RawSheet, RawWorkbook, WorkbookGrids, read_grids, sheet_key
from ..schema import ReviewSchema, fold
from .binding import BoundSheet, SheetContext, _Emit, bind_sheet
from .cells import _none_if_empty
from .model import _col_index
from .cells import _cell_text
from .account import CellAccount, account_of, skipped_roles, skipped_sheet_findings, unread_findings
from .headers import FieldIndex, fold_header, needed_fields
from .infer import infer_layout
from .model import Layout, LayoutSet, check_fits


def extract(grids: WorkbookGrids, layout: Layout, schema: ReviewSchema, *, inferred: bool = True) -> RawWorkbook:
    """Apply a layout: the contract sheets of one workbook, with provenance, and the layout's findings."""
    emit = _Emit(grids.file, [])
    by_title = {g.title: g for g in grids.sheets}
    sheets: dict[str, RawSheet] = {}
    titles: dict[str, str] = {}
    if not all(sl.by_name for sl in layout.sheets):
        for title, why in layout.skipped.items():
            emit(title, None, None, None, "unmatched-sheet", "info",
                 f"sheet {quote_sheet(title)} was skipped: {why}")
    for title, table in layout.empty.items():
        emit(title, None, None, None, "empty-sheet", "info", f"sheet {title!r} is empty: no header row and no data",
             None, table)
    held = {t for sl in layout.sheets for t in [*sl.tables, *(ft.table for ft in sl.form_tables)]} | \
        set(layout.empty.values())
    for table in schema.sheets:
        if table not in held:
            emit(table, None, None, None, "missing-sheet", "warning",
                 f"the workbook has no sheet holding {table!r} rows, so it contributes none "
                 f"(sheets found: {', '.join(grids.titles)})", None, table)
    needed = needed_fields(schema)
    index = FieldIndex.of(schema)
    accounts: dict[str, CellAccount] = {}
    read_headers: dict[str, frozenset] = {}
    block_roles: dict[str, np.ndarray] = {}
    in_blocks: dict[str, list] = {}
    from .compete import as_chosen
    from .blocks import join_blocks
    from .outcomesheets import is_outcome_sheet, place_empty, soft_fields

    by_sheet_name = {sl.sheet: sl for sl in layout.sheets}
    for sl in layout.sheets:
        sl = as_chosen(sl)  # a sheet with both a long and a wide recipe: the one its shape line chooses
        grid = by_title[sl.sheet]
        if sl.block is not None:  # one block of the sheet, read as a table of its own (blocks.py)
            from .blocks import area_grid

            grid = area_grid(grid, sl.block)
            if not sl.block.read:
                roles = skipped_roles(grid)
                block_roles[sl.sheet] = _add_roles(block_roles.get(sl.sheet), roles)
                _unread_block(grid, sl, roles, emit)
                continue
        ctx = SheetContext(schema, index, grid, sl, emit, needed, inferred)
        bound = bind_sheet(ctx)
        if sl.block is not None:
            block_roles[sl.sheet] = _add_roles(block_roles.get(sl.sheet), bound.roles)
        else:
            accounts[sl.sheet] = account_of(sl.sheet, bound.roles)
        if sl.record_per == "row" and sl.shape != "crosstab":  # those report their own unread cells
            unread_findings(grid, sl, bound.roles, index, emit, ctx.primary)
        read_headers[sl.sheet] = read_headers.get(sl.sheet, frozenset()) | frozenset(fold_header(c.header)
                                                                                     for c in sl.columns)
        _guard_unbound(ctx, bound)
        records = [(table, raw, False) for table, raw in sheet_records(ctx, bound).items()]
        records += [(table, raw, True) for pctx, pbound in bound.parts  # tables inside a form sheet
                    for table, raw in sheet_records(pctx, pbound).items()]
        for table, raw, in_form in records:
            if sl.block is not None and table in sheets and titles[table] == sl.sheet and table in in_blocks:
                in_blocks[table].append((sl.block.join, raw))  # put together below, once all are read
                continue
            if sl.block is not None:
                in_blocks[table] = [(sl.block.join, raw)]
            if table in sheets and (is_outcome_sheet(sl) or is_outcome_sheet(by_sheet_name[titles[table]])):
                # one sheet per outcome: its records joined with the other sheets' by key (outcomesheets.py)
                sheets[table] = join_blocks(sheets[table], raw, schema, table, emit, by_sheet=True,
                                            soft=soft_fields(schema, layout, table))
                continue
            if table in sheets and (titles[table] in read_together(layout, sl.sheet) or
                                    in_form and titles[table] in form_table_sheets(layout, table)):
                sheets[table] = merge_sheets(sheets[table], raw, schema)
                continue
            if table in sheets:
                raise UnusableInputError(
                    f"{grids.file}: sheets {sheets[table].title!r} and {sl.sheet!r} both hold {table!r} rows, so it is "
                    "not clear which holds the data: keep one of them (rename or delete the other), or correct the "
                    "layout (`curate map`)")
            sheets[table] = raw
            titles[table] = sl.sheet
    for table in list(sheets):  # one sheet per outcome: empty outcome fields placed in their own sheet's cells
        sheets[table] = place_empty(sheets[table], layout, table)
    for table, parts in in_blocks.items():
        if len(parts) > 1:
            sheets[table] = _blocks_together(parts, schema, table, emit)
    for title, roles in block_roles.items():  # a sheet of blocks: the cells of no block are not read
        grid = by_title[title]
        filled_all = skipped_roles(grid) != 0
        roles = np.where((roles == 0) & filled_all, 4, roles).astype(np.int8)
        accounts[title] = account_of(title, roles)
        _outside_blocks(grid, roles, emit, layout)
    from ..template import INSTRUCTIONS_SHEET, LISTS_SHEET

    template_made = bool(layout.sheets) and all(sl.by_name for sl in layout.sheets)
    for grid in grids.sheets:
        if grid.title in accounts:
            continue
        roles = skipped_roles(grid)
        if template_made and sheet_key(grid.title) in (INSTRUCTIONS_SHEET, LISTS_SHEET, "conflicts", "about"):
            roles[roles != 0] = 3  # the template's own help and lists, a consensus workbook's conflicts: not data
            accounts[grid.title] = account_of(grid.title, roles)
            continue
        accounts[grid.title] = account_of(grid.title, roles)
        if grid.state == "visible" and grid.title not in layout.empty:
            skipped_sheet_findings(grid, roles, index, emit, read_headers)
    return RawWorkbook(file=grids.file, sheets=sheets, findings=(*grids.findings, *emit.findings), sheet_titles=titles,
                       cell_accounts=tuple(accounts[g.title] for g in grids.sheets))


def form_table_sheets(layout: Layout, table: str) -> set[str]:
    """The form sheets that keep a ``table`` inside them: their tables are read as one (one study each)."""
    return {sl.sheet for sl in layout.sheets if any(ft.table == table for ft in sl.form_tables)}


def _blocks_together(parts: list, schema: ReviewSchema, table: str, emit: _Emit):
    """The blocks of one sheet holding one contract sheet, as one: those marked ``join`` joined by the record's
    key (different fields of the same records), then each other block's records as its own (the same fields,
    told apart by its title's label)."""
    from .blocks import join_blocks, lettered

    joined = None
    for join, raw in parts:
        if join:
            joined = raw if joined is None else join_blocks(joined, raw, schema, table, emit)
    out = joined
    for join, raw in parts:
        if not join:
            out = lettered(raw) if out is None else merge_sheets(lettered(out), lettered(raw), schema)
    return out


def _add_roles(acc: np.ndarray | None, roles: np.ndarray) -> np.ndarray:
    """Two blocks' cell roles of one sheet as one (each cell is in one block at most)."""
    return roles.copy() if acc is None else np.where(acc == 0, roles, acc)


def _unread_block(grid, sl, roles: np.ndarray, emit: _Emit) -> None:
    """A block the layout leaves unread (``read: false``): one warning naming it, when it holds figures."""
    from .account import NOT_READ, figures

    figs = figures(grid.values, roles == NOT_READ)
    if not figs.any():
        return
    b = sl.block
    q = quote_sheet(sl.sheet)
    emit(sl.sheet, b.title_row or b.rows[0], b.columns[0], None, "unread-data", "warning",
         f"block {b.title!r} ({q}!{b.columns[0]}{b.rows[0]}:{b.columns[1]}{b.rows[1]}, {int(figs.sum())} figure(s)) is "
         "not read: it gives the same fields as another block of the sheet and its title names no value that tells "
         "them apart, so the two are never pooled as one outcome; give its label in the layout file (its "
         "`block:` `labels: {field: value}`, and `read: true`) to read it", b.title, sl.tables[0])


def _outside_blocks(grid, roles: np.ndarray, emit: _Emit, layout: Layout) -> None:
    """Figures on a sheet of blocks that no block holds: a warning."""
    from ..reading import column_letter
    from .account import NOT_READ, figures

    outside = roles == NOT_READ
    for sl in layout.sheets:
        if sl.sheet == grid.title and sl.block is not None:
            b = sl.block
            outside[b.rows[0] - 1:b.rows[1], _col_index(b.columns[0]):_col_index(b.columns[1]) + 1] = False
    figs = figures(grid.values, outside)
    if outside.any() and not figs.any():  # text only (a legend, a note beside the blocks): info once
        rr, cc = np.nonzero(outside)
        q = quote_sheet(grid.title)
        emit(grid.title, int(rr.min()) + 1, column_letter(int(cc.min())), None, "inferred-layout", "info",
             f"{q}!{column_letter(int(cc.min()))}{int(rr.min()) + 1}:{column_letter(int(cc.max()))}{int(rr.max()) + 1}: "
             f"{int(outside.sum())} cell(s) of text outside every block of the sheet, not read (no figure among them)",
             None, None)
    if figs.any():
        rr, cc = np.nonzero(figs)
        q = quote_sheet(grid.title)
        emit(grid.title, int(rr.min()) + 1, column_letter(int(cc.min())), None, "unread-data", "warning",
             f"{q}!{column_letter(int(cc.min()))}{int(rr.min()) + 1}:{column_letter(int(cc.max()))}{int(rr.max()) + 1} "
             f"holds {int(figs.sum())} figure(s) outside every block of the sheet, not read: give them a block in "
             "the layout file (`curate map`) if the review needs them", None, None)


def read_cells_off_records(bound: BoundSheet, by_cell: bool = False) -> list[tuple[int, int]]:
    """Value cells the cell model counts as read (role VALUE) that no record takes: (row, column), 0-based.
    Never any, unless the binding loses records (a bug; the records step reports them). A record takes the
    cells of its row and of its fields' own rows; with ``by_cell`` (a form or transposed sheet, whose records
    share rows), only its fields' own cells."""
    from .account import VALUE

    value = bound.roles == VALUE
    lost_in_parts: list[tuple[int, int]] = []
    for _pctx, part in bound.parts:  # a form sheet's tables: each checked as the row records it has
        value &= ~(part.roles == VALUE)
        lost_in_parts += read_cells_off_records(part)
    rr, cc = np.nonzero(value)
    if not len(rr):
        return lost_in_parts
    n = len(bound.data_rows)
    cell_rows, cell_letters = bound.cell_rows or {}, bound.cell_letters or {}
    rows: set[int] = set()
    cells: set[tuple[int, int]] = set()
    for k, r0 in enumerate(bound.data_rows):
        rows.add(int(r0))
        for f, vs in bound.columns.items():
            if k >= len(vs) or not _cell_text(vs[k]):
                continue
            r = int(cell_rows[f][k]) - 1 if f in cell_rows and k < len(cell_rows[f]) and cell_rows[f][k] > 0 \
                else int(r0)
            rows.add(r)
            letter = cell_letters[f][k] if f in cell_letters and k < len(cell_letters[f]) and cell_letters[f][k] \
                else bound.letters.get(f)
            if letter:
                cells.add((r, _col_index(letter)))
    lost = [(int(r), int(c)) for r, c in zip(rr, cc)
            if ((int(r), int(c)) not in cells if by_cell else int(r) not in rows)]
    # values bound beyond the records (more values than records): lost whatever their cells
    for f, vs in bound.columns.items():
        for k in range(n, len(vs)):
            if _cell_text(vs[k]) and f in cell_letters and k < len(cell_letters[f]) and cell_letters[f][k]:
                r = int(cell_rows[f][k]) - 1 if f in cell_rows and cell_rows[f][k] > 0 else int(bound.data_rows[0])
                if (r, _col_index(cell_letters[f][k])) not in lost:
                    lost.append((r, _col_index(cell_letters[f][k])))
    return lost + lost_in_parts


def _guard_unbound(ctx: SheetContext, bound: BoundSheet) -> None:
    """Never a read value silently dropped: value cells read but in no record, and figures on the sheet that
    nothing reads and no finding names yet, are ``unread-data`` warnings."""
    from ..reading import column_letter
    from .account import NOT_READ, figures

    q = quote_sheet(ctx.title)
    # a form or transposed sheet's records share its rows: each value cell must be some record's own cell; a
    # sheet of row records reports the rows it does not read itself (account.unread_findings)
    lost = read_cells_off_records(bound, by_cell=True) if ctx.sl.record_per in ("sheet", "column") else []
    if lost:
        refs = ", ".join(f"{q}!{column_letter(c)}{r + 1}" for r, c in lost[:6])
        ctx.emit(ctx.title, lost[0][0] + 1, column_letter(lost[0][1]), None, "unread-data", "warning",
                 f"{len(lost)} value cell(s) were read but reached no record ({refs}{' ...' if len(lost) > 6 else ''}): "
                 "they are not in the data; check the layout (`curate map`) or report this reading", None, ctx.primary)
    if any(f.rule == "unread-data" and f.sheet == ctx.title for f in ctx.emit.findings):
        return
    figs = figures(bound.vals, bound.roles == NOT_READ)
    # a row not read because it repeats a record (a long sheet's study entered twice) has its duplicate-key error
    repeated = [f.row - 1 for f in ctx.emit.findings if f.rule == "duplicate-key" and f.sheet == ctx.title and f.row]
    figs[[r for r in repeated if 0 <= r < len(figs)]] = False
    if figs.any():
        rr, cc = np.nonzero(figs)
        ctx.emit(ctx.title, int(rr.min()) + 1, None, None, "unread-data", "warning",
                 f"{q} holds {int(figs.sum())} figure(s) that are not read ({q}!{column_letter(int(cc.min()))}"
                 f"{int(rr.min()) + 1}:{column_letter(int(cc.max()))}{int(rr.max()) + 1}): map them in the layout file "
                 "(`curate map`) if the review needs them", None, ctx.primary)


def sheet_records(ctx: SheetContext, bound: BoundSheet) -> dict[str, RawSheet]:
    """One :class:`~curation.reading.RawSheet` per contract sheet a worksheet holds, from its bound cells."""
    schema, sl, emit, needed = ctx.schema, ctx.sl, ctx.emit, ctx.needed
    title, header_row = ctx.title, ctx.header_row
    vals, data_rows, columns, letters = bound.vals, bound.data_rows, bound.columns, bound.letters
    units, percent = bound.units, bound.percent
    n = len(data_rows)
    width = vals.shape[1]
    out: dict[str, RawSheet] = {}
    rows_excel = [r + 1 for r in data_rows]
    for table in sl.tables:
        spec = schema.sheets[table]
        own = {f: _object_array(columns[f]) if f in columns else None for f in spec.fields}
        keep = list(range(n))
        every = True  # every row is kept: the arrays as they are
        if len(sl.tables) > 1 and spec.parent is None and any(schema.sheets[t].parent is not None
                                                              for t in sl.tables if t != table):
            keep = _study_rows(schema, table, own, rows_excel, letters, title, emit, columns)
            every = keep == list(range(n))
        keep_at = np.asarray(keep, dtype=np.intp)
        # (a binding may give a field more values than records: only the records' are taken)
        values = {f: (arr if every and len(arr) == n else arr[keep_at]) for f, arr in own.items() if arr is not None}
        pos_of = {k: j for j, k in enumerate(keep)}
        out[table] = RawSheet(
            file=emit.file, sheet=table, title=title, header_row=header_row,
            columns={f: letters[f] for f in values if f in letters},
            extra_columns={ign.header: l for l, ign in sl.ignored.items()},
            rows=[rows_excel[k] for k in keep], values=values,
            extra_values={ign.header: [_none_if_empty(vals[rows_excel[k] - 1, _col_index(l)]) for k in keep]
                          for l, ign in sl.ignored.items() if _col_index(l) < width},
            percent_cells={f: frozenset(pos_of[k] for k in pos if k in pos_of) for f, pos in percent.items()
                           if f in spec.fields},
            units={f: (_object_array(u) if every and len(u) == n else _object_array([u[k] for k in keep]))
                   for f, u in units.items() if f in spec.fields},
            cell_rows={f: np.asarray(rr)[keep] for f, rr in (bound.cell_rows or {}).items() if f in spec.fields},
            cell_letters={f: np.asarray(ll, dtype=object)[keep] for f, ll in (bound.cell_letters or {}).items()
                          if f in spec.fields},
        )
        # a field the review needs, with no column here (the template reports it as before)
        for f, fs in spec.fields.items():
            if f in values or fs.metadata or (fs.type == "source" and not fs.required):
                continue  # the article field only matters with --sources, which matches without it
            if sl.by_name or f in needed.get(table, set()) or fs.required:
                emit(title, header_row, None, f, "missing-column", "error" if fs.required else "info",
                     f"sheet {quote_sheet(title)} has no column for {f!r}"
                     + ((" (required: every row is excluded)" if f in spec.key or f == "study_id" else
                         # a required field that is no key keeps its rows out of the analyses that use it only
                         " (required: its rows are kept out of every analysis that uses it)")
                        if fs.required else " (treated as empty)"), None, table)
    return out



def _object_array(values: Any) -> np.ndarray:
    """A 1-d object array of these values, each kept as the object it is (``np.array`` would look into each
    for nested sequences)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _study_rows(schema: ReviewSchema, table: str, own: dict[str, Any], rows_excel: list[int], letters: dict[str, str],
                title: str, emit: _Emit, columns: dict[str, list[Any]]) -> list[int]:
    """A wide sheet's rows for the root table: one per study (its overall row, else its first)."""
    sid = columns.get("study_id")
    if sid is None:
        return list(range(len(rows_excel)))
    overall = fold(schema.analysis.overall_cohort)
    cohort = columns.get("cohort") or [None] * len(sid)
    first: dict[str, int] = {}
    for k, s in enumerate(sid):
        key = _cell_text(s) if s is not None else None
        if not key:
            continue
        if key not in first or (fold(_cell_text(cohort[k])) == overall and
                                fold(_cell_text(cohort[first[key]])) != overall):
            first[key] = k
    keep = sorted(first.values())
    spec = schema.sheets[table]
    for k, s in enumerate(sid):
        key = _cell_text(s) if s is not None else None
        if not key or first[key] == k:
            continue
        j = first[key]
        for f in spec.fields:
            if f in ("study_id",) or own.get(f) is None:
                continue
            a, b = own[f][k], own[f][j]
            if _cell_text(a) and _cell_text(b) and fold(_cell_text(a)) != fold(_cell_text(b)):
                emit(title, rows_excel[k], letters.get(f), f, "study-field-conflict", "warning",
                     f"{f} = {_cell_text(a)!r} ({quote_sheet(title)}!{letters.get(f, '')}{rows_excel[k]}) differs from "
                     f"{_cell_text(b)!r} in the study's row {quote_sheet(title)}!{letters.get(f, '')}{rows_excel[j]}, "
                     f"which is the study's value; a cohort row's {f} is not read", a, table)
    return keep


def read_form(path: str | Path, schema: ReviewSchema, *, layout: Layout | None = None, display_name: str | None = None,
              limits: Any = None, data: bytes | None = None) -> RawWorkbook:
    """Read one workbook's contract sheets: its grids (from ``data``, its bytes read once, when given),
    laid out by ``layout`` or by inference."""
    from ..safety import limits_for

    grids = read_grids(path, display_name=display_name, limits=limits if limits is not None else limits_for(schema),
                       data=data)
    from ..fit import fit_findings, unusable_hint

    if isinstance(layout, LayoutSet):  # a folder's layouts: this workbook's
        layout = layout.for_workbook(display_name or path)
    if layout is not None:
        check_fits(layout, grids, schema=schema)
        wb = extract(grids, layout, schema, inferred=True)
    else:
        from .known import known_layout  # the template's layout, recognised without the search

        known = known_layout(grids, schema)
        if known is not None:
            return extract(grids, known, schema, inferred=True)
        try:
            inferred = infer_layout(grids, schema)
        except UnusableInputError as exc:  # the closest shipped schemas, when it is a form of another review
            from .compete import AmbiguousLayoutError

            if isinstance(exc, AmbiguousLayoutError):  # a sheet two ways: the layout file chooses, not the schema
                raise
            raise UnusableInputError(exc.message + unusable_hint(grids, schema)) from None
        wb = extract(grids, inferred, schema, inferred=True)
    fit = fit_findings(grids, schema, wb)  # a workbook of another review: say so, name the closest schemas
    return replace(wb, findings=tuple(fit) + tuple(wb.findings)) if fit else wb


def map_form(path: str | Path, schema: ReviewSchema, *, display_name: str | None = None,
             limits: Any = None) -> Layout:
    """The inferred layout of one workbook (what ``curate map`` writes)."""
    from ..safety import limits_for

    grids = read_grids(path, display_name=display_name, limits=limits if limits is not None else limits_for(schema))
    layout = infer_layout(grids, schema, refuse_ties=False)
    wb = extract(grids, layout, schema, inferred=True)
    return layout.model_copy(update={"cells": {a.sheet: a.to_dict() for a in wb.cell_accounts}})


def map_forms(paths: list[Path], schema: ReviewSchema, *, names: list[str] | None = None,
              limits: Any = None) -> Layout | LayoutSet:
    """The inferred layout of one workbook, or of each workbook of a folder (one per study): what
    ``curate map`` writes for what ``curate validate`` reads."""
    names = list(names) if names is not None else [Path(p).name for p in paths]
    layouts = [map_form(p, schema, display_name=n, limits=limits) for p, n in zip(paths, names)]
    if len(layouts) == 1:
        return layouts[0]
    seen: dict[str, str] = {}
    for lay, n in zip(layouts, names):
        if lay.workbook in seen:
            raise UnusableInputError(f"{n} and {seen[lay.workbook]}: two workbooks of one file name; a layout file "
                                     "names each workbook by its file name: map them one at a time")
        seen[lay.workbook] = n
    return LayoutSet(workbooks=layouts)


def read_together(layout: Layout, title: str) -> set[str]:
    """The sheets read as one table with ``title``: those with the same contract sheets and the same columns
    (one sheet per subgroup; the layout file lists each)."""
    me = next(sl for sl in layout.sheets if sl.sheet == title)
    if me.record_per in ("sheet", "column"):  # one study per sheet (a column per cohort): every such sheet
        return {sl.sheet for sl in layout.sheets if sl.sheet != title and sl.record_per in ("sheet", "column")
                and sl.tables == me.tables}
    def cols(sl: SheetLayout) -> frozenset:
        return frozenset((c.column, c.kind, tuple(sorted(c.parts.items()))) for c in sl.columns)

    mine = cols(me)
    # the same columns, or all but one of them (a header a team left empty on one sheet: that column is not
    # read there, and its cells are reported as not read)
    return {sl.sheet for sl in layout.sheets if sl.sheet != title and sl.tables == me.tables and
            (cols(sl) == mine or (len(mine) > 4 and len(cols(sl) ^ mine) == 1))}


def merge_sheets(a: RawSheet, b: RawSheet, schema: ReviewSchema) -> RawSheet:
    """Two worksheets' records of one contract sheet as one (each record keeps its worksheet: ``row_titles``).
    A study in both (the root sheet) is one study: its first row is kept."""
    n_a, n_b = len(a.rows), len(b.rows)
    for f in set(a.columns) & set(b.columns):
        if a.columns[f] != b.columns[f] and not (f in a.cell_letters and f in b.cell_letters):
            raise UnusableInputError(
                f"{a.file}: sheets {a.title!r} and {b.title!r} are read as one table but keep {f} in different "
                f"columns ({a.columns[f]} and {b.columns[f]}); put it in the same column on both, or keep one sheet "
                "in the layout file (`curate map`)")
    keep_b = list(range(n_b))
    spec = schema.sheets[a.sheet]
    if spec.parent is None and list(spec.key) == ["study_id"] and "study_id" in a.values and "study_id" in b.values:
        seen = {_cell_text(v) for v in a.values["study_id"]}
        keep_b = [k for k in keep_b if _cell_text(b.values["study_id"][k]) not in seen]
    kb = np.asarray(keep_b, dtype=int)

    def cat(x, y, fill=None):
        x = np.asarray(x, dtype=object) if x is not None else np.full(n_a, fill, dtype=object)
        y = np.asarray(y, dtype=object)[kb] if y is not None else np.full(len(kb), fill, dtype=object)
        return np.concatenate([x, y])

    fields = set(a.values) | set(b.values)
    values = {f: cat(a.values.get(f), b.values.get(f)) for f in fields}
    units = {f: cat(a.units.get(f), b.units.get(f)) for f in set(a.units) | set(b.units)}
    cell_rows = {f: np.concatenate([np.asarray(a.cell_rows.get(f, np.zeros(n_a)), dtype="int64"),
                                    np.asarray(b.cell_rows.get(f, np.zeros(n_b)), dtype="int64")[kb]])
                 for f in set(a.cell_rows) | set(b.cell_rows)}
    cell_letters = {f: np.concatenate([np.asarray(a.cell_letters.get(f, np.full(n_a, None)), dtype=object),
                                       np.asarray(b.cell_letters.get(f, np.full(n_b, None)), dtype=object)[kb]])
                    for f in set(a.cell_letters) | set(b.cell_letters)}
    cell_titles = {f: np.concatenate([np.asarray(a.cell_titles.get(f, np.full(n_a, None)), dtype=object),
                                      np.asarray(b.cell_titles.get(f, np.full(n_b, None)), dtype=object)[kb]])
                   for f in set(a.cell_titles) | set(b.cell_titles)}
    pos_b = {k: j for j, k in enumerate(keep_b)}
    percent = {f: frozenset(a.percent_cells.get(f, frozenset())) |
               frozenset(n_a + pos_b[p] for p in b.percent_cells.get(f, frozenset()) if p in pos_b)
               for f in set(a.percent_cells) | set(b.percent_cells)}
    extra = {h: list(a.extra_values.get(h, [None] * n_a)) + [b.extra_values.get(h, [None] * n_b)[k] for k in keep_b]
             for h in set(a.extra_values) | set(b.extra_values)}
    titles = list(a.row_titles if a.row_titles is not None else [a.title] * n_a) + \
        [(b.row_titles[k] if b.row_titles is not None else b.title) for k in keep_b]
    return RawSheet(file=a.file, sheet=a.sheet, title=a.title, header_row=a.header_row,
                    columns={**b.columns, **a.columns}, extra_columns={**b.extra_columns, **a.extra_columns},
                    rows=list(a.rows) + [b.rows[k] for k in keep_b], values=values, extra_values=extra,
                    percent_cells=percent, units=units, cell_rows=cell_rows, row_titles=titles,
                    cell_letters=cell_letters, cell_titles=cell_titles)

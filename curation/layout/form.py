"""Form-style sheets: labels in one column, values beside them, one sheet per study (layouts.md v2, shape 3).

``First author | Bodei``, ``Year | 2011``, ``N | 51`` down a sheet named after the study: each label
cell is a row header (unpivotr's ``left`` direction, directly) and the sheet is one record
(``recordPer: sheet``), databaker's ``HDimConst`` for the sheet name. Several such sheets (one per study)
are one table, each record keeping its sheet (``RawSheet.row_titles``) and each value its own cell
(``RawSheet.cell_rows``). Where no label names the study, the sheet's name does (``Bodei 2011``).
"""

from __future__ import annotations

import numpy as np

from ..reading import SheetGrid, column_letter
from ..schema import ReviewSchema
from .cells import _cell_text, _filled, _text, content_kind
from .headers import FieldIndex, split_header
from .model import ColumnLayout, SheetLayout


def _field_of(index: FieldIndex, text: str) -> tuple[tuple[str, str], ...]:
    """The fields a form's label names: the label, its core (``Median PFS, months`` -> ``median pfs``), or
    else the one field every word of the core names (``Patients enrolled``: ``patients`` and ``enrolled``
    are both names of n_enrolled), never a field only some words name."""
    hit = index.lookup(text)
    if hit:
        return hit
    core = split_header(text)[0]
    hit = index.lookup(core)
    words = core.split()
    if hit or len(words) < 2:
        return hit
    common = None
    for w in words:
        got = index.lookup(w)
        if not got:
            return ()
        common = [x for x in (got if common is None else common) if x in got]
    return tuple(common or ())


def detect_form(index: FieldIndex, grid: SheetGrid) -> tuple[int, int, list[tuple[int, str, tuple]]] | None:
    """A form-style sheet: (label column, value column, [(row0, label, fields)]), or None.

    A column with three or more label cells naming distinct fields, each with a value to its right."""
    vals = grid.values
    n_rows, width = vals.shape
    if width < 2 or n_rows < 3:
        return None
    filled = _filled(vals[:200])  # labels in the first columns; their values anywhere to the right (a transposed
    best = None                   # sheet keeps a cohort per column, some far right: K9 under 'Grade')
    for c in range(min(width - 1, 5)):
        hits = []
        seen: set = set()
        repeated = 0
        for r in np.flatnonzero(filled[:, c]):
            t = _text(vals[r, c])
            if not t or len(t) > 80:
                continue
            fields = _field_of(index, t)
            if not fields:
                continue
            if fields[0] in seen:
                repeated += 1  # a form names each field once; a list of fields (a sources sheet) repeats them
                continue
            if not filled[r, c + 1:].any():
                continue
            seen.add(fields[0])
            hits.append((int(r), t, fields))
        if len(hits) >= 3 and repeated <= len(hits) // 4 and (best is None or len(hits) > len(best[2])):
            value_col = c + 1 + int(np.argmax(filled[[h[0] for h in hits], c + 1:].sum(axis=0)))
            values = [vals[r, value_col] for r, _t, _f in hits]
            texts = [_cell_text(v) for v in values if _cell_text(v)]
            n_fig = sum(1 for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
                        or (isinstance(v, str) and v.strip()[:1].isdigit()))
            # values as typed in a form (figures, short terms), not the sentences of an instructions sheet
            if n_fig >= 2 and texts and sorted(len(x) for x in texts)[len(texts) // 2] <= 40:
                rows = [h[0] for h in hits]
                # a row naming two or more columns (``drug | placebo``): the share of each column is counted over
                # the labels below it (a study's form with arms: its study-level labels above, each stated once,
                # do not count against the arms)
                held = _filled(vals[rows][:, c + 1:])
                head = _arms_row(vals, c + 1, rows[0])
                below = [k for k, r in enumerate(rows) if head is not None and r > head]
                share = held[below].mean(axis=0) if len(below) >= 2 else held.mean(axis=0)
                # a column per record: filled beside half the labels or more, or beside half as many as the
                # fullest column (a cohort reporting few of the fields: Bodei's column beside Grade, CR ... PD)
                value_cols = [c + 1 + int(j) for j in np.flatnonzero(share >= max(0.25, min(0.5, share.max() / 2)))]
                if len(value_cols) < 2:
                    value_cols = _cohort_columns(index, vals, hits, held, c, value_col)
                else:
                    value_col = value_cols[0]
                best = (c, value_col, hits, value_cols if len(value_cols) >= 2 else [value_col])
    if best is not None:
        best = _labels_left(index, vals, filled, best)
    return best


def _arms_row(vals: np.ndarray, first_value_col: int, start: int) -> int | None:
    """The first row from ``start`` whose cells right of the labels name two or more columns (texts, no
    figures: ``adenosineA2a | placebo``), or None."""
    for r in range(start, min(vals.shape[0], start + 200)):
        cells = [v for v in vals[r, first_value_col:] if _cell_text(v)]
        if len(cells) >= 2 and all(isinstance(v, str) and not v.strip()[:1].isdigit() and v.strip().upper() != "NA"
                                   for v in cells):
            return r
    return None


def _labels_left(index: FieldIndex, vals: np.ndarray, filled: np.ndarray, found: tuple) -> tuple:
    """Labels further left than the form's label column, with their value in its value column and nothing
    between (a real form keeps ``Category`` and ``General`` in column A, the rest of its labels in C, every
    value in D), and labels whose value was left empty (so that a finding names that empty cell): added to the
    hits, each with its own label column (the 5th item: row -> column)."""
    c, value_col, hits, value_cols = found[:4]
    seen = {h[2][0] for h in hits}
    taken = {h[0] for h in hits}
    label_cols: dict[int, int] = {}
    extra = []
    for r in np.flatnonzero(filled[:, :c + 1].any(axis=1)):
        if r in taken:
            continue
        if filled[r, c]:  # a label of the label column with its value left empty: the empty cell is the field's
            if filled[r, c + 1:].any():
                continue
            c2 = c
        else:
            c2 = int(np.flatnonzero(filled[r, :c])[-1])
        if filled[r, c2 + 1:value_col].any():
            continue
        t = _text(vals[r, c2])
        if not t or len(t) > 80:
            continue
        fields = _field_of(index, t)
        if not fields or fields[0] in seen:
            continue
        seen.add(fields[0])
        extra.append((int(r), t, fields))
        label_cols[int(r)] = c2
    if not extra:
        return found
    return (c, value_col, sorted(hits + extra), value_cols, label_cols)


def _cohort_columns(index: FieldIndex, vals: np.ndarray, hits: list, held: np.ndarray, c: int,
                    value_col: int) -> list[int]:
    """One study's form with its cohorts side by side (``Cohort | overall | G1-2 | G3`` under the study's own
    fields): the value column and the columns right beside it that hold values only in rows of fields of a
    cohort-level table (not the study's root table), in two rows or more. A column that also holds values
    beside study-level labels (a notes column) is not a cohort."""
    root = index.schema.root_sheet
    cohort_rows = np.array([any(t != root for t, _f in fields) and all(f not in _IDENTITY for _t, f in fields)
                            for _r, _t, fields in hits], bool)
    out = [value_col]
    for j in range(value_col - c, held.shape[1]):
        col = held[:, j]
        if col.sum() < 2 or (col & ~cohort_rows).any():
            break
        vs = [_cell_text(vals[hits[i][0], c + 1 + j]) for i in np.flatnonzero(col)]
        if any(len(v) > 40 for v in vs):  # sentences: notes, not a cohort's values
            break
        out.append(c + 1 + j)
    return out


def form_score(found) -> int:
    return len(found[2]) if found else 0


def form_tables(schema: ReviewSchema, found) -> list[str]:
    """The contract sheets a form-style sheet holds: those with two or more of its fields (the root one too
    when it holds an identity field)."""
    per: dict[str, set] = {}
    for _r, _t, fields in found[2]:
        for table, f in fields:
            per.setdefault(table, set()).add(f)
    tables = [t for t in schema.sheets if len(per.get(t, set()) - {"study_id"}) >= 2]
    root = schema.root_sheet
    if tables and root not in tables and per.get(root, set()) & {"study_id", "first_author", "year"}:
        tables.insert(0, root)
    return tables


def form_layout(schema: ReviewSchema, grid: SheetGrid, found, tables: list[str]) -> SheetLayout:
    """The layout of a form-style sheet: one column entry per label (its row, its value's column)."""
    label_col, value_col, hits, value_cols = found[:4]
    label_cols = found[4] if len(found) > 4 else {}
    cols: list[ColumnLayout] = []
    used: set[str] = set()
    for r, text, fields in hits:
        fs = [f for t, f in fields if t in tables]
        if not fs or fs[0] in used:
            continue
        f = fs[0]
        used.add(f)
        spec = next(schema.sheets[t].fields[f] for t in tables if f in schema.sheets[t].fields)
        kind, parts = "value", {"value": f}
        row_values = [grid.values[r, vc] for vc in value_cols if vc < grid.values.shape[1]]
        if spec.combined and any(content_kind([v]) == "median_ci" for v in row_values if _cell_text(v)):
            kind, parts = "median_ci", {"value": f, "low": spec.combined["low"], "high": spec.combined["high"]}
        cols.append(ColumnLayout(column=column_letter(value_col), header=text, kind=kind, parts=parts,
                                 confidence="medium", row=r + 1, label=column_letter(label_cols.get(r, label_col))))
    derived = {}
    if len(value_cols) >= 2:  # transposed wide: one record per column (a study or cohort each)
        if not used & {"study_id", "first_author"}:
            derived["study_id"] = "each column's head (Author year) above the labels"
        return SheetLayout(sheet=grid.title, tables=tables, headerRows=[min(c.row for c in cols)], columns=cols,
                           derived=derived, recordPer="column", valueColumns=[column_letter(v) for v in value_cols])
    if not used & {"study_id", "first_author"}:
        derived["study_id"] = "the sheet's name (Author year)"
    return SheetLayout(sheet=grid.title, tables=tables, headerRows=[min(c.row for c in cols)], columns=cols,
                       derived=derived, recordPer="sheet")


def study_from_title(title: str, keep_rest: bool = True) -> dict[str, str]:
    """``Bodei 2011`` / ``Bodei (2011)`` -> first_author, year, study_id; {} when the name is not one (the one
    derivation of :func:`.identity.study_of_label`: ``Meriggi F 2017`` -> ``MeriggiF2017``). ``keep_rest``: the
    id keeps what follows the year (a sheet's name: ``Koller_1987.2`` -> ``Koller_1987-2``; ``Rascol (2022) - ALLY-LID
    II`` -> ``Rascol2022-ALLY-LID-II``); a column head's rest is left to its cohort (``keep_rest=False``)."""
    from .identity import label_id, parse_label, study_of_label

    out = study_of_label(title)
    if out and not keep_rest:
        label = parse_label(title)
        if label is not None and label.rest:
            out = {**out, "study_id": label_id(label, with_rest=False)}
    return out


def bind_form(ctx, vals: np.ndarray, roles: np.ndarray):
    """A form-style sheet -> one record: each label's value (composite cells split), each keeping its cell."""
    from .account import HEADER, VALUE
    from .binding import form_typed_cell, resolve_form_parts, typed_cell
    from ..findings import quote_sheet

    sl, emit, title, primary = ctx.sl, ctx.emit, ctx.title, ctx.primary
    first = min(c.row for c in sl.columns)
    n_rows, width = vals.shape
    value_letters = sl.value_columns or [sl.columns[0].column]
    n = len(value_letters)
    columns: dict[str, list] = {}
    letters: dict[str, str] = {}
    units: dict[str, list] = {}
    cell_rows: dict[str, list] = {}
    cell_letters: dict[str, list] = {}
    typed_parts: list = []
    for k, vl in enumerate(value_letters):
        for col in sl.columns:
            r0 = col.row - 1
            c = _col_index(vl)
            if r0 >= n_rows or c >= width:
                continue
            lab = _col_index(col.label) if col.label else _col_index(col.column) - 1
            if 0 <= lab < width and roles[r0, lab]:
                roles[r0, lab] = HEADER
            v = vals[r0, c]
            for f in col.parts.values():  # each record's cells, an empty one too (a finding names its cell)
                cell_rows.setdefault(f, [0] * n)[k] = col.row if col.row != first else 0
                cell_letters.setdefault(f, [None] * n)[k] = vl
                letters.setdefault(f, vl)
            if _cell_text(v) == "":
                continue
            if col.kind == "value":  # '15/46' under a percentage: the count and denominator kept for later
                v = form_typed_cell(ctx, col.parts["value"], v, k, col.row, vl, typed_parts)
            got, unit, problem = typed_cell(ctx.schema, sl.tables, col, v)  # as the wide path reads a cell
            if problem:
                target = next(iter(col.parts.values()))
                emit(title, col.row, vl, target, "invalid-number", "error",
                     f"{target} ({quote_sheet(title)}!{vl}{col.row}): {problem}", v, primary)
                continue
            roles[r0, c] = VALUE
            for f, part in got.items():
                if f.startswith("__"):
                    continue
                columns.setdefault(f, [None] * n)[k] = part
                letters.setdefault(f, vl)
                cell_rows.setdefault(f, [0] * n)[k] = col.row if col.row != first else 0
                cell_letters.setdefault(f, [None] * n)[k] = vl
                if unit:
                    units.setdefault(f, [None] * n)[k] = unit
    if typed_parts:
        resolve_form_parts(ctx, typed_parts, columns, letters, cell_rows, cell_letters, n, first)
    if sl.record_per == "column":  # one record per value column, whether or not a label names its study
        arms_row = _study_level_rows(sl, vals, value_letters, columns, cell_rows, cell_letters)
        if not {"study_id", "first_author"} & set(columns):
            _column_heads(vals, roles, first, value_letters, columns, cell_rows, cell_letters, letters)
        _one_study(ctx, columns, cell_rows, cell_letters, n, across=arms_row is None)
        return [first - 1] * n, columns, letters, units, \
            {f: np.asarray(v, dtype="int64") for f, v in cell_rows.items()}, \
            {f: np.asarray(v, dtype=object) for f, v in cell_letters.items()}
    above = roles[:first - 1]  # a title above the labels: a header, where it is text
    if above.size:
        from .account import figures

        above[(above != 0) & ~figures(vals[:first - 1], above != 0)] = HEADER
    if not {"study_id", "first_author"} & set(columns):
        for f, v in study_from_title(title, keep_rest=True).items():
            columns.setdefault(f, [v])
        if "study_id" in columns:
            emit(title, None, None, "study_id", "inferred-layout", "info",
                 f"sheet {quote_sheet(title)} is one study's form: its name gives study_id "
                 f"{columns['study_id'][0]!r}", title, primary)
    return [first - 1], columns, letters, units, {f: np.asarray(v, dtype="int64") for f, v in cell_rows.items()}, \
        {f: np.asarray(v, dtype=object) for f, v in cell_letters.items()}


def _study_level_rows(sl, vals: np.ndarray, value_letters: list[str], columns: dict, cell_rows: dict,
                      cell_letters: dict) -> int | None:
    """A study's form with a column per arm or cohort whose arms are named by a row of its own (``Sample |
    adenosineA2a | placebo`` in row 20): the labels above that row are the whole study's (``Category``,
    ``Year``, ``Title``, stated once in the first column), so each column takes them; below it each column
    keeps its own cells (an empty one stays empty). Returns the arms row (Excel), or None when there is none."""
    n, width = len(value_letters), vals.shape[1]
    if n < 2:
        return None
    idx = [_col_index(v) for v in value_letters]
    head = None
    for col in sorted(sl.columns, key=lambda c: c.row or 0):
        r0 = (col.row or 0) - 1
        cells = [vals[r0, c] if 0 <= r0 < vals.shape[0] and c < width else None for c in idx]
        named = [v for v in cells if isinstance(v, str) and v.strip() and not v.strip()[:1].isdigit()]
        if len(named) >= 2 and len(named) == sum(1 for v in cells if _cell_text(v)):
            head = col.row
            break
    if head is None:
        return None
    for col in sl.columns:
        if not col.row or col.row >= head:
            continue
        for f in col.parts.values():
            vs = columns.get(f)
            if vs is not None and _cell_text(vs[0]) and not any(_cell_text(v) for v in vs[1:]):
                _first_to_every(f, n, columns, cell_rows, cell_letters)
    return head


def _first_to_every(f: str, n: int, columns: dict, cell_rows: dict, cell_letters: dict) -> None:
    """A field typed once, in the first value column, given to every column (each citing that first cell)."""
    columns[f] = [columns[f][0]] * n
    if f in cell_rows:
        cell_rows[f] = [cell_rows[f][0]] * n
    if f in cell_letters:
        cell_letters[f] = [cell_letters[f][0]] * n


def _col_index(letter: str) -> int:
    n = 0
    for ch in letter:
        n = n * 26 + (ord(ch.upper()) - 64)
    return n - 1


def _column_heads(vals: np.ndarray, roles: np.ndarray, first: int, value_letters: list[str], columns: dict,
                  cell_rows: dict, cell_letters: dict, letters: dict) -> None:
    """The study of each value column where no label names it: its head above the labels (the nearest row with
    text in most value columns, ``Bodei 2011``)."""
    from .account import HEADER

    n, width = len(value_letters), vals.shape[1]
    for r in range(first - 2, -1, -1):
        heads = [_cell_text(vals[r, _col_index(vl)]) if _col_index(vl) < width else "" for vl in value_letters]
        if sum(1 for h in heads if h) >= max(1, n // 2):
            for k, h in enumerate(heads):
                for f, v in study_from_title(h, keep_rest=False).items() if h else ():
                    columns.setdefault(f, [None] * n)[k] = v
                    cell_rows.setdefault(f, [0] * n)[k] = r + 1
                    cell_letters.setdefault(f, [None] * n)[k] = value_letters[k]
                    letters.setdefault(f, value_letters[k])
                if h:
                    roles[r, _col_index(value_letters[k])] = HEADER
            return


_IDENTITY = ("study_id", "first_author", "year")


def _study_fields_across(ctx, columns: dict, cell_rows: dict, cell_letters: dict, n: int) -> None:
    """One study's form with a column per cohort: a study-level field (of the root table only) typed once, in
    the first column, is the study's, so every cohort's column takes it (each citing the cell it came from)."""
    root = ctx.schema.sheets.get(ctx.schema.root_sheet)
    if root is None:
        return
    cohort_level = {f for t, spec in ctx.schema.sheets.items() if t != ctx.schema.root_sheet for f in spec.fields}
    for f, vs in columns.items():
        if f not in root.fields or f in cohort_level or f in _IDENTITY or not _cell_text(vs[0]):
            continue
        if any(_cell_text(v) for v in vs[1:]):
            continue  # typed per column: each keeps its own
        _first_to_every(f, n, columns, cell_rows, cell_letters)


def _one_study(ctx, columns: dict, cell_rows: dict, cell_letters: dict, n: int, across: bool = True) -> None:
    """One study's form sheet with a value column per cohort (its fields beside the first, its cohorts side by
    side): the study that one column or the sheet's name states is every column's study. Columns that state
    different studies (a transposed sheet of several studies) are left as they are."""
    stated = {f: [k for k in range(n) if _cell_text(columns[f][k])] for f in _IDENTITY if f in columns}
    if any(len(stated.get(f, ())) == n for f in ("study_id", "first_author")):
        return  # each column names its study (a year in each does not)
    if across:  # (with a row naming the arms, only the labels above it are the study's: _study_level_rows)
        _study_fields_across(ctx, columns, cell_rows, cell_letters, n)
    texts = {(f, _cell_text(columns[f][k]).casefold()) for f, ks in stated.items() for k in ks}
    if len({f for f, _t in texts}) != len(texts):
        return  # columns that name different studies: each keeps its own (missing ones are reported)
    if not stated or not any(stated.values()):
        from ..findings import quote_sheet

        for f, v in study_from_title(ctx.title, keep_rest=True).items():
            columns[f] = [v] * n
        if "study_id" in columns:
            ctx.emit(ctx.title, None, None, "study_id", "inferred-layout", "info",
                     f"sheet {quote_sheet(ctx.title)} is one study's form with a column per cohort: its name gives "
                     f"study_id {columns['study_id'][0]!r} to each of its {n} columns", ctx.title, ctx.primary)
        return
    for f, ks in stated.items():
        if not ks:
            continue
        k0 = ks[0]
        columns[f] = [columns[f][k0]] * n
        if f in cell_rows:
            cell_rows[f] = [cell_rows[f][k0]] * n
        if f in cell_letters:
            cell_letters[f] = [cell_letters[f][k0]] * n
    # what no column states (a study id where only the year has a label): the sheet's name gives it
    from_title = {f: v for f, v in study_from_title(ctx.title, keep_rest=True).items() if not stated.get(f)}
    if "study_id" in from_title:
        for f, v in from_title.items():
            columns[f] = [v] * n
        from ..findings import quote_sheet

        ctx.emit(ctx.title, None, None, "study_id", "inferred-layout", "info",
                 f"sheet {quote_sheet(ctx.title)} is one study's form with a column per cohort: its name gives "
                 f"study_id {columns['study_id'][0]!r} to each of its {n} columns", ctx.title, ctx.primary)

"""Stacked and side-by-side blocks (layouts.md v2, shape 4): several tables in one sheet, each its own table.

A sheet may keep several tables one below the other (a blank row between them) or side by side (an empty
column between them), each under its own title and header rows: a studies block, a response block, a PFS
block; or one block per scale (``UPDRS IV``, ``UDysRS``) with the same columns. This module finds the blocks
(unpivotr's ``partition()`` on the corners a title and a header make; databaker's sub-tables) and reads each
as a table of its own, on a grid of the block's cells alone (the rest blanked; rows and columns keep their
Excel numbers, so every finding cites the workbook's own cell).

A block's title is a header above the block's columns: the top header row, spanning the block (``PFS`` over
``Median | Lower | Upper`` names ``pfs_median``, ``pfs_ci_low``, ``pfs_ci_high``). Blocks that give one
contract sheet:

- **different fields** of the same records (a response block, a PFS block and an OS block of each cohort; each
  block gives a field no other gives, a column such as the grade may be in several): joined by the record's key (study and cohort), as a long table's rows of different outcomes join into one
  record (``join: true`` in the layout). A record whose key is in one block only is kept as it is; two blocks
  giving one field of one record different values is an error naming both cells (rule ``block-conflict``).
- **the same fields** (one block per scale or subgroup): never pooled as one outcome. Each title is a label
  value (a term of a vocabulary field the block has no column for: ``UPDRS IV`` -> ``scale``); when every
  block's title gives a distinct value of one field, every block is read with its value, else the first block
  is read and the others are not, with a warning naming them.

The layout file gives each block as its own ``- sheet:`` entry with a ``block:`` (title, rows, columns, join,
labels), so that ``curate map`` then ``--layout`` reads the same cells.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..reading import SheetGrid, column_letter
from ..schema import ReviewSchema
from .cells import _cell_text, _filled, _looks_numeric
from .headers import IDENTITY, FieldIndex, _match_column, split_header

#: a block's identity: the fields that name its records (never a field it gives)
_KEYISH = {"study_id", "first_author", "year", "extractor"}


@dataclass(frozen=True)
class Block:
    """One block of a sheet: 0-based, inclusive.

    Attributes
    ----------
    top, bottom : int
        The block's first row (its title, else its first header row) and last row.
    left, right : int
        The block's first and last column.
    title_row : int or None
        The row of its title (one text cell above its header), if any.
    header_rows : tuple of int
        Its header rows (below the title).
    title : str
        The title's text ("" without one).
    """

    top: int
    bottom: int
    left: int
    right: int
    title_row: int | None
    header_rows: tuple[int, ...]
    title: str


def block_grid(grid: SheetGrid, top: int, bottom: int, left: int, right: int, title_row: int | None) -> SheetGrid:
    """The sheet with every cell outside the block blanked (0-based, inclusive bounds); the block's title spread
    over its columns as a merged cell would be, so that it heads each of them."""
    vals = np.full(grid.values.shape, "", dtype=object)
    vals[top:bottom + 1, left:right + 1] = grid.values[top:bottom + 1, left:right + 1]
    merged = tuple(m for m in grid.merged if top <= m[0][0] and m[1][0] <= bottom and left <= m[0][1]
                   and m[1][1] <= right)
    if title_row is not None:
        row = vals[title_row, left:right + 1]
        filled = [j for j, v in enumerate(row) if _cell_text(v)]
        if len(filled) == 1:
            c0 = left + filled[0]
            merged = tuple(m for m in merged if m[0][0] != title_row) + (((title_row, c0), (title_row, right)),)
    return replace(grid, values=vals, merged=merged,
                   hidden_rows=frozenset(r for r in grid.hidden_rows if top < r <= bottom + 1),
                   formula_cells=frozenset(x for x in grid.formula_cells if top < x[0] <= bottom + 1
                                           and left <= x[1] <= right),
                   percent_cells=frozenset(x for x in grid.percent_cells if top < x[0] <= bottom + 1
                                           and left <= x[1] <= right))


def title_qualifiers(index: FieldIndex, title: str) -> list[str]:
    """What a title says of the columns under it, most literal first: the title, its core without units or
    qualifiers (``Progression-free survival`` of ``Progression-free survival (months)``) and, when that names
    a field, the field's stem (``pfs`` of ``pfs_median``), the short form its columns' headers take."""
    if not title:
        return []
    out = [title]
    core = split_header(title)[0]
    if core and core not in out:
        out.append(core)
    for text in (title, core):
        for _t, f in index.lookup(text):
            stem = f.split("_")[0]
            if stem and stem != f and stem not in out:
                out.append(stem)
    return out


def match_block_column(index: FieldIndex, texts: list[str], title: str):
    """One column of a block: its header texts (the title first, spread over it) matched as ``_match_column``
    does; where the title joined to its header names no field, the header under each of the title's qualifiers,
    then the header alone. Returns ``_match_column``'s tuple, the header being the texts joined (as written)."""
    hit = _match_column(index, texts)
    if hit[0] or not title:
        return hit
    joined = hit[4]
    below = texts[1:]
    for q in title_qualifiers(index, title)[1:]:
        alt = _match_column(index, [q, *below])
        if alt[0]:
            return (alt[0], alt[1], alt[2], alt[3], joined)
    alt = _match_column(index, below)
    if alt[0]:
        return (alt[0], alt[1], alt[2], alt[3], joined)
    return hit


def _text_row(vals: np.ndarray, r: int, left: int, right: int) -> list[tuple[int, str]]:
    return [(c, _cell_text(vals[r, c])) for c in range(left, right + 1) if _cell_text(vals[r, c])]


def _header_at(index: FieldIndex, vals: np.ndarray, r: int, left: int, right: int, title: str,
               above: list[list[str]] | None = None) -> bool:
    """Whether row ``r`` is a block's header: texts only, two or more naming fields (under the title and the
    group rows ``above``, their texts spread over merged cells), one naming the study."""
    cells = _text_row(vals, r, left, right)
    if len(cells) < 2 or any(_looks_numeric(vals[r, c]) or not isinstance(vals[r, c], str) for c, _t in cells):
        return False
    named = []
    for c, t in cells:
        texts = ([title] if title else []) + [a[c] for a in (above or []) if a[c]] + [t]
        f = match_block_column(index, texts, title)[0]
        if f:
            named.append(f)
    ident = any(any(x in IDENTITY or x in ("first_author", "study_id") for _t, x in f) for f in named)
    return len(named) >= 2 and ident


def _column_groups(filled: np.ndarray) -> list[tuple[int, int]]:
    """Runs of columns holding something, split at columns empty from top to bottom."""
    return _runs(filled.any(axis=0))


def _runs(used: np.ndarray) -> list[tuple[int, int]]:
    """The runs of True in a boolean vector, as (first, last) index pairs."""
    out, start = [], None
    for i, u in enumerate(used):
        if u and start is None:
            start = i
        elif not u and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(used) - 1))
    return out


def _vertical_blocks(index: FieldIndex, grid: SheetGrid, filled: np.ndarray, left: int, right: int) -> list[Block]:
    """The blocks of one run of columns, one below the other: segments between blank rows, each starting with a
    title and a header (a segment without a header continues the block above it)."""
    from .headers import _merged_fill_header

    vals = grid.values
    segs = _runs(filled[:, left:right + 1].any(axis=1))
    blocks: list[Block] = []
    lead: int | None = None
    lead_cells = 0
    for s, e in segs:
        found = None
        first = _text_row(vals, s, left, right)
        is_title = len(first) == 1 and isinstance(vals[s, first[0][0]], str) and len(first[0][1]) <= 80 \
            and not _looks_numeric(vals[s, first[0][0]])
        for k in range(s, min(s + 4, e)):  # a header with one row below it at least
            title, trow = (first[0][1], s) if is_title and k > s else ("", None)

            def group_rows(k: int) -> tuple[int, ...]:
                # rows of text between the title and the header (arms spanning their columns): header rows too
                return tuple(r for r in range(s + 1 if trow is not None else s, k)
                             if all(isinstance(vals[r, c], str) for c, _t in _text_row(vals, r, left, right)))

            def above(k: int) -> list[list[str]]:
                return _merged_fill_header(grid, list(group_rows(k)))

            if _header_at(index, vals, k, left, right, title, above(k)):
                while k + 1 < e and _header_at(index, vals, k + 1, left, right, title, above(k + 1)):
                    k += 1  # a group row above the header's last row names fields too ('Study' over 'Author')
                group = group_rows(k)
                found = Block(s, e, left, right, trow, group + (k,), title)
                break
        if found is not None:
            if lead is not None and not blocks:
                if lead_cells > 3:
                    # more than a title above the first block (a form's labels and values, a table with no
                    # header of the schema's): not a sheet of blocks; the sheet's own reading takes it
                    return []
                found = replace(found, top=lead)
            blocks.append(found)
        elif blocks:
            blocks[-1] = replace(blocks[-1], bottom=e)
        else:
            lead = s if lead is None else lead
            lead_cells += int(filled[s:e + 1, left:right + 1].sum())
    return blocks


def _empty(cells: np.ndarray) -> np.ndarray:
    """Which of some cells are empty (a text of spaces only is empty)."""
    return ~_filled(cells.reshape(1, -1))[0] if cells.size else np.zeros(0, bool)


def _may_hold_blocks(vals: np.ndarray) -> bool:
    """Whether a sheet has a column empty from top to bottom between filled ones, or a blank row between
    filled ones: what two blocks need between them. Found without classifying every cell (a large sheet of one
    table costs a pass over a column or two): the blank rows are narrowed column by column, the empty columns
    are those empty in the first rows, checked down the sheet."""
    n_rows, width = vals.shape
    if n_rows < 3:
        return False
    head = min(n_rows, 50)
    cand_cols = [c for c in range(width) if _empty(vals[:head, c]).all()]
    empty_cols = [c for c in cand_cols if _empty(vals[head:, c]).all()]
    used = [c for c in range(width) if c not in set(empty_cols)]
    if used and any(used[0] < c < used[-1] for c in empty_cols):
        return True
    rows = np.arange(n_rows)
    for c in used:
        rows = rows[_empty(vals[rows, c])]
        if not len(rows):
            return False
    blank = set(rows.tolist())
    filled_rows = [r for r in range(n_rows) if r not in blank] if len(blank) < n_rows else []
    return bool(filled_rows) and any(filled_rows[0] < r < filled_rows[-1] for r in blank)


def find_blocks(index: FieldIndex, grid: SheetGrid) -> list[Block]:
    """The blocks of a sheet when it keeps two or more tables of their own (titles and headers each), else
    ``[]``: side by side (an empty column between them) or one below the other with headers that name
    different fields. Blocks of the same columns one below the other are left to the sheet's reading
    (``SheetLayout.blocks``), which reads them when their titles are labels."""
    vals = grid.values
    if not vals.size or not _may_hold_blocks(vals):
        return []
    filled = _filled(vals)
    groups = _column_groups(filled)
    blocks: list[Block] = []
    for left, right in groups:
        blocks.extend(_vertical_blocks(index, grid, filled, left, right))
    if len(blocks) < 2:
        return []
    trimmed = []
    for b in blocks:  # each block's own columns: those its rows fill
        used = np.flatnonzero(filled[b.top:b.bottom + 1, b.left:b.right + 1].any(axis=0))
        trimmed.append(replace(b, left=b.left + int(used[0]), right=b.left + int(used[-1])))
    blocks = trimmed
    # rows outside every block's columns (a run of columns with no header) stay unread: reported by the reader
    side = len({(b.left, b.right) for b in blocks}) > 1
    if not side:
        heads = {tuple(_cell_text(vals[b.header_rows[-1], c]) for c in range(b.left, b.right + 1)) for b in blocks}
        if len(heads) == 1 and all(len(b.header_rows) == 1 for b in blocks[1:]):
            return []  # one table's columns repeated under each title: the sheet's own blocks
    return sorted(blocks, key=lambda b: (b.left, b.top)) if side else blocks


def block_letters(b: Block) -> list[str]:
    return [column_letter(b.left), column_letter(b.right)]


def block_tables(schema: ReviewSchema, fields: list[tuple[str, str]]) -> list[str]:
    """The contract sheet(s) a block holds: the one most of its own fields (not its identity) belong to, and
    any other with three or more of its own fields."""
    counts: dict[str, set[str]] = {}
    for t, f in fields:
        if f in _KEYISH:
            continue
        counts.setdefault(t, set()).add(f)
    if not counts:
        return []
    order = list(schema.sheets)
    best = max(counts, key=lambda t: (len(counts[t]), -order.index(t)))
    out = {best} | {t for t, fs in counts.items() if len(fs) >= 3}
    return sorted(out, key=order.index)


def value_fields(schema: ReviewSchema, table: str, parts: list[str]) -> set[str]:
    """A block's own fields of ``table``: what it gives, not the record's key or identity."""
    key = set(schema.sheets[table].key) | _KEYISH | {"cohort"}
    return {f for f in parts if f in schema.sheets[table].fields and f not in key}


# ---------------------------------------------------------------------------------------------------------------
# Inference: each block's layout, and how the blocks of one contract sheet go together
# ---------------------------------------------------------------------------------------------------------------


def area_grid(grid: SheetGrid, area) -> SheetGrid:
    """The grid a layout's block (:class:`~curation.layout.model.BlockArea`) reads: its cells alone."""
    from .model import _col_index

    return block_grid(grid, area.rows[0] - 1, area.rows[1] - 1, _col_index(area.columns[0]),
                      _col_index(area.columns[1]), area.title_row - 1 if area.title_row else None)


def infer_blocks(schema: ReviewSchema, index: FieldIndex, grid: SheetGrid) -> list:
    """The layouts of a sheet's blocks (one :class:`~curation.layout.model.SheetLayout` each, its ``block``
    set), or ``[]`` when the sheet is not one of blocks (:func:`find_blocks`)."""
    from .columns import _sheet_layout
    from .headers import _merged_fill_header
    from .labels import label_value
    from .model import BlockArea
    from .structure import _Candidate, _SheetGuess

    found = find_blocks(index, grid)
    if not found:
        return []
    laid: list = []
    for b in found:
        bg = block_grid(grid, b.top, b.bottom, b.left, b.right, b.title_row)
        rows = ([b.title_row] if b.title_row is not None else []) + list(b.header_rows)
        texts = _merged_fill_header(bg, rows)
        cands = []
        for c in range(bg.values.shape[1]):
            col_texts = [t[c] for t in texts]
            if not b.left <= c <= b.right or not col_texts[-1]:
                cands.append(_Candidate(c, "", "", (), "none", [], False))
                continue
            fields, how, quals, ci, header = match_block_column(index, col_texts, b.title)
            cands.append(_Candidate(c, header, col_texts[-1], fields, how, quals, ci))
        tables = block_tables(schema, [tf for c in cands for tf in c.fields])
        area = BlockArea(title=b.title, titleRow=b.title_row + 1 if b.title_row is not None else None,
                         rows=[b.top + 1, b.bottom + 1], columns=block_letters(b), read=bool(tables))
        if not tables:  # a block of no contract sheet: not read (a warning names it when it holds figures)
            tables = [next(iter(schema.sheets))]
        g = _SheetGuess(bg, rows, cands, sum(1 for c in cands if c.fields))
        sl = _sheet_layout(schema, index, g, tables, by_name=False)
        laid.append(sl.model_copy(update={"block": area}))
    # the blocks of one contract sheet: joined (different fields), labelled by their titles (the same fields),
    # else only the first read
    out = list(laid)
    by_table: dict[str, list[int]] = {}
    for i, sl in enumerate(laid):
        if sl.block.read:
            for t in sl.tables:
                by_table.setdefault(t, []).append(i)
    for table, idxs in by_table.items():
        if len(idxs) < 2:
            continue
        own = [value_fields(schema, table, [f for c in laid[i].columns for f in c.parts.values()]) for i in idxs]
        disjoint = all(not (own[a] & own[b]) for a in range(len(idxs)) for b in range(a + 1, len(idxs)))
        # each block gives a field the other does not (a response block, a PFS block; a column such as the
        # grade in both is cross-checked when they join): different fields of the same records
        joinable = all(not (own[a] <= own[b] or own[b] <= own[a]) for a in range(len(idxs))
                       for b in range(a + 1, len(idxs)))
        labels = [label_value(schema, [table], laid[i].block.title, laid[i].columns)[0] for i in idxs]
        fields = {f for lv in labels for f in lv}
        distinct = len({tuple(sorted(lv.items())) for lv in labels}) == len(idxs)
        labelled = all(labels) and len(fields) == 1 and distinct
        if joinable and (disjoint or not labelled):
            for i in idxs:
                out[i] = out[i].model_copy(update={"block": out[i].block.model_copy(update={"join": True})})
            continue
        if labelled:  # the same fields under titles naming one field's values (UPDRS IV, UDysRS): apart
            for i, lv in zip(idxs, labels):
                out[i] = out[i].model_copy(update={"block": out[i].block.model_copy(update={"labels": lv})})
            continue
        for i in idxs[1:]:
            out[i] = out[i].model_copy(update={"block": out[i].block.model_copy(update={"read": False})})
    return out


# ---------------------------------------------------------------------------------------------------------------
# Records: blocks of different fields joined by their key
# ---------------------------------------------------------------------------------------------------------------


def _key_of(schema: ReviewSchema, table: str, raw, i: int, as_written: bool = False) -> tuple | None:
    from ..schema import fold

    out = []
    for k in schema.sheets[table].key:
        v = raw.values.get(k)
        text = _cell_text(v[i]) if v is not None else ""
        if not text and k == "study_id":
            a, y = raw.values.get("first_author"), raw.values.get("year")
            text = f"{_cell_text(a[i])} {_cell_text(y[i])}".strip() if a is not None and y is not None else ""
        if not text and k == "cohort":
            text = str(schema.analysis.overall_cohort)
        if not text:
            return None
        out.append(text if as_written else fold(text))
    return tuple(out)


def join_blocks(a, b, schema: ReviewSchema, table: str, emit, *, by_sheet: bool = False,
                soft: frozenset = frozenset()) -> object:
    """Two blocks' records of one contract sheet joined by the record's key (``a``'s order, then ``b``'s records
    of keys ``a`` lacks). Each value keeps its own cell (``cell_rows``, ``cell_letters``). One field of one
    record given two different values: an error (``block-conflict``) naming both cells; ``a``'s is kept.

    With ``by_sheet`` the two are worksheets (one sheet per outcome, :mod:`.outcomesheets`): each value also
    keeps its worksheet (``cell_titles``) and each record its own (``row_titles``); a field in ``soft`` (a
    study-level column each sheet repeats: grade, primary site) that differs is a ``study-field-conflict``
    warning, the first kept."""
    from ..findings import quote_sheet
    from ..reading import RawSheet
    from ..schema import fold

    n_a, n_b = len(a.rows), len(b.rows)
    keys_a = [_key_of(schema, table, a, i) for i in range(n_a)]
    count: dict = {}
    for k in keys_a:
        count[k] = count.get(k, 0) + 1
    at = {k: i for i, k in enumerate(keys_a) if k is not None and count[k] == 1}
    fields = list(dict.fromkeys([*a.values, *b.values]))

    def col(raw, f, n):
        return list(raw.values[f]) if f in raw.values else [None] * n

    def rows_of(raw, f, n):
        if f in raw.cell_rows:
            return [int(x) if int(x) > 0 else raw.rows[i] for i, x in enumerate(raw.cell_rows[f])]
        return list(raw.rows) if f in raw.values else [0] * n

    def letters_of(raw, f, n):
        if f in raw.cell_letters:
            return list(raw.cell_letters[f])
        return [raw.columns.get(f)] * n if f in raw.values else [None] * n

    def titles_of(raw, f, n):
        if f in raw.cell_titles:
            return [t or own for t, own in zip(raw.cell_titles[f], own_titles(raw, n))]
        return own_titles(raw, n)

    def own_titles(raw, n):
        return [t or raw.title for t in raw.row_titles] if raw.row_titles is not None else [raw.title] * n

    values = {f: col(a, f, n_a) for f in fields}
    cell_titles = {f: titles_of(a, f, n_a) for f in fields}
    row_titles = own_titles(a, n_a)
    btitles = {f: titles_of(b, f, n_b) for f in fields}
    b_own = own_titles(b, n_b)
    cell_rows = {f: rows_of(a, f, n_a) for f in fields}
    cell_letters = {f: letters_of(a, f, n_a) for f in fields}
    units = {f: list(a.units[f]) if f in a.units else [None] * n_a for f in set(a.units) | set(b.units)}
    percent = {f: set(a.percent_cells.get(f, ())) for f in set(a.percent_cells) | set(b.percent_cells)}
    extra = {h: list(v) for h, v in a.extra_values.items()}
    rows = list(a.rows)
    bvals = {f: col(b, f, n_b) for f in fields}
    brows = {f: rows_of(b, f, n_b) for f in fields}
    blets = {f: letters_of(b, f, n_b) for f in fields}
    key_fields = set(schema.sheets[table].key) | _KEYISH | {"cohort"}
    q = quote_sheet(b.title)
    keys_b = [_key_of(schema, table, b, j) for j in range(n_b)]
    count_b: dict = {}
    for k in keys_b:
        count_b[k] = count_b.get(k, 0) + 1
    for j in range(n_b):
        k = keys_b[j]
        # a key twice in a block is not joined (its rows stay records of their own, for duplicate-key to report)
        i = at.get(k) if k is not None and count_b[k] == 1 else None
        if i is None:  # a record of this block alone: kept as it is
            pos = len(rows)
            rows.append(b.rows[j])
            row_titles.append(b_own[j])
            for f in fields:
                cell_titles[f].append(btitles[f][j])
                values[f].append(bvals[f][j])
                cell_rows[f].append(brows[f][j])
                cell_letters[f].append(blets[f][j])
            for f in units:
                units[f].append(b.units[f][j] if f in b.units else None)
            for f in percent:
                if j in b.percent_cells.get(f, ()):
                    percent[f].add(pos)
            for h in set(extra) | set(b.extra_values):
                extra.setdefault(h, [None] * pos).append(b.extra_values[h][j] if h in b.extra_values else None)
            continue
        for f in b.values:
            vb = bvals[f][j]
            if not _cell_text(vb):
                continue
            va = values[f][i]
            if not _cell_text(va):
                values[f][i], cell_rows[f][i], cell_letters[f][i] = vb, brows[f][j], blets[f][j]
                cell_titles[f][i] = btitles[f][j]
                if f in units:
                    units[f][i] = b.units[f][j] if f in b.units else None
                if f in percent and j in b.percent_cells.get(f, ()):
                    percent[f].add(i)
                continue
            if f in key_fields or fold(_cell_text(va)) == fold(_cell_text(vb)):
                continue
            here = f"{quote_sheet(btitles[f][j]) if by_sheet else q}!{blets[f][j]}{brows[f][j]}"
            there = f"{quote_sheet(cell_titles[f][i]) if by_sheet else q}!{cell_letters[f][i]}{cell_rows[f][i]}"
            if f in soft:
                emit(btitles[f][j] if by_sheet else b.title, brows[f][j], blets[f][j], f, "study-field-conflict",
                     "warning", f"{f} of {' / '.join(_key_of(schema, table, b, j, as_written=True) or k)} is "
                     f"{_cell_text(va)!r} in {there} and {_cell_text(vb)!r} in {here}: the sheets disagree on it; "
                     f"{there} is read, {here} is not (correct the one that is wrong)", vb, table)
                continue
            emit(btitles[f][j] if by_sheet else b.title, brows[f][j], blets[f][j], f, "block-conflict", "error",
                 f"{f} of {' / '.join(_key_of(schema, table, b, j, as_written=True) or k)} is {_cell_text(va)!r} in {there} and {_cell_text(vb)!r} "
                 f"in {here}: two {'sheets' if by_sheet else 'blocks'} give this record's {f} different values; correct the one that is wrong "
                 f"(the first, {there}, is kept until then)", vb, table)
    n = len(rows)
    for h in extra:
        extra[h] += [None] * (n - len(extra[h]))
    return RawSheet(
        file=a.file, sheet=a.sheet, title=a.title, header_row=a.header_row,
        columns={**b.columns, **a.columns}, extra_columns={**b.extra_columns, **a.extra_columns},
        rows=rows, values={f: np.array(v, dtype=object) for f, v in values.items()}, extra_values=extra,
        percent_cells={f: frozenset(p) for f, p in percent.items()},
        units={f: np.array(u, dtype=object) for f, u in units.items()},
        cell_rows={f: np.asarray(r, dtype="int64") for f, r in cell_rows.items()},
        cell_letters={f: np.asarray(ls, dtype=object) for f, ls in cell_letters.items()},
        cell_titles={f: np.asarray(ts, dtype=object) for f, ts in cell_titles.items()} if by_sheet else {},
        row_titles=np.asarray(row_titles, dtype=object) if by_sheet else None)


def lettered(raw):
    """A block's records with each field's cell named (``cell_letters``), to be read with another block's."""
    if all(f in raw.cell_letters for f in raw.values):
        return raw
    n = len(raw.rows)
    letters = dict(raw.cell_letters)
    for f in raw.values:
        if f not in letters:
            letters[f] = np.asarray([raw.columns.get(f)] * n, dtype=object)
    return replace(raw, cell_letters=letters)

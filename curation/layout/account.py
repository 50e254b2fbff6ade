"""The cell model's account: every non-empty cell of every sheet in exactly one class.

layouts.md v2 ("cells, not rows"): each non-empty cell is a **value** (read into one field of one
record), a **header** (or label: a header row, a title above it), **non-data** (a Total/Mean row,
a note, a repeated header, a separator) or **not read**. The classes are kept as one small integer
array per sheet (``numpy.int8``, the shape of the sheet's grid), never one Python object per cell,
the columnar cell table of R's tidyxl (``xlsx_cells``) reduced to the one column the account needs
(its ``role``). The account of a sheet is a count of each role.

A value the review may need that was not read (numbers under an outcome-like header, rows above
the header that was chosen, a sheet whose headers match the schema but that was not taken) is
reported as a warning (``unread-data``), never only as info.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..findings import quote_sheet
from ..reading import SheetGrid, column_letter
from .cells import _cell_text, _filled, _types, member_mask
from .headers import FieldIndex, _merged_fill_header, fold_header
from .model import SheetLayout, _col_index

EMPTY, VALUE, HEADER, NON_DATA, NOT_READ = 0, 1, 2, 3, 4

#: a header that names an outcome, an effect or a count (the values under it are data a review needs)
RX_OUTCOME_LIKE = re.compile(
    r"(?:^|[^a-z])(?:hr|or|rr|irr|smd|md|orr|dcr|cbr|pfs|os|efs|dfs|rfs|ttp|ci|lcl|ucl|cill|ciul|events?|mean|sd|se|"
    r"median|estimate|effect|lower|upper|low|high|n|total|rate|ratio|%|percent|responders?|deaths?|survival|"
    r"response|mortality|p|p-value|grade|toxicity|adverse|cases?|controls?|count|number|no\.?)(?:$|[^a-z])", re.I)
#: a cell that holds a figure: a number, or text that starts with one (``62 pts``, ``0.80 (0.61-1.05)``, ``n=62``)
RX_FIGURE = re.compile(r"^\s*(?:[<>≤≥=~]\s*)?(?:[nN]\s*=\s*)?[+-]?\d|^\s*(?:hr|or|rr)\s*[:=]?\s*\d", re.I)


@dataclass(frozen=True)
class CellAccount:
    """How the non-empty cells of one sheet were classified (layouts.md v2, "every cell accounted for").

    Attributes
    ----------
    sheet : str
        The sheet's name in the workbook.
    read : int
        Value cells read into a field of a record.
    headers : int
        Header cells, titles and labels (cells that name fields or give records a value).
    non_data : int
        Cells of rows that are not data (totals, notes, repeated headers).
    not_read : int
        Every other non-empty cell (columns that match no field, sheets not taken).
    """

    sheet: str
    read: int
    headers: int
    non_data: int
    not_read: int

    @property
    def total(self) -> int:
        return self.read + self.headers + self.non_data + self.not_read

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("sheet")
        d["total"] = self.total
        return d

    def line(self) -> str:
        """``read 120 / headers and labels 14 / non-data 3 / not read 0``."""
        return (f"read {self.read} / headers and labels {self.headers} / non-data {self.non_data} / "
                f"not read {self.not_read}")


def account_of(title: str, roles: np.ndarray) -> CellAccount:
    """Count each role of a sheet's role array."""
    counts = np.bincount(roles.ravel(), minlength=5) if roles.size else np.zeros(5, int)
    return CellAccount(title, int(counts[VALUE]), int(counts[HEADER]), int(counts[NON_DATA]), int(counts[NOT_READ]))


def figures(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Which cells under ``mask`` hold a figure (a number, or text that starts with one); one regex call per
    distinct text."""
    out = np.zeros(values.shape, bool)
    if not mask.any():
        return out
    sub = values[mask]
    ty = _types(sub)
    num = ((ty == float) | (ty == int)) & np.fromiter((not isinstance(v, bool) for v in sub), bool, len(sub))
    is_str = ty == str
    if is_str.any():
        texts = sub[is_str]
        hits = {t for t in set(texts) if RX_FIGURE.match(t)}
        if hits:
            num[is_str] = member_mask(texts, hits)
    out[mask] = num
    return out


def sheet_roles(grid: SheetGrid, sl: SheetLayout, data_rows: list[int], filled: np.ndarray | None = None) -> np.ndarray:
    """The role of every cell of a laid-out sheet (an ``int8`` array the grid's shape).

    Rows above the first header row are titles (headers) where they hold text and not read where they hold
    figures; the header rows are headers; comment rows are non-data; in data rows, a mapped column's cell
    is a value and any other cell is not read; other rows below the header are not read.
    """
    vals = grid.values
    n_rows, width = vals.shape
    if filled is None:
        filled = grid.filled
    roles = np.where(filled, NOT_READ, EMPTY).astype(np.int8)
    first_header = sl.header_rows[0] - 1
    last_header = sl.header_rows[-1] - 1
    top = roles[:max(first_header, 0)]
    if top.size:
        figs = figures(vals[:first_header], filled[:first_header])
        top[filled[:first_header] & ~figs] = HEADER
    roles[max(first_header, 0):last_header + 1][filled[max(first_header, 0):last_header + 1]] = HEADER
    for r in sl.comment_rows:
        if 0 <= r - 1 < n_rows:
            roles[r - 1][filled[r - 1]] = NON_DATA
    for r in [*sl.labels, *(b.title_row for b in sl.blocks), *(b.header_row for b in sl.blocks)]:
        if 0 <= r - 1 < n_rows:
            roles[r - 1][filled[r - 1]] = HEADER  # a heading, a block's title or header: names what is below
    if data_rows:
        rows = np.asarray(data_rows, dtype=int)
        cols = sorted({_col_index(c.column) for c in sl.columns if _col_index(c.column) < width})
        if cols:
            sub = roles[np.ix_(rows, cols)]
            sub[filled[np.ix_(rows, cols)]] = VALUE
            roles[np.ix_(rows, cols)] = sub
    return roles


def skipped_roles(grid: SheetGrid, filled: np.ndarray | None = None) -> np.ndarray:
    """A sheet not taken: every non-empty cell not read."""
    if filled is None:
        filled = grid.filled
    return np.where(filled, NOT_READ, EMPTY).astype(np.int8)


def _outcome_like(index: FieldIndex, header: str) -> bool:
    h = fold_header(header)
    if not h:
        return False
    if RX_OUTCOME_LIKE.search(h):
        return True
    return bool(index.lookup(h)) or index.closest(h) is not None


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Sorted 0-based rows -> contiguous (first, last) runs."""
    out: list[tuple[int, int]] = []
    for r in rows.tolist():
        if out and r == out[-1][1] + 1:
            out[-1] = (out[-1][0], r)
        else:
            out.append((r, r))
    return out


def unread_findings(grid: SheetGrid, sl: SheetLayout, roles: np.ndarray, index: FieldIndex, emit: Any,
                    primary: str) -> None:
    """Warnings for cells that look like data the review needs and were not read (rule ``unread-data``)."""
    vals = grid.values
    title = sl.sheet
    q = quote_sheet(title)
    not_read = roles == NOT_READ
    if not not_read.any():
        return
    first_header = sl.header_rows[0] - 1
    last_header = sl.header_rows[-1] - 1
    if sl.shape == "wide" and sl.record_per == "row":
        texts = _merged_fill_header(grid, list(range(max(first_header, 0), last_header + 1)))
        _headerless_columns(grid, sl, roles, texts, {_col_index(c.column) for c in sl.columns}, last_header, emit,
                            primary)
    figs = figures(vals, not_read)
    if not figs.any():
        return
    # figures above the header that was chosen: another table (a block) above it
    above = figs[:max(first_header, 0)]
    if above.sum() >= 2:
        rr, cc = np.nonzero(above)
        emit(title, int(rr.min()) + 1, None, None, "unread-data", "warning",
             f"{q}!{column_letter(int(cc.min()))}{int(rr.min()) + 1}:{column_letter(int(cc.max()))}{int(rr.max()) + 1} "
             f"above the header (row {sl.header_rows[0]}) holds {int(above.sum())} figure(s) that are not read: "
             "another table above the one read? Each block is its own table: give it in the layout file "
             "(`curate map`, then its `headerRows` or `blocks:`)", None, primary)
    # figures below the header: in columns that are not read, under an outcome-like header
    below = figs[last_header + 1:].copy()
    if not below.size:
        return
    in_block = np.zeros(below.shape[0], bool)
    for b in sl.blocks:
        if not b.read:  # reported once for the whole block
            in_block[max(b.rows[0] - 1 - (last_header + 1), 0):max(b.rows[1] - (last_header + 1), 0)] = True
    below[in_block] = False
    texts = _merged_fill_header(grid, list(range(max(first_header, 0), last_header + 1)))
    mapped = {_col_index(c.column) for c in sl.columns}
    if sl.shape == "long":  # its role and outcome columns: reported by the long binding itself
        mapped |= {_col_index(l) for l in sl.roles} | ({_col_index(sl.outcome_column)} if sl.outcome_column else set())
    per_col = below.sum(axis=0)
    data_like_rows = np.zeros(below.shape[0], bool)
    for c in np.flatnonzero(per_col):
        header = " ".join(dict.fromkeys(t[c] for t in texts if c < len(t) and t[c]))
        if c in mapped:
            data_like_rows |= below[:, c]
            continue
        ign = sl.ignored.get(column_letter(int(c)))
        if ign is not None and ign.field:
            continue  # a second column for a field that is read: reported as such (duplicate-column)
        if header and _outcome_like(index, header) and per_col[c] >= 1:
            rows = np.flatnonzero(below[:, c]) + last_header + 1
            letter = column_letter(int(c))
            emit(title, sl.header_rows[-1], letter, None, "unread-data", "warning",
                 f"{q}!{letter}{sl.header_rows[-1]} {header!r} holds {int(per_col[c])} figure(s) "
                 f"({q}!{letter}{int(rows[0]) + 1}:{letter}{int(rows[-1]) + 1}) that are not read: its header matches "
                 "no field of the schema; map it in the layout file (`curate map`) or add its header to a field's "
                 "synonyms if the review needs it", header, primary)
        elif not header:
            data_like_rows |= below[:, c]
    # rows below the header that are not read at all (no value in a mapped column), with figures in them
    whole = (roles[last_header + 1:] == NOT_READ) | (roles[last_header + 1:] == EMPTY)
    rows_unread = np.flatnonzero(whole.all(axis=1) & data_like_rows & ~in_block)
    for a, b in _runs(rows_unread + last_header + 1):
        n = int(figs[a:b + 1].sum())
        emit(title, a + 1, None, None, "unread-data", "warning",
             f"{q}!{a + 1}:{b + 1} hold{'s' if a == b else ''} {n} figure(s) below the header that are not read "
             "(no value in a column the layout reads: another block, or a table beside this one?); "
             "give it in the layout file (`curate map`) if the review needs it", None, primary)


def _headerless_columns(grid: SheetGrid, sl: SheetLayout, roles: np.ndarray, texts: list, mapped: set,
                        last_header: int, emit: Any, primary: str) -> None:
    """A column of the table with no header cell whose values fill most of its rows (a header a team left
    empty: on sibling sheets it often names a field): not read, so a warning naming its cells."""
    below = roles[last_header + 1:] == NOT_READ
    if not below.size:
        return
    rows_with_data = np.flatnonzero((roles[last_header + 1:] == VALUE).any(axis=1))
    if len(rows_with_data) < 2:
        return
    q = quote_sheet(sl.sheet)
    for c in np.flatnonzero(below[rows_with_data].sum(axis=0) >= max(2, 0.5 * len(rows_with_data))):
        if c in mapped or any(c < len(t) and t[c] for t in texts):
            continue
        rows = np.flatnonzero(below[:, c]) + last_header + 1
        letter = column_letter(int(c))
        emit(sl.sheet, int(rows[0]) + 1, letter, None, "unread-data", "warning",
             f"{q}!{letter}{int(rows[0]) + 1}:{letter}{int(rows[-1]) + 1} holds {len(rows)} value(s) under no header, "
             "so they are not read: give the column its header (or map it in the layout file, `curate map`) if "
             "the review needs it", None, primary)


def skipped_sheet_findings(grid: SheetGrid, roles: np.ndarray, index: FieldIndex, emit: Any,
                           read_headers: dict[str, frozenset]) -> bool:
    """A sheet not taken that looks like data the review needs: a warning (``unread-data``). Returns whether
    one was given."""
    vals = grid.values
    not_read = roles == NOT_READ
    figs = figures(vals, not_read)
    n_figs = int(figs.sum())
    if n_figs < 2:
        return False
    # the header-like row: the first row with two or more text cells
    texts_mask = not_read & ~figs
    per_row = texts_mask.sum(axis=1)
    head_rows = np.flatnonzero(per_row >= 2)
    headers: list[str] = []
    under_outcome = 0
    if len(head_rows):
        r = int(head_rows[0])
        headers = [_cell_text(v) for v in vals[r] if _cell_text(v)]
        below = figs[r + 1:]
        for c in np.flatnonzero(below.sum(axis=0) >= 2):
            h = _cell_text(vals[r, c])
            if h and len(h) <= 60 and (RX_OUTCOME_LIKE.search(fold_header(h)) or index.lookup(h)):
                under_outcome += int(below[:, c].sum())
    keys = frozenset(fold_header(h) for h in headers)
    q = quote_sheet(grid.title)
    same = [t for t, ks in read_headers.items() if keys and len(keys & ks) >= max(2, 0.8 * len(ks))]
    if same:
        emit(grid.title, None, None, None, "unread-data", "warning",
             f"sheet {q} has the headers of sheet {quote_sheet(same[0])}, which is read, but is not read itself "
             f"({n_figs} figure(s)): one sheet per subgroup or outcome? Give it in the layout file (`curate map`, "
             "then a `sheets:` entry for it) so that it is read as its own group")
        return True
    if under_outcome >= 3:
        emit(grid.title, None, None, None, "unread-data", "warning",
             f"sheet {q} holds {under_outcome} figure(s) under headers such as "
             f"{', '.join(repr(h) for h in headers[:4])} but is not read: its headers match too few fields of the "
             "schema; map it in the layout file (`curate map`) if the review needs it")
        return True
    return False

"""Competing explanations of one sheet, scored against each other (layouts.md v2: "when two structures
explain a sheet about equally well, refuse with exit 2, naming both and the line of the layout file that
chooses").

An explanation of a sheet is a layout of it (:class:`~curation.layout.model.SheetLayout`): long or wide,
say. Both read most columns alike; they differ on some (a long sheet's outcome and role columns). On the
non-empty cells of those columns, each explanation scores the cells it reads into a field the cell's
content fits (a figure under a numeric field, a term under a vocabulary one: consistency of types under
headers) or as a label naming the fields of its row (an outcome cell), less the cells it reads into a
field their content does not fit (``months`` as a median: a misread is worse than a cell left unread). A wide reading gets no support from
a row that repeats an earlier row's other cells (one study's second outcome row would be a second record of
the same study). The better is taken when its share is more than :data:`MARGIN` above the other's; within
it (and each reading at least :data:`MIN_DISPUTED` cells), the sheet is ambiguous and the reader refuses,
naming both and the layout-file line that chooses (``shape: long`` / ``shape: wide``). This is xypath's
``LookupConfusionError`` at the level of a sheet's structure: a tie is an error, never a silent pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UnusableInputError
from ..reading import SheetGrid, column_letter
from ..schema import NUMERIC_TYPES, ReviewSchema
from .cells import _filled, _looks_numeric, _text
from .model import SheetLayout, _col_index

#: the lesser explanation within this share of the better one is "about equally well"
MARGIN = 0.10
#: and binds at least this many disputed cells (one stray cell is no rival structure)
MIN_DISPUTED = 3


class AmbiguousLayoutError(UnusableInputError):
    """Two structures explain a sheet about equally well (exit 2): the message names both and the layout-file
    line that chooses; it is about this workbook's shape, not about which schema fits it."""


@dataclass(frozen=True)
class Explanation:
    """One explanation of a sheet, in the reviewer's words, and the layout-file line that chooses it.

    Attributes
    ----------
    name : str
        What it says the sheet is ("long: column B names each row's outcome ...").
    line : str
        The layout-file line that chooses it (``shape: long``).
    cells : dict
        (0-based row, 0-based column) -> the field the cell is read into.
    """

    name: str
    line: str
    cells: dict


@dataclass(frozen=True)
class Verdict:
    """The outcome of scoring two explanations of one sheet on the cells they dispute.

    Attributes
    ----------
    best, other : Explanation
        The better-scored explanation (the first given on equal scores) and its rival.
    best_read, other_read : int
        Cells of the disputed columns each reads into a field its content fits (or as a label naming one),
        less those it reads into a field the content does not fit.
    cells : int
        The non-empty cells of the disputed columns (in data rows).
    tie : bool
        Whether the two are about equally good (then neither may be taken silently).
    """

    best: Explanation
    other: Explanation
    best_read: int
    other_read: int
    cells: int
    tie: bool

    @property
    def best_share(self) -> float:
        return self.best_read / self.cells if self.cells else 0.0

    @property
    def other_share(self) -> float:
        return self.other_read / self.cells if self.cells else 0.0

    def words(self) -> str:
        """The two scores in a reviewer's words."""
        return f"scored on the {self.cells} cells they read differently: {self.best_read} and {self.other_read}"


def _fits(v: Any, fs: Any, kind: str, schema: ReviewSchema | None = None) -> bool:
    """Whether a cell's content fits the field it is read into (a figure for a numeric field, a term of its
    vocabulary for a vocabulary field ...)."""
    if fs is None:
        return False
    if kind != "value":  # a composite (median (CI), n (%), Author (year)): a figure in it
        t = _text(v)
        return isinstance(v, (int, float)) and not isinstance(v, bool) or bool(t and any(ch.isdigit() for ch in t))
    if fs.type in NUMERIC_TYPES:
        if _looks_numeric(v):
            return True
        t = _text(v) or ""
        from .cells import RX_COUNT_TEXT

        return bool(RX_COUNT_TEXT.match(t))
    if fs.type == "vocabulary":
        if _looks_numeric(v):
            return False
        vocab = schema.vocabularies.get(fs.vocabulary) if schema is not None and fs.vocabulary else None
        return vocab is None or vocab.canonical(_text(v) or "") is not None
    return True


def _spec(schema: ReviewSchema, tables: list[str], field: str):
    for t in tables:
        fs = schema.sheets[t].fields.get(field)
        if fs is not None:
            return fs
    for spec in schema.sheets.values():
        if field in spec.fields:
            return spec.fields[field]
    return None


def data_rows(grid: SheetGrid, sl: SheetLayout) -> np.ndarray:
    """0-based rows a row-per-record layout reads as data: below its header, not a non-data or heading row,
    above its first block."""
    n_rows = grid.values.shape[0]
    first = sl.header_rows[-1] if sl.header_rows else 0
    end = min([b.title_row - 1 for b in sl.blocks] + [n_rows])
    skip = {r - 1 for r in sl.comment_rows} | {r - 1 for r in sl.labels}
    return np.array([r for r in range(first, end) if r not in skip], dtype=int)


def bound_cells(schema: ReviewSchema, grid: SheetGrid, sl: SheetLayout, *,
                columns: frozenset | None = None) -> dict[tuple[int, int], tuple[str, bool]]:
    """The cells a row-per-record layout binds: (row, column) -> (field, whether the content fits it).

    ``columns`` (0-based) restricts the count to those columns (the ones two explanations dispute)."""
    vals = grid.values
    rows = data_rows(grid, sl)
    out: dict[tuple[int, int], tuple[str, bool]] = {}
    if not len(rows):
        return out
    width = vals.shape[1]
    filled = _filled(vals[rows])
    long_cols = ({_col_index(l) for l in sl.roles} | {_col_index(sl.outcome_column)}) \
        if sl.shape == "long" and sl.outcome_column else set()
    for col in sl.columns:
        c = _col_index(col.column)
        if c >= width or c in long_cols or (columns is not None and c not in columns):
            continue
        f = col.parts.get("value") or next(iter(col.parts.values()))
        fs = _spec(schema, sl.tables, f)
        for k in np.flatnonzero(filled[:, c]):
            r = int(rows[k])
            out[(r, c)] = (f, _fits(vals[r, c], fs, col.kind, schema))
    if long_cols:
        oc = _col_index(sl.outcome_column)
        for k, r in enumerate(rows):
            spec = sl.outcomes.get(_text(vals[r, oc]) or "") if oc < width else None
            if not spec:
                continue
            for letter, role in sl.roles.items():
                c = _col_index(letter)
                f = spec.get(role)
                if c >= width or f is None or not filled[k, c] or (columns is not None and c not in columns):
                    continue
                out[(int(r), c)] = (f, _fits(vals[r, c], _spec(schema, sl.tables, f), "value", schema))
    return out


def judge(first: Explanation, second: Explanation, cells: int) -> Verdict:
    """Score two explanations on the ``cells`` non-empty cells of the columns they read differently: each by
    the cells it reads into a field the content fits (or as a label naming one), less those it reads into a
    field the content does not fit (a misread is worse than a cell left unread). The better is taken when
    its score is more than :data:`MARGIN` of the cells above the other's; within it (and each scoring at
    least :data:`MIN_DISPUTED`), a tie."""
    r1 = sum(1 if ok else -1 for _f, ok in first.cells.values())
    r2 = sum(1 if ok else -1 for _f, ok in second.cells.values())
    best, other, hi, lo = (first, second, r1, r2) if r1 >= r2 else (second, first, r2, r1)
    tie = cells > 0 and lo >= MIN_DISPUTED and (hi - lo) <= MARGIN * cells
    return Verdict(best, other, hi, lo, cells, tie)


def long_or_wide(schema: ReviewSchema, grid: SheetGrid, long_sl: SheetLayout, wide_sl: SheetLayout) -> Verdict:
    """A sheet read as long (an outcome column and role columns) against the same sheet read as wide (each
    column its own field), scored on the role and outcome columns (the rest both read alike)."""
    cols = frozenset({_col_index(l) for l in long_sl.roles} | {_col_index(long_sl.outcome_column)})
    rows = data_rows(grid, long_sl)
    vals = grid.values
    width = vals.shape[1]
    in_cols = sorted(c for c in cols if c < width)
    filled = _filled(vals[rows][:, in_cols]) if len(rows) and in_cols else np.zeros((0, 0), bool)
    b_long = bound_cells(schema, grid, long_sl, columns=cols)
    b_wide = bound_cells(schema, grid, wide_sl, columns=cols)
    # a wide reading makes each row a record: a row repeating an earlier row's other columns (the same study
    # and subgroup, once per outcome) is a second record of one study, so its cells are no support for it
    keys = [c for c in (_col_index(col.column) for col in wide_sl.columns) if c not in cols and c < width]
    if keys and len(rows):
        seen: set = set()
        for r in rows:
            key = tuple(_text(v) or "" for v in vals[r, keys])
            if not any(key):
                continue
            if key in seen:
                for c in in_cols:
                    if (int(r), c) in b_wide:
                        b_wide[(int(r), c)] = (b_wide[(int(r), c)][0], False)
            seen.add(key)
    oc = _col_index(long_sl.outcome_column)
    if oc < width:  # the outcome cells a long reading takes as labels naming the fields of their row
        for r in rows:
            text = _text(vals[r, oc])
            if text and long_sl.outcomes.get(text):
                b_long.setdefault((int(r), oc), ("(outcome)", True))
    long_e = Explanation(_long_words(long_sl, b_long), "shape: long", b_long)
    wide_e = Explanation(_wide_words(grid, wide_sl, b_wide, cols), "shape: wide", b_wide)
    return judge(long_e, wide_e, int(filled.sum()))


def form_or_columns(schema: ReviewSchema, grid: SheetGrid, found: tuple, tables: list[str]) -> Verdict | None:
    """A form-style sheet with values in several columns beside its labels, read as studies (or cohorts) side
    by side, one record per column (transposed wide), against the same sheet read as one study's form whose
    values are the first column and the other columns not read (units, pages, notes beside the values);
    scored on those columns' cells (None when only one column holds values)."""
    label_col, value_col, hits, value_cols = found[:4]
    if len(value_cols) < 2:
        return None
    vals = grid.values
    n_rows, width = vals.shape
    every: dict[tuple[int, int], tuple[str, bool]] = {}
    total = 0
    for r, _text0, fields in hits:
        fs_list = [(t, f) for t, f in fields if t in tables] or list(fields)
        f = fs_list[0][1]
        fs = _spec(schema, tables, f)
        kind = "median_ci" if fs is not None and fs.combined else "value"
        for c in value_cols:
            if r >= n_rows or c >= width:
                continue
            v = vals[r, c]
            if not (_text(v) or (isinstance(v, (int, float)) and not isinstance(v, bool))):
                continue
            total += 1
            every[(int(r), int(c))] = (f, _fits(v, fs, kind, schema))
    one = {k: v for k, v in every.items() if k[1] == value_col}
    lab, first = column_letter(label_col), column_letter(value_col)
    others = [column_letter(c) for c in value_cols if c != value_col]
    columns_e = Explanation(
        f"studies or cohorts side by side (labels in column {lab}, one record per column: "
        f"{', '.join(column_letter(c) for c in value_cols)}; {_tally(every)})",
        "recordPer: column", every)
    sheet_e = Explanation(
        f"one study's form (labels in column {lab}, its values in {first}; {', '.join(others)} not read; "
        f"{_tally(one)})", "recordPer: sheet", one)
    return judge(columns_e, sheet_e, total)


def _long_words(sl: SheetLayout, bound: dict) -> str:
    named = sorted({t for t, spec in sl.outcomes.items() if spec})
    roles = ", ".join(f"{l} its {r}" for l, r in sl.roles.items())
    fields = sorted({f for f, ok in bound.values() if ok and f != "(outcome)"})
    more = " ..." if len(named) > 4 else ""
    more_f = " ..." if len(fields) > 6 else ""
    return (f"long (column {sl.outcome_column} names each row's outcome, {', '.join(named[:4])}{more}; {roles}; "
            f"{_tally(bound)}, into {', '.join(fields[:6])}{more_f})")


def _wide_words(grid: SheetGrid, sl: SheetLayout, bound: dict, cols: frozenset) -> str:
    heads = [f"{c.column} {c.header!r} = {c.parts.get('value') or next(iter(c.parts.values()))}"
             for c in sl.columns if _col_index(c.column) in cols]
    mapped = {h.column for h in sl.columns}
    unread = [column_letter(c) for c in sorted(cols) if column_letter(c) not in mapped]
    more = " ..." if len(heads) > 5 else ""
    not_read = f"; {', '.join(unread)} not read" if unread else ""
    return (f"wide (one record per row: {'; '.join(heads[:5]) or 'none of those columns a field'}{more}{not_read}; "
            f"{_tally(bound)})")


def _tally(cells: dict) -> str:
    """How many values an explanation reads, and how many of them into a field their content does not fit."""
    values = [ok for f, ok in cells.values() if f != "(outcome)"]
    bad = values.count(False)
    return f"{values.count(True)} value(s) read" + (f", {bad} more into fields they do not fit" if bad else "")


def as_chosen(sl: SheetLayout) -> SheetLayout:
    """A sheet's entry as its ``shape:`` (or ``recordPer:``) line chooses, where the layout file keeps both
    recipes of a sheet two structures explain about equally well: a long sheet without the wide reading of
    its role and outcome columns; a wide sheet without the long recipe; one study's form
    (``recordPer: sheet``) without the other value columns a transposed reading takes."""
    if sl.shape == "long" and sl.outcome_column:
        contested = set(sl.roles) | {sl.outcome_column}
        if any(c.column in contested for c in sl.columns):
            return sl.model_copy(update={"columns": [c for c in sl.columns if c.column not in contested]})
    elif sl.shape == "wide" and (sl.roles or sl.outcome_column or sl.outcomes):
        return sl.model_copy(update={"roles": {}, "outcome_column": None, "outcomes": {}})
    if sl.record_per == "sheet" and sl.value_columns:  # one study's form: its first value column only
        return sl.model_copy(update={"value_columns": []})
    return sl

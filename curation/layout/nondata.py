"""Rows below a header that are not data: totals, notes, repeated headers, separators."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..reading import SheetGrid
from ..schema import NUMERIC_TYPES, ReviewSchema
from .cells import _NUM, _cell_text, _column_mask, _filled, _text, _types
from .headers import FieldIndex, _merged_fill_header, fold_header, split_header
from .model import ColumnLayout, _col_index

if TYPE_CHECKING:
    from .structure import _SheetGuess


# ---------------------------------------------------------------------------------------------

_TOTAL_LABEL = re.compile(r"^\s*(?:totals?|sum|sums|mean|means|average|median|pooled|pooled estimate|weighted"
                          r"(?: mean| average)?|summary|all studies|overall|overall\s*[(\[].*[)\]]|total\s*[(\[:].*)"
                          r"\s*[:.]?\s*$", re.I)
_NOTE_START = re.compile(r"^\s*(?:notes?\b|source|sources|abbreviations?|data from|footnote|legend|\*|†|‡|§|¶|"
                         r"[a-z]\)|[a-z] =|nr\s*=|na\s*=|ci\s*=|key\s*:)", re.I)


def _count_columns(schema: ReviewSchema, tables: list[str], cols: list[ColumnLayout]) -> list[int]:
    out = []
    for col in cols:
        f = col.parts.get("value")
        if col.kind != "value" or f is None:
            continue
        for t in tables:
            fs = schema.sheets[t].fields.get(f)
            if fs is not None and fs.type == "integer" and f not in ("year", "pmid"):
                out.append(_col_index(col.column))
                break
    return out


def _comment_rows(schema: ReviewSchema, grid: SheetGrid, g: _SheetGuess, cols: list[ColumnLayout],
                  first_data: int) -> dict[int, str]:
    """Rows below the header that are not data (Excel row -> why), found column by column."""
    return row_structure(schema, grid, g, cols, first_data)[0]


def row_structure(schema: ReviewSchema, grid: SheetGrid, g: _SheetGuess, cols: list[ColumnLayout],
                  first_data: int) -> tuple[dict[int, str], dict[int, str], list[tuple[int, int, str]]]:
    """Rows below the header that are not data (Excel row -> why), found column by column; the group headings
    among them (Excel row -> text: one short text spanning a row above data rows, unpivotr's ``left-up``
    header) and the blocks below the first (title row, header row, title: a title above a header row of
    its own, unpivotr's ``partition()`` corners)."""
    vals = grid.values
    n_rows, width = vals.shape
    out: dict[int, str] = {}
    headings: dict[int, str] = {}
    blocks: list[tuple[int, int, str]] = []
    if first_data >= n_rows:
        return out, headings, blocks
    body = vals[first_data:]
    n = len(body)
    filled = _filled(body)
    n_filled = filled.sum(axis=1)
    any_filled = n_filled > 0
    first_col = np.where(any_filled, filled.argmax(axis=1), 0)
    id_cols = [_col_index(c.column) for c in cols if c.kind == "author_year" or
               c.parts.get("value") in ("study_id", "first_author")]
    numeric_cols = [_col_index(c.column) for c in cols if c.kind != "author_year" and any(
        (schema.sheets[t].fields.get(f) is not None and schema.sheets[t].fields[f].type in NUMERIC_TYPES)
        for f in c.parts.values() for t in schema.sheets)]
    numeric_cols = [c for c in numeric_cols if c < width]
    # a label that says the row summarises the others: in an identity column, else the row's first cell
    is_label = lambda t: bool(_TOTAL_LABEL.match(t))  # noqa: E731
    label = np.zeros(n, bool)
    label_cols = [c for c in id_cols if c < width]
    for c in label_cols:
        label |= _column_mask(body[:, c], is_label)
    no_id = ~filled[:, label_cols].any(axis=1) if label_cols else np.ones(n, bool)
    firsts = body[np.arange(n), first_col]
    label |= no_id & any_filled & _column_mask(firsts, is_label)
    # a repeated header row: half its cells or more equal to the header above them
    header_texts = [fold_header(t) for t in _merged_fill_header(grid, [g.header_rows[-1]])[0]]
    same = np.zeros(n, int)
    for c in range(min(width, len(header_texts))):
        if header_texts[c]:
            same += _column_mask(body[:, c], lambda t, h=header_texts[c]: fold_header(t) == h)
    repeated = (same >= 2) & (same >= 0.5 * n_filled)
    # a note, footnote or source line: one or two cells of text, no number where numbers go
    has_number = np.zeros(n, bool)
    for c in numeric_cols:
        ty = _types(body[:, c])
        has_number |= (filled[:, c] & _column_mask(body[:, c], lambda t: bool(re.match(rf"^{_NUM}\s*%?$", _text(t) or "")))) \
            | (ty == float) | (ty == int)
    merged_width = np.zeros(n, int)
    for (r0, c0), (r1, c1) in grid.merged:
        if r1 >= first_data:
            lo, hi = max(r0, first_data) - first_data, r1 - first_data
            merged_width[lo:hi + 1] = np.maximum(merged_width[lo:hi + 1], c1 - c0 + 1)
    maybe_note = any_filled & ~has_number & (n_filled <= 2) & ~label & ~repeated
    # a row of texts naming fields, not the header's own texts: the header of another block
    index = FieldIndex.of(schema)
    other_header = np.zeros(n, bool)
    for i in np.flatnonzero(any_filled & ~has_number & (n_filled >= 3) & ~label & ~repeated):
        texts = [_cell_text(v) for v in body[i] if _cell_text(v)]
        if all(_text(v) is not None or not _cell_text(v) for v in body[i]) and \
                sum(1 for x in texts if index.lookup(x) or index.lookup(split_header(x)[0])) >= 2:
            other_header[i] = True
    block_header = repeated | other_header
    # one short text cell above data rows: a group heading; above a header row: a block title
    nonblank = np.flatnonzero(any_filled)
    for i in np.flatnonzero(maybe_note & (n_filled == 1)):
        t0 = _cell_text(body[i, first_col[i]])
        if len(t0) > 60 or _NOTE_START.match(t0) or _TOTAL_LABEL.match(t0):
            continue
        later = nonblank[nonblank > i]
        if not len(later):
            continue
        j = int(later[0])
        if block_header[j]:
            blocks.append((first_data + i + 1, first_data + j + 1, t0))
            out[first_data + i + 1] = f"block title ({t0!r})"
            maybe_note[i] = False
        elif n_filled[j] >= 2 and not label[j] and not maybe_note[j]:
            headings[first_data + i + 1] = t0
            out[first_data + i + 1] = f"group heading ({t0!r})"
            maybe_note[i] = False
    for i in np.flatnonzero(other_header & ~repeated):
        out[first_data + i + 1] = "header row of another block"
    repeated = repeated | other_header
    note = np.zeros(n, bool)
    for i in np.flatnonzero(maybe_note):
        t0 = _cell_text(body[i, first_col[i]])
        if merged_width[i] >= 3 or len(t0) >= 25 or _NOTE_START.match(t0):
            note[i] = True
            out[first_data + i + 1] = f"note ({t0[:40] + ('...' if len(t0) > 40 else '')!r})"
    for i in np.flatnonzero(label):
        t = _cell_text(body[i, label_cols[int(np.argmax(filled[i, label_cols]))]] if label_cols and
                       filled[i, label_cols].any() else body[i, first_col[i]])
        out[first_data + i + 1] = f"summary row ({t!r}), not a study"
    for i in np.flatnonzero(repeated & ~label):
        out[first_data + i + 1] = "repeated header row"
    data = any_filled & ~label & ~repeated & ~note
    data_idx = np.flatnonzero(data)
    if len(data_idx):
        blank = np.flatnonzero(~any_filled)
        for i in blank[(blank > data_idx[0]) & (blank < data_idx[-1])]:
            out[first_data + i + 1] = "blank separator row"
    # a row whose counts equal the sums of the data rows above it: a total without a label
    counts = [c for c in _count_columns(schema, list(schema.sheets), cols) if c < width]
    if counts and len(data_idx) >= 3:
        import pandas as pd

        m = np.column_stack([pd.to_numeric(pd.Series(body[data_idx, c], dtype=object).where(
            lambda x: _types(x.to_numpy()) != bool), errors="coerce").to_numpy(dtype=float) for c in counts])
        present = ~np.isnan(m)
        above = np.vstack([np.zeros((1, len(counts))), np.cumsum(np.where(present, m, 0.0), axis=0)[:-1]])
        equal = np.where(present, np.abs(m - above) < 1e-9, True)
        n_present = present.sum(axis=1)
        total = (np.arange(len(data_idx)) >= 2) & (n_present >= 2) & equal.all(axis=1) & \
            (np.where(present, m, 0.0) > 0).any(axis=1)
        for k in np.flatnonzero(total):
            out[first_data + int(data_idx[k]) + 1] = "total row: its counts equal the sums of the rows above"
    return dict(sorted(out.items())), headings, blocks

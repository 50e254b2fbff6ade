"""The template's layout, recognised without the search: inference is not paid twice.

A workbook made by ``curate template`` (it records its schema, :func:`curation.reading.recorded_schema`),
or any workbook kept in the template's layout (the benchmark's generated forms, a reviewer's copy of the
template), has every contract sheet under its own name with the fields' keys as the header of row 1.
Inferring that layout means scoring header rows, reading every column's cells for composite kinds and
testing every row for totals, notes and repeated headers (about a second at 47,000 rows); recognising
it means comparing one row per sheet and scanning the key columns for rows that could be anything but
data.

:func:`known_layout` gives the layout :func:`curation.layout.infer_layout` would give, or None when the
workbook is not certainly in the template's layout (then the search runs): a header that is not exactly
a field key, a merged or hidden header cell, a column whose cells hold composites (``12 (30%)``) often
enough for inference to read it as one, or a row whose identity cells are empty, or hold what is not an
identifier (a note, a ``Total`` label, a repeated header). ``tests/test_reading_formats.py`` checks that
the two layouts are equal on every workbook the fast path takes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

import numpy as np

from ..reading import WorkbookGrids, column_letter
from ..schema import ReviewSchema
from .cells import _text, content_kind
from .headers import fold_header
from .model import Layout
from .nondata import _TOTAL_LABEL
from .structure import _named_table

_ID = re.compile(r"[\w-]+")
_IDS = re.compile(r"[\w-]+(?:\x00[\w-]+)*")  # identifiers joined by NUL (never in [\w-])
_TOTAL_LINES = re.compile(_TOTAL_LABEL.pattern, re.I | re.M)  # _TOTAL_LABEL on each line of a joined text


def known_layout(grids: WorkbookGrids, schema: ReviewSchema) -> Layout | None:
    """The template's layout of ``grids`` without the search, or None when it is not certainly that."""
    from .infer import infer_layout

    stub = []
    named = 0
    for grid in grids.sheets:
        table = _named_table(schema, grid.title)
        if table is None:
            stub.append(grid)
            continue
        if not _template_sheet(schema, table, grid):
            return None
        named += 1
        # the header alone: what the search decides from it is all there is to decide
        stub.append(replace(grid, values=grid.values[:1]))
    if not named:
        return None
    layout = infer_layout(WorkbookGrids(file=grids.file, sheets=tuple(stub), findings=grids.findings,
                                        format=grids.format), schema)
    for sl in layout.sheets:
        if not sl.by_name or sl.header_rows != [1] or sl.comment_rows or sl.ignored or len(sl.tables) != 1 or \
                any(c.kind != "value" or c.confidence != "high" for c in sl.columns):
            return None
    return layout


def _template_sheet(schema: ReviewSchema, table: str, grid) -> bool:
    """Row 1 names the fields by their keys; no column reads as a composite; every row below is data."""
    vals = grid.values
    if vals.shape[0] == 0 or vals.shape[1] == 0:
        return False
    if grid.hidden_columns or any(r0 == 0 for (r0, _c0), _end in grid.merged):
        return False
    fields = schema.sheets[table].fields
    header = [_text(v) for v in vals[0]]
    keys = [h for h in header if h is not None]
    if not keys or len(set(keys)) != len(keys) or any(h not in fields for h in keys):
        return False
    cols = [c for c, h in enumerate(header) if h is not None]
    if len(cols) != cols[-1] + 1:  # a gap in the header
        return False
    body = vals[1:]
    if len(body) == 0:
        return True
    if body.shape[1] > len(cols) and _filled_any(body[:, len(cols):]):
        return False  # cells right of the header
    is_str = grid.text_cells[1:, : len(cols)]
    for c in cols:
        if not is_str[:, c].any():
            continue  # numbers and empty cells only: no composite (content_kind reads text cells alone)
        texts = body[:, c][is_str[:, c]]
        kind = content_kind(texts)
        if kind is not None and sum(1 for v in texts if _text(v) is not None) >= 3:
            return False
    key = schema.sheets[table].key[0]
    id_cols = [c for c in cols if header[c] in (key, "first_author")]
    if header[0] != key:
        return False
    k = body[:, 0]
    empty = (k == "") | (k == None)  # noqa: E711 - elementwise
    if empty.any():
        return False  # a row without its key: a note, a separator, a total: the search decides
    if not _all_ids(set(k[is_str[:, 0]])):
        return False
    return not any(_any_total_or_header(set(body[:, c][is_str[:, c]]), key) for c in id_cols)


def _all_ids(texts: set) -> bool:
    """Every text is an identifier (``[\\w-]+`` once stripped): one regex call over them all when each is
    one already, else one per text."""
    if not texts:
        return True
    joined = "\x00".join(texts)
    if _IDS.fullmatch(joined):
        return True
    return all(_ID.fullmatch(t.strip()) for t in texts)


def _any_total_or_header(texts: set, key: str) -> bool:
    """Some text is a ``Total`` label or repeats the key's header: decided over all the texts at once (a
    line-wise search finds a match wherever one text matches alone), one by one only when that finds one."""
    if not texts:
        return False
    joined = "\n".join(texts)
    folded = (joined if joined.isascii() else unicodedata.normalize("NFKC", joined)).casefold()
    if (key in folded or "first_author" in folded or joined.count("\n") != len(texts) - 1
            or _TOTAL_LINES.search(joined)):
        return any(bool(_TOTAL_LABEL.match(t)) or _is_header(t, key) for t in texts)
    return False


def _is_header(text: str, key: str) -> bool:
    """The cell repeats the key's or first_author's header (folded as headers are)."""
    t = (text if text.isascii() else unicodedata.normalize("NFKC", text)).casefold()
    if key not in t and "first_author" not in t:  # a cheap necessary condition before folding
        return False
    return fold_header(text) in (key, "first_author")


def _filled_any(block: np.ndarray) -> bool:
    if block.size == 0:
        return False
    f = (block != "") & (block != None)  # noqa: E711 - elementwise
    return bool(f.any())


__all__ = ["known_layout", "column_letter"]

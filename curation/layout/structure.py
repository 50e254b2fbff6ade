"""Structure hypotheses: which row is a sheet's header, which contract sheets a worksheet holds."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


from ..reading import SheetGrid, sheet_key
from ..schema import ReviewSchema
from .cells import _cell_text, _filled, _looks_numeric
from .headers import FieldIndex, IDENTITY, _match_column, _merged_fill_header
from .long import detect_long


@dataclass
class _Candidate:
    col: int
    header: str
    bottom: str
    fields: tuple[tuple[str, str], ...]
    how: str  # exact | core | ci | bottom | none
    quals: list[str]
    ci_in_core: bool


def _header_score(index: FieldIndex, grid: SheetGrid, r: int, width: int) -> tuple[int, int]:
    texts = _merged_fill_header(grid, [r])[0]
    exact = core = 0
    for t in texts[:width]:
        if not t or len(t) > 80:
            continue
        fields, how, *_ = _match_column(index, [t])
        if fields:
            if how == "exact":
                exact += 1
            else:
                core += 1
    return exact + core, exact


@dataclass
class _SheetGuess:
    grid: SheetGrid
    header_rows: list[int]  # 0-based
    candidates: list[_Candidate]
    score: int


def _guess_sheet(index: FieldIndex, grid: SheetGrid) -> _SheetGuess | None:
    vals = grid.values
    n_rows, width = vals.shape
    if not n_rows or not width:
        return None
    filled = _filled(vals[: min(n_rows, 40)])
    best = None
    for r in range(min(n_rows, 30)):
        if not filled[r].any():
            continue
        score, exact = _header_score(index, grid, r, width)
        if score >= 1 and (best is None or score > best[1] or (score == best[1] and exact > best[2])):
            best = (r, score, exact)
    if best is None:
        return None
    h = best[0]
    header_rows = [h]
    # a group row above (merged cells spanning several columns, or fewer, text-only cells) joins the header
    for up in (h - 1, h - 2):
        if up < 0 or not filled[up].any():
            break
        row_vals = vals[up]
        texts = [v for v in row_vals if _cell_text(v)]
        spans = [(c0, c1) for (r0, c0), (r1, c1) in grid.merged if r0 <= up <= r1 and c1 > c0]
        numeric = sum(_looks_numeric(v) for v in texts)
        if numeric or not texts:
            break
        if spans or len(texts) < filled[header_rows[0]].sum():
            # a title row spans the whole width in one cell: not a group row when it is the only text
            if len(texts) == 1 and (not spans or (spans[0][1] - spans[0][0] + 1) >= 0.8 * width) and \
                    filled[header_rows[0]].sum() > 3:
                break
            header_rows.insert(0, up)
            continue
        break
    texts = _merged_fill_header(grid, header_rows)
    cands = []
    for c in range(width):
        col_texts = [t[c] for t in texts]
        fields, how, quals, ci, header = _match_column(index, col_texts)
        cands.append(_Candidate(c, header, col_texts[-1], fields, how, quals, ci))
    return _SheetGuess(grid, header_rows, cands, sum(1 for c in cands if c.fields))


def _signature(g: _SheetGuess, fields_only: bool = False) -> tuple:
    """A sheet's header texts by column (folded) and header rows: sheets with one signature are one table's parts
    (``fields_only``: only the headers that name a field)."""
    from .headers import fold_header

    return tuple(fold_header(c.header) for c in g.candidates if c.header and (c.fields or not fields_only)) + (
        tuple(g.header_rows),)


def _assign_tables(schema: ReviewSchema, guesses: dict[str, _SheetGuess],
                   ties: list | None = None, held_elsewhere: frozenset = frozenset()) -> dict[str, list[str]]:
    """Which contract sheets each worksheet holds (by name first, then by content); ``held_elsewhere``: those a
    form-style sheet holds already (never given to another sheet for its identity columns alone)."""
    by_name: dict[str, str] = {}
    for title in guesses:
        table = _named_table(schema, title)
        if table is not None:
            by_name[title] = table
    scores: dict[str, dict[str, int]] = {}
    for title, g in guesses.items():
        s: dict[str, set[str]] = {}
        for c in g.candidates:
            tables = {t for t, _f in c.fields}
            for t, f in c.fields:
                if len(tables) > 1 or f in IDENTITY or f == "extractor":
                    continue
                s.setdefault(t, set()).add(f)
        scores[title] = {t: len(v) for t, v in s.items()}
        # a long sheet: the outcomes its outcome column names count as that contract sheet's fields
        for table in schema.sheets:
            long = detect_long(schema, FieldIndex.of(schema), g.grid, [c.header for c in g.candidates],
                               g.header_rows[-1] + 1, [table])
            if long:
                named = {f for spec in long["outcomes"].values() for f in spec.values()}
                scores[title][table] = scores[title].get(table, 0) + len(named)
    out: dict[str, list[str]] = {t: [] for t in guesses}
    for table in schema.sheets:
        named = [t for t, tb in by_name.items() if tb == table]
        if named:
            out[named[0]].append(table)
            continue
        ranked = sorted(((sc.get(table, 0), t) for t, sc in scores.items()), key=lambda x: (-x[0], x[1]))
        if ranked and ranked[0][0] >= 2:
            out[ranked[0][1]].append(table)
            sig = _signature(guesses[ranked[0][1]])
            tied = [t for s, t in ranked[1:] if s == ranked[0][0] and _signature(guesses[t]) != sig
                    and guesses[t].grid.state == "visible"]
            if tied and ties is not None:
                ties.append((table, ranked[0][1], tied[0], ranked[0][0]))
    # a contract sheet no worksheet holds on its own: the worksheet with most of its fields (identity fields
    # counted) holds it too, preferring one that holds a sheet that refers to it (a wide sheet)
    held = {t for ts in out.values() for t in ts} | set(held_elsewhere)
    for table, spec in schema.sheets.items():
        if table in held:
            continue
        best = None
        for title, g in guesses.items():
            own = {f for c in g.candidates for t, f in c.fields if t == table and f not in ("study_id", "extractor")}
            if not own:
                continue
            child = any(schema.sheets[t].parent is not None and schema.sheets[t].parent.sheet == table for t in out[title])
            score = (child, len(own))
            if (child or len(own) >= 2) and (best is None or score > best[0]):
                best = (score, title)
        if best is not None:
            out[best[1]].append(table)
    for t in out:
        out[t].sort(key=list(schema.sheets).index)
    return out




def _named_table(schema: ReviewSchema, title: str) -> str | None:
    for table, spec in schema.sheets.items():
        if sheet_key(title) in {sheet_key(table), *(sheet_key(a) for a in spec.aliases)}:
            return table
    return None


def _closest_table(schema: ReviewSchema, index: FieldIndex, grid: SheetGrid, g: _SheetGuess | None) -> str:
    """The contract sheet a worksheet is closest to: by its headers, else by its name."""
    if g is not None:
        counts: dict[str, int] = {}
        for c in g.candidates:
            for t, _f in c.fields:
                counts[t] = counts.get(t, 0) + 1
        if counts:
            return max(counts, key=lambda t: (counts[t], -list(schema.sheets).index(t)))
    ratios = {t: difflib.SequenceMatcher(None, sheet_key(grid.title), sheet_key(t)).ratio() for t in schema.sheets}
    return max(ratios, key=lambda t: (ratios[t], -list(schema.sheets).index(t)))

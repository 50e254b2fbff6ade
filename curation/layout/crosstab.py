"""Cross-tabs: adverse-event terms down, (study x grade band) across (layouts.md v2, shape 7).

``Term | Brabander 2017 (N=610) Grade 3-4 | Brabander 2017 (N=610) All grades | Strosberg 2017 (N=111) ...``,
or the study heads in one row (merged over their columns) and the grade bands in the row below. Each
value cell binds to its term ``left`` (directly), to its grade band ``up`` (directly) and to its study
head ``up-left`` (closest: a head spanning columns), as in unpivotr's ``behead`` and databaker's
``waffle``; a study head also gives the denominator (``N=610``). One record per study and term; each
value keeps its cell (``RawSheet.cell_rows`` / ``cell_letters``). A band that names no field of the
sheet is not read, with a warning.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..reading import SheetGrid, column_letter
from ..schema import ReviewSchema
from .cells import _cell_text, _filled, _text
from .headers import FieldIndex, fold_header

RX_STUDY_HEAD = re.compile(r"^\s*(?P<study>[^\d()\[\]]*?[^\W\d_][^\d()\[\]]*?[\s,(]*(?:19|20)\d{2}[a-z]?\)?)"
                           r"\s*(?:[(\[]\s*[nN]\s*=\s*(?P<n>\d+)\s*[)\]])?\s*[,;:-]?\s*(?P<band>.*?)\s*$")


def _ae_outcome(schema: ReviewSchema):
    for key, oc in schema.analysis.outcomes.items():
        if oc.kind == "adverse_event" and oc.term:
            return key, oc
    return None, None


def parse_head(text: str) -> tuple[str, str | None, str] | None:
    """``'Brabander 2017 (N=610) Grade 3-4'`` -> ``('Brabander 2017', '610', 'Grade 3-4')``."""
    m = RX_STUDY_HEAD.match(text)
    if not m:
        return None
    study = m.group("study").strip(" ,(")
    if not re.search(r"[^\W\d_]{2}", study):
        return None
    return study.rstrip(")").strip(), m.group("n"), m.group("band").strip()


def detect_crosstab(schema: ReviewSchema, index: FieldIndex, grid: SheetGrid) -> dict[str, Any] | None:
    """A cross-tab's recipe (term column, head rows, per value column its study, N and field), or None."""
    key, oc = _ae_outcome(schema)
    if oc is None:
        return None
    table = oc.sheet or schema.analysis_sheet
    if table not in schema.sheets:
        return None
    vocab_name = schema.sheets[table].fields[oc.term].vocabulary
    vocab = schema.vocabularies.get(vocab_name) if vocab_name else None
    vals = grid.values
    n_rows, width = vals.shape
    if n_rows < 3 or width < 3:
        return None
    filled = _filled(vals[:min(n_rows, 12)])
    for h in range(min(n_rows - 1, 10)):
        heads = {}
        for c in np.flatnonzero(filled[h]):
            t = _text(vals[h, c])
            p = parse_head(t) if t else None
            if p:
                heads[int(c)] = p
        if len(heads) < 2 or len({p[0] for p in heads.values()}) < 2:
            continue
        first = min(heads)
        if first == 0:
            continue
        # grade bands: in the head itself, or in the row below
        two_rows = all(not p[2] for p in heads.values())
        band_row = h + 1 if two_rows else h
        study_at: dict[int, tuple[str, str | None, int]] = {}
        cur = None
        for c in range(first, width):
            if c in heads:
                cur = (heads[c][0], heads[c][1], c)
            elif not two_rows:
                cur = None
            if cur is not None:
                study_at[c] = cur
        across: dict[str, dict[str, str]] = {}
        for c, (study, n, c_head) in study_at.items():
            band = heads[c][2] if not two_rows and c in heads else _cell_text(vals[band_row, c])
            if not band:
                continue
            hits = [f for t, f in (index.lookup(band) or index.lookup(fold_header(band))) if t == table]
            across[column_letter(c)] = {"study": study, "n": n or "", "band": band, "field": hits[0] if hits else "",
                                        "head": f"{column_letter(c_head)}{h + 1}"}
        if not any(a["field"] for a in across.values()):
            continue
        term_col = first - 1
        body = vals[band_row + 1:, term_col]
        terms = [t for t in (_text(v) for v in body[:500]) if t]
        if not terms:
            continue
        known = sum(1 for t in terms if vocab is None or vocab.canonical(t) is not None)
        if known < 0.5 * len(terms):
            continue
        return {"table": table, "term_column": column_letter(term_col), "head_rows": [h + 1] + ([band_row + 1] if
                two_rows else []), "across": across, "term_field": oc.term, "total_field": oc.total or ""}
    return None


def bind_crosstab(ctx, vals: np.ndarray, filled: np.ndarray, roles: np.ndarray):
    """A cross-tab -> one record per study and term; each value keeps its cell."""
    from ..findings import quote_sheet
    from ..cells import is_missing_text
    from .account import HEADER, NON_DATA, NOT_READ, VALUE, figures
    from .binding import read_counts
    from .identity import study_of_label

    sl, emit, title, primary = ctx.sl, ctx.emit, ctx.title, ctx.primary
    q = quote_sheet(title)
    n_rows, width = vals.shape
    term_c = _ci(sl.outcome_column)
    last_head = sl.header_rows[-1]  # Excel row
    term_field = sl.term_field or "ae_term"
    total_field = sl.total_field
    rows = [r for r in range(last_head, n_rows) if _text(vals[r, term_c])]
    for r in range(0, last_head):
        roles[r][filled[r]] = HEADER
    records: list[dict] = []
    studies = list(dict.fromkeys(a["study"] for a in sl.across.values()))
    unplaced: dict[str, int] = {}
    not_reported: list[tuple[int, str]] = []  # (row, letter) of the cells saying "not reported"
    for r in rows:
        roles[r, term_c] = HEADER
        for study in studies:
            rec: dict[str, Any] = {}
            where: dict[str, tuple[int, str]] = {}
            for letter, a in sl.across.items():
                if a["study"] != study:
                    continue
                c = _ci(letter)
                if c >= width:
                    continue
                v = vals[r, c]
                if _cell_text(v) == "":
                    continue
                t = _text(v)
                if t is not None and is_missing_text(t):  # '–', 'NR': the team's "not reported", not a record
                    roles[r, c] = NON_DATA
                    not_reported.append((r, letter))
                    continue
                if not a["field"]:
                    unplaced[letter] = unplaced.get(letter, 0) + 1
                    continue
                rec[a["field"]] = v
                where[a["field"]] = (r + 1, letter)
                roles[r, c] = VALUE
                head = a["head"]
            if not rec:
                continue
            ident = study_of_label(study, ctx.schema)  # the one derivation: 'Brabander T 2017' -> BrabanderT2017
            hl = re.match(r"([A-Z]+)(\d+)", head)
            rec["study_id"] = ident.get("study_id") or re.sub(r"[^\w-]+", "", study)
            where["study_id"] = (int(hl.group(2)), hl.group(1))
            n = next((a["n"] for a in sl.across.values() if a["study"] == study and a["n"]), "")
            if n and total_field:
                rec[total_field] = n
                where[total_field] = (int(hl.group(2)), hl.group(1))
            rec[term_field] = vals[r, term_c]
            where[term_field] = (r + 1, sl.outcome_column)
            records.append({"row": r, "values": rec, "where": where})
    for letter, k in unplaced.items():
        a = sl.across[letter]
        emit(title, sl.header_rows[-1], letter, None, "unread-data", "warning",
             f"{q}!{letter}{sl.header_rows[-1]} {a['band']!r} ({a['study']}) holds {k} figure(s) that are not read: "
             "the band names no field of the sheet (give its field in the layout file's `across:`)", a["band"],
             primary)
    if not_reported:
        r0, l0 = not_reported[0]
        cells = ", ".join(f"{q}!{x}{r + 1}" for r, x in not_reported[:6]) + (" ..." if len(not_reported) > 6 else "")
        emit(title, r0 + 1, l0, None, "inferred-layout", "info",
             f"{q}: {len(not_reported)} cell(s) of the cross-tab say not reported ({cells}; e.g. "
             f"{_cell_text(vals[r0, _ci(l0)])!r}): no adverse-event value for that study, term and band from them "
             "(counted as non-data)", None, primary)
    left = figures(vals, roles == NOT_READ)
    left[:last_head] = False
    if left.any():
        rr, cc = np.nonzero(left)
        if not unplaced:
            emit(title, int(rr.min()) + 1, None, None, "unread-data", "warning",
                 f"{q} holds {int(left.sum())} figure(s) outside the cross-tab's terms and columns: not read", None,
                 primary)
    n = len(records)
    fields = sorted({f for rec in records for f in rec["values"]})
    columns = {f: [rec["values"].get(f) for rec in records] for f in fields}
    for f, fs in ((f, ctx.schema.sheets[sl.tables[0]].fields.get(f)) for f in fields):
        if fs is not None and fs.type == "integer":
            arr = np.array(columns[f], dtype=object)
            read_counts(arr)
            columns[f] = list(arr)
    data_rows = [rec["row"] for rec in records]
    cell_rows = {f: np.asarray([rec["where"][f][0] if f in rec["where"] and rec["where"][f][0] != rec["row"] + 1
                                else 0 for rec in records], dtype="int64") for f in fields}
    cell_letters = {f: np.asarray([rec["where"][f][1] if f in rec["where"] else None for rec in records],
                                  dtype=object) for f in fields}
    letters = {term_field: sl.outcome_column}
    if n:
        emit(title, sl.header_rows[-1], None, None, "inferred-layout", "info",
             f"sheet {q} read as a cross-tab: terms down {sl.outcome_column}, {len(studies)} stud"
             f"{'y' if len(studies) == 1 else 'ies'} x grade band across; {n} record(s) (one per study and term)",
             None, primary)
    return data_rows, columns, letters, {}, cell_rows, cell_letters


def _ci(letter: str) -> int:
    n = 0
    for ch in letter:
        n = n * 26 + (ord(ch.upper()) - 64)
    return n - 1

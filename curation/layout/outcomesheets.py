"""One sheet per outcome (layouts.md v2, shape 5 with shape 2's roles): sheets named ``ORR``, ``DCR``, ``PFS``,
``OS`` with identical headers ``Study | Cohort | ... | n | N | Estimate | Lower | Upper``.

The sheet's name names the outcome of every row, as a long sheet's outcome column names each row's (the name
is matched to the schema's outcomes by :func:`curation.layout.long.match_outcome`, the same code); the role of
each column (``n``, ``N``, ``Estimate``, ``95% CI lower`` ...) then names the field of each value cell: the
``ORR`` sheet's ``n`` is ``orr_n``, ``N`` is ``n_evaluable``, ``Estimate`` is ``orr_pct``; the ``PFS`` sheet's
``Estimate`` is ``pfs_median``, its bounds ``pfs_ci_low`` / ``pfs_ci_high``. This is unpivotr's ``enhead``
with the sheet's name as the header of every cell (databaker's ``HDim`` on the tab's name).

In the layout file such a sheet is a long sheet with no ``outcomeColumn`` and one entry under ``outcomes``
(the sheet's name -> role -> field). The sheets' records, and those of a wide sheet of the same contract sheet
(best response), are joined by the record's key (study and subgroup) as joined blocks are
(:func:`curation.layout.blocks.join_blocks`): a field two sheets give different values is a ``block-conflict``
error naming both cells; a study-level column each sheet repeats (grade, primary site) that differs is a
``study-field-conflict`` warning; a key twice in one sheet stays two records, for ``duplicate-key``.
Every value keeps its own worksheet and cell.
"""

from __future__ import annotations

from typing import Any

from ..reading import column_letter
from ..schema import ReviewSchema
from .headers import FieldIndex
from .long import match_outcome, outcome_fields, role_of
from .model import SheetLayout


def detect_outcome_sheet(schema: ReviewSchema, index: FieldIndex, title: str, g: Any) -> dict | None:
    """What a sheet named after one outcome holds: ``{"table", "outcome", "roles", "fields"}``, or None.

    One when the sheet's name names exactly one outcome of the schema's analysis (as a long sheet's outcome cell
    would) and its header row has two or more role columns (``n``, ``N``, ``Estimate``, ``Lower``, ``Upper``),
    one of them an estimate or a count, of which at least one names a field of that outcome."""
    if g is None:
        return None
    tables = list(schema.sheets)
    fields = outcome_fields(schema, tables)
    key = match_outcome(schema, tables, title, fields)
    if key is None:
        return None
    spec = fields[key]
    roles = {column_letter(c.col): role_of(c.header) for c in g.candidates if c.header}
    roles = {l: r for l, r in roles.items() if r}
    if len(roles) < 2 or not {"estimate", "events"} & set(roles.values()) or \
            not set(roles.values()) & set(spec):
        return None
    oc = schema.analysis.outcomes[key]
    return {"table": oc.sheet or schema.analysis_sheet, "outcome": title, "roles": roles, "fields": dict(spec)}


def outcome_sheet_layout(sl: SheetLayout, found: dict) -> SheetLayout:
    """A sheet's layout (its identity and subgroup columns, as a wide reading found them) as one outcome's
    long sheet: its role columns read by role, the outcome named by the sheet's name."""
    roles = found["roles"]
    cols = [c for c in sl.columns if c.column not in roles]
    ignored = {l: ign for l, ign in sl.ignored.items() if l not in roles}
    return sl.model_copy(update={"columns": cols, "ignored": ignored, "shape": "long", "outcome_column": None,
                                 "roles": dict(sorted(roles.items(), key=lambda kv: (len(kv[0]), kv[0]))),
                                 "outcomes": {found["outcome"]: found["fields"]}, "name_labels": {}})


def is_outcome_sheet(sl: SheetLayout) -> bool:
    """Whether a sheet's layout is one outcome's sheet (a long sheet whose name names its outcome)."""
    return sl.shape == "long" and sl.outcome_column is None and len(sl.outcomes) == 1


def soft_fields(schema: ReviewSchema, layout: Any, table: str) -> frozenset:
    """The fields the outcome sheets of ``table`` repeat that are no outcome's (grade, primary site):
    cross-checked between sheets (a warning where they differ), never a conflict of values read."""
    spec = schema.sheets[table]
    key = set(spec.key) | {"study_id", "cohort", "first_author", "year"}
    mine = [sl for sl in layout.sheets if is_outcome_sheet(sl) and table in sl.tables]
    outcome = {f for sl in mine for fs in sl.outcomes.values() for f in fs.values()}
    return frozenset(f for sl in mine for c in sl.columns for f in c.parts.values()
                     if f not in key and f not in outcome)


def place_empty(raw: Any, layout: Any, table: str) -> Any:
    """The joined records of ``table`` with each empty outcome field placed in its own sheet's cell: a record
    with ``pfs_median`` from ``PFS!G6`` and no CI has its ``pfs_ci_low`` at ``PFS!H6`` (the empty cell a
    finding then names), not at a cell of the record's first sheet."""
    from dataclasses import replace

    import numpy as np

    from .cells import _cell_text

    mine = [sl for sl in layout.sheets if is_outcome_sheet(sl) and table in sl.tables]
    if not mine or not raw.cell_titles:
        return raw
    titles = {f: np.array(v, dtype=object) for f, v in raw.cell_titles.items()}
    rows = {f: np.array(v, dtype="int64") for f, v in raw.cell_rows.items()}
    letters = {f: np.array(v, dtype=object) for f, v in raw.cell_letters.items()}
    for sl in mine:
        spec = next(iter(sl.outcomes.values()))
        letter_of = {r: l for l, r in sl.roles.items()}
        for i in range(len(raw.rows)):
            given = [f for f in spec.values() if f in raw.values and _cell_text(raw.values[f][i])
                     and f in titles and titles[f][i] == sl.sheet]
            if not given:
                continue
            r = int(rows[given[0]][i]) if given[0] in rows and rows[given[0]][i] > 0 else raw.rows[i]
            for role, f in spec.items():
                if f in given or role not in letter_of or f not in titles or f not in rows or f not in letters or \
                        (f in raw.values and _cell_text(raw.values[f][i])):
                    continue
                titles[f][i], rows[f][i], letters[f][i] = sl.sheet, r, letter_of[role]
    return replace(raw, cell_titles=titles, cell_rows=rows, cell_letters=letters)

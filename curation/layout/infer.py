"""Inference: a workbook's grids -> its layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UnusableInputError
from ..reading import WorkbookGrids
from ..schema import ReviewSchema
from .cells import _cell_text, _filled
from .columns import _sheet_layout, by_name_hint
from .headers import FieldIndex
from .model import Layout, SheetLayout
from .structure import _SheetGuess, _assign_tables, _closest_table, _guess_sheet, _named_table


def infer_layout(grids: WorkbookGrids, schema: ReviewSchema) -> Layout:
    """Infer where a workbook keeps the schema's fields (see the module docstring).

    Raises
    ------
    UnusableInputError
        Two sheets named as one contract sheet, a sheet named as a contract sheet whose header
        matches no field, or no sheet holding any contract sheet.
    """
    index = FieldIndex.of(schema)
    guesses: dict[str, _SheetGuess] = {}
    skipped: dict[str, str] = {}
    empty: dict[str, str] = {}
    named: dict[str, list[str]] = {}
    for grid in grids.sheets:
        table = _named_table(schema, grid.title)
        if table is not None:
            named.setdefault(table, []).append(grid.title)
    for table, titles in named.items():
        if len(titles) > 1:
            raise UnusableInputError(
                f"{grids.file}: {len(titles)} sheets match {table!r} ({', '.join(repr(t) for t in titles)}), so it is not "
                "clear which holds the data: keep one of them (rename or delete the others) and save the form again")
    for grid in grids.sheets:
        table = _named_table(schema, grid.title)
        g = _guess_sheet(index, grid)
        if table is not None and not _filled(grid.values).any():
            empty[grid.title] = table
            continue
        if g is None or g.score == 0:
            if table is not None:
                vals = grid.values
                filled = _filled(vals)
                r = int(np.flatnonzero(filled.any(axis=1))[0])
                found = [_cell_text(v) for v in vals[r] if _cell_text(v)]
                expected = list(schema.sheets[table].fields)
                raise UnusableInputError(
                    f"{grids.file}: sheet {grid.title!r}: no header in row {r + 1} matches a field "
                    f"(found {', '.join(repr(f) for f in found[:8])}{' ...' if len(found) > 8 else ''}; "
                    f"expected {', '.join(expected[:8])} ...). The header row must name the fields.")
            if grid.state == "visible":
                skipped[grid.title] = "no header row matches a field"
            continue
        guesses[grid.title] = g
    assignment = _assign_tables(schema, guesses) if guesses else {}
    sheets: list[SheetLayout] = []
    for title, g in guesses.items():
        tables = assignment.get(title, [])
        if not tables:
            if g.grid.state == "visible":
                skipped[title] = f"its headers match too few fields of any contract sheet ({g.score} column(s))"
            continue
        sheets.append(_sheet_layout(schema, index, g, tables, by_name=by_name_hint(title, tables, schema)))
    if not sheets:
        hints = []
        for grid in grids.sheets:
            hints.append(f"{grid.title!r} (closest: {_closest_table(schema, index, grid, guesses.get(grid.title))!r})")
        raise UnusableInputError(
            f"{grids.file}: none of the form's sheets ({', '.join(schema.sheets)}) is in this workbook, by name or by "
            f"its headers (found: {', '.join(hints) or 'no sheets'}). Start from `curate template`, or name the "
            "sheets and their header cells after the schema's fields (`curate template` shows them)")
    return Layout(schema=schema.name, workbook=Path(grids.file).name, sheets=sheets, skipped=skipped, empty=empty)

"""Inference: a workbook's grids -> its layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UnusableInputError
from .compete import AmbiguousLayoutError
from ..reading import WorkbookGrids, sheet_key
from ..schema import ReviewSchema
from .cells import _cell_text, _filled
from .columns import _sheet_layout, by_name_hint
from .headers import FieldIndex, _merged_fill_header
from .form import detect_form, form_layout, form_score, form_tables
from .crosstab import detect_crosstab
from .blocks import infer_blocks
from .model import ColumnLayout, Layout, SheetLayout, _col_index
from .structure import _SheetGuess, _assign_tables, _signature, _closest_table, _guess_sheet, _named_table


def infer_layout(grids: WorkbookGrids, schema: ReviewSchema, *, refuse_ties: bool = True) -> Layout:
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
    forms: dict[str, tuple] = {}
    form_regions: dict[str, list] = {}
    crosstabs: dict[str, dict] = {}
    in_blocks: list[SheetLayout] = []
    choices: dict[str, object] = {}  # sheets two structures explain about equally well: the verdict
    as_sheet: set[str] = set()  # ... of them, form sheets kept as one study's form (with the other recipe)
    for grid in grids.sheets:
        table = _named_table(schema, grid.title)
        split = infer_blocks(schema, index, grid) if grid.state == "visible" else []
        if split:  # several tables of their own in one sheet: each block read as a table (blocks.py)
            in_blocks.extend(split)
            continue
        g = _guess_sheet(index, grid)
        cross = detect_crosstab(schema, index, grid) if grid.state == "visible" else None
        # two or more studies' heads across, each with a band naming a field: a cross-tab, whatever a header row
        # of the same texts would match one by one
        if cross is not None and len({a["study"] for a in cross["across"].values() if a["field"]}) >= 2:
            crosstabs[grid.title] = cross  # terms down, study x grade band across
            continue
        found = detect_form(index, grid) if grid.state == "visible" and \
            sheet_key(grid.title) not in ("instructions", "lists", "conflicts", "about") else None
        if found is not None and form_score(found) > (g.score if g is not None else 0) and \
                form_tables(schema, found):
            from .formtables import find_form_tables

            found, regions = find_form_tables(schema, index, grid, found, form_tables)  # a table inside the form
            forms[grid.title] = found  # labels down a column, values beside them: one record per sheet
            if regions:
                form_regions[grid.title] = regions
            from .compete import form_or_columns

            from .form import _arms_row

            # a row naming the value columns (``Sample | drug | placebo``) above figures in them: the columns are
            # records by the form's own words (arms or cohorts), so one study's form is no rival explanation
            named = _columns_named(grid.values, found, _arms_row)
            verdict = None if named else form_or_columns(schema, grid, found, form_tables(schema, found))
            if verdict is not None:  # several value columns: studies side by side, or one study's form?
                if verdict.tie:
                    choices[grid.title] = verdict
                    if verdict.best.line == "recordPer: sheet":
                        as_sheet.add(grid.title)
                elif verdict.best.line == "recordPer: sheet":
                    forms[grid.title] = (found[0], found[1], found[2], [found[1]], *found[4:])
            continue
        if table is not None and not grid.filled.any():
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
    # one sheet per outcome (ORR, PFS ...: role headers, the sheet's name the outcome): read as such, not
    # competing for a contract sheet with the sheets that hold it (outcomesheets.py)
    from .outcomesheets import detect_outcome_sheet, outcome_sheet_layout

    per_outcome: dict[str, tuple] = {}
    for title, g in list(guesses.items()):
        if _named_table(schema, title) is None and g.grid.state == "visible":
            found = detect_outcome_sheet(schema, index, title, g)
            if found is not None:
                per_outcome[title] = (g, found)
                del guesses[title]
    ties: list = []
    by_form = frozenset([*(t for found in forms.values() for t in form_tables(schema, found)),
                         *(reg[0] for regs in form_regions.values() for reg in regs)]) | \
        frozenset(t for sl in in_blocks if sl.block.read for t in sl.tables)
    assignment = _assign_tables(schema, guesses, ties, by_form) if guesses else {}
    for table, chosen, other, score in ties:
        if refuse_ties:
            raise UnusableInputError(
                f"{grids.file}: sheets {chosen!r} and {other!r} explain {table!r} equally well ({score} of its fields "
                f"each), so it is not clear which holds the data: choose with a layout file (`curate map "
                f"{Path(grids.file).name} -o layout.yaml`, then keep the `- sheet:` entry of the one you mean "
                "and pass it with --layout)")
        skipped.setdefault(other, f"it explains {table!r} as well as {chosen!r} ({score} fields each): {chosen!r} was "
                                  f"chosen; to read {other!r} instead, set sheet: {other!r} in {chosen!r}'s entry")
    siblings: dict[str, list[str]] = {}
    sheets: list[SheetLayout] = []
    heads = {title: _signature(g) for title, g in guesses.items()}
    fielded = {title: _signature(g, fields_only=True) for title, g in guesses.items()}
    chosen = [t for t, ts in assignment.items() if ts]  # the sheets holding a contract sheet by themselves
    for title, g in guesses.items():
        tables = assignment.get(title, [])
        if not tables:
            # the headers of a chosen sheet: all of them, or all those naming a field (a sheet whose unread
            # comment column has lost its header is still the same table's part)
            twin = next((t for t in chosen if heads[t] == heads[title]), None) or next(
                (t for t in chosen if len(fielded[title]) > 4 and _one_header_lost(fielded[t], fielded[title])), None)
            if twin is not None:
                assignment[title] = list(assignment[twin])
                siblings.setdefault(twin, [twin]).append(title)
                continue
            if g.grid.state == "visible":
                skipped.setdefault(title, f"its headers match too few fields of any contract sheet ({g.score} column(s))")
            continue
    for title, g in guesses.items():
        tables = assignment.get(title, [])
        if tables:
            sl = _sheet_layout(schema, index, g, tables, by_name=by_name_hint(title, tables, schema))
            if sl.shape == "long":  # long and wide: two explanations of one sheet, scored on the cells they dispute
                sl = _long_or_wide(schema, index, g, tables, sl, choices)
            sheets.append(sl)
    by_grid = {grid.title: grid for grid in grids.sheets}
    sheets = _sheet_name_labels(schema, sheets, siblings, skipped, by_grid) + in_blocks
    for title, (g, found) in per_outcome.items():
        sheets.append(outcome_sheet_layout(_sheet_layout(schema, index, g, [found["table"]], by_name=False), found))
    for title, found in forms.items():
        sl = form_layout(schema, by_grid[title], found, form_tables(schema, found))
        if title in form_regions:
            from .formtables import form_tables_layouts

            sl = sl.model_copy(update={"form_tables": form_tables_layouts(schema, index, by_grid[title],
                                                                          form_regions[title])})
        if title in as_sheet:  # one study's form, the transposed recipe kept beside it (recordPer chooses)
            sl = sl.model_copy(update={"record_per": "sheet", "derived": {
                f: "the sheet's name (Author year)" for f in sl.derived}})
        sheets.append(sl)
    for title, cross in crosstabs.items():
        sheets.append(SheetLayout(
            sheet=title, tables=[cross["table"]], headerRows=cross["head_rows"],
            columns=[ColumnLayout(column=cross["term_column"], header=" ".join(dict.fromkeys(
                x[_col_index(cross["term_column"])] for x in _merged_fill_header(
                    by_grid[title], [r - 1 for r in cross["head_rows"]]) if x[_col_index(cross["term_column"])])),
                kind="value", parts={"value": cross["term_field"]}, confidence="medium")],
            shape="crosstab", outcomeColumn=cross["term_column"], across=cross["across"],
            termField=cross["term_field"], totalField=cross["total_field"] or None))
    sheets.sort(key=lambda sl: grids.titles.index(sl.sheet))
    if not sheets:
        hints = []
        for grid in grids.sheets:
            hints.append(f"{grid.title!r} (closest: {_closest_table(schema, index, grid, guesses.get(grid.title))!r})")
        raise UnusableInputError(
            f"{grids.file}: none of the form's sheets ({', '.join(schema.sheets)}) is in this workbook, by name or by "
            f"its headers (found: {', '.join(hints) or 'no sheets'}). Start from `curate template`, or name the "
            "sheets and their header cells after the schema's fields (`curate template` shows them)")
    layout = Layout(schema=schema.name, workbook=Path(grids.file).name, sheets=sheets, skipped=skipped, empty=empty,
                    choices={t: _choice_words(v) for t, v in choices.items()} or None)
    if refuse_ties and choices:
        title, verdict = min(choices.items(), key=lambda kv: grids.titles.index(kv[0]))
        raise AmbiguousLayoutError(_refusal(grids.file, layout, title, verdict))
    return layout


def _long_or_wide(schema: ReviewSchema, index: FieldIndex, g, tables: list[str], long_sl: SheetLayout,
                  choices: dict) -> SheetLayout:
    """A sheet that reads as long, scored against the same sheet read as wide (:mod:`.compete`): the better
    when clearly better; when the two are about as good, the better with the other's recipe kept beside it
    (so that one line, ``shape:``, chooses) and the sheet noted in ``choices`` (refused unless a layout
    file chooses)."""
    from .compete import long_or_wide

    # the wide reading's columns (its rows as the long reading found them): all the score needs
    wide_sl = _sheet_layout(schema, index, g, tables, by_name=long_sl.by_name, shape="wide", rows_from=long_sl)
    verdict = long_or_wide(schema, g.grid, long_sl, wide_sl)
    if verdict.best.line == "shape: wide":  # taken or kept: the wide layout in full (its own non-data rows)
        wide_sl = _sheet_layout(schema, index, g, tables, by_name=long_sl.by_name, shape="wide")
    if not verdict.tie:
        return long_sl if verdict.best.line == "shape: long" else wide_sl
    choices[g.grid.title] = verdict
    contested = {l for l in long_sl.roles} | {long_sl.outcome_column}
    if verdict.best.line == "shape: long":
        extra = [c for c in wide_sl.columns if c.column in contested]
        cols = sorted([*long_sl.columns, *extra], key=lambda c: _col_index(c.column))
        return long_sl.model_copy(update={"columns": cols})
    return wide_sl.model_copy(update={"outcome_column": long_sl.outcome_column, "roles": long_sl.roles,
                                      "outcomes": long_sl.outcomes})


def _choice_words(verdict) -> str:
    return (f"read as {verdict.best.name}, but it reads about as well as {verdict.other.name} "
            f"({verdict.words()}): `{verdict.best.line}` chooses it; `{verdict.other.line}` reads it the other way")


def _refusal(file: str, layout: Layout, title: str, verdict) -> str:
    """One line: the sheet, both explanations, and the line of the layout file (as `curate map` writes it)
    that chooses."""
    lines = layout.to_yaml().splitlines()
    at = None
    entry = False
    for k, line in enumerate(lines, 1):
        if line.startswith("- sheet:"):
            import yaml

            entry = yaml.safe_load(line[2:]).get("sheet") == title
        elif entry and line.strip().startswith(verdict.best.line.split(":")[0] + ":"):
            at = k
            break
    where = f"line {at} of the layout " if at else "the layout "
    name = Path(file).name
    return (f"{file}: sheet {title!r} can be read two ways about equally well, so it is not clear which is meant: "
            f"as {verdict.best.name}, or as {verdict.other.name}; {verdict.words()}. Choose with a layout file: "
            f"`curate map {name} -o layout.yaml` writes `{verdict.best.line}` under `- sheet: {title}` ({where}"
            f"file): keep it or change it to `{verdict.other.line}`, and pass the file with --layout")


def _sheet_name_labels(schema: ReviewSchema, sheets: list[SheetLayout], siblings: dict[str, list[str]],
                       skipped: dict[str, str], by_grid: dict | None = None) -> list[SheetLayout]:
    """Sheets with identical headers (one sheet per subgroup or outcome, layouts.md v2 shape 5): each sheet's
    name a label value, so that they are read together as one table and told apart by it.

    A name is a term of one vocabulary field of the sheet (``G3`` -> ``grade``, ``Pancreatic NET`` ->
    ``primary_site``; the names may name different fields) or the overall cohort (``Overall``, ``All
    patients``: each row's cohort where no column states one); with a cohort column, each row's cohort
    must agree with its sheet's name (a ``label-conflict`` warning where not). Names that are not all such labels, or
    two sheets whose names give the same label: the sheets are read together only where their rows state
    what tells them apart (a key field other than the study's identity, stated on every row, whose values on
    one sheet appear on no other: a real umbrella review keeps one sheet per organ system, each row naming its
    own cancer site), which is the same table as it would be in one sheet; otherwise only the first sheet is
    read, the others are skipped and reported (never pooled with it unless the layout file lists them), so
    that two extractors' copies of the same studies, or sheets naming centres, are never joined."""
    from .labels import name_label

    by_title = {sl.sheet: sl for sl in sheets}
    drop: set[str] = set()
    for first, group in siblings.items():
        sl0 = by_title.get(first)
        if sl0 is None:
            continue
        found = {t: name_label(schema, sl0.tables, t, sl0.columns) for t in group}
        distinct = len({tuple(sorted(lv.items())) for lv in found.values() if lv is not None}) == len(group)
        if all(lv is not None for lv in found.values()) and distinct:
            for t in group:
                by_title[t] = by_title[t].model_copy(update={"name_labels": found[t]})
        elif by_grid is not None and _rows_tell_apart(schema, [by_title[t] for t in group], by_grid):
            continue  # one table split across sheets: each row says which part it is in
        else:
            for t in group[1:]:
                drop.add(t)
                skipped[t] = (f"it has the headers of {first!r} (one sheet per subgroup or outcome?), but the sheets' "
                              "names are not all subgroups (terms of a vocabulary field, or the overall cohort), so it "
                              f"is not pooled with {first!r}: add its entry under sheets (as {first!r}'s, with sheet: "
                              f"{t!r}) to read them together, or give the field they name in nameLabels")
    return [by_title[sl.sheet] for sl in sheets if sl.sheet not in drop]


def _one_header_lost(full: tuple, other: tuple) -> bool:
    """Whether a sheet's field-naming headers are those of another sheet, in order, with at most one left out
    (a header cell a team left empty on one of its per-site sheets)."""
    if full[-1] != other[-1] or len(other) not in (len(full), len(full) - 1):
        return False
    return full == other or any(full[:i] + full[i + 1:] == other for i in range(len(full) - 1))


def _rows_tell_apart(schema: ReviewSchema, group: list[SheetLayout], by_grid: dict) -> str | None:
    """The key field by which the rows of sheets with identical headers tell the sheets apart, or None: a
    field of the table's key other than the study's identity, held by a plain column on every sheet, stated on
    (nearly) every data row, with no value found on two sheets (each sheet's rows name their own sites, outcomes or
    comparisons). Two extractors' copies of the same studies, or sheets named after centres whose rows state
    the same cohorts, have none."""
    from ..schema import fold

    sl0 = group[0]
    identity = {"study_id", "first_author", "year", "cohort"}
    for c in sl0.columns:
        if c.kind == "author_year":
            identity.update(c.parts.values())
    keys = [f for t in sl0.tables for f in schema.sheets[t].key if f not in identity]
    for field in dict.fromkeys(keys):
        seen: dict[str, str] = {}
        ok = True
        for sl in group:
            col = next((c.column for c in sl.columns if c.kind == "value" and c.parts.get("value") == field), None)
            grid = by_grid.get(sl.sheet)
            if col is None or grid is None:
                ok = False
                break
            j = _col_index(col)
            vals = grid.values
            start = max(sl.header_rows)  # Excel row of the last header row = 0-based index of the first data row
            skip = {r - 1 for r in sl.comment_rows} | {r - 1 for r in sl.labels}
            rows = [r for r in range(start, vals.shape[0]) if r not in skip and _filled(vals[r:r + 1]).any()]
            stated = [fold(_cell_text(vals[r, j])) if j < vals.shape[1] else "" for r in rows]
            texts = {t for t in stated if t}
            # (an empty cell here and there is a slip, reported as such; most rows must state it)
            if not texts or len(texts) and sum(map(bool, stated)) < 0.8 * len(rows) or \
                    any(t in seen and seen[t] != sl.sheet for t in texts):
                ok = False
                break
            seen.update({t: sl.sheet for t in texts})
        if ok:
            return field
    return None


def _columns_named(vals, found: tuple, arms_row) -> bool:
    """Whether a form's value columns are named by a row of texts (``Sample | drug | placebo``, a real
    per-study sheet's arms) with a row of figures in two or more columns below it."""
    def figure(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) or \
            isinstance(v, str) and v.strip()[:1].isdigit()

    rows = sorted(h[0] for h in found[2])
    c = found[0] + 1
    for r in range(rows[0], rows[-1]):
        if arms_row(vals, c, r) != r:
            continue
        below = [q for q in rows if q > r]
        if any(sum(figure(v) for v in vals[q, c:]) >= 2 for q in below):
            return True
    return False

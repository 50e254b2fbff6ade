"""The layout as data (what `curate map` writes and `--layout` reads back), and whether it fits a workbook."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import UnusableInputError
from ..findings import quote_sheet
from ..reading import WorkbookGrids, column_letter
from ..schema import ReviewSchema
from .cells import Kind, _cell_text
from .headers import _merged_fill_header, fold_header


# ---------------------------------------------------------------------------------------------
# The layout (what `curate map` writes)
# ---------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ColumnLayout(_Model):
    """One column: the fields it holds and in what form.

    ``parts`` maps a part of the cell to a field: ``value`` for a plain cell; ``value``/``low``/
    ``high`` for ``median (low-high)``; ``low``/``high`` for a CI column; ``count``/``percent`` for
    ``n (%)``; ``author``/``year``/``id``/``cohort`` for ``Author (year)``.
    """

    column: str
    header: str
    kind: Kind = "value"
    parts: dict[str, str]
    unit: str | None = None
    confidence: Literal["high", "medium", "low"] = "high"
    hidden: bool = False
    note: str | None = None
    row: int | None = None  # a form-style sheet (recordPer: sheet): the Excel row of the label and its value
    label: str | None = None  # ... and the column of the label


class IgnoredColumn(_Model):
    """A column not read: a header that matches no field, or a second column for a field."""

    header: str
    field: str | None = None
    reason: str | None = None


class BlockLayout(_Model):
    """A table of its own below the sheet's first one: a title row, a header row and the rows under it
    (layouts.md v2, stacked blocks). ``read: false`` leaves its rows unread (reported as a warning); a
    block is read only with a label value from its title (``labels``), so that two blocks are never pooled
    as one outcome."""

    title: str
    title_row: int = Field(alias="titleRow")
    header_row: int = Field(alias="headerRow")
    rows: list[int]
    read: bool = False
    labels: dict[str, str] = Field(default_factory=dict)


class FormTable(_Model):
    """A table kept inside a form-style sheet (layouts.md v2, shape 3): below the form's labels, or beside
    them, with its own header row (the first row of ``range``) and one record per row under it, for one
    contract sheet (``table``). Its rows name no study: each belongs to the study the form names (its
    first author and year, or the sheet's name: ``study: form``); a table that names its rows' studies in
    a column of its own says ``study: column``. Rows below ``range`` are not read (reported when they
    hold figures)."""

    table: str
    range: str
    header_row: int = Field(alias="headerRow")
    study: Literal["form", "column"] = "form"
    columns: list["ColumnLayout"]
    ignored: dict[str, IgnoredColumn] = Field(default_factory=dict)
    comment_rows: dict[int, str] = Field(default_factory=dict, alias="commentRows")


class BlockArea(_Model):
    """A block read as a table of its own (layouts.md v2, stacked or side-by-side blocks): the worksheet's cells
    in ``rows`` (first and last Excel row, its title's included) and ``columns`` (first and last letter), all
    else on the sheet blanked. ``join: true``: its records join, by their key, the records of the other blocks
    of the sheet that give other fields of the same contract sheet; ``false``: its records are its own (a
    block of the same fields as another, told apart by ``labels``, its title's label value). ``read: false``
    leaves it unread (a warning names it)."""

    title: str = ""
    title_row: int | None = Field(None, alias="titleRow")
    rows: list[int]
    columns: list[str]
    join: bool = False
    read: bool = True
    labels: dict[str, str] = Field(default_factory=dict)


class SheetLayout(_Model):
    """One worksheet: the contract sheets it holds, its header rows, columns and non-data rows."""

    sheet: str
    tables: list[str]
    header_rows: list[int] = Field(alias="headerRows")
    header_join: str = Field(" ", alias="headerJoin")
    comment_rows: dict[int, str] = Field(default_factory=dict, alias="commentRows")
    columns: list[ColumnLayout]
    ignored: dict[str, IgnoredColumn] = Field(default_factory=dict)
    derived: dict[str, str] = Field(default_factory=dict)
    by_name: bool = False
    labels: dict[int, dict[str, str]] = Field(default_factory=dict)
    blocks: list[BlockLayout] = Field(default_factory=list)
    name_labels: dict[str, str] = Field(default_factory=dict, alias="nameLabels")
    shape: Literal["wide", "long", "crosstab"] = "wide"
    across: dict[str, dict[str, str]] = Field(default_factory=dict)
    term_field: str | None = Field(None, alias="termField")
    total_field: str | None = Field(None, alias="totalField")
    record_per: Literal["row", "sheet", "column"] = Field("row", alias="recordPer")
    value_columns: list[str] = Field(default_factory=list, alias="valueColumns")
    outcome_column: str | None = Field(None, alias="outcomeColumn")
    roles: dict[str, str] = Field(default_factory=dict)
    outcomes: dict[str, dict[str, str]] = Field(default_factory=dict)
    form_tables: list[FormTable] = Field(default_factory=list, alias="formTables")
    block: BlockArea | None = None


class Layout(_Model):
    """Where one workbook keeps the schema's fields."""

    schema_name: str = Field(alias="schema")
    workbook: str
    sheets: list[SheetLayout]
    skipped: dict[str, str] = Field(default_factory=dict)
    empty: dict[str, str] = Field(default_factory=dict)
    cells: dict[str, dict[str, int]] = Field(default_factory=dict)
    choices: dict[str, str] | None = None  # sheets two structures explain about equally well: what chooses

    def to_yaml(self) -> str:
        """The layout as YAML, for a reviewer to read and correct."""
        import yaml

        data = self.model_dump(by_alias=True, exclude_none=True)
        head = (f"# Layout of {self.workbook} for schema {self.schema_name}, inferred by `curate map`.\n"
                "# Correct what is wrong and pass it back with --layout. Rows and columns are the workbook's own\n"
                "# (Excel row numbers, column letters). kind: value | median_ci | ci | count_pct | author_year |\n"
                "# number_unit; parts name the field each part of a cell goes to. commentRows are not data.\n"
                "# cells: each sheet's cell account when inferred (read, headers, non_data, not_read); informative.\n"
                "# block: one block of a sheet read as a table of its own (its rows and columns; join: true joins its\n"
                "# records by key with the sheet's other join blocks; labels: its title's value; read: false skips it).\n")
        doubts = self.doubts()
        if doubts:
            head += "# Least certain first (check these):\n" + "".join(f"#  - {d}\n" for d in doubts)
        return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)

    def doubts(self) -> list[str]:
        """What inference is least sure of, least certain first: blocks and outcomes not read, headings that
        give no value, low- then medium-confidence columns, sheets skipped."""
        out: list[str] = [f"{t}: {why}" for t, why in (self.choices or {}).items()]
        for sl in self.sheets:
            b = sl.block
            if b is not None and not b.read:
                out.append(f"{sl.sheet}: block {b.title!r} ({b.columns[0]}{b.rows[0]}:{b.columns[1]}{b.rows[1]}) is "
                           "not read: the same fields as another block, and its title names no value that tells them "
                           "apart (block: labels: {field: value}, read: true reads it)")
        for sl in self.sheets:
            b = sl.block
            if b is not None and b.read:
                how = ("joined by each record's key with the sheet's other joined blocks" if b.join else
                       ("its title a label: " + ", ".join(f"{f} = {v}" for f, v in b.labels.items())) if b.labels
                       else "a table of its own")
                out.append(f"{sl.sheet}: block {b.title!r} ({b.columns[0]}{b.rows[0]}:{b.columns[1]}{b.rows[1]}) -> "
                           f"{', '.join(sl.tables)}, {how}")
        for sl in self.sheets:
            for b in sl.blocks:
                if not b.read:
                    out.append(f"{sl.sheet}: block {b.title!r} (rows {b.rows[0]}-{b.rows[1]}) is not read "
                               "(blocks: read: true, labels: {field: value} reads it)")
            for text, spec in sl.outcomes.items():
                if not spec:
                    out.append(f"{sl.sheet}: outcome {text!r} names no outcome of the schema (outcomes: {text!r}: "
                               "{role: field} reads it)")
            for r, lv in sl.labels.items():
                if not lv:
                    out.append(f"{sl.sheet}: the heading in row {r} gives no value (labels: {r}: {{field: value}})")
        for level in ("low", "medium"):
            for sl in self.sheets:
                for c in sl.columns:
                    if c.confidence == level:
                        where = f"{c.column} {c.header!r}"
                        if c.label and c.row:  # a form's label: its own cell, then where its values are
                            where = f"{c.label}{c.row} {c.header!r} (values in " + (
                                f"row {c.row})" if sl.record_per == "column" else f"{c.column}{c.row})")
                        out.append(f"{sl.sheet}!{where} read as {c.kind} -> "
                                   f"{', '.join(dict.fromkeys(c.parts.values()))} ({level} confidence)")
        for sl in self.sheets:
            if sl.shape == "long":
                out.append(f"{sl.sheet}: long, "
                           + (f"outcomes named in column {sl.outcome_column}" if sl.outcome_column else
                              f"one outcome, named by the sheet's name: {', '.join(sl.outcomes)}") + ", roles "
                           + ", ".join(f"{k}={v}" for k, v in sl.roles.items()))
            for r, lv in sl.labels.items():
                if lv:
                    out.append(f"{sl.sheet}: row {r} is a label: " + ", ".join(f"{f} = {v}" for f, v in lv.items()))
            for ft in sl.form_tables:
                out.append(f"{sl.sheet}: {ft.range} is a table inside the form, read as {ft.table} (header row "
                           f"{ft.header_row}" + ("; each row the study the form names)" if ft.study == "form" else ")"))
            if sl.name_labels:
                out.append(f"{sl.sheet}: its name is a label: "
                           + ", ".join(f"{f} = {v}" for f, v in sl.name_labels.items()))
        out.extend(f"sheet {t!r} skipped: {why}" for t, why in self.skipped.items())
        return out


class LayoutSet(_Model):
    """The layouts of a folder of workbooks, one per study (``curate map FOLDER``): one layout per workbook,
    written as one YAML document each; ``--layout`` reads each workbook with the layout of its file name."""

    workbooks: list[Layout]

    @property
    def cells(self) -> dict[str, dict[str, dict[str, int]]]:
        """Each workbook's cell accounts (workbook -> sheet -> counts)."""
        return {lay.workbook: lay.cells for lay in self.workbooks}

    def to_yaml(self) -> str:
        """One YAML document per workbook (each a layout file of its own), in the folder's order."""
        head = (f"# Layouts of a folder of {len(self.workbooks)} workbooks, one YAML document per workbook;\n"
                "# `--layout` reads each workbook with the document whose `workbook:` is its file name.\n")
        return head + "---\n".join(lay.to_yaml() for lay in self.workbooks)

    def for_workbook(self, name: str | Path, source: str = "layout") -> Layout:
        """The layout of the workbook of this file name; exit 2 (one line) when the set has none."""
        key = Path(str(name)).name
        for lay in self.workbooks:
            if lay.workbook == key:
                return lay
        raise UnusableInputError(f"{source}: no layout for workbook {key!r} (the file has "
                                 f"{', '.join(lay.workbook for lay in self.workbooks)}): map the folder again with "
                                 "`curate map FOLDER -o LAYOUT.yaml`")


def load_layout(path: str | Path) -> Layout | LayoutSet:
    """Read a layout file (``curate map``'s YAML; a folder's: one document per workbook, a
    :class:`LayoutSet`); exit 2 with one line when it is not one."""
    import yaml
    from pydantic import ValidationError

    p = Path(path)
    try:
        docs = [d for d in yaml.safe_load_all(p.read_text(encoding="utf-8")) if d is not None]
        data = docs[0] if len(docs) == 1 else docs
    except FileNotFoundError:
        raise UnusableInputError(f"{path}: layout file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UnusableInputError(f"{path}: not a layout file ({str(exc).splitlines()[0][:120]})") from None
    try:
        if isinstance(data, list) and data:
            return LayoutSet(workbooks=[Layout.model_validate(d) for d in data])
        return Layout.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise UnusableInputError(f"{path}: not a valid layout ({where}: {err['msg']}); "
                                 "write one with `curate map FORM.xlsx -o LAYOUT.yaml`") from None


# ---------------------------------------------------------------------------------------------


def _col_index(letter: str) -> int:
    n = 0
    for ch in letter:
        n = n * 26 + (ord(ch.upper()) - 64)
    return n - 1


_KIND_PARTS = {"value": {"value"}, "median_ci": {"value", "low", "high"}, "ci": {"low", "high"},
               "count_pct": {"percent", "count"}, "author_year": {"author", "year", "id", "cohort"},
               "number_unit": {"value"}}


def _block_fits(sl: SheetLayout, grid, source: str):
    """The grid of a layout's block (its cells alone), after checking that the block lies in the sheet and that
    its title is still there."""
    from .blocks import area_grid

    b = sl.block
    n_rows, width = grid.shape
    if len(b.rows) != 2 or len(b.columns) != 2 or not 1 <= b.rows[0] <= b.rows[1] <= n_rows or \
            not 0 <= _col_index(b.columns[0]) <= _col_index(b.columns[1]) < width:
        raise UnusableInputError(f"{source}: block {b.title!r} of sheet {sl.sheet!r}: its rows {b.rows} and columns "
                                 f"{b.columns} must be [first, last] within the sheet ({n_rows} rows, "
                                 f"{width} columns); write a new layout with `curate map`")
    if b.title_row is not None:
        r = b.title_row - 1
        now = " ".join(_cell_text(v) for v in grid.values[r, _col_index(b.columns[0]):_col_index(b.columns[1]) + 1]
                       if _cell_text(v)) if 0 <= r < n_rows else ""
        if fold_header(now) != fold_header(b.title):
            raise UnusableInputError(f"{source}: the title of block {b.title!r} of sheet {sl.sheet!r} changed: "
                                     f"row {b.title_row} now has {now!r}; correct the layout or write a new one "
                                     "with `curate map`")
    return area_grid(grid, b)


def check_fits(layout: Layout, grids: WorkbookGrids, source: str = "layout", schema: ReviewSchema | None = None) -> None:
    """Refuse (exit 2, one line) a layout that does not fit this workbook (or this schema)."""
    by_title = {g.title: g for g in grids.sheets}
    if schema is not None:
        for sl in layout.sheets:
            for t in sl.tables:
                if t not in schema.sheets:
                    raise UnusableInputError(f"{source}: sheet {sl.sheet!r} holds {t!r}, which schema {schema.name!r} "
                                             f"does not have (its sheets: {', '.join(schema.sheets)})")
            for col in sl.columns:
                bad = set(col.parts) - _KIND_PARTS[col.kind]
                if bad or not col.parts:
                    raise UnusableInputError(f"{source}: column {col.column} of sheet {sl.sheet!r} is of kind "
                                             f"{col.kind!r}, whose parts are {', '.join(sorted(_KIND_PARTS[col.kind]))} "
                                             f"(not {', '.join(sorted(bad)) or 'none'})")
                for part, f in col.parts.items():
                    if part in ("id", "cohort", "author", "year"):
                        continue
                    if f in ("first_author", "year") and any("study_id" in schema.sheets[t].fields for t in sl.tables):
                        continue  # a study's first author and year naming the rows of a sheet below it (its identity)
                    if not any(f in schema.sheets[t].fields for t in sl.tables):
                        raise UnusableInputError(f"{source}: column {col.column} of sheet {sl.sheet!r} names field {f!r}, "
                                                 f"which no sheet it holds ({', '.join(sl.tables)}) has in schema "
                                                 f"{schema.name!r}")
    for sl in layout.sheets:
        grid = by_title.get(sl.sheet)
        if grid is None:
            raise UnusableInputError(f"{source}: sheet {sl.sheet!r} is not in {grids.file} (its sheets: "
                                     f"{', '.join(repr(t) for t in grids.titles)}); write a new layout with `curate map`")
        if sl.block is not None:
            grid = _block_fits(sl, grid, source)
        n_rows, width = grid.shape
        rows0 = [r - 1 for r in sl.header_rows]
        if any(r < 0 or r >= n_rows for r in rows0):
            raise UnusableInputError(f"{source}: header row(s) {sl.header_rows} of sheet {sl.sheet!r} are past its "
                                     f"last row ({n_rows}); write a new layout with `curate map`")
        texts = _merged_fill_header(grid, rows0)
        for col in sl.columns:
            c = _col_index(col.column)
            if c >= width:
                raise UnusableInputError(f"{source}: column {col.column} of sheet {sl.sheet!r} ({col.header!r}) is past "
                                         f"the sheet's last column ({column_letter(width - 1)}); write a new layout "
                                         "with `curate map`")
            now = " ".join(dict.fromkeys(t[c] for t in texts if t[c]))
            if col.row is not None:  # a form-style sheet: the label beside the value
                lab = _col_index(col.label) if col.label else c - 1
                now = _cell_text(grid.values[col.row - 1, lab]) if col.row - 1 < n_rows and 0 <= lab < width else ""
            if fold_header(now) != fold_header(col.header):
                raise UnusableInputError(f"{source}: the header of {quote_sheet(sl.sheet)}!{col.column} changed: the "
                                         f"layout says {col.header!r}, the workbook has {now!r}; correct the layout or "
                                         "write a new one with `curate map`")
        if sl.shape == "long":
            from .long import ROLES

            if sl.outcome_column is None and len(sl.outcomes) != 1:
                raise UnusableInputError(f"{source}: sheet {sl.sheet!r} is long but has no outcomeColumn and "
                                         f"{len(sl.outcomes)} outcomes: a sheet of one outcome (its name names it) "
                                         "gives exactly one under outcomes; write a new layout with `curate map`")
            if sl.outcome_column is not None and _col_index(sl.outcome_column) >= width:
                raise UnusableInputError(f"{source}: sheet {sl.sheet!r} is long but its outcomeColumn "
                                         f"{sl.outcome_column!r} is not a column of it; write a new layout with "
                                         "`curate map`")
            for letter, role in sl.roles.items():
                c = _col_index(letter)
                now = " ".join(dict.fromkeys(t[c] for t in texts if c < len(t) and t[c])) if c < width else ""
                if role not in ROLES:
                    raise UnusableInputError(f"{source}: role {role!r} of {quote_sheet(sl.sheet)}!{letter} is not one "
                                             f"of {', '.join(ROLES)}")
                if c >= width or not now:
                    raise UnusableInputError(f"{source}: role column {quote_sheet(sl.sheet)}!{letter} ({role}) is "
                                             "empty or past the sheet's last column; correct the layout or write a "
                                             "new one with `curate map`")
        if sl.form_tables:
            from .formtables import check_form_tables

            check_form_tables(sl, grid, source, schema)
        for b in sl.blocks:
            if not (sl.header_rows[-1] < b.title_row < b.header_row <= n_rows):
                raise UnusableInputError(f"{source}: block {b.title!r} of sheet {sl.sheet!r}: its titleRow "
                                         f"{b.title_row} and headerRow {b.header_row} must lie below the header "
                                         f"(row {sl.header_rows[-1]}) and within the sheet ({n_rows} rows)")
            now = " ".join(_cell_text(v) for v in grid.values[b.title_row - 1] if _cell_text(v))
            if fold_header(now) != fold_header(b.title):
                raise UnusableInputError(f"{source}: the title of block {b.title!r} of sheet {sl.sheet!r} changed: "
                                         f"row {b.title_row} now has {now!r}; correct the layout or write a new one "
                                         "with `curate map`")

"""Reading workbooks: every sheet as a grid of cells with provenance.

This is the first stage. :func:`read_grids` checks the file (:mod:`curation.safety`), then reads
every worksheet's values with python-calamine (fast, read-only) into a grid, with what the layout
stage needs to know about the cells: merged areas, hidden rows and columns, formula cells (and
those without a saved value) and percent-formatted cells (0.876 shown as 87.6%). openpyxl is opened
only when the workbook has formulas or percent formats. Where the contract's fields are on those
sheets is the next stage's question (:mod:`curation.layout`).

Reading never raises for bad *data*; it raises :class:`UnusableInputError` only for a file that is
not a readable workbook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnusableInputError
from .findings import Finding
from .schema import fold


def column_letter(index: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def sheet_key(name: str) -> str:
    """Sheet names match ignoring case, spaces, hyphens and underscores."""
    return re.sub(r"[\s_\-]+", "", fold(name))


def header_key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", fold(name))


@dataclass(frozen=True)
class RawSheet:
    """One contract sheet of one workbook, as typed.

    Attributes
    ----------
    file : str
        The form's path as given.
    sheet : str
        The contract sheet name (schema key).
    title : str
        The sheet's title in the workbook.
    header_row : int
        Excel row number of the header.
    columns : dict[str, str]
        Field key -> column letter.
    extra_columns : dict[str, str]
        Headers that match no field -> column letter (kept, reported as info).
    rows : list[int]
        Excel row numbers of the data rows (non-empty rows below the header).
    values : dict[str, numpy.ndarray]
        Field key -> raw values (object array), one per data row (None for an empty cell).
    extra_values : dict[str, list]
        Unknown header -> raw values.
    percent_cells : dict[str, frozenset[int]]
        Field key -> positions of cells formatted as a percentage.
    units : dict[str, numpy.ndarray]
        Field key -> the unit each cell states itself (``95 wk``, or its column's header ``OS (mo)``),
        None where it states none.
    """

    file: str
    sheet: str
    title: str
    header_row: int
    columns: dict[str, str]
    extra_columns: dict[str, str]
    rows: list[int]
    values: dict[str, list]
    extra_values: dict[str, list] = field(default_factory=dict)
    percent_cells: dict[str, frozenset] = field(default_factory=dict)
    units: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RawWorkbook:
    """A form as read: its contract sheets and the findings reading made."""

    file: str
    sheets: dict[str, RawSheet]
    findings: tuple[Finding, ...]
    sheet_titles: dict[str, str]


@dataclass(frozen=True, eq=False)
class SheetGrid:
    """One worksheet as read.

    Attributes
    ----------
    title : str
        The sheet's name in the workbook.
    values : numpy.ndarray
        Object array (rows x columns) of cell values as calamine gives them ("" for empty),
        row 0 being Excel row 1 and column 0 column A.
    merged : tuple
        Merged areas as ``((row0, col0), (row1, col1))``, 0-based and inclusive.
    hidden_rows : frozenset of int
        Excel row numbers (1-based) of hidden rows.
    hidden_columns : frozenset of int
        0-based indices of hidden columns.
    formula_cells : frozenset of tuple
        ``(excel_row, col0)`` of cells holding a formula.
    percent_cells : frozenset of tuple
        ``(excel_row, col0)`` of number cells formatted as a percentage.
    state : str
        ``visible``, ``hidden`` or ``veryHidden``.
    """

    title: str
    values: Any
    merged: tuple = ()
    hidden_rows: frozenset = frozenset()
    hidden_columns: frozenset = frozenset()
    formula_cells: frozenset = frozenset()
    percent_cells: frozenset = frozenset()
    state: str = "visible"

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape


@dataclass(frozen=True, eq=False)
class WorkbookGrids:
    """A workbook as read: its worksheets, in workbook order."""

    file: str
    sheets: tuple[SheetGrid, ...]

    @property
    def titles(self) -> list[str]:
        return [s.title for s in self.sheets]


def _openpyxl_cells(path: Any, titles: list[str], need_formulas: bool, need_percent: bool):
    """One openpyxl pass: formula cells and percent-formatted number cells of each sheet."""
    import openpyxl

    import warnings

    out: dict[str, tuple[set, set]] = {}
    with warnings.catch_warnings():  # "Data Validation extension is not supported": openpyxl's, not the reviewer's
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        return _openpyxl_pass(openpyxl.load_workbook(path, read_only=True, data_only=False, keep_links=False),
                              titles, need_formulas, need_percent, out)


def _openpyxl_pass(wb: Any, titles: list[str], need_formulas: bool, need_percent: bool,
                   out: dict[str, tuple[set, set]]) -> dict[str, tuple[set, set]]:
    try:
        for title in titles:
            ws = wb[title]
            formulas: set = set()
            percent: set = set()
            for row in ws.iter_rows():
                for cell in row:
                    v = getattr(cell, "value", None)
                    if v is None:
                        continue
                    if need_formulas and isinstance(v, str) and v.startswith("="):
                        formulas.add((cell.row, cell.column - 1))
                    elif need_percent and isinstance(v, (int, float)) and "%" in (cell.number_format or ""):
                        percent.add((cell.row, cell.column - 1))
            out[title] = (formulas, percent)
    finally:
        wb.close()
    return out


def read_grids(path: str | Path, *, display_name: str | None = None, limits: Any = None,
               data: bytes | None = None) -> WorkbookGrids:
    """Read every worksheet of a workbook into a grid (values, merged areas, hidden rows and columns,
    formula and percent-formatted cells).

    Parameters
    ----------
    path : str or Path
        The ``.xlsx`` workbook. It is opened read-only and never written to.
    display_name : str, optional
        The name findings use for the file (default: the path as given).
    limits : curation.safety.Limits, optional
        Size limits checked before parsing (default: :class:`curation.safety.Limits`).
    data : bytes, optional
        The workbook's bytes, read once beforehand (a snapshot): everything is read from these and
        the file at ``path`` is not opened.

    Raises
    ------
    UnusableInputError
        Not a readable workbook (see :func:`curation.safety.check_workbook`).
    """
    from python_calamine import CalamineWorkbook

    from .safety import Limits, check_workbook

    path = Path(path)
    name = display_name or str(path)
    info = check_workbook(path, limits if limits is not None else Limits(), data=data)
    try:
        if data is not None:
            import io

            wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        else:
            wb = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types
        raise UnusableInputError(f"{name}: cannot be read as an .xlsx workbook ({str(exc).splitlines()[0][:160]}); "
                                 "open it in Excel and save it again as .xlsx") from None
    declared = {s.name: s for s in info.sheets}
    states = {}
    try:
        states = {m.name: str(getattr(m.visible, "name", m.visible)) for m in wb.sheets_metadata}
    except Exception:  # noqa: BLE001 - older calamine: every sheet visible
        pass
    sheets: list[SheetGrid] = []
    for title in wb.sheet_names:
        si = declared.get(title)
        if si is not None and si.kind != "worksheet":
            continue
        try:
            ws = wb.get_sheet_by_name(title)
            grid = ws.to_python(skip_empty_area=False)
            merged = tuple(ws.merged_cell_ranges or ())
        except Exception as exc:
            raise UnusableInputError(f"{name}: sheet {title!r} cannot be read ({str(exc).splitlines()[0][:160]})") from None
        # merged areas may reach below or right of the last value: extend the grid so they can be filled
        last = max([r1 for (_r0, _c0), (r1, _c1) in merged] + [len(grid) - 1])
        width = max([len(r) for r in grid] + [c1 + 1 for (_r0, _c0), (_r1, c1) in merged] + [0])
        while len(grid) <= last:
            grid.append([""] * width)
        if any(len(r) != width for r in grid):
            grid = [list(r) + [""] * (width - len(r)) for r in grid]
        arr = np.empty((len(grid), width), dtype=object)
        if len(grid) and width:
            arr[:, :] = grid
        state = (si.state if si is not None else states.get(title, "visible")) or "visible"
        sheets.append(SheetGrid(
            title=title, values=arr, merged=merged,
            hidden_rows=si.hidden_rows if si is not None else frozenset(),
            hidden_columns=frozenset(c - 1 for c in si.hidden_columns) if si is not None else frozenset(),
            state=state.lower() if state.lower() in ("hidden", "veryhidden") else "visible"))
    wb.close()
    need_formulas = bool(getattr(info, "has_formulas", True))
    need_percent = bool(getattr(info, "has_percent_formats", True))
    if (need_formulas or need_percent) and sheets:
        try:
            import io

            source = io.BytesIO(data) if data is not None else path
            extras = _openpyxl_cells(source, [s.title for s in sheets], need_formulas, need_percent)
        except Exception as exc:
            raise UnusableInputError(f"{name}: cannot be read ({type(exc).__name__}: {str(exc)[:160]})") from None
        sheets = [SheetGrid(**{**g.__dict__, "formula_cells": frozenset(extras.get(g.title, ((), ()))[0]),
                               "percent_cells": frozenset(extras.get(g.title, ((), ()))[1])}) for g in sheets]
    return WorkbookGrids(file=name, sheets=tuple(sheets))


def recorded_schema(path: str | Path) -> str | None:
    """The schema a form was made for, as ``curate template`` records it (None when it records none).

    Read from the workbook's custom document properties (``docProps/custom.xml``, property
    ``curation_schema``) with a size limit and defusedxml; any file that is not such a workbook
    gives None (reading it properly reports what is wrong).
    """
    import zipfile

    import defusedxml.ElementTree as DET

    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("docProps/custom.xml")
            if info.file_size > 256 * 1024:
                return None
            root = DET.fromstring(zf.read(info))
    except Exception:  # noqa: BLE001 - not a workbook, no custom properties, malformed XML
        return None
    for prop in root:
        if prop.get("name") == "curation_schema":
            for child in prop:
                text = (child.text or "").strip()
                if text and len(text) <= 200:
                    return text
    return None

"""Reading workbooks: every sheet as a grid of cells with provenance.

This is the first stage. :func:`read_grids` checks the file (:mod:`curation.safety`), then reads
every worksheet's values with python-calamine (fast, read-only) into a grid, with what the layout
stage needs to know about the cells: merged areas, hidden rows and columns, formula cells (and
those without a saved value) and percent-formatted cells (0.876 shown as 87.6%). openpyxl is opened
only when the workbook has formulas or percent formats. Where the contract's fields are on those
sheets is the next stage's question (:mod:`curation.layout`).

The format is the file's name (its content must match it): ``.xlsx``/``.xlsm`` as above; ``.xls``
and ``.xlsb`` through calamine alone (merged areas as calamine gives them; hidden rows and columns,
formulas and percent formats are not available, which the grids' ``findings`` say once); ``.ods``
through calamine, with merged areas, hidden rows and columns, formula and percent cells read from the
file's ``content.xml``; ``.csv``/``.tsv`` as one sheet named after the file, the encoding detected
(a byte-order mark, else UTF-8, else charset-normalizer) and the dialect detected by clevercsv
(:func:`read_text_table`).

Reading never raises for bad *data*; it raises :class:`UnusableInputError` only for a file that is
not a readable workbook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
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
    cell_rows: dict[str, Any] = field(default_factory=dict)  # field -> Excel row of each record's cell, where a
    # record is bound from several rows (a long sheet's outcome rows); absent: the record's own row
    cell_letters: dict[str, Any] = field(default_factory=dict)  # field -> column letter of each record's cell,
    # where it is not the field's one column (a cross-tab's study columns); None: ``columns[field]``
    row_titles: Any = None  # the worksheet of each record, where one contract sheet is read from several
    # worksheets (one sheet per subgroup); None: every record is in ``title``
    cell_titles: dict[str, Any] = field(default_factory=dict)  # field -> the worksheet of each record's cell,
    # where one record joins cells of several worksheets (one sheet per outcome); None: the record's worksheet


@dataclass(frozen=True)
class RawWorkbook:
    """A form as read: its contract sheets and the findings reading made."""

    file: str
    sheets: dict[str, RawSheet]
    findings: tuple[Finding, ...]
    sheet_titles: dict[str, str]
    cell_accounts: tuple = ()  # one curation.layout.account.CellAccount per sheet, in workbook order


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

    @cached_property
    def text_cells(self) -> np.ndarray:
        """Which cells hold text (a ``str``; calamine's empty cells are ``""``), as a bool array the grid's
        shape: computed once per grid, the steps that classify cells share it (``values`` is never written)."""
        return text_mask(self.values)

    @cached_property
    def filled(self) -> np.ndarray:
        """Which cells hold something (text of spaces only is empty), as a bool array the grid's shape:
        computed once per grid (see :func:`filled_mask`)."""
        return filled_mask(self.values, self.text_cells)


def text_mask(values: np.ndarray) -> np.ndarray:
    """``type(v) is str`` for each cell of an object array (one C-level pass)."""
    if values.dtype != object:
        return np.full(values.shape, values.dtype.kind == "U", dtype=bool)
    flat = values.ravel()
    if not flat.size:
        return np.zeros(values.shape, bool)
    return (np.fromiter(map(type, flat), dtype=object, count=flat.size) == str).reshape(values.shape)


def filled_mask(values: np.ndarray, is_text: np.ndarray | None = None) -> np.ndarray:
    """Cells holding something: not None, not ``""`` and not a text of spaces only (NaN counts as filled,
    as it always has). Vectorised: one pass over the types, one ``str.strip`` pass over the text cells."""
    if values.size == 0:
        return np.zeros(values.shape, bool)
    if values.dtype != object:
        return (values != "") & (values != None)  # noqa: E711 - elementwise
    if is_text is None:
        is_text = text_mask(values)
    flat = values.ravel()
    out = np.asarray(flat != None, dtype=bool)  # noqa: E711 - elementwise; None is the only value equal to None here
    t = is_text.ravel()
    if t.any():
        texts = flat[t]
        out[t] = np.fromiter(map(str.strip, texts), dtype=object, count=len(texts)).astype(bool)
    return out.reshape(values.shape)


@dataclass(frozen=True, eq=False)
class WorkbookGrids:
    """A workbook as read: its worksheets, in workbook order.

    ``findings``: what reading itself has to say (the encoding a CSV was read in, what a format does
    not record, such as hidden rows in an .xls); ``format``: ``xlsx``, ``xls``, ``xlsb``, ``ods``,
    ``csv``.
    """

    file: str
    sheets: tuple[SheetGrid, ...]
    findings: tuple[Finding, ...] = ()
    format: str = "xlsx"

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


#: A form's file format by its name: spreadsheet formats calamine reads, and text tables.
FORMATS = {".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls", ".xlsb": "xlsb", ".ods": "ods",
           ".csv": "csv", ".tsv": "csv"}
#: The file names a folder of forms is expanded to.
FORM_SUFFIXES = tuple(FORMATS)


def form_format(path: str | Path) -> str:
    """The format a form is read in, from its name (``xlsx`` for any other name: the .xlsx check then
    says what the file really is)."""
    return FORMATS.get(Path(path).suffix.lower(), "xlsx")


def _grid_array(grid: list[list[Any]], width: int) -> np.ndarray:
    if any(len(r) != width for r in grid):
        grid = [list(r) + [""] * (width - len(r)) for r in grid]
    arr = np.empty((len(grid), width), dtype=object)
    if len(grid) and width:
        arr[:, :] = grid
    return arr


def _check_size(name: str, title: str, rows: int, cols: int, limits: Any) -> None:
    if rows > limits.max_rows or cols > limits.max_columns or rows * cols > limits.max_cells:
        raise UnusableInputError(
            f"{name}: sheet {title!r} spans {rows:,} rows x {cols:,} columns, above the limits "
            f"({limits.max_rows:,} rows, {limits.max_columns:,} columns, {limits.max_cells:,} cells): "
            "delete the unused rows and columns and save it again")


def read_grids(path: str | Path, *, display_name: str | None = None, limits: Any = None,
               data: bytes | None = None) -> WorkbookGrids:
    """Read every worksheet of a workbook into a grid (values, merged areas, hidden rows and columns,
    formula and percent-formatted cells).

    Parameters
    ----------
    path : str or Path
        The form: ``.xlsx``/``.xlsm``, ``.xls``, ``.xlsb``, ``.ods``, ``.csv`` or ``.tsv`` (the name
        says the format; the content must match it). It is opened read-only and never written to.
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
    from .safety import Limits

    fmt = form_format(path)
    limits = limits if limits is not None else Limits()
    if fmt == "csv":
        return read_text_table(path, display_name=display_name, limits=limits, data=data)
    if fmt != "xlsx":
        return _read_other(path, fmt, display_name=display_name, limits=limits, data=data)
    return _read_xlsx(path, display_name=display_name, limits=limits, data=data)


def _read_xlsx(path: str | Path, *, display_name: str | None, limits: Any, data: bytes | None) -> WorkbookGrids:
    """An .xlsx/.xlsm workbook: checked (:func:`curation.safety.check_workbook`), read by calamine, with
    openpyxl's formula and percent cells."""
    from python_calamine import CalamineWorkbook

    from .safety import check_workbook

    path = Path(path)
    name = display_name or str(path)
    info = check_workbook(path, limits, data=data)
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
        arr = _grid_array(grid, width)
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
        sheets = [replace(g, formula_cells=frozenset(extras.get(g.title, ((), ()))[0]),
                          percent_cells=frozenset(extras.get(g.title, ((), ()))[1])) for g in sheets]
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


# ---------------------------------------------------------------------------------------------
# .xls, .xlsb, .ods: calamine (and, for .ods, its content.xml for what calamine does not give)
# ---------------------------------------------------------------------------------------------

_FORMAT_NAMES = {"xls": "legacy Excel workbook (.xls)", "xlsb": "Excel binary workbook (.xlsb)",
                 "ods": "OpenDocument spreadsheet (.ods)"}
_ARTICLE = {"xls": "a", "xlsb": "an", "ods": "an"}


def _note(file: str, rule: str, severity: str, message: str, sheet: str | None = None) -> Finding:
    return Finding(file, sheet, None, None, None, None, rule, severity, message)


def _read_other(path: str | Path, fmt: str, *, display_name: str | None, limits: Any,
                data: bytes | None) -> WorkbookGrids:
    """An .xls, .xlsb or .ods form: checked (:func:`curation.safety.check_other`), read by calamine."""
    import io

    from python_calamine import CalamineWorkbook

    from .safety import check_other

    path = Path(path)
    name = display_name or str(path)
    data = check_other(path, fmt, limits, data=data)
    extras: dict[str, _OdsSheet] = {}
    if fmt == "ods":
        extras = _ods_sheets(data, name, limits)
    elif fmt == "xls":
        extras = _xls_sheets(data, name)
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # calamine raises its own error types
        raise UnusableInputError(f"{name}: cannot be read as {_ARTICLE[fmt]} {_FORMAT_NAMES[fmt]} ({str(exc).splitlines()[0][:160]}); "
                                 "open it and save it again (or as .xlsx)") from None
    states: dict[str, str] = {}
    kinds: dict[str, str] = {}
    try:
        for m in wb.sheets_metadata:
            states[m.name] = str(getattr(m.visible, "name", m.visible)).lower()
            kinds[m.name] = str(getattr(m.typ, "name", m.typ)).lower()
    except Exception:  # noqa: BLE001 - older calamine: every sheet a visible worksheet
        pass
    sheets: list[SheetGrid] = []
    for title in wb.sheet_names:
        if kinds.get(title, "worksheet") not in ("worksheet", "sheettypeenum.worksheet"):
            continue
        try:
            ws = wb.get_sheet_by_name(title)
            _check_size(name, title, ws.height, ws.width, limits)
            grid = ws.to_python(skip_empty_area=False)
            merged = tuple(getattr(ws, "merged_cell_ranges", None) or ())
        except UnusableInputError:
            raise
        except Exception as exc:
            raise UnusableInputError(f"{name}: sheet {title!r} cannot be read ({str(exc).splitlines()[0][:160]})") from None
        extra = extras.get(title)
        if extra is not None:
            merged = extra.merged
        last = max([r1 for (_r0, _c0), (r1, _c1) in merged] + [len(grid) - 1])
        width = max([len(r) for r in grid] + [c1 + 1 for (_r0, _c0), (_r1, c1) in merged] + [0])
        while len(grid) <= last:
            grid.append([""] * width)
        state = states.get(title, "visible")
        sheets.append(SheetGrid(
            title=title, values=_grid_array(grid, width), merged=merged,
            hidden_rows=extra.hidden_rows if extra else frozenset(),
            hidden_columns=extra.hidden_columns if extra else frozenset(),
            formula_cells=extra.formula_cells if extra else frozenset(),
            percent_cells=extra.percent_cells if extra else frozenset(),
            state=("veryhidden" if "very" in state else "hidden" if "hidden" in state else "visible")))
    wb.close()
    notes: list[Finding] = []
    if fmt == "xlsb":
        notes.append(_note(name, "format-unread", "warning",
                           f"{name} is an {_FORMAT_NAMES[fmt]}: its merged cells, hidden rows and columns, formulas "
                           "and percent formats cannot be read from this format (a percentage shown as 87.6% but "
                           "stored as 0.876 is read as 0.876; a hidden row or helper column is read like any other); "
                           "check those values, or save the workbook as .xlsx to have them read"))
    elif fmt == "xls":
        notes.append(_note(name, "format-note", "info",
                           f"{name} is a {_FORMAT_NAMES[fmt]}: its merged cells, hidden rows and columns and percent "
                           "formats are read, its formulas are not (a column computed by formulas is read like a "
                           "typed one)"))
    return WorkbookGrids(file=name, sheets=tuple(sheets), findings=tuple(notes), format=fmt)


@dataclass(frozen=True)
class _OdsSheet:
    """What an .ods sheet's content.xml says that calamine does not give."""

    merged: tuple = ()
    hidden_rows: frozenset = frozenset()
    hidden_columns: frozenset = frozenset()
    formula_cells: frozenset = frozenset()
    percent_cells: frozenset = frozenset()


_ODS_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_ODS_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"


def _ods_sheets(data: bytes, name: str, limits: Any) -> dict[str, _OdsSheet]:
    """Merged areas, hidden rows and columns, formula and percent cells of every sheet of an .ods.

    Streams ``content.xml`` (defusedxml, no DTD) once, counting repeated rows and columns
    (``table:number-rows-repeated``) the way calamine lays them out; a sheet whose filled cells reach
    beyond the size limits is refused here, before calamine would lay it out.
    """
    import io
    import zipfile

    import defusedxml.ElementTree as DET

    T, O = "{%s}" % _ODS_TABLE, "{%s}" % _ODS_OFFICE
    out: dict[str, _OdsSheet] = {}

    def rep(el: Any, attr: str) -> int:
        try:
            return max(1, int(el.get(T + attr, "1")))
        except ValueError:
            return 1

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf, zf.open("content.xml") as fh:
            title = None
            row = col = 0
            hcols: set = set()
            hrows: set = set()
            merged: list = []
            formulas: set = set()
            percent: set = set()
            last_row = last_col = 0
            col_defs = 0
            hidden_runs = []
            row_filled = False
            for event, el in DET.iterparse(fh, events=("start", "end"), forbid_dtd=True):
                tag = el.tag
                if event == "start":
                    if tag == T + "table":
                        title = el.get(T + "name") or ""
                        row = col = col_defs = last_row = last_col = 0
                        hcols, hrows, merged, formulas, percent = set(), set(), [], set(), set()
                        hidden_runs: list = []
                        row_filled = False
                    elif tag == T + "table-row":
                        col = 0
                    continue
                if title is None:
                    continue
                if tag == T + "table-column":
                    n = rep(el, "number-columns-repeated")
                    if el.get(T + "visibility", "visible") != "visible":
                        hcols.update(range(col_defs, min(col_defs + n, limits.max_columns + 1)))
                    col_defs += n
                elif tag in (T + "table-cell", T + "covered-table-cell"):
                    n = rep(el, "number-columns-repeated")
                    filled = el.get(O + "value-type") is not None or any(t.strip() for t in el.itertext())
                    if filled and tag == T + "table-cell":
                        row_filled = True
                        last_col = max(last_col, col + n)
                        if last_col > limits.max_columns:
                            _check_size(name, title, row + 1, last_col, limits)
                        for c in range(col, col + n):
                            if el.get(T + "formula") is not None:
                                formulas.add((row + 1, c))
                            if el.get(O + "value-type") == "percentage":
                                percent.add((row + 1, c))
                    if tag == T + "table-cell":
                        rs, cs = rep(el, "number-rows-spanned"), rep(el, "number-columns-spanned")
                        if rs > 1 or cs > 1:
                            merged.append(((row, col), (row + rs - 1, col + cs - 1)))
                    col += n
                    el.clear()
                elif tag == T + "table-row":
                    n = rep(el, "number-rows-repeated")
                    if row_filled:
                        last_row = row + n
                        _check_size(name, title, last_row, last_col, limits)
                        if n > 1:  # a repeated filled row: every repeat has the same formula/percent cells
                            firsts = [c for (r, c) in formulas if r == row + 1]
                            formulas.update((r, c) for r in range(row + 2, row + n + 1) for c in firsts)
                            firsts = [c for (r, c) in percent if r == row + 1]
                            percent.update((r, c) for r in range(row + 2, row + n + 1) for c in firsts)
                    if el.get(T + "visibility", "visible") != "visible":
                        hidden_runs.append((row + 1, n))
                    row += n
                    row_filled = False
                    el.clear()
                elif tag == T + "table":
                    for start, n in hidden_runs:
                        hrows.update(range(start, min(start + n - 1, last_row) + 1))
                    out[title] = _OdsSheet(tuple(m for m in merged if m[0][0] < last_row and m[0][1] < last_col),
                                           frozenset(hrows), frozenset(c for c in hcols if c < last_col),
                                           frozenset(formulas), frozenset(percent))
                    title = None
                    el.clear()
    except UnusableInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed XML, a DTD, a damaged member
        raise UnusableInputError(f"{name}: is damaged or not a readable OpenDocument spreadsheet "
                                 f"({type(exc).__name__}: {str(exc)[:120]}): open it and save it again") from None
    return out


def _xls_sheets(data: bytes, name: str) -> dict[str, _OdsSheet]:
    """Merged areas, hidden rows and columns and percent-formatted number cells of an .xls (xlrd, which
    reads the legacy format's formatting records; its values come from calamine)."""
    import xlrd

    out: dict[str, _OdsSheet] = {}
    try:
        book = xlrd.open_workbook(file_contents=data, formatting_info=True, on_demand=True,
                                  logfile=_Silent(), verbosity=0)
    except Exception as exc:  # noqa: BLE001 - xlrd's own error types
        raise UnusableInputError(f"{name}: cannot be read as a legacy Excel workbook (.xls) "
                                 f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}); "
                                 "open it and save it again (or as .xlsx)") from None
    try:
        percent_xf = {i for i, xf in enumerate(book.xf_list)
                      if "%" in re.sub(r'"[^"]*"|\\.', "", getattr(book.format_map.get(xf.format_key), "format_str", ""))}
        for k in range(book.nsheets):
            sh = book.get_sheet(k)
            merged = tuple(((r0, c0), (r1 - 1, c1 - 1)) for r0, r1, c0, c1 in sh.merged_cells if r1 - r0 > 0 and c1 - c0 > 0
                           and (r1 - r0 > 1 or c1 - c0 > 1))
            hrows = frozenset(r + 1 for r, info in sh.rowinfo_map.items() if getattr(info, "hidden", 0) and r < sh.nrows)
            hcols = frozenset(c for c, info in sh.colinfo_map.items() if getattr(info, "hidden", 0) and c < sh.ncols)
            percent = set()
            if percent_xf:
                for r in range(sh.nrows):
                    for c, t in enumerate(sh.row_types(r)):
                        if t == xlrd.XL_CELL_NUMBER and sh.cell_xf_index(r, c) in percent_xf:
                            percent.add((r + 1, c))
            out[sh.name] = _OdsSheet(merged, hrows, hcols, frozenset(), frozenset(percent))
            book.unload_sheet(k)
    finally:
        book.release_resources()
    return out


class _Silent:
    """A log file that keeps nothing (xlrd writes its warnings to one)."""

    def write(self, *_a: Any) -> None:
        return None


# ---------------------------------------------------------------------------------------------
# .csv / .tsv: one sheet named after the file
# ---------------------------------------------------------------------------------------------

_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?|-?\.\d+")
_DELIMITERS = [",", ";", "\t", "|"]
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
#: Single-byte encodings of spreadsheet programs' CSV exports that decode the same bytes differently:
#: when the detected encoding and one of these read the file's text differently, that is said.
_RIVALS = ("cp1252", "cp1250", "mac_roman")


def _decode(raw: bytes, name: str) -> tuple[str, str, str | None]:
    """The text of a CSV file, the encoding it was read in and, when the encoding was detected rather than
    marked or UTF-8, what a reviewer should know (None otherwise).

    A byte-order mark decides (UTF-8, UTF-16, UTF-32); else strict UTF-8; else charset-normalizer's best
    match. A file no encoding explains is refused: nothing is guessed.
    """
    import codecs

    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
                     (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(enc), enc, None
            except UnicodeDecodeError as exc:
                raise UnusableInputError(f"{name}: starts with a {enc.upper()} byte-order mark but is not valid "
                                         f"{enc.upper()} at byte {exc.start:,}: save it again as CSV UTF-8") from None
    try:
        return raw.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(raw, threshold=0.1))
    guess = None
    if matches:
        top = (matches[0].chaos, -matches[0].coherence)
        tied = [m for m in matches if (m.chaos, -m.coherence) == top]
        # equally good readings: cp1252, the encoding Excel saves CSV in on Western systems, when it is one
        guess = "cp1252" if any("cp1252" in m.could_be_from_charset for m in tied) else matches[0].encoding
    # the detector's guess and the spreadsheet programs' own encodings, each read in full; where the guess
    # misreads (a letter glued to numbers, a graphic sign), the reading that looks most like a table's text
    # wins: cp1252's en dash in '14,6 (12,4–16,9)' over cp850's '14,6 (12,4û16,9)'
    readings: dict[str, str] = {}
    for enc in dict.fromkeys([e for e in (guess, *_RIVALS) if e]):
        try:
            readings[enc] = raw.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    if guess not in readings or "\x00" in readings.get(guess, ""):
        raise UnusableInputError(f"{name}: its text encoding cannot be recognised (it is not UTF-8, and no other "
                                 "encoding reads it cleanly): save it again as CSV UTF-8")
    score = {enc: _table_text_score(t) for enc, t in readings.items()}
    encoding = guess
    if score[guess] < 0:  # the guess misreads something (a letter glued to numbers): a better reading, if any
        encoding = max(readings, key=lambda enc: score[enc])  # the first of the best: the guess on a tie
    text = readings[encoding]
    word = re.compile(r"[^\s,;|\"']*[^\x00-\x7f][^\s,;|\"']*")
    words = list(dict.fromkeys(word.findall(text)))
    differ = []
    for enc, other in readings.items():
        if enc == encoding or other == text:
            continue
        theirs = [w for w in dict.fromkeys(word.findall(other)) if w not in words]
        tag = " (charset-normalizer's guess)" if enc == guess else ""
        differ.append(f"{enc}{tag} would read {', '.join(repr(w[:40]) for w in theirs[:3])}")
    shown = ", ".join(repr(w[:40]) for w in words[:5])
    how = ("detected by charset-normalizer" if encoding == guess else
           f"not charset-normalizer's guess {guess}: {encoding} reads typographic characters where {guess} reads "
           "letters glued to numbers or graphic signs")
    note = (f"{name} has no encoding mark and is not UTF-8: read as {encoding} ({how}), "
            f"giving {shown}" + (f"; {'; '.join(differ[:2])}: check these texts" if differ else ""))
    return text, encoding, note


#: Characters a table's text holds in single-byte encodings: dashes and quotes (which may join words) ...
_JOINERS = frozenset("–—‘’‚“”„")
#: ... and signs and units (never inside a word: 'Wroc³aw' is a misread 'Wrocław').
_SIGNS = frozenset("…•·±×≤≥°µ€‰²³¹½¼¾")


def _table_text_score(text: str) -> int:
    """How much a decoded text looks like a table's: +2 for each dash or curly quote outside a word (an en dash
    in ``12,4–16,9``) and each sign or unit outside a word (``±``, ``°``, ``µ``), -3 for each other letter glued to a
    digit (``12,4û16,9``: a misread dash), -2 for each graphic sign or control character (box drawing), -1 for
    each other sign inside a word (``Wroc³aw``). Used only to choose between single-byte readings of the same
    bytes (charset-normalizer's guess and the spreadsheet programs' encodings)."""
    import unicodedata

    score = 0
    for m in re.finditer(r"[^\x00-\x7f]", text):
        ch, i = m.group(), m.start()
        prev = text[i - 1] if i else " "
        nxt = text[i + 1] if i + 1 < len(text) else " "
        inside = prev.isalpha() and nxt.isalpha()
        if ch in _JOINERS:  # inside a word only an apostrophe or a dash joins ('O’Brien')
            score += (0 if ch in "’–—" else -1) if inside else 2
            continue
        cat = unicodedata.category(ch)
        if ch in _SIGNS:
            score += -1 if inside else 2
        elif cat in ("Lu", "Ll", "Lt"):
            if prev.isdigit() or nxt.isdigit():
                score -= 3
        elif cat in ("So", "Co", "Cc", "Cn", "Cf") or "\u2500" <= ch <= "\u259f":
            score -= 2
        elif inside:
            score -= 1
    return score


def _dialect(text: str, name: str, tab: bool) -> tuple[str, str, str]:
    """Delimiter, quote and escape character of a CSV text (clevercsv's detection on its first 64 KB)."""
    sample = text[:65536]
    if "\n" in sample and len(text) > len(sample):
        sample = sample[: sample.rfind("\n") + 1]
    first = next((ln for ln in sample.splitlines() if ln.strip()), "")
    if tab and "\t" in first:
        return "\t", '"', ""
    import clevercsv

    try:
        d = clevercsv.Detector().detect(sample, delimiters=_DELIMITERS)
    except Exception:  # noqa: BLE001 - clevercsv raises on texts it cannot make sense of
        d = None
    if d is None or (d.delimiter == "" and any(x in first for x in _DELIMITERS)):
        raise UnusableInputError(f"{name}: its delimiter cannot be told (none of comma, semicolon, tab or vertical "
                                 "bar separates its fields consistently): export it again as CSV")
    return d.delimiter, d.quotechar or "", d.escapechar or ""


def read_text_table(path: str | Path, *, display_name: str | None = None, limits: Any = None,
                    data: bytes | None = None) -> WorkbookGrids:
    """A ``.csv`` or ``.tsv`` form as one sheet named after the file (``studies.csv`` -> ``studies``).

    The encoding is a byte-order mark's, else UTF-8, else charset-normalizer's detection (said in an
    info finding, a warning when other encodings programs write would read the text differently); the
    dialect is clevercsv's detection (a ``.tsv`` whose first line has a tab is tab-separated).
    Plain numbers (``12``, ``-3.25``) become numbers as a spreadsheet program makes them; everything
    else (``12,5``, ``0.80 (0.61-1.05)``, ``007``) stays text for the later stages to read.

    Ragged rows are refused: the table's width is the most common number of fields (or, when wider, the
    header's: the first row with two filled fields); a row with more fields than that is refused unless
    the extra fields are empty (trailing empty fields are fine: ``a,b,,,``); a shorter row is padded with
    empty cells (its missing fields are the last ones, as CSV writers leave them out).

    Raises
    ------
    UnusableInputError
        Not a text file, an encoding no decoder explains, no consistent delimiter, a ragged row, a
        field that does not end, or a table beyond the size limits: one line, nothing guessed.
    """
    import csv
    import io
    from collections import Counter

    from .safety import Limits, check_other

    path = Path(path)
    name = display_name or str(path)
    limits = limits if limits is not None else Limits()
    raw = check_other(path, "text", limits, data=data)
    text, encoding, note = _decode(raw, name)
    text = text.removeprefix("\ufeff")
    delimiter, quote, escape = _dialect(text, name, path.suffix.lower() == ".tsv")
    csv.field_size_limit(max(limits.max_cell_chars + 2, 1024))
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or ",",
                            quotechar=quote or None, escapechar=escape or None,
                            quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE, strict=False)
        rows = []
        for rec in reader:
            rows.append(rec)
            if len(rows) > limits.max_rows:
                _check_size(name, path.stem, len(rows), max(len(r) for r in rows), limits)
    except csv.Error as exc:
        raise UnusableInputError(f"{name}: line {reader.line_num:,} cannot be read as CSV ({exc}): "
                                 "export it again as CSV") from None
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    def meaningful(r: list[str]) -> int:  # fields up to the last non-empty one
        n = len(r)
        while n and not r[n - 1].strip():
            n -= 1
        return n

    widths = Counter(len(r) for r in rows if len(r) > 1)
    width = max(widths.items(), key=lambda kv: (kv[1], -kv[0]))[0] if widths else 1
    header = next((r for r in rows if sum(1 for c in r if c.strip()) >= 2), None)
    width = max(width, meaningful(header) if header else max([meaningful(r) for r in rows] + [1]))
    for i, r in enumerate(rows):
        if len(r) > width:
            if any(c.strip() for c in r[width:]):
                extra = next(c for c in r[width:] if c.strip())
                raise UnusableInputError(
                    f"{name}: row {i + 1} has {len(r)} fields where the table has {width} (its field "
                    f"{width + 1 + next(k for k, c in enumerate(r[width:]) if c.strip())} is {extra[:40]!r}): "
                    f"a value holding an unquoted {_DELIMITER_NAMES.get(delimiter, repr(delimiter))} shifts the "
                    "values after it; quote that value or export the table again")
            rows[i] = r[:width]
    _check_size(name, path.stem, len(rows), width, limits)
    too_long = next(((i, j) for i, r in enumerate(rows) for j, c in enumerate(r) if len(c) > limits.max_cell_chars),
                    None)
    if too_long:
        raise UnusableInputError(f"{name}: cell {column_letter(too_long[1])}{too_long[0] + 1} holds more than "
                                 f"{limits.max_cell_chars:,} characters, more than a spreadsheet cell may")
    grid = [[float(c) if _PLAIN_NUMBER.fullmatch(c) else c for c in r] for r in rows]
    title = path.stem or "Sheet1"
    sheet = SheetGrid(title=title, values=_grid_array(grid, width))
    notes = []
    if note is not None:
        severity = "warning" if "would read" in note else "info"
        notes.append(_note(name, "format-note" if severity == "info" else "format-unread", severity, note, title))
    return WorkbookGrids(file=name, sheets=(sheet,), findings=tuple(notes), format="csv")

"""The report page and the annotated copies of the forms.

- :func:`render_report` renders ``report.html`` of ``curate run`` (one self-contained page: inline
  CSS, inline SVG plots, a little inline JS, no remote resource) from a jinja2 template with
  autoescape on, so that every text that came from a form is HTML-escaped.
- :func:`render_validation_page` is the same page without analyses (``curate validate --report``).
- :func:`annotated_workbook` gives a copy of a form with every finding's cell filled by severity
  and commented, plus a ``findings`` sheet; the input is read into memory and never written to.

Everything returns text or bytes; only the command line writes files.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from .cells import finite_or_none as _num
from .findings import SEVERITY_RANK, Finding
from .outputs import inert

SEVERITY_FILL = {"error": "FFC7CE", "warning": "FFE699", "info": "BDD7EE"}
SEVERITY_FONT = {"error": "9C0006", "warning": "7F6000", "info": "1F4E79"}

# ---------------------------------------------------------------------------------------------
# Annotated workbooks
# ---------------------------------------------------------------------------------------------

_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _deterministic_xlsx(data: bytes, stamp: str) -> bytes:
    """Zip entries with a fixed date and ``dcterms:modified`` set to ``stamp`` (same content, same bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            body = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _MODIFIED.sub(rb"\g<1>" + stamp.encode() + rb"\g<2>", body)
            zi = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = info.external_attr
            zout.writestr(zi, body)
    return out.getvalue()


def _target_cell(ws, row: int, column: str | None):
    """The cell a finding is shown on: its own, the row's first cell, or a merged range's top-left."""
    coord = f"{column or 'A'}{row}"
    for rng in ws.merged_cells.ranges:
        if coord in rng:
            return ws.cell(rng.min_row, rng.min_col)
    return ws[coord]


def _finding_line(f: Finding) -> str:
    return f"{f.severity.upper()} {f.rule}: {f.message}"


# C0 and C1 control characters (tab and newline kept) and the bidi embedding / override / isolate
# characters: invalid in a worksheet, or able to make a cell read differently from what it holds.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# the same characters written as OOXML escapes (``_x0007_``), which Excel decodes in any text
_UNSAFE_ESCAPES = re.compile(r"_x(?:00[01][0-9A-Fa-f]|00[89][0-9A-Fa-f]|007[Ff]|202[A-Ea-e]|206[6-9])_")
_LINK_OK = re.compile(r"(?i)^\s*(https?://|mailto:)")


def clean_text(text: str) -> str:
    """``text`` without control characters (tab and newline kept) and bidi override characters,
    nor their ``_xHHHH_`` escapes."""
    text = _UNSAFE_CHARS.sub("", text)
    if "_x" in text:
        text = _UNSAFE_ESCAPES.sub(lambda m: m.group(0) if m.group(0).lower() in ("_x0009_", "_x000a_") else "", text)
    return text


def _safe(value: Any) -> Any:
    """A value for a cell of the ``findings`` sheet: text cleaned and made inert."""
    return inert(clean_text(value)) if isinstance(value, str) else value


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(clean_text(str(text)).split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _set_text(cell, text: str) -> None:
    """Text into a cell as a text cell (never read as a formula, even when it starts with ``=``)."""
    cell.value = text
    cell.data_type = "s"


def _formula_text(value: Any) -> str:
    text = value if isinstance(value, str) else getattr(value, "text", None) or str(value)
    return text if str(text).startswith("=") else "=" + str(text)


def _replace_formulas(wb, data: bytes) -> None:
    """Formula cells get their saved value (or their formula text, inert, when there is none)."""
    import openpyxl

    cached = None
    for ws in wb.worksheets:
        for c in list(ws._cells.values()):
            if c.data_type != "f":
                continue
            if cached is None:
                import warnings

                with warnings.catch_warnings():  # openpyxl's UserWarnings (unsupported extensions) are not ours
                    warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
                    cached = openpyxl.load_workbook(io.BytesIO(data), data_only=True, keep_links=False)
            saved = cached[ws.title][c.coordinate].value
            if saved is None:  # no saved value: keep the formula's text, inert
                saved = inert(clean_text(_formula_text(c.value)))
            if isinstance(saved, str):
                _set_text(c, clean_text(saved))
            else:
                c.value = saved
            if c.data_type == "f":
                c.data_type = "s"


def _make_inert(wb) -> None:
    """Nothing live in the copy: no defined names (print areas and titles included), external
    links, pivot tables, conditional formats, data validations, hyperlinks other than http(s)
    and mailto, nor formulas; text without control or bidi override characters."""
    from openpyxl.formatting.formatting import ConditionalFormattingList
    from openpyxl.worksheet.datavalidation import DataValidationList
    from openpyxl.worksheet.filters import AutoFilter

    wb.defined_names.clear()
    wb._external_links = []
    for ws in wb.worksheets:
        ws.defined_names.clear()
        ws.print_area = None
        ws._print_rows = None
        ws._print_cols = None
        ws.auto_filter = AutoFilter()
        ws.conditional_formatting = ConditionalFormattingList()
        ws.data_validations = DataValidationList()
        ws._pivots = []
        ws.legacy_drawing = None
        for c in list(ws._cells.values()):
            if c.data_type == "f":
                c.value = None  # _replace_formulas runs first; a formula left here is dropped
            elif isinstance(c._value, str):
                cleaned = clean_text(c._value)
                if cleaned != c._value:
                    _set_text(c, cleaned)
            link = getattr(c, "hyperlink", None)
            if link is not None and not _LINK_OK.match(str(link.target or "")):
                c.hyperlink = None
            if c.comment is not None and c.comment.text:
                c.comment.text = clean_text(c.comment.text)


def _mark(wb, findings: Sequence[Finding], note: str | None = None,
          cell_notes: dict[tuple[str, int, str], str] | None = None) -> None:
    """Fill and comment each finding's cell, and add the ``findings`` sheet (``note`` on top).
    ``cell_notes``: more comment lines by ``(sheet, row, column)`` (what the article says of a
    verified cell: :func:`curation.verification.cell_notes`), added below the cell's findings."""
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill

    from .reading import sheet_key

    titles = {sheet_key(t): t for t in wb.sheetnames}
    by_cell: dict[tuple[str, Any], list[Finding]] = {}
    for f in findings:
        if f.sheet is None or f.row is None:
            continue
        title = titles.get(sheet_key(f.sheet))
        if title is None:
            continue
        try:
            cell = _target_cell(wb[title], int(f.row), f.column)
        except (ValueError, TypeError):
            continue
        by_cell.setdefault((title, cell.coordinate), []).append(f)
    fills = {s: PatternFill(fill_type="solid", start_color=c, end_color=c) for s, c in SEVERITY_FILL.items()}
    fonts = {s: Font(color=SEVERITY_FONT[s], bold=s == "error") for s in SEVERITY_FONT}
    for (title, coord), fs in by_cell.items():
        cell = wb[title][coord]
        worst = min(fs, key=lambda f: SEVERITY_RANK[f.severity]).severity
        cell.fill = fills[worst]
        text = clean_text("\n".join(_finding_line(f) for f in fs))
        if cell.comment is not None and cell.comment.text:
            text = clean_text(cell.comment.text).rstrip() + "\n---\n" + text
        comment = Comment(text[:30000], "curate")
        comment.width = 420
        comment.height = min(600, 40 + 16 * (text.count("\n") + 1 + len(text) // 70))
        cell.comment = comment
    _add_notes(wb, titles, cell_notes or {})
    name = "findings"
    taken = {t.lower() for t in wb.sheetnames}
    i = 1
    while name.lower() in taken:
        i += 1
        name = f"findings_{i}"
    ws = wb.create_sheet(name)
    if note:
        _set_text(ws.cell(1, 1), inert(_one_line(note, 1000)))
        ws.cell(1, 1).font = Font(bold=True, color=SEVERITY_FONT["error"])
    top = ws.max_row + 1 if note else 1
    header = ["cell", "rule", "severity", "study_id", "message", "value", "field", "sheet", "row", "column"]
    for j, h in enumerate(header, start=1):
        ws.cell(top, j, h).font = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    r = top
    for f in findings:
        value = f.to_dict()["value"]
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        ws.append([_safe(f.cell or f.sheet or ""), _safe(f.rule), f.severity, _safe(f.study_id), _safe(f.message),
                   _safe(value) if isinstance(value, str) else value, _safe(f.field), _safe(f.sheet), f.row,
                   _safe(f.column)])
        r += 1  # the row just appended (ws.max_row would scan every cell each time)
        ws.cell(r, 3).fill = fills[f.severity]
        ws.cell(r, 3).font = fonts[f.severity]
        ws.cell(r, 5).alignment = wrap
    for c in ws.iter_rows(min_row=top + 1):  # form text is text: never a formula
        for cell in c:
            if cell.data_type == "f":
                cell.data_type = "s"
    for letter, width in zip("ABCDEFGHIJ", (18, 26, 9, 10, 90, 18, 18, 14, 6, 7)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = f"A{top + 1}"
    ws.auto_filter.ref = f"A{top}:J{max(top, ws.max_row)}"


def _add_notes(wb, titles: dict[str, str], notes: dict[tuple[str, int, str], str]) -> None:
    """Append each note to its cell's comment (a cell without one gets a comment of its own, no fill)."""
    from openpyxl.comments import Comment

    from .reading import sheet_key

    for (sheet, row, column), line in notes.items():
        title = titles.get(sheet_key(sheet))
        if title is None:
            continue
        try:
            cell = _target_cell(wb[title], int(row), column)
        except (ValueError, TypeError):
            continue
        text = clean_text(line)
        if cell.comment is not None and cell.comment.text:
            text = clean_text(cell.comment.text).rstrip() + "\n---\n" + text
        comment = Comment(text[:30000], "curate")
        comment.width = 420
        comment.height = min(600, 40 + 16 * (text.count("\n") + 1 + len(text) // 70))
        cell.comment = comment


def _stamp(wb) -> str:
    try:
        stamp_dt = wb.properties.modified or wb.properties.created
        return stamp_dt.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp_dt else _NO_STAMP
    except Exception:  # noqa: BLE001 - a date openpyxl could not make sense of
        return _NO_STAMP


_NO_STAMP = "2000-01-01T00:00:00Z"


def _xlsx_bytes(wb, stamp: str) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return _deterministic_xlsx(buf.getvalue(), stamp)


def _cell_value(v: Any) -> Any:
    """A value as read (calamine / pandas) -> something openpyxl writes as it was typed."""
    import datetime as dt

    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, TypeError):
            pass
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
        if isinstance(v, int) and abs(v) >= 2 ** 53:
            return str(v)
        return v
    if isinstance(v, (dt.datetime, dt.date, dt.time, dt.timedelta)):
        return v
    if isinstance(v, str):
        return clean_text(v)
    return clean_text(str(v))


def _put(ws, coord: str, value: Any) -> None:
    value = _cell_value(value)
    if value is None or value == "":
        return
    cell = ws[coord]
    if isinstance(value, str):
        _set_text(cell, value)
        return
    try:
        cell.value = value
    except Exception:  # noqa: BLE001 - a date openpyxl cannot store: its text
        _set_text(cell, clean_text(str(value)))


def _form_values(path: str | Path, name: str | None, result: Any, data: bytes | None = None
                 ) -> list[tuple[str, str, dict[tuple[int, str], Any], int]]:
    """The values validation read, at their original cells: per contract sheet its title, its key,
    ``{(row, column letter): value}`` for the header row and every data row of this form
    (fields and unmatched columns), and the header row."""
    if result is None:
        return []
    name = str(path) if name is None else name
    tables = getattr(result, "tables", {}) or {}
    raw_sheets: dict[str, Any] = {}
    try:  # the reading again (calamine) for the sheet titles, header rows and unmatched columns
        from .layout import read_form as read_workbook

        raw_sheets = dict(read_workbook(path, result.schema, display_name=name, data=data).sheets)
    except Exception:  # noqa: BLE001 - the values validation kept are enough
        raw_sheets = {}
    out = []
    for sheet in dict.fromkeys([*tables, *raw_sheets]):
        t = tables.get(sheet)
        rs = raw_sheets.get(sheet)
        rows: list[int] = []
        values: dict[str, list] = {}
        letters: dict[str, str] = {}
        if t is not None and len(t):
            mask = (t.data["_file"] == name).to_numpy()
            rows = [int(r) for r in t.data["_row"].to_numpy()[mask]]
            letters = dict(t.letters.get(name, {}))
            values = {fld: list(t.raw[fld].to_numpy()[mask]) for fld in letters if fld in t.raw}
        if rs is not None:
            letters = letters or dict(rs.columns)
            rows = rows or list(rs.rows)
            if not values:
                values = {fld: list(v) for fld, v in rs.values.items()}
        if not rows and rs is None:
            continue
        header_row = rs.header_row if rs is not None else max(1, min(rows) - 1)
        cells: dict[tuple[int, str], Any] = {}
        for fld, letter in letters.items():
            cells[(header_row, letter)] = fld
            for r, v in zip(rows, values.get(fld, ())):
                cells[(r, letter)] = v
        if rs is not None:
            for header, letter in rs.extra_columns.items():
                cells[(header_row, letter)] = header
                for r, v in zip(rs.rows, rs.extra_values.get(header, ())):
                    cells[(r, letter)] = v
        out.append((clean_text(rs.title if rs is not None else sheet), sheet, cells, header_row))
    return out


def _sheet_title(wb, title: str, sheet: str, used: set[str]):
    try:
        ws = wb.create_sheet(title if title.lower() not in used else sheet)
    except Exception:  # noqa: BLE001 - a title openpyxl refuses
        ws = wb.create_sheet(sheet if sheet.lower() not in used else None)
    used.add(ws.title.lower())
    return ws


def _rebuilt_workbook(path: str | Path, name: str | None, result: Any, data: bytes | None = None):
    """A workbook holding the values validation read, at their original cells: per contract sheet
    the header row and every data row of this form (fields and unmatched columns)."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for title, sheet, cells, _header in _form_values(path, name, result, data):
        ws = _sheet_title(wb, title, sheet, used)
        for (r, letter), v in cells.items():
            _put(ws, f"{letter}{r}", v)
    return wb


ANNOTATE_FULL_CELLS = 60_000
"""Forms up to this many cells (rows x fields, all sheets) get an annotated copy of the form itself:
openpyxl loads and saves every cell and style of it. A larger form gets a copy rebuilt from the
values validation read, written row by row in openpyxl's write-only mode, so that its time grows
with the form and not with openpyxl's per-cell objects; the findings sheet says so."""


def _form_cells(result: Any, name: str | None) -> int:
    n = 0
    for t in (getattr(result, "tables", {}) or {}).values():
        try:
            mine = int((t.data["_file"] == name).sum())
            n += mine * max(1, len(t.letters.get(name, {})))
        except Exception:  # noqa: BLE001 - no count: the full copy
            return 0
    return n


ANNOTATE_ALL_ROWS_CELLS = 300_000
"""A rebuilt copy holds every row up to this many cells; above it, the header rows and the rows
that have a finding (at their own row numbers), so that its time grows with the findings."""


def _write_only_copy(path: str | Path, findings: Sequence[Finding], result: Any, name: str | None,
                     note: str, marked_rows_only: bool = False, data: bytes | None = None,
                     cell_notes: dict[tuple[str, int, str], str] | None = None) -> bytes:
    """The annotated copy rebuilt from the values read, in openpyxl's write-only mode: each
    finding's cell filled and commented as :func:`_mark` does, and the ``findings`` sheet
    (``marked_rows_only``: of the data rows, only those with a finding)."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import column_index_from_string

    from .reading import sheet_key

    fills = {s: PatternFill(fill_type="solid", start_color=c, end_color=c) for s, c in SEVERITY_FILL.items()}
    fonts = {s: Font(color=SEVERITY_FONT[s], bold=s == "error") for s in SEVERITY_FONT}
    wb = openpyxl.Workbook(write_only=True)
    used: set[str] = set()
    marks: dict[tuple[str, int, int], list[Finding]] = {}
    sheets = _form_values(path, name, result, data)
    keys = {sheet_key(sheet): i for i, (_t, sheet, _c, _h) in enumerate(sheets)}
    keys.update({sheet_key(t): i for i, (t, _s, _c, _h) in enumerate(sheets)})
    for f in findings:
        if f.sheet is None or f.row is None or sheet_key(f.sheet) not in keys:
            continue
        try:
            col = column_index_from_string(f.column or "A")
        except ValueError:
            continue
        marks.setdefault((sheets[keys[sheet_key(f.sheet)]][1], int(f.row), col), []).append(f)
    extra: dict[tuple[str, int, int], str] = {}  # the source check's line per verified cell
    for (sname, row, letter), line in (cell_notes or {}).items():
        if sheet_key(sname) not in keys:
            continue
        try:
            key = (sheets[keys[sheet_key(sname)]][1], int(row), column_index_from_string(letter))
        except ValueError:
            continue
        extra[key] = line
        marks.setdefault(key, [])
    for title, sheet, cells, header_row in sheets:
        ws = _sheet_title(wb, title, sheet, used)
        grid: dict[int, dict[int, Any]] = {}
        keep = None
        if marked_rows_only:
            keep = {r for (s, r, _c) in marks if s == sheet} | {header_row}
        for (r, letter), v in cells.items():
            if keep is not None and r not in keep:
                continue
            v = _cell_value(v)
            if v is not None and v != "":
                grid.setdefault(r, {})[column_index_from_string(letter)] = v
        for (s, r, c) in marks:
            if s == sheet:
                grid.setdefault(r, {}).setdefault(c, None)
        for r in range(1, max(grid, default=0) + 1):
            row = grid.get(r)
            if not row:
                ws.append([])
                continue
            out: list[Any] = [None] * max(row)
            for c, v in row.items():
                fs = marks.get((sheet, r, c))
                if fs is None and not isinstance(v, str):
                    out[c - 1] = v
                    continue
                cell = WriteOnlyCell(ws, value=v)
                if isinstance(v, str):
                    cell.data_type = "s"  # form text is text, never a formula
                if fs is not None:
                    lines = [_finding_line(f) for f in fs]
                    if fs:
                        cell.fill = fills[min(fs, key=lambda f: SEVERITY_RANK[f.severity]).severity]
                    if (sheet, r, c) in extra:
                        lines.append(("---\n" if fs else "") + extra[(sheet, r, c)])
                    text = clean_text("\n".join(lines))
                    comment = Comment(text[:30000], "curate")
                    comment.width = 420
                    comment.height = min(600, 40 + 16 * (text.count("\n") + 1 + len(text) // 70))
                    cell.comment = comment
                out[c - 1] = cell
            ws.append(out)
    fname = "findings"
    i = 1
    while fname.lower() in used:
        i += 1
        fname = f"findings_{i}"
    ws = wb.create_sheet(fname)
    for letter, width in zip("ABCDEFGHIJ", (18, 26, 9, 10, 90, 18, 18, 14, 6, 7)):
        ws.column_dimensions[letter].width = width
    top = 2 if note else 1
    ws.freeze_panes = f"A{top + 1}"
    ws.auto_filter.ref = f"A{top}:J{top + len(findings)}"
    if note:
        c = WriteOnlyCell(ws, value=inert(_one_line(note, 1000)))
        c.data_type = "s"
        c.font = Font(bold=True, color=SEVERITY_FONT["error"])
        ws.append([c])
    bold = Font(bold=True)
    header = []
    for h in ("cell", "rule", "severity", "study_id", "message", "value", "field", "sheet", "row", "column"):
        c = WriteOnlyCell(ws, value=h)
        c.font = bold
        header.append(c)
    ws.append(header)
    wrap = Alignment(wrap_text=True, vertical="top")
    for f in findings:
        value = f.to_dict()["value"]
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        row = [_safe(f.cell or f.sheet or ""), _safe(f.rule), f.severity, _safe(f.study_id), _safe(f.message),
               _safe(value) if isinstance(value, str) else value, _safe(f.field), _safe(f.sheet), f.row,
               _safe(f.column)]
        out = []
        for j, v in enumerate(row):
            if isinstance(v, str) or j in (2, 4):
                c = WriteOnlyCell(ws, value=v)
                if isinstance(v, str):
                    c.data_type = "s"
                if j == 2:
                    c.fill, c.font = fills[f.severity], fonts[f.severity]
                elif j == 4:
                    c.alignment = wrap
                out.append(c)
            else:
                out.append(v)
        ws.append(out)
    buf = io.BytesIO()
    wb.save(buf)
    return _deterministic_xlsx(buf.getvalue(), _NO_STAMP)


def annotated_workbook(path: str | Path, findings: Sequence[Finding], result: Any = None,
                       name: str | None = None, data: bytes | None = None, verification: Sequence[Any] = ()) -> bytes:
    """A copy of the form at ``path`` with the findings marked, as ``.xlsx`` bytes.

    Each finding's cell is filled by its severity (the worst one when a cell has several:
    error red, warning amber, info blue) and carries one comment listing every finding on it;
    a row-level finding goes to the row's first cell. A ``findings`` sheet lists them all
    (cell, rule, severity, study, message, value) with form text made inert.

    The copy is a report, never live: formulas are replaced by their saved values (or their
    text, made inert); defined names, external links, pivot tables, conditional formats, data
    validations and hyperlinks other than http(s)/mailto are removed; control and bidi override
    characters are taken out of text. The input is read into memory and never written to;
    ``data``, the form's bytes read once before validation, is used instead of the file when
    given, so that the copy shows exactly what was validated.

    ``verification``: the entries of the source check (``curate run --sources``); each verified
    cell of this form (``name``) gets its status, the place in the article and the quote in its
    comment, below the cell's findings.

    This never fails on a form that validation could read: when openpyxl cannot open or save
    the form, the copy is rebuilt from the values validation read (``result``, the
    :class:`~curation.validation.ValidationResult`, and ``name``, the form's name in it) at
    their original cells, and the ``findings`` sheet says so on its first line.
    """
    import warnings

    import openpyxl

    cells = _form_cells(result, name) if result is not None else 0
    notes = None
    if verification:
        from .verification import cell_notes

        notes = cell_notes(verification, name if name is not None else str(path))
    if cells > ANNOTATE_FULL_CELLS:
        few = cells > ANNOTATE_ALL_ROWS_CELLS
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return _write_only_copy(path, findings, result, name, (
                    f"NOTE: a large form ({cells:,} cells): this copy was rebuilt from the values the validation "
                    "read (contract sheets only, no formatting" + (
                        "; the header row and the rows with a finding, at their own row numbers: the other rows "
                        "are as in the form" if few else "") + "), so that it is written in time proportional to "
                    + ("the findings" if few else "the form") + "; every finding is marked at its cell and listed "
                    "below"), marked_rows_only=few, data=data, cell_notes=notes)
        except Exception:  # noqa: BLE001 - the copy of the form itself, below
            pass
    if Path(str(path)).suffix.lower() not in ("", ".xlsx", ".xlsm"):
        # a .csv, .ods, .xls or .xlsb form: the annotated copy is an .xlsx of the values read
        note = (f"NOTE: the form is a {Path(str(path)).suffix.lower()} file; this copy is an .xlsx rebuilt from the "
                "values the validation read (contract sheets only, no formatting)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                wb = _rebuilt_workbook(path, name, result, data)
                _mark(wb, findings, note)
                return _xlsx_bytes(wb, _NO_STAMP)
            except Exception:  # noqa: BLE001 - the general path below says what went wrong
                pass
    if data is None:
        data = Path(path).read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(io.BytesIO(data), keep_links=False)
            _replace_formulas(wb, data)
            _make_inert(wb)
            stamp = _stamp(wb)
            _mark(wb, findings, cell_notes=notes)
            return _xlsx_bytes(wb, stamp)
    except Exception as exc:  # noqa: BLE001 - anything openpyxl trips on: the rebuilt copy
        reason = f"{type(exc).__name__}: {_one_line(exc, 200)}"
    note = (f"NOTE: the original form could not be re-opened for annotation ({reason}); this copy was "
            "rebuilt from the values the validation read (contract sheets only, no formatting)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wb = _rebuilt_workbook(path, name, result, data)
            _mark(wb, findings, note, cell_notes=notes)
            return _xlsx_bytes(wb, _NO_STAMP)
        except Exception as exc:  # noqa: BLE001 - last resort: the findings alone
            wb = openpyxl.Workbook()
            wb.remove(wb.active)
            _mark(wb, findings, note + f"; the values could not be written either ({type(exc).__name__})")
            return _xlsx_bytes(wb, _NO_STAMP)


def annotate_forms(result: Any, out_dir: str | Path, paths: Sequence[str | Path] | None = None) -> list[Path]:
    """Write ``<form>.annotated.xlsx`` for each form of a ValidationResult into ``out_dir``
    (``paths``: the forms' files, when the result names them otherwise)."""
    from .outputs import atomic_write_bytes

    out = Path(out_dir)
    written = []
    for name, path in zip(result.files, paths if paths is not None else result.files):
        data = annotated_workbook(path, [f for f in result.finding_list if f.file == name], result, name)
        written.append(atomic_write_bytes(out / f"{Path(name).stem}.annotated.xlsx", data))
    return written


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

_SVG_HEAD = re.compile(r"^.*?(?=<svg\b)", re.S)
_SVG_NOISE = re.compile(r"<!--.*?-->|<metadata>.*?</metadata>", re.S)
_SVG_ID = re.compile(r'\bid="([^"]+)"')


def inline_svg(svg: str, prefix: str) -> str:
    """matplotlib SVG text made fit to sit inside an HTML page: no prolog, comments or metadata,
    and ids prefixed so that several plots on one page never share one."""
    svg = _SVG_HEAD.sub("", svg, count=1)
    svg = _SVG_NOISE.sub("", svg)
    ids = set(_SVG_ID.findall(svg))
    if ids:
        svg = _SVG_ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
        svg = re.sub(r'(href="#|url\(#)([^")]+)', lambda m: m.group(1) + (
            f"{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(2)), svg)
    svg = re.sub(r"\s+\n", "\n", svg)
    return svg.strip()




def _pct(v: Any) -> str:
    v = _num(v)
    return "NA" if v is None else f"{100 * v:.1f}"


def _nat(v: Any) -> str:
    v = _num(v)
    return "NA" if v is None else f"{v:.1f}"


def _fmt_p(p: Any) -> str:
    p = _num(p)
    if p is None:
        return "NA"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _value_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _short(name: str) -> str:
    return Path(name).name


FINDING_COLUMNS_PAGE = ("cell", "rule", "severity", "study", "value", "message", "form", "sheet")
"""The columns of each finding in the page's data (``findings-data``), in this order."""


def _finding_rows(findings: Iterable[Finding]) -> list[list[Any]]:
    """One row per finding as the page's script reads it (see :data:`FINDING_COLUMNS_PAGE`)."""
    rows = []
    for f in findings:
        d = f.to_dict()
        rows.append([f.cell or (f.sheet or "(file)"), f.rule, f.severity, f.study_id or "",
                     _value_text(d["value"]), f.message, _short(f.file), f.sheet or ""])
    return rows


_JSON_UNSAFE = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028",
                0x2029: "\\u2029"}


def data_island(obj: Any) -> str:
    """JSON to sit inside ``<script type="application/json">``: inert (never executed) and unable
    to close its element: ``<``, ``>`` and ``&`` (and the JS line separators) are written as
    ``\\u`` escapes, so ``</script>`` or ``<!--`` in a form's text stays text."""
    import json

    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).translate(_JSON_UNSAFE)


def _summary_view(v: Any) -> dict[str, Any]:
    s = v.summary
    rule_sev: dict[str, str] = {}
    for f in v.finding_list:
        cur = rule_sev.get(f.rule)
        if cur is None or SEVERITY_RANK[f.severity] < SEVERITY_RANK[cur]:
            rule_sev[f.rule] = f.severity
    by_rule = sorted(((r, rule_sev.get(r, "info"), n) for r, n in s.by_rule.items()),
                     key=lambda x: (SEVERITY_RANK[x[1]], -x[2], x[0]))
    sheets = [{"sheet": k, **d} for k, d in s.by_sheet.items()]
    return {"forms": s.forms, "studies": s.studies, "rows_read": s.rows_read, "rows_passed": s.rows_passed,
            "rows_restricted": getattr(s, "rows_restricted", 0),
            "rows_excluded": s.rows_excluded, "errors": s.errors, "warnings": s.warnings, "info": s.info,
            "by_rule": by_rule, "by_sheet": sheets}


def _study_row(r: Any, kind: str, weight: float | None = None) -> dict[str, Any]:
    if kind in ("binary", "continuous", "reported_effect"):
        from .analyses import study_data_text

        data = study_data_text(r, kind)
    elif kind == "proportion":
        data = "" if r.events is None or r.total is None else f"{r.events:g}/{r.total:g}"
        if r.events is not None and r.total:
            data += f" ({100 * r.events / r.total:.1f}%)"
    else:
        data = "" if r.median is None else (
            f"{r.median:.1f} ({_nat(r.ci_low)}-{'NR' if r.ci_high is None else _nat(r.ci_high)})")
    return {"study": r.study_id, "label": r.label, "cohort": r.cohort, "group": r.group or "", "data": data,
            "weight": "" if weight is None else f"{weight:.1f}%", "reason": r.reason or "", "note": r.note or "",
            "where": f"{r.sheet}!{r.row}:{r.row}" if r.sheet and r.row else ""}


def _est_text(result: Any, kind: str, a: Any = None) -> dict[str, Any]:
    if result is None:
        return {"text": "not pooled", "clipped": False, "pi": ""}
    d = result.display()
    clipped = any("clipped" in n for n in d["notes"]) and kind == "proportion"
    if a is not None and kind != "proportion":  # in the outcome's own terms (unit, RR/OR/HR ...)
        from .analyses import estimate_text

        text = estimate_text(a, d["estimate"], d["ci_low"], d["ci_high"]).replace(" (", " (95% CI ", 1)
        pi = estimate_text(a, d["estimate"], d["pi_low"], d["pi_high"]).split(" (", 1)[-1].rstrip(")")
        return {"text": text, "clipped": clipped, "pi": pi}
    if kind == "proportion":
        text = f"{_pct(d['estimate'])}% (95% CI {_pct(d['ci_low'])}-{_pct(d['ci_high'])})"
        pi = f"{_pct(d['pi_low'])}-{_pct(d['pi_high'])}%"
    else:
        text = f"{_nat(d['estimate'])} months (95% CI {_nat(d['ci_low'])}-{_nat(d['ci_high'])})"
        pi = f"{_nat(d['pi_low'])}-{_nat(d['pi_high'])} months"
    return {"text": text, "clipped": clipped, "pi": pi}


TABLE_ROWS = 1000
"""Rows of a study table in the page (studies taken, left out, leave-one-out); more are in analysis.json."""
LEFT_ROWS = 100
"""Rows left out listed in the page per analysis (counted by reason above them; all in analysis.json)."""
INFLUENCE_ROWS = 20
"""Excluded records listed under each analysis; "what matters most" lists :data:`FIX_ROWS`."""
FIX_ROWS = 50


def _analysis_view(run: Any, a: Any, svgs: dict[str, str], n: int, files: dict[str, str] | None = None
                   ) -> dict[str, Any]:
    from .analyses import sensitivity_table
    from .analyses import fmt_estimate, plot_name

    files = files or {}
    kind = a.kind
    res = a.result
    weights = list(res.weights) if res is not None else []
    order = list(range(len(a.taken)))
    if len(order) > TABLE_ROWS:  # the largest weights first, then the rest in analysis.json
        order = sorted(order, key=lambda i: -(_num(weights[i]) or 0.0) if i < len(weights) else 0.0)[:TABLE_ROWS]
    taken = [_study_row(a.taken[i], kind, _num(weights[i]) if i < len(weights) else None) for i in order]
    left = [_study_row(r, kind) for r in a.left_out[:LEFT_ROWS]]
    left_reasons: dict[str, int] = {}
    for r in a.left_out:
        key = re.sub(r"^\S+ already contributes its .*", "another cohort of the study is taken (no patient counted twice)",
                     r.reason or "")
        if getattr(r, "excluded_by", None):  # kept out by errors: counted by rule (each row names its cell)
            key = f"kept out by an error: {r.excluded_by}"
        left_reasons[key] = left_reasons.get(key, 0) + 1
    est = _est_text(res, kind, a)
    sens = []
    if a.role == "primary":
        for row in sensitivity_table(run.analyses, a):
            if kind == "proportion":
                e = "NA" if row["estimate"] is None else f"{_pct(row['estimate'])}%"
                ci = "" if row["estimate"] is None else f"{_pct(row['ci_low'])}-{_pct(row['ci_high'])}"
            elif kind in ("binary", "continuous", "reported_effect"):
                from .analyses import value_text

                e = "NA" if row["estimate"] is None else value_text(row["estimate"], a)
                ci = "" if row["estimate"] is None else f"{row['ci_low']:.2f} to {row['ci_high']:.2f}"
            else:
                e = "NA" if row["estimate"] is None else _nat(row["estimate"])
                ci = "" if row["estimate"] is None else f"{_nat(row['ci_low'])}-{_nat(row['ci_high'])}"
            tau2 = _num(row["tau2"])
            i2 = _num(row["i2"])
            sens.append({"setting": _setting_name(row["setting"]), "k": row["k"], "estimate": e, "ci": ci,
                         "tau2": "NA" if tau2 is None else f"{tau2:.4f}", "i2": "NA" if i2 is None else f"{i2:.1f}%",
                         "note": row["note"], "primary": row["id"] == a.id})
    subgroups = []
    test = None
    if a.role == "subgroup_test":
        for s in run.children(a, "subgroup"):
            se = _est_text(s.result, kind, s)
            i2 = _num(s.result.i2) if s.result is not None else None
            subgroups.append({"group": s.group, "k": s.k, "estimate": se["text"], "i2": "NA" if i2 is None else f"{i2:.1f}%",
                              "clipped": se["clipped"]})
        if res is not None and res.q_between is not None:
            test = {"q": "NA" if _num(res.q_between) is None else f"{res.q_between:.2f}", "df": res.df_between,
                    "p": _fmt_p(res.p_between)}
    stem = f"plots/{plot_name(a.id)}"
    forest = inline_svg(svgs[stem], f"f{n}") if stem in svgs else None
    funnel = inline_svg(svgs[stem + ".funnel"], f"u{n}") if stem + ".funnel" in svgs else None
    eg = run.egger.get(a.id) if a.role == "primary" else None
    egger = None
    if eg is not None:
        egger = ("not available: " + eg.note) if _num(eg.z) is None else (
            f"t = {eg.z:.2f} (df = {eg.df}), p = {_fmt_p(eg.p)}; limit estimate {eg.intercept:.3f} on the "
            f"analysis scale")
    loo = []
    for x in run.leave_one_out.get(a.id, ())[:TABLE_ROWS]:
        loo.append({"study": x.study_id, "label": x.label, "estimate": fmt_estimate(x.estimate, a),
                    "i2": "NA" if x.i2 is None else f"{x.i2:.1f}%"})
    influence = [inf for inf in run.influence if inf.analysis_id == a.id or inf.analysis_id.startswith(a.id + ":")]
    n_influence = len(influence)
    influence = influence[:INFLUENCE_ROWS]
    s = a.settings
    setting = (s.method if kind in ("median", "reported_effect") or s.method == "GLMM" else f"{s.measure}, {s.method}") + (
        ", Knapp-Hartung" if s.hk else "")
    notes = list(dict.fromkeys(list(a.notes) + (list(res.display()["notes"]) if res is not None else [])
                               + list(getattr(run, "analysis_notes", {}).get(a.id, ()))))
    if len(a.notes) > 50:  # one note per study (an upper CI bound not reached ...): counted, listed in analysis.json
        notes = [n for n in notes if n not in a.notes[50:]] + [f"... and {len(a.notes) - 50} more such notes "
                                                                "in analysis.json"]
    return {"id": a.id, "anchor": "a-" + plot_name(a.id).replace("@", "-").replace(".", "-"), "label": a.label,
            "role": a.role, "kind": kind, "k": a.k, "setting": setting, "estimate": est, "taken": taken, "left": left,
            "data_header": _data_header(a),
            "sensitivity": sens, "subgroups": subgroups, "test": test, "forest": forest, "funnel": funnel,
            "egger": egger, "loo": loo, "influence": influence, "notes": notes,
            "n_taken": len(a.taken), "n_left": len(a.left_out), "left_reasons": sorted(left_reasons.items()),
            "n_loo": len(run.leave_one_out.get(a.id, ())), "n_influence": n_influence, "rows_shown": TABLE_ROWS,
            "file": files.get(stem), "cohort_header": _cohort_header(run.schema, a),
            "show_cohort": any(r["cohort"] for r in taken + left)}


def _cohort_header(schema: Any, a: Any) -> str:
    """The header of the column that tells a study's rows apart: the schema's name for it (``cohort``,
    ``comparison``, ``arm``: the arm sheet's key after the study for arm rows)."""
    try:
        oc = schema.analysis.outcomes.get(a.outcome.partition(":")[0])
        if oc is not None and oc.arms is not None:
            rest = [k for k in oc.arms.pair_by[1:]]
            return ", ".join(k.replace("_", " ") for k in rest) or "comparison"
        return str(schema.analysis.cohort_field).replace("_", " ")
    except Exception:  # noqa: BLE001 - a header is a help
        return "cohort"


def emptied_analyses(analyses: Sequence[Any]) -> list[dict[str, Any]]:
    """The analyses that pool nothing while errors keep out records they could take: the first items
    of "what matters most" (fixing those errors is what gives the analysis an estimate at all)."""
    from .analyses import plot_name

    out = []
    for a in analyses:
        if a.result is not None or a.role not in ("primary", "subgroup_test"):
            continue
        kept = [r for r in a.left_out if getattr(r, "excluded_by", None)
                and "ineligible-term" not in str(r.excluded_by)]  # a study not eligible: no fix brings it in
        if not kept:
            continue
        rules = sorted({x.strip() for r in kept for x in str(r.excluded_by).split(",")})
        cells = list(dict.fromkeys(f"{r.sheet}!{r.row}:{r.row}" for r in kept if r.sheet and r.row))
        out.append({"id": a.id, "label": a.label, "n": len(kept), "rules": rules,
                    "cells": cells[:12], "more": max(0, len(cells) - 12),
                    "anchor": "a-" + plot_name(a.id).replace("@", "-").replace(".", "-")})
    return out


def _data_header(a: Any) -> str:
    """The header of a study table's data column, in the outcome's terms."""
    if a.kind == "proportion":
        return "events/n"
    if a.kind == "median":
        return "median (95% CI)" + (f", {a.unit}" if getattr(a, "unit", None) else "")
    if a.kind == "binary":
        return "events/total: intervention vs control"
    if a.kind == "continuous":
        return "mean (SD), n: intervention vs control" + (f" ({a.unit})" if a.unit else "")
    return f"{a.effect_label or 'effect'} (95% CI) as reported"


def _setting_name(code: str) -> str:
    names = {"PLO-REML": "logit, REML", "GLMM": "GLMM (binomial-normal)", "PFT-REML": "Freeman-Tukey, REML",
             "PAS-REML": "arcsine, REML", "PLO-DL": "logit, DerSimonian-Laird",
             "PLO-REML-HK": "logit, REML, Knapp-Hartung", "REML": "REML", "DL": "DerSimonian-Laird",
             "REML-HK": "REML, Knapp-Hartung"}
    return names.get(code, code)


_ENV: list[Any] = []


def _env():
    """The page's jinja2 environment, made once per process. Compiling the template costs about a
    quarter of a second, so its compiled code is kept between runs in jinja2's own bytecode cache (a
    private folder of the user's in the temporary directory, checked by jinja2); a cache that cannot
    be read or written is simply not used."""
    if _ENV:
        return _ENV[0]
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("curation", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, bytecode_cache=_bytecode_cache())
    _ENV.append(env)
    return env


def _bytecode_cache():
    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        """jinja2's cache, but an OS error (a read-only or full temporary disk) only skips it."""

        def load_bytecode(self, bucket):
            try:
                super().load_bytecode(bucket)
            except Exception:  # noqa: BLE001 - a stale or unreadable cache entry: compile again
                bucket.reset()

        def dump_bytecode(self, bucket):
            try:
                super().dump_bytecode(bucket)
            except Exception:  # noqa: BLE001 - nothing cached, nothing lost
                pass

    try:
        return QuietCache(pattern="curation-%s.cache")
    except Exception:  # noqa: BLE001 - no safe temporary folder: no cache
        return None


def _prisma(v: Any, primaries: Sequence[Any]) -> list[str]:
    s = v.summary
    parts = [f"{s.rows_read} rows read from {s.forms} form{'s' if s.forms != 1 else ''} ({s.studies} "
             f"{'study' if s.studies == 1 else 'studies'})"]
    excl = ", ".join(f"{k} {d['excluded']}" for k, d in s.by_sheet.items() if d["excluded"])
    parts.append(f"{s.rows_excluded} excluded from every analysis by errors" + (f" ({excl})" if excl else ""))
    parts.append(f"{s.rows_passed} passed into the clean dataset"
                 + (f", {s.rows_restricted} of them kept out of the analyses that use a field with an error"
                    if getattr(s, "rows_restricted", 0) else ""))
    pooled = [a for a in primaries if a.role == "primary" and not a.outcome.startswith("ae")]
    if pooled:
        parts.append("pooled: " + ", ".join(f"{a.id.upper()} k = {a.k}" for a in pooled))
    return parts


def _page(context: dict[str, Any]) -> str:
    return _env().get_template("report.html.j2").render(**context)


def render_report(run: Any, svgs: dict[str, str], *, notes: Sequence[str] = (),
                  files: dict[str, str] | None = None) -> str:
    """``report.html`` of a :class:`curation.run.RunResult` (``svgs``: SVG text by ``plots/<stem>``;
    ``files``: the plot file written for a stem, to link to)."""
    from .analyses import fmt_estimate, fmt_value, plot_name

    v = run.validation
    primaries = run.primary()
    analyses = [_analysis_view(run, a, svgs, n, files) for n, a in enumerate(primaries)]
    fix = []
    by_id = {a.id: a for a in run.analyses}
    groups = run.fix_first()
    for g in groups[:FIX_ROWS]:
        effects = []
        for e in g["effects"]:
            unit = "points" if e.kind == "proportion" else "months" if e.kind == "median" else ""
            shown = by_id.get(e.analysis_id, e.kind)  # the analysis: its outcome's own terms
            before, after = fmt_estimate(e.without, shown), fmt_estimate(e.with_, shown)
            same = (e.without is not None and e.with_ is not None and
                    fmt_value(e.without.estimate, shown) == fmt_value(e.with_.estimate, shown))
            effects.append({
                "label": e.analysis_label, "before": before,
                "after": "no change at the precision shown" if same else after,
                "delta": "" if e.delta is None or same else f"{e.delta:+.1f} {unit}",
                "anchor": "a-" + plot_name(e.analysis_id.split(":")[0]).replace("@", "-").replace(".", "-")})
        fix.append({"cell": g["cell"], "file": _short(g["file"]), "study": g["study_id"], "cohort": g["cohort"],
                    "errors": list(g["errors"]), "messages": list(dict.fromkeys(g["messages"])),
                    "replaces": g["effects"][0].replaces, "effects": effects,
                    "ineligible": bool(getattr(g["effects"][0], "ineligible", False))})
    return _page(dict(
        title=f"curate run: {run.schema.name}", schema=run.schema.name, generated=run.generated,
        forms=[_short(n) for n in run.names], summary=_summary_view(v), prisma=_prisma(v, primaries),
        findings=data_island(_finding_rows(v.finding_list)), filters=_filters(v.finding_list), analyses=analyses,
        fix=fix, n_fix=len(groups), emptied=emptied_analyses(primaries), notes=list(run.notes) + list(notes),
        with_analyses=True, n_findings=len(v.finding_list), **sources_context(run)))


def sources_context(run: Any) -> dict[str, Any]:
    """The page's Sources section (``curate run --sources``): ``sources`` (one item per study, see
    :func:`curation.verification.sources_view`) and ``sources_total`` (the counts of the run);
    ``{}`` for a run that was not checked against its articles."""
    if getattr(run, "sources", None) is None:
        return {}
    from .verification import counts, sources_view

    entries = list(getattr(run, "verification", ()))
    c = counts(entries)
    checked = sum(n for s, n in c.items() if s != "unreadable")
    return {"sources": sources_view(entries), "sources_folder": Path(run.sources).name or str(run.sources),
            "sources_total": {**c, "checked": checked,
                              "share": f"{100 * c['found'] / checked:.0f}%" if checked else "-"}}


def render_validation_page(result: Any, *, verification: Sequence[Any] = (), sources: str | Path | None = None,
                           title: str = "curate validate") -> str:
    """The findings page of ``curate validate --report`` (the run page without analyses). With
    ``sources`` (the folder checked) and its ``verification`` entries, the page has the Sources
    section too (``curate verify --report``)."""
    from types import SimpleNamespace

    checked = sources_context(SimpleNamespace(sources=sources, verification=tuple(verification)))
    return _page(dict(
        title=f"{title}: {result.schema.name}", schema=result.schema.name, generated=None,
        forms=[_short(n) for n in result.files], summary=_summary_view(result), prisma=_prisma(result, []),
        findings=data_island(_finding_rows(result.finding_list)), filters=_filters(result.finding_list), analyses=[],
        fix=[], n_fix=0, emptied=[], notes=[], with_analyses=False, n_findings=len(result.finding_list), **checked))


def _filters(findings: Sequence[Finding]) -> dict[str, list[str]]:
    """The values of each filter (the study list is filled in by the page's script, from the data)."""
    sev = [s for s in ("error", "warning", "info") if any(f.severity == s for f in findings)]
    return {"severity": sev, "rule": sorted({f.rule for f in findings}),
            "sheet": sorted({f.sheet for f in findings if f.sheet})}

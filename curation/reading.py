"""Reading extraction forms: workbook -> raw sheets with cell provenance.

Values are read with python-calamine (fast, read-only). openpyxl is opened only where calamine
cannot tell: a workbook with formulas (to find a formula without a cached value) or with
percentage number formats (0.876 shown as 87.6%). Every value keeps its provenance: file,
sheet, Excel row (1-based, header included) and column letter.

Reading never raises for bad *data*; it raises :class:`UnusableInputError` only for a file that
is not a usable form (not a workbook, no contract sheet, a sheet whose headers match no field).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnusableInputError
from .findings import Finding
from .schema import ReviewSchema, compact, fold


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


@dataclass(frozen=True)
class RawWorkbook:
    """A form as read: its contract sheets and the findings reading made."""

    file: str
    sheets: dict[str, RawSheet]
    findings: tuple[Finding, ...]
    sheet_titles: dict[str, str]


def _match_headers(schema: ReviewSchema, sheet: str, header: list[Any]) -> tuple[dict[str, int], dict[str, int], list[tuple[str, int, str]]]:
    """Map header cells to field keys: exact key, folded key, or a declared alias."""
    spec = schema.sheets[sheet]
    table: dict[str, str] = {}
    for key, fs in spec.fields.items():
        table.setdefault(header_key(key), key)
    for key, fs in spec.fields.items():
        for alias in fs.aliases:
            table.setdefault(header_key(alias), key)
            table.setdefault("~" + compact(alias), key)
    matched: dict[str, int] = {}
    extra: dict[str, int] = {}
    duplicates: list[tuple[str, int, str]] = []
    for idx, cell in enumerate(header):
        if cell is None or cell == "":
            continue
        text = str(cell).strip()
        if not text:
            continue
        key = table.get(header_key(text)) or table.get("~" + compact(text))
        if key is None:
            name = text
            n = 2
            while name in extra:
                name = f"{text} ({n})"
                n += 1
            extra[name] = idx
        elif key in matched:
            duplicates.append((text, idx, key))
        else:
            matched[key] = idx
    return matched, extra, duplicates


def _closest(word: str, choices: list[str]) -> str | None:
    hits = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return hits[0] if hits else None


def _openpyxl_extras(path: Any, wanted: dict[str, tuple[str, dict[str, int], int, list[int]]],
                     need_formulas: bool, need_percent: bool, percent_fields: dict[str, set[str]]):
    """One openpyxl pass: formula cells and percent-formatted cells of the wanted sheets.

    Returns ``{title: (formula_cells: set[(row, col)], percent: dict[field, set[row]])}``.
    """
    import openpyxl

    out: dict[str, tuple[set, dict[str, set]]] = {}
    wb = openpyxl.load_workbook(path, read_only=True, data_only=False, keep_links=False)
    try:
        for title, (sheet, columns, header_row, _rows) in wanted.items():
            ws = wb[title]
            formulas: set = set()
            percent: dict[str, set] = {}
            pct_cols = {columns[f]: f for f in percent_fields.get(sheet, ()) if f in columns}
            for row in ws.iter_rows(min_row=header_row + 1):
                for cell in row:
                    if getattr(cell, "value", None) is None:
                        continue
                    col0 = cell.column - 1
                    if need_formulas and isinstance(cell.value, str) and cell.value.startswith("="):
                        formulas.add((cell.row, col0))
                    if need_percent and col0 in pct_cols and "%" in (cell.number_format or ""):
                        percent.setdefault(pct_cols[col0], set()).add(cell.row)
            out[title] = (formulas, percent)
    finally:
        wb.close()
    return out


def read_workbook(path: str | Path, schema: ReviewSchema, *, display_name: str | None = None,
                  limits: Any = None, data: bytes | None = None) -> RawWorkbook:
    """Read one form's contract sheets with provenance.

    Parameters
    ----------
    path : str or Path
        The ``.xlsx`` form. It is opened read-only and never written to.
    schema : ReviewSchema
        Which sheets and fields to look for.
    display_name : str, optional
        The name findings use for the file (default: the path as given).
    limits : curation.safety.Limits, optional
        Size limits checked before parsing.
    data : bytes, optional
        The form's bytes, read once beforehand (a snapshot): everything is read from these and
        the file at ``path`` is not opened.

    Returns
    -------
    RawWorkbook

    Raises
    ------
    UnusableInputError
        Not a readable workbook, or none of the schema's sheets is in it.
    """
    from python_calamine import CalamineWorkbook

    from .safety import check_workbook

    path = Path(path)
    name = display_name or str(path)
    if limits is None:
        from .validation import limits_for

        limits = limits_for(schema)
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
    findings: list[Finding] = []
    titles = {sheet_key(t): t for t in wb.sheet_names}
    wanted = {sheet_key(s): s for s in schema.sheets}
    for key, sheet in wanted.items():
        same = [t for t in wb.sheet_names if sheet_key(t) == key]
        if len(same) > 1:
            raise UnusableInputError(
                f"{name}: {len(same)} sheets match {sheet!r} ({', '.join(repr(t) for t in same)}), so it is not clear "
                "which holds the data: keep one of them (rename or delete the others) and save the form again")
    present = {wanted[k]: titles[k] for k in wanted if k in titles}
    if not present:
        close = {t: _closest(sheet_key(t), list(wanted)) for t in wb.sheet_names}
        hint = "; ".join(f"{t!r} looks like {wanted[c]!r}" for t, c in close.items() if c)
        raise UnusableInputError(
            f"{name}: none of the form's sheets ({', '.join(schema.sheets)}) is in this workbook "
            f"(found: {', '.join(repr(t) for t in wb.sheet_names) or 'no sheets'})"
            + (f"; {hint}" if hint else "") + ". Start from `curate template`.")
    for sheet in schema.sheets:
        if sheet not in present:
            findings.append(Finding(name, sheet, None, None, None, None, "missing-sheet", "warning",
                                    f"the workbook has no {sheet!r} sheet, so it contributes no {sheet} rows "
                                    f"(sheets found: {', '.join(wb.sheet_names)})"))

    grids: dict[str, tuple[list[list[Any]], list]] = {}
    layout: dict[str, tuple[str, dict[str, int], int, list[int]]] = {}
    sheets: dict[str, RawSheet] = {}
    for sheet, title in present.items():
        ws = wb.get_sheet_by_name(title)
        try:
            grid = ws.to_python(skip_empty_area=False)
            merged = ws.merged_cell_ranges or []
        except Exception as exc:
            raise UnusableInputError(f"{name}: sheet {title!r} cannot be read ({str(exc).splitlines()[0][:160]})") from None
        # merged areas may reach below the last value: extend the grid so they can be filled
        last = max([r1 for (_r0, _c0), (r1, _c1) in merged] + [len(grid) - 1])
        width = max([len(r) for r in grid] + [c1 + 1 for (_r0, _c0), (_r1, c1) in merged] + [0])
        while len(grid) <= last:
            grid.append([""] * width)
        if any(len(r) != width for r in grid):
            grid = [list(r) + [""] * (width - len(r)) for r in grid]
        arr = np.empty((len(grid), width), dtype=object)
        if len(grid) and width:
            arr[:, :] = grid
        filled = (arr != "") & (arr != None)  # noqa: E711 - elementwise
        nonempty_rows = np.flatnonzero(filled.any(axis=1)) if width else np.zeros(0, int)
        header_idx = int(nonempty_rows[0]) if len(nonempty_rows) else None
        if header_idx is None:
            findings.append(Finding(name, sheet, None, None, None, None, "empty-sheet", "info",
                                    f"sheet {title!r} is empty: no header row and no data"))
            continue
        header = list(arr[header_idx])
        matched, extra, dups = _match_headers(schema, sheet, header)
        if not matched:
            expected = list(schema.sheets[sheet].fields)
            found = [str(v).strip() for v in header if v not in ("", None)]
            close = [f"{f!r} is close to {c!r}" for f in found[:20] if (c := _closest(header_key(f), expected))]
            raise UnusableInputError(
                f"{name}: sheet {title!r}: no header in row {header_idx + 1} matches a field "
                f"(found {', '.join(repr(f) for f in found[:8])}{' ...' if len(found) > 8 else ''}; "
                f"expected {', '.join(expected[:8])} ...)" + (f"; {close[0]}" if close else "")
                + ". The first non-empty row must hold the field names.")
        layout[title] = (sheet, matched, header_idx + 1, [])
        grids[title] = (arr, merged)
        spec = schema.sheets[sheet]
        for text, idx, key in dups:
            findings.append(Finding(name, sheet, header_idx + 1, column_letter(idx), key, None, "duplicate-column",
                                    "warning", f"header {text!r} ({sheet}!{column_letter(idx)}{header_idx + 1}) "
                                    f"matches field {key!r} again, already read from column "
                                    f"{column_letter(matched[key])}; this column is ignored", text))
        for header_text, idx in extra.items():
            close = _closest(header_key(header_text), list(spec.fields))
            findings.append(Finding(name, sheet, header_idx + 1, column_letter(idx), None, None, "unknown-column",
                                    "info", f"column {header_text!r} ({sheet}!{column_letter(idx)}{header_idx + 1}) "
                                    "matches no field; kept in the form, not checked"
                                    + (f" (did you mean {close!r}?)" if close else ""), header_text))
        for key, fs in spec.fields.items():
            if key not in matched and not fs.metadata:  # a form may leave out metadata columns
                findings.append(Finding(name, sheet, header_idx + 1, None, key, None, "missing-column",
                                        "error" if fs.required else "info",
                                        f"sheet {sheet!r} has no column for {key!r}"
                                        + (" (required: every row is excluded)" if fs.required else
                                           " (treated as empty)")))
        # fill merged areas with their top-left value, and say so
        for (r0, c0), (r1, c1) in merged:
            if r1 <= header_idx:
                continue
            top_left = arr[r0, c0]
            arr[max(r0, header_idx + 1):r1 + 1, c0:c1 + 1] = top_left
            filled[max(r0, header_idx + 1):r1 + 1, c0:c1 + 1] = top_left not in ("", None)
            ref = f"{column_letter(c0)}{r0 + 1}:{column_letter(c1)}{r1 + 1}"
            fld = next((k for k, i in matched.items() if c0 <= i <= c1), None)
            for r in range(max(r0, header_idx + 1), r1 + 1):  # each row that got a value it did not type
                findings.append(Finding(name, sheet, r + 1, column_letter(c0), fld, None, "merged-cell", "warning",
                                        f"{sheet}!{column_letter(c0)}{r + 1} is part of the merged cells {sheet}!{ref}: "
                                        f"read the top-left value {top_left!r}; unmerge them and fill each row",
                                        top_left))
        data_idx = np.flatnonzero(filled[header_idx + 1:].any(axis=1)) + header_idx + 1
        layout[title][3].extend(int(i) for i in data_idx)
        cols = {k: column_letter(i) for k, i in matched.items()}

        def column_values(i: int, _arr=arr, _rows=data_idx, _filled=filled) -> np.ndarray:
            out = _arr[_rows, i]
            out[~_filled[_rows, i]] = None
            return out

        sheets[sheet] = RawSheet(
            file=name, sheet=sheet, title=title, header_row=header_idx + 1, columns=cols,
            extra_columns={h: column_letter(i) for h, i in extra.items()},
            rows=(data_idx + 1).tolist(),
            values={k: column_values(i) for k, i in matched.items()},
            extra_values={h: column_values(i) for h, i in extra.items()},
        )
    wb.close()

    percent_fields = {s: {k for k, f in schema.sheets[s].fields.items() if f.type == "percentage"}
                      for s in schema.sheets}
    need_percent = bool(getattr(info, "has_percent_formats", True)) and any(
        set(sheets[s].columns) & percent_fields[s] for s in sheets)
    need_formulas = bool(getattr(info, "has_formulas", True))
    if (need_percent or need_formulas) and layout:
        try:
            import io

            source = io.BytesIO(data) if data is not None else path
            extras = _openpyxl_extras(source, layout, need_formulas, need_percent, percent_fields)
        except Exception as exc:
            raise UnusableInputError(f"{name}: cannot be read ({type(exc).__name__}: {str(exc)[:160]})") from None
        for title, (formulas, percent) in extras.items():
            sheet, matched, _h, data_idx = layout[title]
            raw = sheets[sheet]
            by_col = {i: k for k, i in matched.items()}
            pos_of_row = {r + 1: p for p, r in enumerate(data_idx)}
            pcells = {}
            for fld, rows in percent.items():
                pcells[fld] = frozenset(pos_of_row[r] for r in rows if r in pos_of_row)
            grid = grids[title][0]
            for (r, c) in sorted(formulas):
                if c in by_col and r in pos_of_row and grid[r - 1, c] in ("", None):
                    fld = by_col[c]
                    findings.append(Finding(name, sheet, r, column_letter(c), fld, None, "formula-without-value",
                                            "error", f"{sheet}!{column_letter(c)}{r} holds a formula with no saved "
                                            "value; open the form in Excel, let it calculate, and save it "
                                            "(or type the value)", None))
            if pcells:
                sheets[sheet] = RawSheet(**{**raw.__dict__, "percent_cells": pcells})
    return RawWorkbook(file=name, sheets=sheets, findings=tuple(findings), sheet_titles=present)


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

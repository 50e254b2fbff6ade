"""A form and a table in one sheet (layouts.md v2, shape 3; curation.layout.formtables).

One sheet per study, the study's fields as label | value pairs, and below them (or beside them) the study's
adverse events as a small table with its own header row and no study column: the table's rows belong to the
study the form names. Each workbook is built with openpyxl here, as a review team builds one; each test asserts
the values read (and their cells), the findings and the cell account.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from curation.layout import load_layout, map_form
from curation.schema import load_schema
from curation.validation import validate

SCHEMA = load_schema(None)

LABELS = ["First author", "Year", "Design", "N enrolled", "Evaluable pts", "CR", "PR", "SD", "PD"]
#: NETTER-1's 177Lu arm and Brabander 2017 (figures after the published abstracts, as in tests/renderings.py)
STUDIES = {"Strosberg 2017": ["Strosberg", 2017, "RCT", 116, 101, 1, 17, 70, 13],
           "Brabander 2017": ["Brabander", 2017, "retrospective", 610, 443, 9, 164, 190, 80]}
AE_HEADER = ["Adverse event", "Grade 3-4", "Any grade", "N safety"]
AES = {"Strosberg 2017": [["Lymphopenia", 10, 21, 111], ["Thrombocytopenia", 2, 28, 111]],
       "Brabander 2017": [["MDS", 9, 9, 610], ["AML", 4, 4, 610]]}


def _form(ws, name: str, *, header=AE_HEADER, beside: bool = False, labels=LABELS, values=None) -> None:
    """One study's form in A:B, its adverse events below it (after a blank row) or beside it (from D1)."""
    values = values or STUDIES[name]
    for i, (label, v) in enumerate(zip(labels, values), 1):
        ws.cell(i, 1, label)
        ws.cell(i, 2, v)
    r0, c0 = (1, 4) if beside else (len(labels) + 2, 1)
    for j, h in enumerate(header):
        ws.cell(r0, c0 + j, h)
    for i, row in enumerate(AES[name], 1):
        for j, v in enumerate(row):
            ws.cell(r0 + i, c0 + j, v)


def forms_workbook(path: Path, beside=False, **kw) -> Path:
    """``beside``: True, False, or "mixed" (the first sheet's table beside its form, the second's below)."""
    wb = openpyxl.Workbook()
    for k, name in enumerate(STUDIES):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = name
        _form(ws, name, beside=(k == 0) if beside == "mixed" else beside, **kw)
    wb.save(path)
    return path


def forms_folder(folder: Path) -> Path:
    """One workbook per study (copies of one blank form), each a single sheet named after its study."""
    folder.mkdir()
    for name in STUDIES:
        wb = openpyxl.Workbook()
        wb.active.title = name
        _form(wb.active, name)
        wb.save(folder / f"{name.replace(' ', '_')}.xlsx")
    return folder


def _aes(r) -> list[tuple]:
    t = r.tables["adverse_events"].data
    return sorted(zip(t["study_id"], t["ae_term"].str.lower(), t["grade3plus_n"], t["any_grade_n"], t["n_safety"]))


def _warnings(r, rule=None) -> list:
    return [(f.rule, f.cell, f.message) for f in r.finding_list
            if f.severity in ("error", "warning") and (rule is None or f.rule == rule)]


EXPECTED = [("Brabander2017", "aml", 4, 4, 610), ("Brabander2017", "mds", 9, 9, 610),
            ("Strosberg2017", "lymphopenia", 10, 21, 111), ("Strosberg2017", "thrombocytopenia", 2, 28, 111)]


@pytest.mark.parametrize("beside", [False, True, "mixed"], ids=["below", "beside", "mixed"])
def test_a_table_inside_each_form_is_read_with_the_forms_study(tmp_path, beside):
    r = validate(forms_workbook(tmp_path / "forms.xlsx", beside=beside))
    assert _aes(r) == EXPECTED
    s = r.tables["studies"].data.set_index("study_id")
    assert s.loc["Strosberg2017", "n_enrolled"] == 116 and s.loc["Brabander2017", "design"] == "retrospective"
    o = r.tables["outcomes"].data.set_index("study_id")
    assert o.loc["Brabander2017", "pr"] == 164
    t = r.tables["adverse_events"]
    i = [str(x).lower() for x in t.data["ae_term"]].index("thrombocytopenia")
    cell = "E3" if beside in (True, "mixed") else "B13"   # each value keeps its own sheet and cell
    assert t.ref(i, "grade3plus_n") == f"'Strosberg 2017'!{cell}"
    assert not _warnings(r, "unread-data") and not _warnings(r, "missing-sheet"), _warnings(r)
    assert not [w for w in _warnings(r) if w[0] != "schema-fits-poorly"], _warnings(r)  # (a small form)
    cells = next(iter(r.summary.cells.values()))
    # 9 labels + 4 table headers; 9 values + 8 table cells; nothing left unread
    assert cells["Strosberg 2017"] == {"read": 17, "headers": 13, "non_data": 0, "not_read": 0, "total": 30}
    info = [f.message for f in r.finding_list if f.rule == "inferred-layout" and "inside the form" in f.message]
    assert len(info) == 2 and "adverse_events" in info[0], info


def test_a_slip_in_the_table_is_reported_at_its_cell(tmp_path):
    p = forms_workbook(tmp_path / "forms.xlsx")
    wb = openpyxl.load_workbook(p)
    wb["Strosberg 2017"]["B12"] = 30   # grade 3-4 lymphopenia 10 typed 30: more than any grade (21)
    wb.save(p)
    r = validate(p)
    bad = [f for f in r.finding_list if f.rule.startswith("adverse-event") and f.severity == "error"]
    assert bad and {f.sheet for f in bad} == {"Strosberg 2017"} and {f.row for f in bad} == {12}, \
        [(f.rule, f.cell, f.message) for f in r.finding_list if f.severity == "error"]


def test_a_folder_of_per_study_workbooks_each_with_its_table(tmp_path):
    r = validate(forms_folder(tmp_path / "forms"))
    assert _aes(r) == EXPECTED
    assert sorted(r.tables["studies"].data["study_id"]) == ["Brabander2017", "Strosberg2017"]
    assert not _warnings(r, "unread-data") and not _warnings(r, "missing-sheet"), _warnings(r)


def test_a_table_whose_header_names_no_field_is_a_warning_never_read_silently(tmp_path):
    r = validate(forms_workbook(tmp_path / "forms.xlsx", header=["Event", "Severe", "All", "Denominator"]))
    unread = _warnings(r, "unread-data")
    assert {w[1].split("!")[0].strip("'") for w in unread} == set(STUDIES), unread
    assert "adverse_events" not in r.tables or r.tables["adverse_events"].data.empty
    cells = next(iter(r.summary.cells.values()))
    assert cells["Strosberg 2017"]["not_read"] >= 6   # its figures (and header) are counted as not read


def test_a_table_under_a_form_that_names_no_study_is_not_read_with_a_warning(tmp_path):
    """The form names no study (no first author or year label, the sheet's name is not 'Author year'): the table's
    rows cannot be given one, so they are not read, with a warning naming its range."""
    p = tmp_path / "form.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Form A"
    _form(wb.active, "Strosberg 2017", labels=LABELS[2:], values=STUDIES["Strosberg 2017"][2:])
    wb.save(p)
    r = validate(p)
    (w,) = [w for w in _warnings(r, "unread-data") if "inside the form" in w[2]]
    assert "'Form A'!A9:D11" in w[2] and "names no study" in w[2], w
    assert "adverse_events" not in r.tables or r.tables["adverse_events"].data.empty


def test_a_table_under_a_transposed_sheet_of_two_studies_is_not_read_with_a_warning(tmp_path):
    """Two studies side by side (a record per column) and one table below with no study column: whose rows?"""
    p = tmp_path / "form.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    for i, label in enumerate(LABELS, 1):
        ws.cell(i, 1, label)
        for k, values in enumerate(STUDIES.values(), 2):
            ws.cell(i, k, values[i - 1])
    for j, h in enumerate(AE_HEADER, 1):
        ws.cell(11, j, h)
    for i, row in enumerate(AES["Strosberg 2017"], 12):
        for j, v in enumerate(row, 1):
            ws.cell(i, j, v)
    wb.save(p)
    r = validate(p)
    (w,) = [w for w in _warnings(r, "unread-data") if "inside the form" in w[2]]
    assert "names 2 studies" in w[2], w
    assert sorted(r.tables["studies"].data["study_id"]) == ["Brabander2017", "Strosberg2017"]


def test_map_writes_the_table_and_layout_reads_it_back_with_the_same_findings(tmp_path):
    p = forms_workbook(tmp_path / "forms.xlsx")
    layout = map_form(p, SCHEMA)
    (sl,) = [s for s in layout.sheets if s.sheet == "Strosberg 2017"]
    (ft,) = sl.form_tables
    assert (ft.table, ft.range, ft.header_row, ft.study) == ("adverse_events", "A11:D13", 11, "form")
    assert [(c.column, c.parts["value"]) for c in ft.columns] == [("A", "ae_term"), ("B", "grade3plus_n"),
                                                                  ("C", "any_grade_n"), ("D", "n_safety")]
    lay = tmp_path / "layout.yaml"
    from click.testing import CliRunner

    from curation.cli import main

    res = CliRunner().invoke(main, ["map", str(p), "-o", str(lay)])
    assert res.exit_code == 0, res.output
    assert "formTables:" in lay.read_text() and "table inside the form: A11:D13 -> adverse_events" in \
        " ".join(res.output.split())
    a, b = validate(p), validate(p, layout=load_layout(lay))
    key = lambda r: sorted((f.rule, f.severity, f.cell or "") for f in r.finding_list  # noqa: E731
                           if f.rule != "schema-fits-poorly")
    assert key(a) == key(b)
    assert _aes(b) == EXPECTED


def test_a_layout_whose_table_header_changed_is_refused(tmp_path):
    p = forms_workbook(tmp_path / "forms.xlsx")
    lay = tmp_path / "layout.yaml"
    lay.write_text(map_form(p, SCHEMA).to_yaml(), encoding="utf-8")
    wb = openpyxl.load_workbook(p)
    wb["Brabander 2017"]["C11"] = "Any grade events (%)"
    wb.save(p)
    from curation.errors import UnusableInputError

    with pytest.raises(UnusableInputError, match=r"'Brabander 2017'!C11 changed: the layout says 'Any grade'"):
        validate(p, layout=load_layout(lay))


def test_a_table_that_names_its_rows_studies_is_read_under_a_transposed_sheet_of_two_studies(tmp_path):
    """The same two studies side by side, and one table below whose rows name their study (first author, year):
    each row is its own study's (``study: column``)."""
    p = tmp_path / "form.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    for i, label in enumerate(LABELS, 1):
        ws.cell(i, 1, label)
        for k, values in enumerate(STUDIES.values(), 2):
            ws.cell(i, k, values[i - 1])
    for j, h in enumerate(["First author", "Year", *AE_HEADER], 1):
        ws.cell(11, j, h)
    r = 12
    for name, rows in AES.items():
        author, year = name.split()
        for row in rows:
            for j, v in enumerate([author, int(year), *row], 1):
                ws.cell(r, j, v)
            r += 1
    wb.save(p)
    res = validate(p)
    assert _aes(res) == EXPECTED
    (sl,) = map_form(p, SCHEMA).sheets
    assert [(ft.range, ft.study) for ft in sl.form_tables] == [("A11:F15", "column")]
    assert not _warnings(res, "unread-data"), _warnings(res)
    assert next(iter(res.summary.cells.values()))["Extraction"]["not_read"] == 0


def test_a_titled_table_with_a_total_row_accounts_for_every_cell(tmp_path):
    """A title above the table's header is a header; a Total row under it is not data (never an event)."""
    p = forms_workbook(tmp_path / "forms.xlsx")
    wb = openpyxl.load_workbook(p)
    for ws in wb.worksheets:
        ws.insert_rows(11)
        ws["A11"] = "Adverse events (CTCAE v4)"
        last = ws.max_row + 1
        ws.cell(last, 1, "Total")
        ws.cell(last, 2, 19)
    wb.save(p)
    r = validate(p)
    assert _aes(r) == EXPECTED
    assert {f.cell for f in r.finding_list if f.rule == "non-data-row"} == {"'Strosberg 2017'!15:15",
                                                                           "'Brabander 2017'!15:15"}
    cells = next(iter(r.summary.cells.values()))
    assert cells["Strosberg 2017"] == {"read": 17, "headers": 14, "non_data": 2, "not_read": 0, "total": 33}

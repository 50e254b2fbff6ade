"""Shapes of layouts.md v2 beyond the wide table (curation.layout): group heading rows, stacked blocks, one
sheet per subgroup, cells as people type them, and the cell account of every sheet.

Each workbook is built with openpyxl here, the way a review team builds one; each test asserts the values
read, the findings and the cell account (read / headers and labels / non-data / not read).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from curation.layout import map_form
from curation.validation import validate

CURATE = str(Path(sys.executable).parent / "curate")

HEADER = ["Author (year)", "Design", "Agent", "Criteria", "N", "Evaluable pts", "Grade (WHO 2019)", "CR", "PR", "SD",
          "PD", "ORR, n (%)", "mPFS, months (95% CI)"]
# NETTER-1's 177Lu arm and Brabander 2017 (real figures, shared/data), and two cohorts built for the test
PANCREAS = [["Brabander (2017)", "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 133, 133, "mixed", 7, 66, 40, 20,
             "73 (54.9)", "30 (24–36)"],
            ["Zandee (2019)", "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 80, 76, "G1-2", 1, 20, 40, 15,
             "21 (27.6)", "25 (19–31)"]]
MIDGUT = [["Strosberg (2017)", "RCT", "Lutathera", "RECIST 1.1", 116, 101, "G1-2", 1, 17, 70, 13, "18 (17.8)",
           "28.4 (19.4–35.8)"]]


def _rows(ws, start, rows):
    r = start
    for row in rows:
        for j, v in enumerate(row, 1):
            ws.cell(r, j, v)
        r += 1
    return r


def _findings(r, rule=None):
    return [f for f in r.finding_list if rule is None or f.rule == rule]


def _account(r, sheet):
    (file_cells,) = r.summary.cells.values()
    return file_cells[sheet]


def grouped_workbook(path: Path, second_heading: str = "Midgut NET", merge: bool = True) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data extraction"
    for j, v in enumerate(HEADER, 1):
        ws.cell(1, j, v)
    ws.cell(2, 1, "Pancreatic NET")
    if merge:
        ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=len(HEADER))
    r = _rows(ws, 3, PANCREAS)
    ws.cell(r, 1, second_heading)
    if merge:
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=len(HEADER))
    _rows(ws, r + 1, MIDGUT)
    wb.save(path)
    return path


@pytest.mark.parametrize("merge", [True, False])
def test_group_heading_rows_give_their_rows_a_label_value(tmp_path, merge):
    r = validate(grouped_workbook(tmp_path / "grouped.xlsx", merge=merge))
    clean = r.clean.set_index("study_id")
    assert clean.loc["Brabander2017", "primary_site"] == "pancreas"
    assert clean.loc["Zandee2019", "primary_site"] == "pancreas"
    assert clean.loc["Strosberg2017", "primary_site"] == "midgut"
    labels = [f for f in _findings(r, "inferred-layout") if "is a label" in f.message]
    assert {f.row for f in labels} == {2, 5}, [f.message for f in labels]
    assert not [f for f in r.finding_list if f.severity == "error"], [f.message for f in r.finding_list]
    acc = _account(r, "Data extraction")
    # 3 records x 13 cells read; the header row and two headings are headers and labels; nothing unread
    assert acc == {"read": 39, "headers": 15, "non_data": 0, "not_read": 0, "total": 54}


def test_a_heading_matching_no_vocabulary_is_a_warning_and_its_rows_keep_what_they_state(tmp_path):
    r = validate(grouped_workbook(tmp_path / "grouped.xlsx", second_heading="Cohort B (second centre)"))
    heads = _findings(r, "group-heading")
    assert [(f.row, f.severity) for f in heads] == [(5, "warning")], [f.message for f in r.finding_list]
    clean = r.clean.set_index("study_id")
    assert clean.loc["Strosberg2017", "primary_site"] is None or clean.loc["Strosberg2017", "primary_site"] != \
        "pancreas"  # never the heading above the unmatched one
    assert clean.loc["Brabander2017", "primary_site"] == "pancreas"


def test_counts_as_people_type_them(tmp_path):
    rows = [list(x) for x in MIDGUT + PANCREAS]
    rows[0][4] = "n=116"
    rows[1][4] = "N = 133"
    rows[2][4] = "80 pts"
    rows[0][12] = "HR 0.80; 95% CI 0.61 to 1.05"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data extraction"
    for j, v in enumerate(HEADER, 1):
        ws.cell(1, j, v)
    _rows(ws, 2, rows)
    wb.save(tmp_path / "typed.xlsx")
    r = validate(tmp_path / "typed.xlsx")
    t = r.tables["studies"].data.set_index("study_id")
    assert list(t.loc[["Strosberg2017", "Brabander2017", "Zandee2019"], "n_enrolled"]) == [116, 133, 80]
    o = r.tables["outcomes"].data.set_index("study_id")
    assert (o.loc["Strosberg2017", "pfs_median"], o.loc["Strosberg2017", "pfs_ci_low"],
            o.loc["Strosberg2017", "pfs_ci_high"]) == (0.80, 0.61, 1.05)
    assert not [f for f in r.finding_list if f.rule == "invalid-number"]


def stacked_workbook(path: Path, titles=("Pancreatic NET", "Midgut NET"), gap: int = 1) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Results"
    ws.cell(1, 1, titles[0])
    for j, v in enumerate(HEADER, 1):
        ws.cell(2, j, v)
    r = _rows(ws, 3, PANCREAS) + gap
    ws.cell(r, 1, titles[1])
    for j, v in enumerate(HEADER, 1):
        ws.cell(r + 1, j, v)
    _rows(ws, r + 2, MIDGUT)
    wb.save(path)
    return path


def test_stacked_blocks_with_titles_naming_a_vocabulary_are_each_read_with_their_label(tmp_path):
    r = validate(stacked_workbook(tmp_path / "stacked.xlsx"))
    clean = r.clean.set_index("study_id")
    assert sorted(clean.index) == ["Brabander2017", "Strosberg2017", "Zandee2019"]
    assert clean.loc["Strosberg2017", "primary_site"] == "midgut"
    assert clean.loc["Zandee2019", "primary_site"] == "pancreas"
    assert not _findings(r, "unread-data")
    acc = _account(r, "Results")
    assert acc["read"] == 39 and acc["not_read"] == 0 and acc["headers"] == 2 + 2 * len(HEADER)


def test_stacked_blocks_whose_titles_name_nothing_are_never_pooled_together(tmp_path):
    r = validate(stacked_workbook(tmp_path / "stacked.xlsx", titles=("UPDRS III", "UPDRS IV")))
    clean = r.clean.set_index("study_id")
    assert sorted(clean.index) == ["Brabander2017", "Zandee2019"]  # the first block only
    unread = _findings(r, "unread-data")
    assert [(f.row, f.severity) for f in unread] == [(6, "warning")], [f.message for f in r.finding_list]
    assert "UPDRS IV" in unread[0].message
    acc = _account(r, "Results")
    assert acc["not_read"] == len(HEADER) and acc["read"] == 26


def test_rows_above_the_header_that_was_chosen_are_never_silently_unread(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data extraction"
    ws.cell(1, 1, "Baseline")
    for j, v in enumerate(["Arm", "Mean age", "SD", "Events"], 1):
        ws.cell(2, j, v)
    for i, row in enumerate([["A", 61.2, 9.1, 12], ["B", 60.4, 8.7, 15]]):
        for j, v in enumerate(row, 1):
            ws.cell(3 + i, j, v)
    for j, v in enumerate(HEADER, 1):
        ws.cell(7, j, v)
    _rows(ws, 8, PANCREAS)
    wb.save(tmp_path / "above.xlsx")
    r = validate(tmp_path / "above.xlsx")
    unread = _findings(r, "unread-data")
    assert unread and unread[0].severity == "warning" and "above the header" in unread[0].message
    assert _account(r, "Data extraction")["not_read"] == 6


def per_sheet_workbook(path: Path, names=("Pancreas", "Midgut")) -> Path:
    wb = openpyxl.Workbook()
    for k, (name, rows) in enumerate(zip(names, (PANCREAS, MIDGUT))):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = name
        for j, v in enumerate(HEADER, 1):
            ws.cell(1, j, v)
        _rows(ws, 2, rows)
    wb.save(path)
    return path


def test_one_sheet_per_subgroup_all_read_with_the_sheet_name_as_label(tmp_path):
    rows = [list(x) for x in MIDGUT]
    r = validate(per_sheet_workbook(tmp_path / "per_site.xlsx"))
    clean = r.clean.set_index("study_id")
    assert sorted(clean.index) == ["Brabander2017", "Strosberg2017", "Zandee2019"]
    assert clean.loc["Strosberg2017", "primary_site"] == "midgut"
    assert clean.loc["Brabander2017", "primary_site"] == "pancreas"
    assert clean.loc["Strosberg2017", "sheet"] == "Midgut" and clean.loc["Zandee2019", "sheet"] == "Pancreas"
    assert not _findings(r, "unread-data") and not _findings(r, "duplicate-key")
    cells = next(iter(r.summary.cells.values()))
    assert cells["Midgut"]["read"] == len(rows[0]) and cells["Pancreas"]["read"] == 2 * len(rows[0])


def test_a_finding_on_a_second_sheet_cites_that_sheet(tmp_path):
    path = per_sheet_workbook(tmp_path / "per_site.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["Midgut"]["G2"] = "G4"  # a rejected grade in the second sheet
    wb.save(path)
    r = validate(path)
    bad = [f for f in r.finding_list if f.field == "grade" and f.severity == "error"]
    assert [f.cell for f in bad] == ["Midgut!G2"], [(f.rule, f.cell) for f in r.finding_list]


def test_sheets_with_the_same_headers_but_names_naming_nothing_are_never_pooled(tmp_path):
    r = validate(per_sheet_workbook(tmp_path / "per_site.xlsx", names=("Centre A", "Centre B")))
    assert sorted(r.clean["study_id"]) == ["Brabander2017", "Zandee2019"]  # the first sheet only
    unread = _findings(r, "unread-data")
    assert [(f.sheet, f.severity) for f in unread] == [("Centre B", "warning")], [f.message for f in r.finding_list]
    cells = next(iter(r.summary.cells.values()))
    assert cells["Centre B"]["not_read"] == 2 * len(HEADER)


def test_cell_account_in_json_and_map(tmp_path):
    path = grouped_workbook(tmp_path / "grouped.xlsx")
    out = tmp_path / "v.json"
    proc = subprocess.run([CURATE, "validate", str(path), "--json", str(out)], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    summary = json.loads(out.read_text())["summary"]
    (sheets,) = summary["cells"].values()
    assert sheets["Data extraction"]["read"] == 39
    assert "cells Data extraction: read 39 / headers and labels 15 / non-data 0 / not read 0" in \
        " ".join(proc.stdout.split())
    lay = tmp_path / "layout.yaml"
    proc = subprocess.run([CURATE, "map", str(path), "-o", str(lay)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "read 39" in proc.stdout
    layout = map_form(path, validate.__globals__["load_schema"](None))
    assert layout.sheets[0].labels == {2: {"primary_site": "pancreas"}, 5: {"primary_site": "midgut"}}


@pytest.mark.parametrize("builder", ["grouped_workbook", "stacked_workbook", "per_sheet_workbook", "form_workbook",
                                     "crosstab_workbook", "transposed_workbook"])
def test_map_then_layout_gives_the_same_findings(tmp_path, builder):
    path = globals()[builder](tmp_path / "form.xlsx")
    lay = tmp_path / "layout.yaml"
    proc = subprocess.run([CURATE, "map", str(path), "-o", str(lay)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    a = validate(path)
    from curation.layout import load_layout

    b = validate(path, layout=load_layout(lay))
    key = lambda r: sorted((f.rule, f.severity, f.cell or "") for f in r.finding_list)  # noqa: E731
    assert key(a) == key(b)
    assert a.clean.equals(b.clean)


STUDIES = [["Strosberg (2017)", "RCT", "Lutathera", "RECIST 1.1", 116],
           ["Brabander (2017)", "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 610]]
LONG_HEADER = ["Study", "Subgroup", "Outcome", "n", "N", "Estimate", "Lower", "Upper", "Unit"]
LONG = [["Strosberg 2017", "overall", "ORR", 18, 101, 17.8, None, None, None],
        ["Strosberg 2017", "overall", "PFS", None, None, 28.4, 19.4, 35.8, "months"],
        ["Strosberg 2017", "overall", "OS", None, None, 48.0, 37.4, 55.2, "months"],
        ["Brabander 2017", "overall", "ORR", 173, 443, 39.1, None, None, None],
        ["Brabander 2017", "overall", "PFS", None, None, 29, 26, 33, "months"],
        ["Brabander 2017", "G3", "ORR", 4, 12, 33.3, None, None, None],
        ["Brabander 2017", "overall", "UPDRS IV", None, None, 3.1, 2.0, 4.2, None]]


def long_workbook(path: Path, rows=LONG, header=LONG_HEADER) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Studies"
    for j, v in enumerate(["Author (year)", "Design", "Agent", "Criteria", "N"], 1):
        ws.cell(1, j, v)
    _rows(ws, 2, STUDIES)
    ws = wb.create_sheet("Results")
    for j, v in enumerate(header, 1):
        ws.cell(1, j, v)
    _rows(ws, 2, rows)
    wb.save(path)
    return path


def test_long_sheet_outcome_x_role_names_the_field(tmp_path):
    r = validate(long_workbook(tmp_path / "long.xlsx"))
    o = r.tables["outcomes"].data.set_index(["study_id", "cohort"])
    assert len(o) == 3  # one record per study and subgroup, not one per outcome row
    s = o.loc[("Strosberg2017", "overall")]
    assert (s["orr_n"], s["n_evaluable"], s["orr_pct"]) == (18, 101, 17.8)
    assert (s["pfs_median"], s["pfs_ci_low"], s["pfs_ci_high"]) == (28.4, 19.4, 35.8)
    assert (s["os_median"], s["os_ci_low"], s["os_ci_high"]) == (48.0, 37.4, 55.2)
    b = o.loc[("Brabander2017", "G3")]
    assert (b["orr_n"], b["n_evaluable"]) == (4, 12)
    assert not _findings(r, "duplicate-key"), [f.message for f in _findings(r, "duplicate-key")]
    # the outcome the schema does not know is not read, with a warning at its row
    unread = _findings(r, "unread-data")
    assert [(f.cell, f.severity) for f in unread] == [("Results!C8", "warning")], [f.message for f in unread]
    # each value keeps its own cell: a finding on PFS cites the PFS row, not the record's first row
    t = r.tables["outcomes"]
    i = list(zip(t.data["study_id"], t.data["cohort"])).index(("Strosberg2017", "overall"))
    assert t.ref(i, "pfs_median") == "Results!F3" and t.ref(i, "orr_pct") == "Results!F2"
    acc = _account(r, "Results")
    assert acc["not_read"] == 3 and acc["headers"] == len(LONG_HEADER) + len(LONG)


def test_long_sheet_finding_cites_the_outcome_row(tmp_path):
    rows = [list(x) for x in LONG]
    rows[1][6] = 40.2  # PFS lower bound above the median: a finding at Results!G3
    r = validate(long_workbook(tmp_path / "long.xlsx", rows=rows))
    cells = {f.cell for f in r.finding_list if f.severity in ("error", "warning") and f.field and "pfs" in f.field}
    assert "Results!G3" in cells or "Results!F3" in cells, [(f.rule, f.cell, f.message) for f in r.finding_list]


def test_long_map_then_layout_gives_the_same_findings_and_a_changed_role_is_refused(tmp_path):
    path = long_workbook(tmp_path / "long.xlsx")
    lay = tmp_path / "layout.yaml"
    proc = subprocess.run([CURATE, "map", str(path), "-o", str(lay)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = lay.read_text()
    assert "shape: long" in text and "outcomeColumn: C" in text
    from curation.layout import load_layout

    a, b = validate(path), validate(path, layout=load_layout(lay))
    key = lambda r: sorted((f.rule, f.severity, f.cell or "") for f in r.finding_list)  # noqa: E731
    assert key(a) == key(b)
    wb = openpyxl.load_workbook(path)
    wb["Results"]["G1"] = None  # the Lower column's header is gone: the layout no longer fits
    wb.save(path)
    proc = subprocess.run([CURATE, "validate", str(path), "--layout", str(lay)], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "G" in proc.stderr, proc.stderr


def test_two_sheets_explaining_a_contract_sheet_equally_well_are_refused_naming_both(tmp_path):
    wb = openpyxl.Workbook()
    for k, (name, rows, header) in enumerate((("First pass", PANCREAS, HEADER),
                                               ("Second pass", MIDGUT, HEADER[:-1] + ["Notes"]))):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = name
        for j, v in enumerate(header, 1):
            ws.cell(1, j, v)
        _rows(ws, 2, [row[:len(header)] for row in rows])
    wb.save(tmp_path / "two.xlsx")
    proc = subprocess.run([CURATE, "validate", str(tmp_path / "two.xlsx")], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "'First pass'" in proc.stderr and "'Second pass'" in proc.stderr and "--layout" in proc.stderr
    lay = tmp_path / "layout.yaml"
    proc = subprocess.run([CURATE, "map", str(tmp_path / "two.xlsx"), "-o", str(lay)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from curation.layout import load_layout

    r = validate(tmp_path / "two.xlsx", layout=load_layout(lay))
    assert len(r.clean) >= 1


FORM_LABELS = ["Design", "Agent", "Criteria", "N enrolled", "Evaluable pts", "CR", "PR", "SD", "PD", "mPFS"]
FORMS = {"Bodei 2011": ["prospective", "177Lu-DOTATATE", "RECIST 1.1", 51, 42, 1, 12, 19, 10, "36 (24–48)"],
         "Strosberg 2017": ["RCT", "Lutathera", "RECIST 1.1", 116, 101, 1, 17, 70, 13, "28.4 (19.4–35.8)"]}


def form_workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    for k, (name, values) in enumerate(FORMS.items()):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = name
        ws.cell(1, 1, "Extraction form")
        for i, (label, v) in enumerate(zip(FORM_LABELS, values)):
            ws.cell(3 + i, 1, label)
            ws.cell(3 + i, 2, v)
    wb.save(path)
    return path


def test_form_style_one_sheet_per_study(tmp_path):
    r = validate(form_workbook(tmp_path / "forms.xlsx"))
    s = r.tables["studies"].data.set_index("study_id")
    assert sorted(s.index) == ["Bodei2011", "Strosberg2017"]
    assert s.loc["Strosberg2017", "n_enrolled"] == 116 and s.loc["Bodei2011", "design"] == "prospective"
    o = r.tables["outcomes"].data.set_index("study_id")
    assert (o.loc["Strosberg2017", "pr"], o.loc["Strosberg2017", "pfs_median"]) == (17, 28.4)
    assert o.loc["Bodei2011", "pfs_ci_high"] == 48
    t = r.tables["outcomes"]
    i = list(t.data["study_id"]).index("Strosberg2017")
    assert t.ref(i, "pr") == "'Strosberg 2017'!B9"  # each value keeps its own sheet and cell
    assert not [f for f in r.finding_list if f.severity == "error"], [(f.rule, f.message) for f in r.finding_list]
    cells = next(iter(r.summary.cells.values()))
    assert cells["Bodei 2011"]["read"] == 10 and cells["Bodei 2011"]["headers"] == 11  # labels and the title
    assert cells["Bodei 2011"]["not_read"] == 0


def crosstab_workbook(path: Path, two_rows: bool = False) -> Path:
    """Adverse events as teams keep them: terms down, study x grade band across (real counts: Brabander 2017,
    NETTER-1 177Lu arm)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Toxicity"
    ws.cell(1, 1, "Adverse event")
    heads = [("Brabander 2017", 610, "Grade 3-4"), ("Brabander 2017", 610, "All grades"),
             ("Strosberg 2017", 111, "Grade 3-4"), ("Strosberg 2017", 111, "Grade 1-2")]
    for j, (study, n, band) in enumerate(heads, 2):
        if two_rows:
            if j in (2, 4):
                ws.cell(1, j, f"{study} (N={n})")
                ws.merge_cells(start_row=1, start_column=j, end_row=1, end_column=j + 1)
            ws.cell(2, j, band)
        else:
            ws.cell(1, j, f"{study} (N={n}) {band}")
    start = 3 if two_rows else 2
    for i, row in enumerate([["Thrombocytopenia", 26, 111, 2, 30], ["Anaemia", 14, 93, 0, 20],
                             ["Nausea", None, 320, 4, 60]]):
        for j, v in enumerate(row, 1):
            ws.cell(start + i, j, v)
    wb.save(path)
    return path


@pytest.mark.parametrize("two_rows", [False, True])
def test_crosstab_terms_down_study_and_grade_band_across(tmp_path, two_rows):
    r = validate(crosstab_workbook(tmp_path / "ae.xlsx", two_rows))
    ae = r.tables["adverse_events"].data.set_index(["study_id", "ae_term"])
    assert ae.loc[("Brabander2017", "thrombocytopenia"), "grade3plus_n"] == 26
    assert ae.loc[("Brabander2017", "thrombocytopenia"), "any_grade_n"] == 111
    assert ae.loc[("Brabander2017", "anaemia"), "n_safety"] == 610
    assert ae.loc[("Strosberg2017", "nausea"), "grade3plus_n"] == 4
    assert ae.loc[("Strosberg2017", "nausea"), "n_safety"] == 111
    assert len(ae) == 6 and not _findings(r, "duplicate-key")
    assert not [f for f in r.finding_list if f.rule == "missing-required"]
    # the Grade 1-2 band names no field: not read, with a warning
    unread = _findings(r, "unread-data")
    assert [(f.column, f.severity) for f in unread] == [("E", "warning")], [f.message for f in unread]
    t = r.tables["adverse_events"]
    i = list(zip(t.data["study_id"], t.data["ae_term"])).index(("Strosberg2017", "anaemia"))
    start = 3 if two_rows else 2
    assert t.ref(i, "grade3plus_n") == f"Toxicity!D{start + 1}"
    acc = _account(r, "Toxicity")
    assert acc["read"] == 8 and acc["not_read"] == 3


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ROLE_NAMES = {"n": ["n", "Events", "Responders"], "N": ["N", "Total", "Denominator"],
              "Estimate": ["Estimate", "Value", "Point estimate"], "Lower": ["Lower", "LCL", "CI lower"],
              "Upper": ["Upper", "UCL", "CI upper"], "Unit": ["Unit", "Units"]}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(3, 9))), names=st.tuples(*(st.sampled_from(v) for v in ROLE_NAMES.values())),
       title_rows=st.integers(0, 2))
def test_long_sheet_reads_the_same_whatever_the_role_wording_and_order(tmp_path, order, names, title_rows):
    """Role columns in any order, named by any of their usual words, under title rows: the same values."""
    header = ["Study", "Subgroup", "Outcome", *names]
    cols = [0, 1, 2, *order]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Studies"
    for j, v in enumerate(["Author (year)", "Design", "Agent", "Criteria", "N"], 1):
        ws.cell(1, j, v)
    _rows(ws, 2, STUDIES)
    ws = wb.create_sheet("Results")
    for i in range(title_rows):
        ws.cell(1 + i, 1, ["Results by outcome", "extracted by AB"][i])
    top = title_rows + (1 if title_rows else 0) + 1
    for j, c in enumerate(cols, 1):
        ws.cell(top, j, header[c])
        for i, row in enumerate(LONG[:6]):
            if row[c] is not None:
                ws.cell(top + 1 + i, j, row[c])
    path = tmp_path / f"long_{'_'.join(map(str, order))}_{title_rows}.xlsx"
    wb.save(path)
    r = validate(path)
    o = r.tables["outcomes"].data.set_index(["study_id", "cohort"])
    s = o.loc[("Strosberg2017", "overall")]
    assert (s["orr_n"], s["n_evaluable"], s["pfs_median"], s["pfs_ci_low"], s["os_ci_high"]) == \
        (18, 101, 28.4, 19.4, 55.2)
    assert len(o) == 3 and not _findings(r, "duplicate-key")


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.sampled_from([("Pancreatic NET", "pancreas"), ("pNET", "pancreas"), ("PanNET", "pancreas"),
                              ("Lung NET", "lung"), ("Gastric", "stomach")]),
       second=st.sampled_from([("Midgut NET", "midgut"), ("Small bowel", "small_intestine"), ("Ileal NET",
                                                                                               "small_intestine")]),
       merge=st.booleans())
def test_group_headings_read_whatever_the_term_people_use(tmp_path, first, second, merge):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data extraction"
    for j, v in enumerate(HEADER, 1):
        ws.cell(1, j, v)
    ws.cell(2, 1, first[0])
    r = _rows(ws, 3, PANCREAS)
    ws.cell(r, 1, second[0])
    _rows(ws, r + 1, MIDGUT)
    if merge:
        for row in (2, r):
            ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=len(HEADER))
    path = tmp_path / f"g_{first[1]}_{second[1]}_{merge}.xlsx"
    wb.save(path)
    clean = validate(path).clean.set_index("study_id")
    assert clean.loc["Zandee2019", "primary_site"] == first[1]
    assert clean.loc["Strosberg2017", "primary_site"] == second[1]


def transposed_workbook(path: Path) -> Path:
    """Studies as columns, fields down (the study's name heads its column)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Summary"
    for k, name in enumerate(FORMS, 2):
        ws.cell(1, k, name)
    for i, label in enumerate(FORM_LABELS):
        ws.cell(2 + i, 1, label)
        for k, values in enumerate(FORMS.values(), 2):
            ws.cell(2 + i, k, values[i])
    wb.save(path)
    return path


def test_transposed_wide_one_record_per_column(tmp_path):
    r = validate(transposed_workbook(tmp_path / "transposed.xlsx"))
    s = r.tables["studies"].data.set_index("study_id")
    assert sorted(s.index) == ["Bodei2011", "Strosberg2017"]
    assert s.loc["Bodei2011", "n_enrolled"] == 51 and s.loc["Strosberg2017", "design"] == "RCT"
    o = r.tables["outcomes"].data.set_index("study_id")
    assert (o.loc["Strosberg2017", "pr"], o.loc["Bodei2011", "pfs_median"]) == (17, 36)
    t = r.tables["outcomes"]
    i = list(t.data["study_id"]).index("Strosberg2017")
    assert t.ref(i, "pr") == "Summary!C8"  # the value's own column and row
    assert not [f for f in r.finding_list if f.severity == "error"], [(f.rule, f.message) for f in r.finding_list]
    acc = _account(r, "Summary")
    assert acc == {"read": 20, "headers": 12, "non_data": 0, "not_read": 0, "total": 32}


# ---------------------------------------------------------------------------------------------------------------
# Transposed sheets whose labels name the study; per-study forms with a column per cohort; the records guard
# ---------------------------------------------------------------------------------------------------------------
TRANSPOSED_CSV = """\ufeffAuthors,Brabander,Brabander,Strosberg,Unal,Unal
year,2017,2017,2017,2023,2023
subgroup,overall,Pancreatic NET,overall,G1-2,G3
design,retrospective,,RCT,retrospective,
Total N,610,,116,73,
N analysed,443,133,101,50,21
Complete responses,9,4,1,1,0
Partial response (n),164,72,17,17,3
Stable disease (n),190,40,70,20,6
PD,80,17,13,21,12
"""


def test_transposed_csv_whose_labels_name_the_study_reads_every_column(tmp_path):
    """A label row naming each column's study (``Authors``, ``year``): one record per column, none lost (the
    reader once kept the first column only, silently)."""
    p = tmp_path / "transposed.csv"
    p.write_text(TRANSPOSED_CSV, encoding="utf-8")
    r = validate(p)
    o = r.tables["outcomes"].data
    got = sorted(zip(o["study_id"], o["cohort"], o["pr"]))
    assert got == [("Brabander2017", "Pancreatic NET", 72), ("Brabander2017", "overall", 164),
                   ("Strosberg2017", "overall", 17), ("Unal2023", "G1-2", 17), ("Unal2023", "G3", 3)], got
    s = r.tables["studies"].data.set_index("study_id")
    assert sorted(s.index) == ["Brabander2017", "Strosberg2017", "Unal2023"]
    assert s.loc["Strosberg2017", "n_enrolled"] == 116 and s.loc["Unal2023", "design"] == "retrospective"
    t = r.tables["outcomes"]
    i = [k for k, (sid, c) in enumerate(zip(o["study_id"], o["cohort"])) if (sid, c) == ("Unal2023", "G3")][0]
    assert t.ref(i, "pd") == "transposed!F10"
    # Unal G3: 0+3+6+12 = 21 = N analysed; Unal G1-2: 1+17+20+21 = 59 != 50, on its own column
    (bad,) = [f for f in r.finding_list if f.rule == "response-sum-mismatch"]
    assert bad.column == "E" and bad.row in (6, 10)  # Unal G1-2's column: its N analysed or its PD
    assert not [f for f in r.finding_list if f.rule == "unread-data"], [f.message for f in r.finding_list]


def cohort_form_workbook(path: Path) -> Path:
    """One sheet per study: its fields in A:B, then its cohorts side by side (fields down, a column each)."""
    wb = openpyxl.Workbook()
    studies = {"Unal 2023": (["retrospective", 73], [("overall", 71, 1, 20, 26, 24), ("G1-2", 50, 1, 17, 20, 21),
                                                     ("G3", 21, 0, 3, 6, 12)]),
               "Sansovini 2013": (["prospective", 52], [("overall", 52, 2, 14, 26, 10)])}
    for k, (name, (fields, cohorts)) in enumerate(studies.items()):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = name
        for i, (label, v) in enumerate(zip(["Design", "Total N"], fields), 1):
            ws.cell(i, 1, label)
            ws.cell(i, 2, v)
        for i, label in enumerate(["Cohort", "N analysed", "CR", "PR", "SD", "PD"], 4):
            ws.cell(i, 1, label)
            for j, c in enumerate(cohorts, 2):
                ws.cell(i, j, c[i - 4])
    wb.save(path)
    return path


def test_a_per_study_form_reads_every_cohort_column_with_the_sheets_study(tmp_path):
    """Several one-study form sheets are the shape (a record per sheet), not a tie; a form sheet with a column per
    cohort gives every cohort, each the sheet's study, and a slip on a second cohort column is reported there."""
    r = validate(cohort_form_workbook(tmp_path / "forms.xlsx"))
    o = r.tables["outcomes"].data
    got = sorted(zip(o["study_id"], o["cohort"], o["pd"]))
    assert got == [("Sansovini2013", "overall", 10), ("Unal2023", "G1-2", 21), ("Unal2023", "G3", 12),
                   ("Unal2023", "overall", 24)], got
    assert sorted(r.tables["studies"].data["study_id"]) == ["Sansovini2013", "Unal2023"]
    (bad,) = [f for f in r.finding_list if f.rule == "response-sum-mismatch"]
    assert (bad.sheet, bad.column) == ("Unal 2023", "C") and bad.row in (5, 9)  # G1-2's N analysed or PD
    # the slip keeps its own record (Unal G1-2) out of the analyses that use its counts, and only that one
    clean = r.clean_tables["outcomes"]
    uses = [c for c in clean.columns if str(c).startswith("in_")]
    by = {(x["study_id"], x["cohort"]): {u: bool(x[u]) for u in uses} for _, x in clean.iterrows()}
    assert by[("Unal2023", "G3")] and all(by[("Unal2023", "G3")].values()), by
    assert all(by[("Unal2023", "overall")].values()), by
    assert ("Unal2023", "G1-2") not in by or not all(by[("Unal2023", "G1-2")].values()), by
    assert not [f for f in r.finding_list if f.rule == "unread-data"], [f.message for f in r.finding_list]


def test_map_then_layout_on_per_study_forms_with_cohort_columns(tmp_path):
    p = cohort_form_workbook(tmp_path / "forms.xlsx")
    layout = tmp_path / "layout.yaml"
    res = subprocess.run([CURATE, "map", str(p), "-o", str(layout)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    a = validate(p)
    from curation.layout import load_layout

    b = validate(p, layout=load_layout(layout))
    key = lambda r: sorted(str((f.sheet, f.row, f.column, f.rule, f.severity)) for f in r.finding_list  # noqa: E731
                           if f.severity in ("error", "warning") and f.rule != "schema-fits-poorly")
    # (schema-fits-poorly is said of inferred layouts only, for every shape: test_map_then_layout_gives_the_same_findings)
    assert key(a) == key(b)


@pytest.mark.parametrize("builder", ["transposed_workbook", "form_workbook", "cohort_form_workbook"])
def test_every_value_cell_read_reaches_a_record(tmp_path, builder):
    """The records guard: a value cell the cell model counts as read is in a record (else a bug)."""
    from curation.layout.binding import SheetContext, _Emit, bind_sheet
    from curation.layout.headers import FieldIndex, needed_fields
    from curation.layout.infer import infer_layout
    from curation.layout.records import read_cells_off_records
    from curation.reading import read_grids
    from curation.schema import load_schema

    schema = load_schema(Path(__file__).resolve().parents[1] / "schemas" / "prrt_177lu.yaml")
    grids = read_grids(globals()[builder](tmp_path / "w.xlsx"))
    layout = infer_layout(grids, schema)
    for sl in layout.sheets:
        grid = next(g for g in grids.sheets if g.title == sl.sheet)
        ctx = SheetContext(schema, FieldIndex.of(schema), grid, sl, _Emit(grids.file, []), needed_fields(schema), True)
        bound = bind_sheet(ctx)
        assert (bound.roles == 1).sum() > 0
        assert read_cells_off_records(bound, by_cell=sl.record_per in ("sheet", "column")) == [], sl.sheet


def test_a_read_value_that_reaches_no_record_is_a_warning(tmp_path, monkeypatch):
    """The guard fires: a binding that loses records (as the transposed reader once did) leaves its cells
    reported as unread-data warnings, never a silent exit 0."""
    from curation.layout import form

    real = form.bind_form

    def losing(ctx, vals, roles):
        data_rows, *rest = real(ctx, vals, roles)
        return (data_rows[:1], *rest)

    monkeypatch.setattr(form, "bind_form", losing)
    p = tmp_path / "transposed.csv"
    p.write_text(TRANSPOSED_CSV, encoding="utf-8")
    r = validate(p)
    lost = [f for f in r.finding_list if f.rule == "unread-data" and "reached no record" in f.message]
    assert lost and lost[0].severity == "warning", [f.message for f in r.finding_list]
    assert r.exit_code() != 0 or lost

"""Form-style and transposed sheets as teams type them (issue 18; held-out report items 1, 3 and 8).

- a transposed sheet (a cohort per column, labels in column A) whose labels have values only in columns far
  right (``Grade``, ``CR`` ... typed for the last cohorts only) places those labels, and text left beside a
  label that no field takes is a warning naming its cells, never dropped silently;
- one study's form with its cohorts side by side (a column each, beside the outcome labels only) reads each
  column as a cohort of the sheet's study; ``Patients enrolled`` is placed (both words name n_enrolled);
- a value typed ``n=110``, ``51 pts``, ``N = 73`` is read in a form and a transposed sheet as in a wide sheet.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import openpyxl

from curation.layout import load_layout, map_form
from curation.schema import load_schema
from curation.validation import validate

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "prrt_177lu.yaml"
CURATE = str(Path(sys.executable).with_name("curate"))

# one cohort per column: (study, design, N, cohort, grade, site, N evaluable, CR, PR, SD, PD, ORR, PFS, OS)
COHORTS = [
    ("Bodei (2011)", "phase II", 51, "overall", None, "GEP-NET", 46, None, None, None, None, "32.6", None, None),
    ("Brabander (2017)", "retrospective", 610, "overall", None, "GEP-NET", 443, None, None, None, None, "39",
     "29 (26–33)", "63 (55–72)"),
    ("Baum (2016)", "retrospective", 56, "overall", None, "GEP-NET", 56, None, None, None, None, "30", "17.4",
     "34.2"),
    ("Clement (2022)", "retrospective", 110, "overall", None, "Pancreatic", 62, None, None, None, None, "40.3",
     "24.8 (17.5–34.5)", "41.4"),
    ("Unal (2023)", "retrospective", 73, "overall", "G1-3", "GEP-NET", 71, None, None, None, None, "29.6",
     "13.7", "51.2"),
    ("Ezziddin (2014)", "retrospective", 68, "overall", "G1/G2", "GEP-NET", 68, 0, 41, 17, 10, "60.3", None,
     None),
    ("Kobayashi (2021)", "retrospective", 8, "overall", "G1/G2", "Pancreatic", 6, 0, 4, 3, 1, "66.7", None,
     None),
]
LABELS = ["Study", "Study design", "N treated", "Cohort", "Grade", "Primary site", "Evaluable patients", "CR", "PR",
          "SD", "PD", "ORR (%)", "mPFS, months (95% CI)", "mOS, months (95% CI)"]


def transposed(path: Path, extra: tuple[str, list] | None = None, cohorts=COHORTS) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    ws.cell(1, 1, "Included studies (one column per study cohort)")
    labels = list(LABELS) + ([extra[0]] if extra else [])
    for i, label in enumerate(labels):
        ws.cell(3 + i, 1, label)
        for k, c in enumerate(cohorts):
            v = c[i] if i < len(LABELS) else extra[1][k]
            if v is not None:
                ws.cell(3 + i, 2 + k, v)
    wb.save(path)
    return path


def _bad(r, severity=("error", "warning")):
    return [(f.rule, f.message) for f in r.finding_list if f.severity in severity]


# ---------------------------------------------------------------------------------------------------------------
# item 3: transposed sheets
# ---------------------------------------------------------------------------------------------------------------
def test_labels_whose_values_are_only_in_columns_far_right_are_placed(tmp_path):
    """``Grade``, ``CR``, ``PR``, ``PD`` typed only for the 5th to 7th cohorts (columns F:H): placed, read, checked
    (they were left to an unread-data warning and Kobayashi's counts never checked; the grades silently)."""
    r = validate(transposed(tmp_path / "t.xlsx"))
    o = r.tables["outcomes"].data.set_index("study_id")
    assert o.loc["Ezziddin2014", "grade"] == "G1-2" and o.loc["Unal2023", "grade"] == "mixed"
    assert (o.loc["Ezziddin2014", "pr"], o.loc["Ezziddin2014", "pd"]) == (41, 10)
    (bad,) = [f for f in r.finding_list if f.rule == "response-sum-mismatch"]
    assert bad.column == "H"  # Kobayashi 2021: 0+4+3+1 = 8 but 6 evaluable, in its own column
    assert not [f for f in r.finding_list if f.rule == "unread-data"], _bad(r)


def test_map_names_each_label_by_its_cell_and_ci_cells_are_cited_as_cells(tmp_path):
    """The doubts list of ``curate map`` names a transposed sheet's label by its own cell (``A7``, values in row
    7), not a column letter of no meaning; a median whose row holds an interval elsewhere has its CI cells
    cited as cells (the record's header row ``3:3`` was cited)."""
    p = transposed(tmp_path / "t.xlsx")
    layout = map_form(p, load_schema(SCHEMA))
    doubts = "\n".join(layout.doubts())
    assert "Extraction!A7 'Grade' (values in row 7) read as value -> grade" in doubts, doubts
    assert "Extraction!F " not in doubts and "Extraction!B 'Grade'" not in doubts
    r = validate(p)
    (baum,) = [f for f in r.finding_list if f.rule == "median-without-ci" and f.field == "os_median"
               and f.column == "D"]  # Baum's OS 34.2, in the row where Brabander's is '63 (55–72)'
    assert "Extraction!D16, Extraction!D16" in baum.message and "3:3" not in baum.message, baum.message


def test_text_beside_a_label_that_no_field_takes_is_a_warning_naming_the_cells(tmp_path):
    """Text values in a value position that are not read (``Histology | well differentiated``) are a warning
    naming their cells: the unread-data check once counted figures only, so text was lost silently."""
    extra = ("Histology", ["well differentiated", None, None, None, None, "NET", None])
    r = validate(transposed(tmp_path / "t.xlsx", extra=extra))
    warned = [f for f in r.finding_list if f.rule == "unread-data" and f.severity == "warning"]
    assert len(warned) == 1, _bad(r)
    msg = warned[0].message
    assert "2 text value(s)" in msg and "Extraction!B17 'well differentiated'" in msg and "Extraction!G17 'NET'" in msg


def test_a_transposed_sheets_duplicate_column_is_cited_by_its_cell(tmp_path):
    """A cohort typed twice (a column repeated): the duplicate-key error cites the first column's key cell,
    not the header row."""
    r = validate(transposed(tmp_path / "t.xlsx", cohorts=COHORTS + [COHORTS[-1]]))
    (dup,) = [f for f in r.finding_list if f.rule == "duplicate-key"]
    assert dup.column == "I" and "exact copy of Extraction!H6" in dup.message, dup.message


def test_map_then_layout_reads_the_transposed_sheet_the_same(tmp_path):
    p = transposed(tmp_path / "t.xlsx")
    out = tmp_path / "L.yaml"
    res = subprocess.run([CURATE, "map", str(p), "-o", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # the map's table names each label by its cell (it printed the letter of one value column, F, for all)
    assert re.search(r"^\s*A7\s+\W\s+Grade\s", res.stdout, re.M), res.stdout
    key = lambda r: sorted(str((f.sheet, f.row, f.column, f.rule, f.severity)) for f in r.finding_list  # noqa: E731
                           if f.severity in ("error", "warning") and f.rule != "schema-fits-poorly")
    assert key(validate(p)) == key(validate(p, layout=load_layout(out)))


# ---------------------------------------------------------------------------------------------------------------
# item 8: one sheet per study, its cohorts side by side
# ---------------------------------------------------------------------------------------------------------------
STUDY_FORMS = {  # sheet -> (first author, year, design, enrolled, [(cohort, grade, N evaluable, PFS, OS) ...])
    "Unal 2023": ("Unal", 2023, "retrospective", 73, [("overall", "G1-3", 71, "13.7", "51.2"),
                                                           ("G1-2", "G1/G2", 50, "16.9", "55.5"),
                                                           ("G3", "G4", 21, "8.5", "29.5")]),
    "Baum 2016": ("Baum", 2016, "retrospective", 56, [("overall", None, 56, "17.4", "34.2")]),
    "Clement 2022": ("Clement", 2022, "retrospective", 110, [("overall", None, 62, "24.8", "41.4")]),
}


def study_forms(path: Path, notes: bool = False, enrolled: dict | None = None) -> Path:
    """One sheet per study: its fields in A:B, an outcomes part below with a column per cohort."""
    wb = openpyxl.Workbook()
    for k, (name, (author, year, design, n, cohorts)) in enumerate(STUDY_FORMS.items()):
        n = (enrolled or {}).get(name, n)
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = name
        ws.cell(1, 1, "Data extraction form")
        for i, (label, v) in enumerate([("First author", author), ("Year of publication", year),
                                        ("Study design", design), ("Patients enrolled", n)], 3):
            ws.cell(i, 1, label)
            ws.cell(i, 2, v)
        if notes and len(cohorts) == 1:  # a notes column beside the study's own fields: not a cohort
            ws.cell(3, 3, "checked against the full text")
            ws.cell(6, 3, "from the flow chart")
        ws.cell(8, 1, "Outcomes")
        for i, label in enumerate(["Cohort", "Grade", "N evaluable", "Median PFS, months (95% CI)",
                                   "Median OS, months (95% CI)"], 9):
            ws.cell(i, 1, label)
            for j, c in enumerate(cohorts, 2):
                if c[i - 9] is not None:
                    ws.cell(i, j, c[i - 9])
    wb.save(path)
    return path


def test_a_study_form_with_cohorts_side_by_side_reads_each_cohort(tmp_path):
    """Unal 2023's G1-2 and G3 (columns C and D, beside the outcome labels only) are cohorts of the sheet's study
    (they were left to an unread-data warning, and G3's grade ``G4`` never checked); ``Patients enrolled`` is
    n_enrolled (it was not placed: a false missing-column and missing-required on every sheet)."""
    r = validate(study_forms(tmp_path / "forms.xlsx"))
    o = r.tables["outcomes"].data
    got = sorted(zip(o["study_id"], o["cohort"], o["n_evaluable"], o["os_median"]))
    assert got == [("Baum2016", "overall", 56, 34.2), ("Clement2022", "overall", 62, 41.4),
                   ("Unal2023", "G1-2", 50, 55.5), ("Unal2023", "G3", 21, 29.5), ("Unal2023", "overall", 71, 51.2)]
    s = r.tables["studies"].data.set_index("study_id")
    assert sorted(s.index) == ["Baum2016", "Clement2022", "Unal2023"]
    assert (s.loc["Unal2023", "n_enrolled"], s.loc["Baum2016", "n_enrolled"]) == (73, 56)
    (g4,) = [f for f in r.finding_list if f.rule == "rejected-term"]
    assert (g4.sheet, g4.column, g4.row) == ("Unal 2023", "D", 10)
    assert not [f for f in r.finding_list if f.rule in ("missing-column", "missing-required", "unread-data",
                                                        "invalid-number") and f.severity != "info"], _bad(r)


def test_a_notes_column_beside_the_studys_fields_is_not_a_cohort_and_is_reported(tmp_path):
    """Text right of the values beside study-level labels is notes, not a cohort: the sheet stays one study's
    form (one record), and the notes (text no field takes) are a warning naming their cells."""
    r = validate(study_forms(tmp_path / "forms.xlsx", notes=True))
    o = r.tables["outcomes"].data
    assert sorted(zip(o["study_id"], o["cohort"])) == [("Baum2016", "overall"), ("Clement2022", "overall"),
                                                       ("Unal2023", "G1-2"), ("Unal2023", "G3"),
                                                       ("Unal2023", "overall")]
    warned = sorted((f.sheet, f.message) for f in r.finding_list if f.rule == "unread-data")
    assert [w[0] for w in warned] == ["Baum 2016", "Clement 2022"], warned
    assert "'Baum 2016'!C3 'checked against the full text'" in warned[0][1]
    assert "'Baum 2016'!C6 'from the flow chart'" in warned[0][1]


def test_a_required_field_missing_from_a_form_says_what_is_excluded(tmp_path):
    """A required field that is no key (n_enrolled) with no label: its rows are kept out of the analyses that use
    it, not all excluded (selection is scoped by field), and the message says so."""
    p = study_forms(tmp_path / "forms.xlsx")
    wb = openpyxl.load_workbook(p)
    for ws in wb.worksheets:
        ws.cell(6, 1, "Remarks")
        ws.cell(6, 2, None)
    wb.save(p)
    r = validate(p)
    missing = [f for f in r.finding_list if f.rule == "missing-column" and f.field == "n_enrolled"]
    assert missing and all("its rows are kept out of every analysis that uses it" in f.message
                           and "every row is excluded" not in f.message for f in missing), missing


# ---------------------------------------------------------------------------------------------------------------
# item 1: a form or transposed value is read as the wide path reads the same cell
# ---------------------------------------------------------------------------------------------------------------
def test_counts_typed_with_their_words_are_read_in_forms_and_transposed_sheets(tmp_path):
    """``n=110``, ``N = 73``, ``51 pts`` under a count label: the count, in a per-study form and a transposed
    sheet, as in a wide column (they were invalid-number errors: the label path had a parser of its own)."""
    r = validate(study_forms(tmp_path / "forms.xlsx", enrolled={"Unal 2023": "N = 73", "Clement 2022": "n=110",
                                                                "Baum 2016": "56 pts"}))
    s = r.tables["studies"].data.set_index("study_id")
    assert [s.loc[k, "n_enrolled"] for k in ("Unal2023", "Clement2022", "Baum2016")] == [73, 110, 56]
    assert not [f for f in r.finding_list if f.rule == "invalid-number"], _bad(r)
    cohorts = [list(c) for c in COHORTS]
    cohorts[0][2], cohorts[3][2], cohorts[4][2] = "51 pts", "n=110", "N = 73"
    r = validate(transposed(tmp_path / "t.xlsx", cohorts=[tuple(c) for c in cohorts]))
    s = r.tables["studies"].data.set_index("study_id")
    assert [s.loc[k, "n_enrolled"] for k in ("Bodei2011", "Clement2022", "Unal2023")] == [51, 110, 73]
    assert not [f for f in r.finding_list if f.rule == "invalid-number"], _bad(r)
    # the same cells in a wide sheet read the same (one parser)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    for j, label in enumerate(LABELS, 1):
        ws.cell(1, j, label)
    for i, c in enumerate(cohorts, 2):
        for j, v in enumerate(c, 1):
            if v is not None:
                ws.cell(i, j, v)
    wb.save(tmp_path / "wide.xlsx")
    w = validate(tmp_path / "wide.xlsx").tables["studies"].data.set_index("study_id")
    assert [w.loc[k, "n_enrolled"] for k in ("Bodei2011", "Clement2022", "Unal2023")] == [51, 110, 73]


def test_a_transposed_sheet_named_after_a_contract_sheet_is_read_by_its_labels(tmp_path):
    # a team's 'Outcomes' sheet kept transposed (one cohort per column, labels down column A, a 'Study ID' row):
    # its name is the contract sheet's, which once made the reader take row 3 as a header row of studies
    import openpyxl

    from curation.schema import load_schema
    from curation.validation import validate

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Outcomes"
    ws["A1"] = "Efficacy extraction (one cohort per column)"
    rows = [("Study ID", "Alpha 2020", "Beta 2021", "Gamma 2022"), ("Cohort", "overall", "overall", "overall"),
            ("Grade", "G1-2", "G3", "G1-2"), ("Primary site", "pancreas", "midgut", "lung"),
            ("N evaluable", 40, 30, 20), ("CR", 1, 0, 2), ("PR", 9, 6, 3), ("SD", 20, 14, 10), ("PD", 10, 10, 5),
            ("PFS median (months)", 20.1, 12.5, 18.0)]
    for r, row in enumerate(rows, 3):
        for c, v in enumerate(row, 1):
            ws.cell(r, c, v)
    path = tmp_path / "transposed.xlsx"
    wb.save(path)
    r = validate(path, load_schema(None))
    o = r.clean.set_index("study_id")
    assert sorted(o.index) == ["Alpha2020", "Beta2021", "Gamma2022"]
    assert o.loc["Beta2021", "pr"] == 6 and o.loc["Gamma2022", "pfs_median"] == 18.0
    assert o.loc["Alpha2020", "grade"] == "G1-2" and o.loc["Beta2021", "primary_site"] == "midgut"

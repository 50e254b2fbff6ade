"""Shapes met in real extraction workbooks published with meta-analyses (REALSHAPES_REPORT.md), rebuilt here
with MADE-UP values (the real files cannot be committed): an umbrella review keeping one sheet per organ
system with identical headers (each row naming its own cancer site), a header left empty on one of those
sheets, study labels with a bracketed marker between author and year (``Kobayashi (a) 2013``), and rows whose
required key part is empty.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from curation.layout import map_form
from curation.layout.identity import label_id, parse_label
from curation.schema import load_schema
from curation.validation import validate

CURATE = str(Path(sys.executable).parent / "curate")

UMBRELLA_SCHEMA = """
name: umbrella_made_up
title: An umbrella review of hazard ratios (made-up test schema)
version: 1
vocabularies:
  survival_outcome:
    terms:
      - {value: OS, aliases: [overall survival]}
      - {value: DFS, aliases: [disease-free survival]}
      - {value: PFS, aliases: [progression-free survival]}
sheets:
  estimates:
    key: [review, study_id, site, outcome]
    fields:
      review: {type: text, required: true, aliases: [Study, meta-analysis]}
      study_id: {type: text, required: true, aliases: [Study ID]}
      first_author: {type: text, required: true, aliases: [Author]}
      year: {type: integer, required: true, min: 1980, max: 2030, aliases: [Year]}
      hr: {type: number, min_exclusive: 0, aliases: [HR]}
      n: {type: integer, min: 1, aliases: [N]}
      ci_low: {type: number, min_exclusive: 0, aliases: [Low CI]}
      ci_high: {type: number, min_exclusive: 0, aliases: [Upper CI]}
      site: {type: text, required: true, aliases: [Site]}
      outcome: {type: vocabulary, vocabulary: survival_outcome, required: true, aliases: [Outcome]}
      adjustment: {type: text, aliases: [Adjustment]}
checks:
  estimates:
    - {rule: effect-outside-ci, effect: hr, low: ci_low, high: ci_high}
analysis:
  sheet: estimates
  overall_cohort: overall
  outcomes:
    hr: {label: Hazard ratio, kind: reported_effect, effect: hr, low: ci_low, high: ci_high, scale: ratio}
  plan:
    - {outcome: hr}
"""

HEAD = ["Study", "Author", "HR", "N", "Low CI", "Upper CI", "Site", "Outcome", "Adjustment"]
# made-up rows: (meta-analysis, primary study, HR, N, low, high, site, outcome, adjustment)
SHEETS = {
    "Hepatic": [["Alpha K", "Ito 2012", 1.9, 210, 1.2, 3.0, "HCC", "OS", "M"],
                ["Alpha K", "Moreau 2014", 1.4, 95, 0.9, 2.2, "HCC", "OS", "U"],
                ["Beta L", "Ito 2012", 2.1, 210, 1.3, 3.4, "HCC resection", "DFS", "M"]],
    "Gastric": [["Gamma M", "Sato 2010", 1.6, 320, 1.1, 2.3, "Gastric", "OS", "M"],
                ["Gamma M", "Okada 2015", 0.9, 140, 0.6, 1.4, "Gastric", "OS", "M"]],
    "Urinary": [["Delta N", "Ruiz 2013", 2.4, 88, 1.2, 4.8, "Renal", "OS", "U"],
                ["Delta N", "Weber 2016", 1.3, 400, 1.0, 1.7, "Renal", "PFS", "M"],
                ["Delta N", "Ito 2012", 1.2, 60, 0.7, 2.0, "Bladder", "OS", "M"]],
}


def umbrella_workbook(path: Path, sheets=None, drop_header: tuple[str, str] | None = None) -> Path:
    wb = openpyxl.Workbook()
    for k, (name, rows) in enumerate((sheets or SHEETS).items()):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = name
        for j, h in enumerate(HEAD, 1):
            if drop_header != (name, h):
                ws.cell(1, j, h)
        for i, row in enumerate(rows, 2):
            for j, v in enumerate(row, 1):
                ws.cell(i, j, v)
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    p = tmp_path_factory.mktemp("schema") / "umbrella.yaml"
    p.write_text(UMBRELLA_SCHEMA, encoding="utf-8")
    return load_schema(p)


def _account(r):
    (file_cells,) = r.summary.cells.values()
    return file_cells


def test_sheets_per_organ_system_whose_rows_name_their_site_are_all_read(tmp_path, schema):
    r = validate(umbrella_workbook(tmp_path / "u.xlsx"), schema)
    d = r.tables["estimates"].data
    assert len(d) == 8
    assert sorted(set(r.clean["sheet"])) == ["Gastric", "Hepatic", "Urinary"]
    assert sorted(r.clean["site"]) == sorted(row[6] for rows in SHEETS.values() for row in rows)
    # values read exactly, at their own sheet and row
    ruiz = r.clean[r.clean["study_id"] == "Ruiz2013"].iloc[0]
    assert (ruiz["hr"], ruiz["n"], ruiz["ci_low"], ruiz["ci_high"]) == (2.4, 88, 1.2, 4.8)
    assert not [f for f in r.finding_list if f.severity in ("error", "warning")], \
        [(f.rule, f.cell, f.message) for f in r.finding_list if f.severity != "info"]
    acc = _account(r)
    for name, rows in SHEETS.items():
        assert acc[name]["read"] == len(rows) * len(HEAD) and acc[name]["not_read"] == 0


def test_a_slip_on_a_later_sheet_is_reported_at_its_cell(tmp_path, schema):
    sheets = {k: [list(x) for x in v] for k, v in SHEETS.items()}
    sheets["Urinary"][1][2] = 13.0  # an HR whose decimal point was lost: outside its own CI
    sheets["Gastric"][0][6] = None  # a site left empty: the sheets are still read together
    r = validate(umbrella_workbook(tmp_path / "u.xlsx", sheets), schema)
    cells = {(f.rule, f.cell) for f in r.finding_list if f.severity == "error"}
    assert ("effect-outside-ci", "Urinary!C3") in cells
    assert ("missing-required", "Gastric!G2") in cells
    assert len(r.tables["estimates"].data) == 8


def test_identical_sheets_whose_rows_share_their_sites_are_never_joined(tmp_path, schema):
    # two extractors' copies of the same studies (the same sites on both): only the first is read
    copy = {"Extraction AB": SHEETS["Hepatic"], "Extraction CD": [list(x) for x in SHEETS["Hepatic"]]}
    r = validate(umbrella_workbook(tmp_path / "u.xlsx", copy), schema)
    assert set(r.clean["sheet"]) == {"Extraction AB"}
    warned = {f.sheet for f in r.finding_list if f.rule == "unread-data" and f.severity == "warning"}
    assert "Extraction CD" in warned


def test_a_header_left_empty_on_one_sheet_still_reads_it_and_warns_about_that_column(tmp_path, schema):
    r = validate(umbrella_workbook(tmp_path / "u.xlsx", drop_header=("Gastric", "Adjustment")), schema)
    assert len(r.tables["estimates"].data) == 8
    warn = [f for f in r.finding_list if f.rule == "unread-data" and f.sheet == "Gastric"]
    assert [(f.severity, f.cell) for f in warn] == [("warning", "Gastric!I2")], [f.message for f in warn]
    assert "I2:I3" in warn[0].message
    assert _account(r)["Gastric"]["not_read"] == 2


def test_map_then_layout_gives_the_same_findings(tmp_path, schema):
    sheets = {k: [list(x) for x in v] for k, v in SHEETS.items()}
    sheets["Hepatic"][1][3] = -95
    path = umbrella_workbook(tmp_path / "u.xlsx", sheets)
    schema_file = tmp_path / "umbrella.yaml"
    schema_file.write_text(UMBRELLA_SCHEMA, encoding="utf-8")
    lay = tmp_path / "layout.yaml"
    proc = subprocess.run([CURATE, "map", str(path), "--schema", str(schema_file), "-o", str(lay)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    outs = []
    for extra in ([], ["--layout", str(lay)]):
        js = tmp_path / f"v{len(extra)}.json"
        p = subprocess.run([CURATE, "validate", str(path), "--schema", str(schema_file), "--json", str(js), *extra],
                           capture_output=True, text=True)
        assert p.returncode == 1, p.stderr
        found = json.loads(js.read_text())["findings"]
        outs.append(sorted((f["rule"], f["severity"], str(f["cell"])) for f in found if f["rule"] != "inferred-layout"))
    assert outs[0] == outs[1]
    assert ("out-of-range", "error", "Hepatic!D3") in outs[0]
    assert {sl.sheet for sl in map_form(path, schema).sheets} == set(SHEETS)


@pytest.mark.parametrize("text, author, year, sid", [
    ("Kobayashi (a) 2013", "Kobayashi", "2013", "Kobayashi2013-a"),
    ("Yanagisawa (1) 2018", "Yanagisawa", "2018", "Yanagisawa2018-1"),
    ("Kishi (nonSR) 2009", "Kishi", "2009", "Kishi2009-nonSR"),
    ("Rascol (2022) - ALLY-LID II", "Rascol", "2022", "Rascol2022-ALLY-LID-II"),
    ("Meriggi F 2017", "Meriggi F", "2017", "MeriggiF2017"),
    ("Park 1 2017", "Park", "2017", "Park2017-1"),
    ("Sonpavde G 2 2014", "Sonpavde G", "2014", "SonpavdeG2014-2"),
])
def test_a_bracketed_marker_between_author_and_year_stays_in_the_id(text, author, year, sid):
    label = parse_label(text)
    assert (label.author, label.year, label_id(label)) == (author, year, sid)


def test_labels_with_markers_are_two_studies_and_their_year_is_read(tmp_path, schema):
    sheets = {"Hepatic": [["Alpha K", "Kobayashi (a) 2013", 1.9, 58, 1.2, 3.0, "HCC", "OS", "M"],
                          ["Alpha K", "Kobayashi (b) 2013", 1.4, 61, 0.9, 2.2, "HCC", "OS", "M"],
                          ["Alpha K", "Ozawa 2015", 1.1, 80, 0.8, 1.5, "HCC", "OS", "M"]]}
    r = validate(umbrella_workbook(tmp_path / "u.xlsx", sheets), schema)
    d = r.clean.set_index("study_id")
    assert sorted(d.index) == ["Kobayashi2013-a", "Kobayashi2013-b", "Ozawa2015"]
    assert list(d.loc[["Kobayashi2013-a", "Kobayashi2013-b"], "year"]) == [2013, 2013]
    assert not [f for f in r.finding_list if f.severity == "error"]


def test_rows_with_an_empty_required_key_part_are_not_called_duplicates(tmp_path, schema):
    sheets = {"Hepatic": [["Alpha K", "Botta", 1.9, 58, 1.2, 3.0, "HCC", "OS", "M"],
                          ["Alpha K", "Cetin", 1.4, 61, 0.9, 2.2, "HCC", "OS", "M"],
                          ["Alpha K", "Ozawa 2015", 1.1, 80, 0.8, 1.5, "HCC", "OS", "M"],
                          ["Alpha K", "Ito 2012", 1.3, 75, 0.9, 1.9, "HCC", "OS", "M"],
                          ["Alpha K", "Sato 2010", 1.2, 90, 0.8, 1.8, "HCC", "OS", "M"]]}
    r = validate(umbrella_workbook(tmp_path / "u.xlsx", sheets), schema)
    errors = sorted((f.rule, f.cell, f.field) for f in r.finding_list if f.severity == "error")
    assert ("duplicate-key" not in {e[0] for e in errors}), errors
    assert {(e[1], e[2]) for e in errors if e[0] == "missing-required"} >= {("Hepatic!B2", "year"),
                                                                           ("Hepatic!B3", "year")}


def _declare_dimension(path: Path, ref: str) -> None:
    """Rewrite each sheet's declared <dimension> (as LibreOffice writes A1:AMJ69 for eleven used columns)."""
    import re
    import zipfile

    tmp = path.with_suffix(".tmp.xlsx")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/sheet"):
                data = re.sub(rb'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>'.encode(), data)
            dst.writestr(info, data)
    tmp.replace(path)


def test_a_declared_width_of_1024_columns_over_few_rows_is_read_by_its_cells(tmp_path, schema):
    path = umbrella_workbook(tmp_path / "u.xlsx")
    _declare_dimension(path, "A1:AMJ4")
    r = validate(path, schema)
    assert len(r.tables["estimates"].data) == 8


def test_a_declared_size_past_the_row_limit_is_still_refused(tmp_path, schema):
    from curation.errors import UnusableInputError

    path = umbrella_workbook(tmp_path / "u.xlsx")
    _declare_dimension(path, "A1:AMJ2000000")
    with pytest.raises(UnusableInputError, match="declares a size"):
        validate(path, schema)


FORM_SCHEMA = """
name: tremor_made_up
title: A review of tremor treatments (made-up test schema)
version: 1
sheets:
  studies:
    key: [study_id, arm]
    fields:
      study_id: {type: text, required: true, aliases: [Study ID]}
      arm: {type: text, aliases: [Participant characteristics]}
      category: {type: text, required: true, aliases: [Category]}
      reference: {type: text, aliases: [General]}
      year: {type: integer, required: true, min: 1960, max: 2030, aliases: [Year]}
      title: {type: text, aliases: [Title]}
      journal: {type: text, aliases: [Journal]}
      n_enrolled: {type: integer, min: 1, aliases: [Number of participants enrolled]}
      n_analysed: {type: integer, min: 1, aliases: [Number of participants included in analysis]}
      age_mean: {type: number, min: 18, max: 100, aliases: [Age (Mean)]}
checks: {}
analysis:
  sheet: studies
  overall_cohort: overall
  outcomes:
    completion:
      label: Share analysed
      kind: proportion
      events: [n_analysed]
      total: n_enrolled
  plan:
    - {outcome: completion}
"""


def form_workbook(path: Path, sheets: dict) -> Path:
    """One study per sheet as a real review keeps them: `Category` and `General` labelled in column A, the other
    labels in column C, the values in D; a row naming the arms (D, E) above the arms' figures."""
    wb = openpyxl.Workbook()
    for k, (name, s) in enumerate(sheets.items()):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = name
        ws["A1"], ws["D1"] = "Category", s["category"]
        ws["A2"], ws["D2"] = "General", s["reference"]
        for r, (label, value) in enumerate([("Year", s["year"]), ("Title", s["title"]), ("Journal", s["journal"])], 3):
            ws.cell(r, 3, label)
            ws.cell(r, 4, value)
        ws["A7"] = "Participant characteristics"
        for j, arm in enumerate(s["arms"]):
            ws.cell(7, 4 + j, arm["name"])
            for r, (label, key) in enumerate([("Number of participants enrolled", "n"),
                                              ("Number of participants included in analysis", "m"),
                                              ("Age (Mean)", "age")], 8):
                ws.cell(r, 3, label)
                ws.cell(r, 4 + j, arm[key])
    wb.save(path)
    return path


FORMS = {
    "Smith2001": {"category": "dopamine agonist", "reference": "Smith, A., & Lee, B.", "year": 2001,
                  "title": "A made-up trial", "journal": "J Made Up",
                  "arms": [{"name": "drug", "n": 20, "m": 18, "age": 64.5}, {"name": "placebo", "n": 19, "m": 19, "age": 66.0}]},
    "Jones2005.1": {"category": "levodopa", "reference": "Jones, C.", "year": 2005, "title": "First cohort",
                    "journal": "J Made Up", "arms": [{"name": "levodopa", "n": 30, "m": 28, "age": 70.1},
                                                     {"name": "total", "n": 30, "m": 28, "age": 70.1}]},
    "Jones2005.2": {"category": "levodopa", "reference": "Jones, C.", "year": 2005, "title": "Second cohort",
                    "journal": "J Made Up", "arms": [{"name": "levodopa", "n": 12, "m": 12, "age": 59.0},
                                                     {"name": "total", "n": 12, "m": 12, "age": 59.0}]},
}


@pytest.fixture(scope="module")
def form_schema(tmp_path_factory):
    p = tmp_path_factory.mktemp("schema") / "tremor.yaml"
    p.write_text(FORM_SCHEMA, encoding="utf-8")
    return load_schema(p)


def test_per_study_forms_with_labels_in_two_columns_and_arms_read_every_arm_with_its_study(tmp_path, form_schema):
    r = validate(form_workbook(tmp_path / "forms.xlsx", FORMS), form_schema)
    d = r.clean.set_index(["study_id", "arm"]).sort_index()
    assert list(d.index) == [("Jones2005-1", "levodopa"), ("Jones2005-1", "total"), ("Jones2005-2", "levodopa"),
                             ("Jones2005-2", "total"), ("Smith2001", "drug"), ("Smith2001", "placebo")]
    # the study's own fields (above the arms' row), stated once in D, are each arm's
    assert set(d.loc["Smith2001", "category"]) == {"dopamine agonist"}
    assert list(d.loc["Smith2001", "year"]) == [2001, 2001]
    assert list(d.loc["Smith2001", "n_enrolled"]) == [20, 19] and list(d.loc["Smith2001", "age_mean"]) == [64.5, 66.0]
    assert list(d.loc["Jones2005-2", "n_enrolled"]) == [12, 12]
    assert not [f for f in r.finding_list if f.severity in ("error", "warning")], \
        [(f.rule, f.cell, f.message) for f in r.finding_list if f.severity != "info"]


def test_an_arm_left_empty_below_the_arms_row_stays_empty(tmp_path, form_schema):
    forms = {k: {**v, "arms": [dict(a) for a in v["arms"]]} for k, v in FORMS.items()}
    forms["Smith2001"]["arms"][1]["n"] = None  # the placebo arm's enrolled count not reported
    forms["Smith2001"]["arms"][0]["age"] = 640.5  # a slip in the drug arm
    r = validate(form_workbook(tmp_path / "forms.xlsx", forms), form_schema)
    d = r.clean.set_index(["study_id", "arm"])
    import pandas as pd

    assert pd.isna(d.loc[("Smith2001", "placebo"), "n_enrolled"])  # not the drug arm's 20
    assert d.loc[("Smith2001", "placebo"), "category"] == "dopamine agonist"
    bad = [(f.rule, f.cell) for f in r.finding_list if f.severity == "error"]
    assert bad == [("out-of-range", "Smith2001!D10")], bad


def test_a_numbered_study_column_is_not_called_the_missing_study_id_when_the_id_is_derived(tmp_path, schema):
    # a real review numbers its studies in a 'Study' column and names them by Author and Year columns: the id
    # comes from author + year, so the numbers are an unknown column (a warning: figures not read), never an
    # 'unplaced-column' error saying the review has no study_id
    schema_file = tmp_path / "s.yaml"
    schema_file.write_text(UMBRELLA_SCHEMA.replace("aliases: [Study, meta-analysis]", "aliases: [meta-analysis]"),
                           encoding="utf-8")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Final"
    head = ["Study", "Author", "Year", "HR", "N", "Low CI", "Upper CI", "Site", "Outcome", "meta-analysis"]
    rows = [[1, "Chen", 2018, 0.48, 120, 0.3, 0.8, "Ovary", "OS", "Alpha K"],
            [2, "Duus", 2023, 0.44, 300, 0.22, 0.89, "Ovary", "OS", "Alpha K"],
            [3, "Falconer", 2015, 0.71, 250, 0.56, 0.91, "Ovary", "OS", "Alpha K"]]
    for j, h in enumerate(head, 1):
        ws.cell(1, j, h)
    for i, row in enumerate(rows, 2):
        for j, v in enumerate(row, 1):
            ws.cell(i, j, v)
    wb.save(tmp_path / "final.xlsx")
    r = validate(tmp_path / "final.xlsx", load_schema(schema_file))
    assert sorted(r.clean["study_id"]) == ["Chen2018", "Duus2023", "Falconer2015"]
    assert not [f for f in r.finding_list if f.severity == "error"], \
        [(f.rule, f.cell, f.message) for f in r.finding_list if f.severity == "error"]
    assert [(f.rule, f.cell) for f in r.finding_list if f.severity == "warning"] == [("unread-data", "Final!A1")]


def test_per_study_forms_whose_arms_report_little_are_read_by_their_arms_row_not_refused(tmp_path, form_schema):
    # a real review's per-study sheet (Mizuno 1995): the arms named by a row of their own (D, E), most arm
    # figures 'NA', and a study-level label with a note beside its value: the arms row says the columns are
    # records, so the sheet is read, never refused as "two ways about equally well"
    forms = {k: {**v, "arms": [dict(a) for a in v["arms"]]} for k, v in FORMS.items()}
    for s in forms.values():
        for a in s["arms"]:
            a["m"], a["age"] = "NA", "NA"
    path = form_workbook(tmp_path / "forms.xlsx", forms)
    wb = openpyxl.load_workbook(path)
    for ws in wb.worksheets:
        ws["E4"] = "pre-post design"  # a note beside the study's title
    wb.save(path)
    r = validate(path, form_schema)
    d = r.clean.set_index(["study_id", "arm"])
    assert d.loc[("Smith2001", "placebo"), "n_enrolled"] == 19 and d.loc[("Smith2001", "drug"), "n_enrolled"] == 20

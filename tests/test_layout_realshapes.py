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

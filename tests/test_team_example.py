"""The team-layout example ``extraction_forms/example_team_workbook.xlsx`` (shared spec: layouts.md).

* the committed workbook is what ``build_team_example.py`` builds, byte for byte, from figures whose
  pages the script names, and the script reads nothing outside the repository;
* the README's expected findings are the rules' findings on the records a correct reading gives, and
  every planted slip has an expected finding at its cell;
* once the layout engine exists (``curate map`` in ``curate --help``): validating the workbook reports
  every expected finding at the team's own cells, never reads the Total, footnote or source rows, and
  gives the clean rows of the correct reading.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from curation.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
FORMS = ROOT / "extraction_forms"
README = FORMS / "README.md"


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_team_example", FORMS / "build_team_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


builder = _load_builder()
WORKBOOK = FORMS / builder.WORKBOOK

# the layout engine is the lead's (issue 13): these tests run once `curate map` is a command
HAS_LAYOUT_ENGINE = bool(re.search(r"^\s+map\b", CliRunner().invoke(cli_main, ["--help"]).output, re.M))
needs_engine = pytest.mark.skipif(not HAS_LAYOUT_ENGINE, reason="layout engine not on this branch yet (no `curate map`)")


def readme_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    body = re.search(rf"```findings {re.escape(builder.WORKBOOK)}\n(.*?)```", text, re.S).group(1)
    return [line.strip() for line in body.splitlines() if line.strip()]


def test_committed_workbook_is_what_the_script_builds(tmp_path):
    fresh = builder.build(tmp_path)
    assert fresh.read_bytes() == WORKBOOK.read_bytes(), \
        "example_team_workbook.xlsx is out of date: run .venv/bin/python extraction_forms/build_team_example.py"


def test_script_is_self_contained_and_every_row_has_its_source():
    text = (FORMS / "build_team_example.py").read_text(encoding="utf-8")
    assert "shared" not in text and "/work" not in text
    for row in builder.COHORTS:
        assert row["src"] and all(builder.URL[s].startswith("http") for s in row["src"]) and row["where"], row
    for row in builder.ADVERSE_EVENTS:
        assert builder.URL[row["src"]].startswith("http") and row["where"], row


def test_workbook_has_the_team_layout():
    wb = openpyxl.load_workbook(WORKBOOK)
    assert wb.sheetnames == ["Data extraction", "Safety", "Notes"]
    ws = wb["Data extraction"]
    rows = builder.layout_rows()
    assert ws["A5"].value == "Author (year)" and ws["P5"].value == "ORR, n (%)"
    assert "A4:H4" in {str(r) for r in ws.merged_cells.ranges}
    assert ws.column_dimensions["R"].hidden and ws["R5"].value == "ORR (%)"
    assert [r for r, d in ws.row_dimensions.items() if d.hidden] == rows["hidden"]
    assert ws.freeze_panes == "C6" and ws.auto_filter.ref
    assert ws[f"A{rows['total']}"].value == "Total"
    # every cohort row is a published cohort: subgroups share their study's author and year
    labels = [ws[f"A{r}"].value for r in rows["cohorts"]]
    assert labels.count(None) == 2            # the merged author cell of Unal (2023)
    studies = {(c["author"], c["year"]) for c in builder.COHORTS}
    assert len(studies) == 15 and len(builder.COHORTS) == 24
    # the Total row holds the sums of the rows above (as typed, slips included)
    for letter in ("F", "I", "L", "M", "N", "O"):
        values = [ws[f"{letter}{r}"].value for r in rows["cohorts"]]
        assert ws[f"{letter}{rows['total']}"].value == sum(v for v in values if isinstance(v, int))


def test_slips_are_typed_as_the_readme_says():
    ws = openpyxl.load_workbook(WORKBOOK)["Data extraction"]
    sf = openpyxl.load_workbook(WORKBOOK)["Safety"]
    assert ws["P6"].value == "51 (32.6)"
    assert (ws["L10"].value, ws["M10"].value, ws["N10"].value) == (41, 9, None)
    assert ws["T15"].value == "63 (72–55)" and ws["T16"].value == "48.0 (37.4–45.2)"
    assert ws["J18"].value == "G4" and ws["D19"].value == "68Ga-DOTATATE" and ws["P22"].value == "43.0%"
    assert sf["C11"].value == 33 and sf["E11"].value == 6
    assert len(builder.SLIPS) == 10       # 8 slips; slip 2 moves three cells


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    return builder.expected_findings(tmp_path_factory.mktemp("canonical"))


def test_readme_block_is_the_rules_findings_on_the_correct_reading(expected):
    """The README's block is what the rules say about the records a correct reading gives."""
    assert readme_block() == expected, \
        "README block out of date: run .venv/bin/python extraction_forms/build_team_example.py --update-readme"


def test_every_slip_has_an_expected_finding_at_its_cell(expected):
    lines = expected
    layout = {cell for cell, _sev, _what in builder.layout_expectations()}
    cells = {line.split(" ", 2)[2] for line in lines} | layout
    for cell in ("'Data extraction'!P6", "'Data extraction'!P10", "'Data extraction'!T15", "'Data extraction'!T16",
                 "'Data extraction'!J18", "'Data extraction'!D19", "'Data extraction'!P22", "Safety!C11"):
        assert cell in cells, cell
    # no error on a row without a slip or a real problem of the paper's (see README)
    error_rows = {re.search(r"!([A-Z]*)(\d+)", line).group(2) for line in lines if " error " in line}
    assert error_rows <= {"4", "5", "6", "10", "11", "15", "16", "18", "19", "21", "22"}


# ---------------------------------------------------------------------------------------------
# With the layout engine (enabled by the lead once `curate map` lands)
# ---------------------------------------------------------------------------------------------


def _cell(f) -> str:
    return (f.cell or f.sheet or "").replace("'", "")


@pytest.fixture(scope="module")
def engine_result():
    from curation.validation import validate

    return validate(WORKBOOK, builder.SCHEMA)


@needs_engine
def test_engine_reports_every_expected_finding(engine_result):
    got = Counter(f"{f.rule} {f.severity} {_cell(f)}" for f in engine_result.finding_list)
    want = Counter(line.replace("'", "") for line in readme_block())
    missing = want - got
    assert not missing, f"expected findings not reported: {sorted(missing)}"


@needs_engine
def test_engine_never_reads_the_non_data_rows(engine_result):
    rows = builder.layout_rows()
    non_data = {rows["total"], rows["footnote"], rows["source"]}
    for sheet, table in engine_result.tables.items():
        assert not set(int(r) for r in table.data["_row"]) & non_data, sheet
    for f in engine_result.finding_list:
        if f.row in non_data and "Data extraction" in _cell(f):
            assert f.severity == "info", f
    assert engine_result.summary.rows_read == 48


@needs_engine
def test_engine_reports_the_layout_at_the_team_cells(engine_result):
    cells = {_cell(f) for f in engine_result.finding_list}
    for cell, severity, what in builder.layout_expectations():
        if "!" in cell:
            assert cell.replace("'", "") in cells, (cell, severity, what)


@needs_engine
def test_engine_clean_rows_are_those_of_the_correct_reading(engine_result, tmp_path):
    from curation.validation import validate

    builder.write_canonical(tmp_path / "canonical.xlsx")
    want = validate(tmp_path / "canonical.xlsx", builder.SCHEMA).clean
    got = engine_result.clean
    fields = ["first_author", "year", "cohort", "radiopharmaceutical", "n_enrolled", "n_evaluable", "grade",
              "primary_site", "cr", "pr", "sd", "pd", "orr_pct", "dcr_pct", "pfs_median", "pfs_ci_low", "pfs_ci_high",
              "os_median", "os_ci_low", "os_ci_high"]

    def rows(df):
        out = []
        for rec in df[fields].astype(object).where(df[fields].notna(), None).to_dict("records"):
            out.append(tuple((k, str(rec[k]).casefold() if rec[k] is not None else None) for k in fields))
        return sorted(out)

    assert rows(got) == rows(want)

"""Competing explanations of one sheet (layouts.md v2, "What it must never do": when two structures explain a
sheet about equally well, refuse with exit 2, naming both and the line of the layout file that chooses).

A sheet with an ``Outcome`` column and columns headed ``N``, ``Responders``, ``Estimate`` reads two ways: long
(the outcome named in each row and each column's role name the field: ``ORR`` rows give orr_n, n_evaluable and
orr_pct) or wide (each row a study, ``N`` = n_enrolled, ``Responders`` = orr_n, the outcome column not read).
Which is meant depends on how many of its rows name an outcome the review knows: about half, and the reader
refuses; clearly more or fewer, and it takes the better, never silently the worse.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from curation.errors import UnusableInputError
from curation.layout import load_layout, map_form
from curation.layout.compete import MARGIN, MIN_DISPUTED, Explanation, judge
from curation.schema import load_schema
from curation.validation import validate

CURATE = str(Path(sys.executable).parent / "curate")

# real figures (shared/data: Bodei 2011, NETTER-1's 177Lu arm, Brabander 2017, Zandee 2019), one outcome row each
STUDIES = [("Bodei 2011", 51, 13, 25.5), ("Strosberg 2017", 101, 18, 17.8), ("Brabander 2017", 133, 73, 54.9),
           ("Zandee 2019", 76, 21, 27.6)]


def results_workbook(path: Path, outcomes: list[str]) -> Path:
    """One row per study: its outcome (``CBR``, clinical benefit, is not an outcome of the PRRT review)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Results"
    ws.append(["Study", "Outcome", "N", "Responders", "Estimate"])
    for (study, n, events, pct), outcome in zip(STUDIES, outcomes):
        ws.append([study, outcome, n, events, pct])
    wb.save(path)
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CURATE, *args], capture_output=True, text=True, timeout=120)


def test_a_sheet_long_and_wide_explain_equally_well_is_refused_naming_both_and_the_line_that_chooses(tmp_path):
    path = results_workbook(tmp_path / "results.xlsx", ["ORR", "CBR", "ORR", "CBR"])
    proc = _run("validate", str(path))
    assert proc.returncode == 2, proc.stdout[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    msg = lines[0]
    assert "sheet 'Results'" in msg and "about equally well" in msg, msg
    # both explanations, in the reviewer's words
    assert "as long (column B names each row's outcome, ORR" in msg, msg
    assert "wide (one record per row: C 'N' = n_enrolled; D 'Responders' = orr_n" in msg, msg
    # the line of the layout file that chooses, and how to get that file
    assert "`shape: long`" in msg and "`shape: wide`" in msg and "--layout" in msg, msg
    assert "curate map results.xlsx -o layout.yaml" in msg, msg
    assert "write a schema for this review" not in msg  # the shape is in question, not the schema
    lay = tmp_path / "layout.yaml"
    proc = _run("map", str(path), "-o", str(lay))
    assert proc.returncode == 0, proc.stderr
    text = lay.read_text(encoding="utf-8").splitlines()
    line_no = int(msg.split("(line ")[1].split(" ")[0])
    assert text[line_no - 1].strip() == "shape: long", (line_no, text[line_no - 1])
    # the entry keeps both recipes, least certain first says so
    assert any("reads about as well as wide" in t for t in text[:12]), text[:12]
    layout = load_layout(lay)
    assert layout.choices and "Results" in layout.choices


def test_the_layout_file_chooses_long_or_wide_and_each_reads(tmp_path):
    path = results_workbook(tmp_path / "results.xlsx", ["ORR", "CBR", "ORR", "CBR"])
    with pytest.raises(UnusableInputError):
        validate(path)
    layout = map_form(path, load_schema(None))
    lay = tmp_path / "layout.yaml"
    lay.write_text(layout.to_yaml(), encoding="utf-8")
    as_long = validate(path, layout=load_layout(lay))
    clean = as_long.clean.set_index("study_id")
    # long: the ORR rows give orr_n, n_evaluable and orr_pct; the CBR rows are not read, with a warning
    assert clean.loc["Bodei2011", "orr_n"] == 13 and clean.loc["Bodei2011", "n_evaluable"] == 51
    assert clean.loc["Bodei2011", "orr_pct"] == 25.5
    assert clean.loc["Brabander2017", "orr_n"] == 73
    unread = [f for f in as_long.finding_list if f.rule == "unread-data" and "'CBR'" in f.message]
    assert unread and all(f.severity == "warning" for f in unread)
    # one line changed: wide, every row a study, N its n_enrolled, Responders its orr_n
    lay.write_text(lay.read_text(encoding="utf-8").replace("  shape: long\n", "  shape: wide\n"), encoding="utf-8")
    proc = _run("validate", str(path), "--layout", str(lay))
    assert proc.returncode in (0, 1), proc.stderr
    as_wide = validate(path, layout=load_layout(lay))
    clean = as_wide.clean.set_index("study_id")
    assert sorted(clean.index) == ["Bodei2011", "Brabander2017", "Strosberg2017", "Zandee2019"]
    assert clean.loc["Strosberg2017", "n_enrolled"] == 101 and clean.loc["Strosberg2017", "orr_n"] == 18
    assert clean.loc["Zandee2019", "n_enrolled"] == 76
    assert "n_evaluable" not in clean.columns or clean["n_evaluable"].isna().all()


def test_near_but_not_tied_long_is_taken_when_most_rows_name_an_outcome(tmp_path):
    path = results_workbook(tmp_path / "results.xlsx", ["ORR", "DCR", "ORR", "CBR"])
    r = validate(path)
    clean = r.clean.set_index("study_id")
    assert clean.loc["Bodei2011", "orr_n"] == 13 and clean.loc["Bodei2011", "n_evaluable"] == 51
    assert clean.loc["Strosberg2017", "dcr_n"] == 18 and clean.loc["Strosberg2017", "dcr_pct"] == 17.8
    assert any("read as long" in f.message for f in r.finding_list if f.rule == "inferred-layout")


def test_near_but_not_tied_wide_is_taken_when_few_rows_name_an_outcome(tmp_path):
    path = results_workbook(tmp_path / "results.xlsx", ["ORR", "CBR", "CBR", "CBR"])
    r = validate(path)
    clean = r.clean.set_index("study_id")
    assert sorted(clean.index) == ["Bodei2011", "Brabander2017", "Strosberg2017", "Zandee2019"]
    assert clean.loc["Brabander2017", "n_enrolled"] == 133 and clean.loc["Brabander2017", "orr_n"] == 73
    assert not any("read as long" in f.message for f in r.finding_list)


def _expl(line: str, ok: int, bad: int = 0) -> Explanation:
    cells = {(r, 0): ("f", True) for r in range(ok)}
    cells.update({(r, 1): ("f", False) for r in range(bad)})
    return Explanation(line, line, cells)


@pytest.mark.parametrize(("a", "b", "cells", "tie"), [
    (8, 8, 16, True),  # the same share: refused
    (9, 8, 16, True),  # within the margin
    (12, 8, 16, False),  # a quarter of the cells apart: the better is taken
    (2, 2, 4, False),  # too few cells to be a rival structure
    (30, 0, 30, False),  # one reads nothing
])
def test_judge_refuses_only_within_the_margin(a, b, cells, tie):
    v = judge(_expl("shape: long", a), _expl("shape: wide", b), cells)
    assert v.tie is tie
    assert v.best.line == ("shape: long" if a >= b else "shape: wide")
    assert (v.best_read, v.other_read) == (max(a, b), min(a, b))
    if tie:
        assert min(a, b) >= MIN_DISPUTED and abs(a - b) <= MARGIN * cells


def test_cells_read_into_a_field_their_content_does_not_fit_count_against():
    v = judge(_expl("shape: long", 8), _expl("shape: wide", 8, bad=6), 22)
    assert not v.tie and v.best.line == "shape: long" and v.other_read == 2


# a form-style sheet: labels in A, one study's values in B; column C either a second cohort or notes beside them
FORM_LABELS = ["Design", "Agent", "Criteria", "N enrolled", "Evaluable pts", "CR", "PR", "SD", "PD", "mPFS"]
BODEI = ["prospective", "177Lu-DOTATATE", "RECIST 1.1", 51, 42, 1, 12, 19, 10, "36 (24–48)"]


def form_sheet(path: Path, beside: list) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Bodei 2011"
    ws.cell(1, 1, "Extraction form")
    for i, (label, v, w) in enumerate(zip(FORM_LABELS, BODEI, beside)):
        ws.cell(3 + i, 1, label)
        ws.cell(3 + i, 2, v)
        if w is not None:
            ws.cell(3 + i, 3, w)
    wb.save(path)
    return path


# half figures that fit (a second cohort's?), half words that fit no field (notes?): either reading is as good
MIXED = [None, None, None, "patients", 40, 1, 12, "n", "n", "months"]


def test_a_form_sheet_read_as_one_study_or_as_two_columns_equally_well_is_refused(tmp_path):
    path = form_sheet(tmp_path / "form.xlsx", MIXED)
    proc = _run("validate", str(path))
    assert proc.returncode == 2, proc.stdout[-2000:]
    msg = proc.stderr.strip()
    assert len(msg.splitlines()) == 1 and "sheet 'Bodei 2011'" in msg, msg
    assert "one study's form (labels in column A, its values in B; C not read" in msg, msg
    assert "studies or cohorts side by side (labels in column A, one record per column: B, C" in msg, msg
    assert "`recordPer: sheet`" in msg and "`recordPer: column`" in msg, msg
    lay = tmp_path / "layout.yaml"
    assert _run("map", str(path), "-o", str(lay)).returncode == 0
    line_no = int(msg.split("(line ")[1].split(" ")[0])
    assert lay.read_text(encoding="utf-8").splitlines()[line_no - 1].strip() == "recordPer: sheet"
    # as one study's form: B read; C's figures not read, with a warning
    r = validate(path, layout=load_layout(lay))
    o = r.tables["outcomes"].data.set_index("study_id")
    assert list(o.index) == ["Bodei2011"] and o.loc["Bodei2011", "pr"] == 12
    assert [f for f in r.finding_list if f.rule == "unread-data" and f.severity == "warning"]
    # one line changed: two records, one per column
    lay.write_text(lay.read_text(encoding="utf-8").replace("  recordPer: sheet\n", "  recordPer: column\n"),
                   encoding="utf-8")
    r = validate(path, layout=load_layout(lay))
    assert len(r.tables["outcomes"].data) == 2


def test_a_form_sheet_beside_a_clear_second_cohort_reads_both_columns(tmp_path):
    path = form_sheet(tmp_path / "form.xlsx", [None, None, None, 62, 40, 1, 12, 20, 7, "30 (24–36)"])
    r = validate(path)
    assert len(r.tables["outcomes"].data) == 2


def test_a_form_sheet_beside_notes_reads_one_study_and_warns_of_nothing_lost(tmp_path):
    notes = ["p. 3", "p. 3", "Methods", "patients", "patients", "n", "n", "n", "n", "months"]
    path = form_sheet(tmp_path / "form.xlsx", notes)
    r = validate(path)
    o = r.tables["outcomes"].data.set_index("study_id")
    assert list(o.index) == ["Bodei2011"] and o.loc["Bodei2011", "sd"] == 19
    assert not [f for f in r.finding_list if f.rule == "invalid-number"], [f.message for f in r.finding_list]


@pytest.mark.parametrize("outcomes", [["ORR", "DCR", "ORR", "CBR"], ["ORR", "CBR", "CBR", "CBR"]])
def test_near_cases_map_then_layout_gives_the_same_findings(tmp_path, outcomes):
    path = results_workbook(tmp_path / "results.xlsx", outcomes)
    lay = tmp_path / "layout.yaml"
    lay.write_text(map_form(path, load_schema(None)).to_yaml(), encoding="utf-8")
    key = lambda r: sorted((f.rule, f.severity, f.cell or "", f.message) for f in r.finding_list  # noqa: E731
                           if f.rule != "inferred-layout")
    assert key(validate(path)) == key(validate(path, layout=load_layout(lay)))

"""Cells as people type them (layouts.md v2): ``n=62``, ``N = 62``, ``62 pts``, ``32.2 %``, ``15/46``,
``15 of 46``, ``0.80 (0.61-1.05)``, ``HR 0.80; 95% CI 0.61 to 1.05``, ``p<0.001`` and the composites of
version 1 (``18 (17.8)``, ``28.4 (19.4–35.8)``), each in a wide sheet under its header.

A property test: whatever the figures and whichever way each cell is typed, every value is read to the right
value(s), or the cell carries a finding at warning or above. Never silently wrong, never silently dropped. A
denominator typed in a count cell (``15/44``) that differs from the row's own is such a finding.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.schema import load_schema
from curation.validation import validate

SCHEMA = """
name: typed_cells
title: Cells as people type them
version: 1
sheets:
  studies:
    key: [study_id]
    fields:
      study_id: {type: text, required: true, aliases: [Study]}
      n_enrolled: {type: integer, min: 1, aliases: [N, Patients]}
      n_evaluable: {type: integer, min: 1, aliases: [Evaluable, N evaluable]}
      responders: {type: integer, min: 0, aliases: [Responders]}
      orr_pct: {type: percentage, count_field: responders, min: 0, max: 100, aliases: [ORR, ORR (%)]}
      dcr_pct: {type: percentage, min: 0, max: 100, aliases: [DCR, DCR (%)]}
      hr: {type: number, min_exclusive: 0, combined: {low: hr_ci_low, high: hr_ci_high}, aliases: [HR]}
      hr_ci_low: {type: number, min_exclusive: 0, aliases: [HR CI low]}
      hr_ci_high: {type: number, min_exclusive: 0, aliases: [HR CI high]}
      p_value: {type: p_value, aliases: [p, P value]}
analysis:
  sheet: studies
  overall_cohort: overall
  outcomes:
    orr:
      label: Objective response
      kind: proportion
      events: [responders]
      total: n_evaluable
    effect:
      label: Hazard ratio
      kind: reported_effect
      effect: hr
      low: hr_ci_low
      high: hr_ci_high
      p: p_value
      scale: ratio
  plan:
    - {outcome: orr}
    - {outcome: effect}
"""

HEADER = ["Study", "N", "Evaluable", "ORR, n (%)", "DCR (%)", "HR (95% CI)", "p"]
# the count in a column of its own, the percentage beside it: 'Responders' holds 15/46, 15 of 46, 18 (17.8)
HEADER_COUNT = ["Study", "N", "Evaluable", "Responders", "DCR (%)", "HR", "p", "ORR (%)"]
COLUMN = {"n_enrolled": "B", "n_evaluable": "C", "responders": "D", "orr_pct": "D", "dcr_pct": "E", "hr": "F",
          "hr_ci_low": "F", "hr_ci_high": "F", "p_value": "G"}
STUDIES = ["Bodei2011", "Strosberg2017", "Brabander2017", "Zandee2019", "Kwekkeboom2008"]

N_FORMS = ["{n}", "n={n}", "N = {n}", "{n} pts", "{n} patients", "n = {n}"]
COUNT_FORMS = ["{e}/{d}", "{e} of {d}", "{e} ({p})", "{e}/{d} ({p})", "{e} ({p}%)", "{e} out of {d}"]
PCT_FORMS = ["{x} %", "{x}%", "{x}"]
HR_FORMS = ["{hr} ({lo}-{hi})", "HR {hr}; 95% CI {lo} to {hi}", "{hr} [{lo}, {hi}]", "{hr} (95% CI {lo}-{hi})",
            "{hr} ({lo} to {hi})", "{hr} ({lo}\u2013{hi})", "HR {hr} (95% CI {lo}-{hi})",
            "{hr}; 95% CI {lo} to {hi}", "{hr} 95% CI: {lo}\u2013{hi}", "{hr}, 95% CI {lo}-{hi}",
            "HR: {hr} [95% CI {lo}; {hi}]"]
P_FORMS = [("p<0.001", 0.001, "<"), ("P < 0.001", 0.001, "<"), ("<0.05", 0.05, "<"), ("p = {p}", None, ""),
           ("{p}", None, ""), ("p={p}", None, "")]


@st.composite
def study_row(draw, count_column: bool = False):
    n = draw(st.integers(10, 900))
    d = draw(st.integers(5, n))
    e = draw(st.integers(0, d))
    planted = draw(st.booleans()) and draw(st.booleans())  # a quarter of rows: the cell's denominator differs
    d_cell = d + draw(st.integers(1, 9)) if planted else d
    p_pct = round(100 * e / d_cell, 1)
    x = draw(st.integers(0, 1000)) / 10
    lo = draw(st.integers(5, 150)) / 100
    hr = lo + draw(st.integers(1, 60)) / 100
    hi = hr + draw(st.integers(1, 80)) / 100
    p = draw(st.sampled_from([0.01, 0.03, 0.2, 0.45]))
    forms = {k: draw(st.integers(0, len(v) - 1)) for k, v in
             (("n", N_FORMS), ("count", COUNT_FORMS), ("pct", PCT_FORMS), ("hr", HR_FORMS), ("p", P_FORMS))}
    p_text, p_val, p_bound = P_FORMS[forms["p"]]
    count_form = COUNT_FORMS[forms["count"]]
    if count_column:
        count_form = ["{e}", *COUNT_FORMS][forms["count"]]
    cells = [N_FORMS[forms["n"]].format(n=n), d, count_form.format(e=e, d=d_cell, p=p_pct),
             PCT_FORMS[forms["pct"]].format(x=x), HR_FORMS[forms["hr"]].format(hr=f"{hr:.2f}", lo=f"{lo:.2f}",
                                                                               hi=f"{hi:.2f}"),
             p_text.format(p=p)]
    expected = {"n_enrolled": n, "n_evaluable": d, "responders": e, "dcr_pct": x, "hr": round(hr, 2),
                "hr_ci_low": round(lo, 2), "hr_ci_high": round(hi, 2), "p_value": p_val if p_val is not None else p}
    if count_column:  # the percentage typed in its own column too
        cells.append(f"{p_pct}%")
        expected["orr_pct"] = p_pct
    elif "{p}" in count_form:
        expected["orr_pct"] = p_pct
    # a denominator in the cell that differs from the row's: a warning on the cell, never silently dropped
    flagged = {"n_evaluable"} if planted and "{d}" in count_form else set()
    return cells, expected, flagged


def _workbook(path: Path, rows: list, header: list[str] = HEADER) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    ws.append(header)
    for sid, (cells, _e, _f) in zip(STUDIES, rows):
        ws.append([sid, *cells])
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    p = tmp_path_factory.mktemp("typed") / "typed.yaml"
    p.write_text(SCHEMA, encoding="utf-8")
    return load_schema(p)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(study_row(), min_size=3, max_size=5))
def test_every_typed_form_is_read_right_or_flagged(schema, tmp_path, rows):
    _check(validate(_workbook(tmp_path / "typed.xlsx", rows), schema), rows, COLUMN)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(study_row(count_column=True), min_size=3, max_size=5))
def test_counts_typed_with_their_denominator_or_percentage_in_a_count_column(schema, tmp_path, rows):
    _check(validate(_workbook(tmp_path / "typed.xlsx", rows, HEADER_COUNT), schema), rows, {**COLUMN, "orr_pct": "H"})


def _check(r, rows, column: dict[str, str]) -> None:
    clean = r.clean.set_index("study_id")
    flags = {(f.row, f.column) for f in r.finding_list if f.severity in ("warning", "error")}
    for k, (sid, (cells, expected, flagged)) in enumerate(zip(STUDIES, rows)):
        row = k + 2
        for field, want in expected.items():
            got = clean.loc[sid, field] if sid in clean.index and field in clean.columns else None
            right = got is not None and got == pytest.approx(want, abs=1e-9)
            if field in flagged:  # the row's own n_evaluable is read; the cell's denominator is flagged
                assert right and (row, column["responders"]) in flags, (sid, field, got, want, cells)
                continue
            assert right or (row, column[field]) in flags, (sid, field, got, want, cells,
                                                            [f.message for f in r.finding_list if f.row == row])
        assert not flagged or any(f.rule == "unread-data" and f.row == row and "denominator" in f.message
                                  for f in r.finding_list), cells
    # nothing else is flagged on data cells: every form above is one people type
    planted_rows = {k + 2 for k, (_c, _e, fl) in enumerate(rows) if fl}
    stray = [f for f in r.finding_list if f.severity in ("warning", "error") and f.row and f.row > 1
             and f.row not in planted_rows and f.rule not in ("missing-sheet",)]
    assert not stray, [(f.rule, f.cell, f.message) for f in stray]
    bounds = dict(zip(clean.index, clean["p_value_bound"])) if "p_value_bound" in clean.columns else {}
    for sid, (cells, _e, _f) in zip(STUDIES, rows):
        text = cells[5]  # the p column
        if "<" in text:
            assert bounds.get(sid) == "<", (sid, text, bounds.get(sid))


def test_a_denominator_typed_in_a_count_cell_fills_an_empty_total_and_is_checked_against_a_typed_one(schema,
                                                                                                     tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    ws.append(["Study", "N", "ORR, n (%)"])  # no Evaluable column: the cell's denominator is n_evaluable
    ws.append(["Bodei2011", "n=51", "13/46"])
    ws.append(["Strosberg2017", "116 pts", "18 of 101"])
    wb.save(tmp_path / "den.xlsx")
    r = validate(tmp_path / "den.xlsx", schema)
    clean = r.clean.set_index("study_id")
    assert clean.loc["Bodei2011", "n_evaluable"] == 46 and clean.loc["Bodei2011", "responders"] == 13
    assert clean.loc["Strosberg2017", "n_evaluable"] == 101 and clean.loc["Strosberg2017", "n_enrolled"] == 116
    assert not [f for f in r.finding_list if f.rule == "unread-data"]


# ---------------------------------------------------------------------------------------------
# '15/46' under a percentage header; '29 months; 95% CI 26 to 33' under a median header
# ---------------------------------------------------------------------------------------------

HEADER_PCT = ["Study", "Evaluable", "Responders", "ORR (%)"]


@st.composite
def fraction_row(draw):
    """A row whose 'ORR (%)' cell holds the count and its denominator; the row's own count and denominator
    cells are empty, the same, or (planted) different."""
    d = draw(st.integers(1, 900))
    e = draw(st.integers(0, d))
    form = draw(st.sampled_from(["{e}/{d}", "{e} of {d}", "{e} / {d}", "{e} out of {d}"]))
    own_d = draw(st.sampled_from(["empty", "same", "other"]))
    own_e = draw(st.sampled_from(["empty", "same", "other"]))
    cells = [None if own_d == "empty" else d if own_d == "same" else d + draw(st.integers(1, 9)),
             None if own_e == "empty" else e if own_e == "same" else e + draw(st.integers(1, 9)),
             form.format(e=e, d=d)]
    return cells, e, d, own_e, own_d


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(fraction_row(), min_size=2, max_size=5))
def test_a_count_and_its_denominator_under_a_percentage_header_give_the_percentage(schema, tmp_path, rows):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    ws.append(HEADER_PCT)
    for sid, (cells, *_rest) in zip(STUDIES, rows):
        ws.append([sid, *cells])
    wb.save(tmp_path / "frac.xlsx")
    r = validate(tmp_path / "frac.xlsx", schema)
    clean = r.clean.set_index("study_id")
    for k, (sid, (cells, e, d, own_e, own_d)) in enumerate(zip(STUDIES, rows)):
        row = k + 2
        at_pct = [f for f in r.finding_list if f.row == row and f.column == "D"]
        # never an error on the cell: it is read, with an info that says how
        assert not [f for f in at_pct if f.severity == "error" and f.rule == "invalid-number"], cells
        info = [f for f in at_pct if f.severity == "info" and "read as" in f.message]
        assert info and f"{e} of {d} = {100 * e / d:.1f}%" in info[0].message, [f.message for f in at_pct]
        assert clean.loc[sid, "orr_pct"] == pytest.approx(round(100 * e / d, 1), abs=1e-9), cells
        for field, own, want, col in (("responders", own_e, e, "C"), ("n_evaluable", own_d, d, "B")):
            if own == "empty":  # filled from the cell
                assert clean.loc[sid, field] == want, (field, cells)
            elif own == "same":
                assert clean.loc[sid, field] == want, (field, cells)
                assert not [f for f in at_pct if f.rule == "unread-data" and field in f.message], cells
            else:  # the row's own cell is read; a warning at the percentage cell names both cells
                assert clean.loc[sid, field] == cells[0 if field == "n_evaluable" else 1], (field, cells)
                warned = [f for f in at_pct if f.severity == "warning" and field in f.message]
                assert warned and f"Extraction!{col}{row}" in warned[0].message, [f.message for f in at_pct]


def test_a_fraction_with_a_zero_denominator_under_a_percentage_header_stays_an_error(schema, tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER_PCT)
    ws.append(["Bodei2011", 46, None, "15/0"])
    wb.save(tmp_path / "zero.xlsx")
    r = validate(tmp_path / "zero.xlsx", schema)
    assert [f for f in r.finding_list if f.rule == "invalid-number" and f.column == "D" and "15/0" in f.message]


@pytest.mark.parametrize("text, median, low, high, unit", [
    ("29 months; 95% CI 26 to 33", 29, 26, 33, "months"),
    ("29 (95% CI 26-33)", 29, 26, 33, None),
    ("29 95% CI: 26\u201333", 29, 26, 33, None),
    ("29 [26, 33]", 29, 26, 33, None),
    ("29, 95% CI 26-33", 29, 26, 33, None),
    ("HR 0.80; 95% CI 0.61 to 1.05", 0.80, 0.61, 1.05, None),
    ("24.8 (17.5\u201334.5)", 24.8, 17.5, 34.5, None),
    ("14,6 (12,4\u201316,9)", 14.6, 12.4, 16.9, None),
    ("29 wk; 95% CI: 26\u201333", 29, 26, 33, "wk"),
    ("29 months (26-33)", 29, 26, 33, "months"),
    ("22.8; 95% CI 19.4 to NR", 22.8, 19.4, None, None),
])
def test_a_median_with_its_stated_ci_is_split(text, median, low, high, unit):
    from curation.cells import parse_number_text

    p = parse_number_text(text, combined=True, not_reached=True)
    assert p.status == "combined", p
    assert (p.value, p.low, p.unit) == (pytest.approx(median), pytest.approx(low), unit)
    assert p.high == (pytest.approx(high) if high is not None else None)
    assert p.high_not_reached == (high is None)


@pytest.mark.parametrize("text", ["about 29; 95% CI 26 to 33", "29; 95% CI 26", "29 months; 95% CI 26 to 33 wk",
                                  "29; 95% CI twenty to 33", "29 months; 90% CI 26 to 33"])
def test_a_median_with_a_ci_it_cannot_split_stays_an_error(text):
    from curation.cells import parse_number_text

    p = parse_number_text(text, combined=True, not_reached=True)
    assert p.status == "invalid" and p.reason and text in p.reason, p


def test_a_form_sheet_reads_typed_counts_and_a_fraction_under_its_percentage_label(schema, tmp_path):
    """One study's form (labels in A, values in B): ``n=51`` and ``15 of 46`` read as a wide sheet reads
    them; a responders cell that disagrees with the fraction is read, with a warning naming both cells."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Bodei2011"
    for label, value in (("Study", "Bodei2011"), ("N", "n=51"), ("Evaluable", None), ("Responders", None),
                         ("ORR (%)", "15 of 46"), ("DCR (%)", "60%")):
        ws.append([label, value])
    ws2 = wb.create_sheet("Strosberg2017")
    for label, value in (("Study", "Strosberg2017"), ("N", "116 pts"), ("Evaluable", 101), ("Responders", 19),
                         ("ORR (%)", "18/101"), ("DCR (%)", "70%")):
        ws2.append([label, value])
    wb.save(tmp_path / "forms.xlsx")
    r = validate(tmp_path / "forms.xlsx", schema)
    clean = r.clean.set_index("study_id")
    assert not [f for f in r.finding_list if f.rule == "invalid-number"], [f.message for f in r.finding_list]
    assert clean.loc["Bodei2011", "n_enrolled"] == 51 and clean.loc["Strosberg2017", "n_enrolled"] == 116
    assert clean.loc["Bodei2011", "orr_pct"] == pytest.approx(32.6)
    assert clean.loc["Bodei2011", "responders"] == 15 and clean.loc["Bodei2011", "n_evaluable"] == 46
    assert clean.loc["Strosberg2017", "responders"] == 19 and clean.loc["Strosberg2017", "orr_pct"] == pytest.approx(17.8)
    warned = [f for f in r.finding_list if f.severity == "warning" and "'18/101' gives responders = 18" in f.message]
    assert warned and "Strosberg2017!B4" in warned[0].message and "Strosberg2017!B5" in warned[0].message, \
        [f.message for f in r.finding_list]


def test_a_stated_ci_is_checked_against_the_rows_own_ci_cells(schema, tmp_path):
    """``HR 0.80; 95% CI 0.61 to 1.05`` beside typed CI cells: the typed cells are read, an empty one takes the
    cell's bound, and a bound that differs is a warning naming both cells."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    ws.append(["Study", "HR", "HR CI low", "HR CI high"])
    ws.append(["Bodei2011", "HR 0.80; 95% CI 0.61 to 1.05", 0.61, 1.10])
    ws.append(["Strosberg2017", "0.21, 95% CI: 0.13\u20130.33", None, None])
    wb.save(tmp_path / "ci.xlsx")
    r = validate(tmp_path / "ci.xlsx", schema)
    clean = r.clean.set_index("study_id")
    assert clean.loc["Bodei2011", ["hr", "hr_ci_low", "hr_ci_high"]].tolist() == [0.80, 0.61, 1.10]
    assert clean.loc["Strosberg2017", ["hr", "hr_ci_low", "hr_ci_high"]].tolist() == [0.21, 0.13, 0.33]
    mismatch = [f for f in r.finding_list if f.rule == "combined-ci-mismatch"]
    assert len(mismatch) == 1 and mismatch[0].row == 2 and "1.05" in mismatch[0].message \
        and "Extraction!D2" in mismatch[0].message and "Extraction!B2" in mismatch[0].message, mismatch

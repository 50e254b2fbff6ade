"""Reading a team's own workbook: layout inference, composite cells, non-data rows, hidden and helper
columns, `curate map` and `--layout` (shared spec: layouts.md).

Each workbook is built with openpyxl the way a review team builds one; the tests assert what the clean
data hold, value by value, and which findings the layout gives (one case per layout rule code).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.errors import UnusableInputError
from curation.layout import (RX_AUTHOR_YEAR, content_kind, infer_layout, load_layout, map_form, split_header)
from curation.reading import read_grids
from curation.schema import load_schema
from curation.validation import validate

CURATE = str(Path(sys.executable).parent / "curate")
SCHEMA = load_schema()

HEADER_GROUPS = ["Study", None, None, None, "Patients", None, "Tumour", None, "Response (RECIST 1.1)", None, None,
                 None, None, None, "Survival, months (95% CI)", None]
HEADER = ["Author (year)", "Design", "Agent", "Criteria", "N", "Evaluable pts", "Grade (WHO 2019)", "Primary", "CR",
          "PR", "SD", "PD", "ORR, n (%)", "DCR, n (%)", "mPFS", "mOS"]
# real figures (shared/data): NETTER-1 177Lu arm, Brabander 2017 and its G3-like subgroup (built for the test)
ROWS = [
    ["Strosberg (2017)", "RCT", "Lutathera", "RECIST 1.1", 116, 101, "G1-2", "midgut", 1, 17, 70, 13, "18 (17.8)",
     "88 (87.1)", "28.4 (19.4–35.8)", "48.0 (37.4–55.2)"],
    ["Brabander (2017)", "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 610, 443, "mixed", "GEP", 10, 163, 200, 70,
     "173 (39.1)", "373 (84.2)", "29 (26–33)", "63 (55–72)"],
    ["Bodei et al., 2011", "prospective", "177Lu-DOTATATE", "RECIST 1.1", 51, 42, "mixed", "mixed", 1, 12, 19, 10,
     "13 (31.0)", "32 (76.2)", "36 (24–NR)", "NR"],
]


def team_workbook(path: Path, rows=ROWS, *, total: bool = True, note: bool = True, helper: bool = True,
                  title_rows: int = 2, extra=None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data extraction"
    for i in range(title_rows):
        ws.cell(i + 1, 1, ["177Lu-PRRT review: data extraction", "Extracted by AB, checked by CD"][i % 2])
    g = title_rows + 2  # a blank row, then the group row
    for j, v in enumerate(HEADER_GROUPS, 1):
        if v:
            ws.cell(g, j, v)
    for a, b in (("A", "D"), ("E", "F"), ("G", "H"), ("I", "N"), ("O", "P")):
        ws.merge_cells(f"{a}{g}:{b}{g}")
    for j, v in enumerate(HEADER + (["ORR (%)"] if helper else []), 1):
        ws.cell(g + 1, j, v)
    r = g + 2
    for row in rows:
        for j, v in enumerate(row, 1):
            if v is not None:
                ws.cell(r, j, v)
        if helper:
            ws.cell(r, len(HEADER) + 1, f"=J{r}/F{r}*100")
        r += 1
    if total:
        ws.cell(r, 1, "Total")
        ws.cell(r, 5, sum(x[4] for x in rows))
        ws.cell(r, 9, sum(x[8] for x in rows))
        r += 1
    if note:
        ws.cell(r, 1, "NR = not reached; ORR = objective response rate; data from the full texts")
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=len(HEADER))
    if helper:
        ws.column_dimensions[openpyxl.utils.get_column_letter(len(HEADER) + 1)].hidden = True
    if extra:
        extra(wb, ws)
    wb.save(path)
    return path


def findings(result):
    return [(f.rule, f.severity, f.cell) for f in result.finding_list]


def test_wide_sheet_is_read_as_the_reviewer_meant(tmp_path):
    r = validate(team_workbook(tmp_path / "team.xlsx"))
    clean = r.clean.set_index(["study_id", "cohort"])
    assert list(clean.index) == [("Strosberg2017", "overall"), ("Brabander2017", "overall"), ("Bodei2011", "overall")]
    s = clean.loc[("Strosberg2017", "overall")]
    assert (s.first_author, s.year, s.design, s.radiopharmaceutical) == ("Strosberg", 2017, "RCT", "177Lu-DOTATATE")
    assert (s.n_enrolled, s.n_evaluable, s.cr, s.pr, s.sd, s.pd) == (116, 101, 1, 17, 70, 13)
    assert (s.orr_n, s.orr_pct, s.dcr_n, s.dcr_pct) == (18, 17.8, 88, 87.1)
    assert (s.pfs_median, s.pfs_ci_low, s.pfs_ci_high) == (28.4, 19.4, 35.8)
    assert (s.os_median, s.os_ci_low, s.os_ci_high) == (48.0, 37.4, 55.2)
    b = clean.loc[("Bodei2011", "overall")]
    assert (b.pfs_median, b.pfs_ci_low, bool(b.pfs_ci_high_nr), bool(b.os_median_nr)) == (36, 24, True, True)
    assert r.summary.errors == 0, findings(r)
    got = findings(r)
    # the Total row and the note are reported once each at their row, never read
    assert ("non-data-row", "info", "'Data extraction'!9:9") in got
    assert ("non-data-row", "info", "'Data extraction'!10:10") in got
    assert r.summary.rows_read == 6  # 3 studies rows + 3 outcome rows
    # the hidden helper column is not read, and said so
    assert ("hidden-column", "warning", "'Data extraction'!Q5") in got
    assert any(f.rule == "inferred-layout" and f.column == "M" for f in r.finding_list)
    assert all("'Data extraction'!" in (f.cell or "'Data extraction'!") for f in r.finding_list if f.row)


def test_planted_errors_are_reported_at_their_cells(tmp_path):
    rows = [list(x) for x in ROWS]
    rows[0][9] = 71        # PR 17 typed 71: the counts no longer add up
    rows[1][6] = "G4"      # no G4 in the WHO grading
    rows[2][14] = "36 (44–50)"  # median below its CI
    r = validate(team_workbook(tmp_path / "team.xlsx", rows))
    errors = {(f.rule, f.cell) for f in r.finding_list if f.severity == "error"}
    assert ("response-sum-mismatch", "'Data extraction'!J6") in errors
    assert ("rejected-term", "'Data extraction'!G7") in errors
    assert ("median-outside-ci", "'Data extraction'!O8") in errors
    # each error keeps its row out of the analyses that use a field it involves (docs/exclusions.md):
    # the PR typo out of ORR and DCR, the median below its CI out of that median's analysis
    c = r.clean.set_index("study_id")
    assert not c.loc["Strosberg2017", "in_orr"] and not c.loc["Strosberg2017", "in_dcr"]
    assert c.loc["Strosberg2017", "in_pfs"] and c.loc["Strosberg2017", "in_os"]
    assert not (c.loc["Bodei2011", "in_pfs"] and c.loc["Bodei2011", "in_os"])
    assert "Brabander2017" not in c.index or not c.loc["Brabander2017", "in_orr_by_grade"]


def test_several_sheets_found_by_content(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Study characteristics"
    ws.append(["Study", "Author", "Year", "Agent", "Criteria", "N"])
    ws.append(["S1", "Strosberg", 2017, "177Lu-DOTATATE", "RECIST 1.1", 116])
    ws.append(["S2", "Brabander", 2017, "177Lu-DOTATATE", "RECIST 1.1", 610])
    ws = wb.create_sheet("Efficacy")
    ws.append(["Study", "Cohort", "Evaluable pts", "CR", "PR", "SD", "PD", "OS (mo)", "PFS", "PFS 95% CI"])
    ws.append(["S1", "overall", 101, 1, 17, 70, 13, None, 28.4, "19.4–35.8"])
    ws.append(["S2", "overall", 443, 10, 163, 200, 70, "5.25 y", "126 wk", "97 to 169 wk"])
    ws = wb.create_sheet("Safety")
    ws.append(["Study", "Event", "Grade 3-4 (n)", "Any grade (n)", "N safety"])
    ws.append(["S1", "Thrombocytopenia", 2, 28, 111])
    ws = wb.create_sheet("Sheet1")
    ws.append(["free notes of the team"])
    p = tmp_path / "three.xlsx"
    wb.save(p)
    r = validate(p)
    assert r.summary.errors == 0, findings(r)
    c = r.clean.set_index("study_id")
    assert (c.loc["S2", "pfs_median"], c.loc["S2", "pfs_ci_low"], c.loc["S2", "pfs_ci_high"]) == \
        pytest.approx((126 * 7 / 30.4375, 97 * 7 / 30.4375, 169 * 7 / 30.4375))
    assert c.loc["S2", "os_median"] == pytest.approx(63.0)
    assert (c.loc["S1", "pfs_ci_low"], c.loc["S1", "pfs_ci_high"]) == (19.4, 35.8)
    ae = r.clean_tables["adverse_events"]
    assert list(ae["ae_term"]) == ["thrombocytopenia"] and list(ae["grade3plus_n"]) == [2]
    assert ("unmatched-sheet", "info") in {(f.rule, f.severity) for f in r.finding_list if f.sheet == "Sheet1"}


def test_unit_in_a_cell_that_contradicts_nothing_and_an_unknown_one(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "outcomes"
    ws.append(["study_id", "cohort", "n_evaluable", "pfs_median", "pfs_ci_low", "pfs_ci_high", "os_median"])
    ws.append(["S1", "overall", 10, "95 wk", 80, 110, "12 fortnights"])
    ws = wb.create_sheet("studies")
    ws.append(["study_id", "first_author", "year", "n_enrolled", "activity_per_cycle_gbq"])
    ws.append(["S1", "A", 2020, 10, "7400 MBq"])
    p = tmp_path / "u.xlsx"
    wb.save(p)
    r = validate(p)
    row = r.tables["outcomes"].data.iloc[0]
    assert row.pfs_median == pytest.approx(95 * 7 / 30.4375)
    assert row.pfs_ci_low == pytest.approx(80 * 7 / 30.4375)  # the row's unit is the one its median states
    assert r.tables["studies"].data.iloc[0].activity_per_cycle_gbq == pytest.approx(7.4)
    assert any(f.field == "os_median" and f.severity == "error" for f in r.finding_list)  # never read silently


def test_total_row_without_a_label_is_not_data(tmp_path):
    rows = [list(x) for x in ROWS]
    total = [None, None, None, None, 777, 586, None, None, 12, 192, 289, 93, None, None, None, None]
    r = validate(team_workbook(tmp_path / "t.xlsx", rows + [total], total=False, note=False, helper=False))
    assert any(f.rule == "non-data-row" and "sums" in f.message for f in r.finding_list)
    assert len(r.clean) == 3


def test_repeated_header_and_blank_separator(tmp_path):
    def extra(wb, ws):
        ws.insert_rows(7, 2)
        for j, v in enumerate(HEADER, 1):
            ws.cell(8, j, v)

    r = validate(team_workbook(tmp_path / "t.xlsx", extra=extra, helper=False, note=False))
    why = {f.row: f.message for f in r.finding_list if f.rule == "non-data-row"}
    assert "repeated header" in why[8] and "blank" in why[7]
    assert len(r.clean) == 3


def test_hidden_row_read_with_a_warning_and_merged_cells(tmp_path):
    def extra(wb, ws):
        ws.row_dimensions[7].hidden = True

    r = validate(team_workbook(tmp_path / "t.xlsx", extra=extra, helper=False))
    assert ("hidden-row", "warning", "'Data extraction'!7:7") in findings(r)
    assert len(r.clean) == 3


def test_helper_column_of_formulas(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Efficacy"
    ws.append(["Study", "Cohort", "Evaluable pts", "CR", "PR", "SD", "PD", "ORR (%)"])
    ws.append(["S1", "overall", 101, 1, 17, 70, 13, "=(D2+E2)/C2*100"])
    s = wb.create_sheet("Studies")
    s.append(["Study", "Author", "Year", "N"])
    s.append(["S1", "Strosberg", 2017, 116])
    p = tmp_path / "h.xlsx"
    wb.save(p)
    r = validate(p)
    assert any(f.rule == "helper-column" and f.column == "H" for f in r.finding_list)


def test_study_field_conflict_in_a_cohort_row(tmp_path):
    rows = [list(x) for x in ROWS] + [["Brabander (2017) G3", "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 143,
                                        143, "G3", "GEP", 2, 43, 70, 28, "45 (31.5)", "115 (80.4)", "20 (15–25)",
                                        "40 (31–49)"]]
    r = validate(team_workbook(tmp_path / "t.xlsx", rows, total=False, note=False, helper=False))
    assert any(f.rule == "study-field-conflict" and f.field == "n_enrolled" for f in r.finding_list)
    c = r.clean.set_index(["study_id", "cohort"])
    assert c.loc[("Brabander2017", "G3"), "n_evaluable"] == 143
    assert c.loc[("Brabander2017", "G3"), "n_enrolled"] == 610  # the study's own row


def test_unplaced_header_of_a_needed_field_is_an_error(tmp_path):
    from builders import good_outcome, good_study, write_form

    from builders import OUTCOME_FIELDS

    headers = {"outcomes": [("Evaluabel RECIST" if f == "n_evaluable" else f) for f in OUTCOME_FIELDS]}
    p = write_form(tmp_path / "f.xlsx", [good_study()], [good_outcome()], [], headers=headers)
    r = validate(p)
    hits = [f for f in r.finding_list if f.rule == "unplaced-column"]
    assert hits and hits[0].field == "n_evaluable" and "did you mean 'n_evaluable'" in hits[0].message
    assert r.exit_code() == 1
    # a header with a qualifier is placed by its core words
    headers = {"outcomes": [("Evaluable (RECIST)" if f == "n_evaluable" else f) for f in OUTCOME_FIELDS]}
    p = write_form(tmp_path / "g.xlsx", [good_study()], [good_outcome()], [], headers=headers)
    r = validate(p)
    assert r.clean.loc[0, "n_evaluable"] == 101


def test_sheets_matching_nothing_are_refused_with_the_closest(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "Sheet1"
    wb.active.append(["foo", "bar"])
    p = tmp_path / "x.xlsx"
    wb.save(p)
    with pytest.raises(UnusableInputError, match=r"'Sheet1' \(closest: '"):
        validate(p)


def test_map_then_layout_gives_the_same_findings(tmp_path):
    p = team_workbook(tmp_path / "team.xlsx")
    lay = tmp_path / "layout.yaml"
    out = subprocess.run([CURATE, "map", str(p), "-o", str(lay)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "headerRows" in lay.read_text() and "commentRows" in lay.read_text()
    a = subprocess.run([CURATE, "validate", str(p), "--json", str(tmp_path / "a.json")], capture_output=True)
    b = subprocess.run([CURATE, "validate", str(p), "--layout", str(lay), "--json", str(tmp_path / "b.json")],
                       capture_output=True)
    assert a.returncode == b.returncode == 0
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())
    # a layout that no longer fits: one line, exit 2
    text = lay.read_text().replace("ORR, n (%)", "ORR n pct")
    (tmp_path / "bad.yaml").write_text(text)
    c = subprocess.run([CURATE, "validate", str(p), "--layout", str(tmp_path / "bad.yaml")], capture_output=True,
                       text=True)
    assert c.returncode == 2 and "changed" in c.stderr and len(c.stderr.strip().splitlines()) == 1


def test_load_layout_refuses_what_is_not_one(tmp_path):
    bad = tmp_path / "l.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(UnusableInputError, match="not a valid layout"):
        load_layout(bad)


def test_header_parts():
    assert split_header("mPFS, months (95% CI)") == ("mpfs", ["95% ci", "months"], False)
    assert split_header("PFS 95% CI")[0] == "pfs" and split_header("PFS 95% CI")[2]
    assert split_header("ORR, n (%)") == ("orr", ["%", "n"], False) or split_header("ORR, n (%)")[0] == "orr"
    assert content_kind(["15 (32.6)", "3 (5%)", None]) == "count_pct"
    assert content_kind(["30.9 (22.7–39.0)", "NR", "12 (9-NR)"]) == "median_ci"
    assert content_kind(["22.7–39.0", "22.7 to 39.0", "22.7-NR"]) == "ci"
    m = RX_AUTHOR_YEAR.match("Bodei et al., 2011")
    assert m and m.group("a").strip(" ,").replace(" et al.", "") == "Bodei" and m.group("y") == "2011"


def _data_findings(r, top):
    return sorted((f.rule, f.field, f.study_id, f.row - top) for f in r.finding_list
                  if f.row and f.row > top and f.severity != "info")


def _permuted(path, order, titles, names):
    synonyms = {"N": "No. of patients", "Evaluable pts": "Evaluable patients", "Agent": "Radiopharmaceutical",
                "Design": "Study design", "Primary": "Primary site", "Criteria": "Response criteria"}
    rows = [list(x) for x in ROWS]
    rows[0][9] = 71
    rows[1][6] = "G4"
    header = [synonyms.get(h, h) if rename else h for h, rename in zip(HEADER, names)]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data extraction"
    for i in range(titles):
        ws.cell(i + 1, 1, f"Review title line {i + 1}")
    top = titles + (1 if titles else 0) + 1
    for j, k in enumerate(order, 1):
        ws.cell(top, j, header[k])
        for i, row in enumerate(rows):
            ws.cell(top + 1 + i, j, row[k])
    wb.save(path)
    return path, top


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(len(HEADER)))), titles=st.integers(0, 3),
       names=st.lists(st.booleans(), min_size=len(HEADER), max_size=len(HEADER)))
def test_findings_on_data_cells_do_not_depend_on_layout(tmp_path_factory, order, titles, names):
    """Shuffled columns, headers renamed to listed synonyms, title rows: the same findings on the data."""
    d = tmp_path_factory.mktemp("perm")
    base, top0 = _permuted(d / "base.xlsx", list(range(len(HEADER))), 0, [False] * len(HEADER))
    expected = _data_findings(validate(base), top0)
    assert ("rejected-term", "grade", "Brabander2017", 2) in expected
    assert ("response-sum-mismatch", "pr", "Strosberg2017", 1) in expected
    p, top = _permuted(d / "p.xlsx", order, titles, names)
    assert _data_findings(validate(p), top) == expected


def test_a_bare_95_ci_column_belongs_to_the_median_left_of_it(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Efficacy"
    ws.append(["Study", "Cohort", "N evaluable", "Median PFS", "95% CI", "Median OS", "95% CI"])
    ws.append(["S1", "overall", 101, 28.4, "19.4-35.8", 48, "37.4–55.2"])
    s = wb.create_sheet("Studies")
    s.append(["Study", "Author", "Year", "N"])
    s.append(["S1", "Strosberg", 2017, 116])
    p = tmp_path / "ci.xlsx"
    wb.save(p)
    row = validate(p).clean.iloc[0]
    assert (row.pfs_ci_low, row.pfs_ci_high, row.os_ci_low, row.os_ci_high) == (19.4, 35.8, 37.4, 55.2)


_num = st.decimals(min_value=0, max_value=999, places=1, allow_nan=False).map(str)


@settings(max_examples=60, deadline=None)
@given(m=_num, lo=_num, hi=_num, dash=st.sampled_from(["-", "–", "—", " to ", "; ", ", "]),
       pad=st.sampled_from(["", " ", "\u00a0"]))
def test_median_ci_cells_split_into_their_three_numbers(m, lo, hi, dash, pad):
    from curation.layout import ColumnLayout, _split_cell

    col = ColumnLayout(column="S", header="mPFS (95% CI)", kind="median_ci",
                       parts={"value": "pfs_median", "low": "pfs_ci_low", "high": "pfs_ci_high"})
    got, _unit, problem = _split_cell(col, f"{pad}{m} ({lo}{dash}{hi}){pad}", SCHEMA)
    assert problem is None
    assert (float(got["pfs_median"]), float(got["pfs_ci_low"]), float(got["pfs_ci_high"])) == \
        (float(m), float(lo), float(hi))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 5000), pct=_num, sign=st.sampled_from(["", "%"]), br=st.sampled_from(["()", "[]"]))
def test_count_percent_cells_split_into_count_and_percent(n, pct, sign, br):
    from curation.layout import ColumnLayout, _split_cell

    col = ColumnLayout(column="P", header="ORR, n (%)", kind="count_pct", parts={"percent": "orr_pct", "count": "orr_n"})
    got, _unit, problem = _split_cell(col, f"{n} {br[0]}{pct}{sign}{br[1]}", SCHEMA)
    assert problem is None and int(got["orr_n"]) == n and float(got["orr_pct"]) == float(pct)


def test_a_count_over_its_denominator_in_a_header_is_a_qualifier_not_the_outcomes_name():
    # 'ORR n/N (%)' is the ORR column typed as '15/46 (32.6)': 'n/N' says what the cells hold
    from curation.layout.headers import split_header

    assert split_header("ORR n/N (%)") == ("orr", ["%", "n/n"], False)
    assert split_header("DCR, n of N") == ("dcr", ["n of n"], False)
    assert split_header("n/N") == ("n/n", [], False)  # a header of nothing else keeps its words

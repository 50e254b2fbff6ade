"""Long sheets whose outcome column names count fields (CR, PR, SD, PD), adverse events named by author and year
in two columns, and one sheet per subgroup whose names mix grade, site and ``Overall`` (layouts.md v2, shapes 2
and 5; curation.layout.long, .columns, .infer).

Each workbook is built with openpyxl here, as a team builds one; the figures are Strosberg 2017 (NETTER-1's 177Lu
arm) and Brabander 2017 as published (shared/data), the subgroup splits made up for the test.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl

from curation.validation import validate

STUDY_HEAD = ["First author", "Year", "Design", "Agent", "Criteria", "N"]
STUDIES = [["Strosberg", 2017, "RCT", "Lutathera", "RECIST 1.1", 116],
           ["Brabander", 2017, "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 610]]
LONG_HEAD = ["Author", "Year", "Cohort", "Outcome", "n events", "N", "Estimate", "95% CI lower", "Upper CI"]
LONG = [["Strosberg", 2017, "overall", "ORR", 18, 101, 17.8, None, None],
        ["Strosberg", 2017, "overall", "CR", 1, 101, None, None, None],
        ["Strosberg", 2017, "overall", "PR", 17, 101, None, None, None],
        ["Strosberg", 2017, "overall", "SD", 70, 101, None, None, None],
        ["Strosberg", 2017, "overall", "PD", 13, 101, None, None, None],
        ["Strosberg", 2017, "overall", "PFS", None, None, 28.4, 19.4, 35.8],
        ["Brabander", 2017, "overall", "Complete response", 9, 443, None, None, None],
        ["Brabander", 2017, "overall", "Partial response", 164, 443, None, None, None],
        ["Brabander", 2017, "overall", "Stable disease", 190, 443, None, None, None],
        ["Brabander", 2017, "overall", "Progressive disease", 80, 443, None, None, None],
        ["Brabander", 2017, "overall", "DCR", None, 443, 81.9, None, None],
        ["Brabander", 2017, "overall", "OS", None, None, 63, 55, 72]]
AE_HEAD = ["First author", "Year", "Adverse event", "Grade 3-4 (n)", "Any grade (n)", "Safety population (n)"]
AES = [["Brabander", 2017, "MDS", 9, 9, 610], ["Strosberg", 2017, "Lymphopenia", 10, 21, 111]]


def _sheet(wb, title, head, rows, first=False):
    ws = wb.active if first else wb.create_sheet()
    ws.title = title
    for r, row in enumerate([head, *rows], 1):
        for c, v in enumerate(row, 1):
            ws.cell(r, c, v)
    return ws


def long_workbook(path: Path, rows=LONG, ae_head=AE_HEAD, aes=AES) -> Path:
    wb = openpyxl.Workbook()
    _sheet(wb, "Studies", STUDY_HEAD, STUDIES, first=True)
    _sheet(wb, "Results", LONG_HEAD, rows)
    _sheet(wb, "Safety", ae_head, aes)
    wb.save(path)
    return path


def _outcomes(r):
    return r.tables["outcomes"].data.set_index(["study_id", "cohort"])


def test_count_outcomes_under_role_columns_are_read_as_their_fields(tmp_path):
    r = validate(long_workbook(tmp_path / "long.xlsx"))
    o = _outcomes(r)
    assert len(o) == 2, o  # one record per study and subgroup, whatever the number of outcome rows
    s = o.loc[("Strosberg2017", "overall")]
    assert [s[f] for f in ("cr", "pr", "sd", "pd", "orr_n", "n_evaluable", "orr_pct")] == [1, 17, 70, 13, 18, 101, 17.8]
    assert (s["pfs_median"], s["pfs_ci_low"], s["pfs_ci_high"]) == (28.4, 19.4, 35.8)
    b = o.loc[("Brabander2017", "overall")]
    assert [b[f] for f in ("cr", "pr", "sd", "pd", "n_evaluable", "dcr_pct")] == [9, 164, 190, 80, 443, 81.9]
    assert (b["os_median"], b["os_ci_low"], b["os_ci_high"]) == (63, 55, 72)
    bad = [f for f in r.finding_list if f.rule in ("duplicate-key", "unread-data", "missing-required")]
    assert not bad, [(f.rule, f.cell, f.message) for f in bad]
    # each value keeps its own cell: CR's count is on its row, n_evaluable on the first row that gave it
    t = r.tables["outcomes"]
    i = list(zip(t.data["study_id"], t.data["cohort"])).index(("Strosberg2017", "overall"))
    assert t.ref(i, "cr") == "Results!E3" and t.ref(i, "pd") == "Results!E6" and t.ref(i, "n_evaluable") == "Results!F2"


def test_two_rows_giving_one_field_different_values_are_reported_never_read_over(tmp_path):
    rows = [list(x) for x in LONG]
    rows[3][5] = 110  # the SD row of Strosberg gives N = 110, the ORR row 101
    r = validate(long_workbook(tmp_path / "long.xlsx", rows=rows))
    o = _outcomes(r)
    assert o.loc[("Strosberg2017", "overall"), "n_evaluable"] == 101
    clash = [f for f in r.finding_list if f.rule == "unread-data" and f.cell == "Results!F5"]
    assert clash and clash[0].severity == "warning" and "Results!F2" in clash[0].message, \
        [(f.rule, f.cell, f.message) for f in r.finding_list]
    assert not [f for f in r.finding_list if f.rule == "duplicate-key"]


def test_an_error_on_a_later_row_of_a_long_record_keeps_that_record_out(tmp_path):
    rows = [list(x) for x in LONG]
    rows[5][8] = 25.3  # PFS upper bound 35.8 typed 25.3: the median 28.4 lies outside its CI (an error on row 7)
    r = validate(long_workbook(tmp_path / "long.xlsx", rows=rows))
    errs = [f for f in r.finding_list if f.severity == "error" and f.rule == "median-outside-ci"]
    assert errs and errs[0].row == 7, [(f.rule, f.cell) for f in r.finding_list]
    t = r.tables["outcomes"]
    i = list(zip(t.data["study_id"], t.data["cohort"])).index(("Strosberg2017", "overall"))
    assert t.rows[i] == 2  # the record's own row is the first: the error is found by its cell's row
    uses = [u.key for u in r.selection.uses]
    assert not r.selection.eligible["outcomes"][i, uses.index("pfs")]
    assert r.selection.eligible["outcomes"][i, uses.index("orr")]


def test_adverse_events_named_by_author_and_year_columns_link_to_their_study(tmp_path):
    r = validate(long_workbook(tmp_path / "long.xlsx"))
    ae = r.tables["adverse_events"].data
    studies = set(r.tables["studies"].data["study_id"])
    assert set(ae["study_id"]) == {"Brabander2017", "Strosberg2017"} <= studies
    assert not [f for f in r.finding_list if f.contract_sheet == "adverse_events" and f.severity != "info"], \
        [(f.rule, f.cell, f.message) for f in r.finding_list if f.contract_sheet == "adverse_events"]


def test_adverse_events_named_by_an_author_year_label_link_to_their_study(tmp_path):
    aes = [["Brabander (2017)", *a[2:]] for a in AES[:1]] + [["Strosberg et al. 2017", *AES[1][2:]]]
    r = validate(long_workbook(tmp_path / "long.xlsx", ae_head=["Author (year)", *AE_HEAD[2:]], aes=aes))
    assert set(r.tables["adverse_events"].data["study_id"]) == {"Brabander2017", "Strosberg2017"}
    assert not [f for f in r.finding_list if f.contract_sheet == "adverse_events" and f.severity == "error"]


def test_an_author_column_without_a_year_gives_no_study_id(tmp_path):
    aes = [[a[0], *a[2:]] for a in AES]
    r = validate(long_workbook(tmp_path / "long.xlsx", ae_head=["First author", *AE_HEAD[2:]], aes=aes))
    assert [f for f in r.finding_list if f.contract_sheet == "adverse_events" and f.severity == "error"
            and f.field == "study_id"]  # refused visibly (no study id), never guessed from the author alone


SUB_HEAD = ["Author (year)", "Cohort", "Design", "N", "Grade", "Primary site", "Evaluable", "CR", "PR", "SD", "PD"]
SUBGROUPS = {
    "Overall": [["Brabander (2017)", "overall", "retrospective", 610, "mixed", "mixed", 443, 9, 164, 190, 80],
                ["Strosberg (2017)", "overall", "RCT", 116, "G1-2", "midgut", 101, 1, 17, 70, 13]],
    "G3": [["Brabander (2017)", "G3", None, None, None, "mixed", 12, 0, 4, 5, 3]],
    "Pancreatic NET": [["Brabander (2017)", "Pancreatic NET", None, None, "mixed", None, 133, 4, 72, 40, 17]],
}


def subgroup_workbook(path: Path, cohort_g3: str = "G3") -> Path:
    wb = openpyxl.Workbook()
    for k, (name, rows) in enumerate(SUBGROUPS.items()):
        rows = [list(x) for x in rows]
        if name == "G3":
            rows[0][1] = cohort_g3
        _sheet(wb, name, SUB_HEAD, rows, first=k == 0)
    wb.save(path)
    return path


def test_sheets_per_subgroup_naming_grade_site_and_overall_are_all_read(tmp_path):
    r = validate(subgroup_workbook(tmp_path / "subgroups.xlsx"))
    o = _outcomes(r)
    assert sorted(o.index) == [("Brabander2017", "G3"), ("Brabander2017", "Pancreatic NET"),
                               ("Brabander2017", "overall"), ("Strosberg2017", "overall")]
    assert o.loc[("Brabander2017", "G3"), "grade"] == "G3"  # from the sheet's name: its rows state none
    assert o.loc[("Brabander2017", "Pancreatic NET"), "primary_site"] == "pancreas"
    assert o.loc[("Brabander2017", "overall"), "cr"] == 9
    bad = [f for f in r.finding_list if f.severity in ("error", "warning") and f.sheet in SUBGROUPS]
    assert not bad, [(f.rule, f.cell, f.message) for f in bad]


def test_a_cohort_column_disagreeing_with_its_sheet_name_is_a_warning(tmp_path):
    r = validate(subgroup_workbook(tmp_path / "subgroups.xlsx", cohort_g3="G1-2"))
    conflict = [f for f in r.finding_list if f.rule == "label-conflict"]
    assert [(f.cell, f.severity) for f in conflict] == [("'G3'!B2", "warning")], \
        [(f.rule, f.cell, f.message) for f in r.finding_list]
    assert ("Brabander2017", "G1-2") in _outcomes(r).index  # the row keeps what it states, reported


def test_sheets_with_the_same_headers_named_by_years_are_not_pooled(tmp_path):
    wb = openpyxl.Workbook()
    _sheet(wb, "2019", SUB_HEAD, SUBGROUPS["Overall"][:1], first=True)
    _sheet(wb, "2020", SUB_HEAD, SUBGROUPS["Overall"][1:])
    wb.save(tmp_path / "years.xlsx")
    r = validate(tmp_path / "years.xlsx")
    assert [f.sheet for f in r.finding_list if f.rule == "unread-data" and f.severity == "warning"] == ["2020"]


def test_a_studys_rows_entered_twice_are_a_duplicate_key_never_merged_silently(tmp_path):
    # Brabander's six outcome rows (Excel rows 8-13) typed again below them (rows 14-19); one of the copies differs
    rows = [list(x) for x in LONG] + [list(x) for x in LONG[6:]]
    rows[-1][6] = 36  # the second OS row: median 36, the first 63
    r = validate(long_workbook(tmp_path / "long.xlsx", rows=rows))
    dup = sorted((f.row, f.column, f.severity) for f in r.finding_list if f.rule == "duplicate-key")
    assert dup == [(row, "D", "error") for row in range(14, 20)], [(f.rule, f.cell, f.message) for f in r.finding_list]
    msgs = {f.row: f.message for f in r.finding_list if f.rule == "duplicate-key"}
    assert "an exact copy of Results!8:8" in msgs[14] and "study_id Brabander2017" in msgs[14]
    assert "differing in os_median" in msgs[19] and "Results!13:13" in msgs[19]
    o = _outcomes(r)
    assert len(o) == 2 and o.loc[("Brabander2017", "overall"), "os_median"] == 63  # the first entry, as typed
    assert o.loc[("Brabander2017", "overall"), "cr"] == 9
    # the copies' cells are not read, and each is accounted for by its row's error (no other warning on them)
    acc = next(iter(r.summary.cells.values()))["Results"]
    once = next(iter(validate(long_workbook(tmp_path / "once.xlsx")).summary.cells.values()))["Results"]
    copies = sum(1 for row in LONG[6:] for v in row[4:] if v is not None)  # their figures under the role columns
    assert acc["read"] == once["read"] + 6 * 3  # only each copy's key cells (author, year, cohort)
    assert acc["not_read"] == once["not_read"] + copies
    assert not [f for f in r.finding_list if f.rule == "unread-data"]


def test_rows_of_different_outcomes_giving_one_field_are_no_duplicate(tmp_path):
    # N on the ORR, CR, PR, SD and PD rows: n_evaluable given five times by five outcomes, read once, no finding
    r = validate(long_workbook(tmp_path / "long.xlsx"))
    assert not [f for f in r.finding_list if f.rule in ("duplicate-key", "unread-data")]
    assert _outcomes(r).loc[("Strosberg2017", "overall"), "n_evaluable"] == 101

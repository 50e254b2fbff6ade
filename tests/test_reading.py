"""Reading forms: sheet and header matching, provenance, merged cells, formulas, percent formats."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest

from builders import AE_FIELDS, OUTCOME_FIELDS, STUDY_FIELDS, good_ae, good_outcome, good_study, write_form
from curation.errors import UnusableInputError
from curation.schema import load_schema
from curation.validation import validate


def rules_at(result):
    return {(f.rule, f.cell) for f in result.finding_list}


def test_sheet_names_and_headers_match_loosely(tmp_path):
    headers = {"studies": ["Study ID", "First author", "YEAR", *STUDY_FIELDS[3:]],
               "outcomes": ["study id", "Cohort", "grade", "Ki-67 max", "Primary site", "N evaluable", "CR", "PR",
                            "SD", "PD", "NE", "ORR n", "DCR n", "ORR (%)", "DCR (%)", *OUTCOME_FIELDS[15:]]}
    p = write_form(tmp_path / "f.xlsx", [good_study()], [good_outcome()], [good_ae()], headers=headers,
                   sheet_names={"adverse_events": "Adverse Events", "studies": "STUDIES"})
    r = validate(p)
    assert r.finding_list == ()
    assert r.clean.loc[0, "orr_pct"] == pytest.approx(17.8)
    assert r.tables["outcomes"].letters[str(p)]["orr_pct"] == "N"


def test_header_not_in_first_row_and_provenance(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "studies"
    ws["C3"] = "study_id"
    ws["D3"] = "first_author"
    ws["E3"] = "year"
    ws["F3"] = "n_enrolled"
    ws["C4"], ws["D4"], ws["E4"], ws["F4"] = "S01", "Strosberg", 1980, 116
    ws["C6"], ws["D6"], ws["E6"], ws["F6"] = "S02", "Brabander", 2017, 610  # row 5 empty: skipped
    p = tmp_path / "f.xlsx"
    wb.save(p)
    r = validate(p)
    (f,) = [f for f in r.finding_list if f.rule == "out-of-range"]
    assert (f.sheet, f.row, f.column, f.field, f.study_id) == ("studies", 4, "E", "year", "S01")
    assert "studies!E4" in f.message
    assert r.summary.rows_read == 2
    # absent optional sheets are a warning, absent optional columns info
    assert ("missing-sheet", None) in rules_at(r)
    assert any(f.rule == "missing-column" and f.field == "doi" and f.severity == "info" for f in r.finding_list)


def test_unknown_and_duplicate_columns(tmp_path):
    s = good_study()
    s["Notes"] = "from the abstract"
    p = write_form(tmp_path / "f.xlsx", [s], [good_outcome()], [good_ae()])
    wb = openpyxl.load_workbook(p)
    ws = wb["outcomes"]
    ws.cell(row=1, column=ws.max_column + 1, value="ORR")
    ws.cell(row=2, column=ws.max_column, value=99)
    wb.save(p)
    r = validate(p)
    unknown = [f for f in r.finding_list if f.rule == "unknown-column"]
    assert [(f.cell, f.severity) for f in unknown] == [("studies!Q1", "info")]
    dup = [f for f in r.finding_list if f.rule == "duplicate-column"]
    assert dup and dup[0].field == "orr_pct" and dup[0].severity == "warning"
    assert r.clean.loc[0, "orr_pct"] == pytest.approx(17.8)  # the first column is read


def test_missing_required_column_is_an_error_on_every_row(tmp_path):
    p = write_form(tmp_path / "f.xlsx", [good_study()], [good_outcome()], [good_ae()],
                   headers={"studies": ["study_id", "author_name", *STUDY_FIELDS[2:]]})
    r = validate(p)
    assert any(f.rule == "missing-column" and f.field == "first_author" and f.severity == "error"
               for f in r.finding_list)
    assert any(f.rule == "missing-required" and f.cell == "studies!B2" for f in r.finding_list) is False
    assert any(f.rule == "missing-required" and f.row == 2 and f.field == "first_author" for f in r.finding_list)
    # first_author is a label: no analysis uses it, so the errors keep no row out of an analysis
    # (docs/exclusions.md); an identity field missing excludes the rows (tests/test_selection.py)
    assert r.summary.rows_passed == 3 and r.summary.rows_excluded == 0 and r.summary.errors >= 1


def test_merged_cells_fill_the_area(tmp_path):
    outs = [good_outcome(), good_outcome(cohort="G1-2"), good_outcome(cohort="G3", grade="G3", ki67_max=30)]
    p = write_form(tmp_path / "f.xlsx", [good_study()], outs, [good_ae()])
    wb = openpyxl.load_workbook(p)
    ws = wb["outcomes"]
    ws.merge_cells("A2:A4")
    wb.save(p)
    r = validate(p)
    merged = [f for f in r.finding_list if f.rule == "merged-cell"]
    # a study's label merged over its subgroup rows is filled down, as info (layouts.md v2, shape 8)
    assert [(f.cell, f.severity) for f in merged] == [("outcomes!A2", "info")]
    assert all("A2:A4" in f.message for f in merged)
    assert list(r.tables["outcomes"].data["study_id"]) == ["S01", "S01", "S01"]


def test_merged_figures_are_a_warning_in_each_cell(tmp_path):
    outs = [good_outcome(), good_outcome(cohort="G1-2"), good_outcome(cohort="G3", grade="G3", ki67_max=30)]
    p = write_form(tmp_path / "f.xlsx", [good_study()], outs, [good_ae()])
    wb = openpyxl.load_workbook(p)
    ws = wb["outcomes"]
    col = next(c.column_letter for c in ws[1] if c.value == "n_evaluable")
    ws.merge_cells(f"{col}2:{col}3")
    wb.save(p)
    r = validate(p)
    merged = [f for f in r.finding_list if f.rule == "merged-cell"]
    assert [(f.cell, f.severity) for f in merged] == [(f"outcomes!{col}2", "warning"), (f"outcomes!{col}3", "warning")]


def test_formula_without_cached_value_and_percent_format(tmp_path):
    p = write_form(tmp_path / "f.xlsx", [good_study()], [good_outcome(), good_outcome(cohort="G1-2")], [good_ae()])
    wb = openpyxl.load_workbook(p)
    ws = wb["outcomes"]
    ws["F3"] = "=F2"  # openpyxl writes no cached value
    ws["L2"] = 0.178
    ws["L2"].number_format = "0.0%"
    wb.save(p)
    r = validate(p)
    f = [f for f in r.finding_list if f.rule == "formula-without-value"]
    assert [(x.cell, x.severity) for x in f] == [("outcomes!F3", "error")]
    assert r.tables["outcomes"].data["orr_pct"].iat[0] == pytest.approx(17.8)
    assert not [x for x in r.finding_list if x.rule == "percentage-mismatch"]


def test_dates_and_text_numbers(tmp_path):
    s = good_study(enrolment_start=dt.date(2012, 3, 1), enrolment_end="06/2016", n_enrolled=" 116 ",
                   cycles_median="4,0", year="2017")
    o = good_outcome(orr_pct="17.8 %", dcr_pct="87,1", pfs_unit="MONTHS", os_unit="mo", ne="-",
                     grade="G1–2", primary_site=" Small bowel ")
    p = write_form(tmp_path / "f.xlsx", [s], [o], [good_ae(ae_term="Thrombocytopenia")])
    r = validate(p)
    assert r.finding_list == ()
    row = r.clean.iloc[0]
    assert (row["enrolment_start"], row["enrolment_end"], row["n_enrolled"], row["cycles_median"]) == (2012, 2016, 116, 4)
    assert (row["grade"], row["primary_site"]) == ("G1-2", "small_intestine")


def test_units_converted_to_months(tmp_path):
    o = good_outcome(pfs_median=120, pfs_ci_low=90, pfs_ci_high=160, pfs_unit="weeks", os_median=4,
                     os_ci_low=3, os_ci_high=5, os_unit="years", followup_median_months=80)
    p = write_form(tmp_path / "f.xlsx", [good_study()], [o], [])
    r = validate(p)
    row = r.clean.iloc[0]
    assert row["pfs_median"] == pytest.approx(120 * 7 / 30.4375)
    assert row["os_median"] == pytest.approx(48)
    assert "pfs_unit" not in r.clean.columns


def test_not_a_form(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "Sheet1"
    wb.active["A1"] = "hello"
    p = tmp_path / "f.xlsx"
    wb.save(p)
    with pytest.raises(UnusableInputError, match="none of the form's sheets"):
        validate(p)


def test_headers_that_match_nothing(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "outcomes"
    wb.active.append(["S01", "overall", 101])
    p = tmp_path / "f.xlsx"
    wb.save(p)
    with pytest.raises(UnusableInputError, match="no header in row 1 matches a field"):
        validate(p)


def test_empty_contract_sheet(tmp_path):
    p = write_form(tmp_path / "f.xlsx", [good_study()], [good_outcome()], [])
    wb = openpyxl.load_workbook(p)
    wb.remove(wb["adverse_events"])
    wb.create_sheet("adverse_events")
    wb.save(p)
    r = validate(p)
    assert [(f.rule, f.severity) for f in r.finding_list] == [("empty-sheet", "info")]


def test_several_forms_share_study_ids(tmp_path):
    a = write_form(tmp_path / "a.xlsx", [good_study()], [good_outcome()], [])
    b = write_form(tmp_path / "b.xlsx", [good_study()], [good_outcome()], [])
    r = validate([a, b])
    dups = [f for f in r.finding_list if f.rule == "duplicate-key" and f.sheet == "studies"]
    assert [f.file for f in dups] == [str(b)] and "studies!2:2 of a.xlsx" in dups[0].message
    s = r.summary
    # b's study row repeats a's key; b's outcome row then repeats a's outcome key too
    assert s.forms == 2 and s.rows_read == 4 and s.rows_excluded == 2


def test_folder_of_forms_in_parallel_equals_serial(tmp_path):
    forms = []
    for k in range(4):
        forms.append(write_form(tmp_path / f"f{k}.xlsx", [good_study(study_id=f"S{k}")],
                                [good_outcome(study_id=f"S{k}", pr=17 + k)], []))
    serial = validate(forms, jobs=1)
    parallel = validate(tmp_path, jobs=2)
    assert serial.to_dict() == parallel.to_dict()
    # three outcome rows with errors in counts: kept out of the response analyses, still in PFS and OS
    assert serial.summary.rows_excluded == 0 and serial.summary.rows_restricted == 3 and serial.summary.errors == 9


def test_schema_default_loads_once():
    assert load_schema() is load_schema("prrt_177lu")


def test_missing_markers_in_free_text(tmp_path):
    """n/a, -, —, NA in a free-text field are no value; a surname such as Na stays."""
    s = good_study(doi="NA", country="—")
    s2 = good_study(study_id="S02", first_author="Na", doi="n/a", country="not reported", pmid=None,
                    enrolment_start=2000, enrolment_end=2005)
    p = write_form(tmp_path / "f.xlsx", [s, s2], [good_outcome()], [])
    r = validate(p)
    assert [f.rule for f in r.finding_list] == []
    d = r.tables["studies"].data
    assert list(d["doi"]) == [None, None] and list(d["country"]) == [None, None]
    assert list(d["first_author"]) == ["Strosberg", "Na"]


def test_two_sheets_for_one_contract_sheet_are_refused(tmp_path):
    """`Studies` and `studies` both match: no row may be dropped silently, so the form is refused."""
    p = write_form(tmp_path / "f.xlsx", [good_study()], [good_outcome()], [])
    wb = openpyxl.load_workbook(p)
    ws = wb.create_sheet("Studies ")
    ws.append(["study_id", "first_author", "year", "n_enrolled"])
    ws.append(["S09", "Other", 2019, 10])
    wb.save(p)
    with pytest.raises(UnusableInputError, match="2 sheets match 'studies'"):
        validate(p)


def test_control_characters_never_reach_the_data(tmp_path):
    # openpyxl refuses control characters, but a form can hold them as _xHHHH_ escapes, which readers decode
    p = write_form(tmp_path / "f.xlsx", [good_study(first_author="Bra_x001B_bander\u202e", country="N_x0007_L")],
                   [good_outcome()], [])
    r = validate(p)
    row = r.clean.iloc[0]
    assert (row["first_author"], row["country"]) == ("Brabander", "NL")

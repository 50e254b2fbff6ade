"""One failing and one passing case per rule, run through the whole engine on a real workbook.

The baseline form is correct and yields no finding at all; each case changes it the way a
reviewer's slip would and asserts that the rule reports it at the right sheet, row and field.
A test at the bottom fails when a registered rule has no case here.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from builders import good_ae, good_outcome, good_study, write_form
from involves import assert_involves
from curation.rules import REGISTRY
from curation.validation import validate


def baseline() -> dict[str, list[dict[str, Any]]]:
    s1 = good_study()
    s2 = good_study(study_id="S02", first_author="Brabander", year=2017, doi="10.1158/1078-0432.CCR-16-2743",
                    pmid=28428192, country="Netherlands", design="retrospective", n_enrolled=610,
                    enrolment_start=2000, enrolment_end=2015, cycles_median=4, activity_per_cycle_gbq=7.4,
                    cumulative_activity_gbq=29.6)
    o1 = good_outcome()
    # S02: 443 evaluable; CR 10, PR 163, SD 200, PD 70 -> ORR 39.1%, DCR 84.2%
    o2 = good_outcome(study_id="S02", grade="mixed", primary_site="mixed", ki67_max=None, n_evaluable=443, cr=10,
                      pr=163, sd=200, pd=70, orr_pct=39.1, dcr_pct=84.2, pfs_median=29, pfs_ci_low=26,
                      pfs_ci_high=33, os_median=63, os_ci_low=55, os_ci_high=72, followup_median_months=80)
    # subgroups of S02 by grade: 300 + 143 = 443
    o3 = good_outcome(study_id="S02", cohort="G1-2", grade="G1-2", primary_site="mixed", ki67_max=20,
                      n_evaluable=300, cr=8, pr=120, sd=130, pd=42, orr_pct=42.7, dcr_pct=86.0, pfs_median=32,
                      pfs_ci_low=28, pfs_ci_high=36, os_median=66, os_ci_low=58, os_ci_high=75,
                      followup_median_months=80)
    o4 = good_outcome(study_id="S02", cohort="G3", grade="G3", primary_site="mixed", ki67_max=35,
                      n_evaluable=143, cr=2, pr=43, sd=70, pd=28, orr_pct=31.5, dcr_pct=80.4, pfs_median=20,
                      pfs_ci_low=15, pfs_ci_high=25, os_median=40, os_ci_low=31, os_ci_high=49,
                      followup_median_months=80)
    a1 = good_ae()
    a2 = good_ae(study_id="S02", ae_term="MDS", grade3plus_n=4, any_grade_n=4, n_safety=610)
    return {"studies": [s1, s2], "outcomes": [o1, o2, o3, o4], "adverse_events": [a1, a2]}


def run(tmp_path, form, name="form.xlsx"):
    path = write_form(tmp_path / name, form["studies"], form["outcomes"], form["adverse_events"])
    return validate(path)


def test_baseline_has_no_finding(tmp_path):
    result = run(tmp_path, baseline())
    assert [f"{f.cell} {f.rule}: {f.message}" for f in result.finding_list] == []
    assert result.summary.rows_read == 8 == result.summary.rows_passed
    assert len(result.clean) == 4


def setv(sheet: str, i: int, **values) -> Callable[[dict], None]:
    def change(form):
        form[sheet][i].update(values)

    return change


def add_row(sheet: str, row: dict) -> Callable[[dict], None]:
    def change(form):
        form[sheet].append(row)

    return change


# code -> (change, sheet, Excel row, field, severity). Excel row = list index + 2.
CASES: dict[str, list[tuple[Callable[[dict], None], str, int | None, str | None]]] = {
    "missing-required": [(setv("studies", 0, first_author=None), "studies", 2, "first_author")],
    "out-of-range": [(setv("studies", 0, year=1985), "studies", 2, "year"),
                     (setv("outcomes", 0, ki67_max=140), "outcomes", 2, "ki67_max"),
                     (setv("outcomes", 0, n_evaluable=0), "outcomes", 2, "n_evaluable"),
                     (setv("outcomes", 0, pfs_median=-3), "outcomes", 2, "pfs_median")],
    "implausible-value": [(setv("studies", 0, activity_per_cycle_gbq=12.0, cumulative_activity_gbq=48),
                           "studies", 2, "activity_per_cycle_gbq"),
                          (setv("outcomes", 0, os_median=250, os_ci_low=200, os_ci_high=300, pfs_median=28.4),
                           "outcomes", 2, "os_median")],
    "invalid-format": [(setv("studies", 0, study_id="S 01"), "studies", 2, "study_id"),
                       (setv("studies", 0, doi="doi.org/10.1056"), "studies", 2, "doi")],
    "invalid-number": [(setv("outcomes", 0, pfs_median="about a year"), "outcomes", 2, "pfs_median"),
                       (setv("outcomes", 0, sd="70 or 71"), "outcomes", 2, "sd"),  # "70 pts" is read (layouts.md v2)
                       # a lower CI bound is always reached: NR there is a slip, not a missing value
                       (setv("outcomes", 0, pfs_ci_low="NR"), "outcomes", 2, "pfs_ci_low")],
    "not-an-integer": [(setv("outcomes", 0, pr=17.5), "outcomes", 2, "pr")],
    "invalid-year": [(setv("studies", 0, enrolment_start="spring"), "studies", 2, "enrolment_start")],
    "unknown-term": [(setv("outcomes", 0, primary_site="liver"), "outcomes", 2, "primary_site"),
                     (setv("adverse_events", 0, ae_term="headache"), "adverse_events", 2, "ae_term"),
                     (setv("outcomes", 0, pfs_unit="fortnights"), "outcomes", 2, "pfs_unit")],
    "rejected-term": [(setv("outcomes", 0, grade="G4"), "outcomes", 2, "grade"),
                      (setv("outcomes", 0, grade="high grade"), "outcomes", 2, "grade")],
    "ineligible-term": [(setv("studies", 0, radiopharmaceutical="90Y-DOTATOC"), "studies", 2, "radiopharmaceutical"),
                        (setv("studies", 0, response_criteria="modified SWOG"), "studies", 2, "response_criteria")],
    "unspecific-term": [(setv("studies", 0, response_criteria="RECIST"), "studies", 2, "response_criteria")],
    "duplicate-key": [(add_row("outcomes", good_outcome()), "outcomes", 6, "cohort"),
                      (add_row("studies", good_study(year=2018)), "studies", 4, "study_id")],
    "unknown-study": [(add_row("outcomes", good_outcome(study_id="S09")), "outcomes", 6, "study_id")],
    # a study row's error reaches its rows on the other sheets when an analysis uses the field (here:
    # response criteria not eligible, which takes the study out of everything); a wrong year does not
    "study-excluded": [(setv("studies", 0, response_criteria="PERCIST"), "outcomes", 2, None)],
    "evaluable-exceeds-enrolled": [(setv("outcomes", 0, n_evaluable=130, pd=42), "outcomes", 2, "n_evaluable")],
    "response-sum-mismatch": [(setv("outcomes", 0, ne=3), "outcomes", 2, "n_evaluable"),
                              # a transposed digit in PR: the percentages say PR is the wrong cell
                              (setv("outcomes", 0, pr=71), "outcomes", 2, "pr")],
    # ORR and DCR both agree with the counts: PD is the count that is short
    "response-sum-short": [(setv("outcomes", 0, pd=10), "outcomes", 2, "pd"),
                           (setv("outcomes", 0, pd=10, orr_pct=None, dcr_pct=None), "outcomes", 2, "n_evaluable")],
    "percentage-mismatch": [(setv("outcomes", 0, orr_pct=18.8), "outcomes", 2, "orr_pct"),
                            (setv("outcomes", 0, dcr_pct="78.1%"), "outcomes", 2, "dcr_pct")],
    # 18/116 = 15.5%: the n_enrolled denominator
    "percentage-itt-denominator": [(setv("outcomes", 0, orr_pct=15.5), "outcomes", 2, "orr_pct")],
    # no whole number of 101 patients gives 33.3% (33/101 = 32.7%, 34/101 = 33.7%), nor of the 116 enrolled
    "percentage-impossible": [(setv("outcomes", 0, cr=None, pr=None, orr_pct=33.3), "outcomes", 2, "orr_pct")],
    "dcr-below-orr": [(setv("outcomes", 0, dcr_pct=15.0), "outcomes", 2, "dcr_pct")],
    # a swap of the median with its lower bound: both cells are wrong; reported on the median
    "median-outside-ci": [(setv("outcomes", 0, pfs_median=19.4, pfs_ci_low=28.4), "outcomes", 2, "pfs_median"),
                          (setv("outcomes", 0, os_median=60), "outcomes", 2, "os_median")],
    "ci-bound-equals-median": [(setv("outcomes", 0, pfs_ci_low=28.4), "outcomes", 2, "pfs_ci_low")],
    "median-without-ci": [(setv("outcomes", 0, pfs_ci_low=None, pfs_ci_high=None), "outcomes", 2, "pfs_median"),
                          (setv("outcomes", 0, os_ci_high=None), "outcomes", 2, "os_median")],
    "asymmetric-ci": [(setv("outcomes", 0, pfs_ci_low=27.4, pfs_ci_high=40), "outcomes", 2, "pfs_median")],
    "pfs-exceeds-os": [(setv("outcomes", 0, pfs_median=50, pfs_ci_low=40, pfs_ci_high=60), "outcomes", 2,
                        "pfs_median")],
    "pfs-beyond-followup": [(setv("outcomes", 0, followup_median_months=12), "outcomes", 2, "pfs_median")],
    "ki67-contradicts-grade": [(setv("outcomes", 0, ki67_max=45), "outcomes", 2, "ki67_max"),
                               # WHO 2019 bands are strict at their open ends: G3 means Ki-67 > 20%
                               (setv("outcomes", 3, ki67_max=20), "outcomes", 5, "ki67_max"),
                               (setv("outcomes", 0, grade="G1", ki67_max=3), "outcomes", 2, "ki67_max")],
    "subgroups-exceed-overall": [(setv("outcomes", 3, n_evaluable=243, pd=128, orr_pct=18.5, dcr_pct=47.3),
                                  "outcomes", 5, "n_evaluable"),
                                 # the overall cohort's grade equals one subgroup's: the labels still say
                                 # both subgroups split the study by grade
                                 (lambda form: (form["outcomes"][1].update(grade="G1-2", ki67_max=20),
                                                form["outcomes"][3].update(n_evaluable=243, pd=128, orr_pct=18.5,
                                                                           dcr_pct=47.3)),
                                  "outcomes", 5, "n_evaluable")],
    "cumulative-activity-mismatch": [(setv("studies", 0, cumulative_activity_gbq=14.8), "studies", 2,
                                      "cumulative_activity_gbq")],
    "enrolment-period-reversed": [(setv("studies", 0, enrolment_start=2016, enrolment_end=2012), "studies", 2,
                                   "enrolment_start")],
    "enrolment-after-publication": [(setv("studies", 0, enrolment_end=2018), "studies", 2, "enrolment_end")],
    "possible-duplicate-population": [(setv("studies", 1, first_author="Strosberg", enrolment_start=2010),
                                       "studies", 3, "first_author")],
    "adverse-event-counts-inconsistent": [(setv("adverse_events", 0, grade3plus_n=30), "adverse_events", 2,
                                           "grade3plus_n"),
                                          (setv("adverse_events", 0, n_safety=120), "adverse_events", 2,
                                           "n_safety")],
    "combined-median-ci": [(setv("outcomes", 0, pfs_median="28.4 (19.4–35.8)", pfs_ci_low=None, pfs_ci_high=None),
                            "outcomes", 2, "pfs_median")],
    # the n of 'ORR, n (%)' typed 20 where CR+PR = 1+17
    "reported-count-mismatch": [(setv("outcomes", 0, orr_n=20), "outcomes", 2, "orr_n"),
                                (setv("outcomes", 0, dcr_n=87), "outcomes", 2, "dcr_n")],
    # a unit no time vocabulary knows in a median cell (GBq is an activity unit)
    "unknown-unit": [(setv("outcomes", 0, pfs_median="28.4 GBq"), "outcomes", 2, "pfs_median")],
    "unit-conflict": [(setv("outcomes", 0, pfs_median="122 wk", pfs_unit="months"), "outcomes", 2, "pfs_median")],
}


def _flat():
    for code, cases in CASES.items():
        for n, case in enumerate(cases):
            yield pytest.param(code, *case, id=f"{code}-{n}")


@pytest.mark.parametrize("code,change,sheet,row,field", list(_flat()))
def test_rule_reports_at_cell(tmp_path, code, change, sheet, row, field):
    form = copy.deepcopy(baseline())
    change(form)
    result = run(tmp_path, form)
    hits = [f for f in result.finding_list if f.rule == code]
    assert hits, f"{code} not reported; got {[(f.cell, f.rule) for f in result.finding_list]}"
    assert any(f.sheet == sheet and f.row == row and f.field == field for f in hits), \
        [(f.sheet, f.row, f.field, f.message) for f in hits]
    for f in hits:
        assert f.severity == REGISTRY[code].severity
        assert f.message and f.file.endswith("form.xlsx")
        if f.field and f.row:
            assert f.column and f.column.isalpha()
            assert f"{f.sheet}!" in f.message or f.rule in ("study-excluded",), f.message
    if code == "duplicate-key":  # the first row of the key is kept; only the repeat is an error
        assert not any(f.severity == "error" and f.row == 2 and f.sheet == sheet for f in result.finding_list)
    # conservation in every case
    for f in result.finding_list:  # every finding names the fields it involves
        assert_involves(result, f)
    s = result.summary
    assert s.rows_read == s.rows_passed + s.rows_excluded
    # an error keeps its row out of the analyses that use a field it involves (docs/exclusions.md);
    # a row without an error loses no analysis
    bad_rows = {(f.contract_sheet, f.row) for f in result.finding_list if f.severity == "error" and f.row}
    for name, t in result.tables.items():
        for i, r in enumerate(t.rows):
            if (name, r) not in bad_rows:
                assert result.selection.passed[name][i] and result.selection.eligible[name][i].all(), (name, r)
    assert s.rows_excluded + s.rows_restricted <= len(bad_rows)


STRUCTURE_CASES = {"missing-sheet", "empty-sheet", "missing-column", "duplicate-column", "unknown-column",
                   "merged-cell", "formula-without-value",
                   # reading a team's own workbook: tests/test_layout.py has a case for each
                   "inferred-layout", "unmatched-sheet", "non-data-row", "hidden-row", "hidden-column",
                   "helper-column", "unplaced-column", "study-field-conflict", "unread-data", "group-heading",
                   "label-conflict",  # tests/test_layout_long.py
                   "block-conflict",  # tests/test_layout_blocks.py
                   # file formats and study identity: tests/test_reading_formats.py, tests/test_study_identity.py
                   "format-note", "format-unread", "study-id-clash", "combined-ci-mismatch"}


def test_every_rule_has_a_case():
    from test_rules_comparative import COMPARATIVE_CODES  # the comparative checks' cases (their own schema)
    from test_handoff_schemas import HANDOFF_CODES  # the run's and the schema fit's (tests/test_handoff_schemas.py)
    from test_rules_coverage import COVERAGE_CODES  # what the check stage says of a check that could not run
    from test_rules_equivalences import EQUIVALENCE_CODES  # one quantity stated twice
    from test_sources_verify import SOURCE_CODES  # the source check's cases (articles the tests write)

    tested = (set(CASES) | STRUCTURE_CASES | COMPARATIVE_CODES | COVERAGE_CODES | EQUIVALENCE_CODES | HANDOFF_CODES
              | SOURCE_CODES)
    assert set(REGISTRY) - tested == set(), "rules without a test case"
    assert tested - set(REGISTRY) == set(), "test cases for unregistered rules"


def test_severity_override_from_schema(tmp_path):
    """A schema may change a check's severity; the finding then carries it."""
    import yaml

    from curation.schema import load_schema, resolve_schema_path

    data = yaml.safe_load(resolve_schema_path(None).read_text())
    for entry in data["checks"]["outcomes"]:
        if entry["rule"] == "response-sum-short":
            entry["severity"] = "error"
    p = tmp_path / "strict.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    form = copy.deepcopy(baseline())
    setv("outcomes", 0, pd=10)(form)
    path = write_form(tmp_path / "f.xlsx", form["studies"], form["outcomes"], form["adverse_events"])
    result = validate(path, load_schema(p))
    (hit,) = [f for f in result.finding_list if f.rule == "response-sum-short"]
    assert hit.severity == "error"
    # the row is kept out of the analyses of responses when the finding involves the counts they use;
    # PFS and OS still take it
    uses_counts = any(f in ("cr", "pr", "sd", "n_evaluable") for f in hit.fields)
    assert result.summary.rows_excluded == 0 and result.summary.rows_restricted == int(uses_counts)


def test_one_finding_per_unreadable_cell(tmp_path):
    """An unreadable required cell is reported once (invalid-number), a rejected term once (rejected-term)."""
    form = copy.deepcopy(baseline())
    setv("studies", 0, n_enrolled="twelve")(form)
    setv("outcomes", 0, grade="G4")(form)
    result = run(tmp_path, form)
    at = {}
    for f in result.finding_list:
        at.setdefault(f.cell, []).append(f.rule)
    assert at["studies!J2"] == ["invalid-number"]
    assert at["outcomes!C2"] == ["rejected-term"]


def test_letters_of_any_alphabet_in_study_ids(tmp_path):
    form = copy.deepcopy(baseline())
    for sheet in ("studies", "outcomes", "adverse_events"):
        for row in form[sheet]:
            if row["study_id"] == "S02":
                row["study_id"] = "Sundlöv-2022"
    assert [f for f in run(tmp_path, form).finding_list if f.severity == "error"] == []


def test_extractor_of_the_study_fills_the_clean_rows(tmp_path):
    form = copy.deepcopy(baseline())
    for row in form["outcomes"]:
        row["extractor"] = None
    form["outcomes"][0]["extractor"] = "CD"
    clean = run(tmp_path, form).clean
    assert list(clean["extractor"]) == ["CD", "AB", "AB", "AB"]


def test_identity_and_eligibility_errors_exclude_the_whole_record(tmp_path):
    """Rules about identity or eligibility (and any error on a key field) exclude the record from
    every analysis; any other error only from the analyses that use the fields it involves."""
    from curation.rules import excludes_record

    form = copy.deepcopy(baseline())
    setv("studies", 0, radiopharmaceutical="90Y-DOTATOC")(form)  # ineligible-term on a study
    setv("outcomes", 1, pfs_median=-3)(form)  # out-of-range on one field
    setv("outcomes", 2, cohort=None)(form)  # missing-required on a key field
    setv("outcomes", 3, grade="G4")(form)  # rejected-term
    add_row("outcomes", good_outcome())(form)  # duplicate-key
    result = run(tmp_path, form)
    by = {(f.rule, f.row): f for f in result.finding_list if f.severity == "error"}
    schema = result.schema
    assert excludes_record(by[("ineligible-term", 2)], schema)
    assert excludes_record(by[("duplicate-key", 6)], schema)
    assert excludes_record(by[("missing-required", 4)], schema)
    assert excludes_record(by[("rejected-term", 5)], schema)
    assert not excludes_record(by[("out-of-range", 3)], schema)
    assert by[("out-of-range", 3)].fields == ("pfs_median",)
    assert {c for c, r in REGISTRY.items() if r.excludes == "record"} == {
        "duplicate-key", "unknown-study", "ineligible-term", "rejected-term", "study-excluded"}


def test_schema_sets_the_severity_of_any_rule(tmp_path):
    """Top-level ``severities:`` reaches field rules and the normaliser's cell rules alike."""
    import yaml

    from curation.schema import load_schema, resolve_schema_path

    data = yaml.safe_load(resolve_schema_path(None).read_text())
    data["severities"] = {"unspecific-term": "error", "invalid-number": "warning"}
    p = tmp_path / "sev.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    form = copy.deepcopy(baseline())
    setv("studies", 0, response_criteria="RECIST")(form)
    setv("outcomes", 1, pfs_median="about a year")(form)
    path = write_form(tmp_path / "f.xlsx", form["studies"], form["outcomes"], form["adverse_events"])
    result = validate(path, load_schema(p))
    got = {f.rule: f.severity for f in result.finding_list}
    assert got["unspecific-term"] == "error" and got["invalid-number"] == "warning"


def test_messages_quote_what_the_reviewer_typed(tmp_path):
    """An ineligible alias is quoted as typed, with the term it reads as."""
    form = copy.deepcopy(baseline())
    setv("studies", 0, response_criteria="modified SWOG")(form)
    result = run(tmp_path, form)
    (f,) = [f for f in result.finding_list if f.rule == "ineligible-term"]
    assert "response_criteria 'modified SWOG' (read as 'mSWOG') (studies!" in f.message, f.message
    assert f.value == "modified SWOG"


def test_an_alias_split_at_its_comma_is_a_schema_problem(tmp_path):
    """``[Median PFS (95% CI, months)]`` is two labels to YAML: never silently."""
    from curation.errors import SchemaError
    from curation.schema import load_schema

    p = tmp_path / "s.yaml"
    p.write_text("name: t\nsheets:\n  studies:\n    key: [study_id]\n    fields:\n"
                 "      study_id: {type: text, required: true, aliases: [Study ID, \"Trial, id\"]}\n"
                 "      pfs: {type: number, aliases: [Median PFS (95% CI, months), mPFS]}\n")
    with pytest.raises(SchemaError) as exc:
        load_schema(p)
    assert "line 7" in str(exc.value) and "'Median PFS (95% CI' and 'months)'" in str(exc.value)
    assert "Trial" not in str(exc.value)  # a quoted label with a comma is one label

"""Which rows an analysis takes (no patient counted twice) and the plan's entries."""

from __future__ import annotations

import pandas as pd
import pytest

from builders import good_ae, good_outcome, good_study, write_form
from curation.analyses import Z975, run_analysis, run_plan, select
from curation.pool import pool_generic, pool_proportions
from curation.schema import load_schema
from curation.validation import validate

SCHEMA = load_schema()


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    d = tmp_path_factory.mktemp("an")
    studies = [good_study(), good_study(study_id="S02", first_author="Unal", year=2023, n_enrolled=73,
                                        doi="10.14744/ejmo.2023.48337", pmid=None, enrolment_start=2015,
                                        enrolment_end=2021),
               good_study(study_id="S03", first_author="Thang", year=2018, n_enrolled=28, doi=None, pmid=None,
                          enrolment_start=2010, enrolment_end=2016)]
    outcomes = [
        good_outcome(),  # S01 overall, G1-2, midgut: 18/101 ORR, 88/101 DCR
        # S02 overall is mixed; its G1-2 and G3 subgroups go to the grade analysis
        good_outcome(study_id="S02", grade="mixed", primary_site="mixed", ki67_max=None, n_evaluable=71, cr=1,
                     pr=20, sd=26, pd=24, orr_pct=29.6, dcr_pct=66.2, pfs_median=13.7, pfs_ci_low=10.1,
                     pfs_ci_high="NR", os_median=51.2, os_ci_low=40, os_ci_high=62),
        good_outcome(study_id="S02", cohort="G1-2", grade="G1-2", primary_site="mixed", ki67_max=20,
                     n_evaluable=50, cr=1, pr=16, sd=20, pd=13, orr_pct=34.0, dcr_pct=74.0, pfs_median=16.9,
                     pfs_ci_low=12, pfs_ci_high=22, os_median=55.5, os_ci_low=45, os_ci_high=66),
        good_outcome(study_id="S02", cohort="G3", grade="G3", primary_site="mixed", ki67_max=40, n_evaluable=21,
                     cr=0, pr=4, sd=6, pd=11, orr_pct=19.0, dcr_pct=47.6, pfs_median=8.5, pfs_ci_low=5,
                     pfs_ci_high=12, os_median=29.5, os_ci_low=20, os_ci_high=39),
        # S03: a G3 overall cohort and a G3 subgroup of it: the grade analysis takes the overall one
        good_outcome(study_id="S03", grade="G3", primary_site="pancreas", ki67_max=60, n_evaluable=28, cr=0,
                     pr=8, sd=12, pd=8, orr_pct=28.6, dcr_pct=71.4, pfs_median=9, pfs_ci_low=6, pfs_ci_high="NR", os_median="NR", os_ci_low=None,
                     os_ci_high=None),
        good_outcome(study_id="S03", cohort="Ki-67 <=55%", grade="G3", primary_site="pancreas", ki67_max=55,
                     n_evaluable=22, cr=0, pr=7, sd=10, pd=5, orr_pct=31.8, dcr_pct=77.3, pfs_median=12,
                     pfs_ci_low=8, pfs_ci_high=16, os_median=46, os_ci_low=30, os_ci_high=None),
    ]
    aes = [good_ae(), good_ae(study_id="S02", ae_term="anaemia", grade3plus_n=3, any_grade_n=20, n_safety=73),
           good_ae(study_id="S03", grade3plus_n=1, any_grade_n=5, n_safety=28)]
    r = validate(write_form(d / "f.xlsx", studies, outcomes, aes))
    assert r.summary.errors == 0, [f.message for f in r.finding_list if f.severity == "error"]
    return r.clean_tables


def test_overall_takes_each_studys_overall_cohort(clean):
    (primary, *sens) = run_analysis(SCHEMA, clean, "dcr")
    assert [(r.study_id, r.cohort) for r in primary.taken] == [("S01", "overall"), ("S02", "overall"),
                                                               ("S03", "overall")]
    assert {(r.study_id, r.cohort) for r in primary.left_out} == {("S02", "G1-2"), ("S02", "G3"),
                                                                  ("S03", "Ki-67 <=55%")}
    assert all("overall" in r.reason for r in primary.left_out)
    ref = pool_proportions([88, 47, 20], [101, 71, 28], measure="PLO", method="REML")
    assert primary.result.estimate == pytest.approx(ref.estimate, rel=1e-12)
    assert [a.id for a in sens] == ["dcr@GLMM", "dcr@PFT-REML", "dcr@PAS-REML", "dcr@PLO-DL", "dcr@PLO-REML-HK"]
    assert all(a.parent == "dcr" and a.taken == primary.taken for a in sens)


def test_by_grade_one_row_per_study_and_group(clean):
    test, *subs = run_analysis(SCHEMA, clean, "orr", subgroup="grade")
    assert test.role == "subgroup_test" and test.result.df_between == 1
    taken = {(r.study_id, r.cohort, r.group) for r in test.taken}
    assert taken == {("S01", "overall", "G1-2"), ("S02", "G1-2", "G1-2"), ("S02", "G3", "G3"),
                     ("S03", "overall", "G3")}
    reasons = {(r.study_id, r.cohort): r.reason for r in test.left_out}
    assert "not a single category" in reasons[("S02", "overall")]
    assert "already contributes its overall cohort" in reasons[("S03", "Ki-67 <=55%")]
    g3 = next(a for a in subs if a.group == "G3")
    ref = pool_proportions([4, 8], [21, 28])
    assert (g3.id, g3.k) == ("orr_by_grade:G3", 2) and g3.result.estimate == pytest.approx(ref.estimate, rel=1e-12)


def test_by_site_groups_sites(clean):
    test, *subs = run_analysis(SCHEMA, clean, "orr", subgroup="primary_site")
    assert {(r.study_id, r.group) for r in test.taken} == {("S01", "gastrointestinal"), ("S03", "pancreas")}
    assert [a.group for a in subs] == ["gastrointestinal", "pancreas"]


def test_medians_take_the_se_from_the_ci(clean):
    (pfs, *_) = run_analysis(SCHEMA, clean, "pfs")
    rows = {r.study_id: r for r in pfs.taken}
    assert rows["S01"].se == pytest.approx((35.8 - 19.4) / (2 * Z975))
    assert rows["S02"].se == pytest.approx((13.7 - 10.1) / Z975)  # upper bound not reached
    assert rows["S02"].note and "not reached" in rows["S02"].note
    assert rows["S03"].se == pytest.approx((9 - 6) / Z975)
    ref = pool_generic([28.4, 13.7, 9], [rows[s].se for s in ("S01", "S02", "S03")], method="REML")
    assert pfs.result.estimate == pytest.approx(ref.estimate, rel=1e-12)
    (os_, *_) = run_analysis(SCHEMA, clean, "os")
    why = {(r.study_id, r.cohort): r.reason for r in os_.left_out}
    assert why[("S03", "overall")] == "median not reached"


def test_adverse_events_per_term(clean):
    (a,) = run_analysis(SCHEMA, clean, "ae:Thrombocytopenia", sensitivity=False)
    assert a.id == "ae_thrombocytopenia" and a.k == 2
    assert a.result.estimate == pytest.approx(pool_proportions([2, 1], [111, 28]).estimate, rel=1e-12)


def test_plan_ids_unique_and_empty_data_not_pooled(clean):
    plan = run_plan(SCHEMA, clean)
    ids = [a.id for a in plan]
    assert len(ids) == len(set(ids))
    assert {"orr", "dcr", "orr_by_grade", "dcr_by_site", "pfs", "os", "ae_thrombocytopenia", "ae_anaemia"} <= set(ids)
    empty = {k: v.iloc[0:0] for k, v in clean.items()}
    for a in run_plan(SCHEMA, empty):
        assert a.result is None and a.notes


def test_to_dict_has_settings_rows_and_results_at_top_level(clean):
    d = run_analysis(SCHEMA, clean, "orr")[0].to_dict()
    for key in ("id", "outcome", "measure", "method", "hk", "subgroup", "studies_taken", "studies_left_out",
                "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2", "q"):
        assert key in d
    assert d["measure"] == "PLO" and d["method"] == "REML" and d["k"] == 3

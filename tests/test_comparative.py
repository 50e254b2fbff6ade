"""Two-arm reviews: comparison rows and arm rows selected and pooled as metafor does, labelled in the
outcome's own terms; a second comparative review built in the test runs end to end without Python."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
import yaml
from click.testing import CliRunner

import curation.pool as pool_module
from curation.analyses import estimate_text, run_plan, value_text
from curation.cli import main
from curation.schema import load_schema
from curation.validation import validate

needs_pool2 = pytest.mark.skipif(not hasattr(pool_module, "pool_binary"), reason="pool_binary not in curation.pool yet")

# metafor's dat.bcg (trial, author, year, tpos, tneg, cpos, cneg, ablat, alloc)
DAT_BCG = [
    (1, "Aronson", 1948, 4, 119, 11, 128, 44, "random"),
    (2, "Ferguson & Simes", 1949, 6, 300, 29, 274, 55, "random"),
    (3, "Rosenthal et al", 1960, 3, 228, 11, 209, 42, "random"),
    (4, "Hart & Sutherland", 1977, 62, 13536, 248, 12619, 52, "random"),
    (5, "Frimodt-Moller et al", 1973, 33, 5036, 47, 5761, 13, "alternate"),
    (6, "Stein & Aronson", 1953, 180, 1361, 372, 1079, 44, "alternate"),
    (7, "Vandiviere et al", 1973, 8, 2537, 10, 619, 19, "random"),
    (8, "TPT Madras", 1980, 505, 87886, 499, 87892, 13, "random"),
    (9, "Coetzee & Berjak", 1968, 29, 7470, 45, 7232, 27, "random"),
    (10, "Rosenthal et al", 1961, 17, 1699, 65, 1600, 42, "systematic"),
    (11, "Comstock et al", 1974, 186, 50448, 141, 27197, 18, "systematic"),
    (12, "Comstock & Webster", 1969, 5, 2493, 3, 2338, 33, "systematic"),
    (13, "Comstock et al", 1976, 27, 16886, 29, 17825, 33, "systematic"),
]

TWO_ARM = """
name: two_arm_test
vocabularies:
  allocation:
    terms: [{value: random}, {value: alternate}, {value: systematic}]
  arm_role:
    terms:
      - {value: intervention, aliases: [vaccine, BCG, experimental]}
      - {value: control, aliases: [placebo, no vaccine]}
      - {value: other}
sheets:
  studies:
    key: [study_id]
    fields:
      study_id: {type: text, required: true}
      first_author: {type: text}
      year: {type: integer}
      allocation: {type: vocabulary, vocabulary: allocation}
  comparisons:
    key: [study_id, comparison]
    parent: {sheet: studies, key: study_id}
    fields:
      study_id: {type: text, required: true}
      comparison: {type: text, required: true}
      tpos: {type: integer, min: 0}
      n_t: {type: integer, min: 1}
      cpos: {type: integer, min: 0}
      n_c: {type: integer, min: 1}
  arms:
    key: [study_id, comparison, arm]
    parent: {sheet: studies, key: study_id}
    fields:
      study_id: {type: text, required: true}
      comparison: {type: text, required: true}
      arm: {type: text, required: true}
      role: {type: vocabulary, vocabulary: arm_role, required: true}
      events: {type: integer, min: 0}
      n: {type: integer, min: 1}
analysis:
  sheet: comparisons
  cohort_field: comparison
  defaults: {measure: RR, method: REML}
  outcomes:
    tb:
      label: Tuberculosis
      kind: binary
      events: [tpos, cpos]
      totals: [n_t, n_c]
      favours: {left: favours BCG, right: favours control}
    tb_arms:
      label: Tuberculosis (arm rows)
      kind: binary
      arms: {sheet: arms, role_field: role, pair_by: [study_id, comparison], events: events, total: n}
  subgroups:
    allocation: {label: Allocation, field: allocation}
  plan:
    - {outcome: tb}
    - {outcome: tb, subgroup: allocation}
    - {outcome: tb, measure: OR}
    - {outcome: tb_arms}
  sensitivity:
    - {method: DL}
    - {method: MH}
    - {method: REML, hk: true}
    - {measure: OR, method: PETO}
"""


def _book(path, sheets):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(list(r))
    wb.save(path)
    return path


def _bcg_form(path, arm_rows=None):
    studies = [("study_id", "first_author", "year", "allocation")] + [
        (f"T{t:02d}", a, y, al) for t, a, y, *_, al in DAT_BCG]
    comps = [("study_id", "comparison", "tpos", "n_t", "cpos", "n_c")] + [
        (f"T{t:02d}", "BCG vs none", tp, tp + tn, cp, cp + cn) for t, _, _, tp, tn, cp, cn, _, _ in DAT_BCG]
    arms = [("study_id", "comparison", "arm", "role", "events", "n")] + (arm_rows or [])
    return _book(path, {"studies": studies, "comparisons": comps, "arms": arms})


@pytest.fixture(scope="module")
def two_arm(tmp_path_factory):
    d = tmp_path_factory.mktemp("two_arm")
    p = d / "s.yaml"
    p.write_text(TWO_ARM)
    return load_schema(p), d


@needs_pool2
def test_bcg_counts_pool_as_metafor(two_arm):
    schema, d = two_arm
    arm_rows = []
    for t, _, _, tp, tn, cp, cn, _, _ in DAT_BCG:
        if t == 3:      # no control arm: left out
            arm_rows.append((f"T{t:02d}", "BCG vs none", "BCG", "BCG", tp, tp + tn))
            continue
        arm_rows.append((f"T{t:02d}", "BCG vs none", "BCG", "vaccine", tp, tp + tn))
        arm_rows.append((f"T{t:02d}", "BCG vs none", "none", "placebo", cp, cp + cn))
        if t == 5:      # two intervention arms in one comparison: left out
            arm_rows.append((f"T{t:02d}", "BCG vs none", "BCG 2", "experimental", tp, tp + tn))
    res = validate(_bcg_form(d / "f.xlsx", arm_rows), schema)
    assert res.exit_code() == 0, [f.message for f in res.finding_list]
    analyses = {a.id: a for a in run_plan(schema, res.clean_tables)}
    tb = analyses["tb"]
    r = tb.result
    # pooling.md: metafor 3.8-1 on dat.bcg, RR REML 0.4894 (0.3441-0.6962), tau2 0.3132, I2 92.22%
    assert tb.k == 13 and round(r.estimate, 4) == 0.4894 and round(r.ci_low, 4) == 0.3441
    assert round(r.ci_high, 4) == 0.6962 and round(r.tau2, 4) == 0.3132 and round(r.i2, 2) == 92.22
    assert estimate_text(tb, r.estimate, r.ci_low, r.ci_high) == "RR 0.49 (0.34-0.70)"
    assert tb.ratio and tb.null_value == 1.0 and tb.favours == ("favours BCG", "favours control")
    d_ = tb.to_dict()
    assert d_["measure"] == "RR" and d_["method"] == "REML" and d_["scale"] == "log"
    assert d_["studies_taken"][0]["events_control"] == 11 and d_["studies_taken"][0]["total_control"] == 139
    mh = analyses["tb@RR-MH"].result
    assert round(mh.estimate, 4) == 0.6353 and round(mh.ci_low, 4) == 0.5881 and round(mh.ci_high, 4) == 0.6862
    hk = analyses["tb@RR-REML-HK"].result
    assert round(hk.ci_low, 4) == 0.3301 and round(hk.ci_high, 4) == 0.7257
    assert round(analyses["tb@RR-DL"].result.estimate, 4) == 0.4896
    assert round(analyses["tb@OR-PETO"].result.estimate, 4) == 0.6222
    orr = analyses["tb_or_reml"]
    assert orr.settings.measure == "OR" and round(orr.result.estimate, 4) == 0.4746
    assert value_text(orr.result.estimate, orr) == "OR 0.47"
    sub = analyses["tb_by_allocation"]
    assert set(sub.result.subgroups) == {"random", "alternate", "systematic"}
    assert analyses["tb_by_allocation:random"].k == 7
    # arm rows: the same trials paired, minus the two that cannot be paired
    arms = analyses["tb_arms"]
    assert arms.k == 11
    why = {r.study_id: r.reason for r in arms.left_out}
    assert "no 'control' arm" in why["T03"] and "2 'intervention' arms" in why["T05"]
    from curation.pool import pool_binary

    keep = [x for x in DAT_BCG if x[0] not in (3, 5)]
    ref = pool_binary([x[3] for x in keep], [x[3] + x[4] for x in keep], [x[5] for x in keep],
                      [x[5] + x[6] for x in keep], measure="RR", method="REML")
    assert arms.result.estimate == pytest.approx(ref.estimate, rel=1e-12)


@needs_pool2
def test_one_comparison_per_study(two_arm):
    schema, d = two_arm
    import openpyxl

    path = _bcg_form(d / "g.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["comparisons"].append(["T01", "BCG (2 doses) vs none", 2, 60, 11, 139])  # shares T01's control arm
    wb.save(path)
    res = validate(path, schema)
    tb = {a.id: a for a in run_plan(schema, res.clean_tables)}["tb"]
    assert tb.k == 13
    left = [r for r in tb.left_out if r.study_id == "T01"]
    assert len(left) == 1 and "no patient counted twice" in left[0].reason and left[0].cohort == "BCG (2 doses) vs none"


def test_measure_that_does_not_fit_is_refused(tmp_path):
    from curation.errors import SchemaError

    bad = TWO_ARM.replace("- {outcome: tb, measure: OR}", "- {outcome: tb, measure: PLO}").replace(
        "- {outcome: tb_arms}", "- {outcome: tb_arms, method: GLMM}")
    p = tmp_path / "s.yaml"
    p.write_text(bad)
    with pytest.raises(SchemaError) as exc:
        load_schema(p)
    text = str(exc.value)
    assert "measure PLO does not fit an outcome of kind binary" in text
    assert "method GLMM does not fit an outcome of kind binary" in text
    assert text.count(f"{p}, line ") == 2


# A second comparative review, written here as a reviewer team would: arm rows with means and SDs,
# and a hazard ratio reported with its CI (no Python of the project changes for it).
PAIN_REVIEW = """
name: pain_trials
title: Exercise against usual care for chronic low back pain
vocabularies:
  arm_role:
    terms:
      - {value: intervention, aliases: [exercise, experimental]}
      - {value: control, aliases: [usual care, waiting list]}
  risk_of_bias:
    terms: [{value: low}, {value: high}, {value: unclear}]
sheets:
  trials:
    key: [trial_id]
    fields:
      trial_id: {type: text, required: true, pattern: '^P[0-9]+$'}
      first_author: {type: text, required: true}
      year: {type: integer, min: 1980, max: current_year + 1}
      risk_of_bias: {type: vocabulary, vocabulary: risk_of_bias}
      hr_relapse: {type: number, min_exclusive: 0}
      hr_low: {type: number, min_exclusive: 0}
      hr_high: {type: number, min_exclusive: 0}
  arms:
    key: [trial_id, arm]
    parent: {sheet: trials, key: trial_id}
    fields:
      trial_id: {type: text, required: true}
      arm: {type: vocabulary, vocabulary: arm_role, required: true}
      n: {type: integer, min: 1}
      pain_mean: {type: number, min: 0, max: 100}
      pain_sd: {type: number, min_exclusive: 0}
analysis:
  sheet: arms
  cohort_field: arm
  defaults: {method: REML}
  outcomes:
    pain:
      label: Pain at 12 weeks (0-100 VAS)
      kind: continuous
      unit: points
      direction: lower_is_better
      arms: {sheet: arms, role_field: arm, pair_by: [trial_id], mean: pain_mean, sd: pain_sd, total: n}
    relapse:
      label: Relapse
      kind: reported_effect
      sheet: trials
      effect: hr_relapse
      low: hr_low
      high: hr_high
      scale: ratio
      measure_label: HR
  subgroups:
    bias: {label: Risk of bias, field: risk_of_bias, exclude: [unclear]}
  plan:
    - {outcome: pain, measure: MD}
    - {outcome: pain, measure: SMD, subgroup: bias}
    - {outcome: relapse}
"""

PAIN_FORM = {
    "trials": [("trial_id", "first_author", "year", "risk_of_bias", "hr_relapse", "hr_low", "hr_high"),
               ("P1", "Ahn", 2011, "low", 0.72, 0.51, 1.02), ("P2", "Berg", 2014, "high", 0.85, 0.60, 1.20),
               ("P3", "Costa", 2016, "low", 0.64, 0.44, 0.93), ("P4", "Dahl", 2019, "unclear", None, None, None)],
    "arms": [("trial_id", "arm", "n", "pain_mean", "pain_sd"),
             ("P1", "exercise", 40, 32.1, 15.2), ("P1", "usual care", 41, 41.0, 16.8),
             ("P2", "Experimental", 55, 28.4, 12.9), ("P2", "waiting list", 52, 33.5, 14.1),
             ("P3", "exercise", 30, 35.0, 18.0), ("P3", "usual care", 29, 44.2, 17.5),
             ("P4", "exercise", 25, 30.2, 11.0)],
}


@needs_pool2
def test_second_comparative_review_end_to_end(tmp_path):
    schema_path = tmp_path / "pain.yaml"
    schema_path.write_text(textwrap.dedent(PAIN_REVIEW))
    form = _book(tmp_path / "pain.xlsx", PAIN_FORM)
    res = CliRunner().invoke(main, ["validate", str(form), "--schema", str(schema_path)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(form), "--schema", str(schema_path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    analyses = {a["id"]: a for a in json.loads((out / "analysis.json").read_text())["analyses"]}
    pain = analyses["pain"]
    assert pain["measure"] == "MD" and pain["k"] == 3 and pain["unit"] == "points"
    assert [r["reason"] for r in pain["studies_left_out"]] == ["no 'control' arm for trial_id P4, so no comparison"]
    from curation.pool import pool_continuous, pool_generic

    arms = PAIN_FORM["arms"][1:7]
    ref = pool_continuous([a[3] for a in arms[::2]], [a[4] for a in arms[::2]], [a[2] for a in arms[::2]],
                          [a[3] for a in arms[1::2]], [a[4] for a in arms[1::2]], [a[2] for a in arms[1::2]],
                          measure="MD", method="REML")
    assert pain["estimate"] == pytest.approx(ref.estimate, rel=1e-9)
    assert pain["ci_low"] == pytest.approx(ref.ci_low, rel=1e-9)
    smd = analyses["pain_by_bias"]
    assert smd["measure"] == "SMD" and {r["reason"] for r in smd["studies_left_out"]} == {
        "no 'control' arm for trial_id P4, so no comparison"}
    rel = analyses["relapse"]
    assert rel["measure"] == "GEN" and rel["scale"] == "log" and rel["k"] == 3
    hrs = PAIN_FORM["trials"][1:4]
    yi = [math.log(h[4]) for h in hrs]
    sei = [(math.log(h[6]) - math.log(h[5])) / (2 * 1.959964) for h in hrs]
    ref = pool_generic(yi, sei, back_transform="exp")
    assert rel["estimate"] == pytest.approx(ref.estimate, rel=1e-9) and rel["estimate"] < 1
    # P4 reports no hazard ratio at all: never a candidate, so not "left out" (docs/exclusions.md)
    assert rel["studies_left_out"] == []
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "HR 0." in page and "months" not in page.split("Relapse", 1)[1][:2000]


def test_cli_measure_and_method_choices_are_the_schema_ones():
    from curation import cli, schema

    assert cli.MEASURES == schema.MEASURES and cli.METHODS == schema.METHODS


def test_pool_help_lists_the_outcomes_of_the_schema(monkeypatch):
    import sys

    monkeypatch.setattr(sys, "argv", ["curate", "pool", "--schema", "bcg_vaccine", "--help"])
    res = CliRunner().invoke(main, ["pool", "--schema", "bcg_vaccine", "--help"])
    assert "an outcome of schema bcg_vaccine: tb, tb_reported" in " ".join(res.output.split())
    monkeypatch.setattr(sys, "argv", ["curate", "pool", "--help"])
    res = CliRunner().invoke(main, ["pool", "--help"])
    assert "an outcome of schema prrt_177lu: orr, dcr, pfs, os, ae:TERM" in " ".join(res.output.split())


def test_template_records_its_schema_and_validate_uses_it(tmp_path):
    import openpyxl

    from curation.reading import recorded_schema
    from curation.template import record_schema

    form = tmp_path / "f.xlsx"
    res = CliRunner().invoke(main, ["template", "--schema", "bcg_vaccine", "-o", str(form)])
    assert res.exit_code == 0 and recorded_schema(form) == "bcg_vaccine"
    wb = openpyxl.load_workbook(form)
    assert any("bcg_vaccine" in str(c.value) for row in wb["instructions"].iter_rows(max_row=3) for c in row)
    res = CliRunner().invoke(main, ["validate", str(form)])
    assert res.exit_code == 0 and "curate: warning" not in res.output  # checked against bcg_vaccine, as recorded
    record_schema(wb, "no_such_review")
    wb.save(form)
    res = CliRunner().invoke(main, ["validate", str(form)])
    out = " ".join(res.output.split())
    assert "records schema 'no_such_review', which is not shipped" in out and "default 'prrt_177lu'" in out
    assert recorded_schema(tmp_path / "missing.xlsx") is None


def test_labels_name_the_comparison_only_when_a_study_has_several(two_arm):
    schema, d = two_arm
    import openpyxl

    path = _bcg_form(d / "labels.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["comparisons"].append(["T01", "BCG (2 doses) vs none", 2, 60, 11, 139])
    wb.save(path)
    res = validate(path, schema)
    from curation.analyses import select

    taken, left, _ = select(schema, res.clean_tables["comparisons"], schema.analysis.outcomes["tb"])
    labels = {r.study_id: r.label for r in taken}
    assert labels["T02"] == "Ferguson & Simes 1949" and labels["T01"] == "Aronson 1948 (BCG vs none)"

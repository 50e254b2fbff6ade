"""Check coverage (issue 19): every check says how many records it checked and why not the rest;
a check that ran on nothing, or on under half of what it applies to, is a warning.

Built on the comparative review of ``test_rules_comparative`` (the 13 BCG trials, one row per arm
on an ``arms`` sheet grouped by trial and comparison).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

from curation.schema import load_schema
from curation.validation import validate
from test_rules_comparative import baseline, run, schema_dict, setv, write_form

CURATE = str(Path(sys.executable).parent / "curate")
#: the codes these tests report (tests/test_rules.py checks every registered code has a case)
COVERAGE_CODES = {"check-not-run", "check-partly-run"}


def _with_overall_rows(form):
    """Each trial also has an ``overall`` comparison row without arm counts (its effect only)."""
    for k in range(1, 14):
        form["arms"].append({"study_id": f"T{k:02d}", "comparison": "overall", "arm_role": None})
    return form


def _cov(result, check, sheet):
    (c,) = [c for c in result.coverage if c.check == check and c.sheet == sheet]
    return c


def test_every_check_reports_its_coverage(tmp_path):
    result = run(tmp_path, baseline())
    named = sum(len(v) for v in result.schema.checks.values())
    assert len(result.coverage) == named
    for c in result.coverage:
        if c.check == "median-iqr-not-mean-sd":  # no medians: nothing to check, and nothing unchecked
            assert (c.status, c.applicable, c.incomplete) == ("no data", 0, ())
            continue
        assert c.status == "ran", c
        assert 0 < c.checked == c.applicable
    arms = _cov(result, "arm-totals-exceed-randomised", "arms")
    assert (arms.applicable, arms.checked) == (26, 26)
    assert result.to_dict()["coverage"][0]["check"] == "events-exceed-total"


def test_arm_totals_with_overall_rows_still_checked(tmp_path):
    """An overall row without arm counts is no member of the group sum: the slip is reported."""
    form = _with_overall_rows(copy.deepcopy(baseline()))
    setv("studies", 0, n_randomised=250)(form)  # 123 + 139 = 262 randomised
    result = run(tmp_path, form)
    hits = [f for f in result.finding_list if f.rule == "arm-totals-exceed-randomised" and f.sheet == "arms"]
    assert [(f.row, f.field) for f in hits] == [(3, "n")], [f.message for f in result.finding_list]
    assert "arms!E2, arms!E3" in hits[0].message and "250" in hits[0].message
    cov = _cov(result, "arm-totals-exceed-randomised", "arms")
    assert (cov.applicable, cov.checked, cov.status) == (26, 26, "ran")
    assert not [f for f in result.finding_list if f.rule.startswith("check-")]


def test_below_randomised_can_be_an_error(tmp_path):
    data = schema_dict()
    for entry in data["checks"]["arms"]:
        if entry["rule"] == "arm-totals-exceed-randomised":
            entry["severities"] = {"arm-totals-below-randomised": "error"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    form = copy.deepcopy(baseline())
    setv("studies", 1, n_randomised=700)(form)
    result = validate(write_form(tmp_path / "f.xlsx", form), load_schema(path))
    sev = {(f.sheet, f.severity) for f in result.finding_list if f.rule == "arm-totals-below-randomised"}
    assert sev == {("arms", "error"), ("comparisons", "warning")}
    assert result.summary.by_sheet["arms"]["excluded"] == 1


def test_severities_must_name_a_code_the_check_reports(tmp_path):
    import pytest

    from curation.errors import SchemaError

    data = schema_dict()
    data["checks"]["arms"][1]["severities"] = {"ratio-not-positive": "error"}
    data["severities"] = {"no-such-rule": "error"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SchemaError) as exc:
        load_schema(path)
    text = str(exc.value)
    assert "does not report 'ratio-not-positive'" in text and "arm-totals-below-randomised" in text
    assert "unknown rule 'no-such-rule'" in text


def test_check_not_run_and_partly_run(tmp_path):
    form = copy.deepcopy(baseline())
    for s in form["studies"]:
        s["n_randomised"] = None
    result = run(tmp_path, form)
    warned = {(f.rule, f.contract_sheet): f for f in result.finding_list if f.rule.startswith("check-")}
    f = warned[("check-not-run", "arms")]
    assert f.severity == "warning" and f.row is None
    assert "arm-totals-exceed-randomised" in f.message and "studies.n_randomised empty (26 rows)" in f.message
    assert "studies.n_randomised" in f.fields
    # 8 of 13 trials without the number randomised: partly run
    form = copy.deepcopy(baseline())
    for s in form["studies"][:8]:
        s["n_randomised"] = None
    result = run(tmp_path, form)
    cov = _cov(result, "arm-totals-exceed-randomised", "comparisons")
    assert (cov.applicable, cov.checked, cov.status) == (13, 5, "partly run")
    assert cov.reasons == (("studies.n_randomised empty", 8),)
    (f,) = [f for f in result.finding_list if f.rule == "check-partly-run" and f.contract_sheet == "comparisons"]
    assert "ran on 5 of the 13 rows" in f.message and "not on 8" in f.message


def test_rows_without_the_data_are_not_counted_against_a_check(tmp_path):
    """A p-value the paper did not report leaves nothing to check: listed, never warned."""
    form = copy.deepcopy(baseline())
    for r in form["comparisons"]:
        r["p_value"] = None
    result = run(tmp_path, form)
    cov = _cov(result, "p-value-contradicts-ci", "comparisons")
    assert (cov.applicable, cov.status) == (0, "no data")
    assert cov.incomplete == (("p_value empty", 13),)
    assert not [f for f in result.finding_list if f.rule.startswith("check-")]


def test_a_check_whose_fields_never_meet(tmp_path):
    """A field of a sibling sheet has no one row to be read from: the check never runs, and says so."""
    data = schema_dict()
    data["checks"]["arms"].append({"rule": "evaluable-exceeds-enrolled", "field": "n",
                                   "limit": "comparisons.total_vaccinated"})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = validate(write_form(tmp_path / "f.xlsx", baseline()), load_schema(path))
    (f,) = [f for f in result.finding_list if f.rule == "check-not-run"]
    assert "can never run" in f.message and "comparisons.total_vaccinated" in f.message
    assert not [f for f in result.finding_list if f.rule == "evaluable-exceeds-enrolled"]
    assert _cov(result, "evaluable-exceeds-enrolled", "arms").status == "never"


def test_validate_prints_and_writes_the_coverage_table(tmp_path):
    form = copy.deepcopy(baseline())
    for s in form["studies"]:
        s["n_randomised"] = None
    from test_rules_comparative import write_schema

    schema = write_schema(tmp_path / "s.yaml")
    path = write_form(tmp_path / "f.xlsx", form)
    out = tmp_path / "r.json"
    proc = subprocess.run([CURATE, "validate", str(path), "--schema", str(schema), "--json", str(out)],
                          capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "Check coverage" in proc.stdout and "not run" in proc.stdout
    assert "arm-totals-exceed-randomised" in proc.stdout
    assert proc.stderr == ""
    cov = json.loads(out.read_text())["coverage"]
    row = [c for c in cov if c["check"] == "arm-totals-exceed-randomised" and c["sheet"] == "arms"][0]
    assert row["status"] == "not run" and row["reasons"] == [{"reason": "studies.n_randomised empty", "records": 26}]


def test_rules_warns_of_a_check_that_can_never_run(tmp_path):
    data = schema_dict()
    data["checks"]["arms"].append({"rule": "arm-totals-exceed-randomised", "totals": ["n"],
                                   "randomised": "studies.n_randomised",
                                   "group_by": ["study_id", "comparison", "arm_role"]})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = subprocess.run([CURATE, "rules", "--schema", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stderr.count("curate: warning:") == 1
    assert "checks.arms[2] arm-totals-exceed-randomised can never run" in proc.stderr
    assert "holds the whole row key of arms" in proc.stderr


def test_sd_check_needs_other_studies_to_compare_with(tmp_path):
    """Without min_sd, an SD is judged against the other studies' SDs: two studies leave nothing to compare."""
    data = schema_dict()
    for entry in data["checks"]["continuous"]:
        if entry["rule"] == "sd-looks-like-se":
            entry.pop("min_sd")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    form = copy.deepcopy(baseline())
    form["continuous"] = form["continuous"][:2]
    result = validate(write_form(tmp_path / "f.xlsx", form), load_schema(path))
    cov = _cov(result, "sd-looks-like-se", "continuous")
    assert (cov.applicable, cov.checked, cov.status) == (2, 0, "not run")
    assert cov.reasons == (("fewer than 2 other studies of the outcome with an SD to compare with", 2),)
    full = validate(write_form(tmp_path / "g.xlsx", baseline()), load_schema(path))
    assert _cov(full, "sd-looks-like-se", "continuous").status == "ran"


def test_a_grouping_column_missing_from_the_form_groups_by_the_others(tmp_path):
    """Without a comparison column the arm rows of a study are one comparison: still added up."""
    from test_rules_comparative import FIELDS, write_schema

    fields = {**FIELDS, "arms": [f for f in FIELDS["arms"] if f != "comparison"]}
    form = copy.deepcopy(baseline())
    setv("studies", 0, n_randomised=250)(form)
    result = validate(write_form(tmp_path / "f.xlsx", form, fields), load_schema(write_schema(tmp_path / "s.yaml")))
    hits = [f for f in result.finding_list if f.rule == "arm-totals-exceed-randomised" and f.sheet == "arms"]
    assert [(f.row, f.field) for f in hits] == [(3, "n")]
    assert _cov(result, "arm-totals-exceed-randomised", "arms").status == "ran"


def test_a_column_the_check_reads_elsewhere_missing_from_every_form(tmp_path):
    """No n_randomised column on the studies sheet: the arm checks ran on nothing, and say which column."""
    from test_rules_comparative import FIELDS, write_schema

    fields = {**FIELDS, "studies": [f for f in FIELDS["studies"] if f != "n_randomised"]}
    result = validate(write_form(tmp_path / "f.xlsx", baseline(), fields),
                      load_schema(write_schema(tmp_path / "s.yaml")))
    cov = _cov(result, "arm-totals-exceed-randomised", "arms")
    assert (cov.applicable, cov.checked, cov.status) == (26, 0, "not run")
    assert cov.reasons == (("column studies.n_randomised not in the form", 26),)

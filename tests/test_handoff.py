"""Hand-off: analysis.R against metafor, the Frictionless data package, the GX suite, pandera.

The dataset is a realistic form: the two studies of the rule tests' baseline (one with grade
subgroups) and four more, among them a study at 0% (ORR 0/20), one at 100% (DCR 25/25), an OS
and a PFS whose upper CI bound was not reached, a PFS given in weeks, a NEC cohort alone in its
group, and a cohort label that must be made inert in the CSV and escaped in R.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from builders import good_ae, good_outcome, good_study, write_form
from test_rules import baseline

from curation import handoff
from curation.analyses import run_plan
from curation.outputs import csv_text, dumps
from curation.validation import validate

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2", "q", "q_between", "p_between")
ODD_COHORT = '-G3 "na\u00efve" \\ (\u2265 20%)'  # inert in CSV; quotes, backslash and non-ASCII in R


def realistic_form() -> dict[str, list[dict]]:
    form = baseline()
    form["outcomes"][3]["cohort"] = ODD_COHORT  # S02's G3 cohort
    form["studies"] += [
        good_study(study_id="S03", first_author="Baum", year=2018, doi="10.1000/s03", pmid=30000003, country="Germany",
                   design="prospective", n_enrolled=22, enrolment_start=2010, enrolment_end=2016),
        good_study(study_id="S04", first_author="Garske-Roman", year=2018, doi="10.1000/s04", pmid=30000004,
                   country="Sweden", design="prospective", n_enrolled=25, enrolment_start=2011, enrolment_end=2017,
                   radiopharmaceutical="Lutathera"),
        good_study(study_id="S05", first_author="Hamiditabar", year=2017, doi="10.1000/s05", pmid=30000005,
                   country="USA", design="retrospective", n_enrolled=64, enrolment_start=2009, enrolment_end=2015,
                   response_criteria="RECIST v1.1"),
        good_study(study_id="S06", first_author="Zhang", year=2019, doi="10.1000/s06", pmid=30000006,
                   country="Germany", design="retrospective", n_enrolled=30, enrolment_start=2008, enrolment_end=2018,
                   radiopharmaceutical="177Lu-DOTATOC", response_criteria="WHO"),
    ]
    form["outcomes"] += [
        # ORR 0%; OS upper bound not reached
        good_outcome(study_id="S03", grade="G3", primary_site="pancreas", ki67_max=30, n_evaluable=20, cr=0, pr=0,
                     sd=15, pd=5, orr_pct=0, dcr_pct=75, pfs_median=12, pfs_ci_low=8, pfs_ci_high=16,
                     os_median=30, os_ci_low=22, os_ci_high="NR", followup_median_months=40),
        # DCR 100%; PFS upper bound not reached
        good_outcome(study_id="S04", grade="G1-2", primary_site="pancreas", ki67_max=10, n_evaluable=25, cr=1, pr=9,
                     sd=15, pd=0, orr_pct=40, dcr_pct=100, pfs_median=33, pfs_ci_low=25, pfs_ci_high="NR",
                     os_median=60, os_ci_low=45, os_ci_high=80, followup_median_months=50),
        # PFS in weeks (converted to months)
        good_outcome(study_id="S05", grade="G2", primary_site="small_intestine", ki67_max=8, n_evaluable=60, cr=2,
                     pr=14, sd=34, pd=10, orr_pct=26.7, dcr_pct=83.3, pfs_median=100, pfs_ci_low=80,
                     pfs_ci_high=130, pfs_unit="weeks", os_median=52, os_ci_low=40, os_ci_high=66,
                     followup_median_months=45),
        good_outcome(study_id="S06", grade="NEC", primary_site="pancreas", ki67_max=55, n_evaluable=30, cr=0, pr=6,
                     sd=10, pd=14, orr_pct=20, dcr_pct=53.3, pfs_median=9, pfs_ci_low=6, pfs_ci_high=13,
                     os_median=19, os_ci_low=14, os_ci_high=25, followup_median_months=30),
    ]
    form["adverse_events"] += [
        good_ae(study_id="S03", grade3plus_n=0, any_grade_n=5, n_safety=22),
        good_ae(study_id="S04", grade3plus_n=3, any_grade_n=9, n_safety=25),
        good_ae(study_id="S05", grade3plus_n=5, any_grade_n=20, n_safety=64),
        good_ae(study_id="S05", ae_term="MDS", grade3plus_n=1, any_grade_n=1, n_safety=64),
        good_ae(study_id="S06", ae_term="anaemia", grade3plus_n=2, any_grade_n=12, n_safety=30),
    ]
    return form


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("handoff")
    form = realistic_form()
    path = write_form(tmp / "form.xlsx", form["studies"], form["outcomes"], form["adverse_events"])
    result = validate(path)
    assert [f"{f.cell} {f.rule}" for f in result.finding_list if f.severity != "info"] == []
    analyses = run_plan(result.schema, result.clean_tables)
    return result, analyses


def write_outputs(folder: Path, result, analyses, *, with_studies: bool = False) -> dict[str, str]:
    names = handoff.csv_names_for(result.schema, result.clean_tables)
    if with_studies:
        names = {**names, "studies": "clean_studies.csv"}
    for sheet, name in names.items():
        (folder / name).write_text(csv_text(result.clean_tables[sheet]), encoding="utf-8")
    (folder / "analysis.json").write_text(dumps({"analyses": [a.to_dict() for a in analyses]}), encoding="utf-8")
    (folder / "analysis.R").write_text(handoff.analysis_r_script(result.schema, analyses), encoding="utf-8")
    return names


# ---------------------------------------------------------------------------------------------
# analysis.R
# ---------------------------------------------------------------------------------------------


def test_dataset_has_the_hard_cases(dataset):
    result, analyses = dataset
    by_id = {a.id: a for a in analyses}
    orr = {r.study_id: r for r in by_id["orr"].taken}
    dcr = {r.study_id: r for r in by_id["dcr"].taken}
    assert orr["S03"].events == 0 and dcr["S04"].events == dcr["S04"].total
    assert len(by_id["orr"].taken) >= 4 and len(by_id["pfs"].taken) >= 4
    assert any("upper CI bound not reached" in n for n in by_id["pfs"].notes)
    assert any("upper CI bound not reached" in n for n in by_id["os"].notes)
    assert ODD_COHORT in [r.cohort for r in by_id["orr_by_grade"].taken]
    import io

    written = pd.read_csv(io.StringIO(csv_text(result.clean)))
    assert "'" + ODD_COHORT in set(written["cohort"])  # made inert in the CSV
    roles = {a.role for a in analyses}
    assert roles == {"primary", "subgroup", "subgroup_test", "sensitivity"}
    assert any(a.settings.method == "GLMM" for a in analyses)
    assert any(a.outcome.startswith("ae:") for a in analyses)


def test_r_script_names_every_analysis_and_is_deterministic(dataset):
    result, analyses = dataset
    script = handoff.analysis_r_script(result.schema, analyses)
    for a in analyses:
        assert f"run({handoff.r_string(a.id)}," in script, a.id
    assert script.count("\nrun(") == len(analyses)
    assert script == handoff.analysis_r_script(result.schema, analyses)
    script.encode("ascii")  # plain ASCII whatever the locale
    assert script.startswith("# analysis.R")
    assert "Generated by curation" in script and "metafor 3.8-1" in script and "Rscript analysis.R" in script
    assert 'read_clean("clean.csv")' in script and 'read_clean("clean_adverse_events.csv")' in script
    # the rows are listed by key, not selected again
    assert 'study_id = c("S01", "S02", "S03", "S04", "S05", "S06")' in script
    assert "escalc(measure = measure, xi = xi, ni = ni)" in script and "rma.glmm(" in script
    assert 'test = if (hk) "knha" else "z"' in script
    assert "transf.ipft.hm, targs = list(ni = ni)" in script
    assert 'method = "EE")' in script


def test_r_string_escapes():
    assert handoff.r_string('a"b\\c') == '"a\\"b\\\\c"'
    assert handoff.r_string("x\ny\tz") == '"x\\ny\\tz"'
    assert handoff.r_string("na\u00efve \u2265") == '"na\\u{00ef}ve \\u{2265}"'
    assert handoff.r_string("\U0001F600") == '"\\U{0001f600}"'


def test_r_script_comments_cannot_break_out():
    assert handoff._comment("a\nrun(evil)") == "a run(evil)"
    assert handoff._comment("caf\u00e9") == "caf?"


def test_r_script_with_nothing_pooled(dataset):
    result, analyses = dataset
    from dataclasses import replace

    empty = replace(analyses[0], taken=(), result=None)
    script = handoff.analysis_r_script(result.schema, [empty])
    assert f'run("{empty.id}", NULL)  # no study could be pooled' in script


def _close(got, ref, rtol, atol) -> bool:
    if ref is None or (isinstance(ref, float) and math.isnan(ref)):
        return got is None or (isinstance(got, float) and math.isnan(got))
    if got is None or (isinstance(got, float) and math.isnan(got)):
        return False
    return abs(got - ref) <= rtol * abs(ref) + atol


@pytest.mark.rscript
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="needs Rscript with metafor")
def test_r_script_reproduces_every_figure_with_metafor(dataset, tmp_path):
    result, analyses = dataset
    worst = _run_r_and_compare(tmp_path, result, analyses)
    out = pd.read_csv(tmp_path / "metafor_results.csv")
    assert list(out.columns[:6]) == ["analysis", "estimate", "ci_low", "ci_high", "tau2", "i2"]
    assert [int(k) for k in out["k"]] == [a.k for a in analyses]
    assert all(v <= 1e-6 for (col, glmm), v in worst.items() if not glmm), worst
    print("largest relative differences:", {f"{c}{' (GLMM)' if g else ''}": f"{v:.2g}" for (c, g), v in
                                             sorted(worst.items())})


def _run_r_and_compare(folder: Path, result, analyses) -> dict:
    write_outputs(folder, result, analyses)
    proc = subprocess.run(["Rscript", "analysis.R"], cwd=folder, capture_output=True, text=True, timeout=900)
    if "there is no package called" in proc.stderr:
        pytest.skip("R without metafor/lme4: " + proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    out = pd.read_csv(folder / "metafor_results.csv")
    assert list(out["analysis"]) == [a.id for a in analyses]
    ours = {d["id"]: d for d in json.loads((folder / "analysis.json").read_text())["analyses"]}
    bad, worst = [], {}
    for row in out.to_dict("records"):
        ref = ours[row["analysis"]]
        glmm = ref["method"] == "GLMM"
        rtol, atol = (1e-3, 1e-6) if glmm else (1e-6, 1e-10)
        for col in FIGURES:
            got = None if pd.isna(row[col]) else float(row[col])
            want = ref.get(col)
            if not _close(got, want, rtol, atol):
                bad.append(f"{row['analysis']} {col}: metafor {got!r}, curation {want!r}")
            elif got is not None and want is not None:
                key = (col, glmm)
                worst[key] = max(worst.get(key, 0.0), abs(got - want) / max(abs(want), 1e-6))
    assert bad == []
    return worst


@pytest.mark.rscript
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="needs Rscript with metafor")
def test_r_script_across_measures_methods_and_levels(dataset, tmp_path):
    """Every measure and estimator, Knapp-Hartung and another level, with subgroups (one of
    a single study, one holding the 0% study), medians by site and one adverse event."""
    from dataclasses import replace

    from curation.analyses import run_analysis
    from curation.schema import PoolSettings

    result, _ = dataset
    settings = [PoolSettings(measure=m, method=e, hk=hk, level=0.9 if hk else 0.95)
                for m in ("PR", "PLN", "PLO", "PAS", "PFT")
                for e in ("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
                for hk in (False, True)]
    settings += [PoolSettings(method="GLMM", hk=hk) for hk in (False, True)]
    analyses = []
    for s in settings:
        tag = f"{s.measure}-{s.method}-{'HK' if s.hk else 'z'}-{s.level}"
        jobs = [("orr", "grade"), ("ae:thrombocytopenia", None)]
        if s.measure == "PLO" and s.method != "GLMM":
            jobs.append(("pfs", "site"))
        for outcome, sub in jobs:
            for a in run_analysis(result.schema, result.clean_tables, outcome, settings=s, subgroup=sub,
                                  sensitivity=False):
                analyses.append(replace(a, id=f"{a.id}|{tag}",
                                        parent=f"{a.parent}|{tag}" if a.parent else None))
    assert len(analyses) > 300
    worst = _run_r_and_compare(tmp_path, result, analyses)
    assert all(v <= 1e-6 for (col, glmm), v in worst.items() if not glmm), worst


# ---------------------------------------------------------------------------------------------
# Frictionless data package
# ---------------------------------------------------------------------------------------------


def _frictionless():
    return pytest.importorskip("frictionless")


def test_data_package_describes_the_clean_csvs(dataset):
    result, analyses = dataset
    names = handoff.csv_names_for(result.schema, result.clean_tables)
    pkg = handoff.data_package(result.schema, result.clean_tables, names)
    assert pkg == handoff.data_package(result.schema, result.clean_tables, names)
    assert [r["path"] for r in pkg["resources"]] == ["clean.csv", "clean_adverse_events.csv"]
    res = {r["name"]: r for r in pkg["resources"]}
    fields = {f["name"]: f for f in res["outcomes"]["schema"]["fields"]}
    assert [f["name"] for f in res["outcomes"]["schema"]["fields"]] == list(result.clean.columns)
    assert res["outcomes"]["schema"]["primaryKey"] == ["study_id", "cohort"]
    assert "foreignKeys" not in res["outcomes"]["schema"]  # no studies resource
    assert fields["n_evaluable"]["type"] == "integer" and fields["n_evaluable"]["constraints"]["minimum"] == 1
    assert fields["ki67_max"]["type"] == "number" and fields["ki67_max"]["constraints"]["maximum"] == 100
    assert fields["pfs_median"]["constraints"]["exclusiveMinimum"] == 0
    assert fields["grade"]["constraints"]["enum"][:3] == ["G1", "G2", "G1-2"]
    assert "SWOG" not in fields["response_criteria"]["constraints"]["enum"]  # ineligible terms never pass
    assert fields["pfs_ci_high_nr"]["type"] == "boolean"
    assert fields["study_id"]["constraints"]["required"] is True
    assert all(f.get("description") for f in fields.values())
    assert fields["pfs_median"]["description"].endswith("(months)")
    with_studies = handoff.data_package(result.schema, result.clean_tables, {**names, "studies": "clean_studies.csv"})
    fk = {r["name"]: r["schema"].get("foreignKeys") for r in with_studies["resources"]}
    assert fk["outcomes"] == [{"fields": ["study_id"], "reference": {"resource": "studies", "fields": ["study_id"]}}]
    assert fk["studies"] is None


def test_frictionless_validates_the_clean_csvs(dataset, tmp_path):
    fl = _frictionless()
    result, analyses = dataset
    names = write_outputs(tmp_path, result, analyses, with_studies=True)
    pkg = handoff.data_package(result.schema, result.clean_tables, names)
    (tmp_path / "datapackage.json").write_text(dumps(pkg), encoding="utf-8")
    report = fl.validate(str(tmp_path / "datapackage.json"))
    errors = [f"{t.name}: {e.type}: {e.message}" for t in report.tasks for e in t.errors]
    assert report.valid, errors
    assert len(report.tasks) == 3


def test_frictionless_catches_a_broken_csv(dataset, tmp_path):
    fl = _frictionless()
    result, analyses = dataset
    names = write_outputs(tmp_path, result, analyses)
    pkg = handoff.data_package(result.schema, result.clean_tables, names)
    (tmp_path / "datapackage.json").write_text(dumps(pkg), encoding="utf-8")
    broken = result.clean.copy()
    broken["grade"] = broken["grade"].astype(object)
    broken.loc[0, "grade"] = "G4"  # enum
    broken.loc[1, "n_evaluable"] = 0  # minimum
    broken.loc[2, "pfs_median"] = 0.0  # exclusiveMinimum
    broken.loc[3, "study_id"] = "S01"  # primary key (S01, overall) twice
    broken.loc[3, "cohort"] = "overall"
    (tmp_path / "clean.csv").write_text(csv_text(broken), encoding="utf-8")
    report = fl.validate(str(tmp_path / "datapackage.json"))
    assert not report.valid
    found = {(e.type, getattr(e, "field_name", None)) for t in report.tasks for e in t.errors}
    assert ("constraint-error", "grade") in found
    assert ("constraint-error", "n_evaluable") in found
    assert ("constraint-error", "pfs_median") in found
    assert any(t == "primary-key" for t, _ in found), found


# ---------------------------------------------------------------------------------------------
# GX Core 1.x
# ---------------------------------------------------------------------------------------------


def test_gx_suite_content():
    from curation.schema import load_schema

    suite = handoff.gx_suite(load_schema())
    assert suite == handoff.gx_suite(load_schema())
    types = {e["type"] for e in suite["expectations"]}
    assert types == {"expect_column_values_to_be_in_set", "expect_column_values_to_be_between",
                     "expect_column_values_to_not_be_null", "expect_compound_columns_to_be_unique",
                     "expect_column_pair_values_a_to_be_greater_than_b", "expect_column_values_to_match_regex"}
    pairs = {(e["kwargs"]["column_A"], e["kwargs"]["column_B"]) for e in suite["expectations"]
             if e["type"] == "expect_column_pair_values_a_to_be_greater_than_b"}
    assert {("n_enrolled", "n_evaluable"), ("dcr_pct", "orr_pct"), ("dcr_events", "orr_events"),
            ("pfs_median", "pfs_ci_low"), ("pfs_ci_high", "pfs_median"), ("pfs_ci_high", "pfs_ci_low"),
            ("enrolment_end", "enrolment_start")} <= pairs
    assert "response-sum-mismatch" in suite["meta"]["not_expressible"]
    ae = handoff.gx_suite(load_schema(), "adverse_events")
    ae_pairs = {(e["kwargs"]["column_A"], e["kwargs"]["column_B"]) for e in ae["expectations"]
                if e["type"] == "expect_column_pair_values_a_to_be_greater_than_b"}
    assert ae_pairs >= {("any_grade_n", "grade3plus_n"), ("n_safety", "any_grade_n"), ("n_enrolled", "n_safety")}


def _gx_validate(suite_dict, frame):
    import logging

    gx = pytest.importorskip("great_expectations")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    suite = gx.ExpectationSuite(**suite_dict)
    # GX drops an expectation it cannot build with only a log line: make sure none was dropped
    assert len(suite.expectations) == len(suite_dict["expectations"])
    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas("curation").add_dataframe_asset("clean")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
    return batch.validate(suite)


def _failed(result) -> set[tuple[str, str]]:
    out = set()
    for r in result.results:
        if not r.success:
            kw = r.expectation_config.kwargs
            cols = kw.get("column") or ",".join(kw.get("column_list") or [kw.get("column_A"), kw.get("column_B")])
            out.add((r.expectation_config.type, cols))
    return out


def test_gx_suite_passes_on_clean_data_and_names_planted_errors(dataset, tmp_path):
    pytest.importorskip("great_expectations")
    result, _ = dataset
    suite = handoff.gx_suite(result.schema)
    ok = _gx_validate(suite, result.clean)
    assert ok.success, _failed(ok)
    # the CSV read back (inert text with its leading ') passes too
    (tmp_path / "clean.csv").write_text(csv_text(result.clean), encoding="utf-8")
    assert _gx_validate(suite, pd.read_csv(tmp_path / "clean.csv")).success

    bad = result.clean.copy()
    for col in ("grade", "first_author", "study_id"):
        bad[col] = bad[col].astype(object)
    bad.loc[0, "grade"] = "G4"
    bad.loc[1, "n_evaluable"] = int(bad.loc[1, "n_enrolled"]) + 1
    bad.loc[2, "dcr_pct"] = bad.loc[2, "orr_pct"] - 1
    bad.loc[3, "pfs_median"] = bad.loc[3, "pfs_ci_low"] - 1
    bad.loc[4, "ki67_max"] = 140.0
    bad.loc[5, "study_id"] = "S03"  # (S03, overall) twice
    bad.loc[6, "first_author"] = None
    bad.loc[7, "dcr_events"] = 0.0  # below its orr_events
    failed = _failed(_gx_validate(suite, bad))
    assert failed == {
        ("expect_column_values_to_be_in_set", "grade"),
        ("expect_column_pair_values_a_to_be_greater_than_b", "n_enrolled,n_evaluable"),
        ("expect_column_pair_values_a_to_be_greater_than_b", "dcr_pct,orr_pct"),
        ("expect_column_pair_values_a_to_be_greater_than_b", "pfs_median,pfs_ci_low"),
        ("expect_column_values_to_be_between", "ki67_max"),
        ("expect_compound_columns_to_be_unique", "study_id,cohort"),
        ("expect_column_values_to_not_be_null", "first_author"),
        ("expect_column_pair_values_a_to_be_greater_than_b", "dcr_events,orr_events"),
    }


def test_gx_suite_on_adverse_events(dataset):
    pytest.importorskip("great_expectations")
    result, _ = dataset
    frame = result.clean_tables["adverse_events"]
    suite = handoff.gx_suite(result.schema, "adverse_events")
    assert _gx_validate(suite, frame).success
    bad = frame.copy()
    bad.loc[0, "grade3plus_n"] = int(bad.loc[0, "any_grade_n"]) + 1
    assert _failed(_gx_validate(suite, bad)) == {
        ("expect_column_pair_values_a_to_be_greater_than_b", "any_grade_n,grade3plus_n")}


def test_cli_export_gx(tmp_path):
    from click.testing import CliRunner

    from curation.cli import main
    from curation.schema import load_schema

    out = tmp_path / "suite.json"
    res = CliRunner().invoke(main, ["export-gx", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text()) == json.loads(dumps(handoff.gx_suite(load_schema())))
    assert "expectations for clean.csv" in res.output
    res = CliRunner().invoke(main, ["export-gx", "--sheet", "adverse_events", "-o", str(out)])
    assert res.exit_code == 0 and json.loads(out.read_text())["meta"]["sheet"] == "adverse_events"
    res = CliRunner().invoke(main, ["export-gx", "--sheet", "nope", "-o", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and not (tmp_path / "x.json").exists()
    res = CliRunner().invoke(main, ["export-gx", "--schema", str(tmp_path / "missing.yaml"), "-o", str(out)])
    assert res.exit_code == 2


# ---------------------------------------------------------------------------------------------
# pandera and the Python API of docs/handoff.md
# ---------------------------------------------------------------------------------------------


def test_pandera_schemas(dataset):
    import pandera.pandas as pa

    result, _ = dataset
    schemas = handoff.pandera_schemas(result.schema)
    assert set(schemas) == set(result.schema.sheets)
    for sheet, frame in result.clean_tables.items():
        schemas[sheet].validate(frame, lazy=True)
    bad = result.clean.copy()
    bad["grade"] = bad["grade"].astype(object)
    bad.loc[0, "ki67_max"] = 140.0
    bad.loc[1, "grade"] = "G4"
    with pytest.raises(pa.errors.SchemaErrors) as exc:
        schemas["outcomes"].validate(bad, lazy=True)
    cases = exc.value.failure_cases
    checks = set(zip(cases["column"], cases["check"]))
    assert ("grade", "rejected-term") in checks
    assert any(col == "ki67_max" and check.startswith("out-of-range") for col, check in checks)
    # warning-level checks are left out unless asked for
    plain = handoff.pandera_schemas(result.schema)["studies"].columns["activity_per_cycle_gbq"].checks
    full = handoff.pandera_schemas(result.schema, warnings=True)["studies"].columns["activity_per_cycle_gbq"].checks
    assert len(full) == len(plain) + 2


def test_docs_example_runs(dataset, tmp_path):
    """The Python blocks of docs/handoff.md run, in order, in a fresh interpreter."""
    text = (ROOT / "docs" / "handoff.md").read_text(encoding="utf-8")
    blocks = []
    inside = False
    for line in text.splitlines():
        if line.strip() == "```python":
            inside, block = True, []
        elif line.strip() == "```" and inside:
            inside = False
            blocks.append("\n".join(block))
        elif inside:
            block.append(line)
    assert blocks
    import importlib.util

    for optional in ("great_expectations", "frictionless"):  # blocks for optional tools
        if importlib.util.find_spec(optional) is None:
            blocks = [b for b in blocks if f"import {optional}" not in b]
    form = realistic_form()
    write_form(tmp_path / "form.xlsx", form["studies"], form["outcomes"], form["adverse_events"])
    code = "\n\n".join(blocks)
    assert 'curation.validate("form.xlsx", schema)' in code
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

"""The whole hand-off for any schema: one-sheet, two-sheet and arm-row schemas written from the docs
get their clean CSVs, ``analysis.R`` (reproducing every analysis with metafor), a Data Package and GX
suites; ``curate pool`` on a clean CSV the run wrote gives the run's estimate; labels and units come
from the schema (no months on a ratio); a per-arm analysis (one proportion per arm, by treatment) can be
declared; an arm analysis that pools nothing says why; a hand-off file that cannot be made is said on
stderr and in the exit code."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from test_comparative import PAIN_FORM, PAIN_REVIEW, _book

from curation.cli import main

ROOT = Path(__file__).resolve().parent.parent
FORMS = ROOT / "extraction_forms"

#: Codes the tests of this file have a case for (tests/test_rules.py counts them).
HANDOFF_CODES = {"analysis-pools-nothing", "schema-fits-poorly"}

# An umbrella review of hazard ratios as a team wrote it from the docs: one sheet, a review and a
# meta-analysis per row (the key is both), a study label, the HR with its CI and the cancer site.
UMBRELLA = """
name: hr_umbrella
title: Umbrella review of hazard ratios
vocabularies:
  site:
    terms:
      - {value: breast}
      - {value: colorectal, aliases: [colon, bowel]}
      - {value: lung}
      - {value: prostate}
sheets:
  meta_analyses:
    key: [review_id, ma_id]
    fields:
      review_id: {type: text, required: true}
      ma_id: {type: text, required: true}
      study_label: {type: text, required: true, aliases: [Study, review]}
      year: {type: integer, min: 1990, max: current_year + 1}
      site: {type: vocabulary, vocabulary: site}
      k_studies: {type: integer, min: 1}
      hr: {type: number, min_exclusive: 0, aliases: [HR]}
      hr_low: {type: number, min_exclusive: 0, aliases: [HR lower, lower CI]}
      hr_high: {type: number, min_exclusive: 0, aliases: [HR upper, upper CI]}
checks:
  meta_analyses:
    - {rule: effect-outside-ci, effect: hr, low: hr_low, high: hr_high}
analysis:
  sheet: meta_analyses
  outcomes:
    hr:
      label: Hazard ratio of death
      kind: reported_effect
      effect: hr
      low: hr_low
      high: hr_high
      scale: ratio
      measure_label: HR
      direction: lower_is_better
  subgroups:
    site: {label: Site, field: site}
  plan:
    - {outcome: hr}
    - {outcome: hr, subgroup: site}
"""

# A two-arm RCT review on arm rows: each trial's intervention and control arms (recurrences and
# totals, quality-of-life means and SDs) and an overall row with the hazard ratio the trial reported;
# the recurrence risk of each arm by treatment (a per-arm analysis).
RCT = """
name: rct_arms
title: Adjuvant drug X against placebo, randomised trials
vocabularies:
  arm_role:
    terms:
      - {value: intervention, aliases: [experimental, drug X arm]}
      - {value: control, aliases: [placebo arm, usual care]}
      - {value: overall, aliases: [all, total, comparison]}
  treatment:
    terms:
      - {value: drug X}
      - {value: placebo}
sheets:
  trials:
    key: [trial_id]
    fields:
      trial_id: {type: text, required: true}
      first_author: {type: text, required: true}
      year: {type: integer, min: 1980, max: current_year + 1}
      n_randomised: {type: integer, min: 1}
  arms:
    key: [trial_id, arm]
    parent: {sheet: trials, key: trial_id}
    fields:
      trial_id: {type: text, required: true}
      arm: {type: vocabulary, vocabulary: arm_role, required: true}
      treatment: {type: vocabulary, vocabulary: treatment}
      n: {type: integer, min: 1}
      recurrence: {type: integer, min: 0}
      qol_mean: {type: number, min: 0, max: 100}
      qol_sd: {type: number, min_exclusive: 0}
      hr: {type: number, min_exclusive: 0}
      hr_low: {type: number, min_exclusive: 0}
      hr_high: {type: number, min_exclusive: 0}
checks:
  arms:
    - {rule: events-exceed-total, events: [recurrence], totals: [n]}
analysis:
  sheet: arms
  cohort_field: arm
  overall_cohort: overall
  defaults: {measure: RR, method: REML}
  outcomes:
    recurrence:
      label: Recurrence
      kind: binary
      direction: lower_is_better
      arms: {sheet: arms, role_field: arm, pair_by: [trial_id], events: recurrence, total: n}
    qol:
      label: Quality of life (0-100)
      kind: continuous
      unit: points
      direction: higher_is_better
      arms: {sheet: arms, role_field: arm, pair_by: [trial_id], mean: qol_mean, sd: qol_sd, total: n}
    dfs:
      label: Disease-free survival
      kind: reported_effect
      effect: hr
      low: hr_low
      high: hr_high
      scale: ratio
      measure_label: HR
      direction: lower_is_better
      favours: {left: favours drug X, right: favours placebo}
    recurrence_risk:
      label: Recurrence risk per arm
      kind: proportion
      sheet: arms
      events: recurrence
      total: n
  subgroups:
    treatment: {label: Treatment, field: treatment}
  plan:
    - {outcome: recurrence}
    - {outcome: qol, measure: MD}
    - {outcome: qol, measure: SMD}
    - {outcome: dfs}
    - {outcome: recurrence_risk, subgroup: treatment, measure: PLO}
"""


def umbrella_form(path: Path, n: int = 15) -> Path:
    rng = random.Random(1)
    rows = [("review_id", "ma_id", "Study", "year", "site", "k_studies", "HR", "HR lower", "HR upper")]
    for i in range(1, n + 1):
        for j in (1, 2):
            hr = round(math.exp(rng.gauss(0.3, 0.2)), 2)
            se = rng.uniform(0.05, 0.3)
            rows.append((f"R{i:02d}", f"M{j}", f"Author{i} {2000 + i}", 2000 + i,
                         rng.choice(["breast", "colon", "lung", "prostate"]), rng.randint(3, 20), hr,
                         round(hr * math.exp(-1.96 * se), 2), round(hr * math.exp(1.96 * se), 2)))
    return _book(path, {"meta_analyses": rows})


def rct_form(path: Path, labels: tuple[str, str] = ("experimental", "placebo arm"), n: int = 12) -> Path:
    rng = random.Random(2)
    trials = [("trial_id", "first_author", "year", "n_randomised")]
    arms = [("trial_id", "arm", "treatment", "n", "recurrence", "qol_mean", "qol_sd", "hr", "hr_low", "hr_high")]
    for i in range(1, n + 1):
        n1, n2 = rng.randint(40, 200), rng.randint(40, 200)
        trials.append((f"T{i:02d}", f"Author{i}", 2000 + i, n1 + n2))
        arms.append((f"T{i:02d}", labels[0], "drug X", n1, rng.randint(5, n1 // 3), round(rng.uniform(55, 75), 1),
                     round(rng.uniform(10, 20), 1), None, None, None))
        arms.append((f"T{i:02d}", labels[1], "placebo", n2, rng.randint(5, n2 // 2), round(rng.uniform(50, 70), 1),
                     round(rng.uniform(10, 20), 1), None, None, None))
        hr = round(math.exp(rng.gauss(-0.2, 0.2)), 2)
        se = rng.uniform(0.1, 0.3)
        arms.append((f"T{i:02d}", "overall", None, n1 + n2, None, None, None, hr,
                     round(hr * math.exp(-1.96 * se), 2), round(hr * math.exp(1.96 * se), 2)))
    return _book(path, {"trials": trials, "arms": arms})


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _case(tmp: Path, name: str) -> tuple[list[str], Path]:
    """(schema arguments, form) of one review."""
    if name == "prrt_177lu":
        return [], FORMS / "example_reviewer_a.xlsx"
    if name == "bcg_vaccine":
        return [], FORMS / "example_bcg.xlsx"
    schema = tmp / f"{name}.yaml"
    text = {"umbrella": UMBRELLA, "rct_arms": RCT, "pain": PAIN_REVIEW}[name]
    schema.write_text(textwrap.dedent(text))
    form = {"umbrella": lambda: umbrella_form(tmp / "umbrella.xlsx"),
            "rct_arms": lambda: rct_form(tmp / "rct.xlsx"),
            "pain": lambda: _book(tmp / "pain.xlsx", PAIN_FORM)}[name]()
    return ["--schema", schema], form


CASES = ["prrt_177lu", "bcg_vaccine", "umbrella", "rct_arms", "pain"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for name in CASES:
        tmp = tmp_path_factory.mktemp(name)
        schema_args, form = _case(tmp, name)
        res = _cli("run", form, *schema_args, "-o", tmp / "out", "-q")
        assert res.exit_code in (0, 1), res.output
        out[name] = {"tmp": tmp, "out": tmp / "out", "schema_args": schema_args, "form": form, "result": res}
    return out


def _analyses(out: Path) -> dict:
    return {a["id"]: a for a in json.loads((out / "analysis.json").read_text())["analyses"]}


@pytest.mark.parametrize("name", CASES)
def test_every_schema_gets_the_whole_hand_off(runs, name):
    r = runs[name]
    out = r["out"]
    res = r["result"]
    assert "was not written" not in res.output and "was not written" not in (res.stderr or "")
    for f in ("clean.csv", "analysis.R", "datapackage.json", "analysis.json", "report.html"):
        assert (out / f).is_file(), f
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "was not written" not in page
    pkg = json.loads((out / "datapackage.json").read_text())
    paths = {res_["path"] for res_ in pkg["resources"]}
    assert "clean.csv" in paths and all((out / p).is_file() for p in paths)
    script = (out / "analysis.R").read_text()
    for f in ("clean.csv", *(p for p in paths if p != "clean.csv")):
        if f"read_clean(\"{f}\")" in script:
            assert (out / f).is_file()
    # every sheet the script reads is written
    import re

    for f in re.findall(r'read_clean\("([^"]+)"\)', script):
        assert (out / f).is_file(), f
    # a GX suite for every clean table written
    from curation import handoff
    from curation.schema import load_schema

    sch = load_schema(str(r["schema_args"][1]) if r["schema_args"] else name)
    for resource in pkg["resources"]:
        suite = handoff.gx_suite(sch, resource["name"] if resource["name"] in sch.sheets else None)
        assert suite["expectations"]
    try:  # the clean CSVs pass their own Data Package (types, constraints, keys)
        import frictionless
    except ImportError:
        return
    report = frictionless.validate(str(out / "datapackage.json"))
    assert report.valid, [f"{t.name}: {e.type}: {e.message}" for t in report.tasks for e in t.errors][:5]


def test_one_sheet_schema_clean_csv_and_rows_by_provenance(runs):
    """The reported failure: a one-sheet schema whose key the rows taken do not carry (ma_id)."""
    out = runs["umbrella"]["out"]
    head = (out / "clean.csv").read_text().splitlines()[0].split(",")
    assert head[:2] == ["review_id", "ma_id"] and "row" in head
    script = (out / "analysis.R").read_text()
    assert "rows_hr <- rows(\n  row = c(" in script
    a = _analyses(out)["hr"]
    assert a["k"] == 15 and a["effect_label"] == "HR"
    assert all(r.get("cohort") != "None" for r in a["studies_taken"] + a["studies_left_out"])


@pytest.mark.parametrize("name,outcomes", [
    ("prrt_177lu", ["dcr", "orr", "pfs", "os"]), ("bcg_vaccine", ["tb", "tb_reported"]), ("umbrella", ["hr"]),
    ("rct_arms", ["recurrence", "dfs"]), ("pain", ["pain"])])
def test_pool_on_the_runs_clean_csv_gives_the_runs_estimate(runs, name, outcomes, tmp_path):
    r = runs[name]
    ours = _analyses(r["out"])
    for outcome in outcomes:
        a = ours[outcome]
        j = tmp_path / f"{outcome}.json"
        res = _cli("pool", r["out"] / "clean.csv", "--outcome", outcome, *r["schema_args"], "--measure",
                   a["measure"] if a["measure"] != "GEN" else None, "--method", a["method"], "--json", j) \
            if a["measure"] not in ("GEN",) and a["kind"] != "median" else \
            _cli("pool", r["out"] / "clean.csv", "--outcome", outcome, *r["schema_args"], "--method", a["method"],
                 "--json", j)
        assert res.exit_code == 0, res.output
        got = json.loads(j.read_text())
        assert got["k"] == a["k"], outcome
        assert got["estimate"] == pytest.approx(a["estimate"], rel=1e-12), outcome
        assert got["ci_low"] == pytest.approx(a["ci_low"], rel=1e-12), outcome


def test_pool_names_the_file_an_outcome_needs(runs):
    """An outcome on the trials sheet (the pain review's HR): clean.csv holds the arms, so pool says which file."""
    r = runs["pain"]
    res = _cli("pool", r["out"] / "clean.csv", "--outcome", "relapse", *r["schema_args"])
    assert res.exit_code == 2 and "give clean_trials.csv" in res.output
    res = _cli("pool", r["out"] / "clean_trials.csv", "--outcome", "relapse", *r["schema_args"])
    assert res.exit_code == 0, res.output
    assert "HR 0." in res.output


def test_validate_clean_csv_pools_as_the_run(runs, tmp_path):
    r = runs["umbrella"]
    csv = tmp_path / "c.csv"
    res = _cli("validate", r["form"], *r["schema_args"], "--clean", csv, "-q")
    assert res.exit_code == 0, res.output
    j = tmp_path / "hr.json"
    assert _cli("pool", csv, "--outcome", "hr", *r["schema_args"], "--json", j).exit_code == 0
    assert json.loads(j.read_text())["estimate"] == pytest.approx(_analyses(r["out"])["hr"]["estimate"], rel=1e-12)


def test_per_arm_proportions_by_treatment(runs):
    from curation.pool import pool_proportions

    out = runs["rct_arms"]["out"]
    ours = _analyses(out)
    test = ours["recurrence_risk_by_treatment"]
    assert test["k"] == 24 and test["role"] == "subgroup_test"
    for g in ("drug X", "placebo"):
        sub = ours[f"recurrence_risk_by_treatment:{g}"]
        assert sub["k"] == 12
    taken = test["studies_taken"]
    ref = pool_proportions([r["events"] for r in taken], [r["total"] for r in taken], measure="PLO",
                           subgroups=[r["group"] for r in taken])
    assert test["estimate"] == pytest.approx(ref.display()["estimate"], rel=1e-12)
    assert test["q_between"] == pytest.approx(ref.q_between, rel=1e-9)
    # the overall rows are no candidates: they have no recurrence counts
    assert {r["reason"] for r in test["studies_left_out"]} == {"no events reported"}


def test_units_and_labels_come_from_the_schema(runs):
    """No months on a ratio or an SMD, in the terminal summary, the pool table and the page."""
    res = runs["rct_arms"]["result"]
    page = (runs["rct_arms"]["out"] / "report.html").read_text(encoding="utf-8")
    for text in (res.output, page):
        assert " mo " not in text and "months" not in text
    r = runs["rct_arms"]
    pool = _cli("pool", r["out"] / "clean.csv", "--outcome", "qol", "--measure", "SMD", *r["schema_args"])
    assert "SMD 0." in pool.output and " mo " not in pool.output and "months" not in pool.output
    pool = _cli("pool", r["out"] / "clean.csv", "--outcome", "dfs", *r["schema_args"])
    assert "HR 0." in pool.output and " mo " not in pool.output
    pool = _cli("pool", r["out"] / "clean.csv", "--outcome", "qol", "--measure", "MD", *r["schema_args"])
    assert "MD " in pool.output and "points" in pool.output


def test_report_columns_and_favours_read_right(runs):
    page = (runs["rct_arms"]["out"] / "report.html").read_text(encoding="utf-8")
    assert "<td>None</td>" not in page
    assert "favours drug Xfavours placebo" not in page.replace("\u2192", "").replace("\u2190", "")
    umb = (runs["umbrella"]["out"] / "report.html").read_text(encoding="utf-8")
    assert "<td>None</td>" not in umb and "None (" not in umb


def test_favours_labels_do_not_touch():
    """The two labels under the line of no effect are apart on the drawing, not only in the text."""
    from curation import plots, pool

    r = pool.pool_generic([math.log(0.8), math.log(0.9)], [0.1, 0.2], back_transform="exp")
    fig = plots.forest_plot(r, ["a", "b"], title="t", scale="ratio", unit="HR",
                            favours=("favours drug X", "favours placebo"))
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in fig.findobj(lambda o: hasattr(o, "get_text")
                                                        and "favours" in str(o.get_text()))]
    assert len(boxes) == 2
    left, right = sorted(boxes, key=lambda b: b.x0)
    assert right.x0 - left.x1 >= 6  # at least 6 pixels apart


def test_funnel_axis_names_the_scale():
    from curation.plots import funnel_axis_label

    assert funnel_axis_label("RR") == "Log RR"
    assert funnel_axis_label("GEN", "HR", ratio=True) == "Log HR"
    assert funnel_axis_label("SMD") == "SMD (Hedges' g)"
    assert funnel_axis_label("PLO") == "Logit proportion"
    assert funnel_axis_label("GEN", None, unit="months") == "Median (months)"
    assert funnel_axis_label("MD", unit="points") == "Mean difference (points)"


def test_arm_analyses_that_pool_nothing_say_why(tmp_path):
    """Arm labels the schema does not pair: each arm analysis pools nothing, and a warning names the
    labels found against those expected."""
    schema = tmp_path / "rct.yaml"
    schema.write_text(textwrap.dedent(RCT))
    form = rct_form(tmp_path / "bad.xlsx", labels=("Active", "Sham"))
    out = tmp_path / "out"
    res = _cli("run", form, "--schema", schema, "-o", out, "-q")
    assert res.exit_code == 1
    findings = json.loads((out / "findings.json").read_text())["findings"]
    empty = [f for f in findings if f["rule"] == "analysis-pools-nothing"]
    ids = {f["message"].split()[1] for f in empty}
    assert {"recurrence", "qol", "recurrence_risk_by_treatment"} <= ids
    arm = next(f for f in empty if f["message"].startswith("analysis recurrence "))
    assert arm["severity"] == "warning" and "'Active', 'Sham'" in arm["message"]
    assert "'intervention' and 'control'" in arm["message"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "analysis-pools-nothing" in page
    # the good form: no such warning
    good = _cli("run", rct_form(tmp_path / "good.xlsx"), "--schema", schema, "-o", tmp_path / "o2", "-q")
    assert "analysis-pools-nothing" not in (tmp_path / "o2" / "findings.json").read_text()
    assert good.exit_code == 0


def test_a_hand_off_file_that_fails_is_said_on_stderr(tmp_path, monkeypatch):
    from curation import handoff

    def broken(*a, **k):
        raise ValueError("cannot tell the rows")

    monkeypatch.setattr(handoff, "analysis_r_script", broken)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(FORMS / "example_bcg.xlsx"), "-o", str(out), "-q"])
    assert res.exit_code == 1
    assert "curate: error: analysis.R was not written (ValueError: cannot tell the rows)" in res.stderr
    assert not (out / "analysis.R").exists() and (out / "clean.csv").is_file()


def _close(got, ref, rtol, atol) -> bool:
    if ref is None or (isinstance(ref, float) and math.isnan(ref)):
        return got is None or (isinstance(got, float) and math.isnan(got))
    if got is None or (isinstance(got, float) and math.isnan(got)):
        return False
    return abs(got - ref) <= rtol * abs(ref) + atol


@pytest.fixture(scope="module")
def r_runs(runs):
    """Every case's analysis.R, run where `curate run` wrote it, in one R process (R starts once)."""
    if shutil.which("Rscript") is None:
        pytest.skip("needs Rscript with metafor")
    dirs = [str(runs[name]["out"]) for name in CASES]
    driver = "\n".join(
        ["for (d in c(" + ", ".join(json.dumps(d) for d in dirs) + ")) {",
         "  setwd(d)",
         "  source(\"analysis.R\", local = new.env())",
         "}"])
    proc = subprocess.run(["Rscript", "-e", driver], capture_output=True, text=True, timeout=900)
    if "there is no package called" in proc.stderr:
        pytest.skip("R without metafor/lme4: " + proc.stderr.strip().splitlines()[-1])
    return proc


@pytest.mark.rscript
@pytest.mark.parametrize("name", CASES)
def test_analysis_r_reproduces_every_analysis(runs, r_runs, name):
    """analysis.R gives every figure of analysis.json (1e-6; 1e-3 for the GLMM)."""
    import pandas as pd

    assert r_runs.returncode == 0, r_runs.stderr
    out = runs[name]["out"]
    res = pd.read_csv(out / "metafor_results.csv")
    ours = _analyses(out)
    assert list(res["analysis"]) == list(ours)
    bad = []
    for row in res.to_dict("records"):
        ref = ours[row["analysis"]]
        glmm = ref["method"] == "GLMM"
        rtol, atol = (1e-3, 1e-6) if glmm else (1e-6, 1e-10)
        if ref.get("estimate") is not None:
            assert int(row["k"]) == ref["k"], row["analysis"]
        for col in ("estimate", "ci_low", "ci_high", "tau2", "i2", "q", "q_between", "p_between"):
            got = None if pd.isna(row[col]) else float(row[col])
            if not _close(got, ref.get(col), rtol, atol):
                bad.append(f"{row['analysis']} {col}: metafor {got!r}, curation {ref.get(col)!r}")
    assert bad == []


def test_a_workbook_of_another_review_says_which_schema_fits(tmp_path):
    """schema-fits-poorly: the BCG form checked against the PRRT schema names bcg_vaccine by the fields it
    matches; the PRRT example fits its own schema and gets no such warning; a workbook no shipped schema
    fits is told to write one."""
    from curation.validation import validate

    res = validate(FORMS / "example_bcg.xlsx", "prrt_177lu")
    fit = [f for f in res.finding_list if f.rule == "schema-fits-poorly"]
    assert len(fit) == 1 and fit[0].severity == "warning"
    assert "match 3 of the 44 fields of schema 'prrt_177lu'" in fit[0].message
    assert "bcg_vaccine (17 of 17 fields, 2 of 2 sheets): give --schema bcg_vaccine" in fit[0].message
    good = validate(FORMS / "example_reviewer_a.xlsx", "prrt_177lu")
    assert not [f for f in good.finding_list if f.rule == "schema-fits-poorly"]
    team = validate(FORMS / "example_team_workbook.xlsx", "prrt_177lu")
    assert not [f for f in team.finding_list if f.rule == "schema-fits-poorly"]
    # the umbrella review's workbook, without its schema: no sheet fits the default one at all
    res = _cli("validate", umbrella_form(tmp_path / "u.xlsx"), "-q")
    assert res.exit_code == 2
    assert "closest shipped schemas" in res.output or "write a schema for this review" in res.output

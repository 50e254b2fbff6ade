"""Exclusion follows the data: an error keeps its record out of the analyses that use a field it
involves, and only those; identity and eligibility errors keep the study out of all its analyses;
the clean dataset says per row which analyses it may enter, and analysis.R takes the same rows."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import FIELDS, good_outcome, good_study, write_form
from curation.findings import Finding
from curation.schema import load_schema
from curation.selection import analysis_uses, is_record_scope, select_records, use_for
from curation.validation import validate
from test_comparative import DAT_BCG, TWO_ARM, _bcg_form
from test_rules import baseline

PRRT = load_schema("prrt_177lu")
EXAMPLE = Path(__file__).resolve().parents[1] / "extraction_forms" / "example_reviewer_a.xlsx"


# ---------------------------------------------------------------------------------------------
# An oracle of what an analysis uses, read from the schema's outcome specs by another road than
# curation.selection: every field name the outcome's spec holds (its label, kind, unit and the
# p-value of a reported effect aside), the subgroup's field, the sheet's key and link.
# ---------------------------------------------------------------------------------------------

_NOT_FIELDS = {"label", "kind", "unit", "direction", "favours", "scale", "measure_label", "p", "sheet"}


def _names(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _names(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in ("sheet", "intervention", "control"):
                yield from _names(v)


def oracle(schema) -> dict[str, tuple[str, set[tuple[str, str]]]]:
    """``{in_<key> column: (sheet it reads, {(sheet, field) it uses})}``."""
    out = {}
    root = schema.root_sheet
    for entry in schema.analysis.plan:
        oc = schema.analysis.outcomes[entry.outcome]
        spec = oc.model_dump()
        sheet = spec["arms"]["sheet"] if spec.get("arms") else (spec.get("sheet") or schema.analysis_sheet)
        names = set()
        for k, v in spec.items():
            if k not in _NOT_FIELDS and v is not None:
                names.update(_names(v))
        sh = schema.sheets[sheet]
        names.update(sh.key)
        if sh.parent is not None:
            names.add(sh.parent.key)
        if oc.kind in ("proportion", "median") and schema.analysis.cohort_field in sh.fields:
            names.add(schema.analysis.cohort_field)
        key = entry.outcome
        if entry.subgroup:
            names.add(schema.analysis.subgroups[entry.subgroup].field)
            key += f"_by_{entry.subgroup}"
        used = set()
        for n in names:
            where = sheet if n in sh.fields else root if n in schema.sheets[root].fields else sheet
            used.add((where, n))
            unit = schema.sheets[where].fields[n].unit_field if n in schema.sheets[where].fields else None
            if unit:
                used.add((where, unit))
        out["in_" + key] = (sheet, used)
    return out


def test_oracle_agrees_with_the_schema_walk():
    for schema in (PRRT, load_schema("bcg_vaccine")):
        got = {u.column: (u.sheet, {f for f in u.fields if f[1] != schema.sheets[schema.root_sheet].key[0]
                                    or f[0] != schema.root_sheet}) for u in analysis_uses(schema)}
        want = oracle(schema)
        assert set(got) == set(want)
        for col, (sheet, used) in want.items():
            assert got[col][0] == sheet and got[col][1] == used, col


def test_what_each_analysis_uses():
    uses = {u.key: u for u in analysis_uses(PRRT)}
    assert uses["orr"].uses("outcomes", "cr") and uses["orr"].uses("outcomes", "orr_n")
    assert not uses["orr"].uses("outcomes", "sd") and uses["dcr"].uses("outcomes", "sd")
    assert uses["orr_by_grade"].uses("outcomes", "grade") and not uses["orr"].uses("outcomes", "grade")
    assert uses["pfs"].uses("outcomes", "pfs_unit") and not uses["pfs"].uses("outcomes", "os_median")
    assert uses["ae"].sheet == "adverse_events" and uses["ae"].uses("adverse_events", "ae_term")
    assert not any(u.uses("outcomes", "orr_pct") or u.uses("studies", "year") for u in uses.values())
    assert use_for(PRRT, "ae:AML").key == "ae" and use_for(PRRT, "dcr", "grade").column == "in_dcr_by_grade"


# ---------------------------------------------------------------------------------------------
# The property: one error planted in a random field of a random record
# ---------------------------------------------------------------------------------------------


def _plant(schema, tables, sheet: str, i: int, field: str, rule: str = "out-of-range") -> Finding:
    t = tables[sheet]
    file = str(t.data["_file"].iat[i])
    return Finding(file, t.title(file), int(t.data["_row"].iat[i]), "A", field, t.study_ids[i], rule, "error",
                   f"planted error in {field}", None, sheet)


def _check_one_planted_error(schema, result, sheet: str, i: int, field: str) -> None:
    """Plant one field-scope error; exactly the analyses using that field lose that record."""
    tables = result.tables
    base = select_records(schema, tables, list(result.finding_list))
    planted = _plant(schema, tables, sheet, i, field)
    assert not is_record_scope(schema, planted) or field in schema.sheets[sheet].key
    after = select_records(schema, tables, [*result.finding_list, planted])
    want = oracle(schema)
    root = schema.root_sheet
    key = tables[sheet].study_ids[i]
    for j, u in enumerate(after.uses):
        a_sheet, used = want[u.column]
        for s, t in tables.items():
            if s != a_sheet:
                continue
            for k in range(len(t)):
                same_record = (s == sheet and k == i)
                same_study = sheet == root and s != root and key is not None and t.study_ids[k] == key
                hit = (same_record or same_study) and (((sheet, field) in used) or is_record_scope(schema, planted))
                was, now = bool(base.eligible[s][k, j]), bool(after.eligible[s][k, j])
                assert now == (was and not hit), (u.key, s, k, sheet, i, field)


@pytest.fixture(scope="module")
def example():
    return validate(EXAMPLE, PRRT)


def _fields(schema, sheet):
    spec = schema.sheets[sheet]
    ident = set(spec.key) | ({spec.parent.key} if spec.parent is not None else set())
    return sorted(f for f in spec.fields if f not in ident)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_one_error_in_a_random_field_of_the_example(example, data):
    sheet = data.draw(st.sampled_from(sorted(example.tables)))
    i = data.draw(st.integers(0, len(example.tables[sheet]) - 1))
    field = data.draw(st.sampled_from(_fields(PRRT, sheet)))
    _check_one_planted_error(PRRT, example, sheet, i, field)


@pytest.fixture(scope="module")
def two_arm_result(tmp_path_factory):
    d = tmp_path_factory.mktemp("sel2")
    p = d / "s.yaml"
    p.write_text(TWO_ARM)
    schema = load_schema(p)
    arms = []
    for t, _, _, tp, tn, cp, cn, _, _ in DAT_BCG[:6]:
        arms.append((f"T{t:02d}", "BCG vs none", "BCG", "vaccine", tp, tp + tn))
        arms.append((f"T{t:02d}", "BCG vs none", "none", "placebo", cp, cp + cn))
    return schema, validate(_bcg_form(d / "f.xlsx", arms), schema), d


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_one_error_in_a_random_field_of_a_comparative_review(two_arm_result, data):
    schema, result, _ = two_arm_result
    assert result.exit_code() == 0
    sheet = data.draw(st.sampled_from(sorted(result.tables)))
    i = data.draw(st.integers(0, len(result.tables[sheet]) - 1))
    field = data.draw(st.sampled_from(_fields(schema, sheet)))
    _check_one_planted_error(schema, result, sheet, i, field)


# ---------------------------------------------------------------------------------------------
# End to end: errors typed into a workbook
# ---------------------------------------------------------------------------------------------


def _with_cells(path: Path, changes: dict[tuple[str, int, str], object]) -> Path:
    wb = openpyxl.load_workbook(path)
    for (sheet, i, field), value in changes.items():
        wb[sheet].cell(i + 2, FIELDS[sheet].index(field) + 1).value = value
    wb.save(path)
    return path


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.integers(0, 3), field=st.sampled_from(["n_evaluable", "cr", "pr", "sd", "orr_n", "pfs_median",
                                                      "os_ci_high", "ki67_max", "followup_median_months",
                                                      "grade", "primary_site"]))
def test_a_typo_typed_in_a_cell_costs_only_the_analyses_using_it(tmp_path_factory, row, field):
    path = write_form(tmp_path_factory.mktemp("typo") / "f.xlsx", **baseline())
    clean = validate(path, PRRT)
    assert clean.exit_code() == 0
    res = validate(_with_cells(path, {("outcomes", row, field): "see text" if field not in ("grade", "primary_site")
                                      else "G9"}), PRRT)
    errs = [f for f in res.finding_list if f.severity == "error"]
    assert errs and {f.field for f in errs} == {field}, [f.message for f in errs]
    frame = res.clean_tables["outcomes"]
    want = oracle(PRRT)
    assert len(frame) == len(clean.clean_tables["outcomes"])  # restricted, never dropped: others use it
    for col in (c for c in frame if c.startswith("in_")):
        lost = ("outcomes", field) in want[col][1]
        assert bool(frame[col].iat[row]) == (not lost), (col, field)
        assert frame[col].drop(index=row).all(), col
    lost_any = any(("outcomes", field) in used for _, used in want.values())
    assert res.summary.rows_restricted == int(lost_any) and res.summary.rows_excluded == 0


def test_identity_and_eligibility_errors_take_the_study_out_of_everything(tmp_path):
    f = baseline()
    f["studies"][1]["response_criteria"] = "PERCIST"  # criteria not eligible for the review (studies!I3)
    f["outcomes"].append(good_outcome(study_id="S01"))  # a second S01 overall row: duplicate key
    res = validate(write_form(tmp_path / "f.xlsx", **f), PRRT)
    rules = {f.rule for f in res.finding_list if f.severity == "error"}
    assert {"ineligible-term", "duplicate-key", "study-excluded"} <= rules, rules
    frame = res.clean_tables["outcomes"]
    assert "S02" not in set(frame["study_id"])  # its study is not eligible: every row out of everything
    dup = [f.row for f in res.finding_list if f.rule == "duplicate-key"]
    rows = list(res.tables["outcomes"].data["_row"])
    cols = res.selection.over("outcomes", PRRT)
    assert dup and not res.selection.eligible["outcomes"][[rows.index(r) for r in dup]][:, cols].any()
    assert res.summary.rows_excluded == res.summary.rows_read - res.summary.rows_passed >= 1 + len(dup)
    msgs = [f.message for f in res.finding_list if f.rule == "study-excluded"]
    assert msgs and all("ineligible-term at studies!" in m and m.startswith("row excluded") for m in msgs)


def test_a_study_row_error_reaches_only_the_analyses_using_its_field(two_arm_result, tmp_path):
    schema, _, _ = two_arm_result
    path = _bcg_form(tmp_path / "g.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["studies"].cell(3, 4).value = "quasi-random"  # T02's allocation: not a term (a subgroup field)
    wb.save(path)
    res = validate(path, schema)
    comp = res.clean_tables["comparisons"]
    t02 = comp["study_id"] == "T02"
    assert not comp.loc[t02, "in_tb_by_allocation"].any() and comp.loc[t02, "in_tb"].all()
    extra = [f for f in res.finding_list if f.rule == "study-excluded"]
    assert len(extra) == 1 and "kept out of tb_by_allocation" in extra[0].message
    assert extra[0].study_id == "T02" and "unknown-term at studies!D3" in extra[0].message
    from curation.analyses import run_plan

    got = {a.id: a for a in run_plan(schema, res.candidate_tables, res.exclusion_reasons)}
    assert got["tb"].k == 13 and got["tb_by_allocation"].k == 12
    left = [r for r in got["tb_by_allocation"].left_out if r.study_id == "T02"]
    assert len(left) == 1 and left[0].excluded_by == "unknown-term" and "studies!D3" in left[0].reason


def test_rows_that_were_never_candidates_are_not_left_out(two_arm_result):
    schema, result, _ = two_arm_result
    from curation.analyses import run_plan

    got = {a.id: a for a in run_plan(schema, result.candidate_tables, result.exclusion_reasons)}
    # 6 trials have arm rows, 7 have none: those 7 were never candidates for the arm analysis
    assert got["tb_arms"].k == 6 and got["tb_arms"].left_out == ()


def test_arm_kept_out_names_its_partner(two_arm_result, tmp_path):
    schema, _, d = two_arm_result
    arms = []
    for t, _, _, tp, tn, cp, cn, _, _ in DAT_BCG[:4]:
        arms.append((f"T{t:02d}", "BCG vs none", "BCG", "vaccine", tp, tp + tn))
        arms.append((f"T{t:02d}", "BCG vs none", "none", "placebo", cp, "many" if t == 2 else cp + cn))
    res = validate(_bcg_form(tmp_path / "h.xlsx", arms), schema)
    from curation.analyses import run_plan

    got = {a.id: a for a in run_plan(schema, res.candidate_tables, res.exclusion_reasons)}
    assert got["tb_arms"].k == 3 and got["tb"].k == 13  # the comparison rows hold T02's counts intact
    why = {(r.study_id, r.row): r for r in got["tb_arms"].left_out}
    partner = [r for r in why.values() if r.study_id == "T02" and "is kept out, so no comparison" in r.reason]
    assert partner and partner[0].excluded_by == "invalid-number"


def test_summary_counts_are_consistent(example):
    s = example.summary
    assert s.rows_read == s.rows_passed + s.rows_excluded
    assert s.rows_restricted <= s.rows_passed
    for sheet, d in s.by_sheet.items():
        assert d["read"] == d["passed"] + d["excluded"] and d["restricted"] <= d["passed"]
    assert sum(d["restricted"] for d in s.by_sheet.values()) == s.rows_restricted


def test_no_change_is_said_when_the_estimate_prints_the_same():
    from types import SimpleNamespace

    from curation.analyses import Estimate
    from curation.run import _influence_entry

    base = SimpleNamespace(kind="proportion", label="ORR")
    row = SimpleNamespace(file="f", sheet="outcomes", row=5, study_id="S9", cohort="overall", label="S9")
    entry = _influence_entry(PRRT, base, "orr", "ORR", row, [], Estimate(0.30001, 0.2, 0.4, 894),
                             Estimate(0.30002, 0.2, 0.4, 895), 895, {})
    assert "would not change at the precision shown (30.0%, k = 894 -> 895)" in entry.sentence
    assert entry.impact == 0 and entry.delta == 0


def test_an_analysis_emptied_by_errors_is_the_top_item(two_arm_result, tmp_path):
    schema, _, _ = two_arm_result
    arms = []
    for t, _, _, tp, tn, cp, cn, _, _ in DAT_BCG[:3]:
        arms.append((f"T{t:02d}", "BCG vs none", "BCG", "vaccine", tp, tp + tn))
        arms.append((f"T{t:02d}", "BCG vs none", "none", "placebo", cp, "many"))  # every control total unreadable
    from curation.report import emptied_analyses
    from curation.run import run_job

    run = run_job(_bcg_form(tmp_path / "e.xlsx", arms), schema)
    top = emptied_analyses(run.primary())
    assert [e["id"] for e in top] == ["tb_arms"] and top[0]["n"] >= 3 and top[0]["rules"] == ["invalid-number"]


# ---------------------------------------------------------------------------------------------
# The clean CSV carries the selection; analysis.R and `curate pool` reproduce it
# ---------------------------------------------------------------------------------------------


def _restricted_form(tmp_path: Path) -> Path:
    f = baseline()
    f["studies"].append(good_study(study_id="S03", first_author="Kwekkeboom", year=2008, n_enrolled=60,
                                   doi="10.1200/JCO.2007.15.2553", pmid=18445841))
    f["outcomes"].append(good_outcome(study_id="S03", n_evaluable=50, cr=2, pr=10, sd="twenty", pd=10,
                                      orr_pct=24.0, dcr_pct=None, pfs_median=24, pfs_ci_low=18, pfs_ci_high=30))
    return write_form(tmp_path / "r.xlsx", **f)


def test_pool_from_the_clean_csv_takes_the_same_rows(tmp_path):
    from click.testing import CliRunner

    from curation.cli import main

    form = _restricted_form(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(form), "-o", str(out), "-q"])
    assert res.exit_code == 1, res.output
    ours = {a["id"]: a for a in json.loads((out / "analysis.json").read_text())["analyses"]}
    assert "S03" in [r["study_id"] for r in ours["orr"]["studies_taken"]]
    assert "S03" not in [r["study_id"] for r in ours["dcr"]["studies_taken"]]
    s03 = [r for r in ours["dcr"]["studies_left_out"] if r["study_id"] == "S03"]
    assert s03 and s03[0]["excluded_by"] == "invalid-number" and "outcomes!I6" in s03[0]["reason"]
    import csv

    rows = list(csv.DictReader((out / "clean.csv").open(encoding="utf-8")))
    s03_row = next(r for r in rows if r["study_id"] == "S03")
    assert s03_row["in_orr"] == "True" and s03_row["in_dcr"] == "False"
    from curation.analyses import pool_input

    for oc in ("orr", "dcr"):
        analyses, _ = pool_input(out / "clean.csv", oc, schema=PRRT)
        assert analyses[0].k == ours[oc]["k"] and analyses[0].result.estimate == pytest.approx(
            ours[oc]["estimate"], rel=1e-12)


@pytest.mark.rscript
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="needs Rscript with metafor")
def test_analysis_r_reproduces_the_selection(tmp_path):
    from click.testing import CliRunner

    from curation.cli import main

    form = _restricted_form(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(form), "-o", str(out), "-q"])
    assert res.exit_code == 1, res.output
    script = (out / "analysis.R").read_text()
    assert 'eligible(clean, "in_dcr")' in script and 'eligible(clean, "in_orr")' in script
    proc = subprocess.run(["Rscript", "analysis.R"], cwd=out, capture_output=True, text=True, timeout=600)
    if "there is no package called" in proc.stderr:
        pytest.skip("R without metafor: " + proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    got = pd.read_csv(out / "metafor_results.csv").set_index("analysis")
    ours = {a["id"]: a for a in json.loads((out / "analysis.json").read_text())["analyses"]}
    for aid in ("orr", "dcr", "pfs"):
        assert got.loc[aid, "k"] == ours[aid]["k"]
        assert got.loc[aid, "estimate"] == pytest.approx(ours[aid]["estimate"], rel=1e-6)
    # the script refuses a row the clean dataset keeps out: S03 typed into DCR's rows
    broken = script.replace('rows_dcr <- rows(\n  study_id = c("S01", "S02"', 'rows_dcr <- rows(\n  study_id = c("S01", "S03"')
    if broken != script:
        (out / "analysis.R").write_text(broken)
        proc = subprocess.run(["Rscript", "analysis.R"], cwd=out, capture_output=True, text=True, timeout=600)
        assert "dcr: not estimable: not in the clean dataset" in proc.stderr


def test_a_subgroup_analysis_lists_only_rows_it_could_take(tmp_path):
    """An error on a row whose grade is 'mixed' (in no group of the analysis by grade): the overall
    analyses list it as kept out, the analysis by grade does not (it would not take it anyway)."""
    from curation.analyses import run_plan

    f = baseline()
    assert f["outcomes"][1]["grade"] == "mixed"
    f["outcomes"][1]["n_evaluable"] = "about 440"
    res = validate(write_form(tmp_path / "f.xlsx", **f), PRRT)
    got = {a.id: a for a in run_plan(PRRT, res.candidate_tables, res.exclusion_reasons)}
    s02 = [r for r in got["orr"].left_out if r.study_id == "S02" and r.excluded_by]
    assert len(s02) == 1 and s02[0].excluded_by == "invalid-number" and s02[0].cohort == "overall"
    assert not [r for r in got["orr_by_grade"].left_out if r.excluded_by]
    assert "S02" in [r.study_id for r in got["pfs"].taken]  # PFS does not use n_evaluable

"""The comparative example (extraction_forms/example_bcg.xlsx, schema bcg_vaccine): built from dat.bcg's
counts, validated exactly as its README block says, every planted slip found at its row, the form's
recorded schema used, and `curate run` pooling the passing trials as metafor does on the same trials."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import curation.pool as pool_module
from curation.cli import main
from curation.reading import recorded_schema
from curation.validation import validate

ROOT = Path(__file__).resolve().parent.parent
FORMS = ROOT / "extraction_forms"
FORM = FORMS / "example_bcg.xlsx"
REFERENCE = json.loads((Path(__file__).parent / "reference" / "bcg_example_reference.json").read_text())


def _builder():
    spec = importlib.util.spec_from_file_location("build_bcg_example", FORMS / "build_bcg_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


builder = _builder()


@pytest.fixture(scope="module")
def result():
    return validate(FORM, builder.SCHEMA)


def test_form_validates_exactly_as_the_readme_says(result):
    text = (FORMS / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```findings example_bcg.xlsx\n(.*?)```", text, re.S).group(1)
    expected = [line.strip() for line in block.splitlines() if line.strip()]
    assert expected and [f"{f.rule} {f.severity} {f.cell or f.sheet}" for f in result.finding_list] == expected


def test_every_slip_is_found_on_its_row_and_nothing_else(result):
    rows = {f"T{t[0]:02d}": i + 2 for i, t in enumerate(builder.DAT_BCG)}
    flagged = {}
    for f in result.finding_list:
        assert f.sheet == "comparisons"
        flagged.setdefault(f.row, set()).add(f.severity)
    slipped = {rows[sid] for (_, sid, _) in builder.SLIPS}
    assert set(flagged) == slipped  # the formatting variety (p < 0.001, NS, aliases) gives no finding
    assert flagged[rows["T10"]] == {"warning"}
    # an error keeps its row out of the analyses that use a field it involves, and only those: every
    # trial stays in the clean dataset, the count slips (T02, T04) are out of the analyses of counts
    # and the reported-RR slip (T06) out of the analysis of reported risk ratios
    clean = result.clean_tables["comparisons"]
    assert sorted(clean["study_id"]) == sorted(rows)
    out_of = {c: sorted(clean.loc[~clean[c].astype(bool), "study_id"]) for c in clean if c.startswith("in_")}
    assert out_of["in_tb"] == out_of["in_tb_by_allocation"] == ["T02", "T04"]
    assert sorted(clean.loc[clean["in_tb"].astype(bool), "study_id"]) == REFERENCE["trials"]
    assert "T06" in out_of["in_tb_reported"] and not {"T02", "T04"} & set(out_of["in_tb_reported"])
    assert result.summary.rows_excluded == 0 and result.summary.rows_restricted == len(
        set(out_of["in_tb"]) | set(out_of["in_tb_reported"]))


def test_committed_form_is_what_the_script_builds(tmp_path):
    path = builder.build(tmp_path)
    import openpyxl

    fresh, committed = openpyxl.load_workbook(path), openpyxl.load_workbook(FORM)
    for ws in committed.worksheets:
        assert [[c.value for c in r] for r in ws.iter_rows()] == \
            [[c.value for c in r] for r in fresh[ws.title].iter_rows()], ws.title


def test_form_records_its_schema(tmp_path):
    assert recorded_schema(FORM) == "bcg_vaccine"
    res = CliRunner().invoke(main, ["validate", str(FORM), "-q"])  # no --schema: the recorded one
    assert res.exit_code == 1 and "internal error" not in res.output
    assert "4 error(s), 3 warning(s)" in " ".join(res.output.split())
    res = CliRunner().invoke(main, ["validate", str(FORM), "-q", "--schema", "prrt_177lu"])
    assert "was made for schema 'bcg_vaccine'; it is checked against 'prrt_177lu'" in " ".join(res.output.split())


@pytest.mark.skipif(not hasattr(pool_module, "pool_binary"), reason="pool_binary not in curation.pool yet")
def _involves_cited_cells() -> bool:
    """Whether the checks name every field they involve (``Finding.involves``)."""
    from curation.findings import Finding

    return any(f.involves for f in validate(FORM, builder.SCHEMA).finding_list if f.rule == "p-value-contradicts-ci") \
        if "involves" in Finding.__dataclass_fields__ else False


def test_run_pools_the_passing_trials_as_metafor(tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(FORM), "-o", str(out), "-q"])
    assert res.exit_code == 1, res.output  # errors found, the run completed
    a = {x["id"]: x for x in json.loads((out / "analysis.json").read_text())["analyses"]}
    assert [r["study_id"] for r in a["tb"]["studies_taken"]] == REFERENCE["trials"]
    pairs = {"tb": "RR-REML", "tb@RR-DL": "RR-DL", "tb@RR-REML-HK": "RR-REML-HK", "tb@RR-MH": "RR-MH",
             "tb_or_reml": "OR-REML", "tb@OR-PETO": "OR-PETO", "tb_reported": "reported-REML"}
    reported = [r["study_id"] for r in a["tb_reported"]["studies_taken"]]
    left = {r["study_id"]: r for r in a["tb_reported"]["studies_left_out"]}
    assert "effect-outside-ci" in left["T06"]["excluded_by"] and "comparisons!H7" in left["T06"]["reason"]
    if "T08" in reported:  # T08's p-value error names only its own cell until the rules name every cell they cite
        assert not _involves_cited_cells()
        del pairs["tb_reported"]
    else:
        assert reported == REFERENCE["reported_trials"]
    for ours, ref in pairs.items():
        for key in ("estimate", "ci_low", "ci_high", "i2", "q"):
            assert a[ours][key] == pytest.approx(REFERENCE[ref][key], rel=1e-6), (ours, key)
        if not ours.endswith(("MH", "PETO")):
            for key in ("tau2", "pi_low", "pi_high"):
                assert a[ours][key] == pytest.approx(REFERENCE[ref][key], rel=1e-6, abs=1e-12), (ours, key)
    for group, ref in REFERENCE["RR-REML-by-allocation"].items():
        assert a[f"tb_by_allocation:{group}"]["estimate"] == pytest.approx(ref["estimate"], rel=1e-6)
    assert a["tb"]["measure"] == "RR" and a["tb"]["scale"] == "log" and a["tb"]["favours"] == [
        "favours BCG", "favours no vaccine"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "RR 0.58 (95% CI 0.41-0.80)" in page and "months" not in page
    svg = (out / "plots" / "tb.svg").read_text(encoding="utf-8")
    assert "favours BCG" in svg and "log scale" in svg


@pytest.mark.rscript
@pytest.mark.skipif(not hasattr(pool_module, "pool_binary"), reason="pool_binary not in curation.pool yet")
@pytest.mark.skipif(__import__("shutil").which("Rscript") is None, reason="needs Rscript with metafor")
def test_analysis_r_reproduces_every_comparative_analysis(tmp_path):
    """analysis.R of the example (binary RR/OR with REML, DL, HK, MH, Peto; subgroups; reported RRs) refits
    every analysis with metafor: each figure within 1e-6 (the contract's tolerance)."""
    from test_handoff import _run_r_and_compare

    from curation.analyses import run_plan

    result = validate(FORM, builder.SCHEMA)
    analyses = run_plan(result.schema, result.clean_tables)
    assert {a.kind for a in analyses} == {"binary", "reported_effect"}
    assert {a.settings.method for a in analyses} >= {"REML", "DL", "MH", "PETO"}
    worst = _run_r_and_compare(tmp_path, result, analyses)
    assert worst and all(v <= 1e-6 for v in worst.values()), worst

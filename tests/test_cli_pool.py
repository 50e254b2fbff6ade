"""`curate pool` end to end: from a form, from a clean CSV, subgroups, adverse events, errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from builders import write_form
from curation.cli import main
from curation.pool import pool_proportions
from test_rules import baseline


@pytest.fixture()
def form(tmp_path):
    f = baseline()
    return write_form(tmp_path / "f.xlsx", f["studies"], f["outcomes"], f["adverse_events"])


def invoke(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res


def test_pool_from_form_and_from_clean_csv_agree(form, tmp_path):
    out_form, out_csv, clean = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "clean.csv"
    assert invoke("validate", form, "--clean", clean).exit_code == 0
    r1 = invoke("pool", form, "--outcome", "dcr", "--json", out_form)
    r2 = invoke("pool", clean, "--outcome", "dcr", "--json", out_csv)
    assert r1.exit_code == 0 == r2.exit_code, r1.output + r2.output
    a, b = json.loads(out_form.read_text()), json.loads(out_csv.read_text())
    # the overall cohorts of S01 (88/101) and S02 (373/443)
    ref = pool_proportions([88, 373], [101, 443])
    assert a["estimate"] == pytest.approx(ref.estimate, rel=1e-12) == b["estimate"]
    assert (a["measure"], a["method"], a["k"]) == ("PLO", "REML", 2)
    assert [x["id"] for x in a["analyses"]][:2] == ["dcr", "dcr@GLMM"]
    assert "Disease control" in r1.output and "%" in r1.output


def test_pool_settings_subgroups_and_forest(form, tmp_path):
    out = tmp_path / "p.json"
    svg = tmp_path / "forest.svg"
    res = invoke("pool", form, "--outcome", "orr", "--measure", "PFT", "--method", "DL", "--hk",
                 "--subgroup", "grade", "--json", out, "--forest", svg)
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert (d["measure"], d["method"], d["hk"], d["role"]) == ("PFT", "DL", True, "subgroup_test")
    assert {x["group"] for x in d["analyses"] if x["role"] == "subgroup"} == {"G1-2", "G3"}
    assert d["df_between"] == 1 and 0 <= d["p_between"] <= 1
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


def test_pool_adverse_event_from_run_output(form, tmp_path):
    out = tmp_path / "run"
    assert invoke("run", form, "-o", out, "-q").exit_code == 0
    res = invoke("pool", out / "clean_adverse_events.csv", "--outcome", "ae:MDS", "--json", tmp_path / "ae.json")
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "ae.json").read_text())
    assert d["k"] == 1 and d["estimate"] == pytest.approx(pool_proportions([4], [610]).estimate, rel=1e-12)


def test_pool_refuses_an_unknown_outcome(form):
    res = invoke("pool", form, "--outcome", "response")
    assert res.exit_code == 2 and "unknown outcome" in res.stderr and "Traceback" not in res.output

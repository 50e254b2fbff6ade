"""`curate run` at scale, on small forms with the budgets made small: leave-one-out and "what
matters most" bounded with a note (and exact where computed), study-level exclusions named and an
ineligible study ranked last, funnel plots and Egger's test from 10 studies, one plot format, the
big-study forest plot, the annotated copy of a large form, and the page's data island."""

from __future__ import annotations

import json

import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner

from builders import good_outcome, good_study, write_form
from curation import pool
from curation import run as run_mod
from curation.cli import main

N = 14


def many(tmp_path, n=N):
    """n studies with an overall cohort each; S03's counts do not add up, S05's study row has a year
    error (a field no analysis uses), S07 is not 177Lu-labelled (ineligible)."""
    studies, outcomes = [], []
    for i in range(n):
        sid = f"S{i:02d}"
        extra = {}
        if i == 5:
            extra["year"] = 1985  # publication before enrolment: an error on the study row
        if i == 7:
            extra["radiopharmaceutical"] = "90Y-DOTATOC"
        studies.append(good_study(study_id=sid, first_author=f"Author{i}", doi=f"10.1000/x{i}", pmid=1000 + i,
                                  n_enrolled=200, **extra))
        ne = 40 + 7 * i
        cr, pr = i % 3, 5 + (i * 7) % 30
        sd = ne // 2
        pd_ = ne - cr - pr - sd
        row = dict(study_id=sid, n_evaluable=ne, cr=cr, pr=pr, sd=sd, pd=pd_,
                   orr_pct=round(100 * (cr + pr) / ne, 1), dcr_pct=round(100 * (cr + pr + sd) / ne, 1))
        if i == 3:
            row["pd"] = pd_ + 4
        outcomes.append(good_outcome(**row))
    return write_form(tmp_path / "many.xlsx", studies=studies, outcomes=outcomes)


@pytest.fixture(scope="module")
def form(tmp_path_factory):
    return many(tmp_path_factory.mktemp("scale"))


def test_leave_one_out_in_batches_and_for_chosen_studies_is_the_same():
    rng = np.random.default_rng(4)
    n = rng.integers(20, 300, 40)
    r = pool.pool_proportions(rng.binomial(n, 0.3), n)
    full = pool.leave_one_out(r)
    small = pool.leave_one_out(r, max_cells=50)  # batches of one or two fits
    some = pool.leave_one_out(r, [39, 0, 17])
    for a, b in zip(full, small):
        assert a.estimate == b.estimate and a.tau2 == b.tau2 and a.tau2_ci_high == b.tau2_ci_high
    assert [x.estimate for x in some] == [full[i].estimate for i in (39, 0, 17)]
    with pytest.raises(ValueError):
        pool.leave_one_out(r, [40])


def test_bounded_leave_one_out_says_so_and_keeps_the_most_influential(form, monkeypatch):
    exact = run_mod.run_job([form])
    monkeypatch.setattr(run_mod, "LOO_CELLS", 0)
    monkeypatch.setattr(run_mod, "LOO_MIN", 3)
    few = run_mod.run_job([form])
    loo = few.leave_one_out["orr"]
    assert len(loo) == 3 < len(exact.leave_one_out["orr"])
    by_study = {x.study_id: x for x in exact.leave_one_out["orr"]}
    # the same figures as the exact run, and the three whose omission moves the estimate most
    est = next(a for a in exact.analyses if a.id == "orr").result.estimate
    moved = sorted(by_study.values(), key=lambda x: -abs(x.estimate.estimate - est))
    assert [x.study_id for x in loo] == [x.study_id for x in moved[:3]]
    for x in loo:
        assert x.estimate == by_study[x.study_id].estimate
    assert any(n.startswith("leave-one-out computed for the 3 studies of") for n in few.analysis_notes["orr"])
    assert any(n.startswith("orr: leave-one-out computed for the 3") for n in few.notes)


def test_influence_names_study_errors_ranks_ineligible_last_and_is_bounded(form, monkeypatch):
    run = run_mod.run_job([form])
    orr = [x for x in run.influence if x.analysis_id == "orr"]
    a = run.analyses[0]
    taken = {r.study_id for r in a.taken}
    # S05's wrong year is in a field no analysis uses: it costs S05 nothing (docs/exclusions.md)
    assert "S05" in taken and not any(x.study_id == "S05" for x in orr)
    # S03's sum check names the counts ORR uses once the checks name every field they involve
    s03_out = "S03" not in taken
    assert {x.study_id for x in orr} == ({"S03", "S07"} if s03_out else {"S07"})
    assert orr[-1].study_id == "S07" and orr[-1].ineligible  # ranked after every fixable record
    assert "not eligible" in orr[-1].sentence and "ineligible-term" in orr[-1].errors
    if s03_out:  # the batched refit is pool_proportions on the same rows
        s03 = next(x for x in orr if x.study_id == "S03")
        with_ = pool.pool_proportions([r.events for r in a.taken] + [0 + 26], [r.total for r in a.taken] + [61])
        assert s03.with_.estimate == pytest.approx(with_.estimate, rel=1e-12)
        assert s03.with_.ci_high == pytest.approx(with_.ci_high, rel=1e-12)
    # bounded: one refit of k + 1 rows per analysis at most
    monkeypatch.setattr(run_mod, "INFLUENCE_CELLS", a.k + 1)
    monkeypatch.setattr(run_mod, "LOO_MIN", 1)
    bounded = run_mod.run_job([form])
    if len(orr) >= 2:
        assert len(bounded.influence) < len(run.influence)
        assert any("what matters most" in n and f"of the {len(orr)} excluded records" in n
                   for n in bounded.analysis_notes["orr"])


def test_funnel_and_egger_from_ten_studies_and_plot_formats(form, tmp_path):
    out = tmp_path / "png"
    r = CliRunner().invoke(main, ["run", str(form), "-o", str(out), "-q", "--plots", "png"], catch_exceptions=False)
    assert r.exit_code == 1, r.output
    analysis = json.loads((out / "analysis.json").read_text())
    orr = next(a for a in analysis["analyses"] if a["id"] == "orr")
    assert orr["k"] >= 10 and "orr" in analysis["egger"]
    assert (out / "plots" / "orr.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "plots" / "orr.funnel.png").is_file() and not list((out / "plots").glob("*.svg"))
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 2 and 'href="plots/orr.png"' in html  # inline SVG whatever the files
    none = tmp_path / "none"
    r = CliRunner().invoke(main, ["run", str(form), "-o", str(none), "-q", "--plots", "none"], catch_exceptions=False)
    assert not (none / "plots").exists() and "<svg" in (none / "report.html").read_text()


def test_forest_plot_of_many_studies_stays_small():
    from curation.plots import figure_svg, forest_plot

    rng = np.random.default_rng(2)
    n = rng.integers(20, 400, 3000)
    r = pool.pool_proportions(rng.binomial(n, 0.3), n, subgroups=rng.choice(["G1-2", "G3"], 3000))
    svg = figure_svg(forest_plot(r, [f"<s{i}>" for i in range(3000)], title="many"))
    assert len(svg) < 150_000 and "3000 studies, sorted by estimate within each subgroup" in svg
    assert "<image" in svg and "&lt;s1&gt;" not in svg  # the intervals as one raster; no row of text each


def test_annotated_copy_of_a_large_form_is_rebuilt_row_by_row(form, monkeypatch):
    from curation import report
    from curation.validation import validate

    v = validate(form)
    name = v.files[0]
    findings = [f for f in v.finding_list if f.file == name]
    for limit, rows_only in ((100, False), (10, True)):
        monkeypatch.setattr(report, "ANNOTATE_FULL_CELLS", 100 if limit == 100 else 5)
        monkeypatch.setattr(report, "ANNOTATE_ALL_ROWS_CELLS", 10_000 if not rows_only else 10)
        import io

        wb = openpyxl.load_workbook(io.BytesIO(report.annotated_workbook(name, findings, v, name)))
        assert wb["findings"]["A1"].value.startswith("NOTE: a large form")
        assert wb["findings"].max_row == len(findings) + 2
        for f in findings:
            if f.row is not None and f.sheet in wb.sheetnames:
                c = wb[f.sheet][f"{f.column or 'A'}{f.row}"]
                assert c.comment is not None and f.rule in c.comment.text
        st = wb["studies"]
        assert st["A1"].value == "study_id"
        # every row, or only the rows with a finding (S05's and S07's study rows here)
        assert (st["A2"].value == "S00") != rows_only
        assert st["A7"].value == "S05"


def test_data_island_is_inert():
    from curation.report import data_island

    text = data_island([["</script><script>alert(1)</script>", "<!-- & \u2028"]])
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == [["</script><script>alert(1)</script>", "<!-- & \u2028"]]

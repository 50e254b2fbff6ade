"""Dual extraction: reconcile two reviewers' forms, agreement statistics, adjudication round trip."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import good_ae, good_outcome, good_study, write_form  # noqa: E402

from curation.cli import main  # noqa: E402
from curation.errors import UnusableInputError  # noqa: E402
from curation.reconcile import (  # noqa: E402
    CONFLICT_COLUMNS, CONFLICT_FILL, ONE_REVIEWER_FILL, RESOLVED_FILL, cohen_kappa, consensus_workbook, gwet_ac1,
    reconcile)
from curation.validation import validate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CURATE = ROOT / ".venv" / "bin" / "curate"
WHEN = "2026-11-26T10:00:00+00:00"


# ---------------------------------------------------------------------------------------------
# Fixture forms: the same three studies, rows in another order, formatting-only differences and
# planted real disagreements.
# ---------------------------------------------------------------------------------------------

def _studies_a():
    return [good_study(country="@Netherlands"),
            good_study(study_id="S02", first_author="Hope", n_enrolled=50, design="retrospective", doi=None,
                       pmid=None, enrolment_start=2005, enrolment_end=2008, year=2010)]


def _outcomes_a():
    return [good_outcome(),
            good_outcome(cohort="G3", grade="G3", ki67_max=30, n_evaluable=20, cr=0, pr=4, sd=10, pd=6,
                         orr_pct=20, dcr_pct=70, pfs_median=12.1, pfs_ci_low=9.0, pfs_ci_high=15.2,
                         os_median="not reached", os_ci_low=30, os_ci_high="NR"),
            good_outcome(study_id="S02", grade="G3", ki67_max=25, n_evaluable=40, cr=0, pr=10, sd=20, pd=10,
                         orr_pct=25, dcr_pct=75)]


def _aes_a():
    return [good_ae(), good_ae(study_id="S02", ae_term="anaemia", grade3plus_n=1, any_grade_n=5, n_safety=50)]


@pytest.fixture()
def forms(tmp_path):
    a = write_form(tmp_path / "reviewer_a.xlsx", _studies_a(), _outcomes_a(), _aes_a())
    # B: rows in another order; formatting-only differences everywhere; six planted disagreements.
    b_studies = [
        good_study(study_id="S02 ", first_author="hope", n_enrolled="50", design="prospective",  # planted: design
                   doi=None, pmid=None, enrolment_start="2005", enrolment_end=2008.0, year=2010, extractor="CD"),
        good_study(first_author="  strosberg ", radiopharmaceutical="Lutathera", response_criteria="RECIST v1.1",
                   n_enrolled="116 ", cycles_median="4.0", activity_per_cycle_gbq="7,4", country="@Netherlands",
                   extractor="CD"),
    ]
    b_outcomes = [
        good_outcome(study_id="S02", cohort="Overall", grade="G4",                       # planted: grade (G4)
                     ki67_max=25, n_evaluable=40, cr=0, pr=10, sd=20, pd=10,
                     orr_pct="52%", dcr_pct="75.0", extractor="CD"),                      # planted: orr_pct
        good_outcome(study_id="S02", cohort="pancreas", primary_site="pNET", n_evaluable=12, cr=0, pr=3, sd=6,
                     pd=3, orr_pct=25, dcr_pct=75, extractor="CD"),                       # only in B
        good_outcome(cohort=" G3", grade="Grade 3", ki67_max="30", n_evaluable=20, cr="0", pr="4", sd=10, pd=6,
                     orr_pct="20%", dcr_pct=70, pfs_median=21.1, pfs_ci_low=9.0,         # planted: pfs_median
                     pfs_ci_high=15.2, os_median="NR", os_ci_low=30, os_ci_high="NR", extractor="CD"),
        good_outcome(grade="G1/G2", cr="1.0 ", pr=71, sd="70", orr_pct="17.8%",          # planted: pr
                     dcr_pct=0.871,  # a percent-formatted cell (87.1%), set below
                     pfs_median=123.4, pfs_ci_low=84.3, pfs_ci_high=155.6, pfs_unit="weeks",  # months in weeks
                     primary_site="mid-gut", extractor="CD"),
    ]
    b_aes = [good_ae(ae_term="platelet count decreased", any_grade_n=1, extractor="CD")]  # planted: any_grade_n
    b = write_form(tmp_path / "reviewer_b.xlsx", b_studies, b_outcomes, b_aes)
    wb = openpyxl.load_workbook(b)
    ws = wb["outcomes"]
    col = [c.value for c in ws[1]].index("dcr_pct") + 1
    ws.cell(5, col).number_format = "0.0%"
    wb.save(b)
    return a, b


PLANTED = {
    ("studies", "S02", None, "design"),
    ("outcomes", "S02", "overall", "grade"),
    ("outcomes", "S02", "overall", "orr_pct"),
    ("outcomes", "S01", "G3", "pfs_median"),
    ("outcomes", "S01", "overall", "pr"),
    ("adverse_events", "S01", "thrombocytopenia", "any_grade_n"),
}


def _ident(c):
    second = c.key.get("cohort", c.key.get("ae_term"))
    return (c.sheet, c.key["study_id"], second, c.field)


def test_every_planted_disagreement_found_and_no_formatting_difference(forms):
    a, b = forms
    # both forms are clean apart from B's planted G4 and wrong percentage
    assert not [f for f in validate(a).finding_list if f.severity == "error"]
    rec = reconcile(a, b, decided_at=WHEN)
    values = {_ident(c) for c in rec.conflicts if c.kind == "value"}
    assert values == PLANTED
    rows = {(c.kind, _ident(c)) for c in rec.conflicts if c.kind != "value"}
    assert rows == {("only_in_b", ("outcomes", "S02", "pancreas", None)),
                    ("only_in_a", ("adverse_events", "S02", "anaemia", None))}
    assert len(rec.conflicts) == 8
    assert rec.exit_code() == 1


def test_conflict_fields_cells_and_suggestions(forms):
    a, b = forms
    rec = reconcile(a, b, decided_at=WHEN)
    by = {_ident(c): c for c in rec.conflicts}
    pr = by[("outcomes", "S01", "overall", "pr")]
    assert (pr.value_a, pr.value_b) == (17, 71)
    assert pr.cell_a == "outcomes!H2"   # A's first outcomes row
    assert pr.cell_b == "outcomes!H5"   # B's fourth outcomes row: matched by key, not position
    assert pr.suggested == "A"
    assert pr.suggestion.startswith("A's pr = 17 makes CR+PR+SD+PD = n_evaluable (101); B's 71 does not")

    orr = by[("outcomes", "S02", "overall", "orr_pct")]
    assert orr.value_b == "52%" and orr.suggested == "A" and orr.suggested_value == 25
    assert "matches 100 x (CR+PR)/n_evaluable = 10/40 = 25.00%" in orr.suggestion

    pfs = by[("outcomes", "S01", "G3", "pfs_median")]
    assert pfs.suggested == "A" and "lies inside its 95% CI 9-15.2" in pfs.suggestion

    ae = by[("adverse_events", "S01", "thrombocytopenia", "any_grade_n")]
    assert ae.suggested == "A" and "keeps grade3plus_n <= any_grade_n <= n_safety" in ae.suggestion
    assert ae.cell_a == "adverse_events!D2" and ae.cell_b == "adverse_events!D2"

    grade = by[("outcomes", "S02", "overall", "grade")]
    assert grade.value_b == "G4" and grade.suggested == "A"
    assert "B's grade = G4 fails validation" in grade.suggestion

    design = by[("studies", "S02", None, "design")]
    assert design.suggested is None and design.suggestion is None
    assert (design.value_a, design.value_b) == ("retrospective", "prospective")

    only_b = by[("outcomes", "S02", "pancreas", None)]
    assert only_b.value_b == "only in B" and only_b.value_a is None
    # a whole row: "outcomes!3" (or "outcomes!3:3", the engine's newer row reference)
    assert only_b.cell_a is None and only_b.cell_b in ("outcomes!3", "outcomes!3:3")
    assert "A's rows for study_id=S02: cohort=overall" in only_b.suggestion

    # each reviewer's own findings come with the result
    assert any(f.rule == "percentage-mismatch" and f.cell == "outcomes!N2" for f in rec.findings_b)
    assert not [f for f in rec.findings_a if f.severity == "error"]


def test_agreement_counts_only_filled_rows(forms):
    a, b = forms
    rec = reconcile(a, b, decided_at=WHEN)
    ag = rec.agreement
    fields = ag["fields"]
    # ne is empty in every row of both forms: no row counts
    assert fields["ne"]["n"] == 0 and fields["ne"]["agreement"] is None
    # 3 outcome rows matched; pr differs on one
    assert fields["pr"]["n"] == 3 and fields["pr"]["agreed"] == 2
    assert fields["pr"]["agreement"] == pytest.approx(2 / 3)
    # doi: S01 filled in both, S02 empty in both -> n = 1
    assert fields["doi"]["n"] == 1 and fields["doi"]["agreement"] == 1
    # grade: G1-2/G1-2, G3/G3, G3/G4 -> categories, kappa and AC1 computed
    g = fields["grade"]
    assert g["n"] == 3 and g["agreed"] == 2
    assert set(g["categories"]) == {"G1-2", "G3", "g4"}
    # table rows A (G1-2, G3, g4) x cols B: [[1,0,0],[0,1,1],[0,0,0]]; po = 2/3,
    # pA = (1/3, 2/3, 0), pB = (1/3, 1/3, 1/3): pe = 1/9 + 2/9 = 1/3 -> kappa = (2/3-1/3)/(2/3) = 0.5
    assert g["kappa"] == pytest.approx(0.5)
    # AC1: pi = (1/3, 1/2, 1/6), pe = (2/9 + 1/4 + 5/36)/2 = 11/36, AC1 = (2/3 - 11/36)/(25/36) = 13/25
    assert g["ac1"] == pytest.approx(13 / 25)
    # no metadata, no key fields, no unit fields compared; names are bare (none collide)
    assert not {"extractor", "study_id", "cohort", "ae_term", "pfs_unit", "os_unit"} & set(fields)
    assert ag["n"] == sum(f["n"] for f in fields.values())
    assert ag["overall"] == pytest.approx(ag["agreed"] / ag["n"])
    assert ag["agreed"] == ag["n"] - 6  # the six planted value conflicts
    assert ag["rows"]["outcomes"] == {"matched": 3, "only_in_a": 0, "only_in_b": 1}


def test_kappa_and_ac1_hand_example():
    # rows: reviewer A, columns: reviewer B; categories G1-2, G3, unknown; n = 10
    x = [[4, 1, 0],
         [0, 3, 1],
         [0, 0, 1]]
    # po = 8/10 = 0.8; row margins (0.5, 0.4, 0.1), column margins (0.4, 0.4, 0.2)
    # pe = 0.5*0.4 + 0.4*0.4 + 0.1*0.2 = 0.38; kappa = (0.8 - 0.38)/(1 - 0.38) = 0.42/0.62 = 0.677419...
    # Fleiss-Cohen-Everitt variance:
    #   sum_i p_ii [(1-pe) - (p_i. + p_.i)(1-po)]^2 = 0.4*0.44^2 + 0.3*0.46^2 + 0.1*0.56^2 = 0.17228
    #   (1-po)^2 sum_{i!=j} p_ij (p_.i + p_j.)^2 = 0.04 * (0.1*0.8^2 + 0.1*0.5^2) = 0.00356
    #   (po*pe - 2pe + po)^2 = 0.344^2 = 0.118336
    #   var = (0.17228 + 0.00356 - 0.118336) / (10 * 0.62^4) = 0.057504 / 1.4776336 = 0.0389163
    k = cohen_kappa(x)
    assert k["kappa"] == pytest.approx(0.42 / 0.62, rel=1e-12)
    assert k["se"] ** 2 == pytest.approx(0.057504 / 1.4776336, rel=1e-9)
    assert k["ci_low"] == pytest.approx(0.42 / 0.62 - 1.959963984540054 * math.sqrt(0.057504 / 1.4776336))
    assert k["ci_high"] == 1.0  # 1.064 clipped, as psych does
    # Gwet's AC1: pi = mean margins = (0.45, 0.4, 0.15); Q = 3
    #   pe = (0.45*0.55 + 0.4*0.6 + 0.15*0.85)/2 = 0.615/2 = 0.3075; AC1 = (0.8 - 0.3075)/0.6925 = 0.711191
    #   var = [pa(1-pa) - 4(1-AC1)(sum_k p_kk (1-pi_k)/(Q-1) - pa pe)
    #          + 4(1-AC1)^2 (sum_kl p_kl (1-(pi_k+pi_l)/2)^2/(Q-1)^2 - pe^2)] / (n (1-pe)^2)
    #   sum_k p_kk (1-pi_k)/2 = (0.22 + 0.18 + 0.085)/2 = 0.2425; pa pe = 0.246
    #   sum_kl ... = (0.4*0.55^2 + 0.1*0.575^2 + 0.3*0.6^2 + 0.1*0.725^2 + 0.1*0.85^2)/4 = 0.386875/4 = 0.09671875
    ac1 = 0.4925 / 0.6925
    bracket = 0.16 - 4 * (1 - ac1) * (0.2425 - 0.246) + 4 * (1 - ac1) ** 2 * (0.09671875 - 0.3075 ** 2)
    var = bracket / (10 * 0.6925 ** 2)   # = 0.0343577, SE = 0.185358
    g = gwet_ac1(x)
    assert g["ac1"] == pytest.approx(ac1, rel=1e-12)
    assert g["pe"] == pytest.approx(0.3075)
    assert g["se"] == pytest.approx(math.sqrt(var), rel=1e-9)
    assert g["se"] == pytest.approx(0.185358, abs=1e-6)
    # CI with t(9), upper limit capped at 1
    assert g["ci_low"] == pytest.approx(ac1 - 2.2621571627409915 * math.sqrt(var), rel=1e-9)
    assert g["ci_high"] == 1.0
    # perfect agreement on one category: kappa undefined, AC1 = 1
    assert cohen_kappa([[5]])["kappa"] is None
    assert gwet_ac1([[5]])["ac1"] == 1.0


def test_ac1_and_kappa_match_published_reference():
    # Gwet's (2014) 3x3 "abstractors" table, the example of the irrCAC package (R and Python):
    # AC1 = 0.84933, 95% CI (0.76358, 0.93508) as printed in irrCAC's documentation.
    x = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]
    g = gwet_ac1(x)
    assert round(g["ac1"], 5) == 0.84933
    assert (round(g["ci_low"], 5), round(g["ci_high"], 5)) == (0.76358, 0.93508)
    # kappa: po = 0.89, pe = (13*13 + 27*24 + 60*63)/100^2 = 0.4597, kappa = 0.4303/0.5403 = 0.796409
    k = cohen_kappa(x)
    assert k["kappa"] == pytest.approx(0.4303 / 0.5403, rel=1e-12)
    # psych::cohen.kappa(x)$confid[1, ] (R 4.2.2, psych 2.2.9): 0.6809465160, 0.9118722884
    assert (round(k["ci_low"], 9), round(k["ci_high"], 9)) == (0.680946516, 0.911872288)


def _r_has(pkg: str, lib: str | None = None) -> bool:
    if not shutil.which("Rscript"):
        return False
    libs = f'.libPaths(c("{lib}", .libPaths())); ' if lib else ""
    out = subprocess.run(["Rscript", "-e", f'{libs}cat(requireNamespace("{pkg}", quietly=TRUE))'],
                         capture_output=True, text=True)
    return out.stdout.strip().endswith("TRUE")


@pytest.mark.skipif(not _r_has("psych"), reason="R package psych not installed")
def test_kappa_matches_r_psych():
    x = [[4, 1, 0], [0, 3, 1], [0, 0, 1]]
    r = subprocess.run(["Rscript", "-e", "x <- matrix(c(4,1,0, 0,3,1, 0,0,1), 3, byrow=TRUE); "
                        "k <- suppressWarnings(psych::cohen.kappa(x)); "
                        "cat(sprintf('%.12f', c(k$kappa, k$var.kappa, k$confid[1, 1], k$confid[1, 3])))"],
                       capture_output=True, text=True, check=True)
    kappa, var, lo, hi = map(float, r.stdout.split())
    k = cohen_kappa(x)
    assert k["kappa"] == pytest.approx(kappa, abs=1e-11)
    assert k["se"] ** 2 == pytest.approx(var, abs=1e-11)
    assert (k["ci_low"], k["ci_high"]) == (pytest.approx(lo, abs=1e-11), pytest.approx(hi, abs=1e-11))


def _conflicting_fields(tmp_path, a_study=None, b_study=None, a_out=None, b_out=None):
    a = write_form(tmp_path / "a.xlsx", [good_study(**(a_study or {}))], [good_outcome(**(a_out or {}))], [good_ae()])
    b = write_form(tmp_path / "b.xlsx", [good_study(**(b_study or {}))], [good_outcome(**(b_out or {}))], [good_ae()])
    return {c.field for c in reconcile(a, b, decided_at=WHEN).conflicts}


@pytest.mark.parametrize("sheet, a, b", [
    ("outcomes", {"grade": "G1-2"}, {"grade": "G1\u20132"}),                 # en dash
    ("outcomes", {"grade": "G1-2"}, {"grade": "grade 1/2"}),
    ("outcomes", {"primary_site": "pancreas", "cohort": "pancreas"}, {"primary_site": "pNET", "cohort": "Pancreas "}),
    ("outcomes", {"pfs_median": 24, "pfs_ci_low": 12, "pfs_ci_high": 36},
                 {"pfs_median": 730.5, "pfs_ci_low": 365.25, "pfs_ci_high": 1095.75, "pfs_unit": "days"}),
    ("outcomes", {"pfs_median": 24, "pfs_ci_low": 12, "pfs_ci_high": 36},
                 {"pfs_median": 2, "pfs_ci_low": 1, "pfs_ci_high": 3, "pfs_unit": "years"}),
    ("outcomes", {"os_median": "NR", "os_ci_high": "NR"}, {"os_median": "not reached", "os_ci_high": "n.r."}),
    ("outcomes", {"orr_pct": 17.8, "dcr_pct": 87.1}, {"orr_pct": "17.8 %", "dcr_pct": "87,1"}),
    ("outcomes", {"pd": "x13"}, {"pd": " X13 "}),                              # unreadable: compared as text
    ("studies", {"first_author": "van der Zwan"}, {"first_author": "Van\u00a0der  ZWAN"}),
    ("studies", {"response_criteria": "RECIST 1.1"}, {"response_criteria": "RECIST1.1"}),
    ("studies", {"radiopharmaceutical": "177Lu-DOTATOC"}, {"radiopharmaceutical": "177Lu-edotreotide"}),
    ("studies", {"n_enrolled": 1234, "extractor": "AB"}, {"n_enrolled": "1,234", "extractor": "ZZ"}),
    ("studies", {"enrolment_start": 2012}, {"enrolment_start": "2012-03-01"}),
])
def test_formatting_only_differences_are_not_conflicts(tmp_path, sheet, a, b):
    kw = {"a_study": a, "b_study": b} if sheet == "studies" else {"a_out": a, "b_out": b}
    assert _conflicting_fields(tmp_path, **kw) == set()


@pytest.mark.parametrize("a, b, field", [
    ({"grade": "G1-2"}, {"grade": "G2"}, "grade"),
    ({"pfs_median": 24, "pfs_ci_low": 12, "pfs_ci_high": 36}, {"pfs_median": 24, "pfs_ci_low": 12, "pfs_ci_high": 36,
                                                               "pfs_unit": "weeks"}, "pfs_median"),
    ({"os_median": 48.0}, {"os_median": "NR"}, "os_median"),
    ({"ki67_max": 15}, {"ki67_max": None}, "ki67_max"),                      # one reviewer left it empty
    ({"pd": "x13"}, {"pd": 13}, "pd"),
    ({"orr_pct": 17.8}, {"orr_pct": 17.9}, "orr_pct"),
])
def test_real_differences_are_conflicts(tmp_path, a, b, field):
    assert field in _conflicting_fields(tmp_path, a_out=a, b_out=b)


# ---------------------------------------------------------------------------------------------
# Unusable input
# ---------------------------------------------------------------------------------------------

def test_duplicate_keys_exit_2(forms, tmp_path):
    a, _b = forms
    dup = write_form(tmp_path / "dup.xlsx", _studies_a(),
                     [*_outcomes_a(), good_outcome(cohort=" OVERALL ")], _aes_a())
    with pytest.raises(UnusableInputError) as err:
        reconcile(a, dup)
    msg = str(err.value)
    assert "dup.xlsx" in msg and "outcomes rows 2, 5" in msg and "study_id=S01; cohort=overall" in msg
    res = CliRunner().invoke(main, ["reconcile", str(a), str(dup)])
    assert res.exit_code == 2
    assert "duplicate row keys" in res.output and "Traceback" not in res.output


def test_different_schema_exit_2(forms, tmp_path):
    a, _b = forms
    # a form without the adverse_events sheet's columns of this schema: other sheets and headers
    other = tmp_path / "other.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "studies"
    ws.append(["study_id", "first_author", "year", "n_enrolled", "sponsor"])
    ws.append(["S01", "Strosberg", 2017, 116, "AAA"])
    ws2 = wb.create_sheet("outcomes")
    ws2.append(["study_id", "cohort", "hazard_ratio"])
    ws2.append(["S01", "overall", 0.21])
    wb.save(other)
    with pytest.raises(UnusableInputError) as err:
        reconcile(a, other)
    assert "not the same form" in str(err.value)
    res = CliRunner().invoke(main, ["reconcile", str(a), str(other)])
    assert res.exit_code == 2 and "not the same form" in res.output
    # a workbook with none of the contract sheets at all
    junk = tmp_path / "junk.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Sheet1"
    wb.active.append(["whatever"])
    wb.save(junk)
    res = CliRunner().invoke(main, ["reconcile", str(a), str(junk)])
    assert res.exit_code == 2 and "none of the form's sheets" in res.output


def test_unusable_input_via_subprocess_has_no_traceback(forms, tmp_path):
    a, _b = forms
    dup = write_form(tmp_path / "dup.xlsx", [*_studies_a(), good_study()], _outcomes_a(), _aes_a())
    proc = subprocess.run([str(CURATE), "reconcile", str(a), str(dup)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "studies rows 2, 4 have the same key (study_id=S01)" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------------
# Consensus and adjudication
# ---------------------------------------------------------------------------------------------

def _sheet_rows(ws):
    rows = list(ws.iter_rows(values_only=True))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def test_consensus_workbook(forms):
    a, b = forms
    rec = reconcile(a, b, decided_at=WHEN)
    wb = consensus_workbook(rec)
    assert wb.sheetnames[:4] == ["studies", "outcomes", "adverse_events", "conflicts"]
    header, studies = _sheet_rows(wb["studies"])
    assert list(header) == list(rec.schema.sheets["studies"].fields)
    s01 = next(r for r in studies if r["study_id"] == "S01")
    assert s01["radiopharmaceutical"] == "177Lu-DOTATATE"     # agreed, canonical
    assert s01["first_author"] == "Strosberg"                # A's text
    assert s01["country"] == "'@Netherlands"                  # form text written inert
    assert s01["extractor"] == "AB/CD"
    s02 = next(r for r in studies if r["study_id"] == "S02")
    assert s02["design"] is None                              # conflict: empty ...
    ws = wb["outcomes"]
    header, outcomes = _sheet_rows(ws)
    assert [(r["study_id"], r["cohort"]) for r in outcomes] == [("S01", "overall"), ("S01", "G3"),
                                                                 ("S02", "overall"), ("S02", "pancreas")]
    o1 = outcomes[0]
    assert o1["pr"] is None and o1["grade"] == "G1-2" and o1["dcr_pct"] == 87.1
    assert o1["pfs_median"] == 28.4 and o1["pfs_unit"] == "months"
    assert outcomes[1]["os_median"] == "NR" and outcomes[1]["pfs_median"] is None
    pr_cell = ws.cell(2, list(header).index("pr") + 1)
    assert pr_cell.fill.start_color.rgb.endswith(CONFLICT_FILL) and "conflict" in pr_cell.comment.text
    pancreas = ws.cell(5, 1)
    assert pancreas.fill.start_color.rgb.endswith(ONE_REVIEWER_FILL)
    assert outcomes[3]["primary_site"] == "pancreas"
    header, conflicts = _sheet_rows(wb["conflicts"])
    assert list(header[:len(CONFLICT_COLUMNS)]) == list(CONFLICT_COLUMNS)
    assert len(conflicts) == 8
    assert all(r["resolved_value"] is None and r["adjudicator"] is None for r in conflicts)
    assert conflicts[0]["key"] == "study_id=S02"


def _fill(path: Path, decisions: dict, out: Path, extra_rows=()):
    wb = openpyxl.load_workbook(path)
    ws = wb["conflicts"]
    header = [c.value for c in ws[1]]
    col = {h: i + 1 for i, h in enumerate(header)}
    for r in range(2, ws.max_row + 1):
        field = ws.cell(r, col["field"]).value
        key = ws.cell(r, col["key"]).value
        ident = (ws.cell(r, col["sheet"]).value, key, field)
        if ident in decisions:
            value, note = decisions[ident]
            ws.cell(r, col["resolved_value"]).value = value
            ws.cell(r, col["adjudicator"]).value = "CR"
            ws.cell(r, col["note"]).value = note
    for row in extra_rows:
        ws.append([row.get(h) for h in header])
    wb.save(out)
    return out


DECISIONS = {
    ("outcomes", "study_id=S01; cohort=overall", "pr"): (17, "sum and ORR support A"),
    ("outcomes", "study_id=S02; cohort=overall", "orr_pct"): (25, None),
    ("outcomes", "study_id=S02; cohort=overall", "grade"): ("G3", "G4 does not exist"),
    ("outcomes", "study_id=S01; cohort=G3", "pfs_median"): ("12.3", "Table 2 gives 12.3; both misread"),
    ("adverse_events", "study_id=S01; ae_term=thrombocytopenia", "any_grade_n"): (28, None),
    ("outcomes", "study_id=S02; cohort=pancreas", None): ("drop", "subgroup not reported in the paper"),
    ("adverse_events", "study_id=S02; ae_term=anaemia", None): ("keep", "B missed it"),
}


def test_adjudication_round_trip(forms, tmp_path):
    a, b = forms
    rec = reconcile(a, b, decided_at=WHEN)
    consensus = tmp_path / "consensus.xlsx"
    consensus_workbook(rec).save(consensus)
    unmatched = {"id": 99, "sheet": "outcomes", "key": "study_id=S09; cohort=overall", "field": "pr",
                 "resolved_value": 3, "adjudicator": "CR"}
    adj = _fill(consensus, DECISIONS, tmp_path / "adjudication.xlsx", [unmatched])   # design left open
    rec2 = reconcile(a, b, adjudication=adj, decided_at=WHEN)
    assert len(rec2.conflicts) == 8 and len(rec2.resolved) == 7
    assert [_ident(c) for c in rec2.unresolved] == [("studies", "S02", None, "design")]
    assert rec2.exit_code() == 1
    # the third value is accepted and noted
    pfs = next(c for c in rec2.conflicts if c.field == "pfs_median")
    assert pfs.resolution.source == "other"
    assert any("neither A's 12.1 nor B's 21.1: accepted and noted" in w for w in rec2.warnings)
    # the unmatched row is reported, not ignored
    assert len(rec2.unmatched) == 1 and rec2.unmatched[0]["key"] == "study_id=S09; cohort=overall"
    assert any("matches no conflict" in w for w in rec2.warnings)
    d = rec2.to_dict()
    assert d["adjudication"]["unmatched"][0]["field"] == "pr"
    assert d["adjudication"]["third_values"] == [pfs.id]
    # the audit log: one entry per decision, deterministic time
    log = rec2.audit_log()
    assert len(log) == 7
    entry = next(e for e in log if e["field"] == "pr")
    assert entry == {"conflict_id": entry["conflict_id"], "sheet": "outcomes",
                     "key": {"study_id": "S01", "cohort": "overall"}, "field": "pr", "value_a": 17, "value_b": 71,
                     "resolution": 17, "source": "A", "third_value": False, "suggested": "A", "adjudicator": "CR",
                     "note": "sum and ORR support A", "adjudication_row": entry["adjudication_row"], "time": WHEN}
    assert {e["source"] for e in log} == {"A", "other", "keep", "drop"}
    # the consensus carries the decisions
    wb = consensus_workbook(rec2)
    ws = wb["outcomes"]
    header, outcomes = _sheet_rows(ws)
    assert [(r["study_id"], r["cohort"]) for r in outcomes] == [("S01", "overall"), ("S01", "G3"), ("S02", "overall")]
    assert outcomes[0]["pr"] == 17 and outcomes[1]["pfs_median"] == 12.3 and outcomes[2]["grade"] == "G3"
    assert ws.cell(2, list(header).index("pr") + 1).fill.start_color.rgb.endswith(RESOLVED_FILL)
    _h, aes = _sheet_rows(wb["adverse_events"])
    assert [(r["study_id"], r["ae_term"]) for r in aes] == [("S01", "thrombocytopenia"), ("S02", "anaemia")]
    assert wb["adverse_events"].cell(3, 1).fill.fill_type is None   # kept: no longer marked
    _h, studies = _sheet_rows(wb["studies"])
    assert next(r for r in studies if r["study_id"] == "S02")["design"] is None   # still open
    _h, crows = _sheet_rows(wb["conflicts"])
    assert {r["status"] for r in crows} == {"resolved", "resolved (third value)", "unresolved"}

    # decide the last one: nothing left open, and the consensus passes validation
    decisions = {**DECISIONS, ("studies", "study_id=S02", "design"): ("retrospective", "methods section")}
    adj2 = _fill(consensus, decisions, tmp_path / "adjudication2.xlsx")
    rec3 = reconcile(a, b, adjudication=adj2, decided_at=WHEN)
    assert rec3.exit_code() == 0 and not rec3.unmatched
    final = tmp_path / "final.xlsx"
    consensus_workbook(rec3).save(final)
    result = validate(final)
    assert [f for f in result.finding_list if f.severity == "error"] == []
    assert result.summary.rows_read == 2 + 3 + 2


def test_resolution_words_and_empty(forms, tmp_path):
    a, b = forms
    rec = reconcile(a, b, decided_at=WHEN)
    consensus = tmp_path / "consensus.xlsx"
    consensus_workbook(rec).save(consensus)
    adj = _fill(consensus, {("outcomes", "study_id=S02; cohort=pancreas", None): ("maybe", None),
                            ("studies", "study_id=S02", "design"): ("Retrospective cohort", None)},
                tmp_path / "adj.xlsx")
    rec2 = reconcile(a, b, adjudication=adj, decided_at=WHEN)
    design = next(c for c in rec2.conflicts if c.field == "design")
    assert design.resolution.source == "A"          # an alias of A's term is A's value
    pancreas = next(c for c in rec2.conflicts if c.kind == "only_in_b")
    assert pancreas.resolution is None
    assert any("neither 'keep' nor 'drop'" in w for w in rec2.warnings)


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------

def test_cli_end_to_end(forms, tmp_path):
    a, b = forms
    out, js = tmp_path / "consensus.xlsx", tmp_path / "rec.json"
    res = CliRunner().invoke(main, ["reconcile", str(a), str(b), "-o", str(out), "--json", str(js)])
    assert res.exit_code == 1, res.output
    assert "Agreement per field" in res.output and "8 unresolved" in res.output
    d = json.loads(js.read_text())
    assert set(d) >= {"conflicts", "agreement", "findings_a", "findings_b"}
    assert set(d["agreement"]) >= {"overall", "fields"}
    assert set(d["agreement"]["fields"]["grade"]) >= {"agreement", "kappa", "ac1", "n", "kappa_ci", "ac1_ci"}
    c = d["conflicts"][0]
    assert set(c) >= {"sheet", "key", "field", "value_a", "value_b", "cell_a", "cell_b", "suggestion"}
    assert {(x["sheet"], x["field"]) for x in d["conflicts"] if x["field"]} == {(s, f) for s, _i, _k, f in PLANTED}
    pr = next(x for x in d["conflicts"] if x["field"] == "pr")
    assert pr["key"] == {"study_id": "S01", "cohort": "overall"} and pr["value_b"] == 71
    assert any(f["rule"] == "rejected-term" or f["field"] == "grade" for f in d["findings_b"])
    assert not (tmp_path / "consensus.audit.json").exists()

    decisions = {**DECISIONS, ("studies", "study_id=S02", "design"): ("retrospective", None)}
    adj = _fill(out, decisions, tmp_path / "adjudicated.xlsx")
    final = tmp_path / "final.xlsx"
    res = CliRunner().invoke(main, ["reconcile", str(a), str(b), "-o", str(final), "--json", str(js),
                                    "--adjudication", str(adj)])
    assert res.exit_code == 0, res.output
    audit = json.loads((tmp_path / "final.audit.json").read_text())
    assert len(audit) == 8 and all(e["adjudicator"] == "CR" and e["time"] for e in audit)
    d = json.loads(js.read_text())
    assert d["summary"]["unresolved"] == 0 and d["adjudication"]["resolved"] == 8
    proc = subprocess.run([str(CURATE), "validate", str(final)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the consensus never overwrites an input
    res = CliRunner().invoke(main, ["reconcile", str(a), str(b), "-o", str(a)])
    assert res.exit_code == 2 and "overwrite an input" in res.output


# ---------------------------------------------------------------------------------------------
# The shipped example forms: A, B -> conflicts -> the third reviewer's adjudication -> consensus
# ---------------------------------------------------------------------------------------------

EXAMPLES = ROOT / "extraction_forms"
EX_A, EX_B = EXAMPLES / "example_reviewer_a.xlsx", EXAMPLES / "example_reviewer_b.xlsx"
EX_ADJ = EXAMPLES / "example_adjudication.xlsx"
needs_examples = pytest.mark.skipif(not (EX_A.exists() and EX_B.exists() and EX_ADJ.exists()),
                                    reason="example forms not built")

# every planted slip that differs between the reviewers (extraction_forms/README.md), and nothing else:
# (sheet, key, field) -> (A as typed, B as typed, whose value the rules suggest)
EXAMPLE_CONFLICTS = {
    ("studies", "study_id=THANG2018", "response_criteria"): ("RECIST", "RECIST 1.1", "B"),
    ("outcomes", "study_id=BRABANDER2017; cohort=overall", "orr_pct"): ("39", 28.4, "A"),
    ("outcomes", "study_id=BRABANDER2017; cohort=overall", "os_ci_low"): (63, 55, "B"),
    ("outcomes", "study_id=VDZWAN2019; cohort=overall", "n_evaluable"): (186, 168, "B"),
    ("outcomes", "study_id=BODEI2011; cohort=overall", "orr_pct"): (32.6, 23.6, "A"),
    ("outcomes", "study_id=CLEMENT2022; cohort=overall", "orr_pct"): (22.7, 40.3, "B"),
    ("outcomes", "study_id=CLEMENT2022; cohort=overall", "pfs_median"): (24.8, 17.5, "A"),
    ("outcomes", "study_id=CLEMENT2022; cohort=overall", "pfs_ci_low"): (17.5, 24.8, "A"),
}


@needs_examples
def test_example_forms_conflicts():
    rec = reconcile(EX_A, EX_B, decided_at=WHEN)
    got = {(c.sheet, c.key_text, c.field): (c.value_a, c.value_b, c.suggested) for c in rec.conflicts}
    assert set(got) == set(EXAMPLE_CONFLICTS)
    for k, (va, vb, who) in EXAMPLE_CONFLICTS.items():
        assert got[k][2] == who, k
        assert (_num_or(got[k][0]), _num_or(got[k][1])) == (_num_or(va), _num_or(vb)), k
    # Ezziddin's criteria: "modified SWOG" vs "mSWOG", the same term: no conflict, an error in both forms
    assert any(f.rule == "ineligible-term" and f.study_id == "EZZIDDIN2014" for f in rec.findings_a)
    assert any(f.rule == "ineligible-term" and f.study_id == "EZZIDDIN2014" for f in rec.findings_b)
    assert rec.agreement["rows"]["outcomes"] == {"matched": 19, "only_in_a": 0, "only_in_b": 0}


def _num_or(v):
    try:
        return float(str(v).rstrip("%"))
    except ValueError:
        return v


@needs_examples
def test_example_adjudication_gives_a_consensus_with_only_real_errors(tmp_path):
    rec = reconcile(EX_A, EX_B, adjudication=EX_ADJ, decided_at=WHEN)
    assert rec.exit_code() == 0 and not rec.unmatched and rec.warnings == ()
    assert all(c.resolution.adjudicator == "CR" for c in rec.conflicts)
    # the adjudicator followed the published figures, which here always agree with the suggestion
    assert all(c.resolution.source == c.suggested for c in rec.conflicts)
    assert len(rec.audit_log()) == 8
    out = tmp_path / "consensus.xlsx"
    consensus_workbook(rec).save(out)
    result = validate(out)
    errors = {(f.rule, f.study_id) for f in result.finding_list if f.severity == "error"}
    # Ezziddin 2014 (modified SWOG) is ineligible in the paper itself: it stays and validate excludes it
    assert errors == {("ineligible-term", "EZZIDDIN2014"), ("study-excluded", "EZZIDDIN2014")}
    # every reviewer slip is gone
    rules = {f.rule for f in result.finding_list}
    assert not rules & {"evaluable-exceeds-enrolled", "percentage-mismatch", "percentage-itt-denominator",
                        "median-outside-ci", "ci-bound-equals-median", "unspecific-term"}
    assert result.summary.rows_excluded == 2


@needs_examples
def test_example_adjudication_file_is_up_to_date():
    proc = subprocess.run([sys.executable, str(EXAMPLES / "build_adjudication.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr

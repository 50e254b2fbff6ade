"""The checks of a comparative review (issue 14): arms, effects with CIs, p-values, SDs and medians.

The baseline is a small comparative review built here: the 13 BCG trials of metafor's ``dat.bcg``
(real published counts) with each trial's risk ratio, 95% CI and p-value reported as a paper
would (2 decimals; p to 3 decimals or ``<0.001``), one row per arm on an ``arms`` sheet, and a
two-arm continuous outcome. The baseline yields no finding; each case plants one slip and asserts
the rule reports it at its cell; the negative cases (rounding edges, bounds) assert it does not.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.cells import parse_p_column, parse_p_text
from involves import assert_involves
from curation.rules import REGISTRY, mean_sd_from_quantiles, p_range_from_ci
from curation.schema import load_schema
from curation.validation import validate

CURATE = str(Path(sys.executable).parent / "curate")

# metafor's dat.bcg: author, year, tpos, tneg, cpos, cneg, ablat, alloc
BCG = [
    ("Aronson", 1948, 4, 119, 11, 128, 44, "random"),
    ("Ferguson & Simes", 1949, 6, 300, 29, 274, 55, "random"),
    ("Rosenthal", 1960, 3, 228, 11, 209, 42, "random"),
    ("Hart & Sutherland", 1977, 62, 13536, 248, 12619, 52, "random"),
    ("Frimodt-Moller", 1973, 33, 5036, 47, 5761, 13, "alternate"),
    ("Stein & Aronson", 1953, 180, 1361, 372, 1079, 44, "alternate"),
    ("Vandiviere", 1973, 8, 2537, 10, 619, 19, "random"),
    ("TPT Madras", 1980, 505, 87886, 499, 87892, 13, "random"),
    ("Coetzee & Berjak", 1968, 29, 7470, 45, 7232, 27, "random"),
    ("Rosenthal", 1961, 17, 1699, 65, 1600, 42, "systematic"),
    ("Comstock", 1974, 186, 50448, 141, 27197, 18, "systematic"),
    ("Comstock & Webster", 1969, 5, 2493, 3, 2338, 33, "systematic"),
    ("Comstock", 1976, 27, 16886, 29, 17825, 33, "systematic"),
]

FIELDS = {
    "studies": ["study_id", "first_author", "year", "allocation", "latitude", "n_randomised", "extractor"],
    "comparisons": ["study_id", "comparison", "outcome", "events_vaccinated", "total_vaccinated", "events_control",
                    "total_control", "rr_reported", "rr_ci_low", "rr_ci_high", "p_value", "extractor"],
    "arms": ["study_id", "comparison", "arm_role", "events", "n"],
    "continuous": ["study_id", "comparison", "outcome", "mean_intervention", "sd_intervention", "n_intervention",
                   "mean_control", "sd_control", "n_control", "median_intervention", "q1_intervention",
                   "q3_intervention", "md_reported", "md_ci_low", "md_ci_high"],
}


def schema_dict(convert: bool = False) -> dict[str, Any]:
    count = {"type": "integer", "min": 0, "unit": "participants"}
    mmhg = {"type": "number", "unit": "mmHg"}
    return {
        "name": "bcg_test", "title": "BCG vaccine against tuberculosis (test)",
        "vocabularies": {
            "allocation": {"terms": [{"value": "random"}, {"value": "alternate"}, {"value": "systematic"}]},
            "arm_role": {"terms": [{"value": "intervention", "aliases": ["experimental", "vaccinated"]},
                                   {"value": "control", "aliases": ["placebo", "usual care"]}]},
        },
        "sheets": {
            "studies": {"key": ["study_id"], "fields": {
                "study_id": {"type": "text", "required": True}, "first_author": {"type": "text"},
                "year": {"type": "year"}, "allocation": {"type": "vocabulary", "vocabulary": "allocation"},
                "latitude": {"type": "number"}, "n_randomised": count, "extractor": {"type": "text", "metadata": True}}},
            "comparisons": {"key": ["study_id", "comparison"], "parent": {"sheet": "studies", "key": "study_id"},
                            "fields": {
                                "study_id": {"type": "text", "required": True}, "comparison": {"type": "text"},
                                "outcome": {"type": "text"}, "events_vaccinated": count, "total_vaccinated": count,
                                "events_control": count, "total_control": count,
                                "rr_reported": {"type": "number", "description": "Risk ratio as reported"},
                                "rr_ci_low": {"type": "number"}, "rr_ci_high": {"type": "number"},
                                "p_value": {"type": "p_value"}, "extractor": {"type": "text", "metadata": True}}},
            "arms": {"key": ["study_id", "comparison", "arm_role"], "parent": {"sheet": "studies", "key": "study_id"},
                     "fields": {"study_id": {"type": "text", "required": True}, "comparison": {"type": "text"},
                                "arm_role": {"type": "vocabulary", "vocabulary": "arm_role"},
                                "events": count, "n": count}},
            "continuous": {"key": ["study_id", "comparison"], "parent": {"sheet": "studies", "key": "study_id"},
                           "fields": {"study_id": {"type": "text", "required": True}, "comparison": {"type": "text"},
                                      "outcome": {"type": "text"},
                                      "mean_intervention": mmhg, "sd_intervention": mmhg, "n_intervention": count,
                                      "mean_control": mmhg, "sd_control": mmhg, "n_control": count,
                                      "median_intervention": mmhg, "q1_intervention": mmhg, "q3_intervention": mmhg,
                                      "md_reported": mmhg, "md_ci_low": mmhg, "md_ci_high": mmhg}},
        },
        "checks": {
            "comparisons": [
                {"rule": "events-exceed-total", "events": ["events_vaccinated", "events_control"],
                 "totals": ["total_vaccinated", "total_control"]},
                {"rule": "arm-totals-exceed-randomised", "totals": ["total_vaccinated", "total_control"],
                 "randomised": "studies.n_randomised"},
                {"rule": "effect-outside-ci", "effect": "rr_reported", "low": "rr_ci_low", "high": "rr_ci_high"},
                {"rule": "ratio-ci-not-log-symmetric", "effect": "rr_reported", "low": "rr_ci_low",
                 "high": "rr_ci_high"},
                {"rule": "p-value-contradicts-ci", "effect": "rr_reported", "low": "rr_ci_low", "high": "rr_ci_high",
                 "p": "p_value", "scale": "ratio"},
                {"rule": "effect-contradicts-counts", "effect": "rr_reported", "measure": "RR",
                 "events": ["events_vaccinated", "events_control"], "totals": ["total_vaccinated", "total_control"]},
            ],
            "arms": [
                {"rule": "events-exceed-total", "events": ["events"], "totals": ["n"]},
                {"rule": "arm-totals-exceed-randomised", "totals": ["n"], "randomised": "studies.n_randomised",
                 "group_by": ["study_id", "comparison"]},
            ],
            "continuous": [
                {"rule": "median-iqr-not-mean-sd", "means": ["mean_intervention"], "sds": ["sd_intervention"],
                 "medians": ["median_intervention"], "totals": ["n_intervention"], "q1": ["q1_intervention"],
                 "q3": ["q3_intervention"], **({"convert_median_iqr": True} if convert else {})},
                {"rule": "sd-looks-like-se", "sds": ["sd_intervention", "sd_control"],
                 "totals": ["n_intervention", "n_control"], "group_by": ["outcome"], "min_sd": 2},
                {"rule": "effect-outside-ci", "effect": "md_reported", "low": "md_ci_low", "high": "md_ci_high"},
                {"rule": "effect-contradicts-counts", "effect": "md_reported", "measure": "MD",
                 "means": ["mean_intervention", "mean_control"], "sds": ["sd_intervention", "sd_control"],
                 "totals": ["n_intervention", "n_control"]},
            ],
        },
        "analysis": {"sheet": "comparisons", "cohort_field": "comparison", "overall_cohort": "overall"},
    }


def _p_text(p: float) -> Any:
    return "<0.001" if p < 0.001 else round(p, 3)


def reported_rr(a: int, n1: int, c: int, n2: int) -> tuple[float, float, float, Any]:
    """RR, 95% CI and p as a paper reports them (log-scale Wald CI, 2 decimals)."""
    log_rr = math.log((a / n1) / (c / n2))
    se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    p = 2 * (1 - NormalDist().cdf(abs(log_rr) / se))
    return (round(math.exp(log_rr), 2), round(math.exp(log_rr - 1.959964 * se), 2),
            round(math.exp(log_rr + 1.959964 * se), 2), _p_text(p))


# a continuous outcome: systolic blood pressure (mmHg), 6 trials; and one more outcome on another scale
SBP = [(140.2, 12.1, 60, 146.0, 13.0, 58), (138.5, 11.4, 120, 142.1, 12.2, 118), (150.3, 14.8, 45, 151.0, 15.1, 47),
       (135.0, 10.2, 200, 139.9, 10.9, 198), (142.8, 13.5, 80, 145.5, 12.8, 82), (147.1, 12.7, 100, 150.2, 13.3, 101)]


def reported_md(m1, s1, n1, m2, s2, n2) -> tuple[float, float, float]:
    md = m1 - m2
    se = math.sqrt(s1 ** 2 / n1 + s2 ** 2 / n2)
    return round(md, 1), round(md - 1.959964 * se, 1), round(md + 1.959964 * se, 1)


def baseline() -> dict[str, list[dict[str, Any]]]:
    studies, comparisons, arms, continuous = [], [], [], []
    for k, (author, year, tpos, tneg, cpos, cneg, ablat, alloc) in enumerate(BCG, start=1):
        sid = f"T{k:02d}"
        n1, n2 = tpos + tneg, cpos + cneg
        studies.append({"study_id": sid, "first_author": author, "year": year, "allocation": alloc,
                        "latitude": ablat, "n_randomised": n1 + n2, "extractor": "AB"})
        rr, lo, hi, p = reported_rr(tpos, n1, cpos, n2)
        comparisons.append({"study_id": sid, "comparison": "overall", "outcome": "tuberculosis",
                            "events_vaccinated": tpos, "total_vaccinated": n1, "events_control": cpos,
                            "total_control": n2, "rr_reported": rr, "rr_ci_low": lo, "rr_ci_high": hi,
                            "p_value": p, "extractor": "AB"})
        arms.append({"study_id": sid, "comparison": "overall", "arm_role": "vaccinated", "events": tpos, "n": n1})
        arms.append({"study_id": sid, "comparison": "overall", "arm_role": "placebo", "events": cpos, "n": n2})
    for k, (m1, s1, n1, m2, s2, n2) in enumerate(SBP, start=1):
        md, lo, hi = reported_md(m1, s1, n1, m2, s2, n2)
        continuous.append({"study_id": f"T{k:02d}", "comparison": "overall", "outcome": "sbp",
                           "mean_intervention": m1, "sd_intervention": s1, "n_intervention": n1, "mean_control": m2,
                           "sd_control": s2, "n_control": n2, "md_reported": md, "md_ci_low": lo, "md_ci_high": hi})
    return {"studies": studies, "comparisons": comparisons, "arms": arms, "continuous": continuous}


def write_form(path: Path, form: dict[str, list[dict[str, Any]]], fields_of: dict[str, list[str]] = FIELDS) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for sheet, fields in fields_of.items():
        ws = wb.create_sheet(sheet)
        ws.append(fields)
        for row in form[sheet]:
            ws.append([row.get(f) for f in fields])
    wb.save(path)
    return path


def write_schema(path: Path, convert: bool = False) -> Path:
    path.write_text(yaml.safe_dump(schema_dict(convert), sort_keys=False))
    return path


def run(tmp_path: Path, form, convert: bool = False):
    schema = load_schema(write_schema(tmp_path / f"bcg_test{'_convert' if convert else ''}.yaml", convert))
    return validate(write_form(tmp_path / "form.xlsx", form), schema)


def setv(sheet: str, i: int, **values):
    def change(form):
        form[sheet][i].update(values)

    return change


def test_baseline_has_no_finding(tmp_path):
    result = run(tmp_path, baseline())
    assert [f"{f.cell} {f.rule}: {f.message}" for f in result.finding_list] == []
    assert result.summary.rows_read == 13 + 13 + 26 + 6 == result.summary.rows_passed
    table = result.tables["comparisons"].data
    # p < 0.001 is a bound, never an error: the number and its bound
    assert list(table["p_value__bound"]).count("<") == sum(1 for r in baseline()["comparisons"]
                                                           if r["p_value"] == "<0.001") > 0
    assert table["p_value"].notna().all()


# code -> [(change, sheet, Excel row, field)]: each planted slip is reported at its cell. Row = index + 2.
CASES = {
    # Aronson: 140 events among the 139 controls; on the arms sheet, 12 events among 11
    "events-exceed-total": [(setv("comparisons", 0, events_control=140), "comparisons", 2, "events_control"),
                            (setv("arms", 1, events=12, n=11), "arms", 3, "events")],
    # 123 + 139 = 262 randomised; 250 typed
    "arm-totals-exceed-randomised": [(setv("studies", 0, n_randomised=250), "comparisons", 2, "total_vaccinated"),
                                     (setv("studies", 0, n_randomised=250), "arms", 3, "n")],
    "arm-totals-below-randomised": [(setv("studies", 0, n_randomised=270), "comparisons", 2, "total_vaccinated"),
                                    (setv("studies", 1, n_randomised=700), "arms", 5, "n")],
    # Aronson: RR 0.41 (0.13-1.26); 0.11 is below the CI beyond rounding; a reversed CI
    "effect-outside-ci": [(setv("comparisons", 0, rr_reported=0.11), "comparisons", 2, "rr_reported"),
                          (setv("comparisons", 0, rr_ci_low=1.26, rr_ci_high=0.13), "comparisons", 2, "rr_ci_low"),
                          (setv("continuous", 0, md_reported=-11.9), "continuous", 2, "md_reported")],
    # RR 0.75 (0.55-0.95) is symmetric on the natural scale; as text, 0.70 (0.50-0.90) shows its digits
    "ratio-ci-not-log-symmetric": [(setv("comparisons", 0, rr_reported=0.75, rr_ci_low=0.55, rr_ci_high=0.95,
                                         p_value=0.02), "comparisons", 2, "rr_ci_high"),
                                   (setv("comparisons", 0, rr_reported="0.70", rr_ci_low="0.50", rr_ci_high="0.90",
                                         p_value=0.006), "comparisons", 2, "rr_ci_high")],
    "ratio-not-positive": [(setv("comparisons", 0, rr_ci_low=-0.2), "comparisons", 2, "rr_ci_low"),
                           (setv("comparisons", 0, rr_reported=0), "comparisons", 2, "rr_reported")],
    # Aronson's CI includes 1 (p = 0.12): p < 0.001 and p = 0.03 flip the decision
    "p-value-contradicts-ci": [(setv("comparisons", 0, p_value="p < 0.001"), "comparisons", 2, "p_value"),
                               (setv("comparisons", 0, p_value=0.03), "comparisons", 2, "p_value"),
                               # Ferguson & Simes: RR 0.2 (0.09-0.48), p < 0.001; NS contradicts it
                               (setv("comparisons", 1, p_value="NS"), "comparisons", 3, "p_value"),
                               (setv("comparisons", 1, p_value="p>0.05"), "comparisons", 3, "p_value")],
    # same decision, other number
    "p-value-inconsistent": [(setv("comparisons", 0, p_value=0.25), "comparisons", 2, "p_value"),
                             (setv("comparisons", 1, p_value="p = 0.02"), "comparisons", 3, "p_value")],
    # 1/0.41 = 2.43: the ratio inverted (the counts' CI 0.13-1.26 excludes it)
    "effect-contradicts-counts": [(setv("comparisons", 0, rr_reported=2.43, rr_ci_low=0.79, rr_ci_high=7.44),
                                   "comparisons", 2, "rr_reported"),
                                  (setv("continuous", 1, md_reported=3.6, md_ci_low=0.6, md_ci_high=6.6),
                                   "continuous", 3, "md_reported")],
    # Stein & Aronson: RR 0.46 but 0.38 typed (the odds ratio); Aronson 0.50 instead of 0.41
    "effect-differs-from-counts": [(setv("comparisons", 5, rr_reported=0.38), "comparisons", 7, "rr_reported"),
                                   (setv("comparisons", 0, rr_reported=0.50), "comparisons", 2, "rr_reported")],
    # the SE of an SD of 12.2 with 120 participants: 1.11; and an SD below the scale's minimum of 2
    "sd-looks-like-se": [(setv("continuous", 1, sd_intervention=1.1), "continuous", 3, "sd_intervention"),
                         (setv("continuous", 2, sd_control=1.5), "continuous", 4, "sd_control")],
    "median-iqr-not-mean-sd": [(setv("continuous", 0, mean_intervention=None, sd_intervention=None,
                                     median_intervention=139, q1_intervention=131, q3_intervention=148),
                                "continuous", 2, "median_intervention")],
}


def _flat():
    for code, cases in CASES.items():
        for n, case in enumerate(cases):
            yield pytest.param(code, *case, id=f"{code}-{n}")


@pytest.mark.parametrize("code,change,sheet,row,field", list(_flat()))
def test_rule_reports_at_cell(tmp_path, code, change, sheet, row, field):
    form = copy.deepcopy(baseline())
    change(form)
    result = run(tmp_path, form)
    hits = [f for f in result.finding_list if f.rule == code]
    assert any(f.sheet == sheet and f.row == row and f.field == field for f in hits), \
        [(f.sheet, f.row, f.field, f.rule, f.message) for f in result.finding_list]
    for f in hits:
        assert f.severity == REGISTRY[code].severity
        assert f"{f.sheet}!{f.column}{f.row}" in f.message, f.message  # names its own cell
    for f in result.finding_list:  # every finding names the fields it involves
        assert_involves(result, f)
    s = result.summary
    assert s.rows_read == s.rows_passed + s.rows_excluded


COMPARATIVE_CODES = set(CASES) | {"median-iqr-converted"}


# planted changes that must not be reported: rounding edges, bounds and genuine results
NEGATIVE = [
    # an arm whose every participant had the event
    ("events-exceed-total", setv("comparisons", 0, events_control=139)),
    # within rounding of the CI: 0.125 with CI 0.13 (0.125 to 0.135), and 0.12 (0.115 to 0.125)
    ("effect-outside-ci", setv("comparisons", 0, rr_reported=0.125, rr_ci_low="0.13", rr_ci_high="1.26")),
    ("effect-outside-ci", setv("comparisons", 0, rr_reported=0.12)),
    # a log-symmetric CI: 0.70 (0.54-0.91) is not flagged
    ("ratio-ci-not-log-symmetric", setv("comparisons", 0, rr_reported=0.70, rr_ci_low=0.54, rr_ci_high=0.91,
                                        p_value=0.007)),
    # HR 0.80 with se 0.05 on the log scale is 0.73-0.88; rounded to one digit 0.8 (0.7-0.9) looks natural-symmetric
    ("ratio-ci-not-log-symmetric", setv("comparisons", 0, rr_reported=0.8, rr_ci_low=0.7, rr_ci_high=0.9,
                                        p_value="<0.001")),
    # bounds that agree with the CI: NS and p > 0.05 for Aronson; p < 0.05 and p <= 0.05 for Ferguson
    ("p-value-contradicts-ci", setv("comparisons", 0, p_value="NS")),
    ("p-value-contradicts-ci", setv("comparisons", 0, p_value="n.s.")),
    ("p-value-contradicts-ci", setv("comparisons", 0, p_value="p > 0.05")),
    ("p-value-contradicts-ci", setv("comparisons", 1, p_value="<0.05")),
    ("p-value-contradicts-ci", setv("comparisons", 1, p_value="≤0.05")),
    ("p-value-contradicts-ci", setv("comparisons", 1, p_value="P<.0001")),
    # Altman & Bland 2011's example: RR 0.81 (0.70-0.94) gives P = 0.005
    ("p-value-contradicts-ci", setv("comparisons", 0, rr_reported=0.81, rr_ci_low=0.70, rr_ci_high=0.94,
                                    p_value=0.005)),
    ("p-value-inconsistent", setv("comparisons", 0, rr_reported=0.81, rr_ci_low=0.70, rr_ci_high=0.94,
                                  p_value="p=.005")),
    # Aronson's p rounded to two digits (0.12) and to one (0.1)
    ("p-value-inconsistent", setv("comparisons", 0, p_value=0.1)),
    # the other direction but inside the counts' CI (0.13-1.26): a size mismatch, not an error
    ("effect-contradicts-counts", setv("comparisons", 0, rr_reported=1.1, rr_ci_low=0.35, rr_ci_high=3.4)),
    # an SD smaller than the others, but no SE
    ("sd-looks-like-se", setv("continuous", 1, sd_intervention=8.0)),
]


@pytest.mark.parametrize("code,change", NEGATIVE, ids=[f"{c}-{i}" for i, (c, _) in enumerate(NEGATIVE)])
def test_rule_not_reported(tmp_path, code, change):
    form = copy.deepcopy(baseline())
    change(form)
    result = run(tmp_path, form)
    assert [f.message for f in result.finding_list if f.rule == code] == []


def test_direction_inside_ci_is_a_size_warning(tmp_path):
    form = copy.deepcopy(baseline())
    setv("comparisons", 0, rr_reported=1.1, rr_ci_low=0.35, rr_ci_high=3.4)(form)
    (hit,) = [f for f in run(tmp_path, form).finding_list if f.rule == "effect-differs-from-counts"]
    assert "0.411" in hit.message and "comparisons!H2" in hit.message


def test_messages_say_what_to_do(tmp_path):
    form = copy.deepcopy(baseline())
    setv("comparisons", 0, rr_reported=2.43, rr_ci_low=0.79, rr_ci_high=7.44)(form)
    setv("comparisons", 5, rr_reported=0.38)(form)
    setv("comparisons", 1, p_value="NS")(form)
    setv("continuous", 1, sd_intervention=1.1)(form)
    by = {(f.rule, f.row): f.message for f in run(tmp_path, form).finding_list}
    assert "1/2.43 = 0.412 matches" in by[("effect-contradicts-counts", 2)]
    assert "matches their odds ratio" in by[("effect-differs-from-counts", 7)]
    assert "excludes the null value 1" in by[("p-value-contradicts-ci", 3)]
    assert "1.1 x sqrt(120) = 12.05 mmHg" in by[("sd-looks-like-se", 3)]


def test_median_iqr_converted_on_request(tmp_path):
    form = copy.deepcopy(baseline())
    CASES["median-iqr-not-mean-sd"][0][0](form)
    result = run(tmp_path, form, convert=True)
    assert not [f for f in result.finding_list if f.rule == "median-iqr-not-mean-sd"]
    (note,) = [f for f in result.finding_list if f.rule == "median-iqr-converted"]
    assert note.severity == "info" and note.cell == "continuous!D2" and "Luo et al. 2018" in note.message
    row = result.clean_tables["continuous"].iloc[0]
    # Luo 2018 (S2): w = 0.7 + 0.39/60; Wan 2014 (C3): (q3 - q1) / (2 Phi^-1((0.75 n - 0.125)/(n + 0.25)))
    w = 0.7 + 0.39 / 60
    assert row["mean_intervention"] == pytest.approx(w * (131 + 148) / 2 + (1 - w) * 139)
    eta = 2 * NormalDist().inv_cdf((0.75 * 60 - 0.125) / 60.25)
    assert row["sd_intervention"] == pytest.approx((148 - 131) / eta)


def test_median_range_formulas():
    n, med, a, b, q1, q3 = 25, 50.0, 20.0, 90.0, 40.0, 62.0
    xi = 2 * NormalDist().inv_cdf((n - 0.375) / (n + 0.25))
    eta = 2 * NormalDist().inv_cdf((0.75 * n - 0.125) / (n + 0.25))
    mean, sd, scen = mean_sd_from_quantiles(n, med, minimum=a, maximum=b)
    w = 4 / (4 + n ** 0.75)
    assert scen == "S1" and mean == pytest.approx(w * (a + b) / 2 + (1 - w) * med) and sd == pytest.approx((b - a) / xi)
    mean, sd, scen = mean_sd_from_quantiles(n, med, q1, q3, a, b)
    w1, w2 = 2.2 / (2.2 + n ** 0.75), 0.7 - 0.72 / n ** 0.55
    assert scen == "S3"
    assert mean == pytest.approx(w1 * (a + b) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * med)
    assert sd == pytest.approx((b - a) / (2 * xi) + (q3 - q1) / (2 * eta))
    assert mean_sd_from_quantiles(n, med)[2] == ""


def test_altman_bland_example():
    """Altman & Bland 2011: RR 0.81, 95% CI 0.70 to 0.94 gives z = 2.80, P = 0.005."""
    import numpy as np

    p0, p_min, p_max = p_range_from_ci(np.array([0.81]), np.array([0.70]), np.array([0.94]),
                                       np.array([0.005]), np.array([0.005]), np.array([0.005]), True)
    assert round(float(p0[0]), 3) == 0.005
    assert p_min[0] < 0.005 < p_max[0] < 0.05


# ---------------------------------------------------------------------------------------------
# the p_value field type
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,value,bound", [
    ("0.03", 0.03, ""), ("p = 0.03", 0.03, ""), ("P=.03", 0.03, ""), ("p=0,03", 0.03, ""), ("<0.001", 0.001, "<"),
    ("p < 0.001", 0.001, "<"), ("≤0.05", 0.05, "<="), ("<.05", 0.05, "<"), ("NS", 0.05, "ns"), ("n.s.", 0.05, "ns"),
    ("not significant", 0.05, "ns"), ("p = NS", 0.05, "ns"), (">0.05", 0.05, ">"), ("0.000", 0.0005, "<"),
    ("P < 10⁻⁴", 0.0001, "<"), ("1.2 x 10^-5", 1.2e-5, ""), ("1.2e-5", 1.2e-5, ""), ("P-value: 0.20", 0.2, ""),
])
def test_p_value_texts(text, value, bound):
    p = parse_p_text(text)
    assert p.status == "value" and p.value == pytest.approx(value) and p.bound == bound


@pytest.mark.parametrize("text", ["p = 1.3", "abc", "<0", "0.03 (0.01-0.05)", "p < ", "5%"])
def test_p_value_unreadable(text):
    assert parse_p_text(text).status == "invalid"


def test_p_value_column_from_number_cells():
    col = parse_p_column([0.03, 0, 0.0012, "<0.001", None, "x", True, 2.5])
    assert list(col.bounds[:4]) == ["", "<", "", "<"]
    assert col.values[1] == 0.0005 and col.decimals[0] == 2 and col.decimals[2] == 4
    assert sorted(col.invalid) == [5, 6, 7]


def test_unreadable_p_is_invalid_number(tmp_path):
    form = copy.deepcopy(baseline())
    setv("comparisons", 0, p_value="significant?")(form)
    (hit,) = [f for f in run(tmp_path, form).finding_list if f.rule == "invalid-number"]
    assert hit.cell == "comparisons!K2" and "not a p-value" in hit.message


@settings(max_examples=60, deadline=None)
@given(digits=st.integers(1, 4), mantissa=st.integers(1, 999), op=st.sampled_from(["", "<", "<=", ">"]),
       label=st.sampled_from(["", "p", "P", "p-value"]), eq=st.sampled_from(["", "=", " = ", ": "]),
       space=st.sampled_from(["", " ", "\u00a0"]), lead=st.booleans(), comma=st.booleans())
def test_p_value_formatting_never_changes_the_reading(digits, mantissa, op, label, eq, space, lead, comma):
    """The same p written every way reviewers write it reads as the same number and bound."""
    value = mantissa / 10 ** (digits + 2)
    if value >= 1:
        return
    canonical = f"{op}{value:.{digits + 2}f}"
    number = f"{value:.{digits + 2}f}"
    if not lead:
        number = number[1:]  # .03
    if comma:
        number = number.replace(".", ",")
    unicode_op = {"<=": "≤"}.get(op, op) if comma else op
    sep = eq if not op else space
    text = f"{label}{sep if label else ''}{unicode_op}{space if op else ''}{number}"
    a, b = parse_p_text(canonical), parse_p_text(text)
    assert (a.status, a.bound, a.decimals) == (b.status, b.bound, b.decimals) == ("value", a.bound, digits + 2), text
    assert a.value == pytest.approx(b.value) == pytest.approx(value), text


# ---------------------------------------------------------------------------------------------
# schema errors: parameters of the new checks
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d["checks"]["comparisons"][0].update(totals=["total_vaccinated"]), "one field per field of 'events'"),
    (lambda d: d["checks"]["comparisons"][4].update(scale="log"), "'scale' must be one of ratio, difference"),
    (lambda d: d["checks"]["continuous"][0].update(convert_median_iqr="yes"), "must be true or false"),
    (lambda d: d["checks"]["comparisons"].append({"rule": "p-value-inconsistent"}), "name that one"),
    (lambda d: d["checks"]["comparisons"][2].update(effect="hr"), "has no field 'hr'"),
])
def test_bad_check_parameters_refused_with_line(tmp_path, mutate, fragment):
    from curation.errors import SchemaError

    d = schema_dict()
    mutate(d)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(SchemaError) as exc:
        load_schema(p)
    assert fragment in str(exc.value) and ", line " in str(exc.value)


# ---------------------------------------------------------------------------------------------
# end to end: curate validate on a comparative review built here
# ---------------------------------------------------------------------------------------------

def test_curate_validate_finds_planted_errors_at_their_cells(tmp_path):
    form = copy.deepcopy(baseline())
    setv("comparisons", 0, events_control=140)(form)  # more events than controls
    setv("studies", 3, n_randomised=20000)(form)  # Hart & Sutherland: 13598 + 12867 randomised
    setv("comparisons", 1, p_value="NS")(form)  # the CI excludes 1
    setv("comparisons", 4, rr_reported=1.27, rr_ci_low=0.81, rr_ci_high=1.98)(form)  # 1/0.79: inverted
    setv("comparisons", 6, rr_ci_high=0.32)(form)  # Vandiviere: RR 0.20 (0.08-0.50) typed 0.08-0.32
    setv("comparisons", 7, p_value="p < 0.001")(form)  # TPT Madras: RR 1.01, p = 0.88
    setv("continuous", 3, sd_control=0.8)(form)  # SE of 10.9 with n = 198 is 0.77
    schema = write_schema(tmp_path / "review.yaml")
    path = write_form(tmp_path / "trial_form.xlsx", form)
    out = tmp_path / "findings.json"
    proc = subprocess.run([CURATE, "validate", str(path), "--schema", str(schema), "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = json.loads(out.read_text())["findings"]
    got = {(f["rule"], f["cell"]) for f in findings}
    expected = {("events-exceed-total", "comparisons!F2"), ("arm-totals-exceed-randomised", "comparisons!E5"),
                ("arm-totals-exceed-randomised", "arms!E9"), ("p-value-contradicts-ci", "comparisons!K3"),
                ("effect-contradicts-counts", "comparisons!H6"), ("p-value-contradicts-ci", "comparisons!K9"),
                ("sd-looks-like-se", "continuous!H5"), ("ratio-ci-not-log-symmetric", "comparisons!J8")}
    assert expected <= got, sorted(got)
    # no false error: every error is one planted above (or follows from it on the same row)
    errors = {(f["rule"], f["cell"]) for f in findings if f["severity"] == "error"}
    assert errors <= expected | {("effect-differs-from-counts", "comparisons!H2")}, sorted(errors - expected)
    assert "comparisons!K3" in proc.stdout or "K3" in proc.stdout


# ---------------------------------------------------------------------------------------------
# wording from the schema: units and labels of the review's own fields, never PRRT's
# ---------------------------------------------------------------------------------------------

def test_messages_use_the_schema_units_and_labels(tmp_path):
    schema = {
        "name": "generic", "vocabularies": {"time_unit": {"terms": [
            {"value": "weeks", "factor": 1, "aliases": ["wk"]}, {"value": "days", "factor": 0.14285714285714285},
            {"value": "months", "factor": 4.348214285714286}]}},
        "sheets": {
            "studies": {"key": ["study_id"], "fields": {"study_id": {"type": "text", "required": True}}},
            "outcomes": {"key": ["study_id"], "parent": {"sheet": "studies", "key": "study_id"}, "fields": {
                "study_id": {"type": "text", "required": True},
                "hr": {"type": "number", "min_exclusive": 0, "warn_max": 5, "description": "Hazard ratio"},
                "orr_pct": {"type": "percentage", "description": "Objective response rate"},
                "cr_pct": {"type": "percentage", "description": "Complete response rate"},
                "time_median": {"type": "number", "min_exclusive": 0, "warn_max": 200, "unit_field": "time_unit"},
                "time_unit": {"type": "vocabulary", "vocabulary": "time_unit", "default": "weeks"}}}},
        "checks": {"outcomes": [{"rule": "dcr-below-orr", "dcr": "orr_pct", "orr": "cr_pct"}]},
    }
    path = tmp_path / "generic.yaml"
    path.write_text(yaml.safe_dump(schema, sort_keys=False))
    fields = {"studies": ["study_id"], "outcomes": ["study_id", "hr", "orr_pct", "cr_pct", "time_median", "time_unit"]}
    form = {"studies": [{"study_id": "S01"}, {"study_id": "S02"}],
            "outcomes": [{"study_id": "S01", "hr": 7, "orr_pct": 10, "cr_pct": 20, "time_median": 2100,
                          "time_unit": "days"},
                         {"study_id": "S02", "hr": 0.7, "time_median": -3}]}
    result = validate(write_form(tmp_path / "g.xlsx", form, fields), load_schema(path))
    by = {(f.rule, f.cell): f.message for f in result.finding_list}
    assert by[("implausible-value", "outcomes!B2")] == \
        "hr = 7 (outcomes!B2) is outside the plausible range -..5; check the paper"
    assert by[("implausible-value", "outcomes!E2")].startswith("time_median = 300 weeks (outcomes!E2)")
    assert by[("out-of-range", "outcomes!E3")] == "time_median = -3 weeks (outcomes!E3) must be > 0"
    assert by[("dcr-below-orr", "outcomes!C2")] == (
        "orr_pct = 10% (outcomes!C2) is below cr_pct = 20% (outcomes!D2); orr_pct (objective response rate) "
        "includes every case counted in cr_pct (complete response rate), so it cannot be lower")
    assert not any("months" in f.message or "disease control" in f.message for f in result.finding_list)


def test_p_value_bound_kept_in_the_clean_data(tmp_path):
    clean = run(tmp_path, baseline()).clean_tables["comparisons"]
    assert list(clean["p_value_bound"]) == [("<" if r["p_value"] == "<0.001" else "")
                                            for r in baseline()["comparisons"]]

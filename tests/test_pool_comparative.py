"""Two-arm and reported-effect pooling (pooling contract, version 2) against R's metafor.

Reference values: tests/reference/metafor_comparative.json, computed by
tests/reference/metafor_comparative.R (rma, rma.mh, rma.peto, predict(..., transf = exp)); no R is
needed here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from curation import pool

REF = json.loads((Path(__file__).parent / "reference" / "metafor_comparative.json").read_text())
DATASETS = REF["datasets"]
FITS = REF["fits"]
BCG = DATASETS["bcg"]

# relative tolerance per quantity, with an absolute floor for values near 0:
# |ours - metafor| <= rtol * max(|metafor|, floor)
RTOL = {
    "est_t": 1e-6, "se_t": 1e-6, "ci_low_t": 1e-6, "ci_high_t": 1e-6, "pi_low_t": 1e-6,
    "pi_high_t": 1e-6, "estimate": 1e-6, "ci_low": 1e-6, "ci_high": 1e-6, "pi_low": 1e-6,
    "pi_high": 1e-6, "tau2": 1e-6, "se_tau2": 1e-6, "i2": 1e-6, "h2": 1e-6, "q": 1e-6,
    "q_pval": 1e-6, "tau2_ci_low": 1e-6, "tau2_ci_high": 1e-6,
}
FLOOR = 1e-10
PER_STUDY_RTOL = 1e-9  # yi, vi, weights: closed forms


def close(ours, ref, rtol, floor=FLOOR):
    if ref is None:
        return ours is None or (isinstance(ours, float) and math.isnan(ours))
    if ours is None or math.isnan(ours):
        return False
    return abs(ours - ref) <= rtol * max(abs(ref), floor)


def fit_id(f):
    extra = "-sub" if "subgroups" in f else ""
    extra += "-loo" if "loo" in f else ""
    return (f"{f['dataset']}-{f['measure']}-{f['method']}-{'hk' if f['hk'] else 'z'}-{f['level']}"
            + extra)


def run(f, subgroups=False):
    ds = DATASETS[f["dataset"]]
    opts = dict(method=f["method"], hk=f["hk"], level=f["level"] / 100,
                subgroups=ds.get("groups") if subgroups else None)
    if f["kind"] == "binary":
        return pool.pool_binary(ds["ai"], ds["n1i"], ds["ci"], ds["n2i"], measure=f["measure"], **opts)
    if f["kind"] == "continuous":
        return pool.pool_continuous(ds["m1i"], ds["sd1i"], ds["n1i"], ds["m2i"], ds["sd2i"],
                                    ds["n2i"], measure=f["measure"], **opts)
    yi, sei = pool.ratio_to_log(ds["hr"], ds["lower"], ds["upper"])
    return pool.pool_generic(yi, sei, back_transform="exp", **opts)


def per_study(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def check_core(res, ref, where):
    for key, rtol in RTOL.items():
        if key in ref:
            assert close(getattr(res, key), ref[key], rtol), (where, key, getattr(res, key), ref[key])
    assert res.k == ref["k"], where
    assert res.q_df == ref["q_df"], where
    for key in ("yi", "vi", "weights"):
        if key in ref:
            np.testing.assert_allclose(getattr(res, key), per_study(ref[key]), rtol=PER_STUDY_RTOL,
                                       atol=1e-14, equal_nan=True, err_msg=f"{where} {key}")


@pytest.mark.parametrize("f", [f for f in FITS if not f.get("error")], ids=fit_id)
def test_matches_metafor(f):
    res = run(f, subgroups="subgroups" in f)
    where = fit_id(f)
    check_core(res, f, where)
    ratio = f["measure"] in ("OR", "RR", "ROM", "HR")
    assert res.scale == ("log" if ratio else "natural")
    assert res.is_ratio == ratio
    if f["method"] in ("MH", "PETO"):
        assert res.tau2 == 0 and (res.pi_low, res.pi_high) == (res.ci_low, res.ci_high)
    if "subgroups" in f:
        assert list(res.subgroups) == [s["label"] for s in f["subgroups"]]
        for s in f["subgroups"]:
            sub = res.subgroups[s["label"]]
            for key in ("est_t", "se_t", "tau2", "q", "estimate", "ci_low", "ci_high"):
                assert close(getattr(sub, key), s[key], 1e-6), (where, s["label"], key)
        assert close(res.q_between, f["q_between"], 1e-6), where
        assert res.df_between == f["df_between"]
        assert close(res.p_between, f["p_between"], 1e-6), where


@pytest.mark.parametrize("f", [f for f in FITS if f.get("error")], ids=fit_id)
def test_no_estimate_where_metafor_refuses(f):
    """metafor stops (e.g. Paule-Mandel's tau2.max too low): ours has no estimate and says why."""
    res = run(f)
    assert not res.converged and math.isnan(res.tau2) and math.isnan(res.estimate)
    assert res.notes


@pytest.mark.parametrize("f", [f for f in FITS if "loo" in f], ids=fit_id)
def test_refit_and_leave_one_out_match_metafor(f):
    res = run(f)
    keys = ("est_t", "se_t", "tau2", "i2", "q", "estimate", "ci_low", "ci_high", "pi_low", "pi_high")
    fits = [pool.refit(res, np.delete(np.arange(res.k), i)) for i in range(res.k)]
    if f["method"] not in ("MH", "PETO") and f["kind"] != "generic":
        # leave_one_out refits from the stored per-study outcomes with the same settings
        fits_loo = pool.leave_one_out(res)
        for a, b in zip(fits, fits_loo):
            for key in keys:
                assert close(getattr(b, key), getattr(a, key), 1e-9), key
    for i, (ours, ref) in enumerate(zip(fits, f["loo"])):
        assert (ours.measure, ours.method, ours.hk, ours.level, ours.scale) == (
            res.measure, res.method, res.hk, res.level, res.scale)
        for key in keys:
            assert close(getattr(ours, key), ref[key], 1e-6), (fit_id(f), i, key)


def _loo_cases():
    hr = DATASETS["hr"]
    yi, sei = pool.ratio_to_log(hr["hr"], hr["lower"], hr["upper"])
    args = (BCG["ai"], BCG["n1i"], BCG["ci"], BCG["n2i"])
    return [pool.pool_generic(yi, sei, back_transform="exp"),
            pool.pool_binary(*args, method="MH"), pool.pool_binary(*args, method="PETO"),
            pool.pool_binary(*args, measure="RR", method="PM", hk=True)]


@pytest.mark.parametrize("res", _loo_cases(), ids=["generic-exp", "MH", "PETO", "RR-PM-hk"])
def test_leave_one_out_never_silently_loses_the_setting(res):
    """leave_one_out either refuses (ValueError) or gives what refit gives, scale included."""
    try:
        fits = pool.leave_one_out(res)
    except ValueError:
        assert res.method in ("MH", "PETO") or res.measure == "GEN"
        return
    for i, f in enumerate(fits):
        ref = pool.refit(res, np.delete(np.arange(res.k), i))
        assert (f.scale, f.method, f.hk) == (ref.scale, ref.method, ref.hk)
        for key in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "q"):
            assert close(getattr(f, key), getattr(ref, key), 1e-9), key


# ---------------------------------------------------------------------------------------------
# the contract's public table (pooling.md: metafor 3.8-1 on dat.bcg), to the digits printed
# ---------------------------------------------------------------------------------------------

# measure, method, hk -> (pooled, ci low, ci high, tau2, I2 %, pi low, pi high); None: not printed
PUBLIC_BCG = [
    ("RR", "REML", False, (0.4894, 0.3441, 0.6962, 0.3132, 92.22, None, None)),
    ("RR", "DL", False, (0.4896, 0.3449, 0.6950, 0.3088, 92.12, None, None)),
    ("RR", "REML", True, (0.4894, 0.3301, 0.7257, None, None, 0.1359, 1.7629)),
    ("RR", "MH", False, (0.6353, 0.5881, 0.6862, None, None, None, None)),
    ("OR", "REML", False, (0.4746, 0.3296, 0.6835, 0.3378, 92.07, None, None)),
    ("OR", "MH", False, (0.6229, 0.5748, 0.6750, None, None, None, None)),
    ("OR", "PETO", False, (0.6222, 0.5746, 0.6738, None, None, None, None)),
    ("RD", "REML", False, (-0.0252, -0.0464, -0.0039, 0.0014, 99.94, None, None)),
]


@pytest.mark.parametrize("measure,method,hk,printed", PUBLIC_BCG,
                         ids=[f"{m}-{me}-{'hk' if h else 'z'}" for m, me, h, _ in PUBLIC_BCG])
def test_public_bcg_table(measure, method, hk, printed):
    res = pool.pool_binary(BCG["ai"], BCG["n1i"], BCG["ci"], BCG["n2i"], measure=measure,
                           method=method, hk=hk)
    ours = (res.estimate, res.ci_low, res.ci_high, res.tau2, res.i2, res.pi_low, res.pi_high)
    for name, value, shown in zip(("pooled", "ci_low", "ci_high", "tau2", "I2", "pi_low", "pi_high"),
                                  ours, printed):
        if shown is None:
            continue
        digits = 2 if name == "I2" else 4
        assert round(value, digits) == pytest.approx(shown, abs=1e-12), (name, value, shown)


# ---------------------------------------------------------------------------------------------
# API behaviour
# ---------------------------------------------------------------------------------------------


def test_results_say_what_they_are_and_report_ratios():
    res = pool.pool_binary(BCG["ai"], BCG["n1i"], BCG["ci"], BCG["n2i"], measure="RR", method="REML")
    d = res.to_dict()
    assert (d["measure"], d["scale"], d["method"]) == ("RR", "log", "REML")
    assert d["estimate"] == pytest.approx(math.exp(res.est_t), rel=1e-12)
    assert d["display"]["ci_low"] == pytest.approx(math.exp(res.ci_low_t), rel=1e-12)
    assert d["data"]["ai"] == list(map(float, BCG["ai"]))
    json.dumps(d)
    rd = pool.pool_binary(BCG["ai"], BCG["n1i"], BCG["ci"], BCG["n2i"], measure="RD")
    assert (rd.scale, rd.estimate, rd.is_ratio) == ("natural", rd.est_t, False)
    med = pool.pool_generic([24.5, 28.0, 18.7], [2.1, 3.4, 1.9])
    assert (med.measure, med.scale, med.estimate) == ("GEN", "natural", med.est_t)
    prop = pool.pool_proportions([15, 41, 65], [46, 68, 151])
    assert (prop.scale, prop.is_ratio) == ("logit", False)


def test_refusals_are_clear():
    args = ([1, 2], [10, 10], [3, 4], [10, 10])
    with pytest.raises(ValueError, match="GLMM is not available for two-arm"):
        pool.pool_binary(*args, method="GLMM")
    with pytest.raises(ValueError, match="Peto"):
        pool.pool_binary(*args, measure="RR", method="PETO")
    with pytest.raises(ValueError, match="Knapp-Hartung"):
        pool.pool_binary(*args, method="MH", hk=True)
    with pytest.raises(ValueError, match="between 0 and the arm's total"):
        pool.pool_binary([11, 2], [10, 10], [3, 4], [10, 10])
    with pytest.raises(ValueError, match="MH"):
        pool.pool_continuous([1], [1], [10], [2], [1], [10], method="MH")
    with pytest.raises(ValueError, match="same sign"):
        pool.pool_continuous([1, -2], [1, 1], [10, 10], [2, 2], [1, 1], [10, 10], measure="ROM")
    with pytest.raises(ValueError, match="back_transform"):
        pool.pool_generic([0.1, 0.2], [0.1, 0.1], back_transform="logit")
    with pytest.raises(ValueError, match="contain"):
        pool.ratio_to_log(0.5, 0.6, 0.9)


def test_mh_without_estimate_says_so():
    """No event in the control arm of any study: metafor's MH odds ratio is NA."""
    res = pool.pool_binary([2, 3], [10, 12], [0, 0], [10, 11], measure="OR", method="MH")
    assert math.isnan(res.estimate) and not res.converged
    assert "undefined" in res.note


def test_ratio_and_difference_helpers():
    yi, sei = pool.ratio_to_log(0.72, 0.55, 0.94)
    assert yi == pytest.approx(math.log(0.72), rel=1e-15)
    assert sei == pytest.approx((math.log(0.94) - math.log(0.55)) / (2 * 1.959964), rel=1e-15)
    y, s = pool.ratio_to_log([0.5, 2.0], [0.25, 1.0], [1.0, 4.0])
    np.testing.assert_allclose(s, [math.log(4) / (2 * 1.959964)] * 2)
    e, s = pool.difference_to_se(-2.5, -4.0, -1.0)
    assert (e, s) == (-2.5, pytest.approx(3.0 / (2 * 1.959964), rel=1e-15))


# ---------------------------------------------------------------------------------------------
# invariants (hypothesis)
# ---------------------------------------------------------------------------------------------


@st.composite
def two_arm_tables(draw, min_k=2, max_k=6):
    k = draw(st.integers(min_k, max_k))
    n1 = draw(st.lists(st.integers(1, 400), min_size=k, max_size=k))
    n2 = draw(st.lists(st.integers(1, 400), min_size=k, max_size=k))
    a = [draw(st.integers(0, n)) for n in n1]
    c = [draw(st.integers(0, n)) for n in n2]
    return a, n1, c, n2


def _usable(a, n1, c, n2):
    a, n1, c, n2 = map(np.asarray, (a, n1, c, n2))
    # MH/Peto need events and non-events somewhere in both arms
    return (a.sum() + c.sum() > 0) and ((n1 - a).sum() + (n2 - c).sum() > 0) and a.sum() > 0 \
        and c.sum() > 0 and (n1 - a).sum() > 0 and (n2 - c).sum() > 0


@settings(max_examples=30, deadline=None)
@given(two_arm_tables(), st.sampled_from(["EE", "DL", "REML", "MH", "PETO"]),
       st.sampled_from(["OR", "RD"]))
def test_swapping_arms_negates_log_or_and_rd(tables, method, measure):
    a, n1, c, n2 = tables
    assume(_usable(a, n1, c, n2))
    if method == "PETO":
        measure = "OR"
    fwd = pool.pool_binary(a, n1, c, n2, measure=measure, method=method)
    rev = pool.pool_binary(c, n2, a, n1, measure=measure, method=method)
    assume(fwd.converged and rev.converged)
    assert rev.est_t == pytest.approx(-fwd.est_t, rel=1e-7, abs=1e-12)
    assert rev.se_t == pytest.approx(fwd.se_t, rel=1e-7)
    assert rev.tau2 == pytest.approx(fwd.tau2, rel=1e-6, abs=1e-9)
    assert rev.q == pytest.approx(fwd.q, rel=1e-7, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(two_arm_tables(), st.sampled_from(["EE", "MH", "PETO"]), st.sampled_from(["OR", "RR", "RD"]))
def test_duplicated_studies_leave_common_effect_estimate_unchanged(tables, method, measure):
    a, n1, c, n2 = tables
    assume(_usable(a, n1, c, n2))
    if method == "PETO":
        measure = "OR"
    once = pool.pool_binary(a, n1, c, n2, measure=measure, method=method)
    twice = pool.pool_binary(a + a, n1 + n1, c + c, n2 + n2, measure=measure, method=method)
    assume(once.converged)
    assert twice.est_t == pytest.approx(once.est_t, rel=1e-9, abs=1e-12)
    if method == "EE":
        assert twice.se_t == pytest.approx(once.se_t / math.sqrt(2), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 500), st.integers(1, 500), st.data())
def test_zero_cell_study_gets_escalcs_half(n1, n2, data):
    a = data.draw(st.integers(0, n1))
    c = data.draw(st.integers(0, n2))
    zero = 0 in (a, n1 - a, c, n2 - c)
    add = 0.5 if zero else 0.0
    A, B, C, D = a + add, n1 - a + add, c + add, n2 - c + add
    yi, vi = pool.escalc_binary([a], [n1], [c], [n2], "OR")
    assert yi[0] == pytest.approx(math.log(A * D / (B * C)), rel=1e-12, abs=1e-12)
    assert vi[0] == pytest.approx(1 / A + 1 / B + 1 / C + 1 / D, rel=1e-12)
    yi, vi = pool.escalc_binary([a], [n1], [c], [n2], "RR")
    assert yi[0] == pytest.approx(math.log(A / (A + B)) - math.log(C / (C + D)), rel=1e-12, abs=1e-12)
    assert vi[0] == pytest.approx(1 / A - 1 / (A + B) + 1 / C - 1 / (C + D), rel=1e-12)
    yi, vi = pool.escalc_binary([a], [n1], [c], [n2], "RD")
    p1, p2 = A / (A + B), C / (C + D)
    assert yi[0] == pytest.approx(p1 - p2, rel=1e-12, abs=1e-15)
    assert vi[0] == pytest.approx(p1 * (1 - p1) / (A + B) + p2 * (1 - p2) / (C + D), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 2), st.floats(0.05, 1.0)), min_size=2, max_size=8),
       st.sampled_from(["EE", "DL", "REML", "PM"]), st.booleans())
def test_generic_exp_is_the_exponentiated_natural_fit(effects, method, hk):
    yi = [e for e, _ in effects]
    sei = [s for _, s in effects]
    nat = pool.pool_generic(yi, sei, method=method, hk=hk)
    ratio = pool.pool_generic(yi, sei, method=method, hk=hk, back_transform="exp")
    for key in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
        assert getattr(ratio, key) == pytest.approx(math.exp(getattr(nat, key)), rel=1e-12)
    assert ratio.tau2 == nat.tau2 and ratio.est_t == nat.est_t


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 300), st.integers(2, 300), st.data())
def test_single_table_mh_or_is_the_sample_odds_ratio(n1, n2, data):
    a = data.draw(st.integers(1, n1 - 1))
    c = data.draw(st.integers(1, n2 - 1))
    res = pool.pool_binary([a], [n1], [c], [n2], measure="OR", method="MH")
    assert res.estimate == pytest.approx(a * (n2 - c) / ((n1 - a) * c), rel=1e-12)
    assert (res.q, res.q_df, res.i2) == (0.0, 0, 0.0)


def test_mh_rr_with_only_events_has_no_interval():
    """Every study has only events: rma.mh gives RR = 1 with an NA standard error (a variance
    that is negative by rounding), and so do we, with a note."""
    res = pool.pool_binary([18, 18, 29], [18, 18, 29], [39, 36, 9], [39, 36, 9], measure="RR",
                           method="MH")
    assert res.estimate == pytest.approx(1.0, rel=1e-12)
    assert math.isnan(res.se_t) and math.isnan(res.ci_low) and not res.converged
    assert "negative" in res.note


def test_peto_without_any_informative_table_says_so():
    """rma.peto stops when every table has no event (or only events): ours has no estimate."""
    res = pool.pool_binary([0, 0], [10, 12], [0, 0], [11, 9], method="PETO")
    assert math.isnan(res.estimate) and not res.converged and "Peto" in res.note
    assert res.data["n1i"] == (10.0, 12.0)

"""curation.pool against R's metafor (reference values in tests/reference/metafor_reference.json,
computed by tests/reference/metafor_reference.R; no R is needed here)."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation import pool

REF = json.loads((Path(__file__).parent / "reference" / "metafor_reference.json").read_text())
DATASETS = REF["datasets"]
FITS = REF["fits"]

# relative tolerance per quantity, and an absolute floor for values near 0:
# |ours - metafor| <= rtol * max(|metafor|, floor)
RTOL = {
    "est_t": 1e-6, "se_t": 1e-6, "ci_low_t": 1e-6, "ci_high_t": 1e-6, "pi_low_t": 1e-6,
    "pi_high_t": 1e-6, "estimate": 1e-6, "ci_low": 1e-6, "ci_high": 1e-6, "pi_low": 1e-6,
    "pi_high": 1e-6, "tau2": 1e-6, "se_tau2": 1e-6, "i2": 1e-6, "h2": 1e-6, "q": 1e-6,
    "q_pval": 1e-6, "tau2_ci_low": 1e-6, "tau2_ci_high": 1e-6, "i2_ci_low": 1e-6,
    "i2_ci_high": 1e-6, "h2_ci_low": 1e-6, "h2_ci_high": 1e-6,
}
FLOOR = 1e-10
GLMM_RTOL = 1e-3
# GLMM figures are compared relative to max(|value|, 0.1): lme4's own optimum is only accurate to
# a few 1e-4 on flat likelihoods, which matters for proportions near 0
GLMM_FLOOR = 0.1
# Near-separated data (zero_full: tau2 9 to 14, I2 98%) leave lme4's optimiser short of the maximum:
# there a figure may differ by up to 1e-2, but only if our fit has the higher log-likelihood
GLMM_RTOL_FALLBACK = 1e-2
GLMM_KEYS = ("est_t", "se_t", "ci_low_t", "ci_high_t", "pi_low_t", "pi_high_t", "estimate",
             "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2", "h2")


def close(ours, ref, rtol, floor=FLOOR):
    if ref is None:
        return ours is None or (isinstance(ours, float) and math.isnan(ours))
    if ours is None or math.isnan(ours):
        return False
    return abs(ours - ref) <= rtol * max(abs(ref), floor)


def fit_id(f):
    return f"{f['dataset']}-{f['measure']}-{f['method']}-{'hk' if f['hk'] else 'z'}-{f['level']}"


def run(f, dataset=None):
    ds = dataset or DATASETS[f["dataset"]]
    level = f["level"] / 100
    if f["measure"] == "GEN":
        return pool.pool_generic(ds["yi"], ds["sei"], method=f["method"], hk=f["hk"], level=level,
                                 subgroups=ds.get("groups"))
    return pool.pool_proportions(ds["events"], ds["totals"], measure=f["measure"],
                                 method=f["method"], hk=f["hk"], level=level,
                                 subgroups=ds.get("groups"))


# Leave-one-out fits where lme4's vcov breaks down (finite-difference Hessian on near-separated
# data): metafor reports se ~0.019 on the logit scale with tau2 ~ 13.7, i.e. a CI far narrower than
# the spread of a single study. Ours (~1.75, like the neighbouring fits 1 and 5) is checked to be the larger value instead.
LME4_VCOV_FAILURES = {("zero_full", 2), ("zero_full", 4)}
SE_KEYS = ("se_t", "ci_low_t", "ci_high_t", "pi_low_t", "pi_high_t", "ci_low", "ci_high",
           "pi_low", "pi_high")


def glmm_ours_is_better(res, ref):
    """Is our GLMM log-likelihood at least lme4's (both evaluated by our quadrature)?"""
    x = np.asarray(res.events)
    n = np.asarray(res.totals)
    ours = pool._glmm_loglik(res.est_t, math.sqrt(res.tau2), x, n)
    theirs = pool._glmm_loglik(ref["est_t"], math.sqrt(ref["tau2"]), x, n)
    return ours >= theirs - 1e-9


def glmm_close(res, ref, key):
    ours = getattr(res, key)
    if close(ours, ref[key], GLMM_RTOL, GLMM_FLOOR):
        return True
    return close(ours, ref[key], GLMM_RTOL_FALLBACK, GLMM_FLOOR) and glmm_ours_is_better(res, ref)


def check_core(res, ref, where, dataset=None):
    """Compare every figure metafor gave; returns nothing, asserts."""
    glmm = res.method == "GLMM"
    keys = GLMM_KEYS if glmm else RTOL
    for key in keys:
        if key not in ref:
            continue
        if key in ("pi_low", "pi_high", "pi_low_t", "pi_high_t") and ref[key] is None:
            continue  # metafor's predict gives no PI for EE models: ours equals the CI (below)
        ours = getattr(res, key)
        if glmm:
            assert glmm_close(res, ref, key), (where, key, ours, ref[key])
        else:
            assert close(ours, ref[key], RTOL[key]), (where, key, ours, ref[key])
    assert res.k == ref["k"]
    if not glmm:
        for key in ("yi", "vi", "weights"):
            if key in ref:
                np.testing.assert_allclose(getattr(res, key), ref[key], rtol=1e-9, atol=1e-12,
                                           err_msg=f"{where} {key}")


@pytest.mark.parametrize("f", [f for f in FITS if not f.get("error")], ids=fit_id)
def test_matches_metafor(f):
    res = run(f)
    where = fit_id(f)
    check_core(res, f, where, f["dataset"])
    if res.method == "GLMM":
        assert close(res.q, f["q_wald"], GLMM_RTOL, 1.0), (res.q, f["q_wald"])
        assert close(res.q_lrt, f["q_lrt"], 1e-6), (res.q_lrt, f["q_lrt"])
        assert math.isnan(res.se_tau2) and f["se_tau2"] is None
        assert res.tau2_ci_low is None
        return
    # prediction interval of a common-effect model equals its confidence interval
    if res.method == "EE":
        assert res.pi_low == res.ci_low and res.pi_high == res.ci_high
        assert res.tau2 == 0.0
    # Q-profile confidence intervals (None where confint refuses: EE, k = 1)
    if f.get("confint_error"):
        assert res.tau2_ci_low is None and res.i2_ci_high is None and res.h2_ci_low is None
    else:
        for key in ("tau2_ci_low", "tau2_ci_high", "i2_ci_low", "i2_ci_high", "h2_ci_low",
                    "h2_ci_high"):
            assert close(getattr(res, key), f[key], RTOL[key]), (where, key)
    # metafor's warnings become notes
    for w in f.get("warnings", []):
        if "Knapp & Hartung" in w:
            assert any("Knapp & Hartung" in n for n in res.notes)
        if 'test="z"' in w:
            assert any('test="z"' in n for n in res.notes)
    if res.measure == "PFT":
        assert any("Schwarzer" in n for n in res.notes)
    # Egger's test
    eg = pool.egger_test(res)
    if len(set(res.yi)) == 1:
        # all outcomes identical: metafor's lm returns rounding noise for z (or refuses when the
        # standard errors are equal too); ours is NaN with a note
        assert math.isnan(eg.z) and eg.note
    elif f.get("egger_error") or f.get("egger_z") is None:
        assert math.isnan(eg.z) and math.isnan(eg.p) and eg.note
    else:
        assert close(eg.z, f["egger_z"], 1e-6), (eg.z, f["egger_z"])
        assert close(eg.p, f["egger_p"], 1e-6), (eg.p, f["egger_p"])
        assert close(eg.intercept, f["egger_intercept"], 1e-6)
        assert eg.df == f["egger_df"]


LOO_FITS = [f for f in FITS if not f.get("error") and f.get("loo")]


@pytest.mark.parametrize("f", LOO_FITS, ids=fit_id)
def test_leave_one_out_matches_metafor(f):
    ds = dict(DATASETS[f["dataset"]])
    ds["groups"] = None
    res = run(f, ds)
    loo = pool.leave_one_out(res)
    assert len(loo) == res.k == len(f["loo"])
    for i, (ours, ref) in enumerate(zip(loo, f["loo"])):
        assert ours.k == res.k - 1
        if (f["dataset"], i) in LME4_VCOV_FAILURES and res.method == "GLMM":
            assert ours.se_t > 50 * ref["se_t"]
            assert glmm_ours_is_better(ours, ref)
            assert close(ours.est_t, ref["est_t"], GLMM_RTOL_FALLBACK, GLMM_FLOOR)
            assert close(ours.tau2, ref["tau2"], GLMM_RTOL_FALLBACK)
            continue
        if ref.get("error"):
            assert not ours.converged or math.isnan(ours.estimate)
            continue
        for key, value in ref.items():
            if key in ("pi_low", "pi_high") and value is None:
                continue
            ours_v = getattr(ours, key)
            if res.method == "GLMM":
                if key in GLMM_KEYS:
                    assert glmm_close(ours, ref, key), (i, key, ours_v, value)
            else:
                assert close(ours_v, value, 1e-6), (i, key, ours_v, value)


SUB_FITS = [f for f in FITS if not f.get("error") and f.get("subgroups")]


@pytest.mark.parametrize("f", SUB_FITS, ids=fit_id)
def test_subgroups_match_metafor(f):
    res = run(f)
    labels = [s["label"] for s in f["subgroups"]]
    assert list(res.subgroups) == labels
    for sref in f["subgroups"]:
        sub = res.subgroups[sref["label"]]
        if sref.get("error"):  # e.g. a GLMM on a single study
            assert math.isnan(sub.estimate) and sub.notes
            continue
        check_core(sub, sref, f"{fit_id(f)}/{sref['label']}", f["dataset"])
    assert res.df_between == f["df_between"]
    assert close(res.q_between, f["q_between"], 1e-6 if res.method != "GLMM" else GLMM_RTOL, 1e-8)
    assert close(res.p_between, f["p_between"], 1e-6 if res.method != "GLMM" else 1e-2, 1e-12)
    # the overall fields pool all studies
    assert res.k == len(DATASETS[f["dataset"]]["groups"])


@pytest.mark.parametrize("f", [f for f in FITS if f.get("error")], ids=fit_id)
def test_where_metafor_errors_we_give_nan_or_a_note(f):
    res = run(f)
    assert res.notes
    if f["dataset"] in ("k1", "all100"):
        assert math.isnan(res.estimate) and not res.converged
    else:  # identical studies: metafor/lme4 cannot fit; we report tau2 = 0 at the boundary
        assert res.tau2 == 0.0
        assert any("boundary" in n for n in res.notes)
        assert res.estimate == pytest.approx(0.25, rel=1e-6)


# --- the published table in pooling.md (metafor 3.8-1, dat.pritz1997) ------------------------

PRITZ = DATASETS["pritz"]


def r4(x):
    return round(x, 4)


def test_published_table_pft_reml():
    r = pool.pool_proportions(PRITZ["events"], PRITZ["totals"], measure="PFT", method="REML")
    assert (r4(r.estimate), r4(r.ci_low), r4(r.ci_high)) == (0.8029, 0.7022, 0.8893)
    assert r4(r.tau2) == 0.0258
    assert round(r.i2, 2) == 69.89


def test_published_table_plo_reml_dl_kh():
    r = pool.pool_proportions(PRITZ["events"], PRITZ["totals"], measure="PLO", method="REML")
    assert (r4(r.estimate), r4(r.ci_low), r4(r.ci_high)) == (0.7575, 0.6605, 0.8337)
    assert r4(r.tau2) == 0.3646
    assert round(r.i2, 2) == 56.56
    dl = pool.pool_proportions(PRITZ["events"], PRITZ["totals"], measure="PLO", method="DL")
    assert r4(dl.estimate) == 0.7573
    assert (r4(dl.ci_low), r4(dl.ci_high)) == (0.6606, 0.8334)
    kh = pool.pool_proportions(PRITZ["events"], PRITZ["totals"], measure="PLO", method="REML",
                               hk=True)
    assert (r4(kh.ci_low), r4(kh.ci_high)) == (0.6481, 0.8412)


def test_published_table_glmm():
    r = pool.pool_proportions(PRITZ["events"], PRITZ["totals"], method="GLMM")
    assert (r4(r.estimate), r4(r.ci_low), r4(r.ci_high)) == (0.7984, 0.6924, 0.8746)
    assert r4(r.tau2) == 0.5893
    assert r.measure == "PLO"


def test_reference_versions_recorded():
    assert REF["metafor_version"] == "3.8.1"
    assert REF["r_version"].startswith("R version")
    assert REF["lme4_version"]


# --- escalc -------------------------------------------------------------------------------------


def test_escalc_continuity_correction_only_for_pr_pln_plo():
    x, n = [0, 5, 10], [10, 10, 10]
    yi, vi = pool.escalc_proportions(x, n, "PLO")
    assert yi[0] == pytest.approx(math.log(0.5 / 10.5))
    assert vi[2] == pytest.approx(1 / 10.5 + 1 / 0.5)
    assert vi[1] == pytest.approx(1 / 5 + 1 / 5)
    yi, vi = pool.escalc_proportions(x, n, "PR")
    assert yi[0] == pytest.approx(0.5 / 11)
    yi, vi = pool.escalc_proportions(x, n, "PAS")
    assert yi[0] == 0.0 and yi[2] == pytest.approx(math.pi / 2)
    assert vi[0] == pytest.approx(1 / 40)
    yi, vi = pool.escalc_proportions(x, n, "PFT")
    assert vi[0] == pytest.approx(1 / 42)


@pytest.mark.parametrize("events,totals", [([5, 11], [10, 10]), ([-1], [10]), ([1], [0]),
                                           ([1, 2], [3])])
def test_bad_counts_raise(events, totals):
    with pytest.raises(ValueError):
        pool.pool_proportions(events, totals)


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        pool.pool_proportions([1, 2], [3, 4], measure="XX")
    with pytest.raises(ValueError):
        pool.pool_generic([1, 2], [0.1, 0.2], method="GLMM")
    with pytest.raises(ValueError):
        pool.pool_generic([1, 2], [0.1, 0.0])
    with pytest.raises(ValueError):
        pool.pool_proportions([1, 2], [3, 4], subgroups=["a"])


# --- back-transformations -----------------------------------------------------------------------


def test_back_transform_clipping_like_metafor():
    assert pool.back_transform([-0.1, 2.0], "PAS").tolist() == [0.0, 1.0]
    assert pool.back_transform([-0.5], "PR").tolist() == [-0.5]  # no clipping for PR
    assert pool.back_transform([0.0, 1.7], "PFT", nhm=20.0).tolist() == [0.0, 1.0]
    assert pool.back_transform([0.0], "PLO")[0] == 0.5


def test_display_clips_raw_pr_interval_with_a_note():
    r = pool.pool_proportions([30, 30, 29], [30, 30, 30], measure="PR", method="DL")
    assert r.ci_high > 1  # metafor's raw bound
    shown = r.display()
    assert shown["ci_high"] == 1.0
    assert r.estimate_display == shown["estimate"]
    assert any("clipped" in n for n in shown["notes"])
    assert not any("clipped" in n for n in r.notes)


# --- results ------------------------------------------------------------------------------------


def test_result_is_frozen_and_to_dict_is_json_ready():
    r = pool.pool_proportions(PRITZ["events"], PRITZ["totals"], measure="PFT",
                              subgroups=["a"] * 7 + ["b"] * 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.estimate = 0.5  # type: ignore[misc]
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["subgroups"]["a"]["k"] == 7
    assert d["se_tau2"] is not None
    ee = pool.pool_proportions(PRITZ["events"], PRITZ["totals"], method="EE").to_dict()
    assert ee["se_tau2"] is None and ee["tau2_ci_low"] is None
    json.dumps(ee, allow_nan=False)
    eg = pool.egger_test(r).to_dict()
    json.dumps(eg, allow_nan=False)


def test_subgroup_order_is_first_appearance_and_single_group():
    r = pool.pool_generic([1, 2, 3, 4], [0.5, 0.5, 0.6, 0.7], subgroups=["z", "a", "z", "a"])
    assert list(r.subgroups) == ["z", "a"]
    one = pool.pool_generic([1, 2, 3], [0.5, 0.5, 0.6], subgroups=["x", "x", "x"])
    # as metafor's rma(est, sei, method="EE") on a single subgroup estimate: QE = 0, df = 0, p = 1
    assert (one.q_between, one.df_between, one.p_between) == (0.0, 0, 1.0)
    assert one.subgroups["x"].estimate == pytest.approx(one.estimate)


def test_leave_one_out_k1_is_empty_and_glmm_loo_runs():
    assert pool.leave_one_out(pool.pool_generic([1.0], [0.5])) == []
    r = pool.pool_proportions(DATASETS["k2"]["events"], DATASETS["k2"]["totals"], method="GLMM")
    loo = pool.leave_one_out(r)
    assert len(loo) == 2 and all(math.isnan(x.estimate) for x in loo)


def test_non_convergence_is_reported_not_raised():
    # Fisher scoring capped at metafor's 100 iterations would be needed to fail; force it through
    # a PM search interval that is too small, which metafor refuses
    y = np.array([0.0, 1000.0, -1000.0])
    r = pool.pool_generic(y, [0.01, 0.01, 0.01], method="PM")
    assert r.converged in (True, False)
    if not r.converged:
        assert r.notes


def test_importing_the_package_does_not_import_pool():
    code = "import sys, curation; print('curation.pool' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_vectorised_paths_at_scale():
    """REML on 10,000 studies and the batched leave-one-out on 1,000 (speed: benchmarks/run.py)."""
    rng = np.random.default_rng(7)
    y = rng.normal(1.0, 0.3, 10_000)
    s = rng.uniform(0.1, 0.5, 10_000)
    big = pool.pool_generic(y, s, method="REML")
    assert big.k == 10_000 and big.converged and np.isfinite(big.tau2)
    r = pool.pool_generic(y[:1000], s[:1000], method="REML")
    loo = pool.leave_one_out(r)
    assert len(loo) == 1000
    # a spot check of the vectorised leave-one-out against a direct fit
    direct = pool.pool_generic(np.delete(y[:1000], 17), np.delete(s[:1000], 17), method="REML")
    assert loo[17].estimate == pytest.approx(direct.estimate, rel=1e-12)
    assert loo[17].tau2_ci_high == pytest.approx(direct.tau2_ci_high, rel=1e-9)


# --- properties ---------------------------------------------------------------------------------

small_sets = st.lists(
    st.tuples(st.floats(-5, 5, allow_nan=False), st.floats(0.05, 2, allow_nan=False)),
    min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(data=small_sets, shift=st.floats(-10, 10), method=st.sampled_from(
    ["EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"]))
def test_location_shift_and_permutation(data, shift, method):
    y = np.array([d[0] for d in data])
    s = np.array([d[1] for d in data])
    a = pool.pool_generic(y, s, method=method)
    b = pool.pool_generic(y + shift, s, method=method)
    assert b.estimate == pytest.approx(a.estimate + shift, abs=1e-6)
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-5, abs=1e-7)
    perm = np.arange(len(y))[::-1]
    c = pool.pool_generic(y[perm], s[perm], method=method)
    assert c.estimate == pytest.approx(a.estimate, abs=1e-8)
    assert a.tau2 >= 0 and 0 <= a.i2 <= 100
    assert a.h2 >= 1 or (method == "EE" and a.h2 == pytest.approx(a.q / (len(y) - 1)))
    assert a.ci_low <= a.estimate <= a.ci_high
    assert a.pi_low <= a.ci_low + 1e-12 and a.pi_high >= a.ci_high - 1e-12
    assert sum(a.weights) == pytest.approx(100.0)


def test_glmm_far_from_the_mean_matches_metafor():
    """Studies far from the mean with a large tau2: the conditional modes need damped Newton steps.

    metafor 3.8-1 (rma.glmm, measure="PLO", nAGQ=7) on these data: beta 3.289062, se 0.6654, tau2 7.52328.
    """
    x = [166, 601, 25, 10, 555, 113, 1363, 216, 16, 103, 288, 122, 28, 412, 48, 774, 69, 9, 1189, 224, 3]
    n = [168, 745, 25, 10, 555, 113, 1365, 238, 16, 105, 289, 542, 28, 574, 62, 800, 176, 13, 1345, 240, 11]
    r = pool.pool_proportions(x, n, method="GLMM")
    assert r.converged
    assert r.est_t == pytest.approx(3.2890620233155, rel=1e-3)
    assert r.se_t == pytest.approx(0.6654, rel=1e-3)
    assert r.tau2 == pytest.approx(7.52327757818287, rel=1e-3)


def test_unconverged_subgroup_is_left_out_of_the_test():
    """metafor's rma stops with an error where Fisher scoring does not converge; the subgroup then has no
    estimate for the test of differences, and neither does ours."""
    # metafor 3.8-1: rma(measure="PAS", method="REML") on these data stops: Fisher scoring did not converge
    x = [0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    n = [13, 10, 171, 23, 12, 20, 12, 22, 61, 136, 8, 7, 26, 104, 5, 156, 23, 6, 29, 80, 9, 19]
    alone = pool.pool_proportions(x, n, measure="PAS", method="REML")
    assert not alone.converged
    labels = ["a"] * 22 + ["b"] * 3
    both = pool.pool_proportions(x + [10, 12, 9], n + [40, 41, 39], measure="PAS", method="REML", subgroups=labels)
    assert (both.q_between, both.df_between, both.p_between) == (0.0, 0, 1.0)
    assert any("did not converge" in note for note in both.notes)

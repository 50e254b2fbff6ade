"""Meta-analysis of proportions, two-arm studies and reported effect sizes, with the numbers of
R's metafor.

The engine reproduces metafor 3.8-1 (``escalc``, ``rma.uni``, ``rma.mh``, ``rma.peto``,
``predict``, ``confint``, ``regtest`` and ``rma.glmm(measure="PLO")``) to a relative difference of
at most 1e-6 (1e-3 for the GLMM), *including metafor's stopping rules*: the Fisher scoring of ML/REML/EB stops when a step
changes tau^2 by at most 1e-5, and the Paule-Mandel estimator and the Q-profile confidence
intervals use R's ``uniroot`` (Brent's zeroin) with tolerance ``.Machine$double.eps^0.25``.
Iterating further would move tau^2 by up to ~1e-4 relative to metafor's printed value, which an
analyst rerunning the analysis in R would see as a different number; so the iteration follows
metafor step by step (``converged`` reports metafor's convergence criterion).

References
----------
DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Control Clin Trials 7:177-188.
Paule RC, Mandel J (1982). Consensus values and weighting factors. J Res Natl Bur Stand 87:377-385.
Hartung J, Makambi KH (2002); Sidik K, Jonkman JN (2005). Simple heterogeneity variance estimation
for meta-analysis. J R Stat Soc C 54:367-384.
Hunter JE, Schmidt FL (2004). Methods of meta-analysis. Sage.
Hedges LV, Olkin I (1985). Statistical methods for meta-analysis. Academic Press.
Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the random-effects
model. J Educ Behav Stat 30:261-293.
Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
Stat Med 26:37-52.
Morris CN (1983). Parametric empirical Bayes inference. J Am Stat Assoc 78:47-55.
Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression with a single
covariate. Stat Med 22:2693-2710.
Freeman MF, Tukey JW (1950). Transformations related to the angular and the square root.
Ann Math Stat 21:607-611.
Miller JJ (1978). The inverse of the Freeman-Tukey double arcsine transformation. Am Stat 32:138.
Schwarzer G, Chemaitelly H, Abu-Raddad LJ, Rücker G (2019). Seriously misleading results using
inverse of Freeman-Tukey double arcsine transformation in meta-analysis of single proportions.
Res Synth Methods 10:476-483.
Stijnen T, Hamza TH, Ozdemir P (2010). Random effects meta-analysis of event outcome in the
framework of the generalized linear mixed model. Stat Med 29:3046-3067.
Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected by a simple,
graphical test. BMJ 315:629-634.
Mantel N, Haenszel W (1959). Statistical aspects of the analysis of data from retrospective studies
of disease. J Natl Cancer Inst 22:719-748.
Robins J, Breslow N, Greenland S (1986). Estimators of the Mantel-Haenszel variance consistent in both
sparse data and large-strata limiting models. Biometrics 42:311-323.
Greenland S, Robins JM (1985). Estimation of a common effect parameter from sparse follow-up data.
Biometrics 41:55-68.
Yusuf S, Peto R, Lewis J, Collins R, Sleight P (1985). Beta blockade during and after myocardial
infarction: an overview of the randomized trials. Prog Cardiovasc Dis 27:335-371.
Hedges LV (1981). Distribution theory for Glass's estimator of effect size and related estimators.
J Educ Stat 6:107-128.
Hedges LV, Gurevitch J, Curtis PS (1999). The meta-analysis of response ratios in experimental
ecology. Ecology 80:1150-1156.
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Sequence

import numpy as np
from scipy import optimize, special, stats

__all__ = [
    "PoolResult",
    "EggerResult",
    "pool_proportions",
    "pool_binary",
    "pool_continuous",
    "pool_generic",
    "refit",
    "ratio_to_log",
    "difference_to_se",
    "escalc_binary",
    "escalc_continuous",
    "leave_one_out",
    "egger_test",
    "escalc_proportions",
    "back_transform",
    "MEASURES",
    "METHODS",
    "BINARY_MEASURES",
    "BINARY_METHODS",
    "CONTINUOUS_MEASURES",
    "Z975",
]

MEASURES = ("PR", "PLN", "PLO", "PAS", "PFT")
METHODS = ("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "GLMM")
BINARY_MEASURES = ("OR", "RR", "RD")
CONTINUOUS_MEASURES = ("MD", "SMD", "ROM")
BINARY_METHODS = METHODS[:-1] + ("MH", "PETO")
RATIO_MEASURES = ("OR", "RR", "ROM")
Z975 = 1.959964  # the constant of the contract (pooling.md) for a standard error from a 95% CI

# the scale each measure is pooled on ("log": estimates, CIs and PIs are exponentiated back)
_SCALES = {"PR": "natural", "PLN": "log", "PLO": "logit", "PAS": "arcsine",
           "PFT": "double arcsine", "OR": "log", "RR": "log", "ROM": "log", "RD": "natural",
           "MD": "natural", "SMD": "natural", "GEN": "natural"}

# metafor's rma.uni control defaults
_THRESHOLD = 1e-5  # Fisher scoring stops when |change in tau2| <= threshold
_MAXITER = 100  # Fisher scoring and uniroot for PM
_TOL = np.finfo(float).eps ** 0.25  # uniroot tolerance (PM, Q-profile) and ll0check
_CI_MAXITER = 1000  # uniroot maxiter in confint.rma.uni
_EPS = np.finfo(float).eps

FT_NOTE = (
    "Freeman-Tukey (PFT) back-transformation uses the harmonic mean of the sample sizes "
    "(Miller 1978); it can be seriously misleading (Schwarzer et al. 2019, Res Synth Methods "
    "10:476-483): check the result against PLO or the GLMM."
)


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Convert numpy values to JSON-ready Python values (NaN -> None)."""
    if isinstance(value, PoolResult):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    return value


@dataclass(frozen=True)
class PoolResult:
    """A pooled estimate with metafor's figures.

    Back-transformed figures (``estimate``, ``ci_low``/``ci_high``, ``pi_low``/``pi_high``) equal
    metafor's ``predict(res, transf=..., targs=...)``; the transformed-scale figures (``est_t``,
    ``se_t``, ``ci_low_t``, ...) equal ``res$beta``, ``res$se``, ``res$ci.lb``, ... They are raw:
    a raw-proportion (PR) bound may fall outside 0..1, exactly as in metafor; :meth:`display`
    gives the clipped values to show to a person.

    Attributes
    ----------
    k : int
        Number of studies.
    measure : str
        ``PR``, ``PLN``, ``PLO``, ``PAS``, ``PFT`` (proportions), ``OR``, ``RR``, ``RD`` (two
        arms, events), ``MD``, ``SMD``, ``ROM`` (two arms, means) as escalc's codes, or ``GEN``
        (pool_generic).
    method : str
        tau^2 estimator (``EE``, ``DL``, ``HE``, ``HS``, ``SJ``, ``ML``, ``REML``, ``EB``,
        ``PM``), ``GLMM``, ``MH`` (Mantel-Haenszel, ``rma.mh``) or ``PETO`` (``rma.peto``).
    scale : str
        The scale the studies are pooled on: ``"log"`` for OR, RR, ROM and generic ratios
        (``estimate``, CI and PI are exponentiated back: they are ratios), ``"natural"`` for RD,
        MD, SMD, PR and generic differences; ``"logit"``, ``"arcsine"``, ``"double arcsine"``
        for the other proportion measures.
    hk : bool
        Knapp-Hartung adjustment (metafor ``test="knha"``; for the GLMM, ``test="t"``).
    level : float
        Confidence level as a fraction (0.95).
    estimate, ci_low, ci_high, pi_low, pi_high : float
        Pooled estimate, confidence and prediction interval on the reported scale.
    est_t, se_t, ci_low_t, ci_high_t, pi_low_t, pi_high_t : float
        The same on the transformed (analysis) scale.
    tau2, se_tau2 : float
        Between-study variance and metafor's standard error of it (NaN where metafor gives NA).
    tau2_ci_low, tau2_ci_high, i2_ci_low, i2_ci_high, h2_ci_low, h2_ci_high : float or None
        Q-profile confidence intervals (metafor ``confint(res)``); None where metafor gives none
        (EE, k = 1, the GLMM).
    i2, h2 : float
        I^2 (percent) and H^2 as metafor defines them.
    q, q_df, q_pval : float
        Cochran's Q (for the GLMM the Wald-type test of the saturated model), df k-1, p-value.
        For MH and Peto, Q as ``rma.mh`` / ``rma.peto`` report it, on their df (studies with no
        event, or only events, in both arms do not count).
    q_lrt, q_lrt_pval : float
        GLMM only: likelihood-ratio test of heterogeneity (metafor ``QE.LRT``).
    weights : tuple of float
        Percent weights (metafor ``weights(res)``).
    yi, vi : tuple of float
        Per-study outcomes and sampling variances on the transformed scale (after escalc's
        continuity correction).
    events, totals : tuple or None
        Inputs of :func:`pool_proportions`.
    sei : tuple or None
        Input standard errors of :func:`pool_generic` on the natural scale (``yi`` holds its
        estimates).
    data : dict or None
        Inputs of :func:`pool_binary` (``ai``, ``n1i``, ``ci``, ``n2i``),
        :func:`pool_continuous` (``m1i``, ``sd1i``, ``n1i``, ``m2i``, ``sd2i``, ``n2i``) or of
        :func:`pool_generic` with ``back_transform="exp"`` (``sei`` of the log ratios), kept so
        that :func:`refit` can refit a subset with the same settings.
    harmonic_n : float
        Harmonic mean of the sample sizes used by the PFT back-transformation.
    converged : bool
        False if an iterative estimator did not converge by metafor's criterion (see notes).
    notes : tuple of str
        What a reader should know (warnings metafor would give, back-transformation caveats).
    subgroups : dict or None
        Label -> PoolResult, in order of first appearance.
    q_between, df_between, p_between : float or None
        Test for subgroup differences: ``rma(est_g, sei=se_g, method="EE")$QE``.
    labels : tuple or None
        The subgroup label of each study, when given.
    """

    k: int
    measure: str
    method: str
    hk: bool
    level: float
    estimate: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    est_t: float
    se_t: float
    ci_low_t: float
    ci_high_t: float
    pi_low_t: float
    pi_high_t: float
    tau2: float
    se_tau2: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_pval: float
    weights: tuple
    yi: tuple
    vi: tuple
    tau2_ci_low: float | None = None
    tau2_ci_high: float | None = None
    i2_ci_low: float | None = None
    i2_ci_high: float | None = None
    h2_ci_low: float | None = None
    h2_ci_high: float | None = None
    q_lrt: float | None = None
    q_lrt_pval: float | None = None
    events: tuple | None = None
    totals: tuple | None = None
    sei: tuple | None = None
    harmonic_n: float | None = None
    converged: bool = True
    notes: tuple = ()
    subgroups: dict | None = None
    q_between: float | None = None
    df_between: int | None = None
    p_between: float | None = None
    labels: tuple | None = None
    scale: str | None = None
    data: dict | None = None

    def __post_init__(self):
        if self.scale is None:
            object.__setattr__(self, "scale", _SCALES.get(self.measure, "natural"))

    @property
    def is_proportion(self) -> bool:
        return self.measure in MEASURES

    @property
    def is_ratio(self) -> bool:
        """True when the reported figures are ratios (pooled on the log scale, exponentiated)."""
        return self.measure not in MEASURES and self.scale == "log"

    @property
    def note(self) -> str:
        """All notes in one string (empty when there are none)."""
        return " ".join(self.notes)

    def display(self) -> dict:
        """Figures to show to a person: proportions clipped to 0..1, with a note when clipped.

        Returns
        -------
        dict
            ``estimate``, ``ci_low``, ``ci_high``, ``pi_low``, ``pi_high`` (clipped for
            proportions, unchanged on the natural scale) and ``notes`` (tuple of str).
        """
        keys = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")
        out = {key: getattr(self, key) for key in keys}
        notes = list(self.notes)
        if self.is_proportion:
            clipped = []
            for key in keys:
                v = out[key]
                if v is not None and not math.isnan(v) and (v < 0.0 or v > 1.0):
                    out[key] = min(1.0, max(0.0, v))
                    clipped.append(key)
            if clipped:
                notes.append(
                    "The raw interval leaves 0..1 (" + ", ".join(clipped) + "); it is shown "
                    "clipped to 0-100%."
                )
        out["notes"] = tuple(notes)
        return out

    @property
    def estimate_display(self) -> float:
        return self.display()["estimate"]

    def to_dict(self) -> dict:
        """All fields as plain JSON-ready values (floats, lists, None for NaN)."""
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        out["display"] = _plain(self.display())
        return out


@dataclass(frozen=True)
class EggerResult:
    """Egger's regression test (metafor ``regtest(res, model="lm", predictor="sei")``).

    Attributes
    ----------
    z, p : float
        t statistic of the slope on the standard error and its two-sided p-value (df k-2).
    intercept, slope, se_intercept, se_slope : float
        Weighted least-squares coefficients (weights 1/vi); the intercept is metafor's limit
        estimate ``est`` (on the transformed scale).
    df : int
        Residual degrees of freedom (k - 2).
    note : str
        Why the test is NaN, when it is.
    """

    z: float
    p: float
    intercept: float
    slope: float
    se_intercept: float
    se_slope: float
    df: int
    note: str = ""

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


# ---------------------------------------------------------------------------------------------
# escalc and back-transformations
# ---------------------------------------------------------------------------------------------


def escalc_proportions(events, totals, measure: str = "PLO"):
    """Per-study outcomes as metafor's ``escalc(measure, xi=events, ni=totals)``.

    Studies with 0 events or 0 non-events get 1/2 added to both cells for PR, PLN and PLO
    (escalc's defaults ``add=1/2, to="only0"``; for PAS and PFT escalc sets ``add=0``).

    Returns
    -------
    yi, vi : ndarray
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(totals, dtype=float)
    if x.shape != n.shape or x.ndim != 1:
        raise ValueError("events and totals must be 1-D sequences of the same length")
    if np.any(~np.isfinite(x)) or np.any(~np.isfinite(n)):
        raise ValueError("events and totals must be finite numbers")
    if np.any(x < 0) or np.any(n - x < 0):
        raise ValueError("events must lie between 0 and the total")
    if np.any(n <= 0):
        raise ValueError("totals must be > 0")
    measure = measure.upper()
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; use one of {', '.join(MEASURES)}")
    m = n - x
    if measure in ("PR", "PLN", "PLO"):
        id0 = (x == 0) | (m == 0)
        x = np.where(id0, x + 0.5, x)
        m = np.where(id0, m + 0.5, m)
    ni = x + m
    p = x / ni
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "PR":
            yi, vi = p, p * (1 - p) / ni
        elif measure == "PLN":
            yi, vi = np.log(p), 1 / x - 1 / ni
        elif measure == "PLO":
            yi, vi = np.log(p / (1 - p)), 1 / x + 1 / m
        elif measure == "PAS":
            yi, vi = np.arcsin(np.sqrt(p)), 1 / (4 * ni)
        else:  # PFT
            yi = 0.5 * (np.arcsin(np.sqrt(x / (ni + 1))) + np.arcsin(np.sqrt((x + 1) / (ni + 1))))
            vi = 1 / (4 * ni + 2)
    return yi, vi


def _pft(p, n):
    x = p * n
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))


def back_transform(values, measure: str, nhm: float | None = None):
    """metafor's back-transformations (``exp``, ``transf.ilogit``, ``transf.iarcsin``,
    ``transf.ipft.hm`` with the harmonic mean ``nhm`` of the sample sizes).

    PLN, OR, RR and ROM: ``exp``; PR, RD, MD, SMD and GEN: identity (a generic ratio pooled on
    the log scale is exponentiated by :func:`pool_generic` itself, from the result's ``scale``).
    """
    xi = np.asarray(values, dtype=float)
    if measure in ("PR", "GEN", "RD", "MD", "SMD"):
        return xi.copy()
    if measure in ("PLN",) + RATIO_MEASURES:
        return np.exp(xi)
    if measure == "PLO":
        return special.expit(xi)
    if measure == "PAS":
        with np.errstate(invalid="ignore"):
            zi = np.sin(xi) ** 2
            zi = np.where(xi < 0, 0.0, zi)
            zi = np.where(xi > np.arcsin(1.0), 1.0, zi)
        return zi
    if measure == "PFT":
        if nhm is None:
            raise ValueError("PFT back-transformation needs the harmonic mean of the sample sizes")
        with np.errstate(invalid="ignore", divide="ignore"):
            s2 = np.sin(2 * xi)
            zi = 0.5 * (1 - np.sign(np.cos(2 * xi)) * np.sqrt(1 - (s2 + (s2 - 1 / s2) / nhm) ** 2))
            zi = np.where(xi > _pft(1.0, nhm), 1.0, zi)
            zi = np.where(xi < _pft(0.0, nhm), 0.0, zi)
        return zi
    raise ValueError(f"unknown measure {measure!r}")


def _alpha(level: float) -> float:
    """metafor's ``.level``: 95 or 0.95 -> 0.05."""
    level = float(level)
    if level == 0:
        return 1.0
    if level >= 1:
        return (100 - level) / 100
    if level > 0.5:
        return 1 - level
    return level


# ---------------------------------------------------------------------------------------------
# R's uniroot (Brent's zeroin, as in R's zeroin.c), vectorised over rows
# ---------------------------------------------------------------------------------------------


def _zeroin(f, lower, upper, f_lower, f_upper, tol, maxiter):
    """Brent's root finder with R's ``R_zeroin2`` steps, for many independent problems at once.

    ``f(x, rows)`` evaluates the functions of the problems ``rows`` (an index array) at ``x``.
    Returns (root, converged) arrays.
    """
    a = np.array(lower, dtype=float, copy=True)
    b = np.array(upper, dtype=float, copy=True)
    fa = np.array(f_lower, dtype=float, copy=True)
    fb = np.array(f_upper, dtype=float, copy=True)
    c = a.copy()
    fc = fa.copy()
    root = np.full(a.shape, np.nan)
    ok = np.zeros(a.shape, dtype=bool)
    done = np.zeros(a.shape, dtype=bool)
    z = fa == 0
    root[z], ok[z], done[z] = a[z], True, True
    z = ~done & (fb == 0)
    root[z], ok[z], done[z] = b[z], True, True
    for _ in range(maxiter + 1):
        act = ~done
        if not act.any():
            break
        sw = act & (np.abs(fc) < np.abs(fb))
        if sw.any():
            ob, oc, ofb, ofc = b.copy(), c.copy(), fb.copy(), fc.copy()
            a[sw], b[sw], c[sw] = ob[sw], oc[sw], ob[sw]
            fa[sw], fb[sw], fc[sw] = ofb[sw], ofc[sw], ofb[sw]
        prev_step = b - a
        tol_act = 2 * _EPS * np.abs(b) + tol / 2
        new_step = (c - b) / 2
        conv = act & ((np.abs(new_step) <= tol_act) | (fb == 0))
        root[conv], ok[conv], done[conv] = b[conv], True, True
        act &= ~conv
        if not act.any():
            break
        cb = c - b
        with np.errstate(divide="ignore", invalid="ignore"):
            t1l = fb / fa
            p_lin, q_lin = cb * t1l, 1.0 - t1l
            qq, t1, t2 = fa / fc, fb / fc, fb / fa
            p_q = t2 * (cb * qq * (qq - t1) - (b - a) * (t1 - 1.0))
            q_q = (qq - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            lin = a == c
            p = np.where(lin, p_lin, p_q)
            q = np.where(lin, q_lin, q_q)
            q = np.where(p > 0, -q, q)
            p = np.abs(p)
            interp = act & (np.abs(prev_step) >= tol_act) & (np.abs(fa) > np.abs(fb))
            accept = interp & (p < 0.75 * cb * q - np.abs(tol_act * q) / 2) & (
                p < np.abs(prev_step * q / 2)
            )
            new_step = np.where(accept, p / q, new_step)
        small = np.abs(new_step) < tol_act
        new_step = np.where(small, np.where(new_step > 0, tol_act, -tol_act), new_step)
        a[act], fa[act] = b[act], fb[act]
        b[act] = b[act] + new_step[act]
        rows = np.nonzero(act)[0]
        fb[act] = f(b[act], rows)
        opp = act & (((fb > 0) & (fc > 0)) | ((fb < 0) & (fc < 0)))
        c[opp], fc[opp] = a[opp], fa[opp]
    left = ~done
    root[left] = b[left]
    return root, ok


# ---------------------------------------------------------------------------------------------
# the normal-normal model, vectorised over rows (B independent meta-analyses of k studies each)
# ---------------------------------------------------------------------------------------------


def _qe(tau2, Y, V):
    """Q(tau2) = sum w (y - ybar_w)^2 with w = 1/(v + tau2), row-wise (tau2 has shape (B,))."""
    w = 1.0 / (V + tau2[:, None])
    sw = w.sum(axis=1)
    ybar = (w * Y).sum(axis=1) / sw
    return (w * (Y - ybar[:, None]) ** 2).sum(axis=1)


def _qe_fast(tau2, Y, V):
    """_qe for row-centred Y, with fewer temporaries (used inside root finding)."""
    w = 1.0 / (V + tau2[:, None])
    sw = w.sum(axis=1)
    swy = np.einsum("ij,ij->i", w, Y)
    wy = w * Y
    swyy = np.einsum("ij,ij->i", wy, Y)
    return swyy - swy**2 / sw


def _p_traces(w):
    """tr(P), sum(P*P) for P = W - w w'/sum(w)."""
    s1 = w.sum(axis=1)
    s2 = (w**2).sum(axis=1)
    s3 = (w**3).sum(axis=1)
    trp = s1 - s2 / s1
    spp = s2 - 2 * s3 / s1 + s2**2 / s1**2
    return trp, spp


def _mad(Y):
    med = np.median(Y, axis=1)
    return 1.4826 * np.median(np.abs(Y - med[:, None]), axis=1)


def _tau2_batch(Y, V, method):
    """tau^2, se(tau^2), converged flag and notes per row, exactly as rma.uni."""
    B, k = Y.shape
    nan = np.full(B, np.nan)
    notes = [[] for _ in range(B)]
    conv = np.ones(B, dtype=bool)
    if method == "EE" or k == 1:
        return np.zeros(B), nan.copy(), conv, notes
    p = 1
    Ymc = Y - Y.mean(axis=1, keepdims=True)
    if method in ("HE", "ML", "REML", "EB"):
        rss = ((Ymc - Ymc.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        trpv = V.sum(axis=1) * (1 - 1 / k)
        he = (rss - trpv) / (k - p)
    if method == "HE":
        tau2 = np.maximum(0.0, he)
        spvpv = (V**2).sum(axis=1) * (1 - 2 / k) + V.sum(axis=1) ** 2 / k**2
        se = np.sqrt(1 / (k - p) ** 2 * (2 * spvpv + 4 * tau2 * trpv + 2 * tau2**2 * (k - p)))
        return tau2, se, conv, notes
    if method in ("DL", "HS"):
        w = 1.0 / V
        q = _qe(np.zeros(B), Ymc, V)
        trp, spp = _p_traces(w)
        if method == "DL":
            tau2 = np.maximum(0.0, (q - (k - p)) / trp)
            se = np.sqrt(1 / trp**2 * (2 * (k - p) + 4 * tau2 * trp + 2 * tau2**2 * spp))
        else:
            sw = w.sum(axis=1)
            tau2 = np.maximum(0.0, (q - k) / sw)
            se = np.sqrt(1 / sw**2 * (2 * (k - p) + 4 * tau2 * trp + 2 * tau2**2 * spp))
        return tau2, se, conv, notes
    if method == "SJ":
        t0 = ((Ymc - Ymc.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) / k
        w = 1.0 / (V + t0[:, None])
        q = _qe(t0, Ymc, V)
        tau2 = np.maximum(0.0, t0 * q / (k - p))
        s1 = w.sum(axis=1)
        s2 = (w**2).sum(axis=1)
        spvpv = (w**2 * V**2).sum(axis=1) - 2 * (w**3 * V**2).sum(axis=1) / s1 + (
            (w**2 * V).sum(axis=1)
        ) ** 2 / s1**2
        spvp = (V * (w**2 - 2 * w**3 / s1[:, None] + w**2 * (s2 / s1**2)[:, None])).sum(axis=1)
        _, spp = _p_traces(w)
        se = np.sqrt(
            t0**2 / (k - p) ** 2 * (2 * spvpv + 4 * tau2 * spvp + 2 * tau2**2 * spp)
        )
        return tau2, se, conv, notes
    if method == "PM":
        target = float(k - p)
        tau2 = np.zeros(B)
        tau2_max = np.maximum(100.0, 10 * _mad(Y) ** 2)
        f_lo = _qe(np.zeros(B), Ymc, V) - target
        f_hi = _qe(tau2_max, Ymc, V) - target
        zero = f_lo < 0
        toolow = ~zero & (f_hi > 0)
        search = ~zero & ~toolow
        for i in np.nonzero(toolow)[0]:
            conv[i] = False
            tau2[i] = np.nan
            notes[i].append(
                "Paule-Mandel: value of 'tau2.max' too low (metafor stops with an error)."
            )
        if search.any():
            rows = np.nonzero(search)[0]
            Ys, Vs = Ymc[rows], V[rows]

            def fn(x, sub):
                if len(sub) == len(rows):
                    return _qe_fast(x, Ys, Vs) - target
                return _qe_fast(x, Ys[sub], Vs[sub]) - target

            root, ok = _zeroin(
                fn, np.zeros(len(rows)), tau2_max[rows], f_lo[rows], f_hi[rows], _TOL, _MAXITER
            )
            tau2[rows] = root
            for j, i in enumerate(rows):
                if not ok[j]:
                    conv[i] = False
                    notes[i].append("Paule-Mandel: uniroot did not converge.")
        tau2 = np.maximum(0.0, tau2)
        w = 1.0 / (V + tau2[:, None])
        se = np.sqrt(2 * k**2 / (k - p) / w.sum(axis=1) ** 2)
        return tau2, se, conv, notes
    if method in ("ML", "REML", "EB"):
        tau2 = np.maximum(0.0, he)
        active = np.ones(B, dtype=bool)
        it = 0
        while active.any():
            it += 1
            if active.all():
                ta, Ya, Va = tau2.copy(), Ymc, V
            else:
                ta, Ya, Va = tau2[active], Ymc[active], V[active]
            w = 1.0 / (Va + ta[:, None])
            sw = w.sum(axis=1)
            r = Ya - ((w * Ya).sum(axis=1) / sw)[:, None]
            if method == "ML":
                adj = ((w**2 * r**2).sum(axis=1) - sw) / (w**2).sum(axis=1)
            elif method == "REML":
                trp, spp = _p_traces(w)
                adj = ((w**2 * r**2).sum(axis=1) - trp) / spp
            else:
                adj = ((w * r**2).sum(axis=1) * k / (k - p) - k) / sw
            adj = np.where(np.isnan(adj), 0.0, adj)
            neg = ta + adj < 0
            while neg.any():
                adj = np.where(neg, adj / 2, adj)
                neg = ta + adj < 0
            new = ta + adj
            change = np.abs(ta - new)
            tau2[active] = new
            idx = np.nonzero(active)[0]
            finished = change <= _THRESHOLD
            if it > _MAXITER:
                stuck = ~finished
                conv[idx[stuck]] = False
                for i in idx[stuck]:
                    notes[i].append(
                        "Fisher scoring algorithm did not converge (metafor stops with an error)."
                    )
                finished[:] = True
            active[idx[finished]] = False
        if method in ("ML", "REML"):
            # metafor's ll0check: is the log likelihood larger at tau2 = 0?
            cand = conv & (tau2 > _THRESHOLD)
            if cand.any():
                ll0 = _loglik(np.zeros(B), Ymc, V, method)
                ll = _loglik(tau2, Ymc, V, method)
                flip = cand & (ll0 - ll > _TOL)
                for i in np.nonzero(flip)[0]:
                    tau2[i] = 0.0
                    notes[i].append(
                        "Fisher scoring algorithm may have gotten stuck at a local maximum; "
                        "tau^2 set to 0 (as metafor)."
                    )
        tau2 = np.maximum(0.0, tau2)
        w = 1.0 / (V + tau2[:, None])
        if method == "ML":
            se = np.sqrt(2 / (w**2).sum(axis=1))
        elif method == "REML":
            _, spp = _p_traces(w)
            se = np.sqrt(2 / spp)
        else:
            se = np.sqrt(2 * k**2 / (k - p) / w.sum(axis=1) ** 2)
        return tau2, se, conv, notes
    raise ValueError(f"unknown method {method!r}")


def _loglik(tau2, Y, V, method):
    k = Y.shape[1]
    M = V + tau2[:, None]
    w = 1.0 / M
    sw = w.sum(axis=1)
    ybar = (w * Y).sum(axis=1) / sw
    rss = (w * (Y - ybar[:, None]) ** 2).sum(axis=1)
    if method == "ML":
        return -0.5 * k * np.log(2 * np.pi) - 0.5 * np.log(M).sum(axis=1) - 0.5 * rss
    return (
        -0.5 * (k - 1) * np.log(2 * np.pi)
        - 0.5 * np.log(M).sum(axis=1)
        - 0.5 * np.log(sw)
        - 0.5 * rss
    )


def _qprofile(Y, V, tau2, alpha):
    """confint.rma.uni(type="QP") for tau^2, row-wise. Returns (lb, ub)."""
    B, k = Y.shape
    crit_u = stats.chi2.isf(alpha / 2, k - 1)
    crit_l = stats.chi2.ppf(alpha / 2, k - 1)
    Yc = Y - Y.mean(axis=1, keepdims=True)
    tmin = np.minimum(0.0, tau2)
    tmax = np.maximum(np.maximum(100.0, tau2 * 10), tmin * 10)
    q_max = _qe(tmax, Y, V)
    q_min = _qe(tmin, Y, V)
    lb = np.full(B, np.nan)
    ub = np.full(B, np.nan)

    def solve(rows, objective):
        Ys, Vs = Yc[rows], V[rows]

        def fn(x, sub):
            if len(sub) == len(rows):
                return _qe_fast(x, Ys, Vs) - objective
            return _qe_fast(x, Ys[sub], Vs[sub]) - objective

        root, ok = _zeroin(
            fn, tmin[rows], tmax[rows], q_min[rows] - objective, q_max[rows] - objective,
            _TOL, _CI_MAXITER,
        )
        return np.where(ok, root, np.nan)

    # upper bound
    null = q_min < crit_l
    lb[null] = tmin[null]
    ub[null] = tmin[null]
    top = ~null & (q_max > crit_l)
    ub[top] = tmax[top]
    rows = np.nonzero(~null & ~top)[0]
    if rows.size:
        ub[rows] = solve(rows, crit_l)
    # lower bound
    above = q_max > crit_u
    lb[above] = tmax[above]
    ub[above] = tmax[above]
    rest = ~above
    low = rest & (q_min < crit_u)
    lb[low] = tmin[low]
    rows = np.nonzero(rest & ~low)[0]
    if rows.size:
        lb[rows] = solve(rows, crit_u)
    return lb, ub


def _fit_batch(Y, V, method, hk, level, with_ci=True):
    """Fit B meta-analyses (rows of Y, V) with the same settings. Returns a dict of arrays."""
    B, k = Y.shape
    alpha = _alpha(level)
    tau2, se_tau2, conv, notes = _tau2_batch(Y, V, method)
    if method == "EE":
        tau2 = np.zeros(B)
    W = 1.0 / (V + tau2[:, None])
    sw = W.sum(axis=1)
    beta = (W * Y).sum(axis=1) / sw
    vb = 1.0 / sw
    test_t = hk and k > 1
    if hk and k == 1:
        for n in notes:
            n.append('k = 1: the Knapp-Hartung adjustment cannot be used (metafor sets test="z").')
    if test_t:
        if method == "EE":
            for n in notes:
                n.append("Knapp & Hartung method is not meant to be used with an EE model.")
        rss = (W * (Y - beta[:, None]) ** 2).sum(axis=1)
        s2w = np.where(rss <= _EPS, 0.0, rss / (k - 1))
        vb = s2w * vb
        crit = stats.t.isf(alpha / 2, k - 1)
    else:
        crit = stats.norm.isf(alpha / 2)
    se = np.sqrt(vb)
    ci_lb = beta - crit * se
    ci_ub = beta + crit * se
    pi_lb = beta - crit * np.sqrt(vb + tau2)
    pi_ub = beta + crit * np.sqrt(vb + tau2)
    # heterogeneity (inverse-variance Q) and I2/H2
    if k > 1:
        w0 = 1.0 / V
        Ymc = Y - Y.mean(axis=1, keepdims=True)
        q = np.maximum(0.0, _qe(np.zeros(B), Ymc, V))
        qp = stats.chi2.sf(q, k - 1)
        trp, _ = _p_traces(w0)
        vt = (k - 1) / trp
        if method == "EE":
            with np.errstate(invalid="ignore", divide="ignore"):
                i2 = np.maximum(0.0, 100 * (q - (k - 1)) / q)
            h2 = q / (k - 1)
        else:
            i2 = 100 * tau2 / (vt + tau2)
            h2 = tau2 / vt + 1
    else:
        q = np.zeros(B)
        qp = np.ones(B)
        i2 = np.zeros(B)
        h2 = np.ones(B)
        vt = np.zeros(B)
    out = dict(
        tau2=tau2, se_tau2=se_tau2, converged=conv, notes=notes, beta=beta, se=se,
        ci_lb=ci_lb, ci_ub=ci_ub, pi_lb=pi_lb, pi_ub=pi_ub, q=q, qp=qp, i2=i2, h2=h2,
        weights=100 * W / sw[:, None],
    )
    if with_ci and method != "EE" and k > 1:
        lb, ub = _qprofile(Y, V, tau2, alpha)
        out["tau2_ci"] = (lb, ub)
        out["i2_ci"] = (100 * lb / (vt + lb), 100 * ub / (vt + ub))
        out["h2_ci"] = (lb / vt + 1, ub / vt + 1)
    return out


# ---------------------------------------------------------------------------------------------
# GLMM: binomial-normal random-intercept logistic model, ML with adaptive Gauss-Hermite
# ---------------------------------------------------------------------------------------------

_GH_Z, _GH_W = np.polynomial.hermite_e.hermegauss(7)  # nodes/weights for exp(-z^2/2)


def _glmm_modes(beta, theta, x, n):
    """Each study's conditional mode of the random effect u (standard-normal scale).

    Maximises the concave ``x eta - n log(1 + e^eta) - u^2 / 2`` with ``eta = beta + theta u`` by
    Newton steps halved until the objective does not decrease (an undamped Newton step overshoots
    where the logistic curve saturates, for studies far from the mean when tau^2 is large). All
    studies at once; starts from the data's own logit.
    """
    def objective(u):
        eta = beta + theta * u
        return x * eta - n * np.logaddexp(0.0, eta) - u**2 / 2

    p = (x + 0.5) / (n + 1.0)
    u = np.clip((np.log(p / (1 - p)) - beta) / theta, -40.0, 40.0)
    f = objective(u)
    for _ in range(200):
        mu = special.expit(beta + theta * u)
        g = theta * (x - n * mu) - u
        h = theta**2 * n * mu * (1 - mu) + 1
        step = g / h
        for _halving in range(60):
            trial = u + step
            f_trial = objective(trial)
            worse = f_trial < f - 1e-12 * (1 + np.abs(f))
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        u, f = trial, np.maximum(f_trial, f)
        if np.max(np.abs(step)) < 1e-12 * (1 + np.max(np.abs(u))):
            break
    return u


def _glmm_loglik(beta, theta, x, n):
    """Marginal log likelihood (up to a constant) by adaptive GHQ with 7 nodes per study,
    centred at each study's conditional mode and scaled by the curvature there (as lme4)."""
    u = _glmm_modes(beta, theta, x, n) if theta > 0 else np.zeros_like(x)
    eta = beta + theta * u
    mu = special.expit(eta)
    c = theta**2 * n * mu * (1 - mu) + 1
    s = 1 / np.sqrt(c)
    uu = u[:, None] + s[:, None] * _GH_Z[None, :]
    ee = beta + theta * uu
    logf = x[:, None] * ee - n[:, None] * np.logaddexp(0.0, ee) - uu**2 / 2 + _GH_Z[None, :] ** 2 / 2
    m = logf.max(axis=1, keepdims=True)
    li = m[:, 0] + np.log((np.exp(logf - m) * _GH_W[None, :]).sum(axis=1)) + np.log(s)
    return float(li.sum() - len(x) * 0.5 * np.log(2 * np.pi))


def _glmm_fit(x, n):
    """ML fit; returns beta, se(beta), tau2, converged, note."""
    p0 = x.sum() / n.sum()
    b0 = math.log(p0 / (1 - p0)) if 0 < p0 < 1 else 0.0

    def nll(par):
        return -_glmm_loglik(par[0], abs(par[1]), x, n)

    best = None
    for start in ((b0, 1.0), (b0, 0.3)):
        r = optimize.minimize(nll, np.array(start), method="Nelder-Mead",
                              options=dict(xatol=1e-10, fatol=1e-13, maxiter=4000))
        if best is None or r.fun < best.fun:
            best = r
    r2 = optimize.minimize(nll, best.x, method="BFGS", options=dict(gtol=1e-9))
    if r2.fun <= best.fun:
        best = r2
    beta, theta = float(best.x[0]), abs(float(best.x[1]))
    if theta < 1e-6:  # boundary: lme4 reports theta = 0
        theta = 0.0
    # deviance Hessian in (theta, beta) by central differences, as lme4's vcov(use.hessian=TRUE)
    par = np.array([theta, beta])

    def dev(pp):
        return -2 * _glmm_loglik(pp[1], abs(pp[0]), x, n)

    h = np.array([max(1e-4, 1e-4 * abs(theta)), max(1e-4, 1e-4 * abs(beta))])
    H = np.zeros((2, 2))
    f0 = dev(par)
    for i in range(2):
        for j in range(2):
            if i == j:
                e = np.zeros(2)
                e[i] = h[i]
                H[i, i] = (dev(par + e) - 2 * f0 + dev(par - e)) / h[i] ** 2
            elif j > i:
                ei = np.zeros(2)
                ej = np.zeros(2)
                ei[i], ej[j] = h[i], h[j]
                H[i, j] = H[j, i] = (
                    dev(par + ei + ej) - dev(par + ei - ej) - dev(par - ei + ej) + dev(par - ei - ej)
                ) / (4 * h[i] * h[j])
    note = ""
    try:
        if theta < 1e-6 or np.linalg.eigvalsh(H).min() <= 0:
            raise np.linalg.LinAlgError
        vb = 2 * np.linalg.inv(H)[1, 1]
    except np.linalg.LinAlgError:
        vb = 2 / H[1, 1]
        note = "GLMM: tau^2 at the boundary (0); se from the fixed-effect curvature."
    # the optimisers' own flags are strict (precision loss near the optimum is common); a fit
    # whose deviance gradient vanishes is converged
    grad = np.array([(nll(best.x + d) - nll(best.x - d)) / (2 * 1e-6) for d in np.eye(2) * 1e-6])
    converged = bool(best.success or r2.success or np.max(np.abs(grad)) < 1e-4 * (1 + abs(best.fun)))
    return beta, math.sqrt(vb), theta**2, converged, note


# ---------------------------------------------------------------------------------------------
# assembling results
# ---------------------------------------------------------------------------------------------


def _num(x):
    return float(x)


def _back(measure, scale, nhm):
    """The back-transformation of a result: the measure's, or exp for a generic log scale."""
    if measure in MEASURES or measure in RATIO_MEASURES:
        return lambda v: back_transform(v, measure, nhm)
    if scale == "log":
        return lambda v: np.exp(np.asarray(v, float))
    return lambda v: np.asarray(v, float)


def _result_from_batch(out, i, *, k, measure, method, hk, level, yi, vi, nhm, extra_notes=(),
                       scale=None, **inputs):
    if scale is None and measure == "GEN" and "sei" not in inputs:
        # a generic ratio keeps its standard errors in ``data`` (not ``sei``): rebuilding one
        # without being told its scale would report log ratios as if they were natural values
        raise ValueError("a generic result on the log scale must be refitted with refit(), which "
                         "keeps its back-transformation")
    scale = scale or _SCALES.get(measure, "natural")
    bt = _back(measure, scale, nhm)
    est, cl, cu, pl, pu = bt([out["beta"][i], out["ci_lb"][i], out["ci_ub"][i], out["pi_lb"][i],
                              out["pi_ub"][i]])
    cl, cu = (cl, cu) if not (cl > cu) else (cu, cl)
    pl, pu = (pl, pu) if not (pl > pu) else (pu, pl)
    notes = list(out["notes"][i]) + list(extra_notes)
    if measure == "PFT":
        notes.append(FT_NOTE)
    res = dict(
        k=k, measure=measure, method=method, hk=bool(hk), level=float(level),
        estimate=_num(est), ci_low=_num(cl), ci_high=_num(cu), pi_low=_num(pl), pi_high=_num(pu),
        est_t=_num(out["beta"][i]), se_t=_num(out["se"][i]), ci_low_t=_num(out["ci_lb"][i]),
        ci_high_t=_num(out["ci_ub"][i]), pi_low_t=_num(out["pi_lb"][i]),
        pi_high_t=_num(out["pi_ub"][i]), tau2=_num(out["tau2"][i]),
        se_tau2=_num(out["se_tau2"][i]), i2=_num(out["i2"][i]), h2=_num(out["h2"][i]),
        q=_num(out["q"][i]), q_df=k - 1, q_pval=_num(out["qp"][i]),
        weights=tuple(out["weights"][i].tolist()),
        yi=tuple(np.asarray(yi, float).tolist()), vi=tuple(np.asarray(vi, float).tolist()),
        harmonic_n=nhm, converged=bool(out["converged"][i]), notes=tuple(notes), scale=scale,
    )
    if "tau2_ci" in out:
        for name in ("tau2", "i2", "h2"):
            lo, hi = out[name + "_ci"]
            res[name + "_ci_low"] = None if np.isnan(lo[i]) else float(lo[i])
            res[name + "_ci_high"] = None if np.isnan(hi[i]) else float(hi[i])
    res.update(inputs)
    return PoolResult(**res)


def _level_fraction(level):
    return 1 - _alpha(level)


def _check_method(method, allow_glmm):
    method = method.upper()
    if method in ("FE", "CE"):
        method = "EE"
    if method not in METHODS or (method == "GLMM" and not allow_glmm):
        raise ValueError(f"unknown method {method!r}")
    return method


def _pool_normal(yi, vi, *, measure, method, hk, level, nhm, inputs, scale=None):
    k = len(yi)
    out = _fit_batch(yi[None, :], vi[None, :], method, hk, level)
    return _result_from_batch(out, 0, k=k, measure=measure, method=method, hk=hk,
                              level=_level_fraction(level), yi=yi, vi=vi, nhm=nhm, scale=scale,
                              **inputs)


def _nan_result(k, measure, method, hk, level, yi, vi, nhm, notes, inputs, scale=None):
    nan = float("nan")
    return PoolResult(
        k=k, measure=measure, method=method, hk=bool(hk), level=_level_fraction(level),
        estimate=nan, ci_low=nan, ci_high=nan, pi_low=nan, pi_high=nan, est_t=nan, se_t=nan,
        ci_low_t=nan, ci_high_t=nan, pi_low_t=nan, pi_high_t=nan, tau2=nan, se_tau2=nan,
        i2=nan, h2=nan, q=nan, q_df=k - 1, q_pval=nan, weights=tuple([nan] * k),
        yi=tuple(map(float, yi)), vi=tuple(map(float, vi)), harmonic_n=nhm, converged=False,
        notes=tuple(notes), scale=scale, **inputs)


def _pool_glmm(x, n, *, hk, level, inputs):
    k = len(x)
    yi, vi = escalc_proportions(x, n, "PLO")
    nhm = float(1 / np.mean(1 / n))
    if k < 2:
        return _nan_result(k, "PLO", "GLMM", hk, level, yi, vi, nhm, (
            "GLMM needs at least 2 studies (metafor: number of parameters to be estimated is "
            "larger than the number of observations).",), inputs)
    if np.all((x == 0) | (x == n)) and (np.all(x == 0) or np.all(x == n)):
        return _nan_result(k, "PLO", "GLMM", hk, level, yi, vi, nhm, (
            "GLMM has no finite maximum-likelihood estimate when every study is at 0% or at "
            "100% (metafor: cannot fit ML model).",), inputs)
    beta, se, tau2, ok, fit_note = _glmm_fit(x, n)
    alpha = _alpha(level)
    crit = stats.t.isf(alpha / 2, k - 1) if hk else stats.norm.isf(alpha / 2)
    ci = (beta - crit * se, beta + crit * se)
    pi = (beta - crit * math.sqrt(se**2 + tau2), beta + crit * math.sqrt(se**2 + tau2))
    w0 = 1 / vi
    trp = w0.sum() - (w0**2).sum() / w0.sum()
    vt = (k - 1) / trp
    # heterogeneity: Wald-type test of the saturated model (= Cochran's Q on the unadjusted
    # logits of the studies that are not at 0% or 100%) and the likelihood-ratio test
    inner = (x > 0) & (x < n)
    notes = []
    if inner.sum() >= 2:
        lo = np.log(x[inner] / (n[inner] - x[inner]))
        vv = 1 / x[inner] + 1 / (n[inner] - x[inner])
        q = float(max(0.0, _qe(np.zeros(1), lo[None, :], vv[None, :])[0]))
    else:
        q = 0.0
    if inner.sum() < k:
        notes.append(
            "GLMM heterogeneity Wald test: studies at 0% or 100% contribute nothing (their "
            "saturated-model coefficients are infinite)."
        )
    pbar = x.sum() / n.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        ph = x / n
        llqe = np.where(x > 0, x * np.log(np.where(x > 0, ph, 1)), 0) + np.where(
            n - x > 0, (n - x) * np.log(np.where(n - x > 0, 1 - ph, 1)), 0)
        llfe = np.where(x > 0, x * math.log(pbar) if pbar > 0 else 0, 0) + np.where(
            n - x > 0, (n - x) * math.log(1 - pbar) if pbar < 1 else 0, 0)
    lrt = float(max(0.0, -2 * (llfe.sum() - llqe.sum())))
    if hk:
        notes.append('GLMM with hk=True uses metafor\'s test="t" (t with k-1 df, no scaling).')
    if fit_note:
        notes.append(fit_note)
    if not ok:
        notes.append("GLMM optimiser reported no convergence.")
    notes.append("GLMM weights are approximate (inverse variance on the logit scale); metafor "
                 "gives none.")
    w = 1 / (vi + tau2)
    est, cl, cu, pl, pu = special.expit([beta, ci[0], ci[1], pi[0], pi[1]])
    return PoolResult(
        k=k, measure="PLO", method="GLMM", hk=bool(hk), level=_level_fraction(level),
        estimate=float(est), ci_low=float(cl), ci_high=float(cu), pi_low=float(pl),
        pi_high=float(pu), est_t=beta, se_t=se, ci_low_t=ci[0], ci_high_t=ci[1],
        pi_low_t=pi[0], pi_high_t=pi[1], tau2=tau2, se_tau2=float("nan"),
        i2=float(100 * tau2 / (vt + tau2)), h2=float(tau2 / vt + 1), q=q, q_df=k - 1,
        q_pval=float(stats.chi2.sf(q, k - 1)), q_lrt=lrt,
        q_lrt_pval=float(stats.chi2.sf(lrt, k - 1)),
        weights=tuple(float(v) for v in 100 * w / w.sum()),
        yi=tuple(map(float, yi)), vi=tuple(map(float, vi)), harmonic_n=nhm, converged=ok,
        notes=tuple(notes), **inputs)


def _subgroup_labels(subgroups, k):
    if subgroups is None:
        return None
    labels = list(subgroups)
    if len(labels) != k:
        raise ValueError("subgroups must give one label per study")
    return labels


def _with_subgroups(overall, labels, fit_one):
    order = list(dict.fromkeys(labels))
    subs = {}
    for g in order:
        idx = np.array([i for i, lab in enumerate(labels) if lab == g])
        subs[g] = fit_one(idx)
    est = np.array([r.est_t for r in subs.values()])
    se = np.array([r.se_t for r in subs.values()])
    notes = list(overall.notes)
    # a subgroup fit that did not converge has no estimate in metafor (rma stops with an error)
    usable = np.isfinite(est) & np.isfinite(se) & np.array([r.converged for r in subs.values()], dtype=bool)
    if not usable.all():
        dropped = [g for g, u in zip(order, usable) if not u]
        notes.append("Subgroups without an estimate (or whose fit did not converge) left out of the test for "
                     "subgroup differences (as metafor drops them): " + ", ".join(map(str, dropped)) + ".")
    est, se = est[usable], se[usable]
    if len(est) == 1 and se[0] > 0:
        # metafor's rma(est, sei, method="EE") on one estimate: QE = 0 on 0 df, p = 1
        qb, dfb, pb = 0.0, 0, 1.0
        notes.append("Only one subgroup with an estimate: the test for subgroup differences is empty "
                     "(Q = 0, df = 0).")
    elif len(est) < 2 or np.any(se <= 0):
        qb, dfb, pb = float("nan"), max(len(est) - 1, 0), float("nan")
        notes.append("Fewer than two subgroups with a usable estimate and a positive standard "
                     "error: no test for subgroup differences.")
    else:
        v = se**2
        ymc = est - est.mean()
        qb = float(max(0.0, _qe(np.zeros(1), ymc[None, :], v[None, :])[0]))
        dfb = len(est) - 1
        pb = float(stats.chi2.sf(qb, dfb))
    return replace(overall, subgroups=subs, q_between=qb, df_between=dfb, p_between=pb,
                   labels=tuple(labels), notes=tuple(notes))


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def pool_proportions(events, totals, *, measure: str = "PLO", method: str = "REML",
                     hk: bool = False, level: float = 0.95,
                     subgroups: Sequence | None = None) -> PoolResult:
    """Pool single proportions as metafor does.

    Parameters
    ----------
    events, totals : sequences of int
        Events and sample size per study.
    measure : {"PR", "PLN", "PLO", "PAS", "PFT"}
        escalc's transformation (ignored for ``method="GLMM"``, which is always on the logit).
    method : {"EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "GLMM"}
        tau^2 estimator (rma.uni), or the binomial-normal GLMM (rma.glmm, measure="PLO").
    hk : bool
        Knapp-Hartung adjustment (metafor ``test="knha"``; for the GLMM ``test="t"``).
    level : float
        Confidence level, 0.95 or 95.
    subgroups : sequence, optional
        A label per study; each subgroup is pooled on its own and tested for differences.

    Returns
    -------
    PoolResult
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(totals, dtype=float)
    method = _check_method(method, allow_glmm=True)
    measure = "PLO" if method == "GLMM" else measure.upper()
    yi, vi = escalc_proportions(x, n, measure)  # validates
    k = len(x)
    if k == 0:
        raise ValueError("no studies to pool")
    labels = _subgroup_labels(subgroups, k)
    inputs = dict(events=tuple(float(v) for v in x), totals=tuple(float(v) for v in n))
    if method == "GLMM":
        res = _pool_glmm(x, n, hk=hk, level=level, inputs=inputs)
    else:
        nhm = float(1 / np.mean(1 / n))
        res = _pool_normal(yi, vi, measure=measure, method=method, hk=hk, level=level, nhm=nhm,
                           inputs=inputs)
    if labels is not None:
        res = _with_subgroups(res, labels, lambda idx: pool_proportions(
            x[idx], n[idx], measure=measure, method=method, hk=hk, level=level))
    return res


def pool_generic(yi, sei, *, method: str = "REML", hk: bool = False, level: float = 0.95,
                 subgroups: Sequence | None = None, back_transform: str | None = None) -> PoolResult:
    """Generic inverse-variance pooling of reported effects (``rma(yi, sei=sei, method=...)``).

    Parameters
    ----------
    yi, sei : sequences of float
        Effects and their standard errors. With ``back_transform="exp"`` these are log ratios
        (hazard ratios, odds ratios ...; see :func:`ratio_to_log`); otherwise effects on their
        natural scale (medians in months, mean differences; see :func:`difference_to_se`).
    method, hk, level, subgroups
        As :func:`pool_proportions` (``method="GLMM"`` is not available).
    back_transform : {None, "exp"}
        ``None``: no back-transformation (``estimate`` equals ``est_t``; ``scale="natural"``).
        ``"exp"``: estimate, CI and PI exponentiated back (metafor ``predict(res, transf=exp)``;
        ``scale="log"``).

    Returns
    -------
    PoolResult
        ``measure="GEN"``.

    References
    ----------
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3).
    """
    y = np.asarray(yi, dtype=float)
    s = np.asarray(sei, dtype=float)
    if y.shape != s.shape or y.ndim != 1 or y.size == 0:
        raise ValueError("yi and sei must be non-empty 1-D sequences of the same length")
    if np.any(~np.isfinite(y)) or np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("yi must be finite and sei finite and > 0")
    if back_transform not in (None, "exp"):
        raise ValueError(f"unknown back_transform {back_transform!r}; use None or 'exp'")
    scale = "log" if back_transform == "exp" else "natural"
    method = _check_method(method, allow_glmm=False)
    labels = _subgroup_labels(subgroups, len(y))
    # a ratio keeps its (log-scale) standard errors in ``data``, so that nothing rebuilds it as a
    # natural-scale result by mistake
    kept = tuple(float(v) for v in s)
    inputs = dict(data=dict(sei=kept)) if scale == "log" else dict(sei=kept)
    res = _pool_normal(y, s**2, measure="GEN", method=method, hk=hk, level=level, nhm=None,
                       inputs=inputs, scale=scale)
    if labels is not None:
        res = _with_subgroups(res, labels, lambda idx: pool_generic(
            y[idx], s[idx], method=method, hk=hk, level=level, back_transform=back_transform))
    return res


def ratio_to_log(ratio, lower, upper):
    """A reported ratio (HR, OR, RR) with its 95% CI as (log ratio, standard error).

    ``sei = (log(upper) - log(lower)) / (2 x 1.959964)``, as the pooling contract says; the
    result goes to ``pool_generic(yi, sei, back_transform="exp")``. Works on scalars and arrays.

    Returns
    -------
    yi, sei : float or ndarray
    """
    r, lo, hi = (np.asarray(v, dtype=float) for v in (ratio, lower, upper))
    if np.any(~(r > 0)) or np.any(~(lo > 0)) or np.any(~(hi > 0)):
        raise ValueError("a ratio and its confidence limits must be > 0")
    if np.any(~(lo <= r)) or np.any(~(r <= hi)) or np.any(~(lo < hi)):
        raise ValueError("the confidence interval must contain the ratio (lower <= ratio <= upper, "
                         "lower < upper)")
    yi = np.log(r)
    sei = (np.log(hi) - np.log(lo)) / (2 * Z975)
    if yi.ndim == 0:
        return float(yi), float(sei)
    return yi, sei


def difference_to_se(estimate, lower, upper):
    """A reported difference (mean difference, median) with its 95% CI as (estimate, standard error).

    ``sei = (upper - lower) / (2 x 1.959964)``; the result goes to ``pool_generic(yi, sei)``.

    Returns
    -------
    yi, sei : float or ndarray
    """
    e, lo, hi = (np.asarray(v, dtype=float) for v in (estimate, lower, upper))
    if np.any(~np.isfinite(e)) or np.any(~np.isfinite(lo)) or np.any(~np.isfinite(hi)):
        raise ValueError("the estimate and its confidence limits must be finite numbers")
    if np.any(~(lo <= e)) or np.any(~(e <= hi)) or np.any(~(lo < hi)):
        raise ValueError("the confidence interval must contain the estimate (lower <= estimate <= "
                         "upper, lower < upper)")
    sei = (hi - lo) / (2 * Z975)
    if e.ndim == 0:
        return float(e), float(sei)
    return e.astype(float), sei


def refit(result: PoolResult, keep) -> PoolResult:
    """Refit a result on a subset of its studies with the same function, measure, method, hk,
    level and scale (e.g. for leave-one-out). ``keep``: indices (input order) or a boolean mask.

    Subgroups are not carried over.
    """
    idx = np.arange(result.k)[np.asarray(keep)] if np.asarray(keep).dtype == bool else np.asarray(keep, dtype=int)
    if idx.size == 0:
        raise ValueError("refit needs at least one study")
    opts = dict(method=result.method, hk=result.hk, level=result.level)
    if result.measure in BINARY_MEASURES and result.data is not None:
        d = {n: np.asarray(v)[idx] for n, v in result.data.items()}
        return pool_binary(d["ai"], d["n1i"], d["ci"], d["n2i"], measure=result.measure, **opts)
    if result.measure in CONTINUOUS_MEASURES and result.data is not None:
        d = {n: np.asarray(v)[idx] for n, v in result.data.items()}
        return pool_continuous(d["m1i"], d["sd1i"], d["n1i"], d["m2i"], d["sd2i"], d["n2i"],
                               measure=result.measure, **opts)
    if result.measure in MEASURES and result.events is not None:
        return pool_proportions(np.asarray(result.events)[idx], np.asarray(result.totals)[idx],
                                measure=result.measure, **opts)
    if result.measure == "GEN" and result.scale == "log" and result.data is not None:
        return pool_generic(np.asarray(result.yi)[idx], np.asarray(result.data["sei"])[idx],
                            back_transform="exp", **opts)
    if result.measure == "GEN" and result.sei is not None:
        return pool_generic(np.asarray(result.yi)[idx], np.asarray(result.sei)[idx], **opts)
    raise ValueError("this result does not keep its inputs; it cannot be refitted")


def _arrays(names, values):
    out = []
    for name, v in zip(names, values):
        a = np.asarray(v, dtype=float)
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-D sequence")
        if np.any(~np.isfinite(a)):
            raise ValueError(f"{name} must hold finite numbers")
        out.append(a)
    if len({a.shape for a in out}) != 1:
        raise ValueError(", ".join(names) + " must have the same length")
    return out


def _tables(ai, n1i, ci, n2i):
    """Validated 2x2 tables (a, b, c, d) from events and totals of the two arms."""
    a, n1, c, n2 = _arrays(("ai", "n1i", "ci", "n2i"), (ai, n1i, ci, n2i))
    if np.any(n1 <= 0) or np.any(n2 <= 0):
        raise ValueError("the totals of both arms (n1i, n2i) must be > 0")
    if np.any(a < 0) or np.any(c < 0) or np.any(a > n1) or np.any(c > n2):
        raise ValueError("events must lie between 0 and the arm's total (ai <= n1i, ci <= n2i)")
    return a, n1 - a, c, n2 - c


def _escalc_tables(a, b, c, d, measure, drop00=False):
    """escalc(measure, ai, bi, ci, di) with add=1/2, to="only0" on validated tables.

    With ``drop00=True`` a study with no event (or only events) in both arms gets NaN, as escalc's
    ``drop00=TRUE`` (what rma.mh and rma.peto use for their Q)."""
    a, b, c, d = (np.array(x, dtype=float) for x in (a, b, c, d))
    if drop00:
        id00 = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
        for x in (a, b, c, d):
            x[id00] = np.nan
    id0 = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    a, b, c, d = (np.where(id0, x + 0.5, x) for x in (a, b, c, d))
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
        elif measure == "OR":
            yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        elif measure == "RD":
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        elif measure == "PETO":
            ni = n1 + n2
            xt, yt = a + c, b + d
            ei = xt * n1 / ni
            vv = xt * yt * (n1 / ni) * (n2 / ni) / (ni - 1)
            yi, vi = (a - ei) / vv, 1 / vv
        else:
            raise ValueError(f"unknown measure {measure!r}; use one of {', '.join(BINARY_MEASURES)}")
    return yi, vi


def escalc_binary(ai, n1i, ci, n2i, measure: str = "OR"):
    """Per-study log odds ratios, log risk ratios or risk differences as metafor's ``escalc``.

    ``escalc(measure, ai=ai, n1i=n1i, ci=ci, n2i=n2i)`` with its defaults: a study with a zero
    cell gets 1/2 added to each of its four cells (``add=1/2, to="only0"``), for all three
    measures; a study with no event in either arm is kept (``drop00=FALSE``). Variances: the
    large-sample ones (RD: ``vtype="LS"``, p1(1-p1)/n1 + p2(1-p2)/n2).

    Parameters
    ----------
    ai, n1i : sequences of float
        Events and total of arm 1 (intervention).
    ci, n2i : sequences of float
        Events and total of arm 2 (control).
    measure : {"OR", "RR", "RD"}

    Returns
    -------
    yi, vi : ndarray
        Log OR / log RR / RD and their sampling variances.

    References
    ----------
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3).
    """
    measure = measure.upper()
    if measure not in BINARY_MEASURES:
        raise ValueError(f"unknown measure {measure!r}; use one of {', '.join(BINARY_MEASURES)}")
    return _escalc_tables(*_tables(ai, n1i, ci, n2i), measure)


def escalc_continuous(m1i, sd1i, n1i, m2i, sd2i, n2i, measure: str = "SMD"):
    """Per-study mean differences, Hedges' g or log ratios of means as metafor's ``escalc``.

    - ``MD``: m1 - m2, variance sd1^2/n1 + sd2^2/n2 (``vtype="LS"``).
    - ``SMD``: Hedges' g = c(m) (m1 - m2) / s_pooled, m = n1 + n2 - 2, with the exact correction
      c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)) (Hedges 1981); variance
      1/n1 + 1/n2 + g^2 / (2 (n1 + n2)) (``vtype="LS"``).
    - ``ROM``: log(m1/m2), variance sd1^2/(n1 m1^2) + sd2^2/(n2 m2^2) (Hedges, Gurevitch &
      Curtis 1999).

    Returns
    -------
    yi, vi : ndarray

    References
    ----------
    Hedges LV (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. J Educ Stat 6:107-128.
    Hedges LV, Gurevitch J, Curtis PS (1999). The meta-analysis of response ratios in experimental
    ecology. Ecology 80:1150-1156.
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3).
    """
    measure = measure.upper()
    if measure not in CONTINUOUS_MEASURES:
        raise ValueError(f"unknown measure {measure!r}; use one of {', '.join(CONTINUOUS_MEASURES)}")
    m1, s1, n1, m2, s2, n2 = _arrays(("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
                                     (m1i, sd1i, n1i, m2i, sd2i, n2i))
    if np.any(s1 < 0) or np.any(s2 < 0):
        raise ValueError("standard deviations must be >= 0")
    if np.any(n1 <= 0) or np.any(n2 <= 0):
        raise ValueError("group sizes must be > 0")
    if measure == "MD":
        yi = m1 - m2
        vi = s1**2 / n1 + s2**2 / n2
    elif measure == "SMD":
        mi = n1 + n2 - 2
        if np.any(mi <= 1):
            raise ValueError("SMD needs n1i + n2i > 3 (the small-sample correction is undefined)")
        sdp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mi)
        if np.any(sdp <= 0):
            raise ValueError("SMD needs a pooled standard deviation > 0")
        cmi = np.exp(special.gammaln(mi / 2) - np.log(np.sqrt(mi / 2)) - special.gammaln((mi - 1) / 2))
        yi = cmi * (m1 - m2) / sdp
        vi = 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = m1 / m2
        if np.any(~(ratio > 0)) or np.any(~np.isfinite(ratio)):
            raise ValueError("ROM needs means of the same sign, neither of them 0 (log(m1i/m2i))")
        yi = np.log(ratio)
        vi = s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
    return yi, vi


# ---------------------------------------------------------------------------------------------
# Mantel-Haenszel and Peto (rma.mh, rma.peto)
# ---------------------------------------------------------------------------------------------


def _common_q(yi, vi, beta):
    """rma.mh's heterogeneity: QE = sum w (y - beta)^2 over the studies escalc keeps."""
    keep = np.isfinite(yi) & np.isfinite(vi)
    kyi = int(keep.sum())
    if kyi > 1 and not np.isfinite(beta):
        return float("nan"), float("nan"), float("nan"), float("nan"), kyi
    if kyi > 1:
        w = 1 / vi[keep]
        q = max(0.0, float((w * (yi[keep] - beta) ** 2).sum()))
        return q, float(stats.chi2.sf(q, kyi - 1)), _i2_common(q, kyi), q / (kyi - 1), kyi
    return 0.0, 1.0, 0.0, 1.0, kyi


def _i2_common(q, kyi):
    """metafor's max(0, 100 (QE - (k-1)) / QE) (0 when QE = 0)."""
    if q == 0:
        return 0.0
    return max(0.0, 100 * (q - (kyi - 1)) / q)


def _mh_fit(a, b, c, d, measure, alpha):
    """rma.mh(ai, bi, ci, di, measure) with its defaults; returns (beta, se, weights, notes).

    The tables are used as they are (rma.mh: ``add = c(1/2, 0)``, ``to = c("only0", "none")``:
    the 1/2 goes into the escalc outcomes of its Q, never into the MH estimate)."""
    n1, n2 = a + b, c + d
    N = n1 + n2
    notes = []
    nan = float("nan")
    if measure == "OR":
        P = a / N + d / N
        Qv = b / N + c / N
        R = (a / N) * d
        S = (b / N) * c
        Rs, Ss = R.sum(), S.sum()
        if Rs == 0 or Ss == 0:
            beta = se = nan
            notes.append("Mantel-Haenszel odds ratio undefined (a zero sum of a*d/N or of b*c/N; "
                         "metafor gives NA).")
        else:
            beta = math.log(Rs / Ss)
            se = math.sqrt(0.5 * ((P * R).sum() / Rs**2 + (P * S + Qv * R).sum() / (Rs * Ss)
                                  + (Qv * S).sum() / Ss**2))
        w = (b / N) * c
    elif measure == "RR":
        Rs = (a * (n2 / N)).sum()
        Ss = (c * (n1 / N)).sum()
        if a.sum() == 0 or c.sum() == 0:
            beta = se = nan
            notes.append("Mantel-Haenszel risk ratio undefined (no event in one arm of every "
                         "study; metafor gives NA).")
        else:
            beta = math.log(Rs / Ss)
            var = ((n1 / N) * (n2 / N) * (a + c) - (a / N) * c).sum() / (Rs * Ss)
            se = math.sqrt(var) if var >= 0 else nan
        w = (c / N) * n1
    else:  # RD
        den = (n1 * (n2 / N)).sum()
        beta = float((a * (n2 / N) - c * (n1 / N)).sum() / den)
        var = (beta * (c * (n1 / N) ** 2 - a * (n2 / N) ** 2 + (n1 / N) * (n2 / N) * (n2 - n1) / 2).sum()
               + (a * (n2 - c) / N + c * (n1 - a) / N).sum() / 2) / den**2
        se = math.sqrt(var) if var >= 0 else nan
        w = (n1 / N) * n2
    if np.isfinite(beta) and not np.isfinite(se):
        notes.append("The Mantel-Haenszel variance is negative by rounding (every study has only "
                     "events, or none): no confidence interval (metafor gives NA).")
    sw = w.sum()
    weights = 100 * w / sw if sw > 0 else np.full(len(w), nan)
    return float(beta), float(se), weights, notes


def _peto_fit(a, b, c, d):
    """rma.peto(ai, bi, ci, di): Peto's one-step log odds ratio, its se, Q and weights."""
    n1, n2 = a + b, c + d
    N = n1 + n2
    xt, yt = a + c, b + d
    E = xt * n1 / N
    with np.errstate(divide="ignore", invalid="ignore"):
        V = xt * yt * (n1 / N) * (n2 / N) / (N - 1)
    V = np.where(N > 1, V, 0.0)
    sv = V.sum()
    if sv == 0:
        return None
    beta = float((a - E).sum() / sv)
    se = math.sqrt(1 / sv)
    pos = V > 0
    q = max(0.0, float(((a - E)[pos] ** 2 / V[pos]).sum() - (a - E).sum() ** 2 / V[pos].sum()))
    return beta, se, q, int(pos.sum()), 100 * V / sv


def _common_result(*, k, measure, method, level, beta, se, q, qp, i2, h2, q_df, weights, yi, vi,
                   notes, data, alpha):
    """A PoolResult for a common-effect fit of rma.mh / rma.peto (tau^2 = 0, PI = CI)."""
    crit = stats.norm.isf(alpha / 2)
    lo, hi = beta - crit * se, beta + crit * se
    bt = _back(measure, _SCALES[measure], None)
    est, cl, cu = (float(v) for v in bt([beta, lo, hi]))
    return PoolResult(
        k=k, measure=measure, method=method, hk=False, level=_level_fraction(level),
        estimate=est, ci_low=cl, ci_high=cu, pi_low=cl, pi_high=cu, est_t=float(beta),
        se_t=float(se), ci_low_t=float(lo), ci_high_t=float(hi), pi_low_t=float(lo),
        pi_high_t=float(hi), tau2=0.0, se_tau2=float("nan"), i2=float(i2), h2=float(h2),
        q=float(q), q_df=int(q_df), q_pval=float(qp), weights=tuple(float(w) for w in weights),
        yi=tuple(float(v) for v in yi), vi=tuple(float(v) for v in vi),
        converged=bool(np.isfinite(beta) and np.isfinite(se)),
        notes=tuple(notes), data=data)


def _pool_mh_peto(a, b, c, d, *, measure, method, level, data):
    k = len(a)
    alpha = _alpha(level)
    notes = []
    if method == "PETO":
        yi, vi = _escalc_tables(a, b, c, d, "PETO", drop00=True)
        fit = _peto_fit(a, b, c, d)
        if fit is None:
            return _nan_result(k, measure, method, False, level, yi, vi, None, (
                "Peto's method cannot be used: every study has either no event or only events "
                "(as metafor's rma.peto).",), dict(data=data))
        beta, se, q, kpos, weights = fit
        kyi = int(np.isfinite(yi).sum())
        if kpos > 1:
            qp, i2, h2 = float(stats.chi2.sf(q, kyi - 1)), _i2_common(q, kyi), q / (kyi - 1)
        else:
            qp, i2, h2 = 1.0, 0.0, 1.0
        notes.append("Peto's one-step odds ratio (rma.peto): a common-effect estimate, tau^2 = 0.")
    else:
        yi, vi = _escalc_tables(a, b, c, d, measure, drop00=True)
        beta, se, weights, mh_notes = _mh_fit(a, b, c, d, measure, alpha)
        q, qp, i2, h2, kyi = _common_q(yi, vi, beta)
        notes.extend(mh_notes)
        notes.append("Mantel-Haenszel estimate (rma.mh): a common-effect estimate, tau^2 = 0; Q "
                     "around it on the escalc outcomes (1/2 added to tables with a zero cell).")
    n00 = int((~np.isfinite(yi)).sum())
    if n00:
        notes.append(f"{n00} stud{'y' if n00 == 1 else 'ies'} with no event (or only events) in "
                     "both arms: no outcome of its own, left out of Q (metafor's drop00=TRUE).")
    return _common_result(k=k, measure=measure, method=method, level=level, beta=beta, se=se,
                          q=q, qp=qp, i2=i2, h2=h2, q_df=max(kyi - 1, 0), weights=weights,
                          yi=yi, vi=vi, notes=notes, data=data, alpha=alpha)


def _check_binary_method(method):
    method = method.upper()
    if method in ("FE", "CE"):
        method = "EE"
    if method == "GLMM":
        raise ValueError("method GLMM is not available for two-arm data (use MH, PETO or an "
                         "rma estimator: EE, DL, HE, HS, SJ, ML, REML, EB, PM)")
    if method not in BINARY_METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(BINARY_METHODS)}")
    return method


def pool_binary(ai, n1i, ci, n2i, *, measure: str = "OR", method: str = "REML", hk: bool = False,
                level: float = 0.95, subgroups: Sequence | None = None) -> PoolResult:
    """Pool two-arm event data (odds ratios, risk ratios, risk differences) as metafor does.

    The inverse-variance estimators fit ``rma(measure=..., ai, n1i, ci, n2i, method=...)`` on
    ``escalc``'s outcomes (1/2 added to each cell of a study with a zero cell; a study with no
    event in either arm is kept, ``drop00=FALSE``). ``MH`` is ``rma.mh`` and ``PETO`` is
    ``rma.peto``, each with its own defaults: the Mantel-Haenszel / Peto estimate on the tables as
    they are, with Q, I^2 and H^2 as those functions report them (tau^2 = 0, PI = CI).
    OR and RR are pooled on the log scale and reported exponentiated (estimate, CI and PI);
    ``est_t`` etc. keep the log scale. RD is on its natural scale.

    Parameters
    ----------
    ai, n1i : sequences of float
        Events and total of arm 1 (intervention).
    ci, n2i : sequences of float
        Events and total of arm 2 (control).
    measure : {"OR", "RR", "RD"}
    method : {"EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "MH", "PETO"}
        ``PETO`` only with ``measure="OR"``. ``GLMM`` is refused (ValueError).
    hk : bool
        Knapp-Hartung adjustment (metafor ``test="knha"``); not with MH or PETO.
    level : float
        Confidence level, 0.95 or 95.
    subgroups : sequence, optional
        A label per study; each subgroup is pooled on its own and tested for differences.

    Returns
    -------
    PoolResult
        ``measure`` OR/RR/RD, ``scale`` "log" (OR, RR) or "natural" (RD), ``data`` the inputs.

    References
    ----------
    Mantel N, Haenszel W (1959). Statistical aspects of the analysis of data from retrospective
    studies of disease. J Natl Cancer Inst 22:719-748.
    Robins J, Breslow N, Greenland S (1986). Estimators of the Mantel-Haenszel variance consistent
    in both sparse data and large-strata limiting models. Biometrics 42:311-323 (MH OR variance).
    Greenland S, Robins JM (1985). Estimation of a common effect parameter from sparse follow-up
    data. Biometrics 41:55-68 (MH RR and RD variances).
    Yusuf S, Peto R, Lewis J, Collins R, Sleight P (1985). Beta blockade during and after
    myocardial infarction: an overview of the randomized trials. Prog Cardiovasc Dis 27:335-371.
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3).
    """
    measure = measure.upper()
    if measure not in BINARY_MEASURES:
        raise ValueError(f"unknown measure {measure!r}; use one of {', '.join(BINARY_MEASURES)}")
    method = _check_binary_method(method)
    a, b, c, d = _tables(ai, n1i, ci, n2i)
    k = len(a)
    if k == 0:
        raise ValueError("no studies to pool")
    if method == "PETO" and measure != "OR":
        raise ValueError("Peto's method gives an odds ratio: use measure='OR' with method='PETO'")
    if method in ("MH", "PETO") and hk:
        raise ValueError(f"the Knapp-Hartung adjustment is not available for method {method} "
                         "(rma.mh and rma.peto use the normal distribution)")
    labels = _subgroup_labels(subgroups, k)
    data = dict(ai=tuple(a.tolist()), n1i=tuple((a + b).tolist()), ci=tuple(c.tolist()),
                n2i=tuple((c + d).tolist()))
    if method in ("MH", "PETO"):
        res = _pool_mh_peto(a, b, c, d, measure=measure, method=method, level=level, data=data)
    else:
        yi, vi = _escalc_tables(a, b, c, d, measure)
        res = _pool_normal(yi, vi, measure=measure, method=method, hk=hk, level=level, nhm=None,
                           inputs=dict(data=data))
    if labels is not None:
        n1, n2 = a + b, c + d
        res = _with_subgroups(res, labels, lambda idx: pool_binary(
            a[idx], n1[idx], c[idx], n2[idx], measure=measure, method=method, hk=hk, level=level))
    return res


def pool_continuous(m1i, sd1i, n1i, m2i, sd2i, n2i, *, measure: str = "SMD", method: str = "REML",
                    hk: bool = False, level: float = 0.95,
                    subgroups: Sequence | None = None) -> PoolResult:
    """Pool two-arm means (mean difference, Hedges' g, ratio of means) as metafor does.

    ``rma(measure=..., m1i, sd1i, n1i, m2i, sd2i, n2i, method=...)`` with escalc's defaults (see
    :func:`escalc_continuous`). ROM is pooled on the log scale and reported exponentiated.

    Parameters
    ----------
    m1i, sd1i, n1i : sequences of float
        Mean, standard deviation and size of arm 1 (intervention).
    m2i, sd2i, n2i : sequences of float
        The same for arm 2 (control).
    measure : {"MD", "SMD", "ROM"}
    method : {"EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
    hk, level, subgroups
        As :func:`pool_binary`.

    Returns
    -------
    PoolResult

    References
    ----------
    Hedges LV (1981). Distribution theory for Glass's estimator of effect size and related
    estimators. J Educ Stat 6:107-128.
    Hedges LV, Gurevitch J, Curtis PS (1999). The meta-analysis of response ratios in experimental
    ecology. Ecology 80:1150-1156.
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3).
    """
    measure = measure.upper()
    method = _check_method(method, allow_glmm=False)
    yi, vi = escalc_continuous(m1i, sd1i, n1i, m2i, sd2i, n2i, measure)
    k = len(yi)
    if k == 0:
        raise ValueError("no studies to pool")
    if np.any(~(vi > 0)):
        raise ValueError("every study needs a sampling variance > 0 (a standard deviation > 0 "
                         "in at least one arm)")
    labels = _subgroup_labels(subgroups, k)
    arrs = [np.asarray(v, dtype=float) for v in (m1i, sd1i, n1i, m2i, sd2i, n2i)]
    names = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
    data = {n: tuple(v.tolist()) for n, v in zip(names, arrs)}
    res = _pool_normal(yi, vi, measure=measure, method=method, hk=hk, level=level, nhm=None,
                       inputs=dict(data=data))
    if labels is not None:
        res = _with_subgroups(res, labels, lambda idx: pool_continuous(
            *(v[idx] for v in arrs), measure=measure, method=method, hk=hk, level=level))
    return res


def leave_one_out(result: PoolResult, omit: Sequence[int] | None = None, *,
                  max_cells: int = 2_000_000) -> list[PoolResult]:
    """Refit without each study in turn (same measure/method/hk/level).

    Parameters
    ----------
    result : PoolResult
    omit : sequence of int, optional
        The studies (input positions) to leave out, one fit each, in this order; default every
        study in input order.
    max_cells : int
        The fits run in batches of ``B`` rows of a ``B x (k-1)`` matrix with ``B x (k-1) <=
        max_cells``, so that memory grows with k, not k^2 (same numbers whatever the batch).

    The GLMM is refitted study by study. Subgroups are not carried into the leave-one-out fits.
    With k = 1 the list is empty.
    """
    k = result.k
    if k < 2:
        return []
    order = np.arange(k) if omit is None else np.asarray(list(omit), dtype=int)
    if order.size and (order.min() < 0 or order.max() >= k):
        raise ValueError(f"omit: study positions must lie in 0..{k - 1}")
    events = None if result.events is None else np.asarray(result.events)
    totals = None if result.totals is None else np.asarray(result.totals)
    if result.method == "GLMM":
        return [pool_proportions(np.delete(events, i), np.delete(totals, i), method="GLMM", hk=result.hk,
                                 level=result.level) for i in order]
    yi = np.asarray(result.yi)
    vi = np.asarray(result.vi)
    sei = None if result.sei is None else np.asarray(result.sei)
    batch = max(1, max_cells // (k - 1))
    res = []
    for start in range(0, order.size, batch):
        part = order[start:start + batch]
        idx = _loo_index(part, k)
        Y, V = yi[idx], vi[idx]
        out = _fit_batch(Y, V, result.method, result.hk, result.level)
        for j, i in enumerate(part):
            inputs = {}
            nhm = None
            if events is not None:
                n = totals[idx[j]]
                inputs = dict(events=tuple(events[idx[j]].tolist()), totals=tuple(n.tolist()))
                nhm = float(1 / np.mean(1 / n))
            elif sei is not None:
                inputs = dict(sei=tuple(sei[idx[j]].tolist()))
            res.append(_result_from_batch(out, j, k=k - 1, measure=result.measure,
                                          method=result.method, hk=result.hk, level=result.level,
                                          yi=Y[j], vi=V[j], nhm=nhm, **inputs))
    return res


def _loo_index(omit: np.ndarray, k: int) -> np.ndarray:
    """Row j: the positions 0..k-1 without ``omit[j]`` (a ``len(omit) x (k-1)`` index)."""
    base = np.arange(k - 1)
    return base[None, :] + (base[None, :] >= omit[:, None])


def egger_test(result: PoolResult) -> EggerResult:
    """Egger's regression test: weighted least squares of yi on sei (weights 1/vi).

    As metafor ``regtest(res, model="lm", predictor="sei")``: ``z`` is the t statistic of the
    slope with k-2 df, ``intercept`` the limit estimate. NaN with a note where metafor refuses
    (k < 3, all standard errors equal, the GLMM).
    """
    y = np.asarray(result.yi, dtype=float)
    v = np.asarray(result.vi, dtype=float)
    k = len(y)
    nan = float("nan")
    if result.method == "GLMM":
        return EggerResult(nan, nan, nan, nan, nan, nan, k - 2,
                           "Egger's test is not available for the GLMM (as metafor's regtest).")
    sei = np.sqrt(v)
    X = np.column_stack([np.ones(k), sei])
    if k < 2:
        return EggerResult(nan, nan, nan, nan, nan, nan, k - 2, "Egger's test needs k >= 3.")
    # rank check as lm(yi ~ X - 1): is sei collinear with the intercept?
    c = sei - sei.mean()
    if np.sqrt((c**2).sum()) <= 1e-7 * np.sqrt((sei**2).sum()):
        return EggerResult(nan, nan, nan, nan, nan, nan, k - 2,
                           "All standard errors are equal: Egger's test is undefined (metafor: "
                           "model matrix no longer of full rank).")
    if np.ptp(y) == 0:
        return EggerResult(nan, nan, nan, nan, nan, nan, k - 2,
                           "All outcomes are identical: Egger's test is undefined (metafor's lm "
                           "returns rounding noise here).")
    w = 1 / v
    sw = np.sqrt(w)
    Xw = X * sw[:, None]
    yw = y * sw
    coef, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
    df = k - 2
    if df <= 0:
        return EggerResult(nan, nan, float(coef[0]), float(coef[1]), nan, nan, df,
                           "Egger's test needs k >= 3 (no residual degrees of freedom).")
    resid = yw - Xw @ coef
    s2 = (resid**2).sum() / df
    cov = s2 * np.linalg.inv(Xw.T @ Xw)
    se = np.sqrt(np.diag(cov))
    z = float(coef[1] / se[1])
    p = float(2 * stats.t.sf(abs(z), df))
    return EggerResult(z, p, float(coef[0]), float(coef[1]), float(se[0]), float(se[1]), df)

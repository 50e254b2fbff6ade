"""Two-arm effects: an effect and its CI, p-values recomputed from CIs, effects against the arm data."""

from __future__ import annotations

import math

from ..cells import format_number as fmt
from .context import Context, _present
from .registry import NUMBER, Param, check, companion


# ---------------------------------------------------------------------------------------------
# Comparative reviews: arms, effects with CIs, p-values (issue 14)
# ---------------------------------------------------------------------------------------------

#: The 97.5% quantile of the standard normal: a 95% CI spans 2 x 1.959964 standard errors.
Z975 = 1.959963984540054


def _two_sided_p(z):
    """Two-sided normal p-value of ``|z|`` (``erfc(|z| / sqrt 2)``), vectorised."""
    import numpy as np
    from math import erfc

    z = np.abs(np.asarray(z, dtype=float))
    return np.vectorize(lambda v: erfc(v / math.sqrt(2)) if v == v else float("nan"), otypes=[float])(z)


def _pfmt(p: float) -> str:
    """A p-value as a reviewer reads it: 0.0038, 0.21, < 0.0001."""
    if p != p:
        return "NA"
    if p < 0.0001:
        return "< 0.0001"
    if p < 0.001:
        return f"{p:.2g}"
    text = f"{p:.4f}" if p < 0.01 else f"{p:.3f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


_EFFECT = [Param("effect", "field", types=NUMBER, help="the reported effect, e.g. rr_reported"),
           Param("low", "field", types=NUMBER, help="its lower 95% CI bound, e.g. rr_ci_low"),
           Param("high", "field", types=NUMBER, help="its upper 95% CI bound, e.g. rr_ci_high")]


def _effect_cells(ctx: Context, sheet: str, effect: str, low: str, high: str, i: int) -> str:
    return f"{ctx.cell(sheet, effect, i)}, {ctx.cell(sheet, low, i)}, {ctx.cell(sheet, high, i)}"


@check("effect-outside-ci", "error",
       "A reported effect outside its own 95% CI (beyond the rounding of the reported digits), or a CI whose lower "
       "bound is not below its upper bound.", _EFFECT)
def effect_outside_ci(ctx: Context, sheet: str, severity: str, effect, low, high):
    import numpy as np

    e, lo, hi = ctx.num(sheet, effect), ctx.num(sheet, low), ctx.num(sheet, high)
    he, hl, hh = ctx.half_units(sheet, effect, low, high)
    out = []
    reversed_ = _present(lo, hi) & (lo >= hi)
    for i in np.flatnonzero(reversed_):
        msg = (f"95% CI of {effect} is {fmt(lo[i])} to {fmt(hi[i])}: the lower bound {low} ({ctx.cell(sheet, low, i)}) "
               f"is not below the upper bound {high} ({ctx.cell(sheet, high, i)}); {effect} = {fmt(e[i])} "
               f"({ctx.cell(sheet, effect, i)}). Were the bounds swapped or one of them mistyped?")
        out.append(ctx.finding(sheet, i, low, "effect-outside-ci", severity, msg, lo[i],
                               involves=(high, effect)))
    below = _present(e, lo) & (e + he < lo - hl) & ~reversed_
    above = _present(e, hi) & (e - he > hi + hh) & ~reversed_ & ~below
    for i in np.flatnonzero(below | above):
        side, bound, b = ("below the lower", low, lo[i]) if below[i] else ("above the upper", high, hi[i])
        new_lo, new_hi = (e[i], hi[i]) if below[i] else (lo[i], e[i])
        swapped = not np.isnan(new_lo) and not np.isnan(new_hi) and new_lo < b < new_hi
        hint = (f"was it swapped with {bound} ({ctx.cell(sheet, bound, i)})? {effect} {fmt(b)} with CI "
                f"{fmt(new_lo)} to {fmt(new_hi)} would fit" if swapped else
                "was a CI bound typed into the effect cell, or the effect into a CI cell?")
        msg = (f"{effect} = {fmt(e[i])} lies {side} bound of its 95% CI {fmt(lo[i])} to {fmt(hi[i])} "
               f"({_effect_cells(ctx, sheet, effect, low, high, i)}); {hint}")
        out.append(ctx.finding(sheet, i, effect, "effect-outside-ci", severity, msg, e[i], involves=(low, high)))
    return out


@check("ratio-ci-not-log-symmetric", "warning",
       "A ratio's 95% CI symmetric around it on the natural scale, not on the log scale, beyond the rounding of "
       "the reported digits: a typed or transposed bound? (A ratio or bound <= 0: ratio-not-positive.)", _EFFECT)
def ratio_ci_not_log_symmetric(ctx: Context, sheet: str, severity: str, effect, low, high):
    import numpy as np

    e, lo, hi = ctx.num(sheet, effect), ctx.num(sheet, low), ctx.num(sheet, high)
    he, hl, hh = ctx.half_units(sheet, effect, low, high)
    out = []
    bad_sev = ctx.severity("ratio-not-positive")
    nonpos = np.zeros(len(e), bool)
    for name, v in ((effect, e), (low, lo), (high, hi)):
        for i in np.flatnonzero(~np.isnan(v) & (v <= 0) & ~nonpos):
            nonpos[i] = True
            msg = (f"{name} = {fmt(v[i])} ({ctx.cell(sheet, name, i)}): a ratio and its CI bounds are above 0; "
                   f"was a log ratio or a difference entered? ({effect}, {low}, {high}: "
                   f"{_effect_cells(ctx, sheet, effect, low, high, i)})")
            out.append(ctx.finding(sheet, i, name, "ratio-not-positive", bad_sev, msg, v[i],
                                   involves=(effect, low, high)))
    ok = _present(e, lo, hi) & ~nonpos & (lo < e) & (e < hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        # log-symmetric within rounding: some e', lo', hi' within half a unit of the digits with e'^2 = lo' hi'
        e_lo, e_hi = np.maximum(e - he, 0) ** 2, (e + he) ** 2
        p_lo, p_hi = np.maximum(lo - hl, 0) * np.maximum(hi - hh, 0), (lo + hl) * (hi + hh)
        log_sym = (e_lo <= p_hi) & (p_lo <= e_hi)
        nat_sym = np.abs(2 * e - lo - hi) <= 2 * he + hl + hh
    for i in np.flatnonzero(ok & nat_sym & ~log_sym):
        msg = (f"95% CI {fmt(lo[i])} to {fmt(hi[i])} of {effect} = {fmt(e[i])} "
               f"({_effect_cells(ctx, sheet, effect, low, high, i)}) is symmetric on the natural scale, but a ratio's "
               f"CI is symmetric on the log scale: with {low} = {fmt(lo[i])} the upper bound would be about "
               f"{e[i] ** 2 / lo[i]:.3g}, with {high} = {fmt(hi[i])} the lower about {e[i] ** 2 / hi[i]:.3g}. "
               "Is a bound mistyped or transposed? Check the paper")
        out.append(ctx.finding(sheet, i, high, "ratio-ci-not-log-symmetric", severity, msg, hi[i],
                               involves=(effect, low)))
    return out


companion("ratio-not-positive", "error", "A ratio (or a bound of its CI) that is 0 or negative.",
          "ratio-ci-not-log-symmetric")


def p_range_from_ci(e, lo, hi, he, hl, hh, ratio: bool):
    """The two-sided p-values a reported effect and 95% CI can give within the rounding of their digits.

    As Altman & Bland (2011) obtain a p from a CI: on the scale where the CI is symmetric (log for
    ratios), ``se = (hi - lo) / (2 x 1.959964)``, ``z = estimate / se``, ``p = 2 (1 - Phi(|z|))``.
    As statcheck (Nuijten et al. 2016) recomputes a reported test, every value the rounded figures
    stand for is allowed: each of ``e``, ``lo``, ``hi`` lies within half a unit of its last digit
    (``he``, ``hl``, ``hh``). The estimate is the reported effect or, for a CI that is not symmetric
    around it (an exact or profile CI), the CI's centre. Returns ``(p_centre, p_min, p_max)``.

    References
    ----------
    Altman DG, Bland JM. How to obtain the P value from a confidence interval. BMJ 2011;343:d2304.
    Nuijten MB, Hartgerink CHJ, van Assen MALM, Epskamp S, Wicherts JM. The prevalence of
    statistical reporting errors in psychology (1985-2013). Behav Res Methods 2016;48:1205-26.
    """
    import numpy as np

    def g(x):
        if not ratio:
            return np.asarray(x, dtype=float)
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), -np.inf)

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        se0 = (g(hi) - g(lo)) / (2 * Z975)
        p0 = _two_sided_p(g(e) / se0)
        se_min = np.maximum((g(hi - hh) - g(lo + hl)) / (2 * Z975), 0)
        se_max = (g(hi + hh) - g(lo - hl)) / (2 * Z975)
        ends = [g(e - he), g(e + he), (g(lo - hl) + g(hi - hh)) / 2, (g(lo + hl) + g(hi + hh)) / 2]
        stack = np.vstack([np.where(np.isnan(x), np.nan, x) for x in ends])
        lo_est = np.minimum(stack[0], stack[2])
        hi_est = np.maximum(stack[1], stack[3])
        crosses = (lo_est <= 0) & (hi_est >= 0)
        a_min = np.where(crosses, 0.0, np.minimum(np.abs(lo_est), np.abs(hi_est)))
        a_max = np.maximum(np.abs(lo_est), np.abs(hi_est))
        z_max = np.where(se_min > 0, a_max / np.where(se_min > 0, se_min, 1), np.inf)
        z_min = np.where(np.isfinite(se_max) & (se_max > 0), a_min / np.where(se_max > 0, se_max, 1), 0.0)
        p_min = _two_sided_p(np.where(np.isnan(a_max), np.nan, z_max))
        p_max = _two_sided_p(np.where(np.isnan(a_min), np.nan, z_min))
    return p0, p_min, p_max


def _reported_significant(p: float, bound: str, alpha: float) -> bool | None:
    """Does the reported p say significant at ``alpha`` (True), not significant (False), or neither?"""
    if bound == "":
        return p <= alpha  # as statcheck: p = .05 reported counts as significant
    if bound in ("<", "<="):
        return True if p <= alpha else None
    if bound == ">":
        return False if p >= alpha else None
    return False  # ns


@check("p-value-contradicts-ci", "error",
       "A reported p-value whose decision at alpha contradicts the one its 95% CI gives (recomputed as statcheck "
       "does, Altman & Bland 2011); a p inconsistent with the CI without changing the decision: "
       "p-value-inconsistent.",
       [*_EFFECT, Param("p", "field", types=NUMBER, help="the reported p-value (a field of type p_value), e.g. p_value"),
        Param("scale", "text", choices=("ratio", "difference"),
              help="ratio (OR, RR, HR: the CI is symmetric on the log scale) or difference (MD, RD)"),
        Param("alpha", "number", required=False, help="the significance level, default 0.05 (also what NS means)")])
def p_value_contradicts_ci(ctx: Context, sheet: str, severity: str, effect, low, high, p, scale, alpha=0.05):
    import numpy as np

    e, lo, hi, pv = (ctx.num(sheet, f) for f in (effect, low, high, p))
    data = ctx.table(sheet).data
    bounds = data[p + "__bound"].to_numpy() if p + "__bound" in data else np.full(len(pv), "", dtype=object)
    ratio = scale == "ratio"
    ok = _present(e, lo, hi, pv) & (lo < hi)
    if ratio:
        ok &= (e > 0) & (lo > 0) & (hi > 0)
    if not ok.any():
        return []
    he, hl, hh = ctx.half_units(sheet, effect, low, high)
    hp = ctx.half_unit(sheet, p)
    p0, p_min, p_max = p_range_from_ci(e, lo, hi, he, hl, hh, ratio)
    out = []
    weak = ctx.severity("p-value-inconsistent")
    for i in np.flatnonzero(ok):
        b = bounds[i] if isinstance(bounds[i], str) else ""
        x = pv[i]
        if b == "":
            consistent = (x - hp[i] <= p_max[i] + 1e-12) and (x + hp[i] >= p_min[i] - 1e-12)
            shown = f"p = {fmt(x)}"
        elif b == "<":
            consistent, shown = p_min[i] < x, f"p < {fmt(x)}"
        elif b == "<=":
            consistent, shown = p_min[i] <= x, f"p <= {fmt(x)}"
        elif b == ">":
            consistent, shown = p_max[i] >= x, f"p > {fmt(x)}"
        else:
            consistent, shown = p_max[i] >= alpha, f"not significant (p > {fmt(alpha)})"
        if consistent:
            continue
        said = _reported_significant(x, b, alpha) if b != "ns" else False
        computed = True if p_max[i] < alpha else False if p_min[i] > alpha else None
        decision = said is not None and computed is not None and said != computed
        null = "1" if ratio else "0"
        excludes = "excludes" if computed else "includes"
        rng = (f"{_pfmt(p_min[i])} to {_pfmt(p_max[i])}" if _pfmt(p_min[i]) != _pfmt(p_max[i]) else _pfmt(p0[i]))
        se = (math.log(hi[i]) - math.log(lo[i]) if ratio else hi[i] - lo[i]) / (2 * Z975)
        what = "log " + effect if ratio else effect
        msg = (f"{p} says {shown} ({ctx.cell(sheet, p, i)}), but {effect} = {fmt(e[i])} with 95% CI "
               f"{fmt(lo[i])} to {fmt(hi[i])} ({_effect_cells(ctx, sheet, effect, low, high, i)}) gives p = "
               f"{_pfmt(p0[i])} (se of {what} = {se:.3g}; within the rounding of the reported digits p = {rng}; "
               f"Altman & Bland 2011)")
        if decision:
            msg += (f": the CI {excludes} the null value {null}, so the p-value and the CI disagree on "
                    f"significance at {fmt(alpha)}. Check the p-value, the effect and the CI in the paper")
            out.append(ctx.finding(sheet, i, p, "p-value-contradicts-ci", severity, msg, ctx.table(sheet).raw[p].iat[i],
                                   involves=(effect, low, high)))
        else:
            msg += "; the decision at " + fmt(alpha) + " is the same, but the figures do not match: check them"
            out.append(ctx.finding(sheet, i, p, "p-value-inconsistent", weak, msg, ctx.table(sheet).raw[p].iat[i],
                                   involves=(effect, low, high)))
    return out


companion("p-value-inconsistent", "warning",
          "A reported p-value that its 95% CI cannot give within rounding, without changing the decision at alpha "
          "(statcheck's 'inconsistency').", "p-value-contradicts-ci")


_MEASURES = ("RR", "OR", "RD", "MD", "ROM")


def arm_effect(measure: str, x1, x2, n1, n2, s1=None, s2=None):
    """The effect of arm 1 versus arm 2 from arm-level data, on its analysis scale, and its standard error.

    ``RR``, ``OR``, ``RD`` from events ``x`` of totals ``n`` (0.5 added to every cell of a table with
    a zero cell for RR and OR, as metafor's ``escalc`` does by default); ``MD`` and ``ROM`` from means
    ``x``, SDs ``s`` and totals ``n``. RR, OR and ROM are on the log scale. The standard errors are
    the usual large-sample ones (Borenstein et al. 2009, Introduction to Meta-Analysis, ch. 4-5).
    Returns ``(estimate, se)`` arrays (se NaN when it cannot be computed).
    """
    import numpy as np

    x1, x2, n1, n2 = (np.asarray(v, dtype=float) for v in (x1, x2, n1, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure in ("RR", "OR"):
            zero = (x1 == 0) | (x2 == 0) | (x1 == n1) | (x2 == n2)
            add = np.where(zero, 0.5, 0.0)
            a, b, c, d = x1 + add, n1 - x1 + add, x2 + add, n2 - x2 + add
            if measure == "RR":
                est = np.log(a / (a + b)) - np.log(c / (c + d))
                se = np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
            else:
                est = np.log(a * d / (b * c))
                se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        elif measure == "RD":
            p1, p2 = x1 / n1, x2 / n2
            est = p1 - p2
            se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        else:
            s1 = np.full(len(x1), np.nan) if s1 is None else np.asarray(s1, dtype=float)
            s2 = np.full(len(x1), np.nan) if s2 is None else np.asarray(s2, dtype=float)
            if measure == "MD":
                est = x1 - x2
                se = np.sqrt(s1 ** 2 / n1 + s2 ** 2 / n2)
            else:
                est = np.where((x1 > 0) & (x2 > 0), np.log(x1 / np.where(x2 > 0, x2, 1)), np.nan)
                se = np.sqrt(s1 ** 2 / (n1 * x1 ** 2) + s2 ** 2 / (n2 * x2 ** 2))
    return est, se


_NAMES = {"RR": "risk ratio", "OR": "odds ratio", "RD": "risk difference", "MD": "mean difference",
          "ROM": "ratio of means"}


@check("effect-contradicts-counts", "error",
       "A reported effect whose direction contradicts the arm-level counts or means of the same row, and which "
       "the 95% CI of the estimate from them excludes (an inverted ratio, swapped arms); a size mismatch beyond "
       "rounding: effect-differs-from-counts.",
       [Param("effect", "field", types=NUMBER, help="the reported effect, e.g. rr_reported"),
        Param("measure", "text", choices=_MEASURES, help="what the effect is: RR, OR, RD (from events and totals), "
                                                         "MD or ROM (from means, SDs and totals)"),
        Param("totals", "fields", types=NUMBER, help="each arm's total, intervention first, e.g. [total_vaccinated, total_control]"),
        Param("events", "fields", types=NUMBER, required=False, like="totals",
              help="each arm's events (RR, OR, RD), e.g. [events_vaccinated, events_control]"),
        Param("means", "fields", types=NUMBER, required=False, like="totals", help="each arm's mean (MD, ROM)"),
        Param("sds", "fields", types=NUMBER, required=False, like="totals", help="each arm's SD (MD, ROM)"),
        Param("tolerance", "number", required=False,
              help="relative difference allowed beyond rounding before effect-differs-from-counts, e.g. 0.1 for "
                   "adjusted effects (default 0: rounding only)")],
       needs=("effect", "totals", "events", "means"))
def effect_contradicts_counts(ctx: Context, sheet: str, severity: str, effect, measure, totals, events=None,
                              means=None, sds=None, tolerance=0.0):
    import numpy as np

    source = events if measure in ("RR", "OR", "RD") else means
    if not source or len(source) != 2 or len(totals) != 2:
        return []
    if any(f not in ctx.table(sheet).data for f in [*source, *(sds or [])]):
        return []
    r = ctx.num(sheet, effect)
    hr = ctx.half_unit(sheet, effect)
    x1, x2 = (ctx.num(sheet, f) for f in source)
    n1, n2 = (ctx.num(sheet, f) for f in totals)
    s1, s2 = (ctx.num(sheet, f) for f in sds) if sds and len(sds) == 2 else (None, None)
    est, se = arm_effect(measure, x1, x2, n1, n2, s1, s2)
    ratio = measure in ("RR", "OR", "ROM")
    valid = _present(r, x1, x2, n1, n2, est) & (n1 > 0) & (n2 > 0)
    if measure in ("RR", "OR", "RD"):
        valid &= (x1 <= n1) & (x2 <= n2) & (x1 >= 0) & (x2 >= 0)
    if ratio:
        valid &= r > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # the reported value's rounding interval on the analysis scale
        r_lo = np.log(np.maximum(r - hr, 1e-300)) if ratio else r - hr
        r_hi = np.log(r + hr) if ratio else r + hr
        r_c = np.log(np.where(r > 0, r, 1)) if ratio else r
        tol = np.log1p(tolerance) if ratio else tolerance * np.abs(np.where(np.isnan(est), 0, est))
        ci_lo, ci_hi = est - Z975 * se, est + Z975 * se
        opposite = ((r_hi < 0) & (est > 0)) | ((r_lo > 0) & (est < 0))
        excluded = (r_hi < ci_lo) | (r_lo > ci_hi)
        mismatch = (r_hi < est - tol - 1e-12) | (r_lo > est + tol + 1e-12)
    out = []
    weak = ctx.severity("effect-differs-from-counts")
    name = _NAMES[measure]
    show = (lambda v: math.exp(v)) if ratio else (lambda v: v)
    for i in np.flatnonzero(valid & mismatch):
        arms = ", ".join(ctx.cell(sheet, f, i) for f in [*source, *totals, *(sds or [])])
        data_txt = (f"{fmt(x1[i])}/{fmt(n1[i])} vs {fmt(x2[i])}/{fmt(n2[i])}" if measure in ("RR", "OR", "RD") else
                    f"means {x1[i]:.6g} vs {x2[i]:.6g} (n {fmt(n1[i])} vs {fmt(n2[i])})")
        ci = (f" (95% CI {show(ci_lo[i]):.3g} to {show(ci_hi[i]):.3g})" if not np.isnan(se[i]) else "")
        msg = (f"{effect} = {fmt(r[i])} ({ctx.cell(sheet, effect, i)}) but the arms of this row, {data_txt} "
               f"({arms}), give a {name} of {show(est[i]):.3g}{ci}")
        # what a slip would explain
        hint = ""
        inv = -r_c[i]
        if abs(inv - est[i]) <= (np.log1p(2 * hr[i] / r[i]) if ratio else 2 * hr[i]) + 1e-9 + (tol if ratio else 0):
            flipped = f"1/{fmt(r[i])} = {1 / r[i]:.3g}" if ratio else f"-({fmt(r[i])})"
            hint = f"; {flipped} matches them: an inverted effect, or the arms swapped?"
        elif measure in ("RR", "OR"):
            other = "OR" if measure == "RR" else "RR"
            alt, _ = arm_effect(other, x1[i:i + 1], x2[i:i + 1], n1[i:i + 1], n2[i:i + 1])
            if r_lo[i] - 1e-12 <= alt[0] <= r_hi[i] + 1e-12:
                hint = f"; it matches their {_NAMES[other]} ({math.exp(alt[0]):.3g}): is the measure right?"
        if opposite[i] and excluded[i] and not np.isnan(se[i]):
            msg += (f"{hint} The direction differs: the reported effect favours the other arm, outside the CI "
                    f"from the arms. Check {effect} and the arm columns in the paper")
            out.append(ctx.finding(sheet, i, effect, "effect-contradicts-counts", severity, msg, r[i],
                                   involves=(*source, *totals, *(sds or []))))
        else:
            msg += (f", beyond the rounding of the reported digits{hint or '; an adjusted or differently computed effect?'}"
                    " Check it in the paper")
            out.append(ctx.finding(sheet, i, effect, "effect-differs-from-counts", weak, msg, r[i],
                                   involves=(*source, *totals, *(sds or []))))
    return out


companion("effect-differs-from-counts", "warning",
          "A reported effect whose size differs from the arm-level counts or means of the same row beyond rounding "
          "(and the tolerance).", "effect-contradicts-counts")

"""Times: medians and their confidence intervals, follow-up, and enrolment periods."""

from __future__ import annotations

from ..cells import format_number as fmt
from .context import Context, _present
from .registry import NUMBER, Param, check


# ---------------------------------------------------------------------------------------------
# Medians and confidence intervals
# ---------------------------------------------------------------------------------------------

_MEDIAN = [Param("median", "field", types=NUMBER, help="e.g. pfs_median"), Param("low", "field", types=NUMBER, help="e.g. pfs_ci_low"),
           Param("high", "field", types=NUMBER, help="e.g. pfs_ci_high")]


@check("median-outside-ci", "error",
       "A median outside its own confidence interval, or a CI whose lower bound is not below its upper bound.",
       _MEDIAN)
def median_outside_ci(ctx: Context, sheet: str, severity: str, median, low, high):
    import numpy as np

    m, lo, hi = ctx.num(sheet, median), ctx.num(sheet, low), ctx.num(sheet, high)
    hi_nr = ctx.nr(sheet, high)
    out = []
    cells = lambda i: f"{ctx.cell(sheet, median, i)}, {ctx.cell(sheet, low, i)}, {ctx.cell(sheet, high, i)}"
    reversed_ = _present(lo, hi) & (lo >= hi)
    for i in np.flatnonzero(reversed_):
        msg = (f"95% CI of {median} is {fmt(lo[i])}-{fmt(hi[i])}: the lower bound {low} ({ctx.cell(sheet, low, i)}) "
               f"is not below the upper bound {high} ({ctx.cell(sheet, high, i)}); median {fmt(m[i])} "
               f"({ctx.cell(sheet, median, i)})")
        out.append(ctx.finding(sheet, i, low, "median-outside-ci", severity, msg, lo[i],
                               involves=(high, median)))
    below = _present(m, lo) & (m < lo) & ~reversed_
    above = _present(m, hi) & (m > hi) & ~hi_nr & ~reversed_ & ~below
    for i in np.flatnonzero(below | above):
        hi_text = "NR" if hi_nr[i] else fmt(hi[i])
        side = "below the lower" if below[i] else "above the upper"
        # a swap of the median with the bound it passed gives a plausible (roughly symmetric) CI:
        # then the bound's cell is where the median was typed
        bound, b = (low, lo[i]) if below[i] else (high, hi[i])
        new_m, new_lo, new_hi = b, (m[i] if below[i] else lo[i]), (hi[i] if below[i] else m[i])
        swapped = False
        if not np.isnan(new_lo) and not np.isnan(new_hi) and new_lo < new_m < new_hi:
            ratio = (new_hi - new_m) / (new_m - new_lo)
            swapped = 0.5 <= ratio <= 2
        hint = (f"was it swapped with {bound} ({ctx.cell(sheet, bound, i)})? Median {fmt(new_m)} with CI "
                f"{fmt(new_lo)}-{fmt(new_hi)} would fit" if swapped else
                "was a CI bound typed into the median cell, or the median into a CI cell?")
        msg = f"{median} = {fmt(m[i])} lies {side} bound of its 95% CI {fmt(lo[i])}-{hi_text} ({cells(i)}); {hint}"
        # reported on the median: a typo there, or a swap with a bound, both leave the median cell wrong
        out.append(ctx.finding(sheet, i, median, "median-outside-ci", severity, msg, m[i],
                               involves=(low, high)))
    return out


@check("ci-bound-equals-median", "warning",
       "A CI bound equal to its median: was the median typed into the CI cell?", _MEDIAN)
def ci_bound_equals_median(ctx: Context, sheet: str, severity: str, median, low, high):
    import numpy as np

    m, lo, hi = ctx.num(sheet, median), ctx.num(sheet, low), ctx.num(sheet, high)
    out = []
    for name, b in ((low, lo), (high, hi)):
        for i in np.flatnonzero(_present(m, b) & (m == b)):
            msg = (f"{name} = {fmt(b[i])} ({ctx.cell(sheet, name, i)}) equals the median {median} "
                   f"({ctx.cell(sheet, median, i)}): was the median typed into the CI cell? Check the paper")
            out.append(ctx.finding(sheet, i, name, "ci-bound-equals-median", severity, msg, b[i],
                                   involves=(median,)))
    return out


@check("median-without-ci", "warning", "A median without a usable 95% CI cannot be pooled.", _MEDIAN,
       needs=("median",))
def median_without_ci(ctx: Context, sheet: str, severity: str, median, low, high):
    import numpy as np

    m, lo, hi = ctx.num(sheet, median), ctx.num(sheet, low), ctx.num(sheet, high)
    hi_nr = ctx.nr(sheet, high)
    out = []
    no_upper = np.isnan(hi) & ~hi_nr
    for i in np.flatnonzero(~np.isnan(m) & (np.isnan(lo) | no_upper)):
        what = ("no 95% CI" if np.isnan(lo[i]) and no_upper[i] else
                "no lower CI bound" if np.isnan(lo[i]) else "no upper CI bound (write NR if it was not reached)")
        msg = (f"{median} = {fmt(m[i])} ({ctx.cell(sheet, median, i)}) has {what} "
               f"({ctx.cell(sheet, low, i)}, {ctx.cell(sheet, high, i)}), so it cannot be pooled")
        out.append(ctx.finding(sheet, i, median, "median-without-ci", severity, msg, m[i],
                               involves=(low, high)))
    return out


@check("asymmetric-ci", "info",
       "A CI much longer on one side (ratio above the threshold): the standard error taken from it assumes symmetry.",
       [*_MEDIAN, Param("ratio", "number", help="e.g. 3")])
def asymmetric_ci(ctx: Context, sheet: str, severity: str, median, low, high, ratio):
    import numpy as np

    m, lo, hi = ctx.num(sheet, median), ctx.num(sheet, low), ctx.num(sheet, high)
    ok = _present(m, lo, hi) & (m > lo) & (hi > m)
    up = np.where(ok, hi - m, np.nan)
    down = np.where(ok, m - lo, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.maximum(up / down, down / up)
    out = []
    for i in np.flatnonzero(ok & (r > ratio)):
        msg = (f"95% CI of {median} {fmt(m[i])} is {fmt(lo[i])}-{fmt(hi[i])}: one side is {r[i]:.1f} times the "
               f"other ({ctx.cell(sheet, low, i)}, {ctx.cell(sheet, high, i)}); the standard error taken from it "
               "assumes symmetry")
        out.append(ctx.finding(sheet, i, median, "asymmetric-ci", severity, msg, m[i], involves=(low, high)))
    return out


@check("pfs-exceeds-os", "warning", "Median PFS above median OS in the same cohort.",
       [Param("pfs", "field", types=NUMBER, help="e.g. pfs_median"), Param("os", "field", types=NUMBER, help="e.g. os_median")])
def pfs_exceeds_os(ctx: Context, sheet: str, severity: str, pfs, os):
    import numpy as np

    p, o = ctx.num(sheet, pfs), ctx.num(sheet, os)
    out = []
    for i in np.flatnonzero(_present(p, o) & (p > o)):
        msg = (f"{pfs} = {fmt(p[i])}{ctx.unit(sheet, pfs, i)} ({ctx.cell(sheet, pfs, i)}) is above {os} = "
               f"{fmt(o[i])}{ctx.unit(sheet, os, i)} ({ctx.cell(sheet, os, i)}); progression-free survival cannot be "
               "longer than overall survival")
        out.append(ctx.finding(sheet, i, pfs, "pfs-exceeds-os", severity, msg, p[i], involves=(os,)))
    return out


@check("pfs-beyond-followup", "warning", "Median PFS above a multiple (factor) of the median follow-up.",
       [Param("median", "field", types=NUMBER, help="e.g. pfs_median"), Param("followup", "field", types=NUMBER, help="e.g. followup_median_months"),
        Param("factor", "number", help="e.g. 2")])
def pfs_beyond_followup(ctx: Context, sheet: str, severity: str, median, followup, factor):
    import numpy as np

    m, f = ctx.num(sheet, median), ctx.num(sheet, followup)
    out = []
    for i in np.flatnonzero(_present(m, f) & (m > factor * f)):
        msg = (f"{median} = {fmt(m[i])}{ctx.unit(sheet, median, i)} ({ctx.cell(sheet, median, i)}) is more than "
               f"{fmt(factor)} times the median follow-up {followup} = {fmt(f[i])}{ctx.unit(sheet, followup, i)} "
               f"({ctx.cell(sheet, followup, i)})")
        out.append(ctx.finding(sheet, i, median, "pfs-beyond-followup", severity, msg, m[i],
                               involves=(followup,)))
    return out


@check("enrolment-period-reversed", "error", "Enrolment ends before it starts.",
       [Param("start", "field", types=NUMBER, help="e.g. enrolment_start"), Param("end", "field", types=NUMBER, help="e.g. enrolment_end")])
def enrolment_period_reversed(ctx: Context, sheet: str, severity: str, start, end):
    import numpy as np

    s, e = ctx.num(sheet, start), ctx.num(sheet, end)
    out = []
    for i in np.flatnonzero(_present(s, e) & (s > e)):
        msg = (f"{start} = {fmt(s[i])} ({ctx.cell(sheet, start, i)}) is after {end} = {fmt(e[i])} "
               f"({ctx.cell(sheet, end, i)})")
        out.append(ctx.finding(sheet, i, start, "enrolment-period-reversed", severity, msg, s[i],
                               involves=(end,)))
    return out


@check("enrolment-after-publication", "warning", "Enrolment ends after the year of publication.",
       [Param("end", "field", types=NUMBER, help="e.g. enrolment_end"), Param("publication", "field", types=NUMBER, help="e.g. year")])
def enrolment_after_publication(ctx: Context, sheet: str, severity: str, end, publication):
    import numpy as np

    e, y = ctx.num(sheet, end), ctx.num(sheet, publication)
    out = []
    for i in np.flatnonzero(_present(e, y) & (e > y)):
        msg = (f"{end} = {fmt(e[i])} ({ctx.cell(sheet, end, i)}) is after the publication year {fmt(y[i])} "
               f"({ctx.cell(sheet, publication, i)})")
        out.append(ctx.finding(sheet, i, end, "enrolment-after-publication", severity, msg, e[i],
                               involves=(publication,)))
    return out

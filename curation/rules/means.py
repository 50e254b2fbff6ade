"""Arm means and SDs: an SE entered as an SD, a median and IQR where a mean and SD are expected."""

from __future__ import annotations

import math

from ..cells import format_number as fmt
from .context import Context, _present
from .registry import NUMBER, Param, check, companion, covers


@check("sd-looks-like-se", "warning",
       "An SD that looks like a standard error: far below the other studies' SDs of the outcome while SD x sqrt(n) "
       "is in line with them, or below the smallest SD plausible on the outcome's scale.",
       [Param("sds", "fields", types=NUMBER, help="each arm's SD, e.g. [sd_intervention, sd_control]"),
        Param("totals", "fields", types=NUMBER, like="sds", help="each arm's total, same order, e.g. [n_intervention, n_control]"),
        Param("group_by", "fields", required=False,
              help="the rows of one outcome, e.g. [outcome] (default: the whole sheet is one outcome)"),
        Param("factor", "number", required=False,
              help="how far below: an SD below factor/sqrt(n) times the others' median SD (default 2)"),
        Param("min_sd", "number", required=False, help="the smallest SD plausible on the outcome's scale")])
def sd_looks_like_se(ctx: Context, sheet: str, severity: str, sds, totals, group_by=None, factor=2.0, min_sd=None):
    import numpy as np
    import pandas as pd

    d = ctx.table(sheet).data
    n_rows = len(d)
    group = (pd.DataFrame({g: d[g].astype(object).to_numpy() for g in group_by})
             .groupby(list(group_by), dropna=False, sort=False).ngroup().to_numpy() if group_by
             else np.zeros(n_rows, int))
    study = np.array([s if s is not None else f"#{i}" for i, s in enumerate(ctx.table(sheet).study_ids)], dtype=object)
    recs = pd.DataFrame({
        "pos": np.tile(np.arange(n_rows), len(sds)), "arm": np.repeat(np.arange(len(sds)), n_rows),
        "sd": np.concatenate([ctx.num(sheet, f) for f in sds]), "n": np.concatenate([ctx.num(sheet, f) for f in totals]),
        "g": np.tile(group, len(sds)), "study": np.tile(study, len(sds))})
    recs = recs[recs["sd"].notna()]
    out = []
    flagged: set[tuple[int, int]] = set()
    for _, grp in recs.groupby("g", sort=False):
        sd_all, st_all = grp["sd"].to_numpy(), grp["study"].to_numpy()
        for rec in grp.itertuples(index=False):
            if not (rec.n > 1 and rec.sd > 0):
                continue
            others = sd_all[(st_all != rec.study) & (sd_all > 0)]
            if len(others) < 2:
                continue
            med = float(np.median(others))
            root = math.sqrt(rec.n)
            if rec.sd < factor * med / root and rec.sd <= med / factor and med / factor <= rec.sd * root <= factor * med:
                i, f = int(rec.pos), sds[int(rec.arm)]
                flagged.add((i, int(rec.arm)))
                unit = ctx.unit(sheet, f, i)
                msg = (f"{f} = {fmt(rec.sd)}{unit} ({ctx.cell(sheet, f, i)}) is far below the SDs of the other "
                       f"studies of this outcome (median {med:.4g}{unit} over {len(others)} arms); as a "
                       f"standard error with {totals[int(rec.arm)]} = {fmt(rec.n)} ({ctx.cell(sheet, totals[int(rec.arm)], i)}) "
                       f"it gives SD = {fmt(rec.sd)} x sqrt({fmt(rec.n)}) = {rec.sd * root:.4g}{unit}, "
                       "in line with them: was the SE entered as the SD? Check the paper (SE, SEM or SD?)")
                out.append(ctx.finding(sheet, i, f, "sd-looks-like-se", severity, msg, rec.sd,
                                       involves=(totals[int(rec.arm)],)))
    if min_sd is not None:
        for arm, f in enumerate(sds):
            v = ctx.num(sheet, f)
            n = ctx.num(sheet, totals[arm])
            for i in np.flatnonzero(~np.isnan(v) & (v < min_sd)):
                if (int(i), arm) in flagged:
                    continue
                unit = ctx.unit(sheet, f, i)
                se_txt = (f"; as a standard error with {totals[arm]} = {fmt(n[i])} ({ctx.cell(sheet, totals[arm], i)}) "
                          f"it gives SD = {v[i] * math.sqrt(n[i]):.4g}{unit}" if n[i] > 1 else "")
                msg = (f"{f} = {fmt(v[i])}{unit} ({ctx.cell(sheet, f, i)}) is below {fmt(min_sd)}{unit}, the smallest "
                       f"SD plausible on this scale{se_txt}: was the SE entered as the SD? Check the paper")
                out.append(ctx.finding(sheet, int(i), f, "sd-looks-like-se", severity, msg, v[i],
                                       involves=(totals[arm],) if n[i] > 1 else ()))
    return out


@covers("sd-looks-like-se")
def _sd_se_coverage(ctx: Context, sheet: str, sds, totals, group_by=None, factor=2.0, min_sd=None):
    """Rows holding every SD and total apply; they are checked when ``min_sd`` is given or two other
    studies of the same outcome have SDs to compare with."""
    import numpy as np
    import pandas as pd

    d = ctx.table(sheet).data
    n_rows = len(d)
    applies = np.ones(n_rows, bool)
    for f in (*sds, *totals):
        applies &= ~np.isnan(ctx.num(sheet, f))
    if min_sd is not None:
        return applies, applies, np.full(n_rows, None, dtype=object)
    group = (pd.DataFrame({g: d[g].astype(object).to_numpy() for g in group_by})
             .groupby(list(group_by), dropna=False, sort=False).ngroup().to_numpy() if group_by
             else np.zeros(n_rows, int))
    study = pd.Series([str(s) if s is not None else f"#{i}" for i, s in enumerate(ctx.table(sheet).study_ids)])
    any_sd = np.zeros(n_rows, bool)
    for f in sds:
        any_sd |= ctx.num(sheet, f) > 0
    studies = pd.DataFrame({"g": group, "s": study})[any_sd].drop_duplicates().groupby("g").size()
    with_sd = pd.Series(group).map(studies).fillna(0).to_numpy()
    others = with_sd - any_sd.astype(int)  # other studies of the outcome with an SD (rows of one study: a bound)
    checked = applies & (others >= 2)
    what = "the outcome" if group_by else "the sheet"
    return applies, checked, np.full(n_rows, f"fewer than 2 other studies of {what} with an SD to compare with",
                                     dtype=object)


def _phi_inv(q):
    """The standard normal quantile (scipy's ``norm.ppf``)."""
    from scipy.stats import norm

    return norm.ppf(q)


def mean_sd_from_quantiles(n, median, q1=None, q3=None, minimum=None, maximum=None):
    """Estimate a sample mean and SD from the median with the quartiles and/or the range.

    Scenarios as Luo et al. name them: S1 = {min, median, max}, S2 = {q1, median, q3},
    S3 = {min, q1, median, q3, max} (Wan et al.'s C1, C3 and C2); the richest one the values
    allow is used.

    Mean (Luo et al. 2018)::

        S1: w = 4 / (4 + n^0.75);            mean = w (min + max) / 2 + (1 - w) median
        S2: w = 0.7 + 0.39 / n;               mean = w (q1 + q3) / 2 + (1 - w) median
        S3: w1 = 2.2 / (2.2 + n^0.75), w2 = 0.7 - 0.72 / n^0.55;
            mean = w1 (min + max) / 2 + w2 (q1 + q3) / 2 + (1 - w1 - w2) median

    SD (Wan et al. 2014)::

        xi(n)  = 2 Phi^-1((n - 0.375) / (n + 0.25))
        eta(n) = 2 Phi^-1((0.75 n - 0.125) / (n + 0.25))
        S1: SD = (max - min) / xi(n)
        S2: SD = (q3 - q1) / eta(n)
        S3: SD = (max - min) / (2 xi(n)) + (q3 - q1) / (2 eta(n))

    Both assume an approximately normal outcome; a skewed one is better left unpooled.

    References
    ----------
    Luo D, Wan X, Liu J, Tong T. Optimally estimating the sample mean from the sample size, median,
    mid-range, and/or mid-quartile range. Stat Methods Med Res 2018;27(6):1785-1805.
    Wan X, Wang W, Liu J, Tong T. Estimating the sample mean and standard deviation from the sample
    size, median, range and/or interquartile range. BMC Med Res Methodol 2014;14:135.

    Returns
    -------
    (mean, sd, scenario) with scenario ``"S1"``, ``"S2"`` or ``"S3"``; ``(nan, nan, "")`` when the
    values allow none.
    """
    nan = float("nan")

    def ok(*v):
        return all(x is not None and x == x for x in v)

    if not ok(n, median) or n < 2:
        return nan, nan, ""
    xi = 2 * float(_phi_inv((n - 0.375) / (n + 0.25)))
    eta = 2 * float(_phi_inv((0.75 * n - 0.125) / (n + 0.25)))
    if ok(q1, q3, minimum, maximum):
        w1 = 2.2 / (2.2 + n ** 0.75)
        w2 = 0.7 - 0.72 / n ** 0.55
        mean = w1 * (minimum + maximum) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * median
        return mean, (maximum - minimum) / (2 * xi) + (q3 - q1) / (2 * eta), "S3"
    if ok(q1, q3):
        w = 0.7 + 0.39 / n
        return w * (q1 + q3) / 2 + (1 - w) * median, (q3 - q1) / eta, "S2"
    if ok(minimum, maximum):
        w = 4 / (4 + n ** 0.75)
        return w * (minimum + maximum) / 2 + (1 - w) * median, (maximum - minimum) / xi, "S1"
    return nan, nan, ""


@check("median-iqr-not-mean-sd", "warning",
       "A median with its IQR or range where a mean and SD are expected; with convert_median_iqr: true, mean and SD "
       "are estimated (Luo et al. 2018; Wan et al. 2014) and noted as median-iqr-converted.",
       [Param("means", "fields", types=NUMBER, help="each arm's mean, e.g. [mean_intervention, mean_control]"),
        Param("sds", "fields", types=NUMBER, like="means", help="each arm's SD, same order"),
        Param("medians", "fields", types=NUMBER, like="means", help="each arm's median, same order"),
        Param("totals", "fields", types=NUMBER, like="means", help="each arm's total, same order"),
        Param("q1", "fields", types=NUMBER, required=False, like="means", help="each arm's first quartile"),
        Param("q3", "fields", types=NUMBER, required=False, like="means", help="each arm's third quartile"),
        Param("minimum", "fields", types=NUMBER, required=False, like="means", help="each arm's minimum (range)"),
        Param("maximum", "fields", types=NUMBER, required=False, like="means", help="each arm's maximum (range)"),
        Param("convert_median_iqr", "flag", required=False,
              help="true: estimate the missing mean and SD from the median and IQR/range (default false)")],
       needs=("medians",))
def median_iqr_not_mean_sd(ctx: Context, sheet: str, severity: str, means, sds, medians, totals, q1=None, q3=None,
                           minimum=None, maximum=None, convert_median_iqr=False):
    import numpy as np

    data = ctx.table(sheet).data
    out = []
    note = ctx.severity("median-iqr-converted")

    def col(names, arm):
        if not names or names[arm] not in data:
            return np.full(len(data), np.nan)
        return ctx.num(sheet, names[arm])

    for arm, (mf, sf, medf, nf) in enumerate(zip(means, sds, medians, totals)):
        if any(f not in data for f in (mf, sf, medf)):
            continue
        m, s, med, n = col(means, arm), col(sds, arm), col(medians, arm), col(totals, arm)
        a, b, lo, hi = col(q1, arm), col(q3, arm), col(minimum, arm), col(maximum, arm)
        has_iqr, has_range = _present(a, b), _present(lo, hi)
        todo = ~np.isnan(med) & (np.isnan(m) | np.isnan(s)) & (has_iqr | has_range)
        for i in np.flatnonzero(todo):
            given = [f"{medf} = {fmt(med[i])} ({ctx.cell(sheet, medf, i)})"]
            if has_iqr[i]:
                given.append(f"IQR {fmt(a[i])} to {fmt(b[i])} ({ctx.cell(sheet, q1[arm], i)}, {ctx.cell(sheet, q3[arm], i)})")
            if has_range[i]:
                given.append(f"range {fmt(lo[i])} to {fmt(hi[i])} ({ctx.cell(sheet, minimum[arm], i)}, "
                             f"{ctx.cell(sheet, maximum[arm], i)})")
            empty = [f for f, v in ((mf, m[i]), (sf, s[i])) if np.isnan(v)]
            cited = [*empty, medf, *((q1[arm], q3[arm]) if has_iqr[i] else ()),
                     *((minimum[arm], maximum[arm]) if has_range[i] else ())]
            cells = ", ".join(ctx.cell(sheet, f, i) for f in empty)
            mean_est, sd_est, scen = (mean_sd_from_quantiles(n[i], med[i], a[i] if has_iqr[i] else None,
                                                             b[i] if has_iqr[i] else None,
                                                             lo[i] if has_range[i] else None,
                                                             hi[i] if has_range[i] else None)
                                      if convert_median_iqr else (float("nan"),) * 2 + ("",))
            if convert_median_iqr and scen:
                done = []
                if np.isnan(m[i]):
                    data.loc[data.index[i], mf] = mean_est
                    done.append(f"{mf} = {mean_est:.4g} (Luo et al. 2018)")
                if np.isnan(s[i]):
                    data.loc[data.index[i], sf] = sd_est
                    done.append(f"{sf} = {sd_est:.4g} (Wan et al. 2014)")
                msg = (f"{' and '.join(empty)} ({cells}) estimated from {', '.join(given)} and {nf} = {fmt(n[i])} "
                       f"({ctx.cell(sheet, nf, i)}), scenario {scen}: {'; '.join(done)}; these estimates assume a "
                       "roughly normal outcome and are used for pooling (convert_median_iqr: true)")
                out.append(ctx.finding(sheet, i, empty[0], "median-iqr-converted", note, msg, None,
                                       involves=(*cited, nf)))
                continue
            why = (f"; it cannot be converted without {nf} ({ctx.cell(sheet, nf, i)})" if convert_median_iqr else
                   "; set convert_median_iqr: true on this check to estimate them (Luo et al. 2018 for the mean, "
                   "Wan et al. 2014 for the SD), or leave this arm out of the pooled means")
            msg = (f"{' and '.join(empty)} empty ({cells}) but {', '.join(given)} reported: a median and its IQR or "
                   f"range are not a mean and SD{why}")
            out.append(ctx.finding(sheet, i, medf, "median-iqr-not-mean-sd", severity, msg, med[i],
                                   involves=(*cited, *([nf] if convert_median_iqr else []))))
    return out


companion("median-iqr-converted", "info",
          "A mean and SD estimated from a median with its IQR or range (convert_median_iqr: true; Luo et al. 2018, "
          "Wan et al. 2014).", "median-iqr-not-mean-sd")

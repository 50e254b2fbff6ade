"""Equivalences: one quantity stated twice, and an effect against the arm data of its trial.

A paper often states one quantity in two forms: a hazard ratio and its log, a percentage and its
proportion, a standard error and the CI it was computed from, a study's N on two sheets. The
schema declares each such pair as a check; the two statements must agree within the rounding of
the digits each was reported with (each value stands for every number within half a unit of its
last digit, as statcheck treats reported statistics: Nuijten et al. 2016, Behav Res Methods
48:1205). A slip in either (an HR inverted with its CI while its log keeps the sign, a log with the
wrong sign, 949 typed 494) makes them disagree.
"""

from __future__ import annotations

import math

from ..cells import format_number as fmt
from .context import Context, _present
from .effects import Z975, arm_effect
from .registry import NUMBER, Param, check, covers


def _cells(ctx: Context, sheet: str, i: int, *refs: str) -> str:
    return ", ".join(ctx.cell(sheet, r, i) for r in refs)


def _overlap(a_lo, a_hi, b_lo, b_hi):
    """Do the intervals [a_lo, a_hi] and [b_lo, b_hi] meet (elementwise, with a hair of float slack)?"""
    eps = 1e-12
    return (a_lo <= b_hi + eps) & (b_lo <= a_hi + eps)


@check("log-ratio-mismatch", "error",
       "A ratio (HR, OR, RR) and its logarithm stated on the same row that disagree beyond the rounding of their "
       "digits: an inverted ratio, or a log with the wrong sign.",
       [Param("ratio", "field", types=NUMBER, help="the ratio, e.g. hr"),
        Param("log", "field", types=NUMBER, help="its natural logarithm, e.g. log_hr"),
        Param("low", "field", types=NUMBER, required=False, help="the ratio's lower 95% CI bound, e.g. hr_ci_low"),
        Param("high", "field", types=NUMBER, required=False, help="the ratio's upper 95% CI bound, e.g. hr_ci_high")],
       needs=("ratio", "log"))
def log_ratio_mismatch(ctx: Context, sheet: str, severity: str, ratio, log, low=None, high=None):
    import numpy as np

    r, lg = ctx.num(sheet, ratio), ctx.num(sheet, log)
    hr, hl = ctx.half_unit(sheet, ratio), ctx.half_unit(sheet, log)
    ok = _present(r, lg) & (r > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_lo = np.log(np.maximum(r - hr, 1e-300))
        r_hi = np.log(r + hr)
        agree = _overlap(r_lo, r_hi, lg - hl, lg + hl)
        flipped = _overlap(r_lo, r_hi, -lg - hl, -lg + hl)
    out = []
    for i in np.flatnonzero(ok & ~agree):
        cited = [ratio, log]
        ci = ""
        if low and high:
            lo, hi = ctx.num(sheet, low)[i], ctx.num(sheet, high)[i]
            if not (np.isnan(lo) or np.isnan(hi)):
                cited += [low, high]
                ci = f"; 95% CI {fmt(lo)} to {fmt(hi)}, {_cells(ctx, sheet, i, low, high)}"
        msg = (f"{ratio} = {fmt(r[i])} ({ctx.cell(sheet, ratio, i)}{ci}) and {log} = {fmt(lg[i])} "
               f"({ctx.cell(sheet, log, i)}) state one quantity twice, but ln({fmt(r[i])}) = {math.log(r[i]):.3f} and "
               f"exp({fmt(lg[i])}) = {math.exp(lg[i]):.3g}")
        if flipped[i]:
            direction = "below" if r[i] < 1 else "above"
            msg += (f": they point opposite ways ({ratio} {direction} 1, {log} {'negative' if lg[i] < 0 else 'positive'})"
                    f"; 1/{fmt(r[i])} = {1 / r[i]:.3g} matches the log. Either {ratio} was inverted"
                    f"{' with its CI' if ci else ''} (the other arm as reference) or {log} has the wrong sign: "
                    "check which one the paper states")
        else:
            msg += (f", beyond the rounding of their digits: one of them was mistyped (a digit, or the log of "
                    f"another ratio); check both in the paper")
        out.append(ctx.finding(sheet, i, ratio, "log-ratio-mismatch", severity, msg, r[i], involves=cited))
    return out


@check("percentage-proportion-mismatch", "error",
       "A percentage and the proportion it states again (42.5 and 0.425) that disagree beyond the rounding of "
       "their digits.",
       [Param("percentage", "field", types=NUMBER, help="the value in percent, e.g. orr_pct"),
        Param("proportion", "field", types=NUMBER, help="the same value as a proportion (0 to 1), e.g. orr_prop")])
def percentage_proportion_mismatch(ctx: Context, sheet: str, severity: str, percentage, proportion):
    import numpy as np

    pc, pr = ctx.num(sheet, percentage), ctx.num(sheet, proportion)
    hc, hp = ctx.half_unit(sheet, percentage), ctx.half_unit(sheet, proportion)
    bad = _present(pc, pr) & ~_overlap(pc - hc, pc + hc, 100 * (pr - hp), 100 * (pr + hp))
    out = []
    for i in np.flatnonzero(bad):
        msg = (f"{percentage} = {fmt(pc[i])}% ({ctx.cell(sheet, percentage, i)}) but {proportion} = {fmt(pr[i])} "
               f"({ctx.cell(sheet, proportion, i)}) is {fmt(round(100 * pr[i], 6))}%")
        if pr[i] > 1 and _overlap(pc[i] - hc[i], pc[i] + hc[i], pr[i] - hp[i], pr[i] + hp[i]):
            msg += f": {proportion} holds the percentage itself; a proportion lies between 0 and 1"
        elif pc[i] <= 1 and _overlap(pc[i] - hc[i], pc[i] + hc[i], pr[i] - hp[i], pr[i] + hp[i]):
            msg += f": {percentage} holds the proportion itself; write it in percent"
        else:
            msg += "; one of them was mistyped: check both in the paper"
        out.append(ctx.finding(sheet, i, percentage, "percentage-proportion-mismatch", severity, msg, pc[i],
                               involves=(proportion,)))
    return out


@check("se-ci-mismatch", "error",
       "A standard error that the 95% CI on the same row does not give: (upper - lower) / (2 x 1.96), on the log "
       "scale for a ratio, beyond the rounding of the digits and the tolerance.",
       [Param("se", "field", types=NUMBER, help="the standard error (of the log for a ratio), e.g. log_hr_se"),
        Param("low", "field", types=NUMBER, help="the lower 95% CI bound, e.g. hr_ci_low"),
        Param("high", "field", types=NUMBER, help="the upper 95% CI bound, e.g. hr_ci_high"),
        Param("scale", "text", choices=("ratio", "difference"),
              help="ratio (the CI of a ratio; the SE is of its log) or difference (MD, RD)"),
        Param("tolerance", "number", required=False,
              help="relative difference allowed beyond rounding, for CIs from a t distribution or exact methods "
                   "(default 0.1)")])
def se_ci_mismatch(ctx: Context, sheet: str, severity: str, se, low, high, scale, tolerance=0.1):
    import numpy as np

    s, lo, hi = ctx.num(sheet, se), ctx.num(sheet, low), ctx.num(sheet, high)
    hs, hl, hh = ctx.half_unit(sheet, se), *ctx.half_units(sheet, low, high)
    ratio = scale == "ratio"
    ok = _present(s, lo, hi) & (lo < hi) & (s > 0)
    if ratio:
        ok &= lo > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if ratio:
            g = lambda x: np.log(np.maximum(x, 1e-300))  # noqa: E731
        else:
            g = lambda x: x  # noqa: E731
        width = (g(hi) - g(lo)) / (2 * Z975)
        w_min = np.maximum(g(hi - hh) - g(lo + hl), 0) / (2 * Z975) / (1 + tolerance)
        w_max = (g(hi + hh) - g(lo - hl)) / (2 * Z975) * (1 + tolerance)
        fits = _overlap(s - hs, s + hs, w_min, w_max)
        natural = (hi - lo) / (2 * Z975)
    out = []
    for i in np.flatnonzero(ok & ~fits):
        msg = (f"{se} = {fmt(s[i])} ({ctx.cell(sheet, se, i)}) but the 95% CI {fmt(lo[i])} to {fmt(hi[i])} "
               f"({_cells(ctx, sheet, i, low, high)}) gives a standard error of {width[i]:.3g}"
               f"{' on the log scale' if ratio else ''} ((ln {fmt(hi[i])} - ln {fmt(lo[i])}) / 3.92)"
               if ratio else
               f"{se} = {fmt(s[i])} ({ctx.cell(sheet, se, i)}) but the 95% CI {fmt(lo[i])} to {fmt(hi[i])} "
               f"({_cells(ctx, sheet, i, low, high)}) gives a standard error of {width[i]:.3g} "
               f"(({fmt(hi[i])} - {fmt(lo[i])}) / 3.92)")
        if ratio and abs(s[i] - natural[i]) <= hs[i] + natural[i] * tolerance:
            msg += (f": {fmt(s[i])} is the SE of the ratio itself ({natural[i]:.3g}); pooling needs the SE of "
                    "its log")
        else:
            msg += (", beyond the rounding of the digits and the tolerance: is it the SE of another estimate, an SD, "
                    "or a CI of another level? Check the paper")
        out.append(ctx.finding(sheet, i, se, "se-ci-mismatch", severity, msg, s[i], involves=(low, high)))
    return out


@check("stated-twice-differs", "error",
       "One quantity stated twice, on two sheets or two columns (a study's N analysed on the studies and the "
       "outcomes sheet), with values that differ beyond the rounding of their digits.",
       [Param("field", "field", help="the value on this sheet, e.g. n_analysed"),
        Param("same_as", "ref", by_study=True,
              help="the same quantity elsewhere: a field of this row, or sheet.field of another sheet (its "
                   "study's row; on a sheet with several rows per study, any of them; this very sheet: the "
                   "study's other rows), e.g. studies.n_analysed")],
       needs=("field",))
def stated_twice_differs(ctx: Context, sheet: str, severity: str, field, same_as):
    import numpy as np

    a = ctx.values(sheet, field)
    fs = ctx.schema.sheets[sheet].fields[field]
    numeric = fs.type in NUMBER
    out = []
    half = ctx.half_unit(sheet, field) if numeric else None
    # the rows holding the value that have another statement of it (the others find nothing to compare)
    rows = np.flatnonzero(_has_each(a) & _has_other_statement(ctx, sheet, same_as))
    for i, others in _other_statements(ctx, sheet, same_as, rows):
        v = a[i]
        if not others:
            continue
        if numeric:
            hv = half[i]
            same = any(_overlap(v - hv, v + hv, w - hw, w + hw) for w, hw, _ in others)
        else:
            from ..schema import fold

            same = any(isinstance(w, str) and isinstance(v, str) and fold(w) == fold(v) or w == v
                       for w, _, _ in others)
        if same:
            continue
        unit = ctx.unit(sheet, field, i) if numeric else ""
        there = "; ".join(f"{fmt(w) + unit if numeric else repr(w)} ({cell})" for w, _, cell in others)
        shown = fmt(v) if numeric else repr(v)
        other, _, fname = same_as.rpartition(".")
        where = f"{fname} on the study's other rows" if other == sheet else same_as
        msg = (f"{field} = {shown}{unit} ({ctx.cell(sheet, field, i)}) but {where} = {there}: the same quantity is "
               f"stated twice with different values; one of them was mistyped (transposed digits, another "
               f"cohort's figure?). Check both in the paper")
        out.append(ctx.finding(sheet, i, field, "stated-twice-differs", severity, msg, v, involves=(same_as,)))
    return out


def _other_statements(ctx: Context, sheet: str, ref: str, rows=None):
    """For each row of ``sheet`` (of ``rows``, ascending, when given): the values of ``ref`` that state the
    same quantity, as ``(value, half unit, cell)``: the same row's field (``field``), the parent row's
    (``studies.field``), every row of the row's study on another sheet, or its study's other rows
    on this sheet (``sheet.field`` naming this sheet)."""
    t = ctx.table(sheet)
    n = len(t)
    which = range(n) if rows is None else [int(i) for i in rows]
    if "." not in ref:
        vals, half = ctx.values(sheet, ref), _half(ctx, sheet, ref)
        for i in which:
            yield i, [(vals[i], half[i], ctx.cell(sheet, ref, i))] if _has(vals[i]) else []
        return
    other, fname = ref.split(".", 1)
    spec = ctx.schema.sheets[sheet]
    if other != sheet and (spec.parent is not None and other == spec.parent.sheet or other == ctx.schema.root_sheet):
        pos = ctx._parent_positions(sheet, other)
        vals, half = ctx.tables[other].data[fname].to_numpy(), _half(ctx, other, fname)
        for i in which:
            p = int(pos[i])
            ok = p >= 0 and _has(vals[p])
            yield i, [(vals[p], half[p], ctx.tables[other].ref(p, fname))] if ok else []
        return
    # a sibling sheet, or this sheet's other rows: the rows of the same study
    o = ctx.tables[other]
    vals, half = o.data[fname].to_numpy(), _half(ctx, other, fname)
    by_study: dict = {}
    for j, sid in enumerate(o.study_ids):
        if sid is not None and _has(vals[j]):
            by_study.setdefault(str(sid), []).append(j)
    ids = t.study_ids
    for i in which:
        sid = ids[i]
        rows_ = by_study.get(str(sid), []) if sid is not None else []
        yield i, [(vals[j], half[j], o.ref(j, fname)) for j in rows_ if not (other == sheet and j == i)]


def _has_other_statement(ctx: Context, sheet: str, ref: str):
    """Whether :func:`_other_statements` finds any value for each row of ``sheet`` (without the cells;
    computed once per check stage: the check and its coverage ask)."""
    import numpy as np
    import pandas as pd

    key = ("has other statement", sheet, ref)
    if key in ctx.memo:
        return ctx.memo[key]
    t = ctx.table(sheet)
    if "." not in ref:
        out = _has_each(ctx.values(sheet, ref))
    else:
        other, fname = ref.split(".", 1)
        spec = ctx.schema.sheets[sheet]
        if other != sheet and (spec.parent is not None and other == spec.parent.sheet
                               or other == ctx.schema.root_sheet):
            pos = ctx._parent_positions(sheet, other)
            held = _has_each(ctx.tables[other].data[fname].to_numpy())
            out = (pos >= 0) & held[np.clip(pos, 0, max(len(held) - 1, 0))] if len(held) else np.zeros(len(t), bool)
        else:  # the rows of the same study (its other rows, on this very sheet) that hold a value
            o = ctx.tables[other]
            ids = np.empty(len(o) + len(t), dtype=object)
            ids[:len(o)] = [None if x is None else str(x) for x in o.study_ids]
            ids[len(o):] = [None if x is None else str(x) for x in t.study_ids]
            codes = pd.factorize(ids)[0]
            o_codes, t_codes = codes[:len(o)], codes[len(o):]
            held = _has_each(o.data[fname].to_numpy()) & (o_codes >= 0)
            counts = np.bincount(o_codes[held], minlength=int(codes.max()) + 1 if len(codes) else 0)
            n_other = np.where(t_codes >= 0, counts[np.maximum(t_codes, 0)] if len(counts) else 0, 0)
            if other == sheet:  # not the row itself
                n_other = n_other - held.astype(int)
            out = (n_other > 0) & (t_codes >= 0)
    ctx.memo[key] = out
    return out


def _has(v) -> bool:
    return v is not None and not (isinstance(v, float) and v != v)


def _has_each(vals):
    """:func:`_has` of each value of an array."""
    import numpy as np
    import pandas as pd

    arr = np.asarray(vals)
    if arr.dtype.kind == "f":
        return ~np.isnan(arr)
    if arr.dtype.kind != "O":
        return np.ones(len(arr), bool)
    miss = pd.isna(arr)
    for i in np.flatnonzero(miss):  # pd.NA and NaT are values to _has
        miss[i] = not _has(arr[i])
    return ~miss


def _half(ctx: Context, sheet: str, fname: str):
    import numpy as np

    fs = ctx.schema.sheets[sheet].fields[fname]
    if fs.type in NUMBER:
        return ctx.half_unit(sheet, fname)
    return np.zeros(len(ctx.table(sheet)))


@covers("stated-twice-differs")
def _stated_twice_coverage(ctx: Context, sheet: str, field, same_as):
    """Rows holding the value apply; they are checked when the other statement is there."""
    import numpy as np

    import pandas as pd

    vals = ctx.values(sheet, field)
    applies = _has_each(vals)
    if same_as.split(".", 1)[0] == sheet and "." in same_as:
        # the study's other rows on this sheet: a study of one row states it once
        codes = pd.factorize(np.array([str(x) if x is not None else None for x in ctx.table(sheet).study_ids]
                                      + [None], dtype=object)[:-1])[0]
        counts = np.bincount(codes[codes >= 0], minlength=int(codes.max()) + 1 if len(codes) else 0)
        applies &= np.where(codes >= 0, counts[np.maximum(codes, 0)] if len(counts) else 0, 0) >= 2
    checked = _has_other_statement(ctx, sheet, same_as)
    return applies, checked, np.full(len(vals), f"{same_as} empty", dtype=object)


@check("effect-contradicts-arms", "error",
       "An effect (a hazard ratio, an RR ...) whose direction contradicts the arm-level data of the same trial on "
       "its other rows (one row per arm), when the CI from those arms excludes no effect: an inverted ratio, or "
       "the arms' roles swapped.",
       [Param("effect", "field", types=NUMBER, help="the reported effect, intervention versus control, e.g. hr"),
        Param("scale", "text", choices=("ratio", "difference"), help="ratio (HR, OR, RR) or difference (MD, RD)"),
        Param("role", "field", help="the field naming each row's arm, e.g. arm"),
        Param("intervention", "text", help="the intervention arm's label in role, e.g. intervention"),
        Param("control", "text", help="the control arm's label in role, e.g. control"),
        Param("totals", "field", types=NUMBER, help="each arm row's total, e.g. n"),
        Param("events", "field", types=NUMBER, required=False, help="each arm row's events, e.g. events"),
        Param("means", "field", types=NUMBER, required=False, help="each arm row's mean (with sds), e.g. mean"),
        Param("sds", "field", types=NUMBER, required=False, help="each arm row's SD, e.g. sd"),
        Param("group_by", "fields", help="the rows of one trial and comparison, e.g. [study_id, comparison]")],
       needs=("effect",))
def effect_contradicts_arms(ctx: Context, sheet: str, severity: str, effect, scale, role, intervention, control,
                            totals, group_by, events=None, means=None, sds=None):
    import numpy as np

    groups = _arm_pairs(ctx, sheet, role, intervention, control, group_by)
    if not groups or not (events or (means and sds)):
        return []
    r = ctx.num(sheet, effect)
    h = ctx.half_unit(sheet, effect)
    n = ctx.num(sheet, totals)
    x = ctx.num(sheet, events if events else means)
    s = ctx.num(sheet, sds) if sds and not events else None
    measure = "RR" if events else "MD"
    out = []
    for rows, i_arm, c_arm in groups:
        ids = [i for i in rows if not np.isnan(r[i]) and i not in (i_arm, c_arm)]
        if not ids:
            continue
        x1, x2, n1, n2 = (np.array([v]) for v in (x[i_arm], x[c_arm], n[i_arm], n[c_arm]))
        if np.isnan([x1[0], x2[0], n1[0], n2[0]]).any() or n1[0] <= 0 or n2[0] <= 0:
            continue
        if events and (x1[0] > n1[0] or x2[0] > n2[0] or x1[0] < 0 or x2[0] < 0):
            continue
        est, se = arm_effect(measure, x1, x2, n1, n2, None if s is None else np.array([s[i_arm]]),
                             None if s is None else np.array([s[c_arm]]))
        e, sd = float(est[0]), float(se[0])
        if not (math.isfinite(e) and math.isfinite(sd)) or sd <= 0:
            continue
        lo, hi = e - Z975 * sd, e + Z975 * sd
        if lo <= 0 <= hi:
            continue  # the arms show no clear direction
        for i in ids:
            if scale == "ratio":
                if r[i] <= 0:
                    continue
                v_lo, v_hi = math.log(max(r[i] - h[i], 1e-300)), math.log(r[i] + h[i])
            else:
                v_lo, v_hi = r[i] - h[i], r[i] + h[i]
            if not ((v_hi < 0 < lo) or (v_lo > 0 > hi)):
                continue
            arms = [f for f in (events or means, totals, sds if not events else None) if f]
            cells = ", ".join(ctx.cell(sheet, f, k) for k in (i_arm, c_arm) for f in arms)
            data = (f"{fmt(x1[0])}/{fmt(n1[0])} vs {fmt(x2[0])}/{fmt(n2[0])}" if events else
                    f"means {x1[0]:.6g} vs {x2[0]:.6g} (n {fmt(n1[0])} vs {fmt(n2[0])})")
            show = math.exp if measure == "RR" else (lambda v: v)
            name = "risk ratio" if measure == "RR" else "mean difference"
            side = "below" if (v_hi < 0) else "above"
            null = "1" if scale == "ratio" else "0"
            msg = (f"{effect} = {fmt(r[i])} ({ctx.cell(sheet, effect, i)}) is {side} {null}, but the arms of the same "
                   f"trial, {intervention} vs {control} {data} ({cells}), give a {name} of {show(e):.3g} (95% CI "
                   f"{show(lo):.3g} to {show(hi):.3g}), the other way: was the effect inverted (the control arm as "
                   f"reference) or the arms' labels in {role} swapped? Check {effect} and the arm rows in the paper")
            out.append(ctx.finding(sheet, i, effect, "effect-contradicts-arms", severity, msg, r[i],
                                   involves=(role, *arms)))
    return out


def _arm_pairs(ctx: Context, sheet: str, role: str, intervention: str, control: str, group_by):
    """Per group of rows (a trial's comparison): ``(rows, intervention row, control row)`` when the
    group has exactly one row of each arm."""
    import numpy as np
    import pandas as pd

    from ..schema import fold

    d = ctx.table(sheet).data
    if not len(d):
        return []
    vocab = ctx.schema.vocabulary_of(sheet, role)

    def canon(label):
        if vocab is not None:
            return vocab.canonical(label) or label
        return label

    want_i, want_c = fold(canon(intervention)), fold(canon(control))
    labels = [fold(v) if isinstance(v, str) else None for v in d[role]]
    keys = pd.DataFrame({g: d[g].astype(object).to_numpy() for g in group_by})
    codes = keys.groupby(list(group_by), dropna=False, sort=False).ngroup().to_numpy()
    out = []
    for _, idx in sorted(pd.Series(np.arange(len(codes))).groupby(codes).indices.items()):
        rows = [int(k) for k in idx]
        i_rows = [k for k in rows if labels[k] == want_i]
        c_rows = [k for k in rows if labels[k] == want_c]
        if len(i_rows) == 1 and len(c_rows) == 1:
            out.append((rows, i_rows[0], c_rows[0]))
    return out


@covers("effect-contradicts-arms")
def _effect_arms_coverage(ctx: Context, sheet: str, effect, scale, role, intervention, control, totals, group_by,
                          events=None, means=None, sds=None):
    """Rows with an effect apply; they are checked when their group holds one intervention and one
    control row with the arm data."""
    import numpy as np

    r = ctx.num(sheet, effect)
    applies = ~np.isnan(r)
    checked = np.zeros(len(r), bool)
    reason = np.full(len(r), f"no {intervention} and {control} row with {totals} in its group", dtype=object)
    source = events or means
    if source:
        x, n = ctx.num(sheet, source), ctx.num(sheet, totals)
        for rows, i_arm, c_arm in _arm_pairs(ctx, sheet, role, intervention, control, group_by):
            if not np.isnan([x[i_arm], x[c_arm], n[i_arm], n[c_arm]]).any():
                checked[[k for k in rows if k not in (i_arm, c_arm)]] = True
    return applies, checked, reason

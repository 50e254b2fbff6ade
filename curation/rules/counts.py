"""Count consistency: response counts and their totals, percentages, arms and the number randomised."""

from __future__ import annotations

from typing import Any

from ..cells import format_number as fmt
from .context import Context, _abbr, _label, _present, _sum_of
from .registry import NUMBER, Param, check, companion, covers


# ---------------------------------------------------------------------------------------------
# Count consistency
# ---------------------------------------------------------------------------------------------


def rate_matches(rate, decimals, events, total):
    """Does a reported percentage equal 100 x events / total within the rounding of its digits?

    Exact integer arithmetic: with ``d`` decimals reported, ``R = round(rate x 10^d)`` matches when
    ``|2 R total - 2 x 100 x events x 10^d| <= total``, i.e. the true value lies within half a unit
    of the last digit, half-way values included (23.75 reported as 23.7 or 23.8 both match).
    """
    import numpy as np

    d = np.where(np.isnan(decimals), 1, np.clip(decimals, 0, 6))
    scale = 10.0 ** d
    r = np.round(rate * scale)
    lhs = np.abs(2 * r * total - 200 * events * scale)
    return lhs <= total + 1e-9 * np.maximum(lhs, 1)


_SUM = [Param("parts", "fields", types=NUMBER, help="the response counts, e.g. [cr, pr, sd, pd]"),
        Param("not_evaluable", "field", types=NUMBER, required=False, help="patients without an assessable response, e.g. ne"),
        Param("total", "field", types=NUMBER, help="the denominator, e.g. n_evaluable")]


def _response_sums(ctx: Context, sheet: str, parts, not_evaluable, total):
    import numpy as np

    arrs = [ctx.num(sheet, p) for p in parts]
    tot = ctx.num(sheet, total)
    ne = ctx.num(sheet, not_evaluable) if not_evaluable else np.full(len(tot), np.nan)
    present = _present(tot, *arrs)
    s = np.sum(arrs, axis=0) if arrs else np.zeros(len(tot))
    with_ne = s + np.where(np.isnan(ne), 0, ne)
    return arrs, tot, ne, present, s, with_ne


def _likely_wrong(ctx: Context, sheet: str, i: int, parts, arrs, total, tot_i, with_ne_i,
                  not_evaluable=None, ne_i=float("nan")) -> tuple[str, str]:
    """The cell most likely wrong in a count mismatch, using the reported percentages as witnesses.

    A count is the likely culprit when replacing it by the value that makes the sum right also
    makes every reported percentage that involves it agree; the denominator is, when the
    percentages agree with the counts over their own sum. Otherwise the denominator is reported.
    """
    import numpy as np

    key = ("likely-wrong witnesses", sheet, total, tuple(parts))
    witnesses = ctx.memo.get(key)
    if witnesses is None:  # (rate field, part indices included, its values, its decimals), once per check
        data = ctx.table(sheet).data
        dec = ctx.table(sheet).decimals
        witnesses = []
        for chk in ctx.schema.checks.get(sheet, ()):
            if chk.rule == "percentage-mismatch":
                p = chk.params
                if p.get("total") == total and all(e in parts for e in p.get("events", [])) and p["rate"] in data:
                    witnesses.append((p["rate"], [parts.index(e) for e in p["events"]], data[p["rate"]].to_numpy(),
                                      dec.get(p["rate"])))
        ctx.memo[key] = witnesses
    usable = [(rf, idx, rates, decs) for rf, idx, rates, decs in witnesses if not np.isnan(rates[i])]
    if not usable:
        return total, ""

    vals = [a[i] for a in arrs]
    # every trial at once: each count replaced by the value that makes the sum right, NE so replaced, and the
    # counts as they are over their own sum; a trial agrees when every witness percentage matches it
    trials: list[tuple[list, Any]] = []
    named: list[tuple[str, Any]] = []
    for j, name in enumerate(parts):
        new = tot_i - (with_ne_i - vals[j])
        if new >= 0:
            trial = list(vals)
            trial[j] = new
            trials.append((trial, tot_i))
            named.append((name, new))
    if not_evaluable and not np.isnan(ne_i):
        new = tot_i - (with_ne_i - ne_i)
        if new >= 0:
            trials.append((vals, tot_i))
            named.append((not_evaluable, new))
    trials.append((vals, with_ne_i))
    agree = np.ones(len(trials), bool)
    for rf, idx, rates, decs in usable:
        agree &= rate_matches(np.full(len(trials), rates[i]), np.full(len(trials), np.nan if decs is None else decs[i]),
                              np.array([sum(counts[k] for k in idx) for counts, _ in trials]),
                              np.array([denominator for _, denominator in trials]))
    candidates = [nv for nv, ok in zip(named, agree[:-1]) if ok]
    witnessed = ", ".join(f"{rf} {fmt(rates[i])}%" for rf, _, rates, _ in usable)
    unit = ctx.unit(sheet, total, i) or " participants"
    if len(candidates) == 1:
        name, new = candidates[0]
        return name, f"; {name} = {fmt(new)} would make the counts add up and agree with {witnessed}"
    if candidates:
        either = " or ".join(f"{n} = {fmt(v)}" for n, v in candidates)
        return total, f"; {either} would make the counts add up and agree with {witnessed}"
    if agree[-1]:
        return total, (f"; the reported {witnessed} agree with the counts over {fmt(with_ne_i)}{unit}, "
                       f"so {total} looks wrong")
    return total, ""


@check("response-sum-mismatch", "error",
       "CR+PR+SD+PD(+NE) does not add up to n_evaluable (with NE given: any difference; without: a sum above it).",
       _SUM)
def response_sum_mismatch(ctx: Context, sheet: str, severity: str, parts, total, not_evaluable=None):
    import numpy as np

    arrs, tot, ne, present, s, with_ne = _response_sums(ctx, sheet, parts, not_evaluable, total)
    has_ne = ~np.isnan(ne)
    bad = present & ((has_ne & (with_ne != tot)) | (~has_ne & (s > tot)))
    out = []
    names = _sum_of(parts) + (f"+{_abbr(not_evaluable)}" if not_evaluable else "")
    for i in np.flatnonzero(bad):
        cells = ", ".join(ctx.cell(sheet, p, i) for p in [*parts, *([not_evaluable] if has_ne[i] else [])])
        where, hint = _likely_wrong(ctx, sheet, i, list(parts), arrs, total, tot[i], with_ne[i],
                                    not_evaluable if has_ne[i] else None, ne[i])
        label = names if has_ne[i] else _sum_of(parts)
        msg = (f"{label} = {fmt(with_ne[i])} but {total} = {fmt(tot[i])} ({ctx.cell(sheet, total, i)}; "
               f"counts in {cells}){hint}")
        out.append(ctx.finding(sheet, i, where, "response-sum-mismatch", severity, msg,
                               ctx.values(sheet, where)[i],
                               involves=(total, *parts, *([not_evaluable] if has_ne[i] else []))))
    return out


@check("response-sum-short", "warning",
       "Without NE, CR+PR+SD+PD is below n_evaluable: patients unaccounted for.", _SUM)
def response_sum_short(ctx: Context, sheet: str, severity: str, parts, total, not_evaluable=None):
    import numpy as np

    arrs, tot, ne, present, s, with_ne = _response_sums(ctx, sheet, parts, not_evaluable, total)
    bad = present & np.isnan(ne) & (s < tot)
    out = []
    for i in np.flatnonzero(bad):
        cells = ", ".join(ctx.cell(sheet, p, i) for p in parts)
        where, hint = _likely_wrong(ctx, sheet, i, list(parts), arrs, total, tot[i], with_ne[i])
        msg = (f"{_sum_of(parts)} = {fmt(s[i])} is {fmt(tot[i] - s[i])} short of {total} = "
               f"{fmt(tot[i])} ({ctx.cell(sheet, total, i)}; counts in {cells}): "
               f"{fmt(tot[i] - s[i])}{ctx.unit(sheet, total, i) or ' participants'} unaccounted for; enter them as "
               f"{not_evaluable or 'not evaluable'} if the paper says so{hint}")
        out.append(ctx.finding(sheet, i, where, "response-sum-short", severity, msg, ctx.values(sheet, where)[i],
                               involves=(total, *parts)))
    return out


_RATE = [Param("rate", "field", types=NUMBER, help="the reported percentage, e.g. orr_pct"),
         Param("events", "fields", types=NUMBER, help="the counts it is made of, e.g. [cr, pr]"),
         Param("total", "field", types=NUMBER, help="its denominator, e.g. n_evaluable"),
         Param("itt_total", "ref", types=NUMBER, required=False, help="the intention-to-treat denominator, e.g. studies.n_enrolled")]


def _rates(ctx: Context, sheet: str, rate, events, total, itt_total):
    import numpy as np

    r = ctx.num(sheet, rate)
    dec = ctx.table(sheet).decimals.get(rate, np.full(len(r), np.nan))
    ev_arrs = [ctx.num(sheet, e) for e in events]
    ev = np.sum(ev_arrs, axis=0)
    tot = ctx.num(sheet, total)
    present = _present(r, tot, *ev_arrs) & (tot > 0)
    ok = np.zeros(len(r), bool)
    ok[present] = rate_matches(r[present], dec[present], ev[present], tot[present])
    itt_ok = np.zeros(len(r), bool)
    if itt_total:
        itt = ctx.num(sheet, itt_total)
        m = present & ~np.isnan(itt) & (itt > 0)
        itt_ok[m] = rate_matches(r[m], dec[m], ev[m], itt[m])
    return r, ev, tot, present, ok, itt_ok


@check("percentage-mismatch", "error",
       "A reported percentage (ORR, DCR ...) that no rounding of 100 x events / total gives.", _RATE)
def percentage_mismatch(ctx: Context, sheet: str, severity: str, rate, events, total, itt_total=None):
    import numpy as np

    r, ev, tot, present, ok, itt_ok = _rates(ctx, sheet, rate, events, total, itt_total)
    out = []
    for i in np.flatnonzero(present & ~ok & ~itt_ok):
        cells = ", ".join(ctx.cell(sheet, e, i) for e in events)
        msg = (f"{rate} = {fmt(r[i])}% ({ctx.cell(sheet, rate, i)}) but {_sum_of(events)} / "
               f"{total} = {fmt(ev[i])}/{fmt(tot[i])} = {100 * ev[i] / tot[i]:.2f}% ({cells}; "
               f"{ctx.cell(sheet, total, i)})")
        out.append(ctx.finding(sheet, i, rate, "percentage-mismatch", severity, msg, ctx.table(sheet).raw[rate].iat[i],
                               involves=(*events, total)))
    return out


@check("percentage-itt-denominator", "warning",
       "A reported percentage that matches the intention-to-treat denominator (itt_total, e.g. n_enrolled), not "
       "its total.", _RATE, needs=("rate", "events", "total", "itt_total"))
def percentage_itt_denominator(ctx: Context, sheet: str, severity: str, rate, events, total, itt_total=None):
    import numpy as np

    if not itt_total:
        return []
    r, ev, tot, present, ok, itt_ok = _rates(ctx, sheet, rate, events, total, itt_total)
    itt = ctx.num(sheet, itt_total)
    out = []
    for i in np.flatnonzero(present & ~ok & itt_ok):
        msg = (f"{rate} = {fmt(r[i])}% ({ctx.cell(sheet, rate, i)}) is {fmt(ev[i])}/{fmt(itt[i])} over "
               f"{_label(itt_total)} ({ctx.cell(sheet, itt_total, i)}), not over {total} = {fmt(tot[i])} "
               f"({ctx.cell(sheet, total, i)}): an intention-to-treat denominator; pooling uses the counts")
        out.append(ctx.finding(sheet, i, rate, "percentage-itt-denominator", severity, msg,
                               ctx.table(sheet).raw[rate].iat[i], involves=(itt_total, total)))
    return out


@check("percentage-impossible", "error",
       "A reported percentage that no whole number out of its total gives (when the counts are not "
       "all given; with counts, percentage-mismatch applies).", _RATE, needs=("rate", "total"))
def percentage_impossible(ctx: Context, sheet: str, severity: str, rate, events, total, itt_total=None):
    import numpy as np

    r = ctx.num(sheet, rate)
    dec = ctx.table(sheet).decimals.get(rate, np.full(len(r), np.nan))
    counts_missing = np.any([np.isnan(ctx.num(sheet, e)) for e in events], axis=0)
    tot = ctx.num(sheet, total)

    def possible(denominator):
        ok = np.zeros(len(r), bool)
        m = ~np.isnan(r) & ~np.isnan(denominator) & (denominator > 0) & (r >= 0) & (r <= 100)
        k = np.floor(r[m] * denominator[m] / 100 + 1e-9)
        ok[m] = (rate_matches(r[m], dec[m], k, denominator[m])
                 | rate_matches(r[m], dec[m], np.minimum(k + 1, denominator[m]), denominator[m]))
        return ok, m

    ok, checked = possible(tot)
    ok_itt = possible(ctx.num(sheet, itt_total))[0] if itt_total else np.zeros(len(r), bool)
    out = []
    for i in np.flatnonzero(counts_missing & checked & ~ok & ~ok_itt):
        k = int(np.floor(r[i] * tot[i] / 100 + 1e-9))
        near = ", ".join(f"{x}/{fmt(tot[i])} = {100 * x / tot[i]:.{int(dec[i]) if dec[i] == dec[i] else 1}f}%"
                         for x in (k, k + 1) if 0 <= x <= tot[i])
        msg = (f"{rate} = {fmt(r[i])}% ({ctx.cell(sheet, rate, i)}) is no whole number of"
               f"{ctx.unit(sheet, total, i) or ' participants'} out of "
               f"{total} = {fmt(tot[i])} ({ctx.cell(sheet, total, i)}): {near}; check the percentage and the "
               "denominator in the paper")
        out.append(ctx.finding(sheet, i, rate, "percentage-impossible", severity, msg,
                               ctx.table(sheet).raw[rate].iat[i], involves=(total,)))
    return out


@check("reported-count-mismatch", "error",
       "A reported count (the n of an 'ORR, n (%)' cell) that differs from the sum of the counts it is made of "
       "(CR+PR).",
       [Param("count", "field", types=NUMBER, help="the reported count, e.g. orr_n"),
        Param("parts", "fields", types=NUMBER, help="the counts it is the sum of, e.g. [cr, pr]")])
def reported_count_mismatch(ctx: Context, sheet: str, severity: str, count, parts):
    import numpy as np

    n = ctx.num(sheet, count)
    arrs = [ctx.num(sheet, p) for p in parts]
    total = np.sum(arrs, axis=0) if arrs else np.zeros(len(n))
    out = []
    for i in np.flatnonzero(_present(n, *arrs) & (n != total)):
        cells = ", ".join(ctx.cell(sheet, p, i) for p in parts)
        msg = (f"{count} = {fmt(n[i])} ({ctx.cell(sheet, count, i)}) but {'+'.join(p.upper() for p in parts)} = "
               f"{' + '.join(fmt(a[i]) for a in arrs)} = {fmt(total[i])} ({cells}); one of them was typed wrong")
        out.append(ctx.finding(sheet, i, count, "reported-count-mismatch", severity, msg, n[i], involves=parts))
    return out


def _described(ctx: Context, sheet: str, ref: str) -> str:
    """``field (its description)``: the schema's own words for a field, when it has any."""
    other, fname = (ref.split(".", 1) if "." in ref else (sheet, ref))
    fs = ctx.schema.sheets[other].fields.get(fname)
    desc = (fs.description or "").strip() if fs is not None else ""
    if desc and not desc[:2].isupper():  # "Disease control rate" reads "disease control rate"; "ORR" stays
        desc = desc[0].lower() + desc[1:]
    return f"{fname} ({desc})" if desc else fname


def _value_unit(ctx: Context, sheet: str, ref: str, i: int) -> str:
    """The unit shown after a value: the field's own, ``%`` for a percentage field without one."""
    unit = ctx.unit(sheet, ref, i)
    other, fname = (ref.split(".", 1) if "." in ref else (sheet, ref))
    fs = ctx.schema.sheets[other].fields.get(fname)
    return unit or ("%" if fs is not None and fs.type == "percentage" else "")


@check("dcr-below-orr", "error",
       "A rate below a rate it includes (disease control below objective response, ORR below CR ...): the "
       "first field counts every case the second counts.",
       [Param("dcr", "field", types=NUMBER, help="the including rate, e.g. dcr_pct (or orr_pct)"),
        Param("orr", "field", types=NUMBER, help="the included rate, e.g. orr_pct (or cr_pct)")])
def dcr_below_orr(ctx: Context, sheet: str, severity: str, dcr, orr):
    import numpy as np

    d, o = ctx.num(sheet, dcr), ctx.num(sheet, orr)
    out = []
    for i in np.flatnonzero(_present(d, o) & (d < o)):
        msg = (f"{dcr} = {fmt(d[i])}{_value_unit(ctx, sheet, dcr, i)} ({ctx.cell(sheet, dcr, i)}) is below {orr} = "
               f"{fmt(o[i])}{_value_unit(ctx, sheet, orr, i)} ({ctx.cell(sheet, orr, i)}); {_described(ctx, sheet, dcr)} "
               f"includes every case counted in {_described(ctx, sheet, orr)}, so it cannot be lower")
        out.append(ctx.finding(sheet, i, dcr, "dcr-below-orr", severity, msg, d[i], involves=(orr,)))
    return out


@check("evaluable-exceeds-enrolled", "error", "A count above its limit: more evaluable than the study enrolled.",
       [Param("field", "field", types=NUMBER, help="e.g. n_evaluable"),
        Param("limit", "ref", types=NUMBER, help="e.g. studies.n_enrolled")])
def evaluable_exceeds_enrolled(ctx: Context, sheet: str, severity: str, field, limit):
    import numpy as np

    v, lim = ctx.num(sheet, field), ctx.num(sheet, limit)
    out = []
    for i in np.flatnonzero(_present(v, lim) & (v > lim)):
        msg = (f"{field} = {fmt(v[i])} ({ctx.cell(sheet, field, i)}) exceeds {_label(limit)} = {fmt(lim[i])} "
               f"({ctx.cell(sheet, limit, i)})")
        out.append(ctx.finding(sheet, i, field, "evaluable-exceeds-enrolled", severity, msg, v[i],
                               involves=(limit,)))
    return out


def _arms(names: list[str]) -> str:
    return " + ".join(names)


_ARM_EVENTS = [Param("events", "fields", types=NUMBER, help="events of each arm, e.g. [events_vaccinated, events_control]"),
               Param("totals", "fields", types=NUMBER, like="events",
                     help="each arm's total, in the same order, e.g. [total_vaccinated, total_control]")]


@check("events-exceed-total", "error", "More events in an arm than participants in that arm.", _ARM_EVENTS)
def events_exceed_total(ctx: Context, sheet: str, severity: str, events, totals):
    import numpy as np

    out = []
    for ev_f, tot_f in zip(events, totals):
        e, n = ctx.num(sheet, ev_f), ctx.num(sheet, tot_f)
        for i in np.flatnonzero(_present(e, n) & (e > n)):
            unit = ctx.unit(sheet, tot_f, i) or " participants"
            msg = (f"{ev_f} = {fmt(e[i])} ({ctx.cell(sheet, ev_f, i)}) is above the arm's {tot_f} = {fmt(n[i])}"
                   f"{unit} ({ctx.cell(sheet, tot_f, i)}): an arm cannot have more events than{unit}; were the "
                   "events and the total swapped, or the other arm's total entered?")
            out.append(ctx.finding(sheet, i, ev_f, "events-exceed-total", severity, msg, e[i], involves=(tot_f,)))
    return out


@check("arm-totals-exceed-randomised", "error",
       "The arms' totals add up to more than the number randomised (below it: arm-totals-below-randomised).",
       [Param("totals", "fields", types=NUMBER, help="the arms' totals, e.g. [total_vaccinated, total_control]"),
        Param("randomised", "ref", types=NUMBER, help="the number randomised, e.g. studies.n_randomised"),
        Param("group_by", "fields", required=False,
              help="rows whose totals add up together, e.g. [study_id, comparison] on a sheet of one row per arm "
                   "(default: each row alone); a row with no arm total (an overall comparison row) is no member")])
def arm_totals_exceed_randomised(ctx: Context, sheet: str, severity: str, totals, randomised, group_by=None):
    import numpy as np

    arrs = [ctx.num(sheet, t) for t in totals]
    r = ctx.num(sheet, randomised)
    codes, member, g_complete, g_r = _arm_groups(ctx, sheet, totals, randomised, group_by)
    complete = _present(*arrs)
    sums = np.sum(arrs, axis=0)
    ng = len(g_complete)
    g_sum = np.bincount(codes, weights=np.where(member & complete, sums, 0.0), minlength=ng)
    out = []
    below_sev = ctx.severity("arm-totals-below-randomised")
    for g in np.flatnonzero(g_complete & ~np.isnan(g_r) & (g_sum != g_r)):
        pos = np.flatnonzero((codes == g) & member).tolist()
        rv, total = g_r[g], float(g_sum[g])
        last = pos[-1]
        parts = [(t, p) for p in pos for t in totals]
        terms = " + ".join(fmt(ctx.num(sheet, t)[p]) for t, p in parts)
        cells = ", ".join(ctx.cell(sheet, t, p) for t, p in parts)
        names = _arms(list(totals)) + (f" over {len(pos)} rows" if len(pos) > 1 else "")
        unit = ctx.unit(sheet, totals[0], last) or " participants"
        src = next((p for p in np.flatnonzero(codes == g) if not np.isnan(r[p])), last)
        where = f"{_label(randomised)} = {fmt(rv)} ({ctx.cell(sheet, randomised, int(src))})"
        if total > rv:
            msg = (f"{names} = {terms} = {fmt(total)} ({cells}) is above {where}: the arms hold "
                   f"{fmt(total - rv)} more{unit} than were randomised; check the arm totals and {_label(randomised)}")
            out.append(ctx.finding(sheet, last, totals[0], "arm-totals-exceed-randomised", severity, msg, total,
                                   involves=(*totals, randomised)))
        else:
            msg = (f"{names} = {terms} = {fmt(total)} ({cells}) is {fmt(rv - total)} below {where}: "
                   f"{fmt(rv - total)} randomised{unit} are in no arm (attrition, exclusions after randomisation, "
                   "or an arm outside this comparison?); pooling uses the arm totals")
            out.append(ctx.finding(sheet, last, totals[0], "arm-totals-below-randomised", below_sev, msg, total,
                                   involves=(*totals, randomised)))
    return out


def _arm_groups(ctx: Context, sheet: str, totals, randomised, group_by):
    """The groups whose arm totals add up: ``(codes, member, complete, randomised)``.

    ``codes`` numbers each row's group (``group_by``; each row alone without it). A row is a
    **member** when it holds any arm total: a row holding none (a trial's overall comparison
    row, with its hazard ratio but no arm counts) is not part of the sum and does not stop it.
    A group is **complete** when it has members and each holds every total. Its number
    randomised is the first one given on any of its rows (a studies-sheet field: its study's).
    """
    import numpy as np
    import pandas as pd

    arrs = [ctx.num(sheet, t) for t in totals]
    r = ctx.num(sheet, randomised)
    n = len(r)
    if group_by:
        d = ctx.table(sheet).data
        keys = pd.DataFrame({g: d[g].astype(object).to_numpy() for g in group_by})
        codes = keys.groupby(list(group_by), dropna=False, sort=False).ngroup().to_numpy()
    else:
        codes = np.arange(n)
    held = np.sum([~np.isnan(a) for a in arrs], axis=0) if arrs else np.zeros(n, int)
    member = held > 0
    ng = int(codes.max()) + 1 if n else 0
    has_member = np.bincount(codes, weights=member.astype(float), minlength=ng) > 0
    partial = np.bincount(codes, weights=(member & (held < len(arrs))).astype(float), minlength=ng) > 0
    g_r = np.full(ng, np.nan)
    for p in np.flatnonzero(~np.isnan(r))[::-1]:  # the group's first row with a number randomised
        g_r[codes[p]] = r[p]
    return codes, member, has_member & ~partial, g_r


@covers("arm-totals-exceed-randomised")
def _arm_totals_coverage(ctx: Context, sheet: str, totals, randomised, group_by=None):
    """Rows holding an arm total apply (an overall row without arm counts does not); they are
    checked when their group holds every arm total and its number randomised."""
    import numpy as np

    codes, member, g_complete, g_r = _arm_groups(ctx, sheet, totals, randomised, group_by)
    if len(codes) == 0:
        return member, member, np.full(0, None, dtype=object)
    done = g_complete[codes] & ~np.isnan(g_r[codes])
    if "." in randomised:
        other = randomised.split(".", 1)[0]
        linked = ctx._parent_positions(sheet, other) >= 0
        no_r = np.where(linked, f"{randomised} empty", f"no row on the {other} sheet")
    else:
        no_r = np.full(len(codes), f"{randomised} empty", dtype=object)
    grp = "its group (" + ", ".join(group_by) + ")" if group_by else "the row"
    reason = np.where(~g_complete[codes], f"{grp} has a row with only some of {', '.join(totals)}", no_r)
    return member, member & done, reason.astype(object)


companion("arm-totals-below-randomised", "warning",
          "The arms' totals add up to less than the number randomised (attrition).", "arm-totals-exceed-randomised")

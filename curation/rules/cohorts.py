"""Grade, cohorts and studies: Ki-67 against grade, subgroups against the overall cohort, dosing,
and studies that may share participants."""

from __future__ import annotations

import math
from typing import Any

from ..cells import format_number as fmt
from .context import Context, _present, fold_all, per_distinct
from .registry import NUMBER, Param, check, covers


# ---------------------------------------------------------------------------------------------
# Grade, cohorts, studies
# ---------------------------------------------------------------------------------------------


def parse_band(band: Any) -> tuple[float, float, bool, bool]:
    """A Ki-67 band: ``[low, high]`` (inclusive) or text ``"< 3"``, ``"<= 20"``, ``"> 20"``, ``"3-20"``.

    Returns ``(low, high, low_inclusive, high_inclusive)``.
    """
    import re

    if isinstance(band, (list, tuple)) and len(band) == 2:
        return float(band[0]), float(band[1]), True, True
    text = str(band).strip()
    m = re.fullmatch(r"(<=|>=|<|>|≤|≥)\s*(\d+(?:\.\d+)?)", text)
    if m:
        op, v = m.group(1), float(m.group(2))
        return {"<": (-math.inf, v, True, False), "<=": (-math.inf, v, True, True), "≤": (-math.inf, v, True, True),
                ">": (v, math.inf, False, True), ">=": (v, math.inf, True, True), "≥": (v, math.inf, True, True)}[op]
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)", text)
    if m:
        return float(m.group(1)), float(m.group(2)), True, True
    raise ValueError(f"not a Ki-67 band: {band!r} (write '< 3', '3-20', '> 20' or [low, high])")


def _band_text(lo: float, hi: float, lo_in: bool, hi_in: bool) -> str:
    if math.isinf(lo):
        return f"{'<=' if hi_in else '<'} {fmt(hi)}%"
    if math.isinf(hi):
        return f"{'>=' if lo_in else '>'} {fmt(lo)}%"
    return f"{fmt(lo)}-{fmt(hi)}%"


@check("ki67-contradicts-grade", "warning", "The cohort's highest Ki-67 contradicts its WHO grade.",
       [Param("ki67", "field", types=NUMBER, help="e.g. ki67_max"), Param("grade", "field", help="e.g. grade"),
        Param("bands", "bands", help="grade -> Ki-67 band: '< 3', '3-20', '> 20' or [low, high]")])
def ki67_contradicts_grade(ctx: Context, sheet: str, severity: str, ki67, grade, bands):
    import numpy as np
    import pandas as pd

    parsed = {g: parse_band(b) for g, b in bands.items()}
    k = ctx.num(sheet, ki67)
    g = pd.Series(ctx.values(sheet, grade), dtype=object)

    def col(j, dtype=float):
        return g.map({b: v[j] for b, v in parsed.items()}).to_numpy(dtype=float, na_value=np.nan)

    lo, hi = col(0), col(1)
    lo_in = g.map({b: v[2] for b, v in parsed.items()}).fillna(True).to_numpy(dtype=bool)
    hi_in = g.map({b: v[3] for b, v in parsed.items()}).fillna(True).to_numpy(dtype=bool)
    known = ~np.isnan(k) & ~np.isnan(lo)
    with np.errstate(invalid="ignore"):
        below = np.where(lo_in, k < lo, k <= lo)
        above = np.where(hi_in, k > hi, k >= hi)
    out = []
    for i in np.flatnonzero(known & (below | above)):
        band = _band_text(lo[i], hi[i], lo_in[i], hi_in[i])
        msg = (f"{ki67} = {fmt(k[i])}% ({ctx.cell(sheet, ki67, i)}) contradicts grade {ctx.said(sheet, grade, i)} "
               f"({ctx.cell(sheet, grade, i)}), which means Ki-67 {band} (WHO 2019)")
        out.append(ctx.finding(sheet, i, ki67, "ki67-contradicts-grade", severity, msg, k[i],
                               involves=(grade,)))
    return out


@check("subgroups-exceed-overall", "warning",
       "Subgroup cohorts of one study (of one kind: by grade, or by site) with a larger total than its overall cohort.",
       [Param("cohort", "field", help="e.g. cohort"), Param("overall", "text", help="the whole-study label, e.g. overall"),
        Param("total", "field", types=NUMBER, help="e.g. n_evaluable")])
def subgroups_exceed_overall(ctx: Context, sheet: str, severity: str, cohort, overall, total):
    import numpy as np
    import pandas as pd

    from ..schema import fold

    d = ctx.table(sheet).data
    n = ctx.num(sheet, total)
    label = d[cohort]
    target = fold(overall)
    is_overall = per_distinct(label.to_numpy(dtype=object), lambda c: isinstance(c, str) and fold(c) == target, bool)
    frame = pd.DataFrame({"study": d["study_id"].to_numpy(), "n": n, "overall": is_overall,
                          "pos": np.arange(len(d))})
    dims = [f for f in ("grade", "primary_site") if f in d]
    for f in dims:
        frame[f] = d[f].to_numpy()
    frame = frame[frame["study"].notna()]
    overall_rows = frame[frame["overall"]]
    overall_rows = overall_rows[~overall_rows["study"].duplicated(keep=False)]  # exactly one overall cohort
    subs = frame[~frame["overall"]].merge(overall_rows, on="study", suffixes=("", "_o"))
    if subs.empty:
        return []
    # the dimension a subgroup splits the study by: its label when it names a term of a field's
    # vocabulary ("G3", "pancreas"), else the one field in which it differs from the overall cohort
    differs = pd.DataFrame({f: (subs[f].astype(object) != subs[f + "_o"].astype(object)) for f in dims})
    n_diff = differs.sum(axis=1)
    kind = pd.Series("cohort", index=subs.index, dtype=object)
    for f in dims:
        kind[(n_diff == 1) & differs[f]] = f
    labels = pd.Series(d[cohort].to_numpy()[subs["pos"].to_numpy()], index=subs.index, dtype=object)
    distinct = [v for v in labels.dropna().unique() if isinstance(v, str)]
    for f in reversed(dims):
        vocab = ctx.schema.vocabulary_of(sheet, f)
        if vocab is not None:
            named = {v: vocab.canonical(v) is not None for v in distinct}
            kind[labels.map(named).fillna(False).astype(bool)] = f
    subs["kind"] = kind
    # one group per study and kind, keyed by an integer (the two codes) rather than two columns of text
    s_codes, s_values = pd.factorize(subs["study"].to_numpy(dtype=object))
    k_codes, k_values = pd.factorize(kind.to_numpy(dtype=object))
    group = s_codes.astype(np.int64) * max(len(k_values), 1) + k_codes
    sums = subs.groupby(group, sort=False).agg(total_n=("n", "sum"), over_n=("n_o", "first"),
                                               pos_o=("pos_o", "first"), last=("pos", "max"))
    positions = subs["pos"].to_numpy()
    out = []
    for g, r in sums[sums["total_n"] > sums["over_n"]].iterrows():
        sid, knd = s_values[int(g) // max(len(k_values), 1)], k_values[int(g) % max(len(k_values), 1)]
        members = positions[group == g].tolist()
        cells = ", ".join(ctx.cell(sheet, total, p) for p in members)
        o = int(r["pos_o"])
        msg = (f"subgroup cohorts of {sid} by {knd} have {total} summing to {fmt(r['total_n'])} ({cells}), more "
               f"than the overall cohort's {fmt(n[o])} ({ctx.cell(sheet, total, o)}); the same"
               f"{ctx.unit(sheet, total, o) or ' participants'} may be counted twice")
        out.append(ctx.finding(sheet, int(r["last"]), total, "subgroups-exceed-overall", severity, msg,
                               n[int(r["last"])]))
    return out


@check("cumulative-activity-mismatch", "warning",
       "Cumulative activity differs from cycles x activity per cycle by more than the tolerance.",
       [Param("product", "field", types=NUMBER, help="e.g. cumulative_activity_gbq"),
        Param("factors", "fields", types=NUMBER, help="e.g. [cycles_median, activity_per_cycle_gbq]"),
        Param("tolerance", "number", help="relative, e.g. 0.25")])
def cumulative_activity_mismatch(ctx: Context, sheet: str, severity: str, product, factors, tolerance):
    import numpy as np

    p = ctx.num(sheet, product)
    fs = [ctx.num(sheet, f) for f in factors]
    expected = np.prod(fs, axis=0)
    ok = _present(p, *fs) & (expected > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(p - expected) / expected
    out = []
    for i in np.flatnonzero(ok & (rel > tolerance)):
        parts = " x ".join(f"{f} {fmt(a[i])} ({ctx.cell(sheet, f, i)})" for f, a in zip(factors, fs))
        msg = (f"{product} = {fmt(p[i])} ({ctx.cell(sheet, product, i)}) differs by {100 * rel[i]:.0f}% from "
               f"{parts} = {fmt(round(expected[i], 3))}")
        out.append(ctx.finding(sheet, i, product, "cumulative-activity-mismatch", severity, msg, p[i],
                               involves=factors))
    return out


@check("possible-duplicate-population", "warning",
       "Two studies that share the given fields (first author, intervention ...) and overlapping enrolment: "
       "the same participants must not be pooled twice.",
       [Param("same", "fields", help="e.g. [first_author, radiopharmaceutical]"),
        Param("start", "field", types=NUMBER, help="e.g. enrolment_start"), Param("end", "field", types=NUMBER, help="e.g. enrolment_end")])
def possible_duplicate_population(ctx: Context, sheet: str, severity: str, same, start, end):
    import numpy as np
    import pandas as pd

    d = ctx.table(sheet).data
    t = ctx.table(sheet)

    def folded(col):  # each distinct text folded once
        texts = [v for v in col.dropna().unique() if isinstance(v, str)]
        return dict(zip(texts, fold_all(texts)))

    keys = pd.DataFrame({f: d[f].map(folded(d[f])) for f in same})
    s, e = ctx.num(sheet, start), ctx.num(sheet, end)
    s = np.where(np.isnan(s), e, s)
    e = np.where(np.isnan(e), s, e)
    keys["pos"] = np.arange(len(d))
    keys["s"], keys["e"] = s, e
    keys["sid"] = t.study_ids
    keys = keys.dropna()
    pairs = keys.merge(keys, on=list(same), suffixes=("_a", "_b"))
    pairs = pairs[(pairs["pos_a"] != pairs["pos_b"]) & (pairs["s_a"] <= pairs["e_b"]) & (pairs["s_b"] <= pairs["e_a"])
                  & (pairs["sid_a"] != pairs["sid_b"])]
    out = []
    for a, b in zip(pairs["pos_a"].tolist(), pairs["pos_b"].tolist()):
        msg = (f"{t.study(a)} and {t.study(b)} share "
               + ", ".join(f"{f} {d[f].iat[a]!s}" for f in same)
               + f" and overlapping enrolment ({fmt(s[a])}-{fmt(e[a])} vs {fmt(s[b])}-{fmt(e[b])}; "
               f"{ctx.cell(sheet, start, a)}, {ctx.cell(sheet, start, b)}): possibly the same participants; "
               "pool only one of them")
        out.append(ctx.finding(sheet, a, same[0], "possible-duplicate-population", severity, msg, d[same[0]].iat[a],
                               involves=(*same, start, end)))
    return out


@covers("ki67-contradicts-grade")
def _ki67_coverage(ctx: Context, sheet: str, ki67, grade, bands):
    """Rows with a Ki-67 and a grade apply; those whose grade has a band in ``bands`` are checked."""
    import numpy as np
    import pandas as pd

    k = ~np.isnan(ctx.num(sheet, ki67))
    g = pd.Series(ctx.values(sheet, grade), dtype=object)
    applies = k & g.notna().to_numpy(dtype=bool)
    banded = g.isin(list(bands)).to_numpy(dtype=bool)
    reason = per_distinct(g.to_numpy(dtype=object), lambda v: f"grade {v!s} has no Ki-67 band")
    return applies, applies & banded, reason


@covers("subgroups-exceed-overall")
def _subgroups_coverage(ctx: Context, sheet: str, cohort, overall, total):
    """Subgroup rows (a study's rows other than its overall cohort, in a study of several rows)
    with a total apply; they are checked when their study has one overall cohort with its total."""
    import numpy as np
    import pandas as pd

    from ..schema import fold

    d = ctx.table(sheet).data
    n = ctx.num(sheet, total)
    target = fold(overall)
    is_overall = per_distinct(d[cohort].to_numpy(dtype=object), lambda c: isinstance(c, str) and fold(c) == target,
                              bool)
    # per study (its rows, its overall rows, those with a total), counted over the study's code
    codes, uniques = pd.factorize(d["study_id"].to_numpy(dtype=object))
    known = codes >= 0
    k = len(uniques)

    def per_study(weights):
        counts = np.bincount(codes[known], weights=np.asarray(weights, dtype=float)[known], minlength=k)
        return np.where(known, counts[np.where(known, codes, 0)] if k else 0.0, 0.0)

    rows = per_study(np.ones(len(codes)))
    applies = ~is_overall & ~np.isnan(n) & (rows >= 2) & known
    o_total = per_study(is_overall & ~np.isnan(n))
    o_rows = per_study(is_overall)
    checked = applies & (o_rows == 1) & (o_total == 1)
    reason = np.where(o_rows == 0, f"no {overall} cohort in the study",
                      np.where(o_rows > 1, f"several {overall} cohorts in the study",
                               f"the {overall} cohort's {total} empty"))
    return applies, checked, reason.astype(object)


@covers("possible-duplicate-population")
def _duplicate_population_coverage(ctx: Context, sheet: str, same, start, end):
    """Rows holding every field of ``same`` and an enrolment period (either end of it) apply, and are
    checked; a row without a period has nothing to overlap (its coverage lists it as incomplete)."""
    import numpy as np

    d = ctx.table(sheet).data
    applies = ~np.isnan(ctx.num(sheet, start)) | ~np.isnan(ctx.num(sheet, end))
    for f in same:
        applies &= d[f].notna().to_numpy(dtype=bool)
    return applies, applies, np.full(len(d), None, dtype=object)

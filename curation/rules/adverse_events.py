"""Adverse-event counts: grade 3+ within any grade within the safety population within those enrolled."""

from __future__ import annotations

from ..cells import format_number as fmt
from .context import Context, _label, _present
from .registry import NUMBER, Param, check, covers


@check("adverse-event-counts-inconsistent", "error",
       "Adverse-event counts out of order: grade3plus_n <= any_grade_n <= n_safety <= n_enrolled must hold.",
       [Param("chain", "refs", types=NUMBER, help="fields that must not decrease, e.g. [grade3plus_n, any_grade_n, n_safety, "
                                    "studies.n_enrolled]")])
def adverse_event_counts(ctx: Context, sheet: str, severity: str, chain):
    import numpy as np

    arrs = [ctx.num(sheet, r) for r in chain]
    out = []
    reported = np.zeros(len(arrs[0]) if arrs else 0, bool)
    # each count against the next one given in the chain (an empty any_grade_n does not hide
    # grade3plus_n > n_safety)
    pairs = []
    for i in range(len(chain)):
        between_missing = np.ones(len(arrs[0]) if arrs else 0, bool)
        for j in range(i + 1, len(chain)):
            pairs.append((chain[i], chain[j], arrs[i], np.where(between_missing, arrs[j], np.nan)))
            between_missing = between_missing & np.isnan(arrs[j])
    for a_ref, b_ref, a, b in pairs:
        bad = _present(a, b) & (a > b) & ~reported
        for i in np.flatnonzero(bad):
            msg = (f"{_label(a_ref)} = {fmt(a[i])} ({ctx.cell(sheet, a_ref, i)}) exceeds {_label(b_ref)} = "
                   f"{fmt(b[i])} ({ctx.cell(sheet, b_ref, i)}); "
                   + " <= ".join(_label(r) for r in chain) + " must hold")
            fname = a_ref if "." not in a_ref else (b_ref if "." not in b_ref else None)
            out.append(ctx.finding(sheet, i, fname, "adverse-event-counts-inconsistent", severity, msg, a[i],
                                   involves=(a_ref, b_ref)))
        reported |= bad
    return out


@covers("adverse-event-counts-inconsistent")
def _adverse_event_coverage(ctx: Context, sheet: str, chain):
    """A row is applicable, and checked, when it holds any two counts of the chain (each is
    compared with the next one given)."""
    import numpy as np

    held = np.sum([~np.isnan(ctx.num(sheet, r)) for r in chain], axis=0) if chain else np.zeros(0)
    ok = np.asarray(held >= 2, dtype=bool)
    return ok, ok, np.full(len(ok), None, dtype=object)

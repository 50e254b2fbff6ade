"""``curate run``: validate, pool the analysis plan from what passed, and say what the exclusions cost.

:func:`run_job` is the whole job as a pure function (it reads the forms and writes nothing):
validation, every analysis of the schema's plan on the clean records, leave-one-out fits and
Egger's test for the overall analyses, and the *influence of each excluded record*: for every
outcome row that an error keeps out of an analysis that would otherwise take it, the pooled
estimate with and without that row (its numbers as extracted), ranked by how much it moves the
estimate, so that reviewers fix first what matters most.

:func:`render_outputs` turns a :class:`RunResult` into the files of the ``curate run -o DIR``
contract (``docs/run.md``) as bytes by relative path; only the command line writes them.
"""

from __future__ import annotations

import datetime as _dt
import errno
import math
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .cells import finite_or_none as _f
from .findings import quote_sheet
from .analyses import (Analysis, Estimate, StudyRow, fmt_estimate, fmt_value, outcome_frame,  # noqa: F401
                       plot_name, run_analysis, run_plan, select)
from .schema import PoolSettings, ReviewSchema, load_schema
from .validation import ValidationResult, clean_dataset, expand_forms, form_names, read_forms, validate_workbooks

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stages ``read``, ``check``, ``pool``, ``influence``, ``render``."""


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------




@dataclass(frozen=True)
class Influence:
    """What one excluded record would do to one analysis if it were included as extracted.

    Attributes
    ----------
    analysis_id, analysis_label : str
        The analysis (an overall analysis, or one subgroup of a subgroup analysis).
    kind : {"proportion", "median"}
    file, sheet, row, cell : provenance of the excluded row (``cell`` is ``sheet!12``).
    study_id, cohort, label : str
    errors : tuple of str
        The rule codes of the errors that exclude the row.
    messages : tuple of str
        Their messages.
    replaces : str or None
        The cohort of the same study that the analysis takes now and would give up for this row.
    without, with_ : Estimate or None
        The pooled estimate now (None when nothing could be pooled) and with the row.
    delta : float or None
        ``with - without`` on the scale shown (percentage points, or months).
    impact : float
        ``|delta|`` over the width of the current 95% CI (infinite when the row would make an
        estimate possible at all): the ranking key, comparable across outcomes.
    sentence : str
        The finding in words.
    ineligible : bool
        Its study is not eligible for the review (an ``ineligible-term`` error): fixing a cell
        would not bring it in, so it is ranked after every record that a fix could.
    """

    analysis_id: str
    analysis_label: str
    kind: str
    file: str
    sheet: str
    row: int
    cell: str
    study_id: str
    cohort: str
    label: str
    errors: tuple[str, ...]
    messages: tuple[str, ...]
    replaces: str | None
    without: Estimate | None
    with_: Estimate | None
    delta: float | None
    impact: float
    sentence: str
    ineligible: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis_id, "analysis_label": self.analysis_label, "kind": self.kind,
            "file": self.file, "sheet": self.sheet, "row": self.row, "cell": self.cell,
            "study_id": self.study_id, "cohort": self.cohort, "label": self.label, "errors": list(self.errors),
            "messages": list(self.messages), "replaces": self.replaces,
            "without": self.without.to_dict() if self.without else None,
            "with": self.with_.to_dict() if self.with_ else None,
            "delta": self.delta, "impact": None if math.isinf(self.impact) else self.impact,
            "sentence": self.sentence, "ineligible": self.ineligible,
        }


@dataclass(frozen=True)
class LeaveOneOut:
    """The overall estimate without one study."""

    study_id: str
    label: str
    estimate: Estimate | None
    i2: float | None
    tau2: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"study_id": self.study_id, "label": self.label,
                **(self.estimate.to_dict() if self.estimate else {"estimate": None, "ci_low": None,
                                                                    "ci_high": None, "k": None}),
                "i2": self.i2, "tau2": self.tau2}


@dataclass(frozen=True)
class RunResult:
    """Everything ``curate run`` found and computed (nothing written yet).

    Attributes
    ----------
    schema : ReviewSchema
    paths : tuple of Path
        The forms read.
    names : tuple of str
        Their names as findings give them.
    validation : ValidationResult
    analyses : tuple of Analysis
        The plan, in order (primary, subgroup tests and subgroups, sensitivity entries).
    leave_one_out : dict
        Overall analysis id -> tuple of :class:`LeaveOneOut` (k >= 2).
    egger : dict
        Overall analysis id -> :class:`curation.pool.EggerResult`.
    influence : tuple of Influence
        Sorted by impact, largest first.
    generated : str
        The one timestamp of the run (UTC, ISO 8601; ``SOURCE_DATE_EPOCH`` fixes it).
    notes : tuple of str
        Anything a reader should know about the run itself.
    data : tuple of bytes
        Each form's bytes as read once at the start (the annotated copies are made from these,
        so they show exactly what was validated); empty when the forms were read from disk.
    analysis_notes : dict
        Analysis id -> notes of the run on it: what was bounded (leave-one-out, "what matters
        most") and why there is no funnel plot or Egger's test.
    verification : tuple
        The source check's entries, one per verified cell (``--sources``; empty without it).
    sources : str or None
        The sources folder the forms were checked against (None: not checked).
    """

    schema: ReviewSchema
    paths: tuple[Path, ...]
    names: tuple[str, ...]
    validation: ValidationResult
    analyses: tuple[Analysis, ...]
    leave_one_out: dict[str, tuple[LeaveOneOut, ...]] = field(default_factory=dict)
    egger: dict[str, Any] = field(default_factory=dict)
    influence: tuple[Influence, ...] = ()
    generated: str = ""
    notes: tuple[str, ...] = ()
    data: tuple[bytes, ...] = ()
    analysis_notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    verification: tuple[Any, ...] = ()
    sources: str | None = None

    @property
    def summary(self):
        return self.validation.summary

    def exit_code(self) -> int:
        """0 without error-severity findings, 1 with."""
        return self.validation.exit_code()

    def primary(self) -> list[Analysis]:
        """The analyses a reader looks at first: overall ones and subgroup tests (plan order)."""
        return [a for a in self.analyses if a.role in ("primary", "subgroup_test")]

    def children(self, a: Analysis, role: str) -> list[Analysis]:
        return [x for x in self.analyses if x.parent == a.id and x.role == role]

    def fix_first(self) -> list[dict[str, Any]]:
        """The excluded records grouped by row, the most influential first (the report's list)."""
        groups: dict[tuple[str, str, int], dict[str, Any]] = {}
        for inf in self.influence:  # already sorted by impact
            key = (inf.file, inf.sheet, inf.row)
            g = groups.get(key)
            if g is None:
                g = groups[key] = {"file": inf.file, "sheet": inf.sheet, "row": inf.row, "cell": inf.cell,
                                   "study_id": inf.study_id, "cohort": inf.cohort, "label": inf.label,
                                   "errors": inf.errors, "messages": inf.messages, "impact": inf.impact,
                                   "effects": []}
            g["effects"].append(inf)
        return list(groups.values())


# ---------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------


def timestamp() -> str:
    """Now in UTC (seconds), or ``SOURCE_DATE_EPOCH`` when set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        t = _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
    else:
        t = _dt.datetime.now(_dt.timezone.utc)
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _plan(schema: ReviewSchema, clean: dict, excluded: Any = None) -> tuple[list[Analysis], list[str]]:
    """The plan; an analysis that cannot be pooled is kept as 'not pooled' with the reason.

    ``clean``: every row with its ``in_<analysis>`` columns (``ValidationResult.candidate_tables``)
    and ``excluded`` the reasons, so that each analysis lists the rows errors keep out of it."""
    analyses = run_plan(schema, clean, excluded)
    notes = [f"{a.id}: {n}" for a in analyses if a.result is None for n in a.notes if n.startswith("not pooled")]
    return analyses, notes


def _pool_rows(kind: Any, rows: Sequence[StudyRow], settings: PoolSettings):
    from .pool import pool_generic, pool_proportions

    if not isinstance(kind, str):  # an Analysis: pooled as it pools its own rows
        from .analyses import pool_rows

        return pool_rows(kind, rows, settings)
    if kind == "median":
        return pool_generic([r.median for r in rows], [r.se for r in rows], method=settings.method,
                            hk=settings.hk, level=settings.level)
    return pool_proportions([r.events for r in rows], [r.total for r in rows], measure=settings.measure,
                            method=settings.method, hk=settings.hk, level=settings.level)


# Budgets of the run (elements of one batch matrix; refits of the GLMM). They bound memory and
# time whatever the form: beyond them the run computes the most influential part and says so.
LOO_CELLS = 4_000_000
"""Leave-one-out is exact for every study while k x (k-1) stays within this; beyond it, for the
``LOO_CELLS // (k-1)`` studies whose omission moves the estimate most."""
INFLUENCE_CELLS = 6_000_000
"""Per analysis: the refits of "what matters most" together hold at most this many study rows."""
BATCH_CELLS = 400_000
"""Rows x studies of one batch of fits (a few MB a copy): memory grows with k, not k^2."""
LOO_MIN = 50
"""However large k, leave-one-out refits at least this many studies ("what matters most" as many records)."""
GLMM_REFITS = 30
"""The GLMM is refitted one fit at a time: at most this many leave-one-out or influence refits."""


def _approx_shift(result: Any, drop: Sequence[Sequence[int]], add_y: Sequence[float] | None = None,
                  add_v: Sequence[float] | None = None) -> np.ndarray:
    """How far the pooled estimate (analysis scale) moves when the studies ``drop[j]`` are taken
    out (and study ``add_y[j], add_v[j]`` put in), with tau^2 held at its full-data value: the
    exact weighted-mean update, used only to rank which refits to run when they are bounded."""
    y = np.asarray(result.yi, float)
    v = np.asarray(result.vi, float)
    tau2 = result.tau2 if result.tau2 == result.tau2 else 0.0
    w = 1.0 / (v + tau2)
    sw, swy = w.sum(), (w * y).sum()
    mu = swy / sw
    out = np.empty(len(drop))
    for j, d in enumerate(drop):
        d = list(d)
        s, sy = sw - w[d].sum(), swy - (w[d] * y[d]).sum()
        if add_y is not None:
            wa = 1.0 / (add_v[j] + tau2)
            s, sy = s + wa, sy + wa * add_y[j]
        out[j] = abs(sy / s - mu) if s > 0 else math.inf
    return out


def _leave_one_out(analyses: Sequence[Analysis], min_k: int = 10) -> tuple[dict, dict, dict]:
    """Leave-one-out per overall analysis (bounded, see :data:`LOO_CELLS`) and Egger's test for
    those with at least ``min_k`` studies. Returns ``(loo, egger, notes by analysis id)``."""
    from .pool import egger_test, leave_one_out

    loo: dict[str, tuple[LeaveOneOut, ...]] = {}
    egger: dict[str, Any] = {}
    notes: dict[str, list[str]] = {}
    for a in analyses:
        if a.role != "primary" or a.result is None:
            continue
        k = a.k
        if k >= 2:
            glmm = a.result.method == "GLMM"
            budget = GLMM_REFITS if glmm else max(LOO_MIN, LOO_CELLS // (k - 1))
            if k <= budget:
                omit = list(range(k))
            else:
                shift = _approx_shift(a.result, [[i] for i in range(k)])
                omit = [int(i) for i in np.argsort(-shift, kind="stable")[:budget]]
                notes.setdefault(a.id, []).append(
                    f"leave-one-out computed for the {budget} studies of {k} whose omission moves the estimate most "
                    f"(ranked with tau\u00b2 held at its full-data value; a bounded number of refits keeps the run's "
                    f"time and memory in proportion to the data)")
            rows: list[LeaveOneOut] = []
            if glmm:
                for i, fit in zip(omit, leave_one_out(a.result, omit)):
                    r = a.taken[i]
                    rows.append(LeaveOneOut(r.study_id, r.label, Estimate.of(fit, k - 1), _f(fit.i2), _f(fit.tau2)))
            else:  # the same fits as pool.leave_one_out, in batches, without a PoolResult of k - 1 studies each
                fits = _refit_sets(a, a.settings, a.taken, [([i], None) for i in omit])
                for i, (est, _k, i2, tau2) in zip(omit, fits):
                    r = a.taken[i]
                    rows.append(LeaveOneOut(r.study_id, r.label, est, i2, tau2))
            if len(omit) < k:  # bounded: the refitted studies, the one whose omission moves the estimate most first
                full = a.result.estimate
                rows.sort(key=lambda x: -abs(x.estimate.estimate - full) if x.estimate is not None else 0.0)
            loo[a.id] = tuple(rows)
        if k >= min_k:
            egger[a.id] = egger_test(a.result)
        else:
            notes.setdefault(a.id, []).append(
                f"no funnel plot or Egger's test: k = {k} < {min_k} studies, too few to tell small-study effects "
                f"from chance (Cochrane Handbook 10.4.3.1)")
    return loo, egger, notes


def _subgroup_spec(schema: ReviewSchema, name: str | None):
    if name is None:
        return None
    from .analyses import _subgroup

    return _subgroup(schema, name)[1]


def _row_arrays(kind: str, measure: str, rows: Sequence[StudyRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """yi, vi (and totals) of rows on the analysis scale, exactly as the pooling computes them."""
    from .pool import escalc_proportions

    if kind == "median":
        y = np.array([np.nan if r.median is None else r.median for r in rows], float)
        se = np.array([np.nan if r.se is None else r.se for r in rows], float)
        return y, se ** 2, None
    n = np.array([r.total for r in rows], float)
    yi, vi = escalc_proportions([r.events for r in rows], n, measure)
    return yi, vi, n


def _refit_sets(kind: Any, settings: PoolSettings, clean_rows: Sequence[StudyRow],
                sets: list[tuple[Sequence[int], StudyRow | None]]) -> list[tuple[Estimate | None, int, Any, Any]]:
    """Pool ``clean_rows`` without positions ``drop`` (and with ``row`` added, when given), for each
    ``(drop, row)``: ``(estimate, k, i2, tau2)`` of each set (estimate None where the set cannot be
    pooled). The fits with the same k run together in batches of :data:`BATCH_CELLS` rows x
    studies; the numbers are those of pool_proportions / pool_generic on the same rows (the same
    functions do the work, without the tau^2 CI, which the run does not show)."""
    from .pool import _check_method, _fit_batch

    out: list[tuple[Estimate | None, int, Any, Any]] = [(None, 0, None, None)] * len(sets)
    two_arm = not isinstance(kind, str) and kind.kind in ("binary", "continuous", "reported_effect")
    if not isinstance(kind, str) and not two_arm:  # an Analysis of one arm: the batched fits below
        kind = kind.kind
    method = "two-arm" if two_arm else _check_method(settings.method, allow_glmm=kind != "median")
    if method in ("GLMM", "two-arm"):  # one exact fit per set (two arms: as the analysis pools, MH/Peto included)
        for j, (drop, row) in enumerate(sets):
            gone = set(drop)
            rows = [x for i, x in enumerate(clean_rows) if i not in gone] + ([row] if row is not None else [])
            try:
                res = _pool_rows(kind, rows, settings)
                out[j] = (Estimate.of(res, len(rows)), len(rows), _f(res.i2), _f(res.tau2))
            except Exception:  # noqa: BLE001 - a set the estimator refuses: no figure for it
                out[j] = (None, len(rows), None, None)
        return out
    measure = "GEN" if kind == "median" else settings.measure.upper()
    if clean_rows:
        try:
            yc, vc, nc = _row_arrays(kind, measure, clean_rows)
        except ValueError:
            return out
    else:
        yc, vc, nc = np.empty(0), np.empty(0), None if kind == "median" else np.empty(0)
    inv_n = None if nc is None else 1 / nc
    groups: dict[int, list[tuple[int, np.ndarray, float | None, float | None, float | None]]] = {}
    for j, (drop, row) in enumerate(sets):
        yr = vr = nr = None
        if row is not None:
            try:
                ya, va, na = _row_arrays(kind, measure, [row])
            except ValueError:
                continue
            if not (np.isfinite(ya[0]) and np.isfinite(va[0]) and va[0] > 0):
                continue
            yr, vr, nr = float(ya[0]), float(va[0]), None if na is None else float(na[0])
        keep = np.delete(np.arange(len(clean_rows)), np.asarray(drop, int))
        k = len(keep) + (row is not None)
        if k:
            groups.setdefault(k, []).append((j, keep, yr, vr, nr))
    for k, members in groups.items():
        step = max(1, BATCH_CELLS // k)
        for s in range(0, len(members), step):
            part = members[s:s + step]
            Y = np.empty((len(part), k))
            V = np.empty((len(part), k))
            for b, (_j, keep, yr, vr, _nr) in enumerate(part):
                m = len(keep)
                Y[b, :m], V[b, :m] = yc[keep], vc[keep]
                if yr is not None:
                    Y[b, m], V[b, m] = yr, vr
            with np.errstate(all="ignore"):
                fit = _fit_batch(Y, V, method, settings.hk, settings.level, with_ci=False)
            for b, (j, keep, yr, _vr, nr) in enumerate(part):
                nhm = None
                if inv_n is not None:
                    nhm = float(k / (inv_n[keep].sum() + (1 / nr if nr is not None else 0.0)))
                out[j] = (_batch_estimate(fit, b, k, measure, nhm), k, _f(float(fit["i2"][b])),
                          _f(float(fit["tau2"][b])))
    return out


def _batch_estimate(fit: dict, b: int, k: int, measure: str, nhm: float | None) -> Estimate:
    """Row ``b`` of a batch fit as :meth:`Estimate.of` would give it for the PoolResult that
    :func:`curation.pool.pool_proportions` builds from the same fit (back-transformed, bounds in
    order, proportions clipped to 0..1 for display), without the per-study tuples a PoolResult holds."""
    from .pool import back_transform

    vals = [fit["beta"][b], fit["ci_lb"][b], fit["ci_ub"][b]]
    est, lo, hi = (np.asarray(vals, float) if measure == "GEN" else back_transform(vals, measure, nhm))
    lo, hi = (lo, hi) if not (lo > hi) else (hi, lo)
    if measure != "GEN":
        est, lo, hi = (v if math.isnan(v) else min(1.0, max(0.0, v)) for v in (float(est), float(lo), float(hi)))
    return Estimate(_f(float(est)), _f(float(lo)), _f(float(hi)), k)


def influence(schema: ReviewSchema, validation: ValidationResult, analyses: Sequence[Analysis],
              notes: dict[str, list[str]] | None = None) -> list[Influence]:
    """For each excluded record that an analysis would take: the pooled estimate with and without it.

    The rows are taken as extracted (their typed numbers), from a dataset where every row
    passes; an analysis's own selection rules decide whether it would take the row (and which
    cohort of the same study it would give up for it). A record excluded because its study is
    excluded names the study row's errors too; a record whose study is not eligible (an
    ``ineligible-term`` error) is ranked after every record that a fix could bring in.

    The refits run in batches (:func:`_refit_sets`); per analysis at most
    :data:`INFLUENCE_CELLS` study rows are refitted: beyond that, the records that move the
    estimate most (ranked with tau^2 held) are refitted and a note in ``notes`` (analysis id ->
    list of str) says how many. Sorted: eligible records first, then by impact, largest first.
    """
    from .selection import use_for

    tables = validation.tables
    sel = validation.selection
    kept_out = sel.findings_by_row(tables) if sel is not None else {}
    if not any(kept_out.values()):
        return []
    all_clean = validation.candidate_tables
    notes = notes if notes is not None else {}
    by_id = {a.id: a for a in analyses}
    out: list[Influence] = []
    order = {a.id: i for i, a in enumerate(analyses)}
    for base in analyses:
        if base.parent is not None or base.role not in ("primary", "subgroup_test"):
            continue
        try:
            _name, oc, frame, _term = outcome_frame(schema, all_clean, base.outcome)
            errors = kept_out.get(use_for(schema, _name, base.subgroup).key, {})
            if not errors:
                continue
            affected = {str(f.study_id) for fs in errors.values() for f in fs if f.study_id is not None}
            key = "study_id" if "study_id" in frame else None
            if key is not None:  # selection is decided study by study: the studies with a row kept out
                frame = frame[frame[key].astype(str).isin(affected)]
            sg = _subgroup_spec(schema, base.subgroup)
            taken_all, _left, _notes = select(schema, frame, oc, sg)
        except Exception:  # noqa: BLE001 - influence is a help, never a reason to fail the run
            continue
        excluded = set(errors)
        per_target: dict[str, list[StudyRow]] = {}
        for r in taken_all:
            if r.row is not None and (r.file, r.sheet, int(r.row)) in excluded:
                tid = base.id if base.role == "primary" else f"{base.id}:{r.group}"
                per_target.setdefault(tid, []).append(r)
        for tid, cands in per_target.items():
            target = by_id.get(tid)
            clean_rows = list(target.taken) if target is not None else []
            pos: dict[str, list[int]] = {}
            for i, x in enumerate(clean_rows):
                pos.setdefault(x.study_id, []).append(i)
            sets = [(pos.get(r.study_id, []), r) for r in cands]
            result = target.result if target is not None else None
            total_cells = sum(len(clean_rows) - len(d) + 1 for d, _ in sets)
            glmm = base.settings.method.upper() == "GLMM"
            limit = GLMM_REFITS if glmm else max(LOO_MIN, INFLUENCE_CELLS // max(1, len(clean_rows) + 1))
            if result is not None and base.kind in ("proportion", "median") and (
                    total_cells > INFLUENCE_CELLS or (glmm and len(sets) > GLMM_REFITS)):
                try:
                    ya, va, _n = _row_arrays(base.kind, "GEN" if base.kind == "median" else
                                             ("PLO" if glmm else base.settings.measure), [r for _, r in sets])
                    shift = _approx_shift(result, [d for d, _ in sets], ya, va)
                    shift = np.where(np.isfinite(shift), shift, math.inf)
                except ValueError:
                    shift = np.zeros(len(sets))
                keep = sorted(np.argsort(-shift, kind="stable")[:limit].tolist())
                notes.setdefault(tid, []).append(
                    f"what matters most: {len(keep)} of the {len(sets)} excluded records this analysis would take were "
                    f"refitted, those that move its estimate most (ranked with tau\u00b2 held at its current value); "
                    f"the others move it less and are not listed")
                sets = [sets[i] for i in keep]
                cands = [cands[i] for i in keep]
            fits = _refit_sets(base, base.settings, clean_rows, sets)
            tlabel = target.label if target is not None else f"{base.label.split(', by ')[0]}, {cands[0].group}"
            before = Estimate.of(result, len(clean_rows))
            for (drop, r), (after, k_with, _i2, _tau2) in zip(sets, fits):
                if after is None:
                    continue
                out.append(_influence_entry(schema, base, tid, tlabel, r, [clean_rows[i] for i in drop], before,
                                            after, k_with, errors))
    out.sort(key=lambda x: (x.ineligible, -x.impact, order.get(x.analysis_id.split(":")[0], 0), x.analysis_id,
                            x.file, x.row))
    return out


def _influence_entry(schema, base, tid, tlabel, r, same, before, after, k_with, errors) -> Influence:
    key = (r.file, r.sheet, int(r.row))
    errs = list(errors.get(key, []))
    via_study = [e for e in errs if e.contract_sheet == schema.root_sheet and (e.file, e.row) != (r.file, r.row)]
    ineligible = any(e.rule == "ineligible-term" for e in errs)
    scale = 100.0 if base.kind == "proportion" else 1.0
    delta = None
    if before is not None and before.estimate is not None and after.estimate is not None:
        delta = scale * (after.estimate - before.estimate)
    if before is None or before.estimate is None:
        impact = math.inf
    else:
        width = (before.ci_high or 0) - (before.ci_low or 0)
        impact = abs(delta or 0.0) / (scale * width) if width and width > 0 else abs(delta or 0.0)
    rules = tuple(dict.fromkeys(e.rule for e in errs))
    who = f"{r.study_id}'s {r.sheet or 'outcomes'} row {r.row}" + (
        f" (cohort {r.cohort})" if r.cohort and r.cohort != schema.analysis.overall_cohort else "")
    if before is None or before.estimate is None:
        change = f"would become {fmt_value(after.estimate, base)} (k = {k_with}) where nothing can be pooled now"
    elif fmt_value(before.estimate, base) == fmt_value(after.estimate, base):
        change = (f"would not change at the precision shown ({fmt_value(before.estimate, base)}, k = {before.k}"
                  + (f" -> {k_with}" if k_with != before.k else "") + ")")
        delta, impact = 0.0, 0.0
    else:
        change = (f"would move from {fmt_value(before.estimate, base)} (k = {before.k}) to "
                  f"{fmt_value(after.estimate, base)} (k = {k_with})")
    repl = f", in place of its {same[0].cohort} cohort" if same else ""
    sentence = f"if {who} were included as extracted{repl}, the pooled {tlabel} {change}"
    if ineligible:
        cells = ", ".join(dict.fromkeys(e.cell or e.sheet for e in errs if e.rule == "ineligible-term"))
        sentence = (f"its study is not eligible for the review ({cells}), so fixing a cell would not bring it in; "
                    + sentence)
    elif via_study:
        cells = ", ".join(dict.fromkeys(e.cell or e.sheet for e in via_study))
        sentence = f"kept out with its study (errors on {cells or 'its study row'}); " + sentence
    return Influence(
        analysis_id=tid, analysis_label=tlabel, kind=base.kind, file=r.file, sheet=r.sheet or "",
        row=int(r.row), cell=f"{quote_sheet(r.sheet or '')}!{r.row}:{r.row}", study_id=r.study_id, cohort=r.cohort,
        label=r.label,
        errors=rules, messages=tuple(e.message for e in errs), replaces=same[0].cohort if same else None,
        without=before, with_=after, delta=delta, impact=impact, sentence=sentence, ineligible=ineligible)


def run_job(forms: str | Path | Sequence[str | Path], schema: str | Path | ReviewSchema | None = None,
            progress: Progress | None = None, *, names: Sequence[str] | None = None,
            data: Sequence[bytes] | None = None, generated: str | None = None, layout: Any = None,
            sources: str | Path | None = None, cache_dir: Any = None) -> RunResult:
    """The main job: validate the forms, pool the plan from what passed, rank the exclusions.

    Parameters
    ----------
    forms : path or sequence of paths
        ``.xlsx`` forms, or folders of them.
    schema : str, Path or ReviewSchema, optional
        Default: the 177Lu-PRRT review.
    progress : callable, optional
        ``progress(stage, done, total)`` after each step (stages ``read``, ``check``,
        ``pool``, ``influence``).
    names : sequence of str, optional
        The name of each form in the findings (default: the path as given; ``curate run``
        gives the file names, see :func:`form_names`).
    data : sequence of bytes, optional
        Each form's bytes, read once beforehand (:func:`read_snapshots`): validation and the
        annotated copies then use these, and the files are not opened again.
    generated : str, optional
        The run's timestamp (default: now, or ``SOURCE_DATE_EPOCH``).
    sources : path, optional
        A folder of the studies' articles: every verified cell is checked against its study's
        article between validation and selection (:func:`curation.verification.check_against_sources`);
        the source findings join the run's findings, the entries are ``RunResult.verification``.
    cache_dir : path or False, optional
        Where the article checker keeps extracted text (default: its own; False: none).

    Returns
    -------
    RunResult

    Raises
    ------
    UnusableInputError
        A form that cannot be used (nothing has been written).
    """
    tick = progress or (lambda stage, done, total: None)
    sch = schema if isinstance(schema, ReviewSchema) else load_schema(schema)
    paths = expand_forms(forms)
    if names is not None and len(names) != len(paths):
        raise ValueError("one name per form")
    if data is not None and len(data) != len(paths):
        raise ValueError("one snapshot per form")
    n = len(paths)
    done = [0]

    def read_tick(_p):
        done[0] += 1
        tick("read", done[0], n)

    workbooks = read_forms(paths, sch, progress=read_tick, names=names, data=data, layout=layout)
    validation = validate_workbooks(sch, workbooks)
    names_ = tuple(wb.file for wb in workbooks)
    tick("check", 1, 1)
    verification: tuple[Any, ...] = ()
    if sources is not None:  # the source check: between validation and selection
        from .verification import check_against_sources

        checked = check_against_sources(sch, validation, sources, cache_dir=cache_dir)
        validation, verification = checked.validation, checked.entries
        tick("verify", 1, 1)
    analyses, notes = _plan(sch, validation.candidate_tables, validation.exclusion_reasons)
    validation = with_findings(validation, empty_analysis_findings(sch, validation, analyses))
    tick("pool", 1, 1)
    del workbooks  # the tables hold what the run needs; the raw cells can go
    loo, egger, by_analysis = _leave_one_out(analyses, sch.analysis.small_study_min_k)
    infl = influence(sch, validation, analyses, by_analysis)
    tick("influence", 1, 1)
    for aid, ns in by_analysis.items():
        notes.extend(f"{aid}: {n}" for n in ns if not n.startswith("no funnel plot"))
    return RunResult(schema=sch, paths=tuple(paths), names=names_, validation=validation,
                     analyses=tuple(analyses), leave_one_out=loo, egger=egger, influence=tuple(infl),
                     generated=generated or timestamp(), notes=tuple(notes),
                     analysis_notes={k: tuple(v) for k, v in by_analysis.items()}, data=tuple(data or ()),
                     verification=verification, sources=None if sources is None else str(sources))


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def empty_analysis_findings(schema: ReviewSchema, validation: ValidationResult,
                            analyses: Sequence[Analysis]) -> list[Any]:
    """``analysis-pools-nothing``: a warning for each analysis of the plan that pools nothing while
    its sheet has rows, with the commonest reasons; for arm rows, the arm labels found against the
    ones the schema pairs (``arms.intervention`` / ``arms.control``), the usual cause."""
    from .findings import Finding

    out = []
    seen: set[str] = set()
    for a in analyses:
        if a.role not in ("primary", "subgroup_test") or a.taken or a.id in seen:
            continue
        seen.add(a.id)
        oc = schema.analysis.outcomes.get(a.outcome.partition(":")[0])
        if oc is None:
            continue
        sheet = schema.outcome_sheet(oc) if oc.kind not in ("proportion", "adverse_event") or oc.sheet else (
            oc.sheet if oc.kind == "adverse_event" else schema.analysis_sheet)
        table = validation.tables.get(sheet)
        if table is None or not len(table):
            continue
        files = sorted({r.file for r in a.left_out if r.file}) or list(validation.files[:1])
        where = a.left_out[0].sheet if a.left_out and a.left_out[0].sheet else sheet
        field_ = None
        if oc.arms is not None and oc.arms.role_field in table.data:
            field_ = oc.arms.role_field
            found = [v for v in dict.fromkeys(table.data[oc.arms.role_field].dropna().astype(str))][:8]
            expected = [oc.arms.intervention, oc.arms.control]
            if not set(expected) <= set(found):
                missing = [e for e in expected if e not in found]
                why = (f"the {oc.arms.role_field} labels found ({', '.join(repr(v) for v in found) or 'none'}) do "
                       f"not include {' and '.join(repr(m) for m in missing)}, the labels the schema pairs "
                       f"(arms.intervention {oc.arms.intervention!r}, arms.control {oc.arms.control!r}): write the "
                       "arms as the schema names them, or set arms.intervention / arms.control (or the "
                       "vocabulary's aliases) to the labels used")
            else:
                why = _reasons_text(a)
        else:
            why = _reasons_text(a)
        passed = validation.passed.get(sheet)
        excluded = int(len(table) - passed.sum()) if passed is not None else 0
        if excluded:
            why += f" ({excluded} row(s) of {sheet} excluded by errors)"
        for f in files:
            out.append(Finding(f, where, None, None, field_, None, "analysis-pools-nothing", "warning",
                               f"analysis {a.id} ({a.label}) pools nothing from {len(table)} row(s) of {sheet}: {why}"))
    return out


def _reasons_text(a: Analysis) -> str:
    counts: dict[str, int] = {}
    first: dict[str, str] = {}  # each group's first reason, as written (the masked key is only for counting)
    for r in a.left_out:
        text = r.reason or "no reason"
        key = re.sub(r"\b[A-Z]*\d+\w*\b", "#", text)  # study ids and numbers counted together
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, text)
    if not counts:
        return "no row reached the analysis"
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
    return "; ".join(f"{n} row(s): {first[k]}" + (", and the like" if n > 1 and first[k] != k else "") for k, n in top)


def with_findings(validation: ValidationResult, extra: Sequence[Any]) -> ValidationResult:
    """``validation`` with ``extra`` findings added (sorted in, counted in the summary)."""
    if not extra:
        return validation
    from dataclasses import replace

    from .findings import sort_findings

    findings = sort_findings([*validation.finding_list, *extra], validation.schema.sheets)
    s = validation.summary
    by_rule = dict(s.by_rule)
    for f in extra:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    summary = replace(s, errors=s.errors + sum(f.severity == "error" for f in extra),
                      warnings=s.warnings + sum(f.severity == "warning" for f in extra),
                      info=s.info + sum(f.severity == "info" for f in extra), by_rule=dict(sorted(by_rule.items())))
    return replace(validation, finding_list=tuple(findings), summary=summary)


def annotated_name(path: str | Path) -> str:
    return f"{Path(path).stem}.annotated.xlsx"


PLOT_FORMATS = ("svg", "png", "none")
"""``curate run --plots``: the format of the files in ``plots/`` (the page always has its SVG inline)."""


def plot_jobs(run: RunResult) -> list[tuple[str, str, Analysis, list[Analysis]]]:
    """The plots of a run: ``(stem, "forest"|"funnel", analysis, its subgroup entries)``.

    A forest plot per analysis the page shows (overall analyses and subgroup tests with a
    result; ``plots/<id>``): sensitivity and subgroup entries pool the same studies, so their
    figures are in the tables. A funnel plot per overall analysis with at least
    ``analysis.small_study_min_k`` studies (``plots/<id>.funnel``; Cochrane Handbook 10.4.3.1).
    """
    min_k = run.schema.analysis.small_study_min_k
    out = []
    for a in run.analyses:
        if a.result is None or a.role not in ("primary", "subgroup_test"):
            continue
        subs = run.children(a, "subgroup") if a.role == "subgroup_test" else []
        out.append((f"plots/{plot_name(a.id)}", "forest", a, subs))
        if a.role == "primary" and a.k >= min_k:
            out.append((f"plots/{plot_name(a.id)}.funnel", "funnel", a, []))
    return out


def render_plot(job: tuple[str, str, Analysis, list[Analysis]], png: bool = False) -> tuple[str, str, bytes | None]:
    """One plot job -> ``(stem, svg text, png bytes or None)``: the figure is drawn once."""
    from .plots import analysis_forest, figure_png, figure_svg, funnel_plot

    stem, what, a, subs = job
    if what == "forest":
        fig = analysis_forest(a, subs)
    else:
        fig = funnel_plot(a.result, [r.label for r in a.taken], title=f"{a.label}: funnel plot",
                          effect_label=a.effect_label, ratio=a.ratio, unit=a.unit)
    return stem, figure_svg(fig), figure_png(fig) if png else None


def render_plot_safe(job: tuple[str, str, Analysis, list[Analysis]], png: bool = False
                     ) -> tuple[str, str | None, bytes | None, str | None]:
    """:func:`render_plot` that never raises: ``(stem, svg, png, None)``, or ``(stem, None, None,
    reason)`` when the plot could not be drawn (one plot never stops the run)."""
    try:
        stem, svg, data = render_plot(job, png)
        return stem, svg, data, None
    except Exception as exc:  # noqa: BLE001 - a plot is a help, never a reason to fail the run
        text = " ".join(str(exc).split())
        text = re.sub("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", "", text)
        return job[0], None, None, f"{type(exc).__name__}: {text[:160]}"


def _render_plots(jobs: list, tick: Callable[[int], None], png: bool = False
                  ) -> list[tuple[str, str | None, bytes | None, str | None]]:
    """Render the plots one after the other in this process: a run has a few (one per analysis
    the page shows, a funnel where there are enough studies), each small, so a process pool
    would cost more than it saves."""
    out = []
    for job in jobs:
        out.append(render_plot_safe(job, png))
        tick(len(out))
    return out


def _analysis_entry(a: Analysis) -> dict[str, Any]:
    """An entry of ``analysis.json``. The rows taken and left out hold the fields that have a value
    (a proportion's row has no ``median``). A sensitivity entry pools the rows of its parent and a
    subgroup entry the rows of its group in its parent: instead of repeating them (at thousands of
    studies the file would grow with studies x settings) they name it: ``"studies_as": parent``."""
    from dataclasses import replace

    if a.role not in ("sensitivity", "subgroup") or a.parent is None:
        out = a.to_dict()
        for key in ("studies_taken", "studies_left_out"):  # a key that would be null is left out of a row
            out[key] = [{f: v for f, v in row.items() if v is not None} for row in out[key]]
        return out
    out = replace(a, taken=(), left_out=()).to_dict()
    out["k"] = a.k
    del out["studies_taken"], out["studies_left_out"]
    out["studies_as"] = a.parent
    return out


def analysis_dict(run: RunResult, *, lazy: bool = False) -> dict[str, Any]:
    """The object of ``analysis.json`` (``generated`` is its only time-dependent field).
    ``lazy``: ``analyses`` is an iterator, so that :func:`~curation.outputs.dumps` (compact) holds
    one entry at a time."""
    entries = (_analysis_entry(a) for a in run.analyses)
    return {
        "schema": run.schema.name,
        "generated": run.generated,
        "forms": list(run.names),
        "analyses": entries if lazy else list(entries),
        "leave_one_out": {k: [x.to_dict() for x in v] for k, v in run.leave_one_out.items()},
        "egger": {k: v.to_dict() for k, v in run.egger.items()},
        "influence": [x.to_dict() for x in run.influence],
        "notes": list(run.notes),
        "analysis_notes": {k: list(v) for k, v in run.analysis_notes.items()},
        **_verification_part(run),
    }


def _verification_part(run: RunResult) -> dict[str, Any]:
    """``{"sources": DIR, "verification": [entries]}`` for a run checked against its articles, else ``{}``
    (a run without ``--sources`` writes the same files as before)."""
    if run.sources is None:
        return {}
    from .verification import entry_dicts

    return {"sources": Path(run.sources).name or str(run.sources), "verification": entry_dicts(run.verification)}


def handoff_files(run: RunResult, csv_names: dict[str, str]) -> tuple[dict[str, bytes], list[str]]:
    """``analysis.R`` and ``datapackage.json`` from :mod:`curation.handoff`, when it is installed."""
    from .outputs import dumps

    try:
        from . import handoff  # type: ignore[attr-defined]
    except ImportError:
        return {}, ["analysis.R and datapackage.json were not written: curation.handoff is not available"]
    out: dict[str, bytes] = {}
    notes: list[str] = []
    try:
        out["analysis.R"] = handoff.analysis_r_script(run.schema, list(run.analyses), csv_names).encode("utf-8")
    except Exception as exc:  # noqa: BLE001
        notes.append(f"analysis.R was not written ({type(exc).__name__}: {str(exc)[:120]})")
    try:
        pkg = handoff.data_package(run.schema, run.validation.clean_tables, csv_names)
        out["datapackage.json"] = dumps(pkg).encode("utf-8")
    except Exception as exc:  # noqa: BLE001
        notes.append(f"datapackage.json was not written ({type(exc).__name__}: {str(exc)[:120]})")
    return out, notes


def csv_names(run: RunResult) -> dict[str, str]:
    """Clean dataset file per sheet: ``clean.csv`` for the analysis sheet, ``clean_<sheet>.csv`` else."""
    from .handoff import csv_names_for

    return csv_names_for(run.schema, run.validation.clean_tables)


def render_outputs(run: RunResult, progress: Progress | None = None, *, plots: str = "svg",
                   problems: list[str] | None = None) -> dict[str, bytes]:
    """Every file of the ``curate run -o DIR`` contract, as bytes by relative path.

    ``report.html``, ``findings.json`` (the object ``validate --json`` writes), ``findings.csv``,
    ``clean.csv`` and ``clean_<sheet>.csv``, ``analysis.json``, ``plots/<id>.svg`` (``plots``:
    ``"svg"``, ``"png"`` or ``"none"``; a forest plot per overall analysis and subgroup test,
    ``plots/<id>.funnel.svg`` per overall analysis with enough studies), ``<form>.annotated.xlsx``
    per form, and ``analysis.R`` / ``datapackage.json`` when :mod:`curation.handoff` is
    available. The page has every plot inline (SVG) whatever ``plots`` says. Same input, same
    bytes, except the run's timestamp in ``analysis.json`` and ``report.html``.

    A hand-off file (a clean CSV, ``analysis.R``, ``datapackage.json``) that could not be made is
    named in the report and appended to ``problems`` (``curate run`` prints each on stderr and
    exits 1): it never goes missing silently.
    """
    if plots not in PLOT_FORMATS:
        raise ValueError(f"plots must be one of {', '.join(PLOT_FORMATS)}")
    from .outputs import csv_text, dumps
    from .report import annotated_workbook, render_report
    from .validation import findings_frame

    tick = progress or (lambda stage, done, total: None)
    v = run.validation
    files: dict[str, bytes] = {}
    names = csv_names(run)
    files["findings.json"] = dumps({**v.to_dict(), **_verification_part(run)}).encode("utf-8")
    if run.sources is not None:
        files["verification.csv"] = _verification_csv(run).encode("utf-8")
    files["findings.csv"] = csv_text(findings_frame(v.finding_list)).encode("utf-8")
    failed: list[str] = []
    for sheet, fname in names.items():
        try:
            files[fname] = csv_text(v.clean_tables[sheet]).encode("utf-8")
        except Exception as exc:  # noqa: BLE001 - named in the report and on stderr
            failed.append(f"{fname} was not written ({type(exc).__name__}: {str(exc)[:120]})")
    files["analysis.json"] = dumps(analysis_dict(run, lazy=True), compact=True).encode("utf-8")
    extra, more = handoff_files(run, names)
    failed.extend(more)
    files.update(extra)
    if problems is not None:
        problems.extend(failed)
    notes = list(failed)
    jobs = plot_jobs(run)
    total = len(jobs) + len(run.paths) + 1
    svgs: dict[str, str] = {}
    written: dict[str, str] = {}
    for stem, svg, png, failed in _render_plots(jobs, lambda n: tick("render", n, total), png=plots == "png"):
        if failed is not None:
            notes.append(f"{stem} not drawn ({failed}); everything else of the run is complete")
            continue
        svgs[stem] = svg
        if plots in ("svg", "png"):
            written[stem] = f"{stem}.{plots}"
            files[written[stem]] = svg.encode("utf-8") if plots == "svg" else png
    step = len(jobs)
    files["report.html"] = render_report(run, svgs, notes=notes, files=written).encode("utf-8")
    step += 1
    tick("render", step, total)
    snapshots = run.data or (None,) * len(run.paths)
    for path, name, data in zip(run.paths, run.names, snapshots):
        target = annotated_name(path)
        i = 1
        while target in files:  # two forms with the same name in different folders
            i += 1
            target = f"{Path(path).stem}-{i}.annotated.xlsx"
        files[target] = annotated_workbook(path, [f for f in v.finding_list if f.file == name], v, name, data=data,
                                           verification=run.verification)
        step += 1
        tick("render", step, total)
    return files


def _verification_csv(run: RunResult) -> str:
    """``verification.csv``: one row per verified cell (the contract's entry fields)."""
    import pandas as pd

    from .outputs import csv_text
    from .verification import ENTRY_COLUMNS, entry_dicts

    rows = entry_dicts(run.verification)
    frame = pd.DataFrame([{k: r.get(k) for k in ENTRY_COLUMNS} for r in rows], columns=list(ENTRY_COLUMNS))
    frame["row"] = frame["row"].astype("Int64")
    return csv_text(frame)


def check_output_dir(out_dir: str | Path, files: Sequence[str] = (), inputs: Sequence[Path] = ()) -> None:
    """Refuse (:class:`~curation.errors.UnusableInputError`, exit 2) an ``-o`` that is not a folder,
    or where writing ``files`` would replace an input form or something that is not a file."""
    from .errors import UnusableInputError

    out = Path(out_dir)
    if out.is_symlink() and not out.exists():
        raise UnusableInputError(f"{out_dir}: is a broken link, not a folder; choose another -o")
    if out.exists() and not out.is_dir():
        raise UnusableInputError(f"{out_dir}: is a file, not a folder; choose another -o")
    if not out.exists():
        return
    protected = {Path(p).resolve() for p in inputs}
    for rel in files:
        p = out / rel
        for d in list(p.relative_to(out).parents)[:-1]:
            if (out / d).exists() and not (out / d).is_dir():
                raise UnusableInputError(f"{out_dir}: {d} is a file, where the run writes the folder {d}/; "
                                         "choose another -o")
        target = p.parent.resolve() / p.name  # os.replace replaces a link itself, never its target
        if target in protected:
            raise UnusableInputError(f"{out_dir}: writing {rel} would overwrite the input form {target}; "
                                     "choose another -o")
        if p.is_dir() and not p.is_symlink():
            raise UnusableInputError(f"{out_dir}: {rel} is a folder, where the run writes a file; choose another -o")


def write_outputs(files: dict[str, bytes], out_dir: str | Path, inputs: Sequence[Path] = (),
                  manifest: dict[str, Any] | None = None) -> Path:
    """Replace the run in ``out_dir`` by the rendered ``files`` as a whole (see
    :func:`curation.outputs.write_folder`): a reader of ``out_dir`` sees the complete old run or
    the complete new one; the user's own files in it are kept, the old run's files are replaced
    (also those the new run does not write). Refused (nothing written): an ``out_dir`` that is a
    file, or a write that would replace one of ``inputs``.
    """
    from .outputs import write_folder

    check_output_dir(out_dir, list(files), inputs)
    real, _note = write_folder(out_dir, files, keep=inputs, manifest=manifest)
    return real


# ---------------------------------------------------------------------------------------------
# Command line: `curate run` and `curate demo`
# ---------------------------------------------------------------------------------------------

STAGES = {"read": "reading forms", "check": "checking", "verify": "checking against the articles",
          "pool": "pooling", "influence": "weighing exclusions",
          "render": "writing plots, report and annotated forms"}


class _Bar:
    """A rich progress bar over the stages (on stderr; silent when it is not a terminal)."""

    def __init__(self, quiet: bool = False):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from .console import console

        self.progress = Progress(TextColumn("{task.description:<42}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console(stderr=True), transient=True,
                                 disable=quiet)
        self.tasks: dict[str, Any] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(STAGES.get(stage, stage), total=max(total, 1))
        self.progress.update(self.tasks[stage], completed=done, total=max(total, 1))


def print_run(run: RunResult, out_dir: Path | None, files: dict[str, bytes] | None = None) -> None:
    """Summary on the terminal: findings per severity, rows read = passed + excluded, main estimates."""
    from rich.table import Table

    from .console import console, print_validation

    c = console()
    print_validation(run.validation, quiet=True)
    t = Table(title="Pooled estimates (records that passed)", show_edge=False, header_style="bold")
    for col in ("analysis", "k", "estimate (95% CI)", "I2"):
        t.add_column(col, justify="left" if col == "analysis" else "right", no_wrap=True)
    rows = [a for a in run.analyses if a.role in ("primary", "subgroup_test", "subgroup")]
    for a in rows:
        name = f"  {a.group}" if a.role == "subgroup" else a.id
        if a.role == "subgroup_test":
            r = a.result
            if r is None:
                t.add_row(name, str(a.k), "not pooled", "")
            elif r.q_between is not None and r.df_between:
                t.add_row(name, str(a.k), f"subgroups differ? Q = {r.q_between:.2f}, p = {r.p_between:.3g}", "")
            else:
                t.add_row(name, str(a.k), "one subgroup only", "")
            continue
        if a.result is None:
            t.add_row(name, str(a.k), "not pooled", "")
            continue
        e = Estimate.of(a.result, a.k)
        text = fmt_estimate(e, a).rsplit(";", 1)[0] + ")"
        i2 = _f(a.result.i2)
        t.add_row(name, str(a.k), text, "" if i2 is None else f"{i2:.1f}%")
    c.print(t)
    if run.influence:
        top = run.influence[:3]
        c.print("[bold]Fix first[/] (excluded records that would move a pooled estimate most):")
        for inf in top:
            c.print(f"  {inf.cell} ({', '.join(inf.errors)}): {inf.sentence}")
    for n in run.notes:
        c.print(f"[yellow]note:[/] {n}")
    if run.sources is not None:
        from .verification import summary_line

        c.print(f"[bold]Sources[/] ({run.sources}): {summary_line(run.verification)}")
    if out_dir is not None and files is not None:
        c.print(f"wrote {len(files)} files into {out_dir}/ (open {out_dir}/report.html)")


def read_snapshots(paths: Sequence[Path], max_bytes: int | None = None) -> list[bytes]:
    """Each form's bytes, read once: validation and the annotated copy both use these, so a form
    saved again while the run goes cannot mix two versions. One line (exit 2) for a form that
    cannot be read, or whose file is larger than ``max_bytes``."""
    from .errors import UnusableInputError
    from .outputs import os_error_message

    out = []
    for p in paths:
        if Path(p).is_dir():
            raise UnusableInputError(f"{p}: is a folder, not a workbook; give the path of the .xlsx file")
        try:
            if not stat.S_ISREG(os.stat(p).st_mode):  # a pipe or a device would never end
                raise UnusableInputError(f"{p}: is not a regular file (a device, pipe or socket); give the path "
                                         "of a saved .xlsx file")
            with open(p, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if max_bytes is not None and size > max_bytes:
                    raise UnusableInputError(f"{p}: is too large ({size / 1e6:,.1f} MB, above the limit of "
                                             f"{max_bytes / 1e6:,.1f} MB); remove what the form does not need "
                                             "(images, unused sheets) or split it")
                out.append(fh.read())
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise UnusableInputError(f"{p}: file not found; check the path and the file name") from None
            raise UnusableInputError(os_error_message(exc, p)) from None
    return out


def _space_needed(snapshots: Sequence[bytes]) -> int:
    """A generous estimate of the bytes a run writes before it is rendered: the annotated copies
    (about the forms' size), the plots, page and tables (a few MB)."""
    return 2 * sum(len(b) for b in snapshots) + 8_000_000


def run_command(forms: Sequence[str | Path], schema: str | Path | ReviewSchema | None, out_dir: str | Path, *,
                quiet: bool = False, names: Sequence[str] | None = None, extra_files: dict[str, bytes] | None = None,
                plots: str = "svg", generated: str | None = None, layout: Any = None,
                sources: str | Path | None = None, notes: Sequence[str] = ()) -> int:
    """``curate run``: the job, its files replacing the run in ``out_dir`` as a whole; returns the
    exit code (0 no error, 1 errors found). ``plots``: the format of ``plots/`` (``svg``, ``png``
    or ``none``). ``sources``: the folder of the studies' articles to check the figures against.
    ``notes``: more notes of the run, for its report and ``analysis.json`` (the demo's pointer to
    its worked example).

    Before any work: each form is read once into memory, and ``out_dir`` is checked (a folder,
    writable, enough free space) and locked against a second run. A form that cannot be used, an
    output folder that cannot be written, another run writing it, or an OS error while writing
    raise :class:`~curation.errors.UnusableInputError` (exit 2; ``out_dir`` is left as it was).
    Ctrl-C or SIGTERM raise :class:`~curation.errors.Interrupted`, saying what ``out_dir`` holds.
    """
    import signal

    from .errors import Interrupted, UnusableInputError
    from .outputs import (check_output_folder, clean_leftovers, folder_lock, os_error_message, run_id, run_id_in,
                          sha256_bytes, write_folder)

    from .validation import limits_for

    out = Path(out_dir)
    sch = schema if isinstance(schema, ReviewSchema) else load_schema(schema)
    paths = expand_forms(forms)
    if sources is not None:
        from .verification import sources_folder

        sources_folder(sources)  # a missing folder stops the run before any work
    inputs = [Path(p).resolve() for p in paths]
    snapshots = read_snapshots(paths, limits_for(sch).max_uncompressed_bytes + 1_000_000)
    names = list(names) if names is not None else form_names(paths)
    # before the job: the files of the run are known by name except the plots
    check_output_dir(out, ["report.html", *(annotated_name(p) for p in inputs), *(extra_files or {})], inputs)
    check_output_folder(out, _space_needed(snapshots))
    written = False
    new_id: str | None = None
    old_id: str | None = None
    problems: list[str] = []
    try:
        with folder_lock(out):
            clean_leftovers(out)
            with _Bar(quiet=quiet) as bar:
                run = run_job(paths, sch, progress=bar, names=names, data=snapshots, generated=generated, layout=layout,
                              sources=sources)
                if notes:
                    from dataclasses import replace

                    run = replace(run, notes=run.notes + tuple(notes))
                files = render_outputs(run, progress=bar, plots=plots, problems=problems)
                if extra_files:
                    files.update(extra_files)
            check_output_dir(out, list(files), inputs)
            check_output_folder(out, sum(len(b) for b in files.values()) + 1_000_000)
            manifest = {"inputs": [{"name": n, "sha256": sha256_bytes(b), "bytes": len(b)}
                                   for n, b in zip(names, snapshots)]}
            new_id = run_id(files)
            old_id = run_id_in(out)  # a run identical to the folder's own: the folder never "holds the new run"
            try:
                _real, note = write_folder(out, files, keep=inputs, manifest=manifest)
            except OSError as exc:
                raise UnusableInputError(f"cannot write the run: {os_error_message(exc, out)}; {out} was left as "
                                         "it was") from None
            written = True
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        what = "interrupted (Ctrl-C)" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        # what the folder holds, from its manifest: a signal held during the swap lands just after it
        swapped = written or (new_id is not None and new_id != old_id and run_id_in(out) == new_id)
        state = "holds the complete new run" if swapped else "was left as it was"
        raise Interrupted(signum, f"{what}; {out} {state}") from None
    print_run(run, out, files)
    if note:
        from .console import console

        console().print(f"[yellow]note:[/] {note}")
    for p in problems:  # a hand-off file missing: one line on stderr, and the exit code says so
        sys.stderr.write(f"curate: error: {p}; the rest of the run is in {out}\n")
    return max(run.exit_code(), 1) if problems else run.exit_code()


def project_root() -> Path:
    """The folder holding ``extraction_forms/``: the current one, else the source checkout."""
    here = Path.cwd()
    if (here / "extraction_forms").is_dir():
        return here
    return Path(__file__).resolve().parent.parent


DEMO_A, DEMO_B, DEMO_ADJ = "example_reviewer_a.xlsx", "example_reviewer_b.xlsx", "example_adjudication.xlsx"


def demo_timestamp() -> str:
    """The demo's timestamp: fixed (the example forms' date), so that regenerating the committed
    ``reports/demo`` changes no byte when nothing else changed; ``SOURCE_DATE_EPOCH`` overrides it."""
    return timestamp() if os.environ.get("SOURCE_DATE_EPOCH") else "2026-01-01T00:00:00Z"


def demo_command(out_dir: str | Path | None = None, *, quiet: bool = False) -> int:
    """``curate demo``: reconcile the two example reviewers with the shipped adjudication, then
    ``curate run`` on the consensus into ``reports/demo/``. Returns 0 when the demo ran.

    Without the reviewers' forms it runs on whatever example forms ``extraction_forms/`` holds.
    """
    import tempfile

    from .console import console
    from .errors import UnusableInputError

    root = project_root()
    forms_dir = root / "extraction_forms"
    out = Path(out_dir) if out_dir is not None else root / "reports" / "demo"

    def rel(p: Path) -> Path:
        try:
            return p.relative_to(Path.cwd())
        except ValueError:
            return p

    a, b, adj = forms_dir / DEMO_A, forms_dir / DEMO_B, forms_dir / DEMO_ADJ
    c = console()
    if a.is_file() and b.is_file():
        from .reconcile import consensus_workbook, reconcile
        from .report import _deterministic_xlsx

        rec = reconcile(rel(a), rel(b), None, rel(adj) if adj.is_file() else None,
                        decided_at="2026-01-01T00:00:00+00:00")
        unresolved = len(rec.unresolved)
        c.print(f"reconciled {DEMO_A} and {DEMO_B}: {len(rec.conflicts)} conflicts, "
                + (f"adjudicated with {DEMO_ADJ}, " if adj.is_file() else "")
                + f"{unresolved} unresolved")
        wb = consensus_workbook(rec)
        wb.properties.created = _dt.datetime(2026, 1, 1)  # the same demo, the same bytes
        buf = io_bytes(wb)
        data = _deterministic_xlsx(buf, "2026-01-01T00:00:00Z")
        example, pointer = sources_example_files(c)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "example_consensus.xlsx"
            path.write_bytes(data)
            run_command([path], None, out, quiet=quiet, names=["example_consensus.xlsx"],
                        extra_files={"example_consensus.xlsx": data, **example}, generated=demo_timestamp(),
                        notes=[pointer])
        return 0
    found = sorted(p for p in forms_dir.glob("*.xlsx") if ".annotated." not in p.name
                   and not p.name.startswith(("~$", ".")) and p.name not in (DEMO_ADJ,)) if forms_dir.is_dir() else []
    if not found:
        raise UnusableInputError(f"{forms_dir}: no example form to run the demo on (expected {DEMO_A} and {DEMO_B})")
    c.print(f"[yellow]note:[/] {DEMO_A} / {DEMO_B} not found; running on {', '.join(p.name for p in found)}")
    run_command([rel(p) for p in found], None, out, quiet=quiet, generated=demo_timestamp())
    return 0


SOURCES_EXAMPLE_DIR = "sources_example"
"""The folder of ``reports/demo`` with the worked example of ``--sources`` (:mod:`curation.sources_example`)."""


def sources_example_files(console: Any = None) -> tuple[dict[str, bytes], str]:
    """The worked example of checking figures against their articles, as the demo writes it into
    ``sources_example/``: the MADE-UP articles and form (:mod:`curation.sources_example`), and the
    complete ``curate run --sources`` of that form (its report with the Sources section, annotated
    form, findings and ``verification.csv``). Deterministic: the demo's fixed timestamp, no text
    cache. Without the article checker in this installation: the form and articles only. Returns the
    files by relative path and a note for the demo's own report that points to the example."""
    import tempfile

    from . import sources_example as ex

    files = ex.example_files()
    out = {f"{SOURCES_EXAMPLE_DIR}/{k}": v for k, v in files.items()}
    try:
        import curation.sources  # noqa: F401
    except ImportError:
        pointer = (f"{SOURCES_EXAMPLE_DIR}/ holds the worked example of checking figures against their articles "
                   "(MADE-UP studies): its form and articles only, not checked, as this installation has no article "
                   "checker (curation.sources)")
        if console is not None:
            console.print(f"[yellow]note:[/] {pointer}")
        return out, pointer
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        run = run_job([root / ex.FORM], None, names=[ex.FORM], data=[files[ex.FORM]], generated=demo_timestamp(),
                      sources=root / ex.ARTICLES, cache_dir=False)
        rendered = render_outputs(run)
    # the run names its sources folder by its last part: "articles", as in the demo's folder
    out.update({f"{SOURCES_EXAMPLE_DIR}/{k}": v for k, v in rendered.items()})
    from .verification import summary_line

    line = summary_line(run.verification)
    if console is not None:
        console.print(f"worked example ({SOURCES_EXAMPLE_DIR}/, MADE-UP studies): {line}")
    return out, (f"The worked example of checking figures against their articles (MADE-UP studies, curate run "
                 f"--sources) is in {SOURCES_EXAMPLE_DIR}/report.html, its Sources section: {line}.")


def io_bytes(wb: Any) -> bytes:
    import io

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

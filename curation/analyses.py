"""Select and pool: the schema's analysis plan run on the clean dataset.

Which rows an analysis takes (shared spec, pooling.md): a patient is never counted twice, so
each study contributes at most one row to a pooled estimate. The overall analysis takes each
study's ``overall`` cohort; an analysis by grade (or primary site) takes, for each study, the
cohorts whose grade is a single category — an ``overall`` cohort included when its grade is not
``mixed`` — and when a study has several cohorts in one group it takes the overall cohort, else
the one labelled exactly as the group, else the largest, and lists the others as left out.
ORR events = CR+PR and DCR events = CR+PR+SD over n_evaluable; medians are pooled on the natural
scale with ``se = (upper - lower) / (2 x 1.959964)``, or ``(median - lower) / 1.959964`` when the
upper bound was not reached.

Everything here takes plain data frames and returns immutable results; nothing is written.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .cells import finite_or_none
from .pool import PoolResult, pool_generic, pool_proportions
from .schema import (RATIO_MEASURES, TWO_ARM_KINDS, OutcomeSpec, PoolSettings, ReviewSchema, SubgroupSpec, fold,
                     method_fits)
from .selection import data_fields, use_for

Z975 = 1.959964  # the constant of the contract (pooling.md), not qnorm(0.975) to more digits


@dataclass(frozen=True)
class StudyRow:
    """One cohort an analysis took or left out.

    Attributes
    ----------
    study_id, cohort : str
    label : str
        ``first_author year`` (and the cohort when it is not the overall one), for plots.
    group : str or None
        The subgroup it falls in (subgroup analyses).
    events, total : float or None
        Proportions: events and denominator; two-arm binary outcomes: the intervention arm's.
    median, ci_low, ci_high, se : float or None
        Medians (in the outcome's unit) and the standard error taken from the CI; for a reported
        effect its CI, and ``se`` on the pooled scale (log for ratios).
    events_control, total_control : float or None
        Two-arm binary outcomes: the control arm's events and total.
    mean, sd, mean_control, sd_control : float or None
        Two-arm continuous outcomes (``total`` and ``total_control`` are the arm sizes).
    effect, yi : float or None
        A reported effect as reported, and on the pooled scale (its log for a ratio).
    file, row : provenance of the outcome row.
    reason : str or None
        Why it was left out (None when taken).
    excluded_by : str or None
        The rule codes of the errors that keep it out (comma-separated), when an error does; None
        when it was left out by the analysis's own selection (or taken).
    """

    study_id: str
    cohort: str
    label: str
    group: str | None = None
    events: float | None = None
    total: float | None = None
    median: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    se: float | None = None
    file: str | None = None
    sheet: str | None = None
    row: int | None = None
    reason: str | None = None
    note: str | None = None
    excluded_by: str | None = None
    events_control: float | None = None
    total_control: float | None = None
    mean: float | None = None
    sd: float | None = None
    mean_control: float | None = None
    sd_control: float | None = None
    effect: float | None = None
    yi: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, float) and math.isnan(v):
                v = None
            if isinstance(v, (np.floating, np.integer)):
                v = v.item()
            if isinstance(v, float) and v.is_integer() and k in ("events", "total", "row", "events_control",
                                                                  "total_control"):
                v = int(v)
            out[k] = v
        return out


@dataclass(frozen=True)
class Analysis:
    """One pooled estimate with what it took and left out.

    Attributes
    ----------
    id : str
        Unique within a run (``dcr``, ``dcr_by_grade``, ``dcr_by_grade:G3``, ``dcr@PFT-REML``).
    outcome : str
        ``orr``, ``dcr``, ``pfs``, ``os`` or ``ae:TERM``.
    label : str
        What a reader sees.
    kind : {"proportion", "median"}
    role : {"primary", "subgroup", "subgroup_test", "sensitivity"}
    settings : PoolSettings
    subgroup : str or None
        The subgroup name in the schema (``grade``, ``site``) for subgroup analyses.
    group : str or None
        The subgroup label of a ``subgroup`` entry.
    parent : str or None
        The analysis a subgroup or sensitivity entry belongs to.
    taken, left_out : tuple of StudyRow
    result : PoolResult or None
        None when nothing could be pooled (the reason is in ``notes``).
    notes : tuple of str
    """

    id: str
    outcome: str
    label: str
    kind: str
    role: str
    settings: PoolSettings
    subgroup: str | None
    group: str | None
    parent: str | None
    taken: tuple[StudyRow, ...]
    left_out: tuple[StudyRow, ...]
    result: PoolResult | None
    notes: tuple[str, ...] = ()
    subgroup_field: str | None = None
    unit: str | None = None
    effect_label: str | None = None
    favours: tuple[str, str] | None = None
    ratio: bool = False

    @property
    def k(self) -> int:
        return len(self.taken)

    @property
    def measure(self) -> str:
        """The measure as metafor's escalc code (``GEN`` for medians and reported effects)."""
        s = self.settings
        if self.kind in ("median", "reported_effect"):
            return "GEN"
        if self.kind == "proportion" and s.method == "GLMM":
            return "PLO"
        return s.measure

    @property
    def null_value(self) -> float | None:
        """The line of no effect of a two-arm analysis: 1 for a ratio, 0 for a difference."""
        if self.kind in ("binary", "continuous", "reported_effect"):
            return 1.0 if self.ratio else 0.0
        return None

    def to_dict(self) -> dict[str, Any]:
        """The entry of ``analysis.json``: settings, rows, and the PoolResult fields at top level."""
        s = self.settings
        out: dict[str, Any] = {
            "id": self.id, "outcome": self.outcome, "label": self.label, "kind": self.kind, "role": self.role,
            "measure": self.measure, "method": s.method,
            "scale": ("log" if self.ratio else "natural") if self.kind in TWO_ARM_KINDS else None,
            "unit": self.unit, "effect_label": self.effect_label,
            "favours": list(self.favours) if self.favours else None, "null_value": self.null_value, "hk": s.hk, "level": s.level, "subgroup": self.subgroup_field,
            "subgroup_name": self.subgroup, "group": self.group, "parent": self.parent, "k": self.k,
            "studies_taken": [r.to_dict() for r in self.taken],
            "studies_left_out": [r.to_dict() for r in self.left_out],
            "notes": list(self.notes),
        }
        if self.result is not None:
            res = self.result.to_dict()
            res.pop("subgroups", None)
            for key in ("events", "totals", "sei", "yi", "vi", "labels"):
                res.pop(key, None)
            res.pop("k", None)
            res.pop("data", None)
            res.pop("measure", None)
            res.pop("scale", None)
            res.pop("method", None)
            res.pop("hk", None)
            res.pop("level", None)
            res["notes"] = list(self.notes) + [n for n in res.get("notes", []) if n not in self.notes]
            out.update(res)
        return out


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------


def _label(row: pd.Series, overall: str) -> str:
    author = row.get("first_author")
    year = row.get("year")
    base = str(row.get("study_id"))
    if isinstance(author, str) and author:
        base = f"{author} {int(year)}" if year is not None and not pd.isna(year) else author
    cohort = row.get("cohort_label")
    if isinstance(cohort, str) and _fold(cohort) != _fold(overall):
        base = f"{base} ({cohort})"
    return base


def _events(frame: pd.DataFrame, oc: OutcomeSpec) -> pd.Series:
    """Events: the sum of the counts the outcome is made of (CR+PR), else the count reported as a whole
    (the n of an 'ORR, n (%)' cell, ``reported_events``)."""
    names = [oc.events] if isinstance(oc.events, str) else list(oc.events)
    missing = [n for n in names if n not in frame]
    events = (pd.Series(np.nan, index=frame.index) if missing else
              frame[names].astype(float).sum(axis=1, min_count=len(names)))
    reported = getattr(oc, "reported_events", None)
    if reported and reported in frame:
        events = events.where(events.notna(), frame[reported].astype(float))
    return events


def has_data(frame: pd.DataFrame, oc: OutcomeSpec) -> np.ndarray:
    """Rows that report something of the outcome (one of its data fields, or a value not reached):
    the others were never candidates for its analyses and are not listed as left out (an arm row
    for an analysis of a hazard ratio reported on the trial's overall row, a cohort that reports
    no response for a response rate)."""
    out = np.zeros(len(frame), dtype=bool)
    for name in data_fields(oc):
        if name in frame:
            out |= frame[name].notna().to_numpy(dtype=bool)
        nr = f"{name}_nr"
        if nr in frame:
            out |= frame[nr].fillna(False).astype(bool).to_numpy(dtype=bool)
    return out


def _candidate_rows(schema: ReviewSchema, frame: pd.DataFrame, oc: OutcomeSpec) -> tuple[pd.DataFrame, list[StudyRow]]:
    """Rows with usable data for the outcome, and the rows left out for missing data (a row that
    reports none of the outcome's fields was never a candidate: it is not listed)."""
    overall = schema.analysis.overall_cohort
    cohort_field = schema.analysis.cohort_field
    f = frame[has_data(frame, oc)].copy()
    f["cohort_label"] = f[cohort_field] if cohort_field in f else overall
    f["_label"] = [_label(r, overall) for r in _records(f)] if len(f) else []
    left: list[StudyRow] = []
    if oc.kind in ("proportion", "adverse_event"):
        f["_events"] = _events(f, oc)
        f["_total"] = f[oc.total].astype(float) if oc.total in f else np.nan
        bad = f["_events"].isna() | f["_total"].isna() | ~(f["_total"] > 0)
        bad = bad.to_numpy(dtype=bool)
        for r in _records(f[bad]):
            missing = "events" if pd.isna(r["_events"]) else oc.total
            left.append(_row(r, reason=f"no {missing} reported"))
        f = f[~bad]
        over = (f["_events"] > f["_total"]).to_numpy(dtype=bool)
        for r in _records(f[over]):
            left.append(_row(r, reason=f"events {r['_events']:g} exceed {oc.total} {r['_total']:g}"))
        f = f[~over]
    else:
        _, factor = outcome_unit(schema, oc)
        med = f[oc.median].astype(float) / factor
        lo = f[oc.low].astype(float) / factor
        hi = f[oc.high].astype(float) / factor
        med_nr = f.get(f"{oc.median}_nr", pd.Series(False, index=f.index)).astype(bool)
        hi_nr = f.get(f"{oc.high}_nr", pd.Series(False, index=f.index)).astype(bool)
        se = pd.Series(np.nan, index=f.index)
        both = ~hi.isna() & ~lo.isna() & (hi > lo)
        se[both] = (hi[both] - lo[both]) / (2 * Z975)
        upper_nr = hi_nr & ~lo.isna() & ~med.isna() & (med > lo)
        se[upper_nr] = (med[upper_nr] - lo[upper_nr]) / Z975
        f["_median"], f["_low"], f["_high"], f["_se"], f["_upper_nr"] = med, lo, hi, se, upper_nr
        reasons = pd.Series("", index=f.index)
        reasons[med_nr] = "median not reached"
        reasons[(reasons == "") & med.isna()] = "no median reported"
        reasons[(reasons == "") & lo.isna()] = "no 95% CI, so no standard error"
        reasons[(reasons == "") & se.isna()] = "CI unusable for a standard error"
        bad = (reasons != "").to_numpy(dtype=bool)
        for r, why in zip(_records(f[bad]), reasons[bad]):
            left.append(_row(r, reason=why))
        f = f[~bad]
    return f, left


def outcome_unit(schema: ReviewSchema, oc: OutcomeSpec) -> tuple[str | None, float]:
    """The unit an outcome is shown in, and the factor that turns its clean values into that unit.

    A median whose field has a unit field is held in the clean data in the unit of factor 1 (months
    in the shipped schema); the outcome's ``unit:`` (a term of that vocabulary) shows it in another
    (weeks). Without a unit field, the outcome's ``unit:`` (or the field's) is only its label.
    """
    if oc.kind != "median":
        return oc.unit, 1.0
    sheet = schema.outcome_sheet(oc)
    spec = schema.sheets[sheet].fields.get(oc.median) if sheet in schema.sheets else None
    if spec is not None and spec.unit_field and spec.unit_field in schema.sheets[sheet].fields:
        vocab = schema.vocabulary_of(sheet, spec.unit_field)
        if vocab is not None:
            if oc.unit:
                term = vocab.by_value.get(vocab.canonical(oc.unit) or "")
                if term is not None and term.factor:
                    return term.value, float(term.factor)
            base = next((t.value for t in vocab.terms if t.factor == 1), None)
            return base or oc.unit, 1.0
    if oc.unit:
        return oc.unit, 1.0
    if spec is not None and spec.unit and spec.unit not in schema.sheets[sheet].fields:
        return spec.unit, 1.0
    return None, 1.0


_TWO_ARM_COLS = {"binary": ("events", "total"), "continuous": ("mean", "sd", "total")}


def _study_key(schema: ReviewSchema, sheet: str) -> str:
    spec = schema.sheets.get(sheet)
    if spec is not None and spec.parent is not None:
        return spec.parent.key
    return spec.key[0] if spec is not None else "study_id"


def pair_arms(schema: ReviewSchema, frame: pd.DataFrame, oc: OutcomeSpec) -> tuple[pd.DataFrame, list[StudyRow]]:
    """Pair arm rows into one row per comparison (``_i_<field>`` intervention, ``_c_<field>`` control).

    Rows are paired by the outcome's ``arms.pair_by`` fields; a pair needs exactly one row of the
    intervention role and one of the control role. A row of another role, a comparison that lacks an
    arm, or has two rows of one role, is left out with the reason.
    """
    arms = oc.arms
    left: list[StudyRow] = []
    cols = [c for c in (arms.events, arms.total, arms.mean, arms.sd) if c is not None]
    if frame.empty or arms.role_field not in frame or any(k not in frame for k in arms.pair_by):
        return frame.iloc[0:0].assign(**{f"_{p}_{c}": [] for p in "ic" for c in cols}), left
    role = frame[arms.role_field]
    keys = list(arms.pair_by)
    f = frame.copy()
    f["_label"] = [_label(r.drop("cohort_label", errors="ignore"), schema.analysis.overall_cohort)
                   for _, r in f.iterrows()]  # the comparison is added when a study has several
    f["cohort_label"] = [" ".join(str(r[k]) for k in keys[1:] if isinstance(r[k], str)) or None
                         for _, r in f.iterrows()]
    other = ~role.isin([arms.intervention, arms.control])
    silent = other.to_numpy(dtype=bool) & ~has_data(f, oc)  # an overall row: never a candidate
    f, other = f[~silent], other[~silent]
    for _, r in f[other.to_numpy(dtype=bool)].iterrows():
        v = r.get(arms.role_field)
        left.append(_row(r, reason=f"{arms.role_field} {v!r} is neither {arms.intervention!r} nor {arms.control!r}"
                         if isinstance(v, str) else f"{arms.role_field} not reported"))
    f = f[~other.to_numpy(dtype=bool)]
    rows = []
    for _, g in f.groupby(keys, dropna=False, sort=False):
        if not has_data(g, oc).any():  # a comparison that reports none of this outcome: not a candidate
            continue
        iv = g[g[arms.role_field] == arms.intervention]
        ct = g[g[arms.role_field] == arms.control]
        if len(iv) == 1 and len(ct) == 1:
            row = iv.iloc[0].copy()
            for c in cols:
                row[f"_i_{c}"] = iv.iloc[0][c]
                row[f"_c_{c}"] = ct.iloc[0][c]
            row["_control_row"] = ct.iloc[0].get("row")
            rows.append(row)
            continue
        where = ", ".join(f"{k} {g.iloc[0][k]!s}" for k in keys)
        if len(iv) == 0 or len(ct) == 0:
            missing = arms.intervention if len(iv) == 0 else arms.control
            why = f"no {missing!r} arm for {where}, so no comparison"
        else:
            many = arms.intervention if len(iv) > 1 else arms.control
            rws = ", ".join(str(int(x)) for x in g[g[arms.role_field] == many]["row"] if not pd.isna(x))
            why = f"{max(len(iv), len(ct))} {many!r} arms for {where} (rows {rws}): which pair is meant?"
        for _, r in g.iterrows():
            left.append(_row(r, reason=why))
    out = pd.DataFrame(rows) if rows else f.iloc[0:0].assign(**{f"_{p}_{c}": [] for p in "ic" for c in cols})
    return out, left


def _two_arm_rows(schema: ReviewSchema, frame: pd.DataFrame, oc: OutcomeSpec) -> tuple[pd.DataFrame, list[StudyRow]]:
    """Rows of a two-arm outcome with usable data, one per comparison, and the rows left out (why)."""
    left: list[StudyRow] = []
    cohort_field = schema.analysis.cohort_field
    if oc.arms is not None:
        f, left = pair_arms(schema, frame, oc)
        names = {"_e1": "_i_" + str(oc.arms.events), "_n1": "_i_" + str(oc.arms.total),
                 "_e2": "_c_" + str(oc.arms.events), "_n2": "_c_" + str(oc.arms.total),
                 "_m1": "_i_" + str(oc.arms.mean), "_s1": "_i_" + str(oc.arms.sd),
                 "_m2": "_c_" + str(oc.arms.mean), "_s2": "_c_" + str(oc.arms.sd)}
        labels = {"_e1": f"{oc.arms.intervention} {oc.arms.events}", "_n1": f"{oc.arms.intervention} {oc.arms.total}",
                  "_e2": f"{oc.arms.control} {oc.arms.events}", "_n2": f"{oc.arms.control} {oc.arms.total}",
                  "_m1": f"{oc.arms.intervention} {oc.arms.mean}", "_s1": f"{oc.arms.intervention} {oc.arms.sd}",
                  "_m2": f"{oc.arms.control} {oc.arms.mean}", "_s2": f"{oc.arms.control} {oc.arms.sd}"}
    else:
        f = frame[has_data(frame, oc)].copy()  # a row reporting none of the outcome: never a candidate
        f["_label"] = [_label(r.drop("cohort_label", errors="ignore"), schema.analysis.overall_cohort)
                       for _, r in f.iterrows()] if len(f) else []  # the comparison is added when a study has several
        f["cohort_label"] = f[cohort_field] if cohort_field in f else None
        names, labels = {}, {}
        if oc.kind == "binary":
            names = {"_e1": oc.events[0], "_e2": oc.events[1], "_n1": oc.totals[0], "_n2": oc.totals[1]}
        elif oc.kind == "continuous":
            names = {"_m1": oc.means[0], "_m2": oc.means[1], "_s1": oc.sds[0], "_s2": oc.sds[1],
                     "_n1": oc.totals[0], "_n2": oc.totals[1]}
        else:
            names = {"_eff": oc.effect, "_lo": oc.low, "_hi": oc.high}
        labels = dict(names)
    need = {"binary": ("_e1", "_n1", "_e2", "_n2"), "continuous": ("_m1", "_s1", "_n1", "_m2", "_s2", "_n2"),
            "reported_effect": ("_eff", "_lo", "_hi")}[oc.kind]
    for col in need:
        src = names[col]
        f[col] = pd.to_numeric(f[src], errors="coerce").astype(float) if src in f else np.nan
    reasons = pd.Series("", index=f.index, dtype=object)

    def leave(mask, text):
        mask = np.asarray(mask, dtype=bool) & (reasons == "").to_numpy(dtype=bool)
        for idx in f.index[mask]:
            reasons[idx] = text(f.loc[idx]) if callable(text) else text

    for col in need:
        leave(f[col].isna(), f"no {labels[col]} reported")
    if oc.kind in ("binary", "continuous"):
        for col in ("_n1", "_n2"):
            leave(~(f[col] > 0), lambda r, c=col: f"{labels[c]} is {r[c]:g}: an arm needs patients")
    if oc.kind == "binary":
        for e, n in (("_e1", "_n1"), ("_e2", "_n2")):
            leave(f[e] < 0, lambda r, e=e: f"{labels[e]} is negative")
            leave(f[e] > f[n], lambda r, e=e, n=n: f"{labels[e]} {r[e]:g} exceed {labels[n]} {r[n]:g}")
        f["_total"] = f["_n1"] + f["_n2"] if len(f) else np.nan
    elif oc.kind == "continuous":
        for c in ("_s1", "_s2"):
            leave(~(f[c] > 0), lambda r, c=c: f"{labels[c]} is {r[c]:g}: a standard deviation must be above 0")
        f["_total"] = f["_n1"] + f["_n2"] if len(f) else np.nan
    else:
        ratio = oc.scale == "ratio"
        if ratio:
            for c in ("_eff", "_lo", "_hi"):
                leave(~(f[c] > 0), lambda r, c=c: f"{labels[c]} is {r[c]:g}: a ratio must be above 0")
        leave(~(f["_hi"] > f["_lo"]), lambda r: f"CI {r['_lo']:g} to {r['_hi']:g} is unusable for a standard error")
        with np.errstate(divide="ignore", invalid="ignore"):
            if ratio:
                f["_yi"] = np.log(f["_eff"].where(f["_eff"] > 0))
                f["_se"] = (np.log(f["_hi"].where(f["_hi"] > 0)) - np.log(f["_lo"].where(f["_lo"] > 0))) / (2 * Z975)
            else:
                f["_yi"] = f["_eff"]
                f["_se"] = (f["_hi"] - f["_lo"]) / (2 * Z975)
        f["_total"] = -f["_se"]  # the most precise when one comparison per study must be chosen
    bad = (reasons != "").to_numpy(dtype=bool)
    for idx in f.index[bad]:
        left.append(_row(f.loc[idx], reason=reasons[idx]))
    return f[~bad], left


@lru_cache(maxsize=65_536)
def _fold(text: str) -> str:
    """:func:`~curation.schema.fold`, remembered: a few cohort and group labels, folded per row."""
    return fold(text)


_ROW_COLUMNS = ("study_id", "cohort_label", "_label", "_events", "_total", "_median", "_low", "_high", "_se",
                "_upper_nr", "_group", "file", "sheet", "row", "first_author", "year")


def _records(frame: pd.DataFrame, *extra: str) -> list[dict[str, Any]]:
    """The rows of a frame as dicts of the columns a StudyRow needs (and ``extra``), in one pass
    (``iterrows`` builds a Series per row)."""
    if not len(frame):
        return []
    cols = [c for c in dict.fromkeys((*_ROW_COLUMNS, *extra)) if c in frame.columns]
    return frame[cols].to_dict("records")


def _row(r: dict[str, Any] | pd.Series, *, reason: str | None = None, group: str | None = None, note: str | None = None) -> StudyRow:
    def num(key):
        v = r.get(key)
        return None if v is None or pd.isna(v) else float(v)

    values = dict(
        study_id=str(r.get("study_id")), cohort=_text(r.get("cohort_label")), label=str(r.get("_label")),
        group=group, events=num("_events"), total=num("_total"), median=num("_median"), ci_low=num("_low"),
        ci_high=num("_high"), se=num("_se"), file=r.get("file"), sheet=r.get("sheet"),
        row=int(r["row"]) if "row" in r and not pd.isna(r["row"]) else None, reason=reason, note=note)
    values.update(_two_arm_values(r, num))
    return StudyRow(**values)


def _text(v: Any) -> str:
    """A label as text; ``""`` for a missing one (never ``"None"`` or ``"nan"``)."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)


def _two_arm_values(r: pd.Series, num) -> dict[str, Any]:
    if "_n2" not in r and "_eff" not in r:
        return {}
    out: dict[str, Any] = {"total_control": num("_n2")}
    if "_e1" in r:
        out.update(events=num("_e1"), total=num("_n1"), events_control=num("_e2"))
    if "_m1" in r:
        out.update(mean=num("_m1"), sd=num("_s1"), total=num("_n1"), mean_control=num("_m2"), sd_control=num("_s2"))
    if "_eff" in r:
        out = {"effect": num("_eff"), "ci_low": num("_lo"), "ci_high": num("_hi"), "se": num("_se"), "yi": num("_yi"),
               "total": None}
    return out


def _one_per_study(f: pd.DataFrame, overall: str, size: str) -> tuple[pd.DataFrame, list[tuple[pd.Series, str]]]:
    """Keep one row per study (and group): overall cohort first, then the exact group label, then the largest."""
    if f.empty:
        return f, []
    exact = [isinstance(c, str) and g is not None and not (isinstance(g, float) and math.isnan(g))
             and _fold(c) == _fold(g) for c, g in zip(f["cohort_label"], f["_group"])] if "_group" in f else False
    f = f.assign(
        _is_overall=f["cohort_label"].map(lambda c: isinstance(c, str) and _fold(c) == _fold(overall)),
        _exact=exact,
        _size=f[size] if size in f else 0.0,
    )
    keys = ["study_id", "_group"] if "_group" in f else ["study_id"]
    f = f.sort_values(keys + ["_is_overall", "_exact", "_size"], ascending=[True] * len(keys) + [False, False, False],
                      kind="stable")
    keep = ~f.duplicated(subset=keys, keep="first")
    dropped = []
    kept_by_key = {tuple(r[k] for k in keys): r for r in _records(f[keep])}
    for r in _records(f[~keep]):
        other = kept_by_key[tuple(r[k] for k in keys)]
        dropped.append((r, f"{r['study_id']} already contributes its {other['cohort_label']!s} cohort"
                           + (f" to {r['_group']}" if "_group" in f and r["_group"] is not None else "")
                           + " (no patient counted twice)"))
    return f[keep].sort_index(), dropped


def _assign_groups(schema: ReviewSchema, f: pd.DataFrame, subgroup: SubgroupSpec) -> tuple[pd.DataFrame, list[StudyRow]]:
    """Each row's subgroup (``_group``); rows in none are left out with the reason.

    Groups come from the schema's vocabulary only: a value that is not a term of the field's
    vocabulary (an unknown or rejected label that reached the data) is in no group.
    """
    left: list[StudyRow] = []
    values = f[subgroup.field] if subgroup.field in f else pd.Series(None, index=f.index, dtype=object)
    groups = subgroup.groups or {}
    lookup = {v: g for g, vs in groups.items() for v in vs}
    vocab = None
    for sheet in (schema.analysis_sheet, schema.root_sheet, *schema.sheets):
        spec = schema.sheets[sheet].fields.get(subgroup.field)
        if spec is not None:
            vocab = schema.vocabularies.get(spec.vocabulary) if spec.vocabulary else None
            break
    terms = set(vocab.values) if vocab is not None else None

    def group_of(v):
        if not isinstance(v, str) or v in subgroup.exclude or (terms is not None and v not in terms):
            return None
        return lookup.get(v, v) if groups else v

    f = f.assign(_group=values.map(group_of))
    none = f["_group"].isna().to_numpy(dtype=bool)
    for _, r in f[none].iterrows():
        v = r.get(subgroup.field)
        why = (f"{subgroup.field} not reported" if not isinstance(v, str) else
               f"{subgroup.field} {v!r} is not a single category" if v in subgroup.exclude else
               f"{subgroup.field} {v!r} is not a term of the schema's vocabulary" if terms is not None and v not in terms
               else f"{subgroup.field} {v!r} is in no group of this analysis")
        left.append(_row(r, reason=why))
    return f[~none], left


def _select_two_arm(schema: ReviewSchema, frame: pd.DataFrame, oc: OutcomeSpec,
                    subgroup: SubgroupSpec | None) -> tuple[list[StudyRow], list[StudyRow], list[str]]:
    """Two-arm outcomes: one comparison per study (the largest; no patient counted twice)."""
    f, left = _two_arm_rows(schema, frame, oc)
    key = _study_key(schema, schema.outcome_sheet(oc))
    if key != "study_id" and key in f:
        f = f.assign(study_id=f[key])
    if "study_id" not in f:
        f = f.assign(study_id=None)
    if subgroup is not None:
        f, more = _assign_groups(schema, f, subgroup)
        left.extend(more)
    notes: list[str] = []
    if f.empty:
        return [], left, notes
    many = f["study_id"].map(f["study_id"].value_counts()) > 1
    f = f.assign(_label=[f"{lab} ({c})" if m and isinstance(c, str) and c else lab
                         for lab, c, m in zip(f["_label"], f["cohort_label"], many)])
    order = f.sort_values(["study_id", "_total"], ascending=[True, False], kind="stable")
    keep = ~order.duplicated(subset=["study_id"], keep="first")
    kept = {r["study_id"]: r for _, r in order[keep].iterrows()}
    for _, r in order[~keep].iterrows():
        other = kept[r["study_id"]]
        left.append(_row(r, group=r.get("_group"),
                         reason=f"{r['study_id']} already contributes its comparison "
                                f"{other.get('cohort_label') or 'row ' + str(other.get('row'))} (no patient counted twice)"))
    taken = [_row(r, group=r.get("_group")) for _, r in f.loc[order[keep].index].sort_index().iterrows()]
    return taken, left, notes


def select(schema: ReviewSchema, frame: pd.DataFrame, outcome: OutcomeSpec,
           subgroup: SubgroupSpec | None = None) -> tuple[list[StudyRow], list[StudyRow], list[str]]:
    """Which rows an analysis takes and which it leaves out (and why).

    Parameters
    ----------
    schema : ReviewSchema
    frame : DataFrame
        The clean dataset (outcome rows, study fields joined), or the clean adverse-event rows
        of one term.
    outcome : OutcomeSpec
    subgroup : SubgroupSpec, optional

    Returns
    -------
    taken, left_out : list of StudyRow
    notes : list of str
    """
    if outcome.kind in TWO_ARM_KINDS:
        return _select_two_arm(schema, frame, outcome, subgroup)
    overall = schema.analysis.overall_cohort
    f, left = _candidate_rows(schema, frame, outcome)
    size = "_total" if outcome.kind != "median" else "_se"
    notes: list[str] = []
    if outcome.kind == "adverse_event":
        pass  # one row per study and term by the sheet's key
    elif subgroup is None:
        is_overall = np.array([isinstance(c, str) and _fold(c) == _fold(overall) for c in f["cohort_label"]],
                              dtype=bool)
        for r in _records(f[~is_overall]):
            left.append(_row(r, reason=f"subgroup cohort; the overall analysis takes each study's {overall!r} cohort"))
        f = f[is_overall]
    else:
        f, more = _assign_groups(schema, f, subgroup)
        left.extend(more)
    if outcome.kind == "median":
        f = f.assign(_size_key=-f["_se"])  # prefer the most precise when no cohort is preferred
        size = "_size_key"
    f, dropped = _one_per_study(f, overall, size)
    for r, why in dropped:
        left.append(_row(r, reason=why, group=r.get("_group")))
    taken = []
    for r in _records(f):
        note = None
        if outcome.kind == "median" and bool(r.get("_upper_nr")):
            note = (f"{r['study_id']}: upper CI bound not reached; se = (median - lower) / {Z975} "
                    "assumes a symmetric interval")
            notes.append(note)
        taken.append(_row(r, group=r.get("_group") if "_group" in r else None, note=note))
    return taken, left, notes


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------


def _pool(kind: str, taken: Sequence[StudyRow], settings: PoolSettings, labels: Sequence[str] | None = None,
          *, ratio: bool = False):
    """Pool the rows an analysis took (pooling.md: proportions, medians, two-arm and reported effects)."""
    common = dict(method=settings.method, hk=settings.hk, level=settings.level, subgroups=labels)
    if kind == "median":
        return pool_generic([r.median for r in taken], [r.se for r in taken], **common)
    if kind == "binary":
        try:
            from .pool import pool_binary
        except ImportError:  # pooling.md v2 not in this curation.pool: reported as not pooled, never a crash
            raise ValueError("two-arm pooling (pool_binary) is not available in curation.pool") from None

        return pool_binary([r.events for r in taken], [r.total for r in taken], [r.events_control for r in taken],
                           [r.total_control for r in taken], measure=settings.measure, **common)
    if kind == "continuous":
        try:
            from .pool import pool_continuous
        except ImportError:  # pooling.md v2 not in this curation.pool: reported as not pooled, never a crash
            raise ValueError("two-arm pooling (pool_continuous) is not available in curation.pool") from None

        return pool_continuous([r.mean for r in taken], [r.sd for r in taken], [r.total for r in taken],
                               [r.mean_control for r in taken], [r.sd_control for r in taken],
                               [r.total_control for r in taken], measure=settings.measure, **common)
    if kind == "reported_effect":
        if not ratio:
            return pool_generic([r.yi for r in taken], [r.se for r in taken], **common)
        try:
            return pool_generic([r.yi for r in taken], [r.se for r in taken], back_transform="exp", **common)
        except TypeError as exc:  # pooling.md v2 not in this curation.pool: not pooled, never a crash
            if "back_transform" not in str(exc):
                raise
            raise ValueError("ratios (pool_generic back_transform='exp') are not available in curation.pool") from None
    return pool_proportions([r.events for r in taken], [r.total for r in taken], measure=settings.measure, **common)


def pool_rows(analysis: "Analysis", rows: Sequence[StudyRow], settings: PoolSettings | None = None):
    """Pool ``rows`` as ``analysis`` pools its own (its kind, scale and settings)."""
    return _pool(analysis.kind, rows, settings or analysis.settings, ratio=analysis.ratio)


# ---------------------------------------------------------------------------------------------
# What a reader sees: estimates in the outcome's own terms
# ---------------------------------------------------------------------------------------------

_EFFECT_NAMES = {"OR": "OR", "RR": "RR", "RD": "RD", "MD": "MD", "SMD": "SMD", "ROM": "ratio of means"}


def _num_text(v: float | None, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NA"
    return f"{v:.{digits}f}"


def value_text(v: float | None, a: "Analysis | str") -> str:
    """One figure in the outcome's terms: ``84.1%``, ``28.9 months``, ``12.0 weeks``, ``RR 0.49``."""
    if isinstance(a, str):  # a kind only: the one-arm defaults
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "NA"
        return f"{100 * v:.1f}%" if a == "proportion" else f"{v:.1f} months"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NA"
    if a.kind == "proportion":
        return f"{100 * v:.1f}%"
    if a.kind == "median":
        return f"{v:.1f}" + (f" {a.unit}" if a.unit else "")
    unit = f" {a.unit}" if a.unit and not a.ratio and a.measure not in ("SMD", "RD") else ""
    return f"{a.effect_label} {v:.2f}{unit}"


def study_data_text(r: StudyRow, kind: str) -> str:
    """A two-arm row's data as a table shows it: ``4/123 vs 11/139``, ``32.1 (15.2), n 40 vs ...``, ``0.72 (0.51-1.02)``."""
    def g(v):
        return "NA" if v is None else f"{v:g}"

    if kind == "binary":
        return f"{g(r.events)}/{g(r.total)} vs {g(r.events_control)}/{g(r.total_control)}"
    if kind == "continuous":
        return (f"{g(r.mean)} ({g(r.sd)}), n {g(r.total)} vs {g(r.mean_control)} ({g(r.sd_control)}), "
                f"n {g(r.total_control)}")
    return f"{g(r.effect)} ({g(r.ci_low)}-{g(r.ci_high)})"


def estimate_text(a: "Analysis", estimate: float | None, low: float | None, high: float | None,
                  k: int | None = None) -> str:
    """``RR 0.49 (0.34-0.70; k = 13)``, ``27.5% (20.1-35.2%)``, ``12.0 weeks (10.1-14.2)``."""
    if estimate is None or (isinstance(estimate, float) and math.isnan(estimate)):
        return "not estimable"
    kk = "" if k is None else f"; k = {k}"
    if a.kind == "proportion":
        return f"{100 * estimate:.1f}% ({_num_text(None if low is None else 100 * low, 1)}-" \
               f"{_num_text(None if high is None else 100 * high, 1)}{kk})"
    digits = 1 if a.kind == "median" else 2
    sep = " to " if (low is not None and low < 0) or (high is not None and high < 0) else "-"
    return f"{value_text(estimate, a)} ({_num_text(low, digits)}{sep}{_num_text(high, digits)}{kk})"


def outcome_frame(schema: ReviewSchema, clean: dict[str, pd.DataFrame], outcome: str) -> tuple[str, OutcomeSpec, pd.DataFrame, str | None]:
    """The outcome's spec and the clean rows it pools from (``ae:TERM`` picks one term)."""
    name, _, term = outcome.partition(":")
    if name not in schema.analysis.outcomes:
        raise KeyError(f"unknown outcome {outcome!r} (the schema's: {', '.join(schema.analysis.outcomes)})")
    oc = schema.analysis.outcomes[name]
    if oc.kind in TWO_ARM_KINDS or oc.kind in ("median", "proportion") and oc.sheet:
        # a per-arm proportion (``sheet: arms``) reads its own sheet, one row per arm
        sheet = schema.outcome_sheet(oc)
        return name, oc, _with_study_id(schema, sheet, clean.get(sheet, pd.DataFrame())), None
    if oc.kind == "adverse_event":
        frame = clean.get(oc.sheet, pd.DataFrame())
        if term:
            vocab_field = schema.sheets[oc.sheet].fields.get(oc.term)
            vocab = schema.vocabularies.get(vocab_field.vocabulary) if vocab_field and vocab_field.vocabulary else None
            canonical = vocab.canonical(term) if vocab else term
            term = canonical or term
            frame = frame[frame[oc.term] == term] if oc.term in frame else frame.iloc[0:0]
        return name, oc, _with_study_id(schema, oc.sheet, frame), term or None
    sheet = schema.analysis_sheet
    return name, oc, _with_study_id(schema, sheet, clean.get(sheet, pd.DataFrame())), None


def _with_study_id(schema: ReviewSchema, sheet: str | None, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with a ``study_id`` column: a schema whose study key has another name (``trial_id``,
    ``review_id``) has it copied, so that one study is one study whatever the key is called."""
    key = _study_key(schema, sheet) if sheet else "study_id"
    if "study_id" in frame.columns or key not in frame.columns:
        return frame
    return frame.assign(study_id=frame[key])


def eligible_mask(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The ``in_<analysis>`` column as booleans (True where absent: a clean dataset written before
    the column existed takes every row; ``True``/``False`` text as a CSV holds it)."""
    if column not in frame:
        return np.ones(len(frame), dtype=bool)
    col = frame[column]
    if col.dtype == bool:
        return col.to_numpy(dtype=bool)
    return np.array([v is True or (isinstance(v, (bool, np.bool_)) and bool(v)) or
                     (isinstance(v, str) and v.strip().lower() in ("true", "1")) or
                     (isinstance(v, (int, float, np.integer, np.floating)) and v == 1) for v in col], dtype=bool)


def split_eligible(schema: ReviewSchema, frame: pd.DataFrame, outcome: str, subgroup: str | None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows an analysis may take (its ``in_<key>`` column True) and those errors keep out."""
    key = use_for(schema, outcome, subgroup).key
    column = "in_" + key
    if column not in frame and subgroup:  # not a planned analysis (a clean CSV): every column of the outcome
        ok = np.ones(len(frame), dtype=bool)
        for c in frame.columns:
            if c == "in_" + outcome or str(c).startswith(f"in_{outcome}_by_"):
                ok &= eligible_mask(frame, c)
        return frame[ok], frame[~ok]
    ok = eligible_mask(frame, column)
    return frame[ok], frame[~ok]


def _with_exclusions(schema: ReviewSchema, oc: OutcomeSpec, sg: SubgroupSpec | None, left: list[StudyRow],
                     kept_out: pd.DataFrame, reasons: dict) -> list[StudyRow]:
    """The rows left out, with those an error keeps out that the analysis would otherwise consider
    (a row reporting none of the outcome, an arm row of another role without data, a subgroup cohort
    for an overall analysis: never candidates, not listed). An arm whose partner an error keeps out
    says so instead of "no control arm"."""
    if kept_out.empty:
        return left
    overall = schema.analysis.overall_cohort
    sheet = schema.outcome_sheet(oc) if oc.kind != "adverse_event" else (oc.sheet or schema.analysis_sheet)
    key = _study_key(schema, sheet)
    f = kept_out[has_data(kept_out, oc)]
    if key in f and key != "study_id":
        f = f.assign(study_id=f[key])
    if "study_id" not in f:
        f = f.assign(study_id=None)
    if oc.arms is not None:
        arms = oc.arms
        f = f.assign(cohort_label=[" ".join(str(r.get(k)) for k in arms.pair_by[1:] if isinstance(r.get(k), str))
                                   or None for r in f.to_dict("records")])
    else:
        cohort_field = schema.analysis.cohort_field
        f = f.assign(cohort_label=f[cohort_field] if cohort_field in f else overall)
        if oc.kind in ("proportion", "median") and sg is None:  # the overall analysis takes overall cohorts only
            f = f[[isinstance(c, str) and _fold(c) == _fold(overall) for c in f["cohort_label"]]]
    if sg is not None:  # a row in no group (not reported, or a category the analysis excludes): no candidate
        values = f[sg.field] if sg.field in f else pd.Series(None, index=f.index, dtype=object)
        f = f[[isinstance(v, str) and v not in sg.exclude for v in values]]
    out = list(left)
    gone: dict[tuple[str, str | None], list[tuple[Any, str]]] = {}
    for r in f.to_dict("records"):
        row = r.get("row")
        why, rules = reasons.get((r.get("file"), r.get("sheet"), None if row is None or pd.isna(row) else int(row)),
                                 ("excluded by an error in a field this analysis uses (see the findings)", "error"))
        r["_label"] = _label(pd.Series(r).drop(labels=["cohort_label"], errors="ignore"), overall)
        if oc.arms is not None:
            gone.setdefault((str(r.get("study_id")), r.get("cohort_label")), []).append(
                (r.get(oc.arms.role_field), row, why, rules))
        from dataclasses import replace

        out.append(replace(_row(r, reason=why, group=_group_of(sg, r)), excluded_by=rules))
    if gone:  # the partner of an arm an error keeps out
        for i, x in enumerate(out[:len(left)]):
            for role, row, why, rules in gone.get((x.study_id, x.cohort if x.cohort != "None" else None), []):
                if x.reason and x.reason.startswith(f"no {role!r} arm"):
                    rtext = "" if row is None or pd.isna(row) else f" (row {int(row)})"
                    out[i] = _replace_reason(x, f"its {role!r} arm{rtext} is kept out, so no comparison: {why}", rules)
    return out


def _replace_reason(r: StudyRow, reason: str, rules: str | None = None) -> StudyRow:
    from dataclasses import replace

    return replace(r, reason=reason, excluded_by=rules)


def _group_of(sg: SubgroupSpec | None, r: dict[str, Any]) -> str | None:
    if sg is None:
        return None
    v = r.get(sg.field)
    if not isinstance(v, str):
        return None
    return {x: g for g, xs in (sg.groups or {}).items() for x in xs}.get(v, v) if sg.groups else v


def run_analysis(schema: ReviewSchema, clean: dict[str, pd.DataFrame], outcome: str, *,
                 settings: PoolSettings | None = None, subgroup: str | None = None,
                 sensitivity: bool = True, id: str | None = None,
                 excluded: Any = None) -> list[Analysis]:
    """One analysis of the plan: the primary estimate (and subgroups), plus sensitivity entries.

    Parameters
    ----------
    schema : ReviewSchema
    clean : dict of DataFrame
        The clean datasets by sheet (``ValidationResult.clean_tables``).
    outcome : str
        ``orr``, ``dcr``, ``pfs``, ``os`` or ``ae:TERM``.
    settings : PoolSettings, optional
        Measure, method, Knapp-Hartung and level (default: the schema's defaults).
    subgroup : str, optional
        A subgroup of the schema (``grade``, ``site``) or the field it uses (``primary_site``).
    sensitivity : bool
        Add the schema's sensitivity settings as entries of their own.
    excluded : mapping, optional
        Why rows are kept out: ``{analysis key: {(file, sheet, row): reason}}``
        (:meth:`curation.selection.Selection.reason_map`). The rows an analysis may not enter are
        those whose ``in_<key>`` column is False (``key``: ``orr``, ``dcr_by_grade``, ``ae``);
        each one that the analysis would otherwise consider is listed as left out with its reason.

    Returns
    -------
    list of Analysis
        The primary entry first (for a subgroup analysis, the test for subgroup differences,
        then one entry per subgroup), then the sensitivity entries.
    """
    name, oc, frame, term = outcome_frame(schema, clean, outcome)
    settings = settings or schema.settings_for(oc)
    sg_name, sg = _subgroup(schema, subgroup)
    kind = oc.kind if oc.kind in ("median", *TWO_ARM_KINDS) else "proportion"
    if kind == "median":
        settings = PoolSettings(measure="PLO", method="REML" if settings.method == "GLMM" else settings.method,
                                hk=settings.hk, level=settings.level)
    elif kind in TWO_ARM_KINDS:
        why = method_fits(oc.kind, "GEN" if kind == "reported_effect" else settings.measure, settings.method)
        if why:
            raise ValueError(f"{outcome}: {why}")
        if kind == "reported_effect":
            settings = PoolSettings(measure="GEN", method=settings.method, hk=settings.hk, level=settings.level)
    base_id = id or (f"{name}_{term}" if term else name) + (f"_by_{sg_name}" if sg_name else "")
    label = oc.label + (f": {term}" if term else "") + (f", by {sg.label.lower()}" if sg else "")
    full_outcome = f"{name}:{term}" if term else name
    frame, kept_out = split_eligible(schema, frame, name, sg_name)
    taken, left, notes = select(schema, frame, oc, sg)
    left = _with_exclusions(schema, oc, sg, left, kept_out, (excluded or {}).get(use_for(schema, name, sg_name).key, {}))
    entries: list[Analysis] = []
    common = dict(outcome=full_outcome, kind=kind, subgroup=sg_name, subgroup_field=sg.field if sg else None,
                  **_presentation(schema, oc, settings))
    ratio = common["ratio"]
    if not taken:
        entries.append(Analysis(id=base_id, label=label, role="subgroup_test" if sg else "primary",
                                settings=settings, group=None, parent=None, taken=(), left_out=tuple(left),
                                result=None, notes=tuple(notes) + ("no study could be pooled",), **common))
        return entries
    if sg is None:
        result = _pool(kind, taken, settings, ratio=ratio)
        entries.append(Analysis(id=base_id, label=label, role="primary", settings=settings, group=None, parent=None,
                                taken=tuple(taken), left_out=tuple(left), result=result, notes=tuple(notes), **common))
    else:
        labels = [r.group for r in taken]
        result = _pool(kind, taken, settings, labels, ratio=ratio)
        entries.append(Analysis(id=base_id, label=label, role="subgroup_test", settings=settings, group=None,
                                parent=None, taken=tuple(taken), left_out=tuple(left), result=result,
                                notes=tuple(notes), **common))
        for g, sub in (result.subgroups or {}).items():
            rows = tuple(r for r in taken if r.group == g)
            entries.append(Analysis(id=f"{base_id}:{g}", label=f"{oc.label}{f': {term}' if term else ''}, {g}",
                                    role="subgroup", settings=settings, group=str(g), parent=base_id, taken=rows,
                                    left_out=tuple(r for r in left if r.group == g), result=sub,
                                    notes=tuple(n for n in notes if any(n.startswith(r.study_id + ":") for r in rows)),
                                    **common))
    if sensitivity and sg is None:
        entries.extend(_sensitivity(schema, kind, taken, left, settings, base_id, label, notes, common))
    return entries


def _presentation(schema: ReviewSchema, oc: OutcomeSpec, settings: PoolSettings) -> dict[str, Any]:
    """Unit, effect label, favours labels and scale of an outcome's analyses (from the schema)."""
    unit, _ = outcome_unit(schema, oc)
    if oc.kind == "median" and unit is None:
        unit = None
    ratio = (oc.kind in ("binary", "continuous") and settings.measure in RATIO_MEASURES) or \
        (oc.kind == "reported_effect" and oc.scale == "ratio")
    label = None
    if oc.kind in ("binary", "continuous"):
        label = _EFFECT_NAMES.get(settings.measure, settings.measure)
    elif oc.kind == "reported_effect":
        label = oc.measure_label or ("ratio" if ratio else "difference")
    favours = None
    if oc.kind in TWO_ARM_KINDS:
        if oc.favours is not None:
            favours = (oc.favours.left, oc.favours.right)
        else:
            one, two = ((oc.arms.intervention, oc.arms.control) if oc.arms is not None else ("intervention", "control"))
            lower_better = oc.direction != "higher_is_better"
            favours = (f"favours {one}", f"favours {two}") if lower_better else (f"favours {two}", f"favours {one}")
    return {"unit": unit, "effect_label": label, "favours": favours, "ratio": bool(ratio)}


def _settings_id(s: PoolSettings, kind: str) -> str:
    core = s.method if (kind in ("median", "reported_effect") or s.method == "GLMM") else f"{s.measure}-{s.method}"
    return core + ("-HK" if s.hk else "")


def _sensitivity(schema, kind, taken, left, primary: PoolSettings, base_id, label, notes, common) -> list[Analysis]:
    out = []
    seen = {_settings_id(primary, kind)}
    variants = list(schema.analysis.sensitivity)
    if kind == "median":
        variants = [PoolSettings(method=m, hk=h, level=primary.level) for m, h in
                    (("REML", False), ("DL", False), ("REML", True))]
    elif kind in TWO_ARM_KINDS:
        variants = _two_arm_variants(kind, primary, variants)
    for v in variants:
        s = PoolSettings(measure=v.measure, method=v.method, hk=v.hk, level=primary.level)
        key = _settings_id(s, kind)
        if key in seen:
            continue
        seen.add(key)
        try:
            res = _pool(kind, taken, s, ratio=common.get("ratio", False))
            extra: tuple[str, ...] = ()
        except Exception as exc:  # a fit that metafor would also refuse: shown, not fatal
            res, extra = None, (f"not estimable: {exc}",)
        if kind in TWO_ARM_KINDS:
            common = {**common, **_presentation(schema, schema.analysis.outcomes[common["outcome"].split(":")[0]], s)}
        out.append(Analysis(id=f"{base_id}@{key}", label=f"{label} ({key})", role="sensitivity", settings=s,
                            group=None, parent=base_id, taken=tuple(taken), left_out=tuple(left), result=res,
                            notes=tuple(notes) + extra, **common))
    return out


def _two_arm_variants(kind: str, primary: PoolSettings, listed: Sequence[PoolSettings]) -> list[PoolSettings]:
    """Sensitivity settings that fit a two-arm analysis: the schema's that fit, else REML, DL, HK (and MH, Peto)."""
    measure = "GEN" if kind == "reported_effect" else primary.measure
    out = []
    for v in listed:
        m = v.measure if "measure" in v.model_fields_set else measure
        if kind == "reported_effect":
            m = "GEN"
        if method_fits(kind, m, v.method) is None and not (v.hk and v.method in ("MH", "PETO")):
            out.append(PoolSettings(measure=m, method=v.method, hk=v.hk, level=primary.level))
    if out:
        return out
    base = [("REML", False), ("DL", False), ("REML", True)]
    if kind == "binary":
        base.append(("MH", False))
        if measure == "OR":
            base.append(("PETO", False))
    return [PoolSettings(measure=measure, method=m, hk=h, level=primary.level) for m, h in base]


def _subgroup(schema: ReviewSchema, subgroup: str | None) -> tuple[str | None, SubgroupSpec | None]:
    """A subgroup as the plan or ``--subgroup`` names it (:func:`curation.selection.resolve_subgroup`);
    KeyError naming the choices when it is neither a subgroup nor a field."""
    from .selection import resolve_subgroup

    if subgroup is None:
        return None, None
    name, spec = resolve_subgroup(schema, subgroup)
    if spec is None:
        raise KeyError(f"unknown subgroup {subgroup!r} (the schema's: {', '.join(schema.analysis.subgroups)}; or a "
                       f"field of {schema.analysis_sheet})")
    return name, spec


def ae_terms(schema: ReviewSchema, clean: dict[str, pd.DataFrame], outcome: str) -> list[str]:
    oc = schema.analysis.outcomes[outcome]
    frame = clean.get(oc.sheet, pd.DataFrame())
    if oc.term not in frame:
        return []
    vocab_field = schema.sheets[oc.sheet].fields[oc.term]
    order = list(schema.vocabularies[vocab_field.vocabulary].values) if vocab_field.vocabulary else []
    present = set(frame[oc.term].dropna())
    return [t for t in order if t in present] + sorted(present - set(order))


def run_plan(schema: ReviewSchema, clean: dict[str, pd.DataFrame], excluded: Any = None) -> list[Analysis]:
    """Every analysis of the schema's plan, in plan order (ids unique).

    ``clean``: the clean dataset (or every row, with the ``in_<analysis>`` columns saying which
    analyses each may enter); ``excluded``: why rows are kept out of each analysis (see
    :func:`run_analysis`)."""
    out: list[Analysis] = []
    used: set[str] = set()
    for entry in schema.analysis.plan:
        oc = schema.analysis.outcomes[entry.outcome]
        if oc.kind in ("proportion", "adverse_event", "median"):
            d = schema.analysis.defaults
            settings = PoolSettings(measure=entry.measure or d.measure, method=entry.method or d.method,
                                    hk=d.hk if entry.hk is None else entry.hk, level=d.level)
        else:
            settings = schema.settings_for(oc, entry)
        if oc.kind == "adverse_event" and entry.each_term:
            outcomes = [f"{entry.outcome}:{term}" for term in ae_terms(schema, clean, entry.outcome)]
        else:
            outcomes = [entry.outcome]
        for o in outcomes:
            name, _, term = o.partition(":")
            base = (f"{name}_{term}" if term else name) + (f"_by_{entry.subgroup}" if entry.subgroup else "")
            if base in used:  # the same outcome again with other settings (OR after RR ...)
                base = f"{base}_{_settings_id(settings, oc.kind).lower().replace('-', '_')}"
            used.add(base)
            try:
                out.extend(run_analysis(schema, clean, o, settings=settings, subgroup=entry.subgroup, id=base,
                                        sensitivity=not (oc.kind == "adverse_event" and entry.each_term),
                                        excluded=excluded))
            except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
                # data the estimator cannot use: this analysis is reported as not pooled, the others go on
                msg = f"not pooled: {exc}"
                out.append(Analysis(id=base, outcome=o, label=oc.label + (f": {term}" if term else ""),
                                    kind=oc.kind if oc.kind in ("median", *TWO_ARM_KINDS) else "proportion",
                                    role="subgroup_test" if entry.subgroup else "primary", settings=settings,
                                    subgroup=entry.subgroup, group=None, parent=None, taken=(), left_out=(),
                                    result=None, notes=(msg,)))
    ids = [a.id for a in out]
    assert len(ids) == len(set(ids)), "analysis ids must be unique"
    return out


def sensitivity_table(analyses: Iterable[Analysis], primary: Analysis) -> list[dict[str, Any]]:
    """Rows of the sensitivity table of one primary analysis (itself first)."""
    rows = []
    for a in [primary, *[x for x in analyses if x.parent == primary.id and x.role == "sensitivity"]]:
        r = a.result
        d = r.display() if r is not None else {}
        rows.append({"id": a.id, "setting": _settings_id(a.settings, a.kind), "k": a.k,
                     "estimate": d.get("estimate"), "ci_low": d.get("ci_low"), "ci_high": d.get("ci_high"),
                     "tau2": r.tau2 if r is not None else None, "i2": r.i2 if r is not None else None,
                     "note": "; ".join(a.notes[-1:]) if r is None else ""})
    return rows


def read_clean_csv(path, schema: ReviewSchema) -> dict[str, pd.DataFrame]:
    """A clean dataset CSV (as ``--clean`` or ``curate run`` writes it) back into clean tables.

    The sheet is recognised by its columns: of the sheets whose key columns are all in the file,
    the one with the most of its own fields (the analysis sheet on a tie), so that every file
    ``curate run`` writes -- ``clean.csv``, ``clean_<sheet>.csv``, for a one-sheet schema too -- is
    read as the sheet it holds (the root sheet only when no other sheet's own fields are in the
    file: its fields are joined into every other sheet's rows). Text cells that the writer made inert (a leading ``'``) are restored.
    """
    from .errors import UnusableInputError

    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise UnusableInputError(f"{path}: cannot be read as a CSV clean dataset ({str(exc)[:120]})") from None
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(lambda v: v[1:] if isinstance(v, str) and v.startswith("'") and
                                        v[1:2] in ("=", "+", "-", "@", "\t", "\r") else v)
    cols = set(frame.columns)
    root = schema.root_sheet
    best, best_score = None, None
    for sheet, spec in schema.sheets.items():
        if not set(spec.key) <= cols:
            continue
        own = [f for f in spec.fields if sheet == root or f not in schema.sheets[root].fields]
        present = sum(f in cols for f in own)
        if own and present == 0:
            continue
        # the root sheet's fields are joined into every other sheet's rows: another sheet whose own fields
        # are here first; then the most own fields found, the share of them, the analysis sheet
        score = (sheet != root, present, present / max(len(own), 1), sheet == schema.analysis_sheet)
        if best_score is None or score > best_score:
            best, best_score = sheet, score
    if best is not None:
        return {best: frame}
    raise UnusableInputError(f"{path}: not a clean dataset of schema {schema.name!r} (columns: "
                             f"{', '.join(map(str, frame.columns[:8]))} ...); write one with `curate validate --clean`")


def _is_clean_csv(path) -> bool:
    """A CSV with the provenance columns ``--clean`` writes (``file``, ``sheet``, ``row``) is a clean dataset;
    any other CSV is a form (a team's sheet exported as CSV), validated first."""
    try:
        columns = set(pd.read_csv(path, nrows=0).columns)
    except Exception:  # noqa: BLE001 - not readable as a plain CSV: the form reader says why
        return False
    return {"file", "sheet", "row"} <= columns
def _selected_for(schema: ReviewSchema, validation: Any, outcome: str, subgroup: str | None):
    """Every row of a validated form with the ``in_<analysis>`` column of the analysis ``curate pool``
    asks for, and why rows are kept out of it: the plan's selection, or (an analysis the plan does not
    have: another subgroup) the same selection made for it."""
    from .schema import PlanEntry
    from .selection import resolve_subgroup, select_records
    from .validation import clean_dataset

    name = outcome.partition(":")[0]
    if name not in schema.analysis.outcomes:
        return validation.clean_tables, None
    sg_name = resolve_subgroup(schema, subgroup)[0] if subgroup else None
    key = use_for(schema, name, sg_name).key
    if any(u.key == key for u in (validation.selection.uses if validation.selection else ())):
        return validation.candidate_tables, validation.exclusion_reasons
    plan = (*schema.analysis.plan, PlanEntry(outcome=name, subgroup=sg_name or subgroup))
    wider = schema.model_copy(update={"analysis": schema.analysis.model_copy(update={"plan": plan})})
    sel = select_records(wider, validation.tables, [f for f in validation.finding_list if f.rule != "study-excluded"])
    everything = {s: np.ones(len(t), bool) for s, t in validation.tables.items()}
    return clean_dataset(wider, validation.tables, everything, sel), sel.reason_map(wider, validation.tables)


def pool_input(input, outcome: str, *, schema: ReviewSchema, settings: PoolSettings | None = None,
               subgroup: str | None = None, layout: Any = None) -> tuple[list[Analysis], Any]:
    """``curate pool``: one analysis from a form (validated first; a form may be a CSV) or a clean dataset CSV.

    Returns the analyses (primary, subgroups, sensitivity) and the validation result (or None
    for a CSV input).
    """
    from pathlib import Path

    from .validation import validate

    p = Path(input)
    validation = None
    excluded = None
    if p.suffix.lower() == ".csv" and _is_clean_csv(p):
        clean = read_clean_csv(p, schema)
        name = outcome.partition(":")[0]
        oc = schema.analysis.outcomes.get(name)
        if oc is not None:
            want = (oc.sheet if oc.kind == "adverse_event" else
                    schema.outcome_sheet(oc) if oc.kind not in ("proportion", "adverse_event") or oc.sheet
                    else schema.analysis_sheet)
            have = next(iter(clean))
            if want not in clean:
                from .errors import UnusableInputError

                fname = "clean.csv" if want == schema.analysis_sheet else f"clean_{want}.csv"
                raise UnusableInputError(f"{input}: holds the {have} sheet, but outcome {name!r} reads the {want} "
                                         f"sheet: give {fname} (as `curate run` writes it)")
    else:
        validation = validate(p, schema, layout=layout)
        clean, excluded = _selected_for(schema, validation, outcome, subgroup)
    try:
        analyses = run_analysis(schema, clean, outcome, settings=settings, subgroup=subgroup, excluded=excluded)
    except KeyError as exc:
        from .errors import UnusableInputError

        raise UnusableInputError(str(exc.args[0])) from None
    return analyses, validation


# ---------------------------------------------------------------------------------------------
# How an estimate reads (the run's summary and the report both use these)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A pooled estimate as a reader sees it (proportions clipped to 0..1, medians in their unit); the
    run and the report both show estimates through it (:func:`fmt_estimate`)."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    k: int

    @classmethod
    def of(cls, result: Any, k: int) -> "Estimate | None":
        if result is None:
            return None
        d = result.display()
        return cls(finite_or_none(d["estimate"]), finite_or_none(d["ci_low"]), finite_or_none(d["ci_high"]), k)

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high, "k": self.k}


def fmt_value(v: float | None, kind: Any) -> str:
    """``84.1%`` for a proportion, ``28.9 months`` for a median, ``RR 0.49``, ``NA`` when missing.

    ``kind`` is an :class:`~curation.analyses.Analysis` (its outcome's unit and effect label) or a kind.
    """
    return value_text(v, kind)


def fmt_estimate(e: Estimate | None, kind: Any) -> str:
    if e is None or e.estimate is None:
        return "not estimable"
    if not isinstance(kind, str):  # an Analysis: in its outcome's own terms
        if kind.kind != "proportion":
            return estimate_text(kind, e.estimate, e.ci_low, e.ci_high, e.k)
        kind = kind.kind
    scale, unit = (100.0, "%") if kind == "proportion" else (1.0, " months")
    lo = "NA" if e.ci_low is None else f"{scale * e.ci_low:.1f}"
    hi = "NA" if e.ci_high is None else f"{scale * e.ci_high:.1f}"
    return f"{scale * e.estimate:.1f}{unit} ({lo}-{hi}; k = {e.k})"


def plot_name(analysis_id: str) -> str:
    """A file-system-safe name for an analysis id (``dcr_by_grade:G3`` -> ``dcr_by_grade--G3``)."""
    name = analysis_id.replace(":", "--")
    return re.sub(r"[^A-Za-z0-9_.@+-]+", "_", name)

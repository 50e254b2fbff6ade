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
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .pool import PoolResult, pool_generic, pool_proportions
from .schema import OutcomeSpec, PoolSettings, ReviewSchema, SubgroupSpec, fold

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
        Proportions: events and denominator.
    median, ci_low, ci_high, se : float or None
        Medians (months) and the standard error taken from the CI.
    file, row : provenance of the outcome row.
    reason : str or None
        Why it was left out (None when taken).
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

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, float) and math.isnan(v):
                v = None
            if isinstance(v, (np.floating, np.integer)):
                v = v.item()
            if isinstance(v, float) and v.is_integer() and k in ("events", "total", "row"):
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

    @property
    def k(self) -> int:
        return len(self.taken)

    def to_dict(self) -> dict[str, Any]:
        """The entry of ``analysis.json``: settings, rows, and the PoolResult fields at top level."""
        s = self.settings
        out: dict[str, Any] = {
            "id": self.id, "outcome": self.outcome, "label": self.label, "kind": self.kind, "role": self.role,
            "measure": s.measure if self.kind == "proportion" and s.method != "GLMM" else
            ("PLO" if s.method == "GLMM" else "GEN"),
            "method": s.method, "hk": s.hk, "level": s.level, "subgroup": self.subgroup_field,
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
            res.pop("measure", None)
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
    names = [oc.events] if isinstance(oc.events, str) else list(oc.events)
    missing = [n for n in names if n not in frame]
    if missing:
        return pd.Series(np.nan, index=frame.index)
    return frame[names].astype(float).sum(axis=1, min_count=len(names))


def _candidate_rows(schema: ReviewSchema, frame: pd.DataFrame, oc: OutcomeSpec) -> tuple[pd.DataFrame, list[StudyRow]]:
    """Rows with usable data for the outcome, and the rows left out for missing data."""
    overall = schema.analysis.overall_cohort
    cohort_field = schema.analysis.cohort_field
    f = frame.copy()
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
        med = f[oc.median].astype(float)
        lo = f[oc.low].astype(float)
        hi = f[oc.high].astype(float)
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

    return StudyRow(
        study_id=str(r.get("study_id")), cohort=str(r.get("cohort_label")), label=str(r.get("_label")),
        group=group, events=num("_events"), total=num("_total"), median=num("_median"), ci_low=num("_low"),
        ci_high=num("_high"), se=num("_se"), file=r.get("file"), sheet=r.get("sheet"),
        row=int(r["row"]) if "row" in r and not pd.isna(r["row"]) else None, reason=reason, note=note)


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
        values = f[subgroup.field] if subgroup.field in f else pd.Series(None, index=f.index)
        groups = subgroup.groups or {}
        lookup = {v: g for g, vs in groups.items() for v in vs}

        def group_of(v):
            if not isinstance(v, str) or v in subgroup.exclude:
                return None
            return lookup.get(v, v) if groups else v

        f = f.assign(_group=values.map(group_of))
        none = f["_group"].isna().to_numpy(dtype=bool)
        for r in _records(f[none], subgroup.field):
            v = r.get(subgroup.field)
            why = (f"{subgroup.field} not reported" if not isinstance(v, str) else
                   f"{subgroup.field} {v!r} is not a single category" if v in subgroup.exclude else
                   f"{subgroup.field} {v!r} is in no group of this analysis")
            left.append(_row(r, reason=why))
        f = f[~none]
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


def _pool(kind: str, taken: Sequence[StudyRow], settings: PoolSettings, labels: Sequence[str] | None = None):
    if kind == "median":
        return pool_generic([r.median for r in taken], [r.se for r in taken], method=settings.method,
                            hk=settings.hk, level=settings.level, subgroups=labels)
    return pool_proportions([r.events for r in taken], [r.total for r in taken], measure=settings.measure,
                            method=settings.method, hk=settings.hk, level=settings.level, subgroups=labels)


def outcome_frame(schema: ReviewSchema, clean: dict[str, pd.DataFrame], outcome: str) -> tuple[str, OutcomeSpec, pd.DataFrame, str | None]:
    """The outcome's spec and the clean rows it pools from (``ae:TERM`` picks one term)."""
    name, _, term = outcome.partition(":")
    if name not in schema.analysis.outcomes:
        raise KeyError(f"unknown outcome {outcome!r} (the schema's: {', '.join(schema.analysis.outcomes)})")
    oc = schema.analysis.outcomes[name]
    if oc.kind == "adverse_event":
        frame = clean.get(oc.sheet, pd.DataFrame())
        if term:
            vocab_field = schema.sheets[oc.sheet].fields.get(oc.term)
            vocab = schema.vocabularies.get(vocab_field.vocabulary) if vocab_field and vocab_field.vocabulary else None
            canonical = vocab.canonical(term) if vocab else term
            term = canonical or term
            frame = frame[frame[oc.term] == term] if oc.term in frame else frame.iloc[0:0]
        return name, oc, frame, term or None
    return name, oc, clean.get(schema.analysis_sheet, pd.DataFrame()), None


def run_analysis(schema: ReviewSchema, clean: dict[str, pd.DataFrame], outcome: str, *,
                 settings: PoolSettings | None = None, subgroup: str | None = None,
                 sensitivity: bool = True, id: str | None = None) -> list[Analysis]:
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

    Returns
    -------
    list of Analysis
        The primary entry first (for a subgroup analysis, the test for subgroup differences,
        then one entry per subgroup), then the sensitivity entries.
    """
    settings = settings or schema.analysis.defaults
    name, oc, frame, term = outcome_frame(schema, clean, outcome)
    sg_name, sg = _subgroup(schema, subgroup)
    kind = "median" if oc.kind == "median" else "proportion"
    if kind == "median":
        settings = PoolSettings(measure="PLO", method="REML" if settings.method == "GLMM" else settings.method,
                                hk=settings.hk, level=settings.level)
    base_id = id or (f"{name}_{term}" if term else name) + (f"_by_{sg_name}" if sg_name else "")
    label = oc.label + (f": {term}" if term else "") + (f", by {sg.label.lower()}" if sg else "")
    full_outcome = f"{name}:{term}" if term else name
    taken, left, notes = select(schema, frame, oc, sg)
    entries: list[Analysis] = []
    common = dict(outcome=full_outcome, kind=kind, subgroup=sg_name, subgroup_field=sg.field if sg else None)
    if not taken:
        entries.append(Analysis(id=base_id, label=label, role="subgroup_test" if sg else "primary",
                                settings=settings, group=None, parent=None, taken=(), left_out=tuple(left),
                                result=None, notes=tuple(notes) + ("no study could be pooled",), **common))
        return entries
    if sg is None:
        result = _pool(kind, taken, settings)
        entries.append(Analysis(id=base_id, label=label, role="primary", settings=settings, group=None, parent=None,
                                taken=tuple(taken), left_out=tuple(left), result=result, notes=tuple(notes), **common))
    else:
        labels = [r.group for r in taken]
        result = _pool(kind, taken, settings, labels)
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


def _settings_id(s: PoolSettings, kind: str) -> str:
    core = s.method if (kind == "median" or s.method == "GLMM") else f"{s.measure}-{s.method}"
    return core + ("-HK" if s.hk else "")


def _sensitivity(schema, kind, taken, left, primary: PoolSettings, base_id, label, notes, common) -> list[Analysis]:
    out = []
    seen = {_settings_id(primary, kind)}
    variants = list(schema.analysis.sensitivity)
    if kind == "median":
        variants = [PoolSettings(method=m, hk=h, level=primary.level) for m, h in
                    (("REML", False), ("DL", False), ("REML", True))]
    for v in variants:
        s = PoolSettings(measure=v.measure, method=v.method, hk=v.hk, level=primary.level)
        key = _settings_id(s, kind)
        if key in seen:
            continue
        seen.add(key)
        try:
            res = _pool(kind, taken, s)
            extra: tuple[str, ...] = ()
        except Exception as exc:  # a fit that metafor would also refuse: shown, not fatal
            res, extra = None, (f"not estimable: {exc}",)
        out.append(Analysis(id=f"{base_id}@{key}", label=f"{label} ({key})", role="sensitivity", settings=s,
                            group=None, parent=base_id, taken=tuple(taken), left_out=tuple(left), result=res,
                            notes=tuple(notes) + extra, **common))
    return out


def _subgroup(schema: ReviewSchema, subgroup: str | None) -> tuple[str | None, SubgroupSpec | None]:
    if subgroup is None:
        return None, None
    subs = schema.analysis.subgroups
    if subgroup in subs:
        return subgroup, subs[subgroup]
    for name, sg in subs.items():
        if sg.field == subgroup:
            return name, sg
    fields = schema.sheets[schema.analysis_sheet].fields
    if subgroup in fields:  # any field: its values are the groups
        return subgroup, SubgroupSpec(label=subgroup.replace("_", " "), field=subgroup)
    raise KeyError(f"unknown subgroup {subgroup!r} (the schema's: {', '.join(subs)}; or a field of "
                   f"{schema.analysis_sheet})")


def ae_terms(schema: ReviewSchema, clean: dict[str, pd.DataFrame], outcome: str) -> list[str]:
    oc = schema.analysis.outcomes[outcome]
    frame = clean.get(oc.sheet, pd.DataFrame())
    if oc.term not in frame:
        return []
    vocab_field = schema.sheets[oc.sheet].fields[oc.term]
    order = list(schema.vocabularies[vocab_field.vocabulary].values) if vocab_field.vocabulary else []
    present = set(frame[oc.term].dropna())
    return [t for t in order if t in present] + sorted(present - set(order))


def run_plan(schema: ReviewSchema, clean: dict[str, pd.DataFrame]) -> list[Analysis]:
    """Every analysis of the schema's plan, in plan order (ids unique)."""
    out: list[Analysis] = []
    for entry in schema.analysis.plan:
        d = schema.analysis.defaults
        settings = PoolSettings(measure=entry.measure or d.measure, method=entry.method or d.method,
                                hk=d.hk if entry.hk is None else entry.hk, level=d.level)
        oc = schema.analysis.outcomes[entry.outcome]
        if oc.kind == "adverse_event" and entry.each_term:
            outcomes = [f"{entry.outcome}:{term}" for term in ae_terms(schema, clean, entry.outcome)]
        else:
            outcomes = [entry.outcome]
        for o in outcomes:
            try:
                out.extend(run_analysis(schema, clean, o, settings=settings, subgroup=entry.subgroup,
                                        sensitivity=not (oc.kind == "adverse_event" and entry.each_term)))
            except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
                # data the estimator cannot use: this analysis is reported as not pooled, the others go on
                name, _, term = o.partition(":")
                base = (f"{name}_{term}" if term else name) + (f"_by_{entry.subgroup}" if entry.subgroup else "")
                msg = f"not pooled: {exc}"
                out.append(Analysis(id=base, outcome=o, label=oc.label + (f": {term}" if term else ""),
                                    kind="median" if oc.kind == "median" else "proportion",
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

    The sheet is recognised by its columns (``ae_term`` -> adverse events); text cells that the
    writer made inert (a leading ``'``) are restored.
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
    for sheet, spec in schema.sheets.items():
        if sheet == schema.root_sheet:
            continue
        own = [f for f in spec.fields if f not in schema.sheets[schema.root_sheet].fields]
        if own and all(f in frame.columns for f in own[:1]) and set(spec.key) <= set(frame.columns):
            if sheet == schema.analysis_sheet or any(k not in schema.sheets[schema.analysis_sheet].fields
                                                     for k in spec.key):
                return {sheet: frame}
    raise UnusableInputError(f"{path}: not a clean dataset of schema {schema.name!r} (columns: "
                             f"{', '.join(map(str, frame.columns[:8]))} ...); write one with `curate validate --clean`")


def pool_input(input, outcome: str, *, schema: ReviewSchema, settings: PoolSettings | None = None,
               subgroup: str | None = None) -> tuple[list[Analysis], Any]:
    """``curate pool``: one analysis from a form (validated first) or a clean dataset CSV.

    Returns the analyses (primary, subgroups, sensitivity) and the validation result (or None
    for a CSV input).
    """
    from pathlib import Path

    from .validation import validate

    p = Path(input)
    validation = None
    if p.suffix.lower() == ".csv":
        clean = read_clean_csv(p, schema)
    else:
        validation = validate(p, schema)
        clean = validation.clean_tables
    try:
        analyses = run_analysis(schema, clean, outcome, settings=settings, subgroup=subgroup)
    except KeyError as exc:
        from .errors import UnusableInputError

        raise UnusableInputError(str(exc.args[0])) from None
    return analyses, validation

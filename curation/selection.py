"""Selection: which analyses each record may enter, given the errors found on it.

An error keeps its record out of the analyses that use one of the fields it involves
(:attr:`curation.findings.Finding.fields`), and only out of those: a typo in a QoL mean does not
take a trial's event counts out of the recurrence analysis. What an analysis *uses* is read from
the schema's analysis plan, never listed by hand (:func:`analysis_uses`):

* its outcome's fields (events, totals, the reported n, medians and their CI, an effect and its
  CI, means and SDs, the arm rows' fields, the adverse-event term), and a unit field of any of them;
* the subgroup field of a subgroup analysis;
* the key and link fields of the sheet it reads (``study_id``, the cohort or comparison, the arm's
  role and the fields arms are paired by), and the key of the parent sheet it is linked through;
* a field of the parent sheet that any of these names (``studies.n_enrolled`` when a total is
  taken from the studies sheet).

Errors on identity and eligibility exclude the record from *every* analysis (:func:`is_record_scope`):
a duplicate key, an unknown study, a required key left empty, a rejected term in a key or arm-role
field, and an ineligible design, agent or criteria (``ineligible-term``), as does an error that
names no field (a row-level error). An error on the parent sheet's row (``studies``) reaches the
rows of its study on the other sheets the same way: only the analyses that use a field it involves
lose them. A record-scope error on the study's own row, or an ineligible term anywhere, takes the
whole study out of all its analyses.

:func:`select_records` returns a :class:`Selection`: per sheet and per analysis, which rows may
enter it and which findings keep the others out. :mod:`curation.validation` writes it into the
clean dataset as one ``in_<analysis>`` column per analysis (``True``: the row may enter it), and
:mod:`curation.analyses` lists every record an error keeps out, with the finding's rule and cell.
A record kept out of every analysis it could enter is *excluded* (it is not in the clean dataset);
one kept out of some only is *restricted* (docs/exclusions.md).

Data in, data out: this module reads typed tables and findings and writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .findings import Finding
from .rules.context import all_plain
from .schema import OutcomeSpec, ReviewSchema, SubgroupSpec

#: Rules whose errors exclude the record from every analysis (identity and eligibility). A rule of
#: the registry marked ``scope``/``exclusion`` ``"record"`` counts too (:func:`is_record_scope`).
RECORD_RULES = frozenset({"duplicate-key", "unknown-study", "ineligible-term"})
#: Rules that are record-scope when they sit on a key, link or arm-role field (an identity field).
IDENTITY_FIELD_RULES = frozenset({"missing-required", "rejected-term", "unknown-term", "invalid-format"})
#: Rules that take the whole study out of all its analyses, wherever they sit.
STUDY_RULES = frozenset({"ineligible-term"})
#: Findings made by the selection itself (never a cause of exclusion of their own).
DERIVED_RULES = frozenset({"study-excluded"})

IN_PREFIX = "in_"


@dataclass(frozen=True)
class AnalysisUse:
    """What one analysis of the plan reads: the sheet whose rows it takes and every field it uses.

    Attributes
    ----------
    key : str
        ``<outcome>`` or ``<outcome>_by_<subgroup>`` (``orr``, ``dcr_by_grade``, ``ae``): the
        analyses of the plan with this outcome and subgroup (other settings, each adverse-event
        term) share it. The clean dataset's column is ``in_<key>`` (:attr:`column`).
    outcome : str
        The outcome's name in the schema.
    subgroup : str or None
        The subgroup's name in the schema.
    sheet : str
        The sheet whose rows the analysis takes.
    fields : frozenset of (sheet, field)
        Every field the analysis uses.
    data_fields : tuple of str
        The outcome's own data fields on ``sheet`` (a row with none of them filled in was never a
        candidate for the analysis).
    """

    key: str
    outcome: str
    subgroup: str | None
    sheet: str
    fields: frozenset[tuple[str, str]]
    data_fields: tuple[str, ...]

    @property
    def column(self) -> str:
        """The clean dataset's column saying whether a row may enter the analysis."""
        return IN_PREFIX + self.key

    def uses(self, sheet: str, name: str) -> bool:
        return (sheet, name) in self.fields


def use_key(outcome: str, subgroup: str | None = None) -> str:
    """The key of an analysis (``dcr_by_grade``); its clean dataset column is ``in_<key>``."""
    return outcome + (f"_by_{subgroup}" if subgroup else "")


def resolve_subgroup(schema: ReviewSchema, subgroup: str | None) -> tuple[str | None, SubgroupSpec | None]:
    """A subgroup as the plan or ``--subgroup`` names it (its name, or the field it uses), or None
    when it is neither (the caller reports that)."""
    if subgroup is None:
        return None, None
    subs = schema.analysis.subgroups
    if subgroup in subs:
        return subgroup, subs[subgroup]
    for name, sg in subs.items():
        if sg.field == subgroup:
            return name, sg
    if subgroup in schema.sheets[schema.analysis_sheet].fields:
        return subgroup, SubgroupSpec(label=subgroup.replace("_", " "), field=subgroup)
    return None, None


def qualify(schema: ReviewSchema, sheet: str, name: str) -> tuple[str, str]:
    """``(sheet, field)`` of a field named from ``sheet``: its own field, else ``other.field`` as
    written, else the parent (root) sheet's field of that name, else any sheet's."""
    if "." in name:
        other, fname = name.split(".", 1)
        if other in schema.sheets:
            return other, fname
    if sheet in schema.sheets and name in schema.sheets[sheet].fields:
        return sheet, name
    root = schema.root_sheet
    if name in schema.sheets[root].fields:
        return root, name
    for s, spec in schema.sheets.items():
        if name in spec.fields:
            return s, name
    return sheet, name


def outcome_sheet(schema: ReviewSchema, oc: OutcomeSpec) -> str:
    """The sheet whose rows an outcome's analyses take."""
    if oc.kind == "adverse_event" and oc.sheet:
        return oc.sheet
    return schema.outcome_sheet(oc)


def data_fields(oc: OutcomeSpec) -> tuple[str, ...]:
    """The outcome's own data fields (the p-value of a reported effect is not pooled: not one)."""
    if oc.arms is not None:
        return tuple(f for f in (oc.arms.events, oc.arms.total, oc.arms.mean, oc.arms.sd) if f)
    out = [v for role, v in oc.fields().items() if role not in ("p", "term")]
    return tuple(dict.fromkeys(out))


def _use(schema: ReviewSchema, outcome: str, subgroup: str | None) -> AnalysisUse:
    oc = schema.analysis.outcomes[outcome]
    sheet = outcome_sheet(schema, oc)
    root = schema.root_sheet
    spec = schema.sheets.get(sheet)
    used: set[tuple[str, str]] = set()
    own = data_fields(oc)
    names = list(own)
    if oc.kind == "adverse_event" and oc.term:
        names.append(oc.term)
    if oc.arms is not None:
        names += [oc.arms.role_field, *oc.arms.pair_by]
    if spec is not None:
        names += list(spec.key)
        if spec.parent is not None:
            names.append(spec.parent.key)
            used.add((spec.parent.sheet, schema.sheets[spec.parent.sheet].key[0]))
        if oc.kind in ("proportion", "median") and schema.analysis.cohort_field in spec.fields:
            names.append(schema.analysis.cohort_field)
    sg_name, sg = resolve_subgroup(schema, subgroup)
    if sg is not None:
        names.append(sg.field)
    for n in names:
        used.add(qualify(schema, sheet, n))
    for s, f in list(used):  # a number's unit field: the unit says what the number means
        fs = schema.sheets[s].fields.get(f) if s in schema.sheets else None
        if fs is not None and fs.unit_field and fs.unit_field in schema.sheets[s].fields:
            used.add((s, fs.unit_field))
    if sheet != root and root in schema.sheets:
        used.add((root, schema.sheets[root].key[0]))
    return AnalysisUse(use_key(outcome, sg_name if sg is not None else subgroup), outcome,
                       sg_name if sg is not None else subgroup, sheet, frozenset(used), own)


def analysis_uses(schema: ReviewSchema) -> tuple[AnalysisUse, ...]:
    """What each analysis of the schema's plan uses, one entry per outcome and subgroup (plan order)."""
    out: dict[str, AnalysisUse] = {}
    for entry in schema.analysis.plan:
        if entry.outcome not in schema.analysis.outcomes:
            continue
        u = _use(schema, entry.outcome, entry.subgroup)
        out.setdefault(u.key, u)
    return tuple(out.values())


def use_for(schema: ReviewSchema, outcome: str, subgroup: str | None = None) -> AnalysisUse:
    """What an analysis uses (one of the plan's, or one ``curate pool`` asks for)."""
    return _use(schema, outcome.partition(":")[0], subgroup)


def _identity_fields(schema: ReviewSchema, sheet: str) -> set[str]:
    spec = schema.sheets.get(sheet)
    if spec is None:
        return set()
    out = set(spec.key)
    if spec.parent is not None:
        out.add(spec.parent.key)
    for oc in schema.analysis.outcomes.values():
        if oc.arms is not None and oc.arms.sheet == sheet:
            out.add(oc.arms.role_field)
            out.update(oc.arms.pair_by)
    return out


def is_record_scope(schema: ReviewSchema, finding: Finding) -> bool:
    """Whether an error excludes its record from every analysis: identity and eligibility errors
    (:data:`RECORD_RULES`, a rule the registry marks ``"record"``, an identity rule on a key,
    link or arm-role field) and errors that name no field (row-level)."""
    if not finding.fields:
        return True
    if finding.rule in RECORD_RULES:
        return True
    try:
        from .rules import REGISTRY

        rule = REGISTRY.get(finding.rule)
    except ImportError:  # pragma: no cover - the rules are always there
        rule = None
    if rule is not None and "record" in (getattr(rule, "excludes", None), getattr(rule, "exclusion", None)):
        return True
    sheet = finding.contract_sheet
    return finding.rule in IDENTITY_FIELD_RULES and finding.field in _identity_fields(schema, sheet or "")


@dataclass(frozen=True)
class Selection:
    """Which analyses each record may enter.

    Attributes
    ----------
    uses : tuple of AnalysisUse
        The plan's analyses (one per outcome and subgroup).
    eligible : dict[str, numpy.ndarray]
        Per sheet, a boolean matrix (rows x ``uses``): True where the row may enter the analysis
        (no error in a field it uses, on the row or on its study's row). Columns of analyses that
        do not read the sheet are True.
    passed : dict[str, numpy.ndarray]
        Per sheet, the rows of the clean dataset: they may enter at least one analysis that reads
        their sheet (the parent sheet's rows: any analysis); on a sheet no analysis reads, the rows
        without an error (and whose study row passed).
    restricted : dict[str, numpy.ndarray]
        Per sheet, the passed rows that some analysis reading their sheet may not take.
    reasons : dict
        ``(sheet, position) -> {analysis key: (Finding, ...)}``: the errors that keep the row out
        of each analysis (on the row itself, or on its study's row).
    extra : tuple of Finding
        ``study-excluded`` errors: one per row that its study row's error keeps out of an
        analysis, naming the analyses and the cells.
    """

    uses: tuple[AnalysisUse, ...]
    eligible: dict[str, np.ndarray]
    passed: dict[str, np.ndarray]
    restricted: dict[str, np.ndarray]
    reasons: dict[tuple[str, int], dict[str, tuple[Finding, ...]]] = field(default_factory=dict)
    extra: tuple[Finding, ...] = ()

    def over(self, sheet: str, schema: ReviewSchema) -> list[int]:
        """Positions in ``uses`` of the analyses over a sheet's rows (the root sheet: all)."""
        if sheet == schema.root_sheet:
            return list(range(len(self.uses)))
        return [j for j, u in enumerate(self.uses) if u.sheet == sheet]

    def columns(self, sheet: str) -> list[tuple[str, int]]:
        """The ``in_<key>`` columns of a sheet's clean rows (analyses that take its rows)."""
        return [(u.column, j) for j, u in enumerate(self.uses) if u.sheet == sheet]

    def findings_by_row(self, tables: Mapping[str, Any]) -> dict[str, dict[tuple, tuple[Finding, ...]]]:
        """``{analysis key: {(file, sheet as the workbook names it, row): findings}}``."""
        out: dict[str, dict[tuple, tuple[Finding, ...]]] = {}
        for (sheet, i), per in self.reasons.items():
            t = tables.get(sheet)
            if t is None:
                continue
            file = str(t.data["_file"].iat[i])
            where = (file, t.title(file, i), int(t.data["_row"].iat[i]))
            for key, fs in per.items():
                out.setdefault(key, {})[where] = fs
        return out

    def why(self, sheet: str, position: int, key: str) -> tuple[Finding, ...]:
        """The errors that keep a row out of an analysis (empty when it may enter it)."""
        return self.reasons.get((sheet, position), {}).get(key, ())

    def reason_map(self, schema: ReviewSchema, tables: Mapping[str, Any]) -> dict[str, dict[tuple, tuple[str, str]]]:
        """``{analysis key: {(file, sheet as the workbook names it, row): (reason, rules)}}`` for every
        row an error keeps out of an analysis: what :func:`curation.analyses.run_plan` lists as left
        out (``rules``: the rule codes, comma-separated)."""
        out: dict[str, dict[tuple, tuple[str, str]]] = {}
        for (sheet, i), per in self.reasons.items():
            t = tables.get(sheet)
            if t is None:
                continue
            file = str(t.data["_file"].iat[i])
            where = (file, t.title(file, i), int(t.data["_row"].iat[i]))
            for key, fs in per.items():
                out.setdefault(key, {})[where] = (reason_text(schema, fs), ", ".join(dict.fromkeys(f.rule for f in fs)))
        return out


def reason_text(schema: ReviewSchema, findings: Sequence[Finding]) -> str:
    """How a left-out row's reason names the errors: ``excluded by an error in a field this
    analysis uses: dcr-below-orr at outcomes!P7 (DCR 40% is below ORR 45%)`` (the first two, and
    how many more); an identity or eligibility error: ``excluded from every analysis: ...``."""
    parts = []
    for f in findings[:2]:
        where = f.cell or f.sheet or "the form"
        msg = " ".join(str(f.message).split())
        if len(msg) > 160:
            msg = msg[:157] + "..."
        parts.append(f"{f.rule} at {where} ({msg})")
    more = f"; and {len(findings) - 2} more" if len(findings) > 2 else ""
    whole = any(is_record_scope(schema, f) for f in findings)
    head = ("excluded from every analysis by an error on its identity or eligibility" if whole
            else "excluded by an error in a field this analysis uses")
    return head + ": " + "; ".join(parts) + more


def key_texts(values: Any) -> np.ndarray:
    """Key values as text (:func:`curation.cells.text_value`: ``12.0`` -> ``"12"``), None where empty (None
    or NaN): how rows of two sheets are linked. Each distinct value is turned to text once, and a column of
    plain texts (nothing to normalise, the common case) is checked as a whole."""
    import pandas as pd

    from .cells import text_value

    arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) or values.dtype != object \
        else values
    if arr.ndim != 1:  # a list of tuples, say: one value per item all the same
        arr = np.fromiter(iter(values), dtype=object, count=len(values))
    out = np.full(len(arr), None, dtype=object)
    if not len(arr):
        return out
    miss = pd.isna(arr)
    if miss.any() and not all(v is None or isinstance(v, float) for v in arr[miss]):
        miss = np.fromiter((v is None or (isinstance(v, float) and v != v) for v in arr), bool, len(arr))
    held = ~miss
    vals = arr[held]
    if pd.api.types.infer_dtype(vals, skipna=False) == "string":  # every value a str: distinct ones compared
        codes, uniques = pd.factorize(vals)
        if all_plain(uniques):
            texts = np.asarray(uniques, dtype=object)  # each its own text
        else:
            texts = np.array([text_value(u) for u in uniques] + [None], dtype=object)[:-1]
        out[held] = texts[codes]
        return out
    seen: dict[Any, Any] = {}
    for i in np.flatnonzero(held):  # numbers (1 and 1.0 and True are distinct keys), dates: each type apart
        v = arr[i]
        key = (type(v), v)
        t = seen.get(key, seen)
        if t is seen:
            t = seen[key] = text_value(v)
        out[i] = t
    return out


def sheet_titles(t: Any, positions: Any = None) -> np.ndarray:
    """The workbook's own name of the sheet of each row (or of the rows at ``positions``): what
    :meth:`curation.normalise.Table.title` gives, for a whole column at once."""
    import pandas as pd

    pos = np.arange(len(t)) if positions is None else np.asarray(positions, dtype=np.int64)
    files = t.data["_file"].to_numpy(dtype=object)[pos]
    codes, uniques = pd.factorize(files, use_na_sentinel=False)
    base = np.array([t.titles.get(f, t.sheet) for f in uniques] + [None], dtype=object)[:-1][codes] if len(pos) \
        else np.empty(0, dtype=object)
    if t.row_titles is None:
        return base
    own = np.asarray(t.row_titles, dtype=object)[pos]
    return np.where(own.astype(bool), own, base)


def select_records(schema: ReviewSchema, tables: Mapping[str, Any], findings: Sequence[Finding]) -> Selection:
    """Which analyses each row of each table may enter, given the error findings.

    Parameters
    ----------
    schema : ReviewSchema
    tables : dict of curation.normalise.Table
        The typed tables (every row).
    findings : sequence of Finding
        Every finding of the checks (warnings and notes are ignored; ``study-excluded`` ones too).

    Returns
    -------
    Selection
    """
    uses = analysis_uses(schema)
    root = schema.root_sheet
    n_use = len(uses)
    # where a finding's cell is: built for a sheet when a finding first needs it (many forms have no error)
    located: dict[str, _RowIndex] = {}
    rec_cells: dict[str, Any] = {}

    def rows_index(sheet: str) -> _RowIndex:
        if sheet not in located:
            located[sheet] = _RowIndex(tables[sheet])
        return located[sheet]

    def record_cells(sheet: str):
        if sheet not in rec_cells:
            rec_cells[sheet] = _record_cells(tables[sheet])
        return rec_cells[sheet]

    over = {s: ([j for j in range(n_use)] if s == root else [j for j, u in enumerate(uses) if u.sheet == s])
            for s in tables}
    # (sheet, position) -> use index -> findings; "whole" marks the rows an error keeps out of everything
    blocked: dict[tuple[str, int], dict[int, list[Finding]]] = {}
    errored: set[tuple[str, int]] = set()
    inherited: dict[tuple[str, int], list[Finding]] = {}
    study_keys: dict[str, list[str | None]] = {}

    def keys_of(sheet: str) -> list[str | None]:
        if sheet not in study_keys:
            spec = schema.sheets[sheet]
            col = spec.parent.key if spec.parent is not None else spec.key[0]
            t = tables[sheet]
            study_keys[sheet] = key_texts(t.data[col].to_numpy(dtype=object)).tolist() if col in t.data \
                else [None] * len(t)
        return study_keys[sheet]

    by_study: dict[str, dict[str, list[int]]] = {}

    def rows_of_study(sheet: str, key: str) -> list[int]:
        if sheet not in by_study:
            by_study[sheet] = _positions_by_key(keys_of(sheet))
        return by_study[sheet].get(key, [])

    own: dict[tuple[str, int], set[int]] = {}

    def block(sheet: str, i: int, f: Finding, qualified: set[tuple[str, str]] | None, via_study: bool) -> None:
        hit = False
        for j in over.get(sheet, ()):
            if qualified is None or any(q in uses[j].fields for q in qualified):
                blocked.setdefault((sheet, i), {}).setdefault(j, []).append(f)
                if not via_study:
                    own.setdefault((sheet, i), set()).add(j)
                hit = True
        if via_study and (hit or not over.get(sheet)):
            inherited.setdefault((sheet, i), []).append(f)

    for f in findings:
        if f.severity != "error" or f.row is None or f.rule in DERIVED_RULES:
            continue
        sheet = f.contract_sheet
        if sheet not in tables:
            continue
        positions: list[int] = []
        t = tables[sheet]
        if f.column and (t.cell_rows or t.row_titles is not None or t.cell_titles):
            # a cell of a record bound off its row (a form sheet, a column per record)
            positions = record_cells(sheet)[0].get((str(f.file), f.sheet, int(f.row), f.column)) or []
        if not positions:  # the record's own row, or a row one of its cells has (a long sheet's record spans rows)
            where = rows_index(sheet)
            positions = where.at(str(f.file), str(f.sheet), int(f.row)) or where.own(str(f.file), int(f.row))
        if not positions:
            continue
        whole = is_record_scope(schema, f)
        qualified = None if whole else {qualify(schema, sheet, x) for x in f.fields}
        study_wide = whole and (sheet == root or f.rule in STUDY_RULES)
        for i in positions:
            errored.add((sheet, i))
            block(sheet, i, f, qualified, False)
            key = keys_of(sheet)[i]
            if key is None:
                continue
            if sheet == root and f.rule == "duplicate-key":
                continue  # the study's first row is kept: its rows on the other sheets stay with it
            if sheet == root or study_wide:  # the study's rows on the other sheets
                for other in tables:
                    if other == sheet or (schema.sheets[other].parent is None and other != root):
                        continue
                    if other != root and schema.sheets[other].parent.sheet != root:
                        continue
                    for k in rows_of_study(other, key):
                        block(other, k, f, None if study_wide else qualified, True)
            elif qualified is not None and any(s == root for s, _ in qualified) and root in tables:
                for k in rows_of_study(root, key):  # a finding that cites the study row's cells
                    block(root, k, f, {q for q in qualified if q[0] == root}, False)

    eligible: dict[str, np.ndarray] = {}
    passed: dict[str, np.ndarray] = {}
    restricted: dict[str, np.ndarray] = {}
    reasons: dict[tuple[str, int], dict[str, tuple[Finding, ...]]] = {}
    for sheet, t in tables.items():
        n = len(t)
        e = np.ones((n, n_use), dtype=bool)
        for (s, i), per in blocked.items():
            if s != sheet:
                continue
            for j, fs in per.items():
                e[i, j] = False
            reasons[(s, i)] = {uses[j].key: tuple(dict.fromkeys(fs)) for j, fs in per.items()}
        eligible[sheet] = e
        cols = over.get(sheet, [])
        if cols:
            p = e[:, cols].any(axis=1)
            restricted[sheet] = p & ~e[:, cols].all(axis=1)
        else:
            p = np.ones(n, dtype=bool)
            for (s, i) in errored | set(inherited):
                if s == sheet:
                    p[i] = False
            restricted[sheet] = np.zeros(n, dtype=bool)
        passed[sheet] = p
    extra = _study_excluded(schema, tables, uses, over, inherited, passed, eligible, own, errored)
    return Selection(uses=uses, eligible=eligible, passed=passed, restricted=restricted, reasons=reasons,
                     extra=tuple(extra))


class _RowIndex:
    """Positions of a table's rows by Excel row: each record's own row, and the rows its cells have of their
    own (a long sheet's record spans rows); one sorted array, looked up per finding."""

    def __init__(self, t: Any) -> None:
        n = len(t)
        self.files = t.data["_file"].to_numpy(dtype=object)
        self.titles = sheet_titles(t)
        own = t.data["_row"].to_numpy(dtype=np.int64)
        order = np.argsort(own, kind="stable")
        self._own_rows, self._own_pos = own[order], order
        pos, at = [np.arange(n)], [own]
        for rr in (t.cell_rows or {}).values():
            rr = np.asarray(rr, dtype=np.int64)
            k = np.flatnonzero(rr > 0)
            pos.append(k)
            at.append(rr[k])
        rows, where = np.concatenate(at), np.concatenate(pos)
        order = np.argsort(rows, kind="stable")
        self._rows, self._pos = rows[order], where[order]

    def at(self, file: str, title: str, row: int) -> list[int]:
        """Rows of ``file``'s worksheet ``title`` that hold a cell on Excel row ``row`` (ascending)."""
        lo, hi = np.searchsorted(self._rows, [row, row + 1])
        return [int(i) for i in np.unique(self._pos[lo:hi])
                if str(self.files[i]) == file and str(self.titles[i]) == title]

    def own(self, file: str, row: int) -> list[int]:
        """Rows of ``file`` whose record's own row is Excel row ``row`` (ascending)."""
        lo, hi = np.searchsorted(self._own_rows, [row, row + 1])
        return [int(i) for i in np.sort(self._own_pos[lo:hi]) if str(self.files[i]) == file]


def _positions_by_key(keys: Sequence[Any]) -> dict[Any, list[int]]:
    """``{key: positions}`` of the rows holding each key (ascending; rows without a key left out)."""
    import pandas as pd

    arr = np.asarray(keys, dtype=object) if len(keys) else np.empty(0, dtype=object)
    held = np.flatnonzero(np.fromiter((k is not None for k in arr), bool, len(arr)))
    if not len(held):
        return {}
    codes, uniques = pd.factorize(arr[held])
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    ordered = held[order].tolist()
    return {k: ordered[bounds[j]:bounds[j + 1]] for j, k in enumerate(uniques.tolist())}


def _study_excluded(schema, tables, uses, over, inherited, passed, eligible, own, errored) -> list[Finding]:
    """A ``study-excluded`` error on each row that its study row's errors keep out of an analysis its
    own errors do not already keep it out of."""
    root = schema.root_sheet
    out: list[Finding] = []
    for (sheet, i), fs in sorted(inherited.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if sheet == root:
            continue
        t = tables[sheet]
        cols = over.get(sheet, [])
        lost = [uses[j].key for j in cols if not eligible[sheet][i, j]]
        if cols and not [j for j in cols if not eligible[sheet][i, j] and j not in own.get((sheet, i), ())]:
            continue
        if not cols and (sheet, i) in errored:
            continue
        file = str(t.data["_file"].iat[i])
        sid = t.study_ids[i] if hasattr(t, "study_ids") else None
        cells = ", ".join(dict.fromkeys(f"{f.rule} at {f.cell or f.sheet}" for f in fs))
        study_sheet = fs[0].sheet or root
        if not cols or len(lost) == len(cols):
            what = "row excluded"
            fix = "fix that row and this one passes"
        else:
            what = f"row kept out of {', '.join(lost)} (it still enters the other analyses)"
            fix = "fix that cell and this row enters them"
        msg = (f"{what}: its study {sid} has an error on the {study_sheet} sheet ({cells})"
               + (" in a field these analyses use" if cols and len(lost) < len(cols) else "") + f"; {fix}")
        out.append(Finding(file, t.title(file, i), int(t.data["_row"].iat[i]), None, None, sid, "study-excluded",
                           "error", msg, None, sheet))
    return out


def _record_cells(t: Any) -> tuple[dict[tuple[str, str | None, int, str | None], list[int]], list[str | None]]:
    """Each record's own cells, ``(file, sheet title, row, column) -> positions``, and each record's sheet title,
    for records bound from cells off their row (a form sheet, a transposed sheet's column per record): a finding
    on a cell keeps out the record that cell belongs to, and only that one."""
    files = [str(x) for x in t.data["_file"].tolist()]
    titles = [t.row_titles[i] if t.row_titles is not None else t.titles.get(files[i]) for i in range(len(t))]
    fields = set(t.cell_rows) | set(t.cell_letters) | {c for c in t.data.columns if not str(c).startswith("_")}
    out: dict[tuple[str, str | None, int, str | None], list[int]] = {}
    for i in range(len(t)):
        for fld in fields:
            if fld in t.cell_letters and not t.cell_letters[fld][i]:
                continue  # no cell of its own (a derived value)
            letter = t.letter_of(i, files[i], fld)
            key = (files[i], t.title(files[i], i, fld), t.row_of(i, fld), letter)
            if i not in out.setdefault(key, []):
                out[key].append(i)
    return out, titles

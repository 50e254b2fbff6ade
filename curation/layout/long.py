"""Long (tidy) sheets: one row per study x subgroup x outcome (layouts.md v2, shape 2).

A column whose values name the outcome (``ORR``, ``PFS``, ``OS``) and role columns (``n``, ``N``,
``Estimate``, ``Lower``, ``Upper``, ``Unit``, ``SD``): the outcome named in a row and the role of a
column together name the field of each value cell (unpivotr's ``enhead``: the outcome cell binds
``left`` directly, the role header ``up`` directly). The rows of one study and subgroup are one
record, each value keeping its own cell (``RawSheet.cell_rows``), so that the row key is the study and
subgroup, never a false duplicate, and two outcomes are never read into one field.

The recipe is data: :class:`~curation.layout.model.SheetLayout` ``shape: long``, ``outcomeColumn``,
``roles`` (column letter -> role) and ``outcomes`` (outcome text -> {role: field}), written by
``curate map`` for a reviewer to correct.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..reading import SheetGrid, column_letter
from ..schema import ReviewSchema
from .cells import _cell_text, _filled, _text
from .headers import FieldIndex, fold_header, split_header

ROLES = ("events", "total", "estimate", "low", "high", "unit", "sd", "se")
_ROLE_WORDS = {
    "events": r"n|events?|responders?|cases|no\.? (?:of )?events|n (?:of )?events|number of events|event count|"
              r"n patients|count|x|r",
    "total": r"n total|total|total n|denominator|evaluable|n evaluable|sample size|big n|n analysed|n analyzed|"
             r"patients|participants",
    "estimate": r"estimate|value|point estimate|median|mean|rate|%|percent|percentage|pct|proportion|result|"
                r"effect|hr|or|rr",
    "low": r"lower|low|lcl|ll|ci low|ci lower|lower ci|lower 95% ci|95% ci lower|lower limit|cill|lci",
    "high": r"upper|high|ucl|ul|ci high|ci upper|upper ci|upper 95% ci|95% ci upper|upper limit|ciul|uci",
    "unit": r"units?|time unit",
    "sd": r"sd|s\.d\.|standard deviation",
    "se": r"se|s\.e\.|standard error",
}
_ROLE_RX = {k: re.compile(rf"^(?:{v})$", re.I) for k, v in _ROLE_WORDS.items()}
_OUTCOME_HEADER = re.compile(r"^(?:outcomes?|endpoints?|end points?|measures?|outcome measures?|parameters?|"
                             r"variables?|indicators?|outcome name)$", re.I)


def role_of(header: str) -> str | None:
    """The role a long sheet's column header names (``N`` total, ``n`` events, ``Lower`` ...)."""
    raw = re.sub(r"\s+", " ", str(header)).strip()
    if raw == "N":
        return "total"
    if raw == "n":
        return "events"
    h = fold_header(raw).strip(" :")
    h2 = re.sub(r"\s*\(.*\)\s*", "", h).strip()
    for role, rx in _ROLE_RX.items():
        if rx.match(h) or (h2 and rx.match(h2)):
            return role
    return None


def outcome_fields(schema: ReviewSchema, tables: list[str]) -> dict[str, dict[str, str]]:
    """Per analysis outcome the sheets in ``tables`` hold: role -> field."""
    out: dict[str, dict[str, str]] = {}
    for key, oc in schema.analysis.outcomes.items():
        table = oc.sheet or schema.analysis_sheet
        if table not in tables:
            continue
        fields = schema.sheets[table].fields
        roles: dict[str, str] = {}
        if oc.kind == "median":
            roles = {"estimate": oc.median, "low": oc.low, "high": oc.high}
        elif oc.kind == "proportion":
            ev = oc.reported_events or (oc.events if isinstance(oc.events, str) else None)
            if ev:
                roles["events"] = ev
            if oc.total:
                roles["total"] = oc.total
            pct = next((f for f, fs in fields.items() if ev and fs.count_field == ev), None)
            if pct:
                roles["estimate"] = pct
        elif oc.kind == "reported_effect":
            roles = {"estimate": oc.effect, "low": oc.low, "high": oc.high}
        roles = {r: f for r, f in roles.items() if f and f in fields}
        if roles:
            out[key] = roles
    return out


def _names(schema: ReviewSchema, key: str, roles: dict[str, str], table_fields: dict) -> set[str]:
    oc = schema.analysis.outcomes[key]
    names = {key, fold_header(oc.label)}
    core = re.sub(r"\s*\(.*?\)\s*", " ", fold_header(oc.label)).strip()
    names.add(core)
    names.add(re.sub(r"^(?:median|mean|pooled|overall)\s+", "", core))
    words = [w for w in re.split(r"[\s\-]+", re.sub(r"^(?:median|mean)\s+", "", core)) if w and w[0].isalpha()]
    if len(words) >= 2:
        names.add("".join(w[0] for w in words))
    est = roles.get("estimate")
    if est and est in table_fields:
        fs = table_fields[est]
        for label in (*fs.aliases, *fs.synonyms):
            c = split_header(label)[0]
            if c:
                names.add(c)
    return {re.sub(r"\s+", " ", n).strip() for n in names if n}


def match_outcome(schema: ReviewSchema, tables: list[str], text: str,
                  fields: dict[str, dict[str, str]] | None = None) -> str | None:
    """The analysis outcome a long sheet's outcome cell names (``ORR``, ``Objective response rate``,
    ``PFS``, ``mPFS``), or None."""
    fields = fields if fields is not None else outcome_fields(schema, tables)
    t = re.sub(r"\s*\(.*?\)\s*", " ", fold_header(text)).strip()
    t2 = re.sub(r"^(?:median|mean)\s+", "", t)
    hits = set()
    for key, roles in fields.items():
        table = schema.analysis.outcomes[key].sheet or schema.analysis_sheet
        names = _names(schema, key, roles, schema.sheets[table].fields)
        if t in names or t2 in names:
            hits.add(key)
    return next(iter(hits)) if len(hits) == 1 else None


def _denominators(schema: ReviewSchema, tables: list[str]) -> dict[str, str]:
    """Count field -> the field that is its denominator, as the schema's checks and analysis declare it
    (``parts: [cr, pr, sd, pd]`` / ``events: [orr_n]`` / ``not_evaluable: ne`` with ``total: n_evaluable``).
    A count given two different denominators has none."""
    seen: dict[str, set[str]] = {}

    def add(counts: Any, total: Any) -> None:
        if not isinstance(total, str) or "." in total:
            return
        for c in ([counts] if isinstance(counts, str) else list(counts or ())):
            if isinstance(c, str) and "." not in c and c != total:
                seen.setdefault(c, set()).add(total)

    for table in tables:
        for check in schema.checks.get(table, ()):
            params = check.params if isinstance(check.params, dict) else {}
            total = params.get("total")
            for key in ("parts", "events", "not_evaluable"):
                add(params.get(key), total)
    for oc in schema.analysis.outcomes.values():
        if oc.kind == "proportion" and (oc.sheet or schema.analysis_sheet) in tables:
            add(oc.events, oc.total)
            add(oc.reported_events, oc.total)
    return {c: next(iter(ts)) for c, ts in seen.items() if len(ts) == 1}


def field_outcome(schema: ReviewSchema, index: FieldIndex, tables: list[str], text: str) -> dict[str, str] | None:
    """Roles -> fields for an outcome cell that names a count or a rate field itself (``CR``, ``Partial
    response``, ``SD``, ``NE``, ``DCR``): ``n`` the count, ``N`` its denominator, the estimate (``%``) the
    rate whose ``count_field`` it is. None when the text names no such field of ``tables`` (or several)."""
    core = split_header(str(text))[0]
    hits = {h for h in (*index.lookup(str(text)), *(index.lookup(core) if core else ())) if h[0] in tables}
    if len(hits) != 1:
        return None
    table, fname = next(iter(hits))
    fields = schema.sheets[table].fields
    fs = fields[fname]
    count = rate = None
    if fs.type == "integer":
        count = fname
        rate = next((f for f, s in fields.items() if s.count_field == fname), None)
    elif fs.type == "percentage" and fs.count_field and fs.count_field in fields:
        count, rate = fs.count_field, fname
    else:
        return None
    denominators = _denominators(schema, tables)
    total = denominators.get(count)
    if total is None or total not in fields:
        return None
    roles = {"events": count, "total": total}
    if rate:
        roles["estimate"] = rate
    return roles


def detect_long(schema: ReviewSchema, index: FieldIndex, grid: SheetGrid, header_texts: list[str], first_data: int,
                tables: list[str]) -> dict[str, Any] | None:
    """A long sheet's recipe (outcome column, role columns, outcome -> role -> field), or None.

    Long when one column's texts name two or more of the analysis's outcomes (most of its cells name
    one) and two or more columns are headed by roles, one of them an estimate or a count."""
    fields = outcome_fields(schema, tables)
    if len(fields) < 1:
        return None
    vals = grid.values
    body = vals[first_data:]
    if not len(body):
        return None
    roles = {c: role_of(h) for c, h in enumerate(header_texts) if h}
    roles = {c: r for c, r in roles.items() if r}
    if len(roles) < 2 or not {"estimate", "events"} & set(roles.values()):
        return None
    best = None
    field_specs: dict[str, dict[str, str]] = {}
    filled = _filled(body)
    for c, h in enumerate(header_texts):
        if c in roles or c >= body.shape[1]:
            continue
        col = body[:, c][filled[:, c]]
        texts = [t for t in (_text(v) for v in col[:2000]) if t]
        if len(texts) < 2:
            continue
        distinct = list(dict.fromkeys(texts))
        if len(distinct) > 60:
            continue
        matched = {t: match_outcome(schema, tables, t, fields) for t in distinct}
        by_field = {t: field_outcome(schema, index, tables, t) for t in distinct if not matched[t]}
        matched.update({t: "field:" + spec["events"] for t, spec in by_field.items() if spec})
        field_specs.update({"field:" + spec["events"]: spec for spec in by_field.values() if spec})
        keys = {k for k in matched.values() if k}
        share = sum(1 for t in texts if matched[t]) / len(texts)
        headed = bool(_OUTCOME_HEADER.match(fold_header(h).strip(" :")))
        if len(keys) >= 2 or (keys and headed):
            score = (len(keys), share, headed)
            if (headed or share >= 0.5) and (best is None or score > best[0]):
                best = (score, c, matched)
    if best is None:
        return None
    _score, oc_col, matched = best
    # the role columns are the run of role-headed columns beside the outcome column; a role-like header away
    # from it that names a field of the sheet (``Sample size`` = n_enrolled, left of the outcome) is that field
    run: set[int] = set()
    for step in (1, -1):
        c = oc_col + step
        while c in roles:
            run.add(c)
            c += step
        if run:
            break
    for c in [c for c in roles if c not in run]:
        if any(t in tables for t, _f in index.lookup(header_texts[c])):
            del roles[c]
    outcomes: dict[str, dict[str, str]] = {}
    for text, key in matched.items():
        outcomes[text] = dict(fields.get(key) or field_specs.get(key) or {}) if key else {}
    return {"outcome_column": column_letter(oc_col),
            "roles": {column_letter(c): r for c, r in sorted(roles.items())},
            "outcomes": outcomes}


def pivot_long(outcome_values: np.ndarray, role_values: dict[str, np.ndarray], role_of_col: dict[str, str],
               outcomes: dict[str, dict[str, str]], group: list[tuple], rows_excel: np.ndarray,
               repeats: list | None = None):
    """Long rows -> records: one per group (the study and subgroup), each value with its own row.

    A field several rows of one group give (``N`` on the ORR, CR and PR rows: ``n_evaluable``) is read
    from its first row; a later row giving the same value agrees with it (its cell counts as read), a
    later row giving another value is a conflict, reported and never read over the first.

    Parameters
    ----------
    outcome_values : array of the outcome cell of each data row
    role_values : column letter -> array of that role column's cells (one per data row)
    role_of_col : column letter -> role
    outcomes : outcome text -> {role: field}
    group : per data row, the values of the sheet's other fields (the record's identity)
    rows_excel : Excel row of each data row

    Returns
    -------
    records : list of (first data-row position, {field: value}, {field: Excel row}, {field: column letter},
        {field: unit})
    unread : list of (data-row position, outcome text, reason)
    consumed : set of (data-row position, column letter) of the role cells read
    conflicts : list of (data-row position, column letter, field, value, Excel row read, value read)
    repeats : when given, receives (data-row position, Excel row of the first entry, outcome text, fields whose
        values differ) for each row that gives a field of its record again for the same outcome (the study's
        rows entered twice): such a row is not read (a duplicate key, never a silent merge). A field given
        again by a row of another outcome (``N`` on the ORR and the CR rows) is the agreement check above.
    """
    records: list[tuple[int, dict, dict, dict, dict]] = []
    consumed: set[tuple[int, str]] = set()
    by_group: dict[tuple, int] = {}
    unread: list[tuple[int, str, str]] = []
    conflicts: list[tuple[int, str, str, Any, int, Any]] = []
    origin: list[dict[str, tuple[tuple, int]]] = []  # per record: field -> (outcome that gave it, Excel row)
    for k in range(len(outcome_values)):
        t = _text(outcome_values[k]) or _cell_text(outcome_values[k])
        spec = outcomes.get(t) if t else None
        if not spec:
            if any(_cell_text(v[k]) for v in role_values.values()):
                unread.append((k, t or "", "names no outcome of the schema's analysis" if t else "names no outcome"))
            continue
        got = {}
        where = {}
        unit = unit_letter = None
        for letter, arr in role_values.items():
            role = role_of_col[letter]
            v = arr[k]
            if v is None or _cell_text(v) == "":
                continue
            if role == "unit" and any(r in spec for r in ("estimate", "low", "high")):
                unit, unit_letter = _cell_text(v), letter
                continue
            f = spec.get(role)
            if f is None or f in got:
                continue
            got[f] = v
            where[f] = letter
        if not got:
            continue
        key = group[k]
        target = by_group.get(key)
        if target is None:
            records.append((k, {}, {}, {}, {}))
            origin.append({})
            target = by_group[key] = len(records) - 1
        rec = records[target]
        outcome = tuple(sorted(spec.items()))
        first = next((origin[target][f][1] for f in got if f in origin[target] and origin[target][f][0] == outcome),
                     None)
        if first is not None and repeats is not None:  # this outcome's fields again: the row entered twice
            repeats.append((k, first, t, sorted(f for f in got if f in rec[1] and
                                                 _cell_text(rec[1][f]) != _cell_text(got[f]))))
            continue
        if unit_letter is not None:
            consumed.add((k, unit_letter))
        for f, v in got.items():
            if f in rec[1]:
                if _cell_text(rec[1][f]) != _cell_text(v):
                    conflicts.append((k, where[f], f, v, rec[2][f], rec[1][f]))
                    continue
                consumed.add((k, where[f]))  # the same value again: agrees with the cell read
                continue
            rec[1][f] = v
            origin[target][f] = (outcome, int(rows_excel[k]))
            rec[2][f] = int(rows_excel[k])
            rec[3][f] = where[f]
            consumed.add((k, where[f]))
            if unit and f in (spec.get("estimate"), spec.get("low"), spec.get("high")):
                rec[4][f] = unit
    return records, unread, consumed, conflicts

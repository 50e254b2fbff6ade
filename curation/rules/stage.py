"""The check stage: every check the schema names, run over whole columns, and what each could look at.

Besides its findings, each check reports its **coverage** (:class:`Coverage`): how many records
of its sheet it applies to (rows holding any of the fields it compares), how many it checked
(rows holding all of them, or a group with its total) and, for the rest, why not (a field
empty, a column not in the form, a group without its total). A check that ran on nothing, or on
under half of the records it applies to, is a warning (``check-not-run``, ``check-partly-run``)
naming the check and the reason: a check that silently never runs is a check the reviewer
believes passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ..findings import Finding
from .context import Context
from .registry import _COVER, REGISTRY, Rule, declare

declare("check-not-run", "warning",
        "A check that ran on none of the records it applies to (a field empty on every row, a column not in the "
        "form, no group with its total), or that can never run on the schema's sheets (its fields never meet on "
        "one row or group).", "coverage")
declare("check-partly-run", "warning",
        "A check that ran on under half of the records it applies to; names how many it could not check and why.",
        "coverage")

#: Parameter kinds that name fields.
FIELD_KINDS = ("field", "fields", "ref", "refs")

@dataclass(frozen=True)
class Coverage:
    """How much of its sheet one check could look at.

    Attributes
    ----------
    check : str
        The rule code of the check (as named under ``checks:``).
    sheet : str
        The contract sheet it ran on.
    fields : tuple of str
        The fields it compares (as the schema names them; ``sheet.field`` for another sheet's).
    applicable : int
        Records the check applies to: rows holding every field it compares on their own sheet
        (the data it checks is there).
    checked : int
        Of those, the records it checked: the fields it reads elsewhere are there too (the
        study's ``n_randomised``), the row's group holds its total, its grade has a band.
    reasons : tuple of (str, int)
        Why the other applicable records were not checked, with how many:
        ``"studies.n_enrolled empty"``, ``"its group has a row without every arm total"``.
    incomplete : tuple of (str, int)
        Rows holding only some of the fields it compares on their own sheet, by the first one
        they lack (``"pr empty"``, ``"column ne not in the form"``): not checked, and not
        counted as applicable (a paper that does not report PR leaves nothing to check).
    never : str
        Why the check can never run on this schema's sheets (its fields never meet on one row
        or group); empty when it can.
    """

    check: str
    sheet: str
    fields: tuple[str, ...]
    applicable: int
    checked: int
    reasons: tuple[tuple[str, int], ...] = ()
    incomplete: tuple[tuple[str, int], ...] = ()
    never: str = ""

    @property
    def skipped(self) -> int:
        """Applicable records the check could not look at."""
        return self.applicable - self.checked

    @property
    def status(self) -> str:
        """``never`` (its fields never meet), ``no data`` (no row holds its fields), ``not run``
        (it checked none of the records it applies to), ``partly run`` (under half) or ``ran``."""
        if self.never:
            return "never"
        if self.applicable == 0:
            return "no data"
        if self.checked == 0:
            return "not run"
        if 2 * self.checked < self.applicable:
            return "partly run"
        return "ran"

    @property
    def label(self) -> str:
        """The check as a reviewer reads it: ``percentage-mismatch (orr_pct, cr, pr, ...)``."""
        return f"{self.check} ({', '.join(self.fields[:3])}{', ...' if len(self.fields) > 3 else ''})"

    def why(self) -> str:
        """Why records were not checked, as one phrase: ``studies.n_enrolled empty (3 rows)``
        (rows with only some of its fields last, as ``only some fields: pr empty (2 rows)``)."""
        if self.never:
            return self.never

        def text(pairs):
            return "; ".join(f"{r} ({n} row{'s' if n != 1 else ''})" for r, n in pairs)

        parts = [text(self.reasons)] if self.reasons else []
        if self.incomplete:
            parts.append("only some of its fields: " + text(self.incomplete))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "sheet": self.sheet, "fields": list(self.fields), "applicable": self.applicable,
                "checked": self.checked, "skipped": self.skipped, "status": self.status,
                "reasons": [{"reason": r, "records": n} for r, n in self.reasons],
                "incomplete": [{"reason": r, "records": n} for r, n in self.incomplete], "never": self.never or None}


def coverage_rows(coverage: Iterable[Coverage]) -> list[dict[str, Any]]:
    """The coverage table, one plain row per check (what ``curate validate`` prints and the report
    shows): check, sheet, fields, applicable, checked, skipped, status and why."""
    return [{"check": c.check, "sheet": c.sheet, "fields": ", ".join(c.fields), "applicable": c.applicable,
             "checked": c.checked, "skipped": c.skipped, "status": c.status, "why": c.why()} for c in coverage]


# ---------------------------------------------------------------------------------------------
# Which fields a check needs, and whether they can meet on one row
# ---------------------------------------------------------------------------------------------


def _refs(rule: Rule, params: dict[str, Any], names: Iterable[str] | None = None) -> list[str]:
    kinds = {p.name: p.kind for p in rule.params}
    wanted = list(names) if names is not None else [p.name for p in rule.params]
    out: list[str] = []
    for name in wanted:
        v = params.get(name)
        if v is None or kinds.get(name) not in FIELD_KINDS:
            continue
        out.extend([v] if isinstance(v, str) else [x for x in v if isinstance(x, str)])
    return out


def _compared(rule: Rule, params: dict[str, Any]) -> tuple[str, ...]:
    """The fields a check compares (its field parameters but the ones that only group rows)."""
    return tuple(dict.fromkeys(_refs(rule, params, [p.name for p in rule.params if p.name != "group_by"])))


def needed_refs(rule: Rule, params: dict[str, Any]) -> list[str]:
    """The fields a row must hold for the check to look at it: its ``needs`` (or every required
    field parameter), as the entry names them."""
    names = rule.needs if rule.needs is not None else [p.name for p in rule.params if p.required]
    return list(dict.fromkeys(_refs(rule, params, names)))


def never_meets(schema: Any, sheet: str, rule: Rule, params: dict[str, Any]) -> str:
    """Why a check's fields can never meet on one row or group of ``sheet``, or ``""``.

    A field of another sheet is read from the row's own study (its parent sheet, or the root
    sheet the parent links to); a field of any other sheet (a sibling: ``adverse_events`` from
    ``outcomes``) has no one row to read it from. A check that adds rows up by ``group_by``
    grouped by the whole row key sums one row per group: its parts never meet.
    """
    spec = schema.sheets[sheet]
    reachable = {schema.root_sheet} | ({spec.parent.sheet} if spec.parent is not None else set())
    across = [p.name for p in rule.params if not p.by_study]
    for ref in _refs(rule, params, across):
        if "." in ref:
            other = ref.split(".", 1)[0]
            linked = spec.parent is not None or "study_id" in spec.fields  # how Context.values links rows
            if other != sheet and (other not in reachable or not linked):
                return (f"{ref} is on the {other} sheet, which is not the {sheet} sheet's parent: no row of "
                        f"{other} belongs to one row of {sheet}, so the fields never meet")
    group = params.get("group_by")
    if group and spec.key and set(spec.key) <= set(group):
        return (f"group_by [{', '.join(group)}] holds the whole row key of {sheet}: every group is one row, so "
                f"the rows it adds up never meet")
    return ""


def _present(ctx: Context, sheet: str, ref: str):
    """Rows of ``sheet`` where ``ref`` holds a value (a not-reached bound counts as one)."""
    out = ctx.held(sheet, ref)
    if "." not in ref:
        out = out | ctx.nr(sheet, ref)
    return out


def row_coverage(ctx: Context, sheet: str, refs: list[str]):
    """The default coverage: a row is applicable when it holds every one of ``refs`` on its own
    sheet (every row when they are all on other sheets) and checked when it also holds those of
    the other sheets; the reason is the first one it lacks."""
    import numpy as np

    n = len(ctx.table(sheet))
    applies = np.ones(n, bool)
    for ref in refs:
        if "." not in ref:
            applies &= _present(ctx, sheet, ref)
    checked = applies.copy()
    reason = np.full(n, None, dtype=object)
    for ref in refs:
        if "." in ref:
            other = ref.split(".", 1)[0]
            p = _present(ctx, sheet, ref)
            linked = ctx._parent_positions(sheet, other) >= 0
            why = np.where(linked, f"{ref} empty", f"no row on the {other} sheet")
            reason = np.where(checked & ~p, why, reason)
            checked &= p
    return applies, checked, reason


def _incomplete(ctx: Context, sheet: str, refs: list[str], applies, absent: list[str]):
    """Rows holding some but not all of the check's own-sheet fields, by the first one they lack."""
    import numpy as np

    own = [r for r in refs if "." not in r]
    n = len(ctx.table(sheet))
    if not own:
        return ()
    held = np.vstack([(_present(ctx, sheet, r) if r not in absent else np.zeros(n, bool)) for r in own])
    some = held.any(axis=0)
    lacking = some & ~applies & ~held.all(axis=0)  # holding every field yet not applicable: not incomplete
    first = np.argmin(held[:, lacking], axis=0)  # the first field each such row lacks
    counts: dict[str, int] = {}
    for k, c in zip(*np.unique(first, return_counts=True)):
        r = own[int(k)]
        counts[f"column {r} not in the form" if r in absent else f"{r} empty"] = int(c)
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _coverage(ctx: Context, sheet: str, rule: Rule, params: dict[str, Any], absent: list[str]) -> Coverage:
    import numpy as np

    refs = needed_refs(rule, params)
    fields = _compared(rule, params)
    n = len(ctx.table(sheet))
    if absent:
        own_absent = [r for r in absent if "." not in r]
        if own_absent:  # a column of its own sheet is in no form: no row holds all its fields
            return Coverage(rule.code, sheet, fields, 0, 0, (),
                            _incomplete(ctx, sheet, refs, np.zeros(n, bool), own_absent))
        # a column it reads on another sheet is in no form: the rows that hold its fields go unchecked
        applies = np.ones(n, bool)
        for r in refs:
            if "." not in r:
                applies &= _present(ctx, sheet, r)
        k = int(applies.sum())
        why = f"column {', '.join(absent)} not in the form"
        return Coverage(rule.code, sheet, fields, k, 0, ((why, k),) if k else (),
                        _incomplete(ctx, sheet, refs, applies, []))
    func = _COVER.get(rule.code)
    if func is not None:
        applies, checked, reason = func(ctx, sheet, **params)
    else:
        applies, checked, reason = row_coverage(ctx, sheet, refs)
    checked = checked & applies
    counts: dict[str, int] = {}
    for r in reason[applies & ~checked]:
        key = r if isinstance(r, str) else "not checked"
        counts[key] = counts.get(key, 0) + 1
    reasons = tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return Coverage(rule.code, sheet, fields, int(applies.sum()), int(checked.sum()), reasons,
                    _incomplete(ctx, sheet, refs, applies, []))


def never_run_checks(schema: Any) -> list[str]:
    """One line per check of ``schema`` whose fields never meet on one row or group (it cannot run
    on any form): what ``curate rules --schema`` warns of when the schema loads, and what
    ``check-not-run`` reports in every validation."""
    out = []
    for sheet, checks in schema.checks.items():
        for i, entry in enumerate(checks):
            rule = REGISTRY.get(entry.rule)
            if rule is None or rule.func is None:
                continue
            why = never_meets(schema, sheet, rule, dict(entry.params))
            if why:
                out.append(f"checks.{sheet}[{i}] {entry.rule} can never run: {why}")
    return out


def coverage_finding(ctx: Context, cov: Coverage) -> Finding | None:
    """``check-not-run`` or ``check-partly-run`` for a check that looked at too little, else None."""
    status = cov.status
    if status in ("ran", "no data"):
        return None
    t = ctx.tables.get(cov.sheet)
    files = sorted(set(t.files)) if t is not None and len(t) else []
    file = files[0] if len(files) == 1 else ", ".join(files)
    title = t.title(files[0]) if len(files) == 1 else cov.sheet
    if cov.never:
        msg = f"check {cov.label} on {cov.sheet} can never run: {cov.never}; correct the check in the schema"
        code = "check-not-run"
    elif status == "not run":
        msg = (f"check {cov.label} on {cov.sheet} ran on none of the {cov.applicable} rows that hold its fields: "
               f"{cov.why()}; whatever it checks there is unchecked")
        code = "check-not-run"
    else:
        msg = (f"check {cov.label} on {cov.sheet} ran on {cov.checked} of the {cov.applicable} rows that hold its "
               f"fields; not on {cov.skipped}: {cov.why()}")
        code = "check-partly-run"
    sev = ctx.severity(code)
    return Finding(file, title, None, None, None, None, code, sev, msg, None, cov.sheet, cov.fields)


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------


def run_check_stage(ctx: Context) -> tuple[list[Finding], list[Coverage]]:
    """Every check the schema names, each over whole columns: its findings and its coverage.

    A check whose fields never meet on one row or group (:func:`never_meets`) does not run and
    is reported as ``check-not-run``; a required column absent from every form leaves the check
    with nothing to look at (its coverage says which column); an optional one is left out of
    the check (a response sum without ``ne`` still runs). Coverage findings come last.
    """
    out: list[Finding] = []
    coverage: list[Coverage] = []
    for sheet, checks in ctx.schema.checks.items():
        rows = len(ctx.tables[sheet]) if sheet in ctx.tables else 0
        for entry in checks:
            rule = REGISTRY[entry.rule]
            params = dict(entry.params)
            never = never_meets(ctx.schema, sheet, rule, params)
            if never:  # said whatever the forms hold: the schema is wrong
                coverage.append(Coverage(rule.code, sheet, _compared(rule, params), rows, 0,
                                         never=never))
                continue
            if rows == 0:
                continue
            absent: list[str] = []
            for p in rule.params:
                if p.name == "group_by":
                    continue  # a grouping column no form has groups by the others (one group per study)
                refs = _refs(rule, params, [p.name])
                missing = [r for r in refs if not _column_exists(ctx, sheet, r)]
                if not missing:
                    continue
                if p.required or (rule.needs is not None and p.name in rule.needs):
                    absent.extend(missing)
                else:
                    params.pop(p.name)  # an optional column no form has: the check runs without it
            if absent:
                coverage.append(_coverage(ctx, sheet, rule, params, absent))
                continue
            ctx.begin(entry)
            out.extend(rule.func(ctx, sheet, entry.severity or ctx.severity(rule.code), **params))
            coverage.append(_coverage(ctx, sheet, rule, params, []))
            ctx.begin(None)
    for cov in coverage:
        f = coverage_finding(ctx, cov)
        if f is not None:
            out.append(f)
    return out, coverage


def _column_exists(ctx: Context, sheet: str, ref: str) -> bool:
    """Does some form have a column for ``ref`` (or values for it, read from another cell: a CI
    split from its median's cell)? The typed table holds every field of the schema, empty when
    no form has it."""
    other, fname = ref.split(".", 1) if "." in ref else (sheet, ref)
    t = ctx.tables.get(other)
    if t is None or fname not in t.data:
        return False
    if any(t.letter(f, fname) for f in ctx.files(other)):
        return True
    return bool(ctx.held(other, fname).any())


def run_checks(ctx: Context) -> list[Finding]:
    """Every check the schema names, each over whole columns (the findings of :func:`run_check_stage`)."""
    return run_check_stage(ctx)[0]


def apply_severities(schema: Any, findings: Iterable[Finding]) -> list[Finding]:
    """Findings of the reading and normalising stages with the schema's ``severities:`` applied
    (the checks and field rules take them as they run)."""
    from dataclasses import replace

    top = getattr(schema, "severities", None) or {}
    if not top:
        return list(findings)
    return [replace(f, severity=top[f.rule]) if f.rule in top and f.severity != top[f.rule] else f for f in findings]

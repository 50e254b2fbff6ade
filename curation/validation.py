"""Validation: read -> normalise -> check -> decide what passes -> the clean dataset.

:func:`validate` is what ``curate validate`` calls. It returns a :class:`ValidationResult`:
every finding (lazily collected: all of them, never the first only), the summary with the
conservation law ``rows_read == rows_passed + rows_excluded``, and the clean analysis dataset.
A row *passes* when it may enter at least one analysis; which analyses each passed row may enter
is decided by :mod:`curation.selection` and carried in the clean dataset (``in_<analysis>``
columns). ``rows_restricted`` counts the passed rows that some analysis may not take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .findings import FINDING_COLUMNS, SEVERITIES, Finding, Summary, sort_findings
from .layout import read_form
from .normalise import BOUND_SUFFIX, NR_SUFFIX, Table, normalise
from .reading import RawWorkbook
from .safety import limits_for  # noqa: F401 - part of this module's API
from .rules import Context, Coverage, apply_severities, run_check_stage, run_field_rules, run_links
from .schema import ReviewSchema, fold, load_schema
from .selection import Selection, key_texts, select_records, sheet_titles

PROVENANCE = ("file", "sheet", "row")


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one or more forms.

    Attributes
    ----------
    schema : ReviewSchema
        The schema the forms were checked against.
    files : tuple of str
        The forms, as given.
    finding_list : tuple of Finding
        Every finding, sorted by file, sheet, row and column.
    summary : Summary
        Rows read / passed / excluded, findings per severity, rule and sheet.
    tables : dict[str, Table]
        The typed tables (every row, passed or not).
    passed : dict[str, numpy.ndarray]
        Per sheet, which rows passed into the clean dataset: those that may enter at least one
        analysis (an error keeps a row out of the analyses that use a field it involves, and only
        of those; docs/exclusions.md).
    clean_tables : dict[str, DataFrame]
        The clean dataset per sheet, with an ``in_<analysis>`` column per analysis that takes the
        sheet's rows (True: the row may enter it).
    coverage : tuple of Coverage
        Per check the schema names: the records it applies to, how many it checked, and why
        not the rest (:mod:`curation.rules.stage`; ``curate validate`` prints it as a table).
    selection : Selection or None
        Per row and analysis, whether the row may enter it and which errors keep it out.
    """

    schema: ReviewSchema
    files: tuple[str, ...]
    finding_list: tuple[Finding, ...]
    summary: Summary
    tables: dict[str, Table]
    passed: dict[str, np.ndarray]
    clean_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    coverage: tuple[Coverage, ...] = ()
    selection: Selection | None = None

    @cached_property
    def candidate_tables(self) -> dict[str, pd.DataFrame]:
        """Every row in the form of the clean dataset (the rows excluded from every analysis too), with
        the ``in_<analysis>`` columns: what an analysis lists as left out, and "what matters most" refits."""
        if all(bool(np.all(m)) for m in self.passed.values()):
            return self.clean_tables  # nothing excluded from everything: the clean dataset is every row
        everything = {s: np.ones(len(t), bool) for s, t in self.tables.items()}
        return clean_dataset(self.schema, self.tables, everything, self.selection)

    @cached_property
    def exclusion_reasons(self) -> dict[str, dict[tuple, tuple[str, str]]]:
        """Why errors keep rows out of each analysis (:meth:`curation.selection.Selection.reason_map`)."""
        return {} if self.selection is None else self.selection.reason_map(self.schema, self.tables)

    @property
    def findings(self) -> pd.DataFrame:
        """The findings as a DataFrame (one row per finding; columns as in ``findings.csv``)."""
        return findings_frame(self.finding_list)

    @property
    def clean(self) -> pd.DataFrame:
        """The clean analysis dataset: one row per outcome cohort that passed, its study joined."""
        return self.clean_tables[self.schema.analysis_sheet]

    @property
    def ok(self) -> bool:
        return self.summary.errors == 0

    def exit_code(self, strict: bool = False) -> int:
        """0 without errors (and, with ``strict``, without warnings); 1 otherwise."""
        if self.summary.errors or (strict and self.summary.warnings):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        """``{"findings": [...], "summary": {...}}``, the object ``--json`` writes."""
        return {"findings": [f.to_dict() for f in self.finding_list], "summary": summary_dict(self.summary),
                "coverage": [c.to_dict() for c in self.coverage]}


def summary_dict(summary: Summary) -> dict[str, Any]:
    d = summary.to_dict()
    # the count per severity, under each severity's own name too (error, warning, info)
    d["error"], d["warning"] = summary.errors, summary.warnings
    d["by_severity"] = {"error": summary.errors, "warning": summary.warnings, "info": summary.info}
    return d


def findings_frame(findings: Iterable[Finding]) -> pd.DataFrame:
    rows = [f.to_dict() for f in findings]
    frame = pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
    frame["row"] = frame["row"].astype("Int64")
    return frame


def decide(schema: ReviewSchema, tables: dict[str, Table], findings: list[Finding]
           ) -> tuple[dict[str, np.ndarray], list[Finding]]:
    """Which rows pass into the clean dataset, and the ``study-excluded`` errors of rows that their
    study row's error keeps out of an analysis (:func:`curation.selection.select_records`).

    A row passes when it may enter at least one analysis that reads its sheet: an error keeps a row
    out of the analyses that use a field the error involves, and only out of those (identity and
    eligibility errors: out of all). Returns the pass masks and the extra findings.
    """
    sel = select_records(schema, tables, findings)
    return sel.passed, list(sel.extra)


def clean_dataset(schema: ReviewSchema, tables: dict[str, Table], passed: dict[str, np.ndarray],
                  selection: Selection | None = None) -> dict[str, pd.DataFrame]:
    """The clean analysis datasets: per data sheet, rows that passed, their study's fields joined.

    With ``selection``, each sheet's rows carry one ``in_<analysis>`` column per analysis that
    takes that sheet's rows (``in_orr``, ``in_dcr_by_grade``, ``in_ae``): True when the row may
    enter the analysis, False when an error in a field the analysis uses keeps it out (on the row
    or on its study's row). ``passed`` may hold rows that did not pass (every row, for "what
    matters most"): their columns then say which analyses they may not enter.

    Columns: the study's fields, the sheet's own fields (canonical values; a value with a unit
    field in its vocabulary's unit of factor 1, months in the shipped schema, so the unit columns
    are dropped), ``<field>_nr`` flags for not-reached values, ``<field>_bound`` for p-values
    (``<``, ``<=``, ``>``, ``ns`` or empty), derived event counts per proportion outcome
    (``orr_events`` ...), then provenance (``file``, ``sheet``, ``row``).
    """
    root = schema.root_sheet
    out: dict[str, pd.DataFrame] = {}
    rt = tables.get(root)
    root_key = schema.sheets[root].key[0]
    root_fields = [f for f, s in schema.sheets[root].fields.items() if not s.metadata]
    if rt is not None:
        studies = rt.data.loc[passed[root], root_fields]
        studies = studies.drop_duplicates(subset=[root_key], keep=False)
    else:
        studies = pd.DataFrame(columns=root_fields)
    units = {f for s in schema.sheets.values() for f, spec in s.fields.items() if any(
        o.unit_field == f for o in s.fields.values())}
    studies_link: pd.Series | None = None
    unique_link = False
    own_meta: pd.DataFrame | None = None
    for sheet, spec in schema.sheets.items():
        if sheet not in tables:
            continue
        t = tables[sheet]
        own = [f for f in spec.fields if f not in units]
        rows_in = np.asarray(passed[sheet], dtype=bool)
        kept = np.flatnonzero(rows_in)
        data = t.data  # read by position below (``kept``): the whole table is not copied
        frame = data.loc[rows_in, own].copy()  # (a copy: pandas < 3 would warn of setting on a slice)
        for f, fs in spec.fields.items():
            if fs.not_reached:
                frame[f + "_nr"] = data[f + NR_SUFFIX].to_numpy()[kept].astype(bool)
            if fs.type == "p_value" and f + BOUND_SUFFIX in data:  # p < 0.001 stays a bound downstream
                frame[f + "_bound"] = data[f + BOUND_SUFFIX].to_numpy()[kept].astype(object)
        if sheet != root and spec.parent is not None:
            # the link as text on both sides: a schema may type the key a number on one sheet only
            left = frame.assign(**{"_link": _key_text(frame[spec.parent.key])})
            if studies_link is None:  # the studies' side once for every sheet linked to it
                studies_link = _key_text(studies[root_key])
                # each study's link once: the join below cannot then meet two (else merge's check says so)
                unique_link = bool(studies_link.is_unique)
            right = studies.assign(**{"_link": studies_link})
            joined = left.merge(right.drop(columns=[root_key] if root_key == spec.parent.key else []),
                                how="left", on="_link", suffixes=("", "_study"),
                                validate=None if unique_link else "many_to_one").drop(columns="_link")
            # a field both sheets have (a study's N stated twice): the row's own value
            study_cols = [c for c in root_fields if c != root_key and c not in spec.fields]
            # a metadata field both sheets have (extractor): the row's own value, else its study's
            for f, fs in schema.sheets[root].fields.items():
                if fs.metadata and f in joined and rt is not None:
                    if own_meta is None:  # the studies' rows (the passed ones, each key once), every field
                        own_meta = rt.data.loc[studies.index].set_index(root_key)
                    study_meta = joined[spec.parent.key].map(own_meta[f])
                    joined[f] = joined[f].where(joined[f].notna(), study_meta)
            frame = joined[[spec.parent.key, *study_cols, *[c for c in frame.columns if c != spec.parent.key]]]
        if sheet == schema.analysis_sheet:
            for name, oc in schema.analysis.outcomes.items():
                if oc.kind == "proportion" and oc.sheet in (None, sheet):
                    ev = [e for e in ([oc.events] if isinstance(oc.events, str) else oc.events)]
                    if all(e in frame for e in ev):
                        total = np.array(frame[ev].astype(float).sum(axis=1, min_count=len(ev)).to_numpy(),
                                         dtype=float, copy=True)
                        reported = getattr(oc, "reported_events", None)
                        if reported and reported in frame:  # the n of 'ORR, n (%)' when CR, PR are not given
                            whole = frame[reported].astype(float).to_numpy()
                            total = np.where(np.isnan(total), whole, total)
                        total[~np.isfinite(total) | (np.abs(total) > 2.0**53)] = np.nan
                        frame[f"{name}_events"] = pd.array(np.round(total), dtype="Int64")
        for f in frame.columns:
            fs = spec.fields.get(f) or schema.sheets[root].fields.get(f)
            if fs is not None and fs.type in ("integer", "year"):
                v = np.array(np.round(frame[f].to_numpy(dtype=float)), dtype=float, copy=True)
                v[~np.isfinite(v) | (np.abs(v) > 2.0**53)] = np.nan  # no whole number a form can mean
                frame[f] = pd.array(v, dtype="Int64")
        if selection is not None:  # which analyses each row may enter (docs/exclusions.md)
            for column, j in selection.columns(sheet):
                frame[column] = selection.eligible[sheet][rows_in, j]
        frame["file"] = data["_file"].to_numpy()[kept]
        frame["sheet"] = sheet_titles(t, kept).tolist()  # the workbook's own name of the sheet (a list, as before: its dtype)
        frame["row"] = data["_row"].to_numpy()[kept]
        out[sheet] = frame.reset_index(drop=True)
    return out


def _key_text(col: pd.Series) -> pd.Series:
    """Key values as text (``12.0`` -> ``"12"``), None where empty: how rows of two sheets are linked."""
    return pd.Series(key_texts(col.to_numpy(dtype=object)), index=col.index, dtype=object)


def check_tables(schema: ReviewSchema, tables: dict[str, Table]) -> list[Finding]:
    """Every field rule, link and check over typed tables (no I/O)."""
    return check_stage(schema, tables)[0]


def check_stage(schema: ReviewSchema, tables: dict[str, Table]) -> tuple[list[Finding], list[Coverage]]:
    """Every field rule, link and check over typed tables (no I/O), and each check's coverage."""
    ctx = Context(schema, tables)
    findings: list[Finding] = []
    # values such as 1e308 overflow in sums and products: the comparison then decides, silently
    with np.errstate(all="ignore"):
        for sheet in schema.sheets:
            if sheet in tables:
                findings.extend(run_field_rules(ctx, sheet))
        findings.extend(run_links(ctx))
        checked, coverage = run_check_stage(ctx)
        findings.extend(checked)
    return findings, coverage


def validate_workbooks(schema: ReviewSchema, workbooks: Sequence[RawWorkbook]) -> ValidationResult:
    """Validate forms already read (the pure core of :func:`validate`)."""
    tables, findings = normalise(schema, workbooks)
    # forms validated together are one review: a contract sheet another form holds is not missing
    held = {t for wb in workbooks for t in wb.sheets} if len(workbooks) > 1 else set()
    findings = apply_severities(schema, [f for wb in workbooks for f in wb.findings
                                         if not (f.rule == "missing-sheet" and f.contract_sheet in held)] + findings)
    checked, coverage = check_stage(schema, tables)
    findings.extend(checked)
    selection = select_records(schema, tables, findings)
    passed = selection.passed
    findings.extend(selection.extra)
    findings = sort_findings(findings, schema.sheets)
    rows_read = sum(len(t) for t in tables.values())
    rows_passed = int(sum(int(m.sum()) for m in passed.values()))
    by_rule: dict[str, int] = {}
    for f in findings:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    root = schema.root_sheet
    studies = 0
    if root in tables:
        studies = int(tables[root].data[schema.sheets[root].key[0]].dropna().nunique())
    restricted = {s: int(selection.restricted[s].sum()) for s in tables}
    summary = Summary(
        forms=len(workbooks), studies=studies, rows_read=rows_read, rows_passed=rows_passed,
        rows_excluded=rows_read - rows_passed, errors=counts["error"], warnings=counts["warning"],
        info=counts["info"], by_rule=dict(sorted(by_rule.items())),
        by_sheet={s: {"read": len(t), "passed": int(passed[s].sum()), "excluded": int(len(t) - passed[s].sum()),
                      "restricted": restricted[s]}
                  for s, t in tables.items()},
        cells={wb.file: {a.sheet: a.to_dict() for a in wb.cell_accounts} for wb in workbooks if wb.cell_accounts},
        rows_restricted=sum(restricted.values()),
    )
    return ValidationResult(schema=schema, files=tuple(wb.file for wb in workbooks), finding_list=tuple(findings),
                            summary=summary, tables=tables, passed=passed,
                            clean_tables=clean_dataset(schema, tables, passed, selection), coverage=tuple(coverage),
                            selection=selection)


def validate(forms: str | Path | Sequence[str | Path], schema: str | Path | ReviewSchema | None = None,
             *, limits: Any = None, jobs: int | None = None, progress: Any = None,
             names: Sequence[str] | None = None, layout: Any = None) -> ValidationResult:
    """Validate extraction forms against a review schema.

    Parameters
    ----------
    forms : path or sequence of paths
        Forms (``.xlsx``/``.xlsm``, ``.xls``, ``.xlsb``, ``.ods``, ``.csv``, ``.tsv``), or folders of
        them; several forms are validated together (study_ids must be unique across them).
    schema : str, Path or ReviewSchema, optional
        A schema file, the name of a shipped schema, or a loaded schema (default: the
        177Lu-PRRT review).
    limits : curation.safety.Limits, optional
        Size limits checked before a workbook is parsed.
    jobs : int, optional
        Processes that read forms in parallel (default: every core when there are 4 or more
        forms). The findings are the same as one at a time.
    names : sequence of str, optional
        Each form's name in the findings (default: the path as given; the command line gives
        the file names, :func:`form_names`).
    layout : curation.layout.Layout, optional
        Where the workbook keeps the fields (``curate map``'s file, ``--layout``); default:
        inferred from each workbook.

    Returns
    -------
    ValidationResult

    Raises
    ------
    UnusableInputError
        A form that is not a usable workbook (exit code 2 on the command line).

    Examples
    --------
    >>> result = validate("extraction_forms/example_consensus.xlsx")  # doctest: +SKIP
    >>> result.findings[["cell", "rule", "severity", "message"]].head()  # doctest: +SKIP
    >>> result.clean.head()  # doctest: +SKIP
    """
    sch = schema if isinstance(schema, ReviewSchema) else load_schema(schema)
    paths = expand_forms(forms)
    workbooks = read_forms(paths, sch, limits=limits, jobs=jobs, progress=progress, names=names, layout=layout)
    return validate_workbooks(sch, workbooks)


def read_forms(paths: Sequence[Path], schema: ReviewSchema, *, limits: Any = None, jobs: int | None = None,
               progress: Any = None, names: Sequence[str] | None = None,
               data: Sequence[bytes] | None = None, layout: Any = None) -> list[RawWorkbook]:
    """Read several forms, in parallel processes when there are many (order is kept).

    ``names``: each form's name in the findings (default: the path as given); ``data``: each
    form's bytes read beforehand (a snapshot; the files are then not opened again).
    """
    import os

    from .workers import process_pool

    names = [str(p) for p in paths] if names is None else list(names)
    blobs = [None] * len(paths) if data is None else list(data)
    if jobs is None:
        jobs = min(os.cpu_count() or 1, len(paths)) if len(paths) >= 4 else 1
    if jobs <= 1 or len(paths) < 2:
        out = []
        for p, name, blob in zip(paths, names, blobs):
            out.append(read_form(p, schema, display_name=name, limits=limits, data=blob, layout=layout))
            if progress:
                progress(p)
        return out
    with process_pool(jobs) as pool:
        futures = [pool.submit(read_form, p, schema, display_name=name, limits=limits, data=blob, layout=layout)
                   for p, name, blob in zip(paths, names, blobs)]
        out = []
        for p, fut in zip(paths, futures):
            out.append(fut.result())
            if progress:
                progress(p)
        return out


def form_names(paths: Sequence[str | Path]) -> list[str]:
    """How the outputs name each form: its file name (``example.xlsx``), never a local path.

    Forms of the same file name in different folders get as many of their last folders as
    tell them apart (``a/example.xlsx``, ``b/example.xlsx``); the same file given twice gets
    ``example.xlsx (2)``.
    """
    import os

    keys = [os.path.normpath(os.path.abspath(p)) for p in paths]
    unique = list(dict.fromkeys(keys))
    parts = {k: [x for x in Path(k).parts if x not in ("/", "..", "\\")] or [k] for k in unique}
    name = {k: parts[k][-1] for k in unique}
    for depth in range(2, max(len(v) for v in parts.values()) + 1):
        values = list(name.values())
        clash = [k for k in unique if values.count(name[k]) > 1]
        if not clash:
            break
        for k in clash:
            name[k] = "/".join(parts[k][-depth:])
    seen: dict[str, int] = {}
    out = []
    for k in keys:
        seen[k] = seen.get(k, 0) + 1
        out.append(name[k] if seen[k] == 1 else f"{name[k]} ({seen[k]})")
    return out


def expand_forms(forms: str | Path | Sequence[str | Path]) -> list[Path]:
    """Paths of the forms: files as given, folders expanded to their forms (sorted): ``.xlsx``, ``.xlsm``,
    ``.xls``, ``.xlsb``, ``.ods``, ``.csv`` and ``.tsv`` files, not Excel's lock files (``~$...``), hidden
    files or the annotated copies ``curate run`` writes. A folder of workbooks, one per study, is one review."""
    from .errors import UnusableInputError
    from .reading import FORM_SUFFIXES

    items = [forms] if isinstance(forms, (str, Path)) else list(forms)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in FORM_SUFFIXES and q.is_file()
                           and not q.name.startswith(("~$", ".")) and ".annotated." not in q.name)
            if not found:
                raise UnusableInputError(f"{p}: folder holds no form ({', '.join(FORM_SUFFIXES)} files)")
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise UnusableInputError("no form given")
    return out

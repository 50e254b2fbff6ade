"""The source check as a stage of ``curate run``, and what the outputs show of it.

:func:`check_against_sources` is the hook between validation and selection: it hands the validated
tables to the article checker (:func:`curation.sources.verify_tables`, contract ``sources.md``) and
returns the :class:`SourceCheck`: the verification entries, and the validation result with the
source findings added to its findings (they are warnings and info: a record is never excluded for
them, so the rows that pass are the same).

The renderers below take *plain* entries (the checker's ``VerificationEntry`` objects or their
``to_dict()`` dictionaries, with ``file``, ``sheet``, ``row``, ``column``, ``cell``, ``field``,
``study_id``, ``value``, ``status``, ``source``, ``place``, ``quote``, ``printed``), so that the
report and the annotated workbooks depend on the contract's fields, never on the checker's insides:

* :func:`sources_view`: the report's Sources section, per study (share of figures found, every
  mismatch and inconsistency with its quote and place);
* :func:`cell_notes`: per verified cell of a form, the line its comment gets in the annotated copy;
* :func:`entry_dicts` / :func:`summary_line`: the JSON entries and one line for the terminal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

#: The statuses of the contract, in the order the report lists them.
STATUSES = ("found", "found-elsewhere", "mismatch", "absent", "inconsistent-source", "unreadable")
#: The fields of a verification entry (contract ``sources.md``), the columns of ``verification.csv``.
ENTRY_COLUMNS = ("file", "sheet", "row", "column", "cell", "field", "study_id", "value", "status", "source", "place",
                 "quote", "printed")
#: Statuses the report lists one by one with their quote (the others are counted).
PROBLEMS = ("mismatch", "inconsistent-source")


@dataclass(frozen=True)
class SourceCheck:
    """The source check of one run.

    Attributes
    ----------
    sources : str
        The sources folder, as given.
    entries : tuple
        One verification entry per verified cell (the checker's objects).
    validation : ValidationResult
        The run's validation result with the source findings among its findings.
    findings : tuple of Finding
        The source findings alone.
    """

    sources: str
    entries: tuple[Any, ...]
    validation: Any
    findings: tuple[Any, ...] = ()


def check_against_sources(schema: Any, validation: Any, sources: str | Path, *, cache_dir: Any = None) -> SourceCheck:
    """Check every verified cell of a validated run against its study's article.

    Parameters
    ----------
    schema : ReviewSchema
    validation : ValidationResult
        The run's validation (its typed tables carry each cell's provenance).
    sources : path
        The folder of article files (``--sources DIR``).
    cache_dir : path, False or None
        Where the checker keeps extracted text by file hash (None: its default; False: none).

    Returns
    -------
    SourceCheck

    Raises
    ------
    UnusableInputError
        ``sources`` is not a folder, or this installation has no article checker.
    """
    from .errors import UnusableInputError

    folder = sources_folder(sources)
    try:
        from .sources import verify_tables  # type: ignore[attr-defined]
    except ImportError:
        raise UnusableInputError("--sources: this installation has no article checker (curation.sources); "
                                 "run without --sources, or install the full curation package") from None
    result = verify_tables(schema, validation, folder, cache_dir=cache_dir)
    findings = tuple(result.findings)
    return SourceCheck(sources=str(sources), entries=tuple(result.entries),
                       validation=with_findings(schema, validation, findings), findings=findings)


def sources_folder(sources: str | Path) -> Path:
    """``--sources DIR`` as a folder; :class:`~curation.errors.UnusableInputError` (exit 2) when it is not one."""
    from .errors import UnusableInputError

    folder = Path(sources)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise UnusableInputError(f"{sources}: {what}; --sources names the folder of the studies' articles "
                                 "(PDF or JATS XML)")
    return folder


def with_findings(schema: Any, validation: Any, extra: Sequence[Any]) -> Any:
    """``validation`` with ``extra`` findings added: sorted among the others, counted in the summary.

    The rows that pass are kept as they are: the source findings are warnings and info, which never
    exclude a record (an error among them would be counted, and shown, but would not exclude).
    """
    from .findings import SEVERITIES, sort_findings

    if not extra:
        return validation
    findings = sort_findings([*validation.finding_list, *extra], schema.sheets)
    by_rule: dict[str, int] = {}
    for f in findings:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    summary = dataclasses.replace(validation.summary, errors=counts["error"], warnings=counts["warning"],
                                  info=counts["info"], by_rule=dict(sorted(by_rule.items())))
    return dataclasses.replace(validation, finding_list=tuple(findings), summary=summary)


# ---------------------------------------------------------------------------------------------
# Rendering plain entries
# ---------------------------------------------------------------------------------------------


def entry_dict(entry: Any) -> dict[str, Any]:
    """An entry as a plain dictionary (a dict as it is, else its ``to_dict()``, else its fields)."""
    if isinstance(entry, dict):
        return entry
    if hasattr(entry, "to_dict"):
        return entry.to_dict()
    if dataclasses.is_dataclass(entry):
        return dataclasses.asdict(entry)
    raise TypeError(f"not a verification entry: {type(entry).__name__}")


def entry_dicts(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """The entries as the JSON outputs write them (``verification``)."""
    return [entry_dict(e) for e in entries]


def counts(entries: Iterable[Any]) -> dict[str, int]:
    """Entries per status, every status listed."""
    out = {s: 0 for s in STATUSES}
    for e in entries:
        s = entry_dict(e).get("status")
        out[s] = out.get(s, 0) + 1
    return out


def _value_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}" if abs(v) < 1e15 else str(v)
    return str(v)


def _share(found: int, total: int) -> str:
    return "" if not total else f"{100 * found / total:.0f}%"


def _one_line(text: Any, limit: int = 240) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def sources_view(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """The report's Sources section: one item per study, in the order the entries come.

    Each item: ``study``, ``sources`` (the article files), ``checked`` (cells verified against a
    readable article), ``found`` (printed next to the field's words), ``share`` (found / checked),
    the count of every status (``counts``), ``problems`` (each mismatch and inconsistency: cell,
    field, value, status, printed, place, quote), ``others`` (found elsewhere and absent, same
    keys) and ``unreadable`` (why the study, or some of its cells, could not be checked).
    """
    studies: dict[Any, dict[str, Any]] = {}
    for e in map(entry_dict, entries):
        sid = e.get("study_id") or "(no study id)"
        st = studies.get(sid)
        if st is None:
            st = studies[sid] = {"study": sid, "sources": [], "counts": {s: 0 for s in STATUSES}, "problems": [],
                                 "others": [], "unreadable": []}
        status = e.get("status")
        st["counts"][status] = st["counts"].get(status, 0) + 1
        if e.get("source") and e["source"] not in st["sources"]:
            st["sources"].append(e["source"])
        row = {"cell": e.get("cell") or "", "field": e.get("field") or "", "value": _value_text(e.get("value")),
               "status": status, "printed": _value_text(e.get("printed")), "place": e.get("place") or "",
               "quote": _one_line(e.get("quote"), 300)}
        if status in PROBLEMS:
            st["problems"].append(row)
        elif status in ("found-elsewhere", "absent"):
            st["others"].append(row)
        elif status == "unreadable":
            why = _one_line(e.get("quote") or e.get("place") or "no readable article matched the study", 300)
            if why not in st["unreadable"]:
                st["unreadable"].append(why)
    out = []
    for st in studies.values():
        c = st["counts"]
        checked = sum(n for s, n in c.items() if s != "unreadable")
        st["checked"] = checked
        st["found"] = c.get("found", 0)
        st["share"] = _share(c.get("found", 0), checked)
        st["sources"] = ", ".join(st["sources"])
        out.append(st)
    return out


def summary_line(entries: Sequence[Any]) -> str:
    """One line for the terminal: ``42 figures checked against their articles: 38 found, ...``."""
    c = counts(entries)
    checked = sum(n for s, n in c.items() if s != "unreadable")
    parts = [f"{c['found']} found ({_share(c['found'], checked) or '-'})"]
    for s, word in (("found-elsewhere", "found elsewhere"), ("mismatch", "mismatch"),
                    ("inconsistent-source", "inconsistent in the article"), ("absent", "absent")):
        if c.get(s):
            parts.append(f"{c[s]} {word}{'es' if s == 'mismatch' and c[s] != 1 else ''}")
    text = f"{checked} figure{'s' if checked != 1 else ''} checked against their articles: " + ", ".join(parts)
    if c.get("unreadable"):
        text += f"; {c['unreadable']} not checked (no readable article)"
    return text


_NOTE = {
    "found": "found in {place}",
    "found-elsewhere": "printed in {place}, but not next to the words for this field",
    "mismatch": "MISMATCH: the article prints {printed} here ({place})",
    "inconsistent-source": "the article prints two values for this figure: {place}",
    "absent": "not found in {source}",
    "unreadable": "not checked: {why}",
}


def note_text(entry: Any) -> str:
    """The annotated copy's comment line for one verified cell: status, place and quote."""
    e = entry_dict(entry)
    status = e.get("status")
    why = _one_line(e.get("quote") or e.get("place") or "no readable article matched the study", 200)
    text = _NOTE.get(status, str(status)).format(place=e.get("place") or e.get("source") or "the article",
                                                 printed=_value_text(e.get("printed")) or "another value",
                                                 source=e.get("source") or "the article", why=why)
    quote = e.get("quote")
    if quote and status not in ("unreadable", "absent"):
        text += f': "{_one_line(quote, 200)}"'
    return "Source: " + text


def cell_notes(entries: Iterable[Any], file: str | None = None) -> dict[tuple[str, int, str], str]:
    """Per cell of one form (``file``: its name in the entries; None: every entry), the comment line
    its verification gives: ``{(sheet, row, column): text}``. Entries without a cell are left out
    (their study's finding is on the studies row already)."""
    out: dict[tuple[str, int, str], str] = {}
    for e in map(entry_dict, entries):
        if file is not None and e.get("file") != file:
            continue
        if e.get("sheet") is None or e.get("row") is None or not e.get("column"):
            continue
        key = (str(e["sheet"]), int(e["row"]), str(e["column"]))
        line = note_text(e)
        out[key] = out[key] + "\n" + line if key in out else line
    return out

"""The stage: every verified cell of the typed tables checked against its study's article.

Input (how validation hands records on): the typed tables with their provenance, that is a
:class:`curation.validation.ValidationResult` or its ``tables`` (``{sheet: curation.normalise.Table}``:
each row's form file, Excel row, the column letter of each field and the workbook's sheet name), or
the clean records (``{sheet: DataFrame}`` with ``file``, ``sheet`` and ``row`` columns; no column
letters then). Output: a :class:`~.model.Verification` (entries and findings); nothing is written.

Which fields are verified: per field ``verify:`` (true/false) when the schema says; by default
every number field (integer, number, percentage, year, p_value) and vocabulary field, never a key,
a link, a metadata or derived field, an identifier (``doi``, ``pmid``, ``pmcid``, a ``type: source``
field) or a unit field. The words that name a field: ``source_terms:``; by default its aliases and
synonyms, with the words that only say how it is written (``95% CI``, ``lower``, ``months``, ``n``,
``%``) also dropped, and a CI bound's estimate's words (the field whose ``combined`` names it, or
``pfs_median`` for ``pfs_ci_low``).

Which file is which study's: a studies field of ``type: source`` (a file name, a DOI, a PMID or a
PMCID; several separated by ``;``), else the studies' ``doi``/``pmid``/``pmcid`` fields, else the
study id, or the first author and year, in the file name or the article's metadata. A study that
no file matches, or whose file another study's name also matches, is one ``source-unreadable``
finding, never a guess.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..findings import Finding, quote_sheet
from .articles import SUFFIXES, Article, ArticleLimits
from .match import Judgement, Prepared, Want, find_terms, find_value, judge, prepare
from .model import Place, StudySources, Verification, VerificationEntry
from .numbers import decimals_of

NR_SUFFIX = "__nr"  # curation.normalise's column of NR flags (not imported: the stage takes plain tables)
NOT_REACHED_VALUE = "NR"  # a cell whose median was typed as not reached
NUMBER_TYPES = ("integer", "number", "percentage", "year", "p_value")
IDENTIFIERS = ("doi", "pmid", "pmcid", "pmc", "source", "source_file", "file")
_STOP = {"ci", "95%", "95", "%", "(%)", "low", "lower", "high", "upper", "limit", "limits", "bound", "months",
         "month", "(months)", "mo", "n", "(n)", "pct", "percent", "no", "no.", "value", "lcl", "ucl", "ll", "ul",
         "number", "of", "count", "(95%", "ci)"}


@dataclass(frozen=True)
class FieldPlan:
    """How one field is verified: its terms, the kind of number it is, (vocabularies) each term's words, and the
    row's fields printed with it (a CI bound's estimate and other bound; an estimate's bounds)."""

    sheet: str
    field: str
    terms: tuple[str, ...]
    want: Want
    vocabulary: dict[str, tuple[str, ...]] | None = None
    companions: tuple[str, ...] = ()


#: Words articles use for fields that systematic reviews commonly extract, added to a field's own aliases and
#: synonyms when the schema gives no ``source_terms`` (matched on the field's key).
THESAURUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"^n_?(?:enrolled|randomi[sz]ed|included|total|patients|participants)$",
     ("enrolled", "randomised", "randomized", "randomly assigned", "recruited", "included")),
    (r"^n_?evaluable", ("evaluable", "assessable", "evaluated for response")),
    (r"^orr", ("objective response", "responded", "overall response", "response rate")),
    (r"^dcr", ("disease control", "clinical benefit")),
    (r"^pfs", ("progression-free survival", "PFS")),
    (r"^os(?:_|$)", ("overall survival", "OS")),
    (r"follow_?up", ("follow-up", "followed up")),
    (r"^(?:hr|hazard_ratio)", ("hazard ratio", "HR")),
    (r"^(?:rr|risk_ratio|relative_risk)", ("relative risk", "risk ratio", "RR")),
    (r"^(?:or|odds_ratio)(?:_|$)", ("odds ratio", "OR")),
)
#: Publication-year fields: checked against the article's own date (JATS front matter, the PDF's first page).
YEAR_FIELDS = ("year", "publication_year", "pub_year", "year_published")


#: Column-header words too common in articles to name a figure there (``patients``, ``site``, ``safety``).
GENERIC = {"patients", "patient", "pts", "n patients", "treated", "n treated", "site", "primary", "agent", "drug",
           "compound", "criteria", "criteria used", "analysed", "analyzed", "safety", "(safety)", "prog", "prog.",
           "total events", "yr", "year", "study", "type", "number", "n", "id", "tracer", "population", "fu",
           "progression", "events", "rate", "median", "total", "all grades", "any grade", "any-grade"}


def _clean(term: str) -> str:
    words = [w for w in re.split(r"\s+", term.strip()) if w.lower().strip(",:;") not in _STOP]
    return " ".join(words).strip(" ,:;-")


def default_terms(schema: Any, sheet: str, name: str) -> tuple[str, ...]:
    """A field's words in articles: ``source_terms`` when the schema gives them, else its aliases and synonyms
    (and their cores without ``95% CI``, ``months``, ``n``, ``%``), and for a CI bound its estimate's words."""
    spec = schema.sheets[sheet].fields[name]
    explicit = getattr(spec, "source_terms", None)
    if explicit:
        return tuple(dict.fromkeys(str(t) for t in explicit if str(t).strip()))
    out: list[str] = []
    label = getattr(spec, "label", None)
    for t in ([label] if label else []) + list(spec.aliases) + list(spec.synonyms):
        for x in (t, _clean(t)):
            if x and len(x) >= 2 and x not in out and x.lower() not in GENERIC:
                out.append(x)
    for pattern, words in THESAURUS:
        if re.search(pattern, name, re.I):
            out.extend(w for w in words if w not in out)
    parent = _estimate_of(schema, sheet, name)
    if parent:
        for t in default_terms(schema, sheet, parent):
            if t not in out:
                out.append(t)
    if not out:
        out.append(name.replace("_", " "))
    return tuple(out)


def _bound_side(schema: Any, sheet: str, name: str) -> str | None:
    for other, fs in schema.sheets[sheet].fields.items():
        comb = getattr(fs, "combined", None) or {}
        for side, f in comb.items():
            if f == name:
                return side
    if re.search(r"(?:_ci)?_(?:low|lower|lcl|ll|lo)$", name):
        return "low"
    if re.search(r"(?:_ci)?_(?:high|upper|ucl|ul|hi)$", name):
        return "high"
    return None


def _estimate_of(schema: Any, sheet: str, name: str) -> str | None:
    fields = schema.sheets[sheet].fields
    for other, fs in fields.items():
        comb = getattr(fs, "combined", None) or {}
        if name in comb.values():
            return other
    m = re.match(r"(.+?)(?:_ci)?_(?:low|lower|lcl|ll|lo|high|upper|ucl|ul|hi)$", name)
    if m:
        stem = m.group(1)
        for cand in (stem, f"{stem}_median", f"{stem}_estimate", f"{stem}_effect", f"{stem}_mean", f"{stem}_hr"):
            if cand in fields and cand != name:
                return cand
    return None


def _companions(schema: Any, sheet: str, name: str) -> tuple[str, ...]:
    fields = schema.sheets[sheet].fields
    est = _estimate_of(schema, sheet, name)
    if est:
        sibs = [f for f in fields if f != name and _estimate_of(schema, sheet, f) == est]
        return (est, *sibs)
    comb = getattr(fields[name], "combined", None) or {}
    bounds = [f for f in comb.values() if f in fields]
    if not bounds:
        bounds = [f for f in fields if f != name and _estimate_of(schema, sheet, f) == name]
    return tuple(bounds)


def plan(schema: Any) -> dict[str, dict[str, FieldPlan]]:
    """Which fields of each sheet are verified, and how."""
    out: dict[str, dict[str, FieldPlan]] = {}
    units = {fs.unit_field for s in schema.sheets.values() for fs in s.fields.values() if fs.unit_field}
    decided = getattr(schema, "verified_fields", None)  # the schema's own rule, when it has one
    for sheet, sspec in schema.sheets.items():
        keys = set(sspec.key) | ({sspec.parent.key} if sspec.parent else set())
        chosen = set(decided(sheet)) if callable(decided) else None
        mine: dict[str, FieldPlan] = {}
        for name, fs in sspec.fields.items():
            flag = getattr(fs, "verify", None)
            ftype = str(fs.type)
            if chosen is not None:
                if name not in chosen or (ftype not in NUMBER_TYPES and ftype != "vocabulary"):
                    continue
            elif flag is False:
                continue
            elif flag is None:
                if name in keys or fs.metadata or getattr(fs, "derived", False) or name in units \
                        or ftype == "source" or name.lower() in IDENTIFIERS:
                    continue
                if ftype not in NUMBER_TYPES and ftype != "vocabulary":
                    continue
            elif ftype not in NUMBER_TYPES and ftype != "vocabulary":
                continue
            terms = default_terms(schema, sheet, name)
            if ftype == "vocabulary":
                vocab = schema.vocabularies.get(fs.vocabulary) if fs.vocabulary else None
                words = {t.value: tuple(dict.fromkeys([t.value, *t.aliases])) for t in vocab.terms} if vocab else {}
                mine[name] = FieldPlan(sheet, name, terms, Want("value", "vocabulary"), words)
                continue
            side = _bound_side(schema, sheet, name)
            role = side or ("p" if ftype == "p_value" else "value")
            want = Want(role, ftype, percent_unit=str(getattr(fs, "unit", None) or "").strip() == "%",
                        not_reached=bool(getattr(fs, "not_reached", False)) and role == "value")
            mine[name] = FieldPlan(sheet, name, terms, want, None, _companions(schema, sheet, name))
        out[sheet] = mine
    return out


# ------------------------------------------------------------------------------------------------
# Rows with provenance
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    sheet: str  # contract sheet
    file: str
    title: str  # the workbook's own sheet name
    row: int | None
    letter: str | None
    study_id: str | None
    field: str
    value: Any
    raw: Any
    row_values: Any = None  # the row's other verified fields: {field: value}
    cohort: str | None = None  # a subgroup row's label (the sheet's key besides the study): "pancreas"

    @property
    def ref(self) -> str:
        if self.row is None:
            return quote_sheet(self.title)
        return f"{quote_sheet(self.title)}!{self.letter or ''}{self.row}" if self.letter else \
            f"{quote_sheet(self.title)}!{self.row}:{self.row}"


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip())


def _tables_of(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "tables") and isinstance(getattr(obj, "tables"), dict):
        return obj.tables
    if isinstance(obj, dict):
        return obj
    raise TypeError("verify_tables takes a ValidationResult, its tables {sheet: Table} or clean records "
                    "{sheet: DataFrame with file, sheet and row columns}")


def _link(schema: Any, sheet: str) -> str:
    spec = schema.sheets[sheet]
    if spec.parent is not None:
        return spec.parent.key
    return spec.key[0]


def iter_cells(schema: Any, tables: dict[str, Any], plans: dict[str, dict[str, FieldPlan]]) -> Iterator[Cell]:
    """Every non-empty cell of a verified field, with its provenance, in sheet and row order."""
    for sheet in schema.sheets:
        t = tables.get(sheet)
        if t is None or not plans.get(sheet):
            continue
        link = _link(schema, sheet)
        data = t.data if hasattr(t, "data") else t
        is_table = hasattr(t, "letters")
        files = list(data["_file"] if is_table else data["file"])
        rows = list(data["_row"] if is_table else data["row"])
        titles = [t.title(f) for f in files] if is_table else list(data["sheet"]) if "sheet" in data else \
            [sheet] * len(files)
        links = list(data[link]) if link in data else [None] * len(files)
        sub_keys = [k for k in schema.sheets[sheet].key if k != link and k in data]
        cohorts = list(data[sub_keys[0]]) if sub_keys else [None] * len(files)
        for name in plans[sheet]:
            if name not in data:
                continue
        cols = {name: list(data[name]) for name in plans[sheet] if name in data}
        nrs = {name: list(data[name + NR_SUFFIX]) for name in cols if name + NR_SUFFIX in data}
        raws = {name: list(t.raw[name]) if is_table and name in t.raw else None for name in cols}
        for i in range(len(files)):
            sid = links[i]
            sid = None if _empty(sid) else _key_text(sid)
            row_values = {name: col[i] for name, col in cols.items() if not _empty(col[i])}
            for name, col in cols.items():
                v = col[i]
                if _empty(v) and name in nrs and not _empty(nrs[name][i]) and bool(nrs[name][i]):
                    v = NOT_REACHED_VALUE  # a median typed as not reached (NR): checked for "not reached"
                if _empty(v):
                    continue
                raw = raws[name][i] if raws[name] is not None and i < len(raws[name]) else v
                letter = t.letter(files[i], name) if is_table else None
                yield Cell(sheet, str(files[i]), str(titles[i]), int(rows[i]) if rows[i] is not None else None,
                           letter, sid, name, v, raw, row_values,
                           None if _empty(cohorts[i]) else str(cohorts[i]).strip())


def _key_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _decimals(value: float, raw: Any) -> int:
    """Decimals the reviewer typed: from the cell's text when it is text (``30.90`` -> 2), else from the number."""
    if isinstance(raw, str):
        m = re.search(r"\d+(?:[.,](\d+))?", raw.replace("\u00b7", "."))
        if m:
            frac = m.group(1) or ""
            return len(frac)
    return decimals_of(float(value))


# ------------------------------------------------------------------------------------------------
# Which file is which study's
# ------------------------------------------------------------------------------------------------


def _ascii(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()


def _tokens(s: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", _ascii(s)) if t]


def _study_rows(schema: Any, tables: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per study id: its identifying values (source fields, doi, pmid, pmcid, first author, year) and first row."""
    root = schema.root_sheet
    t = tables.get(root)
    if t is None:
        return {}
    data = t.data if hasattr(t, "data") else t
    is_table = hasattr(t, "letters")
    key = schema.sheets[root].key[0]
    fields = schema.sheets[root].fields
    source_fields = [f for f, fs in fields.items() if str(fs.type) == "source"]
    out: dict[str, dict[str, Any]] = {}
    for i in range(len(data)):
        sid = data[key].iat[i] if key in data else None
        if _empty(sid):
            continue
        sid = _key_text(sid)
        rec = out.setdefault(sid, {"sources": [], "ids": [], "author": None, "year": None, "where": None})
        file = data["_file" if is_table else "file"].iat[i]
        row = int(data["_row" if is_table else "row"].iat[i])
        title = t.title(file) if is_table else (data["sheet"].iat[i] if "sheet" in data else root)
        if rec["where"] is None:
            letter = t.letter(file, source_fields[0]) if is_table and source_fields else None
            rec["where"] = (str(file), str(title), row, letter, source_fields[0] if source_fields else None)
        for f in source_fields:
            v = data[f].iat[i] if f in data else None
            if not _empty(v):
                for part in re.split(r"\s*;\s*", _key_text(v)):
                    if part and part not in rec["sources"]:
                        rec["sources"].append(part)
        for f in fields:
            if f.lower() in ("doi", "pmid", "pmcid") and f in data:
                v = data[f].iat[i]
                if not _empty(v) and _key_text(v) not in rec["ids"]:
                    rec["ids"].append(_key_text(v))
        for f in ("first_author", "author", "authors"):
            if f in data and not _empty(data[f].iat[i]) and rec["author"] is None:
                rec["author"] = str(data[f].iat[i])
        for f in ("year", "publication_year", "pub_year"):
            if f in data and not _empty(data[f].iat[i]) and rec["year"] is None:
                try:
                    rec["year"] = int(float(data[f].iat[i]))
                except (TypeError, ValueError):
                    pass
    return out


def _norm_doi(s: str) -> str:
    s = s.strip().lower()
    s = re.sub(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", "", s)
    return s.rstrip(".")


def _match_id(ident: str, files: dict[str, Article]) -> list[str]:
    """Files an identifier names: a file name, a DOI, a PMID or a PMCID."""
    ident = ident.strip()
    low = ident.lower()
    by_name = [n for n in files if n.lower() == low or Path(n).stem.lower() == low]
    if by_name:
        return by_name
    if re.match(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)?10\.\d{4,9}/\S+$", low):
        doi = _norm_doi(low)
        hit = [n for n, a in files.items() if _norm_doi(str(a.meta.get("doi") or "")) == doi]
        if not hit:
            hit = [n for n, a in files.items() if doi in (a.meta.get("first_page") or "").lower()]
        return hit
    m = re.fullmatch(r"(?:pmcid:?\s*)?(pmc\d+)", low)
    if m:
        pmc = m.group(1)
        return [n for n, a in files.items() if str(a.meta.get("pmcid") or "").lower() == pmc
                or pmc in _tokens(n)]
    m = re.fullmatch(r"(?:pmid:?\s*)?(\d{5,9})(?:\.0)?", low)
    if m:
        pmid = m.group(1)
        return [n for n, a in files.items() if str(a.meta.get("pmid") or "") == pmid]
    return []


def match_files(studies: dict[str, dict[str, Any]], files: dict[str, Article], folder: str
                ) -> dict[str, StudySources]:
    """Each study's files, or why none: :class:`~.model.StudySources` per study id."""
    out: dict[str, StudySources] = {}
    by_name: dict[str, list[str]] = {}
    for sid, rec in studies.items():
        if rec["sources"]:
            got: list[str] = []
            missing = []
            for ident in rec["sources"]:
                hit = _match_id(ident, files)
                if not hit:
                    missing.append(ident)
                got.extend(h for h in hit if h not in got)
            if missing:
                out[sid] = StudySources(sid, tuple(got), "no file in the sources folder " + folder + " matches "
                                        + ", ".join(repr(m) for m in missing))
            else:
                out[sid] = StudySources(sid, tuple(got), "source field")
            continue
        got = []
        for ident in rec["ids"]:
            got.extend(h for h in _match_id(ident, files) if h not in got)
        if got:
            out[sid] = StudySources(sid, tuple(got), "DOI/PMID")
            continue
        sid_tokens = _tokens(sid)
        for name, art in files.items():
            toks = _tokens(Path(name).stem)
            joined = "".join(toks)
            hit = False
            if sid_tokens and len("".join(sid_tokens)) >= 2:
                n = len(sid_tokens)
                if any(toks[k:k + n] == sid_tokens for k in range(len(toks))) or \
                        re.fullmatch(re.escape("".join(sid_tokens)) + r"(?:[a-z]{0,12}|_?supp\w*)", joined):
                    hit = True
            author = _tokens(rec["author"] or "")
            surname = max(author, key=len) if author else ""
            if not hit and surname and len(surname) >= 3 and rec["year"]:
                y = str(rec["year"])
                in_name = surname in joined and y in joined
                meta_author = _ascii(str(art.meta.get("first_author") or ""))
                in_meta = meta_author and surname == "".join(_tokens(meta_author)) and str(art.meta.get("year")) == y
                hit = bool(in_name or in_meta)
            if hit:
                by_name.setdefault(sid, []).append(name)
    claimed: dict[str, list[str]] = {}
    for sid, names in by_name.items():
        for n in names:
            claimed.setdefault(n, []).append(sid)
    for sid in studies:
        if sid in out:
            continue
        names = by_name.get(sid, [])
        if not names:
            out[sid] = StudySources(sid, (), f"no file in the sources folder {folder} matches study {sid} (by its "
                                    "id, first author and year in the file name or the article's metadata); name "
                                    "its file, DOI or PMID in a source column")
            continue
        shared = sorted({o for n in names for o in claimed[n] if o != sid})
        if shared:
            out[sid] = StudySources(sid, (), f"the file {', '.join(names)} matches studies {sid} and "
                                    f"{', '.join(shared)} alike; name each study's file, DOI or PMID in a source "
                                    f"column")
            continue
        out[sid] = StudySources(sid, tuple(names), "study id, first author or year in the file name")
    return out


def list_sources(sources_dir: str | Path) -> list[Path]:
    d = Path(sources_dir)
    if not d.is_dir():
        from ..errors import UnusableInputError

        raise UnusableInputError(f"{d}: the sources folder does not exist")
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
                  and not p.name.startswith((".", "~$")))


# ------------------------------------------------------------------------------------------------
# The stage
# ------------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}" if abs(v) < 1e15 else repr(v)
    return str(v)


def verify_tables(schema: Any, tables: Any, sources_dir: str | Path, *, cache_dir: Any = None,
                  jobs: int | None = None, limits: ArticleLimits | None = None) -> Verification:
    """Check every verified cell against its study's article (contract ``sources.md``).

    Parameters
    ----------
    schema : ReviewSchema
        The review schema (which fields, their terms; the studies sheet and its source field).
    tables : ValidationResult, dict of Table, or dict of DataFrame
        Records with provenance: validation's result or its ``tables``, or the clean records
        (``file``, ``sheet``, ``row`` columns).
    sources_dir : path
        The folder of article files (PDF with a text layer, JATS ``.xml``/``.nxml``).
    cache_dir : path, False or None
        Where extracted text is kept by file hash (default: the user's cache folder; False: none).

    Returns
    -------
    Verification
        One entry per verified cell and the findings (``source-mismatch``, ``source-inconsistent``,
        ``source-value-elsewhere``, ``source-absent``, one ``source-unreadable`` per study not checked).
    """
    from .cache import read_many

    tables = _tables_of(tables)
    plans = plan(schema)
    paths = list_sources(sources_dir)
    articles = read_many(paths, cache_dir, jobs=jobs, limits=limits)
    files = {Path(k).name: a for k, a in articles.items()}
    studies = _study_rows(schema, tables)
    cells = list(iter_cells(schema, tables, plans))
    for cell in cells:  # a study with figures but no row on the studies sheet: matched by its id alone
        if cell.study_id and cell.study_id not in studies:
            studies[cell.study_id] = {"sources": [], "ids": [], "author": None, "year": None,
                                      "where": (cell.file, cell.title, cell.row, None, None)}
    matched = match_files(studies, files, str(sources_dir))
    prepared: dict[str, Prepared] = {}
    findings: list[Finding] = []
    entries: list[VerificationEntry] = []
    problems: dict[str, str] = {}
    readable: dict[str, list[Prepared]] = {}
    needed = sorted({n for ss in matched.values() for n in ss.files if not files[n].problem})
    prepared.update(_prepare_many([files[n] for n in needed], jobs))
    for sid, ss in matched.items():
        bad = [(n, files[n].problem) for n in ss.files if files[n].problem]
        good = [n for n in ss.files if not files[n].problem]
        if not ss.files or (ss.how.startswith("no file") and not good):
            problems[sid] = ss.how
        elif bad:
            problems[sid] = "; ".join(f"{n}: {p}" for n, p in bad)
        for n in good:
            if n not in prepared:
                prepared[n] = prepare(files[n])
        if good and not ss.how.startswith("no file"):
            readable[sid] = [prepared[n] for n in good]
            if sid in problems and not bad:
                problems.pop(sid)
    counts: dict[str, int] = {}
    first_cell: dict[str, Cell] = {}
    for cell in cells:
        p = plans[cell.sheet][cell.field]
        preps = readable.get(cell.study_id or "")
        source = ", ".join(x.article.file for x in preps) if preps else None
        if not preps:
            counts[cell.study_id or ""] = counts.get(cell.study_id or "", 0) + 1
            first_cell.setdefault(cell.study_id or "", cell)
            entries.append(_entry(cell, "unreadable", source, None, None, None))
            continue
        entry, finding = verify_cell(cell, p, preps)
        entries.append(entry)
        if finding is not None:
            findings.append(finding)
    for sid, why in problems.items():
        rec = studies.get(sid, {})
        where = rec.get("where") or (None, None, None, None, None)
        n = counts.get(sid, 0)
        readable_note = " (the study's other files were checked)" if sid in readable else \
            f"; its {n} figure{'s' if n != 1 else ''} were not checked against the article"
        msg = f"study {sid}: {why}{readable_note}"
        file, title, row, letter, fld = where
        table = schema.root_sheet if title and title != schema.root_sheet else None
        findings.append(Finding(file or "", title, row, letter, fld, sid, "source-unreadable", "warning", msg,
                                None, table, (fld,) if fld else ()))
    # figures of a row without a study id: never left unchecked without a word
    if "" in first_cell:
        cell = first_cell[""]
        n = counts[""]
        findings.append(_finding(cell, "source-unreadable", "warning",
                                 f"{cell.ref}: the row names no study, so no article could be matched; its {n} "
                                 f"figure{'s' if n != 1 else ''} were not checked against an article"))
    return Verification(tuple(entries), tuple(findings), tuple(matched[s] for s in matched))


def _prepare_many(articles: list[Article], jobs: int | None) -> dict[str, Prepared]:
    """Articles prepared for matching (normalised text, numbers), in this process: sending the prepared
    numbers back from worker processes costs more than preparing them (measured: 2.1 s against 1.3 s for
    16 articles of 12 pages)."""
    return {a.file: prepare(a) for a in articles}


def _entry(cell: Cell, status: str, source: str | None, place: str | None, quote: str | None,
           printed: str | None) -> VerificationEntry:
    return VerificationEntry(cell.file, cell.title, cell.row, cell.letter, cell.ref if cell.row is not None else None,
                             cell.field, cell.study_id, cell.value, status, source, place, quote, printed)


def _finding(cell: Cell, rule: str, severity: str, message: str) -> Finding:
    return Finding(cell.file, cell.title, cell.row, cell.letter, cell.field, cell.study_id, rule, severity, message,
                   cell.value, cell.sheet if cell.title != cell.sheet else None, (cell.field,))


def verify_cell(cell: Cell, p: FieldPlan, preps: Sequence[Prepared]) -> tuple[VerificationEntry, Finding | None]:
    """One cell's entry and finding (None for ``found``)."""
    source = ", ".join(x.article.file for x in preps)
    terms = p.terms
    shown = ", ".join(f"'{t}'" for t in terms[:4])
    if p.vocabulary is not None:
        words = p.vocabulary.get(str(cell.value), (str(cell.value),))
        places = find_terms(preps, words)
        if places:
            pl = places[0]
            return _entry(cell, "found", source, pl.text, pl.quote, pl.printed), None
        msg = (f"{cell.ref}: '{cell.value}' is not printed in {source} (nor any of its aliases); check the "
               f"article's wording, or add it as an alias")
        return _entry(cell, "absent", source, None, None, None), _finding(cell, "source-absent", "info", msg)
    if cell.value == NOT_REACHED_VALUE and p.want.not_reached:
        return _verify_not_reached(cell, p, preps)
    try:
        value = float(cell.value)
    except (TypeError, ValueError):
        return _entry(cell, "absent", source, None, None, None), None
    fdec = _decimals(value, cell.raw)
    if p.field.lower() in YEAR_FIELDS and cell.sheet == p.sheet:
        return _verify_year(cell, value, preps)
    companions = []
    for f in p.companions:
        c = (cell.row_values or {}).get(f)
        try:
            companions.append(float(c))
        except (TypeError, ValueError):
            pass
    j = judge(preps, value, terms, p.want, fdec=fdec, companions=tuple(companions), cohort=cohort_words(cell.cohort))
    v = _fmt(cell.value)
    if j.status == "found":
        pl = j.place
        return _entry(cell, "found", source, pl.text, pl.quote, pl.printed), None
    if j.status == "inconsistent-source":
        a, b = j.place, j.other
        term = b.near_terms[0] if b.near_terms else terms[0]
        msg = (f"{cell.ref}: {v} is printed in {a.text} (\"{a.quote}\") but {b.text} prints {b.printed} for "
               f"'{term}' (\"{b.quote}\"); check which one the review should use")
        quote = (a.quote + " | " + b.quote)
        return (_entry(cell, "inconsistent-source", source, f"{a.text} vs {b.text}", quote[:400],
                       f"{a.printed} vs {b.printed}"), _finding(cell, "source-inconsistent", "warning", msg))
    if j.status == "mismatch":
        pl = j.place
        term = pl.near_terms[0] if pl.near_terms else terms[0]
        msg = (f"{cell.ref}: the form has {v} but {pl.text} prints {pl.printed} next to '{term}': "
               f"\"{pl.quote}\"; check which figure is right")
        return (_entry(cell, "mismatch", source, pl.text, pl.quote, pl.printed),
                _finding(cell, "source-mismatch", "warning", msg))
    if j.status == "found-elsewhere":
        pl = j.place
        msg = (f"{cell.ref}: {v} is printed in {pl.text} (\"{pl.quote}\") but not next to {shown}; check that it "
               f"is this field's figure, or add the article's words for it (source_terms)")
        return (_entry(cell, "found-elsewhere", source, pl.text, pl.quote, pl.printed),
                _finding(cell, "source-value-elsewhere", "info", msg))
    msg = (f"{cell.ref}: {v} is not printed in {source}, nor are {shown} with a value; a figure from a supplement, "
           f"or one computed by the reviewer? add the file, or the article's words for it (source_terms)")
    return _entry(cell, "absent", source, None, None, None), _finding(cell, "source-absent", "info", msg)


#: cohort labels that name the whole study, not a subgroup
WHOLE = {"overall", "all", "total", "whole", "all patients", "whole cohort", "entire cohort", "itt", "all-comers"}


def cohort_words(label: str | None) -> tuple[str, ...]:
    """A subgroup's words to look for next to its figures: its label's words (``pancreas`` is also ``pancreatic``,
    by a stem of six letters); none for the whole study."""
    if not label or label.strip().lower() in WHOLE:
        return ()
    words = [w for w in re.split(r"[\s_/,;()]+", label.strip()) if len(w) >= 2]
    return tuple(dict.fromkeys(w[:6] if len(w) > 6 and w.isalpha() else w for w in words))


def _verify_not_reached(cell: Cell, p: FieldPlan, preps: Sequence[Prepared]
                        ) -> tuple[VerificationEntry, Finding | None]:
    """A median typed as not reached (NR): found where the article prints "not reached" next to its terms."""
    from .match import judge_not_reached

    source = ", ".join(x.article.file for x in preps)
    j = judge_not_reached(preps, p.terms, p.want)
    if j.status == "found":
        return _entry(cell, "found", source, j.place.text, j.place.quote, j.place.printed), None
    if j.status == "mismatch":
        pl = j.place
        term = pl.near_terms[0] if pl.near_terms else p.terms[0]
        msg = (f"{cell.ref}: the form has NR (not reached) but {pl.text} prints {pl.printed} next to '{term}': "
               f"\"{pl.quote}\"; check which figure is right")
        return (_entry(cell, "mismatch", source, pl.text, pl.quote, pl.printed),
                _finding(cell, "source-mismatch", "warning", msg))
    shown = ", ".join(f"'{t}'" for t in p.terms[:4])
    msg = (f"{cell.ref}: NR (not reached) is not printed in {source} next to {shown}, nor a value; check the "
           f"article's wording, or add it (source_terms)")
    return _entry(cell, "absent", source, None, None, None), _finding(cell, "source-absent", "info", msg)


def _verify_year(cell: Cell, value: float, preps: Sequence[Prepared]) -> tuple[VerificationEntry, Finding | None]:
    """A publication year: the article's own date (JATS front matter) or its first page's citation line."""
    source = ", ".join(x.article.file for x in preps)
    y = int(value)
    for prep in preps:
        art = prep.article
        if art.meta.get("year") and int(art.meta["year"]) == y:
            return _entry(cell, "found", source, f"{art.file}, front matter", f"publication year {y}", str(y)), None
        first = art.meta.get("first_page") or ""
        m = re.search(r"(?<!\d)" + str(y) + r"(?!\d)", first)
        if m:
            q = re.sub(r"\s+", " ", first[max(0, m.start() - 80):m.end() + 40]).strip()
            return _entry(cell, "found", source, f"{art.file}, page 1", q[:200], str(y)), None
    other = [str(p.article.meta.get("year")) for p in preps if p.article.meta.get("year")]
    if other:
        msg = (f"{cell.ref}: the form has {y} but {source} was published in {', '.join(other)} (its front "
               f"matter); check the year, or whether this is the study's article")
        return (_entry(cell, "mismatch", source, f"{preps[0].article.file}, front matter", None, other[0]),
                _finding(cell, "source-mismatch", "warning", msg))
    msg = f"{cell.ref}: the year {y} is not on the first page of {source}"
    return _entry(cell, "absent", source, None, None, None), _finding(cell, "source-absent", "info", msg)


def verify(forms: Any, sources_dir: str | Path, schema: Any = None, layout: Any = None, *,
           cache_dir: Any = None) -> tuple[Any, Verification]:
    """Validate forms, then check them against their articles: ``(ValidationResult, Verification)``.

    What ``curate verify`` calls. The sources folder is checked first, so that a missing folder stops
    before the forms are read.
    """
    from ..validation import form_names, validate

    list_sources(sources_dir)
    paths = [forms] if isinstance(forms, (str, Path)) else list(forms)
    names = form_names(paths) if all(Path(p).is_file() for p in paths) else None
    result = validate(paths, schema, names=names, layout=layout)
    return result, verify_tables(result.schema, result, sources_dir, cache_dir=cache_dir)


def parse_value(text: str) -> tuple[float, int, bool]:
    """A value as a reviewer types it for ``curate locate``: ``30.9``, ``32.2%``, ``0·6``, ``1,063``."""
    from .normalise import normalise
    from .numbers import find_numbers

    norm = normalise(str(text))[0]
    nums = [n for n in find_numbers(norm) if n.role not in ("level", "name")]
    if len(nums) != 1:
        from ..errors import UnusableInputError

        raise UnusableInputError(f"{text!r} is not one number")
    n = nums[0]
    return n.value, n.decimals, n.percent


def locate(article_path: str | Path, value: Any, near: Iterable[str] = (), *, cache_dir: Any = None) -> list[Place]:
    """Every place where ``value`` is printed in an article (any role, any section), best first.

    Places next to one of the ``near`` terms come first; places in the introduction, discussion or
    references last. Raises :class:`~curation.errors.UnusableInputError` for a file that cannot be read.
    """
    from ..errors import UnusableInputError
    from .cache import read_cached

    path = Path(article_path)
    if not path.is_file():
        raise UnusableInputError(f"{path}: no such article file")
    art, _ = read_cached(path, cache_dir)
    if art.problem:
        raise UnusableInputError(f"{path.name}: {art.problem}")
    if isinstance(value, (int, float)):
        v, dec = float(value), decimals_of(float(value))
    else:
        v, dec, _ = parse_value(str(value))
    prep = prepare(art)
    hits = find_value([prep], v, tuple(near), Want("any", "number"), include_foreign=True, fdec=dec)
    return [h[3] for h in hits]


def with_source_findings(result: Any, verification: Verification) -> Any:
    """A copy of a :class:`~curation.validation.ValidationResult` whose findings and summary include the
    source check's findings (what ``curate verify`` prints, writes as JSON and renders as a page)."""
    import dataclasses

    from ..findings import sort_findings

    findings = sort_findings([*result.finding_list, *verification.findings], result.schema.sheets)
    by_rule: dict[str, int] = {}
    for f in findings:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    s = result.summary
    summary = dataclasses.replace(
        s, errors=sum(f.severity == "error" for f in findings), warnings=sum(f.severity == "warning" for f in findings),
        info=sum(f.severity == "info" for f in findings), by_rule=dict(sorted(by_rule.items())))
    return dataclasses.replace(result, finding_list=tuple(findings), summary=summary)

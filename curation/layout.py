"""Layouts: where one workbook keeps what the schema needs.

The schema says *what* a review needs (fields, vocabularies, checks, analyses); a **layout** says
*where* one workbook keeps it: which of its sheets hold which contract sheets, which rows form the
header (and how a multi-row header is joined), which column holds which field and in what form
(a plain value, ``n (%)``, ``median (low-high)``, a ``low-high`` CI, ``number unit``,
``Author (year)``), and which rows are not data (titles, totals, notes, repeated headers).

:func:`infer_layout` infers it from a workbook's grids (:mod:`curation.reading`), by content:
headers are matched through the schema's field keys, aliases and per-field ``synonyms``, with the
qualifiers people write around them (``ORR, n (%)``, ``mPFS, months (95% CI)``, ``OS (mo)``)
telling the composite kind and the unit. :func:`extract` applies a layout to the grids and gives
the contract sheets as :class:`~curation.reading.RawSheet` s, every value keeping its own cell as
provenance, and the findings that say what was inferred, what was skipped and what could not be
placed. A layout is a plain object that ``curate map`` writes as YAML for a reviewer to read and
correct (Frictionless Table Dialect names where one fits: ``sheet``, ``headerRows``,
``headerJoin``, ``commentRows``), and ``--layout`` reads back (:func:`load_layout`), refusing one
that does not fit its workbook.

The guarantee: every non-empty cell of a mapped column is read as the reviewer meant it or carries
a finding at its cell; a non-data row is never read as a record.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import UnusableInputError
from .cells import is_missing_text
from .findings import Finding, quote_sheet
from .reading import RawSheet, RawWorkbook, SheetGrid, WorkbookGrids, column_letter, read_grids, sheet_key
from .schema import NUMERIC_TYPES, ReviewSchema, compact, fold

Kind = Literal["value", "median_ci", "ci", "count_pct", "author_year", "number_unit"]

# ---------------------------------------------------------------------------------------------
# Header texts
# ---------------------------------------------------------------------------------------------

_HDR_TRANSLATE = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
                                "\u00a0": " ", "\u2265": ">=", "\u2264": "<=", "\n": " ", "\r": " ", "\t": " ",
                                "\u00b5": "u"})
_CI_TOKEN = re.compile(r"\b(?:95\s*%\s*)?(?:c\.?i\.?|confidence\s+interval)\b|\b95\s*%", re.I)
_BRACKETS = re.compile(r"[(\[]([^()\[\]]*)[)\]]")


def fold_header(text: Any) -> str:
    """A header cell's text folded: NFKC, case, dashes, ``≥`` as ``>=``, spaces collapsed."""
    t = unicodedata.normalize("NFKC", str(text)).translate(_HDR_TRANSLATE)
    return re.sub(r"\s+", " ", t).strip().casefold()


def header_key(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", fold_header(text))


def split_header(text: str) -> tuple[str, list[str], bool]:
    """``'mPFS, months (95% CI)'`` -> ``('mpfs', ['95% ci', 'months'], False)``.

    Returns the core words, the qualifiers (bracketed parts and what follows a comma) and whether a
    CI token stood in the core itself (``'PFS 95% CI'``: a column of intervals, not of medians).
    """
    t = fold_header(text)
    quals = [q.strip() for q in _BRACKETS.findall(t) if q.strip()]
    core = _BRACKETS.sub(" ", t)
    if "," in core:
        first, *rest = core.split(",")
        quals.extend(r.strip() for r in rest if r.strip())
        core = first
    ci_in_core = bool(_CI_TOKEN.search(core))
    if ci_in_core:
        core = _CI_TOKEN.sub(" ", core)
    core = re.sub(r"\s+", " ", core).strip(" :;-/")
    return core, quals, ci_in_core


def _quals_text(quals: Iterable[str]) -> str:
    return " ".join(quals)


# ---------------------------------------------------------------------------------------------
# Field index: every name a header may use for a field
# ---------------------------------------------------------------------------------------------

IDENTITY = ("study_id", "first_author", "year")


@dataclass(frozen=True)
class FieldIndex:
    """Folded names -> ``(table, field)`` for one schema."""

    schema: ReviewSchema
    names: dict[str, tuple[tuple[str, str], ...]]
    labels: dict[str, tuple[str, str]]
    synonym_keys: frozenset = frozenset()

    def by_synonym(self, text: str) -> bool:
        """``text`` names its field by a synonym only (not by its key or a declared alias)."""
        return header_key(text) in self.synonym_keys

    @classmethod
    def of(cls, schema: ReviewSchema) -> "FieldIndex":
        return _index(schema)

    def lookup(self, text: str) -> tuple[tuple[str, str], ...]:
        if not text:
            return ()
        return self.names.get(header_key(text)) or self.names.get("~" + compact(text)) or ()

    def closest(self, text: str) -> tuple[str, str] | None:
        """The field a header is closest to: a near spelling, or an abbreviation (``Prog.`` of ``progression``)."""
        core = split_header(text)[0] or fold_header(text)
        key = header_key(core).rstrip(".")
        hits = difflib.get_close_matches(key, list(self.labels), n=1, cutoff=0.75)
        if hits:
            return self.labels[hits[0]]
        if len(key) >= 3:
            prefixed = sorted(label for label in self.labels if label.startswith(key) and len(label) > len(key))
            if prefixed:
                return self.labels[min(prefixed, key=len)]
        return None


_INDEX_CACHE: dict[int, tuple[ReviewSchema, FieldIndex]] = {}


def _index_cached(schema_id: int, schema: ReviewSchema) -> FieldIndex:
    hit = _INDEX_CACHE.get(schema_id)
    if hit is not None and hit[0] is schema:
        return hit[1]
    names: dict[str, list[tuple[str, str]]] = {}
    labels: dict[str, tuple[str, str]] = {}
    declared = {header_key(label) for spec in schema.sheets.values() for fname, fs in spec.fields.items()
                for label in (fname, *fs.aliases)}
    synonym_keys = frozenset(header_key(label) for spec in schema.sheets.values() for fs in spec.fields.values()
                             for label in fs.synonyms) - declared
    for table, spec in schema.sheets.items():
        for fname, fs in spec.fields.items():
            for label in (fname, *fs.aliases, *fs.synonyms):
                for key in (header_key(label), "~" + compact(label)):
                    lst = names.setdefault(key, [])
                    if (table, fname) not in lst:
                        lst.append((table, fname))
                labels.setdefault(header_key(label), (table, fname))
    # a field several sheets share (study_id): every name of it, in every sheet that has it
    by_field: dict[str, set[str]] = {}
    for table, spec in schema.sheets.items():
        for fname in spec.fields:
            by_field.setdefault(fname, set()).add(table)
    for key, lst in names.items():
        for table, fname in list(lst):
            for other in sorted(by_field[fname]):
                if (other, fname) not in lst:
                    lst.append((other, fname))
    out = FieldIndex(schema, {k: tuple(v) for k, v in names.items()}, labels, synonym_keys)
    if len(_INDEX_CACHE) > 16:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[schema_id] = (schema, out)
    return out


def _index(schema: ReviewSchema) -> FieldIndex:
    return _index_cached(id(schema), schema)


def needed_fields(schema: ReviewSchema) -> dict[str, set[str]]:
    """Per contract sheet, the fields that checks, analyses or row keys need (or that are required)."""
    out: dict[str, set[str]] = {t: set() for t in schema.sheets}
    for table, spec in schema.sheets.items():
        out[table].update(spec.key)
        out[table].update(f for f, fs in spec.fields.items() if fs.required)
    for table, checks in schema.checks.items():
        for chk in checks:
            for v in chk.params.values():
                for ref in (v if isinstance(v, list) else [v]):
                    if isinstance(ref, str):
                        if "." in ref:
                            other, fname = ref.split(".", 1)
                            if other in schema.sheets and fname in schema.sheets[other].fields:
                                out[other].add(fname)
                        elif table in schema.sheets and ref in schema.sheets[table].fields:
                            out[table].add(ref)
    for oc in schema.analysis.outcomes.values():
        table = getattr(oc, "sheet", None) or schema.analysis_sheet
        if table not in schema.sheets:
            continue
        for attr in ("events", "total", "median", "low", "high", "term"):
            v = getattr(oc, attr, None)
            for ref in ([v] if isinstance(v, str) else list(v or ())):
                if isinstance(ref, str) and ref in schema.sheets[table].fields:
                    out[table].add(ref)
    return out


# ---------------------------------------------------------------------------------------------
# Cell contents: composite kinds
# ---------------------------------------------------------------------------------------------

_NUM = r"[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+)"
_NR = r"(?:nr|n\.r\.|not reached|ne|not estimable)"
RX_MEDIAN_CI = re.compile(rf"^\s*(?P<m>{_NUM}|{_NR})\s*(?P<u>[a-z]{{1,7}}\.?)?\s*[(\[]\s*(?:95\s*%\s*(?:ci)?[:,]?\s*)?"
                          rf"(?P<lo>{_NUM})\s*(?:-|to|;|,)\s*(?P<hi>{_NUM}|{_NR})\s*[)\]]\s*$", re.I)
RX_CI = re.compile(rf"^\s*(?P<lo>{_NUM})\s*(?:-|to|;|,)\s*(?P<hi>{_NUM}|{_NR})\s*(?P<u>[a-z]{{1,7}}\.?)?\s*$", re.I)
RX_COUNT_PCT = re.compile(rf"^\s*(?P<n>\d+)\s*(?:/\s*(?P<d>\d+))?\s*[(\[]\s*(?P<p>{_NUM})\s*%?\s*[)\]]\s*$")
RX_NUM_UNIT = re.compile(rf"^\s*(?P<v>{_NUM})\s*(?P<u>[a-zµ][a-zµ/.]{{0,11}})\s*$", re.I)
RX_AUTHOR_YEAR = re.compile(
    r"^\s*(?P<a>[^\d()\[\],;]+?)(?:\s+et\s+al\.?)?\s*[,;]?\s*[(\[]?\s*(?P<y>(?:19|20)\d{2})(?P<s>[a-z])?\s*[)\]]?"
    r"\s*(?:[-:,;/]\s*)?(?P<rest>.*?)\s*$", re.I)


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, str):
        t = unicodedata.normalize("NFKC", v).translate(_HDR_TRANSLATE).strip()
        return t or None
    return None


def content_kind(values: Iterable[Any]) -> str | None:
    """The composite kind most of a column's text cells have (None: plain values)."""
    counts = {"median_ci": 0, "ci": 0, "count_pct": 0, "author_year": 0}
    n = 0
    for seen, v in enumerate(values):
        if seen >= 5000:
            break
        t = _text(v)
        if t is None:
            continue
        n += 1
        if RX_COUNT_PCT.match(t):
            counts["count_pct"] += 1
        elif RX_MEDIAN_CI.match(t):
            counts["median_ci"] += 1
        elif RX_CI.match(t):
            counts["ci"] += 1
        elif is_author_year(t):
            counts["author_year"] += 1
        if n >= 400:
            break
    if not n:
        return None
    kind, c = max(counts.items(), key=lambda kv: kv[1])
    return kind if c >= 0.5 * n else None


def is_author_year(text: str) -> bool:
    """``Bodei (2011)``, ``Bodei 2011``, ``Bodei et al., 2011``; not an identifier such as ``BODEI2011``."""
    m = RX_AUTHOR_YEAR.match(text)
    return bool(m and re.search(r"[^\W\d_]{2}", m.group("a")) and not re.fullmatch(r"[\w-]+", text.strip()))




# ---------------------------------------------------------------------------------------------
# The layout (what `curate map` writes)
# ---------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ColumnLayout(_Model):
    """One column: the fields it holds and in what form.

    ``parts`` maps a part of the cell to a field: ``value`` for a plain cell; ``value``/``low``/
    ``high`` for ``median (low-high)``; ``low``/``high`` for a CI column; ``count``/``percent`` for
    ``n (%)``; ``author``/``year``/``id``/``cohort`` for ``Author (year)``.
    """

    column: str
    header: str
    kind: Kind = "value"
    parts: dict[str, str]
    unit: str | None = None
    confidence: Literal["high", "medium", "low"] = "high"
    hidden: bool = False
    note: str | None = None


class IgnoredColumn(_Model):
    """A column not read: a header that matches no field, or a second column for a field."""

    header: str
    field: str | None = None
    reason: str | None = None


class SheetLayout(_Model):
    """One worksheet: the contract sheets it holds, its header rows, columns and non-data rows."""

    sheet: str
    tables: list[str]
    header_rows: list[int] = Field(alias="headerRows")
    header_join: str = Field(" ", alias="headerJoin")
    comment_rows: dict[int, str] = Field(default_factory=dict, alias="commentRows")
    columns: list[ColumnLayout]
    ignored: dict[str, IgnoredColumn] = Field(default_factory=dict)
    derived: dict[str, str] = Field(default_factory=dict)
    by_name: bool = False


class Layout(_Model):
    """Where one workbook keeps the schema's fields."""

    schema_name: str = Field(alias="schema")
    workbook: str
    sheets: list[SheetLayout]
    skipped: dict[str, str] = Field(default_factory=dict)
    empty: dict[str, str] = Field(default_factory=dict)

    def to_yaml(self) -> str:
        """The layout as YAML, for a reviewer to read and correct."""
        import yaml

        data = self.model_dump(by_alias=True, exclude_none=True)
        head = (f"# Layout of {self.workbook} for schema {self.schema_name}, inferred by `curate map`.\n"
                "# Correct what is wrong and pass it back with --layout. Rows and columns are the workbook's own\n"
                "# (Excel row numbers, column letters). kind: value | median_ci | ci | count_pct | author_year |\n"
                "# number_unit; parts name the field each part of a cell goes to. commentRows are not data.\n")
        return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)


def load_layout(path: str | Path) -> Layout:
    """Read a layout file (``curate map``'s YAML); exit 2 with one line when it is not one."""
    import yaml
    from pydantic import ValidationError

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnusableInputError(f"{path}: layout file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UnusableInputError(f"{path}: not a layout file ({str(exc).splitlines()[0][:120]})") from None
    try:
        return Layout.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise UnusableInputError(f"{path}: not a valid layout ({where}: {err['msg']}); "
                                 "write one with `curate map FORM.xlsx -o LAYOUT.yaml`") from None


# ---------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------

_TOTAL_LABEL = re.compile(r"^\s*(?:totals?|sum|sums|mean|means|average|median|pooled|pooled estimate|weighted"
                          r"(?: mean| average)?|summary|all studies|overall|overall\s*[(\[].*[)\]]|total\s*[(\[:].*)"
                          r"\s*[:.]?\s*$", re.I)
_NOTE_START = re.compile(r"^\s*(?:notes?\b|source|sources|abbreviations?|data from|footnote|legend|\*|†|‡|§|¶|"
                         r"[a-z]\)|[a-z] =|nr\s*=|na\s*=|ci\s*=|key\s*:)", re.I)


def _types(values: np.ndarray) -> np.ndarray:
    """The Python type of each cell, as an object array of the same shape (one C-level pass)."""
    flat = values.ravel()
    return np.fromiter(map(type, flat), dtype=object, count=flat.size).reshape(values.shape) if flat.size else \
        np.zeros(values.shape, object)


def _filled(values: np.ndarray) -> np.ndarray:
    """Cells holding something (a text of spaces only is empty)."""
    if values.size == 0:
        return np.zeros(values.shape, bool)
    f = (values != "") & (values != None)  # noqa: E711 - elementwise
    if values.dtype == object:
        is_str = _types(values) == str
        if is_str.any():
            texts = values[is_str & f]
            blank = {t for t in set(texts) if not t.strip()}
            if blank:
                f &= ~(is_str & np.isin(values, list(blank)))
    return f


def _cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v).strip()


@dataclass
class _Candidate:
    col: int
    header: str
    bottom: str
    fields: tuple[tuple[str, str], ...]
    how: str  # exact | core | ci | bottom | none
    quals: list[str]
    ci_in_core: bool


def _merged_fill_header(grid: SheetGrid, rows: list[int]) -> list[list[str]]:
    """Header rows' texts with merged areas spread over their columns (0-based rows)."""
    vals = grid.values
    out = [[_cell_text(v) for v in vals[r]] for r in rows]
    for (r0, c0), (r1, c1) in grid.merged:
        for k, r in enumerate(rows):
            if r0 <= r <= r1:
                top = _cell_text(vals[r0, c0])
                for c in range(c0, c1 + 1):
                    if not out[k][c]:
                        out[k][c] = top
    return out


def _match_column(index: FieldIndex, texts: list[str]) -> tuple[tuple[tuple[str, str], ...], str, list[str], bool, str]:
    """Match one column's header texts (top to bottom). Returns fields, how, quals, ci_in_core, header."""
    parts = [t for t in texts if t]
    if not parts:
        return (), "none", [], False, ""
    uniq = list(dict.fromkeys(parts))
    joined = " ".join(uniq)
    bottom = parts[-1]
    tries: list[tuple[str, str]] = []
    if len(uniq) > 1:
        tries.append(("joined", joined))
    tries.append(("bottom", bottom))
    group_quals: list[str] = []
    for upper in uniq[:-1]:
        group_quals.extend(split_header(upper)[1])
    for how, text in tries:
        hit = index.lookup(text)
        if hit:
            core, quals, ci = split_header(text)
            return (hit, "synonym" if index.by_synonym(text) else "exact",
                    quals + (group_quals if how == "bottom" else []), False, joined)
        core, quals, ci = split_header(text)
        if how == "bottom" and len(uniq) > 1 and len(core) <= 2:
            continue  # 'n' or '%' under a group is never read on its own
        hit = index.lookup(core)
        if hit:
            q = quals + (group_quals if how == "bottom" else [])
            return hit, ("ci" if ci else "core"), q, ci, joined
    return (), "none", split_header(joined)[1], False, joined


def _header_score(index: FieldIndex, grid: SheetGrid, r: int, width: int) -> tuple[int, int]:
    texts = _merged_fill_header(grid, [r])[0]
    exact = core = 0
    for t in texts[:width]:
        if not t or len(t) > 80:
            continue
        fields, how, *_ = _match_column(index, [t])
        if fields:
            if how == "exact":
                exact += 1
            else:
                core += 1
    return exact + core, exact


def _looks_numeric(v: Any) -> bool:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return True
    t = _text(v)
    return bool(t and re.match(rf"^{_NUM}\s*%?$", t))


@dataclass
class _SheetGuess:
    grid: SheetGrid
    header_rows: list[int]  # 0-based
    candidates: list[_Candidate]
    score: int


def _guess_sheet(index: FieldIndex, grid: SheetGrid) -> _SheetGuess | None:
    vals = grid.values
    n_rows, width = vals.shape
    if not n_rows or not width:
        return None
    filled = _filled(vals[: min(n_rows, 40)])
    best = None
    for r in range(min(n_rows, 30)):
        if not filled[r].any():
            continue
        score, exact = _header_score(index, grid, r, width)
        if score >= 1 and (best is None or score > best[1] or (score == best[1] and exact > best[2])):
            best = (r, score, exact)
    if best is None:
        return None
    h = best[0]
    header_rows = [h]
    # a group row above (merged cells spanning several columns, or fewer, text-only cells) joins the header
    for up in (h - 1, h - 2):
        if up < 0 or not filled[up].any():
            break
        row_vals = vals[up]
        texts = [v for v in row_vals if _cell_text(v)]
        spans = [(c0, c1) for (r0, c0), (r1, c1) in grid.merged if r0 <= up <= r1 and c1 > c0]
        numeric = sum(_looks_numeric(v) for v in texts)
        if numeric or not texts:
            break
        if spans or len(texts) < filled[header_rows[0]].sum():
            # a title row spans the whole width in one cell: not a group row when it is the only text
            if len(texts) == 1 and (not spans or (spans[0][1] - spans[0][0] + 1) >= 0.8 * width) and \
                    filled[header_rows[0]].sum() > 3:
                break
            header_rows.insert(0, up)
            continue
        break
    texts = _merged_fill_header(grid, header_rows)
    cands = []
    for c in range(width):
        col_texts = [t[c] for t in texts]
        fields, how, quals, ci, header = _match_column(index, col_texts)
        cands.append(_Candidate(c, header, col_texts[-1], fields, how, quals, ci))
    return _SheetGuess(grid, header_rows, cands, sum(1 for c in cands if c.fields))


def _assign_tables(schema: ReviewSchema, guesses: dict[str, _SheetGuess]) -> dict[str, list[str]]:
    """Which contract sheets each worksheet holds (by name first, then by content)."""
    by_name: dict[str, str] = {}
    for title in guesses:
        table = _named_table(schema, title)
        if table is not None:
            by_name[title] = table
    scores: dict[str, dict[str, int]] = {}
    for title, g in guesses.items():
        s: dict[str, set[str]] = {}
        for c in g.candidates:
            tables = {t for t, _f in c.fields}
            for t, f in c.fields:
                if len(tables) > 1 or f in IDENTITY or f == "extractor":
                    continue
                s.setdefault(t, set()).add(f)
        scores[title] = {t: len(v) for t, v in s.items()}
    out: dict[str, list[str]] = {t: [] for t in guesses}
    for table in schema.sheets:
        named = [t for t, tb in by_name.items() if tb == table]
        if named:
            out[named[0]].append(table)
            continue
        ranked = sorted(((sc.get(table, 0), t) for t, sc in scores.items()), key=lambda x: (-x[0], x[1]))
        if ranked and ranked[0][0] >= 2:
            out[ranked[0][1]].append(table)
    # a contract sheet no worksheet holds on its own: the worksheet with most of its fields (identity fields
    # counted) holds it too, preferring one that holds a sheet that refers to it (a wide sheet)
    held = {t for ts in out.values() for t in ts}
    for table, spec in schema.sheets.items():
        if table in held:
            continue
        best = None
        for title, g in guesses.items():
            own = {f for c in g.candidates for t, f in c.fields if t == table and f not in ("study_id", "extractor")}
            if not own:
                continue
            child = any(schema.sheets[t].parent is not None and schema.sheets[t].parent.sheet == table for t in out[title])
            score = (child, len(own))
            if (child or len(own) >= 2) and (best is None or score > best[0]):
                best = (score, title)
        if best is not None:
            out[best[1]].append(table)
    for t in out:
        out[t].sort(key=list(schema.sheets).index)
    return out




def _named_table(schema: ReviewSchema, title: str) -> str | None:
    for table, spec in schema.sheets.items():
        if sheet_key(title) in {sheet_key(table), *(sheet_key(a) for a in spec.aliases)}:
            return table
    return None


def infer_layout(grids: WorkbookGrids, schema: ReviewSchema) -> Layout:
    """Infer where a workbook keeps the schema's fields (see the module docstring).

    Raises
    ------
    UnusableInputError
        Two sheets named as one contract sheet, a sheet named as a contract sheet whose header
        matches no field, or no sheet holding any contract sheet.
    """
    index = FieldIndex.of(schema)
    guesses: dict[str, _SheetGuess] = {}
    skipped: dict[str, str] = {}
    empty: dict[str, str] = {}
    named: dict[str, list[str]] = {}
    for grid in grids.sheets:
        table = _named_table(schema, grid.title)
        if table is not None:
            named.setdefault(table, []).append(grid.title)
    for table, titles in named.items():
        if len(titles) > 1:
            raise UnusableInputError(
                f"{grids.file}: {len(titles)} sheets match {table!r} ({', '.join(repr(t) for t in titles)}), so it is not "
                "clear which holds the data: keep one of them (rename or delete the others) and save the form again")
    for grid in grids.sheets:
        table = _named_table(schema, grid.title)
        g = _guess_sheet(index, grid)
        if table is not None and not _filled(grid.values).any():
            empty[grid.title] = table
            continue
        if g is None or g.score == 0:
            if table is not None:
                vals = grid.values
                filled = _filled(vals)
                r = int(np.flatnonzero(filled.any(axis=1))[0])
                found = [_cell_text(v) for v in vals[r] if _cell_text(v)]
                expected = list(schema.sheets[table].fields)
                raise UnusableInputError(
                    f"{grids.file}: sheet {grid.title!r}: no header in row {r + 1} matches a field "
                    f"(found {', '.join(repr(f) for f in found[:8])}{' ...' if len(found) > 8 else ''}; "
                    f"expected {', '.join(expected[:8])} ...). The header row must name the fields.")
            if grid.state == "visible":
                skipped[grid.title] = "no header row matches a field"
            continue
        guesses[grid.title] = g
    assignment = _assign_tables(schema, guesses) if guesses else {}
    sheets: list[SheetLayout] = []
    for title, g in guesses.items():
        tables = assignment.get(title, [])
        if not tables:
            if g.grid.state == "visible":
                skipped[title] = f"its headers match too few fields of any contract sheet ({g.score} column(s))"
            continue
        sheets.append(_sheet_layout(schema, index, g, tables, by_name=by_name_hint(title, tables, schema)))
    if not sheets:
        hints = []
        for grid in grids.sheets:
            hints.append(f"{grid.title!r} (closest: {_closest_table(schema, index, grid, guesses.get(grid.title))!r})")
        raise UnusableInputError(
            f"{grids.file}: none of the form's sheets ({', '.join(schema.sheets)}) is in this workbook, by name or by "
            f"its headers (found: {', '.join(hints) or 'no sheets'}). Start from `curate template`, or name the "
            "sheets and their header cells after the schema's fields (`curate template` shows them)")
    return Layout(schema=schema.name, workbook=Path(grids.file).name, sheets=sheets, skipped=skipped, empty=empty)


def _closest_table(schema: ReviewSchema, index: FieldIndex, grid: SheetGrid, g: _SheetGuess | None) -> str:
    """The contract sheet a worksheet is closest to: by its headers, else by its name."""
    if g is not None:
        counts: dict[str, int] = {}
        for c in g.candidates:
            for t, _f in c.fields:
                counts[t] = counts.get(t, 0) + 1
        if counts:
            return max(counts, key=lambda t: (counts[t], -list(schema.sheets).index(t)))
    ratios = {t: difflib.SequenceMatcher(None, sheet_key(grid.title), sheet_key(t)).ratio() for t in schema.sheets}
    return max(ratios, key=lambda t: (ratios[t], -list(schema.sheets).index(t)))


def _unit_terms(schema: ReviewSchema) -> dict[str, str]:
    """Folded unit label -> canonical unit, from every vocabulary whose terms carry a factor."""
    out: dict[str, str] = {}
    for vocab in schema.vocabularies.values():
        if not any(t.factor is not None for t in vocab.terms):
            continue
        for t in vocab.terms:
            for label in (t.value, *t.aliases):
                out.setdefault(fold(label).rstrip("."), t.value)
    return out


def _header_unit(schema: ReviewSchema, quals: list[str]) -> str | None:
    units = _unit_terms(schema)
    for q in quals:
        for word in re.split(r"[\s,;/]+", q):
            w = word.strip(" .()").casefold()
            if w and w in units and not re.fullmatch(r"[a-z]", w):
                return units[w]
    return None


def _sheet_layout(schema: ReviewSchema, index: FieldIndex, g: _SheetGuess, tables: list[str],
                  by_name: bool) -> SheetLayout:
    grid = g.grid
    vals = grid.values
    first_data = g.header_rows[-1] + 1
    cols: list[ColumnLayout] = []
    ignored: dict[str, IgnoredColumn] = {}
    table_fields = {t: set(schema.sheets[t].fields) for t in tables}
    all_fields = set().union(*table_fields.values())
    for c in g.candidates:
        letter = column_letter(c.col)
        fields = [f for t, f in c.fields if t in tables]
        fields = list(dict.fromkeys(fields))
        if not c.header:
            continue
        if not fields:
            core, _q, ci = split_header(c.header)
            prev = next((col for col in reversed(cols) if col.kind in ("value", "median_ci")), None)
            prev_fs = _field_spec(schema, tables, prev.parts.get("value")) if prev is not None else None
            if ci and not core and prev is not None and prev_fs is not None and prev_fs.combined and \
                    _col_index(prev.column) == c.col - 1:
                # '95% CI' right of a median column: that median's interval
                lo_hi = prev_fs.combined
                cols.append(ColumnLayout(column=letter, header=c.header, kind="ci",
                                         parts={"low": lo_hi["low"], "high": lo_hi["high"]}, confidence="medium",
                                         hidden=c.col in grid.hidden_columns,
                                         note=f"the interval of {prev.parts['value']} in {prev.column}"))
                continue
            ignored[letter] = IgnoredColumn(header=c.header)
            continue
        fname = fields[0]
        table = next(t for t in tables if fname in table_fields[t])
        fs = schema.sheets[table].fields[fname]
        body = vals[first_data:, c.col] if first_data < len(vals) else np.zeros(0, object)
        kind = content_kind(body)
        qtext = _quals_text(c.quals)
        if kind is not None and c.how == "exact" and not c.quals and by_name_hint(grid.title, tables, schema):
            # the template's own layout: a composite cell here and there is the normaliser's to read
            n_text = sum(1 for v in body if _text(v) is not None)
            if n_text < 3:
                kind = None
        parts: dict[str, str] = {"value": fname}
        k: Kind = "value"
        low_high = fs.combined
        if fname in ("first_author", "study_id") and (kind == "author_year" or "year" in qtext):
            k = "author_year"
            parts = {"author": "first_author", "year": "year", "id": "study_id", "cohort": "cohort"}
            if fname == "study_id" and kind != "author_year":
                k, parts = "value", {"value": "study_id"}
        elif low_high and (kind == "ci" or (c.ci_in_core and kind != "median_ci")):
            k, parts = "ci", {"low": low_high["low"], "high": low_high["high"]}
        elif low_high and (kind == "median_ci" or ("ci" in qtext and kind != "ci")):
            k, parts = "median_ci", {"value": fname, "low": low_high["low"], "high": low_high["high"]}
        elif fs.type == "percentage" and (kind == "count_pct" or re.search(r"\bn\b", qtext)):
            k, parts = "count_pct", {"percent": fname}
            if fs.count_field:
                parts["count"] = fs.count_field
        elif c.ci_in_core and not low_high:
            # 'X 95% CI' of a field without a CI pair: not this field
            ignored[letter] = IgnoredColumn(header=c.header)
            continue
        unit = _header_unit(schema, c.quals) if k in ("value", "median_ci", "ci") and fs.type in NUMERIC_TYPES \
            and fs.type != "year" else None
        conf = "high" if c.how == "exact" and k == "value" else \
            ("medium" if c.how in ("exact", "synonym", "core", "ci") else "low")
        note = None
        if len(fields) > 1 and k == "value":
            note = f"also matches {', '.join(fields[1:])}"
        cols.append(ColumnLayout(column=letter, header=c.header, kind=k, parts=parts, unit=unit, confidence=conf,
                                 hidden=c.col in grid.hidden_columns, note=note))
    cols = _resolve_duplicates(schema, grid, cols, first_data, ignored)
    derived: dict[str, str] = {}
    mapped = {f for col in cols for f in col.parts.values()}
    for table in tables:
        spec = schema.sheets[table]
        if "study_id" in spec.fields and "study_id" not in mapped:
            src = next((col for col in cols if col.kind == "author_year"), None)
            if src is None and "first_author" in mapped and "year" in mapped:
                derived["study_id"] = "first_author + year"
            elif src is not None:
                derived["study_id"] = f"{src.column} ({src.header})"
        if "cohort" in spec.fields and "cohort" not in mapped:
            src = next((col for col in cols if col.kind == "author_year"), None)
            derived["cohort"] = (f"the text after the year in {src.column}, else "
                                 f"'{schema.analysis.overall_cohort}'") if src else f"'{schema.analysis.overall_cohort}'"
    comments = _comment_rows(schema, grid, g, cols, first_data)
    return SheetLayout(sheet=grid.title, tables=tables, headerRows=[r + 1 for r in g.header_rows], columns=cols,
                       ignored=ignored, derived=derived, commentRows=comments, by_name=by_name)


def _field_spec(schema: ReviewSchema, tables: list[str], field: str | None):
    if field is None:
        return None
    for t in tables:
        if field in schema.sheets[t].fields:
            return schema.sheets[t].fields[field]
    return None


def by_name_hint(title: str, tables: list[str], schema: ReviewSchema) -> bool:
    """The sheet is named as the contract sheet it holds (the template's own layout)."""
    return len(tables) == 1 and sheet_key(title) == sheet_key(tables[0])


def _formula_share(grid: SheetGrid, col: int, first_data: int) -> float:
    """The share of a column's filled data cells (below row ``first_data``, 0-based) that are formulas."""
    if not grid.formula_cells:
        return 0.0
    rows = {r for (r, c) in grid.formula_cells if c == col and r > first_data}
    if not rows:
        return 0.0
    typed = sum(1 for i, v in enumerate(grid.values[first_data:, col]) if _cell_text(v) and first_data + i + 1 not in rows)
    return len(rows) / (len(rows) + typed)


def _resolve_duplicates(schema: ReviewSchema, grid: SheetGrid, cols: list[ColumnLayout], first_data: int,
                        ignored: dict[str, IgnoredColumn]) -> list[ColumnLayout]:
    """Two columns for one field: visible over hidden, typed over formula, better match over worse."""
    rank = {"high": 0, "medium": 1, "low": 2}
    by_field: dict[str, list[int]] = {}
    for i, col in enumerate(cols):
        for part, f in col.parts.items():
            if part in ("cohort", "id"):
                continue
            by_field.setdefault(f, []).append(i)
    drop: dict[int, tuple[str, str]] = {}
    for f, idxs in by_field.items():
        live = [i for i in idxs if i not in drop]
        if len(live) < 2:
            continue

        def key(i: int):
            col = cols[i]
            c0 = _col_index(col.column)
            return (col.hidden, _formula_share(grid, c0, first_data) > 0.5, col.kind == "value" and
                    any(cols[j].kind != "value" for j in live), rank[col.confidence], c0)

        winner = min(live, key=key)
        for i in live:
            if i == winner:
                continue
            col = cols[i]
            why = ("hidden" if col.hidden else "computed by formulas" if
                   _formula_share(grid, _col_index(col.column), first_data) > 0.5 else "a second column")
            drop[i] = (f, f"{why}; {f} is read from {cols[winner].column} ({cols[winner].header!r})")
    out = []
    for i, col in enumerate(cols):
        if i in drop:
            ignored[col.column] = IgnoredColumn(header=col.header, field=drop[i][0], reason=drop[i][1])
        else:
            out.append(col)
    return out


def _col_index(letter: str) -> int:
    n = 0
    for ch in letter:
        n = n * 26 + (ord(ch.upper()) - 64)
    return n - 1


def _count_columns(schema: ReviewSchema, tables: list[str], cols: list[ColumnLayout]) -> list[int]:
    out = []
    for col in cols:
        f = col.parts.get("value")
        if col.kind != "value" or f is None:
            continue
        for t in tables:
            fs = schema.sheets[t].fields.get(f)
            if fs is not None and fs.type == "integer" and f not in ("year", "pmid"):
                out.append(_col_index(col.column))
                break
    return out




def _column_mask(col: np.ndarray, predicate) -> np.ndarray:
    """``predicate(text)`` for each cell of a column, called once per distinct text."""
    out = np.zeros(len(col), bool)
    is_str = _types(col) == str
    if not is_str.any():
        return out
    texts = col[is_str]
    hits = {t for t in set(texts) if predicate(t)}
    if hits:
        out[is_str] = np.isin(texts, list(hits))
    return out


def _comment_rows(schema: ReviewSchema, grid: SheetGrid, g: _SheetGuess, cols: list[ColumnLayout],
                  first_data: int) -> dict[int, str]:
    """Rows below the header that are not data (Excel row -> why), found column by column."""
    vals = grid.values
    n_rows, width = vals.shape
    out: dict[int, str] = {}
    if first_data >= n_rows:
        return out
    body = vals[first_data:]
    n = len(body)
    filled = _filled(body)
    n_filled = filled.sum(axis=1)
    any_filled = n_filled > 0
    first_col = np.where(any_filled, filled.argmax(axis=1), 0)
    id_cols = [_col_index(c.column) for c in cols if c.kind == "author_year" or
               c.parts.get("value") in ("study_id", "first_author")]
    numeric_cols = [_col_index(c.column) for c in cols if c.kind != "author_year" and any(
        (schema.sheets[t].fields.get(f) is not None and schema.sheets[t].fields[f].type in NUMERIC_TYPES)
        for f in c.parts.values() for t in schema.sheets)]
    numeric_cols = [c for c in numeric_cols if c < width]
    # a label that says the row summarises the others: in an identity column, else the row's first cell
    is_label = lambda t: bool(_TOTAL_LABEL.match(t))  # noqa: E731
    label = np.zeros(n, bool)
    label_cols = [c for c in id_cols if c < width]
    for c in label_cols:
        label |= _column_mask(body[:, c], is_label)
    no_id = ~filled[:, label_cols].any(axis=1) if label_cols else np.ones(n, bool)
    firsts = body[np.arange(n), first_col]
    label |= no_id & any_filled & _column_mask(firsts, is_label)
    # a repeated header row: half its cells or more equal to the header above them
    header_texts = [fold_header(t) for t in _merged_fill_header(grid, [g.header_rows[-1]])[0]]
    same = np.zeros(n, int)
    for c in range(min(width, len(header_texts))):
        if header_texts[c]:
            same += _column_mask(body[:, c], lambda t, h=header_texts[c]: fold_header(t) == h)
    repeated = (same >= 2) & (same >= 0.5 * n_filled)
    # a note, footnote or source line: one or two cells of text, no number where numbers go
    has_number = np.zeros(n, bool)
    for c in numeric_cols:
        ty = _types(body[:, c])
        has_number |= (filled[:, c] & _column_mask(body[:, c], lambda t: bool(re.match(rf"^{_NUM}\s*%?$", _text(t) or "")))) \
            | (ty == float) | (ty == int)
    merged_width = np.zeros(n, int)
    for (r0, c0), (r1, c1) in grid.merged:
        if r1 >= first_data:
            lo, hi = max(r0, first_data) - first_data, r1 - first_data
            merged_width[lo:hi + 1] = np.maximum(merged_width[lo:hi + 1], c1 - c0 + 1)
    maybe_note = any_filled & ~has_number & (n_filled <= 2) & ~label & ~repeated
    note = np.zeros(n, bool)
    for i in np.flatnonzero(maybe_note):
        t0 = _cell_text(body[i, first_col[i]])
        if merged_width[i] >= 3 or len(t0) >= 25 or _NOTE_START.match(t0):
            note[i] = True
            out[first_data + i + 1] = f"note ({t0[:40] + ('...' if len(t0) > 40 else '')!r})"
    for i in np.flatnonzero(label):
        t = _cell_text(body[i, label_cols[int(np.argmax(filled[i, label_cols]))]] if label_cols and
                       filled[i, label_cols].any() else body[i, first_col[i]])
        out[first_data + i + 1] = f"summary row ({t!r}), not a study"
    for i in np.flatnonzero(repeated & ~label):
        out[first_data + i + 1] = "repeated header row"
    data = any_filled & ~label & ~repeated & ~note
    data_idx = np.flatnonzero(data)
    if len(data_idx):
        blank = np.flatnonzero(~any_filled)
        for i in blank[(blank > data_idx[0]) & (blank < data_idx[-1])]:
            out[first_data + i + 1] = "blank separator row"
    # a row whose counts equal the sums of the data rows above it: a total without a label
    counts = [c for c in _count_columns(schema, list(schema.sheets), cols) if c < width]
    if counts and len(data_idx) >= 3:
        import pandas as pd

        m = np.column_stack([pd.to_numeric(pd.Series(body[data_idx, c], dtype=object).where(
            lambda x: _types(x.to_numpy()) != bool), errors="coerce").to_numpy(dtype=float) for c in counts])
        present = ~np.isnan(m)
        above = np.vstack([np.zeros((1, len(counts))), np.cumsum(np.where(present, m, 0.0), axis=0)[:-1]])
        equal = np.where(present, np.abs(m - above) < 1e-9, True)
        n_present = present.sum(axis=1)
        total = (np.arange(len(data_idx)) >= 2) & (n_present >= 2) & equal.all(axis=1) & \
            (np.where(present, m, 0.0) > 0).any(axis=1)
        for k in np.flatnonzero(total):
            out[first_data + int(data_idx[k]) + 1] = "total row: its counts equal the sums of the rows above"
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------------------------
# Applying a layout
# ---------------------------------------------------------------------------------------------


_KIND_PARTS = {"value": {"value"}, "median_ci": {"value", "low", "high"}, "ci": {"low", "high"},
               "count_pct": {"percent", "count"}, "author_year": {"author", "year", "id", "cohort"},
               "number_unit": {"value"}}


def check_fits(layout: Layout, grids: WorkbookGrids, source: str = "layout", schema: ReviewSchema | None = None) -> None:
    """Refuse (exit 2, one line) a layout that does not fit this workbook (or this schema)."""
    by_title = {g.title: g for g in grids.sheets}
    if schema is not None:
        for sl in layout.sheets:
            for t in sl.tables:
                if t not in schema.sheets:
                    raise UnusableInputError(f"{source}: sheet {sl.sheet!r} holds {t!r}, which schema {schema.name!r} "
                                             f"does not have (its sheets: {', '.join(schema.sheets)})")
            for col in sl.columns:
                bad = set(col.parts) - _KIND_PARTS[col.kind]
                if bad or not col.parts:
                    raise UnusableInputError(f"{source}: column {col.column} of sheet {sl.sheet!r} is of kind "
                                             f"{col.kind!r}, whose parts are {', '.join(sorted(_KIND_PARTS[col.kind]))} "
                                             f"(not {', '.join(sorted(bad)) or 'none'})")
                for part, f in col.parts.items():
                    if part in ("id", "cohort", "author", "year"):
                        continue
                    if not any(f in schema.sheets[t].fields for t in sl.tables):
                        raise UnusableInputError(f"{source}: column {col.column} of sheet {sl.sheet!r} names field {f!r}, "
                                                 f"which no sheet it holds ({', '.join(sl.tables)}) has in schema "
                                                 f"{schema.name!r}")
    for sl in layout.sheets:
        grid = by_title.get(sl.sheet)
        if grid is None:
            raise UnusableInputError(f"{source}: sheet {sl.sheet!r} is not in {grids.file} (its sheets: "
                                     f"{', '.join(repr(t) for t in grids.titles)}); write a new layout with `curate map`")
        n_rows, width = grid.shape
        rows0 = [r - 1 for r in sl.header_rows]
        if any(r < 0 or r >= n_rows for r in rows0):
            raise UnusableInputError(f"{source}: header row(s) {sl.header_rows} of sheet {sl.sheet!r} are past its "
                                     f"last row ({n_rows}); write a new layout with `curate map`")
        texts = _merged_fill_header(grid, rows0)
        for col in sl.columns:
            c = _col_index(col.column)
            if c >= width:
                raise UnusableInputError(f"{source}: column {col.column} of sheet {sl.sheet!r} ({col.header!r}) is past "
                                         f"the sheet's last column ({column_letter(width - 1)}); write a new layout "
                                         "with `curate map`")
            now = " ".join(dict.fromkeys(t[c] for t in texts if t[c]))
            if fold_header(now) != fold_header(col.header):
                raise UnusableInputError(f"{source}: the header of {quote_sheet(sl.sheet)}!{col.column} changed: the "
                                         f"layout says {col.header!r}, the workbook has {now!r}; correct the layout or "
                                         "write a new one with `curate map`")


@dataclass
class _Emit:
    file: str
    findings: list[Finding]

    def __call__(self, sheet: str, row: int | None, column: str | None, field: str | None, rule: str, severity: str,
                 message: str, value: Any = None, table: str | None = None, study: str | None = None) -> None:
        self.findings.append(Finding(self.file, sheet, row, column, field, study, rule, severity, message, value,
                                     table))


def _split_cell(col: ColumnLayout, v: Any, schema: ReviewSchema,
                units: frozenset = frozenset()) -> tuple[dict[str, Any], str | None, str | None]:
    """One composite cell -> ``{field: raw part}``, the cell's own unit, and why it could not be split."""
    parts = col.parts
    if col.kind == "value":
        t = _text(v)
        if t is not None and units:
            m = RX_NUM_UNIT.match(t)
            if m and fold(m.group("u")).rstrip(".") in units:
                return {parts["value"]: m.group("v")}, m.group("u"), None
        return {parts["value"]: v}, None, None
    t = _text(v)
    if t is not None and col.kind in ("count_pct", "ci", "author_year") and is_missing_text(t):
        return {}, None, None  # '–', 'NA', 'not reported': no value
    if col.kind == "count_pct":
        if t is None:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if float(v).is_integer() and "count" in parts:
                    return {parts["count"]: v}, None, None
                return {}, None, (f"{_cell_text(v)!r}: under {col.header!r} one number is read as the count n, "
                                  "but it is not a whole number; write 'n (%)'")
            return {}, None, None
        m = RX_COUNT_PCT.match(t)
        if m:
            out = {parts["percent"]: m.group("p")}
            if "count" in parts:
                out[parts["count"]] = m.group("n")
            return out, None, None
        if t.endswith("%"):
            return {parts["percent"]: t}, None, None
        if re.fullmatch(r"\d+", t) and "count" in parts:
            return {parts["count"]: t}, None, None
        return {}, None, f"{t!r} is not of the form 'n (%)' that {col.header!r} says"
    if col.kind == "median_ci":
        if t is None:
            return {parts["value"]: v}, None, None
        m = RX_MEDIAN_CI.match(t)
        if m:
            return ({parts["value"]: m.group("m"), parts["low"]: m.group("lo"), parts["high"]: m.group("hi")},
                    m.group("u"), None)
        m = RX_NUM_UNIT.match(t)
        if m:
            return {parts["value"]: m.group("v")}, m.group("u"), None
        return {parts["value"]: t}, None, None  # a plain number, NR, or a finding of the number parser
    if col.kind == "ci":
        if t is None:
            if v is None or _cell_text(v) == "":
                return {}, None, None
            return {}, None, f"{_cell_text(v)!r} is one number; {col.header!r} holds an interval 'low-high'"
        m = RX_CI.match(t)
        if m:
            return {parts["low"]: m.group("lo"), parts["high"]: m.group("hi")}, m.group("u"), None
        if fold(t) in ("nr", "na", "n/a", "-", "not reported", "nd"):
            return {}, None, None
        return {}, None, f"{t!r} is not an interval 'low-high' (or 'low to high')"
    if col.kind == "number_unit":
        if t is None:
            return {parts["value"]: v}, None, None
        m = RX_NUM_UNIT.match(t)
        if m and not re.fullmatch(r"(?i)e\d*", m.group("u")):
            return {parts["value"]: m.group("v")}, m.group("u"), None
        return {parts["value"]: t}, None, None
    if col.kind == "author_year":
        if t is None:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return {}, None, f"{_cell_text(v)!r} is not 'Author (year)'"
            return {}, None, None
        m = RX_AUTHOR_YEAR.match(t)
        if not m or not re.search(r"[^\W\d_]{2}", m.group("a")):
            return {parts.get("author", "first_author"): t}, None, None
        author = re.sub(r"\s+et\s+al\.?$", "", m.group("a").strip(" ,;"), flags=re.I).strip()
        out = {parts.get("author", "first_author"): author, parts.get("year", "year"): m.group("y")}
        sid = re.sub(r"[^\w-]+", "", author.split()[-1] if author.split() else author) + m.group("y") + (m.group("s") or "")
        out["__id"] = sid
        rest = m.group("rest").strip(" -–—:;,()")
        if rest:
            out["__cohort"] = rest
        return out, None, None
    return {}, None, None


def extract(grids: WorkbookGrids, layout: Layout, schema: ReviewSchema, *, inferred: bool = True) -> RawWorkbook:
    """Apply a layout: the contract sheets of one workbook, with provenance, and the layout's findings."""
    emit = _Emit(grids.file, [])
    by_title = {g.title: g for g in grids.sheets}
    sheets: dict[str, RawSheet] = {}
    titles: dict[str, str] = {}
    if not all(sl.by_name for sl in layout.sheets):
        for title, why in layout.skipped.items():
            emit(title, None, None, None, "unmatched-sheet", "info",
                 f"sheet {quote_sheet(title)} was skipped: {why}")
    for title, table in layout.empty.items():
        emit(title, None, None, None, "empty-sheet", "info", f"sheet {title!r} is empty: no header row and no data",
             None, table)
    held = {t for sl in layout.sheets for t in sl.tables} | set(layout.empty.values())
    for table in schema.sheets:
        if table not in held:
            emit(table, None, None, None, "missing-sheet", "warning",
                 f"the workbook has no sheet holding {table!r} rows, so it contributes none "
                 f"(sheets found: {', '.join(grids.titles)})", None, table)
    needed = needed_fields(schema)
    index = FieldIndex.of(schema)
    for sl in layout.sheets:
        grid = by_title[sl.sheet]
        for table, raw in _extract_sheet(schema, index, grid, sl, emit, needed, inferred).items():
            if table in sheets:
                raise UnusableInputError(
                    f"{grids.file}: sheets {sheets[table].title!r} and {sl.sheet!r} both hold {table!r} rows, so it is "
                    "not clear which holds the data: keep one of them (rename or delete the other), or correct the "
                    "layout (`curate map`)")
            sheets[table] = raw
            titles[table] = sl.sheet
    return RawWorkbook(file=grids.file, sheets=sheets, findings=tuple(emit.findings), sheet_titles=titles)


def _extract_sheet(schema: ReviewSchema, index: FieldIndex, grid: SheetGrid, sl: SheetLayout, emit: _Emit,
                   needed: dict[str, set[str]], inferred: bool) -> dict[str, RawSheet]:
    vals = grid.values.copy()
    n_rows, width = vals.shape
    title = sl.sheet
    header_row = sl.header_rows[-1]
    first_data = header_row  # 0-based index of the first row below the header
    is_template = (sl.by_name and sl.header_rows == [1] and all(c.kind == "value" and c.confidence == "high"
                                                                 for c in sl.columns) and len(sl.tables) == 1)
    primary = sl.tables[0]
    # -- what was inferred, once per sheet, header and column (info)
    if inferred and not is_template:
        emit(title, header_row, None, None, "inferred-layout", "info",
             f"sheet {quote_sheet(title)} read as {' + '.join(sl.tables)} "
             f"({'by its name' if sl.by_name else 'by its headers'}); header in row"
             f"{'s' if len(sl.header_rows) > 1 else ''} {', '.join(map(str, sl.header_rows))}"
             + (" (joined)" if len(sl.header_rows) > 1 else "")
             + (f"; rows above it are titles" if sl.header_rows[0] > 1 else ""), None, primary)
        for col in sl.columns:
            if col.kind == "value" and col.confidence == "high" and not col.unit:
                continue
            what = {"value": "", "median_ci": " as median (95% CI)", "ci": " as a 95% CI 'low-high'",
                    "count_pct": " as n (%)", "author_year": " as Author (year)",
                    "number_unit": " as number and unit"}[col.kind]
            fields = ", ".join(dict.fromkeys(col.parts.values()))
            emit(title, header_row, col.column, next(iter(col.parts.values())), "inferred-layout", "info",
                 f"{quote_sheet(title)}!{col.column}{header_row} {col.header!r} read{what} -> {fields}"
                 + (f" (unit {col.unit})" if col.unit else "") + f"; {col.confidence} confidence"
                 + (f"; {col.note}" if col.note else ""), col.header, primary)
        for f, how in sl.derived.items():
            emit(title, header_row, None, f, "inferred-layout", "info",
                 f"{f} is not a column of {quote_sheet(title)}: taken from {how}", None, primary)
    # -- columns that could not be placed
    placed = {f for c in sl.columns for f in c.parts.values()}
    needed_here = set().union(*(needed.get(t, set()) for t in sl.tables))
    for letter, ign in sl.ignored.items():
        c = _col_index(letter)
        hidden = c in grid.hidden_columns
        header = ign.header
        if ign.reason:
            emit(title, header_row, letter, ign.field, "hidden-column" if hidden else "duplicate-column", "warning",
                 f"header {header!r} ({quote_sheet(title)}!{letter}{header_row}) matches field {ign.field!r} again: "
                 f"{ign.reason}; this column is ignored", header, _table_of(schema, sl, ign.field or ""))
            continue
        guess = index.closest(header)
        field_hint = None
        if guess is not None and guess[0] in sl.tables and guess[1] not in placed:
            field_hint = guess[1]
        core = split_header(header)[0]
        if field_hint and field_hint in needed_here:
            emit(title, header_row, letter, field_hint, "unplaced-column", "error",
                 f"{quote_sheet(title)}!{letter}{header_row} {header!r} could not be placed, and the review needs "
                 f"{field_hint!r} which no column holds: did you mean {field_hint!r}? Rename the header (or add "
                 f"{header!r} to the field's synonyms in the schema, or map it in a layout file)", header, primary)
        else:
            emit(title, header_row, letter, None, "unknown-column", "info",
                 f"column {header!r} ({quote_sheet(title)}!{letter}{header_row}) matches no field; kept in the form, "
                 "not checked" + (f" (did you mean {guess[1]!r}?)" if guess and guess[1] not in placed else ""),
                 header if core else header, primary)
    # -- hidden columns read
    for col in sl.columns:
        if _col_index(col.column) in grid.hidden_columns:
            emit(title, header_row, col.column, next(iter(col.parts.values())), "hidden-column", "warning",
                 f"{quote_sheet(title)}!{col.column}{header_row} {col.header!r} is a hidden column and is read "
                 f"({', '.join(dict.fromkeys(col.parts.values()))}); unhide it and check it is not a helper column",
                 col.header, primary)
        elif _formula_share(grid, _col_index(col.column), header_row) > 0.5:
            emit(title, header_row, col.column, next(iter(col.parts.values())), "helper-column", "warning",
                 f"{quote_sheet(title)}!{col.column}{header_row} {col.header!r} is computed by formulas in the workbook "
                 "(a reviewer's calculation), not typed from the paper; it is read, but check it against the paper",
                 col.header, primary)
    # -- non-data rows
    for r, why in sl.comment_rows.items():
        emit(title, r, None, None, "non-data-row", "info",
             f"{quote_sheet(title)}!{r}:{r} is not read as data: {why}", None, primary)
    data_rows = []
    filled = _filled(vals[first_data:]) if first_data < n_rows else np.zeros((0, width), bool)
    mapped_cols = sorted({_col_index(c.column) for c in sl.columns if _col_index(c.column) < width})
    in_mapped = filled[:, mapped_cols].any(axis=1) if mapped_cols else np.zeros(len(filled), bool)
    elsewhere = filled.any(axis=1) & ~in_mapped
    comment = np.zeros(len(filled), bool)
    for r in sl.comment_rows:
        if 0 <= r - 1 - first_data < len(filled):
            comment[r - 1 - first_data] = True
    data_rows = [first_data + int(i) for i in np.flatnonzero(in_mapped & ~comment)]
    for i in np.flatnonzero(elsewhere & ~comment):
        r = first_data + int(i) + 1
        emit(title, r, None, None, "non-data-row", "info",
             f"{quote_sheet(title)}!{r}:{r} has no value in any mapped column; not read", None, primary)
    # -- merged areas in data rows: the top-left value fills the area
    data_set = set(data_rows)
    merged_fill: dict[tuple[int, int], tuple[Any, str]] = {}
    for (r0, c0), (r1, c1) in grid.merged:
        if r1 < first_data:
            continue
        top_left = grid.values[r0, c0]
        ref = f"{column_letter(c0)}{r0 + 1}:{column_letter(c1)}{r1 + 1}"
        for r in range(max(r0, first_data), r1 + 1):
            if r not in data_set:
                continue
            for c in range(c0, c1 + 1):
                vals[r, c] = top_left
                merged_fill[(r, c)] = (top_left, ref)
    for col in sl.columns:
        c = _col_index(col.column)
        for r in data_rows:
            if (r, c) in merged_fill and _cell_text(merged_fill[(r, c)][0]) != "":
                tl, ref = merged_fill[(r, c)]
                emit(title, r + 1, col.column, next(iter(col.parts.values())), "merged-cell", "warning",
                     f"{quote_sheet(title)}!{col.column}{r + 1} is part of the merged cells {quote_sheet(title)}!{ref}: "
                     f"read the top-left value {tl!r}; unmerge them and fill each row", tl, primary)
    # -- hidden rows read
    for r in data_rows:
        if r + 1 in grid.hidden_rows:
            emit(title, r + 1, None, None, "hidden-row", "warning",
                 f"{quote_sheet(title)}!{r + 1}:{r + 1} is a hidden row and is read as data; unhide it and check it",
                 None, primary)
    # -- formulas without a saved value
    rows_arr = np.asarray(data_rows, dtype=int)
    for (r, c) in sorted(grid.formula_cells):
        if (r - 1) in data_set and c in mapped_cols and _cell_text(grid.values[r - 1, c]) == "":
            col = next(cl for cl in sl.columns if _col_index(cl.column) == c)
            emit(title, r, col.column, next(iter(col.parts.values())), "formula-without-value", "error",
                 f"{quote_sheet(title)}!{col.column}{r} holds a formula with no saved value; open the form in Excel, "
                 "let it calculate, and save it (or type the value)", None, primary)
    # -- split cells into fields
    n = len(data_rows)
    columns: dict[str, list[Any]] = {}
    letters: dict[str, str] = {}
    units: dict[str, list[Any]] = {}
    percent: dict[str, set[int]] = {}
    ids: list[Any] = [None] * n
    cohorts: list[Any] = [None] * n
    known_units = {u for u in _unit_terms(schema)}
    pos_of_row = {r: k for k, r in enumerate(data_rows)}
    percent_by_col: dict[int, list[int]] = {}
    for (r1, c0) in grid.percent_cells:
        percent_by_col.setdefault(c0, []).append(r1)
    col_units: dict[str, frozenset] = {}
    for col in sl.columns:
        f = col.parts.get("value")
        fs = next((schema.sheets[t].fields[f] for t in sl.tables if f in schema.sheets[t].fields), None) if f else None
        if fs is not None and fs.type in NUMERIC_TYPES and fs.type != "year":
            col_units[col.column] = frozenset(known_units | ({fold(fs.unit)} if fs.unit else set()))
    rows_idx = np.asarray(data_rows, dtype=int)
    for col in sl.columns:
        c = _col_index(col.column)
        for f in col.parts.values():
            if f not in columns:
                columns[f] = [None] * n
            letters.setdefault(f, col.column)
        body = vals[rows_idx, c] if n else np.zeros(0, object)
        cell_units = col_units.get(col.column, frozenset())
        if col.kind == "value":
            # the common case, whole column at once: only text cells that may hold 'number unit' one by one
            f = col.parts["value"]
            arr = np.array(body, dtype=object)
            arr[(arr == "") | pd_isna(arr)] = None
            columns[f] = list(arr)
            if cell_units:
                strs = np.flatnonzero(_types(arr) == str)
                for k in strs[np.fromiter((arr[k][:1] in "+-.0123456789" for k in strs), bool, len(strs))]:
                    got, unit, _problem = _split_cell(col, arr[k], schema, cell_units)
                    columns[f][k] = got.get(f, arr[k])
                    if unit:
                        if f not in units:
                            units[f] = [None] * n
                        units[f][k] = unit
            if col.unit:
                u = units.setdefault(f, [None] * n)
                for k in range(n):
                    if u[k] is None and columns[f][k] is not None:
                        u[k] = col.unit
            for r1 in percent_by_col.get(c, ()):
                if (r1 - 1) in data_set:
                    percent.setdefault(f, set()).add(pos_of_row[r1 - 1])
            continue
        for k, r in enumerate(data_rows):
            v = body[k]
            if v == "" or v is None:
                continue
            got, unit, problem = _split_cell(col, v, schema, cell_units)
            if problem:
                target = next(iter(col.parts.values()))
                emit(title, r + 1, col.column, target, "invalid-number", "error",
                     f"{target} ({quote_sheet(title)}!{col.column}{r + 1}): {problem}", v, _table_of(schema, sl, target))
                continue
            if "__id" in got:
                ids[k] = got.pop("__id")
            if "__cohort" in got:
                cohorts[k] = got.pop("__cohort")
            for f, part in got.items():
                if f not in columns:
                    columns[f] = [None] * n
                columns[f][k] = part
                letters.setdefault(f, col.column)
                u = unit or col.unit
                if u:
                    if f not in units:
                        units[f] = [None] * n
                    units[f][k] = u
    # -- identity: study_id and cohort where no column holds them
    study_id_column = any(c.kind == "value" and c.parts.get("value") == "study_id" for c in sl.columns)
    if not study_id_column:
        derived_any = any(x is not None for x in ids)
        if not derived_any and "first_author" in columns and "year" in columns:
            for k in range(n):
                a, y = columns["first_author"][k], columns["year"][k]
                if a is not None and y is not None:
                    ids[k] = re.sub(r"[^\w-]+", "", str(a).split()[-1] if str(a).split() else str(a)) + _cell_text(y)
        if any(x is not None for x in ids):
            columns["study_id"] = ids
            src = letters.get("first_author")
            if src:
                letters["study_id"] = src
    elif any(x is not None for x in ids) and "study_id" in columns:
        for k in range(n):
            if columns["study_id"][k] is None:
                columns["study_id"][k] = ids[k]
    if not any(c.kind == "value" and c.parts.get("value") == "cohort" for c in sl.columns):
        overall = schema.analysis.overall_cohort
        columns["cohort"] = [c if c else overall for c in cohorts]
        if "first_author" in letters:
            letters.setdefault("cohort", letters["first_author"])
    # a study_id column holding 'Author (year)' texts: the same ids as derived elsewhere
    if "study_id" in columns:
        for k, v in enumerate(columns["study_id"]):
            t = _text(v)
            if t and not re.fullmatch(r"[\w-]+", t):
                m = RX_AUTHOR_YEAR.match(t)
                if m and re.search(r"[^\W\d_]{2}", m.group("a")):
                    author = re.sub(r"\s+et\s+al\.?$", "", m.group("a").strip(" ,;"), flags=re.I).strip()
                    columns["study_id"][k] = (re.sub(r"[^\w-]+", "", author.split()[-1]) + m.group("y")
                                              + (m.group("s") or ""))
    # -- one RawSheet per contract sheet
    out: dict[str, RawSheet] = {}
    rows_excel = [r + 1 for r in data_rows]
    for table in sl.tables:
        spec = schema.sheets[table]
        own = {f: np.array(columns[f], dtype=object) if f in columns else None for f in spec.fields}
        keep = list(range(n))
        if len(sl.tables) > 1 and spec.parent is None and any(schema.sheets[t].parent is not None
                                                              for t in sl.tables if t != table):
            keep = _study_rows(schema, table, own, rows_excel, letters, title, emit, columns)
        values = {f: (arr[keep] if arr is not None else None) for f, arr in own.items()}
        values = {f: v for f, v in values.items() if v is not None}
        pos_of = {k: j for j, k in enumerate(keep)}
        out[table] = RawSheet(
            file=emit.file, sheet=table, title=title, header_row=header_row,
            columns={f: letters[f] for f in values if f in letters},
            extra_columns={ign.header: l for l, ign in sl.ignored.items()},
            rows=[rows_excel[k] for k in keep], values=values,
            extra_values={ign.header: [_none_if_empty(vals[rows_excel[k] - 1, _col_index(l)]) for k in keep]
                          for l, ign in sl.ignored.items() if _col_index(l) < width},
            percent_cells={f: frozenset(pos_of[k] for k in pos if k in pos_of) for f, pos in percent.items()
                           if f in spec.fields},
            units={f: np.array([u[k] for k in keep], dtype=object) for f, u in units.items() if f in spec.fields},
        )
        # a field the review needs, with no column here (the template reports it as before)
        for f, fs in spec.fields.items():
            if f in values or fs.metadata or (fs.type == "source" and not fs.required):
                continue  # the article field only matters with --sources, which matches without it
            if sl.by_name or f in needed.get(table, set()) or fs.required:
                emit(title, header_row, None, f, "missing-column", "error" if fs.required else "info",
                     f"sheet {quote_sheet(title)} has no column for {f!r}"
                     + (" (required: every row is excluded)" if fs.required else " (treated as empty)"), None, table)
    return out


def _none_if_empty(v: Any) -> Any:
    return None if v == "" else v


def pd_isna(arr: np.ndarray) -> np.ndarray:
    """NaN (and None) cells of an object array."""
    import pandas as pd

    return np.asarray(pd.isna(arr), dtype=bool)


def _table_of(schema: ReviewSchema, sl: SheetLayout, field: str) -> str:
    for t in sl.tables:
        if field in schema.sheets[t].fields:
            return t
    return sl.tables[0]


def _study_rows(schema: ReviewSchema, table: str, own: dict[str, Any], rows_excel: list[int], letters: dict[str, str],
                title: str, emit: _Emit, columns: dict[str, list[Any]]) -> list[int]:
    """A wide sheet's rows for the root table: one per study (its overall row, else its first)."""
    sid = columns.get("study_id")
    if sid is None:
        return list(range(len(rows_excel)))
    overall = fold(schema.analysis.overall_cohort)
    cohort = columns.get("cohort") or [None] * len(sid)
    first: dict[str, int] = {}
    for k, s in enumerate(sid):
        key = _cell_text(s) if s is not None else None
        if not key:
            continue
        if key not in first or (fold(_cell_text(cohort[k])) == overall and
                                fold(_cell_text(cohort[first[key]])) != overall):
            first[key] = k
    keep = sorted(first.values())
    spec = schema.sheets[table]
    for k, s in enumerate(sid):
        key = _cell_text(s) if s is not None else None
        if not key or first[key] == k:
            continue
        j = first[key]
        for f in spec.fields:
            if f in ("study_id",) or own.get(f) is None:
                continue
            a, b = own[f][k], own[f][j]
            if _cell_text(a) and _cell_text(b) and fold(_cell_text(a)) != fold(_cell_text(b)):
                emit(title, rows_excel[k], letters.get(f), f, "study-field-conflict", "warning",
                     f"{f} = {_cell_text(a)!r} ({quote_sheet(title)}!{letters.get(f, '')}{rows_excel[k]}) differs from "
                     f"{_cell_text(b)!r} in the study's row {quote_sheet(title)}!{letters.get(f, '')}{rows_excel[j]}, "
                     f"which is the study's value; a cohort row's {f} is not read", a, table)
    return keep


def read_form(path: str | Path, schema: ReviewSchema, *, layout: Layout | None = None, display_name: str | None = None,
              limits: Any = None, data: bytes | None = None) -> RawWorkbook:
    """Read one workbook's contract sheets: its grids (from ``data``, its bytes read once, when given),
    laid out by ``layout`` or by inference."""
    from .safety import limits_for

    grids = read_grids(path, display_name=display_name, limits=limits if limits is not None else limits_for(schema),
                       data=data)
    if layout is not None:
        check_fits(layout, grids, schema=schema)
        return extract(grids, layout, schema, inferred=True)
    return extract(grids, infer_layout(grids, schema), schema, inferred=True)


def map_form(path: str | Path, schema: ReviewSchema, *, display_name: str | None = None,
             limits: Any = None) -> Layout:
    """The inferred layout of one workbook (what ``curate map`` writes)."""
    from .safety import limits_for

    grids = read_grids(path, display_name=display_name, limits=limits if limits is not None else limits_for(schema))
    return infer_layout(grids, schema)

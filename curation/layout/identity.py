"""Study identity: a study's id from the label a team writes (``Meriggi F 2017``, ``Bodei (2011)``,
``Rascol (2022) - ALLY-LID II``, ``van Kessel 2016``).

The id keeps every part of the label that tells studies apart: every word of the author part (initials,
particles such as ``van`` or ``de``), the year, its letter (``2011a``) and what follows the year (a trial
name, ``ALLY-LID II``), so ``Meriggi F 2017`` and ``Murphy C 2017`` stay two studies (``MeriggiF2017``,
``MurphyC2017``) and ``Rascol (2022) - ALLY-LID I`` and ``II`` stay two (``Rascol2022-ALLY-LID-I``,
``Rascol2022-ALLY-LID-II``). The same label written the same way on two sheets gives the same id; labels
that differ only in spacing, case, brackets or ``et al.`` are the same label.

The id must be made of letters, digits, ``_`` and ``-`` (the schemas' ``study_id`` pattern), so two
different labels may still fold to one id (``Meriggi F 2017`` and ``MeriggiF 2017``): that is never
a silent merge but a ``study-id-clash`` error naming both cells (:func:`check_clashes`).

What follows the year is a cohort rather than part of the study when the sheet has no cohort column and
it names a subgroup the schema knows (a term of a vocabulary of a cohort-level field, ``G3``,
``pancreatic``, or the overall cohort's name): ``Unal (2023) - G3`` is study ``Unal2023``, cohort ``G3``.

Method: the labels are the author-year citations of the review's included studies; an id that keeps
every token of the citation is the citation key of reference managers (BibTeX keys, ``AuthorYear``
with a letter for a second paper of the same author and year), with the clash check that those tools
leave to the user.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from ..findings import quote_sheet
from ..schema import ReviewSchema, fold
from .cells import RX_AUTHOR_YEAR, _cell_text, _text, label_rest


@dataclass(frozen=True)
class StudyLabel:
    """An ``Author (year)`` label, read.

    Attributes
    ----------
    author : str
        The author part as written, without ``et al.`` (``Meriggi F``, ``van Kessel``).
    year : str
        The four-digit year.
    suffix : str
        The letter after the year (``2011a``), or ``""``.
    rest : str
        What follows the year (``ALLY-LID II``), or ``""``.
    """

    author: str
    year: str
    suffix: str = ""
    rest: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        """What makes two labels the same label: the words, case- and accent-folded, without punctuation."""
        return (*_words(fold(self.author)), self.year, self.suffix.casefold(), *_words(fold(self.rest)))


_PLAIN_ID = re.compile(r"\s*[\w-]+\s*")


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^\w]+", text) if w]


def parse_label(text: Any) -> StudyLabel | None:
    """The author, year, letter and rest of an ``Author (year)`` label; None when the text is not one."""
    t = _text(text)
    if t is None or re.fullmatch(r"[\w-]+", t):
        return None
    m = RX_AUTHOR_YEAR.match(t)
    if not m or not re.search(r"[^\W\d_]{2}", m.group("a")):
        return None
    author = re.sub(r"\s+et\s+al\.?$", "", m.group("a").strip(" ,;"), flags=re.I).strip(" ,;")
    return StudyLabel(author, m.group("y"), m.group("s") or "", label_rest(m))


def _id_part(text: str, sep: str) -> str:
    words = [w for w in re.split(r"[^\w-]+", unicodedata.normalize("NFKC", text)) if w.strip("-")]
    return sep.join(w.strip("-") for w in words)


def label_id(label: StudyLabel, *, with_rest: bool = True) -> str:
    """The study id of a label: every author word joined (``vanKessel``), the year and its letter, then
    what follows the year, its words joined by ``-`` (``Rascol2022-ALLY-LID-II``)."""
    sid = _id_part(label.author, "") + label.year + label.suffix
    if with_rest and label.rest:
        rest = _id_part(label.rest, "-")
        if rest:
            sid += "-" + rest
    return sid


def study_of_label(text: Any, schema: ReviewSchema | None = None) -> dict[str, str]:
    """The first author, year and study id one label gives, wherever the label is read: a ``Study`` column's
    cell, a sheet's name (``Bodei 2011``), a cross-tab's column head (``Brabander T 2017 (N=610) Grade 3-4``
    gives its study part ``Brabander T 2017``) or a form's column head. One derivation for every place, so the
    same label is the same id everywhere (``BrabanderT2017``, never ``T2017``).

    The text after the year stays in the id (a trial name) unless ``schema`` is given and it names a
    subgroup (:func:`is_subgroup`), as for a study column. A plain identifier of letters then a year
    (``Bodei2011``) is its own id. Returns {} when the text is not a label.
    """
    t = _cell_text(text)
    label = parse_label(t)
    if label is None:
        m = RX_AUTHOR_YEAR.match(t) if t and re.fullmatch(r"[\w-]+", t) else None
        if not m or not re.search(r"[^\W\d_]", m.group("a")) or m.group("rest"):
            return {}
        return {"first_author": m.group("a"), "year": m.group("y"), "study_id": t}
    keep_rest = bool(label.rest) and (schema is None or not is_subgroup(schema, label.rest))
    return {"first_author": label.author, "year": label.year, "study_id": label_id(label, with_rest=keep_rest)}


def label_agrees(field: str, typed: Any, derived: Any) -> bool:
    """Whether a typed first author or year agrees with a study label's: the year is the same number; the
    author's words (case- and accent-folded) begin the other's (``Brabander`` and ``Brabander T``)."""
    t, d = _cell_text(typed), _cell_text(derived)
    if not t or not d:
        return True
    if field == "year":
        try:
            return int(float(t)) == int(float(d))
        except ValueError:
            return fold(t) == fold(d)
    a, b = _words(fold(t)), _words(fold(d))
    m = min(len(a), len(b))
    return m > 0 and a[:m] == b[:m]


def cross_check_label(ctx: Any, field: str, row: int, typed: Any, typed_letter: str, derived: Any,
                      label_letter: str) -> None:
    """A value typed in a column named for the field (``First author``) is read over the one a study label
    derives (``Brabander T 2017``); where they differ, a ``label-conflict`` warning names both cells."""
    if label_agrees(field, typed, derived):
        return
    q = quote_sheet(ctx.title)
    table = next((t for t in ctx.sl.tables if field in ctx.schema.sheets[t].fields), ctx.primary)
    t = _cell_text(typed)
    ctx.emit(ctx.title, row, typed_letter or None, field, "label-conflict", "warning",
             f"{field} {t!r} ({q}!{typed_letter}{row}) differs from the study label's {_cell_text(derived)!r} "
             f"({q}!{label_letter}{row}): the typed {field} is read; check which is right", t, table)


def author_year_id(author: Any, year: Any) -> str | None:
    """The id of a study whose first author and year are in two columns (``van Kessel``, 2016 ->
    ``vanKessel2016``); None when either is empty."""
    a, y = _cell_text(author), _cell_text(year)
    if not a or not y:
        return None
    a = re.sub(r"\s+et\s+al\.?$", "", a, flags=re.I)
    return (_id_part(a, "") or a) + _id_part(y, "")


def is_subgroup(schema: ReviewSchema, text: str) -> bool:
    """Whether the text after a label's year names a subgroup the schema knows: the overall cohort's name
    or a term (or alias) of a vocabulary of a field of a sheet below the studies sheet."""
    t = fold(text)
    if not t:
        return False
    if t == fold(schema.analysis.overall_cohort):
        return True
    for name, spec in schema.sheets.items():
        if spec.parent is None:
            continue
        for f in spec.fields:
            vocab = schema.vocabulary_of(name, f)
            if vocab is not None and vocab.canonical(text) is not None:
                return True
    return False


def check_clashes(sources: list[tuple[str | None, tuple[str, ...] | None, str]], title: str, emit: Any,
                  table: str, spelling: dict[int, str] | None = None) -> set[int]:
    """Rows whose derived id another, different label also gives.

    ``sources``: per data row, ``(id, label key, where)`` (``where``: the label's text and cell, for the
    message); rows without a derived id have ``(None, None, "")``. Labels whose ids differ only in case
    are one id here (a reviewer reading ``vanKessel2016`` and ``VanKessel2016`` sees one study).

    Returns the positions of the rows reported (a ``study-id-clash`` error at each, naming the other label's
    cell), which are then excluded; the first row of an id is the id's. ``spelling`` receives, for rows of
    the same label whose id is spelled in another case (``Van Kessel`` after ``van Kessel``), the first
    row's id.
    """
    first: dict[str, tuple[tuple[str, ...], str, int]] = {}
    clashed: set[int] = set()
    for k, (sid, key, where) in enumerate(sources):
        if sid is None or key is None:
            continue
        folded = sid.casefold()
        if folded not in first:
            first[folded] = (key, where, k)
            continue
        key0, where0, k0 = first[folded]
        if key0 == key and spelling is not None and sources[k0][0] != sid:
            spelling[k] = sources[k0][0]
        if key0 != key:
            clashed.add(k)
            emit(*_clash_args(title, where, where0, sid, table))
    return clashed


def _clash_args(title: str, where: str, where0: str, sid: str, table: str) -> tuple:
    row, column, text = _unpack(where)
    _r0, _c0, text0 = _unpack(where0)
    cell = f"{quote_sheet(title)}!{column}{row}"
    cell0 = f"{quote_sheet(title)}!{_c0}{_r0}"
    message = (f"study label {text!r} ({cell}) and {text0!r} ({cell0}) are different labels but both become "
               f"study_id {sid!r}: this row is not read as that study; make the labels tell the studies apart "
               "(or write them the same way if they are one study)")
    return (title, row, column, "study_id", "study-id-clash", "error", message, text, table)


def where_of(row: int, column: str, text: str) -> str:
    """How :func:`check_clashes` is told a label's cell: ``"12\\tC\\tMeriggi F 2017"``."""
    return f"{row}\t{column}\t{text}"


def _unpack(where: str) -> tuple[int, str, str]:
    row, column, text = where.split("\t", 2)
    return int(row), column, text


def derive_ids(ctx: Any, columns: dict, letters: dict, ids: list, cohorts: list, n: int,
               data_rows: list | None, vals: Any) -> None:
    """A sheet's study ids (and cohorts) where no column holds them, and first_author and year where a
    study_id column holds ``Author (year)`` labels; two labels becoming one id are reported.

    ``ids``/``cohorts``: per data row, what an ``Author (year)`` column's cell gave (its id without the
    text after the year, and that text). ``columns`` is completed in place.
    """
    from .model import _col_index

    schema, sl, title = ctx.schema, ctx.sl, ctx.title
    data_rows = list(data_rows or [])
    study_id_column = any(c.kind == "value" and c.parts.get("value") == "study_id" for c in sl.columns)
    cohort_column = any(c.kind == "value" and c.parts.get("value") == "cohort" for c in sl.columns)
    sources: list[tuple[str | None, tuple[str, ...] | None, str]] = [(None, None, "")] * n
    rest_cohorts: dict[int, str] = {}

    def take(label: StudyLabel, k: int, column: str, text: str) -> str:
        keep_rest = bool(label.rest) and (cohort_column or not is_subgroup(schema, label.rest))
        sid = label_id(label, with_rest=keep_rest)
        key = label.key if keep_rest else StudyLabel(label.author, label.year, label.suffix).key
        if label.rest and not keep_rest:
            rest_cohorts[k] = label.rest
        row = data_rows[k] + 1 if k < len(data_rows) else 0
        sources[k] = (sid, key, where_of(row, column, text))
        return sid

    # an 'Author (year)' column: the ids keep the text after the year (a trial name), unless it is a subgroup
    label_col = next((c for c in sl.columns if c.kind == "author_year"), None)
    if label_col is not None and vals is not None:
        ci = _col_index(label_col.column)
        for k in range(n):
            if ids[k] is None or k >= len(data_rows):
                continue
            text = vals[data_rows[k], ci]
            label = parse_label(text)
            if label is not None:
                ids[k] = take(label, k, label_col.column, _cell_text(text))
                cohorts[k] = rest_cohorts.get(k)
    given = columns.get("study_id") if not study_id_column else None
    if given is not None and any(_cell_text(x) for x in given):
        pass  # ids a form sheet's name gave (Koller_1987.2 -> Koller_1987-2): never re-derived from author + year
    elif not study_id_column:
        derived_any = any(x is not None for x in ids)
        if not derived_any and "first_author" in columns and "year" in columns:
            for k in range(n):
                a, y = columns["first_author"][k], columns["year"][k]
                sid = author_year_id(a, y)
                if sid is not None:
                    ids[k] = sid
                    row = data_rows[k] + 1 if k < len(data_rows) else 0
                    sources[k] = (sid, (*_words(fold(_cell_text(a))), *_words(_cell_text(y))),
                                  where_of(row, letters.get("first_author", ""), f"{_cell_text(a)} {_cell_text(y)}"))
        if any(x is not None for x in ids) or (n == 0 and "study_id" in (sl.derived or {})):
            columns["study_id"] = ids  # (a sheet with no rows yet: its ids are derived, not missing)
            src = letters.get("first_author")
            if src:
                letters["study_id"] = src
    elif any(x is not None for x in ids) and "study_id" in columns:
        for k in range(n):
            if columns["study_id"][k] is None:
                columns["study_id"][k] = ids[k]
            else:  # the id column's own value: not derived
                sources[k] = (None, None, "")
    # a study_id column holding 'Author (year)' labels: the same ids as derived elsewhere, and the study's
    # first author and year from the label where no column gives them
    if study_id_column and "study_id" in columns:
        letter = letters.get("study_id", "")
        ids_now = columns["study_id"]
        # only texts that are not already identifiers can be labels (each distinct text parsed once)
        labels = {t: parse_label(t) for t in {v for v in ids_now if type(v) is str} if not _PLAIN_ID.fullmatch(t)}
        labels = {t: lab for t, lab in labels.items() if lab is not None}
        for k, v in enumerate(ids_now if labels else ()):
            label = labels.get(v) if type(v) is str else None
            if label is None:
                continue
            columns["study_id"][k] = take(label, k, letter, _cell_text(v))
            for f, value in (("first_author", label.author), ("year", label.year)):
                if not any(f in schema.sheets[t].fields for t in sl.tables):
                    continue
                if f not in columns:
                    columns[f] = [None] * n
                    letters.setdefault(f, letter)
                if columns[f][k] is None or _cell_text(columns[f][k]) == "":
                    columns[f][k] = value
                elif letters.get(f, letter) != letter:  # a typed column's value: read, the label's cross-checked
                    row = data_rows[k] + 1 if k < len(data_rows) else 0
                    cross_check_label(ctx, f, row, columns[f][k], letters[f], value, letter)
    if not cohort_column:
        overall = schema.analysis.overall_cohort
        given = columns.get("cohort") or [None] * n  # a label's (the sheet's name, a heading's) where one gave it
        columns["cohort"] = [rest_cohorts.get(k) or c or given[k] or overall for k, c in enumerate(cohorts)]
        if "first_author" in letters:
            letters.setdefault("cohort", letters["first_author"])
    spelling: dict[int, str] = {}
    check_clashes(sources, title, _Each(ctx.emit, sl.tables), ctx.primary, spelling)
    if "study_id" in columns:
        for k, sid in spelling.items():  # one label written in another case: the first spelling's id
            columns["study_id"][k] = sid


class _Each:
    """Emits a finding once per contract sheet of the worksheet (so that the row is excluded from each)."""

    def __init__(self, emit: Any, tables: list[str]) -> None:
        self.emit, self.tables = emit, list(tables)

    def __call__(self, *args: Any) -> None:
        for t in self.tables:
            self.emit(*args[:-1], t)

"""Cell contents: text of a cell, filled cells, the composite kinds a cell may hold and their splitting."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import TYPE_CHECKING, Any, Iterable, Literal

import numpy as np

from ..cells import is_missing_text
from ..reading import filled_mask, text_mask
from ..schema import ReviewSchema, fold


if TYPE_CHECKING:
    from .model import ColumnLayout

_HDR_TRANSLATE = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
                                "\u00a0": " ", "\u2265": ">=", "\u2264": "<=", "\n": " ", "\r": " ", "\t": " ",
                                "\u00b5": "u"})

Kind = Literal["value", "median_ci", "ci", "count_pct", "author_year", "number_unit"]


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
RX_COUNT_TEXT = re.compile(r"^\s*(?:[nN]\s*[=:]\s*(?P<n>\d+)|(?P<n2>\d+)\s*(?:pts?|patients|subjects|participants)\.?)\s*$")
RX_COUNT_OF = re.compile(r"^\s*(?P<n>\d+)\s*(?:/|of|out of)\s*(?P<d>\d+)\s*$", re.I)
RX_EST_CI = re.compile(rf"^\s*(?:(?:a?hr|a?or|rr|irr|md|smd|estimate)\s*[:=]?\s*)?(?P<m>{_NUM})\s*[;,]?\s*[(\[]?\s*"
                       rf"95\s*%\s*ci\s*[:=,]?\s*(?P<lo>{_NUM})\s*(?:-|to|,|;)\s*(?P<hi>{_NUM})\s*[)\]]?\s*$", re.I)
RX_AUTHOR_YEAR = re.compile(
    r"^\s*(?P<a>[^\d()\[\],;]+?)(?:\s+et\s+al\.?)?\s*(?:[(\[]\s*(?P<mark>[^\W\d_][\w-]{0,11}|\d{1,2})\s*[)\]]\s*"
    r"|\s(?P<num>[^\W\d_]?\d{1,2})\s+)?"
    r"[,;]?\s*[(\[]?\s*(?P<y>(?:19|20)\d{2})(?P<s>[a-z])?\s*[)\]]?"
    r"\s*(?:[-:,;/]\s*)?(?P<rest>.*?)\s*$", re.I)
# ``mark``: a short marker in brackets between the author and the year (``Yanagisawa (1) 2018``, ``Kishi (SR)
# 2009``), or ``num`` a number without them (``Park 1 2017``, ``Minami S2 2018``), as an umbrella review tells
# two cohorts of one author and year apart: it goes with what follows the year (:func:`label_rest`), so that
# the study ids keep it


def label_rest(m: re.Match) -> str:
    """What follows an ``Author (year)`` label's year, after its bracketed marker if any (``1``, ``SR``)."""
    rest = m.group("rest").strip(" -\u2013\u2014:;,()[]")
    mark = m.group("mark") or m.group("num")
    return f"{mark} {rest}".strip() if mark else rest


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, str):
        t = unicodedata.normalize("NFKC", v).translate(_HDR_TRANSLATE).strip()
        return t or None
    return None


_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+,\d+\s*")


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
        elif RX_MEDIAN_CI.match(t) or RX_EST_CI.match(t):
            counts["median_ci"] += 1
        elif RX_CI.match(t) and not _DECIMAL_COMMA.fullmatch(t):  # '18,5' is a number typed with a decimal comma
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


def _types(values: np.ndarray) -> np.ndarray:
    """The Python type of each cell, as an object array of the same shape (one C-level pass)."""
    flat = values.ravel()
    return np.fromiter(map(type, flat), dtype=object, count=flat.size).reshape(values.shape) if flat.size else \
        np.zeros(values.shape, object)


def _filled(values: np.ndarray) -> np.ndarray:
    """Cells holding something (a text of spaces only is empty); a whole grid's is cached on its
    :class:`~curation.reading.SheetGrid` (``grid.filled``)."""
    return filled_mask(values)


def _cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v).strip()


def _looks_numeric(v: Any) -> bool:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return True
    t = _text(v)
    return bool(t and re.match(rf"^{_NUM}\s*%?$", t))


def _column_mask(col: np.ndarray, predicate, is_text: np.ndarray | None = None) -> np.ndarray:
    """``predicate(text)`` for each cell of a column, called once per distinct text (``is_text``: which
    cells are text, when the caller knows)."""
    out = np.zeros(len(col), bool)
    is_str = text_mask(col) if is_text is None else is_text
    if not is_str.any():
        return out
    texts = col[is_str]
    hits = {t for t in set(texts) if predicate(t)}
    if hits:
        out[is_str] = member_mask(texts, hits)
    return out


def member_mask(values: np.ndarray, members: set) -> np.ndarray:
    """``v in members`` for each cell of a 1-d object array, by hashing (``np.isin`` sorts object arrays)."""
    return np.fromiter(map(members.__contains__, values), dtype=bool, count=len(values))


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
        m = RX_COUNT_OF.match(t)
        if m and "count" in parts:  # '15/46', '15 of 46': the count, and its denominator (checked by the binding)
            return {parts["count"]: m.group("n"), "__total": m.group("d")}, None, None
        m = RX_COUNT_PCT.match(t)
        if m:
            out = {parts["percent"]: m.group("p")}
            if "count" in parts:
                out[parts["count"]] = m.group("n")
                if m.group("d"):
                    out["__total"] = m.group("d")
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
        m = RX_EST_CI.match(t)
        if m:
            return ({parts["value"]: m.group("m"), parts["low"]: m.group("lo"), parts["high"]: m.group("hi")},
                    None, None)
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
            return {parts.get("author", "__author"): t}, None, None
        author = re.sub(r"\s+et\s+al\.?$", "", m.group("a").strip(" ,;"), flags=re.I).strip()
        # a part the layout gives to a typed column instead ('First author'): kept aside, to cross-check
        out = {parts.get("author", "__author"): author, parts.get("year", "__year"): m.group("y")}
        from .identity import StudyLabel, label_id  # the one derivation of an id (every author word kept)

        out["__id"] = label_id(StudyLabel(author, m.group("y"), m.group("s") or ""), with_rest=False) or t
        rest = label_rest(m)
        if rest:
            out["__cohort"] = rest
        return out, None, None
    return {}, None, None


def _none_if_empty(v: Any) -> Any:
    return None if v == "" else v


def pd_isna(arr: np.ndarray) -> np.ndarray:
    """NaN (and None) cells of an object array."""
    import pandas as pd

    return np.asarray(pd.isna(arr), dtype=bool)

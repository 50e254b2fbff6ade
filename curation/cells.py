"""Reading one cell the way a reviewer meant it.

Extraction forms hold numbers typed every way people type them: ``12``, ``12.0``, `` 12 ``,
``12,5`` (decimal comma), ``87.6%``, ``NR`` (not reached), ``n/a``, ``-``, ``—``, non-breaking
spaces, and combined strings such as ``30.9 (22.7–39.0)`` in a median cell. This module turns
those into numbers, or says precisely why it cannot.

The column parsers are vectorised: whole columns go through :func:`pandas.to_numeric` and only
the cells that are not plain numbers take the slow path through :func:`parse_number_text`.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

_TRANSLATE = str.maketrans({
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ", "\u2002": " ",
    "\u2003": " ", "\t": " ", "\r": " ", "\n": " ", "\u200b": "",
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-", "\u2012": "-",
    "\uff05": "%", "\u066a": "%",
})
# control characters (a form's _x0007_ escapes) and bidirectional overrides have no place in a value:
# they are dropped, so that no output carries them to a terminal, a browser or a spreadsheet
_TRANSLATE.update({c: None for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0),
                                     *range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_WS = re.compile(r" {2,}")


def strip_controls(text: str) -> str:
    """``text`` without control characters and bidirectional overrides (tab and newlines kept)."""
    return _CONTROL.sub("", text)

#: Cell texts that mean "no value" (compared after folding case and spaces).
MISSING_TOKENS = frozenset({
    "", "na", "n/a", "n.a.", "n.a", "-", "--", "---", "nd", "n.d.", "none", "null", "nan", ".", "?",
    "not reported", "not available", "not stated", "nr", "n.r.", "missing", "#n/a",
})
#: Cell texts that mean "median (or upper bound) not reached".
NOT_REACHED_TOKENS = frozenset({
    "nr", "n.r.", "not reached", "not yet reached", "nyr", "n.r", "not estimable", "ne", "not estimated",
    "na (not reached)", "nr (not reached)", "not reached (nr)", "∞", "inf",
})

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$")
_THOUSANDS_COMMA = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_THOUSANDS_SPACE = re.compile(r"^[+-]?\d{1,3}(?: \d{3})+(?:[.,]\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
_COMBINED = re.compile(r"^(?P<median>[^()\[\]]+?)\s*[(\[](?P<inner>[^()\[\]]+)[)\]]$")
_CI_PREFIX = re.compile(r"^\s*(?:95\s*%?\s*)?(?:ci|c\.i\.|confidence interval)\s*[:=]?\s*", re.I)
# ``29 months; 95% CI 26 to 33``, ``HR 0.80; 95% CI 0.61 to 1.05``, ``29 95% CI: 26–33``: the estimate (a label
# before it, a unit after it), then a stated CI without brackets (with brackets, :data:`_COMBINED` reads it)
_STATED_CI = re.compile(r"^(?:(?:a?hr|a?or|rr|irr|md|smd|median|estimate)\s*[:=]?\s*)?(?P<median>[^;,()\[\]]+?)"
                        r"\s*[;,]?\s*(?P<inner>(?:95\s*%\s*)(?:ci|c\.i\.|confidence interval)\s*[:=]?\s*[^()\[\]]+)$",
                        re.I)
# the estimate's own label before it and a unit word after it: ``HR 0.80``, ``29 months`` (the unit is kept)
_EST_LABEL = re.compile(r"^(?:a?hr|a?or|rr|irr|md|smd|median|estimate)\s*[:=]?\s*", re.I)
_NUM_UNIT_WORD = re.compile(r"^(?P<num>[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+))\s*(?P<unit>[^\W\d_][^\W\d_.]{0,11}\.?)$")
_QUALIFIER = re.compile(r"^(?:<|>|<=|>=|≤|≥|~|≈|approx\.?|about|ca\.?|c\.)\s*\d")


_PLAIN_ASCII = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")


def normalise_text(value: Any) -> str:
    """Text with spaces and dashes normalised (NFKC, non-breaking spaces, en/em dashes)."""
    text = str(value)
    if text.isascii() and _PLAIN_ASCII.fullmatch(text):  # the common case: nothing to normalise
        return text
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    return _WS.sub(" ", text).strip()


def text_value(value: Any) -> str | None:
    """A cell as free text: ``None`` for empty; ``12.0`` typed as a number reads ``12``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, _dt.datetime):
        return value.date().isoformat() if value.time() == _dt.time() else value.isoformat()
    if isinstance(value, (_dt.date, _dt.time, _dt.timedelta)):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    text = normalise_text(value)
    return text or None


def text_values(values: Iterable[Any]) -> list[str | None]:
    """:func:`text_value` of each value; a text that is plain printable ASCII with single spaces (the
    common case, which :func:`normalise_text` returns as it is) is taken with one regex call."""
    plain = _PLAIN_ASCII.fullmatch
    return [v if type(v) is str and plain(v) else text_value(v) for v in values]


#: In a free-text field (author, country, DOI) only unambiguous markers mean "no value": ``Na`` is a
#: surname, so ``NA``/``NR``/``ND`` count only in capitals.
TEXT_MISSING_TOKENS = frozenset({"n/a", "n.a.", "n.a", "-", "--", "---", ".", "?", "not reported", "not available",
                                 "not stated", "missing", "#n/a", "null", "none", "nan", "n.r.", "n.d."})
TEXT_MISSING_EXACT = frozenset({"NA", "NR", "ND", "N/A"})
#: No text longer than this is a missing-value marker.
TEXT_MISSING_LONGEST = max(len(t) for t in TEXT_MISSING_TOKENS | TEXT_MISSING_EXACT)


def is_missing_text(text: str) -> bool:
    return normalise_text(text).casefold() in MISSING_TOKENS


def is_missing_free_text(text: str) -> bool:
    """A free-text cell that holds a missing-value marker (``n/a``, ``-``, ``—``, ``NA``, ``not reported``)."""
    t = normalise_text(text)
    return t in TEXT_MISSING_EXACT or t.casefold() in TEXT_MISSING_TOKENS


@dataclass(frozen=True)
class ParsedNumber:
    """What one numeric cell holds.

    Attributes
    ----------
    status : str
        ``"value"``, ``"missing"``, ``"not_reached"``, ``"combined"`` or ``"invalid"``.
    value : float or None
        The number (the median, for a combined cell).
    low, high : float or None
        The CI bounds read from a combined ``median (low-high)`` cell.
    high_not_reached : bool
        The combined cell's upper bound said ``NR``.
    median_not_reached : bool
        The combined cell's median said ``NR``.
    reason : str or None
        For ``invalid``: why, in words a reviewer can act on.
    unit : str or None
        The unit word a combined cell states after its median (``29 months; 95% CI 26 to 33``).
    """

    status: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    high_not_reached: bool = False
    median_not_reached: bool = False
    reason: str | None = None
    unit: str | None = None


def _plain_number(text: str, *, integer: bool) -> float | None:
    """A number written plainly, with a decimal comma or thousands separators; else None."""
    t = text.replace(" ", "") if _THOUSANDS_SPACE.match(text) else text
    if _NUMBER.match(t.lower()):
        return float(t)
    if _THOUSANDS_COMMA.match(t) and (integer or "." in t):
        return float(t.replace(",", ""))
    if _DECIMAL_COMMA.match(t):
        return float(t.replace(",", "."))
    return None


def parse_number_text(text: str, *, not_reached: bool = False, integer: bool = False,
                      combined: bool = False, percent: bool = False,
                      reject_not_reached: bool = False) -> ParsedNumber:
    """Parse the text of one numeric cell.

    Parameters
    ----------
    text : str
        The cell's text as typed.
    not_reached : bool
        The field accepts ``NR`` (not reached), e.g. a median or an upper CI bound.
    integer : bool
        The field is a count: ``1,234`` is then read as a thousands separator.
    combined : bool
        The field is a median that may hold ``median (low-high)``.
    percent : bool
        The field is a percentage; a trailing ``%`` is expected and dropped.
    reject_not_reached : bool
        ``NR`` / ``not reached`` is an error here (a lower CI bound is always reached), not a
        missing value.

    Returns
    -------
    ParsedNumber
    """
    t = normalise_text(text)
    folded = t.casefold()
    if not_reached and folded in NOT_REACHED_TOKENS:
        return ParsedNumber("not_reached")
    if reject_not_reached and folded in NOT_REACHED_TOKENS and folded not in ("ne", "na"):
        return ParsedNumber("invalid", reason=f"{t!r}: 'not reached' applies to a median or an upper CI bound, "
                                              "never to a lower bound; enter the lower bound or leave it empty")
    if folded in MISSING_TOKENS:
        return ParsedNumber("missing")
    core = t
    if core.endswith("%"):
        core = core[:-1].rstrip()
    elif folded.endswith(" percent"):
        core = core[: -len(" percent")].rstrip()
    value = _plain_number(core, integer=integer)
    if value is not None:
        if math.isfinite(value):
            return ParsedNumber("value", value)
        return ParsedNumber("invalid", reason=f"{t!r} is not a finite number")
    if combined:
        parsed = _parse_combined(t)
        if parsed is not None:
            return parsed
    if _QUALIFIER.match(folded):
        return ParsedNumber("invalid", reason=f"{t!r} is a bound, not a value: enter the number reported, "
                                              "or leave the cell empty and note it")
    if re.match(r"^[+-]?\d[\d.,]*\s*(?:-|to)\s*\d[\d.,]*$", t):
        return ParsedNumber("invalid", reason=f"{t!r} is a range, not one number")
    if re.match(r"^[+-]?\d[\d.,]*\s*[(\[]", t):
        return ParsedNumber("invalid", reason=f"{t!r} holds more than a number; this field takes one value")
    if re.match(r"^[+-]?\d[\d.,]*\s*[a-z]+\.?$", folded):
        return ParsedNumber("invalid", reason=f"{t!r} has a unit or word after the number; enter the number alone")
    return ParsedNumber("invalid", reason=f"{t!r} is not a number")


def _split_interval(inner: str) -> tuple[str, str] | None:
    """Split the inside of ``(low-high)``: ``to``, a dash, ``;`` or a comma between two numbers."""
    inner = _CI_PREFIX.sub("", inner).strip()
    for sep in (r"\s+to\s+", r"\s*;\s*", r"(?<=\d|r|R)\s*-\s*(?=\d|n|N)", r",\s+", r","):
        parts = re.split(sep, inner)
        if len(parts) == 2 and all(p.strip() for p in parts):
            return parts[0].strip(), parts[1].strip()
    return None


def _parse_combined(t: str) -> ParsedNumber | None:
    """``median (low-high)`` and its written forms: ``24.8 (17.5-34.5)``, ``29 (95% CI 26-33)``, ``29 [26, 33]``,
    ``29 months; 95% CI 26 to 33``, ``29, 95% CI: 26-33``, ``HR 0.80; 95% CI 0.61 to 1.05``. A unit word after the
    median is kept (:attr:`ParsedNumber.unit`) so that the normaliser converts or refuses it; anything else
    is not a combined cell (None: the caller's finding names it)."""
    m = _COMBINED.match(t) or _STATED_CI.match(t)
    if not m:
        return None
    split = _split_interval(m.group("inner"))
    if split is None:
        return None
    median, unit = _EST_LABEL.sub("", m.group("median").strip()), None
    mu = _NUM_UNIT_WORD.match(median)
    if mu and mu.group("unit").casefold() not in NOT_REACHED_TOKENS:
        median, unit = mu.group("num"), mu.group("unit")
    parts: dict[str, float | None] = {}
    nr: dict[str, bool] = {}
    for name, piece in (("median", median), ("low", split[0]), ("high", split[1])):
        piece = normalise_text(piece)
        if piece.casefold() in NOT_REACHED_TOKENS and name != "low":
            parts[name], nr[name] = None, True
            continue
        num = _plain_number(piece.rstrip("%").rstrip(), integer=False)
        if num is None:
            return None
        parts[name], nr[name] = num, False
    return ParsedNumber("combined", value=parts["median"], low=parts["low"], high=parts["high"],
                        high_not_reached=nr["high"], median_not_reached=nr["median"], unit=unit)


def year_of(value: Any) -> int | None:
    """The year of a cell holding a year, a date or a date-like text; None when there is none."""
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.year
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if float(value).is_integer() and 1000 <= value <= 9999:
            return int(value)
        return None
    text = normalise_text(value)
    m = re.fullmatch(r"(\d{4})(?:\.0+)?", text)
    if m:
        return int(m.group(1))
    for fmt in ("%Y-%m-%d", "%Y-%m", "%m/%Y", "%m.%Y", "%d/%m/%Y", "%d.%m.%Y", "%b %Y", "%B %Y", "%Y/%m/%d"):
        try:
            return _dt.datetime.strptime(text, fmt).year
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class NumericColumn:
    """A parsed numeric column.

    Attributes
    ----------
    values : numpy.ndarray
        float64, NaN where missing, not reached or invalid.
    not_reached : numpy.ndarray
        bool, the cell said NR.
    invalid : dict[int, str]
        Position -> reason, for cells that could not be read.
    combined : dict[int, ParsedNumber]
        Position -> parse, for combined ``median (low-high)`` cells.
    """

    values: Any
    not_reached: Any
    invalid: dict
    combined: dict


def parse_numeric_column(raw: Sequence[Any], *, kind: str = "number", not_reached: bool = False,
                         combined: bool = False, percent_positions: frozenset[int] = frozenset(),
                         reject_not_reached: bool = False) -> NumericColumn:
    """Parse a whole column of raw cell values.

    Parameters
    ----------
    raw : sequence
        Cell values as the reader gives them (float, int, str, bool, date, None).
    kind : {"number", "integer", "percentage", "year"}
    not_reached : bool
        ``NR`` is allowed (medians, upper CI bounds).
    combined : bool
        ``median (low-high)`` strings are split.
    percent_positions : frozenset of int
        Positions whose cell is formatted as a percentage in Excel (0.876 shown as 87.6%).

    Returns
    -------
    NumericColumn
    """
    import numpy as np
    import pandas as pd

    n = len(raw)
    series = pd.Series(raw, dtype=object) if n else pd.Series([], dtype=object)
    inferred = pd.api.types.infer_dtype(series, skipna=True) if n else "empty"
    if inferred in ("floating", "integer", "mixed-integer-float", "empty"):
        # the common case: every cell a number (or empty), nothing to look at one by one
        types = None
        values = np.array(series.to_numpy(dtype=float, na_value=np.nan), dtype=float, copy=True)
    else:
        types = series.map(type).to_numpy()
        is_bool = types == bool
        values = np.array(pd.to_numeric(series.where(~is_bool, None), errors="coerce")
                          .to_numpy(dtype=float, na_value=np.nan), dtype=float, copy=True)
    nr = np.zeros(n, dtype=bool)
    invalid: dict[int, str] = {}
    for i in np.flatnonzero(np.isinf(values)):
        invalid[int(i)] = f"{text_value(raw[i])!r} is not a finite number"
        values[i] = np.nan
    combos: dict[int, ParsedNumber] = {}
    # Cells pandas could not read as a number, but that hold something: the slow path.
    pending = np.flatnonzero(np.isnan(values) & series.notna().to_numpy()) if types is not None else []
    is_text = (types == str) if types is not None else np.zeros(n, bool)
    seen: dict[str, ParsedNumber] = {}
    for i in pending:
        v = raw[i]
        if isinstance(v, bool):
            invalid[i] = f"{'TRUE' if v else 'FALSE'} is a yes/no value, not a number"
            continue
        if kind == "year":
            y = year_of(v)
            if y is None:
                if isinstance(v, str) and is_missing_text(v):
                    continue
                invalid[i] = f"{text_value(v)!r} is not a year"
            else:
                values[i] = y
            continue
        if isinstance(v, (_dt.date, _dt.datetime)):
            invalid[i] = (f"{text_value(v)!r} is a date, not a number (did Excel turn what was typed into a "
                          "date? Format the cell as text or number and retype it)")
            continue
        if isinstance(v, float):  # NaN typed as a number
            continue
        text = str(v)
        parsed = seen.get(text)
        if parsed is None:  # each distinct text parsed once (a column of 'NR's, of '12%'s)
            parsed = seen[text] = parse_number_text(text, not_reached=not_reached, integer=kind == "integer",
                                                    combined=combined, percent=kind == "percentage",
                                                    reject_not_reached=reject_not_reached)
        if parsed.status == "value":
            values[i] = parsed.value
        elif parsed.status == "not_reached":
            nr[i] = True
        elif parsed.status == "combined":
            combos[i] = parsed
            if parsed.median_not_reached:
                nr[i] = True
            else:
                values[i] = parsed.value
        elif parsed.status == "invalid":
            invalid[i] = parsed.reason or "not a number"
    if kind == "year":
        # dates parsed fine as numbers? pandas does not coerce dates, so only numeric years remain.
        ok = ~np.isnan(values)
        bad = ok & ((values % 1 != 0) | (values < 1000) | (values > 9999))
        for i in np.flatnonzero(bad):
            invalid[int(i)] = f"{text_value(raw[i])!r} is not a year"
            values[i] = np.nan
    if percent_positions:
        for i in percent_positions:
            if 0 <= i < n and not is_text[i] and not np.isnan(values[i]):
                values[i] = values[i] * 100.0
    if kind == "integer":
        frac = ~np.isnan(values) & (np.abs(values - np.round(values)) > 1e-9)
        for i in np.flatnonzero(frac):
            invalid[int(i)] = f"{_fmt(values[i])} is not a whole number; this field is a count"
            values[i] = np.nan
    return NumericColumn(values=values, not_reached=nr, invalid=invalid, combined=combos)


def _fmt(x: float) -> str:
    return format_number(x)


def finite_or_none(v: Any) -> float | None:
    """A finite float, or None for None, NaN, infinities and anything that is not a number."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def format_number(x: Any) -> str:
    """A number as a reviewer would write it: ``12`` not ``12.0``; ``23.75``; ``NA`` for missing."""
    if x is None:
        return "NA"
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(f):
        return "NA"
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return f"{f:.10g}"


def column_decimals(raw: Sequence[Any], values: Any, percent_positions: frozenset[int] = frozenset()):
    """Decimal places reported in each cell of a percentage column (NaN where unknown).

    Numbers typed as numbers: the fewest decimals that represent the float (vectorised); text:
    the digits as typed (``87.60%`` -> 2); a percent-formatted cell: two fewer (0.876 -> 87.6 -> 1).
    """
    import numpy as np

    raw_arr = np.asarray(raw, dtype=object)
    n = len(raw_arr)
    dec = np.full(n, np.nan)
    typed_num = _typed_numbers(raw_arr)
    x = np.where(typed_num, np.asarray(values, dtype=float), np.nan)
    if percent_positions:
        idx = np.fromiter((i for i in percent_positions if 0 <= i < n), dtype=int)
        x[idx] = x[idx] / 100.0
    todo = typed_num & np.isfinite(x)
    for d in range(0, 11):
        hit = todo & (np.abs(np.round(x, d) - x) <= 1e-9 * np.maximum(1.0, np.abs(x)))
        dec[hit] = d
        todo &= ~hit
    if percent_positions:
        idx = np.fromiter((i for i in percent_positions if 0 <= i < n), dtype=int)
        dec[idx] = np.maximum(dec[idx] - 2, 0)
    for i in np.flatnonzero(~typed_num):
        d = reported_decimals(raw_arr[i])
        if d is not None:
            dec[i] = d
    return dec


def _typed_numbers(raw_arr: Any):
    """``isinstance(v, (int, float)) and not isinstance(v, bool)`` for each cell of an object array: by type
    for the types a reader gives, one ``isinstance`` call for any other."""
    import numpy as np

    n = len(raw_arr)
    if not n:
        return np.zeros(0, bool)
    ty = np.fromiter(map(type, raw_arr), dtype=object, count=n)
    out = (ty == float) | (ty == int)
    known = out | (ty == str) | (ty == type(None)) | (ty == bool)
    for i in np.flatnonzero(~known):
        v = raw_arr[i]
        out[i] = isinstance(v, (int, float)) and not isinstance(v, bool)
    return out


def reported_decimals(raw: Any) -> int | None:
    """Decimal places a reviewer reported: ``23.8`` -> 1, ``24`` -> 0, ``87.60%`` -> 2.

    For a value typed as a number Excel keeps no trailing zeros, so the count is taken from the
    shortest representation of the float (``23.8`` -> 1).
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int,)):
        return 0
    if isinstance(raw, float):
        if math.isnan(raw):
            return None
        if raw.is_integer():
            return 0  # a number cell keeps no trailing zeros: 24.0 was typed 24
        text = repr(raw)
        if "e" in text or "E" in text:
            return None
    else:
        text = normalise_text(raw).rstrip("%").strip().replace(",", ".")
    m = re.fullmatch(r"[+-]?\d*(?:\.(\d*))?", text)
    if not m:
        return None
    return len(m.group(1) or "")


# ---------------------------------------------------------------------------------------------
# p-values: exact values and bounds (``p = 0.03``, ``<0.001``, ``NS``)
# ---------------------------------------------------------------------------------------------

#: The bound of a p-value: exact (``""``), below (``"<"``, ``"<="``), above (``">"``) or not
#: significant (``"ns"``: p above the significance level).
P_BOUNDS = ("", "<", "<=", ">", "ns")
#: Texts that say "not significant" (folded).
NOT_SIGNIFICANT_TOKENS = frozenset({
    "ns", "n.s.", "n.s", "n s", "not significant", "non-significant", "nonsignificant", "non significant",
    "not statistically significant", "not sig", "not sig.", "n.sig.",
})
#: Significance level a bare "NS" is read against (a check may give its own).
DEFAULT_ALPHA = 0.05

_P_LABEL = re.compile(r"^(?:two[- ]sided\s+|2[- ]sided\s+)?p(?:[- ]?value)?\s*(?::|(?==|<|>|≤|≥|\d|[.,]\d)|\s)\s*")
_P_OP = re.compile(r"^(<=|=<|>=|=>|<|>|≤|≥|=)\s*")
_P_NUMBER = re.compile(
    r"^(?P<mant>\d+(?:[.,]\d*)?|[.,]\d+)"
    r"(?:\s*(?:e|[x×*·]\s*10\s*\^?)\s*(?P<exp>[+-]?\s*\d+))?$")
_P_POWER = re.compile(r"^10\s*\^?\s*(?P<exp>-\s*\d+)$")


@dataclass(frozen=True)
class ParsedP:
    """What one p-value cell holds.

    Attributes
    ----------
    status : str
        ``"value"`` (an exact p or a bound), ``"missing"`` or ``"invalid"``.
    value : float or None
        The number: the exact p, the bound's limit (``< 0.001`` -> 0.001), or the significance
        level for ``NS``.
    bound : str
        One of :data:`P_BOUNDS`.
    decimals : float or None
        Decimal places reported (``0.030`` -> 3, ``1.2e-5`` -> 6): an exact p stands for every
        value that rounds to it.
    reason : str or None
        For ``invalid``: why.
    """

    status: str
    value: float | None = None
    bound: str = ""
    decimals: float | None = None
    reason: str | None = None


def _p_number(text: str) -> tuple[float, int] | None:
    """A p-value's number and its decimal places: ``.03``, ``0,03``, ``1.2e-5``, ``1.2 x 10^-5``, ``10^-4``."""
    m = _P_POWER.match(text)
    if m:
        exp = int(m.group("exp").replace(" ", ""))
        return 10.0 ** exp, max(-exp, 0)
    m = _P_NUMBER.match(text)
    if not m:
        return None
    mant = m.group("mant").replace(",", ".")
    digits = len(mant.split(".", 1)[1]) if "." in mant else 0
    value = float(mant if mant != "." else "nan")
    if m.group("exp") is not None:
        exp = int(m.group("exp").replace(" ", ""))
        value *= 10.0 ** exp
        digits -= exp
    return value, max(digits, 0)


def parse_p_text(text: Any, alpha: float = DEFAULT_ALPHA) -> ParsedP:
    """Parse the text of one p-value cell.

    Reads ``0.03``, ``p = 0.03``, ``P=.03``, ``0,03``, ``<0.001``, ``p < 0.001``, ``≤0.05``,
    ``<.05``, ``>0.05``, ``1.2e-5``, ``1.2 x 10^-5``, ``p < 10⁻⁴``, ``NS`` / ``n.s.`` /
    ``not significant`` (a bound: p above ``alpha``), and ``0.000`` (reported as ``p < 0.0005``:
    a p rounded to zero is below half a unit of its last digit). A bound is a value, never an
    error; only text that holds no p-value is ``invalid``.
    """
    t = normalise_text(text)
    folded = t.casefold().strip()
    if folded in MISSING_TOKENS:
        return ParsedP("missing")
    body = _P_LABEL.sub("", folded, count=1).strip() if folded.startswith(("p", "two", "2")) else folded
    m = _P_OP.match(body)
    op = ""
    if m:
        op = {"=<": "<=", "≤": "<=", ">=": ">", "=>": ">", "≥": ">", "=": ""}.get(m.group(1), m.group(1))
        body = body[m.end():].strip()
    if body.rstrip(". ") in {tok.rstrip(". ") for tok in NOT_SIGNIFICANT_TOKENS} and op in ("", ">"):
        return ParsedP("value", float(alpha), "ns", None)
    if body in MISSING_TOKENS and not op:
        return ParsedP("missing")
    parsed = _p_number(body)
    if parsed is None:
        return ParsedP("invalid", reason=f"{t!r} is not a p-value (write it as reported: 0.03, p < 0.001, NS)")
    value, digits = parsed
    if not math.isfinite(value) or value > 1:
        return ParsedP("invalid", reason=f"{t!r} is not a p-value: a p lies between 0 and 1")
    if value == 0:
        if op in (">",):
            return ParsedP("invalid", reason=f"{t!r} says nothing: every p is above 0")
        if op in ("<", "<="):
            return ParsedP("invalid", reason=f"{t!r} is impossible: no p is below 0")
        # a p printed as 0.000 is below half a unit of its last digit; a bare 0 as if printed 0.000
        digits = digits if digits >= 1 else 3
        return ParsedP("value", 0.5 * 10.0 ** -digits, "<", float(digits + 1))
    return ParsedP("value", value, op, float(digits))


@dataclass(frozen=True)
class PColumn:
    """A parsed p-value column: ``values`` (float, NaN when empty or unreadable), ``bounds``
    (object array of :data:`P_BOUNDS`), ``decimals`` (float, NaN when unknown) and ``invalid``
    (position -> reason)."""

    values: Any
    bounds: Any
    decimals: Any
    invalid: dict


def parse_p_column(raw: Sequence[Any], alpha: float = DEFAULT_ALPHA) -> PColumn:
    """Parse a whole column of p-value cells (each distinct text once)."""
    import numpy as np

    n = len(raw)
    values = np.full(n, np.nan)
    bounds = np.full(n, "", dtype=object)
    decimals = np.full(n, np.nan)
    invalid: dict[int, str] = {}
    cache: dict[Any, ParsedP] = {}
    for i, v in enumerate(raw):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if isinstance(v, bool):
            invalid[i] = f"{'TRUE' if v else 'FALSE'} is a yes/no value, not a p-value"
            continue
        if isinstance(v, (_dt.date, _dt.datetime)):
            invalid[i] = f"{text_value(v)!r} is a date, not a p-value"
            continue
        key = (type(v), v)
        parsed = cache.get(key)
        if parsed is None:
            if isinstance(v, (int, float)):
                # typed as a number: Excel keeps no trailing zeros, so the digits are the shortest form
                f = float(v)
                if not math.isfinite(f) or f < 0 or f > 1:
                    parsed = ParsedP("invalid", reason=f"{text_value(v)!r} is not a p-value: a p lies between 0 and 1")
                elif f == 0:
                    parsed = parse_p_text("0")
                else:
                    d = reported_decimals(f)
                    parsed = ParsedP("value", f, "", float(d) if d is not None else np.nan)
            else:
                parsed = parse_p_text(str(v), alpha)
            cache[key] = parsed
        if parsed.status == "value":
            values[i] = parsed.value
            bounds[i] = parsed.bound
            decimals[i] = parsed.decimals if parsed.decimals is not None else np.nan
        elif parsed.status == "invalid":
            invalid[i] = parsed.reason or "not a p-value"
    return PColumn(values, bounds, decimals, invalid)

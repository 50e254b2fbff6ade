"""Printed numbers and their composites, found in normalised article text (:mod:`.normalise`).

:func:`find_numbers` returns every number with its span, the decimals printed, a percent sign,
and its role in a composite:

* ``15/46 (32.6%)`` and ``15 of 46``: ``numerator``, ``denominator``, then the percentage (``estimate``);
* ``30.9 (95% CI 22.7-39.0)``, ``0.72 [0.60-0.86]``, ``HR 0.72; 95% CI 0.60 to 0.86``, ``(1.38, 1.86)``:
  ``estimate``, ``low``, ``high`` (the ``95`` of ``95% CI`` is the ``level``, never a figure);
* ``12.3 ± 4.5``: ``estimate`` and ``sd``; ``P = 0.03``, ``p<.001``: ``p``;
* a number that is part of a name or a label is a ``name``, never a figure: ``Ki-67``, ``COVID-19``,
  ``PD-L1``, ``G1-2``, ``177Lu``, ``[68Ga]``, ``18F-FDG``, ``5-FU``, ``grade 3-4``, ``CTCAE v4.03``,
  ``RECIST 1.1``, ``Table 2``, ``Fig. 3``, a reference ``[12]`` or ``[3, 7-9]``.

Thousands separators are read (``1,063``; ``1 063`` across a thin or non-breaking space), and
numbers written as words up to one hundred (``seven``, ``Fifty-one``, ``one hundred``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROLES = ("estimate", "low", "high", "numerator", "denominator", "sd", "p", "level", "name")


@dataclass(frozen=True, slots=True)
class Num:
    """One printed number.

    Attributes
    ----------
    value : float
        Its value (``1,063`` -> 1063.0; ``seven`` -> 7.0).
    start, end : int
        Its span in the normalised text (the percent sign included).
    printed : str
        As printed (normalised characters).
    decimals : int
        Decimal places printed.
    percent : bool
        Followed by ``%``.
    role : str
        One of :data:`ROLES`.
    word : bool
        Written as a word.
    """

    value: float
    start: int
    end: int
    printed: str
    decimals: int
    percent: bool = False
    role: str = "estimate"
    word: bool = False


_NUM = re.compile(
    r"(?<![\w.])(?P<neg>-(?=[\d.]))?"
    r"(?P<body>\d{1,3}(?:,\d{3})+(?![\d])|\d{1,3}(?:\u2009\d{3})+(?![\d])|\d+|(?=\.\d))(?P<frac>\.\d+)?(?!\d)"
    r"(?P<pct>\s?%)?")

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                      "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_WORD = re.compile(
    r"\b(?:(?P<hundred>(?:one |a )?hundred)|(?P<tens>" + "|".join(_TENS) + r")(?:[- ](?P<unit>"
    + "|".join(w for w in _UNITS if w not in ("zero",) and _UNITS[w] < 10) + r"))?|(?P<small>"
    + "|".join(sorted(_UNITS, key=len, reverse=True)) + r"))\b", re.I)

_LEVEL_AFTER = re.compile(r"\s?%?\s*(?:CI|C\.I\.|CrI|confidence|credible|conf\.)", re.I)
_P_BEFORE = re.compile(r"\bp(?:\s*-?\s*value)?\s*(?:=|<=|>=|<|>)\s*$", re.I)
_OPEN_BEFORE = re.compile(
    r"(?:[\(\[]\s*(?:[A-Za-z][A-Za-z .'-]{0,30}?\s*[,:;=]?\s*)?|(?:\d{2}\s?%\s*)?(?:CI|C\.I\.|CrI|confidence interval"
    r"|credible interval|range|IQR|interquartile range)s?\s*(?:\[CI\]|\(CI\))?\s*(?:of|was|were|from|is)?\s*[,:;=]?\s*)$",
    re.I)
_PAIR_GAP = re.compile(r"^\s*%?\s*(?:-|to|,|;|and)\s*$", re.I)
_CLOSE_AFTER = re.compile(r"^\s*%?\s*(?:months?|mo|years?|weeks?|days?)?\s*[\)\]]", re.I)


def _parse(m: re.Match[str]) -> tuple[float, int]:
    body = (m.group("body") or "0").replace(",", "").replace("\u2009", "")
    frac = m.group("frac") or ""
    value = float(body + frac)
    if m.group("neg"):
        value = -value
    return value, max(0, len(frac) - 1)


def find_numbers(norm: str) -> list[Num]:
    """Every number printed in normalised text ``norm``, in order, with its role in a composite."""
    raw: list[list] = []  # [value, start, end, printed, decimals, percent, role, word, num_end]
    for m in _NUM.finditer(norm):
        if not m.group("body") and not m.group("frac"):
            continue
        value, dec = _parse(m)
        num_end = m.end("frac") if m.group("frac") else m.end("body")
        pct = bool(m.group("pct"))
        end = m.end()
        raw.append([value, m.start(), end, norm[m.start():num_end], dec, pct, "estimate", False, num_end])
    for m in _WORD.finditer(norm):
        g = m.groupdict()
        if g["hundred"]:
            value = 100
        elif g["tens"]:
            value = _TENS[g["tens"].lower()] + (_UNITS[g["unit"].lower()] if g["unit"] else 0)
        else:
            value = _UNITS[g["small"].lower()]
        # "one" as a pronoun ("one of the", "no one") is still a number; "a hundred" too
        raw.append([float(value), m.start(), m.end(), m.group(0), 0, False, "estimate", True, m.end()])
    raw.sort(key=lambda r: r[1])
    _roles(norm, raw)
    return [Num(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in raw]


#: letters glued before a number (``Ki-67``, ``COVID-19``, ``PD-L1``, ``G1``, ``v4.03``): a name. A hyphen joins any
#: word to it; glued without one, only one to four letters starting with a capital, or a ``v`` (version).
_NAME_BEFORE = re.compile(r"(?:[A-Za-z][A-Za-z0-9]*-|(?<![A-Za-z])(?:[A-Z][A-Za-z]{0,3}|v|V))$")
#: an isotope's mass number before its element (``177Lu``, ``68 Ga-``, ``18F-FDG``), or a drug code (``5-FU``)
_ISOTOPE_AFTER = re.compile(r"^(?:(?:Lu|Ga|Tc|In|Cu|Zr|Ac|Pb|Bi|Ra|Sm|Sr|Re|Ho|Tb|At|Sc|Co|Rb|Tl|Xe|Kr|Y|F|I|C)"
                            r"(?![a-z])|\s(?:Lu|Ga|Tc|In|Cu|Zr|Ac|Pb|Bi|Ra|Sm|Sr|Re|Ho|Tb|At|Sc|Y|F|I)(?=[-\]])"
                            r"|-[A-Z]{2,5}(?![A-Za-z]))")
#: words that make the small whole number after them a label (``grade 3``, ``stage 4``, ``cohort 2``) ...
_LABEL_BEFORE = re.compile(r"\b(?:grades?|stages?|phases?|types?|classe?s?|cohorts?|arms?|steps?|tiers?|models?)\s*$",
                           re.I)
#: ... the number after them a reference to a part of the article (``Table 2``, ``Fig. 3``, ``ref. 12``) ...
_PART_BEFORE = re.compile(r"\b(?:tables?|figures?|figs?\.?|supplementary(?: tables?| figures?)?|appendix|appendices|"
                          r"sections?|chapters?|refs?\.?|references?|equations?|eqs?\.)\s*$", re.I)
#: ... and the number after them a version (``CTCAE version 4.03``, ``RECIST 1.1``, ``WHO 2010``)
_VERSION_BEFORE = re.compile(r"\b(?:versions?|RECIST|CTCAE|ICD|MedDRA|WHO|SNOMED)\s*$", re.I)
#: a range or list continuing a label (``G1-2``, ``grade 3-4``, ``grades 3 and 4``, ``[3, 7-9]``)
_LABEL_GAP = re.compile(r"^\s*(?:-|/|and|or|to)\s*$", re.I)


def _names(norm: str, raw: list[list]) -> None:
    """Mark numbers that belong to a name or a label (role ``name``)."""
    for i, r in enumerate(raw):
        if r[7]:
            continue
        before = norm[max(0, r[1] - 24):r[1]]
        after = norm[r[8]:r[8] + 8]
        integer = r[4] == 0 and not r[5]
        if _NAME_BEFORE.search(before) and not before.endswith(("n=", "N=")):
            r[6] = "name"
        elif integer and 0 < r[0] < 300 and _ISOTOPE_AFTER.match(after):
            r[6] = "name"
        elif integer and 0 < r[0] <= 10 and _LABEL_BEFORE.search(before):
            r[6] = "name"
        elif integer and 0 < r[0] < 100 and _PART_BEFORE.search(before):
            r[6] = "name"
        elif not r[5] and _VERSION_BEFORE.search(before):
            r[6] = "name"
        elif integer and _reference(norm, r):
            r[6] = "name"
        elif i > 0 and integer and raw[i - 1][6] == "name" and not raw[i - 1][7] \
                and _LABEL_GAP.match(norm[raw[i - 1][2]:r[1]]) and raw[i - 1][0] < r[0] <= 10:
            r[6] = "name"


def _reference(norm: str, r: list) -> bool:
    """A citation: integers alone in square brackets (``[12]``, ``[3, 7-9]``), not after a figure (``4 [3-6]``)."""
    lo = norm.rfind("[", max(0, r[1] - 30), r[1] + 1)
    if lo < 0:
        return False
    hi = norm.find("]", r[1])
    if hi < 0 or hi - lo > 40:
        return False
    inside = norm[lo + 1:hi]
    if not re.fullmatch(r"\s*\d{1,3}(?:\s*[-,;]\s*\d{1,3})*\s*", inside):
        return False
    return not re.search(r"\d\s*%?\s*$", norm[max(0, lo - 6):lo])


def _roles(norm: str, raw: list[list]) -> None:
    n = len(raw)
    _names(norm, raw)
    for i, r in enumerate(raw):
        if r[6] == "name":
            continue
        after = norm[r[8]:r[8] + 30]
        if r[0] in (90.0, 95.0, 99.0) and _LEVEL_AFTER.match(after):
            r[6] = "level"
            continue
        before = norm[max(0, r[1] - 20):r[1]]
        if _P_BEFORE.search(before):
            r[6] = "p"
    for i in range(n - 1):
        a, b = raw[i], raw[i + 1]
        if a[6] in ("level", "p", "name") or b[6] in ("level", "p", "name"):
            continue
        gap = norm[a[2]:b[1]]
        whole = float(a[0]).is_integer() and float(b[0]).is_integer() and not a[5] and not b[5]
        if whole and re.fullmatch(r"\s*/\s*", gap) and a[4] == 0 and b[4] == 0:
            a[6], b[6] = "numerator", "denominator"
            continue
        if whole and re.fullmatch(r"\s+(?:of|out of)\s+", gap, flags=re.I) and a[0] <= b[0]:
            a[6], b[6] = "numerator", "denominator"
            continue
        if re.fullmatch(r"\s*±\s*|\s*\+/?-\s*", gap):
            b[6] = "sd"
            continue
        if a[6] != "estimate" or b[6] != "estimate" or a[5] != b[5]:
            continue
        if _PAIR_GAP.match(gap) and _CLOSE_AFTER.match(norm[b[8]:b[8] + 20]) is not None or (
                _PAIR_GAP.match(gap) and re.search(r"(?:CI|C\.I\.|CrI|intervals?|range|IQR)\]?\)?\s*(?:of|was|were|from)?"
                                                   r"\s*[,:;=]?\s*$", norm[max(0, a[1] - 40):a[1]], re.I)):
            before = norm[max(0, a[1] - 45):a[1]]
            if _OPEN_BEFORE.search(before) or re.search(r"(?:CI|intervals?|range|IQR)\]?\)?\s*(?:of|was|were|"
                                                        r"from)?\s*[,:;=]?\s*$", before, re.I):
                if b[0] >= a[0] or a[0] < 0 or b[0] < 0:
                    a[6], b[6] = "low", "high"


def decimals_of(value: float) -> int:
    """Decimal places of a form's value as typed (``30.87`` -> 2, ``31.0`` -> 0)."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        from decimal import Decimal

        return max(0, -Decimal(text).normalize().as_tuple().exponent)
    if "." not in text:
        return 0
    frac = text.split(".", 1)[1].rstrip("0")
    return len(frac)


def _doubled_last(value: float, decimals: int) -> bool:
    text = f"{abs(value):.{decimals}f}"
    return len(text) >= 2 and text[-1] == text[-2] and text[-2].isdigit()


def same_at_precision(form: float, printed: float, printed_decimals: int, *, form_decimals: int | None = None,
                      integer: bool = False) -> bool:
    """Whether the form's value and a printed number agree at the precision of the less precise of the two.

    Form ``30.87`` agrees with printed ``30.9``, form ``30.9`` with printed ``30.87``; precisions more than one
    decimal apart never agree (``1.14`` is not the ``1`` of ``1 cm``), a printed whole number agrees only with
    itself (``2.3`` is not ``2``), and a form value whose extra decimal repeats the digit before it (``10.22``
    for a printed ``10.2``) is the doubled-digit slip, not a more precise copy. A count
    (``integer``) agrees only with a whole number printed as such.
    """
    fd = decimals_of(form) if form_decimals is None else form_decimals
    if abs(form - printed) <= 1e-12 * max(1.0, abs(form)) and not (integer and printed_decimals):
        return True  # the same value, however many zeros either prints
    if integer:
        return printed_decimals == 0 and abs(form - printed) < 1e-9
    if abs(fd - printed_decimals) > 1:  # 1.14 is not "1", nor 32 "32.24": one decimal of rounding at most
        return False
    if printed_decimals == 0 and fd > 0:  # 2.3 is not the "2" of a table: a whole number only as itself
        return abs(form - printed) <= 1e-9 * max(1.0, abs(form))
    ftext, ptext = f"{abs(form):.{fd}f}", f"{abs(printed):.{printed_decimals}f}"
    if fd > printed_decimals and any(ftext[:i] + ftext[i + 1:] == ptext for i in range(len(ftext))):
        return False  # 10.22 or 0.889 for a printed 10.2 or 0.89: a doubled digit, not a more precise copy
    if fd < printed_decimals:  # the printed value rounded (half up or half even), never truncated
        from decimal import ROUND_HALF_UP, Decimal

        q = Decimal(1).scaleb(-fd)
        p = Decimal(repr(abs(float(printed))))
        rounded = float(p.quantize(q, rounding=ROUND_HALF_UP)) * (1 if printed >= 0 else -1)
        return abs(rounded - form) <= 1e-9 * max(1.0, abs(form))
    d = min(fd, printed_decimals)
    tol = 0.5 * 10.0 ** (-d) + 1e-9 * max(1.0, abs(form))
    if fd == printed_decimals:
        return abs(form - printed) <= 1e-9 * max(1.0, abs(form))
    return abs(form - printed) <= tol

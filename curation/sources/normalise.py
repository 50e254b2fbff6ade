"""Article text normalised for matching; quotes always come from the original text.

:func:`normalise` returns the normalised text and, for every character of it, the offset of the
original character it comes from, so that a match in the normalised text is quoted from the original.
What it does (contract ``sources.md``, "Reading the article"): ligatures (``ﬀ`` -> ``ff``, by
Unicode compatibility decomposition), soft hyphens and zero-width characters removed, line-end
hyphenation joined (``progres-\\nsion``), Unicode minus, hyphen variants and en/em dashes read as
``-``, middle-dot decimals (``0·6``) as ``.``, thin, figure and non-breaking spaces as spaces,
every run of white space as one space. Thousands separators and number words are read by
:mod:`.numbers`, which works on this text.
"""

from __future__ import annotations

import re
import unicodedata

_DROP = {"\ufffe", "\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}
_DASHES = {"\u2212", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\ufe63", "\uff0d"}
#: Thin, narrow and non-breaking spaces become one thin space (U+2009): a thousands separator (``1 063``)
#: is read only across one of these, never across an ordinary space (two table cells ``12 345``).
_THIN = {"\u00a0", "\u2009", "\u202f", "\u2007"}
_SPACES = {"\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008",
           "\u200a", "\u205f", "\u3000", "\t", "\r", "\n", "\x0b", "\x0c"}
_DOTS = {"\u00b7", "\u2219", "\u22c5", "\u2027"}
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2032": "'", "\u00d7": "x"}
_LE = {"\u2264": "<=", "\u2265": ">=", "\u2266": "<=", "\u2267": ">="}


def _expand(ch: str) -> str:
    if ch in _DROP:
        return ""
    if ch in _DASHES:
        return "-"
    if ch in _SPACES:
        return " "
    if ch in _THIN:
        return "\u2009"
    if ch in _QUOTES:
        return _QUOTES[ch]
    if ch in _LE:
        return _LE[ch]
    if ord(ch) < 128:
        return ch
    if "\ufb00" <= ch <= "\ufb06":  # ligatures
        return unicodedata.normalize("NFKC", ch)
    cat = unicodedata.category(ch)
    if cat == "Zs":
        return " "
    if cat == "Cc" or cat == "Cf":
        return ""
    return ch


_SPECIAL = re.compile(r"[^\x21-\x7e ]|  +|^ | $|[-\u00ad\u2010\ufffe](?=[\r\n])")


def normalise(text: str) -> tuple[str, list[int]]:
    """``(normalised text, offsets)``: ``offsets[i]`` is the index in ``text`` of normalised character ``i``.

    ``len(offsets) == len(normalised) + 1`` (the last entry is ``len(text)``, the end), so a normalised span
    ``[a, b)`` is quoted as ``text[offsets[a]:offsets[b - 1] + 1]``.
    """
    out: list[str] = []
    offs: list[int] = []
    n = len(text)
    pos = 0
    skip_to = -1
    for m in _SPECIAL.finditer(text):
        i = m.start()
        if i < skip_to:
            continue
        if i > pos:  # plain printable ASCII with single spaces: copied as is
            chunk = text[pos:i]
            if chunk[0] == " " and (not out or out[-1] in " \u2009"):
                chunk = chunk[1:]
                pos += 1
            out.extend(chunk)
            offs.extend(range(pos, i))
        ch = text[i]
        pos = m.end()
        if ch in ("-", "\u00ad", "\u2010", "\ufffe") and m.end() == i + 1 and i + 1 < n and text[i + 1] in "\r\n":
            # line-end hyphenation: a letter, a hyphen at the end of a line, a lower-case letter
            j = i + 1
            while j < n and text[j] in " \n\r\t":
                j += 1
            if out and out[-1].isalpha() and j < n and text[j].islower():
                pos = skip_to = j
                continue
            if ch == "-" or ch == "\u2010":
                out.append("-")
                offs.append(i)
            continue
        for k in range(i, m.end()):
            c = text[k]
            if c in _DOTS and out and out[-1].isdigit() and k + 1 < n and text[k + 1].isdigit():
                rep = "."
            elif c in _DOTS:
                rep = " "
            else:
                rep = _expand(c)
            for r in rep:
                if r in " \u2009" and (not out or out[-1] in " \u2009"):
                    continue
                out.append(r)
                offs.append(k)
    if pos < n:
        chunk = text[pos:]
        if chunk[0] == " " and (not out or out[-1] in " \u2009"):
            chunk = chunk[1:]
            pos += 1
        out.extend(chunk)
        offs.extend(range(pos, n))
    while out and out[-1] in " \u2009":
        out.pop()
        offs.pop()
    offs.append(n)
    return "".join(out), offs


def quote(text: str, offsets: list[int], start: int, end: int, width: int = 200) -> str:
    """At most ``width`` characters of the original ``text`` around normalised span ``[start, end)``,
    cut at word boundaries, white space collapsed (the article's own characters otherwise)."""
    a = offsets[start] if start < len(offsets) else len(text)
    b = offsets[end - 1] + 1 if end - 1 < len(offsets) and end > start else a
    span = b - a
    room = max(0, width - span)
    lo = max(0, a - room * 2 // 3)
    hi = min(len(text), b + (room - (a - lo)))
    lo = max(0, min(lo, a))
    piece = text[lo:hi]
    piece = re.sub(r"\s+", " ", piece.replace("\u00ad", ""))
    if lo > 0 and " " in piece[:30]:
        piece = piece[piece.index(" ") + 1:]
    if hi < len(text) and " " in piece[-30:]:
        piece = piece[:piece.rindex(" ")]
    piece = piece.strip()
    if len(piece) > width:
        piece = piece[:width]
    return piece


def fold(text: str) -> str:
    """Lower case, one character for one (the offsets of :func:`normalise` still hold)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)

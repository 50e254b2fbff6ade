"""Matching one figure against an article: printed at the form's precision, next to the words that name it.

An article's blocks are prepared once (:func:`prepare`: normalised text, offsets back to the
original, numbers with their roles, the table context of a cell). For one cell, :func:`judge`
returns its status (contract ``sources.md``):

* ``found``: a number of the right role (estimate, CI bound, count, percentage, p) that equals
  the form's value at the precision of the less precise of the two is printed within the sentence
  (up to 200 characters before it, 60 after) or the table row, column or caption of one of the
  field's terms;
* ``mismatch``: it is not, but the terms are printed with other numbers of the same kind: the
  nearest is quoted;
* ``inconsistent-source``: found, and the same term is printed right before another value of the
  same precision within 10% of it in another part of the article (abstract vs table);
* ``found-elsewhere``: printed, but nowhere next to the terms;
* ``absent``: neither.

Introduction, discussion and reference sections (:data:`~.model.FOREIGN_KINDS`) are left out of all
of these: other trials' figures quoted there never count as the study's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Sequence

from .articles import Article, Block
from .model import FOREIGN_KINDS, Place
from .normalise import fold, normalise, quote
from .numbers import Num, decimals_of, find_numbers, same_at_precision

BEFORE = 200  # characters of the sentence before a figure in which its terms may stand
AFTER = 60  # ... and after it
_SENT = re.compile(r"[.!?](?=\s+[A-Z(\[])")
_TIME = re.compile(r"^\s*-?\s*(?:months?|mo|years?|yrs?|weeks?|wks?|days?|hours?|h)\b", re.I)
_TIME_BEFORE = re.compile(r"\b(?:at|by|within|after|before|over|every|first|last|to|than|up to|beyond)\s*$", re.I)
#: a median printed as not reached: a printed value of its own (``median OS was not reached``, ``NR``)
_NOT_REACHED = re.compile(r"\bnot (?:yet |been |yet been )?(?:reached|attained)\b|(?<![A-Za-z])NR(?![A-Za-z])", re.I)
NOT_REACHED = "not reached"
KIND_WEIGHT = {"results": 2.0, "table": 2.0, "abstract": 1.5, "body": 1.0, "front": 0.5, "methods": 0.5,
               "back": 0.0}


@dataclass
class PBlock:
    """A block prepared for matching."""

    block: Block
    norm: str
    offs: list[int]
    low: str
    nums: list[Num]
    ctx: str
    foreign: bool
    bounds: list[int]
    times: frozenset[int] = frozenset()
    not_reached: tuple[tuple[int, int], ...] = ()


@dataclass
class Prepared:
    """An article prepared for matching (its blocks, numbers indexed by rounded value)."""

    article: Article
    blocks: list[PBlock]
    by_int: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    _hits: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    _ctx_hits: dict[str, frozenset[int]] = field(default_factory=dict)

    def term_hits(self, term: str) -> list[tuple[int, int, int]]:
        """``(block, start, end)`` of every place ``term`` is printed in the blocks' text (cached per term)."""
        got = self._hits.get(term)
        if got is None:
            got = []
            p = term_pattern(term)
            if p is not None:
                words = [w for w in re.split(r"[\s\-]+", normalise(term)[0].lower()) if w]
                first = words[0][:4] if words else ""
                for bi, pb in enumerate(self.blocks):
                    if first and first not in pb.low:
                        continue
                    for m in p.finditer(pb.norm):
                        got.append((bi, m.start(), m.end()))
            self._hits[term] = got
        return got

    def ctx_blocks(self, term: str) -> frozenset[int]:
        """Blocks whose table context (row, column, caption) holds ``term``."""
        got = self._ctx_hits.get(term)
        if got is None:
            p = term_pattern(term)
            got = frozenset(bi for bi, pb in enumerate(self.blocks) if pb.ctx and p is not None
                            and p.search(pb.ctx)) if p is not None else frozenset()
            self._ctx_hits[term] = got
        return got

    def hits_by_block(self, terms: Sequence[str]) -> dict[int, list[tuple[int, int, str]]]:
        out: dict[int, list[tuple[int, int, str]]] = {}
        for t in terms:
            for bi, a, b in self.term_hits(t):
                out.setdefault(bi, []).append((a, b, t))
        return out


def prepare(article: Article) -> Prepared:
    blocks: list[PBlock] = []
    by_int: dict[int, list[tuple[int, int]]] = {}
    for b in article.blocks:
        norm, offs = normalise(b.text)
        nums = find_numbers(norm)
        # a cell's context: its row and column; the caption only when the cell has no column header
        ctx_parts = [p for p in ((b.table, b.caption, b.row) if not b.column else (b.row, b.column)) if p]
        ctx = normalise(" | ".join(ctx_parts))[0] if ctx_parts else ""  # case kept: PR is not "pr"
        bounds = [m.end() for m in _SENT.finditer(norm)]
        times = set()
        for k, n in enumerate(nums):
            if _TIME.match(norm[n.end:n.end + 12]) and _TIME_BEFORE.search(norm[max(0, n.start - 12):n.start]):
                times.add(k)
            elif re.match(r"^-(?:month|year|week|day)", norm[n.end:n.end + 8], re.I):
                times.add(k)
        nr = tuple((m.start(), m.end()) for m in _NOT_REACHED.finditer(norm))
        pb = PBlock(b, norm, offs, fold(norm), nums, ctx, b.kind in FOREIGN_KINDS, bounds, frozenset(times), nr)
        bi = len(blocks)
        blocks.append(pb)
        for k, n in enumerate(nums):
            for key in _keys(n.value):
                by_int.setdefault(key, []).append((bi, k))
    return Prepared(article, blocks, by_int)


def _keys(v: float) -> tuple[int, ...]:
    a = abs(v)
    keys = {int(a), int(a) + 1, int(a) - 1 if a >= 1 else 0}
    if a <= 1.0:  # a proportion may stand for a percentage
        keys.add(int(a * 100))
        keys.add(int(a * 100) + 1)
    return tuple(keys)


# ------------------------------------------------------------------------------------------------
# Terms
# ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def term_pattern(term: str) -> re.Pattern[str] | None:
    """A pattern for a term: spaces, hyphens, brackets and commas optional between its words, whole words only; an
    abbreviation of capitals (``PFS``, ``OS``, ``CR``) matched in capitals, anything else in any case."""
    t = normalise(term)[0].strip()
    if len(t) < 2:
        return None
    words = [w for w in re.split(r"[\s\-]+", t) if w]
    if not words:
        return None
    body = r"[\s\-(),/:\[\]]{0,4}".join(re.escape(w) for w in words)  # "Age, years" is "Age (years)"
    abbrev = len(t) <= 5 and t.upper() == t and any(c.isalpha() for c in t)
    flags = 0 if abbrev else re.I
    # whole words, and not negated: "non-evaluable" is not "evaluable"
    return re.compile(r"(?<![A-Za-z0-9])(?<!non-)(?<!non )(?<!Non-)(?<!un)" + body + r"(?![A-Za-z])(?!\d*[.,]\d)", flags)  # a footnote digit may follow ("Vomiting1")


def _term_hits(text: str, terms: Sequence[str]) -> list[tuple[int, int, str]]:
    out = []
    for t in terms:
        p = term_pattern(t)
        if p is None:
            continue
        for m in p.finditer(text):
            out.append((m.start(), m.end(), t))
    return out


# ------------------------------------------------------------------------------------------------
# The figure's kind
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Want:
    """What kind of printed number a cell's value can be.

    ``role``: ``value`` (an estimate, a count, a numerator or denominator), ``low``, ``high`` or ``p``;
    ``kind``: ``integer``, ``percentage``, ``number``, ``year`` or ``p_value``; ``percent_unit``: a number whose
    unit is ``%`` (a Ki-67 index), so a printed ``18%`` is of its kind; ``not_reached``: a median that an article
    may print as ``not reached`` (``NR``).
    """

    role: str = "value"
    kind: str = "number"
    percent_unit: bool = False
    not_reached: bool = False


def _compatible(n: Num, want: Want) -> bool:
    if n.role in ("level", "name"):
        return False
    if want.role == "any":
        return True
    if want.role == "low":
        return n.role == "low"
    if want.role == "high":
        return n.role == "high"
    if want.kind == "p_value" or want.role == "p":
        return n.role == "p" or (n.role == "estimate" and 0 <= n.value <= 1)
    if n.role in ("low", "high", "p"):
        return False
    if want.kind == "integer":
        return n.decimals == 0 and not n.percent
    if want.kind == "year":
        return n.decimals == 0 and 1800 <= n.value <= 2100
    return True


def _same(value: float, fdec: int, n: Num, want: Want) -> bool:
    if want.kind == "integer":
        return same_at_precision(value, n.value, n.decimals, form_decimals=fdec, integer=True)
    if want.kind == "percentage":
        if same_at_precision(value, n.value, n.decimals, form_decimals=fdec):
            return True
        if not n.percent and 0 <= n.value <= 1 and n.decimals >= 2:  # 0.322 under a proportion
            return same_at_precision(value, n.value * 100, max(0, n.decimals - 2), form_decimals=fdec)
        return False
    if n.percent and want.kind == "number" and value > 1.0 and n.word:
        return False
    return same_at_precision(value, n.value, n.decimals, form_decimals=fdec)


def _percent_cell(pb: PBlock | None, n: Num) -> bool:
    """A number that is a percentage without its sign: under a ``%`` header, or the ``(32.6)`` of ``15 (32.6)``."""
    if pb is None:
        return False
    if "%" in pb.ctx:
        return True
    return bool(re.search(r"\d\s*\(\s*$", pb.norm[max(0, n.start - 12):n.start]))


def _slot_kind(n: Num, want: Want, value: float, pb: PBlock | None = None) -> bool:
    """A number printed next to the terms that the form's value could have been copied from."""
    if not _compatible(n, want) or n.word:
        return False
    if want.kind == "number" and n.percent and not want.percent_unit:
        return False
    if want.kind == "percentage" and not (n.percent or (0 <= n.value <= 1 and n.decimals >= 2)
                                          or (0 <= n.value <= 100 and _percent_cell(pb, n))):
        return False
    if want.kind != "year" and n.decimals == 0 and 1900 <= n.value <= 2100 and not (1900 <= value <= 2100):
        return False
    a, b = abs(value), abs(n.value)
    if min(a, b) >= 1 and max(a, b) / min(a, b) > 20:
        return False  # a slip keeps the order of magnitude within a digit: 2212 is not a miscopied 2
    return True


# ------------------------------------------------------------------------------------------------
# Finding a figure
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    block: int
    num: int
    near: tuple[str, ...]
    distance: int
    score: float


def _sentence(pb: PBlock, start: int, end: int) -> tuple[int, int]:
    import bisect

    i = bisect.bisect_right(pb.bounds, start) - 1
    s = pb.bounds[i] if i >= 0 else 0
    j = bisect.bisect_left(pb.bounds, end)
    e = pb.bounds[j] if j < len(pb.bounds) else len(pb.norm)
    return s, e


AFTER_ASIDE = 150  # a subject and its verb apart: "52 patients with NET (G1-2, Ki-67 index 18%) were enrolled"


def _aside_only(pb: PBlock, n: Num, hi: int) -> bool:
    """Whether only words and bracketed asides follow ``n`` up to ``hi`` (no other figure outside brackets, no
    clause break): the words after the aside still name ``n``."""
    text = pb.norm[n.end:hi]
    depth = 0
    out = []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    rest = "".join(out)
    if re.search(r"[;:]", rest):
        return False
    starts = {m.start - n.end for m in pb.nums if n.end <= m.start < hi and m.role != "name" and not m.word}
    if not starts:
        return True
    depth = 0
    for i, ch in enumerate(text):
        if i in starts and depth == 0:
            return False
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
    return True


def near_terms(pb: PBlock, n: Num, terms: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """The terms next to number ``n`` in its block (sentence window or table context) and the distance."""
    s, e = _sentence(pb, n.start, n.end)
    lo = max(s, n.start - BEFORE)
    hi = min(e, n.end + (AFTER_ASIDE if _aside_only(pb, n, min(e, n.end + AFTER_ASIDE)) else AFTER))
    found: list[str] = []
    best = 10_000
    for a, b, t in _term_hits(pb.norm[lo:hi], terms):
        a += lo
        b += lo
        if b <= n.start:
            d = n.start - b
        elif a >= n.end:
            d = (a - n.end) * 2
        else:
            continue  # the number is inside the term ("COVID-19")
        best = min(best, d)
        if t not in found:
            found.append(t)
    if pb.ctx:
        for _, _, t in _term_hits(pb.ctx, terms):
            if t not in found:
                found.append(t)
            best = min(best, 60)
    return tuple(found), best


def _place(prep: Prepared, pb: PBlock, n: Num | tuple[int, int], near: tuple[str, ...], score: float) -> Place:
    b = pb.block
    start, end = (n.start, n.end) if isinstance(n, Num) else n
    printed = pb.norm[start:end].strip()
    q = quote(b.text, pb.offs, start, end)
    if b.kind == "table" and b.page is None and (b.row or b.column):  # a JATS cell: its row and column too
        q = (" / ".join(x for x in (b.row, b.column) if x) + ": " + q)[-200:]
    return Place(file=prep.article.file, page=b.page, section=b.section, kind=b.kind,
                 quote=q, printed=printed, table=b.table,
                 row=b.row if b.kind == "table" else None, column=b.column if b.kind == "table" else None,
                 near_terms=near, score=round(score, 3))


def _score(pb: PBlock, n: Num, near: tuple[str, ...], dist: int, fdec: int, want: Want) -> float:
    s = 0.0
    if near:
        s += 10.0 - min(dist, 400) / 100.0
    s += KIND_WEIGHT.get(pb.block.kind, 1.0)
    if pb.foreign:
        s -= 20.0
    if n.decimals == fdec:
        s += 1.0
    if n.word:
        s -= 0.5
    return s


def find_value(preps: Sequence[Prepared], value: float, terms: Sequence[str], want: Want, *,
               include_foreign: bool = False, fdec: int | None = None) -> list[tuple[Prepared, PBlock, Num, Place]]:
    """Every printed occurrence of ``value`` (role and precision as ``want``), best first."""
    fdec = decimals_of(value) if fdec is None else fdec
    out = []
    for prep in preps:
        keys = set(_keys(value))
        seen: set[tuple[int, int]] = set()
        for key in keys:
            for bi, k in prep.by_int.get(key, ()):
                if (bi, k) in seen:
                    continue
                seen.add((bi, k))
                pb = prep.blocks[bi]
                if pb.foreign and not include_foreign:
                    continue
                n = pb.nums[k]
                if k in pb.times or not _compatible(n, want) or not _same(value, fdec, n, want):
                    continue
                near, dist = near_terms(pb, n, terms)
                if not near and want.kind == "percentage" and not n.percent and abs(n.value) <= 1 < abs(value):
                    continue  # a proportion stands for a percentage only under the field's words
                sc = _score(pb, n, near, dist, fdec, want)
                out.append((prep, pb, n, _place(prep, pb, n, near, sc)))
    out.sort(key=lambda t: (-t[3].score, t[3].page or 0))
    return out


def _term_blocks(prep: Prepared, terms: Sequence[str]) -> tuple[dict, dict]:
    """The blocks where the terms are printed (block -> hits) and the blocks the terms head as their context (a
    table's row or column label: block -> the first term that heads it)."""
    ctx: dict = {}
    for t in terms:
        for bi in prep.ctx_blocks(t):
            ctx.setdefault(bi, t)
    return prep.hits_by_block(terms), ctx


def term_slots(preps: Sequence[Prepared], terms: Sequence[str], want: Want, value: float
               ) -> list[tuple[Prepared, PBlock, Num, int, str]]:
    """Numbers of the value's kind printed next to the terms outside foreign sections: (prep, block, num, distance,
    term), nearest first."""
    out = []
    for prep in preps:
        by_block, ctx = _term_blocks(prep, terms)
        for bi in sorted(set(by_block) | set(ctx)):
            pb = prep.blocks[bi]
            if pb.foreign or not pb.nums:
                continue
            hits = by_block.get(bi, [])
            for k, n in enumerate(pb.nums):
                if k in pb.times or not _slot_kind(n, want, value, pb):
                    continue
                if bi in ctx:
                    out.append((prep, pb, n, 60, ctx[bi]))
                    continue
                s, e = _sentence(pb, n.start, n.end)
                best = None
                for a, b, t in hits:
                    if s <= a and b <= n.start and n.start - b <= BEFORE:
                        d = n.start - b
                    elif a >= n.end and a <= e and a - n.end <= AFTER and ";" not in pb.norm[n.end:a]:
                        d = (a - n.end) * 2  # (a term after a semicolon begins another clause: not n's)
                    else:
                        continue
                    if best is None or d < best[0]:
                        best = (d, t)
                if best is not None:
                    out.append((prep, pb, n, best[0], best[1]))
    out.sort(key=lambda t: t[3])
    return out


def not_reached_slots(preps: Sequence[Prepared], terms: Sequence[str]) -> list[tuple[Prepared, PBlock, tuple[int, int],
                                                                                  int, str]]:
    """Places where a median is printed as not reached next to the terms (``median OS was not reached``, a table
    cell ``NR`` under or beside them), outside foreign sections: (prep, block, span, distance, term), nearest first."""
    out = []
    for prep in preps:
        by_block, ctx = _term_blocks(prep, terms)
        for bi in sorted(set(by_block) | set(ctx)):
            pb = prep.blocks[bi]
            if pb.foreign or not pb.not_reached:
                continue
            for span in pb.not_reached:
                if bi in ctx:
                    out.append((prep, pb, span, 60, ctx[bi]))
                    continue
                s, _ = _sentence(pb, span[0], span[1])
                best = None
                for a, b, t in by_block.get(bi, []):
                    between = pb.norm[b:span[0]]
                    if s <= a and b <= span[0] and span[0] - b <= BEFORE and not any(
                            b <= m.start < span[0] and m.role != "name" and not m.word for m in pb.nums) \
                            and ";" not in between:
                        if best is None or span[0] - b < best[0]:
                            best = (span[0] - b, t)
                if best is not None:
                    out.append((prep, pb, span, best[0], best[1]))
    out.sort(key=lambda t: t[3])
    return out


@dataclass(frozen=True)
class Judgement:
    """The verdict on one value: status, the place and quote of the figure (or of the printed value that
    contradicts it), and for ``inconsistent-source`` the other place."""

    status: str
    place: Place | None = None
    other: Place | None = None


def _companion_near(pb: PBlock, n: Num, companions: Sequence[float], width: int = 45, role: str = "value") -> int:
    """How many of the row's other figures (the estimate of a CI bound, its other bound; an estimate's bounds)
    are printed next to ``n``: two for 28.6 in ``25.3 months (95% CI 22.1-28.6)`` with companions 25.3 and 22.1."""
    if not companions:
        return 0
    found = set()
    for m in pb.nums:
        if m is n or abs(m.start - n.start) > width:
            continue
        if (role == "high" and m.start > n.start) or (role == "value" and m.start < n.start):
            continue  # an upper bound comes after its estimate and lower bound; an estimate before its bounds
        for k, c in enumerate(companions):
            if k not in found and same_at_precision(c, m.value, m.decimals):
                found.add(k)
    return len(found)


def judge(preps: Sequence[Prepared], value: float, terms: Sequence[str], want: Want,
          fdec: int | None = None, companions: Sequence[float] = (), cohort: Sequence[str] = ()) -> Judgement:
    """The status of one numeric value against an article (and its supplements).

    ``companions``: the row's other figures of the same measure (a CI bound's estimate and other bound); a
    place where they are printed too comes first, and the printed value a mismatch quotes is preferably one
    printed with them. ``cohort``: a subgroup row's words (``pancre`` for a pancreas cohort); its figure is found
    where it is printed next to them in a paragraph or table that holds the terms, even when another number
    (the whole study's) stands nearer the terms.
    """
    fdec = decimals_of(value) if fdec is None else fdec
    hits = find_value(preps, value, terms, want, fdec=fdec)
    near = [h for h in hits if h[3].near_terms]
    if near and len(companions) >= 2:
        counts = [_companion_near(h[1], h[2], companions, role=want.role) for h in near]
        order = sorted(range(len(near)), key=lambda k: (-counts[k], -near[k][3].score))
        near = [near[k] for k in order]
        if counts[order[0]] == 0:
            # printed next to the words, but never with the row's other figures (its estimate and other
            # bound), while the words stand elsewhere with them around another value: that is the row's figure
            slots = [sl for sl in (term_slots(preps, terms, want, value) if terms else [])
                     if _companion_near(sl[1], sl[2], companions, role=want.role) >= 2]
            if slots:
                prep, pb, n, dist, term = slots[0]
                return Judgement("mismatch", _place(prep, pb, n, (term,), 0.0))
    if near:
        best = near[0]
        other = _inconsistent(preps, value, terms, want, fdec, best)
        if other is not None:
            return Judgement("inconsistent-source", best[3], other)
        return Judgement("found", best[3])
    if cohort and terms:
        for h in hits:
            term = _cohort_place(h[1], h[2], terms, cohort)
            if term is not None:
                return Judgement("found", _place(h[0], h[1], h[2], (term,), h[3].score))
    slots = term_slots(preps, terms, want, value) if terms else []
    if want.not_reached and terms:  # "median OS was not reached": the printed value nearest the terms
        nrs = not_reached_slots(preps, terms)
        if nrs and (not slots or nrs[0][3] <= min(sl[3] for sl in slots)):
            prep, pb, span, dist, term = nrs[0]
            return Judgement("mismatch", _place(prep, pb, span, (term,), 0.0))
    if slots:
        if companions:  # the printed value to quote: the one printed with the row's other figures
            slots = sorted(slots, key=lambda sl: (-_companion_near(sl[1], sl[2], companions, role=want.role), sl[3]))
        if cohort:  # a subgroup's row: preferably the value printed next to the subgroup's words
            slots = sorted(slots, key=lambda sl: _cohort_place(sl[1], sl[2], terms, cohort) is None)
        prep, pb, n, dist, term = slots[0]
        place = _place(prep, pb, n, (term,), 0.0)
        return Judgement("mismatch", place)
    if hits:
        return Judgement("found-elsewhere", hits[0][3])
    return Judgement("absent")


def _cohort_place(pb: PBlock, n: Num, terms: Sequence[str], cohort: Sequence[str]) -> str | None:
    """The term for which ``n`` is a subgroup's figure: a cohort word in its sentence (or table context) and one
    of the terms in its paragraph or table context; None when not."""
    s, e = _sentence(pb, n.start, n.end)
    window = pb.norm[max(s, n.start - BEFORE):min(e, n.end + AFTER)] + " " + pb.ctx
    if not any(re.search(r"(?<![A-Za-z])" + re.escape(w), window, re.I) for w in cohort):
        return None
    hits = _term_hits(pb.norm + " " + pb.ctx, terms)
    return hits[0][2] if hits else None


def judge_not_reached(preps: Sequence[Prepared], terms: Sequence[str], want: Want) -> Judgement:
    """A form's median typed as not reached (``NR``): found where the article prints it so next to the terms, a
    mismatch where the terms stand with a number of the median's kind instead, else absent."""
    nrs = not_reached_slots(preps, terms) if terms else []
    if nrs:
        prep, pb, span, dist, term = nrs[0]
        return Judgement("found", _place(prep, pb, span, (term,), 10.0 - dist / 100.0))
    slots = [sl for sl in (term_slots(preps, terms, Want(want.role, want.kind, want.percent_unit), 0.0)
                           if terms else []) if sl[2].decimals > 0 or want.kind == "integer"]
    if slots:
        prep, pb, n, dist, term = slots[0]
        return Judgement("mismatch", _place(prep, pb, n, (term,), 0.0))
    return Judgement("absent")


def _inconsistent(preps: Sequence[Prepared], value: float, terms: Sequence[str], want: Want, fdec: int,
                  best: tuple[Prepared, PBlock, Num, Place]) -> Place | None:
    """Another part of the article printing the same term right before a close but different value."""
    _, bpb, bn, bplace = best
    for prep in preps:
        for bi, hits in prep.hits_by_block(bplace.near_terms).items():
            pb = prep.blocks[bi]
            if pb.foreign or pb is bpb or pb.block.kind == bpb.block.kind:
                continue
            for a, b, t in hits:
                following = [n for n in pb.nums if n.start >= b and n.start - b <= 25]
                if not following:
                    continue
                n = following[0]
                if not _slot_kind(n, want, value, pb) or n.decimals != bn.decimals or n.role != bn.role:
                    continue
                if re.search(r"[.;,]|\b(?:and|vs|versus|or|compared)\b", pb.norm[b:n.start]):
                    continue
                if _same(value, fdec, n, want) or value == 0:
                    continue
                if (abs(n.value - value) <= 0.1 * abs(value) or _slip_of(value, fdec, n)) and _same_phrase(bpb, bn, pb, n) \
                        and not _printed_in(bpb, n.value, n.decimals) and not _printed_in(pb, value, fdec):
                    # (a value printed in both places is the other arm's or group's, not a second version)
                    return _place(prep, pb, n, (t,), 0.0)
    return None


def _slip_of(value: float, fdec: int, n: Num) -> bool:
    """Whether printed ``n`` is ``value`` with two adjacent digits transposed (``27.1`` for ``21.7``), the article's
    own slip, at the same precision."""
    if n.decimals != fdec:
        return False
    a, b = f"{abs(value):.{fdec}f}", f"{abs(n.value):.{n.decimals}f}"
    if len(a) != len(b) or a == b or (value < 0) != (n.value < 0):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) == 2 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
        gap = a[diff[0] + 1:diff[1]]
        return diff[1] - diff[0] == 1 or gap == "."  # adjacent digits, or either side of the decimal point
    return False


def _printed_in(pb: PBlock, value: float, decimals: int) -> bool:
    return any(same_at_precision(value, m.value, m.decimals, form_decimals=decimals) for m in pb.nums)


def _lead(pb: PBlock, n: Num, width: int = 90) -> str:
    s, _ = _sentence(pb, n.start, n.end)
    text = pb.low[max(s, n.start - width):n.start]
    if pb.ctx:
        text = pb.ctx.lower() + " " + text
    return re.sub(r"[-\d.,%()\[\];:=<>]+", " ", text)


def _same_phrase(pa: PBlock, na: Num, pb: PBlock, nb: Num) -> bool:
    """Whether two figures are introduced by the same words (``median PFS was``), numbers left out: two values
    of one outcome, not the values of two outcomes that share an abbreviation (``HR``)."""
    from rapidfuzz import fuzz

    a, b = _lead(pa, na), _lead(pb, nb)
    wa = [w for w in a.split() if len(w) > 2][-6:]
    wb = [w for w in b.split() if len(w) > 2][-6:]
    if len(wa) < 2 or len(wb) < 2:
        return False
    return fuzz.token_set_ratio(" ".join(wa), " ".join(wb)) >= 85


def find_terms(preps: Sequence[Prepared], words: Sequence[str]) -> list[Place]:
    """Places where any of ``words`` is printed outside foreign sections (a vocabulary value), best first."""
    out = []
    for prep in preps:
        for pb in prep.blocks:
            if pb.foreign:
                continue
            for a, b, t in _term_hits(pb.norm, words):
                sc = KIND_WEIGHT.get(pb.block.kind, 1.0)
                bl = pb.block
                out.append(Place(prep.article.file, bl.page, bl.section, bl.kind, quote(bl.text, pb.offs, a, b),
                                 pb.norm[a:b], bl.table, bl.row if bl.kind == "table" else None,
                                 bl.column if bl.kind == "table" else None, (t,), sc))
                break
    out.sort(key=lambda p: -p.score)
    return out

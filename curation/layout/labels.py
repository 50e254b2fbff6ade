"""Label values: header-like cells that also give records a field value (layouts.md v2).

A group heading row (``Pancreatic NET`` spanning the table) gives the rows below it a value
(``primary_site = pancreas``): unpivotr's ``left-up`` direction, databaker's ``CLOSEST`` ``ABOVE``
lookup, a fill-forward from each heading to the next. A block title (``UPDRS IV`` above a table of its
own) gives its block's rows a value the same way. A heading or title is matched to the vocabularies
of the fields its sheet holds; one that matches none, or matches two fields, gives no value and is
reported, never guessed.
"""

from __future__ import annotations

import re

import numpy as np

from ..reading import SheetGrid
from ..schema import ReviewSchema
from .cells import _cell_text, _filled
from .model import BlockLayout, ColumnLayout

#: words around a label that do not change what it names (``Pancreatic NET``, ``Liver metastases``)
_GENERIC = re.compile(r"\b(?:nets?|nens?|tumou?rs?|cancers?|carcinomas?|patients?|pts|subgroup|cohort|group|"
                      r"primary|site|metastases|metastatic|disease)\b", re.I)


#: a trailing parenthetical (``GEP-NET (mixed sites)``, ``Pancreas (n=40)``): a gloss of the label before it
_PAREN_TAIL = re.compile(r"^(?P<core>.*?\S)\s*(?P<tail>[(\[][^()\[\]]*[)\]])\s*$")


def paren_tail(text: str) -> tuple[str, str] | None:
    """``'GEP-NET (mixed sites)'`` -> ``('GEP-NET', '(mixed sites)')``; None when no parenthetical ends the text."""
    m = _PAREN_TAIL.match(str(text))
    return (m.group("core"), m.group("tail")) if m else None


def label_candidates(schema: ReviewSchema, tables: list[str], text: str, *, tail: bool = True) -> dict[str, str]:
    """The vocabulary fields of ``tables`` that ``text`` names a term of: field -> canonical value. Where the
    whole text names none, the text before a trailing parenthetical is tried (``GEP-NET (mixed sites)`` ->
    ``GEP-NET``) unless ``tail`` is False; :func:`paren_tail` tells a caller that it was."""
    out: dict[str, str] = {}
    stripped = re.sub(r"\s+", " ", _GENERIC.sub(" ", text)).strip(" :-,;")
    for table in tables:
        for fname, fs in schema.sheets[table].fields.items():
            if fs.type != "vocabulary" or not fs.vocabulary or fname in out:
                continue
            vocab = schema.vocabularies[fs.vocabulary]
            hit = vocab.canonical(text) or (vocab.canonical(stripped) if stripped else None)
            if hit is not None:
                out[fname] = hit
    if not out and tail:
        split = paren_tail(text)
        if split is not None:
            return label_candidates(schema, tables, split[0], tail=False)
    if not out and tail and " / " in text:
        # two names of one term ('Mixed / GEP-NET'): what every part that names a term agrees on
        found = [label_candidates(schema, tables, part, tail=False) for part in text.split(" / ") if part.strip()]
        found = [f for f in found if f]
        if found:
            return {f: v for f, v in found[0].items() if all(g.get(f) == v for g in found[1:])}
    return out


def matched_without_tail(schema: ReviewSchema, tables: list[str], text: str) -> str | None:
    """The trailing parenthetical a label value was matched without (``'(mixed sites)'``), or None."""
    split = paren_tail(text)
    if split is None or label_candidates(schema, tables, text, tail=False):
        return None
    return split[1] if label_candidates(schema, tables, split[0], tail=False) else None


def label_value(schema: ReviewSchema, tables: list[str], text: str,
                cols: list[ColumnLayout]) -> tuple[dict[str, str], str | None]:
    """``text`` as a label value: ``({field: value}, None)``, or ``({}, why not)``.

    A field with no column of its own is preferred (the heading is where the sheet keeps it)."""
    hits = label_candidates(schema, tables, text)
    if not hits:
        return {}, "matches no term of a vocabulary of the fields this sheet holds"
    mapped = {f for c in cols for f in c.parts.values()}
    free = {f: v for f, v in hits.items() if f not in mapped}
    pick = free or hits
    if len(pick) > 1:
        return {}, ("names a term of several fields (" + ", ".join(f"{f} = {v}" for f, v in pick.items())
                    + "): give the field in the layout file's labels")
    return dict(pick), None


#: sheet names that mean the whole study population (the overall cohort), beside the schema's own name for it
_OVERALL_NAMES = re.compile(r"^(?:overall|all|all patients|all pts|all subjects|whole cohort|whole population|"
                            r"entire cohort|total population)$", re.I)


def names_overall(schema: ReviewSchema, text: str) -> bool:
    """Whether a sheet name means the overall cohort (``Overall``, ``All patients``, the schema's
    ``analysis.overall_cohort``)."""
    t = re.sub(r"[\s_\-]+", " ", str(text)).strip(" :").casefold()
    return bool(t) and (t == str(schema.analysis.overall_cohort).casefold() or bool(_OVERALL_NAMES.match(t)))


def name_label(schema: ReviewSchema, tables: list[str], title: str, cols: list[ColumnLayout]
               ) -> dict[str, str] | None:
    """A sheet name as a label value (one sheet per subgroup): ``{field: value}`` of the one vocabulary field it
    names a term of (``G3`` -> grade, ``Pancreatic NET`` -> primary_site); ``Overall`` / ``All patients`` ->
    ``{cohort: <the overall cohort>}`` (``{}`` where the sheet has no cohort field). None when the name is
    neither. A subgroup name is not the rows' cohort by itself: a study appearing on one site's sheet only is
    that site's study, not a subgroup of it (a cohort column says which)."""
    if names_overall(schema, title):
        has_cohort = any("cohort" in schema.sheets[t].fields for t in tables)
        return {"cohort": schema.analysis.overall_cohort} if has_cohort else {}
    return label_value(schema, tables, title, cols)[0] or None


def label_agrees(schema: ReviewSchema, tables: list[str], label: str, stated: str) -> bool:
    """Whether a row's stated cohort (``pNET``) agrees with the label of its sheet's name (``Pancreatic NET``):
    the same text folded, both the overall cohort, or both naming the same vocabulary terms."""
    from ..schema import fold

    if fold(label) == fold(stated):
        return True
    if names_overall(schema, label) or names_overall(schema, stated):
        return names_overall(schema, label) and names_overall(schema, stated)
    a, b = label_candidates(schema, tables, label), label_candidates(schema, tables, stated)
    return bool(a) and a == b


def title_above(grid: SheetGrid, header_rows0: list[int]) -> tuple[int, str] | None:
    """The title of the sheet's first block: the nearest row above its header holding one text cell
    (Excel row, text)."""
    vals = grid.values
    for r in range(header_rows0[0] - 1, max(-1, header_rows0[0] - 4), -1):
        f = _filled(vals[r:r + 1])[0]
        if not f.any():
            continue
        if f.sum() != 1:
            return None
        t = _cell_text(vals[r, int(np.argmax(f))])
        if not isinstance(vals[r, int(np.argmax(f))], str) or len(t) > 60:
            return None
        return r + 1, t
    return None


def sheet_labels(schema: ReviewSchema, tables: list[str], grid: SheetGrid, header_rows0: list[int],
                 cols: list[ColumnLayout], headings: dict[int, str], blocks: list[tuple[int, int, str]]
                 ) -> tuple[dict[int, dict[str, str]], list[BlockLayout], dict[int, str]]:
    """Label values of one sheet: ``labels`` (Excel row of a heading or title -> {field: value}, applying
    to the data rows below it up to the next label of the same field), the blocks below the first, and
    the headings that give no value (Excel row -> why)."""
    labels: dict[int, dict[str, str]] = {}
    unmatched: dict[int, str] = {}
    for r, text in headings.items():
        lv, why = label_value(schema, tables, text, cols)
        if lv:
            labels[r] = lv
        else:
            unmatched[r] = f"{text!r} {why}"
    out_blocks: list[BlockLayout] = []
    if blocks:
        n_rows = grid.values.shape[0]
        first = title_above(grid, header_rows0)
        first_lv = label_value(schema, tables, first[1], cols)[0] if first else {}
        found = [label_value(schema, tables, title, cols)[0] for _t, _h, title in blocks]
        fields = {f for lv in [first_lv, *found] for f in lv}
        every = bool(first_lv) and all(found) and len(fields) == 1
        if every:
            labels[first[0]] = first_lv
        for k, (trow, hrow, title) in enumerate(blocks):
            last = blocks[k + 1][0] - 1 if k + 1 < len(blocks) else n_rows
            if every:
                labels[trow] = found[k]
            out_blocks.append(BlockLayout(title=title, titleRow=trow, headerRow=hrow, rows=[hrow + 1, last],
                                          read=every, labels=found[k] if every else {}))
    return dict(sorted(labels.items())), out_blocks, unmatched

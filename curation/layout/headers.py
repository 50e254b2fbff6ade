"""Header texts: folding, splitting qualifiers, and the field index a header is matched through."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable


from ..reading import SheetGrid
from ..schema import ReviewSchema, compact, fold
from .cells import _HDR_TRANSLATE, _cell_text


# ---------------------------------------------------------------------------------------------
# Header texts
# ---------------------------------------------------------------------------------------------

_CI_TOKEN = re.compile(r"\b(?:95\s*%\s*)?(?:c\.?i\.?|confidence\s+interval)\b|\b95\s*%", re.I)
_BRACKETS = re.compile(r"[(\[]([^()\[\]]*)[)\]]")


def fold_header(text: Any) -> str:
    """A header cell's text folded: NFKC, case, dashes, ``≥`` as ``>=``, spaces collapsed."""
    t = unicodedata.normalize("NFKC", str(text)).translate(_HDR_TRANSLATE)
    return re.sub(r"\s+", " ", t).strip().casefold()


def header_key(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", fold_header(text))


#: 'n/N', 'n / N', 'n of N', 'events/total' at the end of a header's core words (folded to lower case)
_COUNT_OF_TOTAL = re.compile(r"\s(?:n\s*/\s*n|n of n|events\s*/\s*total|responders\s*/\s*evaluable)$")


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
    # a count over its denominator named after the outcome ('ORR n/N (%)', 'DCR n of N'): what the cells hold,
    # a qualifier as '(n)' is, not part of the outcome's name
    m = _COUNT_OF_TOTAL.search(core)
    if m and m.start() > 0:
        quals.append(m.group(0).strip())
        core = core[:m.start()].strip(" :;-/")
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

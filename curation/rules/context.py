"""What a check sees: the schema and the typed tables, lookups across sheets, and findings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..findings import Finding


# ---------------------------------------------------------------------------------------------
# Context: typed tables, lookups across sheets, and finding construction
# ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a check sees: the schema and the typed tables (see :mod:`curation.normalise`)."""

    schema: Any
    tables: dict[str, Any]
    _parent_index: dict = field(default_factory=dict)
    _decimals: dict = field(default_factory=dict)
    _entry: Any = None
    _held: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict)  # what a check computes once per stage (read-only values)

    def begin(self, entry: Any) -> None:
        """The ``checks:`` entry whose check runs now (None after it): its ``severities`` apply."""
        self._entry = entry

    def severity(self, code: str) -> str:
        """The severity of ``code`` for this schema: the running entry's ``severities:`` (a companion
        of its check), else the schema's ``severities:``, else the rule's default. (A check's own
        code takes the entry's ``severity:`` first.)"""
        from .registry import REGISTRY

        entry = self._entry
        own = getattr(entry, "severities", None) or {}
        if code in own:
            return own[code]
        top = getattr(self.schema, "severities", None) or {}
        if code in top:
            return top[code]
        return REGISTRY[code].severity

    def table(self, sheet: str):
        return self.tables[sheet]

    def _parent_positions(self, sheet: str, other: str):
        """For each row of ``sheet``, the position of its study's row in ``other`` (-1 if none)."""
        import numpy as np
        import pandas as pd

        key = (sheet, other)
        if key not in self._parent_index:
            child = self.tables[sheet].data
            parent = self.tables[other].data
            link = self.schema.sheets[sheet].parent.key if self.schema.sheets[sheet].parent else "study_id"
            pkey = self.schema.sheets[other].key[0]
            first = pd.Series(np.arange(len(parent)), index=parent[pkey].to_numpy())
            first = first[~first.index.duplicated(keep="first")]
            pos = child[link].map(first).to_numpy(dtype=float, na_value=np.nan)
            self._parent_index[key] = np.where(np.isnan(pos), -1, pos).astype(int)
        return self._parent_index[key]

    def values(self, sheet: str, ref: str):
        """Values of ``field`` or ``sheet.field`` aligned with the rows of ``sheet``."""
        import numpy as np

        if "." in ref:
            other, fname = ref.split(".", 1)
            pos = self._parent_positions(sheet, other)
            src = self.tables[other].data[fname].to_numpy()
            out = src[np.clip(pos, 0, max(len(src) - 1, 0))] if len(src) else np.full(len(pos), np.nan)
            if out.dtype.kind == "f":
                out = np.where(pos >= 0, out, np.nan)
            else:
                out = np.where(pos >= 0, out, None)
            return out
        return self.tables[sheet].data[ref].to_numpy()

    def num(self, sheet: str, ref: str):
        import numpy as np

        return np.asarray(self.values(sheet, ref), dtype=float)

    def decimals(self, sheet: str, fname: str):
        """Decimal places reported in each cell of ``fname`` (NaN where unknown): ``0.70`` typed as
        text -> 2; a number cell keeps no trailing zeros, so ``0.70`` typed as a number -> 1."""
        import numpy as np

        t = self.tables[sheet]
        if fname in t.decimals:
            return np.asarray(t.decimals[fname], dtype=float)
        key = (sheet, fname)
        if key not in self._decimals:
            from ..cells import column_decimals

            self._decimals[key] = column_decimals(t.raw[fname].to_numpy(), self.num(sheet, fname))
        return self._decimals[key]

    def half_unit(self, sheet: str, fname: str):
        """Half a unit of the last reported digit of each cell (0 where the digits are unknown)."""
        import numpy as np

        d = self.decimals(sheet, fname)
        return np.where(np.isnan(d), 0.0, 0.5 * 10.0 ** -np.where(np.isnan(d), 0, d))

    def half_units(self, sheet: str, *fnames: str):
        """:meth:`half_unit` of an effect and its CI bounds, read together: a paper reports them with
        the same digits, and a number cell keeps no trailing zeros (0.70 typed as a number reads
        0.7), so a number cell is taken to as many digits as the row's most precise of these cells."""
        import numpy as np

        decs = [self.decimals(sheet, f) for f in fnames]
        raw = [self.tables[sheet].raw[f].to_numpy() for f in fnames]
        if len(decs) and len(decs[0]):
            stack = np.vstack(decs)
            known = ~np.isnan(stack)
            # the most precise of the row's cells; NaN where none has known digits (no all-NaN slice)
            row_max = np.where(known.any(axis=0), np.where(known, stack, -np.inf).max(axis=0), np.nan)
        else:
            row_max = np.zeros(0)
        out = []
        for d, r in zip(decs, raw):
            typed_num = np.fromiter((isinstance(v, (int, float)) and not isinstance(v, bool) for v in r), bool, len(r))
            d = np.where(typed_num & ~np.isnan(row_max), np.fmax(d, row_max), d)
            out.append(np.where(np.isnan(d), 0.0, 0.5 * 10.0 ** -np.where(np.isnan(d), 0, d)))
        return out

    def unit(self, sheet: str, ref: str, i: int) -> str:
        """The unit of a field's value as a reviewer reads it (`` months``, `` mmHg``, ``%``; ``""`` for none).

        A field with a ``unit_field`` is held in its vocabulary's unit of factor 1 after
        normalisation (a row in weeks is converted); a vocabulary without factors leaves the
        row's own unit. Otherwise the field's ``unit:``, unless that names another field.
        """
        other, fname = (ref.split(".", 1) if "." in ref else (sheet, ref))
        fields = self.schema.sheets[other].fields
        fs = fields.get(fname)
        if fs is None:
            return ""
        if fs.unit_field:
            vocab = self.schema.vocabulary_of(other, fs.unit_field)
            base = [t.value for t in vocab.terms if t.factor == 1] if vocab is not None else []
            row_unit = None
            if other in self.tables and fs.unit_field in self.tables[other].data:
                j = i if other == sheet else int(self._parent_positions(sheet, other)[i])
                if j >= 0:
                    row_unit = self.tables[other].data[fs.unit_field].iat[j]
            factor = vocab.by_value[row_unit].factor if vocab is not None and row_unit in vocab.by_value else None
            text = base[0] if base and (factor is not None or row_unit is None) else row_unit
            if not isinstance(text, str) or not text:
                text = fields[fs.unit_field].default or ""
            return f" {text}" if text else ""
        if fs.unit and fs.unit not in fields:
            return fs.unit if fs.unit == "%" else f" {fs.unit}"
        return ""

    def said(self, sheet: str, fname: str, i: int) -> str:
        """A term as the reviewer typed it, with the term it reads as when they differ:
        ``'single-arm' (read as 'non-randomised')``; the value alone when they agree."""
        from ..schema import fold

        t = self.tables[sheet]
        value = t.data[fname].iat[i]
        raw = t.raw[fname].iat[i] if fname in t.raw else value
        typed = raw.strip() if isinstance(raw, str) and raw.strip() else value
        if isinstance(typed, str) and isinstance(value, str) and fold(typed) != fold(value):
            return f"{typed!r} (read as {value!r})"
        return f"{typed}"

    def files(self, sheet: str) -> list:
        """The forms that have rows on ``sheet`` (each once, in order of their first row)."""
        import pandas as pd

        key = (sheet, None)
        if key not in self._held:
            self._held[key] = pd.unique(self.tables[sheet].data["_file"].to_numpy(dtype=object)).tolist()
        return self._held[key]

    def held(self, sheet: str, ref: str):
        """Rows of ``sheet`` where ``ref`` (``field`` or ``sheet.field``) holds a value: not None, NaN,
        ``pd.NA`` or NaT (computed once per field: every check's coverage asks). Read-only."""
        import numpy as np
        import pandas as pd

        key = (sheet, ref)
        out = self._held.get(key)
        if out is None:
            vals = self.values(sheet, ref)
            if not len(vals):
                out = np.zeros(0, bool)
            elif vals.dtype.kind == "f":
                out = ~np.isnan(vals)
            else:
                out = ~pd.isna(np.asarray(vals, dtype=object))
            out.setflags(write=False)
            self._held[key] = out
        return out

    def nr(self, sheet: str, fname: str):
        import numpy as np

        data = self.tables[sheet].data
        col = fname + "__nr"
        return data[col].to_numpy(dtype=bool) if col in data else np.zeros(len(data), bool)

    def cell(self, sheet: str, ref: str, i: int) -> str:
        """Cell reference of ``ref`` for row ``i`` of ``sheet`` (following ``sheet.field``)."""
        if "." in ref:
            other, fname = ref.split(".", 1)
            pos = int(self._parent_positions(sheet, other)[i])
            if pos < 0:
                return f"{other}!?"
            return self.tables[other].ref(pos, fname)
        return self.tables[sheet].ref(i, ref)

    def finding(self, sheet: str, i: int, fname: str | None, rule: str, severity: str, message: str,
                value: Any = None, involves: Iterable[str | None] = ()) -> Finding:
        """A finding at row ``i`` of ``sheet``, on the cell of ``fname``.

        ``involves`` lists every other field whose cell the message cites (``field`` for this
        sheet, ``sheet.field`` for another contract sheet's, as :meth:`values` takes them); the
        finding's :attr:`~curation.findings.Finding.involves` is ``fname`` followed by these, each
        once. Selection excludes an erroneous record from the analyses that use one of them.
        """
        t = self.tables[sheet]
        file = t.files[i]
        return Finding(file, t.title(file, i, fname), t.row_of(i, fname), t.letter_of(i, file, fname), fname,
                       t.study_ids[i], rule, severity, message, _scalar(value), sheet,
                       involved(sheet, fname, *involves))


def involved(sheet: str, *refs: str | None) -> tuple[str, ...]:
    """The fields a finding on ``sheet`` involves, each once, in order: ``field`` for one of this
    sheet (a ``sheet.field`` naming this very sheet is written ``field``), ``other.field`` for
    another contract sheet's; empty references are skipped."""
    out: list[str] = []
    for ref in refs:
        if not ref:
            continue
        if "." in ref and ref.split(".", 1)[0] == sheet:
            ref = ref.split(".", 1)[1]
        if ref not in out:
            out.append(ref)
    return tuple(out)


def _scalar(value: Any) -> Any:
    """numpy scalars -> Python values (findings hold plain values)."""
    item = getattr(value, "item", None)
    return item() if item is not None and not isinstance(value, (str, bytes)) else value


def _label(ref: str) -> str:
    return ref.split(".", 1)[-1]


def _abbr(name: str) -> str:
    """A short count field as its abbreviation (``cr`` -> ``CR``); a longer name as it is."""
    return name.upper() if len(name) <= 3 else name


def _sum_of(names: Iterable[str]) -> str:
    return "+".join(_abbr(n) for n in names)


def _present(*arrays):
    import numpy as np

    mask = None
    for a in arrays:
        m = ~np.isnan(a)
        mask = m if mask is None else mask & m
    return mask


def per_distinct(values, fn, dtype=object):
    """``[fn(v) for v in values]`` as an array, calling ``fn`` once per distinct value when every value is
    a ``str`` (a column of labels); otherwise once per value (``1``, ``1.0`` and ``True`` compare equal
    but may not read the same)."""
    import numpy as np
    import pandas as pd

    arr = np.asarray(values, dtype=object)
    if len(arr) and pd.api.types.infer_dtype(arr, skipna=False) == "string":
        codes, uniques = pd.factorize(arr)
        return np.fromiter((fn(v) for v in uniques), dtype=dtype, count=len(uniques))[codes]
    return np.fromiter((fn(v) for v in arr), dtype=dtype, count=len(arr))


#: A character that keeps a text from being its own :func:`curation.cells.text_value` (with NUL, which joins
#: the texts checked together): anything but printable ASCII and the space.
_NOT_PLAIN = re.compile(r"[^\x00\x21-\x7e ]")


def all_plain(texts) -> bool:
    """Whether every text is one :func:`curation.cells.normalise_text` leaves as it is and that is not empty:
    printable ASCII words separated by single spaces (checked on all of them joined, in C). Such a text
    folds (:func:`curation.schema.fold`) to its lower case."""
    joined = "\x00".join(texts)
    return (joined.isascii() and joined.count("\x00") == len(texts) - 1 and not _NOT_PLAIN.search(joined)
            and "  " not in joined and " \x00" not in joined and "\x00 " not in joined and "\x00\x00" not in joined
            and not joined.startswith((" ", "\x00")) and not joined.endswith((" ", "\x00")) and joined != "")


def fold_all(texts) -> list[str]:
    """:func:`curation.schema.fold` of each text (all of them at once when they are plain)."""
    from ..schema import fold

    texts = list(texts)
    if texts and all_plain(texts):
        return "\x00".join(texts).lower().split("\x00")
    return [fold(t) for t in texts]


"""The blank extraction form (``curate template``), generated from a review schema.

:func:`build_template` turns a :class:`~curation.schema.ReviewSchema` into an openpyxl workbook:

* one sheet per data sheet of the schema, with the field keys as a frozen, bold header row, a
  note on every header cell (description, unit, allowed values) and column widths that fit;
* Excel data validation on every column the schema constrains: a drop-down list fed from the
  hidden ``lists`` sheet for vocabulary fields (an alias can still be typed: the alert is a
  warning, not a stop), whole numbers for counts and years, decimals with the declared bounds
  for numbers and percentages;
* live checks: conditional-formatting formulas derived from the field declarations and from the
  schema's ``checks:`` entries (response sums, percentages against their counts, medians against
  their CI ...), red for what ``curate validate`` reports as an error, amber for a warning, and
  only when every cell a check needs holds a number;
* an ``instructions`` sheet that explains every field, its unit and allowed values, and how to
  write "not reached", missing values, combined medians and the whole-study cohort.

Nothing here is specific to the 177Lu-PRRT review: a new schema gives a new form. The function is
pure (it returns the workbook); :func:`workbook_bytes` serialises it deterministically, and only
the CLI writes files.
"""

from __future__ import annotations

import datetime as _dt
import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable

from .reading import column_letter
from .schema import FieldSpec, ReviewSchema, Vocabulary

#: Rows 2..LAST_ROW of each data sheet carry the validations and live checks.
LAST_ROW = 1000
#: The fixed creation/modification date written into every generated workbook.
FIXED_DATE = _dt.datetime(2025, 1, 1, 0, 0, 0)
LISTS_SHEET = "lists"
INSTRUCTIONS_SHEET = "instructions"
AUTHOR = "curate template"

RED_FILL, RED_FONT = "FFFFC7CE", "FF9C0006"
AMBER_FILL, AMBER_FONT = "FFFFEB9C", "FF7F4F00"
HEADER_FILL = "FFDDEBF7"

# Excel's limits for data-validation texts
_MAX_TITLE = 32
_MAX_TEXT = 255


# ---------------------------------------------------------------------------------------------
# Layout: which column holds which field
# ---------------------------------------------------------------------------------------------




def _header_row(ws, labels: list[str], font, fill) -> None:
    """A bold, filled header row of the instructions sheet."""
    ws.append(labels)
    for c in range(1, len(labels) + 1):
        ws.cell(ws.max_row, c).font = font
        ws.cell(ws.max_row, c).fill = fill


def column_map(schema: ReviewSchema) -> dict[str, dict[str, str]]:
    """``{sheet: {field: column letter}}`` of the generated form (fields in schema order)."""
    return {sheet: {f: column_letter(i) for i, f in enumerate(spec.fields)} for sheet, spec in schema.sheets.items()}


def ordered_terms(vocab: Vocabulary) -> list[str]:
    """Canonical values of a vocabulary, eligible terms first (schema order kept within each group)."""
    return [t.value for t in vocab.terms if t.eligible] + [t.value for t in vocab.terms if not t.eligible]


def list_name(vocab_name: str) -> str:
    """The defined name of a vocabulary's list (``list_grade``)."""
    return "list_" + re.sub(r"[^A-Za-z0-9_]", "_", vocab_name)


def _quote_sheet(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else "'" + name.replace("'", "''") + "'"


def _num(x: float) -> str:
    """A bound as Excel formula text (``5``, ``0.25``, ``1E-09``)."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x).upper()


def _xl_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


# ---------------------------------------------------------------------------------------------
# Describing a field in words
# ---------------------------------------------------------------------------------------------


def _unit_text(sheet_fields: dict[str, FieldSpec], fs: FieldSpec) -> str:
    if fs.unit_field:
        unit_fs = sheet_fields.get(fs.unit_field)
        default = f" (default {unit_fs.default})" if unit_fs is not None and unit_fs.default else ""
        return f"as given in {fs.unit_field}{default}"
    return fs.unit or ""


def allowed_text(schema: ReviewSchema, fs: FieldSpec) -> str:
    """The allowed values or range of a field, in words."""
    if fs.type == "vocabulary":
        vocab = schema.vocabularies[fs.vocabulary]
        eligible = [t.value for t in vocab.terms if t.eligible]
        other = [t.value for t in vocab.terms if not t.eligible]
        text = "one of: " + ", ".join(eligible)
        if other:
            text += "; not eligible for this review (an error): " + ", ".join(other)
        return text
    parts = fs.bounds()
    kind = {"integer": "whole number", "year": "year", "number": "number", "percentage": "percentage (type 87.6, not 0.876)",
            "text": "text", "p_value": "p-value as reported (0.03, p < 0.001, NS)",
            "source": "the study's article: its file name in the sources folder, its DOI, PMID or PMCID"}[fs.type]
    text = kind + (" " + " and ".join(parts) if parts else "")
    if fs.warn_min is not None or fs.warn_max is not None:
        lo = _num(fs.warn_min) if fs.warn_min is not None else "-"
        hi = _num(fs.warn_max) if fs.warn_max is not None else "-"
        text += f"; outside {lo}..{hi} is flagged as implausible"
    if fs.not_reached:
        text += "; NR if not reached"
    if fs.pattern_hint:
        text += f"; format {fs.pattern_hint}"
    if fs.type == "year":
        text += "; a full date is read as its year"
    return text


def _note_text(schema: ReviewSchema, sheet: str, name: str, fs: FieldSpec) -> str:
    fields = schema.sheets[sheet].fields
    lines = [name, fs.description or name]
    unit = _unit_text(fields, fs)
    if unit:
        lines.append(f"Unit: {unit}")
    lines.append(f"Allowed: {allowed_text(schema, fs)}")
    if fs.type == "vocabulary":
        vocab = schema.vocabularies[fs.vocabulary]
        aliases = [a for t in vocab.terms for a in t.aliases][:6]
        if aliases:
            lines.append("Aliases are accepted too (e.g. " + ", ".join(aliases) + ").")
    if fs.required:
        lines.append("Required.")
    if fs.metadata:
        lines.append("Metadata: never compared between reviewers.")
    if fs.example is not None:
        lines.append(f"Example: {fs.example}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Data validation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationSpec:
    """One data validation of one column (what :func:`build_template` adds)."""

    field: str
    type: str
    operator: str | None
    formula1: str | None
    formula2: str | None
    error_style: str
    error_title: str
    error: str
    prompt_title: str
    prompt: str


def _bounds(fs: FieldSpec, integer: bool) -> tuple[float | None, float | None]:
    lo = fs.min
    if fs.min_exclusive is not None:
        ex = fs.min_exclusive
        if integer:
            ex = int(ex) + 1 if float(ex).is_integer() else -(-ex // 1)
            lo = max(lo, ex) if lo is not None else ex
    if integer and lo is None:
        lo = 0
    return lo, fs.max_value


def validation_for(schema: ReviewSchema, sheet: str, name: str) -> ValidationSpec | None:
    """The data validation of one field, or None for free text."""
    fs = schema.sheets[sheet].fields[name]
    desc = fs.description or name
    unit = _unit_text(schema.sheets[sheet].fields, fs)
    unit_txt = f" ({unit})" if unit else ""
    missing = "Leave the cell empty when the paper does not report it."
    if fs.type == "vocabulary":
        vocab = schema.vocabularies[fs.vocabulary]
        aliases = [a for t in vocab.terms for a in t.aliases]
        alias_txt = f" such as {', '.join(aliases[:3])}" if aliases else ""
        prompt = f"{desc}. Pick from the list. An alias{alias_txt} may be typed: it is mapped when the form is checked."
        error = (f"Not one of the listed {name} values. If it is an alias the schema knows{alias_txt}, click Yes "
                 "to keep it: it is mapped to the canonical value when the form is checked. Otherwise click No "
                 "and pick from the list.")
        return ValidationSpec(name, "list", None, "=" + list_name(fs.vocabulary), None, "warning",
                              _clip(f"{name}: not in the list", _MAX_TITLE), _clip(error, _MAX_TEXT),
                              _clip(name, _MAX_TITLE), _clip(prompt, _MAX_TEXT))
    if fs.type in ("integer", "year"):
        lo, hi = _bounds(fs, integer=True)
        if fs.type == "year":
            what = "a year"
        else:
            what = "a whole number"
        rng = (f"from {_num(lo)} to {_num(hi)}" if lo is not None and hi is not None
               else f"of at least {_num(lo)}" if lo is not None else f"of at most {_num(hi)}")
        op, f1, f2 = (("between", _num(lo), _num(hi)) if lo is not None and hi is not None
                      else ("greaterThanOrEqual", _num(lo), None) if lo is not None
                      else ("lessThanOrEqual", _num(hi), None))
        style = "stop"
        extra = ""
        if fs.type == "year":
            style = "warning"
            extra = " A full date is read as its year: click Yes to keep one."
        prompt = f"{desc}{unit_txt}: {what} {rng}. {missing}"
        error = f"{name} must be {what} {rng}{unit_txt}.{extra} {missing}"
        return ValidationSpec(name, "whole", op, f1, f2, style, _clip(f"{name}: {what}", _MAX_TITLE),
                              _clip(error, _MAX_TEXT), _clip(name, _MAX_TITLE), _clip(prompt, _MAX_TEXT))
    if fs.type in ("number", "percentage"):
        lo, hi = fs.min, fs.max_value
        lo_ex = fs.min_exclusive
        if lo is not None and hi is not None:
            op, f1, f2, rng = "between", _num(lo), _num(hi), f"from {_num(lo)} to {_num(hi)}"
        elif lo_ex is not None and hi is not None:
            op, f1, f2, rng = "between", _num(lo_ex), _num(hi), f"above {_num(lo_ex)} and at most {_num(hi)}"
        elif lo is not None:
            op, f1, f2, rng = "greaterThanOrEqual", _num(lo), None, f"of at least {_num(lo)}"
        elif lo_ex is not None:
            op, f1, f2, rng = "greaterThan", _num(lo_ex), None, f"above {_num(lo_ex)}"
        elif hi is not None:
            op, f1, f2, rng = "lessThanOrEqual", _num(hi), None, f"of at most {_num(hi)}"
        else:
            return None
        what = "a percentage" if fs.type == "percentage" else "a number"
        if fs.type == "percentage":
            rng += " (type 87.6 for 87.6%)"
        style, extra = "stop", ""
        if fs.not_reached:
            style = "warning"
            extra = " Type NR if the paper says it was not reached, and click Yes to keep it."
        prompt = f"{desc}{unit_txt}: {what} {rng}.{' NR if not reached.' if fs.not_reached else ''} {missing}"
        error = f"{name} must be {what} {rng}{unit_txt}.{extra} {missing}"
        return ValidationSpec(name, "decimal", op, f1, f2, style, _clip(f"{name}: {what}", _MAX_TITLE),
                              _clip(error, _MAX_TEXT), _clip(name, _MAX_TITLE), _clip(prompt, _MAX_TEXT))
    return None


# ---------------------------------------------------------------------------------------------
# Live checks: conditional-formatting formulas derived from the schema
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveCheck:
    """One conditional-formatting rule: a formula for row 2, the fields it colours, its severity."""

    sheet: str
    source: str          # the rule code it mirrors (a check's code, or a field rule's)
    severity: str        # "error" (red) or "warning" (amber)
    fields: tuple[str, ...]
    formula: str
    description: str


class _Refs:
    """Field -> cell reference in row 2 (column absolute, row relative), across sheets."""

    def __init__(self, schema: ReviewSchema, last_row: int = LAST_ROW):
        self.schema = schema
        self.cols = column_map(schema)
        self.last = last_row

    def local(self, sheet: str, name: str) -> str:
        return f"${self.cols[sheet][name]}2"

    def has(self, sheet: str, ref: str) -> bool:
        if "." in ref:
            other, name = ref.split(".", 1)
            spec = self.schema.sheets[sheet]
            return (other in self.cols and name in self.cols[other] and spec.parent is not None
                    and spec.parent.sheet == other and spec.parent.key in self.cols[sheet])
        return ref in self.cols[sheet]

    def ref(self, sheet: str, ref: str) -> str:
        """A local field's cell, or ``other.field`` looked up through the row's parent key."""
        if "." not in ref:
            return self.local(sheet, ref)
        other, name = ref.split(".", 1)
        spec = self.schema.sheets[sheet]
        pkey = self.schema.sheets[other].key[0]
        q = _quote_sheet(other)
        col, kcol = self.cols[other][name], self.cols[other][pkey]
        return (f"IFERROR(INDEX({q}!${col}$2:${col}${self.last},MATCH({self.local(sheet, spec.parent.key)},"
                f"{q}!${kcol}$2:${kcol}${self.last},0)),\"\")")

    def months(self, sheet: str, name: str) -> str:
        """A time field in the common unit: the cell times its unit's factor (from the unit vocabulary)."""
        cell = self.ref(sheet, name)
        fs = self.schema.sheets[sheet].fields.get(name) if "." not in name else None
        if fs is None or not fs.unit_field or fs.unit_field not in self.cols[sheet]:
            return cell
        unit_fs = self.schema.sheets[sheet].fields[fs.unit_field]
        vocab = self.schema.vocabularies.get(unit_fs.vocabulary or "")
        if vocab is None:
            return cell
        u = self.local(sheet, fs.unit_field)
        expr = "1"
        for term in reversed(vocab.terms):
            if term.factor is None or term.factor == 1:
                continue
            test = _or(*[f"TRIM({u})={_xl_string(lab)}" for lab in (term.value, *term.aliases)])
            expr = f"IF({test},{_num(term.factor)},{expr})"
        return cell if expr == "1" else f"{cell}*{expr}"

    def row_range(self, sheet: str) -> str:
        letters = list(self.cols[sheet].values())
        return f"${letters[0]}2:${letters[-1]}2"


def _isnum(*cells: str) -> list[str]:
    return [f"ISNUMBER({c})" for c in cells]


def _and(*parts: str) -> str:
    parts = [p for p in parts if p]
    return parts[0] if len(parts) == 1 else "AND(" + ",".join(parts) + ")"


def _or(*parts: str) -> str:
    parts = [p for p in parts if p]
    return parts[0] if len(parts) == 1 else "OR(" + ",".join(parts) + ")"


def rate_match_formula(rate: str, events: str, total: str) -> str:
    """Excel text of: ``rate`` equals 100 x events / total within the rounding of its own digits.

    The same integer test as :func:`curation.rules.rate_matches`: with ``d`` decimals reported,
    ``|2 x ROUND(rate x 10^d) x total - 200 x events x 10^d| <= total`` (half-way values match
    either way, and floating-point noise does not decide). ``d`` is read from the value (a cell
    holding 17.8 reports one decimal, 18 none), up to three decimals, else six.
    """
    d = (f"IF({rate}=ROUND({rate},0),0,IF({rate}=ROUND({rate},1),1,IF({rate}=ROUND({rate},2),2,"
         f"IF({rate}=ROUND({rate},3),3,6))))")
    return f"ABS(2*ROUND({rate}*10^{d},0)*{total}-200*({events})*10^{d})<={total}*(1+1E-9)"


def _check_formulas(schema: ReviewSchema, refs: _Refs, sheet: str, rule: str, severity: str,
                    p: dict[str, Any]) -> list[LiveCheck]:
    """Live checks for one ``checks:`` entry (empty when a formula cannot express the rule)."""
    R = lambda name: refs.ref(sheet, name)  # noqa: E731
    out: list[LiveCheck] = []

    def local(names: Iterable[str]) -> tuple[str, ...]:
        return tuple(n for n in names if "." not in n)

    def add(fields, formula, description, sev=severity, code=rule):
        out.append(LiveCheck(sheet, code, sev, tuple(fields), formula, description))

    refs_needed = [v for k, v in p.items() if isinstance(v, str) and k not in ("overall",)]
    refs_needed += [x for v in p.values() if isinstance(v, list) for x in v if isinstance(x, str)]
    if rule not in ("ki67-contradicts-grade",) and not all(refs.has(sheet, r) for r in refs_needed):
        return []

    if rule in ("response-sum-mismatch", "response-sum-short"):
        parts, total, ne = p["parts"], p["total"], p.get("not_evaluable")
        s = "+".join(R(x) for x in parts)
        base = _isnum(R(total), *[R(x) for x in parts])
        if rule == "response-sum-mismatch":
            cond = (f"IF(ISNUMBER({R(ne)}),{s}+{R(ne)}<>{R(total)},{s}>{R(total)})" if ne else f"{s}>{R(total)}")
            desc = f"{'+'.join(x.upper() for x in parts)}{'(+' + ne.upper() + ')' if ne else ''} does not add up to {total}"
            add(local([total, *parts, *([ne] if ne else [])]), _and(*base, cond), desc)
        else:
            cond = [f"NOT(ISNUMBER({R(ne)}))" if ne else "", f"{s}<{R(total)}"]
            add(local([total]), _and(*base, *cond),
                f"{'+'.join(x.upper() for x in parts)} is below {total} (patients unaccounted for)")
    elif rule in ("percentage-mismatch", "percentage-itt-denominator"):
        rate, events, total, itt = p["rate"], p["events"], p["total"], p.get("itt_total")
        ev = "+".join(R(e) for e in events)
        present = _isnum(R(rate), R(total), *[R(e) for e in events]) + [f"{R(total)}>0"]
        ok = rate_match_formula(R(rate), ev, R(total))
        itt_ok = "FALSE"
        if itt:
            i = R(itt)
            itt_ok = f"IFERROR(AND(ISNUMBER({i}),{i}>0,{rate_match_formula(R(rate), ev, i)}),FALSE)"
        if rule == "percentage-mismatch":
            add(local([rate]), _and(*present, f"NOT({ok})", f"NOT({itt_ok})"),
                f"{rate} is not 100 x ({'+'.join(events)}) / {total} within its rounding")
        elif itt:
            add(local([rate]), _and(*present, f"NOT({ok})", itt_ok),
                f"{rate} matches the {itt.split('.')[-1]} denominator, not {total}")
    elif rule == "dcr-below-orr":
        d, o = R(p["dcr"]), R(p["orr"])
        add(local([p["dcr"]]), _and(*_isnum(d, o), f"{d}<{o}"), f"{p['dcr']} is below {p['orr']}")
    elif rule == "median-outside-ci":
        m, lo, hi = R(p["median"]), R(p["low"]), R(p["high"])
        cond = _or(_and(*_isnum(lo, hi), f"{lo}>={hi}"), _and(*_isnum(m, lo), f"{m}<{lo}"),
                   _and(*_isnum(m, hi), f"{m}>{hi}"))
        add(local([p["median"], p["low"], p["high"]]), cond, f"{p['median']} outside its CI, or the CI reversed")
    elif rule == "ci-bound-equals-median":
        m = R(p["median"])
        for b in (p["low"], p["high"]):
            add(local([b]), _and(*_isnum(m, R(b)), f"{R(b)}={m}"), f"{b} equals {p['median']}")
    elif rule == "median-without-ci":
        m, lo = R(p["median"]), R(p["low"])
        add(local([p["median"]]), _and(f"ISNUMBER({m})", f"NOT(ISNUMBER({lo}))"),
            f"{p['median']} without a CI cannot be pooled")
    elif rule == "pfs-exceeds-os":
        a, b = R(p["pfs"]), R(p["os"])
        am, bm = refs.months(sheet, p["pfs"]), refs.months(sheet, p["os"])
        add(local([p["pfs"]]), _and(*_isnum(a, b), f"{am}>{bm}"), f"{p['pfs']} above {p['os']}")
    elif rule == "pfs-beyond-followup":
        m, f = R(p["median"]), R(p["followup"])
        mm, fm = refs.months(sheet, p["median"]), refs.months(sheet, p["followup"])
        add(local([p["median"]]), _and(*_isnum(m, f), f"{mm}>{_num(p['factor'])}*{fm}"),
            f"{p['median']} above {_num(p['factor'])} x {p['followup']}")
    elif rule == "evaluable-exceeds-enrolled":
        v, lim = R(p["field"]), R(p["limit"])
        add(local([p["field"]]), _and(*_isnum(v, lim), f"{v}>{lim}"), f"{p['field']} above {p['limit']}")
    elif rule == "adverse-event-counts-inconsistent":
        chain = p["chain"]
        for a, b in zip(chain, chain[1:]):
            ra, rb = R(a), R(b)
            fields = local([a]) or local([b])
            add(fields, _and(*_isnum(ra, rb), f"{ra}>{rb}"), f"{a} above {b}")
    elif rule == "enrolment-period-reversed":
        s, e = R(p["start"]), R(p["end"])
        add(local([p["start"], p["end"]]), _and(*_isnum(s, e), f"{s}>{e}"), f"{p['start']} after {p['end']}")
    elif rule == "enrolment-after-publication":
        e, y = R(p["end"]), R(p["publication"])
        add(local([p["end"]]), _and(*_isnum(e, y), f"{e}>{y}"), f"{p['end']} after {p['publication']}")
    elif rule == "cumulative-activity-mismatch":
        prod = R(p["product"])
        fac = [R(f) for f in p["factors"]]
        exp = "*".join(fac)
        add(local([p["product"]]), _and(*_isnum(prod, *fac), f"{exp}>0",
                                        f"ABS({prod}-{exp})>{_num(p['tolerance'])}*{exp}"),
            f"{p['product']} differs from {' x '.join(p['factors'])} by more than {_num(100 * p['tolerance'])}%")
    elif rule == "ki67-contradicts-grade":
        k, g = R(p["ki67"]), R(p["grade"])
        from .rules import parse_band

        arms = []
        for label, band in p["bands"].items():
            lo, hi, lo_in, hi_in = parse_band(band)
            outside = [c for c in ((f"{k}{'<' if lo_in else '<='}{_num(lo)}" if lo != float("-inf") else None),
                                   (f"{k}{'>' if hi_in else '>='}{_num(hi)}" if hi != float("inf") else None)) if c]
            arms.append(_and(f"TRIM({g})={_xl_string(label)}", _or(*outside)))
        add(local([p["ki67"]]), _and(f"ISNUMBER({k})", _or(*arms)), f"{p['ki67']} contradicts {p['grade']}")
    return out


def _field_formulas(schema: ReviewSchema, refs: _Refs, sheet: str) -> list[LiveCheck]:
    """Live checks from the field declarations: required, ranges, whole numbers, terms."""
    out: list[LiveCheck] = []
    spec = schema.sheets[sheet]
    row_has_data = f"COUNTA({refs.row_range(sheet)})>0"
    for name, fs in spec.fields.items():
        c = refs.local(sheet, name)
        v = refs.months(sheet, name)  # bounds of a time field are in the common unit
        if fs.required:
            out.append(LiveCheck(sheet, "missing-required", "error", (name,),
                                 _and(row_has_data, f"LEN(TRIM({c}))=0"), f"{name} is required"))
        if fs.type in ("integer", "number", "percentage", "year"):
            bad = []
            if fs.min is not None:
                bad.append(f"{v}<{_num(fs.min)}")
            if fs.min_exclusive is not None:
                bad.append(f"{v}<={_num(fs.min_exclusive)}")
            if fs.max_value is not None:
                bad.append(f"{v}>{_num(fs.max_value)}")
            if fs.type == "integer":
                bad.append(f"{c}<>INT({c})")
            if bad:
                out.append(LiveCheck(sheet, "out-of-range", "error", (name,), _and(f"ISNUMBER({c})", _or(*bad)),
                                     f"{name} outside its allowed range"))
            soft = []
            if fs.warn_min is not None:
                soft.append(f"{v}<{_num(fs.warn_min)}")
            if fs.warn_max is not None:
                soft.append(f"{v}>{_num(fs.warn_max)}")
            if soft:
                out.append(LiveCheck(sheet, "implausible-value", "warning", (name,),
                                     _and(f"ISNUMBER({c})", _or(*soft)), f"{name} outside its plausible range"))
        if fs.type == "vocabulary":
            vocab = schema.vocabularies[fs.vocabulary]
            red = [lab for t in vocab.terms if not t.eligible for lab in (t.value, *t.aliases)]
            red += list(vocab.rejected)
            if red:
                out.append(LiveCheck(sheet, "ineligible-term", "error", (name,),
                                     _or(*[f"TRIM({c})={_xl_string(x)}" for x in red]),
                                     f"{name}: a term that is not eligible or is rejected"))
            amber = [lab for t in vocab.terms if t.warning for lab in (t.value, *t.aliases)]
            if amber:
                out.append(LiveCheck(sheet, "unspecific-term", "warning", (name,),
                                     _or(*[f"TRIM({c})={_xl_string(x)}" for x in amber]),
                                     f"{name}: an unspecific term"))
    return out


def live_checks(schema: ReviewSchema, last_row: int = LAST_ROW) -> list[LiveCheck]:
    """Every live check of the form: field rules first, then the schema's checks, per sheet."""
    from .rules import REGISTRY

    refs = _Refs(schema, last_row)
    out: list[LiveCheck] = []
    for sheet in schema.sheets:
        out.extend(_field_formulas(schema, refs, sheet))
        for entry in schema.checks.get(sheet, ()):
            rule = REGISTRY.get(entry.rule)
            severity = entry.severity or (rule.severity if rule else "info")
            if severity not in ("error", "warning"):
                continue
            out.extend(_check_formulas(schema, refs, sheet, entry.rule, severity, entry.params))
    return out


# ---------------------------------------------------------------------------------------------
# The workbook
# ---------------------------------------------------------------------------------------------


def _width(texts: Iterable[Any], lo: int = 8, hi: int = 45) -> float:
    longest = max((len(str(t)) for t in texts if t is not None), default=lo)
    return float(min(max(longest + 2, lo), hi))


def _conventions(schema: ReviewSchema) -> list[tuple[str, str]]:
    """General how-to lines of the instructions sheet, derived from the schema."""
    rows: list[tuple[str, str]] = []
    sheets = list(schema.sheets)
    rows.append(("The sheets", "; ".join(f"{s}: {schema.sheets[s].description or 'data'} (row key: "
                                          f"{' + '.join(schema.sheets[s].key)})" for s in sheets)))
    rows.append(("Header row", "Row 1 holds the field keys. Do not rename, move or delete the header cells; "
                               "hover over a header to read what the field means."))
    nr_fields = [f for s in schema.sheets.values() for f, fs in s.fields.items() if fs.not_reached]
    if nr_fields:
        rows.append(("Not reached", "Type NR in " + ", ".join(dict.fromkeys(nr_fields))
                     + " when the paper says the median (or the upper confidence limit) was not reached."))
    rows.append(("Missing values", "Leave the cell empty when the paper does not report a value. Do not type 0 "
                                   "for 'not reported': 0 is a count. (NA, n/a and - are also read as missing.)"))
    combined = [(f, fs.combined) for s in schema.sheets.values() for f, fs in s.fields.items() if fs.combined]
    if combined:
        f, c = combined[0]
        rows.append(("Combined medians", f"Type the median and its 95% CI in separate cells ({f}, {c['low']}, "
                                         f"{c['high']}). A cell such as '30.9 (22.7-39.0)' in {f} is accepted and "
                                         "split when the form is checked, with a note."))
    units = [(f, fs) for s in schema.sheets.values() for f, fs in s.fields.items()
             if fs.type == "vocabulary" and any(o.unit_field == f for o in s.fields.values())]
    if units:
        rows.append(("Units", "Medians and their CIs are in the unit given in " + ", ".join(dict.fromkeys(f for f, _ in units))
                     + f" (empty means {units[0][1].default or 'the default'}); they are converted before any check."))
    an = schema.analysis
    if an.sheet in schema.sheets and an.cohort_field in schema.sheets[an.sheet].fields:
        rows.append(("The whole study", f"On the {an.sheet} sheet, write {an.overall_cohort!r} in {an.cohort_field} "
                                        "for the whole study's cohort; any other label names a subgroup (for "
                                        "example a grade or a primary site). One row per study and cohort."))
    rows.append(("Percentages", "Type the percentage as reported (87.6 for 87.6%), with the decimals the paper "
                                "gives; it is checked against the counts within that rounding."))
    rows.append(("Lists", "Vocabulary columns have a drop-down list of the canonical values. A synonym the schema "
                          "knows (an alias) may be typed instead: Excel asks for confirmation, and the value is "
                          "mapped when the form is checked."))
    rows.append(("Live checks", "Cells turn red when a value breaks a rule that `curate validate` reports as an "
                                "error, and amber for a warning, as soon as every cell the check needs holds a "
                                "number. The colours are a help while typing; `curate validate` is the reference."))
    return rows


def build_template(schema: ReviewSchema, *, last_row: int = LAST_ROW):
    """A blank extraction form for ``schema``.

    Parameters
    ----------
    schema : ReviewSchema
        The review schema; every sheet, field, list and live check of the form comes from it.
    last_row : int, optional
        Data validations and live checks cover rows 2..``last_row`` of each data sheet.

    Returns
    -------
    openpyxl.Workbook
        The form (nothing is written to disk; see :func:`workbook_bytes`).
    """
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.formatting.rule import FormulaRule
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.workbook.defined_name import DefinedName
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    wb.remove(wb.active)
    bold = Font(bold=True)
    header_fill = PatternFill(fill_type="solid", start_color=HEADER_FILL, end_color=HEADER_FILL)
    cols = column_map(schema)

    # the hidden lists sheet, one column per vocabulary used by a field
    used = [v for v in schema.vocabularies if any(fs.vocabulary == v for s in schema.sheets.values()
                                                   for fs in s.fields.values())]
    data_sheets = {sheet: wb.create_sheet(sheet) for sheet in schema.sheets}
    instr = wb.create_sheet(INSTRUCTIONS_SHEET)
    lists = wb.create_sheet(LISTS_SHEET)
    for i, vname in enumerate(used):
        letter = column_letter(i)
        terms = ordered_terms(schema.vocabularies[vname])
        lists[f"{letter}1"] = vname
        lists[f"{letter}1"].font = bold
        for r, value in enumerate(terms, start=2):
            lists[f"{letter}{r}"] = value
        lists.column_dimensions[letter].width = _width([vname, *terms])
        ref = f"{LISTS_SHEET}!${letter}$2:${letter}${len(terms) + 1}"
        wb.defined_names[list_name(vname)] = DefinedName(list_name(vname), attr_text=ref)
    lists.sheet_state = "hidden"

    # data sheets: header, notes, widths, validations
    for sheet, spec in schema.sheets.items():
        ws = data_sheets[sheet]
        for name, fs in spec.fields.items():
            cell = ws[f"{cols[sheet][name]}1"]
            cell.value = name
            cell.font = bold
            cell.fill = header_fill
            cell.alignment = Alignment(vertical="top")
            note = _note_text(schema, sheet, name, fs)
            comment = Comment(note, AUTHOR)
            comment.width = 320
            comment.height = 40 + 18 * (note.count("\n") + 1 + len(note) // 45)
            cell.comment = comment
            lo = 15 if fs.type in ("text", "vocabulary") else 8
            ws.column_dimensions[cols[sheet][name]].width = _width([name, fs.example], lo=lo, hi=30) + 1
            v = validation_for(schema, sheet, name)
            if v is not None:
                dv = DataValidation(type=v.type, operator=v.operator, formula1=v.formula1, formula2=v.formula2,
                                    allow_blank=True, showErrorMessage=True, showInputMessage=True,
                                    errorStyle=v.error_style, errorTitle=v.error_title, error=v.error,
                                    promptTitle=v.prompt_title, prompt=v.prompt)
                dv.add(f"{cols[sheet][name]}2:{cols[sheet][name]}{last_row}")
                ws.add_data_validation(dv)
        ws.freeze_panes = "A2"
        _print_setup(ws)

    # live checks: red rules first so that they win over amber on the same cell
    red = dict(fill=PatternFill(fill_type="solid", start_color=RED_FILL, end_color=RED_FILL),
               font=Font(color=RED_FONT, bold=True))
    amber = dict(fill=PatternFill(fill_type="solid", start_color=AMBER_FILL, end_color=AMBER_FILL),
                 font=Font(color=AMBER_FONT))
    checks = live_checks(schema, last_row)
    for severity, style in (("error", red), ("warning", amber)):
        for chk in checks:
            if chk.severity != severity or not chk.fields:
                continue
            ws = data_sheets[chk.sheet]
            sqref = " ".join(f"{cols[chk.sheet][f]}2:{cols[chk.sheet][f]}{last_row}" for f in chk.fields)
            ws.conditional_formatting.add(sqref, FormulaRule(formula=[chk.formula], **style))

    # instructions
    _write_instructions(schema, instr, checks)
    wb.active = 0
    wb.properties.creator = AUTHOR
    wb.properties.lastModifiedBy = AUTHOR
    wb.properties.title = f"Extraction form: {schema.title or schema.name}"
    wb.properties.created = FIXED_DATE
    wb.properties.modified = FIXED_DATE
    record_schema(wb, schema.name)
    return wb


#: The workbook's custom document property that names the schema a form was made for
#: (read back by :func:`curation.reading.recorded_schema`).
SCHEMA_PROPERTY = "curation_schema"


def record_schema(wb, name: str) -> None:
    """Record ``name`` in the workbook's custom properties, so that ``curate validate`` can use it."""
    from openpyxl.packaging.custom import StringProperty

    props = wb.custom_doc_props
    for p in list(props.props):
        if p.name == SCHEMA_PROPERTY:
            props.props.remove(p)
    props.append(StringProperty(name=SCHEMA_PROPERTY, value=name))


def _write_instructions(schema: ReviewSchema, ws, checks: list[LiveCheck]) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    fill = PatternFill(fill_type="solid", start_color=HEADER_FILL, end_color=HEADER_FILL)
    rows: list[list[Any]] = []
    ws.append([f"Extraction form: {schema.title or schema.name}"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([f"Schema {schema.name}, version {schema.version}. Generated by `curate template`; "
               f"check a filled form with `curate validate FORM.xlsx` (the form records its schema, "
               f"{schema.name}, so --schema is needed only to check it against another)."])
    ws.append([])
    ws.append(["How to fill the form"])
    ws.cell(ws.max_row, 1).font = bold
    for topic, text in _conventions(schema):
        ws.append([topic, text])
        ws.cell(ws.max_row, 1).font = bold
        ws.merge_cells(start_row=ws.max_row, start_column=2, end_row=ws.max_row, end_column=8)
    ws.append([])
    header = ["sheet", "field", "meaning", "type", "unit", "allowed values / range", "required", "example"]
    ws.append(["Fields"])
    ws.cell(ws.max_row, 1).font = bold
    ws.append(header)
    for c in range(1, len(header) + 1):
        ws.cell(ws.max_row, c).font = bold
        ws.cell(ws.max_row, c).fill = fill
    for sheet, spec in schema.sheets.items():
        for name, fs in spec.fields.items():
            rows.append([sheet, name, fs.description, fs.type, _unit_text(spec.fields, fs),
                         allowed_text(schema, fs), "yes" if fs.required else "",
                         None if fs.example is None else str(fs.example)])
    for r in rows:
        ws.append(r)
    ws.append([])
    ws.append(["Vocabularies"])
    ws.cell(ws.max_row, 1).font = bold
    _header_row(ws, ["vocabulary", "value", "accepted aliases", "eligible", "note"], bold, fill)
    for vname, vocab in schema.vocabularies.items():
        for t in vocab.terms:
            note = t.warning or ("" if t.eligible else (vocab.ineligible_reason or "not eligible"))
            ws.append([vname, t.value, ", ".join(t.aliases), "yes" if t.eligible else "no", note])
        for label, reason in vocab.rejected.items():
            ws.append([vname, label, "", "rejected", reason])
    ws.append([])
    ws.append(["Live checks (cell colours while typing)"])
    ws.cell(ws.max_row, 1).font = bold
    _header_row(ws, ["sheet", "colours", "check", "severity", "what it means"], bold, fill)
    seen = set()
    for chk in checks:
        key = (chk.sheet, chk.fields, chk.source, chk.description)
        if key in seen or not chk.fields:
            continue
        seen.add(key)
        ws.append([chk.sheet, ", ".join(chk.fields), chk.source,
                   "error (red)" if chk.severity == "error" else "warning (amber)", chk.description])
    widths = {"A": 18, "B": 24, "C": 48, "D": 14, "E": 22, "F": 60, "G": 9, "H": 22}
    for letter, w in widths.items():
        ws.column_dimensions[letter].width = w
    merged = {r.min_row: sum(widths[column_letter(c - 1)] for c in range(r.min_col, r.max_col + 1))
              for r in ws.merged_cells.ranges}
    for row in ws.iter_rows(min_row=4):
        lines = 1
        for cell in row:
            if cell.value is None or not hasattr(cell, "column_letter"):
                continue
            cell.alignment = wrap
            width = widths.get(cell.column_letter, 10)
            if cell.column == 2 and cell.row in merged:
                width = merged[cell.row]
            lines = max(lines, -(-len(str(cell.value)) // max(int(width * 1.1) - 2, 1)))
        if lines > 1:
            ws.row_dimensions[row[0].row].height = 15 * lines
    ws.freeze_panes = "A2"
    _print_setup(ws, titles=False)


def _print_setup(ws, titles: bool = True) -> None:
    """Landscape, one page wide, header row repeated: a printout a reviewer can read."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    if titles:
        ws.print_title_rows = "1:1"


# ---------------------------------------------------------------------------------------------
# Deterministic bytes
# ---------------------------------------------------------------------------------------------

_ZIP_DATE = (FIXED_DATE.year, FIXED_DATE.month, FIXED_DATE.day, 0, 0, 0)
_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def workbook_bytes(wb) -> bytes:
    """The workbook as ``.xlsx`` bytes, identical for identical content.

    openpyxl stamps the save time into ``docProps/core.xml`` and into every zip entry; both are
    replaced by :data:`FIXED_DATE`, so that the same schema gives the same bytes.
    """
    buf = io.BytesIO()
    wb.save(buf)
    stamp = FIXED_DATE.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _MODIFIED.sub(rb"\g<1>" + stamp + rb"\g<2>", data)
            zi = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = info.external_attr
            zout.writestr(zi, data)
    return out.getvalue()


def template_bytes(schema: ReviewSchema, **kwargs: Any) -> bytes:
    """:func:`build_template` serialised with :func:`workbook_bytes`."""
    return workbook_bytes(build_template(schema, **kwargs))


__all__ = ["build_template", "workbook_bytes", "template_bytes", "live_checks", "LiveCheck", "validation_for",
           "ValidationSpec", "column_map", "ordered_terms", "list_name", "rate_match_formula", "LAST_ROW",
           "FIXED_DATE"]


"""The generated extraction form (``curate template``).

The form is read back with openpyxl: headers, notes, lists, data validations, live checks
(conditional formatting). The live-check formulas are evaluated by a small evaluator of the
formula subset the template emits (below), on forms filled with data, and compared with what
``curate validate`` reports on the same cells.
"""

from __future__ import annotations

import io
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.rules import rate_matches
from curation.schema import current_year, load_schema
from curation.template import (
    FIXED_DATE, LAST_ROW, build_template, column_map, live_checks, list_name, ordered_terms, rate_match_formula,
    template_bytes, workbook_bytes,
)
from curation.validation import validate

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "extraction_forms" / "template.xlsx"


@pytest.fixture(scope="module")
def schema():
    return load_schema("prrt_177lu")


@pytest.fixture(scope="module")
def wb(schema):
    return openpyxl.load_workbook(io.BytesIO(template_bytes(schema)))


# ---------------------------------------------------------------------------------------------
# A tiny evaluator of the Excel formula subset the live checks use
# ---------------------------------------------------------------------------------------------


class XLError(Exception):
    """An Excel error value (#VALUE!, #N/A ...)."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"]|"")*")
  | (?P<ref>(?:(?:'(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_]*)!)?\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?(?![A-Za-z0-9_(]))
  | (?P<num>\d+(?:\.\d*)?(?:E[+-]?\d+)?|\.\d+(?:E[+-]?\d+)?)
  | (?P<func>[A-Z][A-Z0-9.]*(?=\())
  | (?P<bool>TRUE|FALSE)
  | (?P<op><=|>=|<>|[-+*/^&=<>(),])
""", re.VERBOSE)


def _tokens(formula: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(formula):
        m = _TOKEN.match(formula, pos)
        if not m:
            raise ValueError(f"cannot read {formula[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _col_letters(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


class Range:
    def __init__(self, sheet: str, c1: int, r1: int, c2: int, r2: int):
        self.sheet, self.c1, self.r1, self.c2, self.r2 = sheet, c1, r1, c2, r2


class Evaluator:
    """Evaluate a conditional-formatting formula for one cell.

    ``cells`` is ``{sheet: {(column letter, row): value}}``; the formula is written for row
    ``base_row`` and evaluated at ``row`` (relative row references are shifted, as Excel does).
    """

    def __init__(self, cells: dict[str, dict[tuple[str, int], Any]], sheet: str, row: int, base_row: int = 2):
        self.cells, self.sheet, self.shift = cells, sheet, row - base_row

    # parsing + evaluation in one recursive descent (IF/IFERROR are lazy)
    def run(self, formula: str) -> Any:
        self.toks = _tokens(formula.lstrip("="))
        self.i = 0
        node = self._comparison()
        if self.i != len(self.toks):
            raise ValueError(f"trailing tokens in {formula!r}")
        return node()

    def _peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def _take(self, value=None):
        kind, text = self._peek()
        if value is not None and text != value:
            raise ValueError(f"expected {value!r}, got {text!r}")
        self.i += 1
        return kind, text

    def _binary(self, sub, ops, fn):
        left = sub()
        while self._peek()[1] in ops:
            op = self._take()[1]
            right = sub()
            left = (lambda l, r, o: (lambda: fn(o, l(), r())))(left, right, op)
        return left

    def _comparison(self):
        return self._binary(self._concat, ("=", "<>", "<", ">", "<=", ">="), _compare)

    def _concat(self):
        return self._binary(self._additive, ("&",), lambda o, a, b: _text(a) + _text(b))

    def _additive(self):
        return self._binary(self._term, ("+", "-"), _arith)

    def _term(self):
        return self._binary(self._power, ("*", "/"), _arith)

    def _power(self):
        return self._binary(self._unary, ("^",), _arith)

    def _unary(self):
        if self._peek()[1] == "-":
            self._take()
            inner = self._unary()
            return lambda: -_number(inner())
        if self._peek()[1] == "+":
            self._take()
            return self._unary()
        return self._primary()

    def _primary(self):
        kind, text = self._take()
        if kind == "num":
            v = float(text)
            return lambda: v
        if kind == "str":
            v = text[1:-1].replace('""', '"')
            return lambda: v
        if kind == "bool":
            return (lambda: True) if text == "TRUE" else (lambda: False)
        if kind == "ref":
            return self._ref(text)
        if text == "(":
            node = self._comparison()
            self._take(")")
            return node
        if kind == "func":
            self._take("(")
            args = []
            if self._peek()[1] != ")":
                args.append(self._comparison())
                while self._peek()[1] == ",":
                    self._take()
                    args.append(self._comparison())
            self._take(")")
            return self._func(text, args)
        raise ValueError(f"unexpected {text!r}")

    def _ref(self, text: str):
        sheet = self.sheet
        if "!" in text:
            sheet, text = text.rsplit("!", 1)
            sheet = sheet.strip("'").replace("''", "'")
        parts = text.split(":")
        coords = []
        for p in parts:
            m = re.fullmatch(r"(\$?)([A-Z]+)(\$?)(\d+)", p)
            row = int(m.group(4)) + (0 if m.group(3) else self.shift)
            col = _col_index(m.group(2)) + (0 if m.group(1) else 0)  # the template writes $column only
            coords.append((col, row))
        if len(coords) == 1:
            (c, r), = coords
            return lambda: self.cells.get(sheet, {}).get((_col_letters(c), r))
        (c1, r1), (c2, r2) = coords
        rng = Range(sheet, c1, r1, c2, r2)
        return lambda: rng

    def _values(self, rng: Range) -> list[Any]:
        data = self.cells.get(rng.sheet, {})
        return [data.get((_col_letters(c), r)) for r in range(rng.r1, rng.r2 + 1) for c in range(rng.c1, rng.c2 + 1)]

    def _func(self, name: str, args):
        ev = lambda k: args[k]()  # noqa: E731
        if name == "IF":
            return lambda: ev(1) if _truth(ev(0)) else (ev(2) if len(args) > 2 else False)
        if name == "IFERROR":
            def iferror():
                try:
                    v = ev(0)
                except XLError:
                    return ev(1)
                return v
            return iferror
        if name == "AND":
            return lambda: all([_truth(a()) for a in args])  # every argument evaluated, errors propagate
        if name == "OR":
            return lambda: any([_truth(a()) for a in args])
        if name == "NOT":
            return lambda: not _truth(ev(0))
        if name == "ISNUMBER":
            def isnumber():
                try:
                    v = ev(0)
                except XLError:
                    return False
                return isinstance(v, (int, float)) and not isinstance(v, bool)
            return isnumber
        if name == "ABS":
            return lambda: abs(_number(ev(0)))
        if name == "INT":
            return lambda: float(math.floor(_number(ev(0))))
        if name == "ROUND":
            return lambda: _round(_number(ev(0)), int(_number(ev(1))))
        if name == "TRIM":
            return lambda: " ".join(_text(ev(0)).split())
        if name == "LEN":
            return lambda: float(len(_text(ev(0))))
        if name == "COUNTA":
            return lambda: float(sum(1 for v in self._values(ev(0)) if v is not None))
        if name == "INDEX":
            return lambda: self._values(ev(0))[int(_number(ev(1))) - 1]
        if name == "MATCH":
            def match():
                target = ev(0)
                for k, v in enumerate(self._values(ev(1)), start=1):
                    if v is not None and _compare("=", v, target):
                        return float(k)
                raise XLError("#N/A")
            return match
        raise ValueError(f"function {name} is not in the evaluated subset")


def _truth(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if v is None:
        return False
    raise XLError("#VALUE!")


def _number(v: Any) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        raise XLError("#VALUE!") from None


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    return str(v)


def _round(x: float, n: int) -> float:
    q = Decimal(1).scaleb(-n)
    return float(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP))


def _arith(op: str, a: Any, b: Any) -> float:
    a, b = _number(a), _number(b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise XLError("#DIV/0!")
        return a / b
    return a ** b


def _rank(v: Any) -> int:
    return 2 if isinstance(v, bool) else 1 if isinstance(v, str) else 0


def _compare(op: str, a: Any, b: Any) -> bool:
    if a is None:
        a = "" if isinstance(b, str) else 0.0
    if b is None:
        b = "" if isinstance(a, str) else 0.0
    if _rank(a) != _rank(b):
        x, y = _rank(a), _rank(b)
    elif isinstance(a, str):
        x, y = a.casefold(), b.casefold()
    else:
        x, y = float(a), float(b)
    return {"=": x == y, "<>": x != y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]


def cf_true(cells, sheet: str, row: int, formula: str) -> bool:
    """Does a conditional-formatting formula colour this row (errors count as 'no')?"""
    try:
        return _truth(Evaluator(cells, sheet, row).run(formula))
    except XLError:
        return False


def sheet_cells(wb_: openpyxl.Workbook) -> dict[str, dict[tuple[str, int], Any]]:
    out = {}
    for ws in wb_.worksheets:
        d = {}
        for row in ws.iter_rows():
            for c in row:
                if c.value is not None:
                    d[(c.column_letter, c.row)] = c.value
        out[ws.title] = d
    return out


def _in_sqref(sqref, letter: str, row: int) -> bool:
    for rng in str(sqref).split():
        m = re.fullmatch(r"([A-Z]+)(\d+):([A-Z]+)(\d+)", rng)
        if m and _col_index(m.group(1)) <= _col_index(letter) <= _col_index(m.group(3)) \
                and int(m.group(2)) <= row <= int(m.group(4)):
            return True
    return False


def colours(wb_: openpyxl.Workbook, sheet: str, row: int) -> dict[str, str]:
    """``{column letter: "red"|"amber"}`` of one row: the highest-priority live check that fires."""
    cells = sheet_cells(wb_)
    ws = wb_[sheet]
    best: dict[str, tuple[int, str]] = {}
    width = ws.max_column
    for cf in ws.conditional_formatting:
        for rule in cf.rules:
            if not cf_true(cells, sheet, row, rule.formula[0]):
                continue
            fill = rule.dxf.fill.fgColor.rgb if rule.dxf and rule.dxf.fill is not None else None
            colour = {"FFFFC7CE": "red", "FFFFEB9C": "amber"}.get(fill, str(fill))
            for c in range(1, width + 1):
                letter = _col_letters(c)
                if _in_sqref(cf.sqref, letter, row) and (letter not in best or rule.priority < best[letter][0]):
                    best[letter] = (rule.priority, colour)
    return {k: v for k, (_p, v) in best.items()}


def test_evaluator_on_known_formulas():
    cells = {"s": {("A", 2): 3.0, ("B", 2): "NR", ("C", 2): None, ("A", 3): 5.0, ("D", 2): "x"},
             "t": {("A", 2): "x", ("B", 2): 7.0}}
    ev = lambda f, row=2: Evaluator(cells, "s", row).run(f)  # noqa: E731
    assert ev("AND(ISNUMBER($A2),$A2>2)") is True
    assert ev("$A2+1", row=3) == 6.0
    assert ev('TRIM($B2)="nr"') is True                     # case-insensitive text comparison
    assert ev("ISNUMBER($B2)") is False and ev("ISNUMBER($C2)") is False
    assert ev('LEN(TRIM($C2))=0') is True
    assert ev("ROUND(2.675,2)") == 2.68 and ev("ROUND(23.75*10^1,0)") == 238.0
    assert ev('IFERROR(INDEX(t!$B$2:$B$9,MATCH($D2,t!$A$2:$A$9,0)),"")') == 7.0
    assert ev('IFERROR(INDEX(t!$B$2:$B$9,MATCH($A2,t!$A$2:$A$9,0)),"")') == ""
    with pytest.raises(XLError):
        ev("AND(FALSE,$B2>1,$B2+1>0)")                   # AND propagates an error, like Excel
    assert cf_true(cells, "s", 2, "AND(FALSE,$B2+1>0)") is False
    assert ev("COUNTA($A2:$D2)") == 3.0


# ---------------------------------------------------------------------------------------------
# Structure: sheets, headers, notes, widths
# ---------------------------------------------------------------------------------------------


def test_sheets_and_headers(schema, wb):
    assert wb.sheetnames == [*schema.sheets, "instructions", "lists"]
    for sheet, spec in schema.sheets.items():
        ws = wb[sheet]
        header = [c.value for c in ws[1]]
        assert header == list(spec.fields)
        assert ws.freeze_panes == "A2"
        for cell in ws[1]:
            fs = spec.fields[cell.value]
            assert cell.font.b, cell.coordinate
            note = cell.comment.text
            assert fs.description in note
            if fs.unit and not fs.unit_field:
                assert f"Unit: {fs.unit}" in note
            if fs.vocabulary:
                for term in schema.vocabularies[fs.vocabulary].terms:
                    assert term.value in note
            width = ws.column_dimensions[cell.column_letter].width
            assert width >= len(cell.value), (sheet, cell.value, width)
    assert wb["lists"].sheet_state == "hidden"
    assert wb["studies"].sheet_state == "visible"


def test_instructions_explain_every_field_and_conventions(schema, wb):
    ws = wb["instructions"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    start = next(i for i, r in enumerate(rows) if r[:3] == ["sheet", "field", "meaning"])
    end = next(i for i in range(start + 1, len(rows)) if rows[i][0] is None)
    table = {(r[0], r[1]): r for r in rows[start + 1:end]}
    assert len(table) == sum(len(s.fields) for s in schema.sheets.values())
    for sheet, spec in schema.sheets.items():
        for name, fs in spec.fields.items():
            row = table[(sheet, name)]
            assert row[2] == fs.description and row[3] == fs.type
            if fs.example is not None:
                assert row[7] == str(fs.example)
            if fs.type == "vocabulary":
                assert all(t.value in row[5] for t in schema.vocabularies[fs.vocabulary].terms)
            if fs.max_value is not None and fs.type in ("integer", "year"):
                assert f"<= {int(fs.max_value)}" in row[5]
    text = "\n".join(str(v) for r in rows for v in r if v is not None)
    for phrase in ("Type NR in", "Leave the cell empty", "30.9 (22.7-39.0)", "'overall'", "alias", "red", "amber"):
        assert phrase in text, phrase
    # every vocabulary term and alias is listed
    for vocab in schema.vocabularies.values():
        for term in vocab.terms:
            assert term.value in text and all(a in text for a in term.aliases)


def test_lists_sheet_and_defined_names(schema, wb):
    ws = wb["lists"]
    used = [v for v in schema.vocabularies if any(fs.vocabulary == v for s in schema.sheets.values()
                                                   for fs in s.fields.values())]
    for i, vname in enumerate(used, start=1):
        col = [ws.cell(r, i).value for r in range(1, ws.max_row + 1)]
        values = [v for v in col[1:] if v is not None]
        assert col[0] == vname
        assert values == ordered_terms(schema.vocabularies[vname])
        eligible = [t.eligible for t in schema.vocabularies[vname].terms]
        flags = [schema.vocabularies[vname].by_value[v].eligible for v in values]
        assert flags == sorted(flags, reverse=True) and sorted(eligible) == sorted(flags)  # eligible first
        dn = wb.defined_names[list_name(vname)]
        letter = _col_letters(i)
        assert dn.attr_text == f"lists!${letter}$2:${letter}${len(values) + 1}"
    rc = schema.vocabularies["response_criteria"]
    assert ordered_terms(rc)[-1] in {t.value for t in rc.terms if not t.eligible}


def _validations(ws) -> dict[str, Any]:
    out = {}
    for dv in ws.data_validations.dataValidation:
        for rng in str(dv.sqref).split():
            out[re.match(r"[A-Z]+", rng).group()] = (dv, rng)
    return out


def test_data_validations_follow_the_schema(schema, wb):
    cols = column_map(schema)
    for sheet, spec in schema.sheets.items():
        dvs = _validations(wb[sheet])
        for name, fs in spec.fields.items():
            letter = cols[sheet][name]
            if fs.type in ("text", "source"):  # free text: no data validation
                assert letter not in dvs
                continue
            dv, rng = dvs[letter]
            assert rng == f"{letter}2:{letter}{LAST_ROW}"
            assert dv.showErrorMessage and dv.showInputMessage and dv.allow_blank
            assert dv.prompt and len(dv.prompt) <= 255 and len(dv.error) <= 255 and len(dv.errorTitle) <= 32
            if fs.type == "vocabulary":
                assert dv.type == "list" and dv.formula1 == "=" + list_name(fs.vocabulary)
                assert dv.errorStyle in ("warning", "information")  # aliases must stay typeable
                assert "alias" in dv.error and "Yes" in dv.error
            elif fs.type in ("integer", "year"):
                assert dv.type == "whole"
                lo = fs.min if fs.min is not None else 0
                if fs.min_exclusive is not None:
                    lo = max(lo, math.floor(fs.min_exclusive) + 1)
                assert float(dv.formula1) == lo
                if fs.max_value is not None:
                    assert dv.operator == "between" and float(dv.formula2) == fs.max_value
                else:
                    assert dv.operator == "greaterThanOrEqual"
            elif fs.type == "percentage":
                assert (dv.type, dv.operator, dv.formula1, dv.formula2) == ("decimal", "between", "0", "100")
            elif fs.type == "number":
                assert dv.type == "decimal"
                if fs.min is not None and fs.max_value is not None:
                    assert (dv.operator, float(dv.formula1), float(dv.formula2)) == ("between", fs.min, fs.max_value)
                elif fs.min_exclusive is not None:
                    assert (dv.operator, float(dv.formula1)) == ("greaterThan", fs.min_exclusive)
                if fs.not_reached:
                    assert dv.errorStyle == "warning" and "NR" in dv.error
    # spot checks of the shipped schema
    year = _validations(wb["studies"])[cols["studies"]["year"]][0]
    assert (year.formula1, year.formula2) == ("1990", str(current_year() + 1))
    rp = _validations(wb["studies"])[cols["studies"]["radiopharmaceutical"]][0]
    assert "Lutathera" in rp.error


def test_same_schema_same_bytes(schema):
    a, b = template_bytes(schema), template_bytes(schema)
    assert a == b
    props = openpyxl.load_workbook(io.BytesIO(a)).properties
    assert props.created == FIXED_DATE and props.modified == FIXED_DATE


def test_build_template_is_pure(schema, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build_template(schema)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Live checks: derived from the schema, evaluated on filled forms
# ---------------------------------------------------------------------------------------------


def example_rows(schema) -> dict[str, list[dict[str, Any]]]:
    """One row per sheet from the schema's field examples (the shipped examples are consistent)."""
    return {sheet: [{name: fs.example for name, fs in spec.fields.items()}] for sheet, spec in schema.sheets.items()}


def fill(schema, rows: dict[str, list[dict[str, Any]]]) -> openpyxl.Workbook:
    """A template filled with rows (field -> value), the way a reviewer would type them."""
    wb_ = build_template(schema)
    cols = column_map(schema)
    for sheet, items in rows.items():
        ws = wb_[sheet]
        for r, row in enumerate(items, start=2):
            for name, value in row.items():
                if value is not None:
                    ws[f"{cols[sheet][name]}{r}"] = value
    return wb_


def save(wb_: openpyxl.Workbook, path: Path) -> Path:
    path.write_bytes(workbook_bytes(wb_))
    return path


def test_round_trip_filled_template_passes(schema, tmp_path):
    wb_ = fill(schema, example_rows(schema))
    result = validate(save(wb_, tmp_path / "filled.xlsx"), schema)
    assert result.summary.errors == 0, [f.message for f in result.finding_list]
    assert result.summary.warnings == 0, [f.message for f in result.finding_list]
    assert result.summary.rows_passed == result.summary.rows_read == len(schema.sheets)
    assert len(result.clean) == 1
    reread = openpyxl.load_workbook(tmp_path / "filled.xlsx")
    for sheet in schema.sheets:
        assert colours(reread, sheet, 2) == {}, sheet   # a right row is not coloured


def test_round_trip_several_rows_and_aliases(schema, tmp_path):
    rows = example_rows(schema)
    second_study = dict(rows["studies"][0], study_id="S02", radiopharmaceutical="Lutathera",
                        response_criteria="RECIST v1.1", first_author="Other")
    sub = dict(rows["outcomes"][0], cohort="pancreas", primary_site="pNET", grade="G1/G2", n_evaluable=40,
               cr=0, pr=10, sd=25, pd=5, ne=None, orr_pct=25.0, dcr_pct=87.5, orr_n=10, dcr_n=35)
    rows["studies"].append(second_study)
    rows["outcomes"].append(dict(rows["outcomes"][0], study_id="S02"))
    rows["outcomes"].append(sub)
    wb_ = fill(schema, rows)
    result = validate(save(wb_, tmp_path / "filled.xlsx"), schema)
    assert result.summary.errors == 0, [f.message for f in result.finding_list]
    assert result.summary.rows_passed == result.summary.rows_read == 6
    for sheet, items in rows.items():
        for r in range(2, len(items) + 2):
            assert colours(wb_, sheet, r) == {}, (sheet, r)


# (change to the example outcome row, the field that must turn red/amber, the engine's rule)
SLIPS = [
    ({"orr_pct": 18.8}, "orr_pct", "red", "percentage-mismatch"),
    ({"orr_pct": 15.5}, "orr_pct", "amber", "percentage-itt-denominator"),   # 18/116: n_enrolled denominator
    ({"sd": 71}, "n_evaluable", "red", "response-sum-mismatch"),
    ({"ne": None, "pd": 12}, "n_evaluable", "amber", "response-sum-short"),
    ({"dcr_pct": 15.0, "sd": 0, "pd": 83}, "dcr_pct", "red", "dcr-below-orr"),
    ({"pfs_median": 19.4, "pfs_ci_low": 28.4}, "pfs_median", "red", "median-outside-ci"),
    ({"os_ci_low": 48.0}, "os_ci_low", "amber", "ci-bound-equals-median"),
    ({"pfs_ci_low": None, "pfs_ci_high": None}, "pfs_median", "amber", "median-without-ci"),
    ({"n_evaluable": 120, "sd": 89, "orr_pct": 15.0, "dcr_pct": 89.2}, "n_evaluable", "red",
     "evaluable-exceeds-enrolled"),
    ({"ki67_max": 45}, "ki67_max", "amber", "ki67-contradicts-grade"),
    ({"pfs_median": 60.0, "pfs_ci_low": 50.0, "pfs_ci_high": 70.0}, "pfs_median", "amber", "pfs-exceeds-os"),
    ({"followup_median_months": 12.0}, "pfs_median", "amber", "pfs-beyond-followup"),
    ({"pfs_median": 300, "pfs_ci_low": 250, "pfs_ci_high": 350, "os_median": 400, "os_ci_low": 380,
      "os_ci_high": 420, "followup_median_months": 500}, "pfs_median", "amber", "implausible-value"),
    ({"pfs_median": 100, "pfs_ci_low": 90, "pfs_ci_high": 130, "pfs_unit": "weeks"}, None, None, None),
    ({"grade": "G4"}, "grade", "red", "rejected-term"),
    ({"cr": 1.5}, "cr", "red", "not-an-integer"),
    ({"cohort": None}, "cohort", "red", "missing-required"),
]


@pytest.mark.parametrize("change,field,colour,rule", SLIPS, ids=[s[3] or "weeks-are-fine" for s in SLIPS])
def test_live_check_colours_the_wrong_cell_like_validate(schema, tmp_path, change, field, colour, rule):
    rows = example_rows(schema)
    rows["outcomes"][0].update(change)
    wb_ = fill(schema, rows)
    path = save(wb_, tmp_path / "slip.xlsx")
    result = validate(path, schema)
    got = colours(openpyxl.load_workbook(path), "outcomes", 2)
    letter = column_map(schema)["outcomes"]
    if rule is None:
        assert got == {} and result.summary.errors == result.summary.warnings == 0
        return
    assert got.get(letter[field]) == colour, got
    engine = {(f.rule, f.column) for f in result.finding_list if f.sheet == "outcomes"}
    assert any(r == rule for r, _c in engine), engine
    # the engine's errors and warnings on this row are all coloured (at their cell or a cell of the same check)
    for f in result.finding_list:
        if f.sheet == "outcomes" and f.severity in ("error", "warning") and f.column:
            want = "red" if f.severity == "error" else "amber"
            assert want in got.values(), (f.rule, f.column, got)
    # cells the slip does not involve stay white
    touched = {letter[k] for k in change} | {letter[field]} | {
        letter[x] for x in ("n_evaluable", "cr", "pr", "sd", "pd", "ne", "pfs_median", "pfs_ci_low", "pfs_ci_high",
                            "os_median", "os_ci_low", "os_ci_high", "orr_pct", "dcr_pct")}
    assert set(got) <= touched, got


def test_cross_sheet_checks_look_up_the_study(schema):
    rows = example_rows(schema)
    rows["adverse_events"][0].update(n_safety=130)     # above the study's n_enrolled 116
    rows["adverse_events"].append(dict(rows["adverse_events"][0], study_id="S99", ae_term="anaemia", n_safety=130))
    wb_ = fill(schema, rows)
    letter = column_map(schema)["adverse_events"]
    assert colours(wb_, "adverse_events", 2) == {letter["n_safety"]: "red"}
    assert colours(wb_, "adverse_events", 3) == {}     # unknown study: no lookup, no colour


@settings(max_examples=300, deadline=None)
@given(total=st.integers(1, 2000), data=st.data(), decimals=st.integers(0, 3))
def test_rate_formula_is_the_engine_arithmetic(total, data, decimals):
    events = data.draw(st.integers(0, total))
    exact = 100 * events / total
    jitter = data.draw(st.sampled_from([0, 0, 1, -1, 2, -5, 10]))
    rate = round(round(exact, decimals) + jitter * 10 ** -decimals, decimals)
    if rate < 0:
        return
    formula = rate_match_formula("$A2", "$B2", "$C2")
    got = cf_true({"s": {("A", 2): rate, ("B", 2): float(events), ("C", 2): float(total)}}, "s", 2, formula)
    shown = len(repr(float(rate)).split(".")[1].rstrip("0")) if not float(rate).is_integer() else 0
    import numpy as np

    want = bool(rate_matches(np.array([rate]), np.array([float(shown)]), np.array([float(events)]),
                             np.array([float(total)]))[0])
    assert got == want, (rate, events, total)


def test_half_way_rates_match_either_way():
    formula = rate_match_formula("$A2", "$B2", "$C2")
    for rate in (23.7, 23.8):   # 19/80 = 23.75%
        assert cf_true({"s": {("A", 2): rate, ("B", 2): 19.0, ("C", 2): 80.0}}, "s", 2, formula)
    assert not cf_true({"s": {("A", 2): 23.6, ("B", 2): 19.0, ("C", 2): 80.0}}, "s", 2, formula)


# ---------------------------------------------------------------------------------------------
# Another schema gives another form
# ---------------------------------------------------------------------------------------------

OTHER_SCHEMA = """
name: toy_review
title: A toy single-arm review
vocabularies:
  arm_type:
    terms:
      - value: single
        aliases: [single-arm, one arm]
      - value: historical
        eligible: false
sheets:
  trials:
    key: [trial]
    fields:
      trial: {type: text, required: true, description: Trial name, example: T1}
      arm: {type: vocabulary, vocabulary: arm_type, description: Kind of arm, example: single}
      patients: {type: integer, required: true, min: 1, description: Patients treated, example: 50}
  results:
    key: [trial, group]
    parent: {sheet: trials, key: trial}
    fields:
      group: {type: text, required: true, description: Group, example: all}
      trial: {type: text, required: true, description: Trial name, example: T1}
      analysed: {type: integer, min: 1, description: Patients analysed, example: 40}
      responders: {type: integer, min: 0, description: Responders, example: 10}
      others: {type: integer, min: 0, description: Non-responders, example: 30}
      response_pct: {type: percentage, min: 0, max: 100, description: Response rate, example: 25.0}
checks:
  results:
    - rule: response-sum-mismatch
      parts: [responders, others]
      total: analysed
    - rule: percentage-mismatch
      rate: response_pct
      events: [responders]
      total: analysed
      itt_total: trials.patients
    - rule: percentage-itt-denominator
      rate: response_pct
      events: [responders]
      total: analysed
      itt_total: trials.patients
    - rule: evaluable-exceeds-enrolled
      field: analysed
      limit: trials.patients
analysis:
  sheet: results
  cohort_field: group
  overall_cohort: all
"""


def test_another_schema_gives_another_form(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(OTHER_SCHEMA)
    toy = load_schema(path)
    wb_ = build_template(toy)
    assert wb_.sheetnames == ["trials", "results", "instructions", "lists"]
    assert [c.value for c in wb_["results"][1]] == ["group", "trial", "analysed", "responders", "others",
                                                     "response_pct"]
    lists = wb_["lists"]
    assert [lists.cell(r, 1).value for r in range(1, 4)] == ["arm_type", "single", "historical"]
    assert "PRRT" not in str(sheet_cells(wb_)) and "177Lu" not in str(sheet_cells(wb_))
    # filled correctly: validates clean and nothing is coloured
    rows = example_rows(toy)
    good = fill(toy, rows)
    result = validate(save(good, tmp_path / "toy.xlsx"), toy)
    assert result.summary.errors == 0, [f.message for f in result.finding_list]
    assert colours(good, "results", 2) == {}
    # a slip: the live checks follow the toy's own columns (analysed is C, responders D ...)
    rows["results"][0].update(others=31)
    bad = fill(toy, rows)
    assert colours(bad, "results", 2) == {"C": "red", "D": "red", "E": "red"}
    rows["results"][0].update(others=30, response_pct=20.0)        # 10/50: the trials' patients
    assert colours(fill(toy, rows), "results", 2) == {"F": "amber"}
    rows["results"][0].update(response_pct=22.0)
    assert colours(fill(toy, rows), "results", 2) == {"F": "red"}
    rows["trials"][0].update(arm="historical")
    assert colours(fill(toy, rows), "trials", 2) == {"B": "red"}


# ---------------------------------------------------------------------------------------------
# The CLI and the committed template
# ---------------------------------------------------------------------------------------------


def test_cli_writes_the_template(tmp_path, schema):
    from curation.cli import main

    out = tmp_path / "form.xlsx"
    res = CliRunner().invoke(main, ["template", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == template_bytes(schema)
    res = CliRunner().invoke(main, ["template", "--schema", "prrt_177lu", "-o", str(tmp_path / "form.txt")])
    assert res.exit_code == 2 and "xlsx" in res.output
    res = CliRunner().invoke(main, ["template", "--schema", str(tmp_path / "missing.yaml"), "-o", str(out)])
    assert res.exit_code == 2 and "Traceback" not in res.output


def workbook_content(wb_: openpyxl.Workbook) -> dict[str, Any]:
    """What a reviewer gets from a form: headers, notes, lists, validations, live checks, instructions."""
    out: dict[str, Any] = {"sheets": wb_.sheetnames,
                           "names": sorted((n, d.attr_text) for n, d in wb_.defined_names.items())}
    for ws in wb_.worksheets:
        out[ws.title] = {
            "state": ws.sheet_state,
            "values": sorted((k, str(v)) for k, v in sheet_cells(wb_)[ws.title].items()),
            "notes": sorted((c.coordinate, c.comment.text) for row in ws.iter_rows(max_row=1) for c in row if c.comment),
            "validations": sorted((str(dv.sqref), dv.type, str(dv.operator), str(dv.formula1), str(dv.formula2),
                                   str(dv.errorStyle), dv.error, dv.prompt) for dv in ws.data_validations.dataValidation),
            "live_checks": sorted((str(cf.sqref), r.priority, r.formula[0], r.dxf.fill.fgColor.rgb)
                                  for cf in ws.conditional_formatting for r in cf.rules),
            "freeze": ws.freeze_panes,
        }
    return out


def test_committed_template_is_up_to_date(schema):
    committed = openpyxl.load_workbook(COMMITTED)
    fresh = openpyxl.load_workbook(io.BytesIO(template_bytes(schema)))
    a, b = workbook_content(committed), workbook_content(fresh)
    stale = [k for k in b if a.get(k) != b[k]]
    assert not stale, (f"extraction_forms/template.xlsx is out of date with the schema ({', '.join(stale)}); "
                       "regenerate it with `curate template -o extraction_forms/template.xlsx`")


def test_live_checks_cover_the_schema_checks(schema):
    """Every error/warning check the schema names that a formula can express has a live check."""
    expressible = {"response-sum-mismatch", "response-sum-short", "percentage-mismatch",
                   "percentage-itt-denominator", "dcr-below-orr", "median-outside-ci", "ci-bound-equals-median",
                   "median-without-ci", "pfs-exceeds-os", "pfs-beyond-followup", "evaluable-exceeds-enrolled",
                   "adverse-event-counts-inconsistent", "enrolment-period-reversed", "enrolment-after-publication",
                   "cumulative-activity-mismatch", "ki67-contradicts-grade"}
    named = {(s, e.rule) for s, entries in schema.checks.items() for e in entries if e.rule in expressible}
    have = {(c.sheet, c.source) for c in live_checks(schema)}
    assert named <= have, named - have
    assert len(named) >= 10

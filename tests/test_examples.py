"""The example forms in ``extraction_forms/``: built from ``sources.csv``, validated exactly as the README says.

* each form validates with exactly the findings of its block in ``extraction_forms/README.md``;
* every planted slip (``SLIPS_A``/``SLIPS_B`` of ``build_examples.py``) is reported at its cell, and
  the correct extraction (no slips, no restyling) has no error except the ineligible study;
* A and B differ, after normalisation, only where a slip was planted (formatting is not a conflict);
* the committed forms are what ``build_examples.py`` builds, and the script reads nothing outside
  the repository;
* the live checks colour the slips in the example forms, and no cell of a row validate passes red.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import re
from pathlib import Path

import openpyxl
import pytest

from curation.schema import load_schema
from curation.template import column_map
from curation.validation import validate
from test_template import colours, workbook_content

ROOT = Path(__file__).resolve().parent.parent
FORMS = ROOT / "extraction_forms"
README = FORMS / "README.md"


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_examples", FORMS / "build_examples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


builder = _load_builder()


@pytest.fixture(scope="module")
def schema():
    return load_schema(builder.SCHEMA)


def readme_findings() -> dict[str, list[str]]:
    text = README.read_text(encoding="utf-8")
    blocks = dict(re.findall(r"```findings (\S+)\n(.*?)```", text, re.S))
    return {name: [line.strip() for line in body.splitlines() if line.strip()] for name, body in blocks.items()}


def reported(path: Path) -> list[str]:
    return [f"{f.rule} {f.severity} {f.cell or f.sheet}" for f in validate(path, builder.SCHEMA).finding_list]


@pytest.fixture(scope="module")
def results():
    return {name: validate(FORMS / name, builder.SCHEMA) for name in (builder.FORM_A, builder.FORM_B)}


@pytest.mark.parametrize("name", ["example_reviewer_a.xlsx", "example_reviewer_b.xlsx"])
def test_form_validates_exactly_as_the_readme_says(name):
    expected = readme_findings()[name]
    assert expected, f"README.md has an empty findings block for {name}"
    assert reported(FORMS / name) == expected


def _row_of(result, sheet: str, key: tuple[str, ...]) -> int:
    spec = result.schema.sheets[sheet]
    data = result.tables[sheet].data
    hit = data
    for k, v in zip(spec.key, key):
        hit = hit[hit[k].map(lambda x, v=v: isinstance(x, str) and x.casefold() == v.casefold())]
    assert len(hit) == 1, (sheet, key)
    return int(hit["_row"].iat[0])


# the finding each planted slip must produce, at the slip's own row (and cell, unless given)
EXPECTED_SLIP_RULES = {
    ("a", "outcomes", ("VDZWAN2019", "overall"), "n_evaluable"): {"evaluable-exceeds-enrolled"},
    ("a", "outcomes", ("CLEMENT2022", "overall"), "orr_pct"): {"percentage-itt-denominator"},
    ("a", "outcomes", ("BRABANDER2017", "overall"), "os_ci_low"): {"ci-bound-equals-median"},
    ("a", "studies", ("THANG2018",), "response_criteria"): {"unspecific-term"},
    ("a", "studies", ("EZZIDDIN2014",), "response_criteria"): {"ineligible-term"},
    ("b", "outcomes", ("BODEI2011", "overall"), "orr_pct"): {"percentage-mismatch"},
    ("b", "outcomes", ("BRABANDER2017", "overall"), "orr_pct"): {"percentage-itt-denominator"},
    ("b", "outcomes", ("CLEMENT2022", "overall"), "pfs_median"): {"median-outside-ci"},  # swapped with pfs_ci_low
    ("b", "studies", ("EZZIDDIN2014",), "response_criteria"): {"ineligible-term"},
}


def test_every_planted_slip_is_reported_at_its_cell(schema, results):
    cols = column_map(schema)
    slips = {"a": builder.SLIPS_A, "b": builder.SLIPS_B}
    planted = {(form, s, k, f) for form, d in slips.items() for (s, k, f) in d}
    # the one slip without a finding of its own is the other half of B's swap (reported at pfs_median)
    assert planted - set(EXPECTED_SLIP_RULES) == {("b", "outcomes", ("CLEMENT2022", "overall"), "pfs_ci_low")}
    for (form, sheet, key, field), rules in EXPECTED_SLIP_RULES.items():
        result = results[builder.FORM_A if form == "a" else builder.FORM_B]
        row = _row_of(result, sheet, key)
        cell = f"{sheet}!{cols[sheet][field]}{row}"
        got = {f.rule for f in result.finding_list if f.cell == cell}
        assert rules <= got, (form, cell, got)


def test_no_error_on_a_correct_row(schema, tmp_path):
    """The correct extraction (no slips, canonical spelling) has no error but the ineligible study's."""
    truth = builder.true_records(schema, builder.read_sources())
    recs = builder.reviewer_records(schema, truth, {}, {}, "XX")
    path = tmp_path / "consensus.xlsx"
    builder.write_form(schema, recs, builder.read_sources(), path)
    result = validate(path, schema)
    errors = [(f.rule, f.study_id) for f in result.finding_list if f.severity == "error"]
    assert errors == [("ineligible-term", "EZZIDDIN2014"), ("study-excluded", "EZZIDDIN2014")]
    warnings = {f.rule for f in result.finding_list if f.severity == "warning"}
    assert warnings == {"median-without-ci"}
    assert result.summary.rows_read == 34 and result.summary.rows_passed == 32
    # the clean dataset holds the figures of sources.csv
    clean = result.clean.set_index(["study_id", "cohort"])
    assert clean.loc[("CLEMENT2022", "overall"), "orr_pct"] == 40.3
    assert clean.loc[("CLEMENT2022", "overall"), "orr_events"] == 25
    assert clean.loc[("VDZWAN2019", "RR-PRRT"), "pfs_ci_high"] == 18.5
    assert bool(clean.loc[("NETTER2_2024", "overall"), "pfs_ci_high_nr"])


def _normalised(result, schema) -> dict[tuple[str, tuple], dict[str, object]]:
    out = {}
    for sheet, spec in schema.sheets.items():
        data = result.tables[sheet].data
        fields = [f for f, fs in spec.fields.items() if not fs.metadata]
        for i in range(len(data)):
            key = tuple(str(data[k].iat[i]).casefold() for k in spec.key)
            vals = {}
            for f in fields:
                v = data[f].iat[i]
                if isinstance(v, float) and math.isnan(v):
                    v = None
                if f + "__nr" in data and bool(data[f + "__nr"].iat[i]):
                    v = "NR"
                vals[f] = v.casefold() if isinstance(v, str) else v
            out[(sheet, key)] = vals
    return out


def test_a_and_b_differ_only_where_a_slip_was_planted(schema, results):
    a = _normalised(results[builder.FORM_A], schema)
    b = _normalised(results[builder.FORM_B], schema)
    assert a.keys() == b.keys()          # same records, in a different order
    diffs = {(sheet, key, f) for (sheet, key), va in a.items() for f, v in va.items() if b[(sheet, key)][f] != v}
    slips = {(s, tuple(x.casefold() for x in k), f) for d in (builder.SLIPS_A, builder.SLIPS_B) for (s, k, f) in d}
    # Ezziddin's criteria are the same term (mSWOG) in both: an ineligible study, not a disagreement
    slips.discard(("studies", ("ezziddin2014",), "response_criteria"))
    assert diffs == slips
    order_a = list(results[builder.FORM_A].tables["studies"].data["study_id"])
    order_b = list(results[builder.FORM_B].tables["studies"].data["study_id"])
    assert order_a != order_b and sorted(order_a) == sorted(order_b)


def test_styles_really_differ_as_typed():
    """The restyled cells hold different text in A and B (so reconciliation has normalising to do)."""
    wa = openpyxl.load_workbook(FORMS / builder.FORM_A)
    wb_ = openpyxl.load_workbook(FORMS / builder.FORM_B)
    def typed(wb, sheet):
        ws = wb[sheet]
        header = [c.value for c in ws[1]]
        return [dict(zip(header, (c.value for c in row))) for row in ws.iter_rows(min_row=2) if row[0].value]
    a = {(r["study_id"], r.get("cohort") or r.get("ae_term")): r for r in typed(wa, "outcomes")}
    b = {(r["study_id"], r.get("cohort") or r.get("ae_term")): r for r in typed(wb_, "outcomes")}
    assert a[("NETTER2_2024", "overall")]["os_median"] == "NR" and b[("NETTER2_2024", "Overall")]["os_median"] == "not reached"
    sa = {r["study_id"]: r for r in typed(wa, "studies")}
    sb = {r["study_id"]: r for r in typed(wb_, "studies")}
    assert (sa["NETTER1_2017"]["radiopharmaceutical"], sb["NETTER1_2017"]["radiopharmaceutical"]) == \
        ("Lutathera", "177Lu-DOTATATE")
    assert (sa["LIM2020"]["n_enrolled"], sb["LIM2020"]["n_enrolled"]) == (48, "48.0 ")
    assert (sa["CLEMENT2022"]["response_criteria"], sb["CLEMENT2022"]["response_criteria"]) == ("RECIST v1.1", "RECIST 1.1")


def test_committed_forms_are_what_the_script_builds(tmp_path):
    paths = builder.build(tmp_path)
    for p in paths:
        fresh = workbook_content(openpyxl.load_workbook(p))
        committed = workbook_content(openpyxl.load_workbook(FORMS / p.name))
        assert fresh == committed, f"{p.name} is out of date: run .venv/bin/python extraction_forms/build_examples.py"
        assert p.read_bytes() == (FORMS / p.name).read_bytes()   # deterministic bytes too


def test_script_is_self_contained():
    text = (FORMS / "build_examples.py").read_text(encoding="utf-8")
    assert "shared" not in text and "/work" not in text
    rows = builder.read_sources()
    assert {r["sheet"] for r in rows} == {"studies", "outcomes", "adverse_events"}
    assert all(r["source_url"].startswith("http") and r["where_in_source"] for r in rows)


def test_derived_counts_are_round_pct_times_n(schema):
    rows = builder.read_sources()
    derived = [r for r in rows if r["derivation"].startswith("derived")]
    assert len(derived) == 6
    for r in derived:
        m = re.match(r"derived: round\(([\d.]+) x (\d+) / 100\)", r["derivation"])
        pct, n = float(m.group(1)), int(m.group(2))
        assert int(r["value"]) == math.floor(pct * n / 100 + 0.5), r
    # every convention cr = 0 sits next to a reported or derived CR+PR total in pr
    by = {(r["study_id"], r["record"], r["field"]): r for r in rows}
    for r in rows:
        if r["derivation"].startswith("convention"):
            assert r["field"] == "cr" and r["value"] == "0"
            assert "CR+PR" in by[(r["study_id"], r["record"], "pr")]["derivation"]


@pytest.mark.parametrize("name", ["example_reviewer_a.xlsx", "example_reviewer_b.xlsx"])
def test_live_checks_colour_the_slips_in_the_example_forms(schema, results, name):
    wb_ = openpyxl.load_workbook(FORMS / name)
    result = results[name]
    form = "a" if name == builder.FORM_A else "b"
    cols = column_map(schema)
    for (f, sheet, key, field), _rules in EXPECTED_SLIP_RULES.items():
        if f != form:
            continue
        row = _row_of(result, sheet, key)
        got = colours(wb_, sheet, row)
        assert got.get(cols[sheet][field]) in ("red", "amber"), (sheet, key, field, got)
    # a row validate lets through has no red cell; a red cell is always on a row with an error
    error_rows = {(f.sheet, f.row) for f in result.finding_list if f.severity == "error"}
    for sheet, spec in schema.sheets.items():
        for row in result.tables[sheet].data["_row"]:
            red = [c for c, colour in colours(wb_, sheet, int(row)).items() if colour == "red"]
            if red:
                assert (sheet, int(row)) in error_rows, (sheet, row, red)

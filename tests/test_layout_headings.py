"""Group heading rows whose label ends in a parenthetical gloss (``GEP-NET (mixed sites)``): matched on the text
before it, said as info; a heading that matches nothing either way stays a warning (layouts.md v2, shape 6;
held-out report, item 10)."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from curation.layout.labels import label_candidates, paren_tail
from curation.schema import load_schema
from curation.validation import validate

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["Author (year)", "N", "Evaluable pts", "CR", "PR", "SD", "PD"]


def _grouped(path: Path, headings: list[str]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    ws.append(HEADER)
    rows = [["Brabander (2017)", 133, 133, 7, 66, 40, 20], ["Strosberg (2017)", 116, 101, 1, 17, 70, 13],
            ["Baum (2016)", 56, 56, 2, 20, 24, 10]]
    for heading, row in zip(headings, rows):
        ws.append([heading])
        ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=len(HEADER))
        ws.append(row)
    wb.save(path)
    return path


def test_paren_tail():
    assert paren_tail("GEP-NET (mixed sites)") == ("GEP-NET", "(mixed sites)")
    assert paren_tail("Pancreas [n=40]") == ("Pancreas", "[n=40]")
    assert paren_tail("Pancreatic NET") is None and paren_tail("(all)") is None


def test_a_heading_is_matched_without_its_trailing_parenthetical():
    schema = load_schema(ROOT / "schemas" / "prrt_177lu.yaml")
    assert label_candidates(schema, ["outcomes"], "GEP-NET (mixed sites)") == {"primary_site": "mixed"}
    assert label_candidates(schema, ["outcomes"], "GEP-NET (mixed sites)", tail=False) == {}
    assert label_candidates(schema, ["outcomes"], "Second centre (Zurich)") == {}


def test_group_headings_with_a_gloss_give_their_rows_the_value_and_say_how(tmp_path):
    r = validate(_grouped(tmp_path / "g.xlsx", ["Pancreatic NET (n=133)", "GEP-NET (mixed sites)",
                                                "Second centre (Zurich)"]))
    clean = r.clean.set_index("study_id")
    assert clean.loc["Brabander2017", "primary_site"] == "pancreas"
    assert clean.loc["Strosberg2017", "primary_site"] == "mixed"
    assert clean.loc["Baum2016", "primary_site"] in (None, "") or clean.loc["Baum2016", "primary_site"] != "mixed"
    info = {f.row: f.message for f in r.finding_list if f.rule == "inferred-layout" and "is a label" in f.message}
    assert "matched without its parenthetical '(mixed sites)'" in info[4] and "primary_site = mixed" in info[4]
    assert "matched without its parenthetical '(n=133)'" in info[2]
    heads = [(f.row, f.severity) for f in r.finding_list if f.rule == "group-heading"]
    assert heads == [(6, "warning")], [(f.rule, f.message) for f in r.finding_list]


@pytest.mark.parametrize("heading", ["Midgut NET (small bowel)", "Lung NET (bronchial carcinoids)"])
def test_the_layout_file_records_the_value_of_a_glossed_heading(tmp_path, heading):
    from curation.layout import map_form

    schema = load_schema(ROOT / "schemas" / "prrt_177lu.yaml")
    lay = map_form(_grouped(tmp_path / "g.xlsx", [heading, "Pancreatic NET", "Pancreatic NET"]), schema)
    labels = lay.sheets[0].labels
    assert labels[2] == {"primary_site": "midgut" if "Midgut" in heading else "lung"}


def test_a_heading_giving_two_names_of_one_term_takes_what_they_agree_on():
    # 'Mixed / GEP-NET': 'Mixed' names a grade and a site term, 'GEP-NET' only the site: the site is meant
    from curation.layout.labels import label_candidates
    from curation.schema import load_schema

    schema = load_schema(None)
    assert label_candidates(schema, ["outcomes"], "Mixed / GEP-NET") == {"primary_site": "mixed"}
    assert label_candidates(schema, ["outcomes"], "Pancreas / G3") == {}  # parts naming different fields: none

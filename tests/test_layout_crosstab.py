"""An adverse-event cross-tab (terms down, study x grade band across) whose cells say "not reported" (``–``,
``-``, ``NR``): no record from them, each accounted for as non-data with an info naming the cells (layouts.md v2,
shape 7; held-out report, item 11: they became adverse-event records with empty counts)."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from curation.validation import validate


def _crosstab(path: Path, marker: str) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Toxicity"
    ws.append(["Adverse event", "Brabander T 2017 (N=610) Grade 3-4", "Ezziddin S 2014 (N=68) Grade 3-4",
               "Kobayashi N 2021 (N=6) Grade 3-4"])
    ws.append(["AML", 4, marker, marker])
    ws.append(["MDS", 9, marker, marker])
    ws.append(["Nephrotoxicity", marker, 0, marker])  # a typed 0 is a count: a record
    ws.append(["Lymphopenia", marker, marker, 2])
    wb.save(path)
    return path


@pytest.mark.parametrize("marker", ["–", "-", "NR", "not reported"])
def test_not_reported_cells_of_a_crosstab_are_no_records_and_are_accounted_for(tmp_path, marker):
    r = validate(_crosstab(tmp_path / "ae.xlsx", marker))
    ae = r.tables["adverse_events"].data
    got = sorted(zip(ae["study_id"], ae["ae_term"], ae["grade3plus_n"]))
    assert got == [("BrabanderT2017", "AML", 4), ("BrabanderT2017", "MDS", 9), ("EzziddinS2014", "nephrotoxicity", 0),
                   ("KobayashiN2021", "lymphopenia", 2)], got
    acc = next(iter(r.summary.cells.values()))["Toxicity"]
    assert acc["read"] == 4 and acc["non_data"] == 8 and acc["not_read"] == 0
    said = [f for f in r.finding_list if f.rule == "inferred-layout" and "say not reported" in f.message]
    assert len(said) == 1 and said[0].severity == "info" and "8 cell(s)" in said[0].message
    assert "Toxicity!C2" in said[0].message and repr(marker) in said[0].message
    assert not [f for f in r.finding_list if f.rule in ("unread-data", "missing-required") and f.sheet == "Toxicity"]

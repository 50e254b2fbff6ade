"""One sheet per outcome (layouts.md v2, shape 5 with shape 2's roles; curation.layout.outcomesheets).

Sheets named ``ORR``, ``PFS``, ``OS`` with identical headers ``Study | Cohort | Grade | Primary site | n | N |
Estimate | 95% CI lower | 95% CI upper``: the sheet's name and the column's role name the field. The
workbooks are built with openpyxl here, as a team builds one; every figure is made up for the test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openpyxl

from curation.layout import load_layout, map_form
from curation.schema import load_schema
from curation.validation import validate

CURATE = str(Path(sys.executable).with_name("curate"))
STUDY_HEAD = ["Study", "Design", "Agent", "Patients treated"]
STUDIES = [["Alder 2015", "retrospective", "177Lu-DOTATATE", 80],
           ["Birch 2019", "phase II", "177Lu-DOTATOC", 40],
           ["Cedar 2021", "retrospective", "177Lu-DOTATATE", 120]]
HEAD = ["Study", "Cohort", "Grade", "Primary site", "n", "N", "Estimate", "95% CI lower", "95% CI upper"]
ORR = [["Alder 2015", "overall", "G1-2", "Pancreatic", 22, 70, 31.4, None, None],
       ["Birch 2019", "overall", None, "Small intestine", 9, 36, 25, None, None],
       ["Cedar 2021", "overall", None, "Pancreatic", 40, 110, 36.4, None, None]]
PFS = [["Alder 2015", "overall", "G1-2", "Pancreatic", None, None, 27.3, 21.5, 33.1],
       ["Cedar 2021", "overall", None, "Pancreatic", None, None, 19.8, 15.2, 24.4]]
OS = [["Alder 2015", "overall", "G1-2", "Pancreatic", None, None, 48.2, 40.1, 56.3],
      ["Birch 2019", "overall", None, "Small intestine", None, None, 39.5, 30.2, 47.7]]


def workbook(path: Path, orr=ORR, pfs=PFS, os_=OS, dcr=None) -> Path:
    wb = openpyxl.Workbook()
    sheets = [("Studies", STUDY_HEAD, STUDIES), ("ORR", HEAD, orr), ("PFS", HEAD, pfs), ("OS", HEAD, os_)]
    for k, (title, head, rows) in enumerate(sheets + ([("DCR", HEAD, dcr)] if dcr else [])):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = title
        for r, row in enumerate([head, *rows], 1):
            for c, v in enumerate(row, 1):
                ws.cell(r, c, v)
    wb.save(path)
    return path


def _outcomes(r):
    return r.tables["outcomes"].data.set_index(["study_id", "cohort"])


def _rows(rows, i, j, v):
    out = [list(x) for x in rows]
    out[i][j] = v
    return out


def test_each_sheet_name_and_role_name_the_field_and_sheets_join_by_study_and_cohort(tmp_path):
    r = validate(workbook(tmp_path / "per_outcome.xlsx"))
    o = _outcomes(r)
    assert len(o) == 3, o  # one record per study x cohort, whatever the number of sheets giving it
    a = o.loc[("Alder2015", "overall")]
    assert [a[f] for f in ("orr_n", "n_evaluable", "orr_pct")] == [22, 70, 31.4]
    assert [a[f] for f in ("pfs_median", "pfs_ci_low", "pfs_ci_high")] == [27.3, 21.5, 33.1]
    assert [a[f] for f in ("os_median", "os_ci_low", "os_ci_high")] == [48.2, 40.1, 56.3]
    assert a["primary_site"] == "pancreas"
    b = o.loc[("Birch2019", "overall")]
    assert b["orr_pct"] == 25 and b["os_median"] == 39.5 and b["pfs_median"] != b["pfs_median"]  # no PFS: NaN
    bad = [f for f in r.finding_list if f.severity != "info" and f.rule in (
        "duplicate-key", "unread-data", "missing-required", "block-conflict", "study-field-conflict")]
    assert not bad, [(f.rule, f.cell, f.message) for f in bad]
    # every value keeps its own worksheet and cell
    t = r.tables["outcomes"]
    i = list(zip(t.data["study_id"], t.data["cohort"])).index(("Alder2015", "overall"))
    assert (t.ref(i, "orr_pct"), t.ref(i, "pfs_median"), t.ref(i, "os_ci_high")) == ("ORR!G2", "PFS!G2", "OS!I2")
    # every cell of the outcome sheets is read or a header
    acc = next(iter(r.summary.cells.values()))
    assert acc["PFS"]["not_read"] == 0 and acc["ORR"]["not_read"] == 0, acc
    assert acc["PFS"]["read"] == 2 * 3 + 2 * 3 + 1  # study, cohort, site and three figures; Alder's grade


def test_a_finding_on_a_joined_value_cites_its_own_sheet(tmp_path):
    r = validate(workbook(tmp_path / "per_outcome.xlsx", pfs=_rows(PFS, 1, 6, 30.5)))  # median above its CI
    f = next(f for f in r.finding_list if f.rule == "median-outside-ci")
    assert f.sheet == "PFS" and f.cell.endswith("PFS!G3"), (f.sheet, f.cell)
    assert f.study_id == "Cedar2021"
    # an empty CI is named at its own sheet's cells, not at the first sheet's
    r = validate(workbook(tmp_path / "no_ci.xlsx", os_=_rows(_rows(OS, 1, 7, None), 1, 8, None)))
    w = next(f for f in r.finding_list if f.rule == "median-without-ci")
    assert "OS!H3" in w.message and "ORR!" not in w.message, w.message


def test_two_sheets_giving_one_field_different_values_is_a_conflict(tmp_path):
    # the DCR sheet gives Alder's N (n_evaluable) as 72, the ORR sheet as 70
    dcr = [["Alder 2015", "overall", "G1-2", "Pancreatic", 58, 72, 80.6, None, None]]
    r = validate(workbook(tmp_path / "per_outcome.xlsx", dcr=dcr))
    f = next(f for f in r.finding_list if f.rule == "block-conflict")
    assert f.severity == "error" and "ORR!F2" in f.message and "DCR!F2" in f.message, f.message
    assert _outcomes(r).loc[("Alder2015", "overall")]["n_evaluable"] == 70  # the first is kept, never a mix


def test_study_level_columns_that_disagree_between_sheets_are_a_warning(tmp_path):
    r = validate(workbook(tmp_path / "per_outcome.xlsx", os_=_rows(OS, 1, 3, "Pancreatic")))
    f = next(f for f in r.finding_list if f.rule == "study-field-conflict")
    assert f.severity == "warning" and "ORR!D3" in f.message and "OS!D3" in f.message, f.message
    assert _outcomes(r).loc[("Birch2019", "overall")]["primary_site"] == "small_intestine"


def test_a_figure_in_a_role_the_sheets_outcome_lacks_is_a_warning(tmp_path):
    r = validate(workbook(tmp_path / "per_outcome.xlsx", pfs=_rows(PFS, 0, 5, 72)))  # an N on the PFS sheet
    w = [f for f in r.finding_list if f.rule == "unread-data" and f.sheet == "PFS"]
    assert w and w[0].severity == "warning" and "PFS!F1" in w[0].message, [f.message for f in w]


def test_a_record_stated_twice_in_one_sheet_is_a_duplicate_key(tmp_path):
    r = validate(workbook(tmp_path / "per_outcome.xlsx", orr=[*ORR, list(ORR[1])]))
    dup = [f for f in r.finding_list if f.rule == "duplicate-key"]
    assert dup and dup[0].sheet == "ORR" and dup[0].row == 5, [(f.cell, f.message) for f in dup]


def test_an_outcome_sheet_of_an_outcome_the_schema_lacks_is_not_read_as_one(tmp_path):
    path = workbook(tmp_path / "per_outcome.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["OS"].title = "Quality of life"
    wb.save(path)
    r = validate(path)
    assert "os_median" not in r.tables["outcomes"].data or r.tables["outcomes"].data["os_median"].isna().all()
    assert any(f.rule == "unread-data" and f.sheet == "Quality of life" and f.severity == "warning"
               for f in r.finding_list)


def test_map_writes_the_sheet_name_as_the_outcome_and_layout_reads_it_back_the_same(tmp_path):
    path = workbook(tmp_path / "per_outcome.xlsx")
    lay = tmp_path / "layout.yaml"
    proc = subprocess.run([CURATE, "map", str(path), "-o", str(lay)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    layout = load_layout(lay)
    pfs = next(sl for sl in layout.sheets if sl.sheet == "PFS")
    assert pfs.shape == "long" and pfs.outcome_column is None
    assert pfs.outcomes == {"PFS": {"estimate": "pfs_median", "low": "pfs_ci_low", "high": "pfs_ci_high"}}
    assert pfs.roles == {"E": "events", "F": "total", "G": "estimate", "H": "low", "I": "high"}
    a = validate(path)
    b = validate(path, layout=layout)
    key = lambda r: sorted((f.rule, f.severity, f.cell or "", f.message) for f in r.finding_list)  # noqa: E731
    assert key(a) == key(b)
    assert a.clean.equals(b.clean)
    # the reviewer corrects the outcome: the sheet's entry names another one
    text = lay.read_text(encoding="utf-8")
    assert "outcomes:\n    PFS:" in text or "PFS: {estimate: pfs_median" in text, text
    m = map_form(path, load_schema(None))
    assert any(sl.sheet == "ORR" and sl.outcomes == {"ORR": {"events": "orr_n", "total": "n_evaluable",
                                                               "estimate": "orr_pct"}} for sl in m.sheets)

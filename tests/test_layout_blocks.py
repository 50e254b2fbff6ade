"""Stacked and side-by-side blocks (layouts.md v2, shape 4; curation.layout.blocks): several tables in one sheet,
each under its own title and header rows, each read as a table of its own.

Blocks giving different fields of the same records (a response block, a PFS block, an OS block) are joined by the
record's key, each value keeping its own cell; blocks giving the same fields under different titles (one block per
scale) are never pooled as one outcome: their titles are label values, or the blocks after the first are not read,
with a warning. Workbooks are built with openpyxl here as review teams build them; figures are NETTER-1's 177Lu arm
and Brabander 2017 (shared/data), and made-up values for the dyskinesia trials.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import openpyxl
import pytest

from curation.layout import load_layout, map_form
from curation.schema import load_schema
from curation.validation import validate

CURATE = str(Path(sys.executable).parent / "curate")

STUDIES = ("Study characteristics", ["Author (year)", "Design", "Agent", "N"],
           [["Strosberg (2017)", "RCT", "Lutathera", 116], ["Brabander (2017)", "retrospective", "177Lu-DOTATATE", 610]])
RESPONSE = ("Tumour response", ["Author (year)", "Subgroup", "Grade", "N evaluable", "CR", "PR", "SD", "PD"],
            [["Strosberg (2017)", "overall", "G1-2", 101, 1, 17, 70, 13],
             ["Brabander (2017)", "overall", "mixed", 443, 9, 164, 190, 80]])
PFS = ("Progression-free survival (months)", ["Author (year)", "Subgroup", "Median", "95% CI lower", "95% CI upper"],
       [["Strosberg (2017)", "overall", 28.4, 19.4, 35.8], ["Brabander (2017)", "overall", 29, 26, 33],
        ["Brabander (2017)", "Pancreatic NET", 30, 24, 36]])
OS = ("OS", ["Author (year)", "Subgroup", "Median", "Lower", "Upper"],
      [["Strosberg (2017)", "overall", 48, 37.4, 55.2], ["Brabander (2017)", "overall", 63, 55, 72]])


def _put(ws, r: int, c: int, rows) -> int:
    for row in rows:
        for j, v in enumerate(row):
            if v is not None:
                ws.cell(r, c + j, v)
        r += 1
    return r


def stacked(path: Path, blocks=(STUDIES, RESPONSE, PFS, OS), title: str = "Results", heading: str | None = None
            ) -> Path:
    """Blocks one below the other: a title, a header, the rows, a blank row (under the sheet's own heading and
    a blank row, if given)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    r = 1
    if heading:
        ws.cell(1, 1, heading)
        r = 3
    for name, header, rows in blocks:
        ws.cell(r, 1, name)
        r = _put(ws, r + 1, 1, [header, *rows]) + 1
    wb.save(path)
    return path


def side_by_side(path: Path, left=STUDIES, right=RESPONSE) -> Path:
    """Two blocks next to each other, an empty column between them."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Results"
    c = 1
    for name, header, rows in (left, right):
        ws.cell(1, c, name)
        _put(ws, 2, c, [header, *rows])
        c += len(header) + 1
    wb.save(path)
    return path


def _account(r, sheet):
    (cells,) = r.summary.cells.values()
    return cells[sheet]


def _rec(r, table, key):
    t = r.tables[table]
    keys = list(zip(*(t.data[k] for k in ("study_id", "cohort")))) if table == "outcomes" else list(t.data["study_id"])
    return t, keys.index(key)


def _serious(r, rule=None):
    return [f for f in r.finding_list if f.severity in ("error", "warning") and (rule is None or f.rule == rule)]


def test_blocks_of_different_fields_join_into_one_record_per_cohort(tmp_path):
    r = validate(stacked(tmp_path / "stacked.xlsx"))
    t, i = _rec(r, "outcomes", ("Strosberg2017", "overall"))
    row = t.data.iloc[i]
    assert (row["n_evaluable"], row["cr"], row["pr"], row["sd"], row["pd"]) == (101, 1, 17, 70, 13)
    assert (row["pfs_median"], row["pfs_ci_low"], row["pfs_ci_high"]) == (28.4, 19.4, 35.8)
    assert (row["os_median"], row["os_ci_low"], row["os_ci_high"]) == (48, 37.4, 55.2)
    # each value keeps its own block's cell: a finding on PFS cites the PFS block, not the response row
    assert t.ref(i, "cr") == "Results!E8" and t.ref(i, "pfs_median") == "Results!C13"
    assert t.ref(i, "os_median") == "Results!C19"
    # a cohort in one block only is kept as it is
    t, j = _rec(r, "outcomes", ("Brabander2017", "Pancreatic NET"))
    assert t.data.iloc[j]["pfs_median"] == 30 and t.data.iloc[j]["cr"] is None or \
        t.data.iloc[j]["cr"] != t.data.iloc[j]["cr"]  # None, or NaN
    assert len(t.data) == 3  # two overall records and the pancreatic one, never one per block row
    s = r.tables["studies"].data.set_index("study_id")
    assert s.loc["Strosberg2017", "n_enrolled"] == 116 and s.loc["Brabander2017", "design"] == "retrospective"
    assert not _serious(r, "duplicate-key") and not _serious(r, "unread-data") and not _serious(r, "block-conflict")
    acc = _account(r, "Results")
    # every cell accounted: 4 titles + 4 header rows are headers; every other filled cell is read
    assert acc["not_read"] == 0 and acc["non_data"] == 0
    assert acc["headers"] == 4 + sum(len(b[1]) for b in (STUDIES, RESPONSE, PFS, OS))
    assert acc["read"] == sum(len(x) for b in (STUDIES, RESPONSE, PFS, OS) for x in b[2])


def test_a_heading_above_the_blocks_is_the_sheets_not_a_block(tmp_path):
    r = validate(stacked(tmp_path / "stacked.xlsx", heading="Table 2. Results of the included studies"))
    t, i = _rec(r, "outcomes", ("Strosberg2017", "overall"))
    assert (t.data.iloc[i]["cr"], t.data.iloc[i]["os_median"]) == (1, 48)
    assert t.ref(i, "os_median") == "Results!C21"
    acc = _account(r, "Results")
    assert acc["not_read"] == 0 and acc["headers"] == 5 + sum(len(b[1]) for b in (STUDIES, RESPONSE, PFS, OS))
    assert not _serious(r, "unread-data")


def test_two_blocks_giving_one_field_of_one_record_different_values_is_an_error_naming_both_cells(tmp_path):
    pfs = (PFS[0], ["Author (year)", "Subgroup", "Grade", *PFS[1][2:]],
           [[*row[:2], g, *row[2:]] for row, g in zip(PFS[2], ["G3", "mixed", "mixed"])])
    r = validate(stacked(tmp_path / "conflict.xlsx", blocks=(STUDIES, RESPONSE, pfs, OS)))
    conflicts = _serious(r, "block-conflict")
    assert [(f.severity, f.cell) for f in conflicts] == [("error", "Results!C13")], [f.message for f in conflicts]
    assert "'G1-2' in Results!C8" in conflicts[0].message and "'G3' in Results!C13" in conflicts[0].message
    # the same grade in both blocks (Brabander's) is one value, not a conflict
    t, i = _rec(r, "outcomes", ("Brabander2017", "overall"))
    assert t.data.iloc[i]["grade"] == "mixed"


def test_map_writes_each_block_and_layout_reads_them_back_the_same(tmp_path):
    path = stacked(tmp_path / "stacked.xlsx")
    lay = tmp_path / "layout.yaml"
    proc = subprocess.run([CURATE, "map", str(path), "-o", str(lay)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    layout = load_layout(lay)
    blocks = [(sl.block.title, sl.block.rows, sl.block.columns, sl.block.join, tuple(sl.tables))
              for sl in layout.sheets]
    assert blocks == [("Study characteristics", [1, 4], ["A", "D"], False, ("studies",)),
                      ("Tumour response", [6, 9], ["A", "H"], True, ("outcomes",)),
                      ("Progression-free survival (months)", [11, 15], ["A", "E"], True, ("outcomes",)),
                      ("OS", [17, 20], ["A", "E"], True, ("outcomes",))]
    a = validate(path)
    b = validate(path, layout=layout)
    key = lambda r: sorted((f.rule, f.severity, f.cell or "", f.message) for f in r.finding_list)  # noqa: E731
    assert key(a) == key(b)
    assert a.clean.equals(b.clean)
    # a block the reviewer sets apart (join: false) is never joined: its records stay its own
    text = lay.read_text(encoding="utf-8").replace("\n    join: true\n", "\n    join: false\n", 1)
    lay.write_text(text, encoding="utf-8")
    c = validate(path, layout=load_layout(lay))
    assert len(c.tables["outcomes"].data) > len(a.tables["outcomes"].data)


def test_a_layout_whose_block_title_changed_is_refused(tmp_path):
    from curation.errors import UnusableInputError

    path = stacked(tmp_path / "stacked.xlsx")
    layout = map_form(path, load_schema(None))
    other = stacked(tmp_path / "other.xlsx", blocks=(STUDIES, RESPONSE, ("PFS", *PFS[1:]), OS))
    with pytest.raises(UnusableInputError, match="title of block 'Progression-free survival \\(months\\)'"):
        validate(other, layout=layout)


def test_side_by_side_blocks_are_each_read(tmp_path):
    r = validate(side_by_side(tmp_path / "side.xlsx"))
    s = r.tables["studies"].data.set_index("study_id")
    assert s.loc["Brabander2017", "n_enrolled"] == 610
    t, i = _rec(r, "outcomes", ("Strosberg2017", "overall"))
    assert t.data.iloc[i]["pr"] == 17 and t.ref(i, "pr") == "Results!K3"
    assert not _serious(r, "unread-data")
    acc = _account(r, "Results")
    assert acc["not_read"] == 0 and acc["headers"] == 2 + len(STUDIES[1]) + len(RESPONSE[1])


def test_side_by_side_blocks_of_different_fields_of_one_record_join(tmp_path):
    r = validate(side_by_side(tmp_path / "side.xlsx", left=RESPONSE, right=PFS))
    t, i = _rec(r, "outcomes", ("Brabander2017", "overall"))
    row = t.data.iloc[i]
    assert (row["cr"], row["pfs_median"], row["pfs_ci_high"]) == (9, 29, 33)
    assert t.ref(i, "pfs_median") == "Results!L4"


def test_figures_outside_every_block_are_a_warning(tmp_path):
    path = stacked(tmp_path / "stacked.xlsx")
    wb = openpyxl.load_workbook(path)
    wb.active.cell(3, 12, 4.2)  # a lone figure, in a column no block has
    wb.save(path)
    r = validate(path)
    unread = _serious(r, "unread-data")
    assert [(f.severity, f.cell) for f in unread] == [("warning", "Results!L3")], [f.message for f in unread]
    assert _account(r, "Results")["not_read"] == 1


# ---------------------------------------------------------------------------------------------------------------
# The real RCT review's shape (issue 18): outcome blocks one per scale, each under a title naming its scale, the
# same columns in each (Study | Mean | SD | N for the drug arm and for placebo). Values are made up.
# ---------------------------------------------------------------------------------------------------------------
DYSKINESIA = """
name: dyskinesia_trials
title: Amantadine against placebo for levodopa-induced dyskinesia
vocabularies:
  scale:
    terms:
      - {value: UPDRS IV, aliases: [MDS-UPDRS part IV, UPDRS part IV]}
      - {value: UDysRS, aliases: [Unified Dyskinesia Rating Scale]}
      - {value: AIMS, aliases: [Abnormal Involuntary Movement Scale]}
sheets:
  trials:
    key: [study_id, scale]
    fields:
      study_id: {type: text, required: true, aliases: [Study, Trial]}
      first_author: {type: text}
      year: {type: integer, min: 1980, max: current_year + 1}
      scale: {type: vocabulary, vocabulary: scale, required: true}
      mean_drug: {type: number, min: 0, aliases: [Amantadine Mean, Drug Mean]}
      sd_drug: {type: number, min_exclusive: 0, aliases: [Amantadine SD, Drug SD]}
      n_drug: {type: integer, min: 1, aliases: [Amantadine N, Drug N]}
      mean_placebo: {type: number, min: 0, aliases: [Placebo Mean]}
      sd_placebo: {type: number, min_exclusive: 0, aliases: [Placebo SD]}
      n_placebo: {type: integer, min: 1, aliases: [Placebo N]}
analysis:
  sheet: trials
  cohort_field: scale
  outcomes:
    dyskinesia:
      label: Dyskinesia severity
      kind: continuous
      means: [mean_drug, mean_placebo]
      sds: [sd_drug, sd_placebo]
      totals: [n_drug, n_placebo]
      direction: lower_is_better
  subgroups:
    scale: {label: Rating scale, field: scale}
  plan:
    - {outcome: dyskinesia, measure: SMD, subgroup: scale}
"""

#: made-up trials (Study, drug mean, SD, N, placebo mean, SD, N) for each scale's block
SCALES = {
    "UPDRS IV": [["Pahwa (2017)", 4.1, 2.2, 63, 5.3, 2.4, 58], ["Oertel (2017)", 4.6, 2.9, 38, 5.9, 3.1, 37],
                 ["Elmer (2018)", 3.8, 2.0, 41, 4.4, 2.3, 40]],
    "UDysRS": [["Pahwa (2017)", 21.3, 11.8, 63, 31.4, 12.9, 58], ["Oertel (2017)", 26.7, 13.2, 38, 34.0, 14.1, 37],
               ["Elmer (2018)", 19.9, 10.5, 41, 27.3, 11.0, 40]],
    "AIMS": [["Pahwa (2017)", 6.2, 3.9, 63, 8.9, 4.4, 58], ["Oertel (2017)", 7.4, 4.1, 38, 9.0, 4.6, 37]],
}


def scale_blocks(path: Path, scales=SCALES, side: bool = False, one_row: bool = False) -> Path:
    """One block per scale: its title, a row naming the arms over their columns, the header, the trials; one
    below the other (a blank row between), or side by side (an empty column between). ``one_row``: the arms
    named in the header row itself (``Amantadine Mean``), no row above it."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Efficacy outcomes"
    r, c = 1, 1
    for title, rows in scales.items():
        ws.cell(r, c, title)
        if one_row:
            end = _put(ws, r + 1, c, [["Study", *(f"{arm} {x}" for arm in ("Amantadine", "Placebo")
                                                   for x in ("Mean", "SD", "N"))], *rows])
            c, r = (c + 8, r) if side else (c, end + 1)
            continue
        ws.cell(r + 1, c + 1, "Amantadine")
        ws.cell(r + 1, c + 4, "Placebo")
        ws.merge_cells(start_row=r + 1, start_column=c + 1, end_row=r + 1, end_column=c + 3)
        ws.merge_cells(start_row=r + 1, start_column=c + 4, end_row=r + 1, end_column=c + 6)
        end = _put(ws, r + 2, c, [["Study", "Mean", "SD", "N", "Mean", "SD", "N"], *rows])
        if side:
            c += 8
        else:
            r = end + 1
    wb.save(path)
    return path


@pytest.fixture
def dyskinesia(tmp_path):
    p = tmp_path / "dyskinesia.yaml"
    p.write_text(textwrap.dedent(DYSKINESIA), encoding="utf-8")
    return load_schema(p)


@pytest.mark.parametrize(("side", "one_row"), [(False, False), (True, False), (False, True), (True, True)],
                         ids=["stacked", "side_by_side", "stacked_one_header_row", "side_by_side_one_header_row"])
def test_scale_blocks_are_three_groups_each_named_by_its_title(tmp_path, dyskinesia, side, one_row):
    r = validate(scale_blocks(tmp_path / "rct.xlsx", side=side, one_row=one_row), dyskinesia)
    t = r.tables["trials"].data
    got = {(sid, sc): (m, n) for sid, sc, m, n in zip(t["study_id"], t["scale"], t["mean_drug"], t["n_placebo"])}
    want = {(f"{row[0].split()[0]}{row[0][-5:-1]}", scale): (row[1], row[6]) for scale, rows in SCALES.items()
            for row in rows}
    assert got == want  # every block read, each row with its own block's scale: three groups
    assert not _serious(r, "duplicate-key") and not _serious(r, "unread-data"), [f.message for f in _serious(r)]
    acc = _account(r, "Efficacy outcomes")
    assert acc["not_read"] == 0 and acc["read"] == sum(len(rows) * 7 for rows in SCALES.values())
    assert acc["headers"] == len(SCALES) * (1 + 7 + (0 if one_row else 2))


def test_no_analysis_takes_rows_of_two_scales_as_one(tmp_path, dyskinesia):
    """Each scale's rows are a group of their own: an analysis pooling one scale never takes another's rows, and
    a row an analysis does not take is listed with its reason (never dropped in silence)."""
    from curation.analyses import run_plan
    from curation.validation import clean_dataset

    r = validate(scale_blocks(tmp_path / "rct.xlsx"), dyskinesia)
    clean = clean_dataset(dyskinesia, r.tables, r.selection.passed, r.selection)
    analyses = run_plan(dyskinesia, clean)
    assert analyses
    for a in analyses:
        scales = {row.group for row in a.taken}
        assert None not in scales and scales <= set(SCALES), (a.id, scales)
        if a.role != "subgroup_test":  # a test between subgroups compares them; every other pools one scale
            assert len(scales) == 1, (a.id, scales)
        # every row of the form is taken or left out with a reason
        seen = {(row.study_id, row.group) for row in a.taken} | {(row.study_id, row.group) for row in a.left_out
                                                                 if row.reason}
        if a.role == "subgroup_test":
            assert len(seen) == sum(len(rows) for rows in SCALES.values()), (a.id, sorted(seen))
    by_group = {a.group: a for a in analyses if a.role == "subgroup"}
    for scale, a in by_group.items():
        assert {row.group for row in a.taken} == {scale}


@pytest.mark.parametrize("one_row", [False, True], ids=["arms_above", "one_header_row"])
def test_scale_blocks_whose_titles_name_no_field_are_never_pooled_together(tmp_path, one_row):
    """The review's schema has no scale field: the first block is read, the two others are not, each with a
    warning naming it (never their rows pooled into the first scale's analysis)."""
    schema_text = textwrap.dedent(DYSKINESIA).replace("key: [study_id, scale]", "key: [study_id]")
    schema_text = schema_text.replace("      scale: {type: vocabulary, vocabulary: scale, required: true}\n", "")
    schema_text = schema_text.replace("  cohort_field: scale\n", "").replace(
        "  subgroups:\n    scale: {label: Rating scale, field: scale}\n", "").replace(", subgroup: scale", "")
    p = tmp_path / "noscale.yaml"
    p.write_text(schema_text, encoding="utf-8")
    r = validate(scale_blocks(tmp_path / "rct.xlsx", one_row=one_row), load_schema(p))
    t = r.tables["trials"].data
    assert sorted(zip(t["study_id"], t["mean_drug"])) == sorted(
        (f"{row[0].split()[0]}{row[0][-5:-1]}", row[1]) for row in SCALES["UPDRS IV"])
    unread = _serious(r, "unread-data")
    assert len(unread) == 2 and all(f.severity == "warning" and "never pooled" in f.message for f in unread), \
        [f.message for f in unread]
    assert "UDysRS" in unread[0].message and "AIMS" in unread[1].message
    if not one_row:
        assert [f.cell for f in unread] == ["'Efficacy outcomes'!A8", "'Efficacy outcomes'!A15"]
    acc = _account(r, "Efficacy outcomes")
    assert acc["read"] == len(SCALES["UPDRS IV"]) * 7
    if not one_row:  # the blocks' titles, arms and headers are not read either
        assert acc["not_read"] == sum(len(rows) * 7 + 10 for s, rows in SCALES.items() if s != "UPDRS IV")
    else:
        assert acc["not_read"] == sum(len(rows) * 7 for s, rows in SCALES.items() if s != "UPDRS IV")


@pytest.mark.parametrize("with_scale", [True, False])
def test_map_then_layout_reads_scale_blocks_the_same(tmp_path, dyskinesia, with_scale):
    path = scale_blocks(tmp_path / "rct.xlsx")
    schema = dyskinesia
    if not with_scale:
        text = textwrap.dedent(DYSKINESIA).replace("key: [study_id, scale]", "key: [study_id]").replace(
            "      scale: {type: vocabulary, vocabulary: scale, required: true}\n", "").replace(
            "  cohort_field: scale\n", "").replace("  subgroups:\n    scale: {label: Rating scale, field: scale}\n",
                                                   "").replace(", subgroup: scale", "")
        (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
        schema = load_schema(tmp_path / "s.yaml")
    layout = map_form(path, schema)
    assert [sl.block.read for sl in layout.sheets] == [True, with_scale, with_scale]
    assert [sl.block.labels for sl in layout.sheets] == ([{"scale": s} for s in SCALES] if with_scale else [{}] * 3)
    lay = tmp_path / "layout.yaml"
    lay.write_text(layout.to_yaml(), encoding="utf-8")
    a = validate(path, schema)
    b = validate(path, schema, layout=load_layout(lay))
    key = lambda r: sorted((f.rule, f.severity, f.cell or "", f.message) for f in r.finding_list)  # noqa: E731
    assert key(a) == key(b)
    assert a.clean.equals(b.clean)


def test_a_record_twice_in_a_block_is_not_joined_twice_but_reported(tmp_path):
    pfs = (PFS[0], PFS[1], [*PFS[2], PFS[2][0]])  # Strosberg's PFS row typed twice
    r = validate(stacked(tmp_path / "twice.xlsx", blocks=(STUDIES, RESPONSE, pfs, OS)))
    dup = _serious(r, "duplicate-key")
    assert dup and all(f.severity == "error" for f in dup), [f.message for f in _serious(r)]


def test_text_outside_every_block_is_reported_once_as_info(tmp_path):
    path = stacked(tmp_path / "stacked.xlsx")
    wb = openpyxl.load_workbook(path)
    wb.active.cell(3, 12, "NR = not reached")  # a legend beside the blocks
    wb.save(path)
    r = validate(path)
    assert not _serious(r, "unread-data")
    notes = [f for f in r.finding_list if f.cell == "Results!L3"]
    assert [(f.rule, f.severity) for f in notes] == [("inferred-layout", "info")], [f.message for f in notes]
    assert _account(r, "Results")["not_read"] == 1

"""Acceptance tests for reviewers' own spreadsheets (issue 13), written from the contract alone.

Source of truth: the shared spec ``layouts.md`` (what a reviewer's workbook may look like and what
``curate`` must never do), ``extraction-form.md`` (fields, rules, severities, the findings JSON and what
passes) and ``cli.md`` (exit codes, the clean CSV). Nothing here was derived from the project's reading
or normalising code: these tests play the part of a held-out test set.

Each test builds, with openpyxl in ``tmp_path``, one realistic team spreadsheet of one kind, with PRRT
figures taken from (or made consistent with) ``/work/shared/data/*.csv`` and a few planted reviewer's
slips, runs the real ``curate`` of this venv through ``subprocess`` and asserts:

- the exit code;
- every planted error is reported at the right row (and, where the contract fixes it, the right cell
  and the sheet name as the workbook spells it); the rule family is enough where the contract leaves
  the code open;
- the clean CSV holds exactly the data rows, with the values a reviewer meant, checked one by one;
- no Total / notes / header row is read as data;
- at most one false error per workbook.

Where the contract is unclear the reading a reviewer would expect was chosen; each such choice says so
in a comment marked ``READING:``.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import openpyxl
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill

CURATE = str(Path(sys.executable).parent / "curate")
ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "prrt_177lu.yaml"
YELLOW = PatternFill("solid", fgColor="FFFF00")
GREY = PatternFill("solid", fgColor="D9D9D9")


# ---------------------------------------------------------------------------------------------------
# Running the command line and reading what it wrote
# ---------------------------------------------------------------------------------------------------
@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    findings: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    clean: list[dict] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [ln for ln in (self.stdout + "\n" + self.stderr).splitlines() if ln.strip()]

    def on_row(self, sheet: str, row: int) -> list[dict]:
        return [f for f in self.findings if f.get("sheet") == sheet and f.get("row") == row]

    def errors(self) -> list[dict]:
        return [f for f in self.findings if f.get("severity") == "error"]

    def dump(self, sheet: str | None = None, row: int | None = None) -> str:
        fs = [f for f in self.findings if (sheet is None or f.get("sheet") == sheet)
              and (row is None or f.get("row") == row)]
        head = f"exit {self.code}; stderr: {self.stderr.strip()[-400:]!r}\n"
        return head + "\n".join(
            f"  {f.get('severity')} {f.get('sheet')}!{f.get('column')}{f.get('row')} {f.get('rule')} "
            f"field={f.get('field')}: {str(f.get('message'))[:160]}" for f in fs[:60])


def curate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CURATE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=180)


def validate(form: Path, tmp_path: Path, *extra: str, tag: str = "") -> Result:
    """``curate validate FORM --json F --clean C [extra]``, with the JSON and CSV read back."""
    out_json = tmp_path / f"{form.stem}{tag}.findings.json"
    out_csv = tmp_path / f"{form.stem}{tag}.clean.csv"
    for p in (out_json, out_csv):
        p.unlink(missing_ok=True)
    proc = curate("validate", form, "--json", out_json, "--clean", out_csv, *extra, cwd=tmp_path)
    res = Result(proc.returncode, proc.stdout, proc.stderr)
    if out_json.exists():
        doc = json.loads(out_json.read_text(encoding="utf-8"))
        res.findings, res.summary = doc.get("findings", []), doc.get("summary", {})
    if out_csv.exists():
        with out_csv.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        # the records without an error, on their row or their study's row: an error keeps a record out of
        # the analyses that use a field it involves only, so the clean CSV holds the others too, with
        # in_<analysis> columns (docs/exclusions.md); these tests are about reading, not selection
        errs = [f for f in res.findings if f.get("severity") == "error" and f.get("row")]
        bad = {(f.get("sheet"), str(f.get("row"))) for f in errs}
        bad_studies = {str(f.get("study_id")) for f in errs if f.get("table") == "studies" and f.get("study_id")}
        res.clean = [r for r in rows if (r.get("sheet"), str(r.get("row"))) not in bad
                     and str(r.get("study_id")) not in bad_studies]
    return res


def one_line_refusal(res: Result) -> str:
    assert res.code == 2, f"expected exit 2 (unusable input), got {res.code}\n{res.dump()}"
    assert "Traceback" not in res.stdout + res.stderr, res.stderr[-2000:]
    assert len(res.lines) == 1, f"exit 2 must come with ONE line, got {len(res.lines)}:\n" + "\n".join(res.lines[:20])
    return res.lines[0]


# ---------------------------------------------------------------------------------------------------
# Assertions on findings and clean data
# ---------------------------------------------------------------------------------------------------
def assert_planted(res: Result, sheet: str, row: int, *, families: Iterable[str] = (), column: str | None = None,
                   field_: str | None = None, what: str = "") -> dict:
    """An error at (sheet, row) whose rule code contains one of ``families`` (any rule when empty), at
    ``column`` and for ``field_`` when given. Returns the finding."""
    families = tuple(families)
    cands = [f for f in res.on_row(sheet, row) if f.get("severity") == "error"
             and (not families or any(s in str(f.get("rule")) for s in families))
             and (field_ is None or f.get("field") == field_)]
    if not cands:
        elsewhere = [f for f in res.findings if f.get("row") == row and f.get("sheet") != sheet
                     and f.get("severity") == "error" and (field_ is None or f.get("field") == field_)
                     and (not families or any(x in str(f.get("rule")) for x in families))]
        hint = (f"\nNOTE: an error like it is at row {row} under sheet {elsewhere[0].get('sheet')!r}, but the "
                f"workbook names the sheet {sheet!r} (findings cite the workbook's own sheet names)"
                if elsewhere else "")
        raise AssertionError(f"planted error not reported: {what} (expected an error at {sheet!r} row {row}, rule "
                             f"like {families}, field {field_}){hint}\nfindings on that row:\n{res.dump(sheet, row)}"
                             f"\nall findings:\n{res.dump()}")
    if column is not None:
        at_cell = [f for f in cands if f.get("column") == column]
        assert at_cell, (f"planted error {what} reported at the wrong cell: expected {sheet}!{column}{row}\n"
                         f"{res.dump(sheet, row)}")
        cands = at_cell
    return cands[0]


def assert_cites_sheet(f: dict, sheet: str, column: str, row: int) -> None:
    """The message cites the cell the way the workbook spells its sheet: ``'Data extraction'!M7``
    (quotes optional for a one-word sheet name, as Excel writes it)."""
    msg = str(f.get("message", "")) + " " + str(f.get("cell", ""))
    cell = f"{column}{row}"
    forms = {f"'{sheet}'!{cell}", f"{sheet}!{cell}"} if " " not in sheet else {f"'{sheet}'!{cell}"}
    assert any(x in msg for x in forms), f"finding should cite {sorted(forms)}: {f}"


def false_errors(res: Result, planted: set[tuple[str, int]]) -> list[dict]:
    return [f for f in res.errors() if (f.get("sheet"), f.get("row")) not in planted]


def assert_at_most_one_false_error(res: Result, planted: set[tuple[str, int]]) -> None:
    extra = false_errors(res, planted)
    assert len(extra) <= 1, "more than one false error:\n" + "\n".join(
        f"  {f.get('sheet')}!{f.get('column')}{f.get('row')} {f.get('rule')}: {f.get('message')}" for f in extra)


def assert_non_data_row(res: Result, sheet: str, row: int, what: str, *, exactly_once: bool = True) -> None:
    """A Total / notes / repeated header row: reported once, as info, at its row; never an error; never
    in the clean data."""
    fs = res.on_row(sheet, row)
    bad = [f for f in fs if f.get("severity") in ("error", "warning")]
    assert not bad, f"{what} (row {row}) was read as data:\n{res.dump(sheet, row)}"
    infos = [f for f in fs if f.get("severity") == "info"]
    assert infos, f"{what} (row {row}) must be reported as info at its row\n{res.dump(sheet)}"
    if exactly_once:
        assert len(fs) == 1, f"{what} (row {row}) must be reported once, got {len(fs)}:\n{res.dump(sheet, row)}"
    in_clean = [r for r in res.clean if r.get("sheet") == sheet and str(r.get("row")) == str(row)]
    assert not in_clean, f"{what} (row {row}) is in the clean data: {in_clean}"


def num(text: Any) -> float | None:
    if text is None or str(text).strip() == "":
        return None
    return float(str(text))


def clean_by_key(res: Result) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    for r in res.clean:
        key = (r.get("study_id", ""), r.get("cohort", ""))
        assert key not in out, f"clean data hold {key} twice: {r}"
        out[key] = r
    return out


def assert_clean_rows(res: Result, expected: dict[tuple[str, str], dict], *, sheet: str | None = None,
                      tol: float = 1e-9) -> None:
    """The clean CSV holds exactly the expected records, each value as the reviewer meant it."""
    got = clean_by_key(res)
    assert set(got) == set(expected), (f"clean data should hold exactly {sorted(expected)}, hold {sorted(got)}"
                                       f"\n{res.dump()}")
    problems = []
    for key, want in expected.items():
        row = got[key]
        for col, value in want.items():
            if col not in row:
                problems.append(f"{key}: column {col} missing from the clean CSV")
                continue
            have = row[col]
            if value is None:
                if str(have).strip() != "":
                    problems.append(f"{key} {col}: expected empty, clean has {have!r}")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                try:
                    ok = num(have) is not None and abs(num(have) - value) <= tol
                except ValueError:
                    ok = False
                if not ok:
                    problems.append(f"{key} {col}: expected {value}, clean has {have!r}")
            elif str(have) != str(value):
                problems.append(f"{key} {col}: expected {value!r}, clean has {have!r}")
        if sheet is not None and row.get("sheet") != sheet:
            problems.append(f"{key}: provenance sheet {row.get('sheet')!r}, expected {sheet!r}")
    assert not problems, "clean values not as the reviewer meant them:\n  " + "\n  ".join(problems)


def letter(i: int) -> str:
    return openpyxl.utils.get_column_letter(i)


# ---------------------------------------------------------------------------------------------------
# Kind 1: one wide sheet "Data extraction"
# ---------------------------------------------------------------------------------------------------
WIDE_HEADERS = ["ID", "Author (year)", "Country", "Design", "Radiopharmaceutical", "Response criteria", "N",
                "Evaluable", "CR", "PR", "SD", "PD", "ORR, n (%)", "ORR (%)", "DCR, n (%)",
                "mPFS, months (95% CI)", "mOS, months (95% CI)", "Grade", "Primary site", "DOI", "Comments"]
# READING: the contract does not say how a study_id is made for a sheet that has only "Author (year)"; this
# sheet has an ID column, as most teams number their studies. The author column uses the three spellings
# layouts.md lists (`Bodei (2011)`, `van der Zwan 2019`, `Sundlöv et al., 2022`): the clean first_author is the
# surname alone and the year an integer.
# A ID, B Author (year), ... I-L under the merged group "Response (RECIST)", M "ORR, n (%)", N the hidden
# helper "ORR (%)", O "DCR, n (%)", P mPFS, Q mOS, R Grade, S Primary site, T DOI, U Comments.
WIDE_DATA = [
    # ID, author (year), country, design, agent, criteria, N, evaluable, CR, PR, SD, PD, ORR n(%), helper ORR%,
    # DCR n(%), mPFS, mOS, grade, site, DOI, comments
    ["S01", "Bodei (2011)", "Italy", "Phase I-II", "177Lu-DOTATATE", "RECIST v1.1", 51, 46, 1, 14, 26, 5,
     "15 (32.6)", 29.4, "41 (89.1)", "30.9 (22.7–39.0)", "51.9 (40.0–63.7)", "G1-3", "GEP",
     "10.1007/s00259-011-1902-1", "phase I-II dose escalation; CR+PR 15 of 46"],
    # planted: ORR 173/443 is 39.1%, typed 34.1 -> 'Data extraction'!M7
    ["S02", "Brabander (2017)", "Netherlands", "Retrospective cohort", "177Lu-octreotate", "RECIST 1.1", 610, 443,
     9, 164, 190, 80, "173 (34.1)", 28.4, "363 (81.9)", "29.0 (26.0–33.0)", "63.0 (55.0–72.0)", "G1/G2", "GEP",
     "10.1158/1078-0432.CCR-16-2743", None],
    # planted: PD 19 (paper: 9) -> CR+PR+SD+PD = 72 > 62 evaluable
    ["S03", "Clement (2022)", "Multinational", "Retrospective", "[177Lu]Lu-DOTATATE", "RECIST 1.1", 110, 62,
     2, 23, 28, 19, "25 (40.3)", 22.7, "53 (85.5)", "24.8 (17.5–34.5)", "41.4 (28.6–50.2)", "G1-2", "pNET",
     "10.1007/s00259-022-05771-3", "NETTER-R pancreatic"],
    # planted: median PFS 38.4 outside its own CI 19.4-35.8 (paper: 28.4) -> P9
    ["S04", "Strosberg (2017)", "USA", "Phase III RCT", "Lutathera", "RECIST 1.1", 116, 101, 1, 17, 70, 13,
     "18 (17.8)", 15.5, "88 (87.1)", "38.4 (19.4–35.8)", "48.0 (37.4–55.2)", "G1/G2", "Midgut",
     "10.1056/NEJMoa1607427", "NETTER-1 177Lu arm"],
    # planted: grade G4 -> R10
    ["S05", "Unal (2023)", "Turkey", "Retrospective", "177Lu-DOTATATE", "RECIST 1.1", 73, 71, 0, 21, 26, 24,
     "21 (29.6)", 28.8, "47 (66.2)", "13.7", "51.2", "G4", "GEP", "10.14744/ejmo.2023.48337", None],
    # planted: DOI typo 10.715/... (one digit lost) -> T11
    ["S06", "Baum (2016)", "Germany", "Retrospective", "177Lu-DOTATOC", "RECIST 1.1", 56, 56, 1, 18, 18, 19,
     "19 (33.9)", 33.9, "37 (66.1)", "17.4", "34.2", "NR", "GEP", "10.715/thno.13702", None],
    ["S07", "van der Zwan 2019", "Netherlands", "Retrospective", "177Lu-DOTA-TATE", "RECIST 1.1", 168, 168,
     0, 26, 100, 42, "26 (15.5)", 15.5, "126 (75.0)", "14.6 (12.4–16.9)", None, "G1-2", "GEP", None,
     "salvage R-PRRT"],
    ["S08", "Sundlöv et al., 2022", "Sweden", "Phase II", "177Lu-DOTATATE", "RECIST 1.1", 96, 96, 0, 15, 60, 21,
     "15 (15.6)", 15.6, "75 (78.1)", "29.0", "47.0", "G1-3", "GEP", None, "dosimetry-based"],
    # planted: the n of 'ORR, n (%)' is 44 (and 44/68 = 64.7%) but CR+PR = 0+41 -> an error on row 14
    ["S09", "Ezziddin (2014)", "Germany", "Retrospective", "177Lu-DOTATATE", "RECIST 1.1", 68, 68, 0, 41, 9, 18,
     "44 (64.7)", 60.3, "50 (73.5)", "34.0 (26.0–42.0)", "53.0 (46.0–60.0)", "G1/G2", "pNET",
     "10.1007/s00259-013-2677-3", "pancreatic G1/2"],
]
WIDE_SHEET = "Data extraction"
WIDE_FIRST = 6              # first data row (title 1, subtitle 2, blank 3, header rows 4-5)
WIDE_TOTAL = WIDE_FIRST + len(WIDE_DATA)    # the Total row (15)
WIDE_NOTES = WIDE_TOTAL + 1                 # the merged notes row
WIDE_SOURCE = WIDE_TOTAL + 2                # a source line
WIDE_PLANTED = {7: "percentage", 8: "sum", 9: "median outside CI", 10: "G4", 11: "DOI typo", 14: "ORR n vs CR+PR"}


def build_wide(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = WIDE_SHEET
    last = letter(len(WIDE_HEADERS))
    ws["A1"] = "177Lu-PRRT in neuroendocrine tumours: data extraction"
    ws["A1"].font = Font(bold=True, size=14)
    ws.merge_cells(f"A1:{last}1")
    ws["A2"] = "Extraction AB, verification CD; version 3 (March 2024). One row per study (whole cohort)."
    ws.merge_cells(f"A2:{last}2")
    # row 3 blank; header rows 4-5: single columns merged vertically, the response group merged across
    for i, h in enumerate(WIDE_HEADERS, start=1):
        col = letter(i)
        if col in "IJKL":
            ws[f"{col}5"] = h
        else:
            ws[f"{col}4"] = h
            ws.merge_cells(f"{col}4:{col}5")
        for r in (4, 5):
            ws[f"{col}{r}"].fill = GREY
            ws[f"{col}{r}"].font = Font(bold=True)
    ws["I4"] = "Response (RECIST)"
    ws.merge_cells("I4:L4")
    ws["M4"].comment = Comment("n = CR + PR; % of evaluable patients", "AB")
    for r, values in enumerate(WIDE_DATA, start=WIDE_FIRST):
        for c, v in enumerate(values, start=1):
            ws.cell(row=r, column=c, value=v)
    ws[f"T{WIDE_FIRST + 5}"].comment = Comment("check the journal page", "CD")
    ws[f"R{WIDE_FIRST + 4}"].fill = YELLOW
    # Total row: label in the author column, the counts summed
    rows = WIDE_DATA
    ws[f"B{WIDE_TOTAL}"] = "Total"
    for col, idx in zip("GHIJKL", range(6, 12)):
        ws[f"{col}{WIDE_TOTAL}"] = sum(r[idx] for r in rows)
    ev = sum(r[7] for r in rows)
    orr_n = sum(r[8] + r[9] for r in rows)
    dcr_n = sum(r[8] + r[9] + r[10] for r in rows)
    ws[f"M{WIDE_TOTAL}"] = f"{orr_n} ({100 * orr_n / ev:.1f})"
    ws[f"O{WIDE_TOTAL}"] = f"{dcr_n} ({100 * dcr_n / ev:.1f})"
    for c in range(1, len(WIDE_HEADERS) + 1):
        ws.cell(row=WIDE_TOTAL, column=c).font = Font(bold=True)
    ws[f"A{WIDE_NOTES}"] = ("Notes: ORR, objective response rate (CR + PR); DCR, disease control rate (CR + PR + SD); "
                           "mPFS/mOS, median progression-free/overall survival; CI, confidence interval; NR, not "
                           "reported. Percentages of evaluable patients.")
    ws.merge_cells(f"A{WIDE_NOTES}:{last}{WIDE_NOTES}")
    ws[f"A{WIDE_SOURCE}"] = "Source: full texts and supplements, searched 12 March 2024."
    ws.column_dimensions["N"].hidden = True       # the reviewer's own ORR calculation (of N enrolled)
    ws.freeze_panes = "C6"
    ws.auto_filter.ref = f"A5:{last}{WIDE_FIRST + len(WIDE_DATA) - 1}"
    wb.save(path)
    return path


WIDE_EXPECTED = {
    ("S01", "overall"): dict(first_author="Bodei", year=2011, country="Italy", design="prospective",
                             radiopharmaceutical="177Lu-DOTATATE", response_criteria="RECIST 1.1", n_enrolled=51,
                             n_evaluable=46, cr=1, pr=14, sd=26, pd=5, orr_pct=32.6, dcr_pct=89.1, pfs_median=30.9,
                             pfs_ci_low=22.7, pfs_ci_high=39.0, os_median=51.9, os_ci_low=40.0, os_ci_high=63.7,
                             grade="mixed", primary_site="mixed", doi="10.1007/s00259-011-1902-1"),
    ("S07", "overall"): dict(first_author="van der Zwan", year=2019, country="Netherlands", design="retrospective",
                             radiopharmaceutical="177Lu-DOTATATE", response_criteria="RECIST 1.1", n_enrolled=168,
                             n_evaluable=168, cr=0, pr=26, sd=100, pd=42, orr_pct=15.5, dcr_pct=75.0,
                             pfs_median=14.6, pfs_ci_low=12.4, pfs_ci_high=16.9, os_median=None, grade="G1-2",
                             primary_site="mixed"),
    ("S08", "overall"): dict(first_author="Sundlöv", year=2022, country="Sweden", design="prospective",
                             radiopharmaceutical="177Lu-DOTATATE", n_enrolled=96, n_evaluable=96, cr=0, pr=15, sd=60,
                             pd=21, orr_pct=15.6, dcr_pct=78.1, pfs_median=29.0, pfs_ci_low=None, os_median=47.0,
                             grade="mixed", primary_site="mixed"),
}


def check_wide(res: Result) -> None:
    s = WIDE_SHEET
    # READING: in a wide sheet each planted slip is reported on the wide row, i.e. at the reviewer's row.
    f = assert_planted(res, s, 7, families=("percent",), column="M", field_="orr_pct", what="ORR 173 (34.1)")
    assert_cites_sheet(f, s, "M", 7)
    assert_planted(res, s, 8, families=("sum",), what="CR+PR+SD+PD 72 > 62")
    assert_planted(res, s, 9, families=("median-outside", "outside"), column="P", what="mPFS 38.4 outside 19.4-35.8")
    assert_planted(res, s, 10, column="R", field_="grade", what="grade G4")
    assert_planted(res, s, 11, column="T", field_="doi", what="DOI 10.715/...")
    # the contract leaves open which cell of the three (M14, I14, J14) is most likely wrong
    f = assert_planted(res, s, 14, what="ORR n 44 but CR+PR 41")
    assert f.get("column") in ("M", "I", "J"), f
    assert_non_data_row(res, s, WIDE_TOTAL, "the Total row")
    assert_non_data_row(res, s, WIDE_NOTES, "the merged notes row")
    assert_non_data_row(res, s, WIDE_SOURCE, "the source line")
    # the header rows are not data either
    for r in (1, 2, 4, 5):
        assert not [x for x in res.on_row(s, r) if x.get("severity") == "error"], res.dump(s, r)
    assert_at_most_one_false_error(res, {(s, r) for r in WIDE_PLANTED})
    # READING: a wide sheet without a cohort column holds each study's overall cohort (layouts.md: "one row
    # per study (its overall cohort)"), so the clean cohort is the schema's overall label.
    assert_clean_rows(res, WIDE_EXPECTED, sheet=s)
    for key, row in clean_by_key(res).items():
        assert row.get("row") == str(WIDE_FIRST + int(key[0][1:]) - 1), f"provenance row of {key}: {row.get('row')}"


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """The kind-1 workbook, validated once for the tests that share it (each run costs seconds)."""
    d = tmp_path_factory.mktemp("wide")
    form = build_wide(d / "team_extraction.xlsx")
    return d, form, validate(form, d)


def test_wide_data_extraction_sheet(wide):
    """Kind 1: title/subtitle/blank rows, two-row header with a merged group, composite cells, an
    Author (year) column, a Total row, a merged notes row and a hidden helper column."""
    _, _, res = wide
    assert res.code == 1, f"planted errors must give exit 1\n{res.dump()}"
    check_wide(res)


def test_wide_sheet_hidden_helper_column_is_not_read_over_the_reported_value(wide):
    """Kind 1/5: the hidden `ORR (%)` (the reviewer's own calculation, of N enrolled) maps to the same
    field as the visible `ORR, n (%)`; the visible one wins and the hidden one is reported."""
    _, _, res = wide
    s = WIDE_SHEET
    about_n = [f for f in res.findings if f.get("sheet") == s and f.get("column") == "N"]
    assert about_n, f"the hidden helper column N (ORR (%)) must be reported\n{res.dump(s)}"
    got = clean_by_key(res)
    assert ("S01", "overall") in got, res.dump()
    assert num(got[("S01", "overall")]["orr_pct"]) == 32.6, "orr_pct must come from 'ORR, n (%)', not the helper"
    # the helper's values never reach a check as if reported: no ITT-denominator warning on S01 (15/51 = 29.4)
    s01 = [f for f in res.on_row(s, WIDE_FIRST) if "itt" in str(f.get("rule"))]
    assert not s01, f"the hidden helper column was checked as the reported ORR:\n{res.dump(s, WIDE_FIRST)}"


# ---------------------------------------------------------------------------------------------------
# Kind 2: three sheets found by content, headers as people write them, a Sheet1 of notes
# ---------------------------------------------------------------------------------------------------
def build_three_sheets(path: Path) -> Path:
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "Sheet1"
    for r, text in enumerate(["To do: check Brabander supplementary table S2 for the G3 subgroup",
                              "Search: PubMed + Embase, 12/03/2024",
                              "Disagreements go to CD", None, "Last edited by AB"], start=1):
        notes.cell(row=r, column=1, value=text)
    st_ = wb.create_sheet("Study characteristics")
    st_.append(["Study ID", "First author", "Year", "DOI", "Country", "Study design", "Agent", "Criteria", "N",
                "Cycles (median)", "Activity per cycle (GBq)"])
    studies = [
        ["S01", "Strosberg", 2017, "10.1056/NEJMoa1607427", "USA", "Phase III RCT", "Lutathera", "RECIST 1.1", 116,
         4, 7.4],
        ["S02", "Singh", 2024, "10.1016/S0140-6736(24)00701-3", "Multinational", "Phase 3 RCT", "177Lu-DOTATATE",
         "RECIST 1.1", 151, 4, 7.4],
        ["S03", "Clement", 2022, "10.1007/s00259-022-05771-3", "Multinational", "Retrospective",
         "[177Lu]Lu-DOTATATE", "RECIST 1.1", 110, 4, 7.4],
        ["S04", "Baum", 2016, "10.7150/thno.13702", "Germany", "Retrospective", "177Lu-DOTATOC", "RECIST 1.1", 56,
         None, None],
        ["S05", "Brabander", 2017, "10.1158/1078-0432.CCR-16-2743", "Netherlands", "Retrospective cohort",
         "177Lu-octreotate", "RECIST1.1", 610, 4, 7.4],
        # planted: DOI typo (a comma for the dot) -> 'Study characteristics'!D7
        ["S06", "Sundlöv", 2022, "10,1007/s00259-022-05786-w", "Sweden", "Phase II", "177Lu-DOTATATE",
         "RECIST 1.1", 96, 4, 7.4],
    ]
    for r in studies:
        st_.append(r)
    ef = wb.create_sheet("Efficacy")
    ef.append(["Study ID", "Subgroup", "Grade (WHO 2019)", "Primary site", "Evaluable pts", "CR", "PR", "SD", "PD",
               "ORR %", "DCR %", "PFS (mo)", "PFS 95% CI", "OS (mo)", "OS 95% CI"])
    efficacy = [
        ["S01", "overall", "G1/G2", "Midgut", 101, 1, 17, 70, 13, 17.8, 87.1, 28.4, "19.4–35.8", 48.0, "37.4–55.2"],
        # planted: ORR 34.0 (65/151 = 43.0) -> Efficacy!J3
        ["S02", "overall", "Mixed", "GEP", 151, 8, 57, 72, 14, 34.0, 90.7, 22.8, "19.4–NR", "NR", None],
        # planted: median PFS 34.8 above its CI 17.5-34.5 (paper: 24.8) -> Efficacy!L4 or M4
        ["S03", "overall", "G1-2", "pNET", 62, 2, 23, 28, 9, 40.3, 85.5, 34.8, "17.5–34.5", 41.4, "28.6–50.2"],
        # planted: grade G4 -> Efficacy!C5
        ["S04", "overall", "G4", "GEP", 56, 1, 18, 18, 19, 33.9, 66.1, 17.4, None, 34.2, None],
        ["S05", "overall", "NET G1-2", "GEP", 443, 9, 164, 190, 80, 39.1, 81.9, 29.0, "21.1–32.9", 63.0, "55.0–72.0"],
        ["S06", "overall", "G1-3", "GEP", 96, 0, 15, 60, 21, 15.6, 78.1, 29.0, None, 47.0, None],
    ]
    for r in efficacy:
        ef.append(r)
    sa = wb.create_sheet("Safety")
    sa.append(["Study ID", "Adverse event", "Grade ≥3 (n)", "Any grade (n)", "Safety population"])
    for r in [["S01", "Lymphopenia", 10, None, 111], ["S01", "Thrombocytopenia", 2, 28, 111],
              ["S01", "Neutropenia", 1, 6, 111],
              # planted: grade >=3 (6) above any grade (4) -> Safety row 5
              ["S01", "Renal toxicity", 6, 4, 111],
              ["S03", "Anemia", 1, None, 110], ["S05", "Myelodysplastic syndrome", 9, None, 610]]:
        sa.append(r)
    for ws in (st_, ef, sa):
        ws.freeze_panes = "B2"
        for c in ws[1]:
            c.font = Font(bold=True)
    wb.save(path)
    return path


def test_three_sheets_found_by_content(tmp_path):
    """Kind 2: `Study characteristics`, `Efficacy`, `Safety` with people's header wordings (`N`,
    `Evaluable pts`, `Grade (WHO 2019)`, `OS (mo)`, `PFS 95% CI` holding `21.1–32.9`) and a `Sheet1` of notes."""
    form = build_three_sheets(tmp_path / "review_data.xlsx")
    res = validate(form, tmp_path)
    assert res.code == 1, res.dump()
    f = assert_planted(res, "Study characteristics", 7, column="D", field_="doi", what="DOI 10,1007/...")
    assert_cites_sheet(f, "Study characteristics", "D", 7)
    assert_planted(res, "Efficacy", 3, families=("percent",), column="J", field_="orr_pct", what="ORR 34.0 for 43.0")
    f = assert_planted(res, "Efficacy", 4, families=("outside",), what="PFS 34.8 outside 17.5-34.5")
    assert f.get("column") in ("L", "M"), f"median-outside-CI must sit on the median or the CI cell: {f}"
    f = assert_planted(res, "Efficacy", 5, column="C", field_="grade", what="grade G4")
    assert_cites_sheet(f, "Efficacy", "C", 5)
    assert_planted(res, "Safety", 5, families=("adverse", "inconsistent"), what="grade>=3 6 > any grade 4")
    # Sheet1 matches no contract sheet: reported once, as info, and skipped
    s1 = [x for x in res.findings if x.get("sheet") == "Sheet1"]
    assert len(s1) == 1 and s1[0].get("severity") == "info", f"Sheet1 must be one info finding:\n{res.dump('Sheet1')}"
    planted = {("Study characteristics", 7), ("Efficacy", 3), ("Efficacy", 4), ("Efficacy", 5), ("Safety", 5),
               ("Efficacy", 7)}  # Efficacy 7 is S06, excluded through its study's DOI error
    assert_at_most_one_false_error(res, planted)
    assert_clean_rows(res, {
        ("S01", "overall"): dict(first_author="Strosberg", year=2017, design="RCT",
                                 radiopharmaceutical="177Lu-DOTATATE", n_enrolled=116, cycles_median=4,
                                 activity_per_cycle_gbq=7.4, grade="G1-2", primary_site="midgut", n_evaluable=101,
                                 cr=1, pr=17, sd=70, pd=13, orr_pct=17.8, dcr_pct=87.1, pfs_median=28.4,
                                 pfs_ci_low=19.4, pfs_ci_high=35.8, os_median=48.0, os_ci_low=37.4, os_ci_high=55.2),
        ("S05", "overall"): dict(first_author="Brabander", year=2017, design="retrospective",
                                 radiopharmaceutical="177Lu-DOTATATE", response_criteria="RECIST 1.1", n_enrolled=610,
                                 grade="G1-2", primary_site="mixed", n_evaluable=443, cr=9, pr=164, sd=190, pd=80,
                                 orr_pct=39.1, dcr_pct=81.9, pfs_median=29.0, pfs_ci_low=21.1, pfs_ci_high=32.9,
                                 os_median=63.0, os_ci_low=55.0, os_ci_high=72.0),
    }, sheet="Efficacy")


# ---------------------------------------------------------------------------------------------------
# Kind 3: numbers with units in the cells
# ---------------------------------------------------------------------------------------------------
WEEK = 7 / 30.4375


def test_units_in_cells(tmp_path):
    """Kind 3: `95 wk`, `18 mo`, `3.8 y`, `7.4 GBq` converted with the schema's units; `12 fortnights`
    (an unknown unit) is a finding at its cell and the value is never read as 12 months."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    ws.append(["Study ID", "Author", "Year", "N", "Evaluable", "CR", "PR", "SD", "PD", "ORR (%)",
               "Activity per cycle", "Cumulative activity", "Median PFS", "PFS CI low", "PFS CI high", "Median OS",
               "OS CI low", "OS CI high", "Radiopharmaceutical"])
    # A .. S; P = Median OS
    ws.append(["S01", "Kwekkeboom", 2008, 310, 310, 5, 86, 159, 60, 29.4, "7.4 GBq", "29.6 GBq", "33 mo", None, None,
               "3.8 y", "3.3 y", "4.4 y", "177Lu-DOTATATE"])
    ws.append(["S02", "Sansovini", 2013, 52, 52, 4, 10, 27, 11, 26.9, "5.55 GBq", "27.8 GBq", "95 wk", "80 wk",
               "110 wk", "NR", None, None, "177Lu-DOTATATE"])
    ws.append(["S03", "Ezziddin", 2014, 68, 68, 0, 41, 9, 18, 60.3, "7.9 GBq", "31.6 GBq", "18 mo", "14 mo", "22 mo",
               "46 mo", "33 mo", "59 mo", "177Lu-DOTATATE"])
    # planted: median OS "12 fortnights" (no such unit in the schema) -> Extraction!P5
    ws.append(["S04", "Thang", 2018, 28, 28, 0, 9, 8, 11, 32.1, "7.8 GBq", "23.4 GBq", "9 mo", None, None,
               "12 fortnights", None, None, "177Lu-DOTATATE"])
    form = tmp_path / "units.xlsx"
    wb.save(form)
    res = validate(form, tmp_path)
    assert res.code == 1, res.dump()
    f = assert_planted(res, "Extraction", 5, column="P", what="OS '12 fortnights'")
    assert "fortnight" in str(f.get("message", "")) + str(f.get("value", "")), f
    assert_at_most_one_false_error(res, {("Extraction", 5)})
    # S04's OS is never silently 12 (months or anything else)
    for r in res.clean:
        if r.get("study_id") == "S04":
            assert num(r.get("os_median")) is None, f"12 fortnights read as {r.get('os_median')!r}"
    expected = {
        ("S01", "overall"): dict(activity_per_cycle_gbq=7.4, cumulative_activity_gbq=29.6, pfs_median=33.0,
                                 os_median=3.8 * 12, os_ci_low=3.3 * 12, os_ci_high=4.4 * 12, n_evaluable=310,
                                 orr_pct=29.4),
        ("S02", "overall"): dict(activity_per_cycle_gbq=5.55, cumulative_activity_gbq=27.8, pfs_median=95 * WEEK,
                                 pfs_ci_low=80 * WEEK, pfs_ci_high=110 * WEEK, os_median=None, n_evaluable=52),
        ("S03", "overall"): dict(activity_per_cycle_gbq=7.9, pfs_median=18.0, pfs_ci_low=14.0, pfs_ci_high=22.0,
                                 os_median=46.0, os_ci_low=33.0, os_ci_high=59.0, pr=41),
    }
    got = clean_by_key(res)
    assert set(got) == set(expected), f"clean rows {sorted(got)}\n{res.dump()}"
    assert_clean_rows(res, expected, sheet="Extraction", tol=0.01)
    if "os_median_nr" in got[("S02", "overall")]:
        assert got[("S02", "overall")]["os_median_nr"] in ("True", "true", "1"), "OS 'NR' must stay not reached"


# ---------------------------------------------------------------------------------------------------
# Kind 4: rows that are not data
# ---------------------------------------------------------------------------------------------------
NDR_HEADER = ["Study ID", "Author", "Year", "N", "Evaluable", "CR", "PR", "SD", "PD", "ORR (%)", "DCR (%)",
              "Median PFS", "PFS CI low", "PFS CI high"]
NDR_ROWS = {
    "S01": ["S01", "Strosberg", 2017, 116, 101, 1, 17, 70, 13, 17.8, 87.1, 28.4, 19.4, 35.8],
    # planted: PD 15 (paper: 5) -> 1+14+26+15 = 56 > 46
    "S02": ["S02", "Bodei", 2011, 51, 46, 1, 14, 26, 15, 32.6, 89.1, 30.9, 22.7, 39.0],
    "S03": ["S03", "Clement", 2022, 110, 62, 2, 23, 28, 9, 40.3, 85.5, 24.8, 17.5, 34.5],
    "S04": ["S04", "Brabander", 2017, 610, 443, 9, 164, 190, 80, 39.1, 81.9, 29.0, 26.0, 33.0],
    "S05": ["S05", "Baum", 2016, 56, 56, 1, 18, 18, 19, 33.9, 66.1, 17.4, 13.0, 21.8],
    # planted: DCR 62.2 (47/71 = 66.2)
    "S06": ["S06", "Unal", 2023, 73, 71, 0, 21, 26, 24, 29.6, 62.2, 13.7, 10.9, 16.5],
}


def _sum_row(label: str | None, rows: list[list]) -> list:
    out = [label, None, None] + [sum(r[i] for r in rows) for i in range(3, 9)] + [None] * 5
    return out


def test_non_data_rows_are_never_records(tmp_path):
    """Kind 4: blank separators, a repeated header row, `Sum`, `Mean`, `Pooled` and
    `Overall (all studies)` rows: each reported once as info at its row, none read as a record."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Outcomes data"
    data = list(NDR_ROWS.values())
    ws.append(NDR_HEADER)                     # 1
    for r in data[:3]:
        ws.append(r)                          # 2-4
    ws.append([])                             # 5 blank separator
    ws.append(NDR_HEADER)                     # 6 repeated header
    for r in data[3:]:
        ws.append(r)                          # 7-9
    ws.append(_sum_row("Sum", data))          # 10
    means = ["Mean", None, None] + [round(sum(r[i] for r in data) / len(data), 1) for i in range(3, 14)]
    ws.append(means)                          # 11
    ws.append(["Pooled", None, None, None, None, None, None, None, None, 32.2, 87.6, 30.87, 22.71, 39.04])  # 12
    ws.append(["Overall (all studies)", None, None, sum(r[3] for r in data), sum(r[4] for r in data)]
              + [None] * 4 + [32.2, 87.6])    # 13
    form = tmp_path / "with_totals.xlsx"
    wb.save(form)
    res = validate(form, tmp_path)
    s = "Outcomes data"
    assert res.code == 1, res.dump()
    assert_planted(res, s, 3, families=("sum",), what="Bodei CR+PR+SD+PD 56 > 46")
    assert_planted(res, s, 9, families=("percent",), column="K", field_="dcr_pct", what="DCR 62.2 for 66.2")
    assert_non_data_row(res, s, 6, "the repeated header row")
    assert_non_data_row(res, s, 10, "the Sum row")
    assert_non_data_row(res, s, 11, "the Mean row")
    assert_non_data_row(res, s, 12, "the Pooled row")
    assert_non_data_row(res, s, 13, "the Overall (all studies) row")
    # READING: layouts.md lists blank separators among the non-data rows "reported once (info)"; a reviewer
    # would not miss a note on an empty row, so only "never an error, never a record" is asserted here.
    assert not [f for f in res.on_row(s, 5) if f.get("severity") in ("error", "warning")], res.dump(s, 5)
    assert_at_most_one_false_error(res, {(s, 3), (s, 9)})
    exp = {}
    for sid, r in NDR_ROWS.items():
        if sid in ("S02", "S06"):
            continue
        exp[(sid, "overall")] = dict(first_author=r[1], year=r[2], n_enrolled=r[3], n_evaluable=r[4], cr=r[5],
                                     pr=r[6], sd=r[7], pd=r[8], orr_pct=r[9], dcr_pct=r[10], pfs_median=r[11],
                                     pfs_ci_low=r[12], pfs_ci_high=r[13])
    assert_clean_rows(res, exp, sheet=s)
    rows = {r["study_id"]: r["row"] for r in res.clean}
    assert rows == {"S01": "2", "S03": "4", "S04": "7", "S05": "8"}, f"provenance rows {rows}"


def test_unlabelled_total_row_recognised_by_its_sums(tmp_path):
    """Kind 4: a Total row without a label, recognised only because its counts equal the sums of the
    rows above: info at its row, not a record with a missing study_id (error) and not pooled."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Efficacy"
    data = [NDR_ROWS[k] for k in ("S01", "S03", "S04", "S05")]
    ws.append(NDR_HEADER)
    for r in data:
        ws.append(r)
    ws.append(_sum_row(None, data))          # row 6: no label at all
    for c in ws[6]:
        c.font = Font(bold=True)
    form = tmp_path / "unlabelled_total.xlsx"
    wb.save(form)
    res = validate(form, tmp_path)
    assert_non_data_row(res, "Efficacy", 6, "the unlabelled total row")
    assert res.code == 0, f"no planted error, so exit 0\n{res.dump()}"
    assert sorted(r["study_id"] for r in res.clean) == ["S01", "S03", "S04", "S05"], res.clean


# ---------------------------------------------------------------------------------------------------
# Kind 5: hidden rows and columns, merged cells
# ---------------------------------------------------------------------------------------------------
def test_hidden_rows_columns_and_merged_cells(tmp_path):
    """Kind 5: a hidden `N evaluable` (an old value) beside the visible `Evaluable`: the visible one wins,
    the hidden one is reported; a hidden data row is reported; a study ID merged down over its cohort
    rows belongs to each of them."""
    wb = openpyxl.Workbook()
    st_ = wb.active
    st_.title = "Studies"
    st_.append(["Study ID", "First author", "Year", "N enrolled", "Radiopharmaceutical", "Design", "DOI"])
    for r in [["S01", "Unal", 2023, 73, "177Lu-DOTATATE", "Retrospective", "10.14744/ejmo.2023.48337"],
              ["S02", "Clement", 2022, 110, "177Lu-DOTATATE", "Retrospective", "10.1007/s00259-022-05771-3"],
              ["S03", "Thang", 2018, 28, "177Lu-DOTATATE", "Retrospective", "10.1007/s00259-017-3821-2"],
              ["S04", "Strosberg", 2017, 116, "Lutathera", "RCT", "10.1056/NEJMoa1607427"]]:
        st_.append(r)
    ou = wb.create_sheet("Outcomes")
    ou.append(["Study ID", "Cohort", "Grade", "Primary site", "N evaluable", "Evaluable", "CR", "PR", "SD", "PD",
               "ORR (%)", "PFS", "PFS CI low", "PFS CI high"])
    # E = hidden old "N evaluable"; F = visible "Evaluable"
    ou.append(["S01", "overall", "mixed", "mixed", 73, 71, 0, 21, 26, 24, 29.6, 13.7, 10.9, 16.5])     # 2
    ou.append([None, "G1-2", "high grade", "mixed", 50, 48, 0, 16, 20, 12, 33.3, 16.9, 12.8, 21.0])  # 3 planted
    ou.append([None, "G3", "G3", "mixed", 23, 23, 0, 5, 6, 12, 21.7, 8.5, 5.9, 11.1])                # 4
    ou.append(["S02", "overall", "G1-2", "pNET", 62, 62, 2, 23, 28, 9, 40.3, 24.8, 17.5, 34.5])        # 5
    ou.append(["S03", "overall", "G3", "mixed", 28, 28, 0, 9, 8, 11, 32.1, 9.0, 6.2, 11.8])            # 6 hidden
    ou.append(["S04", "overall", "G1-2", "midgut", 101, 101, 1, 17, 70, 13, 27.8, 28.4, 19.4, 35.8])   # 7 planted
    ou.merge_cells("A2:A4")
    ou.column_dimensions["E"].hidden = True
    ou.row_dimensions[6].hidden = True
    ou.freeze_panes = "C2"
    ae = wb.create_sheet("Adverse events")
    ae.append(["Study ID", "AE term", "Grade >=3 (n)", "Any grade (n)", "N safety"])
    ae.append(["S04", "thrombocytopenia", 2, 28, 111])
    form = tmp_path / "hidden_merged.xlsx"
    wb.save(form)
    res = validate(form, tmp_path)
    o = "Outcomes"
    assert res.code == 1, res.dump()
    assert_planted(res, o, 3, column="C", field_="grade", what="grade 'high grade'")
    assert_planted(res, o, 7, families=("percent",), column="K", field_="orr_pct", what="ORR 27.8 for 17.8")
    hidden_col = [f for f in res.findings if f.get("sheet") == o and f.get("column") == "E"]
    assert hidden_col, f"the hidden column E (N evaluable) must be reported\n{res.dump(o)}"
    assert res.on_row(o, 6), f"the hidden row 6 must be reported (read with a warning, or not read)\n{res.dump(o)}"
    # READING: a study ID merged down over its cohort rows is the ID of each of those rows (the reviewer's
    # meaning); row 4 is therefore a valid S01 record, not a row without study_id.
    assert not [f for f in res.on_row(o, 4) if f.get("severity") == "error"], res.dump(o, 4)
    assert_at_most_one_false_error(res, {(o, 3), (o, 7)})
    got = clean_by_key(res)
    must = {("S01", "overall"), ("S01", "G3"), ("S02", "overall")}
    assert must <= set(got) <= must | {("S03", "overall")}, f"clean rows {sorted(got)}\n{res.dump()}"
    expected = {
        ("S01", "overall"): dict(n_evaluable=71, cr=0, pr=21, sd=26, pd=24, orr_pct=29.6, first_author="Unal",
                                 n_enrolled=73),
        ("S01", "G3"): dict(n_evaluable=23, grade="G3", pr=5, pfs_median=8.5, first_author="Unal"),
        ("S02", "overall"): dict(n_evaluable=62, primary_site="pancreas", pfs_ci_high=34.5),
    }
    if ("S03", "overall") in got:   # read with a warning: then read right
        expected[("S03", "overall")] = dict(n_evaluable=28, pr=9, grade="G3", pfs_median=9.0)
    assert_clean_rows(res, expected, sheet=o)


# ---------------------------------------------------------------------------------------------------
# Kind 6: an edited template
# ---------------------------------------------------------------------------------------------------
def _fill_template(path: Path, renames: dict[str, str]) -> None:
    wb = openpyxl.load_workbook(path)

    def put(sheet: str, rows: list[dict]) -> None:
        ws = wb[sheet]
        hdr_row = next(r for r in range(1, 10) if any(c.value == "study_id" for c in ws[r]))
        cols = {c.value: c.column for c in ws[hdr_row] if c.value}
        for i, rec in enumerate(rows, start=hdr_row + 1):
            for k, v in rec.items():
                ws.cell(row=i, column=cols[k], value=v)
        for key, new in renames.items():
            if key in cols:
                ws.cell(row=hdr_row, column=cols[key], value=new)

    put("studies", [
        dict(study_id="S01", first_author="Strosberg", year=2017, doi="10.1056/NEJMoa1607427", design="RCT",
             radiopharmaceutical="177Lu-DOTATATE", response_criteria="RECIST 1.1", n_enrolled=116),
        dict(study_id="S02", first_author="Clement", year=2022, doi="10.1007/s00259-022-05771-3",
             design="retrospective", radiopharmaceutical="177Lu-DOTATATE", response_criteria="RECIST 1.1",
             n_enrolled=110),
        dict(study_id="S03", first_author="Brabander", year=2017, doi="10.1158/1078-0432.CCR-16-2743",
             design="retrospective", radiopharmaceutical="177Lu-DOTATATE", response_criteria="RECIST 1.1",
             n_enrolled=610),
    ])
    put("outcomes", [
        dict(study_id="S01", cohort="overall", grade="G1-2", primary_site="midgut", n_evaluable=101, cr=1, pr=17,
             sd=70, pd=13, orr_pct=17.8, dcr_pct=87.1, pfs_median=28.4, pfs_ci_low=19.4, pfs_ci_high=35.8),
        dict(study_id="S02", cohort="overall", grade="G1-2", primary_site="pancreas", n_evaluable=62, cr=2, pr=23,
             sd=28, pd=9, orr_pct=40.3, dcr_pct=85.5, pfs_median=24.8, pfs_ci_low=17.5, pfs_ci_high=34.5),
        dict(study_id="S03", cohort="overall", grade="G1-2", primary_site="mixed", n_evaluable=443, cr=9, pr=164,
             sd=190, pd=80, orr_pct=39.1, dcr_pct=81.9, pfs_median=29.0, pfs_ci_low=26.0, pfs_ci_high=33.0),
    ])
    put("adverse_events", [dict(study_id="S01", ae_term="thrombocytopenia", grade3plus_n=2, any_grade_n=28,
                                n_safety=111)])
    wb.save(path)


def test_edited_template_with_renamed_headers_never_passes_silently(tmp_path):
    """Kind 6: `curate template -o`, filled, `n_evaluable` renamed `Evaluable (RECIST)` and `pd` renamed to
    something unrecognisable. Each needed field is either mapped correctly or an error names the header
    found and the field expected (`did you mean ...`); never exit 0 with nothing pooled."""
    form = tmp_path / "edited_template.xlsx"
    proc = curate("template", "-o", form, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    renames = {"n_evaluable": "Evaluable (RECIST)", "pd": "Prog. (n)"}
    _fill_template(form, renames)
    res = validate(form, tmp_path)
    assert res.code in (0, 1), res.dump()
    truth = {("S01", "overall"): dict(n_evaluable=101, pd=13), ("S02", "overall"): dict(n_evaluable=62, pd=9),
             ("S03", "overall"): dict(n_evaluable=443, pd=80)}
    got = clean_by_key(res)
    unmapped = []
    for key, header in renames.items():
        mapped = set(got) == set(truth) and all(num(got[k].get(key)) == v[key] for k, v in truth.items())
        if mapped:
            continue
        unmapped.append(key)
        named = [f for f in res.errors() if header in str(f.get("message")) and key in str(f.get("message"))]
        assert named, (f"`{header}` holds the needed field {key} but it was neither read correctly "
                       f"(clean: {[(k, r.get(key)) for k, r in got.items()]}) nor reported as an error naming "
                       f"the header and the field (did you mean {key}?)\n{res.dump()}")
    if unmapped:
        assert res.code == 1, f"a needed field it could not place ({unmapped}) must not exit 0\n{res.dump()}"
    else:
        assert res.code == 0, res.dump()
        pooled = tmp_path / "orr.json"
        p = curate("pool", form, "--outcome", "orr", "--json", pooled, cwd=tmp_path)
        assert p.returncode == 0 and json.loads(pooled.read_text())["k"] == 3, p.stdout + p.stderr


# ---------------------------------------------------------------------------------------------------
# Kind 7: a workbook whose sheets match nothing
# ---------------------------------------------------------------------------------------------------
def test_workbook_with_no_contract_sheet_is_refused_with_one_line(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws["A1"] = "Meeting notes 12 March: screening of 412 abstracts done, 38 full texts to go"
    bud = wb.create_sheet("Budget")
    bud.append(["Item", "Cost (EUR)", "Paid"])
    bud.append(["Full-text access", 420, "yes"])
    bud.append(["Translation", 180, "no"])
    form = tmp_path / "not_a_form.xlsx"
    wb.save(form)
    res = validate(form, tmp_path)
    line = one_line_refusal(res)
    assert "Sheet1" in line and "Budget" in line, f"the line must name the sheets found: {line}"
    assert re.search(r"studies|outcomes|adverse.events", line, re.I), \
        f"the line must name the closest contract sheet: {line}"


# ---------------------------------------------------------------------------------------------------
# Kind 8: curate map -> LAYOUT.yaml -> --layout
# ---------------------------------------------------------------------------------------------------
def _key(f: dict) -> tuple:
    return (f.get("sheet"), f.get("row"), f.get("column"), f.get("field"), f.get("rule"), f.get("severity"))


def _replace_letter(obj: Any, old: str, new: str) -> tuple[Any, int]:
    """Replace a column letter wherever the layout names it (a key, a value, or inside 'A'/'Sheet'!A refs)."""
    n = 0
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            v2, m = _replace_letter(v, old, new)
            n += m
            if k == old:
                k, n = new, n + 1
            out[k] = v2
        return out, n
    if isinstance(obj, list):
        out_l = []
        for v in obj:
            v2, m = _replace_letter(v, old, new)
            out_l.append(v2)
            n += m
        return out_l, n
    if isinstance(obj, str) and obj == old:
        return new, 1
    return obj, 0


@pytest.fixture(scope="module")
def mapped(wide):
    d, form, inferred = wide
    layout = d / "LAYOUT.yaml"
    proc = curate("map", form, "-o", layout, cwd=d)
    return d, form, layout, proc, inferred


def test_map_then_layout_gives_the_same_findings(mapped):
    d, form, layout, proc, inferred = mapped
    # READING: cli.md gives no exit code for map; it writes the layout whether or not the form has errors.
    assert proc.returncode in (0, 1) and layout.exists(), \
        f"curate map failed: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "orr_pct" in proc.stdout, "curate map prints the mapping as a table"
    doc = yaml.safe_load(layout.read_text(encoding="utf-8"))
    assert doc, "the layout file is empty"
    given_ = validate(form, d, "--layout", layout, tag=".layout")
    check_wide(given_)
    a = {_key(f) for f in inferred.findings if f.get("severity") in ("error", "warning")}
    b = {_key(f) for f in given_.findings if f.get("severity") in ("error", "warning")}
    assert a == b, f"only inferred: {sorted(a - b, key=str)}\nonly with --layout: {sorted(b - a, key=str)}"
    assert inferred.code == given_.code
    assert inferred.clean == given_.clean


def test_layout_with_a_column_past_the_last_is_refused(mapped, tmp_path):
    d, form, layout, proc, _ = mapped
    assert proc.returncode in (0, 1) and layout.exists(), proc.stderr
    doc = yaml.safe_load(layout.read_text(encoding="utf-8"))
    bad, n = _replace_letter(doc, "M", "AZ")   # M holds 'ORR, n (%)'; the sheet ends at U
    assert n, f"the layout names no column letter M:\n{layout.read_text()[:2000]}"
    bad_path = tmp_path / "BAD.yaml"
    bad_path.write_text(yaml.safe_dump(bad, allow_unicode=True, sort_keys=False), encoding="utf-8")
    res = validate(form, tmp_path, "--layout", bad_path)
    line = one_line_refusal(res)
    assert "AZ" in line, f"the line must say what does not fit (column AZ): {line}"


def test_layout_refused_when_a_header_changed(mapped, tmp_path):
    d, form, layout, proc, _ = mapped
    assert proc.returncode in (0, 1) and layout.exists(), proc.stderr
    wb = openpyxl.load_workbook(form)
    ws = wb[WIDE_SHEET]
    ws["I5"] = "Complete"                      # a reviewer renamed the CR column after mapping
    changed = tmp_path / "changed.xlsx"
    wb.save(changed)
    res = validate(changed, tmp_path, "--layout", layout)
    line = one_line_refusal(res)
    assert "CR" in line or "Complete" in line, f"the line must say which header changed: {line}"


# ---------------------------------------------------------------------------------------------------
# Property: layout changes never change the findings on the data cells
# ---------------------------------------------------------------------------------------------------
P_FIELDS = {
    "studies": ["study_id", "first_author", "year", "doi", "design", "radiopharmaceutical", "response_criteria",
                "n_enrolled", "activity_per_cycle_gbq"],
    "outcomes": ["study_id", "cohort", "grade", "primary_site", "n_evaluable", "cr", "pr", "sd", "pd", "orr_pct",
                 "dcr_pct", "pfs_median", "pfs_ci_low", "pfs_ci_high", "os_median"],
    "adverse_events": ["study_id", "ae_term", "grade3plus_n", "any_grade_n", "n_safety"],
}
P_KEYS = {"studies": ("study_id",), "outcomes": ("study_id", "cohort"), "adverse_events": ("study_id", "ae_term")}
P_DATA = {
    "studies": [
        ["S01", "Strosberg", 2017, "10.1056/NEJMoa1607427", "RCT", "177Lu-DOTATATE", "RECIST 1.1", 116, 7.4],
        ["S02", "Brabander", 2017, "10.1158/1078-0432.CCR-16-2743", "retrospective", "177Lu-DOTATATE", "RECIST 1.1",
         610, 7.4],
        # planted: DOI typo
        ["S03", "Clement", 2022, "10.1007 s00259-022-05771-3", "retrospective", "177Lu-DOTATATE", "RECIST 1.1",
         110, 7.4],
        ["S04", "Baum", 2016, "10.7150/thno.13702", "retrospective", "177Lu-DOTATOC", "RECIST 1.1", 56, 7.0],
    ],
    "outcomes": [
        ["S01", "overall", "G1-2", "midgut", 101, 1, 17, 70, 13, 17.8, 87.1, 28.4, 19.4, 35.8, 48.0],
        # planted: PD 70 (CR+PR+SD+PD 433 < 443: a warning) and ORR 34.1 for 39.1 (an error)
        ["S02", "overall", "G1-2", "mixed", 443, 9, 164, 190, 70, 34.1, 81.9, 29.0, 26.0, 33.0, 63.0],
        # planted: G4
        ["S02", "G3", "G4", "mixed", 40, 0, 8, 20, 12, 20.0, 70.0, 16.0, 11.0, 21.0, 30.0],
        ["S03", "overall", "G1-2", "pancreas", 62, 2, 23, 28, 9, 40.3, 85.5, 24.8, 17.5, 34.5, 41.4],
        # planted: median PFS outside CI
        ["S04", "overall", "mixed", "mixed", 56, 1, 18, 18, 19, 33.9, 66.1, 27.4, 13.0, 21.8, 34.2],
    ],
    "adverse_events": [
        ["S01", "thrombocytopenia", 2, 28, 111],
        # planted: grade >= 3 above any grade
        ["S01", "nephrotoxicity", 6, 4, 111],
        ["S02", "MDS", 9, 9, 610],
    ],
}


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    return re.sub(r"[\s_\-]+", "", text)


def _header_names() -> dict[str, dict[str, list[str]]]:
    """Per sheet and field: the key and every listed alias or synonym of the shipped schema, minus any
    name that two fields of one sheet share (none should)."""
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    out: dict[str, dict[str, list[str]]] = {}
    for sheet, fields in P_FIELDS.items():
        spec = schema["sheets"][sheet]["fields"]
        names = {}
        for f in fields:
            listed = [f] + [str(a) for k in ("aliases", "synonyms", "abbreviations") for a in spec[f].get(k) or []]
            names[f] = list(dict.fromkeys(listed))
        owners: dict[str, set[str]] = {}
        for f, ns in names.items():
            for n in ns:
                owners.setdefault(_fold(n), set()).add(f)
        shared = {k for k, v in owners.items() if len(v) > 1}
        assert not shared, f"schema aliases shared by two fields of {sheet}: {shared}"
        out[sheet] = names
    return out


HEADER_NAMES = _header_names()
TITLES = ["177Lu-PRRT review: {sheet} (extraction AB, checked CD)", "Version 2, 14 March 2024",
          "All figures as reported in the full text"]


def _write_variant(path: Path, layout: dict[str, dict]) -> dict[str, dict[int, tuple]]:
    """Write the property form under ``layout``; return per sheet the Excel row -> record identity."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    rows_of: dict[str, dict[int, tuple]] = {}
    for sheet, fields in P_FIELDS.items():
        lay = layout[sheet]
        ws = wb.create_sheet(sheet)
        r = 1
        for t in range(lay["titles"]):
            ws.cell(row=r, column=1, value=TITLES[t].format(sheet=sheet))
            r += 1
        r += lay["blanks"]
        order = lay["order"]
        for c, f in enumerate(order, start=1):
            ws.cell(row=r, column=c, value=lay["names"][f])
        rows_of[sheet] = {}
        for rec in P_DATA[sheet]:
            r += 1
            values = dict(zip(fields, rec))
            for c, f in enumerate(order, start=1):
                ws.cell(row=r, column=c, value=values[f])
            rows_of[sheet][r] = tuple(values[k] for k in P_KEYS[sheet])
    wb.save(path)
    return rows_of


def _data_findings(findings: list[dict], rows_of: dict[str, dict[int, tuple]]) -> set[tuple]:
    out = set()
    for f in findings:
        if f.get("severity") not in ("error", "warning"):
            continue
        ident = rows_of.get(f.get("sheet"), {}).get(f.get("row"))
        if ident is not None:
            out.add((f.get("sheet"), ident, f.get("field"), f.get("rule"), f.get("severity")))
    return out


_RUNNER: dict[str, Any] = {}


def _validate_in_process(form: Path, out_json: Path) -> tuple[int, list[dict]]:
    # In-process (the CLI's own click command) to keep 15 examples within a few seconds; the subprocess
    # tests above exercise the installed binary.
    if not _RUNNER:
        from click.testing import CliRunner

        from curation.cli import main

        _RUNNER.update(runner=CliRunner(), main=main)
    out_json.unlink(missing_ok=True)
    r = _RUNNER["runner"].invoke(_RUNNER["main"], ["validate", str(form), "--json", str(out_json)])
    findings = json.loads(out_json.read_text())["findings"] if out_json.exists() else []
    return r.exit_code, findings, r.output.strip()[-300:]


def _base_layout() -> dict[str, dict]:
    return {s: dict(order=list(fs), names={f: f for f in fs}, titles=0, blanks=0) for s, fs in P_FIELDS.items()}


@pytest.fixture(scope="module")
def base_findings(tmp_path_factory):
    d = tmp_path_factory.mktemp("prop_base")
    rows_of = _write_variant(d / "base.xlsx", _base_layout())
    code, findings, _ = _validate_in_process(d / "base.xlsx", d / "base.json")
    got = _data_findings(findings, rows_of)
    # the property is not vacuous: the planted slips are found in the plain layout
    for sheet, ident, fld in [("studies", ("S03",), "doi"), ("outcomes", ("S02", "G3"), "grade")]:
        assert any(g[0] == sheet and g[1] == ident and g[2] == fld and g[4] == "error" for g in got), got
    for sheet, ident, fam in [("outcomes", ("S02", "overall"), "percent"), ("outcomes", ("S04", "overall"), "outside"),
                              ("adverse_events", ("S01", "nephrotoxicity"), "adverse")]:
        assert any(g[0] == sheet and g[1] == ident and fam in str(g[3]) for g in got), (fam, got)
    return code, got


@st.composite
def layouts(draw):
    out = {}
    for sheet, fields in P_FIELDS.items():
        order = draw(st.permutations(fields))
        names = {f: draw(st.sampled_from(HEADER_NAMES[sheet][f])) for f in fields}
        titles = draw(st.integers(0, 2))
        blanks = draw(st.integers(0, 2))
        out[sheet] = dict(order=list(order), names=names, titles=titles, blanks=blanks)
    return out


# No shrinking phase: each example is a full validate, and a failing run must stay within seconds too;
# the failure message prints the whole layout that broke the property.
@settings(max_examples=15, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts())
def test_layout_changes_never_change_findings_on_data_cells(layout, base_findings, tmp_path_factory):
    """Shuffling columns, renaming headers to the schema's listed aliases/synonyms and inserting title and
    blank rows above the header never changes the findings on the data cells (rule + field + record)."""
    base_code, base = base_findings
    d = tmp_path_factory.mktemp("prop")
    rows_of = _write_variant(d / "variant.xlsx", layout)
    code, findings, output = _validate_in_process(d / "variant.xlsx", d / "variant.json")
    got = _data_findings(findings, rows_of)
    summary = {s: (v["titles"], v["blanks"], [v["names"][f] for f in v["order"]]) for s, v in layout.items()}
    assert code == base_code, f"exit {code} vs {base_code} for layout {summary}\n{output}"
    assert got == base, (f"layout {summary}\nonly in the plain layout: {sorted(base - got, key=str)}\n"
                         f"only in this layout: {sorted(got - base, key=str)}")

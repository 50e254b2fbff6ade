"""`curate run`: every file of the contract, findings at their cells in the page and the
annotated copy, the input untouched, deterministic bytes, inert form text, exit codes, and the
"with and without" figures of excluded records checked against pool_proportions by hand."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from builders import good_ae, good_outcome, good_study, write_form
from curation.cli import main
from curation.pool import pool_proportions
from curation.safety import file_sha256
from test_rules import baseline


def planted() -> dict:
    """The correct baseline form plus three studies and a few reviewer's slips."""
    f = baseline()
    f["studies"] += [
        good_study(study_id="S03", first_author="Kwekkeboom", year=2008, doi="10.1200/JCO.2007.15.2553",
                   pmid=18445841, country="Netherlands", design="prospective", n_enrolled=60, enrolment_start=2000,
                   enrolment_end=2006),
        good_study(study_id="S04", first_author="Sansovini", year=2013, doi="10.1007/s00259-013-2477-4",
                   pmid=23732432, country="Italy", design="prospective", n_enrolled=90, enrolment_start=2008,
                   enrolment_end=2011, activity_per_cycle_gbq=12.0, cumulative_activity_gbq=48.0),  # warning
        good_study(study_id="S05", first_author="Ezziddin", year=1985, doi="10.2967/jnumed.113.133744",  # error
                   pmid=24610273, country="Germany", design="retrospective", n_enrolled=45, enrolment_start=2006,
                   enrolment_end=2011),
    ]
    f["outcomes"] += [
        # S03: 50 evaluable, CR 2 PR 10 SD 28 PD 10 -> ORR 24.0%, typed 34.0 (error)
        good_outcome(study_id="S03", grade="G1-2", primary_site="pancreas", n_evaluable=50, cr=2, pr=10, sd=28, pd=10,
                     orr_pct=34.0, dcr_pct=80.0, pfs_median=24, pfs_ci_low=18, pfs_ci_high=30, os_median=50,
                     os_ci_low=40, os_ci_high=60, followup_median_months=60),
        # S04: 80 evaluable -> ORR 38.8%, DCR 82.5%
        good_outcome(study_id="S04", grade="G1-2", primary_site="pancreas", n_evaluable=80, cr=1, pr=30, sd=35, pd=14,
                     orr_pct=38.8, dcr_pct=82.5, pfs_median=30, pfs_ci_low=25, pfs_ci_high=36, os_median=60,
                     os_ci_low=50, os_ci_high=70, followup_median_months=70),
        # S05: its study row has an error, so this row is excluded (a row-level finding)
        good_outcome(study_id="S05", grade="G1-2", primary_site="midgut", n_evaluable=40, cr=0, pr=8, sd=25, pd=7,
                     orr_pct=20.0, dcr_pct=82.5, pfs_median=26, pfs_ci_low=20, pfs_ci_high=33, os_median=55,
                     os_ci_low=45, os_ci_high=66, followup_median_months=60),
    ]
    f["outcomes"][3]["cr"] = 5  # S02 G3: CR+PR+SD+PD = 146 > n_evaluable 143
    f["adverse_events"].append(good_ae(study_id="S03", grade3plus_n=3, any_grade_n=20, n_safety=60))
    return f


HOSTILE = {  # (sheet, study row index, field) -> text typed as a string cell
    ("studies", 0, "country"): '=HYPERLINK("http://evil.example","click")',
    ("studies", 1, "first_author"): "<script>alert('x')</script>",
    ("studies", 0, "first_author"): "+cmd|' /C calc'!A0",
    ("studies", 3, "doi"): "@SUM(1+1)",
    ("studies", 1, "country"): "-2+3+cmd",
    ("outcomes", 0, "cohort"): "\toverall",
}


def hostile_form(path: Path) -> Path:
    write_form(path, **planted())
    wb = openpyxl.load_workbook(path)
    from builders import FIELDS

    for (sheet, i, field), text in HOSTILE.items():
        cell = wb[sheet].cell(i + 2, FIELDS[sheet].index(field) + 1)
        cell.value = text
        cell.data_type = "s"  # text that looks like a formula, as a reviewer's paste leaves it
    # and a real formula without a saved value
    wb["studies"].cell(6, FIELDS["studies"].index("first_author") + 1).value = '=HYPERLINK("http://x.example","y")'
    wb.save(path)
    return path


def run_cli(*args) -> "object":
    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    form = write_form(tmp / "planted.xlsx", **planted())
    digest = file_sha256(form)
    out1, out2 = tmp / "out1", tmp / "out2"
    r1 = run_cli("run", form, "-o", out1, "-q")
    r2 = run_cli("run", form, "-o", out2, "-q")
    return {"tmp": tmp, "form": form, "digest": digest, "out": out1, "out2": out2, "r1": r1, "r2": r2}


def findings_of(job) -> list[dict]:
    return json.loads((job["out"] / "findings.json").read_text())["findings"]


def test_run_writes_every_file_of_the_contract(job):
    assert job["r1"].exit_code == 1, job["r1"].output  # the run completed and found errors
    out = job["out"]
    expected = ["report.html", "findings.json", "findings.csv", "clean.csv", "clean_adverse_events.csv",
                "analysis.json", "planted.annotated.xlsx"]
    for name in expected:
        assert (out / name).is_file(), name
    analysis = json.loads((out / "analysis.json").read_text())
    ids = [a["id"] for a in analysis["analyses"]]
    assert {"orr", "dcr", "pfs", "os", "orr_by_grade", "dcr@PFT-REML"} <= set(ids)
    for a in analysis["analyses"]:
        stem = a["id"].replace(":", "--")
        shown = a.get("estimate") is not None and a["role"] in ("primary", "subgroup_test")
        # one forest plot per analysis the page shows, in one format (SVG by default)
        assert (out / "plots" / f"{stem}.svg").is_file() == shown, stem
        assert not (out / "plots" / f"{stem}.png").exists(), stem
        if a["role"] in ("sensitivity", "subgroup"):
            assert a["studies_as"] == a["parent"] and "studies_taken" not in a
        # funnel plot and Egger's test only from analysis.small_study_min_k (10) studies: k < 10 here
        assert not (out / "plots" / f"{stem}.funnel.svg").exists(), stem
        if a["role"] == "primary" and a.get("estimate") is not None:
            assert a["k"] < 10 and a["id"] not in analysis["egger"]
            assert any("Cochrane Handbook 10.4.3.1" in n and f"k = {a['k']} < 10" in n
                       for n in analysis["analysis_notes"][a["id"]]), a["id"]
    try:
        import curation.handoff  # noqa: F401
    except ImportError:
        pass
    else:
        assert (out / "analysis.R").is_file() and (out / "datapackage.json").is_file()
    # one timestamp only; everything else of analysis.json is data
    assert "generated" in analysis and analysis["schema"] == "prrt_177lu"
    # every error lies in fields some analysis does not use: no row is out of every analysis
    assert "rows read 15 = passed 15 + excluded 0" in job["r1"].output
    # self-contained: nothing fetched (only the SVG and xlink namespace names are URLs)
    html = (out / "report.html").read_text()
    assert set(re.findall(r"https?://[^\s\"')]+", html)) <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|@font-face", html)
    assert "@media print" in html


def test_findings_json_is_what_validate_writes(job):
    target = job["tmp"] / "validate.json"
    r = run_cli("validate", job["form"], "--json", target, "-q")
    assert r.exit_code == 1
    assert (job["out"] / "findings.json").read_bytes() == target.read_bytes()
    summary = json.loads(target.read_text())["summary"]
    assert summary["rows_read"] == summary["rows_passed"] + summary["rows_excluded"] == 15
    rows = list(csv.DictReader(io.StringIO((job["out"] / "findings.csv").read_text())))
    assert len(rows) == len(findings_of(job))
    assert [r["cell"] for r in rows] == [f["cell"] or "" for f in findings_of(job)]


def test_every_finding_is_in_the_page_and_on_its_cell(job):
    html = (job["out"] / "report.html").read_text()
    wb = openpyxl.load_workbook(job["out"] / "planted.annotated.xlsx")
    findings = findings_of(job)
    rules = {f["rule"] for f in findings}
    assert {"out-of-range", "percentage-mismatch", "response-sum-mismatch", "implausible-value"} <= rules
    # S05's study row has an error in its year, a field no analysis uses: its rows stay in every analysis
    assert "study-excluded" not in rules
    island = re.search(r'<script type="application/json" id="findings-data">(.*?)</script>', html, re.S)
    data = json.loads(island.group(1))  # the findings as data in the page, which its script shows
    assert [row[0] for row in data] == [f["cell"] or f["sheet"] for f in findings]
    assert [row[1:4] for row in data] == [[f["rule"], f["severity"], f["study_id"] or ""] for f in findings]
    for f in findings:
        if f["cell"] is None:
            continue
        cell = wb[f["sheet"]][f"{f['column'] or 'A'}{f['row']}"]
        assert cell.comment is not None and f["rule"] in cell.comment.text, f["cell"]
        colour = {"error": "FFC7CE", "warning": "FFE699", "info": "BDD7EE"}[f["severity"]]
        worst = min((g for g in findings if g["sheet"] == f["sheet"] and g["row"] == f["row"]
                     and (g["column"] or "A") == (f["column"] or "A")),
                    key=lambda g: ["error", "warning", "info"].index(g["severity"]))
        if worst is f:
            assert cell.fill.start_color.rgb.endswith(colour), f["cell"]
    # one comment lists every finding on a cell (outcomes!L5: percentage-mismatch only; F5 sum)
    sheet = wb["findings"]
    assert sheet.max_row == len(findings) + 1
    assert [c.value for c in sheet[1]][:6] == ["cell", "rule", "severity", "study_id", "message", "value"]


def test_input_is_never_written(job):
    assert file_sha256(job["form"]) == job["digest"]


def _strip_time(text: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)


def test_two_runs_give_the_same_bytes_but_the_timestamp(job):
    a, b = job["out"], job["out2"]
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    for name in ("findings.json", "findings.csv", "clean.csv", "clean_adverse_events.csv",
                 "planted.annotated.xlsx", "plots/orr.svg"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ja, jb = (json.loads((d / "analysis.json").read_text()) for d in (a, b))
    ja.pop("generated"), jb.pop("generated")
    assert ja == jb
    ta, tb = ((d / "analysis.json").read_text() for d in (a, b))
    assert _strip_time(ta) == _strip_time(tb)
    ha, hb = ((d / "report.html").read_text() for d in (a, b))
    assert len(re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ha)) == 1
    assert _strip_time(ha) == _strip_time(hb)


def test_influence_of_excluded_records_matches_pooling_by_hand(job):
    analysis = json.loads((job["out"] / "analysis.json").read_text())
    by_id = {a["id"]: a for a in analysis["analyses"]}
    infl = analysis["influence"]
    assert infl, "the S02 G3 row kept out of the grade subgroups would be taken by them"
    impacts = [x["impact"] if x["impact"] is not None else float("inf") for x in infl]
    assert impacts == sorted(impacts, reverse=True)
    orr = by_id["orr"]
    ev = [r["events"] for r in orr["studies_taken"]]
    n = [r["total"] for r in orr["studies_taken"]]
    # S05's study row has a wrong year (a field no analysis uses): S05 is taken, never "excluded with its study"
    assert "S05" in [r["study_id"] for r in orr["studies_taken"]]
    assert not any(x["study_id"] == "S05" for x in infl)
    pct = next(f for f in findings_of(job) if f["cell"] == "outcomes!N6")
    cites_counts = "cr" in (pct.get("involves") or [])  # the ORR % check names the counts it compares
    if not cites_counts:  # the finding names its own cell only: the ORR analysis does not use orr_pct
        assert sorted(r["study_id"] for r in orr["studies_taken"]) == ["S01", "S02", "S03", "S04", "S05"]
    else:
        assert sorted(r["study_id"] for r in orr["studies_taken"]) == ["S01", "S02", "S04", "S05"]
        s03 = next(x for x in infl if x["analysis"] == "orr" and x["study_id"] == "S03")
        assert s03["cell"] == "outcomes!6:6" and s03["errors"] == ["percentage-mismatch"]
        assert s03["without"]["estimate"] == pytest.approx(pool_proportions(ev, n).estimate, rel=1e-12)
        with_ = pool_proportions(ev + [12], n + [50])  # CR+PR = 12 of 50, as extracted
        assert s03["with"]["estimate"] == pytest.approx(with_.estimate, rel=1e-12)
        assert s03["with"]["k"] == 5 and s03["without"]["k"] == 4
        left = {r["study_id"]: r for r in orr["studies_left_out"]}
        assert left["S03"]["excluded_by"] == "percentage-mismatch" and "outcomes!N6" in left["S03"]["reason"]
        # the counts the finding cites are DCR's too, but no median: S03 stays in PFS and OS
        assert "S03" in [r["study_id"] for r in by_id["pfs"]["studies_taken"]]
        assert "S03" in [r["study_id"] for r in by_id["os"]["studies_taken"]]
    # a subgroup: the S02 G3 row (sum mismatch; CR 5 + PR 43) would enter ORR by grade, G3
    g3 = [x for x in infl if x["analysis"] == "orr_by_grade:G3"]
    assert g3 and g3[0]["study_id"] == "S02" and g3[0]["without"] is None
    assert g3[0]["with"]["estimate"] == pytest.approx(pool_proportions([48], [143]).estimate, rel=1e-12)
    html = (job["out"] / "report.html").read_text()
    assert "What matters most" in html and g3[0]["sentence"].replace("'", "&#39;") in html
    # leave-one-out and Egger for overall analyses
    assert len(analysis["leave_one_out"]["orr"]) == orr["k"] and "orr" not in analysis["egger"]  # k < 10


def test_formula_injection_is_inert_everywhere(tmp_path, monkeypatch):
    import curation.run

    monkeypatch.setattr(curation.run, "plot_jobs", lambda run: [])  # plots: see test_plot_text_cannot_escape
    form = hostile_form(tmp_path / "hostile.xlsx")
    digest = file_sha256(form)
    out = tmp_path / "out"
    r = run_cli("run", form, "-o", out, "-q")
    assert r.exit_code == 1, r.output
    assert file_sha256(form) == digest
    for name in ("clean.csv", "findings.csv", "clean_adverse_events.csv"):
        for row in csv.reader(io.StringIO((out / name).read_text())):
            for value in row:
                assert not value.startswith(("=", "+", "@", "\t", "\r")), (name, value)
                if value.startswith("-"):
                    float(value)  # only numbers may start with a minus
    clean = (out / "clean.csv").read_text()
    assert "'+cmd|' /C calc'!A0" in clean and "'=HYPERLINK" in clean and "'-2+3+cmd" in clean
    html = (out / "report.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert html.count("<script") == 2  # the findings' data (inert JSON) and the page's own script
    island = re.search(r'<script type="application/json" id="findings-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in island and ">" not in island and len(json.loads(island)) == len(findings_of({"out": out}))
    data = (out / "hostile.annotated.xlsx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert not re.search(rb"<f[ >]", z.read(name)), name  # no formula element at all
    wb = openpyxl.load_workbook(io.BytesIO(data))
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", f"{ws.title}!{c.coordinate}"
    for row in wb["findings"].iter_rows(min_row=2, values_only=True):
        for v in row:
            assert not (isinstance(v, str) and v.startswith(("=", "+", "@", "\t", "\r"))), v
    assert wb["studies"]["B6"].value.startswith("'=HYPERLINK")  # the formula, kept as inert text


def test_plot_text_cannot_escape_into_the_page():
    from curation.plots import figure_svg, forest_plot
    from curation.report import inline_svg

    r = pool_proportions([3, 5], [10, 12])
    svg = figure_svg(forest_plot(r, ["--><script>alert(1)</script>", "<b>x</b> &amp;"], title="<i>t</i>"))
    page = inline_svg(svg, "f0")
    assert page.startswith("<svg") and "<script" not in page and "<b>" not in page and "<i>" not in page
    assert 'id="f0-' in page and "<!--" not in page


def test_unreadable_form_exits_2_and_writes_nothing(tmp_path, job):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"this is not a workbook\n" * 10)
    out = tmp_path / "out"
    r = run_cli("run", job["form"], bad, "-o", out)
    assert r.exit_code == 2
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.xlsx"]  # no temporary folder left behind
    assert "Traceback" not in r.output


def test_existing_folder_keeps_files_the_run_did_not_write(tmp_path, job, monkeypatch):
    import curation.run

    monkeypatch.setattr(curation.run, "plot_jobs", lambda run: [])  # plots are not the point here (speed)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the reviewer's own file")
    (out / "report.html").write_text("an earlier run")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"PK\x03\x04 broken")
    assert run_cli("run", bad, "-o", out).exit_code == 2
    assert (out / "report.html").read_text() == "an earlier run"  # nothing written on failure
    clean = write_form(tmp_path / "clean.xlsx", **baseline())
    r = run_cli("run", clean, "-o", out, "-q")
    assert r.exit_code == 0, r.output  # no error-severity finding
    assert (out / "notes.txt").read_text() == "the reviewer's own file"
    assert "<html" in (out / "report.html").read_text() and (out / "clean.annotated.xlsx").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xlsx", "clean.xlsx", "out"]
    assert not [p for p in out.rglob(".*") if p.name.endswith(".tmp")]  # no temporary file left


def test_output_folder_that_is_a_file_or_would_overwrite_an_input_is_refused(tmp_path, monkeypatch):
    import curation.run
    from curation.run import check_output_dir
    from curation.errors import UnusableInputError

    monkeypatch.setattr(curation.run, "plot_jobs", lambda run: [])
    clean = write_form(tmp_path / "clean.xlsx", **baseline())
    digest = file_sha256(clean)
    r = run_cli("run", clean, "-o", clean, "-q")
    assert r.exit_code == 2 and file_sha256(clean) == digest
    # the inputs' own folder is fine: nothing of the run has an input's name
    r = run_cli("run", clean, "-o", tmp_path, "-q")
    assert r.exit_code == 0, r.output
    assert file_sha256(clean) == digest and (tmp_path / "clean.annotated.xlsx").is_file()
    # ... unless a file of the run would replace an input
    with pytest.raises(UnusableInputError, match="would overwrite the input form"):
        check_output_dir(tmp_path, ["report.html", "clean.xlsx"], [clean])
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "plots").write_text("a file where the run writes a folder")
    with pytest.raises(UnusableInputError, match="is a file"):
        check_output_dir(tmp_path / "sub", ["plots/orr.svg"], [clean])
    assert file_sha256(clean) == digest


def test_validate_report_and_annotate(tmp_path, job):
    page, folder = tmp_path / "page.html", tmp_path / "ann"
    r = run_cli("validate", job["form"], "--report", page, "--annotate", folder, "-q")
    assert r.exit_code == 1
    html = page.read_text()
    assert "outcomes!N6" in html and "Findings" in html
    assert (folder / "planted.annotated.xlsx").read_bytes() == (job["out"] / "planted.annotated.xlsx").read_bytes()


def test_demo_runs_on_the_example_forms(tmp_path, monkeypatch):
    import curation.run

    root = Path(__file__).resolve().parent.parent
    if not (root / "extraction_forms" / "example_reviewer_a.xlsx").is_file():
        pytest.skip("the example forms are not there")
    monkeypatch.chdir(root)
    monkeypatch.setattr(curation.run, "plot_jobs", lambda run: [])  # the plots are tested above (speed)
    out = tmp_path / "demo"
    r = run_cli("demo", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    assert (out / "report.html").is_file() and (out / "example_consensus.xlsx").is_file()
    assert (out / "example_consensus.annotated.xlsx").is_file()
    summary = json.loads((out / "findings.json").read_text())["summary"]
    assert summary["rows_read"] == summary["rows_passed"] + summary["rows_excluded"] > 0
    for name in ("example_reviewer_a.xlsx", "example_reviewer_b.xlsx"):
        assert (root / "extraction_forms" / name).is_file()  # read, never moved or written
    assert not list(tmp_path.glob(".demo.*"))


def test_annotated_copy_one_comment_per_cell_and_renamed_sheets(tmp_path):
    from curation.report import annotated_workbook
    from curation.validation import validate

    form = hostile_form(tmp_path / "hostile.xlsx")
    result = validate(form)
    wb = openpyxl.load_workbook(io.BytesIO(annotated_workbook(form, result.finding_list)))
    text = wb["studies"]["B6"].comment.text  # a formula with no saved value: two findings, one comment
    assert "formula-without-value" in text and "missing-required" in text
    assert wb["studies"]["B6"].fill.start_color.rgb.endswith("FFC7CE")
    # a sheet named differently in the workbook ("Adverse events") still gets its marks
    f = planted()
    f["adverse_events"][0]["grade3plus_n"] = 50  # more grade >= 3 events than any grade
    renamed = write_form(tmp_path / "renamed.xlsx", **f, sheet_names={"adverse_events": "Adverse events"})
    result = validate(renamed)
    hits = [x for x in result.finding_list if x.contract_sheet == "adverse_events" and x.column]
    assert hits and all(x.sheet == "Adverse events" for x in hits)  # findings cite the workbook's own name
    wb = openpyxl.load_workbook(io.BytesIO(annotated_workbook(renamed, result.finding_list)))
    for x in hits:
        assert x.rule in wb["Adverse events"][f"{x.column}{x.row}"].comment.text
    assert wb.sheetnames[-1] == "findings"

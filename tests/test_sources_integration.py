"""Checking figures against their articles, as the rest of curate sees it: the schema's
``source_terms`` / ``verify`` / ``type: source``, the worked example's generator (MADE-UP articles
and form), the report's Sources section and the annotated comments rendered from hand-built
entries, and ``curate run --sources`` end to end with the article checker (``curation.sources``)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import textwrap
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from curation import sources_example as ex
from curation.cli import main
from curation.errors import SchemaError
from curation.findings import Finding
from curation.schema import load_schema
from curation.verification import cell_notes, counts, note_text, sources_view, summary_line, with_findings


def _schema_file(tmp_path: Path, fields: str, outcome_fields: str = "") -> Path:
    """A small schema: ``fields`` added to the studies sheet, ``outcome_fields`` to the outcomes sheet
    (each a YAML mapping of fields, one per line, unindented)."""

    def block(text: str) -> list[str]:
        return ["      " + line for line in textwrap.dedent(text).splitlines() if line.strip()]

    lines = ["name: mini", "sheets:", "  studies:", "    key: [study_id]", "    fields:",
             "      study_id: {type: text, required: true}", *block(fields),
             "  outcomes:", "    key: [study_id, cohort]", "    parent: {sheet: studies, key: study_id}", "    fields:",
             "      study_id: {type: text, required: true}", "      cohort: {type: text, required: true}",
             "      pfs_unit: {type: vocabulary, vocabulary: unit, default: months}",
             "      pfs_median: {type: number, unit_field: pfs_unit, aliases: [PFS median, mPFS], "
             "synonyms: [Median PFS]}", *block(outcome_fields),
             "vocabularies:", "  unit:", "    terms:", "      - {value: months, factor: 1}"]
    p = tmp_path / "mini.yaml"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------


def test_source_terms_and_verify_defaults(tmp_path):
    s = load_schema(_schema_file(tmp_path, """\
        article: {type: source}
        n_enrolled: {type: integer, aliases: [N enrolled], source_terms: [patients were enrolled, enrolled]}
        country: {type: text}
        year: {type: integer, verify: false}
        extractor: {type: text, metadata: true}
        latitude: {type: number}
        pmid: {type: integer}
        """, """\
        grade: {type: vocabulary, vocabulary: unit, verify: false}
        events: {type: integer, derived: true}
        cycles: {type: number, source_terms: just one}
        """))
    assert s.source_field == "article"
    studies = s.verified_fields("studies")
    # numbers and vocabularies by default; text, metadata, the source field, identifiers, verify: false never
    assert list(studies) == ["n_enrolled", "latitude"]
    assert studies["n_enrolled"] == ("patients were enrolled", "enrolled")
    assert studies["latitude"] == ("latitude",)  # no label, alias or synonym: the key in words
    outcomes = s.verified_fields("outcomes")
    # the key, the link to the study and the unit field are left out; a derived field is never verified
    assert list(outcomes) == ["pfs_median", "cycles"]
    assert outcomes["pfs_median"] == ("PFS median", "mPFS", "Median PFS")  # default: aliases, synonyms
    assert outcomes["cycles"] == ("just one",)
    assert s.unverified_by_default("outcomes") == frozenset({"study_id", "cohort", "pfs_unit"})
    assert s.unverified_by_default("studies") == frozenset({"study_id", "pmid"})
    # verify: true brings an identifier or a key back
    s2 = load_schema(_schema_file(tmp_path, "pmid: {type: integer, verify: true}\n"))
    assert "pmid" in s2.verified_fields("studies")


@pytest.mark.parametrize(("fields", "outcome_fields", "message", "line"), [
    ("n: {type: integer, source_terms: []}\n", "", "source_terms lists the words", 7),
    ("n: {type: integer, source_terms: [ok, '  ']}\n", "", "none of them empty", 7),
    ("n: {type: integer, verify: maybe}\n", "", "verify", 7),
    ("a: {type: source}\nb: {type: source}\n", "", "only one field of type source", 8),
    ("", "article: {type: source}\n", "belongs on the 'studies' sheet", 15),
    ("a: {type: source, source_terms: [x]}\n", "", "'source_terms' does not apply to a field of type source", 7),
    ("t: {type: text, verify: true}\n", "", "verify: true is for numbers and vocabulary fields", 7),
    ("n: {type: integer, derived: true, verify: true}\n", "", "a derived field is never checked", 7),
])
def test_schema_errors_name_the_line(tmp_path, fields, outcome_fields, message, line):
    with pytest.raises(SchemaError) as err:
        load_schema(_schema_file(tmp_path, fields, outcome_fields))
    text = str(err.value)
    assert message in text
    assert f"line {line}:" in text


@pytest.mark.parametrize("name", ["prrt_177lu", "bcg_vaccine"])
def test_shipped_schemas_give_every_verified_field_its_words(name):
    s = load_schema(name)
    for sheet, spec in s.sheets.items():
        for field in s.verified_fields(sheet):
            fs = spec.fields[field]
            assert fs.source_terms, f"{name}: {sheet}.{field} is verified but has no source_terms"
    # identifiers and the publication year are not figures in the article
    assert "year" not in s.verified_fields(s.root_sheet)


def test_prrt_terms_are_the_words_articles_use():
    s = load_schema("prrt_177lu")
    out = s.verified_fields("outcomes")
    assert {"objective response rate", "ORR", "overall response"} <= set(out["orr_pct"])
    assert {"disease control rate", "DCR"} <= set(out["dcr_pct"])
    assert {"progression-free survival", "PFS", "median PFS"} <= set(out["pfs_median"])
    assert {"partial response"} <= set(out["pr"]) and {"stable disease"} <= set(out["sd"])
    assert "grade 3" in s.verified_fields("adverse_events")["grade3plus_n"]
    assert s.source_field == "source" and "pmid" not in s.verified_fields("studies")
    bcg = load_schema("bcg_vaccine").verified_fields("comparisons")
    assert "cases" in bcg["events_vaccinated"] and "control" in bcg["total_control"]


# ---------------------------------------------------------------------------------------------
# The worked example
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> dict[str, bytes]:
    return ex.example_files()


def test_example_is_deterministic(example):
    again = ex.example_files()
    assert list(again) == list(example) == ["sources_example.xlsx", "articles/almeida2021.pdf",
                                            "articles/bergstrom2019.xml", "articles/castell2022.pdf"]
    for name in example:
        assert again[name] == example[name], f"{name} differs between two builds"
    assert sum(map(len, example.values())) < 200_000


def test_example_articles_are_labelled_made_up_and_readable(example):
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 reads the PDFs' text layer")
    for name in ("articles/almeida2021.pdf", "articles/castell2022.pdf"):
        pdf = pdfium.PdfDocument(example[name])
        assert pdf.get_metadata_dict()["Subject"].startswith("doi:10.5555/madeup.")
        for i in range(len(pdf)):
            text = pdf[i].get_textpage().get_text_range()
            assert "MADE-UP ARTICLE" in text
        text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        assert "Discussion" in text and "Table" in text
    first = pdfium.PdfDocument(example["articles/almeida2021.pdf"])[0]
    tp = first.get_textpage()
    # two columns: "Methods" (left column) starts left of the page's middle, "Discussion" right of it
    width = first.get_width()
    left = tp.search("Introduction").get_next()
    right = tp.search("Discussion").get_next()
    assert left and right
    assert tp.get_charbox(left[0])[0] < width / 2 < tp.get_charbox(right[0])[0]


def test_example_jats_has_front_matter_sections_and_a_table(example):
    from defusedxml.ElementTree import fromstring

    root = fromstring(example["articles/bergstrom2019.xml"])
    ids = {e.get("pub-id-type"): e.text for e in root.iter("article-id")}
    assert ids == {"pmcid": "PMC0000002", "doi": "10.5555/madeup.bergstrom.2019"}
    assert "MADE-UP" in root.find(".//article-title").text
    assert [t.text for t in root.iter("title")] == ["Methods", "Results", "Discussion"]
    rows = [[c.text for c in tr] for tr in root.iter("tr")]
    assert rows[0] == ["Response", "n", "%"] and ["Partial response", "14", "29.2"] in rows
    assert "41.2" in "".join(root.find(".//sec[@id='s3']").itertext())  # another trial's OS, in the discussion


def test_example_form_holds_the_slips_and_passes_the_internal_checks(example, tmp_path):
    from curation.validation import validate

    path = tmp_path / ex.FORM
    path.write_bytes(example[ex.FORM])
    result = validate(path)
    # the slips keep the arithmetic right: only the OS figure typed without its CI is noticed
    assert [(f.rule, f.cell) for f in result.finding_list] == [("median-without-ci", "outcomes!T3")]
    clean = result.clean
    row = clean[(clean.study_id == "ALMEIDA2021")].iloc[0]
    assert row.pfs_median == 26.4  # the slip, as typed
    wb = openpyxl.load_workbook(path)
    header = [c.value for c in wb["studies"][1]]
    sources = [r[header.index("source")] for r in wb["studies"].iter_rows(min_row=2, values_only=True)]
    assert sources == ["almeida2021.pdf", "PMC0000002", "10.5555/madeup.castell.2022"]
    # every slip is a value the article does not print for that cell
    for (sheet, key, field), (value, _why, _expect) in ex.SLIPS.items():
        recs = {tuple(r[k] for k in load_schema("prrt_177lu").sheets[sheet].key): r for r in ex.form_records()[sheet]}
        truth = ex.STUDIES[key[0]][sheet][key[1]].get(field) if sheet != "studies" else None
        assert recs[key][field] == value != truth


# ---------------------------------------------------------------------------------------------
# Rendering hand-built entries
# ---------------------------------------------------------------------------------------------


def _entry(**kw):
    base = dict(file="form.xlsx", sheet="outcomes", row=2, column="N", cell="outcomes!N2", field="pfs_median",
                study_id="S01", value=26.4, status="found", source="s01.pdf", place="s01.pdf, page 3",
                quote="median PFS was 24.6 months (95% CI 19.8-30.1)", printed="24.6")
    base.update(kw)
    return base


ENTRIES = [
    _entry(status="mismatch", quote="median PFS was <24.6> months & more"),
    _entry(row=2, column="H", cell="outcomes!H2", field="n_evaluable", value=78, status="found", printed="78",
           quote="78 were evaluable for response"),
    _entry(row=2, column="L", cell="outcomes!L2", field="orr_pct", value=21.7, status="inconsistent-source",
           place="s01.pdf, page 1 vs s01.pdf, page 4, Table 2", printed="20.3", quote="13 (20.3%) had a response"),
    _entry(row=2, column="I", cell="outcomes!I2", field="cr", value=2, status="absent", printed=None, place=None,
           quote=None),
    _entry(study_id="S02", source=None, row=3, column="N", cell="outcomes!N3", status="unreadable", place=None,
           quote="no article in the sources folder matches study S02 (source field empty)", printed=None),
]


def test_sources_view_per_study():
    view = sources_view(ENTRIES)
    assert [s["study"] for s in view] == ["S01", "S02"]
    s1, s2 = view
    assert (s1["checked"], s1["found"], s1["share"]) == (4, 1, "25%")
    assert s1["counts"]["mismatch"] == 1 and s1["counts"]["inconsistent-source"] == 1
    assert [p["status"] for p in s1["problems"]] == ["mismatch", "inconsistent-source"]
    assert s1["problems"][0]["quote"] == "median PFS was <24.6> months & more"
    assert s1["problems"][0]["printed"] == "24.6" and s1["problems"][0]["value"] == "26.4"
    assert [o["field"] for o in s1["others"]] == ["cr"]
    assert (s2["checked"], s2["share"], s2["sources"]) == (0, "", "")
    assert s2["unreadable"] == ["no article in the sources folder matches study S02 (source field empty)"]
    assert counts(ENTRIES)["found"] == 1
    assert summary_line(ENTRIES) == ("4 figures checked against their articles: 1 found (25%), 1 mismatch, "
                                     "1 inconsistent in the article, 1 absent; 1 not checked (no readable article)")


def test_entries_may_be_objects_with_to_dict():
    @dataclasses.dataclass(frozen=True)
    class Entry:
        d: dict

        def to_dict(self):
            return self.d

    assert sources_view([Entry(e) for e in ENTRIES]) == sources_view(ENTRIES)
    assert note_text(Entry(ENTRIES[0])) == note_text(ENTRIES[0])


def test_cell_notes_carry_status_place_and_quote():
    notes = cell_notes(ENTRIES, "form.xlsx")
    assert notes[("outcomes", 2, "N")] == ('Source: MISMATCH: the article prints 24.6 here (s01.pdf, page 3): '
                                           '"median PFS was <24.6> months & more"')
    assert notes[("outcomes", 2, "H")].startswith('Source: found in s01.pdf, page 3: "78 were evaluable')
    assert "two values" in notes[("outcomes", 2, "L")] and "page 4, Table 2" in notes[("outcomes", 2, "L")]
    assert notes[("outcomes", 2, "I")] == "Source: not found in s01.pdf"
    assert notes[("outcomes", 3, "N")].startswith("Source: not checked: no article")
    assert cell_notes(ENTRIES, "other.xlsx") == {}


@pytest.fixture(scope="module")
def example_run(example, tmp_path_factory):
    from curation.run import run_job

    folder = tmp_path_factory.mktemp("example")
    (folder / ex.FORM).write_bytes(example[ex.FORM])
    return run_job([folder / ex.FORM], None, names=[ex.FORM], generated="2026-01-01T00:00:00Z")


def _entries_for(run) -> list[dict]:
    """Hand-built entries at the example form's real cells (the studies' first verified fields)."""
    out = []
    for sheet, t in run.validation.tables.items():
        for i in range(len(t.data)):
            row = int(t.data["_row"].iat[i])
            sid = t.data["study_id"].iat[i]
            letter = {"studies": "K", "outcomes": "N", "adverse_events": "C"}[sheet]
            status = "mismatch" if (sheet, sid) == ("outcomes", "ALMEIDA2021") else "found"
            out.append(_entry(file=ex.FORM, sheet=sheet, row=row, column=letter, cell=f"{sheet}!{letter}{row}",
                              study_id=sid, status=status, source=f"{sid.lower()}.pdf",
                              place=f"{sid.lower()}.pdf, page 2", quote=f"<quote> of {sid} row {row}"))
    return out


def test_report_renders_the_sources_section(example_run):
    from curation.report import render_report

    entries = _entries_for(example_run)
    run = dataclasses.replace(example_run, verification=tuple(entries), sources="/somewhere/articles")
    html = render_report(run, {})
    section = html[html.index('<section id="sources">'):]
    section = section[:section.index("</section>")]
    assert '<a href="#sources">Sources</a>' in html
    assert "in <code>articles</code>" in section and "/somewhere" not in html  # no local path in the page
    assert re.search(r"<b>\d+ found \(\d+%\)</b>", section)
    assert "ALMEIDA2021" in section and "BERGSTROM2019" in section and "CASTELL2022" in section
    assert "&lt;quote&gt; of ALMEIDA2021" in section and "<quote>" not in section  # escaped
    # without --sources the page has no such section
    plain = render_report(example_run, {})
    assert 'id="sources"' not in plain and 'href="#sources"' not in plain


def test_validation_page_takes_the_sources_section_too(example_run):
    from curation.report import render_validation_page

    entries = _entries_for(example_run)
    html = render_validation_page(example_run.validation, verification=entries, sources="articles",
                                  title="curate verify")
    assert "<title>curate verify: prrt_177lu</title>" in html and '<section id="sources">' in html
    assert "&lt;quote&gt; of ALMEIDA2021" in html and "CASTELL2022" in html
    assert 'id="sources"' not in render_validation_page(example_run.validation)


def test_annotated_copy_has_the_quote_in_the_cell_comment(example_run, example, tmp_path):
    from curation.report import annotated_workbook

    path = tmp_path / ex.FORM
    path.write_bytes(example[ex.FORM])
    entries = _entries_for(example_run)
    v = example_run.validation
    data = annotated_workbook(path, [f for f in v.finding_list if f.file == ex.FORM], v, ex.FORM,
                              verification=entries)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    studies_k2 = wb["studies"]["K2"].comment.text
    assert studies_k2 == 'Source: found in almeida2021.pdf, page 2: "<quote> of ALMEIDA2021 row 2"'
    assert wb["studies"]["K2"].fill.fill_type is None  # a note, not a finding: no fill
    t3 = wb["outcomes"]["T3"].comment.text  # a finding's cell keeps its finding first
    assert t3.startswith("WARNING median-without-ci")
    assert "MISMATCH" in wb["outcomes"]["N2"].comment.text
    # the large-form path (write-only copy) carries the same line
    from curation import report

    big = report._write_only_copy(path, list(v.finding_list), v, ex.FORM, "", data=example[ex.FORM],
                                  cell_notes=cell_notes(entries, ex.FORM))
    wb2 = openpyxl.load_workbook(io.BytesIO(big))
    assert wb2["studies"]["K2"].comment.text == studies_k2


def test_source_findings_join_the_summary(example_run):
    v = example_run.validation
    extra = [Finding(ex.FORM, "outcomes", 2, "N", "pfs_median", "ALMEIDA2021", "source-mismatch", "warning",
                     "the article prints 24.6"),
             Finding(ex.FORM, "studies", 3, None, None, "BERGSTROM2019", "source-absent", "info", "x")]
    w = with_findings(load_schema("prrt_177lu"), v, extra)
    assert (w.summary.warnings, w.summary.info, w.summary.errors) == (v.summary.warnings + 1, v.summary.info + 1, 0)
    assert w.summary.by_rule["source-mismatch"] == 1
    assert w.summary.rows_passed == v.summary.rows_passed and w.passed is v.passed
    assert [f.cell for f in w.finding_list if f.rule.startswith("source")] == ["studies!3:3", "outcomes!N2"]
    assert with_findings(load_schema("prrt_177lu"), v, []) is v


# ---------------------------------------------------------------------------------------------
# curate run --sources
# ---------------------------------------------------------------------------------------------


def _cli(*args):
    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def test_run_with_a_missing_sources_folder_is_refused(example, tmp_path):
    form = tmp_path / ex.FORM
    form.write_bytes(example[ex.FORM])
    out = tmp_path / "out"
    r = _cli("run", form, "-o", out, "-q", "--sources", tmp_path / "nope")
    assert r.exit_code == 2
    assert "nope: does not exist; --sources names the folder" in r.output
    assert not out.exists()


def test_run_sources_wiring_with_a_stand_in_checker(example, tmp_path, monkeypatch):
    """The run hands its validation to the checker and renders what comes back (the checker's
    quality is tested with the checker; here a stand-in returns hand-built entries)."""
    import sys
    import types

    calls = []

    def verify_tables(schema, tables, sources_dir, *, cache_dir=None):
        calls.append((schema.name, Path(sources_dir).name, cache_dir))
        v = tables  # the run's ValidationResult: its tables carry each cell's provenance
        t = v.tables["outcomes"]
        entries, findings = [], []
        for i in range(len(t.data)):
            row, sid = int(t.data["_row"].iat[i]), t.data["study_id"].iat[i]
            status = "mismatch" if sid == "ALMEIDA2021" else "found"
            entries.append(_entry(file=ex.FORM, sheet="outcomes", row=row, column="P", cell=f"outcomes!P{row}",
                                  study_id=sid, status=status, source=f"{sid.lower()}.pdf",
                                  quote=f"median PFS quoted for {sid}"))
            if status == "mismatch":
                findings.append(Finding(ex.FORM, "outcomes", row, "P", "pfs_median", sid, "source-mismatch",
                                        "warning", f"outcomes!P{row}: the article prints 24.6"))
        return types.SimpleNamespace(entries=tuple(entries), findings=tuple(findings))

    fake = types.ModuleType("curation.sources")
    fake.verify_tables = verify_tables
    monkeypatch.setitem(sys.modules, "curation.sources", fake)
    import curation

    monkeypatch.setattr(curation, "sources", fake, raising=False)
    form = tmp_path / ex.FORM
    form.write_bytes(example[ex.FORM])
    (tmp_path / "articles").mkdir()
    out = tmp_path / "out"
    r = _cli("run", form, "-o", out, "-q", "--plots", "none", "--sources", tmp_path / "articles")
    assert r.exit_code == 0, r.output
    assert calls == [("prrt_177lu", "articles", None)]
    assert "4 figures checked against their articles: 3 found (75%), 1 mismatch" in " ".join(r.output.split())
    found = json.loads((out / "findings.json").read_text())
    assert [f["cell"] for f in found["findings"] if f["rule"] == "source-mismatch"] == ["outcomes!P2"]
    assert found["summary"]["by_rule"]["source-mismatch"] == 1 and found["summary"]["warning"] == 2
    assert [e["status"] for e in found["verification"]] == ["mismatch", "found", "found", "found"]
    assert json.loads((out / "analysis.json").read_text())["sources"] == "articles"
    csv_lines = (out / "verification.csv").read_text().splitlines()
    assert len(csv_lines) == 5 and csv_lines[1].startswith("sources_example.xlsx,outcomes,2,P,outcomes!P2,")
    html = (out / "report.html").read_text()
    assert "<b>3 found (75%)</b>" in html and "median PFS quoted for ALMEIDA2021" in html
    wb = openpyxl.load_workbook(out / "sources_example.annotated.xlsx")
    text = wb["outcomes"]["P2"].comment.text
    assert text.startswith("WARNING source-mismatch") and 'Source: MISMATCH' in text
    assert "median PFS quoted for ALMEIDA2021" in text
    assert wb["outcomes"]["P3"].comment.text.startswith("Source: found in")
    # the source findings are warnings: the same rows pass, the same studies are pooled
    plain = tmp_path / "plain"
    assert _cli("run", form, "-o", plain, "-q", "--plots", "none").exit_code == 0
    assert (plain / "clean.csv").read_bytes() == (out / "clean.csv").read_bytes()


def _has_checker() -> bool:
    try:
        from curation.sources import verify_tables  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_checker(), reason="the article checker (curation.sources) is not in this build")
def test_run_with_sources_end_to_end(example, tmp_path):
    root = tmp_path / "ex"
    for rel, data in example.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    out = tmp_path / "out"
    r = _cli("run", root / ex.FORM, "-o", out, "-q", "--sources", root / "articles")
    assert r.exit_code == 0, r.output
    assert "figures checked against their articles" in r.output
    found = json.loads((out / "findings.json").read_text())
    entries = found["verification"]
    assert entries and set(entries[0]) >= {"file", "sheet", "row", "column", "cell", "field", "study_id", "value",
                                           "status", "source", "place", "quote", "printed"}
    by_cell = {(e["study_id"], e["field"], e["row"]): e for e in entries}
    status = {(e["study_id"], e["field"]): e["status"] for e in entries}
    form = ex.form_records()
    # every planted slip is reported, never "found"
    for (sheet, key, field), (_value, why, _expect) in ex.SLIPS.items():
        rows = [i + 2 for i, r in enumerate(form[sheet]) if (r["study_id"], r.get("cohort")) == key]
        e = by_cell[(key[0], field, rows[0])]
        assert e["status"] in ("mismatch", "absent", "inconsistent-source"), (field, why, e)
    rules = {(f["study_id"], f["field"]): f["rule"] for f in found["findings"] if f["rule"].startswith("source-")}
    assert rules[("ALMEIDA2021", "pfs_median")] == "source-mismatch"
    assert rules[("BERGSTROM2019", "ki67_max")] == "source-mismatch"
    # the correct figures: most are found, few flagged
    correct = [e for e in entries if (e["study_id"], e["field"]) not in {(k[0], f) for (_s, k, f) in ex.SLIPS}
               and (e["study_id"], e["field"]) not in {(k[0], f) for (_s, k, f) in ex.INCONSISTENT}]
    share = sum(e["status"] == "found" for e in correct) / len(correct)
    flagged = sum(e["status"] in ("mismatch", "inconsistent-source") for e in correct)
    assert share >= 0.8, [(e["cell"], e["field"], e["status"]) for e in correct if e["status"] != "found"]
    assert flagged <= 0.05 * len(correct) + 1
    html = (out / "report.html").read_text()
    assert '<section id="sources">' in html and "almeida2021.pdf" in html
    wb = openpyxl.load_workbook(out / "sources_example.annotated.xlsx")
    e = by_cell[("ALMEIDA2021", "pfs_median", 2)]
    comment = wb["outcomes"][f"{e['column']}{e['row']}"].comment.text
    assert "source-mismatch" in comment and "Source: MISMATCH" in comment and e["quote"][:30] in comment
    assert (out / "verification.csv").read_text().startswith("file,sheet,row,column,cell,field,study_id,value,status")
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["sources"] == "articles" and len(analysis["verification"]) == len(entries)


@pytest.mark.skipif(not _has_checker(), reason="the article checker (curation.sources) is not in this build")
def test_example_abstract_against_table_is_an_inconsistency(example, tmp_path):
    from curation.run import run_job

    for rel, data in example.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    run = run_job([tmp_path / ex.FORM], None, names=[ex.FORM], sources=tmp_path / "articles", cache_dir=False)
    (sheet, key, field), = ex.INCONSISTENT
    hit = [e for e in run.verification if (e.study_id, e.field, e.row) == (key[0], field, 4)]
    assert len(hit) == 1 and hit[0].status == "inconsistent-source"
    assert "27.1" in (hit[0].printed or "") or "27.1" in (hit[0].quote or "")


def test_run_without_sources_writes_what_it_wrote_before(example_run):
    from curation.run import render_outputs

    files = render_outputs(example_run, plots="none")
    assert "verification.csv" not in files
    assert "verification" not in json.loads(files["findings.json"])
    assert "verification" not in json.loads(files["analysis.json"])

"""The source check end to end: a form checked against articles the tests write (JATS and a two-column PDF), one
case per rule code of the source check, and the bad input a sources folder may hold."""

from __future__ import annotations

import json

import pytest

from builders import good_outcome, good_study, write_form
from sources_articles import write_jats, write_pdf

SOURCE_CODES = {"source-mismatch", "source-inconsistent", "source-value-elsewhere", "source-absent",
                "source-unreadable"}

ABSTRACT = [
    "Background: A phase 3 trial reported a median progression-free survival of 8.4 months with octreotide.",
    "Results: Of 116 patients enrolled, 101 were evaluable. The objective response rate was 17.8% (18 of 101) and "
    "the disease control rate 87.1%. Median progression-free survival was 28.4 months (95% CI 19.4–35.8); median "
    "overall survival was 48.0 months (95% CI 37.4–55.2).",
]
RESULTS = [
    "Best response was complete in one patient and partial in seventeen (Table 1).",
    "Median overall survival was 48.6 months (95% CI 37.4–55.2) at the final analysis.",
    "The data cut-off came 76.3 months after the first enrolment.",
]
DISCUSSION = ["An earlier trial of everolimus reported a median PFS of 11.0 months and a response rate of 5%."]
TABLE = ("Table 1", "Best overall response (RECIST 1.1)", ["Response", "n (%)"],
         [["Complete response (CR)", "1 (1.0)"], ["Partial response (PR)", "17 (16.8)"],
          ["Stable disease (SD)", "70 (69.3)"], ["Progressive disease (PD)", "13 (12.9)"]])


@pytest.fixture()
def sources(tmp_path):
    d = tmp_path / "sources"
    d.mkdir()
    write_jats(d / "netter_made_up.nxml", doi="10.1056/NEJMoa1607427", abstract=ABSTRACT,
               sections=[("Introduction", ["Earlier reports gave a median PFS of 30.1 months."]),
                         ("Results", RESULTS), ("Discussion", DISCUSSION)], table=TABLE, surname="Strosberg")
    return d


def _verify(tmp_path, sources, outcome=None, studies=None):
    from curation.sources import verify

    form = write_form(tmp_path / "form.xlsx", studies or [good_study()], [outcome or good_outcome()], [])
    return verify(form, sources, cache_dir=tmp_path / "cache")


def test_correct_figures_are_found_with_place_and_quote(tmp_path, sources):
    _, ver = _verify(tmp_path, sources)
    by = {e.field: e for e in ver.entries}
    for f in ("pfs_median", "pfs_ci_low", "pfs_ci_high", "orr_pct", "dcr_pct", "n_evaluable", "cr", "pr", "sd",
              "pd", "os_ci_low", "n_enrolled"):
        assert by[f].status == "found", (f, by[f])
        assert by[f].source == "netter_made_up.nxml" and by[f].quote and len(by[f].quote) <= 200
    assert by["pfs_median"].printed == "28.4" and "Abstract" in by["pfs_median"].place
    assert by["pr"].place.startswith("netter_made_up.nxml, Table 1") or by["pr"].status == "found"
    assert not [f for f in ver.findings if f.rule in ("source-mismatch", "source-unreadable")]


@pytest.mark.parametrize("field,slip", [("pfs_median", 24.8), ("pfs_median", 2.84), ("orr_pct", 71.8),
                                        ("n_evaluable", 110), ("pfs_ci_high", 38.5)])
def test_slips_are_mismatches_at_their_cell(tmp_path, sources, field, slip):
    _, ver = _verify(tmp_path, sources, good_outcome(**{field: slip}))
    hits = [f for f in ver.findings if f.rule == "source-mismatch" and f.field == field]
    assert hits, [(f.rule, f.field, f.message) for f in ver.findings]
    f = hits[0]
    assert f.severity == "warning" and f.sheet == "outcomes" and f.row == 2 and f.column
    assert "netter_made_up.nxml" in f.message and "\"" in f.message


def test_other_trials_figures_in_introduction_and_discussion_are_not_found(tmp_path, sources):
    _, ver = _verify(tmp_path, sources, good_outcome(pfs_median=11.0, pfs_ci_low=None, pfs_ci_high=None))
    e = next(e for e in ver.entries if e.field == "pfs_median")
    assert e.status == "mismatch" and e.printed == "28.4"
    _, ver = _verify(tmp_path, sources, good_outcome(pfs_median=30.1, pfs_ci_low=None, pfs_ci_high=None))
    assert next(e for e in ver.entries if e.field == "pfs_median").status == "mismatch"


def test_inconsistent_source(tmp_path, sources):
    _, ver = _verify(tmp_path, sources)
    e = next(e for e in ver.entries if e.field == "os_median")
    assert e.status == "inconsistent-source", e
    f = [f for f in ver.findings if f.rule == "source-inconsistent"]
    assert f and f[0].field == "os_median" and "48.6" in f[0].message and f[0].severity == "warning"


def test_value_elsewhere_and_absent(tmp_path, sources):
    _, ver = _verify(tmp_path, sources)
    by = {e.field: e for e in ver.entries}
    assert by["followup_median_months"].status == "found-elsewhere", by["followup_median_months"]
    assert by["ki67_max"].status == "absent"
    rules = {(f.rule, f.field) for f in ver.findings}
    assert ("source-value-elsewhere", "followup_median_months") in rules
    assert ("source-absent", "ki67_max") in rules


def test_unmatched_study_is_one_finding(tmp_path, sources):
    s2 = good_study(study_id="S02", first_author="Brabander", year=2017, doi="10.1158/1078-0432.CCR-16-2743")
    _, ver = _verify(tmp_path, sources, studies=[good_study(), s2])
    f = [f for f in ver.findings if f.rule == "source-unreadable"]
    assert len(f) == 1 and f[0].study_id == "S02" and f[0].row == 3 and f[0].severity == "warning"
    assert "10.1158/1078-0432.CCR-16-2743" not in f[0].message or "matches" in f[0].message


@pytest.mark.parametrize("kind", ["scan", "encrypted", "broken", "malformed-xml", "not-jats"])
def test_bad_files_are_one_finding_per_study(tmp_path, kind):
    d = tmp_path / "sources"
    d.mkdir()
    name = "S01_strosberg2017" + (".xml" if "xml" in kind or "jats" in kind else ".pdf")
    p = d / name
    if kind == "scan":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plt.figure()
        ax = fig.add_axes([0, 0, 1, 1])
        ax.imshow([[0, 1], [1, 0]])
        ax.axis("off")
        fig.savefig(p, format="pdf")
        plt.close(fig)
    elif kind == "encrypted":
        from reportlab.lib import pdfencrypt
        from reportlab.pdfgen import canvas

        c = canvas.Canvas(str(p), encrypt=pdfencrypt.StandardEncryption("secret", canPrint=0))
        c.drawString(72, 720, "Median PFS was 28.4 months.")
        c.save()
    elif kind == "broken":
        p.write_bytes(b"%PDF-1.4\n1 0 obj <<>> garbage")
    elif kind == "malformed-xml":
        p.write_text("<article><body><p>Median PFS 28.4</body>")
    else:
        p.write_text("<html><body>28.4</body></html>")
    from curation.sources import verify

    form = write_form(tmp_path / "form.xlsx", [good_study()], [good_outcome()], [])
    result, ver = verify(form, d, cache_dir=tmp_path / "cache")
    f = [f for f in ver.findings if f.rule == "source-unreadable"]
    assert len(f) == 1 and name in f[0].message, [x.message for x in ver.findings]
    assert all(e.status == "unreadable" for e in ver.entries)


def test_two_column_pdf_with_a_table(tmp_path):
    from curation.sources import locate

    d = tmp_path / "sources"
    d.mkdir()
    filler = "This paragraph describes the made-up methods of the trial in plain words. " * 6
    cols = [("Methods", filler), ("", filler), ("Results", "Of 116 patients enrolled, 101 were evaluable for "
            "response. Median progression-free survival was 28.4 months (95% CI 19.4–35.8)."), ("", filler),
            ("", filler), ("Discussion", "Another trial reported a median progression-free survival of 14.2 "
                                         "months."), ("", filler)]
    rows = [["Response", "n (%)"], ["Complete response", "1 (1.0)"], ["Partial response", "17 (16.8)"]]
    pdf = write_pdf(d / "S01.pdf", title="A made-up trial written by the test suite", columns=cols,
                    table=("Table 1 Best overall response", rows), doi="10.1056/NEJMoa1607427")
    places = locate(pdf, "28.4", near=["progression-free survival"], cache_dir=tmp_path / "cache")
    assert places and places[0].page == 1 and places[0].kind == "results", places
    assert "Median progression-free survival was 28.4 months" in " ".join(places[0].quote.split())
    pr = locate(pdf, "17", near=["Partial response"], cache_dir=tmp_path / "cache")
    assert pr and pr[0].table == "Table 1" and pr[0].page == 2, pr
    other = locate(pdf, "14.2", near=["progression-free survival"], cache_dir=tmp_path / "cache")
    assert other and other[0].kind == "discussion"
    from curation.sources.cache import read_cached

    art, hit = read_cached(pdf, tmp_path / "cache")
    assert hit and art.meta.get("doi") == "10.1056/NEJMoa1607427"


def test_cli_verify_and_locate(tmp_path, sources):
    from click.testing import CliRunner

    from curation.cli import main

    form = write_form(tmp_path / "form.xlsx", [good_study()], [good_outcome(pfs_median=24.8)], [])
    out = tmp_path / "v.json"
    r = CliRunner().invoke(main, ["verify", str(form), "--sources", str(sources), "--json", str(out),
                                  "--cache", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert {"findings", "verification"} <= set(d)
    e = next(e for e in d["verification"] if e["field"] == "pfs_median")
    assert e["status"] == "mismatch" and e["printed"] == "28.4"
    assert set(e) == {"file", "sheet", "row", "column", "cell", "field", "study_id", "value", "status", "source",
                      "place", "quote", "printed"}
    r = CliRunner().invoke(main, ["locate", str(sources / "netter_made_up.nxml"), "28.4", "--near", "PFS",
                                  "--cache", str(tmp_path / "c")])
    assert r.exit_code == 0 and "Abstract" in r.output
    r = CliRunner().invoke(main, ["verify", str(form), "--sources", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "sources folder" in r.output


def test_jats_named_entities_and_no_entity_expansion(tmp_path):
    """Publishers' named characters are read; an internal entity is never expanded (a billion laughs stays
    small), and neither stops the article."""
    from curation.sources.articles import read_article

    p = tmp_path / "a.xml"
    p.write_text("""<?xml version="1.0"?>
<!DOCTYPE article [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<article><front><article-meta><article-id pub-id-type="doi">10.1/x</article-id></article-meta></front>
<body><sec><title>Results</title><p>Median PFS was 10&middot;2 months (95% CI 9&middot;0&ndash;11&middot;5). &c;</p></sec>
</body></article>""")
    art = read_article(p)
    assert art.problem is None, art.problem
    text = " ".join(b.text for b in art.blocks)
    assert "10·2 months (95% CI 9·0–11·5)" in text
    assert "aaaaaaaaaa" not in text


def test_a_study_only_on_the_outcomes_sheet_is_matched_by_its_id_or_reported(tmp_path, sources):
    _, ver = _verify(tmp_path, sources, good_outcome(study_id="S09"))
    f = [f for f in ver.findings if f.rule == "source-unreadable"]
    assert [x.study_id for x in f] == ["S09"] and f[0].sheet == "outcomes" and f[0].row == 2
    assert all(e.status == "unreadable" for e in ver.entries if e.study_id == "S09")
    write_jats(sources / "S09.nxml", doi="10.1/s09", abstract=ABSTRACT, sections=[("Results", RESULTS)])
    _, ver = _verify(tmp_path, sources, good_outcome(study_id="S09"))
    assert not [f for f in ver.findings if f.rule == "source-unreadable"]
    assert next(e for e in ver.entries if e.field == "pfs_median").source == "S09.nxml"

"""The worked example of checking a form against its articles: MADE-UP studies, written by the project.

Three made-up reports of 177Lu-PRRT studies, each labelled MADE-UP on every page, and the form a
reviewer filled from them (``sources_example.xlsx``, the 177Lu-PRRT schema):

* ``almeida2021.pdf``: a two-column article (reportlab) with a results table; matched to its study
  by file name (the form's ``source`` cell says ``almeida2021.pdf``).
* ``bergstrom2019.xml``: a JATS XML article as PubMed Central distributes it (front matter, sections,
  a ``table-wrap`` with caption, header and body); matched by its PMCID.
* ``castell2022.pdf``: a one-column article with an overall and a pancreatic cohort; matched by its
  DOI (on the first page and in the document information). Its abstract prints an objective response
  rate (27.1%) that its own table and results contradict (21.7%).

Every article also has a Discussion quoting OTHER (equally made-up) trials' figures; two of the
form's slips are exactly such figures, so a checker that counted the discussion as the study's own
results would call them found. The slips, and what a reviewer should be told about each, are in
:data:`SLIPS`; every other figure of the form is the article's (:data:`STUDIES`).

Everything here is deterministic: the same code writes the same bytes (reportlab's ``invariant``
mode, fixed dates in the workbook), so that ``curate demo`` run twice leaves ``reports/demo``
unchanged. ``python -m curation.sources_example DIR`` writes the form and ``DIR/articles/``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

FORM = "sources_example.xlsx"
ARTICLES = "articles"
BANNER = ("MADE-UP ARTICLE, written by curate's worked example (curation/sources_example.py) to show how "
          "extracted figures are checked against their source. It reports no real study; every name and "
          "figure in it is invented.")

# ---------------------------------------------------------------------------------------------
# The studies as their articles report them (the correct extraction)
# ---------------------------------------------------------------------------------------------

STUDIES: dict[str, dict[str, Any]] = {
    "ALMEIDA2021": {
        "file": "almeida2021.pdf",
        "studies": {"first_author": "Almeida", "year": 2021, "doi": "10.5555/madeup.almeida.2021",
                    "country": "Portugal", "design": "retrospective", "radiopharmaceutical": "177Lu-DOTATATE",
                    "response_criteria": "RECIST 1.1", "n_enrolled": 84, "cycles_median": 4,
                    "activity_per_cycle_gbq": 7.4, "cumulative_activity_gbq": 29.6, "enrolment_start": 2012,
                    "enrolment_end": 2018, "source": "almeida2021.pdf"},
        "outcomes": {"overall": {"grade": "G1-2", "ki67_max": 15, "primary_site": "midgut", "n_evaluable": 78,
                                 "cr": 2, "pr": 17, "sd": 46, "pd": 13, "orr_n": 19, "dcr_n": 65, "orr_pct": 24.4,
                                 "dcr_pct": 83.3, "pfs_median": 24.6, "pfs_ci_low": 19.8, "pfs_ci_high": 30.1,
                                 "os_median": 48.2, "os_ci_low": 40.5, "os_ci_high": 55.9,
                                 "followup_median_months": 41.0}},
        "adverse_events": {"thrombocytopenia": {"grade3plus_n": 3, "any_grade_n": 29, "n_safety": 84}},
    },
    "BERGSTROM2019": {
        "file": "bergstrom2019.xml",
        "pmcid": "PMC0000002",
        "studies": {"first_author": "Bergström", "year": 2019, "doi": "10.5555/madeup.bergstrom.2019",
                    "country": "Sweden", "design": "prospective", "radiopharmaceutical": "177Lu-DOTATOC",
                    "response_criteria": "RECIST 1.1", "n_enrolled": 52, "cycles_median": 4,
                    "activity_per_cycle_gbq": 7.0, "cumulative_activity_gbq": 27.2, "enrolment_start": 2014,
                    "enrolment_end": 2017, "source": "PMC0000002"},
        "outcomes": {"overall": {"grade": "G1-2", "ki67_max": 18, "primary_site": "pancreas", "n_evaluable": 48,
                                 "cr": 1, "pr": 14, "sd": 26, "pd": 7, "orr_pct": 31.3, "dcr_pct": 85.4,
                                 "pfs_median": 22.1, "pfs_ci_low": 17.0, "pfs_ci_high": 27.9,
                                 "followup_median_months": 30.5}},
        "adverse_events": {"lymphopenia": {"grade3plus_n": 9, "any_grade_n": 30, "n_safety": 52}},
    },
    "CASTELL2022": {
        "file": "castell2022.pdf",
        "studies": {"first_author": "Castell", "year": 2022, "doi": "10.5555/madeup.castell.2022",
                    "country": "Spain", "design": "retrospective", "radiopharmaceutical": "177Lu-DOTATATE",
                    "response_criteria": "RECIST 1.1", "n_enrolled": 64, "cycles_median": 4,
                    "activity_per_cycle_gbq": 7.4, "cumulative_activity_gbq": 29.2, "enrolment_start": 2015,
                    "enrolment_end": 2020, "source": "10.5555/madeup.castell.2022"},
        "outcomes": {
            "overall": {"grade": "G1-2", "ki67_max": 20, "primary_site": "mixed", "n_evaluable": 60, "cr": 0,
                        "pr": 13, "sd": 33, "pd": 14, "orr_pct": 21.7, "dcr_pct": 76.7, "pfs_median": 21.3,
                        "pfs_ci_low": 16.2, "pfs_ci_high": 27.5, "os_median": 39.8, "os_ci_low": 33.1,
                        "os_ci_high": 47.5, "followup_median_months": 35.4},
            "pancreas": {"grade": "G1-2", "primary_site": "pancreas", "n_evaluable": 24, "cr": 0, "pr": 8,
                         "sd": 11, "pd": 5, "orr_pct": 33.3, "dcr_pct": 79.2, "pfs_median": 23.5,
                         "pfs_ci_low": 18.1, "pfs_ci_high": 29.6}},
        "adverse_events": {"anaemia": {"grade3plus_n": 2, "any_grade_n": 21, "n_safety": 64}},
    },
}

#: The reviewer's slips: (sheet, record key, field) -> (value typed, what happened, what the check
#: should say). Internal checks pass on each: the arithmetic still adds up.
SLIPS: dict[tuple[str, tuple[str, ...], str], tuple[Any, str, str]] = {
    ("outcomes", ("ALMEIDA2021", "overall"), "pfs_median"): (
        26.4, "transposed digits: the article's median PFS 24.6 typed as 26.4, a figure the article's "
              "Discussion quotes for another trial", "mismatch"),
    ("outcomes", ("BERGSTROM2019", "overall"), "ki67_max"): (
        8, "dropped digit: the article's highest Ki-67 index 18% typed as 8", "mismatch"),
    ("outcomes", ("BERGSTROM2019", "overall"), "os_median"): (
        41.2, "another trial's figure: the article's median OS was not reached; 41.2 months is the "
              "made-up Lindqvist series' OS, quoted in the Discussion", "mismatch"),
    ("outcomes", ("CASTELL2022", "overall"), "pfs_median"): (
        23.5, "value from the wrong cohort: the pancreatic subgroup's median PFS 23.5 typed for the whole "
              "cohort's 21.3", "mismatch"),
}
#: Correct in the form, but the article prints two values for it (abstract vs table).
INCONSISTENT: dict[tuple[str, tuple[str, ...], str], str] = {
    ("outcomes", ("CASTELL2022", "overall"), "orr_pct"):
        "the abstract says 27.1% (the article's own transposed digits), Table 2 and the Results 21.7% (13 of 60)",
}
EXTRACTOR = "JS"


def form_records() -> dict[str, list[dict[str, Any]]]:
    """The rows of the example form (sheet -> records), slips included, in the form's order."""
    out: dict[str, list[dict[str, Any]]] = {"studies": [], "outcomes": [], "adverse_events": []}
    for sid, st in STUDIES.items():
        out["studies"].append({"study_id": sid, **st["studies"], "extractor": EXTRACTOR})
        for cohort, rec in st["outcomes"].items():
            out["outcomes"].append({"study_id": sid, "cohort": cohort, **rec, "extractor": EXTRACTOR})
        for term, rec in st["adverse_events"].items():
            out["adverse_events"].append({"study_id": sid, "ae_term": term, **rec, "extractor": EXTRACTOR})
    for (sheet, key, field), (value, _why, _expect) in SLIPS.items():
        for rec in out[sheet]:
            keys = (rec["study_id"],) if sheet == "studies" else (rec["study_id"], rec.get("cohort", rec.get("ae_term")))
            if keys == key:
                rec[field] = value
                break
        else:  # pragma: no cover - a slip for a record that is not in STUDIES
            raise KeyError(f"no record {key} on {sheet}")
    return out


def form_bytes(schema: Any = None) -> bytes:
    """The example form: ``curate template``'s form of the 177Lu-PRRT schema, filled in."""
    from .schema import load_schema
    from .template import build_template, column_map, workbook_bytes

    sch = schema if schema is not None else load_schema("prrt_177lu")
    wb = build_template(sch)
    cols = column_map(sch)
    for sheet, recs in form_records().items():
        ws = wb[sheet]
        for r, rec in enumerate(recs, start=2):
            for field, value in rec.items():
                if value is not None:
                    ws[f"{cols[sheet][field]}{r}"] = value
    wb.properties.title = "Worked example: a form checked against its (MADE-UP) articles"
    return workbook_bytes(wb)


# ---------------------------------------------------------------------------------------------
# The articles' text
# ---------------------------------------------------------------------------------------------


def _almeida() -> dict[str, Any]:
    return {
        "title": "[MADE-UP] 177Lu-DOTATATE in progressive midgut neuroendocrine tumours: a single-centre "
                 "retrospective cohort",
        "authors": "João Almeida, Rita Costa, Miguel Ferreira",
        "journal": "Journal of Made-up Oncology 2021; 4: 101\u2013108",
        "doi": "10.5555/madeup.almeida.2021",
        "abstract": [
            ("Background", "Peptide receptor radionuclide therapy (PRRT) with 177Lu-DOTATATE is given to "
                           "patients with progressive, somatostatin-receptor-positive neuroendocrine tumours (NET)."),
            ("Methods", "We reviewed all 84 patients with progressive well-differentiated (G1\u20132) midgut NET "
                        "treated with 177Lu-DOTATATE at our centre between 2012 and 2018."),
            ("Results", "The objective response rate (RECIST 1.1) was 24.4% (19 of 78 evaluable patients) and the "
                        "disease control rate 83.3%. Median progression-free survival (PFS) was 24.6 months "
                        "(95% CI 19.8\u201330.1) and median overall survival (OS) 48.2 months."),
            ("Conclusion", "177Lu-DOTATATE controlled midgut NET in most patients, with little severe toxicity."),
        ],
        "sections": [
            ("Introduction", [
                "Well-differentiated neuroendocrine tumours of the midgut grow slowly but are often metastatic at "
                "diagnosis. Somatostatin analogues control symptoms and slow growth; at progression, peptide "
                "receptor radionuclide therapy is one of the options a multidisciplinary board considers.",
                "Randomised evidence for PRRT comes from a single trial; most of what is known about response, "
                "survival and toxicity outside trials comes from single-centre cohorts such as ours. We report "
                "our experience with 177Lu-DOTATATE in midgut NET, with response assessed by one protocol "
                "throughout.",
            ]),
            ("Methods", [
                "Patients. We included every patient with a progressive, well-differentiated midgut NET who "
                "started PRRT at our centre between January 2012 and December 2018. All tumours were G1 or G2; "
                "the highest Ki-67 index was 15%.",
                "Treatment. Patients received a median of 4 cycles (range 2\u20135) of 7.4 GBq per cycle, "
                "8 to 10 weeks apart; the median cumulative activity was 29.6 GBq.",
                "Assessment. Tumour response was assessed with RECIST 1.1 on CT or MRI every 3 months; toxicity "
                "was graded with CTCAE version 5.0.",
            ]),
            ("Results", [
                "Of the 84 patients treated, 78 had a response assessment and were evaluable for response; six "
                "stopped before the first scan. Best responses are shown in Table 1.",
                "TABLE",
                "After a median follow-up of 41.0 months, median PFS was 24.6 months (95% CI 19.8\u201330.1) and "
                "median OS 48.2 months (95% CI 40.5\u201355.9).",
                "Safety. Grade 3 or 4 thrombocytopenia occurred in 3 of 84 patients (3.6%); thrombocytopenia of "
                "any grade in 29 (34.5%). No patient developed a myelodysplastic syndrome during follow-up.",
            ]),
            ("Discussion", [
                "Our results are close to those of earlier series. In the (equally made-up) Okafor cohort of "
                "112 patients, the objective response rate was 31% and median PFS 26.4 months "
                "(95% CI 21.0\u201331.7); the Lindqvist trial reported a disease control rate of 91% and grade 3 "
                "thrombocytopenia in 7%.",
                "Our cohort is retrospective and from one centre; its response assessment was not centrally "
                "reviewed.",
            ]),
            ("References", [
                "1. Okafor A, Mensah K, Boateng E. Made-up J Oncol. 2018;12:345\u2013352.",
                "2. Lindqvist P, Berg M. Made-up Nucl Med Rep. 2020;7:e0112.",
            ]),
        ],
        "table": {
            "label": "Table 1",
            "caption": "Best response (RECIST 1.1), evaluable patients (n = 78)",
            "header": ["Response", "n", "%"],
            "rows": [["Complete response", "2", "2.6"], ["Partial response", "17", "21.8"],
                     ["Stable disease", "46", "59.0"], ["Progressive disease", "13", "16.7"],
                     ["Objective response rate", "19", "24.4"], ["Disease control rate", "65", "83.3"]],
        },
    }


def _castell() -> dict[str, Any]:
    return {
        "title": "[MADE-UP] Outcomes of 177Lu-DOTATATE in gastroenteropancreatic neuroendocrine tumours (GEP-NET), "
                 "overall and in the pancreatic subgroup",
        "authors": "Laura Castell, Pau Serra, Ana Vidal",
        "journal": "Made-up Reports in Nuclear Medicine 2022; 9: e0031",
        "doi": "10.5555/madeup.castell.2022",
        "abstract": [
            ("Purpose", "To describe response and survival after 177Lu-DOTATATE in gastroenteropancreatic NET."),
            ("Methods", "In this retrospective study, 64 patients treated between 2015 and 2020 were reviewed; 60 "
                        "were evaluable for response (RECIST 1.1)."),
            ("Results", "The objective response rate was 27.1% and the disease control rate 76.7%. Median "
                        "progression-free survival was 21.3 months (95% CI 16.2\u201327.5) and median overall "
                        "survival 39.8 months (95% CI 33.1\u201347.5)."),
        ],
        "sections": [
            ("Patients and methods", [
                "Sixty-four patients with G1\u20132 gastroenteropancreatic NET (highest Ki-67 index 20%) received a "
                "median of 4 cycles of 7.4 GBq (median cumulative activity 29.2 GBq). Response was assessed with "
                "RECIST 1.1.",
            ]),
            ("Results", [
                "Sixty of the 64 patients were evaluable for response: 13 of 60 had a partial response (21.7%), "
                "none a complete response, 33 stable disease and 14 progressive disease. Table 2 gives the results "
                "overall and for the 24 patients with a pancreatic primary.",
                "TABLE",
                "After a median follow-up of 35.4 months, median PFS was 21.3 months (95% CI 16.2\u201327.5) "
                "overall; median OS was 39.8 months (95% CI 33.1\u201347.5).",
                "Grade 3 anaemia occurred in 2 of 64 patients (3.1%), anaemia of any grade in 21 (32.8%).",
            ]),
            ("Discussion", [
                "Response and survival were in the range other centres report: the made-up Okafor cohort "
                "reported a median OS of 46.3 months and an objective response rate of 31%.",
            ]),
        ],
        "table": {
            "label": "Table 2",
            "caption": "Best response and progression-free survival, overall and in the pancreatic subgroup",
            "header": ["", "Overall (n = 60)", "Pancreatic (n = 24)"],
            "rows": [["Complete response, n (%)", "0 (0)", "0 (0)"],
                     ["Partial response, n (%)", "13 (21.7)", "8 (33.3)"],
                     ["Stable disease, n (%)", "33 (55.0)", "11 (45.8)"],
                     ["Progressive disease, n (%)", "14 (23.3)", "5 (20.8)"],
                     ["Objective response rate, %", "21.7", "33.3"],
                     ["Disease control rate, %", "76.7", "79.2"],
                     ["Median PFS, months (95% CI)", "21.3 (16.2\u201327.5)", "23.5 (18.1\u201329.6)"]],
        },
    }


def _bergstrom() -> dict[str, Any]:
    return {
        "title": "[MADE-UP] 177Lu-DOTATOC in progressive pancreatic neuroendocrine tumours: a phase II trial",
        "authors": [("Bergström", "Karin"), ("Nyberg", "Erik"), ("Holm", "Sara")],
        "journal": "Made-up Journal of Neuroendocrine Research",
        "year": 2019,
        "doi": "10.5555/madeup.bergstrom.2019",
        "pmcid": "PMC0000002",
        "abstract": ("In this phase II trial, 52 patients with progressive G1\u20132 pancreatic NET received "
                     "177Lu-DOTATOC. Of 48 evaluable patients, 15 (31.3%) had an objective response; the disease "
                     "control rate was 85.4%. Median progression-free survival was 22.1 months (95% CI 17.0\u201327.9); "
                     "median overall survival was not reached."),
        "sections": [
            ("Methods", [
                "Between 2014 and 2017, 52 patients with progressive pancreatic NET (G1\u20132, highest Ki-67 "
                "index 18%) were enrolled. They received a median of 4 cycles of 7.0 GBq 177Lu-DOTATOC "
                "(median cumulative activity 27.2 GBq). Response was assessed by RECIST 1.1.",
            ]),
            ("Results", [
                "Forty-eight patients were evaluable for response (Table 2). After a median follow-up of 30.5 "
                "months, median PFS was 22.1 months (95% CI 17.0\u201327.9); median OS was not reached.",
                "TABLE",
                "Grade 3\u20134 lymphopenia occurred in 9 of 52 patients (17.3%) and lymphopenia of any grade in "
                "30 (57.7%).",
            ]),
            ("Discussion", [
                "Other series report similar figures: in the made-up Lindqvist series, median overall survival "
                "was 41.2 months and the objective response rate 27%.",
            ]),
        ],
        "table": {
            "label": "Table 2",
            "caption": "Best response by RECIST 1.1 (evaluable patients, n = 48)",
            "header": ["Response", "n", "%"],
            "rows": [["Complete response", "1", "2.1"], ["Partial response", "14", "29.2"],
                     ["Stable disease", "26", "54.2"], ["Progressive disease", "7", "14.6"],
                     ["Objective response", "15", "31.3"], ["Disease control", "41", "85.4"]],
        },
    }


# ---------------------------------------------------------------------------------------------
# Writing them: PDF (reportlab, invariant mode) and JATS XML
# ---------------------------------------------------------------------------------------------


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("t", parent=base["Title"], fontSize=15, leading=18, alignment=0, spaceAfter=6),
        "banner": ParagraphStyle("b", parent=base["Normal"], fontName="Helvetica-Bold", fontSize=8, leading=10,
                                 textColor="#9C0006", spaceAfter=6),
        "meta": ParagraphStyle("m", parent=base["Normal"], fontSize=8.5, leading=11, spaceAfter=2),
        "abstract": ParagraphStyle("a", parent=base["Normal"], fontSize=9, leading=11.5, spaceAfter=3),
        "h": ParagraphStyle("h", parent=base["Heading2"], fontSize=11, leading=13, spaceBefore=6, spaceAfter=3,
                            keepWithNext=1),
        "body": ParagraphStyle("p", parent=base["Normal"], fontSize=9, leading=11.5, spaceAfter=5),
        "caption": ParagraphStyle("c", parent=base["Normal"], fontName="Helvetica-Bold", fontSize=8.5,
                                  leading=10.5, spaceBefore=4, spaceAfter=3),
    }


def _table(art: dict[str, Any], width: float) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    t = art["table"]
    rows = [t["header"], *t["rows"]]
    first = width * (0.52 if len(t["header"]) == 3 else 0.4)
    rest = (width - first) / (len(t["header"]) - 1)
    table = Table(rows, colWidths=[first] + [rest] * (len(t["header"]) - 1), hAlign="LEFT")
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("LINEABOVE", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("LINEBELOW", (0, -1), (-1, -1), 0.8, colors.black),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]))
    return table


def pdf_bytes(art: dict[str, Any], *, columns: int = 2) -> bytes:
    """An article as a PDF with a text layer: title, banner and abstract across the page, then the
    sections in ``columns`` columns, the table where the text says ``TABLE``; MADE-UP in every
    page's header. reportlab's invariant mode: no date and a fixed document id (same text, same bytes)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import (BaseDocTemplate, Frame, FrameBreak, NextPageTemplate, PageTemplate,
                                    Paragraph, Spacer)

    st = _styles()
    w, h = A4
    margin, gap, top_h = 18 * mm, 7 * mm, 78 * mm
    col_w = (w - 2 * margin - (columns - 1) * gap) / columns

    def header(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica-Bold", 7.5)
        canvas.setFillColorRGB(0.6, 0, 0.02)
        canvas.drawString(margin, h - 11 * mm, "MADE-UP ARTICLE (curate worked example) - not a real study")
        canvas.setFillColorRGB(0, 0, 0)
        canvas.setFont("Helvetica", 7.5)
        canvas.drawRightString(w - margin, 10 * mm, f"{art['journal']}   page {doc.page}")
        canvas.restoreState()

    def cols(y0: float, height: float, tag: str) -> list:
        return [Frame(margin + i * (col_w + gap), y0, col_w, height, id=f"{tag}{i}", leftPadding=0, rightPadding=0,
                      topPadding=0, bottomPadding=0) for i in range(columns)]

    body_h = h - 2 * margin - 4 * mm
    first = [Frame(margin, h - margin - top_h - 4 * mm, w - 2 * margin, top_h, id="top", leftPadding=0,
                   rightPadding=0, topPadding=0, bottomPadding=0),
             *cols(margin, body_h - top_h - 4 * mm, "c")]
    buf = io.BytesIO()
    doc = BaseDocTemplate(buf, pagesize=A4, invariant=1, title=art["title"], author=art["authors"],
                          subject=f"doi:{art['doi']}", keywords=f"MADE-UP, curate worked example, doi:{art['doi']}",
                          creator="curate worked example", producer="curate worked example",
                          leftMargin=margin, rightMargin=margin, topMargin=margin, bottomMargin=margin)
    doc.addPageTemplates([PageTemplate(id="first", frames=first, onPage=header),
                          PageTemplate(id="later", frames=cols(margin, body_h, "l"), onPage=header)])
    story: list = [NextPageTemplate("later"),
                   Paragraph(escape(art["title"]), st["title"]),
                   Paragraph(escape(BANNER), st["banner"]),
                   Paragraph(escape(art["authors"]), st["meta"]),
                   Paragraph(escape(f"{art['journal']}. doi: {art['doi']}"), st["meta"]), Spacer(1, 4)]
    for label, text in art["abstract"]:
        story.append(Paragraph(f"<b>{escape(label)}.</b> {escape(text)}", st["abstract"]))
    story.append(FrameBreak())
    for head, paras in art["sections"]:
        story.append(Paragraph(escape(head), st["h"]))
        for p in paras:
            if p == "TABLE":
                story.append(Paragraph(escape(f"{art['table']['label']}. {art['table']['caption']}"), st["caption"]))
                story.append(_table(art, col_w))
                story.append(Spacer(1, 6))
            else:
                story.append(Paragraph(escape(p), st["body"]))
    doc.build(story)
    return buf.getvalue()


def jats_bytes(art: dict[str, Any]) -> bytes:
    """An article as JATS XML (the JATS Archiving DTD's structure, as PubMed Central distributes it):
    front matter with the DOI and PMCID, the abstract, sections, a ``table-wrap``; MADE-UP in the
    title, a note and the abstract. Numeric character references only (no DTD needed to read it)."""

    def x(text: str) -> str:
        return escape(text).encode("ascii", "xmlcharrefreplace").decode("ascii")

    contribs = "\n".join(
        f'        <contrib contrib-type="author"><name><surname>{x(s)}</surname><given-names>{x(g)}</given-names>'
        f"</name></contrib>" for s, g in art["authors"])
    secs = []
    for n, (head, paras) in enumerate(art["sections"], start=1):
        body = []
        for p in paras:
            if p == "TABLE":
                t = art["table"]
                head_row = "".join(f"<th>{x(c)}</th>" for c in t["header"])
                rows = "\n".join("          <tr>" + "".join(f"<td>{x(c)}</td>" for c in r) + "</tr>" for r in t["rows"])
                body.append(f'      <table-wrap id="tab{n}" position="float">\n        <label>{x(t["label"])}</label>\n'
                            f'        <caption><p>{x(t["caption"])}</p></caption>\n        <table frame="hsides">\n'
                            f"          <thead><tr>{head_row}</tr></thead>\n          <tbody>\n{rows}\n          </tbody>\n"
                            f"        </table>\n      </table-wrap>")
            else:
                body.append(f"      <p>{x(p)}</p>")
        secs.append(f'    <sec id="s{n}">\n      <title>{x(head)}</title>\n' + "\n".join(body) + "\n    </sec>")
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.2 20190208//EN" "JATS-archivearticle1.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article" xml:lang="en">
  <front>
    <journal-meta>
      <journal-title-group><journal-title>{x(art["journal"])}</journal-title></journal-title-group>
    </journal-meta>
    <article-meta>
      <article-id pub-id-type="pmcid">{x(art["pmcid"])}</article-id>
      <article-id pub-id-type="doi">{x(art["doi"])}</article-id>
      <title-group><article-title>{x(art["title"])}</article-title></title-group>
      <contrib-group>
{contribs}
      </contrib-group>
      <pub-date pub-type="epub"><year>{art["year"]}</year></pub-date>
      <abstract>
        <p>{x(BANNER)}</p>
        <p>{x(art["abstract"])}</p>
      </abstract>
    </article-meta>
    <notes notes-type="disclaimer"><p>{x(BANNER)}</p></notes>
  </front>
  <body>
{chr(10).join(secs)}
  </body>
</article>
"""
    return text.encode("utf-8")


def article_files() -> dict[str, bytes]:
    """The three articles by file name."""
    return {STUDIES["ALMEIDA2021"]["file"]: pdf_bytes(_almeida(), columns=2),
            STUDIES["BERGSTROM2019"]["file"]: jats_bytes(_bergstrom()),
            STUDIES["CASTELL2022"]["file"]: pdf_bytes(_castell(), columns=1)}


def example_files(schema: Any = None) -> dict[str, bytes]:
    """The whole example by relative path: ``sources_example.xlsx`` and ``articles/<file>``."""
    files = {FORM: form_bytes(schema)}
    for name, data in article_files().items():
        files[f"{ARTICLES}/{name}"] = data
    return files


def write_example(out_dir: str | Path, schema: Any = None) -> list[Path]:
    """Write the example into ``out_dir`` (the form, and the articles in ``out_dir/articles``)."""
    from .outputs import atomic_write_bytes

    out = Path(out_dir)
    written = []
    for rel, data in example_files(schema).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        written.append(atomic_write_bytes(out / rel, data))
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write the worked example of checking a form against its "
                                                 "(MADE-UP) articles.")
    parser.add_argument("out_dir", type=Path, help="folder to write sources_example.xlsx and articles/ into")
    args = parser.parse_args(argv)
    for p in write_example(args.out_dir):
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

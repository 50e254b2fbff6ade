"""Made-up articles the tests write (never real reports): a JATS XML file and a two-column PDF with a table."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape


def write_jats(path: Path, *, doi: str, abstract: list[str], sections: list[tuple[str, list[str]]],
               table: tuple[str, str, list[str], list[list[str]]] | None = None, surname: str = "Made-up",
               year: int = 2017) -> Path:
    """A minimal JATS article: front matter (DOI, first author, year), a structured abstract, body sections,
    and one table (label, caption, header cells, rows)."""
    abs_xml = "".join(f"<p>{escape(p)}</p>" for p in abstract)
    body = ""
    for title, paras in sections:
        body += f"<sec><title>{escape(title)}</title>" + "".join(f"<p>{escape(p)}</p>" for p in paras) + "</sec>"
    tw = ""
    if table:
        label, caption, head, rows = table
        th = "".join(f"<th>{escape(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        tw = (f"<table-wrap id='t1'><label>{escape(label)}</label><caption><p>{escape(caption)}</p></caption>"
              f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table></table-wrap>")
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<article article-type="research-article"><front><article-meta>
<article-id pub-id-type="doi">{escape(doi)}</article-id>
<title-group><article-title>A made-up trial report written by the test suite</article-title></title-group>
<contrib-group><contrib contrib-type="author"><name><surname>{escape(surname)}</surname><given-names>A</given-names></name></contrib></contrib-group>
<pub-date><year>{year}</year></pub-date>
<abstract>{abs_xml}</abstract></article-meta></front>
<body>{body}{tw}</body><back><ref-list><ref><mixed-citation>Other A. Another trial. 2010;12:345.</mixed-citation></ref></ref-list></back>
</article>"""
    path.write_text(xml, encoding="utf-8")
    return path


def write_pdf(path: Path, *, title: str, columns: list[tuple[str, str]], table: tuple[str, list[list[str]]] | None
              = None, pages: int = 1, doi: str | None = None) -> Path:
    """A two-column PDF written with reportlab: a title across the page, then paragraphs (heading, text) flowing
    down the left column and on to the right one; a table across the page on the last page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import (BaseDocTemplate, Frame, FrameBreak, PageTemplate, Paragraph, Spacer, Table,
                                    NextPageTemplate)

    styles = getSampleStyleSheet()
    w, h = A4
    margin, gap = 50, 24
    colw = (w - 2 * margin - gap) / 2
    top_h = 90
    doc = BaseDocTemplate(str(path), pagesize=A4, title=title, subject=f"doi:{doi}" if doi else "")
    first = [Frame(margin, h - margin - top_h, w - 2 * margin, top_h, id="title"),
             Frame(margin, margin, colw, h - 2 * margin - top_h, id="l1"),
             Frame(margin + colw + gap, margin, colw, h - 2 * margin - top_h, id="r1")]
    later = [Frame(margin, margin, colw, h - 2 * margin, id="l"), Frame(margin + colw + gap, margin, colw,
                                                                      h - 2 * margin, id="r")]
    full = [Frame(margin, margin, w - 2 * margin, h - 2 * margin, id="full")]
    doc.addPageTemplates([PageTemplate("first", first), PageTemplate("later", later), PageTemplate("full", full)])
    story = [Paragraph(title, styles["Title"])]
    if doi:
        story.append(Paragraph(f"doi:{doi}", styles["Normal"]))
    story += [FrameBreak(), NextPageTemplate("later")]
    for heading, text in columns:
        if heading:
            story.append(Paragraph(heading, styles["Heading2"]))
        story.append(Paragraph(text, styles["BodyText"]))
        story.append(Spacer(1, 4))
    if table:
        caption, rows = table
        story += [NextPageTemplate("full"), FrameBreak() if False else Spacer(1, 1)]
        from reportlab.platypus import PageBreak

        story += [PageBreak(), Paragraph(caption, styles["Normal"]), Spacer(1, 6), Table(rows)]
    doc.build(story)
    return path

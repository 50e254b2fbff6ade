"""PDF reading order: a two-column page whose content stream draws the right column first still reads left
column, then right; a table across the page keeps its rows as cells."""

from __future__ import annotations


def test_columns_read_in_order_whatever_the_drawing_order(tmp_path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    from curation.sources.articles import read_article

    left = [f"Left line {i} of the made-up methods text, long enough to be prose." for i in range(1, 16)]
    right = [f"Right line {i} of the made-up results text, long enough as well." for i in range(1, 16)]
    p = tmp_path / "order.pdf"
    c = canvas.Canvas(str(p), pagesize=A4)
    c.setFont("Helvetica", 8)
    w, h = A4
    c.drawString(50, h - 50, "A made-up article written by the test suite, title across the page")
    for i, line in enumerate(right):  # the right column first in the content stream
        c.drawString(w / 2 + 10, h - 90 - 12 * i, line)
    for i, line in enumerate(left):
        c.drawString(50, h - 90 - 12 * i, line)
    c.drawString(50, h - 300, "Table 1 Made-up outcomes")
    for i, (a, b, d) in enumerate([("Outcome", "Arm A", "Arm B"), ("Median PFS", "28.4", "19.1"),
                                   ("Median OS", "48.0", "40.2")]):
        c.drawString(50, h - 320 - 12 * i, a)
        c.drawString(250, h - 320 - 12 * i, b)
        c.drawString(400, h - 320 - 12 * i, d)
    c.save()
    art = read_article(p)
    text = "\n".join(b.text for b in art.blocks)
    assert text.index("Left line 15") < text.index("Right line 1 ")
    assert text.index("Left line 1 ") < text.index("Left line 2 ")
    rows = [b for b in art.blocks if b.kind == "table" and b.row and "PFS" in b.row]
    assert rows and rows[0].text.split("\t") == ["Median PFS", "28.4", "19.1"]
    assert rows[0].column == "Outcome | Arm A | Arm B" and rows[0].table == "Table 1"


def test_a_landscape_table_on_a_portrait_page_reads_as_rows(tmp_path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    from curation.sources.articles import read_article
    from curation.sources.match import Want, judge, prepare

    p = tmp_path / "turned.pdf"
    c = canvas.Canvas(str(p), pagesize=A4)
    c.setFont("Helvetica", 9)
    c.saveState()
    c.translate(300, 100)
    c.rotate(90)  # the table's text reads upwards, as a landscape table printed on a portrait page
    rows = [("Table 2 Made-up outcomes by arm", "", ""), ("Outcome", "Arm A", "Arm B"),
            ("Median PFS, months", "28.4 (19.4-35.8)", "19.1 (15.0-22.3)"),
            ("Median OS, months", "48.0 (37.4-55.2)", "40.2 (33.1-47.9)")]
    for i, (a, b, d) in enumerate(rows):
        c.drawString(0, -14 * i, a)
        if b:
            c.drawString(160, -14 * i, b)
            c.drawString(300, -14 * i, d)
    c.restoreState()
    c.save()
    art = read_article(p)
    row = [b for b in art.blocks if b.kind == "table" and b.row and "OS" in b.row]
    assert row and row[0].text.split("\t") == ["Median OS, months", "48.0 (37.4-55.2)", "40.2 (33.1-47.9)"], \
        [b.text for b in art.blocks]
    j = judge([prepare(art)], 37.4, ("OS", "overall survival"), Want("low", "number"))
    assert j.status == "found" and j.place.table == "Table 2" and j.place.page == 1
    j = judge([prepare(art)], 34.7, ("OS", "overall survival"), Want("low", "number"))
    assert j.status == "mismatch" and j.place.printed == "37.4"

"""Measure the two PDF text libraries on the real articles: speed, and whether sentences that run across line
and column breaks come out whole (reading order).

Run: ``.venv/bin/python benchmarks/pdf_readers.py [folder]`` (default: ``../shared/data/articles``). For each
PDF it times pdfplumber's ``extract_text`` per page, pypdfium2's raw text (content order), and the reader of
:mod:`curation.sources.articles` (pypdfium2 text with boxes, columns and table rows); then counts how many of
the sentences below, each crossing a line or a column break, each output holds whole (spaces and hyphenation
normalised). Nothing here is a test; figures are printed.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHRASES = {
    "dodd2014.pdf": [
        "we recruited and randomised 2,212 women, with 1,108 allocated to receive Lifestyle Advice and 1,104 "
        "Standard Care",
        "Our randomised trial is the largest reported to date evaluating specific dietary and physical activity "
        "effects of an antenatal lifestyle intervention",
        "Maternal HEI was significantly improved at both 28 (73.35 ± 6.62 versus 71.86 ± 7.01",
    ],
    "hawkes2012.pdf": [
        "In brief, participants were middle aged (mean age=47.3yrs)",
        "improvements were observed for minutes moderate-vigorous physical activity (150.7 minutes)",
        "The first 28 potential participants were screened for eligibility and 22 eligible participants (79%)",
    ],
    "okely2017.pdf": [
        "Per-protocol analyses on these schools revealed a smaller decline in percentage of time spent in MVPA "
        "among girls in the intervention group",
        "Thirty-two schools from seven geographical regions expressed interest in participating in the study",
        "1518 girls (mean age 13.6y ±0.02) were assessed at baseline",
    ],
}


def squash(text: str) -> str:
    from curation.sources.normalise import normalise

    t = normalise(text)[0]
    return re.sub(r"[\s\u2009]+", " ", t).lower()


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "articles"
    if not folder.is_dir():
        folder = ROOT.parent.parent / "shared" / "data" / "articles"
    import pdfplumber
    import pypdfium2 as pdfium

    from curation.sources.articles import read_article

    print(f"{'file':16} {'pages':>5} {'pdfplumber s':>12} {'pdfium raw s':>12} {'curation s':>10}   whole sentences "
          f"(plumber / pdfium raw / curation)")
    totals = [0.0, 0.0, 0.0]
    hits = [0, 0, 0]
    n_phr = 0
    for path in sorted(folder.glob("*.pdf")):
        t0 = time.perf_counter()
        with pdfplumber.open(path) as pdf:
            plumber = "\n".join(p.extract_text() or "" for p in pdf.pages)
            pages = len(pdf.pages)
        t1 = time.perf_counter()
        doc = pdfium.PdfDocument(str(path))
        raw = "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
        t2 = time.perf_counter()
        art = read_article(path)
        ours = "\n".join(b.text for b in art.blocks)
        t3 = time.perf_counter()
        times = [t1 - t0, t2 - t1, t3 - t2]
        phrases = PHRASES.get(path.name, [])
        got = [sum(squash(p) in squash(text) for p in phrases) for text in (plumber, raw, ours)]
        for k in range(3):
            totals[k] += times[k]
            hits[k] += got[k]
        n_phr += len(phrases)
        print(f"{path.name:16} {pages:5d} {times[0]:12.2f} {times[1]:12.2f} {times[2]:10.2f}   "
              f"{got[0]}/{len(phrases)} {got[1]}/{len(phrases)} {got[2]}/{len(phrases)}")
    print(f"{'total':16} {'':5} {totals[0]:12.2f} {totals[1]:12.2f} {totals[2]:10.2f}   "
          f"{hits[0]}/{n_phr} {hits[1]}/{n_phr} {hits[2]}/{n_phr}")


if __name__ == "__main__":
    main()

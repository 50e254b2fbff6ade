"""Benchmark: checking a review of 100 articles of about 12 pages against its form (``curate verify``'s stage).

Run from the project root: ``.venv/bin/python benchmarks/sources.py [--articles 100] [--pages 12] [--jobs 2]``.
It writes made-up two-column PDF articles with reportlab (a title, a structured abstract, methods, results with
the study's figures, a results table and a discussion quoting other trials, filler text to the page count) into
a temporary folder, and the matching clean records (one study and one outcome row per article), then times
:func:`curation.sources.verify_tables`:

* the first run (every article read with pypdfium2, in ``--jobs`` processes, and its text cached by file hash);
* a second run on the same files (text from the cache; nothing read again);

and reports seconds, articles per second, and the located / caught figures (every figure is correct except
one planted slip per article). The target (contract ``sources.md``): under a minute on 2 cores. Nothing here
is a test: the figures are printed and written to ``benchmarks/out/sources.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FILLER = ("The made-up trial recruited adults from outpatient clinics, and the protocol followed the usual "
          "procedures of a study of this kind, with visits every twelve weeks and imaging read centrally. ")


def make_article(path: Path, sid: str, fig: dict, pages: int) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph, Spacer, Table

    st = getSampleStyleSheet()
    w, h = A4
    m, gap = 50, 24
    cw = (w - 2 * m - gap) / 2
    doc = BaseDocTemplate(str(path), pagesize=A4, title=f"Made-up trial {sid}")
    doc.addPageTemplates([PageTemplate("two", [Frame(m, m, cw, h - 2 * m), Frame(m + cw + gap, m, cw, h - 2 * m)])])
    story = [Paragraph(f"A made-up phase II trial {sid} (benchmark text, not a real report)", st["Heading1"]),
             Paragraph("Abstract", st["Heading2"]),
             Paragraph(f"Results: Of {fig['n_enrolled']} patients enrolled, {fig['n_evaluable']} were evaluable. "
                       f"The objective response rate was {fig['orr_pct']}% and the disease control rate "
                       f"{fig['dcr_pct']}%. Median progression-free survival was {fig['pfs_median']} months "
                       f"(95% CI {fig['pfs_ci_low']}–{fig['pfs_ci_high']}).", st["BodyText"]),
             Paragraph("Introduction", st["Heading2"]),
             Paragraph("An earlier trial reported a median progression-free survival of 11.0 months and an "
                       "objective response rate of 5%.", st["BodyText"]),
             Paragraph("Methods", st["Heading2"])]
    per_page = 27
    for _ in range(per_page * max(1, pages // 2)):
        story.append(Paragraph(FILLER, st["BodyText"]))
    story += [Paragraph("Results", st["Heading2"]),
              Paragraph(f"Median overall survival was {fig['os_median']} months (95% CI {fig['os_ci_low']}–"
                        f"{fig['os_ci_high']}).", st["BodyText"]),
              Paragraph("Table 2 Best overall response", st["BodyText"]),
              Table([["Response", "n"], ["Complete response", str(fig["cr"])], ["Partial response", str(fig["pr"])],
                     ["Stable disease", str(fig["sd"])], ["Progressive disease", str(fig["pd"])]]),
              Spacer(1, 6)]
    for _ in range(per_page * max(1, pages - pages // 2 - 1)):
        story.append(Paragraph(FILLER, st["BodyText"]))
    story += [Paragraph("Discussion", st["Heading2"]),
              Paragraph("Other trials reported a median overall survival of 20.3 months.", st["BodyText"])]
    doc.build(story)


def figures(rng: random.Random) -> dict:
    ne = rng.randint(30, 300)
    cr = rng.randint(0, 5)
    pr = rng.randint(5, ne // 3)
    sd = rng.randint(5, ne - cr - pr - 2)
    pd_ = ne - cr - pr - sd
    low = round(rng.uniform(8, 20), 1)
    med = round(low + rng.uniform(2, 8), 1)
    high = round(med + rng.uniform(2, 10), 1)
    olow = round(rng.uniform(25, 40), 1)
    omed = round(olow + rng.uniform(3, 9), 1)
    ohigh = round(omed + rng.uniform(3, 12), 1)
    return {"n_enrolled": ne + rng.randint(1, 20), "n_evaluable": ne, "cr": cr, "pr": pr, "sd": sd, "pd": pd_,
            "orr_pct": round(100 * (cr + pr) / ne, 1), "dcr_pct": round(100 * (cr + pr + sd) / ne, 1),
            "pfs_median": med, "pfs_ci_low": low, "pfs_ci_high": high, "os_median": omed, "os_ci_low": olow,
            "os_ci_high": ohigh}


def slip(value, rng: random.Random):
    text = f"{value}"
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    pairs = [i for i in digits if i + 1 in digits and text[i] != text[i + 1]]
    if pairs:
        i = rng.choice(pairs)
        text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
    else:
        i = rng.choice(digits)
        text = text[:i] + text[i] + text[i:]
    return float(text) if "." in text else int(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=100)
    ap.add_argument("--pages", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    import pandas as pd
    import pypdfium2 as pdfium

    from curation.schema import load_schema
    from curation.sources.stage import verify_tables

    rng = random.Random(20)
    tmp = Path(tempfile.mkdtemp(prefix="curation-sources-bench-"))
    try:
        src = tmp / "sources"
        src.mkdir()
        studies, outcomes, slipped = [], [], {}
        t0 = time.perf_counter()
        for k in range(args.articles):
            sid = f"S{k + 1:03d}"
            fig = figures(rng)
            make_article(src / f"{sid}.pdf", sid, fig, args.pages)
            row = dict(fig)
            field = rng.choice(["pfs_median", "os_median", "orr_pct", "n_evaluable", "pfs_ci_high", "pr"])
            row[field] = slip(fig[field], rng)
            slipped[sid] = field
            studies.append({"study_id": sid, "first_author": "Made-up", "n_enrolled": row["n_enrolled"],
                            "file": "form.xlsx", "sheet": "studies", "row": k + 2})
            outcomes.append({"study_id": sid, "cohort": "overall", **{f: row[f] for f in row if f != "n_enrolled"},
                             "file": "form.xlsx", "sheet": "outcomes", "row": k + 2})
        made = time.perf_counter() - t0
        pages = sum(len(pdfium.PdfDocument(str(p))) for p in sorted(src.iterdir())[:5]) / 5
        schema = load_schema()
        tables = {"studies": pd.DataFrame(studies), "outcomes": pd.DataFrame(outcomes)}
        cache = tmp / "cache"
        t0 = time.perf_counter()
        ver = verify_tables(schema, tables, src, cache_dir=cache, jobs=args.jobs)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ver2 = verify_tables(schema, tables, src, cache_dir=cache, jobs=args.jobs)
        cached = time.perf_counter() - t0
        assert [e.status for e in ver.entries] == [e.status for e in ver2.entries]
        numeric = [e for e in ver.entries if isinstance(e.value, (int, float))]
        slips = [e for e in numeric if slipped.get(e.study_id) == e.field]
        correct = [e for e in numeric if slipped.get(e.study_id) != e.field]
        res = {
            "articles": args.articles, "pages_per_article": pages, "jobs": args.jobs,
            "writing_articles_s": round(made, 1), "first_run_s": round(first, 2), "cached_run_s": round(cached, 2),
            "articles_per_s_first": round(args.articles / first, 1),
            "figures_verified": len(numeric),
            "correct_found": sum(e.status == "found" for e in correct), "correct": len(correct),
            "correct_flagged": sum(e.status in ("mismatch", "inconsistent-source") for e in correct),
            "slips_caught": sum(e.status == "mismatch" for e in slips), "slips": len(slips),
        }
        out = ROOT / "benchmarks" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "sources.json").write_text(json.dumps(res, indent=2))
        for k, v in res.items():
            print(f"{k:24} {v}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

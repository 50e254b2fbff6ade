"""Build the comparative example form: the 13 BCG vaccine trials of metafor's ``dat.bcg``.

    .venv/bin/python extraction_forms/build_bcg_example.py                  # write example_bcg.xlsx
    .venv/bin/python extraction_forms/build_bcg_example.py --update-readme  # and refresh README's findings

The counts are those of metafor's ``dat.bcg`` data set (documentation of ``dat.bcg`` in the metafor
package, https://wviechtb.github.io/metadat/reference/dat.bcg.html), from Colditz GA et al. (1994)
"Efficacy of BCG vaccine in the prevention of tuberculosis: meta-analysis of the published
literature", JAMA 271:698-702: per trial the tuberculosis cases and non-cases of the vaccinated
(``tpos``, ``tneg``) and the control arm (``cpos``, ``cneg``), the absolute latitude (``ablat``) and
the method of allocation (``alloc``). They are typed below as the documentation lists them.

What the trials "reported" (the risk ratio, its 95% CI and p-value) is recomputed here from the same
counts (Wald interval of the log risk ratio, two-sided z test), rounded as a paper would print it, so
that a correct row agrees with its counts. Then slips of the kinds the rules catch are planted
(``SLIPS``), and values are written the ways reviewers write them (``p < 0.001``, ``NS``, aliases).
The form starts from ``curate template``, so it records its schema (``bcg_vaccine``).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from curation.schema import load_schema  # noqa: E402
from curation.template import build_template, column_map, workbook_bytes  # noqa: E402

SCHEMA = "bcg_vaccine"
FORM = "example_bcg.xlsx"
Z975 = 1.959964

# metafor dat.bcg: trial, author, year, tpos, tneg, cpos, cneg, ablat, alloc
DAT_BCG = [
    (1, "Aronson", 1948, 4, 119, 11, 128, 44, "random"),
    (2, "Ferguson & Simes", 1949, 6, 300, 29, 274, 55, "random"),
    (3, "Rosenthal et al", 1960, 3, 228, 11, 209, 42, "random"),
    (4, "Hart & Sutherland", 1977, 62, 13536, 248, 12619, 52, "random"),
    (5, "Frimodt-Moller et al", 1973, 33, 5036, 47, 5761, 13, "alternate"),
    (6, "Stein & Aronson", 1953, 180, 1361, 372, 1079, 44, "alternate"),
    (7, "Vandiviere et al", 1973, 8, 2537, 10, 619, 19, "random"),
    (8, "TPT Madras", 1980, 505, 87886, 499, 87892, 13, "random"),
    (9, "Coetzee & Berjak", 1968, 29, 7470, 45, 7232, 27, "random"),
    (10, "Rosenthal et al", 1961, 17, 1699, 65, 1600, 42, "systematic"),
    (11, "Comstock et al", 1974, 186, 50448, 141, 27197, 18, "systematic"),
    (12, "Comstock & Webster", 1969, 5, 2493, 3, 2338, 33, "systematic"),
    (13, "Comstock et al", 1976, 27, 16886, 29, 17825, 33, "systematic"),
]

# The slips: (sheet, study_id, field) -> the value as typed, and what it is.
SLIPS: dict[tuple[str, str, str], tuple[Any, str]] = {
    ("comparisons", "T02", "events_control"): (303, "events above the arm's total: the control arm's events (29) "
                                                        "and total (303) swapped"),
    ("comparisons", "T02", "total_control"): (29, "(the other half of the swap)"),
    ("studies", "T04", "n_randomised"): (24465, "arm totals (13598 + 12867 = 26465) above the number randomised: 26465 typed 24465"),
    ("comparisons", "T06", "rr_reported"): (0.64, "a risk ratio outside its own CI (0.39-0.54): 0.46 typed 0.64"),
    ("comparisons", "T10", "rr_ci_high"): (0.34, "a transposed CI bound: 0.43 typed 0.34"),
    ("comparisons", "T08", "p_value"): ("0.01", "a p-value that contradicts the CI (0.89-1.14 includes 1): 0.85 typed 0.01"),
}

# How values are written (all read correctly): aliases, p-value formats.
STYLE: dict[tuple[str, str, str], Any] = {
    ("studies", "T05", "allocation"): "alternation",
    ("studies", "T07", "allocation"): "randomized",
    ("studies", "T13", "allocation"): "quasi-random",
    ("comparisons", "T12", "p_value"): "NS",
    ("comparisons", "T01", "p_value"): "p = 0.12",
}


def rr_report(a: int, n1: int, c: int, n2: int) -> tuple[float, float, float, str]:
    """Risk ratio, Wald 95% CI and two-sided p-value as a paper prints them (2 decimals, p style)."""
    rr = (a / n1) / (c / n2)
    se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    lo, hi = math.exp(math.log(rr) - Z975 * se), math.exp(math.log(rr) + Z975 * se)
    z = abs(math.log(rr)) / se
    p = math.erfc(z / math.sqrt(2))
    p_text = "p < 0.001" if p < 0.001 else f"{p:.2f}" if p >= 0.01 else f"{p:.3f}"
    return round(rr, 2), round(lo, 2), round(hi, 2), p_text


def true_records() -> dict[str, list[dict[str, Any]]]:
    studies, comparisons = [], []
    for trial, author, year, tpos, tneg, cpos, cneg, ablat, alloc in DAT_BCG:
        sid = f"T{trial:02d}"
        n1, n2 = tpos + tneg, cpos + cneg
        rr, lo, hi, p = rr_report(tpos, n1, cpos, n2)
        studies.append({"study_id": sid, "first_author": author, "year": year, "allocation": alloc,
                        "latitude": ablat, "n_randomised": n1 + n2, "extractor": "JK"})
        comparisons.append({"study_id": sid, "comparison": "BCG vs no vaccine", "outcome": "tuberculosis",
                            "events_vaccinated": tpos, "total_vaccinated": n1, "events_control": cpos,
                            "total_control": n2, "rr_reported": rr, "rr_ci_low": lo, "rr_ci_high": hi,
                            "p_value": p, "extractor": "JK"})
    return {"studies": studies, "comparisons": comparisons}


def form_records() -> dict[str, list[dict[str, Any]]]:
    records = true_records()
    for changes in (STYLE, {k: v for k, (v, _) in SLIPS.items()}):
        for (sheet, sid, field), value in changes.items():
            row = next(r for r in records[sheet] if r["study_id"] == sid)
            row[field] = value
    return records


def build(outdir: Path = HERE) -> Path:
    schema = load_schema(SCHEMA)
    wb = build_template(schema)
    cols = column_map(schema)
    for sheet, rows in form_records().items():
        ws = wb[sheet]
        for r, rec in enumerate(rows, start=2):
            for field, value in rec.items():
                if value is not None:
                    ws[f"{cols[sheet][field]}{r}"] = value
    wb.properties.title = "Example extraction form: BCG vaccine trials (metafor dat.bcg)"
    path = outdir / FORM
    path.write_bytes(workbook_bytes(wb))
    return path


def findings_lines(path: Path) -> list[str]:
    """``rule severity cell`` for every finding `curate validate` reports on the form."""
    from curation.validation import validate

    return [f"{f.rule} {f.severity} {f.cell or f.sheet}" for f in validate(path, SCHEMA).finding_list]


def update_readme(path: Path, readme: Path = HERE / "README.md") -> None:
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(rf"(```findings {re.escape(path.name)}\n).*?(```)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no ```findings {path.name} block")
    block = "\n".join(findings_lines(path))
    readme.write_text(pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), text), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-readme", action="store_true",
                        help="rewrite the example_bcg.xlsx findings block of README.md from `curate validate`")
    args = parser.parse_args(argv)
    path = build()
    print(f"wrote {path.relative_to(HERE.parent)}")
    if args.update_readme:
        update_readme(path)
        print("updated extraction_forms/README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

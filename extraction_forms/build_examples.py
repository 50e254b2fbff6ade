"""Build the example extraction forms of the 177Lu-PRRT review from ``sources.csv``.

    .venv/bin/python extraction_forms/build_examples.py                  # write the two forms
    .venv/bin/python extraction_forms/build_examples.py --update-readme  # and refresh README's findings

``sources.csv`` holds every figure used, one per line, with the page it was read from
(``source_url``), where on that page (``where_in_source``) and how it got into the form
(``derivation``: reported, derived as round(pct x n / 100), a coding convention ...). From those
figures this script builds the correct extraction, then two reviewers' forms of it:

* ``example_reviewer_a.xlsx`` (reviewer AK) and ``example_reviewer_b.xlsx`` (reviewer MB): the same
  13 studies, each with its own slips (``SLIPS_A``, ``SLIPS_B``) and its own way of writing the same
  values (``STYLE_A``, ``STYLE_B``: aliases, text numbers, "NR" vs "not reached"), rows in a
  different order in B. Both start from ``curate template``, so that the live checks colour the
  slips when the forms are opened in Excel or LibreOffice.

The script reads only files in this folder and the schema; the forms are deterministic.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from curation.schema import load_schema  # noqa: E402
from curation.template import build_template, column_map, workbook_bytes  # noqa: E402

SCHEMA = "prrt_177lu"
FORM_A = "example_reviewer_a.xlsx"
FORM_B = "example_reviewer_b.xlsx"

# ---------------------------------------------------------------------------------------------
# The slips each reviewer made (sheet, record key, field) -> value as typed. Every slip is one
# that double extraction really produces; the README lists what `curate validate` says about each.
# ---------------------------------------------------------------------------------------------
SLIPS_A: dict[tuple[str, tuple[str, ...], str], tuple[Any, str]] = {
    ("outcomes", ("VDZWAN2019", "overall"), "n_evaluable"):
        (186, "transposed digits: 168 typed as 186 (more evaluable than the 181 enrolled)"),
    ("outcomes", ("CLEMENT2022", "overall"), "orr_pct"):
        (22.7, "wrong denominator: 25 responders over the 110 enrolled instead of the 62 evaluable"),
    ("outcomes", ("BRABANDER2017", "overall"), "os_ci_low"):
        (63, "median typed into the CI cell: the OS median 63 in os_ci_low (the paper: 55)"),
    ("studies", ("THANG2018",), "response_criteria"):
        ("RECIST", "bare 'RECIST': the version (1.1, stated in the paper) left out"),
    ("studies", ("EZZIDDIN2014",), "response_criteria"):
        ("modified SWOG", "the paper's criteria as written: modified SWOG, not eligible for this review"),
}
SLIPS_B: dict[tuple[str, tuple[str, ...], str], tuple[Any, str]] = {
    ("outcomes", ("BODEI2011", "overall"), "orr_pct"):
        (23.6, "transposed digits: 32.6 typed as 23.6"),
    ("outcomes", ("BRABANDER2017", "overall"), "orr_pct"):
        (28.4, "wrong denominator: 173 responders over the 610 of the safety analysis instead of the 443 evaluable"),
    ("outcomes", ("CLEMENT2022", "overall"), "pfs_median"):
        (17.5, "median and lower CI bound swapped: PFS 24.8 (17.5-34.5) typed as 17.5 (24.8-34.5)"),
    ("outcomes", ("CLEMENT2022", "overall"), "pfs_ci_low"):
        (24.8, "(the other half of the swap above)"),
    ("studies", ("EZZIDDIN2014",), "response_criteria"):
        ("mSWOG", "modified SWOG written as its canonical term: not eligible for this review"),
}

# The same values written differently (agreement after normalisation, never a finding).
STYLE_A: dict[tuple[str, tuple[str, ...], str], Any] = {
    ("studies", ("NETTER1_2017",), "radiopharmaceutical"): "Lutathera",
    ("studies", ("COMPETE2026",), "radiopharmaceutical"): "177Lu-edotreotide",
    ("studies", ("CLEMENT2022",), "response_criteria"): "RECIST v1.1",
    ("studies", ("SUNDLOV2022",), "design"): "phase II",
    ("studies", ("SUNDLOV2022",), "response_criteria"): "RECIST v 1.1",
    ("studies", ("BODEI2011",), "design"): "phase I-II",
    ("studies", ("NETTER1_2017",), "design"): "randomised",
    ("outcomes", ("UNAL2023", "G1-2"), "grade"): "G1/G2",
    ("outcomes", ("BRABANDER2017", "overall"), "orr_pct"): "39",          # pasted from the PDF as text
    ("outcomes", ("SUNDLOV2022", "overall"), "orr_pct"): "16",
    ("outcomes", ("NETTER1_2017", "overall"), "orr_pct"): "18",
    ("outcomes", ("LIM2020", "overall"), "orr_pct"): "33",
    ("adverse_events", ("BRABANDER2017", "MDS"), "ae_term"): "myelodysplastic syndrome",
    ("adverse_events", ("BRABANDER2017", "AML"), "ae_term"): "acute myeloid leukaemia",
}
STYLE_B: dict[tuple[str, tuple[str, ...], str], Any] = {
    ("studies", ("LIM2020",), "n_enrolled"): "48.0 ",
    ("studies", ("UNAL2023",), "design"): "Retrospective",
    ("studies", ("SANSOVINI2013",), "radiopharmaceutical"): "[177Lu]Lu-DOTA-TATE",
    ("outcomes", ("SANSOVINI2013", "full dosage"), "grade"): "grade 1-2",
    ("outcomes", ("SANSOVINI2013", "reduced dosage"), "grade"): "G1–2",
    ("outcomes", ("SANSOVINI2013", "full dosage"), "pfs_median"): "not reached",
    ("outcomes", ("NETTER2_2024", "overall"), "os_median"): "not reached",
    ("outcomes", ("NETTER2_2024", "overall"), "cohort"): "Overall",
    ("outcomes", ("CLEMENT2022", "overall"), "primary_site"): "pNET",
    ("outcomes", ("COMPETE2026", "pancreas"), "primary_site"): "pancreatic",
    ("outcomes", ("SUNDLOV2022", "overall"), "orr_pct"): "16%",
    ("outcomes", ("NETTER1_2017", "overall"), "orr_pct"): "18%",
    ("outcomes", ("LIM2020", "overall"), "orr_pct"): "33 %",
    ("outcomes", ("UNAL2023", "overall"), "pfs_unit"): "months",
    ("outcomes", ("UNAL2023", "overall"), "os_unit"): "mo",
    ("outcomes", ("VDZWAN2019", "overall"), "sd"): "100",
}
EXTRACTOR = {FORM_A: "AK", FORM_B: "MB"}


# ---------------------------------------------------------------------------------------------


def read_sources(path: Path = HERE / "sources.csv") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def typed(schema, sheet: str, field: str, text: str) -> Any:
    """A figure from sources.csv as the type its field holds (NR and text stay text)."""
    fs = schema.sheets[sheet].fields[field]
    if fs.type in ("integer", "year"):
        return int(text)
    if fs.type in ("number", "percentage") and re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        value = float(text)
        return int(value) if value.is_integer() and "." not in text else value
    return text


def true_records(schema, sources: list[dict[str, str]]) -> dict[str, dict[tuple[str, ...], dict[str, Any]]]:
    """The correct extraction: per sheet, record key -> {field: value}, in the order of sources.csv."""
    records: dict[str, dict[tuple[str, ...], dict[str, Any]]] = {s: {} for s in schema.sheets}
    for row in sources:
        sheet, sid, rec = row["sheet"], row["study_id"], row["record"]
        key = (sid,) if sheet == "studies" else (sid, rec)
        spec = schema.sheets[sheet]
        r = records[sheet].setdefault(key, {})
        if not r:
            r[spec.key[0]] = sid
            if len(spec.key) > 1:
                r[spec.key[1]] = rec
        r[row["field"]] = typed(schema, sheet, row["field"], row["value"])
    return records


def reviewer_records(schema, truth, slips, style, extractor: str):
    out = {s: {k: dict(v) for k, v in recs.items()} for s, recs in truth.items()}
    for (sheet, key, field), value in style.items():
        out[sheet][key][field] = value
    for (sheet, key, field), (value, _why) in slips.items():
        out[sheet][key][field] = value
    for recs in out.values():
        for r in recs.values():
            r["extractor"] = extractor
    return out


def order_b(records):
    """Reviewer B worked through the studies by year, newest first, and wrote subgroups before overall."""
    studies = records["studies"]
    year = {k[0]: v.get("year", 0) for k, v in studies.items()}
    out = {"studies": dict(sorted(studies.items(), key=lambda kv: (-year[kv[0][0]], kv[0][0])))}
    for sheet in ("outcomes", "adverse_events"):
        out[sheet] = dict(sorted(records[sheet].items(),
                                 key=lambda kv: (-year[kv[0][0]], kv[0][0], str(kv[1].get("cohort", "")).casefold() == "overall",
                                                 kv[0][1])))
    return out


def write_form(schema, records, sources, path: Path) -> None:
    wb = build_template(schema)
    cols = column_map(schema)
    for sheet, recs in records.items():
        ws = wb[sheet]
        for r, rec in enumerate(recs.values(), start=2):
            for field, value in rec.items():
                if value is not None:
                    ws[f"{cols[sheet][field]}{r}"] = value
    src = wb.create_sheet("sources", index=len(schema.sheets))
    src.append(["study_id", "sheet", "record", "field", "value", "derivation", "source_url", "where_in_source"])
    for row in sources:
        src.append([row[k] for k in ("study_id", "sheet", "record", "field", "value", "derivation", "source_url",
                                     "where_in_source")])
    for letter, width in zip("ABCDEFGH", (16, 14, 14, 22, 24, 40, 50, 50)):
        src.column_dimensions[letter].width = width
    src.freeze_panes = "A2"
    who = EXTRACTOR.get(path.name)
    wb.properties.title = f"Example extraction form{f' ({who})' if who else ''}: 177Lu-PRRT review"
    path.write_bytes(workbook_bytes(wb))


def build(outdir: Path = HERE) -> list[Path]:
    schema = load_schema(SCHEMA)
    sources = read_sources()
    truth = true_records(schema, sources)
    a = reviewer_records(schema, truth, SLIPS_A, STYLE_A, EXTRACTOR[FORM_A])
    b = order_b(reviewer_records(schema, truth, SLIPS_B, STYLE_B, EXTRACTOR[FORM_B]))
    paths = [outdir / FORM_A, outdir / FORM_B]
    write_form(schema, a, sources, paths[0])
    write_form(schema, b, sources, paths[1])
    return paths


# ---------------------------------------------------------------------------------------------
# The README's machine-readable findings
# ---------------------------------------------------------------------------------------------


def findings_lines(path: Path) -> list[str]:
    """``rule severity cell`` for every finding `curate validate` reports on one form."""
    from curation.validation import validate

    result = validate(path, SCHEMA)
    return [f"{f.rule} {f.severity} {f.cell or f.sheet}" for f in result.finding_list]


def update_readme(paths: list[Path], readme: Path = HERE / "README.md") -> None:
    text = readme.read_text(encoding="utf-8")
    for path in paths:
        block = "\n".join(findings_lines(path))
        pattern = re.compile(rf"(```findings {re.escape(path.name)}\n).*?(```)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no ```findings {path.name} block")
        text = pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), text)
    readme.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-readme", action="store_true",
                        help="rewrite the findings blocks of README.md from `curate validate`")
    args = parser.parse_args(argv)
    paths = build()
    for p in paths:
        print(f"wrote {p.relative_to(HERE.parent)}")
    if args.update_readme:
        update_readme(paths)
        print("updated extraction_forms/README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build ``example_adjudication.xlsx``: a third reviewer's decisions on the two example forms.

Runs ``curate reconcile`` (the library function) on ``example_reviewer_a.xlsx`` and
``example_reviewer_b.xlsx`` and fills the consensus workbook's ``conflicts`` sheet as the third
reviewer (initials ``CR``) would: every conflict is resolved with the value the published source
supports, looked up in ``sources.csv`` (one line per figure, with its page and where on the page;
the figures are those of /work/shared/data/prrt_published_studies.csv). The note says where the
value comes from and whether it agrees with reconcile's suggestion. A conflict without a source
line falls back to the suggestion, and one with neither is left open (and reported), so that a
change to the example forms never slips through silently.

Eligibility is not the adjudicator's business: Ezziddin 2014 (modified SWOG criteria) is the same in
both forms, so it is no conflict; it stays in the consensus and ``curate validate`` reports and
excludes it, as in either reviewer's form.

Usage::

    .venv/bin/python extraction_forms/build_adjudication.py          # writes example_adjudication.xlsx
    .venv/bin/python extraction_forms/build_adjudication.py --check  # exit 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FORM_A = "extraction_forms/example_reviewer_a.xlsx"
FORM_B = "extraction_forms/example_reviewer_b.xlsx"
SOURCES = HERE / "sources.csv"
OUT = HERE / "example_adjudication.xlsx"
ADJUDICATOR = "CR"
DECIDED_AT = "2026-11-26T12:00:00+00:00"


def _number(text: str) -> Any:
    """A source figure as a cell value: an int or float when it is one, else the text."""
    try:
        f = float(text)
    except ValueError:
        return text
    return int(f) if f.is_integer() else f


def load_sources(path: Path = SOURCES) -> dict[tuple[str, str, str, str], dict[str, str]]:
    """``(study_id, sheet, record, field) -> source line``; record is the cohort / AE term (folded)."""
    from curation.schema import fold

    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            key = (row["study_id"].strip(), row["sheet"].strip(), fold(row["record"] or ""), row["field"].strip())
            out[key] = row
    return out


def decide(conflict: Any, sources: dict) -> tuple[Any, str] | None:
    """The third reviewer's (resolved_value, note) for one conflict, or None to leave it open."""
    from curation.schema import fold

    key = conflict.key
    record = key.get("cohort") or key.get("ae_term") or ""
    if conflict.field is None:  # a row only one reviewer has: keep it when the source reports it
        has_source = any(k[0] == key.get("study_id") and k[1] == conflict.sheet and k[2] == fold(str(record))
                         for k in sources)
        if has_source:
            return "keep", "the source reports this record (sources.csv)"
        return "drop", "no figure of this record in the source (sources.csv)"
    line = sources.get((key.get("study_id"), conflict.sheet, fold(str(record)), conflict.field))
    suggested = conflict.suggested_value
    if line is not None:
        value = _number(line["value"])
        where = f"{line['where_in_source']} ({line['source_url']})"
        if suggested is None:
            agree = "no suggestion"
        elif _same_value(value, suggested):
            agree = f"agrees with the suggestion ({conflict.suggested}'s value)"
        else:
            agree = f"differs from the suggestion ({conflict.suggested}'s {suggested})"
        return value, f"source: {where}; {agree}"
    if suggested is not None:
        return suggested, f"no source line; followed the suggestion: {conflict.suggestion}"
    return None


def _same_value(a: Any, b: Any) -> bool:
    from curation.schema import fold

    try:
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    except (TypeError, ValueError):
        return fold(str(a)) == fold(str(b))


def build() -> tuple[bytes, list[str]]:
    """The adjudicated consensus workbook's bytes, and the conflicts left open."""
    from curation.reconcile import CONFLICT_COLUMNS, RESOLVED_FILL, consensus_workbook, reconcile
    from curation.template import FIXED_DATE, workbook_bytes
    from openpyxl.styles import PatternFill

    os.chdir(ROOT)  # paths in the workbook stay relative to the repository
    rec = reconcile(FORM_A, FORM_B, decided_at=DECIDED_AT)
    sources = load_sources()
    wb = consensus_workbook(rec)
    wb.properties.creator = ADJUDICATOR
    wb.properties.lastModifiedBy = ADJUDICATOR
    wb.properties.created = FIXED_DATE
    wb.properties.modified = FIXED_DATE
    ws = wb["conflicts"]
    col = {name: CONFLICT_COLUMNS.index(name) + 1 for name in CONFLICT_COLUMNS}
    status_col = len(CONFLICT_COLUMNS) + 1
    green = PatternFill("solid", start_color=RESOLVED_FILL, end_color=RESOLVED_FILL)
    open_: list[str] = []
    by_id = {c.id: c for c in rec.conflicts}
    for r in range(2, ws.max_row + 1):
        conflict = by_id[ws.cell(r, col["id"]).value]
        decision = decide(conflict, sources)
        if decision is None:
            open_.append(f"conflict {conflict.id} ({conflict.sheet} {conflict.key_text} {conflict.field}): "
                         "no source line and no suggestion; left open")
            continue
        value, note = decision
        ws.cell(r, col["resolved_value"]).value = value
        ws.cell(r, col["resolved_value"]).fill = green
        ws.cell(r, col["adjudicator"]).value = ADJUDICATOR
        ws.cell(r, col["note"]).value = note
        ws.cell(r, status_col).value = "decided by CR (carry with --adjudication)"
    return workbook_bytes(wb), open_


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when example_adjudication.xlsx is out of date")
    args = parser.parse_args(argv)
    data, open_ = build()
    for line in open_:
        print(f"warning: {line}", file=sys.stderr)
    if args.check:
        current = OUT.read_bytes() if OUT.exists() else b""
        if current != data:
            print(f"{OUT.name} is out of date: run .venv/bin/python extraction_forms/build_adjudication.py",
                  file=sys.stderr)
            return 1
        print(f"{OUT.name} is up to date")
        return 0
    from curation.outputs import atomic_write_bytes

    atomic_write_bytes(OUT, data)
    print(f"wrote {OUT.relative_to(ROOT)}" + (f" ({len(open_)} conflict(s) left open)" if open_ else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

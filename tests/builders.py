"""Build extraction forms for tests: plain openpyxl workbooks with the contract's sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

STUDY_FIELDS = ["study_id", "first_author", "year", "doi", "pmid", "country", "design", "radiopharmaceutical",
                "response_criteria", "n_enrolled", "cycles_median", "activity_per_cycle_gbq",
                "cumulative_activity_gbq", "enrolment_start", "enrolment_end", "extractor"]
OUTCOME_FIELDS = ["study_id", "cohort", "grade", "ki67_max", "primary_site", "n_evaluable", "cr", "pr", "sd", "pd",
                  "ne", "orr_n", "dcr_n", "orr_pct", "dcr_pct", "pfs_median", "pfs_ci_low", "pfs_ci_high", "pfs_unit", "os_median",
                  "os_ci_low", "os_ci_high", "os_unit", "followup_median_months", "extractor"]
AE_FIELDS = ["study_id", "ae_term", "grade3plus_n", "any_grade_n", "n_safety", "extractor"]

FIELDS = {"studies": STUDY_FIELDS, "outcomes": OUTCOME_FIELDS, "adverse_events": AE_FIELDS}


def good_study(**over: Any) -> dict[str, Any]:
    row = {"study_id": "S01", "first_author": "Strosberg", "year": 2017, "doi": "10.1056/NEJMoa1607427",
           "pmid": 28076709, "country": "USA", "design": "RCT", "radiopharmaceutical": "177Lu-DOTATATE",
           "response_criteria": "RECIST 1.1", "n_enrolled": 116, "cycles_median": 4,
           "activity_per_cycle_gbq": 7.4, "cumulative_activity_gbq": 29.6, "enrolment_start": 2012,
           "enrolment_end": 2016, "extractor": "AB"}
    row.update(over)
    return row


def good_outcome(**over: Any) -> dict[str, Any]:
    # 101 evaluable: CR 1, PR 17, SD 70, PD 13 -> ORR 17.8%, DCR 87.1%
    row = {"study_id": "S01", "cohort": "overall", "grade": "G1-2", "ki67_max": 15, "primary_site": "midgut",
           "n_evaluable": 101, "cr": 1, "pr": 17, "sd": 70, "pd": 13, "ne": None, "orr_n": None, "dcr_n": None, "orr_pct": 17.8,
           "dcr_pct": 87.1, "pfs_median": 28.4, "pfs_ci_low": 19.4, "pfs_ci_high": 35.8, "pfs_unit": "months",
           "os_median": 48.0, "os_ci_low": 37.4, "os_ci_high": 55.2, "os_unit": "months",
           "followup_median_months": 76.3, "extractor": "AB"}
    row.update(over)
    return row


def good_ae(**over: Any) -> dict[str, Any]:
    row = {"study_id": "S01", "ae_term": "thrombocytopenia", "grade3plus_n": 2, "any_grade_n": 28,
           "n_safety": 111, "extractor": "AB"}
    row.update(over)
    return row


def write_form(path: str | Path, studies: Iterable[Mapping[str, Any]] = (), outcomes: Iterable[Mapping[str, Any]] = (),
               adverse_events: Iterable[Mapping[str, Any]] = (), *, headers: Mapping[str, list[str]] | None = None,
               sheet_names: Mapping[str, str] | None = None) -> Path:
    """Write a form; ``headers`` overrides a sheet's header texts (same order as its fields)."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    data = {"studies": list(studies), "outcomes": list(outcomes), "adverse_events": list(adverse_events)}
    for sheet, rows in data.items():
        ws = wb.create_sheet((sheet_names or {}).get(sheet, sheet))
        fields = FIELDS[sheet]
        if rows:
            extra = [k for r in rows for k in r if k not in fields]
            fields = fields + list(dict.fromkeys(extra))
        ws.append(list((headers or {}).get(sheet, fields)))
        for r in rows:
            ws.append([r.get(f) for f in fields])
    path = Path(path)
    wb.save(path)
    return path

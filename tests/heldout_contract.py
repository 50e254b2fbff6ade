"""Held-out workbooks built from the contract alone (shared spec ``layouts.md`` v2, ``extraction-form.md``,
``cli.md``), the way an independent evaluator would build them: real 177Lu-PRRT figures (shared data
``prrt_published_studies*.csv`` and ``prrt_adverse_events.csv``, copied here as literals with their study), header
wordings a review team types (never the schema's keys), cells as people type them (``n=110``, ``51 pts``,
``15/46``, ``40.3 %``, ``24.8 (17.5–34.5)``, ``29 months; 95% CI 26 to 33``, ``NR``) and five planted slips.

This module renders the one truth in every shape of ``layouts.md`` (wide with a title, a two-row header, a Total and
a notes row; long / tidy; form style, one sheet per study and a folder of one workbook per study; transposed; stacked
blocks; one sheet per primary site; group heading rows; an adverse-event cross-tab; vertically merged study labels)
and file format (.xlsx, .ods, .csv with ``;`` and decimal comma, .tsv), and measures what ``curate`` reads back with
no options. It was written without reading the reader's code (curation/layout/, reading.py, cells.py) nor
tests/renderings.py: the shapes are what the contract and real teams' workbooks say, nothing else.

Nothing here imports the library's reading code: every figure comes from the ``curate`` command (run in-process
with click's runner, as ``curate`` would run it) and its output files.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------------------------------------------------------
# The truth: real published figures (shared/data/prrt_published_studies*.csv, prrt_adverse_events.csv)
# ---------------------------------------------------------------------------------------------------------------

STUDY_KEYS = ("first_author", "year", "design", "radiopharmaceutical", "response_criteria", "n_enrolled")
OUTCOME_KEYS = ("cohort", "grade", "primary_site", "n_evaluable", "cr", "pr", "sd", "pd", "orr_n", "orr_pct",
                "dcr_pct", "pfs_median", "pfs_ci_low", "pfs_ci_high", "os_median", "os_ci_low", "os_ci_high")
AE_KEYS = ("ae_term", "grade3plus_n", "n_safety")

# key, first_author, year, design (canonical, as typed), radiopharmaceutical (canonical, as typed), criteria, n
STUDIES = [
    dict(key="bodei", first_author="Bodei", year=2011, design=("prospective", "phase I-II"),
         radiopharmaceutical=("177Lu-DOTATATE", "177Lu-DOTATATE"), response_criteria=None, n_enrolled=51),
    dict(key="brabander", first_author="Brabander", year=2017, design=("retrospective", "Retrospective"),
         radiopharmaceutical=("177Lu-DOTATATE", "177Lu-octreotate"), response_criteria=None, n_enrolled=610),
    dict(key="vdzwan", first_author="van der Zwan", year=2019, design=("retrospective", "retrospective"),
         radiopharmaceutical=("177Lu-DOTATATE", "177Lu-DOTATATE"), response_criteria=None, n_enrolled=181),
    dict(key="baum", first_author="Baum", year=2016, design=("retrospective", "Retrospective"),
         radiopharmaceutical=("177Lu-DOTATOC", "177Lu-DOTATOC"), response_criteria=("RECIST 1.1", "RECIST v1.1"),
         n_enrolled=56),
    dict(key="clement", first_author="Clement", year=2022, design=("retrospective", "retrospective cohort"),
         radiopharmaceutical=("177Lu-DOTATATE", "177Lu-DOTATATE"), response_criteria=("RECIST 1.1", "RECIST 1.1"),
         n_enrolled=110),
    dict(key="unal", first_author="Unal", year=2023, design=("retrospective", "Retrospective"),
         radiopharmaceutical=("177Lu-DOTATATE", "177Lu-DOTATATE"), response_criteria=None, n_enrolled=73),
    dict(key="singh", first_author="Singh", year=2024, design=("RCT", "Randomized controlled trial"),
         radiopharmaceutical=("177Lu-DOTATATE", "Lutathera"), response_criteria=None, n_enrolled=151),
    dict(key="ezziddin", first_author="Ezziddin", year=2014, design=("retrospective", "Retrospective"),
         radiopharmaceutical=("177Lu-DOTATATE", "177Lu-DOTATATE"), response_criteria=None, n_enrolled=68),
    dict(key="kobayashi", first_author="Kobayashi", year=2021, design=("prospective", "Prospective"),
         radiopharmaceutical=("177Lu-DOTATATE", "177Lu-DOTATATE"), response_criteria=None, n_enrolled=6),
    dict(key="lim", first_author="Lim", year=2020, design=("retrospective", "Retrospective"),
         radiopharmaceutical=("177Lu-DOTATATE", "177Lu-DOTATATE"), response_criteria=None, n_enrolled=48),
    dict(key="strosberg", first_author="Strosberg", year=2017, design=("RCT", "Phase III RCT"),
         radiopharmaceutical=("177Lu-DOTATATE", "Lutathera"), response_criteria=("RECIST 1.1", "RECIST v1.1"),
         n_enrolled=116),
]
# first authors' initials, as some teams write study labels (`Brabander T 2017`, `Strosberg J 2017`: the same
# year, so an id that kept only the initial and year would still differ, but must keep the surname)
INITIALS = {"bodei": "L", "brabander": "T", "vdzwan": "WA", "baum": "RP", "clement": "D", "unal": "B",
            "singh": "S", "ezziddin": "S", "kobayashi": "N", "lim": "LE", "strosberg": "J"}
STUDY = {s["key"]: s for s in STUDIES}

NR = "NR"


def _o(study, cohort="overall", **kw):
    d = {k: None for k in OUTCOME_KEYS}
    d.update(kw, study=study, cohort=cohort)
    return d


# Each figure is the source's (prrt_published_studies*.csv); None where the source does not state it.
OUTCOMES = [
    _o("bodei", primary_site="mixed", n_evaluable=46, orr_n=15, orr_pct=32.6),
    _o("brabander", primary_site="mixed", n_evaluable=443, orr_pct=39, pfs_median=29, pfs_ci_low=26,
       pfs_ci_high=33, os_median=63, os_ci_low=55, os_ci_high=72),
    _o("vdzwan", "R-PRRT", primary_site="mixed", n_evaluable=168, sd=100, orr_pct=15.5, pfs_median=14.6,
       pfs_ci_low=12.4, pfs_ci_high=16.9),
    _o("vdzwan", "RR-PRRT", primary_site="mixed", n_evaluable=13, sd=7, orr_pct=38.5, pfs_median=14.2,
       pfs_ci_low=9.8, pfs_ci_high=18.5),
    _o("baum", primary_site="mixed", orr_pct=33.9, dcr_pct=66.1, pfs_median=17.4, os_median=34.2),
    _o("clement", primary_site="pancreas", n_evaluable=62, orr_pct=40.3, pfs_median=24.8, pfs_ci_low=17.5,
       pfs_ci_high=34.5, os_median=41.4, os_ci_low=28.6, os_ci_high=50.2),
    _o("unal", grade="mixed", primary_site="mixed", orr_pct=29.6, dcr_pct=66.2, pfs_median=13.7, os_median=51.2),
    _o("unal", "G1-2", grade="G1-2", primary_site="mixed", pfs_median=16.9, os_median=55.5),
    _o("unal", "G3", grade="G3", primary_site="mixed", pfs_median=8.5, os_median=29.5),
    _o("singh", grade="mixed", primary_site="mixed", orr_pct=43.0, dcr_pct=90.7, pfs_median=22.8,
       pfs_ci_low=19.4, pfs_ci_high=NR, os_median=NR),
    _o("ezziddin", grade="G1-2", primary_site="pancreas", pr=41, sd=9, pd=10),
    _o("kobayashi", n_evaluable=6, pr=4, orr_pct=66.7),
    _o("lim", primary_site="lung", orr_pct=33, os_median=49),
    _o("strosberg", grade="G1-2", primary_site="midgut", orr_pct=18, pfs_median=NR, pfs_ci_low=18.4,
       pfs_ci_high=NR),
]

# grade and site as a team types them
GRADE_TYPED = {"mixed": "G1-3", "G1-2": "G1/G2", "G3": "G3"}
SITE_TYPED = {"mixed": "GEP-NET", "pancreas": "Pancreatic", "lung": "Lung", "midgut": "Midgut"}

AES = [
    dict(study="brabander", ae_term=("AML", "Acute myeloid leukaemia"), grade3plus_n=4, n_safety=610),
    dict(study="brabander", ae_term=("MDS", "Myelodysplastic syndrome"), grade3plus_n=9, n_safety=610),
    dict(study="ezziddin", ae_term=("nephrotoxicity", "Renal toxicity"), grade3plus_n=0, n_safety=68),
    dict(study="kobayashi", ae_term=("lymphopenia", "Lymphopenia"), grade3plus_n=2, n_safety=6),
]


@dataclass(frozen=True)
class Slip:
    """A planted slip: the record it is in, what was typed, and the rules that report it."""
    name: str
    record: tuple          # ("outcome", study, cohort)
    what: str
    rules: frozenset


SLIPS = [
    Slip("counts-not-adding-up", ("outcome", "kobayashi", "overall"),
         "CR 0 + PR 4 + SD 3 + PD 1 = 8 but N evaluable 6", frozenset({"response-sum-mismatch"})),
    Slip("grade-spelled-oddly", ("outcome", "unal", "G3"), "grade typed 'G4'", frozenset({"rejected-term"})),
    Slip("median-outside-ci", ("outcome", "clement", "overall"), "PFS 24.8 with 95% CI 27.5-34.5",
         frozenset({"median-outside-ci"})),
    Slip("duplicated-study", ("outcome", "lim", "overall"), "Lim 2020 entered twice",
         frozenset({"duplicate-key", "study-id-clash", "possible-duplicate-population"})),
    Slip("impossible-percentage", ("outcome", "baum", "overall"), "DCR typed 166.1 %",
         frozenset({"out-of-range", "percentage-impossible"})),
]
SLIP_RECORDS = {s.record for s in SLIPS}


def typed_outcomes():
    """The outcome rows as the team typed them: the truth with the slips in (Lim twice)."""
    rows = []
    for o in OUTCOMES:
        o = dict(o)
        if (o["study"], o["cohort"]) == ("kobayashi", "overall"):
            o.update(cr=0, sd=3, pd=1)
        if (o["study"], o["cohort"]) == ("unal", "G3"):
            o["grade_typed"] = "G4"
        if (o["study"], o["cohort"]) == ("clement", "overall"):
            o["pfs_ci_low"] = 27.5
        if (o["study"], o["cohort"]) == ("baum", "overall"):
            o["dcr_pct"] = 166.1
        rows.append(o)
        if o["study"] == "lim":
            rows.append(dict(o, duplicate=True))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Cell typing
# ---------------------------------------------------------------------------------------------------------------

def num(v, eu=False):
    if v is None:
        return None
    if v == NR:
        return NR
    s = f"{v}"
    if isinstance(v, float) and v.is_integer():
        s = f"{v:.1f}"
    return s.replace(".", ",") if eu else s


def median_ci(m, lo, hi, eu=False, style="paren"):
    """``24.8 (17.5–34.5)`` (or ``29 months; 95% CI 26 to 33``); None when there is no median."""
    if m is None:
        return None
    if lo is None and hi is None:
        return num(m, eu)
    if style == "words":
        return f"{num(m, eu)} months; 95% CI {num(lo, eu)} to {num(hi, eu)}"
    dash = "–"
    return f"{num(m, eu)} ({num(lo, eu)}{dash}{num(hi, eu)})"


def grade_cell(o):
    if "grade_typed" in o:
        return o["grade_typed"]
    return GRADE_TYPED.get(o["grade"]) if o["grade"] else None


def site_cell(o):
    return SITE_TYPED.get(o["primary_site"]) if o["primary_site"] else None


def n_enrolled_cell(s, variant=True):
    n = s["n_enrolled"]
    if not variant:
        return n
    return {"clement": "n=110", "bodei": "51 pts", "unal": "N = 73"}.get(s["key"], n)


def orr_cell(o, eu=False, variant=True, frac="15/46"):
    if variant and o["study"] == "bodei":
        return frac
    if variant and o["study"] == "clement":
        return "40,3 %" if eu else "40.3 %"
    return num(o["orr_pct"], eu) if o["orr_pct"] is not None else None


def author_year(s):
    return f"{s['first_author']} ({s['year']})"


def study_label(s, initials=False):
    if initials:
        return f"{s['first_author']} {INITIALS[s['key']]} {s['year']}"
    return f"{s['first_author']} {s['year']}"


# ---------------------------------------------------------------------------------------------------------------
# Grids: a rendering is a set of files made of sheets of cells; every cell knows the record(s) it belongs to
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Grid:
    name: str
    cells: dict = field(default_factory=dict)      # (row, col) 1-based -> value
    owner: dict = field(default_factory=dict)      # (row, col) -> set of record ids
    merges: list = field(default_factory=list)     # (r1, c1, r2, c2)
    fields: dict = field(default_factory=dict)     # (row, col) -> the field key the value cell gives

    def put(self, r, c, v, *owners, fld=None):
        if v is None or v == "":
            return
        self.cells[(r, c)] = v
        if fld:
            self.fields[(r, c)] = fld
        if owners:
            self.owner.setdefault((r, c), set()).update(owners)

    def own(self, r, c, *owners):
        self.owner.setdefault((r, c), set()).update(owners)


@dataclass
class Rendering:
    name: str
    path: Path                  # the file or folder given to curate
    files: dict                 # file name -> list of Grid
    orient: str = "row"         # how a record is found from a finding: row | col | sheet
    description: str = ""


def col_letter(c):
    s = ""
    while c:
        c, r = divmod(c - 1, 26)
        s = chr(65 + r) + s
    return s


def rid_study(key):
    return ("study", key)


def rid_outcome(o):
    return ("outcome", o["study"], o["cohort"])


def rid_ae(a):
    return ("ae", a["study"], a["ae_term"][0])


def write_xlsx(path, grids):
    from openpyxl import Workbook
    wb = Workbook()
    wb.remove(wb.active)
    for g in grids:
        ws = wb.create_sheet(g.name)
        for (r, c), v in g.cells.items():
            ws.cell(row=r, column=c, value=v)
        for r1, c1, r2, c2 in g.merges:
            ws.merge_cells(start_row=r1, start_column=c1, end_row=r2, end_column=c2)
    wb.save(path)


def _frame(g):
    import pandas as pd
    nr = max(r for r, _ in g.cells)
    nc = max(c for _, c in g.cells)
    data = [[g.cells.get((r, c)) for c in range(1, nc + 1)] for r in range(1, nr + 1)]
    return pd.DataFrame(data)


def write_ods(path, grids):
    import pandas as pd
    with pd.ExcelWriter(path, engine="odf") as xw:
        for g in grids:
            _frame(g).to_excel(xw, sheet_name=g.name, header=False, index=False)


def write_csv(path, grid, delimiter, encoding="utf-8"):
    nr = max(r for r, _ in grid.cells)
    nc = max(c for _, c in grid.cells)
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh, delimiter=delimiter)
        for r in range(1, nr + 1):
            w.writerow(["" if grid.cells.get((r, c)) is None else grid.cells.get((r, c))
                        for c in range(1, nc + 1)])


# ---------------------------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------------------------

def _ae_sheet(name="Safety", title=True, initials=False):
    """A wide safety sheet: Study | Adverse event | Grade 3-4 (n) | N (safety)."""
    g = Grid(name)
    r = 1
    if title:
        g.put(1, 1, "Grade 3-4 adverse events (patients)")
        r = 3
    for c, h in enumerate(["Study", "Adverse event", "Grade 3-4 (n)", "N (safety)"], 1):
        g.put(r, c, h)
    for a in AES:
        r += 1
        s = STUDY[a["study"]]
        rid = rid_ae(a)
        g.put(r, 1, study_label(s, initials), rid, fld="study_id")
        g.put(r, 2, a["ae_term"][1], rid, fld="ae_term")
        g.put(r, 3, a["grade3plus_n"], rid, fld="grade3plus_n")
        g.put(r, 4, a["n_safety"], rid, fld="n_safety")
    return g


WIDE_GROUPS = [("Study", 6), ("Population", 3), ("Best response (RECIST), n", 4), ("Response rates", 2),
               ("Survival, months (95% CI)", 2)]
WIDE_HEADERS = ["Author (year)", "Cohort", "Study type", "Agent", "Response criteria", "No. of patients",
                "Evaluable pts", "Grade (WHO)", "Primary site", "CR", "PR", "SD", "PD", "ORR (%)", "DCR (%)",
                "mPFS", "mOS"]


def wide_row(o, eu=False, variant=True, site=True):
    """The cells of one wide row (study fields then the cohort's), with the record each belongs to."""
    s = STUDY[o["study"]]
    sr, orr = rid_study(s["key"]), rid_outcome(o)
    pfs_style = "words" if (variant and o["study"] == "brabander") else "paren"
    cells = [
        (author_year(s), sr), (o["cohort"], orr), (s["design"][1], sr), (s["radiopharmaceutical"][1], sr),
        (s["response_criteria"][1] if s["response_criteria"] else None, sr),
        (n_enrolled_cell(s, variant), sr), (o["n_evaluable"], orr), (grade_cell(o), orr),
        (site_cell(o) if site else None, orr),
        (o["cr"], orr), (o["pr"], orr), (o["sd"], orr), (o["pd"], orr), (orr_cell(o, eu, variant), orr),
        (num(o["dcr_pct"], eu), orr),
        (median_ci(o["pfs_median"], o["pfs_ci_low"], o["pfs_ci_high"], eu, pfs_style), orr),
        (median_ci(o["os_median"], o["os_ci_low"], o["os_ci_high"], eu), orr),
    ]
    flds = ["study_id", "cohort", "design", "radiopharmaceutical", "response_criteria", "n_enrolled", "n_evaluable",
            "grade", "primary_site", "cr", "pr", "sd", "pd", "orr_pct", "dcr_pct", "pfs_median", "os_median"]
    cells = [(v, rid, fl) for (v, rid), fl in zip(cells, flds)]
    if not site:
        del cells[8]
    return cells


def wide_grid(name="Data extraction", eu=False, two_row_header=True, variant=True):
    g = Grid(name)
    g.put(1, 1, "Data extraction: 177Lu-PRRT in neuroendocrine tumours (last updated March 2025)")
    r = 3
    if two_row_header:
        c = 1
        for text, span in WIDE_GROUPS:
            g.put(r, c, text)
            if span > 1:
                g.merges.append((r, c, r, c + span - 1))
            c += span
        r += 1
    for c, h in enumerate(WIDE_HEADERS, 1):
        g.put(r, c, h)
    total = 0
    for o in typed_outcomes():
        r += 1
        for c, (v, rid, fl) in enumerate(wide_row(o, eu, variant), 1):
            g.put(r, c, v, rid, fld=fl)
        total += STUDY[o["study"]]["n_enrolled"] if o["cohort"] == "overall" else 0
    r += 1
    g.put(r, 1, "Total")
    g.put(r, 6, total)
    r += 2
    g.put(r, 1, "NR = not reached; empty = not reported. Source: published reports of the included studies.")
    return g


def shape_wide(tmp, fmt):
    if fmt == "xlsx":
        p = tmp / "team_wide.xlsx"
        grids = [wide_grid(), _ae_sheet()]
        write_xlsx(p, grids)
        return Rendering("wide-xlsx", p, {p.name: grids}, description="title row, two-row header, Total and notes")
    if fmt == "ods":
        p = tmp / "team_wide.ods"
        grids = [wide_grid(two_row_header=False), _ae_sheet()]
        write_ods(p, grids)
        return Rendering("wide-ods", p, {p.name: grids}, description="pandas odf writer, one header row")
    if fmt == "csv_eu":
        p = tmp / "extraction.csv"
        g = wide_grid(name="extraction", eu=True, two_row_header=False)
        write_csv(p, g, ";", encoding="cp1252")   # Excel's "CSV (semicolon)" on a European Windows
        return Rendering("wide-csv_eu", p, {p.name: [g]}, description="';' separated, decimal comma, cp1252")
    if fmt == "tsv":
        p = tmp / "extraction.tsv"
        g = wide_grid(name="extraction", two_row_header=False)
        write_csv(p, g, "\t")
        return Rendering("wide-tsv", p, {p.name: [g]}, description="tab separated")
    raise ValueError(fmt)


STUDY_COLS = ["study_id", "first_author", "year", "design", "radiopharmaceutical", "response_criteria", "n_enrolled"]


def studies_grid(name="Studies", start=1, title=None, initials=False):
    g = Grid(name)
    r = start
    if title:
        g.put(r, 1, title)
        r += 2
    for c, h in enumerate(["Study", "First author", "Publication year", "Design", "Radiopharmaceutical",
                           "Response criteria", "Patients treated"], 1):
        g.put(r, c, h)
    seen = []
    for s in STUDIES:
        r += 1
        rid = rid_study(s["key"])
        for c, v in enumerate([study_label(s, initials), s["first_author"], s["year"], s["design"][1],
                               s["radiopharmaceutical"][1],
                               s["response_criteria"][1] if s["response_criteria"] else None,
                               n_enrolled_cell(s)], 1):
            g.put(r, c, v, rid, fld=STUDY_COLS[c - 1])
        seen.append(s["key"])
    return g, r


def long_grid(name="Results", initials=True):
    """One row per study x cohort x outcome: Study | Cohort | Grade | Primary site | Outcome | n | N | Estimate |
    Lower | Upper."""
    g = Grid(name)
    heads = ["Study", "Cohort", "Grade", "Primary site", "Outcome", "n", "N", "Estimate", "Lower", "Upper"]
    for c, h in enumerate(heads, 1):
        g.put(1, c, h)
    r = 1
    for o in typed_outcomes():
        s = STUDY[o["study"]]
        rid = rid_outcome(o)
        lines = []
        for k, lab in (("cr", "CR"), ("pr", "PR"), ("sd", "SD"), ("pd", "PD")):
            if o[k] is not None:
                lines.append((lab, o[k], None, None, None, None, (k, None, None, None, None)))
        if o["orr_pct"] is not None or o["n_evaluable"] is not None:
            lines.append(("ORR", o["orr_n"], o["n_evaluable"], o["orr_pct"], None, None,
                          ("orr_n", "n_evaluable", "orr_pct", None, None)))
        if o["dcr_pct"] is not None:
            lines.append(("DCR", None, o["n_evaluable"], o["dcr_pct"], None, None,
                          (None, "n_evaluable", "dcr_pct", None, None)))
        for p in ("pfs", "os"):
            if o[p + "_median"] is not None:
                lines.append((p.upper(), None, None, o[p + "_median"], o[p + "_ci_low"], o[p + "_ci_high"],
                              (None, None, p + "_median", p + "_ci_low", p + "_ci_high")))
        for lab, n, N, est, lo, hi, roles in lines:
            r += 1
            flds = ("study_id", "cohort", "grade", "primary_site", None) + roles
            for c, v in enumerate([study_label(s, initials), o["cohort"], grade_cell(o), site_cell(o), lab, n, N, est, lo,
                                   hi], 1):
                g.put(r, c, v, rid, fld=flds[c - 1])
    return g


def shape_long(tmp, fmt):
    sg, _ = studies_grid(initials=True)
    grids = [sg, long_grid(), _ae_sheet(title=False, initials=True)]
    p = tmp / f"team_long.{fmt}"
    (write_xlsx if fmt == "xlsx" else write_ods)(p, grids)
    return Rendering(f"long-{fmt}", p, {p.name: grids}, description="Outcome column with n/N/Estimate/Lower/Upper")


FORM_STUDY_LABELS = [("First author", "first_author"), ("Year of publication", "year"), ("Study design", "design"),
                     ("Radiopharmaceutical", "radiopharmaceutical"), ("Response criteria", "response_criteria"),
                     ("Patients enrolled", "n_enrolled")]
FORM_OUTCOME_LABELS = [("Cohort", "cohort"), ("Grade", "grade"), ("Primary site", "primary_site"),
                       ("N evaluable", "n_evaluable"), ("CR", "cr"), ("PR", "pr"), ("SD", "sd"), ("PD", "pd"),
                       ("ORR (%)", "orr"), ("DCR (%)", "dcr_pct"), ("Median PFS, months (95% CI)", "pfs"),
                       ("Median OS, months (95% CI)", "os")]


def form_grid(name, s, outcomes, n_label="Patients enrolled"):
    """A form-style sheet for one study: labels in A, values in B (cohorts side by side in B, C ...), then the
    adverse events as a small table."""
    g = Grid(name)
    sr = rid_study(s["key"])
    g.put(1, 1, "Data extraction form")
    r = 2
    for lab, k in FORM_STUDY_LABELS:
        r += 1
        v = s[k]
        if k in ("design", "radiopharmaceutical", "response_criteria"):
            v = v[1] if v else None
        if k == "n_enrolled":
            v = n_enrolled_cell(s)
            lab = n_label
        g.put(r, 1, lab)
        g.put(r, 2, v, sr, fld=k)
        g.own(r, 1, sr)
    r += 2
    g.put(r, 1, "Outcomes")
    for lab, k in FORM_OUTCOME_LABELS:
        r += 1
        g.put(r, 1, lab)
        for j, o in enumerate(outcomes):
            rid = rid_outcome(o)
            if k == "grade":
                v = grade_cell(o)
            elif k == "primary_site":
                v = site_cell(o)
            elif k == "orr":
                v = orr_cell(o, frac="15 of 46")
            elif k == "pfs":
                v = median_ci(o["pfs_median"], o["pfs_ci_low"], o["pfs_ci_high"])
            elif k == "os":
                v = median_ci(o["os_median"], o["os_ci_low"], o["os_ci_high"])
            else:
                v = o[k]
            g.put(r, 2 + j, v, rid, fld={"orr": "orr_pct", "pfs": "pfs_median", "os": "os_median"}.get(k, k))
            g.own(r, 2 + j, rid)
    aes = [a for a in AES if a["study"] == s["key"]]
    if aes:
        r += 2
        g.put(r, 1, "Adverse events")
        r += 1
        for c, h in enumerate(["Adverse event", "Grade 3-4 (n)", "N (safety)"], 1):
            g.put(r, c, h)
        for a in aes:
            r += 1
            rid = rid_ae(a)
            g.put(r, 1, a["ae_term"][1], rid, fld="ae_term")
            g.put(r, 2, a["grade3plus_n"], rid, fld="grade3plus_n")
            g.put(r, 3, a["n_safety"], rid, fld="n_safety")
    return g


def _per_study():
    """(sheet name, study, its typed outcome rows) in study order; the duplicated Lim gets a second sheet."""
    out = []
    rows = typed_outcomes()
    for s in STUDIES:
        mine = [o for o in rows if o["study"] == s["key"] and not o.get("duplicate")]
        out.append((study_label(s), s, mine))
        if s["key"] == "lim":
            out.append((study_label(s) + " (2)", s, [o for o in rows if o["study"] == "lim" and o.get("duplicate")]))
    return out


def shape_form(tmp, fmt):
    if fmt == "xlsx":
        p = tmp / "team_forms.xlsx"
        grids = [form_grid(name, s, outs) for name, s, outs in _per_study()]
        write_xlsx(p, grids)
        return Rendering("form-xlsx", p, {p.name: grids}, orient="sheet", description="one sheet per study")
    if fmt == "folder":
        d = tmp / "forms"
        d.mkdir()
        files = {}
        for name, s, outs in _per_study():
            fn = name.replace(" ", "_").replace("(", "").replace(")", "") + ".xlsx"
            grids = [form_grid("Extraction", s, outs, n_label="Number of patients")]
            write_xlsx(d / fn, grids)
            files[fn] = grids
        return Rendering("form-folder", d, files, orient="sheet", description="a folder of one workbook per study")
    raise ValueError(fmt)


def shape_transposed(tmp):
    """Studies as columns: row labels in A, one column per cohort record."""
    g = Grid("Extraction")
    g.put(1, 1, "Included studies (one column per study cohort)")
    labels = ["Study", "Study design", "Agent", "Criteria", "N treated", "Cohort", "Grade", "Primary site",
              "Evaluable patients", "CR", "PR", "SD", "PD", "ORR (%)", "DCR (%)", "mPFS, months (95% CI)",
              "mOS, months (95% CI)"]
    for i, lab in enumerate(labels):
        g.put(3 + i, 1, lab)
    for j, o in enumerate(typed_outcomes()):
        c = 2 + j
        s = STUDY[o["study"]]
        sr, orr = rid_study(s["key"]), rid_outcome(o)
        vals = [(author_year(s), sr), (s["design"][1], sr), (s["radiopharmaceutical"][1], sr),
                (s["response_criteria"][1] if s["response_criteria"] else None, sr), (n_enrolled_cell(s), sr),
                (o["cohort"], orr), (grade_cell(o), orr), (site_cell(o), orr), (o["n_evaluable"], orr),
                (o["cr"], orr), (o["pr"], orr), (o["sd"], orr), (o["pd"], orr), (orr_cell(o, frac="15 of 46"), orr),
                (num(o["dcr_pct"]), orr), (median_ci(o["pfs_median"], o["pfs_ci_low"], o["pfs_ci_high"]), orr),
                (median_ci(o["os_median"], o["os_ci_low"], o["os_ci_high"]), orr)]
        flds = ["study_id", "design", "radiopharmaceutical", "response_criteria", "n_enrolled", "cohort", "grade",
                "primary_site", "n_evaluable", "cr", "pr", "sd", "pd", "orr_pct", "dcr_pct", "pfs_median", "os_median"]
        for i, (v, rid) in enumerate(vals):
            g.put(3 + i, c, v, rid, fld=flds[i])
            g.own(3 + i, c, orr)
    p = tmp / "team_transposed.xlsx"
    grids = [g, _ae_sheet()]
    write_xlsx(p, grids)
    return Rendering("transposed-xlsx", p, {p.name: grids}, orient="col", description="one column per cohort")


OUT_HEADERS = ["Study", "Cohort", "Grade", "Primary site", "Evaluable (n)", "CR", "PR", "SD", "PD", "ORR (%)",
               "DCR (%)", "Median PFS, mo (95% CI)", "Median OS, mo (95% CI)"]


def outcome_cells(o, site=True, initials=False):
    rid = rid_outcome(o)
    s = STUDY[o["study"]]
    v = [study_label(s, initials), o["cohort"], grade_cell(o), site_cell(o) if site else None, o["n_evaluable"], o["cr"],
         o["pr"], o["sd"], o["pd"], orr_cell(o), num(o["dcr_pct"]),
         median_ci(o["pfs_median"], o["pfs_ci_low"], o["pfs_ci_high"]),
         median_ci(o["os_median"], o["os_ci_low"], o["os_ci_high"])]
    flds = ["study_id", "cohort", "grade", "primary_site", "n_evaluable", "cr", "pr", "sd", "pd", "orr_pct", "dcr_pct",
            "pfs_median", "os_median"]
    if not site:
        del v[3]
        del flds[3]
    return [(x, rid, fl) for x, fl in zip(v, flds)]


def shape_stacked(tmp):
    """Three tables in one sheet, one below the other, each under its own title."""
    g, r = studies_grid("Extraction", title="Table 1. Characteristics of the included studies", initials=True)
    for s in STUDIES:
        g.own(1, 1, rid_study(s["key"]))   # a block's title labels its records
    r += 3
    g.put(r, 1, "Table 2. Efficacy outcomes")
    t2 = r
    r += 2
    for c, h in enumerate(OUT_HEADERS, 1):
        g.put(r, c, h)
    for o in typed_outcomes():
        r += 1
        g.own(t2, 1, rid_outcome(o))
        for c, (v, rid, fl) in enumerate(outcome_cells(o, initials=True), 1):
            g.put(r, c, v, rid, fld=fl)
    r += 3
    g.put(r, 1, "Table 3. Grade 3-4 adverse events")
    for a in AES:
        g.own(r, 1, rid_ae(a))
    r += 2
    for c, h in enumerate(["Study", "Adverse event", "Grade 3-4 (n)", "N (safety)"], 1):
        g.put(r, c, h)
    for a in AES:
        r += 1
        rid = rid_ae(a)
        for c, v in enumerate([study_label(STUDY[a["study"]], True), a["ae_term"][1], a["grade3plus_n"],
                               a["n_safety"]], 1):
            g.put(r, c, v, rid, fld=("study_id", "ae_term", "grade3plus_n", "n_safety")[c - 1])
    p = tmp / "team_stacked.xlsx"
    write_xlsx(p, [g])
    return Rendering("stacked-xlsx", p, {p.name: [g]}, description="three titled tables in one sheet")


def shape_persite(tmp):
    """One sheet per primary site with identical headers (the sheet name gives the site)."""
    sg, _ = studies_grid()
    sheets = {"Pancreatic": "pancreas", "Midgut": "midgut", "Lung": "lung", "GEP-NET": "mixed",
              "Unknown primary": None}
    grids = [sg]
    rows = typed_outcomes()
    for name, site in sheets.items():
        g = Grid(name)
        for c, h in enumerate([h for h in OUT_HEADERS if h != "Primary site"], 1):
            g.put(1, c, h)
        r = 1
        for o in rows:
            if o["primary_site"] != site:
                continue
            r += 1
            for c, (v, rid, fl) in enumerate(outcome_cells(o, site=False), 1):
                g.put(r, c, v, rid, fld=fl)
        grids.append(g)
    grids.append(_ae_sheet())
    p = tmp / "team_persite.xlsx"
    write_xlsx(p, grids)
    return Rendering("persite-xlsx", p, {p.name: grids}, description="one sheet per primary site")


def shape_groupheads(tmp):
    """One wide sheet without a site column; `Pancreatic NET` heading rows span the table."""
    g = Grid("Extraction")
    g.put(1, 1, "177Lu-PRRT: extraction by primary site")
    heads = [h for h in WIDE_HEADERS if h != "Primary site"]
    for c, h in enumerate(heads, 1):
        g.put(3, c, h)
    r = 3
    rows = typed_outcomes()
    for heading, site in (("Pancreatic NET", "pancreas"), ("Midgut NET", "midgut"), ("Lung NET", "lung"),
                          ("GEP-NET (mixed sites)", "mixed"), ("Primary site not reported", None)):
        r += 1
        g.put(r, 1, heading)
        hr = r
        g.merges.append((r, 1, r, len(heads)))
        for o in rows:
            if o["primary_site"] != site:
                continue
            g.own(hr, 1, rid_outcome(o))   # the heading is a label value of the rows below it
            r += 1
            for c, (v, rid, fl) in enumerate(wide_row(o, site=False), 1):
                g.put(r, c, v, rid, fld=fl)
    p = tmp / "team_groupheads.xlsx"
    grids = [g, _ae_sheet()]
    write_xlsx(p, grids)
    return Rendering("groupheads-xlsx", p, {p.name: grids}, description="group heading rows give primary_site")


def shape_aecross(tmp):
    """Studies and outcomes wide; adverse events as a cross-tab: terms down, `Author 2017 (N=610) Grade 3-4` across."""
    sg, _ = studies_grid(initials=True)
    og = Grid("Outcomes")
    for c, h in enumerate(OUT_HEADERS, 1):
        og.put(1, c, h)
    for i, o in enumerate(typed_outcomes()):
        for c, (v, rid, fl) in enumerate(outcome_cells(o, initials=True), 1):
            og.put(2 + i, c, v, rid, fld=fl)
    x = Grid("Toxicity")
    x.put(1, 1, "Grade 3-4 adverse events, patients")
    studies = list(dict.fromkeys(a["study"] for a in AES))
    terms = list(dict.fromkeys(a["ae_term"] for a in AES))
    x.put(3, 1, "Adverse event")
    for j, k in enumerate(studies):
        s = STUDY[k]
        n = next(a["n_safety"] for a in AES if a["study"] == k)
        x.put(3, 2 + j, f"{study_label(s, True)} (N={n}) Grade 3-4")
    for i, t in enumerate(terms):
        x.put(4 + i, 1, t[1])
        for j, k in enumerate(studies):
            a = next((a for a in AES if a["study"] == k and a["ae_term"] == t), None)
            if a is None:
                x.put(4 + i, 2 + j, "–")
            else:
                x.put(4 + i, 2 + j, a["grade3plus_n"], rid_ae(a), fld="grade3plus_n")
                x.own(4 + i, 1, rid_ae(a))
                x.own(3, 2 + j, rid_ae(a))
    p = tmp / "team_aecross.xlsx"
    grids = [sg, og, x]
    write_xlsx(p, grids)
    return Rendering("aecross-xlsx", p, {p.name: grids}, description="AE cross-tab, one column per study")


def shape_merged(tmp):
    """Wide, study label and study columns vertically merged over a study's cohort rows."""
    g = Grid("Extraction")
    for c, h in enumerate(WIDE_HEADERS, 1):
        g.put(1, c, h)
    r = 1
    rows = typed_outcomes()
    by_study = {}
    for o in rows:
        by_study.setdefault((o["study"], bool(o.get("duplicate"))), []).append(o)
    for (_k, _dup), outs in by_study.items():
        top = r + 1
        for i, o in enumerate(outs):
            r += 1
            for c, (v, rid, fl) in enumerate(wide_row(o), 1):
                study_col = c in (1, 3, 4, 5, 6)
                if study_col and i > 0:
                    g.own(r, c, rid)
                    for rr in range(top, r + 1):
                        g.own(rr, c, *g.owner.get((top, c), set()))
                    continue
                g.put(r, c, v, rid, fld=fl)
        if len(outs) > 1:
            for c in (1, 3, 4, 5, 6):
                g.merges.append((top, c, r, c))
    p = tmp / "team_merged.xlsx"
    grids = [g, _ae_sheet()]
    write_xlsx(p, grids)
    return Rendering("merged-xlsx", p, {p.name: grids}, description="vertically merged study labels")


ALT_HEADERS = ["Author, year", "Subgroup", "Design", "Radioligand", "Criteria", "Patients (n)", "Evaluable (n)",
               "WHO grade", "Primary tumour", "CR (n)", "PR (n)", "SD (n)", "PD (n)", "ORR, n (%)", "DCR, n (%)",
               "mPFS, months (95% CI)", "mOS, months (95% CI)"]


def shape_wide_alt(tmp):
    """Wide, other wordings a team types: `Author, year` as `Bodei et al., 2011`, `ORR, n (%)` as `15 (32.6)` or
    `39%`, `mPFS, months (95% CI)`."""
    g = Grid("Extraction sheet")
    for c, h in enumerate(ALT_HEADERS, 1):
        g.put(1, c, h)
    r = 1
    for o in typed_outcomes():
        r += 1
        cells = wide_row(o, variant=False)
        s = STUDY[o["study"]]
        for c, (v, rid, fl) in enumerate(cells, 1):
            if fl == "study_id":
                v = f"{s['first_author']} et al., {s['year']}"
            elif fl == "orr_pct" and o["orr_pct"] is not None:
                v = f"{o['orr_n']} ({o['orr_pct']})" if o["orr_n"] is not None else f"{num(o['orr_pct'])}%"
            elif fl == "dcr_pct" and o["dcr_pct"] is not None:
                v = f"{num(o['dcr_pct'])}%"
            g.put(r, c, v, rid, fld=fl)
    p = tmp / "team_wide_alt.xlsx"
    grids = [g, _ae_sheet(name="AEs", title=False)]
    write_xlsx(p, grids)
    return Rendering("wide_alt-xlsx", p, {p.name: grids}, description="other wordings, n (%) cells, et al.")


def shape_long_spelled(tmp):
    """One tidy sheet: the study's fields on every row, outcome names spelled out, roles n / N / Estimate /
    95% CI lower / 95% CI upper / Unit."""
    g = Grid("Data")
    heads = ["Author", "Year", "Design", "Agent", "Patients", "Criteria", "Subgroup", "Grade", "Site", "Outcome", "n",
             "N", "Estimate", "95% CI lower", "95% CI upper", "Unit"]
    for c, h in enumerate(heads, 1):
        g.put(1, c, h)
    r = 1
    names = {"cr": "Complete response", "pr": "Partial response", "sd": "Stable disease", "pd": "Progressive disease"}
    for o in typed_outcomes():
        s = STUDY[o["study"]]
        sr, rid = rid_study(s["key"]), rid_outcome(o)
        lines = []
        for k, lab in names.items():
            if o[k] is not None:
                lines.append((lab, o[k], None, None, None, None, None, (k, None, None, None, None)))
        if o["orr_pct"] is not None or o["n_evaluable"] is not None:
            lines.append(("Objective response rate", o["orr_n"], o["n_evaluable"], o["orr_pct"], None, None, "%",
                          ("orr_n", "n_evaluable", "orr_pct", None, None)))
        if o["dcr_pct"] is not None:
            lines.append(("Disease control rate", None, o["n_evaluable"], o["dcr_pct"], None, None, "%",
                          (None, "n_evaluable", "dcr_pct", None, None)))
        for p_, lab in (("pfs", "Progression-free survival"), ("os", "Overall survival")):
            if o[p_ + "_median"] is not None:
                lines.append((lab, None, None, o[p_ + "_median"], o[p_ + "_ci_low"], o[p_ + "_ci_high"], "months",
                              (None, None, p_ + "_median", p_ + "_ci_low", p_ + "_ci_high")))
        for lab, n, N, est, lo, hi, unit, roles in lines:
            r += 1
            study_vals = [(s["first_author"], "first_author"), (s["year"], "year"), (s["design"][1], "design"),
                          (s["radiopharmaceutical"][1], "radiopharmaceutical"), (s["n_enrolled"], "n_enrolled"),
                          (s["response_criteria"][1] if s["response_criteria"] else None, "response_criteria")]
            for c, (v, fl) in enumerate(study_vals, 1):
                g.put(r, c, v, sr, fld=fl)
                g.own(r, c, rid)
            for c, (v, fl) in enumerate([(o["cohort"], "cohort"), (grade_cell(o), "grade"),
                                         (site_cell(o), "primary_site"), (lab, None)], 7):
                g.put(r, c, v, rid, fld=fl)
            for c, (v, fl) in enumerate(zip((n, N, est, lo, hi), roles), 11):
                g.put(r, c, v, rid, fld=fl)
            g.put(r, 16, unit, rid)
    p = tmp / "team_long_spelled.xlsx"
    grids = [g, _ae_sheet(title=False)]
    write_xlsx(p, grids)
    return Rendering("long_spelled-xlsx", p, {p.name: grids},
                     description="one tidy sheet, study fields on every row, outcome names spelled out, Unit")


def shape_stacked_side(tmp):
    """Two titled tables side by side in one sheet: studies in A:G, outcomes in J:V."""
    g = Grid("Extraction")
    g.put(1, 1, "Study characteristics")
    for c, h in enumerate(["Study", "First author", "Publication year", "Design", "Radiopharmaceutical",
                           "Response criteria", "Patients treated"], 1):
        g.put(3, c, h)
    for i, s in enumerate(STUDIES):
        rid = rid_study(s["key"])
        for c, v in enumerate([study_label(s), s["first_author"], s["year"], s["design"][1],
                               s["radiopharmaceutical"][1],
                               s["response_criteria"][1] if s["response_criteria"] else None,
                               n_enrolled_cell(s)], 1):
            g.put(4 + i, c, v, rid, fld=STUDY_COLS[c - 1])
        g.own(1, 1, rid)
    g.put(1, 10, "Efficacy outcomes")
    for c, h in enumerate(OUT_HEADERS, 10):
        g.put(3, c, h)
    for i, o in enumerate(typed_outcomes()):
        g.own(1, 10, rid_outcome(o))
        for c, (v, rid, fl) in enumerate(outcome_cells(o), 10):
            g.put(4 + i, c, v, rid, fld=fl)
    p = tmp / "team_stacked_side.xlsx"
    grids = [g, _ae_sheet()]
    write_xlsx(p, grids)
    return Rendering("stackedside-xlsx", p, {p.name: grids}, description="two titled tables side by side")


def shape_peroutcome(tmp):
    """One sheet per outcome with identical headers (`ORR`, `DCR`, `PFS`, `OS`: the sheet name names the outcome,
    the columns are roles), a `Best response` sheet of counts and a `Studies` sheet."""
    sg, _ = studies_grid()
    grids = [sg]
    rows = typed_outcomes()
    br = Grid("Best response")
    for c, h in enumerate(["Study", "Cohort", "Grade", "Primary site", "N evaluable", "CR", "PR", "SD", "PD"], 1):
        br.put(1, c, h)
    r = 1
    for o in rows:
        if all(o[k] is None for k in ("cr", "pr", "sd", "pd")):
            continue
        r += 1
        rid = rid_outcome(o)
        for c, (v, fl) in enumerate([(study_label(STUDY[o["study"]]), "study_id"), (o["cohort"], "cohort"),
                                     (grade_cell(o), "grade"), (site_cell(o), "primary_site"),
                                     (o["n_evaluable"], "n_evaluable"), (o["cr"], "cr"), (o["pr"], "pr"),
                                     (o["sd"], "sd"), (o["pd"], "pd")], 1):
            br.put(r, c, v, rid, fld=fl)
    grids.append(br)
    heads = ["Study", "Cohort", "Grade", "Primary site", "n", "N", "Estimate", "95% CI lower", "95% CI upper"]
    for sheet, p_ in (("ORR", "orr"), ("DCR", "dcr"), ("PFS", "pfs"), ("OS", "os")):
        g = Grid(sheet)
        for c, h in enumerate(heads, 1):
            g.put(1, c, h)
        r = 1
        for o in rows:
            if p_ in ("orr", "dcr"):
                est = o[p_ + "_pct"]
                vals = [(o["orr_n"] if p_ == "orr" else None, "orr_n"), (o["n_evaluable"], "n_evaluable"),
                        (est, p_ + "_pct"), (None, None), (None, None)]
            else:
                est = o[p_ + "_median"]
                vals = [(None, None), (None, None), (est, p_ + "_median"), (o[p_ + "_ci_low"], p_ + "_ci_low"),
                        (o[p_ + "_ci_high"], p_ + "_ci_high")]
            if est is None:
                continue
            r += 1
            rid = rid_outcome(o)
            lead = [(study_label(STUDY[o["study"]]), "study_id"), (o["cohort"], "cohort"), (grade_cell(o), "grade"),
                    (site_cell(o), "primary_site")]
            for c, (v, fl) in enumerate(lead + vals, 1):
                g.put(r, c, v, rid, fld=fl)
        grids.append(g)
    grids.append(_ae_sheet())
    p = tmp / "team_peroutcome.xlsx"
    write_xlsx(p, grids)
    return Rendering("peroutcome-xlsx", p, {p.name: grids},
                     description="one sheet per outcome with identical role headers (n, N, Estimate, CI)")


def shape_csv_utf8(tmp):
    """Excel's `CSV UTF-8 (comma delimited)`: a byte-order mark, commas, decimal points."""
    p = tmp / "extraction_utf8.csv"
    g = wide_grid(name="extraction_utf8", two_row_header=False)
    write_csv(p, g, ",", encoding="utf-8-sig")
    return Rendering("wide-csv_utf8", p, {p.name: [g]}, description="UTF-8 with BOM, comma separated")


SHAPES = {
    "wide-xlsx": lambda t: shape_wide(t, "xlsx"),
    "wide-ods": lambda t: shape_wide(t, "ods"),
    "wide-csv_eu": lambda t: shape_wide(t, "csv_eu"),
    "wide-tsv": lambda t: shape_wide(t, "tsv"),
    "long-xlsx": lambda t: shape_long(t, "xlsx"),
    "long-ods": lambda t: shape_long(t, "ods"),
    "form-xlsx": lambda t: shape_form(t, "xlsx"),
    "form-folder": lambda t: shape_form(t, "folder"),
    "transposed-xlsx": shape_transposed,
    "stacked-xlsx": shape_stacked,
    "persite-xlsx": shape_persite,
    "groupheads-xlsx": shape_groupheads,
    "aecross-xlsx": shape_aecross,
    "merged-xlsx": shape_merged,
    "wide_alt-xlsx": shape_wide_alt,
    "long_spelled-xlsx": shape_long_spelled,
    "stackedside-xlsx": shape_stacked_side,
    "peroutcome-xlsx": shape_peroutcome,
    "wide-csv_utf8": shape_csv_utf8,
}


# ---------------------------------------------------------------------------------------------------------------
# Running curate (the command, in-process) and reading its outputs
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    code: int
    output: str
    findings: list
    summary: dict
    clean: list
    clean_ae: list
    ran: bool = False


def curate(*args):
    from click.testing import CliRunner

    from curation.cli import main
    res = CliRunner().invoke(main, [str(a) for a in args])
    out = res.output
    if res.exception and not isinstance(res.exception, SystemExit):
        out += f"\nEXCEPTION {type(res.exception).__name__}: {res.exception}"
    try:
        out += res.stderr
    except (ValueError, AttributeError):
        pass
    return res.exit_code, out


def _csv_rows(path):
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_curate(rendering, out_dir, layout=None):
    """``curate run FORM -o DIR`` (findings.json, clean.csv, clean_adverse_events.csv)."""
    args = ["run", rendering.path, "-o", out_dir, "--plots", "none", "-q"]
    if layout:
        args += ["--layout", layout]
    code, output = curate(*args)
    fj = Path(out_dir) / "findings.json"
    data = json.loads(fj.read_text()) if fj.is_file() else {"findings": [], "summary": {}}
    return Outcome(code, output, data.get("findings", []), data.get("summary", {}),
                   _csv_rows(Path(out_dir) / "clean.csv"), _csv_rows(Path(out_dir) / "clean_adverse_events.csv"))


def validate_json(rendering, json_path, layout=None, clean=None):
    """``curate validate FORM --json F [--clean C]`` (no reading options unless ``layout``)."""
    args = ["validate", rendering.path, "--json", json_path, "-q"]
    if clean:
        args += ["--clean", clean]
    if layout:
        args += ["--layout", layout]
    code, output = curate(*args)
    p = Path(json_path)
    data = json.loads(p.read_text()) if p.is_file() else {"findings": [], "summary": {}}
    return Outcome(code, output, data.get("findings", []), data.get("summary", {}),
                   _csv_rows(Path(clean)) if clean else [], [])


# ---------------------------------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------------------------------

def fold(s):
    return re.sub(r"[\s_\-–]+", "", str(s or "")).lower()


def record_lines(rendering):
    """record id -> set of (file, sheet, line) where line is a row number, a column letter or '*' (the sheet)."""
    lines = {}
    for fname, grids in rendering.files.items():
        for g in grids:
            for (r, c), owners in g.owner.items():
                for rid in owners:
                    if rendering.orient == "sheet" and rid[0] == "study":
                        key = "*"   # one sheet (or one workbook) per study: the study is the sheet
                    elif rendering.orient in ("col", "sheet") and rid[0] in ("study", "outcome") \
                            and g.name not in ("Safety",):
                        key = col_letter(c)
                    else:
                        key = str(r)
                    lines.setdefault(rid, set()).add((fname, g.name, key))
    return lines


def _same_sheet(f, fname, sheet):
    ff = f.get("file") or ""
    if ff and Path(ff).name != fname:
        return False
    if fname.endswith((".csv", ".tsv")):
        return True
    return (f.get("sheet") or "") == sheet


def finding_in(f, lines):
    for fname, sheet, key in lines:
        if not _same_sheet(f, fname, sheet):
            continue
        if key == "*":
            return True
        if key.isdigit() and str(f.get("row")) == key:
            return True
        if not key.isdigit() and (f.get("column") or "") == key:
            return True
    return False


def slips_found(rendering, out):
    """Slip name -> (found?, the findings in its record)."""
    lines = record_lines(rendering)
    res = {}
    for s in SLIPS:
        lns = lines.get(s.record, set())
        mine = [f for f in out.findings if f["severity"] in ("error", "warning") and finding_in(f, lns)]
        ok = any(f["rule"] in s.rules for f in mine)
        res[s.name] = (ok, mine)
    return res


CONSEQUENCE_RULES = {"study-excluded"}


def false_errors(rendering, out):
    """Errors that no planted slip explains (not in a slip's record, or of a rule no slip expects)."""
    lines = record_lines(rendering)
    slip_lines = set()
    for s in SLIPS:
        slip_lines |= lines.get(s.record, set())
    slip_lines |= lines.get(rid_study("lim"), set())
    all_rules = set().union(*(s.rules for s in SLIPS)) | CONSEQUENCE_RULES
    bad = []
    for f in out.findings:
        if f["severity"] != "error":
            continue
        if f["rule"] in all_rules and finding_in(f, slip_lines):
            continue
        if f["rule"] in CONSEQUENCE_RULES and (f.get("study_id") or "").lower().startswith(("lim", "kobayashi")):
            continue
        bad.append(f)
    return bad


def _eq(expected, got):
    if expected is None:
        return got in (None, "")
    if got in (None, ""):
        return False
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        try:
            return math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-9)
        except ValueError:
            return False
    return fold(got) == fold(expected)


def expected_outcome_values(o):
    """field -> expected clean value for a truth outcome row (canonical), with its study's fields."""
    s = STUDY[o["study"]]
    exp = {"first_author": s["first_author"], "year": s["year"], "design": s["design"][0],
           "radiopharmaceutical": s["radiopharmaceutical"][0],
           "response_criteria": s["response_criteria"][0] if s["response_criteria"] else None,
           "n_enrolled": s["n_enrolled"]}
    for k in OUTCOME_KEYS:
        v = o[k]
        if v == NR:
            exp[k] = None
            exp[k + "_nr"] = "True"
        else:
            exp[k] = v
    return exp


OPTIONAL = {("bodei", "orr_pct")}   # '15/46' may give orr_pct 32.6 or leave it to be derived


def same_author(got, surname):
    """The clean row's first author is this study's (the surname, possibly read with initials: a value difference
    reported by itself, not a lost record)."""
    g = fold(got)
    return bool(g) and (g == fold(surname) or g.startswith(fold(surname)))


def match_clean(clean, o):
    s = STUDY[o["study"]]
    hits = [row for row in clean if same_author(row.get("first_author"), s["first_author"])
            and str(row.get("year", "")).split(".")[0] == str(s["year"])
            and fold(row.get("cohort")) == fold(o["cohort"])]
    return hits


_REF = re.compile(r"(?:'([^']+)'|([A-Za-z0-9_.-]+))!([A-Z]{1,3})(\d+)(?::([A-Z]{1,3})(\d+))?")


def _col_num(letters):
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def covered(f, fname, sheet, r, c):
    """Does the warning ``f`` cover cell (r, c) of sheet: at the cell, on its row (a row-level finding), or by a
    range its message names (``'Unal 2023'!B8:D22``)?"""
    if not _same_sheet(f, fname, sheet):
        return False
    if f.get("row") == r and (f.get("column") in (None, col_letter(c))):
        return True
    if f.get("row") is None and f.get("column") is None and f.get("rule") in ("unread-data", "format-unread"):
        return True   # `sheet ORR holds 18 figure(s) ... but is not read`: every cell of that sheet
    for m in _REF.finditer(f.get("message") or ""):
        sh = m.group(1) or (m.group(2) or "").strip()
        if sh and not fname.endswith((".csv", ".tsv")) and sh != sheet:
            continue
        c1, r1 = _col_num(m.group(3)), int(m.group(4))
        c2, r2 = (_col_num(m.group(5)), int(m.group(6))) if m.group(5) else (c1, r1)
        if c1 <= c <= c2 and r1 <= r <= r2:
            return True
    return False


def record_cells(rendering, rid):
    out = []
    for fname, grids in rendering.files.items():
        for g in grids:
            for (r, c), owners in g.owner.items():
                if rid in owners and (r, c) in g.cells:
                    out.append((fname, g.name, r, c))
    return out


def warned_cells(rendering, out, rid):
    """Cells of record ``rid`` that a warning or error covers."""
    ws = [f for f in out.findings if f["severity"] in ("error", "warning")]
    return [cell for cell in record_cells(rendering, rid) if any(covered(f, *cell) for f in ws)]


def rendered(rendering, rid):
    return bool(record_cells(rendering, rid))


RELATED = [{"orr_n", "orr_pct", "n_evaluable"}, {"dcr_n", "dcr_pct", "n_evaluable"},
           {"pfs_median", "pfs_ci_low", "pfs_ci_high", "pfs_unit"}, {"os_median", "os_ci_low", "os_ci_high", "os_unit"}]


def _related(k):
    k = k[:-3] if k.endswith("_nr") else k
    out = {k}
    for g in RELATED:
        if k in g:
            out |= g
    return out


def _explains(f, k, rendering, rid, lines):
    """Is warning/error ``f`` about field ``k`` of record ``rid`` (at its row/column/sheet or by a range)? A finding
    on a field read from the same cell (``15/46`` -> orr_n, orr_pct; ``24.8 (17.5–34.5)`` -> median and CI) counts."""
    fields = set(f.get("involves") or ()) | {f.get("field")}
    if f.get("field") is not None and not (_related(k) & fields):
        return False
    rids = rid if isinstance(rid, list) else [rid]
    cells = [c for r_ in rids for c in record_cells(rendering, r_)]
    kcells = field_cells(rendering, rids, k)
    if kcells:
        # the value's own cell is known: a finding about it must be at that cell (or its row, or a range over it),
        # or name the field at the record's row / column
        if any(covered(f, *cell) for cell in kcells):
            return True
        if f.get("field") is not None and at_record(f, cells):
            return True
    else:
        if at_record(f, cells):
            return True
        if any(covered(f, *cell) for cell in cells):
            return True
    # a warning at a header or about the whole sheet that names the field (`header 'First author' matches field
    # 'first_author' again ... this column is ignored`) explains the field's values in that sheet
    base = k[:-3] if k.endswith("_nr") else k
    named = f["rule"] in READING_RULES and (
        f.get("field") == base or re.search(rf"\b{re.escape(base)}\b", f.get("message") or ""))
    if named:
        for fname, sheet, _r, _c in cells:
            if _same_sheet(f, fname, sheet) and (f.get("row") is None or f["row"] < data_top(rendering, fname, sheet)):
                return True
    return False


# rules about reading the workbook (docs/rules.md: reading the workbook, a team's own workbook, a cell): a header-
# level one that names a field explains that field's values; a check's sheet-level note (check-not-run) does not
READING_RULES = {"missing-sheet", "empty-sheet", "missing-column", "duplicate-column", "unknown-column", "merged-cell",
                 "formula-without-value", "inferred-layout", "unmatched-sheet", "non-data-row", "hidden-row",
                 "hidden-column", "helper-column", "unplaced-column", "group-heading", "label-conflict", "unread-data",
                 "study-field-conflict", "format-note", "format-unread", "study-id-clash", "invalid-number",
                 "not-an-integer", "invalid-year", "combined-median-ci", "combined-ci-mismatch", "unknown-unit",
                 "unit-conflict"}


def at_record(f, cells):
    """Is ``f`` at one of the record's cells (its exact cell, or its row when the finding names no column)?"""
    for fname, sheet, r, c in cells:
        if not _same_sheet(f, fname, sheet):
            continue
        if f.get("row") == r and (f.get("column") is None or f.get("column") == col_letter(c)):
            return True
    return False


def data_top(rendering, fname, sheet):
    """The first row of a sheet that holds a value of any record (a finding above it is about headers)."""
    for g in rendering.files.get(fname, []):
        if g.name == sheet:
            rows = [r for (r, c) in g.owner if (r, c) in g.cells and g.fields.get((r, c))]
            return min(rows) if rows else 1
    return 1


SOURCE_FIELDS = {"first_author": ("first_author", "study_id"), "year": ("year", "study_id"),
                 "orr_n": ("orr_n", "orr_pct"), "pfs_ci_low": ("pfs_ci_low", "pfs_median"),
                 "pfs_ci_high": ("pfs_ci_high", "pfs_median"), "os_ci_low": ("os_ci_low", "os_median"),
                 "os_ci_high": ("os_ci_high", "os_median"), "pfs_median_nr": ("pfs_median",),
                 "pfs_ci_high_nr": ("pfs_ci_high", "pfs_median"), "os_median_nr": ("os_median",),
                 "primary_site": ("primary_site",)}


def field_cells(rendering, rids, k):
    """The cells (file, sheet, row, col) where the rendering typed field ``k`` of the record(s)."""
    out = []
    for fk in SOURCE_FIELDS.get(k[:-3] if k.endswith("_nr") and k not in SOURCE_FIELDS else k, (k,)):
        for fname, grids in rendering.files.items():
            for g in grids:
                for (r, c), fl in g.fields.items():
                    if fl == fk and g.owner.get((r, c), set()) & set(rids):
                        out.append((fname, g.name, r, c))
        if out:
            return out
    return out


def cell_of(rendering, rids, k):
    """Where the rendering typed field ``k`` of the record(s): ``file 'sheet'!A1`` (the composite cell for a CI
    bound; the study label for an author or year; the heading, sheet name or title for a label value)."""
    for fk in SOURCE_FIELDS.get(k, (k,)):
        for fname, grids in rendering.files.items():
            for g in grids:
                for (r, c), fl in g.fields.items():
                    if fl == fk and g.owner.get((r, c), set()) & set(rids):
                        return f"{fname} '{g.name}'!{col_letter(c)}{r} = {g.cells[(r, c)]!r}"
    if k == "primary_site":
        return "given by a sheet name / group heading (no cell in the row)"
    return "(no cell: the record as a whole)"


def value_diffs(rendering, out):
    """Every value of every truth record that should pass, compared with the clean data.

    Returns a list of (record, field, expected, got, warned) for each difference or missing record; ``warned``
    says whether a warning or error at the record's cells is about that field (else the loss is silent)."""
    diffs = []
    lines = record_lines(rendering)
    warned = [f for f in out.findings if f["severity"] in ("error", "warning")]

    def w(rid, k, study=None):
        ls = lines.get(rid, set()) | (lines.get(rid_study(study), set()) if study else set())
        rids = [rid] + ([rid_study(study)] if study else [])
        return any(_explains(f, k, rendering, rids, ls) for f in warned)

    for o in OUTCOMES:
        rid = rid_outcome(o)
        if rid in SLIP_RECORDS:
            continue
        exp = expected_outcome_values(o)
        hits = match_clean(out.clean, o)
        if len(hits) != 1:
            diffs.append((rid, "<record>", "1 clean row", f"{len(hits)} rows",
                          any(finding_in(f, lines.get(rid, set())) for f in warned)
                          or bool(warned_cells(rendering, out, rid)), cell_of(rendering, [rid], "study_id")))
            continue
        row = hits[0]
        for k, v in exp.items():
            got = row.get(k)
            if (o["study"], k) in OPTIONAL and (got in (None, "") or _eq(32.6, got)):
                continue
            if k.endswith("_nr"):
                if str(got) != "True":
                    diffs.append((rid, k, "NR", got, w(rid, k, o["study"]),
                                  cell_of(rendering, [rid, rid_study(o["study"])], k)))
                continue
            if not _eq(v, got):
                diffs.append((rid, k, v, got, w(rid, k, o["study"]),
                              cell_of(rendering, [rid, rid_study(o["study"])], k)))
    n_ae = sum(rendered(rendering, rid_ae(a)) for a in AES)
    if n_ae and not getattr(out, "ran", False):
        # validate writes no adverse-event clean data: its summary says how many adverse-event rows were read
        got = (out.summary.get("by_sheet", {}).get("adverse_events") or {}).get("read", 0)
        if got != n_ae:
            w = any(f["severity"] in ("error", "warning") and any(covered(f, *cell) for a in AES
                                                                     for cell in record_cells(rendering, rid_ae(a)))
                    for f in out.findings)
            diffs.append((("ae", "*", "*"), "<adverse-event rows read>", n_ae, got, w,
                          cell_of(rendering, [rid_ae(a) for a in AES], "grade3plus_n")))
        return diffs
    for a in AES:
        rid = rid_ae(a)
        if not rendered(rendering, rid):
            continue
        s = STUDY[a["study"]]
        hits = [row for row in out.clean_ae if same_author(row.get("first_author"), s["first_author"])
                and fold(row.get("ae_term")) == fold(a["ae_term"][0])]
        if len(hits) != 1:
            diffs.append((rid, "<record>", "1 clean row", f"{len(hits)} rows",
                          any(finding_in(f, lines.get(rid, set())) for f in warned)
                          or bool(warned_cells(rendering, out, rid)), cell_of(rendering, [rid], "study_id")))
            continue
        for k in ("grade3plus_n", "n_safety"):
            if not _eq(a[k], hits[0].get(k)):
                diffs.append((rid, k, a[k], hits[0].get(k), w(rid, k), cell_of(rendering, [rid], k)))
    return diffs


def extra_records(rendering, out):
    """Clean rows that are no truth record (a cell read as a record it is not)."""
    extra = []
    for row in out.clean:
        if not any(same_author(row.get("first_author"), STUDY[o["study"]]["first_author"])
                   and fold(row.get("cohort")) == fold(o["cohort"]) for o in OUTCOMES):
            extra.append(("outcomes", row.get("study_id"), row.get("cohort"), row.get("sheet"), row.get("row")))
    for row in out.clean_ae:
        if not any(row.get(k) not in (None, "") for k in ("grade3plus_n", "any_grade_n")):
            continue  # a '–' cell of a cross-tab: a record with nothing reported, harmless
        if not any(same_author(row.get("first_author"), STUDY[a["study"]]["first_author"])
                   and fold(row.get("ae_term")) == fold(a["ae_term"][0]) for a in AES):
            extra.append(("adverse_events", row.get("study_id"), row.get("ae_term"), row.get("sheet"),
                          row.get("row"), row.get("grade3plus_n")))
    return extra


def values_compared():
    n = 0
    for o in OUTCOMES:
        if rid_outcome(o) in SLIP_RECORDS:
            continue
        n += len(expected_outcome_values(o))
    return n


def merged_studies(out):
    """Study ids that hold two truth studies, and ids that lost their study's surname (`F2017` for `Meriggi F 2017`:
    layouts.md, Study identity)."""
    ids = {}
    for row in out.clean + out.clean_ae:
        ids.setdefault(row.get("study_id"), set()).add(fold(row.get("first_author")) + str(row.get("year")))
    bad = {k: sorted(v) for k, v in ids.items() if len(v) > 1}
    for row in out.clean + out.clean_ae:
        sid, author = row.get("study_id") or "", row.get("first_author") or ""
        if author and fold(author.split()[-1]) not in fold(sid):
            bad[sid] = [f"id lost the surname of {author!r}"]
    return bad


RUN_ONLY_RULES = {"analysis-pools-nothing"}   # what `curate run` adds to `validate`'s findings (pooling)


def finding_keys(out):
    return sorted({(Path(f.get("file") or "").name, f.get("sheet"), f.get("row"), f.get("column"), f["rule"],
                    f["severity"]) for f in out.findings
                   if f["severity"] in ("error", "warning") and f["rule"] not in RUN_ONLY_RULES},
                  key=lambda t: tuple(str(x) for x in t))


# ---------------------------------------------------------------------------------------------------------------
# One workbook, every measure
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Measures:
    rendering: Rendering
    out: Outcome
    slips: dict
    false_errors: list
    diffs: list
    extra: list
    merged: dict
    map_code: int
    map_output: str
    layout_out: Outcome | None
    plain_keys: list
    layout_keys: list

    @property
    def silent(self):
        return [d for d in self.diffs if not d[4]]


RUN_FOR = {"aecross-xlsx"}


def measure(name, tmp):
    tmp = Path(tmp)
    r = SHAPES[name](tmp)
    out = validate_json(r, tmp / "plain.json", clean=tmp / "clean.csv")
    if name in RUN_FOR:   # `curate run` (slower) for its clean_adverse_events.csv
        ran = run_curate(r, tmp / "run")
        out = Outcome(out.code, out.output, out.findings, out.summary, out.clean, ran.clean_ae, ran=True)
    lay = tmp / "L.yaml"
    mcode, mout = curate("map", r.path, "-o", lay)
    lout = validate_json(r, tmp / "layout.json", layout=lay) if lay.is_file() else None
    return Measures(r, out, slips_found(r, out), false_errors(r, out), value_diffs(r, out), extra_records(r, out),
                    merged_studies(out), mcode, mout, lout, finding_keys(out),
                    finding_keys(lout) if lout else [])


# ---------------------------------------------------------------------------------------------------------------
# The report (python tests/heldout_contract.py [SHAPE ...] > details.md)
# ---------------------------------------------------------------------------------------------------------------

def _why(m, rid, k):
    """The warnings/errors that explain a value difference (excerpts), for the report."""
    lines = record_lines(m.rendering)
    rids = [rid] + ([rid_study(rid[1])] if rid[0] == "outcome" else [])
    ls = set().union(*(lines.get(r_, set()) for r_ in rids))
    out = []
    for f in m.out.findings:
        if f["severity"] in ("error", "warning") and _explains(f, k, m.rendering, rids, ls):
            at_field = f.get("field") in SOURCE_FIELDS.get(k, (k,)) or f.get("field") == k
            out.append((not at_field, f"{f['severity']} {f['rule']}: {f['message'][:230]}"))
    return [x for _, x in sorted(out, key=lambda t: t[0])][:2]


def diff_weight(d):
    """How many compared values one difference stands for (a lost record: all its values)."""
    rid, k = d[0], d[1]
    if k == "<record>" and rid[0] == "outcome":
        o = next(o for o in OUTCOMES if rid_outcome(o) == rid)
        return len(expected_outcome_values(o))
    if k == "<record>":
        return 2
    if k == "<adverse-event rows read>":
        try:
            return 2 * abs(int(d[2]) - int(d[3]))
        except (TypeError, ValueError):
            return 2 * int(d[2])
    return 1


def summary_markdown(measured):
    """One line per workbook: each criterion's figure (✗ where it misses the issue's target)."""
    L = ["| workbook | exit | (a) values equal | (b) slips in their row | (c) silent misreads | (d) studies / merged "
         "| (e) false errors | (f) map -> --layout |", "|---|---|---|---|---|---|---|---|"]
    tot = dict(vals=0, cmp=0, slips=0, nslips=0, silent=0, fe=0)
    for name, m in measured.items():
        n_cmp = values_compared() + sum(2 for a in AES if rendered(m.rendering, rid_ae(a)))
        n_bad = len(m.diffs) + len(m.extra)
        found = sum(ok for ok, _f in m.slips.values())
        st = m.out.summary.get("studies")
        if m.map_code:
            ml = "✗ map exit 2"
        elif m.layout_out is None or m.layout_out.code == 2:
            ml = "✗ --layout exit 2"
        else:
            a, b = set(m.plain_keys), set(m.layout_keys)
            ml = "same" if a == b else f"✗ {len(a ^ b)} differ"
        n_lost = sum(diff_weight(d) for d in m.diffs)
        L.append(f"| {name} | {m.out.code} | {'✗ ' if n_bad else ''}{n_cmp - n_lost}/{n_cmp}"
                 f"{f' (+{len(m.extra)} extra)' if m.extra else ''} | {'✗ ' if found < len(SLIPS) else ''}{found}/"
                 f"{len(SLIPS)} | {'✗ ' if m.silent else ''}{len(m.silent)} | {'✗ ' if (st != len(STUDIES) or m.merged) else ''}"
                 f"{st}/{len(STUDIES)}, {len(m.merged)} | {'✗ ' if len(m.false_errors) > 1 else ''}{len(m.false_errors)} | {ml} |")
        tot["vals"] += n_cmp - n_lost
        tot["cmp"] += n_cmp
        tot["slips"] += found
        tot["nslips"] += len(SLIPS)
        tot["silent"] += len(m.silent)
        tot["fe"] += len(m.false_errors)
    L.append(f"| **all {len(measured)}** | | {tot['vals']}/{tot['cmp']} | {tot['slips']}/{tot['nslips']} "
             f"({100 * tot['slips'] / max(tot['nslips'], 1):.0f}%) | {tot['silent']} | | {tot['fe']} | |")
    return "\n".join(L)


def details_markdown(measured):
    """Per workbook: what each criterion found, every failure with its cell, expected vs got and curate's words."""
    L = []
    for name, m in measured.items():
        r = m.rendering
        L.append(f"### {name} ({r.description}; `{r.path.name}`)\n")
        s = m.out.summary
        L.append(f"`curate validate` exit {m.out.code}; studies {s.get('studies')}; rows read {s.get('rows_read')} "
                 f"= passed {s.get('rows_passed')} + excluded {s.get('rows_excluded')}; errors {s.get('errors')}, "
                 f"warnings {s.get('warnings')}, info {s.get('info')}.  ")
        cells = s.get("cells") or {}
        for fname, sheets in cells.items():
            acc = "; ".join(f"{sh}: read {c.get('read')} / headers {c.get('headers')} / non-data {c.get('non_data')}"
                            f" / not read {c.get('not_read')}" for sh, c in sheets.items())
            L.append(f"cells {fname}: {acc}  ")
        L.append("")
        for sname, (ok, fs) in m.slips.items():
            if not ok:
                slip = next(x for x in SLIPS if x.name == sname)
                got = "; ".join(f"{f['severity']} {f['rule']} at {f['sheet']}!{f.get('column') or ''}{f.get('row') or ''}"
                                for f in fs) or "no warning or error in that record"
                L.append(f"- **slip missed** `{sname}` ({slip.what}; expected {', '.join(sorted(slip.rules))}): {got}")
        for f in m.false_errors:
            L.append(f"- **false error** `{f['rule']}` at {Path(f.get('file') or '').name} "
                     f"'{f['sheet']}'!{f.get('column') or ''}{f.get('row') or ''}: {f['message'][:300]}")
        for d in m.diffs:
            rid, k, exp, got, warned, cell = d
            tag = "value (warned)" if warned else "**SILENT value**"
            why = _why(m, rid, k) if warned and rid[1] != "*" else []
            L.append(f"- {tag} {'/'.join(rid[1:])} `{k}` at {cell}: expected {exp!r}, got {got!r}"
                     + (f" — {why[0]}" if why else ""))
        for e in m.extra:
            L.append(f"- **extra record** (no such record in the workbook): {e}")
        if m.merged:
            for k, v in m.merged.items():
                L.append(f"- **identity**: study id {k!r}: {v}")
        if m.map_code:
            L.append(f"- **map** exit {m.map_code}: `{(m.map_output.strip().splitlines() or [''])[-1][:250]}`")
        elif m.layout_out is not None and m.layout_out.code == 2:
            L.append(f"- **validate --layout** exit 2: `{m.layout_out.output.strip()[-250:]}`")
        else:
            a, b = set(m.plain_keys), set(m.layout_keys)
            for x in sorted(map(str, a - b)):
                L.append(f"- **map->layout**: only without --layout: {x}")
            for x in sorted(map(str, b - a)):
                L.append(f"- **map->layout**: only with --layout: {x}")
        L.append("")
    return "\n".join(L)


if __name__ == "__main__":  # pragma: no cover - the report's generator
    # python tests/heldout_contract.py [--keep DIR] [SHAPE ...] > details.md
    # (--keep DIR leaves each workbook and curate's outputs in DIR/SHAPE/ to look at)
    import sys
    import tempfile

    args = sys.argv[1:]
    keep = None
    if args[:1] == ["--keep"]:
        keep, args = Path(args[1]), args[2:]
    names = args or list(SHAPES)
    with tempfile.TemporaryDirectory() as tmp:
        root = keep or Path(tmp)
        ms = {}
        for n in names:
            d = root / n
            d.mkdir(parents=True)
            ms[n] = measure(n, d)
        print(summary_markdown(ms))
        print()
        print(details_markdown(ms))

"""Build the team-layout example: a review team's own extraction workbook, not made with ``curate template``.

    .venv/bin/python extraction_forms/build_team_example.py                  # write the workbook
    .venv/bin/python extraction_forms/build_team_example.py --update-readme  # and refresh README's expected block
    .venv/bin/python extraction_forms/build_team_example.py --expected       # print the expected findings

``example_team_workbook.xlsx`` is laid out the way review teams lay out their sheets before they hear
of this toolkit (the layout contract, layouts.md): one wide sheet ``Data extraction`` with a title, a
subtitle, a blank row, a two-row header under merged group cells, header wordings as people write
them, one row per cohort (subgroup rows under their study's overall row), composite cells
(``15 (32.6)``, ``29 (26–33)``, ``22.8 (19.4–NR)``, ``Bodei (2011)``, ``7.4 GBq``), a ``Total`` row,
a merged footnote and a source line, a hidden helper column ``ORR (%)``, one hidden row, fills,
comments, frozen panes and an autofilter; a ``Safety`` sheet of adverse events in the team's
wording; a ``Notes`` sheet of free text.

Every figure is a published one: ``COHORTS`` and ``ADVERSE_EVENTS`` give each row's page
(``source``) and where on it (``where``); they are the figures of the project's reference tables
of published PRRT outcomes (177Lu-PRRT cohorts and adverse events), and a few codings of
``sources.csv`` in this folder (marked ``coded``). The only figures that are not the source's are
the planted slips of ``SLIPS``, each at its cell. The workbook is deterministic (fixed dates, no
clock), so a test can check that the committed file is what this script builds.

``canonical_records()`` says what a correct reading of the workbook is, in the contract's sheets
(studies, outcomes, adverse_events): the test and the README's expected findings are made from it
by validating the same records written into the template's layout, then translating each finding's
row and field back to the team's cell.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SCHEMA = "prrt_177lu"
WORKBOOK = "example_team_workbook.xlsx"
SHEET = "Data extraction"
SAFETY = "Safety"
NOTES = "Notes"
DASH = "–"           # the team's "not reported" (an en dash)

TITLE = "Table 2. Efficacy of 177Lu-PRRT in neuroendocrine tumours: data extraction"
SUBTITLE = "Systematic review: 177Lu-PRRT in NETs (protocol v2) · extraction v3 · 16 Nov 2026 · AK / MB"
FOOTNOTE = ("NR = not reached; – = not reported; CI = confidence interval; ORR = objective response rate "
            "(CR+PR); DCR = disease control rate (CR+PR+SD); pts = patients. Yellow: to check. "
            "Grey italic rows: subgroups of the study above (same patients).")
SOURCE_LINE = "Source: published reports of the included studies (links in sheet Notes); sums by AK."

# ---------------------------------------------------------------------------------------------
# The sheet's columns: (letter, group of the first header row, header as the team wrote it, the
# contract field(s) a correct reading puts the value in). Group cells are merged over their columns.
# ---------------------------------------------------------------------------------------------
COLUMNS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("A", "Study", "Author (year)", ("first_author", "year")),
    ("B", "Study", "Cohort", ("cohort",)),
    ("C", "Study", "Design", ("design",)),
    ("D", "Study", "Agent", ("radiopharmaceutical",)),
    ("E", "Study", "Criteria", ("response_criteria",)),
    ("F", "Study", "N", ("n_enrolled",)),
    ("G", "Study", "Activity/cycle", ("activity_per_cycle_gbq",)),
    ("H", "Study", "DOI", ("doi",)),
    ("I", "Population", "Evaluable pts", ("n_evaluable",)),
    ("J", "Population", "Grade (WHO 2019)", ("grade",)),
    ("K", "Population", "Primary", ("primary_site",)),
    ("L", "Response (RECIST 1.1), n", "CR", ("cr",)),
    ("M", "Response (RECIST 1.1), n", "PR", ("pr",)),
    ("N", "Response (RECIST 1.1), n", "SD", ("sd",)),
    ("O", "Response (RECIST 1.1), n", "PD", ("pd",)),
    ("P", "Response rates", "ORR, n (%)", ("orr_pct", "orr_n")),
    ("Q", "Response rates", "DCR, n (%)", ("dcr_pct", "dcr_n")),
    ("R", "Response rates", "ORR (%)", ()),              # hidden: the reviewer's own calculation
    ("S", "Survival, months (95% CI)", "mPFS, months (95% CI)", ("pfs_median", "pfs_ci_low", "pfs_ci_high")),
    ("T", "Survival, months (95% CI)", "mOS, months (95% CI)", ("os_median", "os_ci_low", "os_ci_high")),
    ("U", "Grade ≥3 toxicity", "Main event (%)", ()),      # free text, matches no field
]
GROUP_ROW, HEADER_ROW, FIRST_DATA_ROW = 4, 5, 6
HELPER_COLUMN = "R"
GUESSED_COLUMNS = ("A", "G", "I", "J", "P", "Q", "S", "T")   # by a synonym, as a composite or with a unit
LAST_COLUMN = COLUMNS[-1][0]
FIELD_COLUMN = {f: letter for letter, _g, _h, fields in COLUMNS for f in fields}

SAFETY_COLUMNS = [("A", "Study", "study_id"), ("B", "Event", "ae_term"), ("C", "Grade 3-4 (n)", "grade3plus_n"),
                  ("D", "Any grade (n)", "any_grade_n"), ("E", "N safety", "n_safety")]
SAFETY_HEADER_ROW = 3

# ---------------------------------------------------------------------------------------------
# The published figures, one entry per cohort row, in the team's row order (by year; subgroups under
# their study's overall row, same author and year, their own cohort label). Values are what a correct
# reading gives (None: not reported); `show` holds the cells the team wrote in its own way.
# `src` and `where` say where every figure is published.
# ---------------------------------------------------------------------------------------------
URL = {
    "bodei": "https://link.springer.com/article/10.1007/s00259-011-1902-1",
    "sansovini": "https://moh-it.pure.elsevier.com/en/publications/treatment-with-the-radiolabelled-somatostatin-analog-lu-dotatate-",
    "ezziddin": "https://jnm.snmjournals.org/lookup/external-ref?access_num=24504504&link_type=MED&atom=%2Fjnumed%2F61%2F2%2F222.atom",
    "baum": "http://thno.org/v06p0501",
    "brabander": "https://aacrjournals.org/clincancerres/article/23/16/4617/80005/Long-Term-Efficacy-Survival-and-Safety-of-177Lu",
    "netter1": "https://repub.eur.nl/pub/95473",
    "netter1_hcp": "https://www.lutathera-hcp.com/",
    "netter1_jnm": "https://jnm.snmjournals.org/highwire/citation/40961/refworks-tagged",
    "netter1_os": "https://www.rlthub.co.uk/neuroendocrine-tumours/lutathera/netter-1-overall-survival",
    "netter1_table": "https://pmc.ncbi.nlm.nih.gov/articles/PMC9016001/table/Tab1",
    "thang": "http://ejnmmigateway.net/ArticlePage.aspx?DOI=10.1007/s00259-017-3821-2",
    "lim": "https://pmc.ncbi.nlm.nih.gov/articles/PMC7343632/?term=%22Oncotarget%22%5Bjour%5D",
    "kobayashi": "https://www.pubmed.gov/34533700/",
    "clement": "https://yiyunmed.com/literature/fileenw?id=35389069",
    "sundlov": "https://www.springermedizin.de/phase-ii-trial-demonstrates-the-efficacy-and-safety-of-individua/20334116",
    "unal": ("https://avesis.hacettepe.edu.tr/yayin/49b5bdea-b5d9-485e-a0bd-776bcbf457e3/assessing-the-clinical-impact-"
             "of-lutetium-177-dotatate-peptide-receptor-radionuclide-therapy-prrt-on-metastatic-neuroendocrine-tumors-"
             "a-multicenter-real-world-data-from-turkiye"),
    "netter2": ("https://trial.medpath.com/news/f9ed99b8d488574a/casting-a-wide-net-when-is-the-optimal-time-for-"
                "177lu-dotatate-treatment"),
    "compete": "https://journaljams.org/study/compete-2026.html",
    "compete_more": "https://titratelab.com/research/pubmed/42392118",
}

# study-level fields are given on the study's overall row (the first of its rows)
COHORTS: list[dict[str, Any]] = [
    dict(key="bodei", author="Bodei", year=2011, cohort="overall", design="Phase I-II", agent="177Lu-DOTATATE",
         n=51, doi="10.1007/s00259-011-1902-1", n_evaluable=46, grade="NR", primary="Mixed", orr_n=15, orr_pct="32.6",
         show={"P": "15 (32.6)"}, src=["bodei"],
         where="abstract results: 51 patients, 46 evaluable, CR+PR 15 of 46 (32.6%); grade not reported (NR)"),
    dict(key="sansovini", author="Sansovini", year=2013, cohort="overall", agent="177Lu-DOTATATE", n=52,
         grade="G1–2", primary="pNET", dcr_pct="81", src=["sansovini"],
         where="abstract Methods (52 consecutive patients) and Results sentence 2 (DCR in the entire series 81%)"),
    dict(key="sansovini", author="Sansovini", year=2013, cohort="Full dosage (FD)", n=26, grade="G1–2",
         primary="pNET", pfs="NR", src=["sansovini"], where="abstract results FD group (26 patients, median PFS not reached)"),
    dict(key="sansovini", author="Sansovini", year=2013, cohort="Reduced dosage (RD)", n=26, grade="G1–2",
         primary="pNET", pfs="20", src=["sansovini"], where="abstract results RD group (26 patients, median PFS 20 months)"),
    dict(key="ezziddin", author="Ezziddin", year=2014, cohort="overall", design="Retrospective",
         agent="177Lu-DOTATATE", criteria="modified SWOG", n=68, doi="10.1007/s00259-013-2677-3", n_evaluable=68,
         grade="G1/2", primary="Pancreatic", pr=41, sd=9, pd=10, orr_n=41, orr_pct="60.3",
         show={"P": "41 (60.3%)"}, src=["ezziddin"],
         where=("PubMed abstract Methods (n=68) and Results sentence 4 (SWOG best response of all 68: PR 41 [60.3%], "
                "SD 9 [13.2%], PD 10 [14.7%], minor response 8 [11.8%] has no column; no CR category)")),
    dict(key="baum", author="Baum", year=2016, cohort="overall", design="Retrospective", agent="177Lu-DOTATOC",
         criteria="RECIST 1.1", n=56, doi="10.7150/thno.13702", primary="Mixed", orr_pct="33.9", dcr_pct="66.1",
         pfs="17.4", os="34.2", src=["baum"],
         where="abstract Patients and methods (56 subjects, group A) and Results sentences 1 and 3"),
    dict(key="baum", author="Baum", year=2016, cohort=">1 cycle", design="Retrospective", agent="177Lu-DOTATOC",
         criteria="RECIST 1.1", primary="Mixed", orr_pct="40.6", dcr_pct="93.8", pfs="32.0", src=["baum"],
         where="abstract Results sentences 2-3 (group B: more than one cycle, all NET; size not stated)"),
    dict(key="baum", author="Baum", year=2016, cohort=">1 cycle, GEP-NET", design="Retrospective",
         agent="177Lu-DOTATOC", criteria="RECIST 1.1", primary="GEP", orr_pct="54.2", dcr_pct="100", pfs="34.5",
         src=["baum"], where="abstract Results sentences 2-3 (group C: GEP-NET subgroup of group B; size not stated)"),
    dict(key="baum", author="Baum", year=2016, cohort=">1 cycle, other NET", design="Retrospective",
         agent="177Lu-DOTATOC", criteria="RECIST 1.1", primary="Other", orr_pct="0", dcr_pct="75", pfs="11.9",
         src=["baum"], where="abstract Results sentences 2-3 (group D: non-GEP primaries of group B; size not stated)"),
    dict(key="brabander", author="Brabander", year=2017, cohort="overall", agent="177Lu-DOTATATE", n=610,
         n_evaluable=443, primary="Mixed", orr_pct="39", pfs=("29", "26", "33"), os=("63", "55", "72"),
         src=["brabander"], where="abstract results (safety n=610; efficacy subgroup n=443; ORR 39%; PFS 29 (26-33), "
                                 "OS 63 (55-72) months)"),
    dict(key="netter1", author="Strosberg", year=2017, cohort="overall", design="Phase III RCT", agent="Lutathera",
         criteria="RECIST 1.1", n=116, activity="7.4", doi="10.1056/NEJMoa1607427", grade="G1–2", primary="Midgut",
         orr_pct="18", pfs=("NR", "18.4", "NR"), os=("48.0", "37.4", "55.2"),
         src=["netter1", "netter1_hcp", "netter1_jnm", "netter1_os"],
         where=("abstract methods and results (116 in the 177Lu arm, ORR 18%); lutathera-hcp NETTER-1 paragraph (grade 1 "
                "or 2, RECIST v1.1, median PFS not reached, 95% CI 18.4-NE: the team wrote the not-estimable upper limit "
                "as NR); activity 7.4 GBq every 8 weeks (J Nucl Med 2016 abstract, sources.csv); final OS 48.0 "
                "(37.4-55.2) from the 2021 final analysis, entered on this row with a comment")),
    dict(key="thang", author="Thang", year=2018, cohort="overall", design="Retrospective", agent="177Lu-DOTATATE",
         criteria="RECIST 1.1", n=28, doi="10.1007/s00259-017-3821-2", grade="G3", primary="Mixed", pfs="9",
         os="19", show={"S": "9 mo"}, src=["thang"],
         where="abstract results all patients (28; median PFS 9, OS 19 months; most patients 177Lu-DOTATATE, some "
               "with radiosensitising chemotherapy: the agent cell carries a comment)"),
    dict(key="thang", author="Thang", year=2018, cohort="Ki-67 ≤55%", design="Retrospective",
         agent="177Lu-DOTATATE", criteria="RECIST 1.1", n=22, grade="G3", primary="Mixed", pfs="12", os="46",
         src=["thang"], where="abstract results Ki-67 <=55% subgroup (22; median PFS 12, OS 46 months)"),
    dict(key="lim", author="Lim", year=2020, cohort="overall", design="Retrospective", agent="177Lu-DOTATATE",
         n=48, doi="10.18632/oncotarget.27659", primary="Lung", orr_pct="33", os="49", src=["lim"],
         where="abstract results (48 patients, ORR 33%, median OS 49 months given with a range, not a CI)"),
    dict(key="kobayashi", author="Kobayashi", year=2021, cohort="overall", design="Prospective",
         agent="177Lu-DOTATATE", n=6, doi="10.1007/s12149-021-01674-9", pr=4, orr_n=4, orr_pct="66.7",
         show={"P": "4 (66.7%)"}, src=["kobayashi"],
         where="abstract Results sentences 1 and 7 (6 patients; four partial responses, ORR 66.7%); a phase I trial, "
               "written Prospective (the design vocabulary has no phase I term)"),
    dict(key="netter1_2021", author="Strosberg", year=2021, cohort="overall", design="Phase III RCT",
         agent="Lutathera", n=None, doi="10.1016/S1470-2045(21)00572-6", primary="Midgut", os=("48.0", "37.4", "55.2"),
         hidden=True, src=["netter1_os"],
         where="NETTER-1 final OS analysis, paragraph 2 (median OS 48.0 months, 95% CI 37.4-55.2); arm size not on "
               "this page. The same patients as Strosberg 2017: the team moved the OS to that row and hid this one"),
    dict(key="clement", author="Clement", year=2022, cohort="overall", design="Retrospective",
         agent="177Lu-DOTATATE", criteria="RECIST 1.1", n=110, doi="10.1007/s00259-022-05771-3", n_evaluable=62,
         primary="Pancreatic", orr_pct="40.3", pfs=("24.8", "17.5", "34.5"), os=("41.4", "28.6", "50.2"),
         src=["clement"], where="abstract (PFS and ORR on 62: ORR 40.3%, PFS 24.8 (17.5-34.5); OS on all 110: "
                                "41.4 (28.6-50.2) months)"),
    dict(key="sundlov", author="Sundlöv", year=2022, cohort="overall", design="Phase II", agent="177Lu-DOTATATE",
         criteria="RECIST 1.1", n=96, activity="7.4", n_evaluable=96, primary="Mixed", orr_pct="16", pfs="29",
         os="47", src=["sundlov"],
         where=("abstract results (96 evaluable for efficacy, entered as N too: coded as in sources.csv; objective "
                "response given as PR 16%, SD 66%, PD 19%, which add to 101% by the paper's rounding; PFS 29, OS 47 "
                "months); 7.4 GBq cycles (abstract methods, sources.csv)")),
    dict(key="unal", author="Unal", year=2023, cohort="overall", design="Retrospective", agent="177Lu-DOTATATE",
         n=73, doi="10.14744/ejmo.2023.48337", grade="Mixed", primary="Mixed", orr_pct="29.6", dcr_pct="66.2",
         pfs="13.7", os="51.2", src=["unal"], where="abstract results whole cohort (73 patients)"),
    dict(key="unal", author="Unal", year=2023, cohort="G1–2", grade="G1–2", primary="Mixed", pfs="16.9", os="55.5",
         src=["unal"], where="abstract results grade 1 and 2"),
    dict(key="unal", author="Unal", year=2023, cohort="G3", grade="G3", primary="Mixed", pfs="8.5", os="29.5",
         src=["unal"], where="abstract results grade 3"),
    dict(key="netter2", author="Singh", year=2024, cohort="overall", design="Phase III RCT", agent="177Lu-DOTATATE",
         n=151, doi="10.1016/S0140-6736(24)00701-3", grade="Mixed", primary="Mixed", orr_pct="43.0",
         dcr_pct="90.7", pfs=("22.8", "19.4", "NR"), os="NR", src=["netter2"],
         where="NETTER-2 Trial Results paragraph (151 in the 177Lu arm; ORR 43.0%, DCR 90.7%; PFS 22.8, 95% CI 19.4 to "
               "not estimated, written NR; OS not reached)"),
    dict(key="compete", author="Walter", year=2026, cohort="overall", design="Phase III RCT",
         agent="177Lu-edotreotide", n=207, activity="7.5", grade="G1–2", primary="Mixed", orr_pct="21.9", pfs="23.9",
         os="63.4", src=["compete", "compete_more"],
         where="Key Findings items 1, 2 and 5 (ORR 21.9%, PFS 23.9, OS 63.4 months); 207 randomised to "
               "177Lu-edotreotide (titratelab Results sentence 1); 7.5 GBq per cycle (study design, sources.csv)"),
    dict(key="compete", author="Walter", year=2026, cohort="Pancreatic", design="Phase III RCT",
         agent="177Lu-edotreotide", grade="G1–2", primary="Pancreatic", pfs="24.5", src=["compete"],
         where="Key Findings item 3 (pancreatic subgroup, median PFS 24.5 months)"),
]

# The Safety sheet: (study key, event as the team wrote it, grade >=3 n, any grade n, N safety, source, where)
ADVERSE_EVENTS: list[dict[str, Any]] = [
    dict(key="bodei", event="Leukopenia/thrombocytopenia", g3=1, n_safety=51, src="bodei",
         where="abstract Results sentence 1 (one grade 3 leukopenia and thrombocytopenia, stated jointly)"),
    dict(key="ezziddin", event="Nephrotoxicity", g3=0, n_safety=68, src="ezziddin",
         where="abstract Results sentence 3 (no nephrotoxicity grade 3 or more; 68 patients)"),
    dict(key="brabander", event="MDS", g3=9, n_safety=610, src="brabander",
         where="abstract Results sentence 4 (myelodysplastic syndrome 9 of 610, 1.5%)"),
    dict(key="brabander", event="AML", g3=4, n_safety=610, src="brabander",
         where="abstract Results sentence 4 (acute leukaemia 4 of 610, 0.7%; coded AML as in sources.csv)"),
    dict(key="netter1", event="Lymphopenia", g3=10, n_safety=111, src="netter1_table",
         where="Table 1 of a secondary article, NETTER-1 177Lu arm (n = 111): grade 3-4 lymphopenia 10 (9%)"),
    dict(key="netter1", event="Thrombocytopenia", g3=2, n_safety=111, src="netter1_table",
         where="same table: grade 3-4 thrombocytopenia 2 (2%)"),
    dict(key="netter1", event="Neutropenia", g3=1, n_safety=111, src="netter1_table",
         where="same table: grade 3-4 neutropenia 1 (1%)"),
    dict(key="kobayashi", event="Lymphopenia", g3=2, n_safety=6, src="kobayashi",
         where="abstract Results sentence 6 (grade 3 lymphopenia in 2 of 6, 33.3%)"),
    dict(key="clement", event="MDS", g3=0, n_safety=None, src="clement",
         where="abstract last results sentence (no acute leukaemia or MDS reported; denominator not stated)"),
]

# the Grade >=3 toxicity column of the data sheet: the team's summary of the Safety sheet and the papers
MAIN_EVENT = {
    "bodei": "Leuko-/thrombocytopenia, 1 pt", "ezziddin": "Haematotoxicity (5.9)",
    "brabander": "MDS (1.5); acute leukaemia (0.7)", "netter1": "Lymphopenia (9)", "kobayashi": "Lymphopenia (33.3)",
    "clement": "Lymphopenia (5.4)", "netter2": "Haematological (14)",
}

# ---------------------------------------------------------------------------------------------
# The planted slips: (cohort index in COHORTS or AE index, field) -> (value as typed, why). Each is a
# slip that real extraction produces; none is a figure of the source. The README lists each with its cell.
# ---------------------------------------------------------------------------------------------
SLIPS: dict[tuple[str, int, str], tuple[Any, str]] = {
    ("cohort", 0, "orr_n"): (51, "transposed digits: Bodei's 15 responders typed as 51 (51 of 46 evaluable)"),
    ("cohort", 4, "cr"): (41, "PR and SD typed one column to the left: Ezziddin's PR 41 in CR, SD 9 in PR, SD empty"),
    ("cohort", 4, "pr"): (9, "(the other half of the shift above)"),
    ("cohort", 4, "sd"): (None, "(the other half of the shift above)"),
    ("cohort", 9, "os"): (("63", "72", "55"), "CI typed with the bounds reversed: Brabander OS 63 (55-72) as 63 (72–55)"),
    ("cohort", 10, "os"): (("48.0", "37.4", "45.2"),
                           "typo in the upper bound: NETTER-1 OS 48.0 (37.4-55.2) typed 48.0 (37.4–45.2), so the "
                           "median lies outside its CI"),
    ("cohort", 12, "grade"): ("G4", "G4 typed for G3 (the key next to it): there is no G4 in WHO 2019"),
    ("cohort", 13, "agent"): ("68Ga-DOTATATE", "the PET tracer of the methods section typed as Lim's therapy agent: "
                                               "not 177Lu-labelled"),
    ("cohort", 16, "orr_pct"): ("43.0", "Clement's ORR 40.3% typed as 43.0% (no whole number of the 62 evaluable gives "
                                        "43.0%: 26/62 = 41.9%, 27/62 = 43.5%)"),
    ("ae", 7, "g3"): (33, "the percentage (33.3%) typed as a count: 33 patients with grade 3 lymphopenia of 6 treated"),
}

# the hidden helper column ORR (%): the reviewer's own figure, the visible ORR percentage as typed, except one
# row where the reviewer calculated it from a count (Sundlöv: PR 15 of 96 = 15.6%; the paper says 16%).
HELPER_OVERRIDE = {17: "15.6"}

# comments as the team left them (cell of the cohort row -> text)
COMMENTS: dict[tuple[int, str], str] = {
    (4, "E"): "SWOG, not RECIST - eligible? (ask MB)",
    (4, "O"): "+ 8 minor responses (SWOG 'MR'), no column for them",
    (9, "F"): "610 in the safety analysis; efficacy on 443",
    (10, "S"): "upper limit NE (not estimable) in the paper",
    (10, "T"): "final OS: Strosberg 2021 (Lancet Oncol), row hidden below",
    (11, "D"): "most patients 177Lu-DOTATATE; some had radiosensitising chemotherapy",
    (13, "T"): "range given, no 95% CI",
    (15, "A"): "same patients as NETTER-1 2017: OS moved up, row hidden (AK)",
    (16, "T"): "OS on all 110 pts; PFS and ORR on 62",
    (17, "F"): "abstract gives 96 evaluable; enrolled not stated",
    (17, "P"): "PR 16%, SD 66%, PD 19% = 101%: rounding in the paper, not an error",
}
YELLOW_CELLS = {(4, "E"), (17, "P"), (13, "T")}        # "to check"
CHECKED_ROWS = {0, 9, 16}                              # green author cell: double-checked against the PDF
MERGED_AUTHOR = "unal"                                 # one study's author cell merged down over its rows
SAFETY_COMMENTS = {3: "paper: 'acute leukemia'", 0: "stated jointly in the paper"}


def _slipped() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """COHORTS and ADVERSE_EVENTS with the slips applied (as the team typed them)."""
    cohorts = [dict(c) for c in COHORTS]
    aes = [dict(a) for a in ADVERSE_EVENTS]
    for (kind, i, field), (value, _why) in SLIPS.items():
        target = cohorts[i] if kind == "cohort" else aes[i]
        target[field] = value
        target.setdefault("_slips", []).append(field)
    return cohorts, aes


def label(c: dict[str, Any]) -> str:
    return f"{c['author']} ({c['year']})"


def _num(text: Any) -> Any:
    """A figure as the team's cell holds it: a plain number is a number, anything else text."""
    if isinstance(text, str) and re.fullmatch(r"\d+", text):
        return int(text)
    if isinstance(text, str) and re.fullmatch(r"\d+\.\d+", text):
        return float(text)
    return text


def _n_pct(n: Any, pct: Any, sign: bool, shown: Any) -> Any:
    if shown is not None and n is not None and pct is not None:
        # keep the team's own writing of the composite ("15 (32.6)" or "41 (60.3%)"), with the slipped count
        sign = shown.endswith("%)")
    if pct is None:
        return DASH
    if n is None:
        return f"{pct}%"
    return f"{n} ({pct}{'%' if sign else ''})"


def _median(value: Any, shown: Any) -> Any:
    if value is None:
        return DASH
    if isinstance(value, tuple):
        m, lo, hi = value
        return f"{m} ({lo}–{hi})"
    return shown if shown is not None else _num(value)


def cohort_cells(c: dict[str, Any], first_of_study: bool) -> dict[str, Any]:
    """The visible cells of one cohort row (column letter -> value as typed)."""
    show = c.get("show", {})
    study = first_of_study or any(k in c for k in ("design", "agent", "criteria"))
    cells: dict[str, Any] = {
        "A": label(c),
        "B": "Overall" if c["cohort"] == "overall" else c["cohort"],
        "C": c.get("design", DASH) if study else None,
        "D": c.get("agent", DASH) if study else None,
        "E": c.get("criteria", DASH) if study else None,
        "F": c["n"] if c.get("n") is not None else (DASH if first_of_study else None),
        "G": f"{c['activity']} GBq" if c.get("activity") else None,
        "H": c.get("doi") if first_of_study else None,
        "I": c.get("n_evaluable", DASH),
        "J": c.get("grade", DASH),
        "K": c.get("primary", DASH),
        "L": c.get("cr"), "M": c.get("pr"), "N": c.get("sd"), "O": c.get("pd"),
        "P": _n_pct(c.get("orr_n"), c.get("orr_pct"), False, show.get("P")),
        "Q": _n_pct(None, c.get("dcr_pct"), False, None),
        "S": _median(c.get("pfs"), show.get("S")),
        "T": _median(c.get("os"), show.get("T")),
        "U": MAIN_EVENT.get(c["key"], DASH) if first_of_study else None,
    }
    return cells


def layout_rows() -> dict[str, Any]:
    """Row numbers of the data sheet: cohort rows, the Total, footnote and source rows."""
    n = len(COHORTS)
    total = FIRST_DATA_ROW + n
    return {"cohorts": list(range(FIRST_DATA_ROW, total)), "total": total, "footnote": total + 2,
            "source": total + 3, "hidden": [FIRST_DATA_ROW + i for i, c in enumerate(COHORTS) if c.get("hidden")]}


def write_workbook(path: Path) -> None:
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    from curation.template import FIXED_DATE, workbook_bytes

    cohorts, aes = _slipped()
    rows = layout_rows()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = SHEET
    bold = Font(bold=True)
    grey = PatternFill("solid", fgColor="D9D9D9")
    blue = PatternFill("solid", fgColor="DDEBF7")
    sub = PatternFill("solid", fgColor="F2F2F2")
    yellow = PatternFill("solid", fgColor="FFFF00")
    green = PatternFill("solid", fgColor="C6EFCE")
    total_fill = PatternFill("solid", fgColor="FFF2CC")
    thin = Side(style="thin", color="808080")
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)

    ws["A1"] = TITLE
    ws["A1"].font = Font(bold=True, size=14)
    ws.merge_cells(f"A1:{LAST_COLUMN}1")
    ws["A2"] = SUBTITLE
    ws["A2"].font = Font(italic=True, color="595959")
    ws.merge_cells(f"A2:{LAST_COLUMN}2")
    # the two-row header: merged group cells over the column headers
    groups: dict[str, list[str]] = {}
    for letter, group, header, _fields in COLUMNS:
        groups.setdefault(group, []).append(letter)
        cell = ws[f"{letter}{HEADER_ROW}"]
        cell.value, cell.font, cell.fill, cell.alignment = header, bold, grey, centre
        cell.border = Border(bottom=thin)
    for group, letters in groups.items():
        first, last = letters[0], letters[-1]
        cell = ws[f"{first}{GROUP_ROW}"]
        cell.value, cell.font, cell.fill, cell.alignment = group, bold, blue, centre
        if first != last:
            ws.merge_cells(f"{first}{GROUP_ROW}:{last}{GROUP_ROW}")
    ws[f"{HELPER_COLUMN}{HEADER_ROW}"].comment = Comment("my own calculation, to compare (AK)", "AK")

    seen: set[str] = set()
    for i, (c, r) in enumerate(zip(cohorts, rows["cohorts"])):
        first = c["key"] not in seen
        seen.add(c["key"])
        for letter, value in cohort_cells(c, first).items():
            if value is not None:
                ws[f"{letter}{r}"] = value
        pct = HELPER_OVERRIDE.get(i, c.get("orr_pct"))
        if pct is not None:
            ws[f"{HELPER_COLUMN}{r}"] = float(pct)
        if not first:
            for letter, *_ in COLUMNS:
                ws[f"{letter}{r}"].fill = sub
                ws[f"{letter}{r}"].font = Font(italic=True)
        if i in CHECKED_ROWS:
            ws[f"A{r}"].fill = green
        if c.get("hidden"):
            ws.row_dimensions[r].hidden = True
    # the team merged one study's author cell down over its cohort rows
    merged = [r for c, r in zip(cohorts, rows["cohorts"]) if c["key"] == MERGED_AUTHOR]
    for r in merged[1:]:
        ws[f"A{r}"] = None
    ws.merge_cells(f"A{merged[0]}:A{merged[-1]}")
    ws[f"A{merged[0]}"].alignment = Alignment(vertical="top")
    for (i, letter), text in COMMENTS.items():
        ws[f"{letter}{rows['cohorts'][i]}"].comment = Comment(text, "AK" if letter != "E" else "MB")
    for (i, letter) in YELLOW_CELLS:
        ws[f"{letter}{rows['cohorts'][i]}"].fill = yellow

    # the Total row: the team's sums of every count column, typed as values (SUM over all rows, hidden included)
    t = rows["total"]
    ws[f"A{t}"] = "Total"
    for letter in ("F", "I", "L", "M", "N", "O"):
        values = [ws[f"{letter}{r}"].value for r in rows["cohorts"]]
        ws[f"{letter}{t}"] = sum(v for v in values if isinstance(v, int))
    for letter, *_ in COLUMNS:
        ws[f"{letter}{t}"].font = bold
        ws[f"{letter}{t}"].fill = total_fill
        ws[f"{letter}{t}"].border = Border(top=thin)
    f = rows["footnote"]
    ws[f"A{f}"] = FOOTNOTE
    ws[f"A{f}"].alignment = Alignment(wrap_text=True, vertical="top")
    ws[f"A{f}"].font = Font(size=9)
    ws.merge_cells(f"A{f}:{LAST_COLUMN}{f}")
    ws.row_dimensions[f].height = 30
    ws[f"A{rows['source']}"] = SOURCE_LINE
    ws[f"A{rows['source']}"].font = Font(size=9, italic=True)

    widths = {"A": 18, "B": 20, "C": 15, "D": 18, "E": 14, "F": 6, "G": 12, "H": 30, "I": 10, "J": 11, "K": 11,
              "P": 12, "Q": 11, "R": 8, "S": 18, "T": 18, "U": 30}
    for letter, *_ in COLUMNS:
        ws.column_dimensions[letter].width = widths.get(letter, 6)
    ws.column_dimensions[HELPER_COLUMN].hidden = True
    ws.freeze_panes = f"C{FIRST_DATA_ROW}"
    ws.auto_filter.ref = f"A{HEADER_ROW}:{LAST_COLUMN}{rows['cohorts'][-1]}"

    # Safety: a title, a blank row, the header, one row per study and event
    sf = wb.create_sheet(SAFETY)
    sf["A1"] = "Grade ≥3 adverse events (patients)"
    sf["A1"].font = Font(bold=True, size=12)
    for letter, header, _field in SAFETY_COLUMNS:
        cell = sf[f"{letter}{SAFETY_HEADER_ROW}"]
        cell.value, cell.font, cell.fill = header, bold, grey
    study_label = {c["key"]: label(c) for c in COHORTS if c["cohort"] == "overall"}
    for i, a in enumerate(aes):
        r = SAFETY_HEADER_ROW + 1 + i
        sf[f"A{r}"] = study_label[a["key"]]
        sf[f"B{r}"] = a["event"]
        sf[f"C{r}"] = a["g3"]
        sf[f"D{r}"] = DASH
        sf[f"E{r}"] = a["n_safety"] if a["n_safety"] is not None else DASH
        if i in SAFETY_COMMENTS:
            sf[f"B{r}"].comment = Comment(SAFETY_COMMENTS[i], "MB")
    for letter, width in zip("ABCDE", (18, 28, 14, 14, 10)):
        sf.column_dimensions[letter].width = width
    sf.freeze_panes = f"A{SAFETY_HEADER_ROW + 1}"

    # Notes: free text, matches nothing
    nt = wb.create_sheet(NOTES)
    lines = ["Extraction notes (AK, MB)",
             "",
             "Outcomes were extracted from the abstracts first; full texts were checked where the abstract was unclear.",
             "Subgroup rows (grey, italic) share their patients with the study's overall row and are never pooled with it.",
             "Where a paper gives only a percentage, it was typed with its % sign and no count.",
             "Open questions: Ezziddin used SWOG criteria (eligible?); Sundlöv's percentages add to 101%.",
             "",
             "Links to the papers:"]
    lines += [f"{label(c)}: {URL[c['src'][0]]}" for c in COHORTS if c["cohort"] == "overall"]
    for i, line in enumerate(lines, start=1):
        nt[f"A{i}"] = line
    nt["A1"].font = bold
    nt.column_dimensions["A"].width = 110

    wb.properties.title = "Data extraction: 177Lu-PRRT review (team workbook)"
    wb.properties.creator = "AK"
    wb.properties.created = wb.properties.modified = FIXED_DATE
    path.write_bytes(workbook_bytes(wb))


# ---------------------------------------------------------------------------------------------
# What a correct reading gives, in the contract's tables, and the findings the contract implies
# ---------------------------------------------------------------------------------------------


def study_id(c: dict[str, Any]) -> str:
    """The identifier this script gives a study in the canonical records (the engine may name it otherwise)."""
    return re.sub(r"\W", "", c["author"]).upper() + str(c["year"])


def _fnum(text: Any) -> Any:
    if text is None or text == "NR":
        return text
    return float(text) if "." in str(text) else int(text)


def canonical_records() -> dict[str, list[dict[str, Any]]]:
    """The records a correct reading of the workbook holds (the slips included, as typed).

    Each record has ``_cell``: the team's sheet and row it comes from. Composite cells are split
    (``15 (32.6)`` gives orr_n 15 and orr_pct 32.6: the count is kept when the schema has an
    ``orr_n`` field, else only checked against the percentage), text keeps the team's wording (aliases are the reader's business), a subgroup row's
    study-level cells are not read as the study's (the study's own fields come from its overall row).
    """
    cohorts, aes = _slipped()
    rows = layout_rows()["cohorts"]
    studies: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for c, r in zip(cohorts, rows):
        sid = study_id(c)
        if c["key"] not in seen:
            seen.add(c["key"])
            studies.append({"_cell": (SHEET, r), "study_id": sid, "first_author": c["author"], "year": c["year"],
                            "doi": c.get("doi"), "design": c.get("design"), "radiopharmaceutical": c.get("agent"),
                            "response_criteria": c.get("criteria"), "n_enrolled": c.get("n"),
                            "activity_per_cycle_gbq": float(c["activity"]) if c.get("activity") else None})
        rec: dict[str, Any] = {"_cell": (SHEET, r), "study_id": sid, "cohort": c["cohort"], "grade": c.get("grade"),
                               "primary_site": c.get("primary"), "n_evaluable": c.get("n_evaluable")}
        for f in ("cr", "pr", "sd", "pd"):
            rec[f] = c.get(f)
        rec["orr_n"] = c.get("orr_n")          # the count of an 'n (%)' cell (read when the schema has the field)
        rec["orr_pct"] = c.get("orr_pct")      # as typed: its digits say how it was rounded
        rec["dcr_pct"] = c.get("dcr_pct")
        for name in ("pfs", "os"):
            v = c.get(name)
            m, lo, hi = v if isinstance(v, tuple) else (v, None, None)
            rec[f"{name}_median"], rec[f"{name}_ci_low"], rec[f"{name}_ci_high"] = _fnum(m), _fnum(lo), _fnum(hi)
        outcomes.append(rec)
    sid_of = {c["key"]: study_id(c) for c in COHORTS}
    adverse = [{"_cell": (SAFETY, SAFETY_HEADER_ROW + 1 + i), "study_id": sid_of[a["key"]], "ae_term": a["event"],
                "grade3plus_n": a["g3"], "n_safety": a["n_safety"]} for i, a in enumerate(aes)]
    return {"studies": studies, "outcomes": outcomes, "adverse_events": adverse}


def write_canonical(path: Path) -> dict[str, dict[int, tuple[str, int]]]:
    """The canonical records in the template's layout; returns template row -> team (sheet, row) per sheet."""
    from curation.schema import load_schema
    from curation.template import build_template, column_map, workbook_bytes

    schema = load_schema(SCHEMA)
    wb = build_template(schema)
    cols = column_map(schema)
    back: dict[str, dict[int, tuple[str, int]]] = {}
    for sheet, recs in canonical_records().items():
        ws = wb[sheet]
        back[sheet] = {}
        for r, rec in enumerate(recs, start=2):
            back[sheet][r] = rec["_cell"]
            for field, value in rec.items():
                if field in cols[sheet] and value is not None:
                    ws[f"{cols[sheet][field]}{r}"] = value
    path.write_bytes(workbook_bytes(wb))
    return back


# findings of the layout itself (not of the data): what the contract says `curate validate` reports
# about this workbook beyond the rules' findings on the canonical records. (cell, severity, what)
def layout_expectations() -> list[tuple[str, str, str]]:
    rows = layout_rows()
    q = f"'{SHEET}'"
    cohort_rows = rows["cohorts"]
    merged = [r for c, r in zip(COHORTS, cohort_rows) if c["key"] == MERGED_AUTHOR]
    out = [
        (f"{q}!{HEADER_ROW}:{HEADER_ROW}", "info", f"sheet {SHEET!r} read as studies + outcomes (one row per cohort), "
                                                  f"header rows {GROUP_ROW}-{HEADER_ROW} joined, rows above are titles"),
        (f"'{SAFETY}'!{SAFETY_HEADER_ROW}:{SAFETY_HEADER_ROW}", "info",
         f"sheet {SAFETY!r} read as adverse_events, header row {SAFETY_HEADER_ROW}"),
        (f"'{NOTES}'", "info", f"sheet {NOTES!r} matches no contract sheet: skipped"),
    ]
    # a column is "guessed" when its header is neither a field key nor a declared alias: a synonym, a
    # composite cell or a unit (the columns read by an alias, such as Cohort, N, CR, need no note)
    out += [(f"{q}!{letter}{HEADER_ROW}", "info", f"column {header!r} read as {' + '.join(fields)}")
            for letter, _g, header, fields in COLUMNS if fields and letter in GUESSED_COLUMNS]
    out += [(f"{q}!U{HEADER_ROW}", "info", "column 'Main event (%)' matches no field: kept, not checked"),
            (f"{q}!{HELPER_COLUMN}{HEADER_ROW}", "warning",
             "hidden column 'ORR (%)' maps to orr_pct like the visible 'ORR, n (%)': the visible one is read; "
             f"the hidden one differs at {HELPER_COLUMN}{cohort_rows[17]} (15.6 vs 16)"),
            (f"{q}!{rows['total']}:{rows['total']}", "info", "'Total' row: not data, never read"),
            (f"{q}!{rows['footnote']}:{rows['footnote']}", "info", "footnote row: not data"),
            (f"{q}!{rows['source']}:{rows['source']}", "info", "source line: not data")]
    out += [(f"{q}!{r}:{r}", "warning", "hidden row read (Strosberg (2021))") for r in rows["hidden"]]
    # a label merged down over its rows is filled down into each of them, reported once as info (layouts.md v2)
    out += [(f"{q}!A{merged[0]}", "info", f"the merged cells A{merged[0]}:A{merged[-1]} are one label, filled down: "
                                          f"{label(COHORTS[cohort_rows.index(merged[0])])!r}")]
    for i, c in enumerate(COHORTS):
        if c["cohort"] != "overall" and c.get("n") is not None:
            out.append((f"{q}!F{cohort_rows[i]}", "warning",
                        f"N = {c['n']} on a subgroup row ({c['cohort']!r}): not the study's n_enrolled, not read"))
    out += [(f"{q}!P{cohort_rows[0]}", "error",
             "'51 (32.6)': the count 51 exceeds the 46 evaluable and 51/46 is not 32.6% (count and percentage disagree)"),
            (f"{q}!P{cohort_rows[4]}", "warning",
             "'41 (60.3%)': the count 41 is not CR+PR = 41+9 = 50 (L, M)")]
    return out


# findings the contract implies that today's rules do not give on the canonical records (each with why)
CONTRACT_EXTRA: list[tuple[str, str]] = []


def _cell_order(line: str) -> tuple:
    m = re.search(r"(?:'([^']+)'|([A-Za-z_][\w.]*))!([A-Z]*)(\d+)", line)
    sheet, letters, row = m.group(1) or m.group(2), m.group(3), int(m.group(4))
    return ([SHEET, SAFETY].index(sheet), row, len(letters), letters)


def expected_findings(tmpdir: Path) -> list[str]:
    """``rule severity cell`` lines: the rules' findings on the canonical records, at the team's cells.

    Sorted by sheet, row and column; ``CONTRACT_EXTRA`` added.
    """
    from curation.findings import quote_sheet
    from curation.validation import validate

    back = write_canonical(tmpdir / "canonical.xlsx")
    result = validate(tmpdir / "canonical.xlsx", SCHEMA)
    letters = {"studies": FIELD_COLUMN, "outcomes": FIELD_COLUMN,
               "adverse_events": {f: letter for letter, _h, f in SAFETY_COLUMNS}}
    out = []
    for f in result.finding_list:
        if f.row is None or f.sheet not in back or f.row not in back[f.sheet]:
            continue
        sheet, row = back[f.sheet][f.row]
        letter = letters[f.sheet].get(f.field) if f.column else None
        cell = f"{quote_sheet(sheet)}!{letter}{row}" if letter else f"{quote_sheet(sheet)}!{row}:{row}"
        out.append(f"{f.rule} {f.severity} {cell}")
    out += [line for line, _why in CONTRACT_EXTRA]
    return sorted(out, key=lambda line: (_cell_order(line), line))


def update_readme(lines: list[str], readme: Path = HERE / "README.md") -> None:
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(rf"(```findings {re.escape(WORKBOOK)}\n).*?(```)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no ```findings {WORKBOOK} block")
    text = pattern.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2), text)
    readme.write_text(text, encoding="utf-8")


def build(outdir: Path = HERE) -> Path:
    path = outdir / WORKBOOK
    write_workbook(path)
    return path


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-readme", action="store_true",
                        help="rewrite the expected-findings block of README.md (rules on the canonical records)")
    parser.add_argument("--expected", action="store_true", help="print the expected findings")
    args = parser.parse_args(argv)
    path = build()
    print(f"wrote {path.relative_to(HERE.parent)}")
    if args.update_readme or args.expected:
        with tempfile.TemporaryDirectory() as tmp:
            lines = expected_findings(Path(tmp))
        if args.expected:
            print("\n".join(lines))
            for cell, severity, what in layout_expectations():
                print(f"[layout] {severity} {cell}: {what}")
        if args.update_readme:
            update_readme(lines)
            print("updated extraction_forms/README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

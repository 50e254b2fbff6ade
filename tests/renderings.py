"""One truth, many renderings: the same review data written in every shape and file format a team keeps.

A test-side generator (issue 18, "Done when": *one truth, many renderings*), written from the layout contract
(shared spec ``layouts.md`` v2) alone, never from the reader's code. :data:`REVIEW` is a small 177Lu-PRRT review
(6 studies, 9 outcome cohorts: whole-study rows and grade / site subgroups, response counts, ORR / DCR, median PFS
and OS with their 95% CIs, 5 adverse-event rows) with the planted slips of :data:`SLIPS` already typed in. One
function per shape renders it into an abstract :class:`Book` (sheets of cells, merged areas), one function per file
format writes a book to disk, and :func:`render` does both. Every value cell written is recorded in the rendering's
:attr:`Rendering.cells` (file, sheet, row, column) -> the record and fields it holds: the oracle that puts a finding
back on its record whatever the shape, so that two renderings can be compared record by record.

Header wordings are never fixed: every shape asks a ``pick`` function (random.choice, or a hypothesis draw) to
choose each header among the field's key, label, aliases and synonyms in ``schemas/prrt_177lu.yaml``.

Shapes (:data:`SHAPES`): ``template`` (as ``curate template`` makes it), ``wide`` (one team sheet, one row per study
x cohort, composite cells ``15 (32.6)`` and ``30.9 (22.7–39.0)``), ``long`` (an Outcome column and role columns
n / N / Estimate / Lower / Upper), ``form`` (one sheet per study named after it: labels in column A, values beside
them, the study's cohorts side by side), ``transposed`` (studies x cohorts as columns), ``stacked`` (one block per
outcome, each under its title), ``subgroup_sheets`` (one sheet per cohort named after the grade / site, identical
headers), ``group_headings`` (``Pancreatic NET`` spanning the rows of that site), ``merged_labels`` (a study's label
merged down over its cohort rows), ``ae_crosstab`` (adverse events as terms down, study x grade band across).
Formats (:data:`FORMATS`): ``xlsx``, ``ods`` (pandas' odf engine), ``csv`` (UTF-8 with BOM, comma), ``csv_eu``
(cp1252, ``;`` and decimal commas, as a European Excel saves it), ``tsv``, ``folder`` (one .xlsx per study).
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "schemas" / "prrt_177lu.yaml"

Pick = Callable[[list[Any]], Any]
RecordKey = tuple[str, ...]          # ("BRABANDER2017",) / ("BRABANDER2017", "overall") / ("BRABANDER2017", "MDS")

# ---------------------------------------------------------------------------------------------------------------
# The truth: one small review, slips included (the slips are part of what every rendering must carry)
# ---------------------------------------------------------------------------------------------------------------
STUDY_FIELDS = ["first_author", "year", "design", "radiopharmaceutical", "response_criteria", "n_enrolled"]
COHORT_FIELDS = ["grade", "primary_site"]
COUNT_FIELDS = ["n_evaluable", "cr", "pr", "sd", "pd", "orr_n"]
RATE_FIELDS = ["orr_pct", "dcr_pct"]
SURVIVAL_FIELDS = ["pfs_median", "pfs_ci_low", "pfs_ci_high", "os_median", "os_ci_low", "os_ci_high"]
OUTCOME_FIELDS = COHORT_FIELDS + COUNT_FIELDS + RATE_FIELDS + SURVIVAL_FIELDS
AE_FIELDS = ["grade3plus_n", "any_grade_n", "n_safety"]


def _study(sid, author, year, design, agent, criteria, n):
    return sid, dict(first_author=author, year=year, design=design, radiopharmaceutical=agent,
                     response_criteria=criteria, n_enrolled=n)


def _cohort(sid, cohort, grade, site, n_eval, cr, pr, sd, pd, orr_pct, dcr_pct, pfs, os_):
    rec = dict(grade=grade, primary_site=site, n_evaluable=n_eval, cr=cr, pr=pr, sd=sd, pd=pd, orr_n=cr + pr,
               orr_pct=orr_pct, dcr_pct=dcr_pct)
    for name, (m, lo, hi) in (("pfs", pfs), ("os", os_)):
        rec.update({f"{name}_median": m, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
    return (sid, cohort), rec


# Figures after the published abstracts of the example forms (extraction_forms/sources.csv and
# build_team_example.py); subgroup splits made consistent with their whole-study rows.
STUDIES: dict[str, dict[str, Any]] = dict([
    _study("BRABANDER2017", "Brabander", 2017, "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 610),
    _study("SANSOVINI2013", "Sansovini", 2013, "prospective", "177Lu-DOTATATE", "RECIST 1.1", 52),
    _study("STROSBERG2017", "Strosberg", 2017, "RCT", "177Lu-DOTATATE", "RECIST 1.1", 116),
    _study("THANG2018", "Thang", 2018, "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 28),
    _study("CLEMENT2022", "Clement", 2022, "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 110),
    _study("UNAL2023", "Unal", 2023, "retrospective", "177Lu-DOTATATE", "RECIST 1.1", 73),
])
COHORTS: dict[tuple[str, str], dict[str, Any]] = dict([
    _cohort("BRABANDER2017", "overall", "mixed", "mixed", 443, 9, 164, 190, 80, 39.1, 81.9, (29, 26, 33), (63, 55, 72)),
    _cohort("BRABANDER2017", "Pancreatic NET", "mixed", "pancreas", 133, 4, 72, 40, 17, 57.1, 87.2, (30, 24, 36),
            (71, 56, 86)),
    _cohort("SANSOVINI2013", "overall", "G1-2", "pancreas", 52, 2, 14, 26, 10, 30.8, 80.8, (29, 21.2, 36.8),
            (59, 45, 73)),
    _cohort("STROSBERG2017", "overall", "G1-2", "midgut", 101, 1, 17, 70, 13, 17.8, 87.1, (28.4, 19.4, 35.8),
            (48.0, 37.4, 55.2)),
    _cohort("THANG2018", "overall", "G3", "mixed", 28, 0, 10, 5, 13, 35.7, 53.6, (9, None, None), (19, 12, 26)),
    _cohort("CLEMENT2022", "overall", "G1-2", "pancreas", 62, 2, 23, 28, 9, 40.3, 85.5, (24.8, 17.5, 34.5),
            (41.4, 28.6, 50.2)),
    _cohort("UNAL2023", "overall", "mixed", "mixed", 71, 1, 20, 26, 24, 29.6, 66.2, (13.7, 10.2, 17.2),
            (51.2, 40.1, 62.3)),
    _cohort("UNAL2023", "G1-2", "G1-2", "mixed", 50, 1, 17, 20, 12, 36.0, 76.0, (16.9, 12.0, 21.8), (55.5, 44.0, 67.0)),
    _cohort("UNAL2023", "G3", "G3", "mixed", 21, 0, 3, 6, 12, 14.3, 42.9, (8.5, 5.1, 11.9), (29.5, 18.2, 40.8)),
])
ADVERSE_EVENTS: dict[tuple[str, str], dict[str, Any]] = {
    ("BRABANDER2017", "MDS"): dict(grade3plus_n=9, any_grade_n=9, n_safety=610),
    ("BRABANDER2017", "AML"): dict(grade3plus_n=4, any_grade_n=4, n_safety=610),
    ("STROSBERG2017", "Lymphopenia"): dict(grade3plus_n=10, any_grade_n=21, n_safety=111),
    ("STROSBERG2017", "Thrombocytopenia"): dict(grade3plus_n=2, any_grade_n=28, n_safety=111),
    ("THANG2018", "Thrombocytopenia"): dict(grade3plus_n=1, any_grade_n=8, n_safety=28),
}

#: The planted slips, (table, record, field) -> (value as typed, what went wrong). Every rendering carries them.
SLIPS: dict[tuple[str, RecordKey, str], tuple[Any, str]] = {
    ("outcomes", ("UNAL2023", "G1-2"), "pd"):
        (21, "transposed digits: PD 12 typed 21, so CR+PR+SD+PD = 59 but 50 are evaluable"),
    ("outcomes", ("SANSOVINI2013", "overall"), "os_ci_high"):
        (53, "upper CI bound 73 typed 53: the median OS 59 lies outside its CI (45-53)"),
    ("outcomes", ("STROSBERG2017", "overall"), "grade"):
        ("Gl-2", "misspelt grade label: a lower-case L for the 1 of G1-2"),
    ("outcomes", ("CLEMENT2022", "overall"), "orr_pct"):
        (43.0, "a percentage no count gives: 26/62 = 41.9%, 27/62 = 43.5% (the paper: 40.3%)"),
}
#: What the template rendering is expected to report for each slip (rule families; checked by the tests so that
#: the property is never vacuous).
SLIP_RULES = {
    ("outcomes", ("UNAL2023", "G1-2"), "pd"): "response-sum",
    ("outcomes", ("SANSOVINI2013", "overall"), "os_ci_high"): "median-outside-ci",
    ("outcomes", ("STROSBERG2017", "overall"), "grade"): "term",
    ("outcomes", ("CLEMENT2022", "overall"), "orr_pct"): "percentage",
}


@dataclass(frozen=True)
class Review:
    """The review as typed (slips applied): studies, cohorts and adverse events keyed by their records."""

    studies: dict[str, dict[str, Any]]
    cohorts: dict[tuple[str, str], dict[str, Any]]
    adverse_events: dict[tuple[str, str], dict[str, Any]]

    def cohorts_of(self, sid: str) -> list[tuple[tuple[str, str], dict[str, Any]]]:
        return [(k, v) for k, v in self.cohorts.items() if k[0] == sid]

    def aes_of(self, sid: str) -> list[tuple[tuple[str, str], dict[str, Any]]]:
        return [(k, v) for k, v in self.adverse_events.items() if k[0] == sid]

    def only(self, sid: str) -> "Review":
        """The part of the review one study's workbook holds (a folder of one workbook per study)."""
        return Review({sid: self.studies[sid]}, dict(self.cohorts_of(sid)), dict(self.aes_of(sid)))

    def label(self, sid: str) -> str:
        """``Brabander 2017``: the study as a team names a sheet, a file or a column after it."""
        s = self.studies[sid]
        return f"{s['first_author']} {s['year']}"

    def sid_of(self, author: Any, year: Any) -> str | None:
        """The study of a (first author, year) pair as a reader reports it, or None."""
        for sid, s in self.studies.items():
            try:
                same_year = int(float(year)) == s["year"]
            except (TypeError, ValueError):
                same_year = False
            if fold(author) == fold(s["first_author"]) and same_year:
                return sid
        return None


def review() -> Review:
    """The review with every slip of :data:`SLIPS` typed in."""
    cohorts = {k: dict(v) for k, v in COHORTS.items()}
    for (table, key, fld), (value, _why) in SLIPS.items():
        assert table == "outcomes"
        cohorts[key][fld] = value
    return Review({k: dict(v) for k, v in STUDIES.items()}, cohorts,
                  {k: dict(v) for k, v in ADVERSE_EVENTS.items()})


def truth_value(rv: Review, table: str, key: RecordKey, fld: str) -> Any:
    """The value ``rv`` gives one field of one record (a study's own field for a label cell of a cohort row)."""
    sid = key[0]
    if fld in STUDY_FIELDS or fld == "study_id":
        return sid if fld == "study_id" else rv.studies[sid][fld]
    if table == "outcomes":
        return key[1] if fld == "cohort" else rv.cohorts[key].get(fld)
    return key[1] if fld == "ae_term" else rv.adverse_events[key].get(fld)


def read_back(path: Path, fmt: str) -> dict[tuple[str, str], list[list[Any]]]:
    """``(file name, sheet) -> rows of cell values`` of a rendering as written (python-calamine for workbooks, the
    csv module for text): what the generator's own test compares with the oracle."""
    from python_calamine import CalamineWorkbook

    files = sorted(path.iterdir()) if path.is_dir() else [path]
    out: dict[tuple[str, str], list[list[Any]]] = {}
    for f in files:
        if fmt in CSV_DIALECTS:
            delim, enc, _ = CSV_DIALECTS[fmt]
            out[(f.name, f.stem)] = [list(r) for r in csv.reader(io.StringIO(f.read_bytes().decode(enc)),
                                                                 delimiter=delim)]
            continue
        wb = CalamineWorkbook.from_path(str(f))
        for name in wb.sheet_names:
            out[(f.name, name)] = wb.get_sheet_by_name(name).to_python()
    return out


def fold(text: Any) -> str:
    """Case, spaces, dashes and underscores folded: how two spellings of one label are compared."""
    text = unicodedata.normalize("NFKC", "" if text is None else str(text)).casefold()
    return re.sub(r"[\s_\-–—]+", "", text)


# ---------------------------------------------------------------------------------------------------------------
# Header wordings: the schema's own
# ---------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def schema_doc() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def wordings(table: str, fld: str, *, avoid: Iterable[str] = ()) -> list[str]:
    """Every header the schema lists for a field (its key, aliases and synonyms), minus ``avoid`` (folded):
    names a shape gives another meaning (the role column ``N`` of a long table)."""
    spec = schema_doc()["sheets"][table]["fields"][fld]
    names = [fld] + [str(a) for k in ("aliases", "synonyms") for a in spec.get(k) or []]
    bad = {fold(a) for a in avoid}
    out = [n for n in dict.fromkeys(names) if fold(n) not in bad]
    assert out, (table, fld)
    return out


def term_wordings(vocabulary: str, value: str) -> list[str]:
    """A vocabulary term's value and aliases (a group heading, a sheet named after a grade or a site)."""
    for t in schema_doc()["vocabularies"][vocabulary]["terms"]:
        if t["value"] == value:
            return [value] + [str(a) for a in t.get("aliases") or []]
    raise KeyError((vocabulary, value))


# Headers shared by several shapes: a team's sheet has every outcome and study field on one row, so two tables'
# wordings must not collide (``study``, ``id``, ``N`` ...).
TABLE_OF = {**{f: "studies" for f in STUDY_FIELDS}, **{f: "outcomes" for f in OUTCOME_FIELDS + ["cohort"]},
            **{f: "adverse_events" for f in AE_FIELDS + ["ae_term"]}}
_ONE_SHEET_AVOID = {"study", "id", "study id", "Study ID", "population", "Response", "criteria used"}


def header(pick: Pick, fld: str, *, avoid: Iterable[str] = ()) -> str:
    return pick(wordings(TABLE_OF[fld], fld, avoid=[*_ONE_SHEET_AVOID, *avoid]))


# ---------------------------------------------------------------------------------------------------------------
# The abstract book a shape builds, and the oracle of what each cell holds
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Holds:
    """What one written cell holds: the record (table + key) and the field(s) a correct reading gives it."""

    table: str
    key: RecordKey
    fields: tuple[str, ...]


@dataclass
class Sheet:
    title: str
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)        # (row, col), 1-based -> value
    merges: list[tuple[int, int, int, int]] = field(default_factory=list)  # r0, c0, r1, c1 (inclusive)
    holds: dict[tuple[int, int], Holds] = field(default_factory=dict)
    widths: dict[int, float] = field(default_factory=dict)

    def put(self, r: int, c: int, value: Any, holds: Holds | None = None) -> None:
        if value is None or value == "":
            return
        self.cells[(r, c)] = value
        if holds is not None:
            self.holds[(r, c)] = holds

    def row(self, r: int, values: Iterable[Any], c0: int = 1) -> None:
        for c, v in enumerate(values, start=c0):
            self.put(r, c, v)

    @property
    def n_rows(self) -> int:
        return max((r for r, _ in self.cells), default=0)

    @property
    def n_cols(self) -> int:
        return max((c for _, c in self.cells), default=0)


@dataclass
class Book:
    sheets: list[Sheet] = field(default_factory=list)
    template: bool = False          # written on ``curate template``'s workbook (validations, notes, schema recorded)

    def sheet(self, title: str) -> Sheet:
        s = Sheet(title)
        self.sheets.append(s)
        return s


@dataclass(frozen=True)
class Rendering:
    """A rendering written to disk.

    Attributes
    ----------
    path : Path
        The file, or the folder of workbooks, to validate.
    shape, fmt : str
        Which shape and format.
    tables : tuple of str
        The contract tables it holds (a one-sheet CSV of a shape that keeps adverse events apart holds none).
    cells : dict
        ``(file name, sheet, row, column letter) -> Holds`` for every value cell written.
    headers : dict
        ``field -> header text`` as this rendering words it (for messages).
    """

    path: Path
    shape: str
    fmt: str
    tables: tuple[str, ...]
    cells: dict[tuple[str, str, int, str], Holds]
    headers: dict[str, str]

    def records_at(self, file: str, sheet: str | None, row: int | None, column: str | None) -> set[tuple[str, RecordKey]]:
        """The records whose cells a finding's place touches: the cell; else its row; else (no row) its column.
        A header, title or heading cell touches none."""
        f, s = Path(str(file)).name, sheet
        if self.fmt in CSV_DIALECTS:   # "a CSV is one sheet named after the file": its stem or its whole name
            s = Path(f).stem
        if row is not None and column:
            h = self.cells.get((f, s, row, column))
            if h is not None:
                return {(h.table, h.key)}
        if row is not None:
            hit = {(h.table, h.key) for (ff, ss, rr, _), h in self.cells.items() if (ff, ss, rr) == (f, s, row)}
            if hit:
                return hit
        if column and row is None:   # a column-level finding (a record per column: a transposed sheet)
            return {(h.table, h.key) for (ff, ss, _, cc), h in self.cells.items() if (ff, ss, cc) == (f, s, column)}
        return set()


def letter(c: int) -> str:
    out = ""
    while c:
        c, rem = divmod(c - 1, 26)
        out = chr(65 + rem) + out
    return out


# ---------------------------------------------------------------------------------------------------------------
# Cell texts as teams type them
# ---------------------------------------------------------------------------------------------------------------
def num_text(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e6:
        return f"{x:.1f}"
    return str(x)


def n_pct(n: Any, pct: Any) -> Any:
    """``15 (32.6)``: a count and its percentage in one cell (the percentage alone when there is no count)."""
    if n is None:
        return pct
    return f"{n} ({num_text(pct)})"


def median_ci(m: Any, lo: Any, hi: Any) -> Any:
    """``30.9 (22.7–39.0)``: a median and its 95% CI in one cell (the median alone without a CI)."""
    if m is None:
        return None
    if lo is None and hi is None:
        return m
    return f"{num_text(m)} ({num_text(lo)}–{num_text(hi)})"


def author_year(author: str, year: int) -> str:
    return f"{author} ({year})"


# ---------------------------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------------------------
def shape_template(rv: Review, pick: Pick) -> tuple[Book, dict[str, str]]:
    """The three contract sheets with the field keys as headers, as ``curate template`` makes them."""
    book = Book(template=True)
    fields = {"studies": ["study_id", *STUDY_FIELDS], "outcomes": ["study_id", "cohort", *OUTCOME_FIELDS],
              "adverse_events": ["study_id", "ae_term", *AE_FIELDS]}
    from curation.schema import load_schema

    order = {t: list(spec.fields) for t, spec in load_schema(SCHEMA_PATH).sheets.items()}
    for table in ("studies", "outcomes", "adverse_events"):
        sh = book.sheet(table)
        col = {f: order[table].index(f) + 1 for f in order[table]}
        for f in order[table]:
            sh.put(1, col[f], f)
        recs: list[tuple[RecordKey, dict[str, Any]]]
        if table == "studies":
            recs = [((sid,), {"study_id": sid, **v}) for sid, v in rv.studies.items()]
        elif table == "outcomes":
            recs = [(k, {"study_id": k[0], "cohort": k[1], **v}) for k, v in rv.cohorts.items()]
        else:
            recs = [(k, {"study_id": k[0], "ae_term": k[1], **v}) for k, v in rv.adverse_events.items()]
        for r, (key, rec) in enumerate(recs, start=2):
            for f in fields[table]:
                sh.put(r, col[f], rec.get(f), Holds(table, key, (f,)))
    return book, {}


@dataclass
class _Columns:
    """A team's one-row-per-cohort table: its columns, each (header, writer of one record's cell)."""

    headers: list[str]
    cells: list[Callable[[str, str | None, dict, dict], tuple[Any, Holds | None]]]
    labels: int = 0          # how many leading columns name the study (author and year, or "Author (year)")


def _team_columns(rv: Review, pick: Pick, *, with_site: bool = True, with_cohort: bool = True,
                  composite: bool | None = None, label: str | None = None) -> tuple[_Columns, dict[str, str]]:
    """The columns of a team's wide sheet (study fields, then the cohort's), wordings picked."""
    label = label or pick(["split", "author_year"])
    composite = pick([True, False]) if composite is None else composite
    heads: dict[str, str] = {}
    cols = _Columns([], [])

    def add(head: str, fn) -> None:
        cols.headers.append(head)
        cols.cells.append(fn)

    def study_cell(fld: str):
        def fn(sid, cohort, s, c):
            if cohort not in (None, "overall"):
                return None, None
            return s[fld], Holds("studies", (sid,), (fld,))
        return fn

    def label_cell(kind: str):
        def fn(sid, cohort, s, c):
            table, key = ("studies", (sid,)) if cohort in (None, "overall") else ("outcomes", (sid, cohort))
            if kind == "author_year":
                return author_year(s["first_author"], s["year"]), Holds(table, key, ("first_author", "year"))
            return s[kind], Holds(table, key, (kind,))
        return fn

    def cohort_cell(fld: str):
        def fn(sid, cohort, s, c):
            return (c or {}).get(fld), Holds("outcomes", (sid, cohort), (fld,))
        return fn

    if label == "author_year":
        add(pick(["Author (year)", "First author (year)", "Author, year"]), label_cell("author_year"))
    else:
        for f in ("first_author", "year"):
            heads[f] = header(pick, f)
            add(heads[f], label_cell(f))
    cols.labels = len(cols.headers)
    if with_cohort:
        heads["cohort"] = header(pick, "cohort")
        add(heads["cohort"], lambda sid, cohort, s, c: (cohort, Holds("outcomes", (sid, cohort), ("cohort",))))
    for f in STUDY_FIELDS[2:]:
        heads[f] = header(pick, f)
        add(heads[f], study_cell(f))
    for f in COHORT_FIELDS + COUNT_FIELDS[:-1]:
        if f == "primary_site" and not with_site:
            continue
        heads[f] = header(pick, f)
        add(heads[f], cohort_cell(f))
    if composite:
        head = f"{header(pick, 'orr_pct', avoid=['ORR (%)', 'ORR %'])}, n (%)"
        heads["orr_pct"] = head
        add(head, lambda sid, cohort, s, c: (n_pct(c["orr_n"], c["orr_pct"]),
                                             Holds("outcomes", (sid, cohort), ("orr_n", "orr_pct"))))
    else:
        for f in ("orr_n", "orr_pct"):
            heads[f] = header(pick, f)
            add(heads[f], cohort_cell(f))
    heads["dcr_pct"] = header(pick, "dcr_pct")
    add(heads["dcr_pct"], cohort_cell("dcr_pct"))
    for name in ("pfs", "os"):
        if composite:
            head = f"{header(pick, name + '_median', avoid=[f'{name.upper()} months', f'm{name.upper()} months'])}" \
                   ", months (95% CI)"
            heads[name + "_median"] = head
            add(head, lambda sid, cohort, s, c, name=name: (
                median_ci(c[f"{name}_median"], c[f"{name}_ci_low"], c[f"{name}_ci_high"]),
                Holds("outcomes", (sid, cohort), tuple(f"{name}_{p}" for p in ("median", "ci_low", "ci_high")))))
        else:
            for p in ("median", "ci_low", "ci_high"):
                f = f"{name}_{p}"
                heads[f] = header(pick, f)
                add(heads[f], cohort_cell(f))
    return cols, heads


def _team_rows(rv: Review) -> list[tuple[str, str, dict, dict]]:
    """(sid, cohort, study, cohort record) per row: each study's whole-study row first, then its subgroups."""
    out = []
    for sid, s in rv.studies.items():
        for (_, cohort), c in sorted(rv.cohorts_of(sid), key=lambda kv: kv[0][1] != "overall"):
            out.append((sid, cohort, s, c))
    return out


def _write_table(sh: Sheet, r0: int, cols: _Columns, rows: Iterable[tuple[str, str, dict, dict]], c0: int = 1) -> int:
    """Header at ``r0``, one row per record below; returns the last row written."""
    sh.row(r0, cols.headers, c0)
    r = r0
    for sid, cohort, s, c in rows:
        r += 1
        for j, fn in enumerate(cols.cells):
            v, h = fn(sid, cohort, s, c)
            sh.put(r, c0 + j, v, h)
    return r


def _ae_table(rv: Review, sh: Sheet, pick: Pick, r0: int = 1, label: str | None = None) -> tuple[int, dict[str, str]]:
    """Adverse events as a team keeps them on their own sheet: one row per study and event."""
    label = label or pick(["split", "author_year"])
    heads = {f: header(pick, f) for f in ("ae_term", *AE_FIELDS)}
    labels = ([pick(["Author (year)", "Study (year)"])] if label == "author_year"
              else [header(pick, "first_author"), header(pick, "year")])
    sh.row(r0, labels + [heads[f] for f in ("ae_term", *AE_FIELDS)])
    r = r0
    for (sid, term), a in rv.adverse_events.items():
        r += 1
        s, hold = rv.studies[sid], Holds("adverse_events", (sid, term), ())
        vals = ([author_year(s["first_author"], s["year"])] if label == "author_year"
                else [s["first_author"], s["year"]])
        flds = [("first_author", "year")] if label == "author_year" else [("first_author",), ("year",)]
        for j, (v, fl) in enumerate(zip(vals, flds), start=1):
            sh.put(r, j, v, Holds(hold.table, hold.key, fl))
        c = len(vals)
        sh.put(r, c + 1, term, Holds(hold.table, hold.key, ("ae_term",)))
        for j, f in enumerate(AE_FIELDS, start=c + 2):
            sh.put(r, j, a.get(f), Holds(hold.table, hold.key, (f,)))
    return r, heads


AE_SHEET_NAMES = ["Safety", "Adverse events", "Toxicity", "AEs"]
#: Names of a team's one data sheet: none the schema gives one contract sheet (``Efficacy`` names ``outcomes``).
DATA_SHEET_NAMES = ["Data extraction", "Extraction", "Data", "Extraction sheet"]


def shape_wide(rv: Review, pick: Pick, *, merged: bool = False, with_ae: bool = True) -> tuple[Book, dict[str, str]]:
    """One team sheet, one row per study x cohort (a title row above); adverse events on a sheet of their own."""
    book = Book()
    sh = book.sheet(pick(DATA_SHEET_NAMES))
    cols, heads = _team_columns(rv, pick)
    titled = pick([True, False])
    r0 = 3 if titled else 1
    if titled:
        sh.put(1, 1, "Table 2. Efficacy of 177Lu-PRRT: response, PFS and OS by study and cohort")
    rows = _team_rows(rv)
    last = _write_table(sh, r0, cols, rows)
    if merged:   # each study's label cells merged down over its cohort rows (the value in the top cell only)
        label_cols = list(range(1, cols.labels + 1))
        r = r0 + 1
        for sid in rv.studies:
            n = len(rv.cohorts_of(sid))
            if n > 1:
                for c in label_cols:
                    sh.merges.append((r, c, r + n - 1, c))
                    for rr in range(r + 1, r + n):
                        sh.cells.pop((rr, c), None)
                        sh.holds.pop((rr, c), None)
            r += n
    assert last == r0 + len(rows)
    if with_ae:
        _, ae_heads = _ae_table(rv, book.sheet(pick(AE_SHEET_NAMES)), pick)
        heads.update(ae_heads)
    return book, heads


def shape_merged_labels(rv: Review, pick: Pick) -> tuple[Book, dict[str, str]]:
    return shape_wide(rv, pick, merged=True)


def shape_group_headings(rv: Review, pick: Pick, *, with_ae: bool = True) -> tuple[Book, dict[str, str]]:
    """A wide sheet without a site column: rows grouped under heading rows (``Pancreatic NET``) spanning it."""
    book = Book()
    sh = book.sheet(pick(DATA_SHEET_NAMES))
    cols, heads = _team_columns(rv, pick, with_site=False)
    heading = {"pancreas": ["Pancreatic NET", "pNET", "Pancreatic", "PanNET"],
               "midgut": ["Midgut NET", "Midgut", "mid-gut"],
               "mixed": ["Mixed sites", "GEP-NET", "Various"]}
    sh.row(1, cols.headers)
    r = 1
    rows = _team_rows(rv)
    width = len(cols.headers)
    for site in ("pancreas", "midgut", "mixed"):
        group = [row for row in rows if row[3]["primary_site"] == site]
        if not group:
            continue
        r += 1
        sh.put(r, 1, pick(heading[site]), None)
        sh.merges.append((r, 1, r, width))
        # the heading gives primary_site to every row below it: its cell holds that field of each of them
        for sid, cohort, s, c in group:
            r += 1
            for j, fn in enumerate(cols.cells):
                v, h = fn(sid, cohort, s, c)
                sh.put(r, 1 + j, v, h)
    if with_ae:
        _, ae_heads = _ae_table(rv, book.sheet(pick(AE_SHEET_NAMES)), pick)
        heads.update(ae_heads)
    return book, heads


LONG_OUTCOMES = {   # outcome name wordings -> (count field or None, estimate field, low, high)
    "orr": (["ORR", "Objective response rate", "ORR (%)"], "orr_n", "orr_pct", None, None),
    "dcr": (["DCR", "Disease control rate", "DCR (%)"], None, "dcr_pct", None, None),
    "cr": (["CR", "Complete response"], "cr", None, None, None),
    "pr": (["PR", "Partial response"], "pr", None, None, None),
    "sd": (["SD", "Stable disease"], "sd", None, None, None),
    "pd": (["PD", "Progressive disease"], "pd", None, None, None),
    "pfs": (["PFS", "Progression-free survival", "median PFS"], None, "pfs_median", "pfs_ci_low", "pfs_ci_high"),
    "os": (["OS", "Overall survival", "median OS"], None, "os_median", "os_ci_low", "os_ci_high"),
}
ROLE_WORDS = {"n": ["n", "Events", "n events"], "N": ["N", "Total", "N total"],
              "est": ["Estimate", "Value", "Result"], "lo": ["Lower", "95% CI lower", "LCL", "Lower CI"],
              "hi": ["Upper", "95% CI upper", "UCL", "Upper CI"]}


def shape_long(rv: Review, pick: Pick, *, with_ae: bool = True) -> tuple[Book, dict[str, str]]:
    """Tidy: one row per study x cohort x outcome; an Outcome column and role columns n, N, Estimate, Lower,
    Upper. The study's and cohort's own fields are columns repeated on the rows they belong to."""
    book = Book()
    sh = book.sheet(pick(DATA_SHEET_NAMES))
    roles = {k: pick(v) for k, v in ROLE_WORDS.items()}
    avoid = [*ROLE_WORDS["n"], *ROLE_WORDS["N"], "Patients", "Total N", "N total"]
    label = pick(["split", "author_year"])
    heads: dict[str, str] = {}
    lab = [pick(["Author (year)", "First author (year)"])] if label == "author_year" else [
        header(pick, "first_author"), header(pick, "year")]
    for f in ("cohort", *STUDY_FIELDS[2:], *COHORT_FIELDS):
        heads[f] = header(pick, f, avoid=avoid)
    outcome_head = pick(["Outcome", "Endpoint", "Measure"])
    head = [*lab, heads["cohort"], *[heads[f] for f in STUDY_FIELDS[2:]], *[heads[f] for f in COHORT_FIELDS],
            outcome_head, roles["n"], roles["N"], roles["est"], roles["lo"], roles["hi"]]
    sh.row(1, head)
    names = {k: pick(v[0]) for k, v in LONG_OUTCOMES.items()}
    r = 1
    c_out = len(lab) + 1 + len(STUDY_FIELDS[2:]) + len(COHORT_FIELDS) + 1
    for sid, cohort, s, c in _team_rows(rv):
        key = (sid, cohort)
        for k, (_, count, est, lo, hi) in LONG_OUTCOMES.items():
            if all(c.get(f) is None for f in (count, est, lo, hi) if f):
                continue
            r += 1
            first = r
            vals = ([author_year(s["first_author"], s["year"])] if label == "author_year"
                    else [s["first_author"], s["year"]])
            table, skey = ("studies", (sid,)) if cohort == "overall" else ("outcomes", key)
            flds = [("first_author", "year")] if label == "author_year" else [("first_author",), ("year",)]
            for j, (v, fl) in enumerate(zip(vals, flds), start=1):
                sh.put(r, j, v, Holds(table, skey, fl))
            j = len(vals) + 1
            sh.put(r, j, cohort, Holds("outcomes", key, ("cohort",)))
            for f in STUDY_FIELDS[2:]:
                j += 1
                if cohort == "overall":
                    sh.put(r, j, s[f], Holds("studies", (sid,), (f,)))
            for f in COHORT_FIELDS:
                j += 1
                sh.put(r, j, c[f], Holds("outcomes", key, (f,)))
            sh.put(r, c_out, names[k], None)
            if count:
                sh.put(r, c_out + 1, c[count], Holds("outcomes", key, (count,)))
            if k in ("orr", "dcr", "cr", "pr", "sd", "pd"):
                sh.put(r, c_out + 2, c["n_evaluable"], Holds("outcomes", key, ("n_evaluable",)))
            for off, f in ((3, est), (4, lo), (5, hi)):
                if f:
                    sh.put(r, c_out + off, c.get(f), Holds("outcomes", key, (f,)))
            assert first == r
    if with_ae:
        _, ae_heads = _ae_table(rv, book.sheet(pick(AE_SHEET_NAMES)), pick)
        heads.update(ae_heads)
    heads.update(outcome=outcome_head, **{f"role_{k}": v for k, v in roles.items()})
    return book, heads


def _form_labels(pick: Pick) -> dict[str, str]:
    return {f: header(pick, f) for f in [*STUDY_FIELDS, "cohort", *OUTCOME_FIELDS]}


def _cohort_columns(sh: Sheet, r: int, c0: int, rv: Review, keys: list[tuple[str, str]], labels: dict[str, str],
                    *, with_study_label: bool) -> int:
    """Fields down column ``c0``, one column per cohort to its right; returns the last row written."""
    rows = (["first_author", "year"] if with_study_label else []) + ["cohort", *OUTCOME_FIELDS]
    for i, f in enumerate(rows):
        sh.put(r + i, c0, labels[f])
    for j, key in enumerate(keys, start=c0 + 1):
        sid, cohort = key
        s, c = rv.studies[sid], rv.cohorts[key]
        for i, f in enumerate(rows):
            if f in ("first_author", "year"):
                table, k = ("studies", (sid,)) if cohort == "overall" else ("outcomes", key)
                sh.put(r + i, j, s[f], Holds(table, k, (f,)))
            elif f == "cohort":
                sh.put(r + i, j, cohort, Holds("outcomes", key, ("cohort",)))
            else:
                sh.put(r + i, j, c.get(f), Holds("outcomes", key, (f,)))
    return r + len(rows) - 1


def shape_form(rv: Review, pick: Pick) -> tuple[Book, dict[str, str]]:
    """One sheet per study, named after it: the study's fields as label | value pairs in columns A:B, then its
    cohorts side by side (fields down, one column per cohort), then its adverse events as a small table."""
    book = Book()
    labels = _form_labels(pick)
    ae_heads = {f: header(pick, f) for f in ("ae_term", *AE_FIELDS)}
    titled = pick([True, False])
    for sid, s in rv.studies.items():
        sh = book.sheet(rv.label(sid))
        r = 1
        if titled:
            sh.put(1, 1, f"Extraction form: {rv.label(sid)}")
            r = 3
        for f in STUDY_FIELDS:
            sh.put(r, 1, labels[f])
            sh.put(r, 2, s[f], Holds("studies", (sid,), (f,)))
            r += 1
        r += 1
        keys = [k for k, _ in sorted(rv.cohorts_of(sid), key=lambda kv: kv[0][1] != "overall")]
        r = _cohort_columns(sh, r, 1, rv, keys, labels, with_study_label=False) + 2
        aes = rv.aes_of(sid)
        if aes:
            sh.row(r, [ae_heads[f] for f in ("ae_term", *AE_FIELDS)])
            for (_, term), a in aes:
                r += 1
                sh.put(r, 1, term, Holds("adverse_events", (sid, term), ("ae_term",)))
                for j, f in enumerate(AE_FIELDS, start=2):
                    sh.put(r, j, a.get(f), Holds("adverse_events", (sid, term), (f,)))
    return book, {**labels, **ae_heads}


def shape_transposed(rv: Review, pick: Pick, *, with_ae: bool = True) -> tuple[Book, dict[str, str]]:
    """Studies x cohorts as columns, fields down column A (the study's own fields on its whole-study column)."""
    book = Book()
    sh = book.sheet(pick(DATA_SHEET_NAMES))
    labels = _form_labels(pick)
    keys = [k for sid in rv.studies for k, _ in sorted(rv.cohorts_of(sid), key=lambda kv: kv[0][1] != "overall")]
    rows = ["first_author", "year", "cohort", *STUDY_FIELDS[2:], *OUTCOME_FIELDS]
    for i, f in enumerate(rows, start=1):
        sh.put(i, 1, labels[f])
    for j, key in enumerate(keys, start=2):
        sid, cohort = key
        s, c = rv.studies[sid], rv.cohorts[key]
        for i, f in enumerate(rows, start=1):
            if f in ("first_author", "year"):
                table, k = ("studies", (sid,)) if cohort == "overall" else ("outcomes", key)
                sh.put(i, j, s[f], Holds(table, k, (f,)))
            elif f == "cohort":
                sh.put(i, j, cohort, Holds("outcomes", key, ("cohort",)))
            elif f in STUDY_FIELDS:
                if cohort == "overall":
                    sh.put(i, j, s[f], Holds("studies", (sid,), (f,)))
            else:
                sh.put(i, j, c.get(f), Holds("outcomes", key, (f,)))
    heads = dict(labels)
    if with_ae:
        _, ae_heads = _ae_table(rv, book.sheet(pick(AE_SHEET_NAMES)), pick)
        heads.update(ae_heads)
    return book, heads


def shape_stacked(rv: Review, pick: Pick) -> tuple[Book, dict[str, str]]:
    """One sheet of blocks one below the other, each under a title naming it: the studies, the response
    counts and rates, PFS, OS and the adverse events; a blank row between blocks."""
    book = Book()
    sh = book.sheet(pick(DATA_SHEET_NAMES))
    label = pick(["split", "author_year"])
    heads: dict[str, str] = {}

    def lab_heads() -> list[str]:
        return [pick(["Author (year)", "Study (year)"])] if label == "author_year" else [
            header(pick, "first_author"), header(pick, "year")]

    def lab_cells(r: int, s: dict, table: str, key: RecordKey) -> int:
        if label == "author_year":
            sh.put(r, 1, author_year(s["first_author"], s["year"]), Holds(table, key, ("first_author", "year")))
            return 2
        sh.put(r, 1, s["first_author"], Holds(table, key, ("first_author",)))
        sh.put(r, 2, s["year"], Holds(table, key, ("year",)))
        return 3

    r = 1
    # block 1: the studies
    sh.put(r, 1, pick(["Study characteristics", "Included studies", "Characteristics"]))
    r += 1
    sh.row(r, lab_heads() + [header(pick, f) for f in STUDY_FIELDS[2:]])
    for sid, s in rv.studies.items():
        r += 1
        c = lab_cells(r, s, "studies", (sid,))
        for j, f in enumerate(STUDY_FIELDS[2:], start=c):
            sh.put(r, j, s[f], Holds("studies", (sid,), (f,)))
    rows = _team_rows(rv)

    def cohort_block(title: str, fields: list[str], words: dict[str, str]) -> None:
        nonlocal r
        r += 2
        sh.put(r, 1, title)
        r += 1
        coh = header(pick, "cohort")
        sh.row(r, lab_heads() + [coh] + [words[f] for f in fields])
        for sid, cohort, s, cr in rows:
            if all(cr.get(f) is None for f in fields):
                continue
            r += 1
            key = (sid, cohort)
            c = lab_cells(r, s, "outcomes" if cohort != "overall" else "studies",
                          key if cohort != "overall" else (sid,))
            sh.put(r, c, cohort, Holds("outcomes", key, ("cohort",)))
            for j, f in enumerate(fields, start=c + 1):
                sh.put(r, j, cr.get(f), Holds("outcomes", key, (f,)))

    resp = COHORT_FIELDS + COUNT_FIELDS + RATE_FIELDS
    cohort_block(pick(["Tumour response (RECIST 1.1)", "Response", "Best response"]), resp,
                 {f: header(pick, f) for f in resp})
    for name, titles in (("pfs", ["Progression-free survival (months)", "PFS"]),
                         ("os", ["Overall survival (months)", "OS"])):
        words = {f"{name}_median": pick(["Median", "Median (months)"]),
                 f"{name}_ci_low": pick(["95% CI lower", "Lower", "CI low"]),
                 f"{name}_ci_high": pick(["95% CI upper", "Upper", "CI high"])}
        cohort_block(pick(titles), list(words), words)
    # the adverse events
    r += 2
    sh.put(r, 1, pick(["Adverse events", "Safety", "Toxicity (grade >= 3)"]))
    r += 1
    ae_words = {f: header(pick, f) for f in ("ae_term", *AE_FIELDS)}
    sh.row(r, lab_heads() + [ae_words[f] for f in ("ae_term", *AE_FIELDS)])
    for (sid, term), a in rv.adverse_events.items():
        r += 1
        key = (sid, term)
        c = lab_cells(r, rv.studies[sid], "adverse_events", key)
        sh.put(r, c, term, Holds("adverse_events", key, ("ae_term",)))
        for j, f in enumerate(AE_FIELDS, start=c + 1):
            sh.put(r, j, a.get(f), Holds("adverse_events", key, (f,)))
    heads.update(ae_words)
    return book, heads


def shape_subgroup_sheets(rv: Review, pick: Pick) -> tuple[Book, dict[str, str]]:
    """One sheet per cohort (``Overall``, ``G1-2``, ``G3``, ``Pancreatic NET``: named after the grade or the site),
    identical headers on every sheet, the cohort column included (so the sheet's name, a label value, agrees with
    what its rows state). Adverse events on a sheet of their own."""
    book = Book()
    cols, heads = _team_columns(rv, pick)
    by_cohort: dict[str, list] = {}
    for row in _team_rows(rv):
        by_cohort.setdefault(row[1], []).append(row)
    for cohort, rows in by_cohort.items():
        title = "Overall" if cohort == "overall" else cohort
        sh = book.sheet(title)
        _write_table(sh, 1, cols, rows)
    _, ae_heads = _ae_table(rv, book.sheet(pick(AE_SHEET_NAMES)), pick)
    heads.update(ae_heads)
    return book, heads


def shape_ae_crosstab(rv: Review, pick: Pick) -> tuple[Book, dict[str, str]]:
    """The team's wide sheet, and adverse events as a cross-tab: terms down, one column per study x grade band
    (``Brabander 2017 (N=610) Grade 3-4``), as safety tables are printed."""
    book, heads = shape_wide(rv, pick, with_ae=False)
    sh = book.sheet(pick(AE_SHEET_NAMES))
    term_head = header(pick, "ae_term")
    g3 = pick(["Grade 3-4", "Grade >=3", "G3-4"])
    anyg = pick(["Any grade", "All grades"])
    sids = list(dict.fromkeys(sid for sid, _ in rv.adverse_events))
    terms = list(dict.fromkeys(t for _, t in rv.adverse_events))
    sh.put(1, 1, term_head)
    c = 1
    col_of: dict[tuple[str, str], int] = {}
    for sid in sids:
        n = next(a["n_safety"] for (s2, _), a in rv.adverse_events.items() if s2 == sid)
        for band, f in ((g3, "grade3plus_n"), (anyg, "any_grade_n")):
            c += 1
            col_of[(sid, f)] = c
            sh.put(1, c, f"{rv.label(sid)} (N={n}) {band}")
    for i, term in enumerate(terms, start=2):
        sh.put(i, 1, term)
        for sid in sids:
            a = rv.adverse_events.get((sid, term))
            if a is None:
                continue
            for f in ("grade3plus_n", "any_grade_n"):
                sh.put(i, col_of[(sid, f)], a.get(f), Holds("adverse_events", (sid, term), (f,)))
    heads.update(ae_term=term_head, grade3plus_n=g3, any_grade_n=anyg)
    return book, heads


SHAPES: dict[str, Callable[[Review, Pick], tuple[Book, dict[str, str]]]] = {
    "template": shape_template,
    "wide": shape_wide,
    "long": shape_long,
    "form": shape_form,
    "transposed": shape_transposed,
    "stacked": shape_stacked,
    "subgroup_sheets": shape_subgroup_sheets,
    "group_headings": shape_group_headings,
    "merged_labels": shape_merged_labels,
    "ae_crosstab": shape_ae_crosstab,
}
#: Shapes kept in one sheet when the format holds one (a CSV): adverse events then left out, except where the
#: shape stacks them in the same sheet.
ONE_SHEET = {"wide": dict(with_ae=False), "long": dict(with_ae=False), "transposed": dict(with_ae=False),
             "group_headings": dict(with_ae=False), "stacked": {}}
#: The formats each shape is rendered in.
FORMATS: dict[str, tuple[str, ...]] = {
    "template": ("xlsx", "ods", "folder"),
    "wide": ("xlsx", "ods", "csv", "csv_eu", "tsv", "folder"),
    "long": ("xlsx", "csv", "tsv"),
    "form": ("xlsx", "ods", "folder"),
    "transposed": ("xlsx", "csv"),
    "stacked": ("xlsx", "csv_eu"),
    "subgroup_sheets": ("xlsx", "ods"),
    "group_headings": ("xlsx", "csv"),
    "merged_labels": ("xlsx",),
    "ae_crosstab": ("xlsx", "ods"),
}
COMBINATIONS: list[tuple[str, str]] = [(s, f) for s, fs in FORMATS.items() for f in fs]


# ---------------------------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------------------------
def _grid(sh: Sheet) -> list[list[Any]]:
    out = [[None] * sh.n_cols for _ in range(sh.n_rows)]
    for (r, c), v in sh.cells.items():
        out[r - 1][c - 1] = v
    return out


def write_xlsx(book: Book, path: Path) -> None:
    import openpyxl

    if book.template:
        from curation.schema import load_schema
        from curation.template import build_template, workbook_bytes

        wb = build_template(load_schema(SCHEMA_PATH))
        for sh in book.sheets:
            ws = wb[sh.title]
            for (r, c), v in sh.cells.items():
                if r > 1:
                    ws.cell(row=r, column=c, value=v)
        path.write_bytes(workbook_bytes(wb))
        return
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for sh in book.sheets:
        ws = wb.create_sheet(sh.title)
        for (r, c), v in sh.cells.items():
            ws.cell(row=r, column=c, value=v)
        for r0, c0, r1, c1 in sh.merges:
            ws.merge_cells(start_row=r0, start_column=c0, end_row=r1, end_column=c1)
    wb.save(path)


def write_ods(book: Book, path: Path) -> None:
    """OpenDocument via pandas' odf engine (merged areas become their top-left cell, as LibreOffice shows them
    to a reader that ignores merges)."""
    import pandas as pd

    with pd.ExcelWriter(path, engine="odf") as xw:
        for sh in book.sheets:
            pd.DataFrame(_grid(sh)).to_excel(xw, sheet_name=sh.title, header=False, index=False)


CSV_DIALECTS = {   # format -> (delimiter, encoding, decimal comma)
    "csv": (",", "utf-8-sig", False),
    "csv_eu": (";", "cp1252", True),
    "tsv": ("\t", "utf-8", False),
}


def _csv_text(v: Any, decimal_comma: bool) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        t = repr(v)
        t = t[:-2] if t.endswith(".0") else t
    else:
        t = str(v)
    if decimal_comma and not isinstance(v, int) and NUMERIC_TEXT.fullmatch(t):
        t = re.sub(r"(?<=\d)\.(?=\d)", ",", t)   # 32.6 -> 32,6; "30.9 (22.7–39.0)" -> "30,9 (22,7–39,0)"
    return t                                       # never in text: "RECIST 1.1" stays


#: A number, or a composite of numbers (``15 (32.6)``, ``30.9 (22.7–39.0)``): what a decimal comma applies to.
NUMERIC_TEXT = re.compile(r"[\d.\s()%–-]+")


def write_csv(book: Book, path: Path, fmt: str) -> None:
    assert len(book.sheets) == 1, "a CSV holds one sheet"
    delim, enc, comma = CSV_DIALECTS[fmt]
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator="\r\n")
    for row in _grid(book.sheets[0]):
        w.writerow([_csv_text(v, comma) for v in row])
    path.write_bytes(buf.getvalue().encode(enc))


# ---------------------------------------------------------------------------------------------------------------
# render: shape x format -> files on disk + the oracle
# ---------------------------------------------------------------------------------------------------------------
def _stem(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("_")


def render(shape: str, fmt: str, directory: Path, pick: Pick, rv: Review | None = None) -> Rendering:
    """Write ``rv`` (default :func:`review`) as ``shape`` in ``fmt`` under ``directory``; wordings from ``pick``."""
    rv = rv or review()
    directory.mkdir(parents=True, exist_ok=True)
    build = SHAPES[shape]
    books: list[tuple[str, Book]] = []
    headers: dict[str, str] = {}
    if fmt == "folder":
        folder = directory / f"{shape}_per_study"
        folder.mkdir(exist_ok=True)
        # one wording for the whole review: a team's per-study workbooks are copies of one blank form
        seed_words: dict[int, Any] = {}
        calls = [0]

        def same_pick(options: list[Any]) -> Any:
            i = calls[0]
            calls[0] += 1
            if i not in seed_words:
                seed_words[i] = pick(options)
            return seed_words[i] if seed_words[i] in options else options[0]

        for sid in rv.studies:
            calls[0] = 0
            book, headers = build(rv.only(sid), same_pick)
            books.append((f"{_stem(rv.label(sid))}.xlsx", book))
        target = folder
    else:
        one_sheet = fmt in CSV_DIALECTS
        if one_sheet:
            assert shape in ONE_SHEET, f"{shape} is not a one-sheet shape"
            book, headers = build(rv, pick, **ONE_SHEET[shape])
        else:
            book, headers = build(rv, pick)
        ext = {"xlsx": "xlsx", "ods": "ods", "csv": "csv", "csv_eu": "csv", "tsv": "tsv"}[fmt]
        name = f"{shape}_{fmt}.{ext}"
        books.append((name, book))
        target = directory / name
    cells: dict[tuple[str, str, int, str], Holds] = {}
    tables: set[str] = set()
    for name, book in books:
        for sh in book.sheets:
            sheet_name = Path(name).stem if fmt in CSV_DIALECTS else sh.title
            for (r, c), h in sh.holds.items():
                cells[(name, sheet_name, r, letter(c))] = h
                tables.add(h.table)
        path = (target if fmt != "folder" else target / name)
        if fmt in ("xlsx", "folder"):
            write_xlsx(book, path)
        elif fmt == "ods":
            write_ods(book, path)
        else:
            write_csv(book, path, fmt)
    order = ("studies", "outcomes", "adverse_events")
    return Rendering(target, shape, fmt, tuple(t for t in order if t in tables), cells, headers)


# ---------------------------------------------------------------------------------------------------------------
# What a reading gives, in the rendering's own terms: clean values per record, findings per record
# ---------------------------------------------------------------------------------------------------------------
NOT_COMPARED = {"study_id", "file", "sheet", "row", "extractor"}


def _value(v: Any) -> Any:
    if v is None:
        return None
    try:
        if v != v:   # NaN, pd.NA raises
            return None
    except (TypeError, ValueError):
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return round(float(v), 9)
    return str(v)


def clean_records(result: Any, rv: Review, tables: Iterable[str]) -> dict[tuple[str, RecordKey], dict[str, Any]]:
    """``(table, record) -> {field: value}`` of every row that passed, records identified by (first author, year)
    and the cohort or event, never by the reader's own study id. A row no record of the review matches is kept
    under a key that says so (it can then never equal the template's)."""
    out: dict[tuple[str, RecordKey], dict[str, Any]] = {}
    for table in tables:
        frame = result.clean_tables.get(table)
        if frame is None:
            continue
        for i, row in enumerate(frame.to_dict("records")):
            sid = rv.sid_of(row.get("first_author"), row.get("year"))
            if sid is None:
                sid = f"?{row.get('first_author')}|{row.get('year')}|{row.get('study_id')}"
            if table == "studies":
                key: RecordKey = (sid,)
            elif table == "outcomes":
                key = (sid, fold(row.get("cohort")))
            else:
                key = (sid, fold(row.get("ae_term")))
            values = {k: _value(v) for k, v in row.items() if k not in NOT_COMPARED}
            if table == "outcomes":
                values["cohort"] = fold(values.get("cohort"))
            k = (table, key)
            while k in out:   # a record read twice shows up as a second, marked copy
                k = (table, key + ("#dup",))
                key = key + ("#dup",)
            out[k] = values
    return out


def reader_study_ids(result: Any, rv: Review) -> dict[str, str]:
    """The reader's study id -> the review's study (through the first author and year it read)."""
    out: dict[str, str] = {}
    t = result.tables.get("studies")
    if t is None:
        return out
    for row in t.data[[c for c in ("study_id", "first_author", "year") if c in t.data]].to_dict("records"):
        sid = rv.sid_of(row.get("first_author"), row.get("year"))
        if sid is not None and row.get("study_id") is not None:
            out[str(row["study_id"])] = sid
    return out


def _normal_key(table: str, key: RecordKey) -> RecordKey:
    return key if table == "studies" else (key[0], fold(key[1]))


def data_findings(result: Any, rendering: Rendering, rv: Review) -> tuple[set[tuple], list[str]]:
    """The errors and warnings on data cells as ``(rule, severity, table, record, field)``, and the other errors
    and warnings (header, title or sheet level) as cited lines, for messages.

    A finding is put on its record through the cell it cites (the rendering's oracle); a row- or column-level
    finding through the records of that row or column, narrowed to its study when the row holds several."""
    ids = reader_study_ids(result, rv)
    found: set[tuple] = set()
    other: list[str] = []
    for f in result.finding_list:
        if f.severity not in ("error", "warning"):
            continue
        table = f.contract_sheet
        recs = rendering.records_at(f.file, f.sheet, f.row, f.column)
        recs = {(t, k) for t, k in recs if t == table} or recs
        if len(recs) > 1 and f.study_id is not None:
            sid = ids.get(str(f.study_id))
            recs = {(t, k) for t, k in recs if k[0] == sid} or recs
        if len(recs) > 1 and table in ("studies",):
            recs = {(t, k) for t, k in recs if t == "studies"} or recs
        if not recs:
            other.append(f"{f.rule} {f.severity} {f.cell or f.sheet} {f.field}: {f.message[:160]}")
            continue
        if len(recs) > 1:
            found.add((f.rule, f.severity, table, ("ambiguous", *sorted(str(k) for _, k in recs)), f.field))
            continue
        (t, k), = recs
        found.add((f.rule, f.severity, t, _normal_key(t, k), f.field))
    return found, other


def restrict(found: set[tuple], tables: Iterable[str]) -> set[tuple]:
    keep = set(tables)
    return {x for x in found if x[2] in keep}


def describe(r: Rendering) -> str:
    words = ", ".join(f"{k}={v!r}" for k, v in sorted(r.headers.items()))
    return f"{r.shape} as {r.fmt} ({r.path.name}); headers: {words}"


def _record_difference(k: tuple, a: dict, b: dict) -> str | None:
    if k not in b:
        return f"{k[1]} passed in the template, not here"
    if k not in a:
        return f"{k[1]} passed here, not in the template ({b[k]})"
    for fld in sorted(set(a[k]) | set(b[k])):
        x, y = a[k].get(fld), b[k].get(fld)
        if x != y and not (isinstance(x, float) and isinstance(y, float) and math.isclose(x, y, rel_tol=1e-9)):
            return f"{k[1]} {fld}: template {x!r}, this rendering {y!r}"
    return None


def differences(a: dict, b: dict) -> list[str]:
    """Per table, how many records of two ``clean_records`` maps differ and the first differing value."""
    out = []
    for table in ("studies", "outcomes", "adverse_events"):
        keys = sorted({k for k in set(a) | set(b) if k[0] == table}, key=str)
        diffs = [d for d in (_record_difference(k, a, b) for k in keys) if d]
        if diffs:
            out.append(f"{table}: {len(diffs)} of {len(keys)} records differ; first: {diffs[0]}")
    return out


def first_difference(a: dict, b: dict) -> str | None:
    """The first differing value between two ``clean_records`` maps, as a line (None when equal)."""
    d = differences(a, b)
    return d[0] if d else None

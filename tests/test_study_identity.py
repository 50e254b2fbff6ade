"""Study identity: ids keep every part of the label that tells studies apart; two different labels never
become one id silently (a study-id-clash error names both cells); the same label is the same study on
every sheet; a study_id column of 'Author (year)' labels gives first_author and year. Also the two
reading regressions of issue 18 (a composite median cell beside typed CI columns; 'OS 95% CI lower')."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.layout.identity import StudyLabel, check_clashes, label_id, parse_label, where_of
from curation.validation import validate


@pytest.mark.parametrize("text, expected", [
    ("Meriggi F 2017", "MeriggiF2017"),
    ("Murphy C 2017", "MurphyC2017"),
    ("Rascol (2022) - ALLY-LID I", "Rascol2022-ALLY-LID-I"),
    ("Rascol (2022) - ALLY-LID II", "Rascol2022-ALLY-LID-II"),
    ("van Kessel 2016", "vanKessel2016"),
    ("Bodei et al., 2011a", "Bodei2011a"),
    ("Bodei (2011)", "Bodei2011"),
    ("O'Brien (2019)", "OBrien2019"),
])
def test_ids_keep_what_tells_studies_apart(text, expected):
    assert label_id(parse_label(text)) == expected


def test_identifiers_are_not_labels():
    assert parse_label("BODEI2011") is None and parse_label("S01") is None and parse_label(2011) is None


def _form(path: Path, header: list, rows: list, title: str = "Data") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


HEADER = ["Author (year)", "Cohort", "N enrolled", "N evaluable", "CR", "PR", "SD", "PD"]


def test_initials_trials_and_particles_stay_distinct_studies(tmp_path):
    rows = [[label, "Overall", 40 + i, 40 + i, 1, 9, 20, 10 + i] for i, label in enumerate(
        ["Meriggi F 2017", "Murphy C 2017", "Rascol (2022) - ALLY-LID I", "Rascol (2022) - ALLY-LID II",
         "van Kessel 2016"])]
    res = validate(_form(tmp_path / "f.xlsx", HEADER, rows))
    ids = list(res.clean["study_id"])
    assert ids == ["MeriggiF2017", "MurphyC2017", "Rascol2022-ALLY-LID-I", "Rascol2022-ALLY-LID-II", "vanKessel2016"]
    assert list(res.clean["first_author"]) == ["Meriggi F", "Murphy C", "Rascol", "Rascol", "van Kessel"]
    assert not any(f.rule in ("duplicate-key", "study-id-clash") for f in res.finding_list)


def test_two_labels_one_id_is_an_error_naming_both_cells(tmp_path):
    rows = [["Meriggi F 2017", "Overall", 40, 40, 1, 9, 20, 10],
            ["MeriggiF 2017", "Overall", 50, 50, 1, 9, 20, 20]]
    res = validate(_form(tmp_path / "f.xlsx", HEADER, rows))
    clash = [f for f in res.finding_list if f.rule == "study-id-clash"]
    assert clash and all(f.severity == "error" and f.row == 3 for f in clash)
    assert "Data!A3" in clash[0].message and "Data!A2" in clash[0].message
    assert "'Meriggi F 2017'" in clash[0].message and "'MeriggiF 2017'" in clash[0].message
    # the second row is not read as the first one's study, on either contract sheet
    assert list(res.clean["study_id"]) == ["MeriggiF2017"] and list(res.clean["n_evaluable"]) == [40]


def test_a_subgroup_after_the_year_is_a_cohort_of_the_study(tmp_path):
    header = ["Author (year)", "N enrolled", "N evaluable", "CR", "PR", "SD", "PD"]
    rows = [["Unal (2023)", 100, 100, 1, 30, 40, 29], ["Unal (2023) - G3", 100, 40, 0, 10, 15, 15]]
    res = validate(_form(tmp_path / "f.xlsx", header, rows))
    assert set(res.clean["study_id"]) == {"Unal2023"}
    assert sorted(res.clean["cohort"]) == ["G3", "overall"]


def test_the_same_label_on_two_sheets_is_one_study(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Studies"
    ws.append(["Study", "First author", "Year", "N enrolled"])
    ws.append(["Meriggi F 2017", "Meriggi", 2017, 40])
    ws.append(["Murphy C 2017", "Murphy", 2017, 60])
    oc = wb.create_sheet("Outcomes")
    oc.append(["Study", "Cohort", "N evaluable", "CR", "PR", "SD", "PD"])
    oc.append(["Murphy C 2017", "Overall", 60, 1, 9, 30, 20])
    oc.append(["Meriggi F 2017", "Overall", 40, 1, 9, 20, 10])
    p = tmp_path / "f.xlsx"
    wb.save(p)
    res = validate(p)
    assert not any(f.rule == "unknown-study" for f in res.finding_list)
    assert sorted(res.clean["study_id"]) == ["MeriggiF2017", "MurphyC2017"]


def test_a_study_id_column_of_labels_gives_author_and_year(tmp_path):
    header = ["Study ID", "Cohort", "N enrolled", "N evaluable", "CR", "PR", "SD", "PD"]
    rows = [["Smith J (2019)", "Overall", 40, 40, 1, 9, 20, 10], ["Jones (2020)", "Overall", 50, 50, 2, 8, 20, 20]]
    res = validate(_form(tmp_path / "f.xlsx", header, rows))
    assert list(res.clean["study_id"]) == ["SmithJ2019", "Jones2020"]
    assert list(res.clean["first_author"]) == ["Smith J", "Jones"] and list(res.clean["year"]) == [2019, 2020]
    assert not any(f.rule == "missing-required" for f in res.finding_list)


# ------------------------------------------------------------------------------------------
# property: two different labels never silently share an id

SURNAME = st.from_regex(r"[A-Z][a-z]{1,6}", fullmatch=True)
PARTICLE = st.sampled_from(["", "van ", "de ", "van der ", "Van ", "di "])
INITIALS = st.sampled_from(["", " F", " C", " FJ", " A B", " Ch"])
REST = st.sampled_from(["", " - ALLY-LID I", " - ALLY-LID II", " - part 2", " STUDY-A"])


@st.composite
def labels(draw):
    author = draw(PARTICLE) + draw(SURNAME) + draw(INITIALS)
    year = draw(st.integers(1990, 2025))
    suffix = draw(st.sampled_from(["", "a", "b"]))
    form = draw(st.sampled_from(["{a} {y}{s}", "{a} ({y}{s})", "{a} et al., {y}{s}", "{a} et al. ({y}{s})"]))
    return form.format(a=author, y=year, s=suffix) + draw(REST)


@settings(max_examples=150, deadline=None)
@given(st.lists(labels(), min_size=2, max_size=8))
def test_distinct_labels_never_silently_share_an_id(texts):
    parsed = [parse_label(t) for t in texts]
    assert all(p is not None for p in parsed), texts
    sources = [(label_id(p), p.key, where_of(k + 2, "A", t)) for k, (p, t) in enumerate(zip(parsed, texts))]
    reported: list = []
    spelling: dict = {}
    clashed = check_clashes(sources, "Data", lambda *a: reported.append(a), "studies", spelling)
    kept: dict = {}
    for k, (sid, key, _w) in enumerate(sources):
        if k in clashed:
            continue
        sid = spelling.get(k, sid)
        # the same id (as a reviewer reads it, case aside) only for the same label
        assert kept.setdefault(sid.casefold(), key) == key, (texts, sid)
    assert len(reported) == len(clashed)
    # the same label, however written (spacing, brackets, et al.), is the same id
    for p, t in zip(parsed, texts):
        assert label_id(parse_label(t.replace(" et al.,", "").replace("(", "").replace(")", ""))).casefold() == \
            label_id(p).casefold() or p.rest, t


@settings(max_examples=100, deadline=None)
@given(SURNAME, SURNAME, st.integers(1990, 2025), INITIALS, INITIALS)
def test_different_surnames_or_initials_give_different_ids(a, b, year, ia, ib):
    la, lb = parse_label(f"{a}{ia} {year}"), parse_label(f"{b}{ib} {year}")
    if la.key != lb.key:
        assert label_id(la).casefold() != label_id(lb).casefold() or \
            (a + ia.replace(" ", "")).casefold() == (b + ib.replace(" ", "")).casefold()


def test_label_key_ignores_how_it_is_written():
    a, b = parse_label("Bodei et al. (2011)"), parse_label("BODEI 2011")
    assert a.key == b.key == StudyLabel("Bodei", "2011").key


# ------------------------------------------------------------------------------------------
# reading regressions (issue 18)

CI_HEADER = ["Study", "First author", "Year", "N", "Cohort", "N evaluable", "PFS median", "PFS CI low", "PFS CI high",
             "OS median", "OS 95% CI lower", "OS 95% CI upper"]


def _ci_rows(first: list) -> list:
    rows = [first]
    for i in range(2, 11):
        rows.append([f"S{i:02d}", f"Author{i}", 2010 + i, 40 + i, "overall", 40 + i, 20 + i, 15 + i, 25 + i, 30 + i,
                     20 + i, 40 + i])
    return rows


def test_a_composite_median_cell_does_not_make_the_ci_columns_ignored(tmp_path):
    first = ["S01", "Bodei", 2011, 51, "overall", 51, "30.9 (22.7–39.0)", None, None, 40, 30, 50]
    res = validate(_form(tmp_path / "f.xlsx", CI_HEADER, _ci_rows(first), "Extraction"))
    c = res.clean.set_index("study_id")
    assert c.loc["S05", "pfs_ci_low"] == 20 and c.loc["S05", "pfs_ci_high"] == 30  # every row's typed CI read
    assert c.loc["S01", "pfs_median"] == 30.9 and c.loc["S01", "pfs_ci_low"] == 22.7 and c.loc["S01", "pfs_ci_high"] == 39
    assert c.loc["S03", "os_ci_low"] == 23 and c.loc["S03", "os_ci_high"] == 43  # 'OS 95% CI lower/upper' placed
    assert not any(f.rule in ("duplicate-column", "unplaced-column") for f in res.finding_list)


def test_a_composite_cell_is_cross_checked_against_the_typed_ci(tmp_path):
    first = ["S01", "Bodei", 2011, 51, "overall", 51, "30.9 (22.7–39.0)", 21.0, None, 40, 30, 50]
    res = validate(_form(tmp_path / "f.xlsx", CI_HEADER, _ci_rows(first), "Extraction"))
    c = res.clean.set_index("study_id")
    assert c.loc["S01", "pfs_ci_low"] == 21 and c.loc["S01", "pfs_ci_high"] == 39  # typed read, empty filled
    mism = [f for f in res.finding_list if f.rule == "combined-ci-mismatch"]
    assert len(mism) == 1 and mism[0].severity == "warning" and mism[0].cell == "Extraction!H2"
    assert mism[0].message.count("Extraction!G2") == 1 and mism[0].message.count("Extraction!H2") == 1


# ------------------------------------------------------------------------------------------
# one derivation of a study's id wherever its label is read (held-out report, item 4)

@pytest.mark.parametrize("text", ["Meriggi F 2017", "Brabander T 2017", "van Kessel 2016", "van der Zwan WA (2019)",
                                  "Rascol (2022) - ALLY-LID II", "Bodei et al., 2011a"])
def test_a_label_gives_one_id_in_a_column_a_sheet_name_and_a_crosstab_head(text):
    from curation.layout.crosstab import parse_head
    from curation.layout.form import study_from_title
    from curation.layout.identity import study_of_label

    expected = label_id(parse_label(text))
    assert study_of_label(text)["study_id"] == expected
    assert study_from_title(text)["study_id"] == expected  # a form sheet named after the study
    head = parse_head(f"{text} (N=610) Grade 3-4")
    if head is not None and parse_label(text).rest == "":  # a head's study part ends at the year
        assert study_of_label(head[0])["study_id"] == expected


def test_study_of_label_keeps_plain_ids_and_refuses_non_labels():
    from curation.layout.identity import study_of_label

    assert study_of_label("Bodei2011") == {"first_author": "Bodei", "year": "2011", "study_id": "Bodei2011"}
    assert study_of_label("Adverse events") == {} and study_of_label("S01") == {} and study_of_label(None) == {}


def test_a_crosstab_head_with_initials_keeps_the_surname_as_the_study_column_does(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Studies"
    ws.append(["Study", "N enrolled"])
    ws.append(["Brabander T 2017", 610])
    ws.append(["Kobayashi N 2021", 6])
    tox = wb.create_sheet("Toxicity")
    tox.append(["Adverse event", "Brabander T 2017 (N=610) Grade 3-4", "Kobayashi N 2021 (N=6) Grade 3-4"])
    tox.append(["Thrombocytopenia", 26, 1])
    tox.append(["Anaemia", 14, 0])
    p = tmp_path / "ae.xlsx"
    wb.save(p)
    res = validate(p)
    assert not [f for f in res.finding_list if f.rule in ("unknown-study", "study-id-clash")], \
        [(f.rule, f.message) for f in res.finding_list if f.severity == "error"]
    assert sorted(res.tables["studies"].data["study_id"]) == ["BrabanderT2017", "KobayashiN2021"]
    ae = res.tables["adverse_events"].data.set_index(["study_id", "ae_term"])
    assert ae.loc[("BrabanderT2017", "thrombocytopenia"), "grade3plus_n"] == 26
    assert ae.loc[("KobayashiN2021", "thrombocytopenia"), "grade3plus_n"] == 1
    assert set(ae.index.get_level_values(0)) == {"BrabanderT2017", "KobayashiN2021"}


# ------------------------------------------------------------------------------------------
# a value typed in a column named for the field wins over one derived from a label (held-out report, item 5)

def test_typed_author_and_year_columns_beat_the_study_label_and_are_cross_checked(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Studies"
    ws.append(["Study", "First author", "Publication year", "N enrolled"])
    ws.append(["Brabander T 2017", "Brabander", 2017, 610])
    ws.append(["van der Zwan WA 2019", "van der Zwan", 2019, 181])
    ws.append(["Meriggi F 2017", "Murphy", 2017, 40])       # the typed author is another study's
    ws.append(["Strosberg J 2017", "Strosberg", 2018, 116])  # the typed year is not the label's
    ws.append(["Bodei L 2011", None, None, 51])              # nothing typed: the label gives them
    oc = wb.create_sheet("Outcomes")
    oc.append(["Study", "Cohort", "N evaluable", "CR", "PR", "SD", "PD"])
    for label, n in (("Brabander T 2017", 443), ("van der Zwan WA 2019", 181), ("Meriggi F 2017", 40),
                     ("Strosberg J 2017", 101), ("Bodei L 2011", 51)):
        oc.append([label, "Overall", n, 1, 9, 20, n - 30])
    p = tmp_path / "f.xlsx"
    wb.save(p)
    res = validate(p)
    st_ = res.tables["studies"].data.set_index("study_id")
    assert list(st_.index) == ["BrabanderT2017", "vanderZwanWA2019", "MeriggiF2017", "StrosbergJ2017", "BodeiL2011"]
    assert list(st_["first_author"]) == ["Brabander", "van der Zwan", "Murphy", "Strosberg", "Bodei L"]
    assert [int(y) for y in st_["year"]] == [2017, 2019, 2017, 2018, 2011]
    assert not [f for f in res.finding_list if f.rule in ("duplicate-column", "unread-data")], \
        [(f.rule, f.message) for f in res.finding_list if f.rule in ("duplicate-column", "unread-data")]
    conflict = sorted((f.row, f.column, f.field, f.severity) for f in res.finding_list if f.rule == "label-conflict")
    assert conflict == [(4, "B", "first_author", "warning"), (5, "C", "year", "warning")]
    msg = next(f.message for f in res.finding_list if f.rule == "label-conflict" and f.row == 4)
    assert "Studies!B4" in msg and "Studies!A4" in msg and "'Murphy'" in msg and "'Meriggi F'" in msg
    assert not [f for f in res.finding_list if f.rule == "unknown-study"]
    # the layout file records the choice (the label column keeps only the id and cohort parts)
    from curation.layout import map_form
    from curation.schema import load_schema

    lay = map_form(p, load_schema(Path(__file__).resolve().parents[1] / "schemas" / "prrt_177lu.yaml"))
    studies = next(s for s in lay.sheets if s.sheet == "Studies")
    label_col = next(c for c in studies.columns if c.column == "A")
    assert label_col.kind == "author_year" and set(label_col.parts) == {"id", "cohort"}


def test_a_study_id_column_of_labels_beside_typed_author_is_cross_checked(tmp_path):
    header = ["Study ID", "First author", "Year", "Cohort", "N enrolled", "N evaluable", "CR", "PR", "SD", "PD"]
    rows = [["Smith J (2019)", "Smith", 2019, "Overall", 40, 40, 1, 9, 20, 10],
            ["Jones (2020)", "Brown", 2020, "Overall", 50, 50, 2, 8, 20, 20]]
    res = validate(_form(tmp_path / "f.xlsx", header, rows))
    assert list(res.clean["study_id"]) == ["SmithJ2019", "Jones2020"]
    assert list(res.clean["first_author"]) == ["Smith", "Brown"]  # typed, not the label's
    conflict = [f for f in res.finding_list if f.rule == "label-conflict"]
    assert [(f.row, f.column, f.field, f.severity) for f in conflict] == [(3, "B", "first_author", "warning")]
    assert "Data!B3" in conflict[0].message and "Data!A3" in conflict[0].message

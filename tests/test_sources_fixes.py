"""The source check's fixes found on the worked example (curation/sources_example.py), each on its own article
written here: numbers inside names are never printed figures, "not reached" is a printed median, a subgroup's figure
is found next to the subgroup's words, and an abstract's transposed digits against a table are an inconsistency."""

from __future__ import annotations

import pytest

from sources_articles import write_jats


def _prep(tmp_path, abstract, sections, table=None):
    from curation.sources.cache import read_cached
    from curation.sources.match import prepare

    path = write_jats(tmp_path / "a.nxml", doi="10.5555/fixes", abstract=abstract, sections=sections, table=table)
    art, _ = read_cached(path, False)
    assert art.problem is None
    return prepare(art)


def _judge(prep, value, terms, role="value", kind="number", **kw):
    from curation.sources.match import Want, judge
    from curation.sources.numbers import decimals_of

    want_kw = {k: kw.pop(k) for k in ("percent_unit", "not_reached") if k in kw}
    return judge([prep], value, terms, Want(role, kind, **want_kw), fdec=decimals_of(value), **kw)


@pytest.mark.parametrize("text,names", [
    ("Ki-67 index", ["67"]), ("G1-2 NET", ["2"]), ("177Lu-DOTATATE", ["177"]), ("[177Lu]Lu-DOTA-TATE", ["177"]),
    ("68Ga-DOTATOC PET", ["68"]), ("COVID-19", ["19"]), ("NETTER-1", ["1"]), ("grade 3-4 events", ["3", "4"]),
    ("grades 3 and 4", ["3", "4"]), ("CTCAE version 4.03", ["4.03"]), ("RECIST 1.1", ["1.1"]),
    ("as reported [12] and [3, 7-9]", ["12", "3", "7", "9"]), ("(Table 2)", ["2"]), ("Fig. 3", ["3"]),
    ("18F-FDG", ["18"]), ("5-FU", ["5"])])
def test_numbers_inside_names_are_names(text, names):
    from curation.sources.normalise import normalise
    from curation.sources.numbers import find_numbers

    got = find_numbers(normalise(text)[0])
    assert [n.printed for n in got if n.role == "name"] == names
    assert all(n.role == "name" for n in got), got


@pytest.mark.parametrize("text,figures", [
    ("median 4 [3-6] cycles", ["4", "3", "6"]), ("in 9 of 52 patients (17.3%)", ["9", "52", "17.3"]),
    ("n = 24", ["24"]), ("7.4GBq", ["7.4"]), ("Table 2 gives 24 patients", ["24"]), ("HR 0.72", ["0.72"])])
def test_figures_beside_names_stay_figures(text, figures):
    from curation.sources.normalise import normalise
    from curation.sources.numbers import find_numbers

    assert [n.printed for n in find_numbers(normalise(text)[0]) if n.role != "name"] == figures


METHODS = ("Between 2014 and 2017, 52 patients with progressive pancreatic NET (G1–2, highest Ki-67 index 18%) were "
           "enrolled. They received 177Lu-DOTATOC.")


def test_ki67_is_not_the_number_67_and_the_enrolled_count_is_found(tmp_path):
    prep = _prep(tmp_path, ["A made-up trial."], [("Methods", [METHODS])])
    j = _judge(prep, 52, ("enrolled", "included"), kind="integer")
    assert j.status == "found" and j.place.printed == "52", j
    j = _judge(prep, 67, ("enrolled", "included"), kind="integer")  # the 67 of Ki-67 is no count of patients
    assert j.status != "found", j


def test_ki67_slip_quotes_the_printed_index_not_a_grade(tmp_path):
    prep = _prep(tmp_path, ["A made-up trial."], [("Methods", [METHODS])])
    terms = ("Ki-67", "Ki67", "Ki-67 index")
    j = _judge(prep, 8, terms, percent_unit=True)
    assert j.status == "mismatch" and j.place.printed == "18%", j
    assert _judge(prep, 18, terms, percent_unit=True).status == "found"


OS_ABSTRACT = ["Median progression-free survival was 22.1 months (95% CI 17.0–27.9); median overall survival was not "
               "reached."]
OS_TERMS = ("overall survival", "OS", "median OS")


def test_not_reached_is_the_printed_median(tmp_path):
    prep = _prep(tmp_path, OS_ABSTRACT, [("Results", ["After a median follow-up of 30.5 months, median OS was not "
                                                       "reached."]),
                                         ("Discussion", ["In another series, median overall survival was 41.2 "
                                                         "months."])])
    j = _judge(prep, 41.2, OS_TERMS, not_reached=True)
    assert j.status == "mismatch" and j.place.printed == "not reached", j
    # without the flag the PFS figure before the semicolon is still not quoted as the OS
    j = _judge(prep, 41.2, OS_TERMS)
    assert j.status != "mismatch" or j.place.printed != "22.1", j
    from curation.sources.match import Want, judge_not_reached

    assert judge_not_reached([prep], OS_TERMS, Want("value", "number", not_reached=True)).status == "found"
    prep2 = _prep(tmp_path, ["Median overall survival was 39.8 months."], [("Results", ["Nothing else."])])
    j = judge_not_reached([prep2], OS_TERMS, Want("value", "number", not_reached=True))
    assert j.status == "mismatch" and j.place.printed == "39.8", j


RESULTS = ("Sixty of the 64 patients were evaluable for response: 13 of 60 had a partial response (21.7%). Table 2 "
           "gives the results overall and for the 24 patients with a pancreatic primary.")


def test_subgroup_figure_is_found_next_to_the_subgroups_words(tmp_path):
    prep = _prep(tmp_path, ["A made-up trial."], [("Results", [RESULTS])])
    terms = ("evaluable", "assessable")
    assert _judge(prep, 24, terms, kind="integer", cohort=("pancre",)).status == "found"
    assert _judge(prep, 60, terms, kind="integer").status == "found"
    # the whole study's row: 24 is not its evaluable count
    assert _judge(prep, 24, terms, kind="integer").status == "mismatch"
    # a subgroup slip is still a mismatch
    assert _judge(prep, 42, terms, kind="integer", cohort=("pancre",)).status == "mismatch"


def test_abstract_transposed_digits_against_the_table_are_inconsistent(tmp_path):
    prep = _prep(tmp_path, ["The objective response rate was 27.1% and the disease control rate 76.7%."],
                 [("Results", ["Thirteen patients had a partial response."])],
                 table=("Table 2", "Best response", ["Outcome", "Overall"],
                        [["Objective response rate, %", "21.7"], ["Disease control rate, %", "76.7"]]))
    terms = ("objective response rate", "objective response", "ORR")
    j = _judge(prep, 21.7, terms, kind="percentage")
    assert j.status == "inconsistent-source", j
    assert j.other.printed.startswith("27.1")
    assert _judge(prep, 76.7, ("disease control rate",), kind="percentage").status == "found"


def test_a_transposition_is_the_articles_slip_only_at_the_same_precision():
    from curation.sources.match import _slip_of
    from curation.sources.normalise import normalise
    from curation.sources.numbers import find_numbers

    def num(t):
        return find_numbers(normalise(t)[0])[0]

    assert _slip_of(21.7, 1, num("27.1%"))
    assert _slip_of(24.6, 1, num("26.4"))
    assert not _slip_of(21.7, 1, num("21.7"))
    assert not _slip_of(21.7, 1, num("27.10"))
    assert not _slip_of(21.7, 1, num("31.2"))


def test_form_nr_median_is_found_where_the_article_says_not_reached(tmp_path):
    from builders import good_outcome, good_study, write_form
    from curation.sources import verify

    d = tmp_path / "sources"
    d.mkdir()
    write_jats(d / "s01.nxml", doi="10.1056/NEJMoa1607427", surname="Strosberg",
               abstract=["Of 116 patients enrolled, 101 were evaluable. Median progression-free survival was 28.4 "
                         "months (95% CI 19.4–35.8); median overall survival was not reached."],
               sections=[("Results", ["Median OS was not reached at the data cut-off."])])
    form = write_form(tmp_path / "form.xlsx", [good_study()],
                      [good_outcome(os_median="NR", os_ci_low=None, os_ci_high=None)], [])
    _, ver = verify(form, d, cache_dir=False)
    by = {e.field: e for e in ver.entries}
    assert by["os_median"].status == "found" and by["os_median"].printed == "not reached", by["os_median"]
    assert by["pfs_median"].status == "found"
    form = write_form(tmp_path / "form2.xlsx", [good_study()], [good_outcome(os_median=41.2, os_ci_low=None,
                                                                            os_ci_high=None)], [])
    _, ver = verify(form, d, cache_dir=False)
    e = [e for e in ver.entries if e.field == "os_median"][0]
    assert e.status == "mismatch" and e.printed == "not reached", e
    assert any(f.rule == "source-mismatch" and f.field == "os_median" and "not reached" in f.message
               for f in ver.findings)


def test_subgroup_slip_quotes_the_subgroups_printed_value(tmp_path):
    prep = _prep(tmp_path, ["A made-up trial."],
                 [("Results", ["Sixty patients were evaluable overall: 13 of 60 had a partial response. In the "
                               "pancreatic subgroup, 24 patients were evaluable."])])
    j = _judge(prep, 42, ("evaluable",), kind="integer", cohort=("pancre",))
    assert j.status == "mismatch" and j.place.printed == "24", j
    assert _judge(prep, 24, ("evaluable",), kind="integer", cohort=("pancre",)).status == "found"


def test_labels_keep_their_limits():
    """Only small whole numbers after grade/arm/cohort words are labels: "the control arm 45 patients" keeps 45."""
    from curation.sources.normalise import normalise
    from curation.sources.numbers import find_numbers

    roles = {n.printed: n.role for n in find_numbers(normalise("in the control arm 45 patients; grade 3 in 12; "
                                                               "stage 4")[0])}
    assert roles == {"45": "estimate", "3": "name", "12": "estimate", "4": "name"}

"""One truth, many renderings (issue 18, "Done when"): every shape and file format of the same review reads as the
template does.

``tests/renderings.py`` renders one small 177Lu-PRRT review, with the same planted slips, in every shape of the
layout contract (shared spec ``layouts.md`` v2) and in every file format it names, header wordings drawn at random
(hypothesis) from each field's key, aliases and synonyms in the schema. For each shape x format:

* :func:`test_every_rendering_reads_as_the_template`: ``validate`` (the function ``curate validate`` calls), with
  no layout options, gives the same clean data (every value of every record that passed: study, cohort, adverse
  event) and the same errors and warnings on data cells (rule, severity, record, field; the cells themselves differ
  by shape) as the template rendering;
* :func:`test_map_then_layout_gives_the_same_findings`: ``curate map`` then ``curate validate --layout`` reports
  exactly what ``curate validate`` inferred on its own (cell by cell).

``XFAIL`` below is the one table of combinations the reader does not read yet: strict, so a combination that starts
to pass fails the suite until its entry is removed. The integrator flips entries as the reader learns shapes;
nothing else in this file may be weakened to make a rendering pass.
"""

from __future__ import annotations

import json
import os
import random
import re
import zlib

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from renderings import (AE_FIELDS, COMBINATIONS, NUMERIC_TEXT, OUTCOME_FIELDS, SCHEMA_PATH, SLIP_RULES, SLIPS,
                        STUDY_FIELDS, author_year, clean_records, data_findings, describe, differences, fold,
                        median_ci, n_pct, read_back, render, restrict, review, truth_value)

# ---------------------------------------------------------------------------------------------------------------
# (test, shape, format) -> why it fails today. "same": test_every_rendering_reads_as_the_template;
# "map": test_map_then_layout_gives_the_same_findings. Strict: remove an entry when its combination passes.
# ---------------------------------------------------------------------------------------------------------------
_ODS = ".ods refused (exit 2: 'is an OpenDocument spreadsheet')"
_TEXT = ".csv/.tsv refused (exit 2: 'is a CSV/text file')"
_AE_LINK = ("adverse-event rows named by author and year (no study id column) are not linked to their study: "
            "missing-required study_id, every AE row excluded")
XFAIL: dict[tuple[str, str, str], str] = {
}

#: The template's own rendering is the reference (read by the ``truth`` fixture), so it is not compared with itself.
SAME_COMBINATIONS = [c for c in COMBINATIONS if c != ("template", "xlsx")]
#: ``curate map`` reads one workbook: each shape as .xlsx, and the one-sheet shapes as text.
MAP_COMBINATIONS = [(s, f) for s, f in COMBINATIONS if f == "xlsx"] + [("wide", "csv"), ("form", "ods")]
#: Deterministic by default (the XFAIL table must not flip between runs); RENDERINGS_RANDOM=1 draws new wordings
#: on every run, RENDERINGS_EXAMPLES=N draws N per combination (default 2).
RANDOM = os.environ.get("RENDERINGS_RANDOM", "") not in ("", "0")
EXAMPLES = int(os.environ.get("RENDERINGS_EXAMPLES", "2"))


def _params(test: str, combos: list[tuple[str, str]]) -> list:
    out = []
    for shape, fmt in combos:
        reason = XFAIL.get((test, shape, fmt))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(shape, fmt, marks=marks, id=f"{shape}-{fmt}"))
    return out


_SCHEMA: dict = {}


def _schema():
    if not _SCHEMA:
        from curation.schema import load_schema

        _SCHEMA["s"] = load_schema(SCHEMA_PATH)
    return _SCHEMA["s"]


def _validate(path):
    """The library's validate, no layout options; a refusal (exit 2 on the command line) fails with its line."""
    from curation.errors import UnusableInputError
    from curation.validation import validate

    try:
        return validate(path, _schema(), jobs=1)
    except UnusableInputError as exc:
        pytest.fail(f"refused (exit 2): {exc}")


def _first(options):
    return options[0]


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """The template rendering as read: clean records and findings on data cells (the reference)."""
    rv = review()
    r = render("template", "xlsx", tmp_path_factory.mktemp("truth"), _first, rv)
    result = _validate(r.path)
    clean = clean_records(result, rv, r.tables)
    found, other = data_findings(result, r, rv)
    # never vacuous: each planted slip is reported on its record and field, and excludes it where it is an error
    for (table, key, fld), family in SLIP_RULES.items():
        nkey = key if table == "studies" else (key[0], fold(key[1]))
        hits = [x for x in found if x[2] == table and x[3] == nkey and family in x[0]]
        assert hits, f"slip {SLIPS[(table, key, fld)][1]!r} not reported by the template rendering: {sorted(found)}"
    # scoped selection: a row with an error stays in the clean data for the analyses the error does not concern,
    # never in those it does (the misspelt grade keeps it out of the by-grade analyses)
    strosberg = clean.get(("outcomes", ("STROSBERG2017", "overall")))
    assert strosberg is None or not all(v for k, v in strosberg.items() if k.startswith("in_")), \
        "a row with an error passed into every analysis"
    assert strosberg is None or strosberg.get("in_orr_by_grade") is False, "the misspelt grade entered by-grade"
    assert len(clean) >= 12, f"too little clean data to compare: {sorted(clean)}"
    return _Truth(rv, clean, found, result.exit_code(), tuple(other))


class _Truth(tuple):
    """(review, clean records, findings on data cells, exit code, other errors and warnings) of the template
    rendering; a short repr, for hypothesis' report of a failing example."""

    def __new__(cls, *items):
        return super().__new__(cls, items)

    def __repr__(self) -> str:
        return "<the template rendering's reading>"


def test_the_template_rendering_has_no_finding_but_its_slips(truth):
    """A filled ``curate template`` form reports its slips and nothing off its data cells (its instructions and
    lists sheets are the template's own)."""
    assert not truth[4], f"the template rendering has errors or warnings off its data cells: {list(truth[4])}"


def _compare(truth, r, result) -> None:
    rv, clean0, found0, code0, _ = truth
    clean = clean_records(result, rv, r.tables)
    found, other = data_findings(result, r, rv)
    base_clean = {k: v for k, v in clean0.items() if k[0] in r.tables}
    base_found = restrict(found0, r.tables)
    problems = []
    missing, extra = sorted(base_found - found, key=str), sorted(found - base_found, key=str)
    if missing or extra:
        problems.append(f"findings on data cells differ:\n  only the template's: {missing}\n  only this one's: {extra}")
    diffs = differences(base_clean, clean)
    if diffs:
        problems.append("clean data differ:\n  " + "\n  ".join(diffs))
    false_errors = [o for o in other if o.split(" ", 2)[1] == "error"]
    if false_errors:   # the template has none: an error off the data cells is a false error
        problems.append(f"errors off the data cells (header, title or sheet level): {false_errors[:6]}")
    if problems:
        notes = f"\n  other errors/warnings: {other[:8]}" if other else ""
        pytest.fail(f"{describe(r)}\n" + "\n".join(problems) + notes)


def _property(shape, fmt, data, truth, tmp_path_factory) -> None:
    calls = iter(range(10_000))

    def pick(options):
        # rotated by a fixed amount per combination and draw: hypothesis' first (simplest) example then words
        # each combination differently instead of always taking each field's key
        options = list(options)
        k = zlib.crc32(f"{shape}/{fmt}/{next(calls)}".encode()) % len(options)
        return data.draw(st.sampled_from(options[k:] + options[:k]))

    r = render(shape, fmt, tmp_path_factory.mktemp(f"{shape}_{fmt}"), pick, truth[0])
    _compare(truth, r, _validate(r.path))


_SETTINGS = dict(deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate], database=None,
                 derandomize=not RANDOM, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])


@pytest.mark.parametrize(("shape", "fmt"), _params("same", [c for c in SAME_COMBINATIONS if c[1] == "xlsx"]))
@settings(max_examples=EXAMPLES, **_SETTINGS)
@given(data=st.data())
def test_every_rendering_reads_as_the_template(shape, fmt, data, truth, tmp_path_factory):
    """The same review, in this shape (as .xlsx) with random header wordings, gives the template's clean data and
    the template's errors and warnings on data cells."""
    _property(shape, fmt, data, truth, tmp_path_factory)


@pytest.mark.parametrize(("shape", "fmt"), _params("same", [c for c in SAME_COMBINATIONS if c[1] != "xlsx"]))
@settings(max_examples=max(1, EXAMPLES - 1), **_SETTINGS)
@given(data=st.data())
def test_every_format_reads_as_the_template(shape, fmt, data, truth, tmp_path_factory):
    """The same, for the other file formats of each shape (.ods, .csv, .tsv, a folder of one workbook per study):
    fewer examples each, the wordings being exercised above."""
    _property(shape, fmt, data, truth, tmp_path_factory)


# ---------------------------------------------------------------------------------------------------------------
# curate map, then --layout
# ---------------------------------------------------------------------------------------------------------------
_RUNNER: dict = {}


def _cli(*args: str):
    if not _RUNNER:
        from click.testing import CliRunner

        from curation.cli import main

        _RUNNER.update(runner=CliRunner(), main=main)
    return _RUNNER["runner"].invoke(_RUNNER["main"], [str(a) for a in args])


def _json_findings(path, tmp, *extra):
    out = tmp / "out.json"
    out.unlink(missing_ok=True)
    res = _cli("validate", path, "--schema", SCHEMA_PATH, "--json", out, *extra)
    assert res.exit_code in (0, 1) and out.exists(), f"validate {' '.join(map(str, extra))}: exit {res.exit_code}\n" \
                                                      f"{res.output[-600:]}"
    doc = json.loads(out.read_text(encoding="utf-8"))
    keys = {(f.get("file"), f.get("sheet"), f.get("row"), f.get("column"), f.get("field"), f.get("rule"),
             f.get("severity")) for f in doc["findings"] if f.get("severity") in ("error", "warning")}
    return res.exit_code, keys


@pytest.mark.parametrize(("shape", "fmt"), _params("map", MAP_COMBINATIONS))
def test_map_then_layout_gives_the_same_findings(shape, fmt, tmp_path):
    """``curate map`` writes the layout it inferred; validating with it gives the same errors and warnings, cell
    by cell, and the same exit code."""
    r = render(shape, fmt, tmp_path / "form", random.Random(f"{shape}/{fmt}").choice)
    layout = tmp_path / "LAYOUT.yaml"
    res = _cli("map", r.path, "--schema", SCHEMA_PATH, "-o", layout)
    assert res.exit_code == 0 and layout.exists(), f"{describe(r)}\ncurate map: exit {res.exit_code}\n" \
                                                    f"{res.output[-600:]}"
    code_a, inferred = _json_findings(r.path, tmp_path)
    code_b, given_ = _json_findings(r.path, tmp_path, "--layout", layout)
    assert inferred == given_ and code_a == code_b, (
        f"{describe(r)}\nonly inferred: {sorted(inferred - given_, key=str)}\n"
        f"only with --layout: {sorted(given_ - inferred, key=str)}\nexit {code_a} vs {code_b}")


# ---------------------------------------------------------------------------------------------------------------
# The generator itself: every value is written, where the oracle says, as it says
# ---------------------------------------------------------------------------------------------------------------
#: Values a shape gives by a label, not a cell of their own: a group heading (``primary_site``), a cross-tab's row
#: label and column head (the event, the safety population).
LABEL_VALUES = {"group_headings": {("outcomes", "primary_site")},
                "ae_crosstab": {("adverse_events", "ae_term"), ("adverse_events", "n_safety")}}


def _expected_text(rv, h) -> str:
    v = [truth_value(rv, h.table, h.key, f) for f in h.fields]
    if h.fields == ("first_author", "year"):
        return author_year(*v)
    if h.fields == ("orr_n", "orr_pct"):
        return str(n_pct(*v))
    if len(h.fields) == 3:
        return str(median_ci(*v))
    return str(v[0])


def _same(written, expected: str) -> bool:
    text = "" if written is None else str(written)
    if NUMERIC_TEXT.fullmatch(text.replace(",", ".")):   # decimal commas, in numbers only ("RECIST 1.1" stays)
        text = re.sub(r"(?<=\d),(?=\d)", ".", text)
    try:
        return float(text) == float(expected)
    except ValueError:
        return text == expected


@pytest.mark.parametrize(("shape", "fmt"), [pytest.param(s, f, id=f"{s}-{f}") for s, f in COMBINATIONS
                                             if s != "template" or f == "xlsx"])   # the template's: slow, as xlsx
def test_generator_writes_every_value_where_its_oracle_says(shape, fmt, tmp_path):
    """Each cell the oracle names holds what it says (read back with python-calamine or the csv module), and every
    value of the review is written somewhere (or given by a label: a sheet name, a heading, a column head)."""
    rv = review()
    r = render(shape, fmt, tmp_path, random.Random(f"gen/{shape}/{fmt}").choice, rv)
    grids = read_back(r.path, fmt)
    for (file, sheet, row, col), h in r.cells.items():
        grid = grids[(file, sheet)]
        c = sum((ord(ch) - 64) * 26 ** i for i, ch in enumerate(reversed(col))) - 1
        written = grid[row - 1][c] if row - 1 < len(grid) and c < len(grid[row - 1]) else None
        assert _same(written, _expected_text(rv, h)), (file, sheet, f"{col}{row}", h, written)
    covered = {(h.table, h.key if h.table == "studies" else h.key, f) for h in r.cells.values() for f in h.fields}
    fields = {"studies": STUDY_FIELDS, "outcomes": ["cohort", *OUTCOME_FIELDS], "adverse_events": ["ae_term", *AE_FIELDS]}
    keys = {"studies": [(k,) for k in rv.studies], "outcomes": list(rv.cohorts), "adverse_events": list(rv.adverse_events)}
    for table in r.tables:
        for key in keys[table]:
            for f in fields[table]:
                if (table, f) in LABEL_VALUES.get(shape, set()) or truth_value(rv, table, key, f) is None:
                    continue
                assert (table, key, f) in covered, f"{shape}/{fmt}: {table} {key} {f} is written nowhere"
    expected_tables = {"studies", "outcomes"} | ({"adverse_events"} if fmt not in ("csv", "csv_eu", "tsv")
                                                 or shape == "stacked" else set())
    assert set(r.tables) == expected_tables


def test_the_comparison_sees_a_value_misread_and_a_slip_unreported(truth, tmp_path):
    """The property can fail: a rendering of the template's shape whose one value differs (as a misreading would
    give it) differs in clean data, and one without a slip differs in findings."""
    import dataclasses

    rv = truth[0]
    misread = dataclasses.replace(rv, cohorts={k: dict(v) for k, v in rv.cohorts.items()})
    misread.cohorts[("THANG2018", "overall")]["os_median"] = 20
    r = render("template", "xlsx", tmp_path / "misread", _first, misread)
    with pytest.raises(pytest.fail.Exception, match=r"os_median: template 19\.0, this rendering 20\.0"):
        _compare(truth, r, _validate(r.path))
    unslipped = dataclasses.replace(rv, cohorts={k: dict(v) for k, v in rv.cohorts.items()})
    unslipped.cohorts[("UNAL2023", "G1-2")]["pd"] = 12
    r = render("template", "xlsx", tmp_path / "unslipped", _first, unslipped)
    with pytest.raises(pytest.fail.Exception, match=r"only the template's: \[\('response-sum-mismatch'"):
        _compare(truth, r, _validate(r.path))

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
import zlib

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from renderings import (COMBINATIONS, SCHEMA_PATH, SLIP_RULES, SLIPS, clean_records, data_findings, describe,
                              differences, fold, render, restrict, review)

# ---------------------------------------------------------------------------------------------------------------
# (test, shape, format) -> why it fails today. "same": test_every_rendering_reads_as_the_template;
# "map": test_map_then_layout_gives_the_same_findings. Strict: remove an entry when its combination passes.
# ---------------------------------------------------------------------------------------------------------------
_ODS = ".ods refused (exit 2: 'is an OpenDocument spreadsheet')"
_TEXT = ".csv/.tsv refused (exit 2: 'is a CSV/text file')"
_AE_LINK = ("adverse-event rows named by author and year (no study id column) are not linked to their study: "
            "missing-required study_id, every AE row excluded")
XFAIL: dict[tuple[str, str, str], str] = {
    ("same", "template", "ods"): _ODS,
    ("same", "wide", "xlsx"): _AE_LINK,
    ("same", "wide", "ods"): _ODS,
    ("same", "wide", "csv"): _TEXT,
    ("same", "wide", "csv_eu"): _TEXT,
    ("same", "wide", "tsv"): _TEXT,
    ("same", "wide", "folder"): _AE_LINK + "; duplicate-key across the study workbooks",
    ("same", "long", "xlsx"): ("long shape not read: the outcome values (CR, PR ... under n / Estimate) are lost, "
                               "false duplicate-key errors, role columns '95% CI lower' / 'Upper CI' unplaced"),
    ("same", "long", "csv"): _TEXT,
    ("same", "long", "tsv"): _TEXT,
    ("same", "form", "xlsx"): "one sheet per study not read: missing-sheet studies / outcomes, nothing passes",
    ("same", "form", "ods"): _ODS,
    ("same", "form", "folder"): "refused (exit 2): 'none of the form's sheets ... is in this workbook'",
    ("same", "transposed", "xlsx"): "studies as columns not read: missing-sheet outcomes, nothing passes",
    ("same", "transposed", "csv"): _TEXT,
    ("same", "stacked", "xlsx"): ("stacked blocks read as one table: block headers read as data rows, false "
                                  "duplicate-key and missing-required errors, nothing passes"),
    ("same", "stacked", "csv_eu"): _TEXT,
    ("same", "subgroup_sheets", "xlsx"): "sheets with identical headers: only one read; the others' rows are lost",
    ("same", "subgroup_sheets", "ods"): _ODS,
    ("same", "group_headings", "xlsx"): ("group heading rows not read as primary_site (None on every row); "
                                         + _AE_LINK),
    ("same", "group_headings", "csv"): _TEXT,
    ("same", "merged_labels", "xlsx"): "merged study labels filled down with merged-cell warnings (v2: info)",
    ("same", "ae_crosstab", "xlsx"): "adverse-event cross-tab not read: missing-required study_id, no AE passes",
    ("same", "ae_crosstab", "ods"): _ODS,
    ("map", "wide", "csv"): "curate map: " + _TEXT,
    ("map", "form", "ods"): "curate map: " + _ODS,
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
    assert not other, f"the template rendering has errors or warnings off its data cells: {other}"
    assert ("outcomes", ("STROSBERG2017", "overall")) not in clean, "a row with an error passed"
    assert len(clean) >= 12, f"too little clean data to compare: {sorted(clean)}"
    return _Truth(rv, clean, found, result.exit_code())


class _Truth(tuple):
    """(review, clean records, findings on data cells, exit code) of the template rendering; a short repr, for
    hypothesis' report of a failing example."""

    def __new__(cls, *items):
        return super().__new__(cls, items)

    def __repr__(self) -> str:
        return "<the template rendering's reading>"


def _compare(truth, r, result) -> None:
    rv, clean0, found0, code0 = truth
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
    if problems:
        notes = f"\n  other errors/warnings: {other[:8]}" if other else ""
        pytest.fail(f"{describe(r)}\n" + "\n".join(problems) + notes)


@pytest.mark.parametrize(("shape", "fmt"), _params("same", SAME_COMBINATIONS))
@settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate], database=None,
          derandomize=not RANDOM, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_rendering_reads_as_the_template(shape, fmt, data, truth, tmp_path_factory):
    """The same review, in this shape and format with random header wordings, gives the template's clean data and
    the template's errors and warnings on data cells."""
    calls = iter(range(10_000))

    def pick(options):
        # rotated by a fixed amount per combination and draw: hypothesis' first (simplest) example then words
        # each combination differently instead of always taking each field's key
        options = list(options)
        k = zlib.crc32(f"{shape}/{fmt}/{next(calls)}".encode()) % len(options)
        return data.draw(st.sampled_from(options[k:] + options[:k]))

    r = render(shape, fmt, tmp_path_factory.mktemp(f"{shape}_{fmt}"), pick, truth[0])
    _compare(truth, r, _validate(r.path))


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

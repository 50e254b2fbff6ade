"""The cell parser: unit cases from real forms and property tests (hypothesis)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.cells import (format_number, parse_number_text, parse_numeric_column, reported_decimals, text_value,
                            year_of)
from curation.rules import rate_matches


@pytest.mark.parametrize("text,value", [
    ("12", 12), ("12.0", 12), (" 12 ", 12), ("\u00a012\u00a0", 12), ("12,5", 12.5), ("87.6%", 87.6),
    ("87,6 %", 87.6), ("\u22123", -3), ("1 234", 1234), ("0.5", 0.5), (".5", 0.5), ("1e2", 100),
])
def test_numbers_as_typed(text, value):
    p = parse_number_text(text)
    assert p.status == "value" and p.value == pytest.approx(value)


def test_thousands_comma_only_for_counts():
    assert parse_number_text("1,234", integer=True).value == 1234
    assert parse_number_text("1,234").value == pytest.approx(1.234)


@pytest.mark.parametrize("text", ["", "NA", "n/a", "-", "—", "–", "NR", "not reported", " . "])
def test_missing_markers(text):
    assert parse_number_text(text).status == "missing"


@pytest.mark.parametrize("text", ["NR", "not reached", "Not Reached", "n.r."])
def test_not_reached_only_where_allowed(text):
    assert parse_number_text(text, not_reached=True).status == "not_reached"


@pytest.mark.parametrize("text,median,low,high,high_nr", [
    ("30.9 (22.7–39.0)", 30.9, 22.7, 39.0, False),
    ("30,9 (22,7-39,0)", 30.9, 22.7, 39.0, False),
    ("30.9 [22.7, 39.0]", 30.9, 22.7, 39.0, False),
    ("30.9 (95% CI 22.7 - 39.0)", 30.9, 22.7, 39.0, False),
    ("22.8 (19.4–NR)", 22.8, 19.4, None, True),
    ("30.9 (22.7 to 39.0)", 30.9, 22.7, 39.0, False),
])
def test_combined_median_ci(text, median, low, high, high_nr):
    p = parse_number_text(text, combined=True, not_reached=True)
    assert p.status == "combined"
    assert (p.value, p.low, p.high, p.high_not_reached) == (median, low, high, high_nr)


@pytest.mark.parametrize("text,fragment", [
    ("<5", "bound"), ("12-15", "range"), ("12 (10-14)", "more than a number"), ("12 months", "unit"),
    ("twelve", "not a number"),
])
def test_invalid_with_reason(text, fragment):
    p = parse_number_text(text)
    assert p.status == "invalid" and fragment in p.reason


def test_column_parser_types():
    col = parse_numeric_column([1.0, "2", True, dt.date(2020, 1, 2), None, "x", 3.5], kind="integer")
    assert list(col.values[:2]) == [1, 2]
    assert set(col.invalid) == {2, 3, 5, 6}
    assert "whole number" in col.invalid[6] and "date" in col.invalid[3]
    years = parse_numeric_column([2012.0, dt.date(2013, 5, 1), "03/2014", "2015-06", "soon"], kind="year")
    assert list(years.values[:4]) == [2012, 2013, 2014, 2015] and set(years.invalid) == {4}


def test_percent_formatted_cells_scaled():
    col = parse_numeric_column([0.876, "87.6", 0.5], kind="percentage", percent_positions=frozenset({0, 1}))
    assert list(col.values) == pytest.approx([87.6, 87.6, 0.5])


def test_reported_decimals_and_rounding():
    assert [reported_decimals(v) for v in (23.8, "23.75", 24.0, "87.60%", 17, "24.0")] == [1, 2, 0, 2, 0, 1]
    # 19/80 = 23.75%: 23.7 and 23.8 are both right, 23.6 is not
    rate = np.array([23.7, 23.8, 23.6, 24.0, 23.75])
    dec = np.array([1, 1, 1, 0, 2])
    assert list(rate_matches(rate, dec, np.full(5, 19.0), np.full(5, 80.0))) == [True, True, False, True, True]
    # 1/3 = 33.333...: 33.3 right, 33.4 wrong; floating noise never decides
    assert list(rate_matches(np.array([33.3, 33.4, 33.33]), np.array([1, 1, 2]), np.ones(3), np.full(3, 3.0))) \
        == [True, False, True]


@given(st.integers(0, 2000), st.integers(1, 2000), st.integers(0, 4))
def test_rate_matches_its_own_rounding(events, total, d):
    """A percentage rounded from the counts always matches; one a unit off never does."""
    events = min(events, total)
    true = 100 * events / total
    for rounding in (math.floor, math.ceil):
        r = rounding(true * 10 ** d) / 10 ** d
        if abs(r - true) <= 0.5 / 10 ** d + 1e-12:
            assert rate_matches(np.array([r]), np.array([d]), np.array([events]), np.array([total]))[0]
    off = round(true, d) + 2 / 10 ** d
    assert not rate_matches(np.array([off]), np.array([d]), np.array([events]), np.array([total]))[0]


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9))
def test_numbers_written_as_text_read_back(x):
    for text in (repr(x), f" {repr(x)} ", repr(x).replace(".", ",") if "e" not in repr(x) else repr(x)):
        p = parse_number_text(text)
        assert p.status == "value" and p.value == pytest.approx(x, rel=1e-12, abs=1e-300)


@given(st.one_of(st.text(max_size=40), st.floats(), st.integers(-10**12, 10**12), st.booleans(), st.none(),
                 st.dates(), st.datetimes()))
@settings(max_examples=400, deadline=None)
def test_parser_never_raises(value):
    """Whatever a cell holds, parsing gives a value, missing, NR, combined or a reasoned invalid."""
    for kind in ("number", "integer", "percentage", "year"):
        col = parse_numeric_column([value], kind=kind, not_reached=True, combined=True)
        v = col.values[0]
        assert (0 in col.invalid) + (not np.isnan(v)) <= 1
        if 0 in col.invalid:
            assert isinstance(col.invalid[0], str) and col.invalid[0]
    t = text_value(value)
    assert t is None or (isinstance(t, str) and t == t.strip())
    assert isinstance(format_number(value), str)
    y = year_of(value) if value is not None else None
    assert y is None or 1 <= y <= 9999
